/*
 * plugins/storage/postgres/schema.c: the PostgreSQL storage's schema and
 * its migrations.
 *
 * gottwall_schema holds the version. At each connect pg_migrate applies
 * the migrations the database lacks, each in its own transaction under an
 * advisory lock, so several aggregators starting together agree.
 * docs/storage-postgres.md has the schema.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"

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

/* Version 4: the replay cache shared by every process on this database
 * (nonce_claim): one row per claimed S3/S4 nonce, until it expires (epoch
 * seconds); expired rows are deleted in bulk now and then (read.c). */
static const char *const pg_migration_4[] = {
    "CREATE TABLE gottwall_nonces ("
    " project text NOT NULL,"
    " nonce text NOT NULL,"
    " expires_at double precision NOT NULL,"
    " PRIMARY KEY (project, nonce))",
    "CREATE INDEX gottwall_nonces_expires_at ON gottwall_nonces"
    " (expires_at)",
    NULL};

/* Version 5: gottwall_cells partitioned by period (LIST) and, but for
 * all, by time (RANGE on bucket; part.c has the spans), so that retention
 * drops whole partitions instead of deleting rows (expire.c); and
 * gottwall_expiry, each period's cut: reads leave out the buckets before
 * it. The rows of version 4 are copied into the partitioned table (the
 * partitions their buckets and the slots' need are made first), then the
 * old table is dropped. DETACH PARTITION ... CONCURRENTLY needs
 * PostgreSQL 14. */
static const char *const pg_migration_5a[] = {
    "CREATE TABLE gottwall_expiry ("
    " period smallint PRIMARY KEY," /* gw_period_t */
    " before bigint NOT NULL,"      /* buckets before it are expired */
    " hide_from bigint NOT NULL,"   /* the start of before's partition */
    " slots_before bigint)",        /* the slots were cleared up to it */
    "ALTER TABLE gottwall_cells RENAME TO gottwall_cells_4",
    "ALTER INDEX gottwall_cells_pkey RENAME TO gottwall_cells_4_pkey",
    "CREATE TABLE gottwall_cells (" PG_CELL_COLUMNS ")"
    " PARTITION BY LIST (period)",
    "CREATE TABLE gottwall_cells_minute PARTITION OF gottwall_cells"
    " FOR VALUES IN (0) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_hour PARTITION OF gottwall_cells"
    " FOR VALUES IN (1) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_day PARTITION OF gottwall_cells"
    " FOR VALUES IN (2) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_week PARTITION OF gottwall_cells"
    " FOR VALUES IN (3) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_month PARTITION OF gottwall_cells"
    " FOR VALUES IN (4) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_year PARTITION OF gottwall_cells"
    " FOR VALUES IN (5) PARTITION BY RANGE (bucket)",
    "CREATE TABLE gottwall_cells_all PARTITION OF gottwall_cells"
    " FOR VALUES IN (6) WITH (fillfactor = 70)",
    NULL};

static const char *const pg_migration_5b[] = {
    "INSERT INTO gottwall_cells SELECT * FROM gottwall_cells_4"
    " ORDER BY series_id, period, bucket",
    "DROP TABLE gottwall_cells_4",
    NULL};

static int
pg_exec_all(pg_state_t *s, const char *const *sql, gw_error_t *err)
{
    int rc = GW_OK, i;

    for (i = 0; sql[i] != NULL && rc == GW_OK; i++)
        rc = pg_exec(s, sql[i], PGRES_COMMAND_OK, "migrating the schema",
                     err);
    return rc;
}

/* Migration 5, in the migration's transaction. */
static int
pg_migrate_5(pg_state_t *s, gw_error_t *err)
{
    PGresult *r;
    int rc, v;

    r = PQexecParams(s->conn, "SELECT current_setting('server_version_num')",
                     0, NULL, NULL, NULL, NULL, 0);
    if ((rc = pg_check(s, r, PGRES_TUPLES_OK, "reading the server version",
                       err)) != GW_OK) {
        PQclear(r);
        return rc;
    }
    v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (v < 140000)
        return gw_error_set(err, "postgres: schema version 5 (cells "
                            "partitioned for retention) needs PostgreSQL 14 "
                            "or newer (DETACH PARTITION ... CONCURRENTLY); "
                            "this server is version %d.%d: upgrade it",
                            v / 10000, v % 10000);
    if ((rc = pg_exec_all(s, pg_migration_5a, err)) != GW_OK)
        return rc;
    /* Every day holding a cell or a slot, but all's: its partition. */
    rc = pg_runp(s, PG_SLOT_DAYS("gottwall_series s") " UNION SELECT"
                 " period::int4, (bucket - bucket % 86400)::int8"
                 " FROM gottwall_cells_4 WHERE period < 6"
                 " AND bucket >= 0 AND bucket < 253402300800", 0, NULL, NULL,
                 &r, PGRES_TUPLES_OK, "migrating the schema", err);
    if (rc != GW_OK)
        return rc;
    rc = pg_parts_make_rows(s, r, 1, err);
    PQclear(r);
    if (rc == GW_OK)
        rc = pg_exec_all(s, pg_migration_5b, err);
    pg_parts_forget(s); /* read again from the catalog once committed */
    return rc;
}

/* Version 6: the timing and set kinds (ABI 1.5). Their sum and count are
 * cells as any; a timing's sketch and a set's members are a bytea in the
 * SDK's encoding per cell (kinds.c), removed by expiry with an index of
 * their own. */
static const char *const pg_migration_6[] = {
    "CREATE TABLE gottwall_sketches ("
    " series_id bigint NOT NULL,"
    " period smallint NOT NULL," /* gw_period_t */
    " bucket bigint NOT NULL,"
    " data bytea NOT NULL," /* gw_timing_encode or gw_set_encode */
    " PRIMARY KEY (series_id, period, bucket))",
    "CREATE INDEX gottwall_sketches_expiry ON gottwall_sketches"
    " (period, bucket)",
    NULL};

static const char *const *const pg_migrations[] = {
    pg_migration_1, pg_migration_2, pg_migration_3, pg_migration_4,
    pg_migration_5a, pg_migration_6};

/* Migrations done in C (NULL: the statements above are the migration). */
static int (*const pg_migration_fn[])(pg_state_t *, gw_error_t *) = {
    NULL, NULL, NULL, NULL, pg_migrate_5, NULL};

/* PG_SCHEMA_VERSION (pg.h) is the number of migrations. */
typedef char pg_migrations_match_version[
    sizeof(pg_migrations) / sizeof(pg_migrations[0]) == PG_SCHEMA_VERSION
        ? 1 : -1];

/* Applies the migrations the database lacks, each in its own transaction
 * under an advisory lock. */
int
pg_migrate(pg_state_t *s, gw_error_t *err)
{
    int version, rc;

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
        if (pg_migration_fn[version] != NULL)
            rc = pg_migration_fn[version](s, err);
        else
            rc = pg_exec_all(s, pg_migrations[version], err);
        if (rc != GW_OK)
            goto abort;
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
    pg_rollback(s);
    return rc;
}
