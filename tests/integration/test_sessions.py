"""Sessions of the server role (issue 16, item 4), against the real gottwall
binary over loopback sockets.

The attacks of the review, each repeated here:
- the cookie captured before a logout still read /api/v1/projects;
- GET /logout (an <img> on any page) logged the user out;
- after a password change and SIGHUP the old cookie still worked;
- a cookie forged with the known cookie_secret and a one-year expiry was
  accepted;
- Secure was never set, even behind a TLS proxy's X-Forwarded-Proto.
And what the fix promises: logout is a POST with a CSRF token; it ends
every session of the user, across a restart and on every server process of
one storage (within 5 s); SESSION_MAX_AGE and SESSION_IDLE_TIMEOUT end a
session whatever the cookie says; X-Forwarded-Proto is believed only from
TRUSTED_PROXIES; while the storage does not answer, the last known
generation is used, a logout answers 503 and keeps the cookie, and a
process that never read the generation answers 503 (fails closed).
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

from gwtest import BUILDDIR, GOTTWALL, Daemon, run_tests, wait_for

ANN, ANN_PW = "ann@example.com", "correct horse battery"
SECRET = "test cookie secret"   # gwtest's cookie_secret
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LOGIN_REQUIRED = {"error": "login required: log in at /login, or send the project's keys "
                           "(Authorization: Basic public:private, or a GottWallS1/GottWallS3/GottWallS4 "
                           "X-GottWall-Auth header)"}
CLEAR = "gw_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
HASHES = {}


def password_hash(pw):
    if pw not in HASHES:
        out = subprocess.run([GOTTWALL, "passwd"], input=pw + "\n", capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
        assert out.startswith("pbkdf2-sha256$"), out
        HASHES[pw] = out
    return HASHES[pw]


def daemon(pw=ANN_PW, daemon_args=None, **extra):
    cfg = {"ANONYMOUS_LOGIN": False, "USERS": [{"email": ANN, "password": password_hash(pw)}]}
    cfg.update(extra)
    return Daemon(extra=cfg, **(daemon_args or {}))


def request(d, method, path, body=None, headers=None, source="127.0.0.1", port=None):
    c = http.client.HTTPConnection("127.0.0.1", port or d.server_port, timeout=30,
                                   source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def login(d, pw=ANN_PW, headers=None, source="127.0.0.1", port=None):
    """A successful login; returns (cookie value, Set-Cookie header)."""
    st, hdrs, body = request(d, "POST", "/login",
                             urllib.parse.urlencode({"email": ANN, "password": pw}),
                             dict(FORM, **(headers or {})), source=source, port=port)
    assert st == 302, (st, hdrs, body[:300])
    m = re.match(r"gw_session=([^;]*);", hdrs["set-cookie"])
    return m.group(1), hdrs["set-cookie"]


def with_cookie(value, **more):
    return dict({"Cookie": "gw_session=" + value}, **more)


def projects(d, value, port=None):
    """GET /api/v1/projects with the cookie: (status, JSON)."""
    st, _, body = request(d, "GET", "/api/v1/projects", headers=with_cookie(value), port=port)
    return st, json.loads(body)


def csrf_token(d, value):
    """The logout form's token on the dashboard page (None if there is none)."""
    st, _, body = request(d, "GET", "/", headers=with_cookie(value))
    assert st == 200, st
    m = re.search(rb'name="csrf" value="([0-9a-f]+)"', body)
    return m.group(1).decode() if m else None


def logout(d, value, token="", headers=None, port=None):
    body = urllib.parse.urlencode({"csrf": token or ""})
    return request(d, "POST", "/logout", body, with_cookie(value, **dict(FORM, **(headers or {}))),
                   port=port)


def forge(issued, seen, pw_hash, generation="0" * 16, email=ANN, secret=SECRET):
    """A cookie made as docs/api.md says, by anyone who knows cookie_secret."""
    msg = "gw2|%s|%d|%d|%s|%s" % (email, issued, seen, generation,
                                  hashlib.sha256(pw_hash.encode()).hexdigest())
    mac = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
    return "%s|%d|%d|%s" % (email, issued, seen, mac)


