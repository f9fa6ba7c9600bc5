"""The postgres storage's partitioned cells (schema 5), on a real PostgreSQL.

A database of schema version 3, and one of version 4, are made with the old
plugin's DDL (kept below) and filled with cells of every period, on several
days and years, and with slots; a running gottwall migrates each one. Every
cell and slot must be there afterwards, each cell in the partition of its
period and span (computed here independently: a UTC day of minutes, a week
from Monday of hours, a calendar year of the others), and every value must
read back through the read API; new events add to the migrated cells."""

import calendar
import datetime
import sys

from gwtest import Daemon, wait_for
from services import PostgresServer, plugin_built, skip

if not plugin_built("postgres"):
    skip("the postgres storage was not built (configure found no libpq)")

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


SLOTS = ", ".join("b%d bigint, k%d smallint, s%d double precision, c%d bigint,"
                  " t%d double precision" % ((p,) * 5) for p in range(7))

# Version 3 as the plugin of commit 79e2f46's parent wrote it (schema.c's
# migrations 1 to 3 applied): a series table with slots, and gottwall_cells
# keyed by (series_id, period, bucket).
V3 = """
CREATE TABLE gottwall_schema (version integer NOT NULL);
INSERT INTO gottwall_schema VALUES (1), (2), (3);
CREATE TABLE gottwall_series (id bigserial PRIMARY KEY, project text NOT NULL,
  metric text NOT NULL, filter_name text NOT NULL, filter_value text NOT NULL,
  series smallint NOT NULL, %s, CONSTRAINT gottwall_series_key
  UNIQUE (project, metric, filter_name, filter_value, series))
  WITH (fillfactor = 45);
CREATE TABLE gottwall_cells (series_id bigint NOT NULL, period smallint NOT NULL,
  bucket bigint NOT NULL, kind smallint NOT NULL, sum double precision NOT NULL,
  count bigint NOT NULL, ts double precision NOT NULL,
  PRIMARY KEY (series_id, period, bucket)) WITH (fillfactor = 70);
CREATE TABLE gottwall_metrics (project text NOT NULL, metric text NOT NULL,
  kind smallint NOT NULL, PRIMARY KEY (project, metric));
CREATE TABLE gottwall_documents (ns text NOT NULL, id text NOT NULL,
  data bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ns, id));
CREATE TABLE gottwall_batches (id text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX gottwall_batches_applied_at ON gottwall_batches (applied_at);
""" % SLOTS

# Version 4 adds the shared replay cache.
V4 = V3.replace("VALUES (1), (2), (3);", "VALUES (1), (2), (3), (4);") + """
CREATE TABLE gottwall_nonces (project text NOT NULL, nonce text NOT NULL,
  expires_at double precision NOT NULL, PRIMARY KEY (project, nonce));
CREATE INDEX gottwall_nonces_expires_at ON gottwall_nonces (expires_at);
"""

PERIODS = ["minute", "hour", "day", "week", "month", "year", "all"]


def utc(*a):
    return calendar.timegm(datetime.datetime(*a).timetuple())


def span_name(period, bucket):
    """The partition a cell must be in: gottwall_cells_<period>_<start>."""
    if period == 6:
        return "gottwall_cells_all"
    d = datetime.datetime.utcfromtimestamp(bucket).date()
    if period == 1:
        d -= datetime.timedelta(days=d.weekday())  # Monday
        if d < datetime.date(1970, 1, 1):
            d = datetime.date(1970, 1, 1)
    elif period >= 2:
        d = d.replace(month=1, day=1)
    return "gottwall_cells_%s_%s" % (PERIODS[period], d.strftime("%Y%m%d"))


NOW = utc(*datetime.datetime.utcnow().timetuple()[:4])  # this hour
SERIES = [  # id, metric, filter name, value, kind
    (1, "visits", "", "", 1),
    (2, "visits", "device", "ios", 1),
    (3, "latency", "", "", 2),
    (4, "temp", "", "", 3),
]
# Cells of gottwall_cells: (period, bucket) on several days and years,
# the first week of 1970 (cut to start on 1970-01-01), a week that
# straddles a year (Monday 2013-12-30) and now.
CELLS = [(0, utc(2014, 2, 15, 0, 0)), (0, utc(2014, 2, 15, 23, 59)),
         (0, utc(2014, 2, 16, 0, 1)), (0, NOW - 86400 * 2), (0, 60),
         (1, utc(2014, 2, 15, 4)), (1, utc(2014, 2, 10)), (1, utc(2014, 2, 9, 23)),
         (1, 3600), (1, NOW - 7200),
         (2, utc(2013, 12, 31)), (2, utc(2014, 2, 15)),
         (3, utc(2013, 12, 30)), (3, utc(2014, 2, 10)),
         (4, utc(2014, 1, 1)), (4, utc(2014, 2, 1)),
         (5, utc(2013, 1, 1)), (5, utc(2014, 1, 1))]
# Slots: each series' newest bucket of each period (after every cell).
SLOT_AT = [NOW - 60, NOW, utc(2014, 2, 16), utc(2014, 2, 17), utc(2014, 3, 1),
           utc(2015, 1, 1), 0]


