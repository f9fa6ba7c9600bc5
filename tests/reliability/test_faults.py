"""Faults against the real daemon, each bounded, on loopback.

- SIGTERM under load on every transport (http, tcpip, udp, statsd): the
  daemon's last line reports N accepted, N stored, 0 dropped, 0 not
  stored; after a restart (memory snapshot) the stored totals add up to N
  exactly, and the HTTP metric holds at least every event answered 200.
- A storage that takes 5 s per store (the fixture storage's DELAY_MS) under
  15 s of steady load: RSS stays bounded (VmRSS sampled) and every
  acknowledged event is stored once the load stops.
- 1,000 slow HTTP connections from 127.0.0.1 (one byte every 2 s) do not
  stop a normal client on 127.0.0.2: 200 requests all answered 200, p99
  under 250 ms.
- SIGHUP reload under load: 20 reloads while clients send over keep-alive
  connections; no connection is dropped, no event is lost.
"""

import http.client
import json
import os
import re
import resource
import signal
import socket
import threading
import time

from gwtest import (BUILDDIR, Daemon, free_port, run_tests, s1_header,
                    s2_header, wait_for)

PUB, PRIV = "my_public_key", "secret_key"


def total(d, name, project="test_project"):
    r = d.get_json("/api/v1/%s/stats?name=%s&period=all" % (project, name))
    return r["range"][0][1] if r["range"] else 0