def test_logout_revokes_the_captured_cookie():
    d = daemon()
    try:
        d.start()
        c1, set1 = login(d)
        c2, _ = login(d)                      # the same user in another browser
        assert projects(d, c1) == (200, ["test_project", "shop"])
        st, hdrs, _ = logout(d, c1, csrf_token(d, c1), {"Origin": "http://127.0.0.1:%d"
                                                        % d.server_port})
        assert (st, hdrs.get("location"), hdrs.get("set-cookie")) == (
            302, "/login?logged_out=1", CLEAR), (st, hdrs)
        # The attack: the cookie captured before the logout.
        assert projects(d, c1) == (401, LOGIN_REQUIRED)
        assert projects(d, c2) == (401, LOGIN_REQUIRED)   # logout ends every session
        st, hdrs, _ = request(d, "GET", "/", headers=with_cookie(c1))
        assert (st, hdrs["location"]) == (302, "/login?next=%2F"), (st, hdrs)
        c3, _ = login(d)
        assert projects(d, c3)[0] == 200
        assert re.fullmatch(r"gw_session=[^;]+; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax",
                            set1), set1
        # The revocation is in the storage: it survives a restart.
        assert d.stop() == 0
        d.start()
        assert projects(d, c1) == (401, LOGIN_REQUIRED)
        assert projects(d, c3)[0] == 200
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_get_logout_does_not_log_out():
    with daemon() as d:
        c, _ = login(d)
        st, hdrs, body = request(d, "GET", "/logout", headers=with_cookie(c))
        assert (st, hdrs.get("allow"), "set-cookie" in hdrs) == (405, "POST", False), (st, hdrs)
        assert json.loads(body) == {"error": "method not allowed: use POST"}, body
        assert projects(d, c)[0] == 200
        # A POST without the form's token (a form on another site that
        # sends no Origin) does not log out either.
        for token in ("", "0" * 32):
            st, hdrs, body = logout(d, c, token)
            assert (st, "set-cookie" in hdrs) == (403, False), (st, hdrs)
            assert json.loads(body) == {"error": "logout needs the csrf field of the "
                                        "dashboard's logout form (or the header "
                                        "X-Requested-With: gottwall)"}, body
        assert projects(d, c)[0] == 200
        # A script of the dashboard may log out with the custom header.
        st, hdrs, _ = logout(d, c, headers={"X-Requested-With": "gottwall"})
        assert (st, hdrs.get("set-cookie")) == (302, CLEAR), (st, hdrs)
        assert projects(d, c)[0] == 401
        # Without a session there is nothing to end: the cookie is cleared.
        st, hdrs, _ = logout(d, "nonsense")
        assert (st, hdrs.get("location"), hdrs.get("set-cookie")) == (
            302, "/login?logged_out=1", CLEAR)


def test_password_change_and_sighup_revoke():
    d = daemon()
    with d:
        c, _ = login(d)
        assert projects(d, c)[0] == 200
        d.extra["USERS"] = [{"email": ANN, "password": password_hash("a new password")}]
        d.write_config()
        d.signal(1)   # SIGHUP
        wait_for(lambda: "SIGHUP: reloaded" in d.log(), what="the reload")
        assert projects(d, c) == (401, LOGIN_REQUIRED)
        c2, _ = login(d, "a new password")
        assert projects(d, c2)[0] == 200


