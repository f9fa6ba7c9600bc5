"""The redis storage's timing and set keys (docs/storage-redis.md,
"Timings and sets"), read with plain Redis commands after a real daemon
stored them.

Sets: the HyperLogLog GottWall writes for a cell holds exactly the
registers Redis' own PFADD of the same members makes (PFDEBUG GETREG,
register for register), for 300 members (sent to the storage as exact
hashes) and 5,000 (as registers), so PFCOUNT answers as it would for
PFADD; up to 512 members the ;ex: set counts them exactly. Timings: the
sum and count where an avg's are, min and max and the bins in the ;q:
hash, whose counts add up to the count (the conformance suite's
test_kinds_expire checks that retention removes them)."""

import sys

from gwtest import Daemon, wait_for
from services import RedisServer, plugin_built, skip

PROJECT = "test_project"
DAY = 1764547200  # 2025-12-01
TS = DAY + 3600

if not plugin_built("redis"):
    skip("the redis storage was not built (configure found no hiredis)")

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


def send(d, events):
    for i in range(0, len(events), 500):
        st, body = d.send_http(PROJECT, events[i:i + 500])
        assert st == 200, (st, body)


with RedisServer(persist=False) as r:
    with Daemon(storage="redis", storage_settings=r.settings()) as d:
        for metric, n in (("small", 300), ("large", 5000)):
            members = ["member-%d" % i for i in range(n)]
            send(d, [{"n": metric, "a": "set", "v": m, "ts": TS} for m in members])
            for i in range(0, n, 1000):
                r.command("PFADD", "control:" + metric, *members[i:i + 1000])
            key = "%s;%s;day;hll:%d" % (PROJECT, metric, DAY)
            wait_for(lambda: r.command("EXISTS", key) == 1 and
                     int(r.command("HGET", "%s;%s;day" % (PROJECT, metric), str(DAY))
                         or 0) == n, timeout=30, what="the set of %s stored" % metric)
            check("%s: registers" % metric, r.command("PFDEBUG", "GETREG", key),
                  r.command("PFDEBUG", "GETREG", "control:" + metric))
            check("%s: PFCOUNT" % metric, r.command("PFCOUNT", key),
                  r.command("PFCOUNT", "control:" + metric))
            exact = "%s;%s;day;ex:%d" % (PROJECT, metric, DAY)
            if n <= 512:
                check("%s: exact members" % metric, r.command("SCARD", exact), n)
                check("%s: read back" % metric, d.stats(
                    PROJECT, metric, period="day", from_date=DAY,
                    to_date=DAY)["range"], [[DAY, n]])
            else:
                check("%s: past the bound" % metric, r.command("GET", exact), "big")
                got = d.stats(PROJECT, metric, period="day", from_date=DAY,
                              to_date=DAY)["range"][0][1]
                check("%s: read back is PFCOUNT" % metric, got,
                      r.command("PFCOUNT", "control:" + metric))

        vals = [0.5 * i for i in range(1, 201)] + [-3.0, 0.0]
        send(d, [{"n": "lat", "a": "timing", "v": v, "ts": TS} for v in vals])
        main = "%s;lat;day" % PROJECT
        wait_for(lambda: r.command("HGET", main + ";count", str(DAY)) == str(len(vals)),
                 timeout=30, what="the timing stored")
        check("timing sum", float(r.command("HGET", main, str(DAY))), sum(vals))
        q = dict(zip(*[iter(r.command("HGETALL", "%s;q:%d" % (main, DAY)))] * 2))
        check("timing min", float(q.pop("min")), -3.0)
        check("timing max", float(q.pop("max")), 100.0)
        check("timing zero", q.pop("z"), "1")
        check("timing bins total", sum(int(c) for c in q.values()), len(vals) - 1)
        check("timing bin names", all(f[0] in "pn" and f[1:].lstrip("-").isdigit()
                                      for f in q), True)
        check("timing negative bin", [f for f in q if f[0] == "n"], ["n55"])

if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("PASS: sets hold PFADD's registers (300 and 5,000 members); exact "
      "below 512; timings keep sum, count, min, max and bins")
