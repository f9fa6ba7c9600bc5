"""Times the redis storage's expiry on a large prune, and measures what a
cell costs in Redis (not part of make check; docs/storage-redis.md,
"Expiry").

    cd BUILDDIR && PYTHONPATH=../tests/lib python3 ../tests/storage/bench_expire.py \
        [--series 100000] [--old 60] [--huge 300000] [--nice -10]

Starts a redis-server (no persistence), writes SERIES series in the
original layout (project "bench", 100 metrics, the rest filter values of
filter "k"; each minute hash with OLD fields two days old and 10 current
ones), then runs the daemon (aggregator) with RETENTION = { minute = "1d"; }
and RETENTION_INTERVAL = 1, with Redis' SLOWLOG recording every command:

  pass 1  the first pass: no earlier cut is known, so every hash is listed
          (HKEYS) and its OLD old fields deleted;
  pass 2  the steady state: one old field per series written again and the
          pass's `done` moved back a minute: the script HDELs exactly that
          bucket in each hash;
  pass 3  pass 1 again (gottwall:expire:minute deleted) with one more hash
          holding HUGE old fields, deleted in HSCAN slices.

For each pass: the daemon's own figures (calls, series, fields, the longest
call's wall time) and, from SLOWLOG, the longest single command, the
longest Redis time of one expire() call (the daemon's commands up to and
including one prune script) and the total. Then MEMORY USAGE per field of
minute hashes of 60, 1,440 and 10,080 fields, and used_memory per cell of
the fill.
"""

import argparse
import os
import re
import sys
import time

from gwtest import Daemon, wait_for
from services import RedisServer

DAY = 86400
NM = 100


def bucket(t, size):
    return int(t) - int(t) % size


