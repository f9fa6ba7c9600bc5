/*
 * plugins/storage/postgres/expire.c: retention (the expire op, ABI 1.4).
 *
 * An expiry of (period, before) goes in three phases, a little per call
 * (about PG_EXPIRE_BUDGET seconds of work, then GW_AGAIN: the core calls
 * again 10 ms later, and flushes run in between):
 *
 *   cut     the cut is recorded in gottwall_expiry: from then on every read
 *           leaves out the period's buckets before it, and no slot older
 *           than it is moved into gottwall_cells (sql.c);
 *   slots   each series' slot of the period older than the cut is
 *           cleared, PG_EXPIRE_SLOTS rows of gottwall_series at a time,
 *           skipping rows a flush holds (SKIP LOCKED: the expiry never
 *           waits for a flush, and holds its row locks for one short
 *           statement); at most once per partition span, since a read
 *           hides the slots past the cut anyway;
 *   parts   each partition of the period wholly before the cut is
 *           detached (DETACH PARTITION ... CONCURRENTLY, which takes no
 *           lock a flush's insert or a read waits for, and itself waits
 *           for the transactions that may still use the partition) and
 *           dropped. The partition that holds the cut stays until it is
 *           wholly older: its rows before the cut are hidden from reads,
 *           never deleted one by one.
 *
 * The DDL runs on a second connection of its own (xconn), sent without
 * waiting (PQsendQuery) and polled at each call: DETACH ... CONCURRENTLY
 * cannot run inside a transaction block, and its wait must not hold up
 * the storage thread, whose flushes use the first connection. A session
 * advisory lock on xconn lets one process at a time detach partitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define PG_EXPIRE_BUDGET 0.02   /* s of work per call */
#define PG_EXPIRE_SLOTS 5000    /* series rows per slot-clearing statement */
#define PG_EXPIRE_LOCK "7236521983416270851" /* pg_try_advisory_lock key */

enum { PG_X_CUT, PG_X_SLOTS, PG_X_PARTS };

void
pg_expire_close(pg_state_t *s)
{
    if (s->xconn != NULL)
        PQfinish(s->xconn);
    s->xconn = NULL;
    s->exp.busy = 0;
    s->exp.period = -1;
}

/* Records the cut; the slots are cleared unless they were for a cut
 * less than one span ago. */
static int
pg_expire_cut(pg_state_t *s, pg_expiry_t *x, gw_error_t *err)
{
    char p[8], b[32], h[32];
    const char *params[3] = {p, b, h};
    int64_t slots_before, lo, hi;
    PGresult *r;
    int rc;

    pg_span(x->period, x->before <= 0 ? 0
                       : x->before < PG_BUCKET_END ? x->before - 1
                                                  : PG_BUCKET_END - 1,
            &lo, &hi);
    snprintf(p, sizeof(p), "%d", x->period);
    snprintf(b, sizeof(b), "%lld", (long long) x->before);
    /* A cut at a span's start hides nothing: its partition is the next. */
    snprintf(h, sizeof(h), "%lld",
             (long long) (hi <= x->before ? x->before : lo));
    rc = pg_runp(s, pg_cut_sql, 3, NULL, params, &r, PGRES_TUPLES_OK,
                 "expire: recording the cut", err);
    if (rc != GW_OK)
        return rc;
    slots_before = pg_get_int(r, 0, 0);
    PQclear(r);
    /* The timing and set cells' sketches (schema 6) go at once: a row
     * each, by the (period, bucket) index. */
    rc = pg_runp(s, "DELETE FROM gottwall_sketches WHERE period = $1::int2"
                 " AND bucket < $2::int8", 2, NULL, params, NULL,
                 PGRES_COMMAND_OK, "expire: timing and set cells", err);
    if (rc != GW_OK)
        return rc;
    x->phase = slots_before > x->before - (hi - lo) ? PG_X_PARTS
                                                     : PG_X_SLOTS;
    x->cursor = 0;
    return GW_OK;
}

/* Clears the slots older than the cut in the next PG_EXPIRE_SLOTS series
 * rows (by id); after the last, records that they were. */
