#!/usr/bin/python3
"""tools/bench_timing.py: how exact GottWall's timing percentiles and set
counts are, against exact answers and against Etsy statsd (issue 15).

Traffic (seeded, the same on every run with the same --seed):
  * --events latencies (default 1,000,000) for each of three metrics:
    lat.uniform (uniform 0.5-1000 ms), lat.lognormal (median 50 ms,
    sigma 0.8) and lat.bimodal (99 % normal 20 +- 4 ms, a 1 % slow tail
    normal 1500 +- 300 ms), printed with three decimals (microseconds);
  * a set `users` of --set-members distinct members (default 1,000,000),
    each seen once, plus half as many repeats of random members;
  every event at a random second of one day, DAY0 (2025-12-01 UTC).

Exact answers are computed here from the values sent: per minute, hour
and day, count, min, max and the nearest-rank p50/p90/p99/p999 (the value
at rank ceil(q n) of the n sorted values), and the distinct members.

GottWall (--storage memory|redis|postgres): the same traffic over statsd
TCP (so nothing is lost: a TCP statsd line is read or the connection
blocks), `name:V|ms|T<ts>` and `users:M|s|T<ts>`, the DogStatsD timestamp
field placing each event in its second of the day, dealt round robin in
chunks of --batch lines over three aggregators at once sharing one
storage (a real redis-server or PostgreSQL started by tests/lib/services.py;
a `gottwall server start` reads), or, for memory (which lives in one
process), one daemon with INGEST_LOOPS = 3. Every daemon gets a config
written here, in a temp dir, on free loopback ports. The tool waits until
every event is counted, then reads `GET /api/v1/{project}/stats?...&stat=`
for every minute, hour and the day, and checks: count, min and max exact
(so no event was lost or added), each percentile within 1 % of the exact
one, each hour's and the day's distinct count within 2 % (minutes are
reported, not judged). Exit 1 if any check fails.

Etsy statsd (--etsy, the default when node_modules/statsd exists): the
same traffic over statsd TCP to `node node_modules/statsd/stats.js` with
percentThreshold [50, 90, 99, 99.9] and tools/bench/statsd-file-backend.js
writing each flush to a file. Statsd has no timestamps either, so the day
is replayed compressed: one minute of data per flush (--etsy-flush-ms,
default 250), sent right after the previous flush was written; the tool
checks each flush holds exactly that minute's events. Reported: each
flush's upper_NN against the exact minute, and the hour and day as
Graphite would show them (the average of the flushes' values, Graphite's
default rollup), against the exact hourly and daily quantile.

Usage:
  tools/bench_timing.py --build BUILD [--storage memory,redis,postgres | none]
      [--etsy|--no-etsy] [--events N] [--set-members N]
      [--seed S] [--batch N] [--out FILE.md] [--json FILE]
Everything listens on 127.0.0.1 only and is stopped at exit.
"""

import argparse
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "lib"))

DAY0 = 1764547200  # 2025-12-01 00:00:00 UTC
PROJECT = "test_project"
ALPHA = 0.01       # the timing kind's relative error
SET_ERROR = 0.02   # the set kind's promise
# Percentiles as (name, numerator, denominator): exact integer ranks.
QUANTILES = [("p50", 500, 1000), ("p90", 900, 1000), ("p99", 990, 1000),
             ("p999", 999, 1000)]
ETSY_PCT = {"p50": "50", "p90": "90", "p99": "99", "p999": "99_9"}
DISTS = ["uniform", "lognormal", "bimodal"]
PERIODS = [("minute", 60), ("hour", 3600), ("day", 86400)]
SET_NAME = "users"


