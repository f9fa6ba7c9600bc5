"""statsd, tcpip and HTTP ingestion on every ingest loop (issue 18).

With INGEST_LOOPS = 3, loop 0 accepts TCP connections (statsd over TCP,
tcpip, the http transport) and hands connection k to loop k mod 3, and
every loop reads the statsd UDP socket. For each transport: the counts
read back are exact, each loop's thread (the main thread for loop 0,
gw-ingest-1 and gw-ingest-2) spends CPU under load, and what must hold
across loops does: one kind per metric, MAX_SERIES, MAX_CONNECTIONS (the
count is given back by whichever loop closes), S3 replays refused
whichever loops the copies land on, gauge deltas of one gauge sent on
several loops all counted, and of gauges with equal "ts" the last one
received wins, whichever loop took it.
"""

import json
import socket
import sys
import time

import test_ingest_tcp as T
from gwtest import (Daemon, loop_cpu, run_tests, s2_header, s3_header, wait_for)

LOOPS = 3
PROJECT = "test_project"


def all_loops_worked(d, before, load, rounds=30):
    """Runs load() (bounded: at most rounds times) until every loop's CPU
    time grew past before; returns how many times it ran."""
    for n in range(1, rounds + 1):
        load()
        time.sleep(0.1)  # the loops may still be reading
        now = loop_cpu(d.proc.pid)
        if sorted(now) == list(range(LOOPS)) and all(now[i] > before[i] for i in now):
            return n
    raise AssertionError("not every loop worked: before %r, after %r"
                         % (before, loop_cpu(d.proc.pid)))


def reopen(connect, held):
    """Retries connect() (which raises when the server closes the
    connection) until it works, within 5 s, and keeps what it made: the
    place a closed connection gave back may take a moment to return."""
    def once():
        try:
            held.append(connect())
        except (AssertionError, OSError):
            return False
        return True

    wait_for(once, timeout=5, what="a connection after one closed")


def settle(d, name, want, project=PROJECT, **params):
    wait_for(lambda: d.total(project, name, **params) == want, timeout=10,
             what="%s == %r (last %r)" % (name, want, d.total(project, name, **params)))
    time.sleep(0.3)  # one more flush: nothing else may arrive
    got = d.total(project, name, **params)
    assert got == want, (name, got, want)


def counter(d, name, **labels):
    _, _, data = d.request("GET", "/metrics")
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in data.decode().splitlines():
        if line.startswith(name + "{"):
            lab, val = line[len(name) + 1:].rsplit("} ", 1)
            if ",".join(sorted(lab.split(","))) == want:
                return float(val)
    return 0


# ---- statsd ----

def test_statsd_udp_and_tcp_spread():
    with Daemon(backends={"statsd": {"PROJECT": PROJECT}},
                extra={"INGEST_LOOPS": LOOPS}) as d:
        assert "for project %s, on %d ingest loops" % (PROJECT, LOOPS) in d.log(), d.log()
        port = d.port("statsd")
        sent = [0]
        before = loop_cpu(d.proc.pid)

        def udp_load():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dgram = b"\n".join([b"sdu:1|c"] * 40)
            for _ in range(500):
                s.sendto(dgram, ("127.0.0.1", port))
            s.close()
            sent[0] += 500 * 40

        all_loops_worked(d, before, udp_load)
        settle(d, "sdu", sent[0])

        # TCP: 6 connections (two on each loop), each 20000 counter lines
        # and 20000 "+1" deltas of one gauge, all at once.
        before = loop_cpu(d.proc.pid)
        tcp_sent = [0]

        def tcp_load():
            conns = [socket.create_connection(("127.0.0.1", port), timeout=10)
                     for _ in range(6)]
            chunk = b"sdt:1|c\nlvl:+1|g\n" * 20000
            for c in conns:
                c.sendall(chunk)
            for c in conns:
                c.close()
            tcp_sent[0] += 6 * 20000

        all_loops_worked(d, before, tcp_load)
        settle(d, "sdt", tcp_sent[0])
        # The gauge's last value is the sum of every delta, whichever loop
        # took each one.
        settle(d, "lvl", tcp_sent[0])


def test_statsd_kinds_and_max_series_across_loops():
    with Daemon(backends={"statsd": {"PROJECT": PROJECT}},
                extra={"INGEST_LOOPS": LOOPS, "MAX_SERIES": 40}) as d:
        port = d.port("statsd")
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10)
                 for _ in range(LOOPS)]
        # One new metric as a counter on one loop and a timer on another:
        # one kind wins, every line of the other kind is refused.
        for k in range(200):
            conns[k % LOOPS].sendall(b"race:1|c\n" if k % 2 == 0 else b"race:7|ms\n")
        # 120 new metrics over three loops, three times: 40 are kept.
        for rnd in range(3):
            for i in range(120):
                conns[i % LOOPS].sendall(b"m%03d:1|c\n" % i)
        for c in conns:
            c.close()
        wait_for(lambda: counter(d, "gottwall_events_dropped_total", transport="statsd",
                                 reason="kind_conflict") >= 1, timeout=10,
                 what="a kind conflict")

        def kept():
            return [i for i in range(120) if d.total(PROJECT, "m%03d" % i)]

        wait_for(lambda: len(kept()) == 39 or len(kept()) == 40, timeout=10,
                 what="the metrics MAX_SERIES keeps")
        time.sleep(0.5)
        total = d.total(PROJECT, "race")
        conflicts = counter(d, "gottwall_events_dropped_total", transport="statsd",
                            reason="kind_conflict")
        # 100 counter lines of 1 or 100 timer values of 7 (average 7).
        assert (total, conflicts) in ((100, 100), (7, 100)), (total, conflicts)
        # "race" is one of the 40 series: 39 of the m-metrics are kept,
        # each with all three of its values.
        names = kept()
        assert len(names) == 39, names
        assert all(d.total(PROJECT, "m%03d" % i) == 3 for i in names)


