/*
 * plugins/storage/postgres/postgres.c: the PostgreSQL storage (SPEC §6).
 *
 * Runs on the storage thread with libpq's synchronous API. Creates and
 * migrates its own schema (gottwall_schema holds the version; each
 * migration runs in a transaction under an advisory lock, so several
 * aggregators starting together agree). A flush batch is one transaction:
 * it records the batch id in gottwall_batches and, only if that id was new,
 * inserts the batch's new series (gottwall_series; ids of series seen
 * before are cached per connection), upserts every cell by
 * (series_id, period, bucket) (ON CONFLICT DO UPDATE with the per-kind
 * rule) and the metrics, from binary array parameters. Every value travels
 * as a parameter of PQexecParams; no value is ever put inside SQL text.
 * While the server is unreachable, calls return GW_AGAIN at once and
 * reconnection is tried with backoff. docs/storage-postgres.md has the
 * schema.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <gottwall/plugin.h>

#include "../../common/fnv1a.h"

/* ---- schema ---- */

#define PG_SLOTS 7 /* slots per series row (schema 3): one per period */

#define PG_SCHEMA_LOCK "7236521983416270849" /* pg_advisory_xact_lock key */

/* Migrations, in order; migration i brings the schema to version i + 1.
 * Each entry is a list of single statements ending with NULL. */
static const char *const pg_migration_1[] = {
    "CREATE TABLE gottwall_cells ("
    " project text NOT NULL,"
    " metric text NOT NULL,"
    " filter_name text NOT NULL,"  /* '' for the total series */
    " filter_value text NOT NULL," /* '' for the total series */
    " series smallint NOT NULL,"   /* 0: total, 1: one filter value */
    " period smallint NOT NULL,"   /* gw_period_t */
    " bucket bigint NOT NULL,"     /* epoch second of the start; 0: all */
    " kind smallint NOT NULL,"     /* gw_kind_t */
    " sum double precision NOT NULL,"
    " count bigint NOT NULL,"
    " ts double precision NOT NULL,"
    " PRIMARY KEY (project, metric, filter_name, filter_value, series,"
    " period, bucket))",
    "CREATE TABLE gottwall_metrics ("
    " project text NOT NULL,"
    " metric text NOT NULL,"
    " kind smallint NOT NULL,"
    " PRIMARY KEY (project, metric))",
    "CREATE TABLE gottwall_filters ("
    " project text NOT NULL,"
    " metric text NOT NULL,"
    " filter_name text NOT NULL,"
    " filter_value text NOT NULL,"
    " PRIMARY KEY (project, metric, filter_name, filter_value))",
    "CREATE TABLE gottwall_documents ("
    " ns text NOT NULL,"
    " id text NOT NULL,"
    " data bytea NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (ns, id))",
    "CREATE TABLE gottwall_batches ("
    " id text PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX gottwall_batches_applied_at ON gottwall_batches"
    " (applied_at)",
    NULL};

/* Version 2: a series table, so a cell's key is (series_id, period,
 * bucket) instead of five text columns: flushes write far fewer bytes and a
 * far smaller index. Filter values are the series rows with series = 1. */
static const char *const pg_migration_2[] = {
    "CREATE TABLE gottwall_series ("
    " id bigserial PRIMARY KEY,"
    " project text NOT NULL,"
    " metric text NOT NULL,"
    " filter_name text NOT NULL,"  /* '' for the total series */
    " filter_value text NOT NULL," /* '' for the total series */
    " series smallint NOT NULL,"   /* 0: total, 1: one filter value */
    " CONSTRAINT gottwall_series_key"
    " UNIQUE (project, metric, filter_name, filter_value, series))",
    "INSERT INTO gottwall_series (project, metric, filter_name, filter_value,"
    " series)"
    " SELECT project, metric, filter_name, filter_value, series"
    " FROM gottwall_cells"
    " UNION SELECT project, metric, filter_name, filter_value, 1"
    " FROM gottwall_filters"
    " ORDER BY 1, 2, 3, 4, 5",
    "ALTER TABLE gottwall_cells RENAME TO gottwall_cells_1",
    "ALTER INDEX gottwall_cells_pkey RENAME TO gottwall_cells_1_pkey",
    "CREATE TABLE gottwall_cells ("
    " series_id bigint NOT NULL," /* gottwall_series.id */
    " period smallint NOT NULL,"  /* gw_period_t */
    " bucket bigint NOT NULL,"    /* epoch second of the start; 0: all */
    " kind smallint NOT NULL,"    /* gw_kind_t */
    " sum double precision NOT NULL,"
    " count bigint NOT NULL,"
    " ts double precision NOT NULL,"
    " PRIMARY KEY (series_id, period, bucket))"
    /* Room on each page for updated rows: an update that changes no key
     * and finds room stays on its page (HOT) and writes no index entry. */
    " WITH (fillfactor = 70)",
    "INSERT INTO gottwall_cells"
    " SELECT s.id, c.period, c.bucket, c.kind, c.sum, c.count, c.ts"
    " FROM gottwall_cells_1 c JOIN gottwall_series s"
    " USING (project, metric, filter_name, filter_value, series)"
    " ORDER BY 1, 2, 3",
    "DROP TABLE gottwall_cells_1",
    "DROP TABLE gottwall_filters",
    NULL};

/* Version 3: each series row also holds its current cell of each period,
 * the slot (b<p> bucket, k<p> kind, s<p> sum, c<p> count, t<p> ts for
 * period p = 0..6; NULL when empty). A flush then writes one row per series
 * instead of seven cells: a HOT update when the row's page has room (no
 * index is touched). When a period's bucket moves on, the slot's old cell
 * is moved ("spilled") into gottwall_cells, which keeps every other cell.
 * Rows of version 2 start with empty slots; their cells stay where they
 * are, and a read adds a slot to the gottwall_cells row of the same bucket
 * when there is one. */
#define PG_SLOT_COLS(p)                                                       \
    " ADD COLUMN b" #p " bigint, ADD COLUMN k" #p " smallint,"               \
    " ADD COLUMN s" #p " double precision, ADD COLUMN c" #p " bigint,"       \
    " ADD COLUMN t" #p " double precision"
static const char *const pg_migration_3[] = {
    "ALTER TABLE gottwall_series" PG_SLOT_COLS(0) "," PG_SLOT_COLS(1) ","
    PG_SLOT_COLS(2) "," PG_SLOT_COLS(3) "," PG_SLOT_COLS(4) ","
    PG_SLOT_COLS(5) "," PG_SLOT_COLS(6),
    /* Room on each page for the next version of every row: a flush updates
     * each row of its series once, and the versions the flush before left
     * are pruned when the page is next read, so at 45 every update stays on
     * its page (HOT: no index entry; at 70 only about half did). */
    "ALTER TABLE gottwall_series SET (fillfactor = 45)",
    NULL};

static const char *const *const pg_migrations[] = {
    pg_migration_1, pg_migration_2, pg_migration_3};
#define PG_SCHEMA_VERSION                                                     \
    ((int) (sizeof(pg_migrations) / sizeof(pg_migrations[0])))

typedef char pg_slots_match_periods[GW_PERIOD_COUNT == PG_SLOTS ? 1 : -1];

/*
 * The flush, in one transaction (docs/storage-postgres.md, "Writes"): the
 * batch id first (nothing else when it was already there); the series not
 * in the connection's cache of ids, inserted with their slots filled
 * (pg_ins_sql; those that were there already are looked up); for the
 * series that were there, the slots whose bucket moves on are locked and
 * spilled into gottwall_cells (pg_spill_sql), then every slot is merged or
 * replaced (pg_upd_sql); then the cells that are not a slot (older buckets
 * of the batch, and deltas older than their slot) go to gottwall_cells
 * (pg_cells_sql); then the metrics. Every value is a binary array
 * parameter. The statements with many columns are generated once
 * (pg_sql_init).
 */
static const char pg_batch_sql[] =
    "INSERT INTO gottwall_batches (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";

/* The ids of series that were there already, in order: one index lookup
 * each (a scalar subquery, so the cost follows the batch, not the table).
 * A new statement sees series that other writers committed meanwhile. */
static const char pg_series_ids_sql[] =
    "SELECT (SELECT g.id FROM gottwall_series g"
    " WHERE g.project = u.project AND g.metric = u.metric"
    " AND g.filter_name = u.filter_name AND g.filter_value = u.filter_value"
    " AND g.series = u.series)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int2[])"
    " WITH ORDINALITY AS u(project, metric, filter_name, filter_value, series,"
    " ord)"
    " ORDER BY u.ord";

/* How a cell of gottwall_cells takes another delta of itself (EXCLUDED):
 * counter and avg add; a gauge keeps the value with the newest ts (ties:
 * the later write). */
#define PG_CELL_MERGE                                                         \
    " ON CONFLICT (series_id, period, bucket) DO UPDATE SET"                 \
    " sum = CASE WHEN EXCLUDED.kind = 3 THEN"                                \
    "   CASE WHEN EXCLUDED.ts >= c.ts THEN EXCLUDED.sum ELSE c.sum END"      \
    "   ELSE c.sum + EXCLUDED.sum END,"                                      \
    " count = c.count + EXCLUDED.count,"                                     \
    " ts = GREATEST(c.ts, EXCLUDED.ts)"

