"""RETENTION with the postgres storage, the real daemon and a real
PostgreSQL (issue 14).

test_expiry_drops_old_minutes: minute cells written 2 days ago (the daemon
first runs without RETENTION) are gone from PostgreSQL after a restart with
RETENTION = { minute = "1d"; } and RETENTION_INTERVAL = 1: their partition
is detached and dropped, the series' minute slots are cleared, while their
hour and day cells stay; the tables are read directly.

test_flushes_never_wait_for_the_expiry: an expiry with real work (old
partitions holding 720,000 cells, 30,000 quiet series whose minute slots
are old) runs while events keep coming and flushes keep committing; the
server runs with log_lock_waits = on and deadlock_timeout = 10ms, and
pg_locks is sampled every few ms: no flush connection ever waits for a
lock (the expiry's own connection may wait for the flushes: that is how
DETACH ... CONCURRENTLY works).
"""

import re
import threading
import time

from gwtest import Daemon, run_tests, wait_for
from services import PostgresServer, plugin_built, skip

if not plugin_built("postgres"):
    skip("the postgres storage was not built (configure found no libpq)")

PROJECT = "test_project"
DAY = 86400


def bucket(t, size):
    return int(t) - int(t) % size


def ymd(t):
    return time.strftime("%Y%m%d", time.gmtime(t))


def value(d, name, period, t, **f):
    size = {"minute": 60, "hour": 3600, "day": DAY}[period]
    b = bucket(t, size)
    r = d.stats(PROJECT, name, period=period, from_date=b, to_date=b, **f)
    return r["range"][0][1] if r["range"] else 0


