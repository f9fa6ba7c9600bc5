"""HTTP framing that RFC 9112 says to reject, against the real daemon
(issue 16, item 10).

Each attack is sent as exact bytes on a new loopback connection to the
http ingest port. The safe outcome: exactly one answer, `400 Bad Request`
with `Connection: close` and the exact error message, then the server
closes the connection; nothing after the bad framing is answered (no
smuggled second request), no event of the request is stored, and each
refusal is counted as `bad_format` in `/metrics`:

- whitespace between a header name and its colon (`Transfer-Encoding :
  chunked`, and a tab), also in a chunked body's trailers;
- obs-fold (a header line starting with SP or HTAB), also before the
  first header and in trailers;
- bare LF line ends (in the request line, a header line, a chunk-size
  line, and the `0\\r\\n\\n` end of a chunked body followed by a request),
  and a CR without LF;
- chunk data not followed by CRLF;
- Transfer-Encoding in an HTTP/1.0 request, and chunked given twice.

What is legitimate keeps working: a request pipelined after a complete
chunked body gets its own answer, and empty lines (CRLF) before a request
line are ignored.
"""

import json
import re
import socket
import time

from gwtest import Daemon, run_tests_with, s1_header, wait_for

PUB, PRIV = "my_public_key", "secret_key"
D = None


def auth():
    return s1_header(PUB, PRIV).encode()


def post_head(extra):
    return (b"POST /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n"
            b"X-GottWall-Auth: " + auth() + b"\r\n" + extra)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def exchange(data, timeout=5):
    """Sends data on a new connection (not half-closed: the server must
    close by itself); returns (everything received, whether the server
    closed within timeout seconds of the last byte)."""
    s = socket.create_connection(("127.0.0.1", D.port("http")), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                x = s.recv(65536)
            except ConnectionResetError:
                return out, True
            except socket.timeout:
                return out, False
            if not x:
                return out, True
            out += x
    finally:
        s.close()


def answers(out):
    """Splits a byte stream of answers into (status, headers, body)."""
    res = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        assert sep, out[:300]
        lines = head.split(b"\r\n")
        assert lines[0].startswith(b"HTTP/1.1 "), out[:300]
        hdrs = dict(l.split(b": ", 1) for l in lines[1:])
        n = int(hdrs[b"Content-Length"])
        res.append((int(lines[0].split(b" ")[1]), hdrs, rest[:n]))
        out = rest[n:]
    return res


def metrics():
    return D.request("GET", "/metrics")[2].decode()


def metric(text, name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape("{%s}" % lab)),
                  text, re.M)
    return int(m.group(1)) if m else 0


def bad_format():
    return metric(metrics(), "gottwall_events_dropped_total", transport="http",
                  reason="bad_format")


