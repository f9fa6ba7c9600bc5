"""One client cannot hold every HTTP connection (issue 16, item 5), against
the real daemon on loopback.

- 1,024 POSTs from 127.0.0.1 announcing `Content-Length: 1000000` and
  sending one byte a second, with the default limits: MAX_CONNECTIONS
  (1024), MAX_CONNECTIONS_PER_ADDRESS (64) and RESERVED_CONNECTIONS (256)
  let that address hold exactly 768 and refuse 256 (counted as
  `max_connections_per_address`); 127.0.0.2, under its cap, still gets 64
  connections from the reserve and no 65th; 127.0.0.3 and 127.0.0.4 are
  served at once;
  every one of the 768 slow bodies is answered `408` for arriving slower
  than HTTP_MIN_BODY_RATE (1024 bytes/s, after HTTP_HEADER_TIMEOUT of
  grace), counted as `slow_body`.
- A body that keeps up the minimum rate but never ends is answered `408`
  at HTTP_REQUEST_TIMEOUT (a total deadline per request), counted as
  `request_timeout`.
- The deadline is per request: keep-alive connections idle between
  requests for longer than it, and pipelined requests are answered in
  order.
"""

import http.client
import json
import re
import resource
import select
import socket
import time

from gwtest import Daemon, run_tests_with, s1_header, wait_for

PUB, PRIV = "my_public_key", "secret_key"
NOT_FOUND = b'{"error": "not found: events go to POST {PREFIX}/api/v1/{project}/{action}"}'


def metric(d, name, **labels):
    text = d.request("GET", "/metrics")[2].decode()
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape("{%s}" % lab)),
                  text, re.M)
    return int(m.group(1)) if m else 0


def dropped(d, reason):
    return metric(d, "gottwall_events_dropped_total", transport="http", reason=reason)


def connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def read_to_close(s):
    """Everything s receives until the server closes it."""
    out = b""
    while True:
        try:
            x = s.recv(65536)
        except ConnectionResetError:
            x = b""
        if not x:
            return out
        out += x