/* Cells that are not a slot, in (series_id, period, bucket) order (the
 * same order for every writer). */
static const char pg_cells_sql[] =
    "INSERT INTO gottwall_cells AS c (series_id, period, bucket, kind, sum,"
    " count, ts)"
    " SELECT * FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::int2[],"
    " $5::float8[], $6::int8[], $7::float8[])" PG_CELL_MERGE;

static const char pg_metrics_sql[] =
    "INSERT INTO gottwall_metrics (project, metric, kind)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::int2[])"
    " ON CONFLICT DO NOTHING";

static const char pg_meta_sql[] =
    "SELECT m.metric, m.kind, f.filter_name, f.filter_value"
    " FROM gottwall_metrics m LEFT JOIN gottwall_series f"
    " ON f.project = m.project AND f.metric = m.metric AND f.series = 1"
    " WHERE m.project = $1 ORDER BY m.metric";

static const char pg_doc_put_sql[] =
    "INSERT INTO gottwall_documents (ns, id, data) VALUES ($1, $2, $3)"
    " ON CONFLICT (ns, id) DO UPDATE SET data = EXCLUDED.data,"
    " updated_at = now()";

static const char pg_doc_get_sql[] =
    "SELECT data FROM gottwall_documents WHERE ns = $1 AND id = $2";

static const char pg_prune_sql[] =
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
static char pg_spill_sql[4096];

/* Every slot of the series that were there (gottwall_stage_upd). A slot of the same bucket is merged, one of
 * an older bucket replaced (pg_spill_sql moved it), and a delta older
 * than the slot left out: returned as (id, bit p set in late), for
 * pg_cells_sql. */
static char pg_upd_sql[8192];

/* The staging tables the flush COPYs its series into (temporary: one per
 * session, emptied at each commit): gottwall_stage_new (names and slots,
 * the columns of pg_ins_sql) and gottwall_stage_upd (id and slots). */
static char pg_stage_sql[2][1024];

/* One series' points: its cells of the period in the range (0 in the
 * first column), then its slot of the period if in the range (1). */
static char pg_query_sql[4096];

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
pg_sql_init(void)
{
    static const char *const names = "s.project = $1 AND s.metric = $2 AND"
        " s.filter_name = $3 AND s.filter_value = $4 AND s.series = $5";
    pg_sql_t b;
    int p;

    if (pg_ins_sql[0] != '\0')
        return;
    b.p = pg_ins_sql, b.size = sizeof(pg_ins_sql), b.len = 0;
    pg_cat(&b, "INSERT INTO gottwall_series (project, metric, filter_name,"
           " filter_value, series");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, ", b%d, k%d, s%d, c%d, t%d", p, p, p, p, p);
    pg_cat(&b, ") SELECT * FROM pg_temp.gottwall_stage_new"
           " ON CONFLICT DO NOTHING RETURNING id, project, metric,"
           " filter_name, filter_value, series");

    b.p = pg_spill_sql, b.size = sizeof(pg_spill_sql), b.len = 0;
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
    pg_cat(&b, ") AS v(p, b, k, s, c, t, u) WHERE v.u > v.b"
           " ORDER BY 1, 2, 3" PG_CELL_MERGE);

    b.p = pg_upd_sql, b.size = sizeof(pg_upd_sql), b.len = 0;
    pg_cat(&b, "WITH up AS (UPDATE gottwall_series s SET ");
    for (p = 0; p < PG_SLOTS; p++) {
        char keep[64];

        snprintf(keep, sizeof(keep), "u.b%d IS NULL OR u.b%d < s.b%d", p, p,
                 p);
        pg_cat(&b, "%sb%d = CASE WHEN %s THEN s.b%d ELSE u.b%d END,"
               " k%d = CASE WHEN %s THEN s.k%d ELSE u.k%d END,"
               " s%d = CASE WHEN %s THEN s.s%d WHEN u.b%d = s.b%d THEN"
               " CASE WHEN u.k%d = 3 THEN CASE WHEN u.t%d >= s.t%d THEN u.s%d"
               " ELSE s.s%d END ELSE s.s%d + u.s%d END ELSE u.s%d END,"
               " c%d = CASE WHEN %s THEN s.c%d WHEN u.b%d = s.b%d THEN"
               " s.c%d + u.c%d ELSE u.c%d END,"
               " t%d = CASE WHEN %s THEN s.t%d WHEN u.b%d = s.b%d THEN"
               " GREATEST(s.t%d, u.t%d) ELSE u.t%d END",
               p ? ", " : "", p, keep, p, p,
               p, keep, p, p,
               p, keep, p, p, p, p, p, p, p, p, p, p, p,
               p, keep, p, p, p, p, p, p,
               p, keep, p, p, p, p, p, p);
    }
    pg_cat(&b, " FROM pg_temp.gottwall_stage_upd u WHERE s.id = u.id"
           " RETURNING s.id, ");
    for (p = 0; p < PG_SLOTS; p++)
        pg_cat(&b, "%sCASE WHEN u.b%d < s.b%d THEN %d ELSE 0 END",
               p ? " + " : "", p, p, 1 << p);
    pg_cat(&b, " AS late) SELECT id, late::int4 FROM up WHERE late <> 0");

    for (p = 0; p < 2; p++) {
        int q;

        b.p = pg_stage_sql[p], b.size = sizeof(pg_stage_sql[p]), b.len = 0;
        pg_cat(&b, "CREATE TEMP TABLE IF NOT EXISTS gottwall_stage_%s (%s",
               p ? "upd" : "new", p ? "id bigint, ck boolean" : "project text,"
               " metric text, filter_name text, filter_value text,"
               " series smallint");
        for (q = 0; q < PG_SLOTS; q++)
            pg_cat(&b, ", b%d bigint, k%d smallint, s%d double precision,"
                   " c%d bigint, t%d double precision", q, q, q, q, q);
        pg_cat(&b, ") ON COMMIT DELETE ROWS");
    }

    b.p = pg_query_sql, b.size = sizeof(pg_query_sql), b.len = 0;
    pg_cat(&b, "SELECT 0, c.bucket, c.kind, c.sum, c.count, c.ts"
           " FROM gottwall_series s JOIN gottwall_cells c"
           " ON c.series_id = s.id WHERE %s AND c.period = $6::int2"
           " AND c.bucket BETWEEN $7 AND $8 UNION ALL"
           " SELECT 1, v.b, v.k, v.s, v.c, v.t FROM gottwall_series s"
           " CROSS JOIN LATERAL (VALUES (", names);
    for (p = 0; p < 5; p++) {
        int q;

        pg_cat(&b, "%s(ARRAY[", p ? ", " : "");
        for (q = 0; q < PG_SLOTS; q++)
            pg_cat(&b, "%ss.%c%d", q ? ", " : "", "bksct"[p], q);
        pg_cat(&b, "])[$6::int2 + 1]");
    }
    pg_cat(&b, ")) AS v(b, k, s, c, t) WHERE %s AND v.b BETWEEN $7 AND $8",
           names);
}

/* ---- state ---- */

/* Series ids this connection has seen committed: series name -> id, and
 * the buckets its slots had reached (slots never go back, so a batch whose
 * buckets are all at or before them moves no cell out: pg_spill_sql skips
 * the series). A flush looks its series up here first and sends only the
 * others to the insert. Dropped with the connection (a restored database may have
 * other ids), and when it reaches PG_CACHE_MAX entries. */
typedef struct pg_cache_s {
    char *keys; /* the names, back to back */
    size_t klen, kcap;
    size_t *off; /* per slot: offset in keys, SIZE_MAX when empty */
    size_t *len;
    int64_t *id;
    uint32_t *kb; /* per slot, PG_SLOTS buckets the series' slots are at or
                   * after (PG_KB_UNKNOWN: not known) */
    size_t slots;
    size_t n;
} pg_cache_t;

#define PG_CACHE_MAX 1000000
#define PG_KB_UNKNOWN UINT32_MAX

typedef struct pg_state_s {
    const gw_ctx_t *ctx;
    /* config */
    const char *dsn;
    const char *host;
    int64_t port;
    const char *db;
    const char *user;
    const char *password;
    int64_t connect_timeout; /* s */
    int64_t statement_timeout_ms;
    int64_t batch_retention; /* s */
    /* connection */
    PGconn *conn;
    double retry_at;    /* monotonic s: no connect attempt before */
    double backoff;     /* s */
    char last_err[GW_ERROR_MAX];
    double last_prune;
    pg_cache_t cache;
    int staged; /* this session has the staging tables */
} pg_state_t;

