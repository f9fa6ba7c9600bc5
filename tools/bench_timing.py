#!/usr/bin/env python3
"""Accuracy of GottWall's timing percentiles and set counts (issue 15),
against exact answers computed here.

For each distribution (uniform, lognormal, bimodal with a 1 % slow tail)
N latencies (seeded) spread over one day are sent as GottWall JSON timing
events with their "ts" (statsd has no timestamps; the day is what makes
minute, hour and day buckets differ) to three aggregators sharing one
storage (redis, postgres), or to one aggregator with three ingest loops
(memory: it lives in one process). The server then reads p50, p90, p99
and p999 of every minute, hour and day bucket, and this compares each to
the exact nearest-rank quantile (the value at rank ceil(q n) of the
bucket's sorted values) and prints the largest relative error per period;
exit 1 if any is over 1 %. The count read back must equal what was sent.
Then M distinct members of a set over the same day: the distinct count of
each hour and of the day against the exact one (error must be under 2 %).

Run from a build directory (real redis-server and PostgreSQL are started
on free loopback ports):

    GOTTWALL_PLUGIN_PATH=$PWD/.libs GOTTWALL=$PWD/gottwall \\
      PYTHONPATH=$SRC/tests/lib python3 $SRC/tools/bench_timing.py \\
      --storage memory|redis|postgres [--n 1000000] [--members 1000000]
"""
import argparse
import math
import random
import sys
import threading
import time

from gwtest import Daemon, wait_for
from services import PostgresServer, RedisServer

P = "test_project"
DAY = 1764547200  # 2025-12-01, UTC
QS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))
PERIODS = (("minute", 60), ("hour", 3600), ("day", 86400))


def draw(kind, rng):
    if kind == "uniform":
        return rng.uniform(1, 1000)
    if kind == "lognormal":
        return rng.lognormvariate(3, 1)
    return rng.uniform(1500, 3000) if rng.random() < 0.01 else abs(rng.gauss(20, 4)) + 0.001


def nearest_rank(sorted_v, q):
    return sorted_v[max(1, math.ceil(q * len(sorted_v) - 1e-9)) - 1]


def send_all(daemons, events):
    """events in batches of 1000, round robin over the aggregators, from
    one thread per aggregator."""
    chunks = [events[i:i + 1000] for i in range(0, len(events), 1000)]

    def work(k):
        for c in chunks[k::len(daemons)]:
            st, body = daemons[k].send_http(P, c)
            assert st == 200, (st, body)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(daemons))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def series(srv, name, period, stat, lo, hi):
    r = srv.stats(P, name, period=period, stat=stat, from_date=lo, to_date=hi)
    return {b: v for b, v in r["range"] if v is not None}


def bench_timing(srv, aggs, dist, n, seed):
    rng = random.Random(seed)
    name = "lat_" + dist
    vals = [(DAY + rng.randrange(86400), round(draw(dist, rng), 6)) for _ in range(n)]
    t0 = time.time()
    send_all(aggs, [{"n": name, "a": "timing", "v": v, "ts": ts} for ts, v in vals])
    sent_s = time.time() - t0
    wait_for(lambda: srv.stats(P, name, period="day", stat="count", from_date=DAY,
                               to_date=DAY)["range"][0][1] == n, timeout=300, step=0.5,
             what="every %s timing stored" % dist)
    worst = {}
    for period, size in PERIODS:
        buckets = {}
        for ts, v in vals:
            buckets.setdefault(ts // size * size, []).append(v)
        for b in buckets.values():
            b.sort()
        hi = DAY + 86400 - size
        counts = series(srv, name, period, "count", DAY, hi)
        assert sum(counts.values()) == n and len(counts) == len(buckets), (period, len(counts))
        w = 0.0
        for st, q in QS:
            got = series(srv, name, period, st, DAY, hi)
            for b, v in buckets.items():
                exact = nearest_rank(v, q)
                w = max(w, abs(got[b] - exact) / exact)
        worst[period] = (len(buckets), w)
    return sent_s, worst


def bench_set(srv, aggs, m, seed):
    rng = random.Random(seed)
    ev, hours = [], {}
    for i in range(m):
        ts = DAY + rng.randrange(86400)
        ev.append({"n": "visitors", "a": "set", "v": "user-%d" % i, "ts": ts})
        hours[ts // 3600 * 3600] = hours.get(ts // 3600 * 3600, 0) + 1
    send_all(aggs, ev)
    wait_for(lambda: srv.stats(P, "visitors", period="day", stat="count", from_date=DAY,
                               to_date=DAY)["range"][0][1] == m, timeout=300, step=0.5,
             what="every set event stored")
    got = series(srv, "visitors", "hour", "value", DAY, DAY + 86400 - 3600)
    worst_h = max(abs(got[h] - c) / c for h, c in hours.items())
    day = series(srv, "visitors", "day", "value", DAY, DAY)[DAY]
    return worst_h, day, abs(day - m) / m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", default="memory", choices=("memory", "redis", "postgres"))
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--members", type=int, default=1000000)
    a = ap.parse_args()
    server = None
    if a.storage == "redis":
        server = RedisServer(persist=False)
    elif a.storage == "postgres":
        server = PostgresServer()
    settings = server.__enter__().settings() if server else {}
    extra = {"FLUSH_INTERVAL": 1000}
    if a.storage == "memory":
        srv = Daemon(storage="memory", extra=dict(extra, INGEST_LOOPS=3))
        aggs, daemons = [srv], [srv]
    else:
        aggs = [Daemon(command=("aggregator", "start"), storage=a.storage,
                       storage_settings=settings, server=False, extra=extra)
                for _ in range(3)]
        srv = Daemon(command=("server", "start"), storage=a.storage,
                     storage_settings=settings, backends={}, extra=extra)
        daemons = aggs + [srv]
    bad = False
    try:
        for d in daemons:
            d.start()
        print("## %s: %d timings a distribution over one day, %d aggregator%s%s"
              % (a.storage, a.n, len(aggs), "s" if len(aggs) > 1 else "",
                 " (3 ingest loops)" if a.storage == "memory" else ""))
        print("| distribution | sent in | minute buckets, worst error | hour | day |")
        print("|---|---:|---:|---:|---:|")
        for k, dist in enumerate(("uniform", "lognormal", "bimodal")):
            sent_s, worst = bench_timing(srv, aggs, dist, a.n, 10 + k)
            print("| %s | %.1f s | %d, %.3f %% | %d, %.3f %% | %d, %.3f %% |" % (
                (dist, sent_s) + sum(((worst[p][0], 100 * worst[p][1]) for p, _ in PERIODS), ())))
            bad |= any(w > 0.01 * (1 + 1e-9) for _, w in worst.values())
        if a.members:
            wh, day, wd = bench_set(srv, aggs, a.members, 7)
            print("\nset of %d members over the day: worst hour %.3f %%, the day %d "
                  "(%.3f %%)" % (a.members, 100 * wh, day, 100 * wd))
            bad |= wh >= 0.02 or wd >= 0.02
    finally:
        for d in daemons:
            d.stop()
            d.cleanup()
        if server:
            server.__exit__(None, None, None)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
