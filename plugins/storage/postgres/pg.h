/*
 * plugins/storage/postgres/pg.h: what the PostgreSQL storage's files share.
 *
 *   postgres.c  the config keys, create/destroy, ping and the ops table
 *   conn.c      the connection (backoff, migration on connect), result
 *               checks and running statements (parameters, COPY)
 *   schema.c    the migrations and applying them
 *   sql.c       the statements of the flush and the reads: fixed ones, and
 *               those generated from the slot layout (built once, under
 *               pthread_once)
 *   cache.c     the per-connection cache of series ids
 *   binary.c    PostgreSQL's binary formats: array parameters, COPY
 *               streams, integers of binary results
 *   batch.c     a flush batch in memory: deltas checked, merged into
 *               cells and walked into series and slots
 *   store.c     store(): the flush transaction, stage by stage
 *   read.c      query(), metadata() and the documents (doc_*)
 *   part.c      the partitions of gottwall_cells: their spans and names,
 *               made ahead of time and as flushes need them
 *   expire.c    expire(): the cut recorded, old slots cleared, old
 *               partitions detached and dropped
 *
 * None of this leaves the plugin: -fvisibility=hidden and the export regex
 * keep only the plugin descriptor visible.
 */
#ifndef GW_POSTGRES_PG_H
#define GW_POSTGRES_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <gottwall/plugin.h>

/* ---- schema (schema.c) ---- */

#define PG_SLOTS 7 /* slots per series row (schema 3): one per period */

/* The schema version this code writes: the number of migrations. */
#define PG_SCHEMA_VERSION 6

/* Buckets of the periods but all are in [0, PG_BUCKET_END): years 1970 to
 * 9999, as event times are (the partitions cover that range). */
#define PG_BUCKET_END INT64_C(253402300800)

/* The columns of gottwall_cells and of each of its partitions. */
#define PG_CELL_COLUMNS                                                       \
    "series_id bigint NOT NULL, period smallint NOT NULL,"                    \
    " bucket bigint NOT NULL, kind smallint NOT NULL,"                        \
    " sum double precision NOT NULL, count bigint NOT NULL,"                  \
    " ts double precision NOT NULL, PRIMARY KEY (series_id, period, bucket)"

typedef char pg_slots_match_periods[GW_PERIOD_COUNT == PG_SLOTS ? 1 : -1];

/* The days (period, start of the UTC day) that the slots' buckets are in,
 * but all's: a slot moving on is written into its bucket's partition. */
#define PG_SLOT_DAYS(from)                                                    \
    "SELECT DISTINCT v.p::int4, (v.b - v.b % 86400)::int8 FROM " from        \
    " CROSS JOIN LATERAL (VALUES (0, s.b0), (1, s.b1), (2, s.b2), (3, s.b3),"\
    " (4, s.b4), (5, s.b5)) AS v(p, b)"                                      \
    " WHERE v.b >= 0 AND v.b < 253402300800"

/* ---- state ---- */

/* Series ids this connection has seen committed: series name -> id, and
 * the buckets its slots had reached (slots never go back, so a batch whose
 * buckets are all at or before them moves no cell out: the spill statement
 * skips the series). A flush looks its series up here first and sends only
 * the others to the insert. Dropped with the connection (a restored
 * database may have other ids), and when it reaches PG_CACHE_MAX entries.
 * cache.c. */
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

/* The partitions of one period this connection knows are attached: the
 * start of each one's span, sorted (part.c). */
typedef struct pg_parts_s {
    int64_t *lo;
    size_t n, cap;
} pg_parts_t;

/* Where an expiry (expire.c) stands: the call's period and cut, the
 * phase, the series id the slots were cleared up to, and the DDL running
 * on the expiry's own connection (xconn). */
typedef struct pg_expiry_s {
    int period; /* -1: none under way */
    int64_t before;
    int phase;
    int64_t cursor;
    int busy;      /* a statement is running on xconn */
    char what[96]; /* what it is, for messages */
    char drop[64]; /* the partition to drop once it is detached */
} pg_expiry_t;

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
    char sqlstate[6]; /* of the last error pg_check saw */
    double last_prune;
    double last_nonce_prune; /* monotonic s */
    uint64_t nonce_claims;   /* since the last prune of gottwall_nonces */
    pg_cache_t cache;
    int staged; /* this session has the staging tables */
    pg_parts_t parts[GW_PERIOD_ALL];
    int parts_loaded;
    PGconn *xconn; /* the expiry's DDL (DETACH ... CONCURRENTLY waits) */
    pg_expiry_t exp;
} pg_state_t;