static const gw_config_key_t pg_keys[] = {
    GW_CONFIG_KEY("DSN", GW_CONFIG_STRING, NULL, pg_state_t, dsn,
                  "libpq connection string or URI; else the keys below"),
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", pg_state_t, host,
                  "server address (or a socket directory)"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "5432", pg_state_t, port,
                        "server port", 1, 65535),
    GW_CONFIG_KEY("DB", GW_CONFIG_STRING, "gottwall", pg_state_t, db,
                  "database name"),
    GW_CONFIG_KEY("USER", GW_CONFIG_STRING, NULL, pg_state_t, user,
                  "user (default: libpq's)"),
    GW_CONFIG_KEY("PASSWORD", GW_CONFIG_STRING, NULL, pg_state_t, password,
                  "password (or use ~/.pgpass)"),
    GW_CONFIG_KEY_RANGE("CONNECT_TIMEOUT", GW_CONFIG_INT, "5", pg_state_t,
                        connect_timeout, "connect timeout, s (>= 2)", 1,
                        3600),
    GW_CONFIG_KEY_RANGE("STATEMENT_TIMEOUT", GW_CONFIG_INT, "60000",
                        pg_state_t, statement_timeout_ms,
                        "statement_timeout, ms", 100, 3600000),
    GW_CONFIG_KEY_RANGE("BATCH_RETENTION", GW_CONFIG_INT, "604800",
                        pg_state_t, batch_retention,
                        "seconds applied batch ids are kept", 60, 31536000),
    GW_CONFIG_END};

#define PG_BACKOFF_MIN 0.1
#define PG_BACKOFF_MAX 5.0

static double
pg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A one-line copy of a libpq message (they end with newlines). */
static void
pg_oneline(char *dst, size_t size, const char *msg)
{
    size_t i, j = 0;

    for (i = 0; msg != NULL && msg[i] != '\0' && j + 1 < size; i++) {
        char c = (msg[i] == '\n' || msg[i] == '\t') ? ' ' : msg[i];

        if (c == ' ' && (j == 0 || dst[j - 1] == ' '))
            continue;
        dst[j++] = c;
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

static void
pg_cache_free(pg_cache_t *c)
{
    free(c->keys);
    free(c->off);
    free(c->len);
    free(c->id);
    free(c->kb);
    memset(c, 0, sizeof(*c));
}

/* The cache key of d's series: "project\0metric\0fname\0fvalue\0S" in
 * buf; its length, or 0 when it does not fit. */
static size_t
pg_cache_key(char *buf, size_t size, const gw_delta_t *d)
{
    const char *part[4];
    size_t i, n = 0, l;

    part[0] = d->project;
    part[1] = d->metric;
    part[2] = d->filter_name ? d->filter_name : "";
    part[3] = d->filter_value ? d->filter_value : "";
    for (i = 0; i < 4; i++) {
        l = strlen(part[i]);
        if (n + l + 2 > size)
            return 0;
        memcpy(buf + n, part[i], l + 1);
        n += l + 1;
    }
    buf[n++] = d->filter_name != NULL ? '1' : '0';
    return n;
}

/* The slot of key, or of the empty slot where it would go. */
static size_t
pg_cache_slot(const pg_cache_t *c, const char *key, size_t len)
{
    size_t mask = c->slots - 1, i;

    for (i = pc_fnv1a(key, len) & mask; c->off[i] != SIZE_MAX;
         i = (i + 1) & mask)
        if (c->len[i] == len && memcmp(c->keys + c->off[i], key, len) == 0)
            break;
    return i;
}

/* d's series id, or -1 when not cached; its PG_SLOTS buckets in kb. */
static int64_t
pg_cache_get(const pg_cache_t *c, const gw_delta_t *d, uint32_t *kb)
{
    char key[4096];
    size_t len = pg_cache_key(key, sizeof(key), d), i;

    for (i = 0; i < PG_SLOTS; i++)
        kb[i] = PG_KB_UNKNOWN;
    if (len == 0 || c->n == 0)
        return -1;
    i = pg_cache_slot(c, key, len);
    if (c->off[i] == SIZE_MAX)
        return -1;
    memcpy(kb, &c->kb[i * PG_SLOTS], PG_SLOTS * sizeof(*kb));
    return c->id[i];
}

/* Remembers d's series id and buckets (quietly nothing when out of
 * memory). */
static void
pg_cache_put(pg_cache_t *c, const gw_delta_t *d, int64_t id,
             const uint32_t *kb)
{
    char key[4096];
    size_t len = pg_cache_key(key, sizeof(key), d), i;

    if (len == 0)
        return;
    if (c->n >= PG_CACHE_MAX)
        pg_cache_free(c);
    if ((c->n + 1) * 2 > c->slots) {
        pg_cache_t g;
        size_t j;

        memset(&g, 0, sizeof(g));
        g.slots = c->slots ? c->slots * 2 : 1024;
        g.off = malloc(g.slots * sizeof(*g.off));
        g.len = malloc(g.slots * sizeof(*g.len));
        g.id = malloc(g.slots * sizeof(*g.id));
        g.kb = malloc(g.slots * PG_SLOTS * sizeof(*g.kb));
        if (g.off == NULL || g.len == NULL || g.id == NULL || g.kb == NULL) {
            free(g.off);
            free(g.len);
            free(g.id);
            free(g.kb);
            return;
        }
        for (j = 0; j < g.slots; j++)
            g.off[j] = SIZE_MAX;
        g.keys = c->keys;
        g.klen = c->klen;
        g.kcap = c->kcap;
        g.n = c->n;
        for (j = 0; j < c->slots; j++) {
            if (c->off[j] == SIZE_MAX)
                continue;
            i = pg_cache_slot(&g, c->keys + c->off[j], c->len[j]);
            g.off[i] = c->off[j];
            g.len[i] = c->len[j];
            g.id[i] = c->id[j];
            memcpy(&g.kb[i * PG_SLOTS], &c->kb[j * PG_SLOTS],
                   PG_SLOTS * sizeof(*g.kb));
        }
        free(c->off);
        free(c->len);
        free(c->id);
        free(c->kb);
        *c = g;
    }
    i = pg_cache_slot(c, key, len);
    if (c->off[i] != SIZE_MAX) {
        c->id[i] = id;
        memcpy(&c->kb[i * PG_SLOTS], kb, PG_SLOTS * sizeof(*kb));
        return;
    }
    if (c->klen + len > c->kcap) {
        size_t cap = c->kcap ? c->kcap * 2 : 65536;
        char *k;

        while (cap < c->klen + len)
            cap *= 2;
        if ((k = realloc(c->keys, cap)) == NULL)
            return;
        c->keys = k;
        c->kcap = cap;
    }
    memcpy(c->keys + c->klen, key, len);
    c->off[i] = c->klen;
    c->len[i] = len;
    c->id[i] = id;
    memcpy(&c->kb[i * PG_SLOTS], kb, PG_SLOTS * sizeof(*kb));
    c->klen += len;
    c->n++;
}

static void
pg_disconnect(pg_state_t *s)
{
    if (s->conn != NULL)
        PQfinish(s->conn);
    s->conn = NULL;
    s->staged = 0;
    pg_cache_free(&s->cache);
}

/* The connection is gone: drop it, back off, GW_AGAIN. */
static int
pg_lost(pg_state_t *s, const char *what, const char *why, gw_error_t *err)
{
    char line[GW_ERROR_MAX];

    pg_oneline(line, sizeof(line), why);
    gw_error_set(err, "postgres: %s: %s", what, line);
    snprintf(s->last_err, sizeof(s->last_err), "%s", err ? err->msg : line);
    pg_disconnect(s);
    s->backoff = s->backoff == 0 ? PG_BACKOFF_MIN
                                 : fmin(s->backoff * 2, PG_BACKOFF_MAX);
    s->retry_at = pg_now() + s->backoff;
    return GW_AGAIN;
}

/* SQLSTATEs worth retrying: connection trouble, shutdown, timeouts,
 * deadlocks and serialization failures, lack of resources. */
static int
pg_transient(const char *state)
{
    if (state == NULL)
        return 1;
    return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
           strncmp(state, "57", 2) == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
           strncmp(state, "58", 2) == 0;
}

/* Checks a result: GW_OK when it has status want; else GW_AGAIN (the
 * connection or the server's state) or GW_ERR, with a message. */
static int
pg_check(pg_state_t *s, PGresult *r, ExecStatusType want, const char *what,
         gw_error_t *err)
{
    const char *state;
    char line[GW_ERROR_MAX];

    if (r != NULL && PQresultStatus(r) == want)
        return GW_OK;
    if (r == NULL || PQstatus(s->conn) == CONNECTION_BAD)
        return pg_lost(s, what, PQerrorMessage(s->conn), err);
    state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    pg_oneline(line, sizeof(line), PQresultErrorMessage(r));
    gw_error_set(err, "postgres: %s: %s", what, line);
    if (pg_transient(state)) {
        if (state != NULL && strncmp(state, "40", 2) != 0 &&
            strcmp(state, "57014") != 0)
            pg_disconnect(s); /* the session is likely unusable */
        return GW_AGAIN;
    }
    return GW_ERR;
}

/* Runs SQL without parameters (still PQexecParams: one statement only). */
static int
pg_exec(pg_state_t *s, const char *sql, ExecStatusType want,
        const char *what, gw_error_t *err)
{
    PGresult *r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int rc = pg_check(s, r, want, what, err);

    PQclear(r);
    return rc;
}

/* Applies the migrations the database lacks, each in its own transaction
 * under an advisory lock. */
static int
pg_migrate(pg_state_t *s, gw_error_t *err)
{
    int version, rc, i;

    for (;;) {
        PGresult *r;

        if ((rc = pg_exec(s, "BEGIN", PGRES_COMMAND_OK, "BEGIN", err)) !=
            GW_OK)
            return rc;
        rc = pg_exec(s, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")",
                     PGRES_TUPLES_OK, "locking the schema", err);
        if (rc == GW_OK)
            rc = pg_exec(s, "CREATE TABLE IF NOT EXISTS gottwall_schema"
                            " (version integer NOT NULL)",
                         PGRES_COMMAND_OK, "creating gottwall_schema", err);
        if (rc != GW_OK)
            goto abort;
        r = PQexecParams(s->conn,
                         "SELECT coalesce(max(version), 0) FROM "
                         "gottwall_schema",
                         0, NULL, NULL, NULL, NULL, 0);
        if ((rc = pg_check(s, r, PGRES_TUPLES_OK, "reading the schema "
                           "version", err)) != GW_OK) {
            PQclear(r);
            goto abort;
        }
        version = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (version > PG_SCHEMA_VERSION) {
            gw_error_set(err, "postgres: the database's gottwall schema is "
                         "version %d, newer than this gottwall knows (%d): "
                         "upgrade gottwall", version, PG_SCHEMA_VERSION);
            rc = GW_AGAIN;
            goto abort;
        }
        if (version == PG_SCHEMA_VERSION)
            return pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
        for (i = 0; pg_migrations[version][i] != NULL; i++) {
            rc = pg_exec(s, pg_migrations[version][i], PGRES_COMMAND_OK,
                         "migrating the schema", err);
            if (rc != GW_OK)
                goto abort;
        }
        {
            char v[16];
            const char *params[] = {v};

            snprintf(v, sizeof(v), "%d", version + 1);
            r = PQexecParams(s->conn,
                             "INSERT INTO gottwall_schema VALUES ($1)", 1,
                             NULL, params, NULL, NULL, 0);
            rc = pg_check(s, r, PGRES_COMMAND_OK, "recording the schema "
                          "version", err);
            PQclear(r);
        }
        if (rc == GW_OK)
            rc = pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
        if (rc != GW_OK)
            return rc;
        gw_log_info(s->ctx, "postgres: schema migrated to version %d",
                    version + 1);
    }
abort:
    if (s->conn != NULL)
        PQclear(PQexecParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL,
                             0));
    return rc;
}

/* Server notices (e.g. "relation already exists, skipping") go to the
 * debug log instead of libpq's default, stderr. */
static void
pg_notice(void *arg, const char *message)
{
    pg_state_t *s = arg;
    char line[GW_ERROR_MAX];

    pg_oneline(line, sizeof(line), message);
    gw_log_debug(s->ctx, "postgres: %s", line);
}

static int
pg_connect(pg_state_t *s, gw_error_t *err)
{
    const char *keys[16], *vals[16];
    char port[32], timeout[32], options[64];
    int n = 0, rc;

    if (s->conn != NULL) {
        if (PQstatus(s->conn) == CONNECTION_OK)
            return GW_OK;
        pg_disconnect(s);
    }
    if (pg_now() < s->retry_at) {
        gw_error_set(err, "%s (retrying in %.1f s)", s->last_err,
                     s->retry_at - pg_now());
        return GW_AGAIN;
    }
    snprintf(port, sizeof(port), "%lld", (long long) s->port);
    snprintf(timeout, sizeof(timeout), "%lld",
             (long long) (s->connect_timeout < 2 ? 2 : s->connect_timeout));
    snprintf(options, sizeof(options), "-c statement_timeout=%lld",
             (long long) s->statement_timeout_ms);
    if (s->dsn != NULL && s->dsn[0] != '\0') {
        keys[n] = "dbname", vals[n++] = s->dsn; /* expanded: later keys win */
    } else {
        keys[n] = "host", vals[n++] = s->host;
        keys[n] = "port", vals[n++] = port;
        keys[n] = "dbname", vals[n++] = s->db;
        if (s->user != NULL)
            keys[n] = "user", vals[n++] = s->user;
        if (s->password != NULL)
            keys[n] = "password", vals[n++] = s->password;
    }
    keys[n] = "connect_timeout", vals[n++] = timeout;
    keys[n] = "options", vals[n++] = options;
    keys[n] = "application_name", vals[n++] = "gottwall";
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "30";
    keys[n] = "keepalives_interval", vals[n++] = "10";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = NULL, vals[n] = NULL;
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
        return pg_lost(s, "cannot connect",
                       s->conn ? PQerrorMessage(s->conn) : "out of memory",
                       err);
    PQsetNoticeProcessor(s->conn, pg_notice, s);
    rc = pg_migrate(s, err);
    if (rc != GW_OK) {
        pg_disconnect(s);
        return rc == GW_ERR ? GW_AGAIN : rc; /* keep the data meanwhile */
    }
    s->backoff = 0;
    s->retry_at = 0;
    gw_log_debug(s->ctx, "connected to postgres %s:%s, schema version %d",
                 PQhost(s->conn), PQport(s->conn), PG_SCHEMA_VERSION);
    return GW_OK;
}

/* ---- store ---- */

/* A one-dimensional array in PostgreSQL's binary format, being built:
 * ndim, has-null flag, element type OID, length, lower bound, then each
 * element as a 4-byte length and its bytes (all big-endian). */
typedef struct pg_arr_s {
    char *p;
    size_t len;
    size_t cap;
    size_t n;
    int nulls; /* holds a NULL */
    int oom;
} pg_arr_t;

#define PG_OID_INT2 21
#define PG_OID_INT8 20
#define PG_OID_TEXT 25
#define PG_OID_FLOAT8 701
#define PG_ARR_HEAD 20

static void
pg_arr_put(pg_arr_t *a, const void *s, size_t len)
{
    if (a->oom)
        return;
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        char *p;

        while (cap < a->len + len)
            cap *= 2;
        if ((p = realloc(a->p, cap)) == NULL) {
            a->oom = 1;
            return;
        }
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, s, len);
    a->len += len;
}