def slow_head(length):
    return (b"POST /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n"
            b"X-GottWall-Auth: " + s1_header(PUB, PRIV).encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n[" % length)


def served(port, source, n=20):
    """n POSTs over one keep-alive connection from source; all must be 200."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                   source_address=(source, 0))
    for _ in range(n):
        c.request("POST", "/api/v1/test_project/incr", body='{"n":"normal"}',
                  headers={"X-GottWall-Auth": s1_header(PUB, PRIV)})
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"OK")
    c.close()


def answer_408(msg):
    body = json.dumps({"error": msg}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nServer: GottWall/0.1.0\r\nDate: D\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body


def mask_date(out):
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: D\r\n", out, count=1)


def dribble_until_closed(socks, rounds):
    """Sends one body byte a second on every socket until the server has
    closed each one (or rounds seconds pass); returns what each got."""
    got = {s.fileno(): b"" for s in socks}
    by_fd = {s.fileno(): s for s in socks}
    poll = select.poll()  # select() stops at fd 1024
    for fd in by_fd:
        poll.register(fd, select.POLLIN)
    end = time.time() + rounds
    next_byte = time.time() + 1
    while by_fd and time.time() < end:
        for fd, _ in poll.poll(200):
            try:
                x = by_fd[fd].recv(65536)
            except (ConnectionResetError, socket.timeout):
                x = b""
            if x:
                got[fd] += x
            else:
                poll.unregister(fd)
                by_fd.pop(fd).close()  # ends the server's lingering close
        if time.time() >= next_byte:
            next_byte += 1
            for s in by_fd.values():
                try:
                    s.send(b" ")
                except OSError:
                    pass
    assert not by_fd, "%d connections still open after %d s" % (len(by_fd), rounds)
    return got


def test_one_address_cannot_hold_every_slot():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    # Every connection limit at its default; 20 s of grace before a body's
    # rate counts, so that the slow bodies outlive the checks below.
    d = Daemon(backends={"http": {}}, extra={"HTTP_HEADER_TIMEOUT": 20})
    slow, extra = [], []
    try:
        d.start()
        port = d.port("http")
        for _ in range(1024):
            s = connect(port, "127.0.0.1")
            try:
                s.sendall(slow_head(1000000))
            except OSError:
                pass  # refused: the server closed it
            slow.append(s)
        # A client on another address is served at once.
        served(port, "127.0.0.3")
        wait_for(lambda: dropped(d, "max_connections_per_address") == 256,
                 what="256 refused by address")
        # Another address under its cap gets 64 of the reserved slots.
        for i in range(64):
            s = connect(port, "127.0.0.2")
            s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(4096)
            assert got.startswith(b"HTTP/1.1 404 "), (i, got)
            extra.append(s)
        s = connect(port, "127.0.0.2")
        try:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        s.close()
        assert got == b"", got
        wait_for(lambda: dropped(d, "max_connections_per_address") == 257,
                 what="the 65th from 127.0.0.2 refused")
        served(port, "127.0.0.4")
        # Each slow body is cut off for its rate.
        got = dribble_until_closed(slow, 60)
        want = answer_408("request body arrived slower than 1024 bytes/s "
                          "(HTTP_MIN_BODY_RATE)")
        outs = [mask_date(x) for x in got.values()]
        assert outs.count(want) == 768, [x[:200] for x in outs if x != want][:3]
        assert outs.count(b"") == 256, [x[:200] for x in outs if x != want][:3]
        assert dropped(d, "slow_body") == 768
        assert dropped(d, "max_connections") == 0

        def served_again():
            try:
                served(port, "127.0.0.1")
                return True
            except (OSError, http.client.HTTPException):
                return False  # the closes above are not all processed yet
        wait_for(served_again, what="127.0.0.1 served again")
        wait_for(lambda: d.total("test_project", "normal") >= 60, what="60 stored")
        assert d.stop() == 0
    finally:
        for s in slow + extra:
            s.close()
        d.cleanup()


D = None


def test_total_deadline():
    """100 bytes every 0.25 s keeps far above HTTP_MIN_BODY_RATE (10 B/s)
    and never stalls, but the request is over at HTTP_REQUEST_TIMEOUT."""
    s = connect(D.port("http"), "127.0.0.1")
    s.sendall(slow_head(100000))
    got = b""
    t0 = time.time()
    for _ in range(80):  # 20 s at most
        if select.select([s], [], [], 0.25)[0]:
            got = read_to_close(s)
            break
        s.send(b" " * 100)
    took = time.time() - t0
    s.close()
    assert mask_date(got) == answer_408("request not received within 3 s "
                                        "(HTTP_REQUEST_TIMEOUT)"), (got, took)
    assert took >= 2.9, took
    wait_for(lambda: dropped(D, "request_timeout") == 1, what="request_timeout counted")
    assert dropped(D, "slow_body") == 0


def test_keep_alive_idle_longer_than_the_deadline():
    c = http.client.HTTPConnection("127.0.0.1", D.port("http"), timeout=10)
    for i in range(2):
        if i:
            time.sleep(3.5)  # idle longer than HTTP_REQUEST_TIMEOUT
        c.request("POST", "/api/v1/test_project/incr", body='{"n":"ka"}',
                  headers={"X-GottWall-Auth": s1_header(PUB, PRIV)})
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"OK")
    c.close()
    wait_for(lambda: D.total("test_project", "ka") == 2, what="2 stored")


def test_pipelining():
    body = b'{"n":"pipe"}'
    one = (b"POST /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n"
           b"X-GottWall-Auth: " + s1_header(PUB, PRIV).encode() +
           b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    s = connect(D.port("http"), "127.0.0.1")
    s.sendall(one + one + b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = read_to_close(s)
    s.close()
    parts = re.findall(rb"HTTP/1.1 (\d+) [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", out)
    assert parts == [b"200", b"200", b"404"], out
    assert out.endswith(NOT_FOUND), out
    wait_for(lambda: D.total("test_project", "pipe") == 2, what="2 stored")


def main():
    global D
    D = Daemon(backends={"http": {}},
               extra={"HTTP_REQUEST_TIMEOUT": 3, "HTTP_MIN_BODY_RATE": 10,
                      "HTTP_HEADER_TIMEOUT": 2})

    def start_short_deadline_daemon():
        D.start()
    run_tests_with(D, [test_one_address_cannot_hold_every_slot,
                       start_short_deadline_daemon, test_total_deadline,
                       test_keep_alive_idle_longer_than_the_deadline,
                       test_pipelining])


if __name__ == "__main__":
    main()
