/*
 * plugins/storage/postgres/postgres.c: the PostgreSQL storage (SPEC §6).
 *
 * Runs on the storage thread with libpq's synchronous API. Creates and
 * migrates its own schema (gottwall_schema holds the version; each
 * migration runs in a transaction under an advisory lock, so several
 * aggregators starting together agree). A flush batch is one statement,
 * one round trip: a CTE that records the batch id in gottwall_batches and,
 * only if that id was new, upserts every cell (ON CONFLICT DO UPDATE with
 * the per-kind rule) and the metadata, from array parameters. Every value
 * travels as a parameter of PQexecParams; no value is ever put inside SQL
 * text. While the server is unreachable, calls return GW_AGAIN at once and
 * reconnection is tried with backoff. docs/storage-postgres.md has the
 * schema.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <gottwall/plugin.h>

/* ---- schema ---- */

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

static const char *const *const pg_migrations[] = {pg_migration_1};
#define PG_SCHEMA_VERSION                                                     \
    ((int) (sizeof(pg_migrations) / sizeof(pg_migrations[0])))

/*
 * The flush: $1 batch id, then one array per column. The deltas arrive
 * merged (one row per cell) and sorted, so concurrent writers lock rows in
 * the same order.
 */
static const char pg_store_sql[] =
    "WITH b AS ("
    " INSERT INTO gottwall_batches (id) VALUES ($1)"
    " ON CONFLICT (id) DO NOTHING RETURNING id"
    "), d AS ("
    " SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::smallint[], $7::smallint[], $8::bigint[], $9::smallint[],"
    " $10::float8[], $11::bigint[], $12::float8[])"
    " AS t(project, metric, filter_name, filter_value, series, period,"
    " bucket, kind, sum, count, ts)"
    " WHERE EXISTS (SELECT 1 FROM b)"
    "), c AS ("
    " INSERT INTO gottwall_cells AS c (project, metric, filter_name,"
    " filter_value, series, period, bucket, kind, sum, count, ts)"
    " SELECT project, metric, filter_name, filter_value, series, period,"
    " bucket, kind, sum, count, ts FROM d"
    " ON CONFLICT (project, metric, filter_name, filter_value, series, period,"
    " bucket) DO UPDATE SET"
    " sum = CASE WHEN EXCLUDED.kind = 3 THEN"
    "   CASE WHEN EXCLUDED.ts >= c.ts THEN EXCLUDED.sum ELSE c.sum END"
    "   ELSE c.sum + EXCLUDED.sum END,"
    " count = c.count + EXCLUDED.count,"
    " ts = GREATEST(c.ts, EXCLUDED.ts)"
    " RETURNING 1"
    "), m AS ("
    " INSERT INTO gottwall_metrics (project, metric, kind)"
    " SELECT DISTINCT ON (project, metric) project, metric, kind FROM d"
    " ORDER BY project, metric"
    " ON CONFLICT DO NOTHING RETURNING 1"
    "), f AS ("
    " INSERT INTO gottwall_filters (project, metric, filter_name,"
    " filter_value)"
    " SELECT DISTINCT project, metric, filter_name, filter_value FROM d"
    " WHERE series = 1"
    " ON CONFLICT DO NOTHING RETURNING 1"
    ")"
    " SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM c),"
    " (SELECT count(*) FROM m), (SELECT count(*) FROM f)";

static const char pg_query_sql[] =
    "SELECT bucket, sum, count, ts FROM gottwall_cells"
    " WHERE project = $1 AND metric = $2 AND filter_name = $3"
    " AND filter_value = $4 AND series = $5 AND period = $6"
    " AND bucket BETWEEN $7 AND $8";

static const char pg_meta_sql[] =
    "SELECT m.metric, m.kind, f.filter_name, f.filter_value"
    " FROM gottwall_metrics m LEFT JOIN gottwall_filters f"
    " ON f.project = m.project AND f.metric = m.metric"
    " WHERE m.project = $1 ORDER BY m.metric";

static const char pg_doc_put_sql[] =
    "INSERT INTO gottwall_documents (ns, id, data) VALUES ($1, $2, $3)"
    " ON CONFLICT (ns, id) DO UPDATE SET data = EXCLUDED.data,"
    " updated_at = now()";

static const char pg_doc_get_sql[] =
    "SELECT data FROM gottwall_documents WHERE ns = $1 AND id = $2";

static const char pg_prune_sql[] =
    "DELETE FROM gottwall_batches WHERE applied_at < now() - $1::interval";