static void
pg_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char) (v >> 24);
    b[1] = (unsigned char) (v >> 16);
    b[2] = (unsigned char) (v >> 8);
    b[3] = (unsigned char) v;
}

static void
pg_be64(unsigned char *b, uint64_t v)
{
    pg_be32(b, (uint32_t) (v >> 32));
    pg_be32(b + 4, (uint32_t) v);
}

/* Starts an array (the header is written by pg_arr_close). */
static void
pg_arr_open(pg_arr_t *a)
{
    unsigned char head[PG_ARR_HEAD] = {0};

    a->len = 0;
    a->n = 0;
    a->nulls = 0;
    pg_arr_put(a, head, sizeof(head));
}

/* One element: its length and bytes. */
static void
pg_arr_elem(pg_arr_t *a, const void *data, uint32_t len)
{
    unsigned char l[4];

    pg_be32(l, len);
    pg_arr_put(a, l, 4);
    pg_arr_put(a, data, len);
    a->n++;
}

/* A NULL element: length -1, no bytes. */
static void
pg_arr_null(pg_arr_t *a)
{
    unsigned char l[4] = {0xff, 0xff, 0xff, 0xff};

    pg_arr_put(a, l, 4);
    a->n++;
    a->nulls = 1;
}

static void
pg_arr_str(pg_arr_t *a, const char *s)
{
    size_t len = strlen(s);

    if (len > 0x3fffffff)
        a->oom = 1;
    else
        pg_arr_elem(a, s, (uint32_t) len);
}

static void
pg_arr_i16(pg_arr_t *a, int v)
{
    unsigned char b[2] = {(unsigned char) ((unsigned) v >> 8),
                          (unsigned char) v};

    pg_arr_elem(a, b, 2);
}

static void
pg_arr_i64(pg_arr_t *a, int64_t v)
{
    unsigned char b[8];

    pg_be64(b, (uint64_t) v);
    pg_arr_elem(a, b, 8);
}

static void
pg_arr_f64(pg_arr_t *a, double v)
{
    unsigned char b[8];
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    pg_be64(b, u);
    pg_arr_elem(a, b, 8);
}

/* Writes the header: a 1-D array of n elements of type oid (0-D when
 * empty, as PostgreSQL sends an empty array). */
static void
pg_arr_close(pg_arr_t *a, uint32_t oid)
{
    unsigned char *h;

    if (a->oom || a->len < PG_ARR_HEAD || a->n > 0x7fffffff ||
        a->len > 0x7fffffff) {
        a->oom = 1;
        return;
    }
    h = (unsigned char *) a->p;
    if (a->n == 0) {
        pg_be32(h, 0);
        pg_be32(h + 4, 0);
        pg_be32(h + 8, oid);
        a->len = 12;
        return;
    }
    pg_be32(h, 1);
    pg_be32(h + 4, (uint32_t) a->nulls);
    pg_be32(h + 8, oid);
    pg_be32(h + 12, (uint32_t) a->n);
    pg_be32(h + 16, 1);
}

/* A cell of the batch after merging deltas of the same cell. */
typedef struct pg_cell_s {
    const gw_delta_t *d; /* the first delta: names, kind, period, bucket */
    double sum;
    int64_t count;
    double ts;
} pg_cell_t;

