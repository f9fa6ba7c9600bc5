/*
 * plugins/storage/postgres/sql.c: the statements of the PostgreSQL
 * storage's flush and reads (the migrations are in schema.c; BEGIN, COMMIT
 * and the like stay where they run).
 *
 * The flush, in one transaction (docs/storage-postgres.md, "Writes"): the
 * batch id first (nothing else when it was already there); the series not
 * in the connection's cache of ids, inserted with their slots filled
 * (pg_ins_sql; those that were there already are looked up); for the
 * series that were there, the slots whose bucket moves on are locked and
 * spilled into gottwall_cells (pg_spill_sql), then every slot is merged or
 * replaced (pg_upd_sql); then the cells that are not a slot (older buckets
 * of the batch, and deltas older than their slot) go to gottwall_cells
 * (pg_cells_sql); then the metrics. Every value is a binary array
 * parameter or a field of a COPY stream: no value is ever put inside SQL
 * text.
 *
 * The statements with many columns (one group per slot) are generated from
 * the slot layout, once per process: pg_stmts() builds them under
 * pthread_once, so storages on several threads never see them half built.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"

/* ---- the fixed statements ---- */

const char pg_batch_sql[] =
    "INSERT INTO gottwall_batches (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";

/* The ids of series that were there already, in order: one index lookup
 * each (a scalar subquery, so the cost follows the batch, not the table).
 * A new statement sees series that other writers committed meanwhile. */
const char pg_series_ids_sql[] =
    "SELECT (SELECT g.id FROM gottwall_series g"
    " WHERE g.project = u.project AND g.metric = u.metric"
    " AND g.filter_name = u.filter_name AND g.filter_value = u.filter_value"
    " AND g.series = u.series)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int2[])"
    " WITH ORDINALITY AS u(project, metric, filter_name, filter_value, series,"
    " ord)"
    " ORDER BY u.ord";

/*
 * a + b of two float8 expressions, saturating (issue 16): float8 addition
 * that overflows raises "value out of range: overflow", which would fail
 * the flush, and every retry of it, for good. Instead a sum that would
 * overflow is +-DBL_MAX and counted in the transaction's setting
 * gottwall.saturated (pg_metrics_sql reads it back before the commit).
 * One 'x' per saturated sum: the count is its length. Exact: below 8e307
 * both, no sum overflows; otherwise a + b overflows
 * if and only if a/2 + b/2 (halving is exact, and a part under 1 cannot
 * move a sum that large) is beyond DBL_MAX/2. Parts under 1 are not
 * halved: float8 multiplication raises "underflow" on a subnormal.
 */
#define PG_HALF(x) "(CASE WHEN abs(" x ") < 1 THEN 0 ELSE (" x ") * 0.5 END)"
#define PG_SUM(a, b)                                                          \
    "(CASE WHEN abs(" a ") < 8e307 AND abs(" b ") < 8e307 THEN (" a ") + (" b \
    ") WHEN abs(" PG_HALF(a) " + " PG_HALF(b) ") <= 8.988465674311579e307"    \
    " THEN (" a ") + (" b ") WHEN set_config('gottwall.saturated',"           \
    " coalesce(current_setting('gottwall.saturated', true), '') || 'x',"     \
    " true) <> '' THEN sign(" PG_HALF(a) " + " PG_HALF(b) ")"                 \
    " * 1.7976931348623157e308 END)"

/* How a cell of gottwall_cells takes another delta of itself (EXCLUDED):
 * counter and avg add (saturating); a gauge keeps the value with the
 * newest ts (ties: the later write). */
#define PG_CELL_MERGE                                                         \
    " ON CONFLICT (series_id, period, bucket) DO UPDATE SET"                 \
    " sum = CASE WHEN EXCLUDED.kind = 3 THEN"                                \
    "   CASE WHEN EXCLUDED.ts >= c.ts THEN EXCLUDED.sum ELSE c.sum END"      \
    "   ELSE " PG_SUM("c.sum", "EXCLUDED.sum") " END,"                       \
    " count = c.count + EXCLUDED.count,"                                     \
    " ts = GREATEST(c.ts, EXCLUDED.ts)"

/* Cells that are not a slot, in (series_id, period, bucket) order (the
 * same order for every writer). */
const char pg_cells_sql[] =
    "INSERT INTO gottwall_cells AS c (series_id, period, bucket, kind, sum,"
    " count, ts)"
    " SELECT * FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::int2[],"
    " $5::float8[], $6::int8[], $7::float8[])" PG_CELL_MERGE;

/* The last statement of a flush: the metrics, and how many sums the
 * flush saturated (PG_SUM). */
