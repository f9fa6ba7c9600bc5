"""The tcpip transport against the real daemon (SPEC §5 tcpip).

The OK/FAIL handshake bytes; S2 and S3 auth; a stream of chunks split at
every possible point; a bad chunk followed by a good one (the connection
stays, both counted right); a foreign project in a chunk; the trailing
chunk at close; the auth timeout; a chunk over MAX_EVENT_SIZE. Counts are
read back exactly through the read API and /metrics.
"""

import json
import re
import socket
import sys
import time

from gwtest import Daemon, finish, run_tests, s2_header, s3_header, wait_for

D = None
AUTH = b"--stream-auth--"
CHUNK = b"--chunk--"


def connect(header, port=None):
    s = socket.create_connection(("127.0.0.1", port or D.port("tcpip")),
                                 timeout=10)
    s.sendall(header.encode() + AUTH)
    return s


def recv_all(s, timeout=10):
    """Reads until the server closes."""
    s.settimeout(timeout)
    data = b""
    while True:
        x = s.recv(4096)
        if not x:
            return data
        data += x


def good(project="test_project"):
    pub, priv = D.projects[project]
    return s2_header(project, pub, priv)


def metric(name, **labels):
    """One counter from GET /metrics (0 if absent)."""
    _, _, data = D.request("GET", "/metrics")
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in data.decode().splitlines():
        m = re.match(r"(\w+)\{(.*)\} (\S+)$", line)
        if m and m.group(1) == name:
            got = ",".join(sorted(m.group(2).split(",")))
            if got == want:
                return float(m.group(3))
    return 0


def settle(project, name, want):
    wait_for(lambda: D.total(project, name) == want, timeout=5,
             what="%s/%s == %r" % (project, name, want))
    time.sleep(0.25)
    got = D.total(project, name)
    assert got == want, "%s/%s: %r, want %r" % (project, name, got, want)


def test_ok_and_fail_bytes():
    s = connect(good())
    s.settimeout(5)
    assert s.recv(16) == b"OK"
    s.close()
    pub, priv = D.projects["test_project"]
    # wrong key, unknown project, malformed: FAIL (4 bytes) and close
    for h in (s2_header("test_project", pub, "wrong"),
              s2_header("ghost", pub, priv),
              "GottWallS2 x",
              "GottWallS1 %d %s 1000" % (time.time(), "0" * 32),
              "garbage"):
        s = connect(h)
        assert recv_all(s) == b"FAIL", h
        s.close()
    # S3 with an empty body authenticates a connection too
    s = connect(s3_header("shop", "shop_private", b""))
    s.settimeout(5)
    assert s.recv(16) == b"OK"
    s.sendall(b'{"n": "s3tcp"}' + CHUNK)
    s.close()
    settle("shop", "s3tcp", 1)


def test_stream_and_bad_chunk():
    accepted0 = metric("gottwall_events_accepted_total", transport="tcpip")
    dropped0 = metric("gottwall_events_dropped_total", transport="tcpip",
                      reason="bad_json")
    s = connect(good())
    s.settimeout(5)
    assert s.recv(2) == b"OK"
    s.sendall(b'{"n": "stream", "v": 2}' + CHUNK +
              b'{this is not json' + CHUNK +          # counted, skipped
              b'{"n": "stream", "v": 3}' + CHUNK +    # still served
              CHUNK + b"\n" + CHUNK +                 # empty pieces: skipped
              b'{"n": "stream", "p": "shop"}' + CHUNK +  # foreign project
              b'{"n": "stream", "p": "test_project", "f": {"k": "x"}}' + CHUNK)
    time.sleep(0.2)
    # the connection is still open and working
    s.sendall(b'{"n": "stream"}' + CHUNK)
    s.close()
    settle("test_project", "stream", 7)
    wait_for(lambda: metric("gottwall_events_accepted_total",
                            transport="tcpip") - accepted0 == 4,
             timeout=5, what="4 accepted")
    assert metric("gottwall_events_dropped_total", transport="tcpip",
                  reason="bad_json") - dropped0 == 1
    assert metric("gottwall_events_dropped_total", transport="tcpip",
                  reason="wrong_project") >= 1


def test_split_anywhere():
    """The same bytes, split at every point, give the same events."""
    stream = b"".join(b'{"n": "split", "v": %d}' % v + CHUNK for v in (1, 2, 3))
    for cut in range(1, len(stream)):
        s = connect(good())
        s.settimeout(5)
        assert s.recv(2) == b"OK"
        s.sendall(stream[:cut])
        time.sleep(0.002)
        s.sendall(stream[cut:])
        s.close()
    # also: auth and data in one write, one byte per write
    s = socket.create_connection(("127.0.0.1", D.port("tcpip")), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in good().encode() + AUTH + stream:
        s.send(bytes([b]))
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s, 10) == b"OK"
    s.close()
    settle("test_project", "split", 6 * len(stream))


def test_trailing_chunk_at_close():
    s = connect(good())
    s.settimeout(5)
    assert s.recv(2) == b"OK"
    s.sendall(b'{"n": "trail"}' + CHUNK + b'{"n": "trail", "v": 10}')
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    settle("test_project", "trail", 11)


def test_auth_timeout():
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", D.port("tcpip")), timeout=10)
    s.sendall(b"GottWallS2 123")  # never finished
    data = recv_all(s, 10)
    took = time.time() - t0
    assert data == b"FAIL", data
    assert 0.9 <= took <= 3.0, took   # AUTH_TIMEOUT = 1 s here
    s.close()
    assert metric("gottwall_events_dropped_total", transport="tcpip",
                  reason="timeout") >= 1


def test_oversize_chunk_closes():
    s = connect(good())
    s.settimeout(5)
    assert s.recv(2) == b"OK"
    s.sendall(b'{"n": "big"}' + CHUNK)
    before = metric("gottwall_events_dropped_total", transport="tcpip",
                    reason="oversize")
    # MAX_EVENT_SIZE = 4096 here: 1 KiB blocks without a delimiter
    closed = False
    try:
        for _ in range(64):
            s.sendall(b"x" * 1024)
            time.sleep(0.005)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        assert recv_all(s, 5) == b""
    s.close()
    wait_for(lambda: metric("gottwall_events_dropped_total", transport="tcpip",
                            reason="oversize") == before + 1,
             timeout=5, what="oversize counted")
    # exactly MAX_EVENT_SIZE bytes in one chunk is fine
    ev = b'{"n": "big", "v": 1}'
    ev = ev + b" " * (4096 - len(ev))
    assert len(ev) == 4096
    s = connect(good())
    s.settimeout(5)
    assert s.recv(2) == b"OK"
    s.sendall(ev + CHUNK)
    s.close()
    settle("test_project", "big", 2)


def main():
    global D
    D = Daemon(backends={"http": {}, "tcpip": {"AUTH_TIMEOUT": 1.0,
                                               "MAX_EVENT_SIZE": 4096}})
    D.start()
    code = 1
    try:
        run_tests([test_ok_and_fail_bytes, test_stream_and_bad_chunk,
                   test_split_anywhere, test_trailing_chunk_at_close,
                   test_auth_timeout, test_oversize_chunk_closes])
    except SystemExit as e:
        code = e.code
    finally:
        code = finish(D, code)
    sys.exit(code)


if __name__ == "__main__":
    main()