static const char *
pg_fname(const gw_delta_t *d)
{
    return d->filter_name ? d->filter_name : "";
}

static const char *
pg_fvalue(const gw_delta_t *d)
{
    return d->filter_value ? d->filter_value : "";
}

/* strcmp, at once for the same pointer: the core's batches hold each
 * distinct string once, so the deltas of one metric share its name. */
static inline int
pg_strcmp(const char *a, const char *b)
{
    return a == b ? 0 : strcmp(a, b);
}

/* Orders cells by the primary key (the lock order of every writer). The
 * byte order of strcmp, not the database's collation: any fixed order
 * serves. Ties keep the batch order (index). */
static int
pg_cell_cmp(const void *x, const void *y)
{
    const gw_delta_t *a = ((const pg_cell_t *) x)->d;
    const gw_delta_t *b = ((const pg_cell_t *) y)->d;
    int c;

    if ((c = pg_strcmp(a->project, b->project)) != 0 ||
        (c = pg_strcmp(a->metric, b->metric)) != 0 ||
        (c = pg_strcmp(pg_fname(a), pg_fname(b))) != 0 ||
        (c = pg_strcmp(pg_fvalue(a), pg_fvalue(b))) != 0)
        return c;
    if ((a->filter_name != NULL) != (b->filter_name != NULL))
        return a->filter_name != NULL ? 1 : -1;
    if (a->period != b->period)
        return a->period < b->period ? -1 : 1;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return (a > b) - (a < b);
}

static int
pg_same_cell(const gw_delta_t *a, const gw_delta_t *b)
{
    return a->period == b->period && a->bucket == b->bucket &&
           (a->filter_name != NULL) == (b->filter_name != NULL) &&
           pg_strcmp(a->project, b->project) == 0 &&
           pg_strcmp(a->metric, b->metric) == 0 &&
           pg_strcmp(pg_fname(a), pg_fname(b)) == 0 &&
           pg_strcmp(pg_fvalue(a), pg_fvalue(b)) == 0;
}

/* Sorts and merges the deltas into cells; *n set. NULL: out of memory. */
static pg_cell_t *
pg_merge(const gw_batch_t *batch, size_t *n)
{
    pg_cell_t *c = malloc(batch->ndeltas * sizeof(*c));
    size_t i, m = 0;

    if (c == NULL)
        return NULL;
    for (i = 0; i < batch->ndeltas; i++) {
        c[i].d = &batch->deltas[i];
        c[i].sum = batch->deltas[i].sum;
        c[i].count = batch->deltas[i].count;
        c[i].ts = batch->deltas[i].ts;
    }
    qsort(c, batch->ndeltas, sizeof(*c), pg_cell_cmp);
    for (i = 0; i < batch->ndeltas; i++) {
        if (m > 0 && pg_same_cell(c[m - 1].d, c[i].d)) {
            pg_cell_t *t = &c[m - 1];

            t->count += c[i].count;
            if (c[i].d->kind == GW_KIND_GAUGE) {
                if (c[i].ts >= t->ts) { /* ties: the later delta */
                    t->sum = c[i].sum;
                    t->ts = c[i].ts;
                }
            } else {
                t->sum += c[i].sum;
            }
            continue;
        }
        c[m++] = c[i];
    }
    *n = m;
    return c;
}

/* gw_delta_check, and the values must be finite. */
static int
pg_check_delta(const gw_delta_t *d, size_t i, gw_error_t *err)
{
    if (gw_delta_check(d, i, err) != GW_OK)
        return GW_ERR;
    if (!isfinite(d->sum) || !isfinite(d->ts))
        return gw_error_set(err, "delta %zu has a value that is not finite",
                            i);
    return GW_OK;
}

static void
pg_prune(pg_state_t *s)
{
    char interval[32];
    const char *params[] = {interval};
    PGresult *r;
    gw_error_t err;

    if (pg_now() - s->last_prune < 3600 && s->last_prune != 0)
        return;
    s->last_prune = pg_now();
    snprintf(interval, sizeof(interval), "%lld seconds",
             (long long) s->batch_retention);
    r = PQexecParams(s->conn, pg_prune_sql, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(s, r, PGRES_COMMAND_OK, "pruning gottwall_batches", &err) !=
        GW_OK)
        gw_log_warning(s->ctx, "%s", err.msg);
    else if (atoi(PQcmdTuples(r)) > 0)
        gw_log_debug(s->ctx, "pruned %s old batch ids", PQcmdTuples(r));
    PQclear(r);
}

/* Same series (the cells are sorted, so a batch's series are runs). */
static int
pg_same_series(const gw_delta_t *a, const gw_delta_t *b)
{
    return (a->filter_name != NULL) == (b->filter_name != NULL) &&
           pg_strcmp(a->project, b->project) == 0 &&
           pg_strcmp(a->metric, b->metric) == 0 &&
           pg_strcmp(pg_fname(a), pg_fname(b)) == 0 &&
           pg_strcmp(pg_fvalue(a), pg_fvalue(b)) == 0;
}

/* Runs sql with n parameters: binary arrays (a[i]) or text (text[i]);
 * *out is the result when GW_OK (PQclear it). A query (want
 * PGRES_TUPLES_OK) has its results in binary. */
static int
pg_runp(pg_state_t *s, const char *sql, int n, const pg_arr_t *const *a,
        const char *const *text, PGresult **out, ExecStatusType want,
        const char *what, gw_error_t *err)
{
    const char *params[64];
    int lens[64], formats[64], i, rc;
    PGresult *r;

    if (n > 64)
        return gw_error_set(err, "postgres: %s: %d parameters", what, n);
    for (i = 0; i < n; i++) {
        params[i] = a ? a[i]->p : text[i];
        lens[i] = a ? (int) a[i]->len : 0;
        formats[i] = a ? 1 : 0;
    }
    r = PQexecParams(s->conn, sql, n, NULL, params, lens, formats,
                     want == PGRES_TUPLES_OK);
    rc = pg_check(s, r, want, what, err);
    if (rc == GW_OK && out != NULL)
        *out = r;
    else
        PQclear(r);
    return rc;
}

/* pg_runp with n consecutive arrays. */
static int
pg_run_arr(pg_state_t *s, const char *sql, int n, const pg_arr_t *arr,
           PGresult **out, ExecStatusType want, const char *what,
           gw_error_t *err)
{
    const pg_arr_t *a[64];
    int i;

    for (i = 0; i < n && i < 64; i++)
        a[i] = &arr[i];
    return pg_runp(s, sql, n, a, NULL, out, want, what, err);
}

/* A COPY ... (FORMAT binary) stream being built in a pg_arr_t: the
 * header, then rows (a 16-bit field count, then fields written as array
 * elements are: a 32-bit length, -1 for NULL, and the bytes), then -1. */
static void
pg_copy_open(pg_arr_t *a)
{
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0";

    a->len = 0;
    a->n = 0;
    pg_arr_put(a, head, sizeof(head));
}

static void
pg_copy_row(pg_arr_t *a, int fields)
{
    unsigned char b[2] = {(unsigned char) ((unsigned) fields >> 8),
                          (unsigned char) fields};

    pg_arr_put(a, b, 2);
}

static void
pg_copy_close(pg_arr_t *a)
{
    pg_arr_put(a, "\377\377", 2);
}

/* Sends a COPY stream into table (FROM STDIN). */
static int
pg_copy(pg_state_t *s, const char *table, const pg_arr_t *a,
        gw_error_t *err)
{
    char sql[128];
    PGresult *r;
    size_t off;
    int rc;

    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN (FORMAT binary)", table);
    r = PQexec(s->conn, sql);
    if ((rc = pg_check(s, r, PGRES_COPY_IN, "staging the batch", err)) !=
        GW_OK) {
        PQclear(r);
        return rc;
    }
    PQclear(r);
    for (off = 0; off < a->len;) {
        size_t chunk = a->len - off < 1048576 ? a->len - off : 1048576;

        if (PQputCopyData(s->conn, a->p + off, (int) chunk) != 1)
            break;
        off += chunk;
    }
    PQputCopyEnd(s->conn, off < a->len ? "interrupted" : NULL);
    r = PQgetResult(s->conn);
    rc = pg_check(s, r, PGRES_COMMAND_OK, "staging the batch", err);
    PQclear(r);
    while (s->conn != NULL && (r = PQgetResult(s->conn)) != NULL)
        PQclear(r);
    return rc;
}

/* One slot of a series in a batch: the cell of the period's newest
 * bucket. */
typedef struct pg_slot_s {
    const pg_cell_t *cell; /* NULL: the batch has no cell of the period */
} pg_slot_t;

/* Where each series of a flush stands. */
enum {
    PG_SER_CACHED, /* id from the cache: its row is there */
    PG_SER_ASK,    /* not cached: sent to pg_ins_sql */
    PG_SER_NEW,    /* inserted by this flush, slots and all */
    PG_SER_OLD     /* was there (looked up): update its slots */
};