/* A one-dimensional array in PostgreSQL's binary format, being built
 * (binary.c): ndim, has-null flag, element type OID, length, lower bound,
 * then each element as a 4-byte length and its bytes (all big-endian). The
 * same buffer also builds COPY streams. */
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

/* A cell of the batch after merging deltas of the same cell (batch.c). */
typedef struct pg_cell_s {
    const gw_delta_t *d; /* the first delta: names, kind, period, bucket */
    double sum;
    int64_t count;
    double ts;
} pg_cell_t;

/* A timing or set cell of a flush: its series' id, its (first) delta
 * and that delta's data (kinds.c). */
typedef struct pg_sketch_s {
    int64_t sid;
    const gw_delta_t *d;
    const gw_delta_data_t *x;
} pg_sketch_t;

/* ---- kinds.c: the timing and set kinds ---- */

/* Merges the n cells into gottwall_sketches, in the flush's transaction
 * (sorts e). */
int pg_sketches_store(pg_state_t *s, pg_sketch_t *e, size_t n,
                      gw_error_t *err);
/* The storage's query (sets answer their distinct members) and
 * query_timing. */
int pg_query_kinds(void *state, const gw_query_t *q, gw_point_fn emit,
                   gw_timing_point_fn emit_timing, void *arg,
                   gw_error_t *err);
int pg_query_ops(void *state, const gw_query_t *q, gw_point_fn emit,
                 void *arg, gw_error_t *err);
int pg_query_timing(void *state, const gw_query_t *q, gw_timing_point_fn emit,
                    void *arg, gw_error_t *err);

/* One slot of a series in a batch: the cell of the period's newest
 * bucket. */
typedef struct pg_slot_s {
    const pg_cell_t *cell; /* NULL: the batch has no cell of the period */
} pg_slot_t;

/* ---- conn.c: the connection and running statements ---- */

/* Monotonic seconds. */
double pg_now(void);

/* Connects (when not connected) and migrates the schema: GW_OK, or
 * GW_AGAIN (unreachable, backing off, or a migration failed: the core
 * keeps the data meanwhile) with a message. */
int pg_connect(pg_state_t *s, gw_error_t *err);

/* Opens a connection with the settings (application_name app), without
 * migrating: the expiry's second connection. GW_OK or GW_AGAIN. */
int pg_open(pg_state_t *s, const char *app, PGconn **out, gw_error_t *err);

/* Drops the connection and what belongs to it (staging tables, cache). */
void pg_disconnect(pg_state_t *s);

/* Checks a result: GW_OK when it has status want; else GW_AGAIN (the
 * connection or the server's state; the connection may be dropped) or
 * GW_ERR, with a message naming what. Does not clear r. */
int pg_check(pg_state_t *s, PGresult *r, ExecStatusType want,
             const char *what, gw_error_t *err);

/* Runs SQL without parameters (still PQexecParams: one statement only);
 * pg_check's result. */
int pg_exec(pg_state_t *s, const char *sql, ExecStatusType want,
            const char *what, gw_error_t *err);

/* Rolls back the open transaction, if there is still a connection. */
void pg_rollback(pg_state_t *s);

/* Runs sql with n (<= 64) parameters: binary arrays (a[i]) or text
 * (text[i]); *out is the result when GW_OK (the caller PQclears it). A
 * query (want PGRES_TUPLES_OK) has its results in binary. */
int pg_runp(pg_state_t *s, const char *sql, int n, const pg_arr_t *const *a,
            const char *const *text, PGresult **out, ExecStatusType want,
            const char *what, gw_error_t *err);

/* pg_runp with n consecutive arrays. */
int pg_run_arr(pg_state_t *s, const char *sql, int n, const pg_arr_t *arr,
               PGresult **out, ExecStatusType want, const char *what,
               gw_error_t *err);

