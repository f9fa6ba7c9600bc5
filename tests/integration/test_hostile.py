"""Hostile input on every port of the real daemon (reliability anchors:
"Protocol limits and hostile input").

Random bytes on the HTTP ingest, read API, TCP and UDP ports; malformed and
oversized HTTP (a 3 MiB body, huge and negative Content-Length, chunk size
overflow, too many and too long headers); 100,000 nested '['; TCP pre-auth
abuse; a slow client sending one byte every 2 s while others are served;
a connection flood. After all of it the daemon still answers, has stored
nothing from any refused input, and exits 0 on SIGTERM with a clean log.
"""

import json
import os
import random
import select
import socket
import sys
import threading
import time

from gwtest import Daemon, finish, run_tests, s1_header, s2_header, wait_for

D = None
RNG = random.Random(20261127)


def auth_hdr():
    pub, priv = D.projects["test_project"]
    return s1_header(pub, priv)


def raw(port, data, timeout=5.0, shut=True):
    """Sends data on a new connection, returns what comes back until the
    server closes (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first: that is fine
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                x = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not x:
                break
            out += x
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep and out.startswith(b"HTTP/"):
                m = [h for h in head.split(b"\r\n")
                     if h.lower().startswith(b"content-length:")]
                if m and len(body) >= int(m[0].split(b":")[1]):
                    break  # one whole answer: enough
        return out
    finally:
        s.close()


def status_of(resp):
    assert resp.startswith(b"HTTP/1.1 "), resp[:200]
    return int(resp.split(b" ", 2)[1])


def alive():
    st, data = D.send_http("test_project", {"n": "alive"})
    assert (st, data) == (200, b"OK"), (st, data)
    return True


def ingest(body, extra=b""):
    return (b"POST /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n"
            b"X-GottWall-Auth: " + auth_hdr().encode() + b"\r\n" + extra +
            b"\r\n" + body)


def test_random_bytes_everywhere():
    ports = [D.port("http"), D.server_port, D.port("tcpip")]
    for i in range(60):
        n = RNG.choice([0, 1, 2, 17, 512, 4096, 70000])
        junk = bytes(RNG.getrandbits(8) for _ in range(min(n, 4096)))
        junk = (junk * (n // max(len(junk), 1) + 1))[:n]
        if i % 3 == 1:
            junk = b"POST /api/v1/test_project/incr HTTP/1.1\r\n" + junk
        raw(ports[i % 3], junk, timeout=2)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for n in (0, 1, 2, 100, 1400, 65507):
        u.sendto(os.urandom(n), ("127.0.0.1", D.port("udp")))
        half = max(n // 2 - 20, 0)
        u.sendto(b"GottWallS2 " + os.urandom(half) + b"--chunk-auth--" +
                 os.urandom(half), ("127.0.0.1", D.port("udp")))
    u.close()
    assert alive()


def test_big_body_413():
    body = b'{"n": "huge", "f": {"x": "' + b"a" * (3 * 1024 * 1024) + b'"}}'
    resp = raw(D.port("http"), ingest(body, b"Content-Length: %d\r\n" % len(body)),
               timeout=10, shut=False)
    assert status_of(resp) == 413, resp[:300]
    assert b"Connection: close" in resp
    # chunked, with no length up front: refused while reading
    chunks = b"".join(b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
                      for _ in range(48)) + b"0\r\n\r\n"
    resp = raw(D.port("http"), ingest(chunks, b"Transfer-Encoding: chunked\r\n"),
               timeout=10, shut=False)
    assert status_of(resp) == 413, resp[:300]
    assert alive()


def test_malformed_http():
    cases = [
        (ingest(b"{}", b"Content-Length: -1\r\n"), 400),
        (ingest(b"{}", b"Content-Length: 99999999999999999999999\r\n"), 400),
        (ingest(b"{}", b"Content-Length: 2\r\nContent-Length: 3\r\n"), 400),
        (ingest(b"fffffffffffffffffffffff\r\n", b"Transfer-Encoding: chunked\r\n"), 400),
        (ingest(b"{}", b"".join(b"X-H%d: v\r\n" % i for i in range(70))), 431),
        (ingest(b"{}", b"X-Long: " + b"a" * 20000 + b"\r\n"), 431),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 431),
        (b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\n\r\n", 505),
        (b"GET /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (ingest(b"[" * 100000, b"Content-Length: 100000\r\n"), 400),
        (ingest(b'{"n": "x", "v": 1e400}', b"Content-Length: 22\r\n"), 400),
    ]
    for data, want in cases:
        resp = raw(D.port("http"), data, timeout=5, shut=False)
        assert status_of(resp) == want, (data[:80], resp[:300])
        body = resp.split(b"\r\n\r\n", 1)[1]
        assert json.loads(body)["error"], resp
    time.sleep(0.3)
    assert D.total("test_project", "x") == 0
    assert alive()


def test_deep_nesting_alive():
    st, _, data = D.request("POST", "/api/v1/test_project/incr",
                         body="[" * 100000,
                         headers={"X-GottWall-Auth": auth_hdr()},
                         port=D.port("http"))
    assert st == 400, (st, data)
    assert json.loads(data)["error"]
    assert D.alive()
    assert alive()


def test_slow_client_while_others_served():
    """One byte every 2 s on a connection: the server keeps serving others
    and closes the slow one at HTTP_HEADER_TIMEOUT (5 s here) with 408."""
    result = {}

    def slow():
        s = socket.create_connection(("127.0.0.1", D.port("http")), timeout=15)
        t0 = time.time()
        sent = 0
        data = b""
        try:
            for b in b"POST /api/v1/test_project/incr HTTP/1.1\r\n":
                s.send(bytes([b]))
                sent += 1
                # the next byte in 2 s, unless the server answers first
                if select.select([s], [], [], 2)[0]:
                    break
            s.settimeout(10)
            data = s.recv(4096)
        except (OSError, socket.timeout) as e:
            data = repr(e).encode()
        result["data"] = data
        result["took"] = time.time() - t0
        result["sent"] = sent
        s.close()

    t = threading.Thread(target=slow)
    t.start()
    served = 0
    t_end = time.time() + 4
    while time.time() < t_end:
        alive()
        served += 1
        time.sleep(0.05)
    t.join(20)
    assert not t.is_alive()
    assert served > 20, served
    assert result["data"].startswith(b"HTTP/1.1 408 "), result
    assert result["sent"] == 3, result            # a few bytes, then closed
    assert 4.8 <= result["took"] <= 6.5, result


def test_tcp_preauth_abuse():
    # 1 MiB before any auth delimiter: FAIL after at most MAX_AUTH_SIZE
    s = socket.create_connection(("127.0.0.1", D.port("tcpip")), timeout=10)
    sent = 0
    try:
        for _ in range(1024):
            s.sendall(b"G" * 1024)
            sent += 1024
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(5)
    try:
        data = s.recv(16)
    except ConnectionResetError:
        data = b"FAIL"  # the reset can overtake the answer
    assert data in (b"FAIL", b""), data
    assert data != b"OK"
    s.close()
    # after auth, a stream without delimiters is closed (MAX_EVENT_SIZE)
    pub, priv = D.projects["test_project"]
    s = socket.create_connection(("127.0.0.1", D.port("tcpip")), timeout=10)
    s.sendall(s2_header("test_project", pub, priv).encode() + b"--stream-auth--")
    assert s.recv(2) == b"OK"
    closed = False
    t0 = time.time()
    try:
        for _ in range(200):
            s.sendall(b"x" * 1024)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        s.settimeout(2)
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
    assert closed and time.time() - t0 < 2
    s.close()
    assert alive()


def test_connection_flood():
    socks = []
    for _ in range(300):
        socks.append(socket.create_connection(("127.0.0.1", D.port("http")),
                                              timeout=5))
    assert alive()
    for s in socks:
        s.close()
    socks = []
    for _ in range(100):
        socks.append(socket.create_connection(("127.0.0.1", D.port("tcpip")),
                                              timeout=5))
    assert alive()
    for s in socks:
        s.close()


def test_nothing_stored_but_alive():
    time.sleep(0.3)
    projects = D.get_json("/api/v1/projects")
    assert "test_project" in projects
    metrics = D.get_json("/api/v1/test_project/metrics")
    assert sorted(metrics) == ["alive"], metrics


def main():
    global D
    D = Daemon(backends={"http": {}, "tcpip": {"MAX_EVENT_SIZE": 65536},
                         "udp": {}},
               extra={"HTTP_HEADER_TIMEOUT": 5})
    D.start()
    code = 1
    try:
        run_tests([test_random_bytes_everywhere, test_big_body_413,
                   test_malformed_http, test_deep_nesting_alive,
                   test_slow_client_while_others_served, test_tcp_preauth_abuse,
                   test_connection_flood, test_nothing_stored_but_alive])
    except SystemExit as e:
        code = e.code
    finally:
        code = finish(D, code)
    sys.exit(code)


if __name__ == "__main__":
    main()