/* The buffers of one flush: column arrays and COPY streams. */
enum {
    PG_H_SID = 0,     /* pg_cells_sql: 7 arrays */
    PG_M_PROJECT = 7, /* pg_metrics_sql: 3 arrays */
    PG_CP_NEW = 10,   /* COPY gottwall_stage_new */
    PG_CP_UPD = 11,   /* COPY gottwall_stage_upd */
    PG_NARRS = 12
};
static const uint32_t pg_cell_oid[7] = {PG_OID_INT8, PG_OID_INT2,
                                        PG_OID_INT8, PG_OID_INT2,
                                        PG_OID_FLOAT8, PG_OID_INT8,
                                        PG_OID_FLOAT8};

static int64_t
pg_bucket(const gw_delta_t *d)
{
    return d->period == GW_PERIOD_ALL ? 0 : d->bucket;
}

/* Appends one series' slots (5 fields each) to a COPY row. */
static void
pg_copy_slots(pg_arr_t *a, const pg_slot_t *sl)
{
    int p, k;

    for (p = 0; p < PG_SLOTS; p++) {
        const pg_cell_t *c = sl[p].cell;

        if (c == NULL) {
            for (k = 0; k < 5; k++)
                pg_arr_null(a);
            continue;
        }
        pg_arr_i64(a, pg_bucket(c->d));
        pg_arr_i16(a, (int) c->d->kind);
        pg_arr_f64(a, c->sum);
        pg_arr_i64(a, c->count);
        pg_arr_f64(a, c->ts);
    }
}

/* Creates this session's staging tables (once). */
static int
pg_stage(pg_state_t *s, gw_error_t *err)
{
    int rc, i;

    if (s->staged)
        return GW_OK;
    for (i = 0; i < 2; i++)
        if ((rc = pg_exec(s, pg_stage_sql[i], PGRES_COMMAND_OK,
                          "creating a staging table", err)) != GW_OK)
            return rc;
    s->staged = 1;
    return GW_OK;
}

/* A bucket as the cache keeps it. */
static uint32_t
pg_kb(int64_t bucket)
{
    return bucket >= 0 && bucket < PG_KB_UNKNOWN ? (uint32_t) bucket
                                                 : PG_KB_UNKNOWN;
}

/* Whether a slot of a series that was there may move on (so pg_spill_sql
 * must look at it): one of the batch's buckets is after the one the cache
 * knows the slot reached, or the cache does not know. */
static unsigned char
pg_may_spill(const pg_slot_t *sl, const uint32_t *kb)
{
    int p;

    for (p = 0; p < PG_SLOTS; p++)
        if (sl[p].cell != NULL &&
            (kb[p] == PG_KB_UNKNOWN || pg_bucket(sl[p].cell->d) > kb[p]))
            return 1;
    return 0;
}

/* Walks the sorted, merged cells: the series (series[k] its first delta,
 * ids[k] its cached id or -1), each series' slots (slots[k * PG_SLOTS +
 * period]: the newest bucket of the period), and the cells that are no
 * slot (hist, *nh: older buckets of the batch); sidx[i] is cell i's series.
 * Fills the metrics arrays. Returns the number of series. */
static size_t
pg_scan(pg_arr_t *arr, const pg_cell_t *cells, size_t n, size_t *sidx,
        const gw_delta_t **series, int64_t *ids, uint32_t *kb,
        pg_slot_t *slots, size_t *hist, size_t *nh, const pg_cache_t *cache)
{
    const gw_delta_t *ps = NULL, *pm = NULL;
    size_t i, ns = 0;

    *nh = 0;
    for (i = 0; i < n; i++) {
        const gw_delta_t *d = cells[i].d;

        if (pm == NULL || strcmp(pm->project, d->project) != 0 ||
            strcmp(pm->metric, d->metric) != 0) {
            pg_arr_str(&arr[PG_M_PROJECT], d->project);
            pg_arr_str(&arr[PG_M_PROJECT + 1], d->metric);
            pg_arr_i16(&arr[PG_M_PROJECT + 2], (int) d->kind);
            pm = d;
        }
        if (ps == NULL || !pg_same_series(ps, d)) {
            ids[ns] = pg_cache_get(cache, d, &kb[ns * PG_SLOTS]);
            memset(&slots[ns * PG_SLOTS], 0, PG_SLOTS * sizeof(*slots));
            ps = d;
            series[ns++] = d;
        }
        sidx[i] = ns - 1;
        /* Sorted by period then bucket within the series: the last cell
         * of a period is its slot, the ones before go to the cells. */
        if (slots[(ns - 1) * PG_SLOTS + d->period].cell != NULL)
            hist[(*nh)++] = (size_t) (slots[(ns - 1) * PG_SLOTS + d->period]
                                          .cell - cells);
        slots[(ns - 1) * PG_SLOTS + d->period].cell = &cells[i];
    }
    return ns;
}

/* A big-endian integer of len bytes from a binary result. */
static int64_t
pg_get_int(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *) PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col), k;
    uint64_t u = len > 0 && (v[0] & 0x80) ? UINT64_MAX : 0;

    for (k = 0; k < len; k++)
        u = (u << 8) | v[k];
    return (int64_t) u;
}

static int
pg_get_is(const PGresult *r, int row, int col, const char *str)
{
    size_t len = strlen(str);

    return (size_t) PQgetlength(r, row, col) == len &&
           memcmp(PQgetvalue(r, row, col), str, len) == 0;
}

/* Row `row` of the series insert's RETURNING is the series of d. */
static int
pg_row_is(const PGresult *r, int row, const gw_delta_t *d)
{
    return pg_get_is(r, row, 1, d->project) &&
           pg_get_is(r, row, 2, d->metric) &&
           pg_get_is(r, row, 3, pg_fname(d)) &&
           pg_get_is(r, row, 4, pg_fvalue(d)) &&
           pg_get_int(r, row, 5) == (d->filter_name != NULL);
}

/* Finds the id of each series sent to pg_ins_sql (st[i] PG_SER_ASK): the
 * rows the insert returned (PG_SER_NEW, in the batch's order), then one
 * lookup of those that were there before (PG_SER_OLD; also any the walk
 * did not match: any order of the returned rows stays correct). */
static int
pg_series_ids(pg_state_t *s, const PGresult *ins,
              const gw_delta_t *const *series, size_t ns, int64_t *ids,
              unsigned char *st, gw_error_t *err)
{
    pg_arr_t arr[5];
    PGresult *r = NULL;
    size_t i, j = 0, nmiss = 0, rows = (size_t) PQntuples(ins);
    int rc = GW_OK, oom = 0;

    for (i = 0; i < ns; i++) {
        if (st[i] != PG_SER_ASK)
            continue;
        if (j < rows && pg_row_is(ins, (int) j, series[i])) {
            ids[i] = pg_get_int(ins, (int) j, 0);
            st[i] = PG_SER_NEW;
            j++;
        } else {
            st[i] = PG_SER_OLD;
            ids[i] = -1;
            nmiss++;
        }
    }
    if (nmiss == 0)
        return GW_OK;
    memset(arr, 0, sizeof(arr));
    for (i = 0; i < 5; i++)
        pg_arr_open(&arr[i]);
    for (i = 0; i < ns; i++) {
        if (st[i] != PG_SER_OLD)
            continue;
        pg_arr_str(&arr[0], series[i]->project);
        pg_arr_str(&arr[1], series[i]->metric);
        pg_arr_str(&arr[2], pg_fname(series[i]));
        pg_arr_str(&arr[3], pg_fvalue(series[i]));
        pg_arr_i16(&arr[4], series[i]->filter_name != NULL);
    }
    for (i = 0; i < 5; i++) {
        pg_arr_close(&arr[i], i < 4 ? PG_OID_TEXT : PG_OID_INT2);
        oom |= arr[i].oom;
    }
    if (oom) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }
    rc = pg_run_arr(s, pg_series_ids_sql, 5, arr, &r, PGRES_TUPLES_OK,
                    "looking up series ids", err);
    if (rc != GW_OK)
        goto out;
    if ((size_t) PQntuples(r) != nmiss || PQnfields(r) != 1) {
        rc = gw_error_set(err, "postgres: looking up series ids: %d rows "
                          "for %zu series", PQntuples(r), nmiss);
        goto out;
    }
    for (i = 0, j = 0; i < ns; i++) {
        if (st[i] != PG_SER_OLD)
            continue;
        if (PQgetisnull(r, (int) j, 0) || PQgetlength(r, (int) j, 0) != 8) {
            rc = gw_error_set(err, "postgres: series %s/%s has no id "
                              "(gottwall_series changed meanwhile?)",
                              series[i]->project, series[i]->metric);
            goto out;
        }
        ids[i] = pg_get_int(r, (int) j++, 0);
    }
out:
    PQclear(r);
    for (i = 0; i < 5; i++)
        free(arr[i].p);
    return rc;
}

/* A cell bound for gottwall_cells: its series' id and the cell. */
typedef struct pg_hcell_s {
    int64_t sid;
    const pg_cell_t *cell;
} pg_hcell_t;

static int
pg_hcell_cmp(const void *x, const void *y)
{
    const pg_hcell_t *a = x, *b = y;
    int64_t ba, bb;

    if (a->sid != b->sid)
        return a->sid < b->sid ? -1 : 1;
    if (a->cell->d->period != b->cell->d->period)
        return a->cell->d->period < b->cell->d->period ? -1 : 1;
    ba = pg_bucket(a->cell->d);
    bb = pg_bucket(b->cell->d);
    return (ba > bb) - (ba < bb);
}