/* Sends a COPY stream (pg_copy_open) into table (FROM STDIN). */
int pg_copy(pg_state_t *s, const char *table, const pg_arr_t *a,
            gw_error_t *err);

/* ---- schema.c ---- */

/* Applies the migrations the database lacks, each in its own transaction
 * under an advisory lock. GW_OK, GW_AGAIN or GW_ERR with a message. */
int pg_migrate(pg_state_t *s, gw_error_t *err);

/* ---- sql.c: the statements ---- */

extern const char pg_batch_sql[];
extern const char pg_series_ids_sql[];
extern const char pg_cells_sql[];
extern const char pg_metrics_sql[];
extern const char pg_prune_sql[];
extern const char pg_meta_sql[];
extern const char pg_doc_put_sql[];
extern const char pg_doc_get_sql[];
extern const char pg_doc_create_sql[];
extern const char pg_doc_cas_sql[];
extern const char pg_doc_del_sql[];
extern const char pg_doc_list_sql[];
extern const char pg_nonce_claim_sql[];
extern const char pg_nonce_prune_sql[];
extern const char pg_parts_sql[];
extern const char pg_slot_days_sql[];
extern const char pg_cut_sql[];

/* The statements generated from the slot layout (sql.c says what each
 * does). */
typedef struct pg_stmts_s {
    const char *ins;      /* new series with their slots */
    const char *spill;    /* slots moving on, into gottwall_cells */
    const char *upd;      /* every slot of the series that were there */
    const char *stage[2]; /* CREATE TEMP TABLE gottwall_stage_new, _upd */
    const char *query;    /* one series' points of a period */
} pg_stmts_t;

/* The generated statements, built on the first call (from any thread;
 * pthread_once) and never changed after. */
const pg_stmts_t *pg_stmts(void);

/* ---- cache.c ---- */

void pg_cache_free(pg_cache_t *c);

/* d's series id, or -1 when not cached; its PG_SLOTS buckets in kb. */
int64_t pg_cache_get(const pg_cache_t *c, const gw_delta_t *d, uint32_t *kb);

/* Remembers d's series id and buckets (quietly nothing when out of
 * memory). */
void pg_cache_put(pg_cache_t *c, const gw_delta_t *d, int64_t id,
                  const uint32_t *kb);

/* ---- part.c: the partitions of gottwall_cells ---- */

/* The span [lo, hi) of period's partition that holds bucket b (in
 * [0, PG_BUCKET_END)). */
void pg_span(int period, int64_t b, int64_t *lo, int64_t *hi);

/* A partition's name (gottwall_cells_minute_20261203), from its span's
 * start; and back (1: a partition name; 0: not one). */
void pg_part_name(int period, int64_t lo, char *buf, size_t size);
int pg_part_parse(const char *name, int *period, int64_t *lo);

/* 1 when this connection knows period's partition from lo is attached. */
int pg_part_known(const pg_state_t *s, int period, int64_t lo);

/* Makes (if missing) period's partition holding bucket b: a table, then
 * attached, under an advisory lock, in a transaction of its own; in_tx: in
 * the caller's (a migration), without the lock. GW_AGAIN when the
 * partition is being detached. */
int pg_part_make(pg_state_t *s, int period, int64_t b, int in_tx,
                 gw_error_t *err);

/* pg_part_make for each (period, a bucket) row of r not known yet; in_tx
 * as for pg_part_make. */
int pg_parts_make_rows(pg_state_t *s, const PGresult *r, int in_tx,
                       gw_error_t *err);

/* Before a flush: makes the partitions the n cells need, and those of now
 * and the next span for their periods (ahead of time). */
int pg_parts_ensure(pg_state_t *s, const pg_cell_t *cells, size_t n,
                    gw_error_t *err);

/* After a write found no partition (another process removed one this
 * connection knew): reloads the list, and makes the partitions of every
 * slot's bucket (a slot moving on is written into its bucket's). */
int pg_parts_heal(pg_state_t *s, gw_error_t *err);

/* Forgets the partitions known (with the connection). */
void pg_parts_forget(pg_state_t *s);

/* ---- binary.c ---- */

