"""The redis storage's keys, byte for byte (docs/storage-redis.md).

Runs the conformance tests against a fresh redis-server, then reads the keys
they left with plain Redis commands: the original GottWall layout for
counters and metadata, escaped separators, the avg/gauge sibling hashes, the
kinds hash, documents and batch ids. Then a daemon adds whole counts to
fields that hold fractions (the flush sends whole counters as runs of keys
with HINCRBY, falling back to HINCRBYFLOAT) and the results are exact."""

import re
import subprocess
import sys

from gwtest import Daemon, wait_for
from services import RedisServer, plugin_built, skip, storage_test_binary

T0 = "1392422400"

if not plugin_built("redis"):
    skip("the redis storage was not built (configure found no hiredis)")

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


with RedisServer(persist=False) as r:
    args = [storage_test_binary(), "redis", "HOST=127.0.0.1", "PORT=%d" % r.port]
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    sys.stderr.write(p.stdout + p.stderr)
    if p.returncode != 0:
        print("FAIL: the conformance tests failed")
        sys.exit(1)
    run = re.search(r"\(run (ct[0-9a-f]+)\)", p.stderr).group(1)

    def hgetall(key):
        v = r.command("HGETALL", key) or []
        return dict(zip(v[0::2], v[1::2]))

    def smembers(key):
        return sorted(r.command("SMEMBERS", key) or [])

    c = run + "_counter"
    check("counter minute", hgetall(c + ";orders;minute"),
          {T0: "5", "1392422460": "6"})
    check("counter hour", hgetall(c + ";orders;hour"), {T0: "10"})
    check("decrements", hgetall(c + ";refunds;minute"), {T0: "-5.5"})
    check("fractions", hgetall(c + ";ratio;minute"), {T0: "0.75"})
    check("metrics set", smembers(c + "-metrics"),
          ["orders", "ratio", "refunds", "zero"])
    check("kinds", hgetall(c + "-metrics-kinds"),
          {"orders": "counter", "ratio": "counter", "refunds": "counter",
           "zero": "counter"})
    check("key type", r.command("TYPE", c + ";orders;minute"), "hash")

    f = run + "_filters"
    check("filter hash", hgetall(f + ";orders;day;status|paid"), {T0: "2"})
    check("total hash", hgetall(f + ";orders;day"), {T0: "3"})
    check("filters set", smembers(f + "-metrics-filters:orders"),
          ["", "device", "status"])
    check("values set", smembers(f + "-metrics-filter-values:orders:status"),
          ["", "new", "paid"])

    check("all period", hgetall(run + "_periods;hits;all"), {"0": "16"})
    check("week", hgetall(run + "_periods;hits;week"), {"1391990400": "13"})

    a = run + "_avg"
    check("avg sum", hgetall(a + ";latency;hour"),
          {T0: "42.5", "1392426000": "4"})
    check("avg count", hgetall(a + ";latency;hour;count"),
          {T0: "5", "1392426000": "1"})
    check("avg count per filter", hgetall(a + ";latency;hour;route|\\2Fapi;count"),
          {T0: "2"})

    g = run + "_gauge"
    check("gauge value", hgetall(g + ";temp;day"), {T0: "22"})
    check("gauge ts", hgetall(g + ";temp;day;ts"), {T0: "1392422600"})
    check("gauge kind", hgetall(g + "-metrics-kinds"), {"temp": "gauge"})

    m = run + "_meta"
    check("kinds of three", hgetall(m + "-metrics-kinds"),
          {"orders": "counter", "latency": "avg", "temp": "gauge"})

    x = run + "_collide"
    check("escaped ':' in metric", hgetall(x + ";a\\3Ab;hour;c|v"), {T0: "1"})
    check("escaped ':' in filter", hgetall(x + ";a;hour;b\\3Ac|v"), {T0: "2"})
    check("escaped '/' and '|'", hgetall(x + ";m;hour;f|x\\2Fg\\7Cy"), {T0: "3"})
    check("escaped '|' in name", hgetall(x + ";m;hour;f\\7Cx\\2Fg|y"), {T0: "4"})
    check("escaped ';'", hgetall(x + ";m\\3Bhour;day;x|y"), {T0: "5"})
    check("escape char", hgetall(x + ";e\\5C\\3Bf;hour"), {T0: "9"})
    check("no escape needed", hgetall(x + ";e%3Bf;hour"), {T0: "8"})
    check("project with ';'", hgetall(x + "\\3Bx;m;hour"), {T0: "13"})
    check("values of a:b", smembers(x + "-metrics-filter-values:a\\3Ab:c"), ["v"])
    check("values of a", smembers(x + "-metrics-filter-values:a:b\\3Ac"), ["v"])
    check("members unescaped", "a:b" in smembers(x + "-metrics"), True)

    check("document", r.command("GET", "gottwall:doc:embedded:%s-doc-1" % run), "{}")
    ttl = r.command("TTL", "gottwall:batch:%s:once:1" % run)
    check("batch id kept with an expiry", 0 < ttl <= 604800, True)
    # 100,000 deltas in chunks of 10,000: ids {id}/0 .. {id}/9.
    check("large batch chunk ids",
          [r.command("EXISTS", "gottwall:batch:%s:large%s" % (run, k))
           for k in ("", "/0", "/9", "/10")], [0, 1, 1, 0])

    # Whole increments on fields holding fractions: HINCRBY fails there and
    # the script falls back to HINCRBYFLOAT, in runs (the day total and the
    # day filter series share bucket and increment) and alone.
    TS, DAY, HOUR = 1392454739, "1392422400", "1392451200"
    r.command("HSET", "fr;frac;day", DAY, "0.5")
    r.command("HSET", "fr;frac;day;k|a", DAY, "0.25")
    r.command("HSET", "fr;solo;hour", HOUR, "0.5")
    with Daemon(command=("aggregator", "start"), storage="redis",
                storage_settings=r.settings(), server=False,
                projects={"fr": ("fr_public", "secret_key")}) as d:
        status, _ = d.send_http("fr", [{"n": "frac", "v": 2, "ts": TS,
                                        "f": {"k": "a"}},
                                       {"n": "solo", "v": 3, "ts": TS}])
        check("events accepted", status, 200)
        wait_for(lambda: r.command("HGET", "fr;solo;all", "0") == "3",
                 timeout=20, what="the flush of the fraction test")
        wait_for(lambda: r.command("HGET", "fr;frac;all;k|a", "0") == "2",
                 timeout=20, what="the flush of the fraction test")
    check("run onto a fraction", hgetall("fr;frac;day"), {DAY: "2.5"})
    check("run onto a fraction, filter", hgetall("fr;frac;day;k|a"),
          {DAY: "2.25"})
    check("run onto nothing", hgetall("fr;frac;hour"), {HOUR: "2"})
    check("single onto a fraction", hgetall("fr;solo;hour"), {HOUR: "3.5"})
    check("single onto nothing", hgetall("fr;solo;day"), {DAY: "3"})
    check("metadata of the fraction test", smembers("fr-metrics"),
          ["frac", "solo"])
    check("filter values of the fraction test",
          smembers("fr-metrics-filter-values:frac:k"), ["a"])

    # Nothing but the documented key shapes exist.
    odd = [k for k in r.command("KEYS", "*")
           if not (k.startswith(run) or k.startswith("gottwall:") or
                   k.startswith("fr;") or k.startswith("fr-"))]
    check("stray keys", odd, [])

for f in failures:
    print("FAIL: " + f)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
