"""RETENTION with the redis storage, the real daemon against a real
redis-server (issue 14; docs/storage-redis.md, "Expiry").

1. Minute fields written 2 days ago (counter with a filter, avg, gauge),
   by a daemon started without RETENTION, are gone from the original keys
   (HEXISTS 0, and from the ;count and ;ts siblings) once the daemon runs
   with RETENTION = { minute = "1d"; } and RETENTION_INTERVAL = 1, while
   their hour and day fields are untouched; a filter value none of whose
   series holds data any more leaves its set, one whose hour still holds
   data stays; gottwall:expire:minute records the pass.
2. A prune of 20,020 series (written straight into Redis in the original
   layout, without gottwall:projects, so the SCAN for old projects runs
   too), needing many calls, is cut by kill -9 in the middle: the position
   key shows where; the restarted daemon says it resumes there, completes
   the pass (the position key says so), walks only what was left, and no
   old minute field is left anywhere.
3. The flush sends a batch's metadata after its data (seen with MONITOR):
   the prune removes a filter value only when, atomically, none of its
   series holds data, so a value SADDed before the data could be removed
   by another process's prune in between and lost while it has data.
"""

import re
import signal
import socket
import time

from gwtest import Daemon, run_tests, wait_for
from services import RedisServer, plugin_built, skip

DAY = 86400
P = "test_project"

if not plugin_built("redis"):
    skip("the redis storage was not built (configure found no hiredis)")


def bucket(t, size):
    return int(t) - int(t) % size


def state(r, period="minute"):
    v = r.command("HGETALL", "gottwall:expire:" + period) or []
    return dict(zip(v[0::2], v[1::2]))


def retention(d):
    d.extra["RETENTION"] = {"minute": "1d"}
    d.extra["RETENTION_INTERVAL"] = 1


def test_old_minutes_removed():
    now = int(time.time())
    old = now - 2 * DAY
    m, h, dd = (str(bucket(old, s)) for s in (60, 3600, DAY))
    cur = str(bucket(now, 60))
    with RedisServer(persist=False) as r:
        d = Daemon(storage="redis", storage_settings=r.settings())
        try:
            d.start()
            st, body = d.send_http(P, [{"n": "aged", "ts": old,
                                        "f": {"os": "linux"}},
                                       {"n": "aged", "ts": now}])
            assert st == 200, body
            st, body = d.send_http(P, {"n": "lat", "v": 5, "ts": old},
                                   action="avg")
            assert st == 200, body
            st, body = d.send_http(P, {"n": "temp", "v": 3, "ts": old},
                                   action="gauge")
            assert st == 200, body
            wait_for(lambda: r.command("HGET", P + ";temp;minute", m) == "3",
                     what="the flush")
            wait_for(lambda: r.command("HGET", P + ";aged;minute", cur) == "1",
                     what="the flush")
            assert d.stop() == 0
            # A filter value whose only series holds nothing but an old
            # minute (an older writer's): it leaves its set with its data.
            r.command("HSET", P + ";aged;minute;os|bsd", m, "4")
            r.command("SADD", P + "-metrics-filter-values:aged:os", "bsd")
            for k in (P + ";aged;minute", P + ";aged;minute;os|linux",
                      P + ";lat;minute;count", P + ";temp;minute;ts"):
                assert r.command("HEXISTS", k, m) == 1, k
            retention(d)
            d.start()
            wait_for(lambda: re.search(r"expiry: minute buckets before \S+ "
                                       r"removed", d.log()),
                     what="the first expiry", timeout=30)
            for k in (P + ";aged;minute", P + ";aged;minute;os|linux",
                      P + ";aged;minute;os|bsd", P + ";lat;minute",
                      P + ";lat;minute;count", P + ";temp;minute",
                      P + ";temp;minute;ts"):
                assert r.command("HEXISTS", k, m) == 0, k
            # Nothing else moved: the current minute, every hour and day.
            assert r.command("HGET", P + ";aged;minute", cur) == "1"
            for k, f, v in ((";aged;hour", h, "1"), (";aged;day", dd, "1"),
                            (";aged;hour;os|linux", h, "1"),
                            (";aged;day;os|linux", dd, "1"),
                            (";lat;hour", h, "5"), (";lat;hour;count", h, "1"),
                            (";temp;hour", h, "3"),
                            (";temp;hour;ts", h, str(old))):
                assert r.command("HGET", P + k, f) == v, (k, f, v)
            assert r.command("EXISTS", P + ";aged;minute;os|bsd") == 0
            assert sorted(r.command(
                "SMEMBERS", P + "-metrics-filter-values:aged:os")) == \
                ["linux"]
            first = re.search(r"expiry: minute buckets before (\S+) removed: "
                              r"(\d+) series walked, (\d+) fields and (\d+) "
                              r"filter values removed", d.log())
            # 5 series (3 totals, linux, bsd); 7 fields: aged, linux, bsd,
            # lat and its count, temp and its ts.
            assert first.group(2, 3, 4) == ("5", "7", "1"), first.group(0)
            s = state(r)
            assert sorted(s) == ["done", "last_calls", "last_fields",
                                 "last_longest_ms", "last_series",
                                 "last_values"], s
            cut = int(s["done"])
            assert cut % 60 == 0 and now - DAY - 120 <= cut <= now - DAY + 120
            assert r.command("SMEMBERS", "gottwall:projects") == [P]
            assert d.stop() == 0
        finally:
            d.cleanup()