def passes(d):
    text = d.request("GET", "/metrics")[2].decode()
    m = re.search(r"^gottwall_storage_expiry_passes_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0


def test_expiry_drops_old_minutes():
    now = time.time()
    old = bucket(now - 2 * DAY, 3600) + 600  # two minutes in one hour
    part = "gottwall_cells_minute_%s" % ymd(old)
    with PostgresServer() as pg:
        d = Daemon(storage="postgres", storage_settings=pg.settings())
        try:
            d.start()
            st, body = d.send_http(PROJECT, [
                {"n": "aged", "ts": old, "f": {"os": "linux"}},
                {"n": "aged", "ts": old + 60, "f": {"os": "linux"}}])
            assert st == 200, body
            wait_for(lambda: value(d, "aged", "minute", old + 60) == 1,
                     what="stored")
            assert value(d, "aged", "minute", old) == 1
            # The older minute went to its day's partition; the newer is
            # each series' slot.
            assert pg.sql("SELECT tableoid::regclass, count(*) FROM"
                          " gottwall_cells WHERE period = 0 GROUP BY 1") == \
                "%s|2\n" % part
            slots = ("SELECT string_agg(concat_ws(':', filter_value, b0, s0,"
                     " b1, s1, b2, s2), ',' ORDER BY series) FROM"
                     " gottwall_series WHERE metric = 'aged'")
            h, dd = bucket(old, 3600), bucket(old, DAY)
            assert pg.sql(slots) == ":%d:1:%d:2:%d:2,linux:%d:1:%d:2:%d:2\n" % (
                old + 60, h, dd, old + 60, h, dd), pg.sql(slots)
            assert d.stop() == 0

            d.extra["RETENTION"] = {"minute": "1d"}
            d.extra["RETENTION_INTERVAL"] = 1
            d.start()
            wait_for(lambda: passes(d) >= 2, timeout=30,
                     what="two expiry passes")
            log = d.log()
            assert re.search(r"info \[storage:postgres[^\]]*\] postgres: "
                             r"expire: partition %s detached \(minute buckets"
                             r" before \d+\); dropping it" % part, log), log
            assert re.search(r"info \[storage:postgres[^\]]*\] retention: "
                             r"minute buckets before \S+ removed \(kept 1d\)",
                             log), log
            # Gone from PostgreSQL: the partition, its cells and the slots.
            assert pg.sql("SELECT to_regclass('%s')" % part) == "\n"
            assert pg.sql("SELECT count(*) FROM gottwall_cells WHERE"
                          " period = 0") == "0\n"
            assert pg.sql(slots) == ":%d:2:%d:2,linux:%d:2:%d:2\n" % (
                h, dd, h, dd), pg.sql(slots)
            cut = int(pg.sql("SELECT before FROM gottwall_expiry"
                             " WHERE period = 0"))
            assert bucket(now - DAY, 60) <= cut <= bucket(time.time() - DAY,
                                                          60) + 60, cut
            # The hour and day cells are untouched, and read back.
            assert value(d, "aged", "hour", old) == 2
            assert value(d, "aged", "day", old, filter_name="os",
                         filter_value="linux") == 2
            assert d.total(PROJECT, "aged") == 2
            assert d.metric("gottwall_storage_expiry_errors_total") == 0
            assert d.stop() == 0
        finally:
            d.cleanup()


class Sampler(threading.Thread):
    """Samples pg_locks every few ms: every lock a gottwall connection
    waits for, with who holds it; and the old partitions and batches
    committed, to show the expiry and the flushes overlapped."""

    def __init__(self, pg, cut_day):
        super().__init__(daemon=True)
        self.pg, self.cut_day = pg, cut_day
        self.waits, self.samples = [], []
        self.stop = threading.Event()

    def run(self):
        q = ("SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE"
             " 'gottwall\\_cells\\_minute\\_%%' AND relname < 'gottwall_cells"
             "_minute_%s'), (SELECT count(*) FROM gottwall_batches),"
             " (SELECT string_agg(a.application_name || ' waits for ' ||"
             " l.locktype || ' ' || l.mode || ' held by ' ||"
             " coalesce((SELECT string_agg(b.application_name, '+') FROM"
             " pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))),"
             " '?'), '; ') FROM pg_locks l JOIN pg_stat_activity a"
             " ON a.pid = l.pid WHERE NOT l.granted"
             " AND a.application_name LIKE 'gottwall%%')" % self.cut_day)
        while not self.stop.is_set():
            old, batches, waits = self.pg.sql(q).rstrip("\n").split("|")
            self.samples.append((time.time(), int(old), int(batches)))
            if waits:
                self.waits.append(waits)
            time.sleep(0.003)


def test_flushes_never_wait_for_the_expiry():
    now = time.time()
    days = [bucket(now - k * DAY, DAY) for k in range(3, 13)]
    opts = {"log_lock_waits": "on", "deadlock_timeout": "10ms",
            "log_line_prefix": "'%m [%p] %a: '"}
    with PostgresServer(options=opts) as pg:
        d = Daemon(storage="postgres", storage_settings=pg.settings())
        try:
            d.start()
            # One event on each old day makes its minute partition.
            st, body = d.send_http(PROJECT, [{"n": "old", "ts": t + 30}
                                             for t in days])
            assert st == 200, body
            wait_for(lambda: value(d, "old", "minute", days[0] + 30) == 1,
                     what="stored")
            assert d.stop() == 0
            # Old cells: 50 series x 1,440 minutes x 10 days; and 30,000
            # quiet series whose minute slot is 3 days old.
            pg.sql("INSERT INTO gottwall_series (project, metric, filter_name,"
                   " filter_value, series) SELECT '%s', 'old', 'n', i::text, 1"
                   " FROM generate_series(1, 50) i" % PROJECT)
            pg.sql("INSERT INTO gottwall_cells SELECT s.id, 0, d.d + m * 60,"
                   " 1, 1, 1, 0 FROM gottwall_series s, unnest(ARRAY[%s]::int8[])"
                   " AS d(d), generate_series(0, 1439) m WHERE s.metric = 'old'"
                   " AND s.series = 1 ON CONFLICT DO NOTHING"
                   % ",".join(str(t) for t in days))
            pg.sql("INSERT INTO gottwall_series (project, metric, filter_name,"
                   " filter_value, series, b0, k0, s0, c0, t0) SELECT '%s',"
                   " 'quiet', 'n', i::text, 1, %d, 1, 1, 1, 0"
                   " FROM generate_series(1, 30000) i" % (PROJECT, days[0]))
            assert pg.sql("SELECT count(*) FROM gottwall_cells WHERE period = 0"
                          ) == "%d\n" % (50 * 1440 * 10 + 9), \
                pg.sql("SELECT count(*) FROM gottwall_cells WHERE period = 0")

            d.extra["RETENTION"] = {"minute": "1d"}
            d.extra["RETENTION_INTERVAL"] = 1
            sampler = Sampler(pg, ymd(now - DAY))
            stop = threading.Event()
            sent = [0]

            def feed():
                # Two minutes a request: the older one is a cell of
                # today's partition, so every flush inserts into
                # gottwall_cells_minute while its old partitions go.
                while not stop.is_set():
                    st, _ = d.send_http(PROJECT, [
                        {"n": "live", "ts": int(time.time()) - 120},
                        {"n": "live"}])
                    if st == 200:
                        sent[0] += 2
                    time.sleep(0.02)

            # Another writer (as another aggregator's long flush would) holds
            # today's minute partition in transactions of 300 ms: a DDL that
            # conflicts with writers would wait for it, and every flush of
            # the daemon queue behind that DDL.
            other_id = int(pg.sql(
                "INSERT INTO gottwall_series (project, metric, filter_name,"
                " filter_value, series) VALUES ('%s', 'other', '', '', 0)"
                " RETURNING id" % PROJECT).split()[0])

            def other():
                while not stop.is_set():
                    # Three minutes back, but never before today: the
                    # storage makes today's partition, not yesterday's (a
                    # CI run at 00:02 UTC wrote into 23:59 and failed with
                    # "no partition of relation gottwall_cells_minute").
                    now = time.time()
                    b = max(bucket(now, 60) - 180, bucket(now, 86400))
                    pg.sql("BEGIN; INSERT INTO gottwall_cells VALUES (%d, 0, %d,"
                           " 1, 1, 1, 0) ON CONFLICT (series_id, period, bucket)"
                           " DO UPDATE SET count = gottwall_cells.count + 1;"
                           " SELECT pg_sleep(0.3); COMMIT" % (other_id, b))

            d.start()
            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            writer = threading.Thread(target=other, daemon=True)
            writer.start()
            sampler.start()
            wait_for(lambda: passes(d) >= 2, timeout=60,
                     what="two expiry passes")
            stop.set()
            feeder.join()
            writer.join()
            wait_for(lambda: d.total(PROJECT, "live") == sent[0], timeout=10,
                     what="every live event stored")
            sampler.stop.set()
            sampler.join()

            # The expiry did its work: no old partition, no old slot.
            assert pg.sql("SELECT count(*) FROM pg_class WHERE relname LIKE"
                          " 'gottwall\\_cells\\_minute\\_%%' AND relname <"
                          " 'gottwall_cells_minute_%s'" % ymd(now - DAY)) == "0\n"
            assert pg.sql("SELECT count(*) FROM gottwall_series WHERE b0 <"
                          " (SELECT before FROM gottwall_expiry WHERE"
                          " period = 0)") == "0\n"
            # No gottwall flush ever waited for a lock: not in pg_locks,
            # not in the server's log (log_lock_waits: waits over 10 ms).
            flush_waits = [w for w in sampler.waits
                           if re.search(r"(^|; )gottwall waits", w)]
            assert not flush_waits, flush_waits
            with open(pg.log_path) as f:
                log = f.read()
            waits = re.findall(r"^.* gottwall: LOG:  process \d+ (?:still "
                               r"waiting|acquired).*$", log, re.M)
            assert not waits, waits
            # The expiry's connection did wait, for the other writer's
            # transactions (DETACH ... CONCURRENTLY waits for those that
            # may still use the partition): the two overlapped.
            assert re.search(r"gottwall expiry: LOG:  process \d+ still "
                             r"waiting for ShareLock on virtual transaction",
                             log), log[-3000:]
            # Flushes committed while the old partitions went one by one.
            during = [s for s in sampler.samples if 0 < s[1] < 10]
            assert during, sampler.samples[:5]
            assert max(s[2] for s in during) > min(s[2] for s in during), \
                during
            assert d.metric("gottwall_storage_expiry_errors_total") == 0
            first = min(s[0] for s in sampler.samples if s[1] < 10)
            last = min(s[0] for s in sampler.samples if s[1] == 0)
            print("expiry: 10 partitions went in %.2f s; %d samples, %d "
                  "during the drops, %d waits of the expiry connection; %d "
                  "events sent meanwhile, %d batches committed during the "
                  "drops" % (last - first, len(sampler.samples), len(during),
                             len(sampler.waits), sent[0],
                             max(s[2] for s in during) -
                             min(s[2] for s in during)))
            assert d.stop() == 0
        finally:
            d.cleanup()


if __name__ == "__main__":
    run_tests([test_expiry_drops_old_minutes,
               test_flushes_never_wait_for_the_expiry])
