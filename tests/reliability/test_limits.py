"""Every SPEC limit at limit-1, limit and limit+1, against the real daemon.

Each limit is set small in the config so the boundary is cheap to reach:
event size, filters per event, values per filter, name lengths (metric,
filter name, filter value), HTTP body size, header bytes and header count,
MAX_CONNECTIONS (+10 refused, counted in /metrics), MAX_SERIES (1,000,000
distinct metric names over one TCP stream into a project allowed 1000:
exactly 1000 stored, exactly 999,000 counted as dropped) and
MAX_PENDING_SERIES (storage down: the excess refused at admission with 503,
counted, and everything answered 200 stored when it returns). Counts are read back through the API.
"""

import json
import os
import re
import socket
import time

from gwtest import (BUILDDIR, Daemon, run_tests, s1_header, s2_header,
                    wait_for)

PUB, PRIV = "my_public_key", "secret_key"
D = None


def raw(port, data, timeout=5):
    """Sends raw bytes on a new connection; returns (status, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    if not out:
        return None, b""
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def post(body, project="test_project"):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    st, _, data = D.request("POST", "/api/v1/%s/incr" % project, body=body,
                            headers={"X-GottWall-Auth": s1_header(PUB, PRIV)},
                            port=D.port("http"))
    return st, data


def err(data):
    return json.loads(data)["error"]


def metrics():
    return D.request("GET", "/metrics")[2].decode()


def metric(text, name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape("{%s}" % lab) if lab else ""),
                  text, re.M)
    return int(m.group(1)) if m else 0


def total(name, project="test_project", **params):
    q = "name=%s&period=all" % name
    for k, v in params.items():
        q += "&%s=%s" % (k, v)
    r = D.get_json("/api/v1/%s/stats?%s" % (project, q))
    return r["range"][0][1] if r["range"] else 0


def settle(name, want, **params):
    wait_for(lambda: total(name, **params) == want, timeout=10,
             what="%s == %r" % (name, want))
    time.sleep(0.2)
    got = total(name, **params)
    assert got == want, (name, got, want)


def sized_event(name, size):
    """An event object whose JSON text is exactly size bytes."""
    base = '{"n":"%s","pad":""}' % name
    ev = '{"n":"%s","pad":"%s"}' % (name, "x" * (size - len(base)))
    assert len(ev) == size
    return ev


def test_event_size():
    lim = 256
    for size, ok in ((lim - 1, True), (lim, True), (lim + 1, False)):
        st, data = post(sized_event("size", size))
        if ok:
            assert st == 200, (size, st, data)
        else:
            assert st == 400, (size, st, data)
            assert err(data) == "the event is %d bytes; at most %d are allowed" % (size, lim), data
    # Inside a batch each event is measured on its own.
    st, data = post("[%s,%s]" % (sized_event("size", lim), sized_event("size", lim + 1)))
    assert st == 400 and err(data) == \
        "event 2: the event is %d bytes; at most %d are allowed" % (lim + 1, lim), data
    settle("size", 2)


def test_filters_per_event():
    lim = 4
    for n, ok in ((lim - 1, True), (lim, True), (lim + 1, False)):
        st, data = post({"n": "filters", "f": {"f%d" % i: "v" for i in range(n)}})
        assert st == (200 if ok else 400), (n, st, data)
        if not ok:
            assert "filters" in err(data) and str(lim) in err(data), data
    settle("filters", 2)
    assert total("filters", filter_name="f3", filter_value="v") == 1


def test_values_per_filter():
    lim = 3
    for n, ok in ((lim - 1, True), (lim, True), (lim + 1, False)):
        st, data = post({"n": "values", "f": {"k": ["v%d" % i for i in range(n)]}})
        assert st == (200 if ok else 400), (n, st, data)
        if not ok:
            assert str(lim) in err(data), data
    settle("values", 2)
    assert total("values", filter_name="k", filter_value="v2") == 1


def test_name_lengths():
    lim = 16
    for n, ok in ((lim - 1, True), (lim, True), (lim + 1, False)):
        name = "m" * n
        st, data = post({"n": name})
        assert st == (200 if ok else 400), ("metric", n, st, data)
        st, data = post({"n": "names", "f": {"k" * n: "v"}})
        assert st == (200 if ok else 400), ("filter name", n, st, data)
        st, data = post({"n": "names", "f": {"k": "v" * n}})
        assert st == (200 if ok else 400), ("filter value", n, st, data)
        if not ok:
            assert str(lim) in err(data), data
    settle("names", 4)
    settle("m" * lim, 1)


def test_http_body_size():
    """MAX_BODY counts the whole body: a batch padded with spaces."""
    lim = 1000
    port = D.port("http")
    for n, want in ((lim - 1, 200), (lim, 200), (lim + 1, 413)):
        body = b'[{"n":"body"}' + b" " * (n - 14) + b"]"
        assert len(body) == n
        req = (b"POST /api/v1/test_project/incr HTTP/1.1\r\nX-GottWall-Auth: %s\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n"
               % (s1_header(PUB, PRIV).encode(), len(body))) + body
        st, data = raw(port, req)
        assert st == want, (n, st, data)
    settle("body", 2)


def head_of(nbytes, nheaders=1):
    """A GET whose head is exactly nbytes as the server counts it: the URL
    plus every header line "name: value\\r\\n" (Connection: close included,
    19 bytes), in nheaders headers besides Connection."""
    url = "/x"
    names = ["H%d" % i for i in range(nheaders)]
    fixed = len(url) + 19 + sum(len(n) + 4 for n in names)
    values = ["v"] * (nheaders - 1)
    last = nbytes - fixed - len(values)
    assert last >= 0
    values.append("v" * last)
    lines = "".join("%s: %s\r\n" % (n, v) for n, v in zip(names, values))
    return ("GET %s HTTP/1.1\r\n%sConnection: close\r\n\r\n" % (url, lines)).encode()


def test_header_size():
    lim = 1024
    port = D.port("http")
    for n, want in ((lim - 1, 404), (lim, 404), (lim + 1, 431)):
        st, data = raw(port, head_of(n))
        assert st == want, (n, st, data[:200])
        if want == 431:
            assert err(data) == "request headers are larger than %d bytes" % lim, data


def test_header_count():
    lim = 8
    port = D.port("http")
    # Connection: close is one of them.
    for n, want in ((lim - 1, 404), (lim, 404), (lim + 1, 431)):
        st, data = raw(port, head_of(300, n - 1))
        assert st == want, (n, st, data[:200])
        if want == 431:
            assert b"more than %d request headers" % lim in data, data


def test_max_connections():
    lim = 20
    port = D.port("http")
    time.sleep(2.5)  # connections of the tests before finish their lingering close
    before = metric(metrics(), "gottwall_events_dropped_total", transport="http",
                    reason="max_connections")
    held = []
    for _ in range(lim):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(s)
    # A request on each proves all lim were accepted.
    for i, s in enumerate(held):
        s.sendall(b"GET /x HTTP/1.1\r\n\r\n")
        got = s.recv(100)
        assert got.startswith(b"HTTP/1.1 404"), "connection %d not served: %r" % (i + 1, got)
    extra = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra.append(s)
    refused = 0
    for s in extra:
        try:
            s.sendall(b"GET /x HTTP/1.1\r\n\r\n")
            refused += s.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            refused += 1
        s.close()
    assert refused == 10, refused
    wait_for(lambda: metric(metrics(), "gottwall_events_dropped_total", transport="http",
                            reason="max_connections") == before + 10,
             what="10 max_connections drops")
    for s in held:
        s.close()
    # Room again for a normal client.
    def served():
        try:
            return post({"n": "after_conns"})[0] == 200
        except OSError:
            return False  # the closes above are not all processed yet
    wait_for(served, what="a client served")
    settle("after_conns", 1)


def test_max_series_million():
    """1,000,000 distinct metric names over one TCP connection into a project
    with MAX_SERIES = 1000: exactly 1000 accepted, 999,000 dropped."""
    port = D.port("tcpip")
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(s2_header("shop", "shop_public", "shop_private").encode() + b"--stream-auth--")
    assert s.recv(2) == b"OK"
    n = 1000000
    t0 = time.time()
    step = 20000
    for start in range(0, n, step):
        s.sendall("".join('{"n":"s%d"}--chunk--' % i
                          for i in range(start, start + step)).encode())
    s.close()
    text = wait_for(lambda: (lambda t: metric(t, "gottwall_events_received_total",
                                              transport="tcpip") >= n and t)(metrics()),
                    timeout=60, what="1,000,000 events received")
    assert metric(text, "gottwall_events_received_total", transport="tcpip") == n
    assert metric(text, "gottwall_events_accepted_total", transport="tcpip") == 1000
    assert metric(text, "gottwall_events_dropped_total", transport="tcpip",
                  reason="max_series") == n - 1000
    r = D.get_json("/api/v1/shop/metrics")
    assert len(r) == 1000, len(r)
    assert sorted(r) == sorted("s%d" % i for i in range(1000)), sorted(r)[:5]
    print("  1,000,000 names in %.1f s" % (time.time() - t0))


def test_max_pending_series():
    """Storage down; 150 metrics with PERIODS = all (one delta each) and
    MAX_PENDING_SERIES = 100: the first 100 are answered 200, the other 50
    get 503 with Retry-After at admission (counted as max_pending_series),
    and nothing answered 200 is dropped: all 100 are stored once the
    storage is back, and new series are taken again. At the bound, a series
    the loop's table holds is still taken; one that waits in the storage
    thread's batch needs room again."""
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs",
                      "storage_fixture.so")
    assert os.path.exists(so), "%s is missing: make check builds it" % so
    # One ingest loop: which series "the loop's table holds" depends on
    # the loop a connection lands on (each has its own table).
    d = Daemon(storage=so, backends={"http": {}},
               extra={"MAX_PENDING_SERIES": 100, "PERIODS": ["all"],
                      "INGEST_LOOPS": 1})
    down = os.path.join(d.tmp, "down")
    d.storage_settings["DOWN_FILE"] = down
    open(down, "w").close()

    # One ts for every event: a table's key holds the event's minute, so
    # an event of p99 in the next minute would be a new key needing room.
    ts = int(time.time()) // 60 * 60 + 30

    def send(lo, hi):
        body = json.dumps([{"n": "p%d" % i, "ts": ts} for i in range(lo, hi)])
        return d.request("POST", "/api/v1/test_project/incr", body=body,
                         headers={"X-GottWall-Auth": s1_header(PUB, PRIV)},
                         port=d.port("http"))

    with d:
        # p99 is in the loop's table (held while the storage is down), so
        # it is still taken at the bound; p0 waits in the storage thread's
        # batch, so a new event of it needs room again and is refused.
        for lo, hi, want in ((0, 99, 200), (99, 100, 200), (100, 101, 503),
                             (101, 149, 503), (99, 100, 200), (0, 1, 503)):
            if lo == 99 and want == 200 and hi == 100 and \
                    "storage unreachable" not in d.log():
                # From the flush after the storage was seen down, the
                # loop keeps its table: p99 then waits in it.
                wait_for(lambda: "storage unreachable" in d.log(),
                         what="the storage seen down")
                time.sleep(0.3)
            st, hdrs, data = send(lo, hi)
            assert st == want, (lo, hi, st, data)
            if want == 503:
                assert hdrs.get("retry-after") == "1", hdrs
                assert json.loads(data)["error"] == (
                    "the storage is behind: 100 series wait to be stored, the "
                    "most MAX_PENDING_SERIES (100) allows; send it again "
                    "later"), data
            time.sleep(0.3)  # one flush each: limit-1, limit, limit+1
        text = d.request("GET", "/metrics")[2].decode()
        assert metric(text, "gottwall_events_dropped_total", transport="http",
                      reason="max_pending_series") == 50, text
        assert metric(text, "gottwall_events_accepted_total",
                      transport="http") == 101, text
        assert metric(text, "gottwall_storage_events_dropped_total") == 0, text
        assert metric(text, "gottwall_storage_pending_series") == 100, text
        wait_for(lambda: "MAX_PENDING_SERIES (100) reached while the storage "
                 "is unreachable: " in d.log(), what="the refusals logged")
        os.unlink(down)
        wait_for(lambda: len(d.get_json("/api/v1/test_project/metrics")) == 100,
                 timeout=15, what="100 metrics stored")
        names = sorted(d.get_json("/api/v1/test_project/metrics"))
        assert names == sorted("p%d" % i for i in range(100)), names[-5:]
        assert d.total("test_project", "p0") == 1
        assert d.total("test_project", "p99") == 2
        # Caught up: new series are taken again.
        wait_for(lambda: send(100, 150)[0] == 200, timeout=15,
                 what="new series accepted after the storage is back")
        wait_for(lambda: d.total("test_project", "p149") == 1, timeout=15,
                 what="p149 stored")
        text = d.request("GET", "/metrics")[2].decode()
        assert metric(text, "gottwall_storage_events_dropped_total") == 0, text


