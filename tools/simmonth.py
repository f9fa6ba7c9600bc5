#!/usr/bin/env python3
"""simmonth: a simulated month of GottWall under RETENTION (issue 14).

SERIES live series (metrics sim0000.., no filter) each get one event per
simulated minute, for DAYS simulated days, sent over HTTP as one signed
batch per minute, with

    RETENTION = { minute = "7d"; hour = "90d"; };  RETENTION_INTERVAL = 1;

The daemon has no clock of its own to advance: it runs under libfaketime
(Debian package `faketime`; LD_PRELOAD of libfaketime.so.1) with
FAKETIME_TIMESTAMP_FILE pointing at a file this generator rewrites (by
rename) to the simulated minute before it sends that minute's events,
FAKETIME_NO_CACHE=1 so the daemon reads it at every clock call, and
FAKETIME_DONT_FAKE_MONOTONIC=1 so its timers (FLUSH_INTERVAL,
RETENTION_INTERVAL, SNAPSHOT_INTERVAL) run in real time. Only the wall
clock moves: event ts, the signature windows and the retention cuts.

At the end of each simulated day named by --checkpoints (default 1, 7, 8,
14, 30) it waits until every event sent is stored, an expiry pass has run
at that clock and (memory) a snapshot begun after both is on disk, then
records the daemon's VmRSS and the snapshot's size (memory), Redis
used_memory (redis) or the database's size (postgres). All along it
samples /metrics every 50 ms and keeps gottwall_storage_flush_seconds once
per stored batch, for the p50/p99/max flush time.

--rate-test instead feeds two fresh daemons the same DAYS simulated days
as fast as it can, one with RETENTION and one without, and compares, over
the days after the minute retention is reached (where expiry cuts at
every pass), the ingest rate (events stored per second) and the daemon's
CPU time per event.

    PYTHONPATH=tests/lib /usr/bin/python3 tools/simmonth.py --build BUILD \\
        [--storage memory|redis|postgres] [--series 1000] [--days 30] \\
        [--pace 20] [--checkpoints 1,7,8,14,30] [--json OUT]
    ... tools/simmonth.py --build BUILD --rate-test --days 9

--pace is simulated minutes per real second (0: as fast as it goes). A
benchmark, not a test; docs/performance.md has the figures.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import gwtest  # noqa: E402  (the tests' helpers: config, ports, signing)
import services  # noqa: E402

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
PROJECT = "test_project"
T0 = 1767225600  # 2026-01-01T00:00:00Z, a day (and month, year) boundary
DAY_MIN = 1440
RETENTION = {"minute": "7d", "hour": "90d"}


def log(msg):
    sys.stderr.write("[simmonth %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Clock:
    """The file libfaketime reads: an absolute, frozen time."""

    def __init__(self, path):
        self.path = path
        self.now = None

    def set(self, t):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S\n", time.gmtime(t)))
        os.rename(tmp, self.path)
        self.now = t

    def env(self):
        return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "TZ": "UTC"}


class Metrics:
    """Samples /metrics on a thread: the flush time of each stored batch."""

    def __init__(self, port):
        self.port = port
        self.flushes = []  # (batches_stored_total, flush_seconds)
        self.last = {}
        self.stop_flag = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def fetch(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(gottwall_[a-z_]+) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def run(self):
        seen = 0
        while not self.stop_flag:
            try:
                m = self.fetch()
            except OSError:
                time.sleep(0.05)
                continue
            with self.lock:
                self.last = m
                b = m.get("gottwall_storage_batches_stored_total", 0)
                if b > seen:
                    if seen > 0:  # one sample per batch seen
                        self.flushes.append(m.get("gottwall_storage_flush_seconds", 0))
                    seen = b
            time.sleep(0.05)

    def get(self, name):
        with self.lock:
            return self.last.get(name, 0)

    def stop(self):
        self.stop_flag = True
        self.thread.join()


def pct(v, p):
    if not v:
        return 0
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sim:
    def __init__(self, args, retention=True, tag="run"):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="gwsim-")
        self.clock = Clock(os.path.join(self.tmp, "faketime"))
        self.backing = None
        settings = {}
        if args.storage == "redis":
            self.backing = services.RedisServer(persist=False).start()
            settings = self.backing.settings()
        elif args.storage == "postgres":
            self.backing = services.PostgresServer().start()
            settings = self.backing.settings()
        else:
            settings = {"PATH": os.path.join(self.tmp, "gottwall.snapshot"),
                        "SNAPSHOT_INTERVAL": args.snapshot_interval}
        # The HTTP timeouts at their widest: libev's ev_now() follows the
        # wall clock, which jumps a minute between two batches (and libev
        # resyncs it only every half second), so a request would look slow.
        extra = {"FLUSH_INTERVAL": args.flush_interval, "RETENTION_INTERVAL": 1,
                 "HTTP_MIN_BODY_RATE": 0, "HTTP_HEADER_TIMEOUT": 3600,
                 "HTTP_REQUEST_TIMEOUT": 86400, "HTTP_IDLE_TIMEOUT": 86400}
        if retention:
            extra["RETENTION"] = RETENTION
        self.d = gwtest.Daemon(storage=args.storage, storage_settings=settings,
                               extra=extra, tmp=os.path.join(self.tmp, "d"))
        os.makedirs(self.d.tmp, exist_ok=True)
        self.sent = 0
        self.names = ["sim%05d" % i for i in range(args.series)]
        self.conn = None
        self.tag = tag

    def start(self, t):
        self.clock.set(t)
        d = self.d
        d.write_config()
        d._log = open(d.log_path, "ab")
        env = dict(os.environ)
        env.update(self.clock.env())
        d.proc = subprocess.Popen([gwtest.GOTTWALL, "-c", d.conf_path, "-l", "info",
                                   "start"], stdout=d._log, stderr=subprocess.STDOUT,
                                  cwd=d.tmp, env=env)
        gwtest.wait_port(d.port("http"), proc=d.proc)
        gwtest.wait_port(d.server_port, proc=d.proc)
        self.metrics = Metrics(d.server_port)
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port("http"), timeout=30)

    def post(self, body, t):
        """POSTs a JSON array of events, signed at t; retried on 503."""
        pub, priv = self.d.projects[PROJECT]
        for _ in range(50):
            try:
                self.conn.request("POST", "/api/v1/%s/incr" % PROJECT, body=body,
                                  headers={"Content-Type": "application/json",
                                           "X-GottWall-Auth": gwtest.s1_header(pub, priv, ts=t)})
                r = self.conn.getresponse()
                data = r.read()
                if r.status == 200:
                    return
                if r.status != 503:
                    raise RuntimeError("POST: %d %r" % (r.status, data[:300]))
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.d.port("http"),
                                                       timeout=30)
            time.sleep(0.1)
        raise RuntimeError("POST kept failing")

    def send_minute(self, t):
        """Sets the clock to t and sends one event per series stamped t."""
        self.clock.set(t)
        self.post("[" + ",".join('{"n":"%s","ts":%d}' % (n, t) for n in self.names) + "]", t)
        self.sent += len(self.names)

    def wait_stored(self, timeout=600):
        deadline = time.time() + timeout
        while self.metrics.get("gottwall_storage_events_stored_total") < self.sent:
            if time.time() > deadline:
                raise RuntimeError("only %d of %d events stored" % (
                    self.metrics.get("gottwall_storage_events_stored_total"), self.sent))
            time.sleep(0.02)

    def settle(self, t):
        """Everything stored, one expiry pass at this clock, and (memory) a
        snapshot begun after both, on disk."""
        self.wait_stored()
        if self.d.extra.get("RETENTION"):
            p = self.metrics.get("gottwall_storage_expiry_passes_total")
            deadline = time.time() + 120
            while self.metrics.get("gottwall_storage_expiry_passes_total") < p + 2:
                if time.time() > deadline:
                    raise RuntimeError("no expiry pass in 120 s")
                time.sleep(0.05)
        if self.args.storage != "memory":
            return
        path = self.d.storage_settings["PATH"]
        since = time.time()
        deadline = since + 120
        # A snapshot begins at a flush: keep a trickle of one event a
        # flush going (one more series, "tick") until one begun now is
        # written.
        while not (os.path.exists(path) and os.stat(path).st_mtime > since + 0.2):
            if time.time() > deadline:
                raise RuntimeError("no snapshot in 120 s")
            self.send_tick(t)
            time.sleep(self.args.flush_interval / 1000.0)
        # No tick now, so no new snapshot begins: once the file has stayed
        # the same for 3 s, none is being written and its copy is gone.
        self.wait_stored()
        while True:
            m0 = os.stat(path).st_mtime
            time.sleep(3)
            if os.stat(path).st_mtime == m0:
                break

    def send_tick(self, t):
        self.post('[{"n":"tick","ts":%d}]' % t, t)
        self.sent += 1

    def measure(self, day):
        out = {"day": day, "events_sent": self.sent,
               "rss_bytes": proc_status(self.d.proc.pid, "VmRSS"),
               "hwm_bytes": proc_status(self.d.proc.pid, "VmHWM")}
        if self.args.storage == "memory":
            out["snapshot_bytes"] = os.path.getsize(self.d.storage_settings["PATH"])
        elif self.args.storage == "redis":
            info = self.backing.command("INFO", "memory")
            out["redis_used_memory"] = int(re.search(r"used_memory:(\d+)", info).group(1))
            out["redis_keys"] = self.backing.command("DBSIZE")
        else:
            out["pg_database_bytes"] = int(self.backing.sql(
                "SELECT pg_database_size(current_database())").strip())
            out["pg_tables"] = self.backing.sql(
                "SELECT relname || '=' || pg_total_relation_size(oid) FROM pg_class "
                "WHERE relkind IN ('r','p') AND relname LIKE 'gottwall%' "
                "ORDER BY 1").split()
        out["cells"] = expected_cells(self.args.series, day)
        return out

    def stop(self):
        if self.conn:
            self.conn.close()
        self.metrics.stop()
        rc = self.d.stop(timeout=300)
        if self.backing is not None:
            self.backing.cleanup()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return rc


def expected_cells(series, day):
    """Cells kept after `day` whole days (one series a metric, 7 periods)."""
    minutes = min(day, 7) * DAY_MIN
    hours = min(day, 90) * 24
    days = day
    weeks = day // 7 + 1
    return series * (minutes + hours + days + weeks + 1 + 1 + 1)


def run_month(args):
    sim = Sim(args)
    results = []
    checkpoints = sorted(int(x) for x in args.checkpoints.split(","))
    sim.start(T0)
    idle = proc_status(sim.d.proc.pid, "VmRSS")
    log("daemon pid %d, idle RSS %d KiB, tmp %s" % (sim.d.proc.pid, idle // 1024, sim.tmp))
    t_start = time.time()
    try:
        for day in range(1, args.days + 1):
            t_day = time.time()
            for m in range(DAY_MIN):
                minute = (day - 1) * DAY_MIN + m
                sim.send_minute(T0 + minute * 60 + 30)
                if args.pace:
                    ahead = t_start + (minute + 1) / args.pace - time.time()
                    if ahead > 0:
                        time.sleep(ahead)
            if day in checkpoints:
                sim.settle(T0 + day * 86400 - 30)
                r = sim.measure(day)
                r["wall_seconds"] = round(time.time() - t_start, 1)
                results.append(r)
                log("day %d: %s" % (day, json.dumps(r)))
            log("day %d sent in %.1f s (%d events so far)" % (day, time.time() - t_day, sim.sent))
            if args.pace:  # do not catch up on a checkpoint's pause
                t_start = time.time() - (day * DAY_MIN) / args.pace
        flushes = list(sim.metrics.flushes)
        summary = {"storage": args.storage, "series": args.series, "days": args.days,
                   "pace": args.pace, "flush_interval_ms": args.flush_interval,
                   "idle_rss_bytes": idle, "checkpoints": results,
                   "flush_samples": len(flushes),
                   "flush_p50": pct(flushes, 50), "flush_p99": pct(flushes, 99),
                   "flush_max": max(flushes) if flushes else 0,
                   "expiry_seconds_last": sim.metrics.get("gottwall_storage_expiry_seconds"),
                   "expiry_passes": sim.metrics.get("gottwall_storage_expiry_passes_total")}
    finally:
        rc = sim.stop()
    summary["exit"] = rc
    return summary


def run_rate(args, retention):
    """Feeds args.days days as fast as possible; the rate over the days
    after the minute retention (day 8 on)."""
    sim = Sim(args, retention=retention)
    sim.start(T0)
    try:
        from_day = min(8, args.days)
        for day in range(1, args.days + 1):
            if day == from_day:
                sim.wait_stored()
                t0, c0, n0 = time.time(), proc_cpu(sim.d.proc.pid), sim.sent
            for m in range(DAY_MIN):
                sim.send_minute(T0 + ((day - 1) * DAY_MIN + m) * 60 + 30)
        sim.wait_stored()
        t1, c1 = time.time(), proc_cpu(sim.d.proc.pid)
        n = sim.sent - n0
        out = {"retention": retention, "days_measured": "%d-%d" % (from_day, args.days),
               "events": n, "seconds": round(t1 - t0, 2),
               "events_per_s": round(n / (t1 - t0)),
               "daemon_cpu_us_per_event": round((c1 - c0) / n * 1e6, 3),
               "flush_p99": pct(sim.metrics.flushes, 99),
               "expiry_passes": sim.metrics.get("gottwall_storage_expiry_passes_total")}
    finally:
        sim.stop()
    log("rate: %s" % json.dumps(out))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("GW_BUILDDIR", os.getcwd()),
                    help="build directory (gottwall and .libs)")
    ap.add_argument("--storage", default="memory", choices=("memory", "redis", "postgres"))
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--pace", type=float, default=20,
                    help="simulated minutes per real second (0: unpaced)")
    ap.add_argument("--checkpoints", default="1,7,8,14,30")
    ap.add_argument("--flush-interval", type=int, default=1000, help="FLUSH_INTERVAL, ms")
    ap.add_argument("--snapshot-interval", type=int, default=5,
                    help="memory: SNAPSHOT_INTERVAL, real seconds")
    ap.add_argument("--rate-test", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp directories")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    if not os.path.exists(FAKETIME_LIB):
        sys.exit("simmonth: %s is missing: apt-get install faketime" % FAKETIME_LIB)
    gwtest.BUILDDIR = args.build
    gwtest.GOTTWALL = os.path.join(args.build, "gottwall")
    os.environ.setdefault("GOTTWALL_PLUGIN_PATH", os.path.join(args.build, ".libs"))
    if args.rate_test:
        res = {"with_retention": run_rate(args, True),
               "without_retention": run_rate(args, False)}
        a, b = res["with_retention"], res["without_retention"]
        res["rate_ratio"] = round(a["events_per_s"] / b["events_per_s"], 3)
        res["cpu_ratio"] = round(a["daemon_cpu_us_per_event"] / b["daemon_cpu_us_per_event"], 3)
    else:
        res = run_month(args)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
