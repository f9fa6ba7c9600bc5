/*
 * plugins/storage/postgres/read.c: the PostgreSQL storage's reads: query
 * (a series' points, from gottwall_cells and the row's slot), metadata
 * (a project's metrics and filter values) and documents.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

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

void
pg_query_params(const gw_query_t *q, pg_qparams_t *qp)
{
    snprintf(qp->series, sizeof(qp->series), "%d", q->filter_name != NULL);
    snprintf(qp->period, sizeof(qp->period), "%d", (int) q->period);
    snprintf(qp->from, sizeof(qp->from), "%lld", (long long) q->from);
    snprintf(qp->to, sizeof(qp->to), "%lld", (long long) q->to);
    qp->params[0] = q->project;
    qp->params[1] = q->metric;
    qp->params[2] = q->filter_name ? q->filter_name : "";
    qp->params[3] = q->filter_value ? q->filter_value : "";
    qp->params[4] = qp->series;
    qp->params[5] = qp->period;
    qp->params[6] = qp->from;
    qp->params[7] = qp->to;
}

int
pg_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    pg_state_t *s = state;
    pg_qparams_t qp;
    PGresult *r;
    gw_point_t slot;
    int rc, i, rows, slot_row = -1, slot_kind = 0, merged = 0;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((q->filter_name == NULL) != (q->filter_value == NULL))
        return gw_error_set(err, "a filter name needs a value");
    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    pg_query_params(q, &qp);
    r = PQexecParams(s->conn, pg_stmts()->query, 8, NULL, qp.params, NULL,
                     NULL, 0);
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

int
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

int
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

int
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

/* Runs a document statement changing at most one row: GW_OK when it did,
 * GW_CONFLICT when it did not (err says so), GW_AGAIN or GW_ERR. */
static int
pg_doc_change(pg_state_t *s, const char *sql, int n, const char **params,
              const int *lens, const int *formats, const char *ns,
              const char *id, gw_error_t *err)
{
    PGresult *r;
    int rc;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    r = PQexecParams(s->conn, sql, n, NULL, params, lens, formats, 0);
    rc = pg_check(s, r, PGRES_COMMAND_OK, "changing a document", err);
    if (rc == GW_OK && strcmp(PQcmdTuples(r), "1") != 0) {
        gw_error_set(err, "postgres storage: the document %s/%s changed", ns,
                     id);
        rc = GW_CONFLICT;
    }
    PQclear(r);
    return rc;
}

int
pg_doc_cas(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, const char *data, size_t len, gw_error_t *err)
{
    const char *params[] = {ns, id, data ? data : "", expect ? expect : ""};
    int lens[] = {0, 0, (int) len, (int) expect_len};
    int formats[] = {0, 0, 1, 1}; /* bytea as is */

    if (len > 0x7fffffff || expect_len > 0x7fffffff)
        return gw_error_set(err, "document too large");
    return pg_doc_change(state, expect ? pg_doc_cas_sql : pg_doc_create_sql,
                         expect ? 4 : 3, params, lens, formats, ns, id, err);
}

int
pg_doc_del(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, gw_error_t *err)
{
    const char *params[] = {ns, id, expect ? "1" : "0", expect ? expect : ""};
    int lens[] = {0, 0, 0, (int) expect_len};
    int formats[] = {0, 0, 0, 1};
    int rc;

    if (expect_len > 0x7fffffff)
        return gw_error_set(err, "document too large");
    rc = pg_doc_change(state, pg_doc_del_sql, 4, params, lens, formats, ns,
                       id, err);
    return rc == GW_CONFLICT && expect == NULL ? GW_OK : rc;
}

int
pg_doc_list(void *state, const char *ns, const char *prefix,
            gw_doc_entry_fn emit, void *arg, gw_error_t *err)
{
    pg_state_t *s = state;
    const char *params[] = {ns, prefix};
    PGresult *r;
    int rc, i;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    /* resultFormat 1: the id's text and the bytea's bytes as they are */
    r = PQexecParams(s->conn, pg_doc_list_sql, 2, NULL, params, NULL, NULL, 1);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "listing documents", err);
    for (i = 0; rc == GW_OK && i < PQntuples(r); i++)
        emit(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
             (size_t) PQgetlength(r, i, 1));
    PQclear(r);
    return rc;
}

/* Deletes expired nonces in bulk: after PG_NONCE_PRUNE_EVERY claims or a
 * minute, whichever comes first. A failure only leaves rows for later. */
#define PG_NONCE_PRUNE_EVERY 10000u

static void
pg_nonce_prune(pg_state_t *s, const char *now)
{
    const char *params[] = {now};
    PGresult *r;
    gw_error_t err;

    if (s->nonce_claims < PG_NONCE_PRUNE_EVERY
        && pg_now() - s->last_nonce_prune < 60.0)
        return;
    s->nonce_claims = 0;
    s->last_nonce_prune = pg_now();
    r = PQexecParams(s->conn, pg_nonce_prune_sql, 1, NULL, params, NULL, NULL,
                     0);
    if (pg_check(s, r, PGRES_COMMAND_OK, "deleting expired nonces", &err)
        != GW_OK)
        gw_log_warning(s->ctx, "%s", err.msg);
    else if (atoi(PQcmdTuples(r)) > 0)
        gw_log_debug(s->ctx, "postgres: %s expired nonces deleted",
                     PQcmdTuples(r));
    PQclear(r);
}

/* The shared replay cache: a row per nonce (schema version 4). */
int
pg_nonce_claim(void *state, const char *project, const char *nonce,
               size_t len, double expires_at, gw_error_t *err)
{
    pg_state_t *s = state;
    char n[128], exp[32], now[32];
    const char *params[] = {project, n, exp, now};
    struct timespec ts;
    PGresult *r;
    int rc;

    if (len >= sizeof(n)) {
        gw_error_set(err, "nonce too long");
        return GW_AGAIN;
    }
    memcpy(n, nonce, len);
    n[len] = '\0';
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(exp, sizeof(exp), "%.3f", expires_at);
    snprintf(now, sizeof(now), "%.3f",
             (double) ts.tv_sec + ts.tv_nsec / 1e9);
    if (pg_connect(s, err) != GW_OK)
        return GW_AGAIN;
    r = PQexecParams(s->conn, pg_nonce_claim_sql, 4, NULL, params, NULL, NULL,
                     0);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "claiming a nonce", err);
    if (rc == GW_OK && PQntuples(r) == 0)
        rc = gw_error_set(err, "nonce already claimed (a replay)");
    else if (rc != GW_OK)
        rc = GW_AGAIN;
    PQclear(r);
    if (rc == GW_OK) {
        s->nonce_claims++;
        pg_nonce_prune(s, now);
    }
    return rc;
}