def test_forged_long_expiry_refused():
    with daemon() as d:
        now = int(time.time())
        pw = password_hash(ANN_PW)
        # The review's cookie: the placeholder secret's MAC over a one-year
        # expiry, in the format before issue 16.
        exp = now + 365 * 86400
        old = "%s|%d|%s" % (ANN, exp, hmac.new(SECRET.encode(), ("%s|%d" % (ANN, exp)).encode(),
                                                hashlib.sha256).hexdigest())
        assert projects(d, old) == (401, LOGIN_REQUIRED)
        # Forged in today's format: the server's SESSION_MAX_AGE (7 days
        # from the login) decides, not anything the cookie claims.
        assert projects(d, forge(now - 60, now - 60, pw))[0] == 200         # the control
        assert projects(d, forge(now - 7 * 86400 - 60, now, pw)) == (401, LOGIN_REQUIRED)
        assert projects(d, forge(now + 3600, now + 3600, pw)) == (401, LOGIN_REQUIRED)
        assert projects(d, forge(now - 60, now + 3600, pw)) == (401, LOGIN_REQUIRED)
        assert projects(d, forge(now - 60, now - 120, pw)) == (401, LOGIN_REQUIRED)
        assert projects(d, forge(now - 60, now - 60, pw, "1" * 16)) == (401, LOGIN_REQUIRED)
        assert projects(d, forge(now - 60, now - 60, pw, secret="change me too")) == \
            (401, LOGIN_REQUIRED)
    with daemon(SESSION_MAX_AGE=120) as d:
        now = int(time.time())
        pw = password_hash(ANN_PW)
        _, set_cookie = login(d)
        assert "; Max-Age=120; " in set_cookie, set_cookie
        assert projects(d, forge(now - 100, now - 100, pw))[0] == 200
        assert projects(d, forge(now - 130, now - 1, pw)) == (401, LOGIN_REQUIRED)


def test_idle_timeout():
    with daemon(SESSION_IDLE_TIMEOUT=6) as d:
        t0 = time.time()
        a, _ = login(d)
        time.sleep(max(0, t0 + 3 - time.time()))
        st, hdrs, _ = request(d, "GET", "/api/v1/projects", headers=with_cookie(a))
        assert st == 200 and "set-cookie" in hdrs, (st, hdrs)  # the last-seen stamp moves
        m = re.fullmatch(r"gw_session=([^;]+); Path=/; Max-Age=(\d+); HttpOnly; SameSite=Lax",
                         hdrs["set-cookie"])
        assert m and 604790 <= int(m.group(2)) <= 604800, hdrs["set-cookie"]
        b = m.group(1)
        assert b.split("|")[1] == a.split("|")[1] and b.split("|")[2] > a.split("|")[2], (a, b)
        # A second request within the refresh interval does not set it again.
        st, hdrs, _ = request(d, "GET", "/api/v1/projects", headers=with_cookie(b))
        assert st == 200 and "set-cookie" not in hdrs, hdrs
        time.sleep(max(0, t0 + 8 - time.time()))
        assert projects(d, a) == (401, LOGIN_REQUIRED)   # idle for 8 s
        assert projects(d, b)[0] == 200                  # idle for 5 s


def test_secure_only_behind_a_trusted_proxy():
    https = {"X-Forwarded-Proto": "https"}
    with daemon() as d:
        # Default TRUSTED_PROXIES: loopback 127.0.0.1 and ::1 only.
        _, plain = login(d)
        assert "Secure" not in plain, plain
        c, proxied = login(d, headers=https)
        assert proxied.endswith("; HttpOnly; SameSite=Lax; Secure"), proxied
        _, spoofed = login(d, headers=https, source="127.0.0.2")   # not a proxy of ours
        assert "Secure" not in spoofed, spoofed
        _, other = login(d, headers={"X-Forwarded-Proto": "http"})
        assert "Secure" not in other, other
        st, hdrs, _ = logout(d, c, headers=dict(https, **{"X-Requested-With": "gottwall"}))
        assert (st, hdrs["set-cookie"]) == (302, CLEAR + "; Secure"), hdrs
    with daemon(TRUSTED_PROXIES=["127.0.0.2", "10.0.0.0/8"]) as d:
        _, spoofed = login(d, headers=https)                        # 127.0.0.1: not listed
        assert "Secure" not in spoofed, spoofed
        _, proxied = login(d, headers=https, source="127.0.0.2")
        assert proxied.endswith("; Secure"), proxied
        # A proxy that appends: the last value is the one it saw.
        _, appended = login(d, headers={"X-Forwarded-Proto": "http, https"}, source="127.0.0.2")
        assert appended.endswith("; Secure"), appended
        _, appended = login(d, headers={"X-Forwarded-Proto": "https, http"}, source="127.0.0.2")
        assert "Secure" not in appended, appended