const char pg_metrics_sql[] =
    "WITH m AS (INSERT INTO gottwall_metrics (project, metric, kind)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::int2[])"
    " ON CONFLICT DO NOTHING)"
    " SELECT coalesce(length(current_setting('gottwall.saturated', true)),"
    " 0)";

const char pg_meta_sql[] =
    "SELECT m.metric, m.kind, f.filter_name, f.filter_value"
    " FROM gottwall_metrics m LEFT JOIN gottwall_series f"
    " ON f.project = m.project AND f.metric = m.metric AND f.series = 1"
    " WHERE m.project = $1 ORDER BY m.metric";

const char pg_doc_put_sql[] =
    "INSERT INTO gottwall_documents (ns, id, data) VALUES ($1, $2, $3)"
    " ON CONFLICT (ns, id) DO UPDATE SET data = EXCLUDED.data,"
    " updated_at = now()";

const char pg_doc_get_sql[] =
    "SELECT data FROM gottwall_documents WHERE ns = $1 AND id = $2";

/* doc_cas: one row changed means stored; none, a conflict. */
const char pg_doc_create_sql[] =
    "INSERT INTO gottwall_documents (ns, id, data) VALUES ($1, $2, $3)"
    " ON CONFLICT (ns, id) DO NOTHING";

const char pg_doc_cas_sql[] =
    "UPDATE gottwall_documents SET data = $3, updated_at = now()"
    " WHERE ns = $1 AND id = $2 AND data = $4";

/* doc_del: $3 "1" removes only the row whose data is $4. */
const char pg_doc_del_sql[] =
    "DELETE FROM gottwall_documents WHERE ns = $1 AND id = $2"
    " AND ($3 = '0' OR data = $4)";

const char pg_doc_list_sql[] =
    "SELECT id, data FROM gottwall_documents"
    " WHERE ns = $1 AND left(id, char_length($2)) = $2";

/* A row back: the first claim, or one whose claim had expired; none: a
 * replay. $4 is gottwall's clock, as expires_at is. */
const char pg_nonce_claim_sql[] =
    "INSERT INTO gottwall_nonces (project, nonce, expires_at)"
    " VALUES ($1, $2, $3::float8)"
    " ON CONFLICT (project, nonce) DO UPDATE SET expires_at ="
    " EXCLUDED.expires_at WHERE gottwall_nonces.expires_at <= $4::float8"
    " RETURNING 1";

const char pg_nonce_prune_sql[] =
    "DELETE FROM gottwall_nonces WHERE expires_at <= $1::float8";

/* The partitions of the periods but all (part.c), and whether each is
 * being detached (1). */
const char pg_parts_sql[] =
    "SELECT c.relname::text, i.inhdetachpending::int4 FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent IN"
    " ('gottwall_cells_minute'::regclass, 'gottwall_cells_hour'::regclass,"
    " 'gottwall_cells_day'::regclass, 'gottwall_cells_week'::regclass,"
    " 'gottwall_cells_month'::regclass, 'gottwall_cells_year'::regclass)";

const char pg_slot_days_sql[] = PG_SLOT_DAYS("gottwall_series s");

/* Records the cut of an expiry (read back by every read and spill) and
 * the start of the partition that holds it: the rows between are the
 * ones reads leave out. Returns the cut up to which the slots were
 * cleared last. */
const char pg_cut_sql[] =
    "INSERT INTO gottwall_expiry AS e (period, before, hide_from) VALUES"
    " ($1::int2, $2::int8, $3::int8) ON CONFLICT (period) DO UPDATE SET"
    " before = EXCLUDED.before, hide_from = EXCLUDED.hide_from"
    " RETURNING coalesce(e.slots_before, '-9223372036854775808'::int8)";

const char pg_prune_sql[] =
    "DELETE FROM gottwall_batches WHERE applied_at < now() - $1::interval";

/* ---- the generated statements ---- */

/* New series with their slots, from gottwall_stage_new: the names, then
 * per period the slot (bucket, kind, sum, count, ts; NULL when none).
 * Returns the rows it inserted (a series that was there already is not). */
static char pg_ins_sql[4096];

/* The slots that move on to a newer bucket (gottwall_stage_upd: the
 * series ids and the batch's slots). Locks (in id order) the
 * rows where one of them is newer than the slot, or the slot is empty,
 * and moves the old slot's cell into gottwall_cells. A row it does not
 * lock has every slot at or after the batch's bucket, and slots never go
 * back, so pg_upd_sql only merges into it or finds a delta late. */
static char pg_spill_sql[8192];

