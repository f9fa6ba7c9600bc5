#!/usr/bin/env python3
"""Bytes per timing cell and per set cell in the postgres storage (issue
15): a real daemon stores one minute of N lognormal latencies (seeded) and
sets of M members through a real PostgreSQL, and pg_column_size reads the
gottwall_sketches row of that one bucket. Run from a build directory:

    GOTTWALL_PLUGIN_PATH=$PWD/.libs GOTTWALL=$PWD/gottwall \\
      PYTHONPATH=$SRC/tests/lib python3 $SRC/tools/pg_kinds_cost.py
"""
import random

from gwtest import Daemon, wait_for
from services import PostgresServer

P, MIN = "test_project", 1764547200 + 600

with PostgresServer() as pg, \
        Daemon(storage="postgres", storage_settings=pg.settings()) as d:
    rng = random.Random(1)
    rows = []
    size = ("SELECT pg_column_size(k.data) FROM gottwall_sketches k JOIN"
            " gottwall_series s ON s.id = k.series_id WHERE s.metric = '%s'"
            " AND s.series = 0 AND k.period = 0")
    for n in (100, 1000, 10000):
        name = "lat%d" % n
        ev = [{"n": name, "a": "timing", "v": round(rng.lognormvariate(3, 0.8), 3),
               "ts": MIN} for _ in range(n)]
        for i in range(0, n, 1000):
            assert d.send_http(P, ev[i:i + 1000])[0] == 200
        wait_for(lambda: d.stats(P, name, period="minute", stat="count",
                                 from_date=MIN, to_date=MIN)["range"][0][1] == n,
                 timeout=60, what="stored")
        rows.append(("timing, %d values" % n, pg.sql(size % name).strip()))
    for m in (100, 1000, 5000, 100000):
        name = "set%d" % m
        ev = [{"n": name, "a": "set", "v": "user-%d" % i, "ts": MIN} for i in range(m)]
        for i in range(0, m, 1000):
            assert d.send_http(P, ev[i:i + 1000])[0] == 200
        wait_for(lambda: d.stats(P, name, period="minute", stat="count",
                                 from_date=MIN, to_date=MIN)["range"][0][1] == m,
                 timeout=120, what="stored")
        rows.append(("set, %d members" % m, pg.sql(size % name).strip()))
    version = pg.sql("SHOW server_version").strip()
print("| cell (one bucket, PostgreSQL %s) | bytes (pg_column_size of data) |" % version)
print("|---|---:|")
for what, b in rows:
    print("| %s | %s |" % (what, b))