# ---- tcpip ----

def tcp_stream(d, n, name):
    pub, priv = d.projects[PROJECT]
    s = socket.create_connection(("127.0.0.1", d.port("tcpip")), timeout=10)
    s.sendall(s2_header(PROJECT, pub, priv).encode() + T.AUTH)
    assert s.recv(2) == b"OK"
    s.sendall(T.CHUNK.join([b'{"n": "%s"}' % name.encode()] * n) + T.CHUNK)
    return s


def test_tcpip_spread_and_replay():
    with Daemon(backends={"tcpip": {"MAX_CONNECTIONS": 5}},
                extra={"INGEST_LOOPS": LOOPS}) as d:
        assert "TCP event streams on 127.0.0.1:%d (read by %d ingest loops)" % (
            d.port("tcpip"), LOOPS) in d.log(), d.log()
        before = loop_cpu(d.proc.pid)
        sent = [0]

        def load():
            conns = [tcp_stream(d, 5000, "tcs") for _ in range(4)]
            for c in conns:
                c.close()
            sent[0] += 4 * 5000

        all_loops_worked(d, before, load)
        settle(d, "tcs", sent[0])

        # MAX_CONNECTIONS = 5 over all loops: 5 open (on loops 0, 1, 2, 0,
        # 1), the 6th is closed at once and counted; once one closes (on
        # its own loop) a new one is taken.
        held = [tcp_stream(d, 1, "held") for _ in range(5)]
        refused0 = counter(d, "gottwall_events_dropped_total", transport="tcpip",
                           reason="max_connections")
        extra = socket.create_connection(("127.0.0.1", d.port("tcpip")), timeout=10)
        extra.settimeout(10)
        assert extra.recv(10) == b""  # closed without a word
        extra.close()
        wait_for(lambda: counter(d, "gottwall_events_dropped_total", transport="tcpip",
                                 reason="max_connections") == refused0 + 1,
                 timeout=5, what="the refusal counted")
        held.pop(2).close()
        wait_for(lambda: d.total(PROJECT, "held") == 5, timeout=5, what="held events")

        reopen(lambda: tcp_stream(d, 1, "held"), held)
        for s in held:
            s.close()
        settle(d, "held", 6)

        # One S3 header on three connections, which land on three loops:
        # the nonce is claimed once; the other two get FAIL.
        body = b""
        hdr = s3_header("shop", "shop_private", body).encode()
        answers = []
        for _ in range(LOOPS):
            s = socket.create_connection(("127.0.0.1", d.port("tcpip")), timeout=10)
            s.sendall(hdr + T.AUTH)
            answers.append(s.recv(4))
            s.close()
        assert sorted(answers) == [b"FAIL", b"FAIL", b"OK"], answers


# ---- http ----