/* Every slot of the series that were there (gottwall_stage_upd). A slot of
 * the same bucket is merged, one of an older bucket replaced (pg_spill_sql
 * moved it), and a delta older than the slot left out: returned as (id, bit
 * p set in late), for pg_cells_sql. */
static char pg_upd_sql[16384];

/* The staging tables the flush COPYs its series into (temporary: one per
 * session, emptied at each commit): gottwall_stage_new (names and slots,
 * the columns of pg_ins_sql) and gottwall_stage_upd (id and slots). */
static char pg_stage_sql[2][1024];

/* One series' points: its cells of the period in the range (0 in the
 * first column), then its slot of the period if in the range (1). */
static char pg_query_sql[4096];

static pthread_once_t pg_stmts_once = PTHREAD_ONCE_INIT;
static pg_stmts_t pg_stmts_built;

/* A statement being written into one of the buffers above. */
typedef struct pg_sql_s {
    char *p;
    size_t size, len;
} pg_sql_t;

static void
pg_cat(pg_sql_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pg_cat(pg_sql_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= b->size - b->len)
        abort(); /* a buffer above is too small: a bug, caught by the tests */
    b->len += (size_t) n;
}

static void
pg_sql_open(pg_sql_t *b, char *buf, size_t size)
{
    b->p = buf, b->size = size, b->len = 0;
}

static void
pg_build_ins(void)
{
    pg_sql_t b;
    int p;

    pg_sql_open(&b, pg_ins_sql, sizeof(pg_ins_sql));
    pg_cat(&b, "INSERT INTO gottwall_series (project, metric, filter_name,"
           " filter_value, series");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, ", b%d, k%d, s%d, c%d, t%d", p, p, p, p, p);
    pg_cat(&b, ") SELECT * FROM pg_temp.gottwall_stage_new"
           " ON CONFLICT DO NOTHING RETURNING id, project, metric,"
           " filter_name, filter_value, series");
}

static void
pg_build_spill(void)
{
    pg_sql_t b;
    int p;

    pg_sql_open(&b, pg_spill_sql, sizeof(pg_spill_sql));
    pg_cat(&b, "WITH l AS (SELECT s.id");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, ", s.b%d, s.k%d, s.s%d, s.c%d, s.t%d, u.b%d AS u%d", p, p,
               p, p, p, p, p);
    pg_cat(&b, " FROM gottwall_series s JOIN pg_temp.gottwall_stage_upd u"
           " ON s.id = u.id WHERE u.ck AND (");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, "%su.b%d > s.b%d OR (s.b%d IS NULL AND u.b%d IS NOT NULL)",
               p ? " OR " : "", p, p, p, p);
    pg_cat(&b, ")");
    pg_cat(&b, " ORDER BY s.id FOR NO KEY UPDATE OF s)"
           " INSERT INTO gottwall_cells AS c (series_id, period, bucket, kind,"
           " sum, count, ts)"
           " SELECT l.id, v.p, v.b, v.k, v.s, v.c, v.t FROM l CROSS JOIN"
           " LATERAL (VALUES ");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, "%s(%d::int2, l.b%d, l.k%d, l.s%d, l.c%d, l.t%d, l.u%d)",
               p ? ", " : "", p, p, p, p, p, p, p);
    /* A slot older than its period's cut (gottwall_expiry) is expired:
     * it is dropped here rather than written into a partition an expiry
     * may have removed. */
    pg_cat(&b, ") AS v(p, b, k, s, c, t, u) LEFT JOIN gottwall_expiry e"
           " ON e.period = v.p WHERE v.u > v.b AND (e.before IS NULL OR"
           " v.b >= e.before) ORDER BY 1, 2, 3" PG_CELL_MERGE);
}