def series_keys(n):
    per = max(1, n // NM - 1)
    made = 0
    for i in range(NM):
        m = "m%03d" % i
        yield m, None, "bench;%s;minute" % m
        made += 1
        for j in range(per):
            if made >= n:
                return
            yield m, "v%05d" % j, "bench;%s;minute;k|v%05d" % (m, j)
            made += 1


def fill(r, n, old, cur):
    cmds, values = [], {}
    for m, v, key in series_keys(n):
        args = ["HSET", key]
        for f in old + cur:
            args += [f, "1"]
        cmds.append(args)
        if v is None:
            cmds.append(("SADD", "bench-metrics", m))
            cmds.append(("SADD", "bench-metrics-filters:" + m, "k"))
        else:
            values.setdefault(m, []).append(v)
        if len(cmds) >= 5000:
            r.pipeline(cmds)
            cmds = []
    for m, vs in values.items():
        cmds.append(["SADD", "bench-metrics-filter-values:%s:k" % m] + vs)
    r.pipeline(cmds)


def slowlog(r):
    """The daemon's commands since the last reset, oldest first."""
    entries = r.command("SLOWLOG", "GET", "-1", timeout=120) or []
    out = [(e[2], e[3]) for e in reversed(entries)]
    r.command("SLOWLOG", "RESET")
    return out


def report(name, st, entries):
    calls, cur, longest_cmd = [], 0, (0, "")
    total = scans = 0
    for us, args in entries:
        verb = args[0].upper()
        if verb in ("SLOWLOG", "CONFIG", "HGETALL", "HSET", "DEL", "INFO",
                    "MEMORY", "KEYS", "HDEL"):
            continue  # this script's, not the daemon's
        # One call reads at most 8 SCAN/SSCAN replies (RS_EXP_STEPS).
        if verb in ("SCAN", "SSCAN"):
            if scans == 8:
                calls.append(cur)
                cur = scans = 0
            scans += 1
        total += us
        cur += us
        if us > longest_cmd[0]:
            longest_cmd = (us, " ".join(str(a) for a in args[:6])[:60])
        if args[0].upper() == "EVALSHA" and len(args) > 5 and \
                args[5] == "prune":
            calls.append(cur)
            cur = scans = 0
    calls.append(cur)
    calls = calls[1:] if calls and calls[0] == 0 else calls
    calls.sort()
    slow = sum(1 for c in calls if c > 5000)
    print("%s: %s calls, %s series, %s fields removed; longest call %s ms "
          "(daemon, wall)" % (name, st["last_calls"], st["last_series"],
                              st["last_fields"], st["last_longest_ms"]))
    print("   Redis time: longest command %.2f ms (%s), longest call "
          "%.2f ms (median %.2f, 99th percentile %.2f, 99.9th %.2f; %d of "
          "%d calls over 5 ms), total %.0f ms"
          % (longest_cmd[0] / 1e3, longest_cmd[1], calls[-1] / 1e3,
             calls[len(calls) // 2] / 1e3, calls[len(calls) * 99 // 100] / 1e3,
             calls[len(calls) * 999 // 1000] / 1e3, slow, len(calls),
             total / 1e3))
    print("   load average at the end: %s" % open("/proc/loadavg").read()[:15])
    sys.stdout.flush()


def state(r):
    v = r.command("HGETALL", "gottwall:expire:minute") or []
    return dict(zip(v[0::2], v[1::2]))


def run_pass(r, d, name):
    r.command("HDEL", "gottwall:expire:minute", "last_calls")
    r.command("SLOWLOG", "RESET")
    t0 = time.time()
    d.start()
    wait_for(lambda: "last_calls" in state(r), timeout=3600, step=0.2,
             what=name)
    wall = time.time() - t0
    assert d.stop() == 0
    print("%s: the pass took %.1f s from the daemon's start" % (name, wall))
    report(name, state(r), slowlog(r))


def memory(r):
    now = int(time.time())
    for n in (60, 1440, 10080):
        key = "mem;m;minute;%d" % n
        args = ["HSET", key]
        for i in range(n):
            args += [str(bucket(now, 60) - 60 * i), str(1 + i % 1000)]
        r.command(*args, timeout=60)
        used = r.command("MEMORY", "USAGE", key, "SAMPLES", "0")
        enc = r.command("OBJECT", "ENCODING", key)
        print("MEMORY USAGE of a minute hash of %d fields (%s): %d bytes, "
              "%.1f per field" % (n, enc, used, used / n))
        r.command("DEL", key)


def used_memory(r):
    info = r.command("INFO", "memory")
    return int(re.search(r"used_memory:(\d+)", info).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--old", type=int, default=60)
    ap.add_argument("--huge", type=int, default=300000)
    ap.add_argument("--nice", type=int, default=0,
                    help="the redis-server's nice value (e.g. -10 as root: "
                    "less preempted by other work on a shared machine)")
    a = ap.parse_args()
    now = int(time.time())
    t_old = bucket(now - 2 * DAY, 60)
    old = [str(t_old + 60 * i) for i in range(a.old)]
    cur = [str(bucket(now, 60) - 60 * i) for i in range(10)]
    with RedisServer(persist=False) as r:
        if a.nice:
            os.setpriority(os.PRIO_PROCESS, r.proc.pid, a.nice)
        memory(r)
        base = used_memory(r)
        fill(r, a.series, old, cur)
        cells = a.series * (a.old + 10)
        print("fill: %d series, %d cells: used_memory %.1f MB, %.1f bytes a "
              "cell (keys and metadata included)"
              % (a.series, cells, (used_memory(r) - base) / 1e6,
                 (used_memory(r) - base) / cells))
        r.command("CONFIG", "SET", "slowlog-max-len", "10000000")
        r.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        d = Daemon(storage="redis", storage_settings=r.settings(),
                   command=("aggregator", "start"), server=False,
                   extra={"RETENTION": {"minute": "1d"},
                          "RETENTION_INTERVAL": 1})
        try:
            run_pass(r, d, "pass 1 (first pass, HKEYS)")
            done = int(state(r)["done"])
            cmds = [("HSET", key, str(done - 60), "1")
                    for _, _, key in series_keys(a.series)]
            for i in range(0, len(cmds), 5000):
                r.pipeline(cmds[i:i + 5000])
            r.command("HSET", "gottwall:expire:minute", "done", done - 60)
            run_pass(r, d, "pass 2 (steady state, HDEL of one bucket)")
            r.command("SADD", "bench-metrics", "huge")
            for i in range(0, a.huge, 10000):
                args = ["HSET", "bench;huge;minute"]
                for j in range(i, min(i + 10000, a.huge)):
                    args += [str(t_old - 60 * (j + 1)), "1"]
                r.command(*args, timeout=60)
            r.command("DEL", "gottwall:expire:minute")
            run_pass(r, d, "pass 3 (first pass, and %d fields in one hash, "
                     "HSCAN)" % a.huge)
            assert r.command("EXISTS", "bench;huge;minute") == 0
        finally:
            d.cleanup()


if __name__ == "__main__":
    main()