static int
pg_id_cmp(const void *x, const void *y)
{
    const int64_t *a = x, *b = y; /* {id, series index} */

    return (a[0] > b[0]) - (a[0] < b[0]);
}

/* The slots of the updated series that pg_upd_sql found late (rows of
 * (id, bit mask of periods)), appended to h; upd[j] is the series index
 * of update row j. */
static int
pg_late(const PGresult *r, const size_t *upd, size_t nupd,
        const int64_t *ids, const pg_slot_t *slots, pg_hcell_t *h,
        size_t *nh, gw_error_t *err)
{
    int64_t *map = malloc(nupd * 2 * sizeof(*map));
    int row, rows = PQntuples(r), p;
    size_t j;

    if (map == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    for (j = 0; j < nupd; j++) {
        map[2 * j] = ids[upd[j]];
        map[2 * j + 1] = (int64_t) upd[j];
    }
    qsort(map, nupd, 2 * sizeof(*map), pg_id_cmp);
    for (row = 0; row < rows; row++) {
        int64_t key[2] = {pg_get_int(r, row, 0), 0}, *m;
        int64_t late = pg_get_int(r, row, 1);

        m = bsearch(key, map, nupd, 2 * sizeof(*map), pg_id_cmp);
        if (m == NULL) {
            free(map);
            return gw_error_set(err, "postgres: updating slots: series id "
                                "%lld was not in the batch",
                                (long long) key[0]);
        }
        for (p = 0; p < PG_SLOTS; p++)
            if ((late >> p) & 1) {
                h[*nh].sid = key[0];
                h[*nh].cell = slots[(size_t) m[1] * PG_SLOTS + p].cell;
                (*nh)++;
            }
    }
    free(map);
    return GW_OK;
}

static int
pg_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    pg_state_t *s = state;
    pg_arr_t arr[PG_NARRS];
    const char *id[1];
    pg_cell_t *cells;
    PGresult *r = NULL;
    size_t i, n = 0, ns = 0, nh = 0, nask = 0, nupd = 0, *sidx = NULL;
    size_t *hist = NULL, *upd = NULL;
    const gw_delta_t **series = NULL;
    pg_slot_t *slots = NULL;
    pg_hcell_t *h = NULL;
    int64_t *ids = NULL, *pairs = NULL;
    uint32_t *kb = NULL;
    unsigned char *st = NULL;
    int rc, oom = 0, seen, check = 0, k;

    if (batch->ndeltas == 0)
        return GW_OK;
    for (i = 0; i < batch->ndeltas; i++)
        if (pg_check_delta(&batch->deltas[i], i, err) != GW_OK)
            return GW_ERR;
    if (batch->ndeltas > 0x7fffffff)
        return gw_error_set(err, "postgres storage: a batch of %zu deltas "
                            "is too large", batch->ndeltas);
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    pg_sql_init();
    if ((rc = pg_stage(s, err)) != GW_OK)
        return rc;
    memset(arr, 0, sizeof(arr));
    if ((cells = pg_merge(batch, &n)) == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    sidx = malloc(n * sizeof(*sidx));
    series = malloc(n * sizeof(*series));
    ids = malloc(n * sizeof(*ids));
    st = malloc(n);
    slots = malloc(n * PG_SLOTS * sizeof(*slots));
    hist = malloc(n * sizeof(*hist));
    upd = malloc(n * sizeof(*upd));
    h = malloc(n * sizeof(*h));
    kb = malloc(n * PG_SLOTS * sizeof(*kb));
    pairs = malloc(n * 2 * sizeof(*pairs));
    if (sidx == NULL || series == NULL || ids == NULL || st == NULL ||
        slots == NULL || hist == NULL || upd == NULL || h == NULL ||
        kb == NULL || pairs == NULL) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }
    for (i = PG_M_PROJECT; i < PG_M_PROJECT + 3; i++)
        pg_arr_open(&arr[i]);
    ns = pg_scan(arr, cells, n, sidx, series, ids, kb, slots, hist, &nh,
                 &s->cache);
    pg_arr_close(&arr[PG_M_PROJECT], PG_OID_TEXT);
    pg_arr_close(&arr[PG_M_PROJECT + 1], PG_OID_TEXT);
    pg_arr_close(&arr[PG_M_PROJECT + 2], PG_OID_INT2);
    /* The series not cached, for pg_ins_sql. */
    pg_copy_open(&arr[PG_CP_NEW]);
    for (i = 0; i < ns; i++) {
        const gw_delta_t *d = series[i];

        st[i] = ids[i] < 0 ? PG_SER_ASK : PG_SER_CACHED;
        if (st[i] != PG_SER_ASK)
            continue;
        nask++;
        pg_copy_row(&arr[PG_CP_NEW], 5 + 5 * PG_SLOTS);
        pg_arr_str(&arr[PG_CP_NEW], d->project);
        pg_arr_str(&arr[PG_CP_NEW], d->metric);
        pg_arr_str(&arr[PG_CP_NEW], pg_fname(d));
        pg_arr_str(&arr[PG_CP_NEW], pg_fvalue(d));
        pg_arr_i16(&arr[PG_CP_NEW], d->filter_name != NULL);
        pg_copy_slots(&arr[PG_CP_NEW], &slots[i * PG_SLOTS]);
    }
    pg_copy_close(&arr[PG_CP_NEW]);
    for (i = 0; i < PG_NARRS; i++)
        oom |= arr[i].oom;
    if (oom) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }

    id[0] = batch->id ? batch->id : "";
    if ((rc = pg_exec(s, "BEGIN", PGRES_COMMAND_OK, "BEGIN", err)) != GW_OK)
        goto out;
    rc = pg_runp(s, pg_batch_sql, 1, NULL, id, &r, PGRES_COMMAND_OK,
                 "storing a batch id", err);
    if (rc != GW_OK)
        goto abort;
    seen = strcmp(PQcmdTuples(r), "0") == 0; /* applied before */
    PQclear(r);
    if (seen) {
        gw_log_debug(s->ctx, "batch %s was already applied; skipped", id[0]);
        rc = pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
        goto out;
    }
    if (nask > 0) {
        if ((rc = pg_copy(s, "pg_temp.gottwall_stage_new", &arr[PG_CP_NEW],
                          err)) != GW_OK)
            goto abort;
        rc = pg_runp(s, pg_ins_sql, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                     "storing the series", err);
        if (rc != GW_OK)
            goto abort;
        rc = pg_series_ids(s, r, series, ns, ids, st, err);
        PQclear(r);
        if (rc != GW_OK)
            goto abort;
    }

    /* The series that were there: spill, then update their slots. */
    /* In id order: {id, series index} pairs sorted, then the indices. */
    for (i = 0; i < ns; i++)
        if (st[i] == PG_SER_CACHED || st[i] == PG_SER_OLD) {
            pairs[2 * nupd] = ids[i];
            pairs[2 * nupd + 1] = (int64_t) i;
            nupd++;
        }
    qsort(pairs, nupd, 2 * sizeof(*pairs), pg_id_cmp);
    for (i = 0; i < nupd; i++)
        upd[i] = (size_t) pairs[2 * i + 1];
    pg_copy_open(&arr[PG_CP_UPD]);
    for (i = 0; i < nupd; i++) {
        unsigned char ck = pg_may_spill(&slots[upd[i] * PG_SLOTS],
                                        &kb[upd[i] * PG_SLOTS]);

        check |= ck;
        pg_copy_row(&arr[PG_CP_UPD], 2 + 5 * PG_SLOTS);
        pg_arr_i64(&arr[PG_CP_UPD], ids[upd[i]]);
        pg_arr_elem(&arr[PG_CP_UPD], &ck, 1);
        pg_copy_slots(&arr[PG_CP_UPD], &slots[upd[i] * PG_SLOTS]);
    }
    pg_copy_close(&arr[PG_CP_UPD]);
    if (arr[PG_CP_UPD].oom) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto abort;
    }
    for (i = 0; i < nh; i++) {
        h[i].sid = ids[sidx[hist[i]]];
        h[i].cell = &cells[hist[i]];
    }
    if (nupd > 0) {
        if ((rc = pg_copy(s, "pg_temp.gottwall_stage_upd", &arr[PG_CP_UPD],
                          err)) != GW_OK)
            goto abort;
        /* A batch's series are few next to the table: look each one up in
         * the primary key (in id order) rather than read the whole key
         * for a merge or hash join. For this transaction only. */
        if ((rc = pg_exec(s, "SET LOCAL enable_mergejoin = off",
                          PGRES_COMMAND_OK, "planning", err)) != GW_OK ||
            (rc = pg_exec(s, "SET LOCAL enable_hashjoin = off",
                          PGRES_COMMAND_OK, "planning", err)) != GW_OK)
            goto abort;
        if (check)
            rc = pg_runp(s, pg_spill_sql, 0, NULL, NULL, NULL,
                         PGRES_COMMAND_OK, "moving cells out of the slots",
                         err);
        if (rc != GW_OK)
            goto abort;
        rc = pg_runp(s, pg_upd_sql, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                     "updating the slots", err);
        if (rc != GW_OK)
            goto abort;
        rc = pg_late(r, upd, nupd, ids, slots, h, &nh, err);
        PQclear(r);
        if (rc != GW_OK)
            goto abort;
    }

    /* The cells that are no slot. */
    if (nh > 0) {
        qsort(h, nh, sizeof(*h), pg_hcell_cmp);
        for (i = 0; i < 7; i++)
            pg_arr_open(&arr[PG_H_SID + i]);
        for (i = 0; i < nh; i++) {
            const pg_cell_t *c = h[i].cell;

            pg_arr_i64(&arr[PG_H_SID], h[i].sid);
            pg_arr_i16(&arr[PG_H_SID + 1], (int) c->d->period);
            pg_arr_i64(&arr[PG_H_SID + 2], pg_bucket(c->d));
            pg_arr_i16(&arr[PG_H_SID + 3], (int) c->d->kind);
            pg_arr_f64(&arr[PG_H_SID + 4], c->sum);
            pg_arr_i64(&arr[PG_H_SID + 5], c->count);
            pg_arr_f64(&arr[PG_H_SID + 6], c->ts);
        }
        for (i = 0; i < 7; i++) {
            pg_arr_close(&arr[PG_H_SID + i], pg_cell_oid[i]);
            oom |= arr[PG_H_SID + i].oom;
        }
        if (oom) {
            rc = gw_error_set(err, "postgres storage: out of memory");
            goto abort;
        }
        rc = pg_run_arr(s, pg_cells_sql, 7, &arr[PG_H_SID], NULL,
                        PGRES_COMMAND_OK, "storing a batch", err);
        if (rc != GW_OK)
            goto abort;
    }
    rc = pg_run_arr(s, pg_metrics_sql, 3, &arr[PG_M_PROJECT], NULL,
                    PGRES_COMMAND_OK, "storing the metrics", err);
    if (rc != GW_OK)
        goto abort;
    rc = pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
    if (rc == GW_OK) {
        /* Only committed ids: a rolled-back insert's ids do not exist. */
        for (i = 0; i < ns; i++) {
            /* Committed: each slot is now at or after the batch's. */
            for (k = 0; k < PG_SLOTS; k++) {
                const pg_cell_t *c = slots[i * PG_SLOTS + k].cell;

                if (c != NULL)
                    kb[i * PG_SLOTS + k] = pg_kb(pg_bucket(c->d));
            }
            pg_cache_put(&s->cache, series[i], ids[i], &kb[i * PG_SLOTS]);
        }
        pg_prune(s);
    }
    goto out;