/* ---- state ---- */

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
pg_disconnect(pg_state_t *s)
{
    if (s->conn != NULL)
        PQfinish(s->conn);
    s->conn = NULL;
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

/* A text array literal being built: {"a","b\"c"}. */
typedef struct pg_arr_s {
    char *p;
    size_t len;
    size_t cap;
    int oom;
} pg_arr_t;

static void
pg_arr_put(pg_arr_t *a, const char *s, size_t len)
{
    if (a->oom)
        return;
    if (a->len + len + 2 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        char *p;

        while (cap < a->len + len + 2)
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
    a->p[a->len] = '\0';
}

static void
pg_arr_sep(pg_arr_t *a)
{
    pg_arr_put(a, a->len == 0 ? "{" : ",", 1);
}

/* A quoted element: " and \ are backslash-escaped. */
static void
pg_arr_str(pg_arr_t *a, const char *s)
{
    const char *run = s;

    pg_arr_sep(a);
    pg_arr_put(a, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s != '"' && *s != '\\')
            continue;
        pg_arr_put(a, run, (size_t) (s - run));
        pg_arr_put(a, "\\", 1);
        run = s;
    }
    pg_arr_put(a, run, (size_t) (s - run));
    pg_arr_put(a, "\"", 1);
}

static void
pg_arr_int(pg_arr_t *a, long long v)
{
    char buf[32];

    pg_arr_sep(a);
    pg_arr_put(a, buf, (size_t) snprintf(buf, sizeof(buf), "%lld", v));
}

static void
pg_arr_double(pg_arr_t *a, double v)
{
    char buf[40];

    pg_arr_sep(a);
    pg_arr_put(a, buf, (size_t) snprintf(buf, sizeof(buf), "%.17g", v));
}

static void
pg_arr_close(pg_arr_t *a)
{
    if (a->len == 0)
        pg_arr_put(a, "{", 1);
    pg_arr_put(a, "}", 1);
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

/* Orders cells by the primary key (the lock order of every writer). The
 * byte order of strcmp, not the database's collation: any fixed order
 * serves. Ties keep the batch order (index). */
static int
pg_cell_cmp(const void *x, const void *y)
{
    const gw_delta_t *a = ((const pg_cell_t *) x)->d;
    const gw_delta_t *b = ((const pg_cell_t *) y)->d;
    int c;

    if ((c = strcmp(a->project, b->project)) != 0 ||
        (c = strcmp(a->metric, b->metric)) != 0 ||
        (c = strcmp(pg_fname(a), pg_fname(b))) != 0 ||
        (c = strcmp(pg_fvalue(a), pg_fvalue(b))) != 0)
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
           strcmp(a->project, b->project) == 0 &&
           strcmp(a->metric, b->metric) == 0 &&
           strcmp(pg_fname(a), pg_fname(b)) == 0 &&
           strcmp(pg_fvalue(a), pg_fvalue(b)) == 0;
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

#define PG_NCOLS 11

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

static int
pg_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    pg_state_t *s = state;
    pg_arr_t cols[PG_NCOLS];
    const char *params[PG_NCOLS + 1];
    pg_cell_t *cells;
    PGresult *r;
    size_t i, n = 0;
    int rc, oom = 0;

    if (batch->ndeltas == 0)
        return GW_OK;
    for (i = 0; i < batch->ndeltas; i++)
        if (pg_check_delta(&batch->deltas[i], i, err) != GW_OK)
            return GW_ERR;
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    if ((cells = pg_merge(batch, &n)) == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    memset(cols, 0, sizeof(cols));
    for (i = 0; i < n; i++) {
        const gw_delta_t *d = cells[i].d;

        pg_arr_str(&cols[0], d->project);
        pg_arr_str(&cols[1], d->metric);
        pg_arr_str(&cols[2], pg_fname(d));
        pg_arr_str(&cols[3], pg_fvalue(d));
        pg_arr_int(&cols[4], d->filter_name != NULL);
        pg_arr_int(&cols[5], (long long) d->period);
        pg_arr_int(&cols[6],
                   d->period == GW_PERIOD_ALL ? 0 : (long long) d->bucket);
        pg_arr_int(&cols[7], (long long) d->kind);
        pg_arr_double(&cols[8], cells[i].sum);
        pg_arr_int(&cols[9], (long long) cells[i].count);
        pg_arr_double(&cols[10], cells[i].ts);
    }
    free(cells);
    params[0] = batch->id ? batch->id : "";
    for (i = 0; i < PG_NCOLS; i++) {
        pg_arr_close(&cols[i]);
        oom |= cols[i].oom;
        params[i + 1] = cols[i].p;
    }
    if (oom) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }
    r = PQexecParams(s->conn, pg_store_sql, PG_NCOLS + 1, NULL, params, NULL,
                     NULL, 0);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "storing a batch", err);
    if (rc == GW_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0)
        gw_log_debug(s->ctx, "batch %s was already applied; skipped",
                     params[0]);
    PQclear(r);
    if (rc == GW_OK)
        pg_prune(s);
out:
    for (i = 0; i < PG_NCOLS; i++)
        free(cols[i].p);
    return rc;
}

/* ---- reads ---- */

static int
pg_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    pg_state_t *s = state;
    char series[4], period[4], from[32], to[32];
    const char *params[8];
    PGresult *r;
    int rc, i, rows;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((q->filter_name == NULL) != (q->filter_value == NULL))
        return gw_error_set(err, "a filter name needs a value");
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
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
    for (i = 0; i < rows; i++) {
        gw_point_t p;

        p.bucket = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        p.sum = strtod(PQgetvalue(r, i, 1), NULL);
        p.count = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        p.ts = strtod(PQgetvalue(r, i, 3), NULL);
        emit(arg, &p);
    }
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
