"""The postgres storage's schema and data, read back with psql.

Runs the conformance tests against a fresh PostgreSQL cluster, then checks
the schema version, the tables and their keys, that hostile names were
stored verbatim (no SQL injection: the schema is unchanged), the applied
batch ids, and that a second start does not migrate again."""

import re
import subprocess
import sys

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

    check("schema versions", pg.sql("SELECT string_agg(version::text, ','"
                                     " ORDER BY version) FROM gottwall_schema"),
          "1,2\n")
    check("tables", pg.sql("SELECT string_agg(tablename, ',' ORDER BY tablename)"
                           " FROM pg_tables WHERE schemaname = 'public'"),
          "gottwall_batches,gottwall_cells,gottwall_documents,gottwall_metrics,"
          "gottwall_schema,gottwall_series\n")
    check("cells key", pg.sql(
        "SELECT pg_get_indexdef('gottwall_cells_pkey'::regclass)"),
        "CREATE UNIQUE INDEX gottwall_cells_pkey ON public.gottwall_cells USING "
        "btree (series_id, period, bucket)\n")
    check("series key", pg.sql(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid ="
        " 'gottwall_series'::regclass AND NOT indisprimary"),
        "CREATE UNIQUE INDEX gottwall_series_key"
        " ON public.gottwall_series USING btree (project, metric, filter_name,"
        " filter_value, series)\n")
    cells = ("gottwall_cells c JOIN gottwall_series s ON s.id = c.series_id")
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
    check("schema still at version 2", pg.sql("SELECT count(*) FROM gottwall_schema"),
          "2\n")

for f in failures:
    print("FAIL: " + f)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