abort:
    if (s->conn != NULL)
        PQclear(PQexecParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL,
                             0));
out:
    for (i = 0; i < PG_NARRS; i++)
        free(arr[i].p);
    free(cells);
    free(sidx);
    free(series);
    free(ids);
    free(st);
    free(slots);
    free(hist);
    free(upd);
    free(h);
    free(kb);
    free(pairs);
    return rc;
}

/* ---- reads ---- */

/* A point of a series: its gottwall_cells row and its slot (the same
 * bucket in both only after a migration from version 2 or when a delta
 * came late) add up as one cell that took the slot's deltas last. */
static void
pg_point_add(gw_point_t *to, const gw_point_t *slot, int kind)
{
    if (kind == GW_KIND_GAUGE) {
        if (slot->ts >= to->ts)
            to->sum = slot->sum;
    } else {
        to->sum += slot->sum;
    }
    to->count += slot->count;
    to->ts = fmax(to->ts, slot->ts);
}

static void
pg_point(const PGresult *r, int row, gw_point_t *p)
{
    p->bucket = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    p->sum = strtod(PQgetvalue(r, row, 3), NULL);
    p->count = strtoll(PQgetvalue(r, row, 4), NULL, 10);
    p->ts = strtod(PQgetvalue(r, row, 5), NULL);
}

static int
pg_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    pg_state_t *s = state;
    char series[4], period[4], from[32], to[32];
    const char *params[8];
    PGresult *r;
    gw_point_t slot;
    int rc, i, rows, slot_row = -1, slot_kind = 0, merged = 0;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((q->filter_name == NULL) != (q->filter_value == NULL))
        return gw_error_set(err, "a filter name needs a value");
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    pg_sql_init();
    snprintf(series, sizeof(series), "%d", q->filter_name != NULL);
    snprintf(period, sizeof(period), "%d", (int) q->period);
    snprintf(from, sizeof(from), "%lld", (long long) q->from);
    snprintf(to, sizeof(to), "%lld", (long long) q->to);
    params[0] = q->project;
    params[1] = q->metric;
    params[2] = q->filter_name ? q->filter_name : "";
    params[3] = q->filter_value ? q->filter_value : "";
    params[4] = series;
    params[5] = period;
    params[6] = from;
    params[7] = to;
    r = PQexecParams(s->conn, pg_query_sql, 8, NULL, params, NULL, NULL, 0);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "query", err);
    rows = rc == GW_OK ? PQntuples(r) : 0;
    for (i = 0; i < rows; i++)
        if (strcmp(PQgetvalue(r, i, 0), "1") == 0) {
            slot_row = i;
            pg_point(r, i, &slot);
            slot_kind = atoi(PQgetvalue(r, i, 2));
        }
    for (i = 0; i < rows; i++) {
        gw_point_t p;

        if (i == slot_row)
            continue;
        pg_point(r, i, &p);
        if (slot_row >= 0 && !merged && p.bucket == slot.bucket) {
            pg_point_add(&p, &slot, slot_kind);
            merged = 1;
        }
        emit(arg, &p);
    }
    if (slot_row >= 0 && !merged)
        emit(arg, &slot);
    PQclear(r);
    return rc;
}

static int
pg_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
            gw_error_t *err)
{
    pg_state_t *s = state;
    const char *params[] = {project};
    const char *last = NULL;
    PGresult *r;
    int rc, i, rows;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    r = PQexecParams(s->conn, pg_meta_sql, 1, NULL, params, NULL, NULL, 0);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "metadata", err);
    rows = rc == GW_OK ? PQntuples(r) : 0;
    for (i = 0; i < rows; i++) {
        gw_meta_t m;

        m.metric = PQgetvalue(r, i, 0);
        m.kind = (gw_kind_t) atoi(PQgetvalue(r, i, 1));
        if (gw_kind_name(m.kind) == NULL)
            m.kind = GW_KIND_COUNTER;
        if (last == NULL || strcmp(last, m.metric) != 0) {
            m.filter_name = NULL;
            m.filter_value = NULL;
            emit(arg, &m);
            last = m.metric;
        }
        if (!PQgetisnull(r, i, 2)) {
            m.filter_name = PQgetvalue(r, i, 2);
            m.filter_value = PQgetvalue(r, i, 3);
            emit(arg, &m);
        }
    }
    PQclear(r);
    return rc;
}

static int
pg_doc_put(void *state, const char *ns, const char *id, const char *data,
           size_t len, gw_error_t *err)
{
    pg_state_t *s = state;
    const char *params[] = {ns, id, data ? data : ""};
    int lens[] = {0, 0, (int) len};
    int formats[] = {0, 0, 1}; /* data is binary: bytea as is */
    PGresult *r;
    int rc;

    if (len > 0x7fffffff)
        return gw_error_set(err, "document too large");
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    r = PQexecParams(s->conn, pg_doc_put_sql, 3, NULL, params, lens, formats,
                     0);
    rc = pg_check(s, r, PGRES_COMMAND_OK, "storing a document", err);
    PQclear(r);
    return rc;
}

static int
pg_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
           void *arg, gw_error_t *err)
{
    pg_state_t *s = state;
    const char *params[] = {ns, id};
    PGresult *r;
    int rc;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    /* resultFormat 1: the bytea's bytes, unescaped */
    r = PQexecParams(s->conn, pg_doc_get_sql, 2, NULL, params, NULL, NULL, 1);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "reading a document", err);
    if (rc == GW_OK && PQntuples(r) == 1)
        emit(arg, PQgetvalue(r, 0, 0), (size_t) PQgetlength(r, 0, 0));
    PQclear(r);
    return rc;
}

static int
pg_ping(void *state, gw_error_t *err)
{
    pg_state_t *s = state;
    int rc;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    rc = pg_exec(s, "SELECT 1", PGRES_TUPLES_OK, "ping", err);
    return rc == GW_OK ? GW_OK : GW_AGAIN;
}

/* ---- lifecycle ---- */

static int
pg_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    pg_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    s->ctx = ctx;
    if (ctx->host->config_apply(ctx, pg_keys, s, err) != GW_OK) {
        free(s);
        return GW_ERR;
    }
    *state = s;
    return GW_OK;
}

static void
pg_destroy(void *state)
{
    pg_state_t *s = state;

    pg_disconnect(s);
    free(s);
}

static const gw_storage_ops_t pg_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = pg_create,
    .destroy = pg_destroy,
    .store = pg_store,
    .query = pg_query,
    .metadata = pg_metadata,
    .doc_put = pg_doc_put,
    .doc_get = pg_doc_get,
    .ping = pg_ping,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "postgres",
    .version = "0.1.0",
    .description = "PostgreSQL storage, versioned schema",
    .storage = &pg_ops,
};