def log(msg):
    sys.stderr.write("bench_timing: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- traffic

def draw(dist, rng):
    if dist == "uniform":
        return rng.uniform(0.5, 1000.0)
    if dist == "lognormal":
        return rng.lognormvariate(math.log(50.0), 0.8)
    if rng.random() < 0.01:
        return max(1.0, rng.gauss(1500.0, 300.0))
    return max(0.5, rng.gauss(20.0, 4.0))


def gen_latencies(dist, n, seed):
    """[(ts, text, value)] sorted by nothing (in the order drawn)."""
    rng = random.Random("%d/%s" % (seed, dist))
    out = []
    for _ in range(n):
        ts = DAY0 + rng.randrange(86400)
        text = "%.3f" % max(0.001, draw(dist, rng))
        out.append((ts, text, float(text)))
    return out


def gen_members(m, seed):
    """[(ts, member)]: m distinct members once each, m // 2 repeats."""
    rng = random.Random("%d/set" % seed)
    out = [(DAY0 + rng.randrange(86400), "m%07d" % i) for i in range(m)]
    for _ in range(m // 2):
        out.append((DAY0 + rng.randrange(86400), "m%07d" % rng.randrange(m)))
    rng.shuffle(out)
    return out


def nearest_rank(sorted_values, num, den):
    n = len(sorted_values)
    rank = max(1, -(-num * n // den))  # ceil(num * n / den), exactly
    return sorted_values[rank - 1]


def exact_timing(events):
    """{period: {bucket: {count, sum, min, max, p50, ...}}}."""
    out = {}
    for period, width in PERIODS:
        groups = {}
        for ts, _, v in events:
            groups.setdefault(ts // width * width, []).append(v)
        cells = {}
        for bucket, vals in groups.items():
            vals.sort()
            c = {"count": len(vals), "sum": math.fsum(vals), "min": vals[0],
                 "max": vals[-1]}
            for name, num, den in QUANTILES:
                c[name] = nearest_rank(vals, num, den)
            cells[bucket] = c
        out[period] = cells
    return out


def exact_sets(events):
    """{period: {bucket: (distinct, events)}}."""
    out = {}
    for period, width in PERIODS:
        groups = {}
        for ts, member in events:
            groups.setdefault(ts // width * width, []).append(member)
        out[period] = {b: (len(set(ms)), len(ms)) for b, ms in groups.items()}
    return out


def rel(got, want):
    if got is None:
        return float("inf")
    if want == 0:
        return 0.0 if got == 0 else float("inf")
    return abs(got - want) / abs(want)


# ---------------------------------------------------------------- GottWall

class GottWall:
    """Three aggregators and a server sharing one storage, or one daemon
    with three ingest loops for memory."""

    def __init__(self, build, storage):
        import gwtest
        import services
        self.gwtest, self.services = gwtest, services
        gwtest.GOTTWALL = os.path.join(build, "gottwall")
        if not os.access(gwtest.GOTTWALL, os.X_OK):
            raise SystemExit("bench_timing: %s is missing: build first, or pass --build"
                             % gwtest.GOTTWALL)
        os.environ["GOTTWALL_PLUGIN_PATH"] = os.path.join(build, ".libs")
        self.storage = storage
        self.service = None
        self.daemons = []
        self.aggs = []
        self.srv = None

    def start(self):
        Daemon = self.gwtest.Daemon
        extra = {"FLUSH_INTERVAL": 1000}
        if self.storage == "memory":
            d = Daemon(backends={"statsd": {"PROJECT": PROJECT}},
                       extra=dict(extra, INGEST_LOOPS=3))
            self.aggs, self.srv, self.daemons = [d], d, [d]
        else:
            if self.storage == "redis":
                self.service = self.services.RedisServer()
            else:
                self.service = self.services.PostgresServer()
            self.service.start()
            settings = self.service.settings()
            self.aggs = [Daemon(command=("aggregator", "start"), storage=self.storage,
                                storage_settings=settings, server=False,
                                backends={"statsd": {"PROJECT": PROJECT}}, extra=extra)
                         for _ in range(3)]
            self.srv = Daemon(command=("server", "start"), storage=self.storage,
                              storage_settings=settings, backends={}, extra=extra)
            self.daemons = self.aggs + [self.srv]
        for d in self.daemons:
            d.start()
        log("GottWall (%s): %d daemon(s) in %s" % (
            self.storage, len(self.daemons), ", ".join(d.tmp for d in self.daemons)))

    def stop(self, failed=False):
        for d in self.daemons:
            if failed:
                log("the log of the daemon in %s ends:\n%s" % (d.tmp, d.log()[-3000:]))
            try:
                if d.alive():
                    d.stop()
            except AssertionError as e:
                log("stopping a daemon: %s" % e)
            d.cleanup()
        if self.service is not None:
            self.service.cleanup()

    # -- sending

    @staticmethod
    def _stream(port, chunks, errors):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
                for c in chunks:
                    sock.sendall(c)
        except OSError as e:
            errors.append("statsd TCP to port %d: %s" % (port, e))

    def send(self, lines, batch):
        """statsd lines; round robin over the aggregators in chunks of
        batch lines, one TCP connection to each, all at once."""
        k = len(self.aggs)
        shares = [[] for _ in range(k)]
        for i in range(0, len(lines), batch):
            shares[(i // batch) % k].append(("\n".join(lines[i:i + batch]) + "\n").encode())
        errors = []
        threads = [threading.Thread(target=self._stream, args=(a.port("statsd"), sh, errors))
                   for a, sh in zip(self.aggs, shares)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])

    # -- reading

    def series(self, name, period, stat):
        """{bucket: value} over the day at period."""
        width = dict(PERIODS)[period]
        last = DAY0 + 86400 - width
        r = self.srv.stats(PROJECT, name, period=period, stat=stat, from_date=DAY0,
                           to_date=last)
        return {b: v for b, v in r["range"]}

    def wait_count(self, name, want, timeout):
        give_up = time.time() + timeout
        got = None
        while time.time() < give_up:
            got = self.series(name, "day", "count").get(DAY0)
            if got == want:
                return
            time.sleep(0.5)
        raise RuntimeError("%s: %r events of %d counted after %d s" % (name, got, want, timeout))


def timer_line(name, ts, v_text):
    return "%s:%s|ms|T%d" % (name, v_text, ts)


def run_gottwall(args, storage, lat, exact, members, exact_set):
    """Sends, reads and compares; returns (results, failures)."""
    gw = GottWall(args.build, storage)
    failures = []
    results = {"storage": storage, "timing": {}, "set": {}}
    try:
        gw.start()
        t0 = time.time()
        for dist in DISTS:
            gw.send([timer_line("lat." + dist, ts, t) for ts, t, _ in lat[dist]], args.batch)
        gw.send(["%s:%s|s|T%d" % (SET_NAME, m, ts) for ts, m in members], args.batch)
        results["sent_s"] = time.time() - t0
        log("%s: sent in %.1f s" % (storage, results["sent_s"]))
        for dist in DISTS:
            gw.wait_count("lat." + dist, len(lat[dist]), args.timeout)
        gw.wait_count(SET_NAME, len(members), args.timeout)
        results["counted_s"] = time.time() - t0
        log("%s: all counted %.1f s after the first line" % (storage, results["counted_s"]))
        stats = ["count", "min", "max"] + [q[0] for q in QUANTILES]
        for dist in DISTS:
            name = "lat." + dist
            per = results["timing"][dist] = {}
            for period, _ in PERIODS:
                want = exact[dist][period]
                worst = per[period] = {}
                for st in stats:
                    got = gw.series(name, period, st)
                    w = 0.0
                    for bucket, cell in want.items():
                        exp = cell["sum"] / cell["count"] if st == "mean" else cell[st]
                        e = rel(got.get(bucket), exp)
                        bound = ALPHA if st.startswith("p") else 1e-9
                        if e > bound * (1 + 1e-9):
                            failures.append("%s %s %s at %d: GottWall %r, exact %r (%.4f %%)" % (
                                name, period, st, bucket, got.get(bucket), exp, 100 * e))
                        w = max(w, e)
                    empty = [b for b, v in got.items() if b not in want and v not in (0, None)]
                    if empty:
                        failures.append("%s %s %s: values in buckets without events: %s" % (
                            name, period, st, empty[:3]))
                    worst[st] = w
                if period == "day":
                    results["timing"][dist]["day_values"] = {
                        st: gw.series(name, "day", st).get(DAY0) for st in stats}
        for period, _ in PERIODS:
            got = gw.series(SET_NAME, period, "value")
            cnt = gw.series(SET_NAME, period, "count")
            w = 0.0
            for bucket, (distinct, nev) in exact_set[period].items():
                e = rel(got.get(bucket), distinct)
                if cnt.get(bucket) != nev:
                    failures.append("set %s at %d: %r events counted, %d sent" % (
                        period, bucket, cnt.get(bucket), nev))
                if period != "minute" and e >= SET_ERROR:
                    failures.append("set %s at %d: GottWall %r distinct, exact %d (%.3f %%)"
                                    % (period, bucket, got.get(bucket), distinct, 100 * e))
                w = max(w, e)
            results["set"][period] = w
        results["set"]["day_value"] = gw.series(SET_NAME, "day", "value").get(DAY0)
    except BaseException:
        gw.stop(failed=True)
        raise
    gw.stop()
    return results, failures


# ---------------------------------------------------------------- Etsy statsd

def run_etsy(args, lat, exact, members, exact_set):
    from gwtest import free_port
    statsd_js = os.path.join(SRCDIR, "node_modules", "statsd", "stats.js")
    if not os.path.exists(statsd_js):
        raise SystemExit("bench_timing: %s is missing: run `npm ci` in %s" % (statsd_js, SRCDIR))
    tmp = tempfile.mkdtemp(prefix="gwetsy-")
    flush_file = os.path.join(tmp, "flushes.jsonl")
    tcp_port, udp_port, mgmt_port = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "config.js")
    with open(conf, "w") as f:
        f.write("""{
  port: %d, mgmt_port: %d, mgmt_address: "127.0.0.1", address: "127.0.0.1",
  servers: [{ server: "./servers/tcp", address: "127.0.0.1", port: %d }],
  flushInterval: %d,
  percentThreshold: [50, 90, 99, 99.9],
  deleteIdleStats: true,
  backends: [ %s ],
  fileBackend: { path: %s }
}
""" % (udp_port, mgmt_port, tcp_port, args.etsy_flush_ms,
            json.dumps(os.path.join(SRCDIR, "tools", "bench", "statsd-file-backend.js")),
            json.dumps(flush_file)))
    # Each minute's lines, every metric.
    by_minute = {}
    for dist in DISTS:
        for ts, text, _ in lat[dist]:
            by_minute.setdefault(ts // 60 * 60, []).append("lat.%s:%s|ms" % (dist, text))
    for ts, m in members:
        by_minute.setdefault(ts // 60 * 60, []).append("%s:%s|s" % (SET_NAME, m))
    logf = open(os.path.join(tmp, "statsd.log"), "wb")
    proc = subprocess.Popen(["node", statsd_js, conf], cwd=os.path.dirname(statsd_js),
                            stdout=logf, stderr=subprocess.STDOUT)
    flushes = {}
    try:
        give_up = time.time() + 20
        sock = None
        while sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
            except OSError:
                if proc.poll() is not None or time.time() > give_up:
                    raise RuntimeError("Etsy statsd did not start: see %s" % logf.name)
                time.sleep(0.1)
        reader = FlushReader(flush_file)
        minutes = sorted(by_minute)
        t0 = time.time()
        for minute in minutes:
            n = reader.wait_next(proc)  # a flush was just written: send now
            sock.sendall(("\n".join(by_minute[minute]) + "\n").encode())
            flushes[minute] = n + 1
        reader.wait_for(flushes[minutes[-1]], proc)
        log("Etsy statsd: %d minutes replayed in %.1f s" % (len(minutes), time.time() - t0))
        sock.close()
        data = reader.all()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
    failures = []
    per_minute = {}
    for minute, k in flushes.items():
        fl = data.get(k, {"timers": {}, "sets": {}})
        for dist in DISTS:
            want = exact[dist]["minute"].get(minute)
            got = fl["timers"].get("lat." + dist)
            if want and (got is None or got["count"] != want["count"]):
                failures.append("Etsy flush %d: lat.%s has %r events, minute %d had %d "
                                "(the replay straddled a flush: use a larger --etsy-flush-ms)"
                                % (k, dist, got and got["count"], minute, want["count"]))
        per_minute[minute] = fl
    out = {"flush_ms": args.etsy_flush_ms, "timing": {}, "set": {}}
    for dist in DISTS:
        res = out["timing"][dist] = {}
        name = "lat." + dist
        for period, width in PERIODS:
            worst = res[period] = {}
            for qn, _, _ in QUANTILES:
                key = "upper_" + ETSY_PCT[qn]
                groups = {}
                for minute, fl in per_minute.items():
                    t = fl["timers"].get(name)
                    if t is not None and key in t:
                        groups.setdefault(minute // width * width, []).append(t[key])
                w = 0.0
                for bucket, cell in exact[dist][period].items():
                    vals = groups.get(bucket)
                    graphite = sum(vals) / len(vals) if vals else None
                    w = max(w, rel(graphite, cell[qn]))
                    if period == "day":
                        res.setdefault("day_values", {})[qn] = graphite
                worst[qn] = w
        # One flush as statsd reports it (the first minute of hour 12).
        sample = DAY0 + 12 * 3600
        t = per_minute.get(sample, {"timers": {}})["timers"].get(name, {})
        res["sample_flush"] = {k: t.get(k) for k in (
            "count", "lower", "upper", "mean", "median", "mean_90", "upper_90",
            "mean_99", "upper_99", "upper_99_9")}
        hour = DAY0 + 12 * 3600
        res["sample_hour"] = {
            "exact_p99": exact[dist]["hour"][hour]["p99"] if hour in exact[dist]["hour"] else None,
            "graphite_p99": _avg([per_minute[m]["timers"].get(name, {}).get("upper_99")
                                  for m in per_minute if m // 3600 * 3600 == hour])}
    # Sets: each flush's distinct; an hour as a sum of flushes (Graphite sum
    # rollup) and as their average (the default).
    for period, width in PERIODS:
        sums = {}
        for minute, fl in per_minute.items():
            if SET_NAME in fl["sets"]:
                sums.setdefault(minute // width * width, []).append(fl["sets"][SET_NAME])
        ws = wa = 0.0
        for bucket, (distinct, _) in exact_set[period].items():
            ws = max(ws, rel(sum(sums.get(bucket, [0])), distinct))
            wa = max(wa, rel(_avg(sums.get(bucket)), distinct))
        out["set"][period] = {"sum": ws, "avg": wa}
    shutil.rmtree(tmp, ignore_errors=True)
    return out, failures


def _avg(vals):
    vals = [v for v in (vals or []) if v is not None]
    return sum(vals) / len(vals) if vals else None


class FlushReader:
    """Follows the backend's file: one JSON line per flush."""

    def __init__(self, path):
        self.path = path
        self.flushes = {}
        self.offset = 0
        self.last = 0

    def _poll(self):
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            f.seek(self.offset)
            while True:
                line = f.readline()
                if not line.endswith("\n"):
                    break
                self.offset += len(line.encode())
                d = json.loads(line)
                self.flushes[d["flush"]] = d
                self.last = d["flush"]

    def wait_next(self, proc, timeout=30):
        """Waits for a flush after the last one seen; returns its number."""
        start = self.last
        return self.wait_for(start + 1, proc, timeout)

    def wait_for(self, n, proc, timeout=30):
        give_up = time.time() + timeout
        while True:
            self._poll()
            if self.last >= n:
                return self.last
            if proc.poll() is not None or time.time() > give_up:
                raise RuntimeError("Etsy statsd wrote no flush %d (exit %r)" % (n, proc.poll()))
            time.sleep(0.002)

    def all(self):
        self._poll()
        return self.flushes


# ---------------------------------------------------------------- report

def pct(e):
    if e is None:
        return "–"
    if e == float("inf"):
        return "missing"
    return "%.3f %%" % (100 * e)


def num(v):
    return "–" if v is None else "%.3f" % v


STORAGE_NAMES = {"memory": "memory", "redis": "Redis", "postgres": "PostgreSQL"}


def report(args, exact, exact_set, gws, etsy):
    """gws: [(storage, results)] in the order run."""
    out = []
    w = out.append
    w("## bench_timing: %s latencies per metric, %s set members, seed %d" % (
        format(args.events, ","), format(args.set_members, ","), args.seed))
    w("")
    w("GottWall: %s, over statsd TCP; Etsy statsd: %s." % (
        ", ".join(STORAGE_NAMES[st] for st, _ in gws) or "not run",
        "flushInterval %d ms, one minute of data per flush" % etsy["flush_ms"] if etsy
        else "not run"))
    w("")
    w("### The day (one bucket)")
    w("")
    heads = ["GottWall %s" % STORAGE_NAMES[st] for st, _ in gws] + \
        (["Etsy → Graphite (avg of 1,440 flushes)"] if etsy else [])
    w("| metric | stat | exact | " + " | ".join("%s | error" % h for h in heads) + " |")
    w("|---|---|---:|" + "---:|---:|" * len(heads))
    for dist in DISTS:
        day = exact[dist]["day"][DAY0]
        for qn, _, _ in QUANTILES:
            vals = [g["timing"][dist]["day_values"].get(qn) for _, g in gws]
            if etsy:
                vals.append(etsy["timing"][dist]["day_values"].get(qn))
            w("| lat.%s | %s | %.3f | %s |" % (dist, qn, day[qn], " | ".join(
                "%s | %s" % (num(v), pct(rel(v, day[qn])) if v is not None else "–")
                for v in vals)))
    w("")
    w("### Largest relative error over every bucket of the period, p50 / p90 / p99 / p999")
    w("")
    w("Minute: 1,440 buckets, hour: 24, day: 1. Etsy's minute is one flush's `upper_NN`; its "
      "hour and day are the average of their flushes, as Graphite rolls them up.")
    w("")
    heads = ["GottWall %s" % STORAGE_NAMES[st] for st, _ in gws] + \
        (["Etsy → Graphite"] if etsy else [])
    w("| metric | period | " + " | ".join(heads) + " |")
    w("|---|---|" + "---|" * len(heads))
    for dist in DISTS:
        for period, _ in PERIODS:
            cells = [" / ".join(pct(g["timing"][dist][period].get(q[0])) for q in QUANTILES)
                     for _, g in gws]
            if etsy:
                cells.append(" / ".join(pct(etsy["timing"][dist][period][q[0]])
                                        for q in QUANTILES))
            w("| lat.%s | %s | %s |" % (dist, period, " | ".join(cells)))
    for st, g in gws:
        w("")
        w("GottWall %s: count, min and max exact in every bucket (largest error %s); "
          "sent in %.1f s, all counted %.1f s after the first line." % (
              STORAGE_NAMES[st],
              pct(max(g["timing"][d][p][s] for d in DISTS for p, _ in PERIODS
                      for s in g["timing"][d][p] if not s.startswith("p"))),
              g["sent_s"], g["counted_s"]))
    if etsy:
        w("")
        w("### One Etsy flush (lat.*, the minute 12:00) and its hour")
        w("")
        w("| metric | count | mean | upper_90 | mean_90 | upper_99 | mean_99 | upper_99_9 | "
          "exact p99 of the minute | hour 12: Graphite p99 (avg of 60) | exact p99 of the hour |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        m = DAY0 + 12 * 3600
        for dist in DISTS:
            s = etsy["timing"][dist]["sample_flush"]
            h = etsy["timing"][dist]["sample_hour"]
            w("| lat.%s | %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %s |" % (
                dist, s["count"], num(s["mean"]), num(s["upper_90"]), num(s["mean_90"]),
                num(s["upper_99"]), num(s["mean_99"]), num(s["upper_99_9"]),
                exact[dist]["minute"][m]["p99"], num(h["graphite_p99"]), num(h["exact_p99"])))
    w("")
    w("### Sets: distinct members (exact per day: %s), largest relative error" % format(
        exact_set["day"][DAY0][0], ","))
    w("")
    heads = ["GottWall %s" % STORAGE_NAMES[st] for st, _ in gws] + \
        (["Etsy → Graphite, sum of flushes", "average of flushes"] if etsy else [])
    w("| period | " + " | ".join(heads) + " |")
    w("|---|" + "---:|" * len(heads))
    for period, _ in PERIODS:
        cells = [pct(g["set"].get(period)) for _, g in gws]
        if etsy:
            cells += [pct(etsy["set"][period]["sum"]), pct(etsy["set"][period]["avg"])]
        w("| %s%s | %s |" % (period, " (not judged)" if period == "minute" else "",
                             " | ".join(cells)))
    if gws:
        w("")
        w("The day's distinct count: " + ", ".join(
            "%s %s" % (STORAGE_NAMES[st], format(g["set"]["day_value"], ","))
            for st, g in gws) + ".")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=".", help="build dir with gottwall and .libs")
    ap.add_argument("--storage", default="memory,redis,postgres",
                    help="comma-separated, run in turn: memory, redis, postgres (or none)")
    ap.add_argument("--etsy", dest="etsy", action="store_true", default=None)
    ap.add_argument("--no-etsy", dest="etsy", action="store_false")
    ap.add_argument("--etsy-flush-ms", type=int, default=250)
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--set-members", type=int, default=1000000)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", help="also write the report (markdown) here")
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    storages = [st for st in args.storage.split(",") if st and st != "none"]
    for st in storages:
        if st not in STORAGE_NAMES:
            ap.error("--storage: %r is not memory, redis or postgres" % st)
    if args.etsy is None:
        args.etsy = os.path.exists(os.path.join(SRCDIR, "node_modules", "statsd", "stats.js"))

    t0 = time.time()
    lat = {d: gen_latencies(d, args.events, args.seed) for d in DISTS}
    members = gen_members(args.set_members, args.seed)
    exact = {d: exact_timing(lat[d]) for d in DISTS}
    exact_set = exact_sets(members)
    log("generated and computed the exact answers in %.1f s" % (time.time() - t0))

    failures = []
    gws, etsy = [], None
    for st in storages:
        g, f = run_gottwall(args, st, lat, exact, members, exact_set)
        gws.append((st, g))
        failures += f
    if args.etsy:
        etsy, f = run_etsy(args, lat, exact, members, exact_set)
        failures += f
    text = report(args, exact, exact_set, gws, etsy)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gottwall": dict(gws), "etsy": etsy, "args": vars(args)}, f, indent=1,
                      default=str)
    if failures:
        print("\nFAIL: %d check(s) failed; the first:" % len(failures))
        for line in failures[:20]:
            print("  " + line)
        sys.exit(1)
    print("\nOK: every check passed")


if __name__ == "__main__":
    main()
