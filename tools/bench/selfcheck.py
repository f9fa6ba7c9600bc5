#!/usr/bin/env python3
"""Checks tools/gwload against trivial local listeners (not a test suite).

Run from a build dir:  python3 /path/to/tools/bench/selfcheck.py [./tools/gwload]

Each check starts a small Python listener on a free loopback port that speaks
just enough of a GottWall transport to count what arrives and to verify the
signatures with Python's hmac, runs gwload at a
modest rate and compares gwload's summary line with what the listener saw.
The read-back check serves GET .../stats from the UDP listener's counts, so
the whole path (send, wait, read back, sum, loss) is exercised.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time


class gwtest:
    """SPEC section 4's signatures, written here a third time (Python, like
    tests/lib/gwtest.py) so that gwload's C code is checked against them."""

    @staticmethod
    def sign_legacy(public_key, private_key, ts, base=1000):
        msg = (public_key + str((int(ts) // base) * base)).encode()
        return hmac.new(private_key.encode(), msg, hashlib.md5).hexdigest()

    @staticmethod
    def s3_sig(project, private_key, body, ts, nonce):
        to_sign = "GottWallS3\n%s\n%d\n%s\n%s" % (
            project, ts, nonce, hashlib.sha256(body).hexdigest())
        return hmac.new(private_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def basic_header(public_key, private_key):
        return "Basic " + base64.b64encode(
            ("%s:%s" % (public_key, private_key)).encode()).decode()

    @staticmethod
    def wait_for(pred, timeout=10.0, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)


GWLOAD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "tools/gwload")
PUB, PRIV, PROJECT = "my_public_key", "secret_key", "test_project"
failures = []
checks = []


def check(cond, what):
    checks.append(what)
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    p = subprocess.run([GWLOAD] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    return p.returncode, fields, p.stderr, p.stdout


def verify_s2(header):
    m = re.match(r"GottWallS2 (\d+) ([0-9a-f]{32}) (\d+) (\S+)$", header)
    if not m:
        return False
    ts, sig, base, project = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
    return project == PROJECT and sig == gwtest.sign_legacy(PUB, PRIV, ts, base)


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_name = {}
        self.bad = 0

    def add(self, name, n=1):
        with self.lock:
            self.by_name[name] = self.by_name.get(name, 0) + n

    def total(self):
        with self.lock:
            return sum(self.by_name.values())


def udp_listener(counts, stop, statsd=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)

    def loop():
        while not stop.is_set():
            try:
                data = s.recv(65535).decode()
            except socket.timeout:
                continue
            if statsd:
                for line in data.split("\n"):
                    name, rest = line.split(":", 1)
                    if rest.startswith("1|c"):
                        counts.add(name)
                    else:
                        counts.bad += 1
                continue
            head, _, body = data.partition("--chunk-auth--")
            if not verify_s2(head):
                counts.bad += 1
                continue
            for chunk in body.split("--chunk--"):
                if chunk:
                    ev = json.loads(chunk)
                    counts.add(ev["n"], ev["v"])
    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1]


def tcpip_listener(counts, stop):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)

    def conn(c):
        buf = b""
        while b"--stream-auth--" not in buf:
            buf += c.recv(4096)
        head, _, buf = buf.partition(b"--stream-auth--")
        if not verify_s2(head.decode()):
            c.sendall(b"FAIL")
            c.close()
            counts.bad += 1
            return
        c.sendall(b"OK")
        while True:
            data = c.recv(65536)
            if not data:
                break
            buf += data
            *chunks, buf = buf.split(b"--chunk--")
            for ch in chunks:
                ev = json.loads(ch)
                counts.add(ev["n"], ev["v"])
        c.close()

    def loop():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=conn, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def http_listener(counts, stop, status=204, read_api=None):
    """Keep-alive HTTP/1.1: POSTs are counted (auth checked); GET stats serves read_api."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.2)

    def conn(c):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = c.recv(65536)
                if not data:
                    c.close()
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ")
            hdrs = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
            n = int(hdrs.get("content-length", 0))
            while len(buf) < n:
                buf += c.recv(65536)
            body, buf = buf[:n], buf[n:]
            if method == "GET":
                name = re.search(r"name=([^&]+)", path).group(1)
                ok = hdrs.get("authorization") == gwtest.basic_header(PUB, PRIV)
                out = json.dumps({"range": [[0, read_api.by_name.get(name, 0)]],
                                  "name": name}).encode()
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n"
                          % (200 if ok else 401, len(out)) + out)
                continue
            auth = hdrs.get("x-gottwall-auth", "")
            good = False
            if auth.startswith("GottWallS1 "):
                ts, sig, base = auth.split()[1:4]
                good = sig == gwtest.sign_legacy(PUB, PRIV, int(ts), int(base))
            elif auth.startswith("GottWallS3 "):
                ts, nonce, sig, project = auth.split()[1:5]
                good = (sig == gwtest.s3_sig(project, PRIV, body, int(ts), nonce)
                        and project == PROJECT)
            elif hdrs.get("authorization") == gwtest.basic_header(PUB, PRIV):
                good = True
            if not good:
                counts.bad += 1
            evs = json.loads(body)
            for ev in (evs if isinstance(evs, list) else [evs]):
                counts.add(ev["n"], ev["v"])
            c.sendall(b"HTTP/1.1 %d No Content\r\n\r\n" % status if status == 204 else
                      b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nOK" % status)

    def loop():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=conn, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def main():
    stop = threading.Event()

    # udp: signed datagrams, 20 events each, 10 names x 3 filter values
    c = Counts()
    port = udp_listener(c, stop)
    rc, f, err, _ = run("--proto", "udp", "--port", port, "--events", 20000, "--per-packet", 20,
                        "--metrics", 10, "--filter-values", 3, "--rate", 50000)
    time.sleep(0.5)
    check(rc == 0 and f.get("sent") == "20000" and f.get("packets") == "1000",
          "udp: sent=20000 packets=1000 (%s %s)" % (f, err.strip()))
    check(c.total() == 20000 and c.bad == 0 and len(c.by_name) == 10,
          "udp: listener saw 20000 events in 10 names, all signatures valid (%d, bad %d)"
          % (c.total(), c.bad))

    # udp with read-back through a fake read API on the same counts
    c = Counts()
    port = udp_listener(c, stop)
    api = http_listener(Counts(), stop, read_api=c)
    rc, f, err, _ = run("--proto", "udp", "--port", port, "--events", 30000, "--per-packet", 20,
                        "--metrics", 100, "--threads", 2, "--rate", 60000,
                        "--read-back", "http://127.0.0.1:%d" % api, "--settle", 1)
    check(rc == 0 and f.get("sent") == "30000" and f.get("stored") == "30000"
          and f.get("loss") == "0.000%", "udp read-back: stored=30000 loss=0.000%% (%s %s)"
          % (f, err.strip()))

    # statsd lines
    c = Counts()
    port = udp_listener(c, stop, statsd=True)
    rc, f, err, _ = run("--proto", "statsd", "--port", port, "--events", 4000, "--per-packet", 40,
                        "--metrics", 1000, "--rate", 40000)
    time.sleep(0.5)
    check(rc == 0 and f.get("sent") == "4000" and c.total() == 4000 and len(c.by_name) == 1000
          and c.bad == 0, "statsd: 4000 lines in 1000 names (%d) %s" % (c.total(), f))

    # tcpip: S2 auth, then chunks on 3 connections
    c = Counts()
    port = tcpip_listener(c, stop)
    rc, f, err, _ = run("--proto", "tcpip", "--port", port, "--events", 9000, "--per-packet", 10,
                        "--connections", 3, "--metrics", 7, "--rate", 50000)
    gwtest.wait_for(lambda: c.total() == 9000, timeout=5, what="9000 tcp events")
    check(rc == 0 and f.get("sent") == "9000" and c.bad == 0,
          "tcpip: 9000 events over 3 connections (%s %s)" % (f, err.strip()))

    # http: S1 single events, keep-alive, 2 connections
    for auth, per in (("s1", 1), ("s3", 1), ("basic", 100)):
        c = Counts()
        port = http_listener(c, stop, status=204 if auth != "basic" else 200)
        n = 2000 if per == 1 else 20000
        rc, f, err, _ = run("--proto", "http", "--auth", auth, "--port", port, "--events", n,
                            "--per-packet", per, "--connections", 2, "--metrics", 5,
                            "--pipeline", 2)
        check(rc == 0 and f.get("sent") == str(n) and f.get("acked") == str(n)
              and f.get("loss") == "0.000%" and c.total() == n and c.bad == 0,
              "http %s per-packet %d: %d acked, auth valid (%s, bad %d, %s)"
              % (auth, per, n, f, c.bad, err.strip()))

    # http errors are counted, not acked
    c = Counts()
    port = http_listener(c, stop, status=403)
    rc, f, err, _ = run("--proto", "http", "--port", port, "--events", 50)
    check(f.get("acked") == "0" and f.get("http_errors") == "50" and f.get("loss") == "100.000%",
          "http 403: acked=0 http_errors=50 loss=100.000%% (%s)" % f)

    # rate limiting holds: 5000 events at 10000/s takes ~0.5 s
    c = Counts()
    port = udp_listener(c, stop)
    rc, f, err, _ = run("--proto", "udp", "--port", port, "--events", 5000, "--rate", 10000)
    check(0.45 <= float(f.get("seconds", 0)) <= 0.7,
          "rate 10000/s: 5000 events in %s s" % f.get("seconds"))

    # refuses what it should
    rc, f, err, _ = run("--proto", "udp", "--port", 1, "--host", "10.0.0.1")
    check(rc == 2 and "not a loopback address" in err, "refuses a non-loopback host")
    rc, f, err, _ = run("--proto", "carrier-pigeon", "--port", 1)
    check(rc == 2 and "not one of http, tcpip, udp, statsd" in err, "names the protocols")

    stop.set()
    print("%d passed, %d failed" % (len(checks) - len(failures), len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
