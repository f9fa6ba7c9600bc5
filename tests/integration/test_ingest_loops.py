"""INGEST_LOOPS: one UDP socket read by several ingest loops (threads).

Every udp transport test (test_ingest_udp.py) again with INGEST_LOOPS = 3;
then what only several loops can get wrong: the other loops' threads do
read (their CPU time grows under a burst); the kind rule and MAX_SERIES
hold across loops (one kind wins for a metric whose events race on several
loops, exactly MAX_SERIES metrics are kept); what the other loops hold at
SIGTERM is stored; the default (0) makes one loop per CPU, one with a
JOURNAL; and INGEST_LOOPS above 1 with JOURNAL is refused with a message
that says what to change.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import test_ingest_udp as U
from gwtest import GOTTWALL, Daemon, loop_cpu, run_tests, s2_header, s3_header, wait_for

D = None
LOOPS = 3


def worker_threads(pid):
    """{name: cpu ticks} of the daemon's gw-ingest-N threads."""
    return {"gw-ingest-%d" % k: v for k, v in loop_cpu(pid).items() if k}


def burst(name, datagrams, per):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    body = U.CHUNK.join([b'{"n": "%s"}' % name.encode()] * per)
    for _ in range(datagrams):
        s.sendto(U.good() + b"--chunk-auth--" + body, ("127.0.0.1", D.port("udp")))
    s.close()


def test_other_loops_read():
    assert "read by %d ingest loops" % LOOPS in D.log(), D.log()[-2000:]
    threads = worker_threads(D.proc.pid)
    assert sorted(threads) == ["gw-ingest-%d" % i for i in range(1, LOOPS)], threads
    sent = 0
    for _ in range(40):  # bounded: stops as soon as both other loops worked
        burst("spread", 500, 20)
        sent += 500 * 20
        now = worker_threads(D.proc.pid)
        if all(now[k] > 0 for k in now):
            break
    assert all(v > 0 for v in worker_threads(D.proc.pid).values()), worker_threads(D.proc.pid)
    U.settle("test_project", "spread", sent)


def test_kind_rule_across_loops():
    # 400 datagrams, each one event: "incr" (v 1) and "avg" (v 7) in turn,
    # for a metric nobody has used. Whichever loop records it first fixes
    # its kind; every event of the other kind is refused, on every loop.
    before = U.metric("gottwall_events_dropped_total", transport="udp",
                      reason="kind_conflict")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(400):
        ev = b'{"n": "race", "a": "incr", "v": 1}' if i % 2 == 0 else \
             b'{"n": "race", "a": "avg", "v": 7}'
        s.sendto(U.good() + b"--chunk-auth--" + ev, ("127.0.0.1", D.port("udp")))
    s.close()
    wait_for(lambda: U.metric("gottwall_events_dropped_total", transport="udp",
                              reason="kind_conflict") - before == 200,
             timeout=5, what="200 kind conflicts")
    time.sleep(0.3)
    total = D.total("test_project", "race")
    assert total in (200, 7), total  # 200 incr of 1, or the average of 200 x 7
    assert U.metric("gottwall_events_dropped_total", transport="udp",
                    reason="kind_conflict") - before == 200


def test_s3_replay_refused_on_every_loop():
    # One S3-signed datagram sent 300 times in a burst, which the loops
    # share: the nonce cache is common to all of them, so it counts once.
    payload = U.CHUNK.join([b'{"n": "s3once"}'] * 20)
    data = s3_header("shop", "shop_private", payload).encode() + b"--chunk-auth--" + payload
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(300):
        s.sendto(data, ("127.0.0.1", D.port("udp")))
    s.close()
    wait_for(lambda: U.metric("gottwall_auth_failures_total", transport="udp",
                              reason="replay") >= 299 + 1,  # 1 from the udp tests
             timeout=5, what="299 replays refused")
    time.sleep(0.3)
    assert D.total("shop", "s3once") == 20
    assert U.metric("gottwall_auth_failures_total", transport="udp", reason="replay") == 300


def test_sighup_reaches_every_loop():
    # New keys after SIGHUP: bursts signed with them are all taken, on
    # whichever loop reads them; the old key is refused everywhere.
    projects = {"test_project": ("my_public_key", "secret_key"),
                "shop": ("shop_public", "shop_private")}
    with Daemon(backends={"udp": {}}, projects=dict(projects),
                extra={"INGEST_LOOPS": LOOPS}) as d:
        d.projects["shop"] = ("shop_public2", "shop_private2")
        d.write_config()
        d.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded" in d.log(), timeout=5, what="reload")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        body = U.CHUNK.join([b'{"n": "rekeyed"}'] * 20)
        new = s2_header("shop", "shop_public2", "shop_private2").encode()
        old = s2_header("shop", "shop_public", "shop_private").encode()
        for _ in range(500):
            s.sendto(new + b"--chunk-auth--" + body, ("127.0.0.1", d.port("udp")))
        for _ in range(500):
            s.sendto(old + b"--chunk-auth--" + body, ("127.0.0.1", d.port("udp")))
        s.close()
        wait_for(lambda: d.total("shop", "rekeyed") == 10000, timeout=10,
                 what="10000 events signed with the new key")
        time.sleep(0.3)
        assert d.total("shop", "rekeyed") == 10000