static int
pg_expire_slots(pg_state_t *s, pg_expiry_t *x, gw_error_t *err)
{
    char sql[1024], p[8], b[32], c[32];
    const char *params[2] = {c, b};
    const char *done[2] = {p, b};
    PGresult *r;
    int rc, n = x->period;

    snprintf(p, sizeof(p), "%d", n);
    snprintf(b, sizeof(b), "%lld", (long long) x->before);
    snprintf(c, sizeof(c), "%lld", (long long) x->cursor);
    snprintf(sql, sizeof(sql),
             "WITH r AS (SELECT id FROM gottwall_series WHERE id > $1::int8"
             " ORDER BY id LIMIT %d),"
             " x AS (SELECT s.id FROM gottwall_series s JOIN r ON r.id = s.id"
             " WHERE s.b%d < $2::int8 FOR NO KEY UPDATE OF s SKIP LOCKED),"
             " u AS (UPDATE gottwall_series s SET b%d = NULL, k%d = NULL,"
             " s%d = NULL, c%d = NULL, t%d = NULL FROM x WHERE s.id = x.id"
             " RETURNING 1)"
             " SELECT (SELECT max(id) FROM r), (SELECT count(*) FROM u)",
             PG_EXPIRE_SLOTS, n, n, n, n, n, n);
    rc = pg_runp(s, sql, 2, NULL, params, &r, PGRES_TUPLES_OK,
                 "expire: clearing old slots", err);
    if (rc != GW_OK)
        return rc;
    if (!PQgetisnull(r, 0, 0)) {
        x->cursor = pg_get_int(r, 0, 0);
        if (pg_get_int(r, 0, 1) > 0)
            gw_log_debug(s->ctx, "postgres: expire: %lld %s slots cleared",
                         (long long) pg_get_int(r, 0, 1),
                         gw_period_name((gw_period_t) n));
        PQclear(r);
        return GW_OK;
    }
    PQclear(r);
    rc = pg_runp(s, "UPDATE gottwall_expiry SET slots_before = $2::int8"
                 " WHERE period = $1::int2", 2, NULL, done, NULL,
                 PGRES_COMMAND_OK, "expire: recording the slots", err);
    if (rc == GW_OK)
        x->phase = PG_X_PARTS;
    return rc;
}

/* A statement on xconn, not waited for. */
static int
pg_expire_send(pg_state_t *s, pg_expiry_t *x, const char *sql,
               const char *what, gw_error_t *err)
{
    if (PQtransactionStatus(s->xconn) != PQTRANS_IDLE ||
        !PQsendQuery(s->xconn, sql)) {
        gw_error_set(err, "postgres: expire: %s: %s", what,
                     PQerrorMessage(s->xconn));
        pg_expire_close(s);
        return GW_ERR;
    }
    snprintf(x->what, sizeof(x->what), "%s", what);
    x->busy = 1;
    return GW_OK;
}

/* Whether the statement on xconn has finished: GW_AGAIN not yet; GW_OK
 * done; GW_ERR it failed (err). */
static int
pg_expire_poll(pg_state_t *s, pg_expiry_t *x, gw_error_t *err)
{
    PGresult *r;
    int rc = GW_OK;

    if (!PQconsumeInput(s->xconn)) {
        gw_error_set(err, "postgres: expire: %s: %s", x->what,
                     PQerrorMessage(s->xconn));
        pg_expire_close(s);
        return GW_ERR;
    }
    if (PQisBusy(s->xconn))
        return GW_AGAIN;
    while ((r = PQgetResult(s->xconn)) != NULL) {
        if (rc == GW_OK && PQresultStatus(r) != PGRES_COMMAND_OK &&
            PQresultStatus(r) != PGRES_TUPLES_OK) {
            gw_error_set(err, "postgres: expire: %s: %s", x->what,
                         PQresultErrorMessage(r));
            rc = GW_ERR;
        }
        PQclear(r);
    }
    x->busy = 0;
    return rc;
}

/* The expiry's connection, with the advisory lock that makes this the
 * one process detaching partitions. *mine 0: another process holds it. */
static int
pg_expire_xconn(pg_state_t *s, int *mine, gw_error_t *err)
{
    PGresult *r;

    *mine = 1;
    if (s->xconn != NULL && PQstatus(s->xconn) == CONNECTION_OK)
        return GW_OK;
    pg_expire_close(s);
    if (pg_open(s, "gottwall expiry", &s->xconn, err) != GW_OK)
        return GW_AGAIN;
    r = PQexec(s->xconn, "SELECT pg_try_advisory_lock(" PG_EXPIRE_LOCK ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        gw_error_set(err, "postgres: expire: %s", PQerrorMessage(s->xconn));
        PQclear(r);
        pg_expire_close(s);
        return GW_AGAIN;
    }
    *mine = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!*mine)
        pg_expire_close(s); /* try again at the next pass */
    return GW_OK;
}

/* Starts the removal of the oldest partition of the period wholly before
 * the cut: detached (or its detach finished), or dropped when it is
 * detached already. *none when there is none left. */
