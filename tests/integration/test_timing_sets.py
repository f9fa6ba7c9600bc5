"""Timers, sets and the statsd clients' other forms against the real daemon
(issue 15), through the memory, Redis and PostgreSQL storages.

statsd timers (`|ms`, `|h`, `|d`) go over statsd TCP, half to each of two
`gottwall aggregator start` processes writing to one Redis (then one
PostgreSQL) while a `gottwall server start` reads; with the memory storage
one daemon with two ingest loops. The server reads back, at minute, hour
and day: the exact count, sum, min and max, and p50/p90/p99/p999 within
1 % of the exact nearest-rank quantile (the value at rank ceil(q n) of
the sorted values) computed here from the values sent. Sets (`|s`) read
back the distinct members of both aggregators exactly (every storage
counts a bucket's first 1,024 members exactly, Redis its first 512, in a
set next to its own HyperLogLog). Telegraf tags become filters;
DogStatsD events and service checks are counted as ignored and stored
nowhere. JSON events with "ts" put timings into other minutes, hours and
days, so that each bucket's percentiles are checked on its own values.
"""

import math
import random
import socket
import time

from gwtest import Daemon, run_tests, wait_for
from services import PostgresServer, RedisServer, plugin_built, skip

PROJECT = "test_project"
ALPHA = 0.01
QS = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
DAY0 = 1764547200  # 2025-12-01 00:00 UTC, a Monday


def nearest_rank(values, q):
    v = sorted(values)
    return v[max(1, math.ceil(q * len(v) - 1e-9)) - 1]