class Sender(threading.Thread):
    """Sends until stop is set or the daemon goes away; counts what it sent
    (and, over HTTP, what was answered 200)."""

    def __init__(self, kind, port):
        super().__init__(daemon=True)
        self.kind, self.port = kind, port
        self.sent = self.acked = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        try:
            getattr(self, "run_" + self.kind)()
        except (OSError, http.client.HTTPException):
            pass  # the daemon stopped

    def run_http(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = json.dumps([{"n": "sig_http"}] * 10)
        while not self.stop.is_set():
            c.request("POST", "/api/v1/test_project/incr", body=body,
                      headers={"X-GottWall-Auth": s1_header(PUB, PRIV)})
            r = c.getresponse()
            data = r.read()
            if r.status == 200:
                self.acked += 10
            elif r.status != 503:
                self.errors.append((r.status, data[:200]))

    def run_tcpip(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(s2_header("test_project", PUB, PRIV).encode() + b"--stream-auth--")
        assert s.recv(2) == b"OK"
        chunk = b'{"n":"sig_tcp"}--chunk--' * 50
        while not self.stop.is_set():
            s.sendall(chunk)
            self.sent += 50
            time.sleep(0.001)

    def run_udp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not self.stop.is_set():
            dgram = (s2_header("test_project", PUB, PRIV) + "--chunk-auth--"
                     + '{"n":"sig_udp"}--chunk--' * 20).encode()
            s.sendto(dgram, ("127.0.0.1", self.port))
            self.sent += 20
            time.sleep(0.002)

    def run_statsd(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dgram = b"sig_statsd:1|c\n" * 20
        while not self.stop.is_set():
            s.sendto(dgram, ("127.0.0.1", self.port))
            self.sent += 20
            time.sleep(0.002)


STOPPED = re.compile(r"stopped: (\d+) events accepted, (\d+) stored in \d+ batches, "
                     r"(\d+) dropped, (\d+) not stored")


def test_sigterm_under_load_every_transport():
    d = Daemon(backends={"http": {}, "tcpip": {}, "udp": {},
                         "statsd": {"PROJECT": "test_project"}})
    try:
        d.start()
        time.sleep(0.2)
        senders = [Sender("http", d.port("http")), Sender("http", d.port("http")),
                   Sender("tcpip", d.port("tcpip")), Sender("udp", d.port("udp")),
                   Sender("statsd", d.port("statsd"))]
        for s in senders:
            s.start()
        time.sleep(2.0)
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(30)
        for s in senders:
            s.stop.set()
            s.join(10)
            assert not s.errors, s.errors
        assert rc == 0, rc
        d.stop()
        m = STOPPED.search(d.log())
        assert m, d.log()[-2000:]
        accepted, stored, dropped, lost = map(int, m.groups())
        assert (stored, dropped, lost) == (accepted, 0, 0), m.group(0)
        acked = sum(s.acked for s in senders)
        assert acked > 0 and all(s.sent > 0 for s in senders[2:]), \
            [(s.kind, s.sent, s.acked) for s in senders]
        d.start()
        got = {n: total(d, n) for n in ("sig_http", "sig_tcp", "sig_udp", "sig_statsd")}
        assert sum(got.values()) == accepted, (got, accepted)
        assert got["sig_http"] >= acked, (got, acked)
        assert all(v > 0 for v in got.values()), got
        assert d.stop() == 0
        print("  accepted %d (%s), http acked %d" % (accepted, got, acked))
    finally:
        d.cleanup()


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_slow_storage_bounded_memory():
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs",
                      "storage_fixture.so")
    assert os.path.exists(so), "%s is missing: make check builds it" % so
    d = Daemon(storage=so, storage_settings={"DELAY_MS": 5000},
               backends={"http": {}}, extra={"FLUSH_INTERVAL": 100,
                                             "SHUTDOWN_TIMEOUT": 20000})
    try:
        d.start()
        pid = d.proc.pid
        senders = [Sender("http", d.port("http")) for _ in range(2)]
        for s in senders:
            s.start()
        samples = []
        t0 = time.time()
        while time.time() - t0 < 15:
            time.sleep(0.5)
            samples.append(vmrss_kb(pid))
        for s in senders:
            s.stop.set()
            s.join(10)
            assert not s.errors, s.errors
        acked = sum(s.acked for s in senders)
        warm = max(samples[:6])   # the first 3 s
        peak = max(samples)
        if os.environ.get("GW_SANITIZED"):
            # AddressSanitizer keeps freed memory in its quarantine (up to
            # 256 MiB), so RSS says nothing about the daemon's own bound
            # there; the normal run checks it.
            print("  RSS bound not checked under sanitizers (quarantine)")
        else:
            assert peak <= warm + 16 * 1024, \
                "VmRSS grew from %d kB to %d kB" % (warm, peak)
        # Every acknowledged event lands once the slow stores catch up.
        wait_for(lambda: total(d, "sig_http") == acked, timeout=30, step=0.5,
                 what="stored == %d acknowledged" % acked)
        assert d.stop() == 0
        print("  %d events acknowledged during 5 s stores; VmRSS %d -> %d kB"
              % (acked, warm, peak))
    finally:
        d.cleanup()


def test_slow_connections_do_not_stop_a_client():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    d = Daemon(backends={"http": {}}, extra={"HTTP_HEADER_TIMEOUT": 10})
    slow = []
    try:
        d.start()
        port = d.port("http")
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=("127.0.0.1", 0))
            s.setblocking(False)
            s.send(b"P")
            slow.append(s)
        stop = threading.Event()

        def dribble():
            for k in range(3):
                if stop.wait(2.0):
                    return
                for s in slow:
                    try:
                        s.send(b"OST /api/v1/"[k:k + 1])
                    except OSError:
                        pass
        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        # The normal client comes from another address than the slow ones:
        # one address cannot hold every slot (MAX_CONNECTIONS_PER_ADDRESS,
        # RESERVED_CONNECTIONS), and that is what keeps others served.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                       source_address=("127.0.0.2", 0))
        times = []
        for i in range(200):
            a = time.time()
            c.request("POST", "/api/v1/test_project/incr", body='{"n":"slowc"}',
                      headers={"X-GottWall-Auth": s1_header(PUB, PRIV)})
            r = c.getresponse()
            r.read()
            times.append(time.time() - a)
            assert r.status == 200, r.status
            time.sleep(0.02)
        stop.set()
        t.join()
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        assert p99 < 0.25, "p99 %.3f s with 1000 slow connections" % p99
        wait_for(lambda: total(d, "slowc") == 200, what="200 stored")
        assert d.stop() == 0
        print("  200 requests beside 1000 slow connections: p99 %.1f ms" % (p99 * 1000))
    finally:
        for s in slow:
            s.close()
        d.cleanup()


def test_reload_under_load():
    d = Daemon(backends={"http": {}, "tcpip": {}})
    try:
        d.start()
        senders = [Sender("http", d.port("http")), Sender("http", d.port("http")),
                   Sender("tcpip", d.port("tcpip"))]
        for s in senders:
            s.start()
        for i in range(20):
            time.sleep(0.1)
            d.signal(signal.SIGHUP)
        time.sleep(0.3)
        for s in senders:
            assert s.is_alive(), "a %s connection was dropped by a reload" % s.kind
        for s in senders:
            s.stop.set()
            s.join(10)
            assert not s.errors, s.errors
        acked = senders[0].acked + senders[1].acked
        sent_tcp = senders[2].sent
        wait_for(lambda: total(d, "sig_http") == acked, what="http %d" % acked)
        wait_for(lambda: total(d, "sig_tcp") == sent_tcp, what="tcp %d" % sent_tcp)
        assert d.log().count("SIGHUP: reloaded") == 20, d.log()[-2000:]
        assert d.stop() == 0
        print("  20 reloads: %d http events acked, %d tcp events, all stored" % (acked, sent_tcp))
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_sigterm_under_load_every_transport,
               test_reload_under_load,
               test_slow_connections_do_not_stop_a_client,
               test_slow_storage_bounded_memory])