def fill_sql():
    rows, slots = [], []
    for sid, metric, fname, fvalue, kind in SERIES:
        for i, (period, bucket) in enumerate(CELLS):
            s, c, ts = sid * 1000 + i + 0.25, 1 + i % 3, 0
            if kind == 3:
                ts = bucket + 7.5
            rows.append("(%d, %d, %d, %d, %r, %d, %r)"
                        % (sid, period, bucket, kind, s, c, ts))
        vals = []
        for p in range(7):
            if sid == 2 and p in (3, 4):  # some slots empty
                vals.append("NULL, NULL, NULL, NULL, NULL")
                continue
            ts = SLOT_AT[p] + 3.5 if kind == 3 else 0
            vals.append("%d, %d, %r, %d, %r" % (SLOT_AT[p], kind,
                                                sid * 100 + p + 0.5, 2 + p, ts))
        slots.append("(%d, 'shop', '%s', '%s', '%s', %d, %s)"
                     % (sid, metric, fname, fvalue, 1 if fname else 0,
                        ", ".join(vals)))
    return ("INSERT INTO gottwall_series VALUES %s;"
            " SELECT setval('gottwall_series_id_seq', 4);"
            " INSERT INTO gottwall_cells VALUES %s;"
            " INSERT INTO gottwall_metrics VALUES ('shop', 'visits', 1),"
            " ('shop', 'latency', 2), ('shop', 'temp', 3);"
            % (", ".join(slots), ", ".join(rows)))


# Every stored cell: gottwall_cells rows (with their table) and the slots.
EVERY = ("SELECT 'c', c.tableoid::regclass::text, c.series_id, c.period,"
         " c.bucket, c.kind, c.sum, c.count, c.ts FROM gottwall_cells c"
         " UNION ALL SELECT 's', '', s.id, v.* FROM gottwall_series s"
         " CROSS JOIN LATERAL (VALUES %s) AS v(p, b, k, s, c, t)"
         " WHERE v.b IS NOT NULL ORDER BY 1, 3, 4, 5"
         % ", ".join("(%d, b%d, k%d, s%d, c%d, t%d)" % ((p,) * 6)
                     for p in range(7)))


def rows(pg, sql):
    return [r.split("|") for r in pg.sql(sql).splitlines()]


def value(kind, s, c):
    return s / c if kind == 2 else s


def migrate(version, ddl):
    with PostgresServer() as pg:
        pg.sql(ddl)
        pg.sql(fill_sql())
        before = rows(pg, EVERY)
        check("v%d: cells made" % version, len(before),
              len(SERIES) * len(CELLS) + len(SERIES) * 7 - 2)
        with Daemon(command=("start",), storage="postgres",
                    storage_settings=pg.settings()) as d:
            check("v%d: migrated" % version, pg.sql(
                "SELECT string_agg(version::text, ',' ORDER BY version)"
                " FROM gottwall_schema"), "1,2,3,4,5,6\n")
            after = rows(pg, EVERY)
            # The same cells and slots, every field; each cell in the
            # partition of its span.
            check("v%d: every cell and slot kept" % version,
                  [r[:1] + r[2:] for r in after],
                  [r[:1] + r[2:] for r in before])
            for r in after:
                if r[0] == "c":
                    check("v%d: partition of %s" % (version, r),
                          r[1], span_name(int(r[3]), int(r[4])))
            check("v%d: old table gone" % version, pg.sql(
                "SELECT to_regclass('gottwall_cells_4') IS NULL"), "t\n")
            check("v%d: partitioned" % version, pg.sql(
                "SELECT partstrat FROM pg_partitioned_table WHERE partrelid ="
                " 'gottwall_cells'::regclass"), "l\n")
            # Every value through the read API: a cell, or a slot (a bucket
            # is in one of them, never both here).
            names = {sid: (m, f, v) for sid, m, f, v, _ in SERIES}
            for r in after:
                sid, period, bucket = int(r[2]), int(r[3]), int(r[4])
                kind, s, c = int(r[5]), float(r[6]), int(r[7])
                m, f, v = names[sid]
                q = {} if not f else {"filter_name": f, "filter_value": v}
                if period != 6:
                    q.update(from_date=bucket, to_date=bucket)
                got = d.stats("shop", m, period=PERIODS[period], **q)["range"]
                check("v%d: read back %s" % (version, r), got,
                      [[bucket, value(kind, s, c)]])
            # New events add to the migrated cells (a minute slot moving on
            # spills the old one into its partition).
            st, _ = d.send_http("shop", [{"n": "visits", "ts": NOW + 30},
                                         {"n": "visits", "ts": NOW + 90}])
            check("v%d: event accepted" % version, st, 200)
            total = value(1, 100 + 6 + 0.5, 8) + 2
            wait_for(lambda: d.total("shop", "visits") == total, timeout=10,
                     what="the new events in the all slot")
            check("v%d: now's hour" % version, d.stats(
                "shop", "visits", period="hour", from_date=NOW,
                to_date=NOW)["range"], [[NOW, 100 + 1 + 0.5 + 2]])
            check("v%d: the old minute slot spilled" % version, pg.sql(
                "SELECT tableoid::regclass, sum FROM gottwall_cells WHERE"
                " series_id = 1 AND period = 0 AND bucket = %d" % (NOW - 60)),
                "%s|100.5\n" % span_name(0, NOW - 60))


migrate(3, V3)
migrate(4, V4)

for f in failures:
    print("FAIL: " + f)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