static int
pg_expire_next(pg_state_t *s, pg_expiry_t *x, int *none, gw_error_t *err)
{
    const char *pn = gw_period_name((gw_period_t) x->period);
    char like[64], sql[256], name[64];
    const char *params[1] = {like};
    PGresult *r;
    int rc, i, period, state = -1;
    int64_t lo, hi;

    snprintf(like, sizeof(like), "gottwall\\_cells\\_%s\\_%%", pn);
    rc = pg_runp(s, "SELECT c.relname::text, CASE WHEN NOT c.relispartition"
                 " THEN 2 WHEN i.inhdetachpending THEN 1 ELSE 0 END::int4"
                 " FROM pg_class c LEFT JOIN pg_inherits i"
                 " ON i.inhrelid = c.oid WHERE c.relkind = 'r'"
                 " AND c.relnamespace = (SELECT relnamespace FROM pg_class"
                 " WHERE oid = 'gottwall_cells'::regclass)"
                 " AND c.relname LIKE $1 ORDER BY c.relname", 1, NULL,
                 params, &r, PGRES_TUPLES_OK, "expire: listing partitions",
                 err);
    if (rc != GW_OK)
        return rc;
    for (i = 0; i < PQntuples(r); i++) {
        if (!pg_part_parse(PQgetvalue(r, i, 0), &period, &lo) ||
            period != x->period)
            continue;
        pg_span(period, lo, &lo, &hi);
        if (hi > x->before)
            break; /* by name, so by date: the rest are newer */
        snprintf(name, sizeof(name), "%s", PQgetvalue(r, i, 0));
        state = (int) pg_get_int(r, i, 1);
        break;
    }
    PQclear(r);
    *none = state < 0;
    if (*none)
        return GW_OK;
    if (state == 2) { /* detached before, not dropped */
        snprintf(sql, sizeof(sql), "DROP TABLE %s", name);
        x->drop[0] = '\0';
        return pg_expire_send(s, x, sql, "dropping a partition", err);
    }
    snprintf(sql, sizeof(sql), "ALTER TABLE gottwall_cells_%s DETACH"
             " PARTITION %s %s", pn, name,
             state == 1 ? "FINALIZE" : "CONCURRENTLY");
    snprintf(x->drop, sizeof(x->drop), "%s", name);
    s->parts_loaded = 0; /* the next flush reads the list again */
    return pg_expire_send(s, x, sql, "detaching a partition", err);
}

/* The partitions phase, one step: polls the DDL running, drops what was
 * detached, starts the next. GW_OK: no partition is left to remove;
 * GW_AGAIN: more to do. */
static int
pg_expire_parts(pg_state_t *s, pg_expiry_t *x, gw_error_t *err)
{
    char sql[128];
    int mine, none;

    if (x->busy) {
        int rc;

        if ((rc = pg_expire_poll(s, x, err)) != GW_OK)
            return rc;
        if (x->drop[0] != '\0') {
            snprintf(sql, sizeof(sql), "DROP TABLE %s", x->drop);
            gw_log_info(s->ctx, "postgres: expire: partition %s detached "
                        "(%s buckets before %lld); dropping it", x->drop,
                        gw_period_name((gw_period_t) x->period),
                        (long long) x->before);
            x->drop[0] = '\0';
            return pg_expire_send(s, x, sql, "dropping a partition", err) ==
                           GW_OK
                       ? GW_AGAIN
                       : GW_ERR;
        }
        return GW_AGAIN; /* a drop finished: look for the next */
    }
    if (pg_expire_xconn(s, &mine, err) != GW_OK)
        return GW_ERR;
    if (!mine) {
        gw_log_debug(s->ctx, "postgres: expire: another process is removing "
                     "partitions");
        return GW_OK;
    }
    if (pg_expire_next(s, x, &none, err) != GW_OK)
        return GW_ERR;
    return none ? GW_OK : GW_AGAIN;
}

int
pg_expire(void *state, gw_period_t period, int64_t before, gw_error_t *err)
{
    pg_state_t *s = state;
    pg_expiry_t *x = &s->exp;
    double t0 = pg_now();
    int rc = GW_OK;

    if ((unsigned) period >= GW_PERIOD_ALL)
        return gw_error_set(err, "postgres: expire: period %d has no "
                            "buckets to remove", (int) period);
    if (x->busy && (x->period != (int) period || x->before != before)) {
        /* Another pass: the DDL of this one finishes first. */
        if ((rc = pg_expire_poll(s, x, err)) == GW_AGAIN)
            return GW_AGAIN;
        x->period = -1;
    }
    if (x->period != (int) period || x->before != before) {
        x->period = (int) period;
        x->before = before;
        x->phase = PG_X_CUT;
        x->drop[0] = '\0';
    }
    /* A failure ends the pass (GW_ERR: the core logs it and tries again
     * at the next interval), so a server that is down is not asked again
     * every 10 ms. */
    if (pg_connect(s, err) != GW_OK)
        return GW_ERR;
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        pg_rollback(s); /* not left by a flush, but never run inside one */
    for (;;) {
        if (x->phase == PG_X_CUT)
            rc = pg_expire_cut(s, x, err);
        else if (x->phase == PG_X_SLOTS)
            rc = pg_expire_slots(s, x, err);
        else if ((rc = pg_expire_parts(s, x, err)) == GW_OK) {
            x->period = -1; /* nothing before the cut is left */
            return GW_OK;
        } else if (rc == GW_AGAIN)
            rc = GW_OK; /* more partitions */
        if (rc != GW_OK) {
            x->period = -1;
            return GW_ERR;
        }
        if (x->busy || pg_now() - t0 >= PG_EXPIRE_BUDGET)
            return GW_AGAIN; /* the DDL runs meanwhile, or time is up */
    }
}