def test_max_pending_series_healthy_flush():
    """MAX_PENDING_SERIES counts series, not deltas: with all seven periods
    kept and the storage up, one flush of 900 new series under a bound of
    1000 stores every event (each series is 7 deltas; counting deltas
    would have dropped all but 142 of them)."""
    d = Daemon(backends={"http": {}},
               extra={"MAX_PENDING_SERIES": 1000, "FLUSH_INTERVAL": 1000})
    with d:
        body = json.dumps([{"n": "h%d" % i} for i in range(900)])
        st, _, data = d.request("POST", "/api/v1/test_project/incr", body=body,
                                headers={"X-GottWall-Auth": s1_header(PUB, PRIV)},
                                port=d.port("http"))
        assert st == 200, data
        wait_for(lambda: len(d.get_json("/api/v1/test_project/metrics")) == 900,
                 timeout=15, what="900 metrics stored")
        text = d.request("GET", "/metrics")[2].decode()
        assert metric(text, "gottwall_storage_events_dropped_total") == 0, text
        assert "MAX_PENDING_SERIES" not in d.log()
        assert d.total("test_project", "h899") == 1


def main():
    global D
    # The top-level MAX_BODY applies to the http transport, whose own
    # MAX_BODY defaults to 0 ("use the top-level one").
    D = Daemon(backends={"http": {}, "tcpip": {}},
               projects={"test_project": (PUB, PRIV), "shop": ("shop_public", "shop_private")},
               extra={"MAX_EVENT_SIZE": 256, "MAX_FILTERS": 4,
                      "MAX_FILTER_VALUES": 3, "MAX_NAME_LENGTH": 16,
                      "HTTP_MAX_HEADER_SIZE": 1024,
                      "HTTP_MAX_HEADERS": 8, "MAX_CONNECTIONS": 20,
                      "MAX_SERIES": 1000, "MAX_BODY": 1000})
    try:
        D.start()
        run_tests_no_exit([test_event_size, test_filters_per_event,
                           test_values_per_filter, test_name_lengths,
                           test_http_body_size, test_header_size,
                           test_header_count, test_max_connections,
                           test_max_series_million])
        assert D.stop() == 0
    finally:
        D.cleanup()
    run_tests([test_max_pending_series, test_max_pending_series_healthy_flush])


FAILED = []


def run_tests_no_exit(tests):
    import traceback
    for t in tests:
        start = time.time()
        try:
            t()
            print("PASS: %s (%.2f s)" % (t.__name__, time.time() - start))
        except Exception as e:  # noqa: BLE001
            FAILED.append(t.__name__)
            print("FAIL: %s: %s" % (t.__name__, e))
            traceback.print_exc()


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if FAILED:
            print("failed: %s" % ", ".join(FAILED))
            raise SystemExit(1)
        raise
