"""Series floods against the real daemon (issue 16, item 1).

The attacks of the security review, with the shipped limits: signed HTTP
batches of 35 events, each with 32 filters of 64 new values, on one metric
(which took RSS from 6 MiB to 2.4 GiB before the live-series limits); the
same attacker adapting (single events, a new metric whenever one is full);
and 2,000 unauthenticated statsd datagrams of 32 new tags each. Every
refusal is checked by its exact message and /metrics counter, every event
answered 200 (or counted accepted) is read back from the read API, and the
daemon's RSS stays bounded.
"""

import json
import os
import socket
import time

from gwtest import Daemon, run_tests, s1_header, wait_for

PUB, PRIV = "my_public_key", "secret_key"
PROJECT = "test_project"
# AddressSanitizer keeps freed memory in quarantine (256 MiB) and adds its
# shadow: RSS is checked only in the plain build; the counts always.
MEASURE_RSS = not os.environ.get("GW_SANITIZED")


def rss_mib(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def event(name, seq):
    """One event with 32 filters of 64 values never sent before."""
    return {"n": name,
            "f": {"t%d" % f: ["v%d_%d_%d" % (seq, f, v) for v in range(64)]
                  for f in range(32)}}


def post(d, body):
    st, _, data = d.request("POST", "/api/v1/%s/incr" % PROJECT,
                            body=json.dumps(body),
                            headers={"X-GottWall-Auth": s1_header(PUB, PRIV)},
                            port=d.port("http"))
    return st, json.loads(data)["error"] if st != 200 else data.decode()


def test_http_flood():
    """25 batches of 35 events x 32 filters x 64 new values on one metric:
    each batch is refused whole at its 5th event by MAX_SERIES_PER_METRIC
    (10,000), nothing of it is kept, and the daemon stays small. The
    attacker then sends single events on fresh metrics: each metric takes
    4 (1 + 4 x 2,048 = 8,193 series), the 5th is refused; after 12 metrics
    (98,316 series) the project's MAX_SERIES (100,000) refuses the 5th
    event of the 12th and the 1st of the 13th.
    Every event answered 200 is stored, exactly."""
    with Daemon(backends={"http": {}}) as d:
        rss0 = rss_mib(d)
        seq = 0
        for b in range(25):
            batch = []
            for _ in range(35):
                batch.append(event("flood", seq))
                seq += 1
            st, msg = post(d, batch)
            assert st == 400, (b, st, msg)
            assert msg.startswith(
                'event 5: metric "flood" already has 10000 series, the most '
                'MAX_SERIES_PER_METRIC allows; '), msg
            assert msg.endswith(
                ' is new (raise MAX_SERIES_PER_METRIC to accept more)'), msg
        rss1 = rss_mib(d)
        assert rss1 - rss0 < 64 or not MEASURE_RSS, (rss0, rss1)
        assert d.metric("gottwall_events_dropped_total", transport="http",
                      reason="max_series_per_metric") == 25 * 35
        assert d.metric("gottwall_events_accepted_total",
                      transport="http") == 0

        accepted = {}
        refusals = {}
        for m in range(13):
            name = "f%d" % m
            for k in range(5):
                st, msg = post(d, event(name, seq))
                seq += 1
                if st == 200:
                    accepted[name] = accepted.get(name, 0) + 1
                    continue
                assert st == 400, (name, k, st, msg)
                refusals[name] = msg
                break
        assert accepted == {"f%d" % m: 4 for m in range(12)}, accepted
        for m in range(11):
            assert refusals["f%d" % m].startswith(
                'metric "f%d" already has 10000 series, the most '
                'MAX_SERIES_PER_METRIC allows; ' % m), refusals
        for m in (11, 12):
            assert refusals["f%d" % m].startswith(
                'project "test_project" already has 100000 series, the most '
                'MAX_SERIES allows; '), refusals
        assert d.metric("gottwall_events_dropped_total", transport="http",
                      reason="max_series") == 2
        assert d.metric("gottwall_events_accepted_total",
                      transport="http") == 48
        # Every acknowledged event is stored: totals and one filter value
        # of each metric read back.
        for m in range(12):
            name = "f%d" % m
            wait_for(lambda: d.total(PROJECT, name) == 4, timeout=30,
                     what="%s stored" % name)
        first = 25 * 35  # the seq of f0's first event
        assert d.total(PROJECT, "f0", filter_name="t31",
                       filter_value="v%d_31_63" % first) == 1
        rss2 = rss_mib(d)
        print("  RSS %.1f MiB at start, %.1f after the batches, %.1f with "
              "98,316 series (%.0f bytes a series)" %
              (rss0, rss1, rss2, (rss2 - rss0) * 1048576 / 98316))
        # 100 MiB plus the limit's worth: MAX_SERIES x 2 KiB.
        assert rss2 < 100 + 100000 * 2 / 1024.0 or not MEASURE_RSS, rss2


def statsd_flood(loops):
    """2,000 statsd datagrams of one counter with 32 tags of new values
    each (no credentials needed): 312 are taken (1 + 312 x 32 = 9,985
    series), the other 1,688 counted as max_series_per_metric, and the 312
    read back. With one ingest loop they are the first 312 sent; with
    several, datagrams are admitted in the order the loops read them, but
    the limit is one count over all loops."""
    d = Daemon(backends={"statsd": {"PROJECT": PROJECT}},
               extra={"INGEST_LOOPS": loops})
    with d:
        rss0 = rss_mib(d)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(2000):
            tags = ",".join("t%d:x%d_%d" % (t, i, t) for t in range(32))
            sock.sendto(("m:1|c|#%s" % tags).encode(),
                        ("127.0.0.1", d.port("statsd")))
            if i % 50 == 49:
                time.sleep(0.01)  # loopback UDP: do not overrun the socket
        sock.close()
        wait_for(lambda: d.metric("gottwall_events_received_total",
                                transport="statsd") == 2000,
                 timeout=20, what="2,000 lines received")
        assert d.metric("gottwall_events_accepted_total",
                      transport="statsd") == 312
        assert d.metric("gottwall_events_dropped_total", transport="statsd",
                      reason="max_series_per_metric") == 1688
        wait_for(lambda: d.total(PROJECT, "m") == 312, timeout=20,
                 what="312 stored")
        if loops == 1:
            assert d.total(PROJECT, "m", filter_name="t0",
                           filter_value="x311_0") == 1
            assert d.total(PROJECT, "m", filter_name="t0",
                           filter_value="x312_0") == 0
        assert rss_mib(d) - rss0 < 64 or not MEASURE_RSS


def test_statsd_flood():
    statsd_flood(1)


def test_statsd_flood_three_loops():
    statsd_flood(3)


if __name__ == "__main__":
    run_tests([test_http_flood, test_statsd_flood, test_statsd_flood_three_loops])