class Conn:
    """One keep-alive HTTP connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def post(self, path, body, headers=None):
        body = body.encode() if isinstance(body, str) else body
        head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (path, len(body))
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        self.s.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self.buf:
            x = self.s.recv(65536)
            assert x, "closed"
            self.buf += x
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        n = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                n = int(line.split(":", 1)[1])
        while len(self.buf) < n:
            x = self.s.recv(65536)
            assert x, "closed"
            self.buf += x
        data, self.buf = self.buf[:n], self.buf[n:]
        return status, data

    def close(self):
        self.s.close()


def basic(d, project=PROJECT):
    import base64
    pub, priv = d.projects[project]
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (pub, priv)).encode()).decode()}


def test_http_spread_kinds_replay_and_gauges():
    with Daemon(backends={"http": {}},
                extra={"INGEST_LOOPS": LOOPS, "FLUSH_INTERVAL": 3600000}) as d:
        assert "(connections spread over %d ingest loops)" % LOOPS in d.log(), d.log()
        port = d.port("http")
        auth = basic(d)
        # Connections 0, 1, 2 are on loops 0, 1, 2 (round robin from the
        # first accepted).
        conns = [Conn(port) for _ in range(LOOPS)]
        for c in conns:
            assert c.post("/api/v1/%s/incr" % PROJECT, '{"n": "warm"}', auth) == (200, b"OK")
        # Gauges of equal ts: the last one received wins, whichever loop
        # took it (the tables of all loops are merged at the stop below).
        ts = int(time.time()) - 60
        for name, order in (("ga", (2, 1, 0)), ("gb", (0, 1, 2)), ("gc", (1, 0, 2))):
            for v, k in enumerate(order, 1):
                ev = json.dumps({"n": name, "v": v, "ts": ts})
                assert conns[k].post("/api/v1/%s/gauge" % PROJECT, ev, auth) == (200, b"OK")
        # A new metric as incr on one loop, avg on the next: one kind wins.
        results = []
        for k in range(30):
            action = "incr" if k % 2 == 0 else "avg"
            results.append(conns[k % LOOPS].post("/api/v1/%s/%s" % (PROJECT, action),
                                                 '{"n": "hrace", "v": 4}', auth)[0])
        assert sorted(set(results)) == [200, 400] and results.count(200) == 15, results
        # One S3 request on three connections (three loops): one 200.
        body = json.dumps({"n": "s3once", "v": 1})
        h = {"X-GottWall-Auth": s3_header("shop", "shop_private", body)}
        got = sorted(c.post("/api/v1/shop/incr", body, h)[0] for c in conns)
        assert got == [200, 403, 403], got
        for c in conns:
            c.close()

        # Load on six keep-alive connections until every loop worked.
        sent = [0]
        batch = json.dumps([{"n": "hs"}] * 100)
        before = loop_cpu(d.proc.pid)

        def load():
            cs = [Conn(port) for _ in range(6)]
            for _ in range(40):
                for c in cs:
                    assert c.post("/api/v1/%s/incr" % PROJECT, batch, auth) == (200, b"OK")
            for c in cs:
                c.close()
            sent[0] += 6 * 40 * 100

        all_loops_worked(d, before, load)
        assert d.stop() == 0
        d.start()
        assert d.total(PROJECT, "hs") == sent[0]
        assert d.total(PROJECT, "warm") == 3
        assert d.total("shop", "s3once") == 1
        assert (d.total(PROJECT, "ga"), d.total(PROJECT, "gb"), d.total(PROJECT, "gc")) \
            == (3, 3, 3)
        assert d.total(PROJECT, "hrace") in (15 * 4, 4)


def test_http_max_connections_across_loops():
    with Daemon(backends={"http": {}},
                extra={"INGEST_LOOPS": LOOPS,
                       "MAX_CONNECTIONS": 4,
                       "MAX_CONNECTIONS_PER_ADDRESS": 4}) as d:
        port = d.port("http")
        auth = basic(d)
        conns = [Conn(port) for _ in range(4)]
        for c in conns:
            assert c.post("/api/v1/%s/incr" % PROJECT, '{"n": "mc"}', auth) == (200, b"OK")
        # The fifth is refused whichever loop it would have gone to.
        refused = counter(d, "gottwall_events_dropped_total", transport="http",
                          reason="max_connections")
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.settimeout(10)
        assert s.recv(10) == b""
        s.close()
        wait_for(lambda: counter(d, "gottwall_events_dropped_total", transport="http",
                                 reason="max_connections") == refused + 1,
                 timeout=5, what="the refusal counted")
        # Closing the one on loop 1 gives its place back, from loop 1.
        conns.pop(1).close()

        def one():
            c = Conn(port)
            assert c.post("/api/v1/%s/incr" % PROJECT, '{"n": "mc"}', auth) == (200, b"OK")
            return c

        reopen(one, conns)
        for c in conns:
            c.close()
        settle(d, "mc", 5)


def test_udp_port_taken_once():
    """Each loop has a UDP socket of its own on the port (an SO_REUSEPORT
    group): a second daemon on the same port must still fail with
    "address in use", not join the group and take datagrams silently."""
    with Daemon(backends={"udp": {}, "statsd": {"PROJECT": PROJECT}},
                extra={"INGEST_LOOPS": LOOPS}) as a:
        for name, settings, proto in (("udp", {}, "udp"),
                                      ("statsd", {"PROJECT": PROJECT, "TCP": False}, "udp")):
            settings = dict(settings, PORT=a.port(name))
            b = Daemon(backends={name: settings}, extra={"INGEST_LOOPS": LOOPS})
            try:
                b.start(wait=False)
                rc = b.proc.wait(15)
                assert rc != 0, rc
                want = "bind 127.0.0.1:%d%s: Address already in use" % (
                    a.port(name), "/udp" if name == "udp" else "")
                if name == "statsd":
                    want = "bind udp 127.0.0.1:%d: Address already in use" % a.port(name)
                assert want in b.log(), b.log()
            finally:
                b.proc = None
                b.cleanup()
        # The first daemon still takes everything sent to it.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(300):
            s.sendto(b"\n".join([b"taken:1|c"] * 10), ("127.0.0.1", a.port("statsd")))
        s.close()
        settle(a, "taken", 3000)


if __name__ == "__main__":
    run_tests([test_statsd_udp_and_tcp_spread,
               test_statsd_kinds_and_max_series_across_loops,
               test_tcpip_spread_and_replay,
               test_http_spread_kinds_replay_and_gauges,
               test_http_max_connections_across_loops,
               test_udp_port_taken_once])