P = "malformed HTTP request: "
WS_COLON = P + "whitespace between a header name and its colon"
OBS_FOLD = P + "a header line starts with whitespace (obs-fold); send each header on one line"
BARE_LF = P + "a line ends in LF without CR; end every line with CRLF"
BARE_CR = P + "CR not followed by LF; end every line with CRLF"
CHUNK_END = P + "chunk data is not followed by CRLF"
TE_10 = P + "Transfer-Encoding in an HTTP/1.0 request"
TE_TWICE = P + "chunked is given more than once in Transfer-Encoding"

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = [
    ("space before colon, then a pipelined request",
     post_head(b"Transfer-Encoding : chunked\r\n\r\n") + chunk(b'{"n":"f_te"}') +
     b"0\r\n\r\n" + SMUGGLED, WS_COLON),
    ("space before colon in Content-Length",
     post_head(b"Content-Length : 12\r\n\r\n") + b'{"n":"f_cl"}' + SMUGGLED, WS_COLON),
    ("tab before colon",
     post_head(b"Content-Length\t: 12\r\n\r\n") + b'{"n":"f_tab"}', WS_COLON),
    ("obs-fold",
     post_head(b"X-Note: a\r\n b\r\nContent-Length: 12\r\n\r\n") + b'{"n":"f_of"}', OBS_FOLD),
    ("obs-fold of Transfer-Encoding",
     post_head(b"Transfer-Encoding:\r\n chunked\r\n\r\n") + chunk(b'{"n":"f_of"}') +
     b"0\r\n\r\n" + SMUGGLED, OBS_FOLD),
    ("tab fold",
     post_head(b"X-Note: a\r\n\tb\r\nContent-Length: 12\r\n\r\n") + b'{"n":"f_of"}', OBS_FOLD),
    ("whitespace before the first header",
     b"POST /api/v1/test_project/incr HTTP/1.1\r\n Host: x\r\nX-GottWall-Auth: " +
     auth() + b"\r\nContent-Length: 12\r\n\r\n" + b'{"n":"f_ws"}', OBS_FOLD),
    ("bare LF everywhere",
     post_head(b"Content-Length: 12\r\n\r\n").replace(b"\r\n", b"\n") + b'{"n":"f_lf"}',
     BARE_LF),
    ("bare LF after one header",
     post_head(b"Content-Length: 12\nX-A: b\r\n\r\n") + b'{"n":"f_lf"}', BARE_LF),
    ("bare LF ending the head",
     post_head(b"Content-Length: 12\r\n\n") + b'{"n":"f_lf"}', BARE_LF),
    ("bare LF before a request",
     b"\n" + post_head(b"Content-Length: 12\r\n\r\n") + b'{"n":"f_lf"}', BARE_LF),
    ("CR without LF",
     post_head(b"Content-Length: 12\rX-A: b\r\n\r\n") + b'{"n":"f_cr"}', BARE_CR),
    ("bare LF ending a chunked body, then a request",
     post_head(b"Transfer-Encoding: chunked\r\n\r\n") + chunk(b'{"n":"f_tl"}') +
     b"0\r\n\n" + SMUGGLED, BARE_LF),
    ("bare LF in a chunk-size line",
     post_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"c;x=1\n" + b'{"n":"f_cs"}' +
     b"\r\n0\r\n\r\n", BARE_LF),
    ("chunk data without CRLF",
     post_head(b"Transfer-Encoding: chunked\r\n\r\n") + b"c\r\n" + b'{"n":"f_cd"}' +
     b"XY0\r\n\r\n" + SMUGGLED, CHUNK_END),
    ("obs-fold in a trailer",
     post_head(b"Transfer-Encoding: chunked\r\n\r\n") + chunk(b'{"n":"f_tr"}') +
     b"0\r\nX-T: a\r\n b\r\n\r\n" + SMUGGLED, OBS_FOLD),
    ("space before colon in a trailer",
     post_head(b"Transfer-Encoding: chunked\r\n\r\n") + chunk(b'{"n":"f_tr"}') +
     b"0\r\nX-T : a\r\n\r\n" + SMUGGLED, WS_COLON),
    ("Transfer-Encoding in HTTP/1.0",
     post_head(b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n")
     .replace(b"HTTP/1.1", b"HTTP/1.0", 1) + chunk(b'{"n":"f_10"}') + b"0\r\n\r\n" + SMUGGLED,
     TE_10),
    ("chunked twice",
     post_head(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") +
     chunk(b'{"n":"f_2x"}') + b"0\r\n\r\n" + SMUGGLED, TE_TWICE),
    ("chunked, chunked",
     post_head(b"Transfer-Encoding: chunked, chunked\r\n\r\n") +
     chunk(b'{"n":"f_2x"}') + b"0\r\n\r\n" + SMUGGLED, TE_TWICE),
]


def test_rejected_with_400_and_closed():
    before = bad_format()
    wrong = []
    for what, data, msg in CASES:
        out, closed = exchange(data)
        got = answers(out)
        want = [(400, b"close", {"error": msg})]
        have = [(st, hdrs.get(b"Connection"), json.loads(body) if st >= 400 else body)
                for st, hdrs, body in got]
        if have != want or not closed:
            wrong.append((what, have, "closed" if closed else "left open"))
    assert not wrong, "\n".join(repr(w) for w in wrong)
    wait_for(lambda: bad_format() == before + len(CASES),
             what="%d bad_format refusals" % len(CASES))
    time.sleep(0.3)  # a flush
    names = D.get_json("/api/v1/test_project/metrics")
    assert not [n for n in names if n.startswith("f_")], names


def test_pipelined_after_chunked_body_is_answered():
    """A complete chunked body, then a second request: two answers, in
    order, on a connection that stays open (RFC 9112 §9.3.2)."""
    data = (post_head(b"Transfer-Encoding: chunked\r\n\r\n") +
            chunk(b'{"n":"ok_c') + chunk(b'hunked"}') + b"0\r\nX-Trailer: t\r\n\r\n" +
            b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out, closed = exchange(data)
    assert closed
    got = answers(out)
    assert [(st, body) for st, _, body in got] == [
        (200, b"OK"),
        (404, b'{"error": "not found: events go to POST {PREFIX}/api/v1/{project}/{action}"}'),
    ], got
    assert b"Connection" not in got[0][1], got[0]
    assert got[1][1][b"Connection"] == b"close", got[1]
    wait_for(lambda: D.total("test_project", "ok_chunked") == 1, what="ok_chunked stored")


def test_empty_lines_before_a_request_line():
    data = (b"\r\n\r\n" + post_head(b"Content-Length: 15\r\n\r\n") + b'{"n":"ok_crlf"}' +
            b"\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out, closed = exchange(data)
    assert closed
    got = answers(out)
    assert [st for st, _, _ in got] == [200, 404], got
    wait_for(lambda: D.total("test_project", "ok_crlf") == 1, what="ok_crlf stored")


def main():
    global D
    D = Daemon(backends={"http": {}})
    D.start()
    run_tests_with(D, [test_rejected_with_400_and_closed,
                       test_pipelined_after_chunked_body_is_answered,
                       test_empty_lines_before_a_request_line])


if __name__ == "__main__":
    main()