def test_max_series_across_loops():
    # A daemon of its own: MAX_SERIES = 50, 200 new metrics from 200
    # datagrams spread over the loops: exactly 50 are kept.
    with Daemon(backends={"udp": {}},
                extra={"INGEST_LOOPS": LOOPS, "MAX_SERIES": 50}) as d:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pub, priv = d.projects["test_project"]
        hdr = U.s2_header("test_project", pub, priv).encode()
        for rnd in range(3):
            for i in range(200):
                s.sendto(hdr + b"--chunk-auth--" + b'{"n": "m%03d"}' % i,
                         ("127.0.0.1", d.port("udp")))
        s.close()

        def kept():
            return sum(d.total("test_project", "m%03d" % i) for i in range(200))

        wait_for(lambda: kept() == 150, timeout=5, what="50 metrics x 3 events")
        time.sleep(0.3)
        assert kept() == 150
        names = [i for i in range(200) if d.total("test_project", "m%03d" % i) > 0]
        assert len(names) == 50, len(names)
        assert all(d.total("test_project", "m%03d" % i) == 3 for i in names)


def test_stop_stores_other_loops():
    # FLUSH_INTERVAL of an hour: only the stop hands the loops' tables over.
    with Daemon(backends={"udp": {}},
                extra={"INGEST_LOOPS": LOOPS, "FLUSH_INTERVAL": 3600000}) as d:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pub, priv = d.projects["test_project"]
        body = U.CHUNK.join([b'{"n": "atstop"}'] * 20)
        data = U.s2_header("test_project", pub, priv).encode() + b"--chunk-auth--" + body
        for _ in range(1000):
            s.sendto(data, ("127.0.0.1", d.port("udp")))
        s.close()
        time.sleep(0.5)
        assert worker_threads(d.proc.pid), "no other loops"
        assert d.stop() == 0
        d.start()
        wait_for(lambda: d.total("test_project", "atstop") == 20000, timeout=5,
                 what="20000 events after the restart")


def test_default_one_loop_per_cpu():
    # INGEST_LOOPS = 0 (the default): one loop per CPU the daemon may run
    # on, at most 8; one when a JOURNAL is kept.
    cpus = len(os.sched_getaffinity(0))
    want = min(cpus, 8)
    for extra, loops, tail in (({}, want, ""),
                               ({"JOURNAL": "gw.journal"}, 1, "; one with a JOURNAL")):
        with Daemon(backends={"udp": {}}, extra=extra) as d:
            line = "INGEST_LOOPS = 0: %d ingest loop%s (%d CPU%s%s)" % (
                loops, "" if loops == 1 else "s", cpus, "" if cpus == 1 else "s", tail)
            wait_for(lambda: line in d.log(), timeout=5, what=line)
            assert len(worker_threads(d.proc.pid)) == loops - 1, worker_threads(d.proc.pid)


def test_journal_refused():
    d = Daemon(backends={"udp": {}},
               extra={"INGEST_LOOPS": 2, "JOURNAL": "journal/gw"})
    try:
        d.write_config()
        r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r
        msg = "INGEST_LOOPS = 2 cannot be used with JOURNAL: the journal is " \
              "written by one loop; set INGEST_LOOPS = 1 or remove JOURNAL"
        assert msg in r.stderr, r.stderr
        assert "%s:" % d.conf_path in r.stderr, r.stderr
    finally:
        d.cleanup()


def main():
    global D
    D = Daemon(backends={"udp": {}}, extra={"INGEST_LOOPS": LOOPS})
    U.D = D
    D.start()
    code = 1
    try:
        run_tests([U.test_both_delimiters, U.test_several_chunks,
                   U.test_bad_auth_stores_nothing, U.test_s3_signs_payload,
                   U.test_large_datagram, U.test_burst,
                   test_other_loops_read, test_kind_rule_across_loops,
                   test_s3_replay_refused_on_every_loop,
                   test_sighup_reaches_every_loop,
                   test_max_series_across_loops, test_stop_stores_other_loops,
                   test_default_one_loop_per_cpu, test_journal_refused])
    except SystemExit as e:
        code = e.code
    finally:
        code = U.finish(D, code)
    sys.exit(code)


if __name__ == "__main__":
    main()