METRICS, VALUES = 20, 1000


def fill(r, old, now):
    """20 metrics x 1,000 values of filter k in project big, each series
    with two old minute fields, a current one and an old hour, and the
    metadata sets; nothing in gottwall:projects (an older writer)."""
    m1, m2, cur = bucket(old, 60), bucket(old, 60) + 60, bucket(now, 60)
    h = bucket(old, 3600)
    cmds = []
    for i in range(METRICS):
        name = "m%02d" % i
        cmds.append(("SADD", "big-metrics", name))
        cmds.append(("SADD", "big-metrics-filters:" + name, "k"))
        cmds.append(("SADD", "big-metrics-filter-values:" + name + ":k")
                    + tuple("v%04d" % j for j in range(VALUES)))
        for suffix in [""] + [";k|v%04d" % j for j in range(VALUES)]:
            cmds.append(("HSET", "big;%s;minute%s" % (name, suffix),
                         m1, 1, m2, 1, cur, 1))
            cmds.append(("HSET", "big;%s;hour%s" % (name, suffix), h, 2))
    r.pipeline(cmds)
    return str(m1), str(m2), str(cur), str(h)


def old_left(r, m1, m2):
    """Old minute fields left in project big (a script, for the test)."""
    return r.command("EVAL", "local n = 0 for _, k in ipairs(redis.call("
                     "'KEYS', 'big;*;minute*')) do n = n + redis.call("
                     "'HEXISTS', k, ARGV[1]) + redis.call('HEXISTS', k, "
                     "ARGV[2]) end return n", 0, m1, m2)


def test_resume_after_kill():
    now = int(time.time())
    old = now - 2 * DAY
    series = METRICS * (VALUES + 1)
    with RedisServer(persist=False) as r:
        m1, m2, cur, h = fill(r, old, now)
        assert old_left(r, m1, m2) == 2 * series
        d = Daemon(storage="redis", storage_settings=r.settings(),
                   command=("aggregator", "start"), server=False)
        retention(d)
        try:
            d.start()
            wait_for(lambda: state(r).get("at", "") >= "big;m03",
                     step=0.002, timeout=30, what="a prune under way")
            d.signal(signal.SIGKILL)
            d.proc.wait()
            d.proc = None
            s = state(r)
            at, cut = s["at"], s["before"]
            left = old_left(r, m1, m2)
            # Cut in the middle: started, not done.
            assert "before" in s and "done" not in s, s
            assert 0 < left < 2 * series, (left, s)
            assert r.command("HEXISTS", "big;m19;minute;k|v0999", m1) == 1
            assert r.command("HEXISTS", "big;m00;minute;k|v0000", m1) == 0
            d.start()
            wait_for(lambda: "done" in state(r), timeout=60,
                     what="the resumed prune to finish")
            log = d.log()
            assert re.search(r"info .*expiry: resuming the removal of minute "
                             r"buckets before \S+ after %s\n"
                             % re.escape(at), log), log[-3000:]
            s = state(r)
            assert "before" not in s and "at" not in s, s
            # The pass's cut is the one it started with.
            assert s["done"] == cut, (s, cut)
            assert int(s["done"]) > int(m2)
            walked = int(s["last_series"])
            # Only what was after `at`; a total series is "big;m05".
            mi = int(at[5:7])
            vi = int(at.split("|v")[1]) if "|" in at else -1
            assert walked == series - mi * (VALUES + 1) - (vi + 2), (at, s)
            assert old_left(r, m1, m2) == 0
            assert r.command("HGET", "big;m19;minute;k|v0999", cur) == "1"
            assert r.command("HGET", "big;m00;hour;k|v0000", h) == "2"
            assert r.command("SISMEMBER", "gottwall:projects", "big") == 1
            # Every value still holds data (its hour): none left its set.
            assert r.command("SCARD", "big-metrics-filter-values:m07:k") == \
                VALUES
            assert int(s["last_values"]) == 0
            assert d.stop() == 0
        finally:
            d.cleanup()


def test_metadata_follows_data():
    now = int(time.time())
    with RedisServer(persist=False) as r:
        mon = socket.create_connection((r.host, r.port), timeout=20)
        mon.sendall(b"MONITOR\r\n")
        f = mon.makefile("rb")
        assert f.readline() == b"+OK\r\n"
        d = Daemon(storage="redis", storage_settings=r.settings())
        try:
            d.start()
            st, body = d.send_http(P, {"n": "race", "ts": now,
                                       "f": {"os": "linux"}})
            assert st == 200, body
            seen = []
            while not any("SADD" in l and "filter-values" in l
                          for l in seen):
                line = f.readline().decode("utf-8", "replace")
                if '"EVALSHA"' in line or '"SADD"' in line:
                    seen.append(line)
            script = [i for i, l in enumerate(seen)
                      if '"EVALSHA"' in l and "race;minute;os|linux" in l]
            sadd = [i for i, l in enumerate(seen)
                    if "filter-values:race:os" in l]
            assert script and sadd and script[0] < sadd[0], seen
            assert d.stop() == 0
        finally:
            mon.close()
            d.cleanup()


if __name__ == "__main__":
    run_tests([test_old_minutes_removed, test_resume_after_kill,
               test_metadata_follows_data])