static void
pg_build_upd(void)
{
    pg_sql_t b;
    int p;

    pg_sql_open(&b, pg_upd_sql, sizeof(pg_upd_sql));
    pg_cat(&b, "WITH up AS (UPDATE gottwall_series s SET ");
    for (p = 0; p < PG_SLOTS; p++) {
        char keep[64], sum[1024];

        snprintf(keep, sizeof(keep), "u.b%d IS NULL OR u.b%d < s.b%d", p, p,
                 p);
        snprintf(sum, sizeof(sum), PG_SUM("s.s%1$d", "u.s%1$d"), p);
        pg_cat(&b, "%sb%d = CASE WHEN %s THEN s.b%d ELSE u.b%d END,"
               " k%d = CASE WHEN %s THEN s.k%d ELSE u.k%d END,"
               " s%d = CASE WHEN %s THEN s.s%d WHEN u.b%d = s.b%d THEN"
               " CASE WHEN u.k%d = 3 THEN CASE WHEN u.t%d >= s.t%d THEN u.s%d"
               " ELSE s.s%d END ELSE %s END ELSE u.s%d END,"
               " c%d = CASE WHEN %s THEN s.c%d WHEN u.b%d = s.b%d THEN"
               " s.c%d + u.c%d ELSE u.c%d END,"
               " t%d = CASE WHEN %s THEN s.t%d WHEN u.b%d = s.b%d THEN"
               " GREATEST(s.t%d, u.t%d) ELSE u.t%d END",
               p ? ", " : "", p, keep, p, p,
               p, keep, p, p,
               p, keep, p, p, p, p, p, p, p, p, sum, p,
               p, keep, p, p, p, p, p, p,
               p, keep, p, p, p, p, p, p);
    }
    pg_cat(&b, " FROM pg_temp.gottwall_stage_upd u WHERE s.id = u.id"
           " RETURNING s.id, ");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, "%sCASE WHEN u.b%d < s.b%d THEN %d ELSE 0 END",
               p ? " + " : "", p, p, 1 << p);
    pg_cat(&b, " AS late) SELECT id, late::int4 FROM up WHERE late <> 0");
}

static void
pg_build_stage(void)
{
    pg_sql_t b;
    int p, q;

    for (p = 0; p < 2; p++) {
        pg_sql_open(&b, pg_stage_sql[p], sizeof(pg_stage_sql[p]));
        pg_cat(&b, "CREATE TEMP TABLE IF NOT EXISTS gottwall_stage_%s (%s",
               p ? "upd" : "new", p ? "id bigint, ck boolean" : "project text,"
               " metric text, filter_name text, filter_value text,"
               " series smallint");
        for (q = 0; q < PG_SLOTS; q++)
            pg_cat(&b, ", b%d bigint, k%d smallint, s%d double precision,"
                   " c%d bigint, t%d double precision", q, q, q, q, q);
        pg_cat(&b, ") ON COMMIT DELETE ROWS");
    }
}

/* Whether bucket x of period $6 is shown: not when it lies between the
 * start of the partition that holds the period's cut and the cut. That
 * partition keeps its rows until it is wholly older than the cut and is
 * dropped; the older partitions are gone already, and a bucket written
 * into one of them later (the core does not, unless RETENTION was
 * lengthened or removed) is shown. */
#define PG_SHOWN(x)                                                           \
    " NOT EXISTS (SELECT 1 FROM gottwall_expiry e WHERE e.period = $6::int2" \
    " AND " x " >= e.hide_from AND " x " < e.before)"

static void
pg_build_query(void)
{
    static const char *const names = "s.project = $1 AND s.metric = $2 AND"
        " s.filter_name = $3 AND s.filter_value = $4 AND s.series = $5";
    pg_sql_t b;
    int p, q;

    pg_sql_open(&b, pg_query_sql, sizeof(pg_query_sql));
    pg_cat(&b, "SELECT 0, c.bucket, c.kind, c.sum, c.count, c.ts"
           " FROM gottwall_series s JOIN gottwall_cells c"
           " ON c.series_id = s.id WHERE %s AND c.period = $6::int2"
           " AND c.bucket BETWEEN $7 AND $8 AND" PG_SHOWN("c.bucket")
           " UNION ALL"
           " SELECT 1, v.b, v.k, v.s, v.c, v.t FROM gottwall_series s"
           " CROSS JOIN LATERAL (VALUES (", names);
    for (p = 0; p < 5; p++) {
        pg_cat(&b, "%s(ARRAY[", p ? ", " : "");
        for (q = 0; q < PG_SLOTS; q++)
            pg_cat(&b, "%ss.%c%d", q ? ", " : "", "bksct"[p], q);
        pg_cat(&b, "])[$6::int2 + 1]");
    }
    pg_cat(&b, ")) AS v(b, k, s, c, t) WHERE %s AND v.b BETWEEN $7 AND $8"
           " AND" PG_SHOWN("v.b"), names);
}

/* pthread_once's routine: every generated statement. */
static void
pg_stmts_build(void)
{
    pg_build_ins();
    pg_build_spill();
    pg_build_upd();
    pg_build_stage();
    pg_build_query();
    pg_stmts_built.ins = pg_ins_sql;
    pg_stmts_built.spill = pg_spill_sql;
    pg_stmts_built.upd = pg_upd_sql;
    pg_stmts_built.stage[0] = pg_stage_sql[0];
    pg_stmts_built.stage[1] = pg_stage_sql[1];
    pg_stmts_built.query = pg_query_sql;
}

const pg_stmts_t *
pg_stmts(void)
{
    pthread_once(&pg_stmts_once, pg_stmts_build);
    return &pg_stmts_built;
}
