#!/usr/bin/env python3
"""Bytes per timing cell and per set cell in the redis storage (issue 15):
a real daemon stores one minute of N lognormal latencies (seeded) and a set
of M members through a real redis-server, and MEMORY USAGE reads the keys
of that one bucket. Run from a build directory:

    GOTTWALL_PLUGIN_PATH=$PWD/.libs GOTTWALL=$PWD/gottwall \\
      PYTHONPATH=$SRC/tests/lib python3 $SRC/tools/redis_kinds_cost.py
"""
import random

from gwtest import Daemon, wait_for
from services import RedisServer

P, MIN = "test_project", 1764547200 + 600

with RedisServer(persist=False) as r, \
        Daemon(storage="redis", storage_settings=r.settings()) as d:
    rng = random.Random(1)
    rows = []
    for n in (100, 1000, 10000):
        name = "lat%d" % n
        ev = [{"n": name, "a": "timing", "v": round(rng.lognormvariate(3, 0.8), 3),
               "ts": MIN} for _ in range(n)]
        for i in range(0, n, 1000):
            assert d.send_http(P, ev[i:i + 1000])[0] == 200
        main = "%s;%s;minute" % (P, name)
        wait_for(lambda: r.command("HGET", main + ";count", str(MIN)) == str(n),
                 timeout=60, what="stored")
        q = "%s;q:%d" % (main, MIN)
        rows.append(("timing, %d values (%d bins)" % (n, r.command("HLEN", q) - 3),
                     r.command("MEMORY", "USAGE", q)))
    for m in (100, 1000, 5000):
        name = "set%d" % m
        ev = [{"n": name, "a": "set", "v": "user-%d" % i, "ts": MIN} for i in range(m)]
        for i in range(0, m, 1000):
            assert d.send_http(P, ev[i:i + 1000])[0] == 200
        main = "%s;%s;minute" % (P, name)
        wait_for(lambda: r.command("HGET", main, str(MIN)) == str(m),
                 timeout=60, what="stored")
        hll = r.command("MEMORY", "USAGE", "%s;hll:%d" % (main, MIN))
        ex = r.command("MEMORY", "USAGE", "%s;ex:%d" % (main, MIN))
        rows.append(("set, %d members: ;hll: + ;ex:" % m, "%d + %d" % (hll, ex)))
    version = r.command("INFO", "server").split("redis_version:")[1].split()[0]
print("| cell (one bucket, Redis %s) | bytes (MEMORY USAGE) |" % version)
print("|---|---:|")
for what, b in rows:
    print("| %s | %s |" % (what, b))
