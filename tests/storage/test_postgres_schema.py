"""The postgres storage's schema and data, read back with psql.

Runs the conformance tests against a fresh PostgreSQL cluster, then checks
the schema version, the tables and their keys, that hostile names were
stored verbatim (no SQL injection: the schema is unchanged), the applied
batch ids, and that a second start does not migrate again. Then a database
of schema version 2 with data in it is migrated by a running gottwall: its
cells read back, and new events add to them."""

import re
import subprocess
import sys
import time

from gwtest import Daemon, wait_for
from services import PostgresServer, plugin_built, skip, storage_test_binary

if not plugin_built("postgres"):
    skip("the postgres storage was not built (configure found no libpq)")

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


with PostgresServer() as pg:
    args = [storage_test_binary(), "postgres", "DSN=" + pg.dsn]
    p = subprocess.run(args, capture_output=True, text=True, timeout=900)
    sys.stderr.write(p.stdout + p.stderr)
    if p.returncode != 0:
        print("FAIL: the conformance tests failed")
        sys.exit(1)
    run = re.search(r"\(run (ct[0-9a-f]+)\)", p.stderr).group(1)

    # Every stored cell: the gottwall_cells rows and the series' slots.
    cells = ("(SELECT s.project, s.metric, s.filter_name, s.filter_value,"
             " s.series, c.period, c.bucket, c.kind, c.sum, c.count, c.ts"
             " FROM gottwall_cells c JOIN gottwall_series s"
             " ON s.id = c.series_id UNION ALL"
             " SELECT s.project, s.metric, s.filter_name, s.filter_value,"
             " s.series, v.* FROM gottwall_series s CROSS JOIN LATERAL"
             " (VALUES (0, b0, k0, s0, c0, t0), (1, b1, k1, s1, c1, t1),"
             " (2, b2, k2, s2, c2, t2), (3, b3, k3, s3, c3, t3),"
             " (4, b4, k4, s4, c4, t4), (5, b5, k5, s5, c5, t5),"
             " (6, b6, k6, s6, c6, t6))"
             " AS v(period, bucket, kind, sum, count, ts)"
             " WHERE v.bucket IS NOT NULL) AS x")

    check("schema versions", pg.sql("SELECT string_agg(version::text, ','"
                                     " ORDER BY version) FROM gottwall_schema"),
          "1,2,3,4,5,6\n")
    # The tables but the partitions of gottwall_cells (test_postgres_partitions
    # checks those).
    check("tables", pg.sql("SELECT string_agg(relname, ',' ORDER BY relname)"
                           " FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                           " AND relkind IN ('r', 'p') AND NOT relispartition"),
          "gottwall_batches,gottwall_cells,gottwall_documents,gottwall_expiry,"
          "gottwall_metrics,gottwall_nonces,gottwall_schema,gottwall_series,"
          "gottwall_sketches\n")
    # Schema 6: the timing and set cells' sketches, and their expiry index.
    check("sketches key", pg.sql(
        "SELECT pg_get_indexdef('gottwall_sketches_pkey'::regclass)"),
        "CREATE UNIQUE INDEX gottwall_sketches_pkey ON public.gottwall_sketches"
        " USING btree (series_id, period, bucket)\n")
    check("sketches expiry index", pg.sql(
        "SELECT pg_get_indexdef('gottwall_sketches_expiry'::regclass)"),
        "CREATE INDEX gottwall_sketches_expiry ON public.gottwall_sketches"
        " USING btree (period, bucket)\n")
    check("sketches written by the suite", pg.sql(
        "SELECT count(*) > 0 FROM gottwall_sketches"), "t\n")
    check("nonces key", pg.sql(
        "SELECT pg_get_indexdef('gottwall_nonces_pkey'::regclass)"),
        "CREATE UNIQUE INDEX gottwall_nonces_pkey ON public.gottwall_nonces"
        " USING btree (project, nonce)\n")
    check("nonces claimed by the suite", pg.sql(
        "SELECT count(*) FROM gottwall_nonces WHERE project = '%s_nonce'"
        % run), "6\n")
    check("cells key", pg.sql(
        "SELECT pg_get_indexdef('gottwall_cells_pkey'::regclass)"),
        "CREATE UNIQUE INDEX gottwall_cells_pkey ON ONLY public.gottwall_cells"
        " USING btree (series_id, period, bucket)\n")
    check("series key", pg.sql(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid ="
        " 'gottwall_series'::regclass AND NOT indisprimary"),
        "CREATE UNIQUE INDEX gottwall_series_key"
        " ON public.gottwall_series USING btree (project, metric, filter_name,"
        " filter_value, series)\n")
    hostile = "o'rders\"; DROP TABLE x; --"
    check("hostile metric stored verbatim", pg.sql(
        "SELECT count(*) FROM gottwall_metrics WHERE project = '%s_hostile' AND"
        " metric = $q$%s$q$" % (run, hostile)), "1\n")
    check("hostile filter stored verbatim", pg.sql(
        "SELECT sum FROM %s WHERE project = '%s_hostile' AND"
        " metric = 'filtered' AND filter_name = $q$%s$q$ AND period = 2"
        % (cells, run, hostile)), "100\n")
    check("total series has series 0 and '' names", pg.sql(
        "SELECT series, filter_name, filter_value, sum FROM %s"
        " WHERE project = '%s_filters' AND metric = 'orders' AND series = 0"
        % (cells, run)), "0|||3\n")
    check("gauge row", pg.sql(
        "SELECT kind, sum, count, ts FROM %s WHERE project ="
        " '%s_gauge' AND series = 0" % (cells, run)), "3|22|4|1392422600\n")
    check("slot columns", pg.sql(
        "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod),"
        " ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid ="
        " 'gottwall_series'::regclass AND attnum > 6 AND NOT attisdropped"),
        ",".join("b%d:bigint,k%d:smallint,s%d:double precision,c%d:bigint,"
                 "t%d:double precision" % ((p,) * 5) for p in range(7)) + "\n")
    check("series fillfactor", pg.sql(
        "SELECT reloptions FROM pg_class WHERE relname = 'gottwall_series'"),
        "{fillfactor=45}\n")
    # A minute bucket that moved on: the older one went to gottwall_cells,
    # the newer is the slot (test_counter_sums: T0 and T0 + 60).
    check("cells moved out of a slot", pg.sql(
        "SELECT c.bucket, c.sum FROM gottwall_cells c JOIN gottwall_series s"
        " ON s.id = c.series_id WHERE s.project = '%s_counter' AND"
        " s.metric = 'orders' AND c.period = 0" % run), "1392422400|5\n")
    check("the slot", pg.sql(
        "SELECT b0, s0, c0 FROM gottwall_series WHERE project = '%s_counter'"
        " AND metric = 'orders'" % run), "1392422460|6|2\n")
    check("kinds", pg.sql(
        "SELECT string_agg(metric || '=' || kind, ',' ORDER BY metric) FROM"
        " gottwall_metrics WHERE project = '%s_meta'" % run),
        "latency=2,orders=1,temp=3\n")
    check("batch ids", pg.sql(
        "SELECT count(*) FROM gottwall_batches WHERE id IN ('%s:once:1',"
        " '%s:once:2', '%s:large')" % (run, run, run)), "3\n")
    check("document bytes", pg.sql(
        "SELECT convert_from(data, 'UTF8') FROM gottwall_documents WHERE"
        " ns = 'embedded' AND id = '%s-doc-1'" % run), "{}\n")

    # A second run on the same database finds the schema in place.
    p = subprocess.run(args, capture_output=True, text=True, timeout=900,
                       env=dict(__import__("os").environ, CK_RUN_CASE="conformance",
                                GW_STORAGE_TEST_DEBUG="1"))
    check("second run passes", p.returncode, 0)
    check("no second migration", "schema migrated" in p.stderr, False)
    check("schema still at version 6", pg.sql("SELECT count(*) FROM gottwall_schema"),
          "6\n")

# A database of schema version 2 (as 0.1.0 development builds left it), with
# data: a running gottwall migrates it and reads the old cells, and new
# events add to them.
V2 = """
CREATE TABLE gottwall_schema (version integer NOT NULL);
INSERT INTO gottwall_schema VALUES (1), (2);
CREATE TABLE gottwall_series (id bigserial PRIMARY KEY, project text NOT NULL,
  metric text NOT NULL, filter_name text NOT NULL, filter_value text NOT NULL,
  series smallint NOT NULL, CONSTRAINT gottwall_series_key
  UNIQUE (project, metric, filter_name, filter_value, series));
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
INSERT INTO gottwall_series VALUES (1, 'shop', 'visits', '', '', 0),
  (2, 'shop', 'visits', 'device', 'ios', 1), (3, 'shop', 'temp', '', '', 0);
SELECT setval('gottwall_series_id_seq', 3);
INSERT INTO gottwall_cells VALUES (1, 6, 0, 1, 5, 5, 0),
  (1, 2, 1392422400, 1, 7, 7, 0), (2, 2, 1392422400, 1, 3, 3, 0),
  (3, 2, 1392422400, 3, 20, 1, 1392454739);
INSERT INTO gottwall_metrics VALUES ('shop', 'visits', 1), ('shop', 'temp', 3);
"""
DAY = 1392422400
TS = 1392454739

with PostgresServer() as pg:
    pg.sql(V2)
    with Daemon(command=("start",), storage="postgres",
                storage_settings=pg.settings()) as d:
        check("v2 metadata", d.get_json("/api/v1/shop/metrics"),
              {"visits": {"device": ["ios"]}, "temp": {}})
        check("v2 total", d.total("shop", "visits"), 5)
        check("v2 day", d.stats("shop", "visits", period="day", from_date=DAY,
                                to_date=DAY)["range"], [[DAY, 7]])
        check("v2 filter day", d.stats(
            "shop", "visits", period="day", from_date=DAY, to_date=DAY,
            filter_name="device", filter_value="ios")["range"], [[DAY, 3]])
        check("migrated to version 6", pg.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version)"
            " FROM gottwall_schema"), "1,2,3,4,5,6\n")
        status, _ = d.send_http("shop", {"n": "visits", "ts": TS + 60,
                                         "f": {"device": "ios"}})
        check("event accepted", status, 200)
        wait_for(lambda: d.total("shop", "visits") == 6, timeout=10,
                 what="old + new in the all bucket")
        check("old + new day", d.stats("shop", "visits", period="day",
                                       from_date=DAY, to_date=DAY)["range"],
              [[DAY, 8]])
        check("old + new filter day", d.stats(
            "shop", "visits", period="day", from_date=DAY, to_date=DAY,
            filter_name="device", filter_value="ios")["range"], [[DAY, 4]])
        # An older gauge value keeps the v2 one; a newer one replaces it.
        status, _ = d.send_http("shop", {"n": "temp", "v": -4, "ts": TS - 10},
                                action="gauge")
        check("gauge accepted", status, 200)
        time.sleep(1.5)
        check("older gauge", d.stats("shop", "temp", period="day",
                                     from_date=DAY, to_date=DAY)["range"],
              [[DAY, 20]])
        status, _ = d.send_http("shop", {"n": "temp", "v": 21.5,
                                         "ts": TS + 30}, action="gauge")
        wait_for(lambda: d.stats("shop", "temp", period="day", from_date=DAY,
                                 to_date=DAY)["range"] == [[DAY, 21.5]],
                 timeout=10, what="the newer gauge value")
    # The v2 cells stay; the new deltas are in the slots, but for the
    # gauge's minute 08:58, which the newer value's 08:59 moved out.
    check("v2 cells kept", pg.sql(
        "SELECT string_agg(series_id || ':' || period || ':' || sum, ','"
        " ORDER BY series_id, period) FROM gottwall_cells"),
        "1:2:7,1:6:5,2:2:3,3:0:-4,3:2:20\n")
    check("slots", pg.sql(
        "SELECT b2, s2, c2, b6, s6 FROM gottwall_series WHERE id = 1"),
        "%d|1|1|0|1\n" % DAY)

for f in failures:
    print("FAIL: " + f)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
