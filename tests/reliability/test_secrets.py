"""No key, signature or password ever appears in a log line or an answer.

A daemon (log level debug) runs with distinctive secrets: SECRET_KEY, a
project's own private key, cookie_secret and a user's password. Then every
way of failing authentication is tried on every port: S1 with a wrong or
stale signature, S3 with a bad signature, Basic with wrong and half-right
credentials, a tcpip S2 with a wrong signature, a UDP datagram with a wrong
signature, a login with the wrong password, the read API with wrong Basic
credentials, and a successful request of each kind too. Every secret, every
signature sent and every password tried must be absent from the daemon's
log and from every response body. The config file readable by others gets
a warning at start; mode 0600 does not.
"""

import base64
import os
import socket
import subprocess
import time
import urllib.parse

from gwtest import (GOTTWALL, Daemon, run_tests, s1_header, s2_header,
                    s3_header, sign_legacy)

SECRET = "SecretKey-Distinctive-4f9a"
PUB = "pub-Distinctive-77"
PRIV = "PrivKey-Distinctive-b3c1"
COOKIE = "CookieSecret-Distinctive-0d2e"
PASSWORD = "UserPassword-Distinctive-91x"
WRONG = "WrongPassword-Distinctive-5k"
USER = "ops@example.com"


def password_hash(pw):
    out = subprocess.run([GOTTWALL, "passwd"], input=pw + "\n",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_no_secret_in_logs_or_answers():
    d = Daemon(backends={"http": {}, "tcpip": {}, "udp": {}},
               projects={"legacy": ("legacy-pub-Distinctive", SECRET),
                         "shop": (PUB, PRIV)},
               extra={"ANONYMOUS_LOGIN": False, "cookie_secret": COOKIE,
                      "USERS": [{"email": USER, "password": password_hash(PASSWORD)}]})
    bodies = []
    sent = set([SECRET, PRIV, COOKIE, PASSWORD, WRONG])
    d.start()
    try:
        hp = d.port("http")

        def http(method, path, body=None, headers=None, port=hp):
            st, _, data = d.request(method, path, body=body, headers=headers or {},
                                    port=port)
            bodies.append(data)
            return st

        now = int(time.time())
        wrong_sig = sign_legacy(PUB, "not-the-key", now)
        sent.add(wrong_sig)
        assert http("POST", "/api/v1/shop/incr", '{"n":"a"}',
                    {"X-GottWall-Auth": "GottWallS1 %d %s 1000" % (now, wrong_sig)}) == 403
        stale_sig = sign_legacy(PUB, PRIV, now - 5000)
        sent.add(stale_sig)
        assert http("POST", "/api/v1/shop/incr", '{"n":"a"}',
                    {"X-GottWall-Auth": "GottWallS1 %d %s 1000" % (now - 5000, stale_sig)}) == 403
        bad_s3 = s3_header("shop", "not-the-key", b'{"n":"a"}')
        sent.add(bad_s3.split()[3])
        assert http("POST", "/api/v1/shop/incr", '{"n":"a"}', {"X-GottWall-Auth": bad_s3}) == 403
        for creds in ("%s:%s" % (PUB, WRONG), "%s:%s" % (WRONG, PRIV), "%s:%s" % (PRIV, WRONG),
                      "%s:" % PRIV, PRIV):
            b = base64.b64encode(creds.encode()).decode()
            sent.add(b)
            assert http("POST", "/api/v1/shop/incr", '{"n":"a"}',
                        {"Authorization": "Basic " + b}) == 403
            assert http("GET", "/api/v1/shop/metrics", port=d.server_port,
                        headers={"Authorization": "Basic " + b}) == 401
        # Right credentials, for contrast: accepted, and still not logged.
        good = s1_header(PUB, PRIV)
        sent.add(good.split()[2])
        assert http("POST", "/api/v1/shop/incr", '{"n":"a"}', {"X-GottWall-Auth": good}) == 200
        good_basic = base64.b64encode(("%s:%s" % (PUB, PRIV)).encode()).decode()
        sent.add(good_basic)
        assert http("GET", "/api/v1/shop/metrics", port=d.server_port,
                    headers={"Authorization": "Basic " + good_basic}) == 200
        # tcpip and udp with a wrong signature.
        hdr = s2_header("shop", PUB, "not-the-key")
        sent.add(hdr.split()[2])
        s = socket.create_connection(("127.0.0.1", d.port("tcpip")), timeout=5)
        s.sendall(hdr.encode() + b"--stream-auth--")
        assert s.recv(4) == b"FAIL"
        s.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto((hdr + '--chunk-auth--{"n":"a"}').encode(), ("127.0.0.1", d.port("udp")))
        u.close()
        # Login with the wrong password, then the right one.
        form = urllib.parse.urlencode({"email": USER, "password": WRONG, "next": "/"})
        st = http("POST", "/login", form,
                  {"Content-Type": "application/x-www-form-urlencoded"},
                  port=d.server_port)
        assert st in (200, 401, 403), st
        form = urllib.parse.urlencode({"email": USER, "password": PASSWORD, "next": "/"})
        assert http("POST", "/login", form,
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    port=d.server_port) == 302
        time.sleep(0.3)
        assert d.stop() == 0
        log = d.log()
    finally:
        d.cleanup()
    assert "auth" in log.lower(), "the failures were not logged at all"
    for secret in sorted(sent):
        assert secret not in log, "%r appears in the log:\n%s" % (
            secret, [l for l in log.splitlines() if secret in l][:3])
        for b in bodies:
            assert secret.encode() not in b, "%r appears in an answer: %r" % (secret, b[:300])
    assert "readable by every user" not in log, log


def test_world_readable_config_warns():
    d = Daemon(backends={"http": {}})
    try:
        d.write_config()
        d.write_config = lambda: os.chmod(d.conf_path, 0o644)
        d.start()
        assert d.stop() == 0
        want = ("%s is readable by every user (mode 0644) and holds the projects' "
                "private keys; run chmod 600 %s" % (d.conf_path, d.conf_path))
        assert want in d.log(), d.log()
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_no_secret_in_logs_or_answers, test_world_readable_config_warns])