def test_storage_down():
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs", "storage_fixture.so")
    assert os.path.exists(so), "%s is missing: make check builds it" % so
    d = daemon(daemon_args={"storage": so})
    down = os.path.join(d.tmp, "docs-down")
    d.storage_settings["DOCS_DOWN_FILE"] = down
    try:
        d.start()
        c, _ = login(d)
        open(down, "w").close()
        time.sleep(5.5)   # past the 5 s the generation is cached
        # The last generation read is used while the storage does not answer.
        assert projects(d, c)[0] == 200
        st, hdrs, body = logout(d, c, headers={"X-Requested-With": "gottwall"})
        assert (st, "set-cookie" in hdrs) == (503, False), (st, hdrs)
        assert json.loads(body) == {
            "error": "cannot log out now: the storage did not answer (documents are down "
                     "(fixture)), so the session could not be ended on the server; the cookie "
                     "is kept: try again"}, body
        assert projects(d, c)[0] == 200
        assert "server: the storage does not answer (documents are down (fixture)): " \
            "sessions are checked against the last generation read" in d.log()
        os.unlink(down)
        st, hdrs, _ = logout(d, c, headers={"X-Requested-With": "gottwall"})
        assert (st, hdrs.get("set-cookie")) == (302, CLEAR), (st, hdrs)
        assert projects(d, c) == (401, LOGIN_REQUIRED)
        assert d.stop() == 0
        # A new process (the fixture keeps nothing: the user has never
        # logged out there) that cannot read the generation at all refuses
        # even a good session: 503, not a guess.
        now = int(time.time())
        c = forge(now, now, password_hash(ANN_PW))
        open(down, "w").close()
        d.start()
        st, _, body = request(d, "GET", "/api/v1/projects", headers=with_cookie(c))
        assert (st, json.loads(body)) == (503, {
            "error": "cannot check the session: the storage did not answer (documents are down "
                     "(fixture)); try again"}), (st, body)
        os.unlink(down)
        assert projects(d, c)[0] == 200
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_two_servers_share_the_revocation():
    if shutil.which("redis-server") is None:
        print("  (redis-server missing: two servers on one storage not run)")
        return
    from services import RedisServer
    with RedisServer() as r:
        settings = {"HOST": "127.0.0.1", "PORT": r.port}
        users = [{"email": ANN, "password": password_hash(ANN_PW)}]
        ds = [Daemon(command=("server", "start"), storage="redis", storage_settings=settings,
                     backends={}, extra={"ANONYMOUS_LOGIN": False, "USERS": users})
              for _ in range(2)]
        try:
            for d in ds:
                d.start()
            a, b = ds
            c, _ = login(a)
            t0 = time.time()                          # b reads the generation now
            assert projects(b, c)[0] == 200
            st, _, _ = logout(a, c, headers={"X-Requested-With": "gottwall"})
            assert st == 302
            t1 = time.time()
            assert projects(a, c)[0] == 401          # at once on the process that logged out
            wait_for(lambda: projects(b, c)[0] == 401, timeout=10, step=0.1,
                     what="the other server to see the logout")
            print("  the other server refused the cookie %.1f s after the logout, %.1f s "
                  "after it last read the generation" % (time.time() - t1, time.time() - t0))
            # Its cached generation is read again when 5 s old (+ a poll).
            assert time.time() - t0 <= 5.0 + 1.0, time.time() - t0
            for d in ds:
                assert d.stop() == 0
        finally:
            for d in ds:
                d.cleanup()


if __name__ == "__main__":
    run_tests([test_logout_revokes_the_captured_cookie, test_get_logout_does_not_log_out,
               test_password_change_and_sighup_revoke, test_forged_long_expiry_refused,
               test_idle_timeout, test_secure_only_behind_a_trusted_proxy, test_storage_down,
               test_two_servers_share_the_revocation])