def latencies(seed, n):
    """n latencies in ms, quarters of a ms (sums are exact in doubles):
    lognormal with a 1 % slow tail."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = rng.lognormvariate(3, 0.8) if rng.random() >= 0.01 else \
            rng.uniform(1500, 3000)
        out.append(max(0.25, round(x * 4) / 4))
    return out


def statsd_tcp(port, lines):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(("\n".join(lines) + "\n").encode())


def wait_quiet_minute():
    """Statsd has no timestamps: the events of one test go into the
    current minute. Wait (at most 25 s) until there are 30 s left in it,
    so that they all land in the same one."""
    while time.time() % 60 > 30:
        time.sleep(0.5)
    return int(time.time() // 60 * 60)


def stat(srv, name, st, period, bucket, **params):
    r = srv.stats(PROJECT, name, period=period, stat=st, from_date=bucket,
                  to_date=bucket, **params)
    assert len(r["range"]) == 1 and r["range"][0][0] == bucket, r
    return r["range"][0][1]


def check_timing(srv, name, values, period, bucket, **params):
    """count, sum, min, max exact; the percentiles within ALPHA."""
    assert stat(srv, name, "count", period, bucket, **params) == len(values)
    assert stat(srv, name, "sum", period, bucket, **params) == sum(values)
    assert stat(srv, name, "min", period, bucket, **params) == min(values)
    assert stat(srv, name, "max", period, bucket, **params) == max(values)
    mean = stat(srv, name, "mean", period, bucket, **params)
    assert abs(mean - sum(values) / len(values)) < 1e-9 * mean, mean
    # The plain value of a timing is its mean, as an avg's.
    assert stat(srv, name, "value", period, bucket, **params) == mean
    worst = 0
    for st, q in QS.items():
        want = nearest_rank(values, q)
        got = stat(srv, name, st, period, bucket, **params)
        err = abs(got - want) / want
        assert err <= ALPHA * (1 + 1e-9), (name, period, st, got, want, err)
        worst = max(worst, err)
    return worst


def run_storage(storage, settings, members_exact):
    shared = storage != "memory"
    if shared:
        aggs = [Daemon(command=("aggregator", "start"), storage=storage,
                       storage_settings=settings, server=False,
                       backends={"statsd": {"PROJECT": PROJECT}, "http": {}})
                for _ in range(2)]
        srv = Daemon(command=("server", "start"), storage=storage,
                     storage_settings=settings, backends={})
        daemons = aggs + [srv]
    else:
        srv = Daemon(backends={"statsd": {"PROJECT": PROJECT}, "http": {}},
                     extra={"INGEST_LOOPS": 2})
        aggs = [srv, srv]
        daemons = [srv]
    try:
        for d in daemons:
            d.start()
        # ---- statsd timers, now, half through each aggregator ----
        a, b = latencies(1, 1500), latencies(2, 1000)
        minute = wait_quiet_minute()
        units = ["ms", "h", "d"]
        statsd_tcp(aggs[0].port("statsd"),
                   ["api.latency:%g|%s" % (v, units[i % 3]) for i, v in enumerate(a)])
        statsd_tcp(aggs[1].port("statsd"),
                   ["api.latency:%g|ms|#region:eu" % v for v in b])
        # ---- sets: 300 members on one, 200 (100 of them the same) on the other
        statsd_tcp(aggs[0].port("statsd"),
                   ["users:u%d|s" % i for i in range(300)] + ["users:u7|s"] * 5)
        statsd_tcp(aggs[1].port("statsd"),
                   ["users:u%d|s|#region:eu" % i for i in range(200, 400)])
        # ---- Telegraf tags, DogStatsD events and service checks ----
        statsd_tcp(aggs[1].port("statsd"),
                   ["logins,region=eu,tier=gold:3|c", "logins,region=us:2|c",
                    "_e{5,4}:title|text|#a:b", "_sc|db.up|0|#env:prod"])
        values = a + b
        wait_for(lambda: srv.stats(PROJECT, "api.latency", period="all",
                                   stat="count")["range"][0][1] == len(values)
                 if srv.stats(PROJECT, "api.latency", period="all",
                              stat="count")["range"] else False,
                 timeout=30, step=0.2, what="every timer stored")
        hour, day = minute // 3600 * 3600, minute // 86400 * 86400
        worst = max(check_timing(srv, "api.latency", values, p, bk)
                    for p, bk in (("minute", minute), ("hour", hour), ("day", day)))
        check_timing(srv, "api.latency", b, "hour", hour,
                     filter_name="region", filter_value="eu")
        kinds = srv.get_json("/api/v1/%s/kinds" % PROJECT)
        assert kinds["api.latency"] == "timing" and kinds["users"] == "set", kinds
        assert kinds["logins"] == "counter", kinds

        want = 400
        wait_for(lambda: srv.total(PROJECT, "users") > 0, timeout=30,
                 what="the set stored")
        wait_for(lambda: stat(srv, "users", "count", "day", day) == 505,
                 timeout=30, what="every set event stored")
        for p, bk in (("minute", minute), ("hour", hour), ("day", day)):
            got = stat(srv, "users", "value", p, bk)
            if members_exact:
                assert got == want, (p, got)
            else:
                assert abs(got - want) <= 0.02 * want, (p, got)
        eu = stat(srv, "users", "value", "day", day, filter_name="region",
                  filter_value="eu")
        assert (eu == 200) if members_exact else abs(eu - 200) <= 4, eu

        wait_for(lambda: srv.total(PROJECT, "logins") == 5, timeout=30,
                 what="the Telegraf-tagged counters")
        assert srv.total(PROJECT, "logins", filter_name="region",
                         filter_value="eu") == 3
        assert srv.total(PROJECT, "logins", filter_name="tier",
                         filter_value="gold") == 3
        metrics = srv.get_json("/api/v1/%s/metrics" % PROJECT)
        assert sorted(metrics) == ["api.latency", "logins", "users"], metrics
        if not shared:  # an aggregator serves no /metrics
            assert srv.metric("gottwall_events_ignored_total", transport="statsd",
                              reason="dogstatsd_event") == 2
            assert srv.metric("gottwall_events_dropped_total", transport="statsd",
                              reason="bad_line") == 0

        # ---- timings with ts: other minutes, hours and days ----
        spread = {}
        rng = random.Random(3)
        events = []
        for v in latencies(4, 900):
            ts = DAY0 + rng.choice((0, 1, 2)) * 86400 + rng.choice((0, 5)) * 3600 + \
                rng.choice((10, 70))
            events.append({"n": "db.query", "a": "timing", "v": v, "ts": ts})
            for p, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
                spread.setdefault((p, ts // size * size), []).append(v)
        for i in range(0, len(events), 100):
            st, body = aggs[i // 100 % 2].send_http(PROJECT, events[i:i + 100])
            assert st == 200, (st, body)
        wait_for(lambda: srv.total(PROJECT, "db.query") != 0 and
                 srv.stats(PROJECT, "db.query", period="all", stat="count")
                 ["range"][0][1] == 900, timeout=30, what="the timings with ts")
        for (p, bk), vals in sorted(spread.items()):
            worst = max(worst, check_timing(srv, "db.query", vals, p, bk))
        print("%s: %d statsd timers and 900 with ts through %d aggregator(s): "
              "count, sum, min, max exact; the worst percentile %.3f %% off; "
              "set of 400 members read as %s" % (
                  storage, len(values), 2 if shared else 1, 100 * worst,
                  stat(srv, "users", "value", "day", day)))
        for d in daemons:
            assert d.stop() == 0, d.log()[-3000:]
    finally:
        for d in daemons:
            d.cleanup()


def test_memory():
    run_storage("memory", {}, True)


def test_redis():
    if not plugin_built("redis"):
        skip("the redis storage was not built")
    with RedisServer(persist=False) as r:
        run_storage("redis", r.settings(), True)


def test_postgres():
    if not plugin_built("postgres"):
        skip("the postgres storage was not built")
    with PostgresServer() as pg:
        run_storage("postgres", pg.settings(), True)


def test_timer_on_an_avg_metric_stays_avg():
    """A statsd |ms metric that exists as avg keeps that kind."""
    with Daemon(backends={"statsd": {"PROJECT": PROJECT}, "http": {}}) as d:
        st, body = d.send_http(PROJECT, {"n": "old.latency", "v": 10}, action="avg")
        assert st == 200, body
        wait_for(lambda: d.total(PROJECT, "old.latency") == 10, what="the avg")
        statsd_tcp(d.port("statsd"), ["old.latency:20|ms", "old.latency:60|ms"])
        wait_for(lambda: d.total(PROJECT, "old.latency") == 30, what="the mean")
        assert d.get_json("/api/v1/%s/kinds" % PROJECT) == {"old.latency": "avg"}
        st, body = d.request("GET", "/api/v1/%s/stats?name=old.latency&period=all"
                             "&stat=p99" % PROJECT)[0::2]
        assert st == 400, (st, body)


if __name__ == "__main__":
    import sys
    tests = [test_memory, test_redis, test_postgres,
             test_timer_on_an_avg_metric_stays_avg]
    only = [t for t in tests if t.__name__ in sys.argv[1:]]
    run_tests(only or tests)