/* Starts an array (the header is written by pg_arr_close). */
void pg_arr_open(pg_arr_t *a);
/* One element: its length and bytes. */
void pg_arr_elem(pg_arr_t *a, const void *data, uint32_t len);
/* A NULL element: length -1, no bytes. */
void pg_arr_null(pg_arr_t *a);
void pg_arr_str(pg_arr_t *a, const char *s);
void pg_arr_i16(pg_arr_t *a, int v);
void pg_arr_i64(pg_arr_t *a, int64_t v);
void pg_arr_f64(pg_arr_t *a, double v);
/* Writes the header: a 1-D array of n elements of type oid (0-D when
 * empty, as PostgreSQL sends an empty array). */
void pg_arr_close(pg_arr_t *a, uint32_t oid);

/* A COPY ... (FORMAT binary) stream in a pg_arr_t: the header, then rows
 * (pg_copy_row: a 16-bit field count, then the fields written as array
 * elements are), then the trailer (pg_copy_close). */
void pg_copy_open(pg_arr_t *a);
void pg_copy_row(pg_arr_t *a, int fields);
void pg_copy_close(pg_arr_t *a);

/* A big-endian integer of the field's length from a binary result. */
int64_t pg_get_int(const PGresult *r, int row, int col);

/* ---- batch.c ---- */

/* d's filter name and value, "" for the total series. */
const char *pg_fname(const gw_delta_t *d);
const char *pg_fvalue(const gw_delta_t *d);

/* gw_delta_check, and the values must be finite. */
int pg_check_delta(const gw_delta_t *d, size_t i, gw_error_t *err);

/* The cells' order (qsort, on pg_cell_t) and whether two deltas are of
 * one cell. */
int pg_cell_cmp(const void *x, const void *y);
int pg_same_cell(const gw_delta_t *a, const gw_delta_t *b);

/* Sorts and merges the deltas into cells; *n set. NULL: out of memory. */
pg_cell_t *pg_merge(const gw_batch_t *batch, size_t *n,
                    uint64_t *saturated);

/* Walks the sorted, merged cells: the series (series[k] its first delta,
 * ids[k] its cached id or -1, kb its cached buckets), each series' slots
 * (slots[k * PG_SLOTS + period]: the newest bucket of the period), and the
 * cells that are no slot (hist, *nh: older buckets of the batch); sidx[i]
 * is cell i's series. Fills the three metrics arrays (project, metric,
 * kind). Returns the number of series. */
size_t pg_scan(pg_arr_t *metrics, const pg_cell_t *cells, size_t n,
               size_t *sidx, const gw_delta_t **series, int64_t *ids,
               uint32_t *kb, pg_slot_t *slots, size_t *hist, size_t *nh,
               const pg_cache_t *cache);

/* ---- the storage ops ---- */

/* store.c */
int pg_store(void *state, const gw_batch_t *batch, gw_error_t *err);

/* read.c */
/* The 8 text parameters of a series' range ($1 project .. $8 to), as
 * pg_query and the kinds' reads bind them. */
typedef struct pg_qparams_s {
    char series[4], period[4], from[32], to[32];
    const char *params[8];
} pg_qparams_t;
void pg_query_params(const gw_query_t *q, pg_qparams_t *qp);
int pg_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
             gw_error_t *err);
int pg_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
                gw_error_t *err);
int pg_doc_put(void *state, const char *ns, const char *id, const char *data,
               size_t len, gw_error_t *err);
int pg_nonce_claim(void *state, const char *project, const char *nonce,
                   size_t len, double expires_at, gw_error_t *err);
int pg_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
               void *arg, gw_error_t *err);
int pg_doc_cas(void *state, const char *ns, const char *id, const char *expect,
               size_t expect_len, const char *data, size_t len,
               gw_error_t *err);
int pg_doc_list(void *state, const char *ns, const char *prefix,
                gw_doc_entry_fn emit, void *arg, gw_error_t *err);
int pg_doc_del(void *state, const char *ns, const char *id, const char *expect,
               size_t expect_len, gw_error_t *err);

/* expire.c */
int pg_expire(void *state, gw_period_t period, int64_t before,
              gw_error_t *err);
/* Ends the expiry's connection (destroy). */
void pg_expire_close(pg_state_t *s);

#endif /* GW_POSTGRES_PG_H */
