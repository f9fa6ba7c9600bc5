/*
 * plugins/storage/postgres/kinds.c: the timing and set kinds (ABI 1.5)
 * in PostgreSQL (docs/storage-postgres.md, "Timings and sets").
 *
 * Their sum and count go where every cell's go (a timing's as an avg's,
 * so the mean reads the same; a set's count is its events). The sketch
 * of a timing cell and the members of a set cell are in
 * gottwall_sketches (schema 6), one bytea per (series, period, bucket) in
 * the SDK's encoding (gw_timing_encode, gw_set_encode: versioned by the
 * first byte). A flush, in its transaction: inserts the rows that are new
 * (ON CONFLICT DO NOTHING waits for another writer's uncommitted row of
 * the same key); locks the others (FOR UPDATE, in key order, as every
 * writer does) and merges into them in C (gw_timing_merge, gw_set_merge),
 * so two aggregators lose nothing and deadlock on nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "../../common/points.h"

#define PG_OID_BYTEA 17

static const char pg_sk_insert_sql[] =
    "INSERT INTO gottwall_sketches (series_id, period, bucket, data)"
    " SELECT * FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::bytea[])"
    " ON CONFLICT (series_id, period, bucket) DO NOTHING"
    " RETURNING series_id, period, bucket";

static const char pg_sk_lock_sql[] =
    "SELECT k.series_id, k.period, k.bucket, k.data FROM gottwall_sketches k"
    " JOIN unnest($1::int8[], $2::int2[], $3::int8[]) AS u(s, p, b)"
    " ON k.series_id = u.s AND k.period = u.p AND k.bucket = u.b"
    " ORDER BY 1, 2, 3 FOR UPDATE OF k";

static const char pg_sk_update_sql[] =
    "UPDATE gottwall_sketches k SET data = u.d"
    " FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::bytea[])"
    " AS u(s, p, b, d)"
    " WHERE k.series_id = u.s AND k.period = u.p AND k.bucket = u.b";

static const char pg_sk_read_sql[] =
    "SELECT k.bucket, k.data FROM gottwall_series s JOIN gottwall_sketches k"
    " ON k.series_id = s.id WHERE s.project = $1 AND s.metric = $2 AND"
    " s.filter_name = $3 AND s.filter_value = $4 AND s.series = $5"
    " AND k.period = $6::int2 AND k.bucket BETWEEN $7 AND $8"
    " ORDER BY k.bucket";

static int
pg_sk_cmp(const void *a, const void *b)
{
    const pg_sketch_t *x = a, *y = b;
    int64_t bx = x->d->period == GW_PERIOD_ALL ? 0 : x->d->bucket;
    int64_t by = y->d->period == GW_PERIOD_ALL ? 0 : y->d->bucket;

    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    if (x->d->period != y->d->period)
        return x->d->period < y->d->period ? -1 : 1;
    return bx < by ? -1 : bx > by;
}

/* e's data merged with what is stored (NULL: nothing), encoded into a. */
static int
pg_sk_encode(const pg_sketch_t *e, const unsigned char *have, size_t len,
             pg_arr_t *a)
{
    unsigned char *buf;
    size_t n;
    int rc = 0;

    if (e->d->kind == GW_KIND_TIMING) {
        gw_timing_t t;

        if (have != NULL ? gw_timing_decode(have, len, &t) != GW_OK
                         : (gw_timing_init(&t), 0))
            return -2;
        if (gw_timing_merge(&t, e->x->timing) != GW_OK ||
            (buf = malloc(gw_timing_encoded_max(&t))) == NULL) {
            gw_timing_free(&t);
            return -1;
        }
        n = gw_timing_encode(&t, buf);
        gw_timing_free(&t);
    } else {
        gw_set_t s;

        if (have != NULL ? gw_set_decode(have, len, &s) != GW_OK
                         : (gw_set_init(&s), 0))
            return -2;
        if (gw_set_merge(&s, e->x->set) != GW_OK ||
            (buf = malloc(gw_set_encoded_max(&s))) == NULL) {
            gw_set_free(&s);
            return -1;
        }
        n = gw_set_encode(&s, buf);
        gw_set_free(&s);
    }
    pg_arr_elem(a, buf, (uint32_t) n);
    free(buf);
    return rc;
}

/* The key arrays (and, with data, the encoded cells) of e[i] for the i
 * that want[i] (NULL: all), have[i] the stored bytes to merge with. */
static int
pg_sk_arrays(const pg_sketch_t *e, size_t n, const unsigned char *want,
             PGresult *have, const int *row, pg_arr_t *a, int data,
             gw_error_t *err)
{
    size_t i, k;
    int rc;

    for (k = 0; k < 4; k++)
        pg_arr_open(&a[k]);
    for (i = 0; i < n; i++) {
        if (want != NULL && !want[i])
            continue;
        pg_arr_i64(&a[0], e[i].sid);
        pg_arr_i16(&a[1], (int) e[i].d->period);
        pg_arr_i64(&a[2], e[i].d->period == GW_PERIOD_ALL ? 0 : e[i].d->bucket);
        if (!data)
            continue;
        rc = pg_sk_encode(&e[i],
                          have && row[i] >= 0
                              ? (const unsigned char *) PQgetvalue(have, row[i], 3)
                              : NULL,
                          have && row[i] >= 0
                              ? (size_t) PQgetlength(have, row[i], 3)
                              : 0,
                          &a[3]);
        if (rc == -2)
            return gw_error_set(err, "postgres: the stored %s of series %lld "
                                "is not a valid encoding",
                                gw_kind_name(e[i].d->kind),
                                (long long) e[i].sid);
        if (rc < 0)
            return gw_error_set(err, "postgres storage: out of memory");
    }
    pg_arr_close(&a[0], PG_OID_INT8);
    pg_arr_close(&a[1], PG_OID_INT2);
    pg_arr_close(&a[2], PG_OID_INT8);
    pg_arr_close(&a[3], PG_OID_BYTEA);
    for (k = 0; k < 4; k++)
        if (a[k].oom)
            return gw_error_set(err, "postgres storage: out of memory");
    return GW_OK;
}

static void
pg_sk_free(pg_arr_t *a)
{
    size_t k;

    for (k = 0; k < 4; k++) {
        free(a[k].p);
        memset(&a[k], 0, sizeof(a[k]));
    }
}

/* The index of the entry of key (sid, period, bucket) in sorted e. */
static long
pg_sk_find(const pg_sketch_t *e, size_t n, int64_t sid, int period,
           int64_t bucket)
{
    gw_delta_t d;
    pg_sketch_t key;
    const pg_sketch_t *hit;

    memset(&d, 0, sizeof(d));
    d.period = (gw_period_t) period;
    d.bucket = bucket;
    key.sid = sid;
    key.d = &d;
    hit = bsearch(&key, e, n, sizeof(*e), pg_sk_cmp);
    return hit != NULL ? (long) (hit - e) : -1;
}

/* The objects that cells given more than once in a batch merge into. */
typedef struct pg_own_s {
    gw_delta_data_t *x;
    gw_timing_t *t;
    gw_set_t *s;
    size_t n;
} pg_own_t;

static void
pg_own_free(pg_own_t *o)
{
    size_t i;

    for (i = 0; i < o->n; i++) {
        gw_timing_free(&o->t[i]);
        gw_set_free(&o->s[i]);
    }
    free(o->x);
    free(o->t);
    free(o->s);
}

/* Sorts e and merges the entries of one key into one (*n shrinks). */
static int
pg_sk_unique(pg_sketch_t *e, size_t *n, pg_own_t *o)
{
    size_t i, j, m = 0;

    qsort(e, *n, sizeof(*e), pg_sk_cmp);
    o->x = calloc(*n, sizeof(*o->x));
    o->t = calloc(*n, sizeof(*o->t));
    o->s = calloc(*n, sizeof(*o->s));
    if (o->x == NULL || o->t == NULL || o->s == NULL)
        return -1;
    for (i = 0; i < *n; i = j) {
        for (j = i + 1; j < *n && pg_sk_cmp(&e[i], &e[j]) == 0; j++)
            ;
        e[m] = e[i];
        if (j - i > 1) {
            size_t k;

            for (k = i; k < j; k++)
                if (e[k].d->kind == GW_KIND_TIMING
                        ? gw_timing_merge(&o->t[o->n], e[k].x->timing)
                        : gw_set_merge(&o->s[o->n], e[k].x->set)) {
                    o->n++;
                    return -1;
                }
            o->x[o->n].timing = &o->t[o->n];
            o->x[o->n].set = &o->s[o->n];
            e[m].x = &o->x[o->n++];
        }
        m++;
    }
    *n = m;
    return 0;
}

int
pg_sketches_store(pg_state_t *s, pg_sketch_t *e, size_t n, gw_error_t *err)
{
    pg_own_t own = {NULL, NULL, NULL, 0};
    pg_arr_t a[4];
    PGresult *r = NULL;
    unsigned char *left = NULL;
    int *row = NULL, rc;
    size_t i, nleft = n;
    long j;

    if (n == 0)
        return GW_OK;
    memset(a, 0, sizeof(a));
    if (pg_sk_unique(e, &n, &own) != 0) {
        pg_own_free(&own);
        return gw_error_set(err, "postgres storage: out of memory");
    }
    nleft = n;
    left = malloc(n);
    row = malloc(n * sizeof(*row));
    if (left == NULL || row == NULL) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }
    memset(left, 1, n);
    /* 1. New rows: the delta's data as it is. */
    rc = pg_sk_arrays(e, n, NULL, NULL, NULL, a, 1, err);
    if (rc == GW_OK)
        rc = pg_run_arr(s, pg_sk_insert_sql, 4, a, &r, PGRES_TUPLES_OK,
                        "storing timing and set cells", err);
    for (i = 0; rc == GW_OK && i < (size_t) PQntuples(r); i++) {
        j = pg_sk_find(e, n, pg_get_int(r, (int) i, 0),
                       (int) pg_get_int(r, (int) i, 1),
                       pg_get_int(r, (int) i, 2));
        if (j >= 0 && left[j]) {
            left[j] = 0;
            nleft--;
        }
    }
    PQclear(r);
    r = NULL;
    pg_sk_free(a);
    if (rc != GW_OK || nleft == 0)
        goto out;
    /* 2. The rows that were there: locked, merged, written back. */
    rc = pg_sk_arrays(e, n, left, NULL, NULL, a, 0, err);
    if (rc == GW_OK)
        rc = pg_run_arr(s, pg_sk_lock_sql, 3, a, &r, PGRES_TUPLES_OK,
                        "locking timing and set cells", err);
    pg_sk_free(a);
    for (i = 0; i < n; i++)
        row[i] = -1;
    for (i = 0; rc == GW_OK && i < (size_t) PQntuples(r); i++) {
        j = pg_sk_find(e, n, pg_get_int(r, (int) i, 0),
                       (int) pg_get_int(r, (int) i, 1),
                       pg_get_int(r, (int) i, 2));
        if (j >= 0)
            row[j] = (int) i;
    }
    for (i = 0; rc == GW_OK && i < n; i++)
        if (left[i] && row[i] < 0)
            rc = gw_error_set(err, "postgres: a timing or set cell that was "
                              "there is gone (series %lld)",
                              (long long) e[i].sid);
    if (rc == GW_OK)
        rc = pg_sk_arrays(e, n, left, r, row, a, 1, err);
    if (rc == GW_OK)
        rc = pg_run_arr(s, pg_sk_update_sql, 4, a, NULL, PGRES_COMMAND_OK,
                        "merging timing and set cells", err);
out:
    if (r != NULL)
        PQclear(r);
    pg_sk_free(a);
    pg_own_free(&own);
    free(left);
    free(row);
    return rc;
}

/* ---- reads ---- */

/* The points of q (pg_query) and the stored sketches of its range. */
static int
pg_sk_read(pg_state_t *s, const gw_query_t *q, pc_points_t *pts, PGresult **out,
           gw_error_t *err)
{
    pg_qparams_t qp;
    PGresult *r;
    int rc = pg_query(s, q, pc_points_add, pts, err);

    *out = NULL;
    if (rc == GW_OK && pts->oom)
        rc = gw_error_set(err, "postgres storage: out of memory");
    if (rc != GW_OK || pts->n == 0)
        return rc;
    pg_query_params(q, &qp);
    r = PQexecParams(s->conn, pg_sk_read_sql, 8, NULL, qp.params, NULL, NULL, 1);
    rc = pg_check(s, r, PGRES_TUPLES_OK, "reading timing and set cells", err);
    if (rc != GW_OK) {
        PQclear(r);
        return rc;
    }
    *out = r;
    return GW_OK;
}

/* The row of bucket b in r (ordered by bucket), or -1. */
static int
pg_sk_row(const PGresult *r, int64_t b)
{
    int lo = 0, hi = r != NULL ? PQntuples(r) : 0;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int64_t at = pg_get_int(r, mid, 0);

        if (at == b)
            return mid;
        if (at < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int
pg_query_kinds(void *state, const gw_query_t *q, gw_point_fn emit,
               gw_timing_point_fn emit_timing, void *arg, gw_error_t *err)
{
    pc_points_t pts = {NULL, 0, 0, 0};
    PGresult *r;
    size_t i;
    int rc = pg_sk_read(state, q, &pts, &r, err), row;

    for (i = 0; rc == GW_OK && i < pts.n; i++) {
        gw_point_t p = pts.p[i];
        const unsigned char *b;
        size_t len;

        row = pg_sk_row(r, p.bucket);
        b = row >= 0 ? (const unsigned char *) PQgetvalue(r, row, 1) : NULL;
        len = row >= 0 ? (size_t) PQgetlength(r, row, 1) : 0;
        if (q->kind == GW_KIND_SET) {
            gw_set_t set;

            gw_set_init(&set);
            if (b != NULL && gw_set_decode(b, len, &set) != GW_OK)
                rc = gw_error_set(err, "postgres: a stored set is not a "
                                  "valid encoding");
            p.sum = gw_set_count(&set);
            gw_set_free(&set);
            if (rc == GW_OK)
                emit(arg, &p);
        } else {
            gw_timing_t t;

            gw_timing_init(&t);
            if (b != NULL && gw_timing_decode(b, len, &t) != GW_OK)
                rc = gw_error_set(err, "postgres: a stored timing is not a "
                                  "valid encoding");
            if (rc == GW_OK)
                emit_timing(arg, &p, &t);
            gw_timing_free(&t);
        }
    }
    PQclear(r);
    free(pts.p);
    return rc;
}

int
pg_query_ops(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
             gw_error_t *err)
{
    if (q->kind == GW_KIND_SET)
        return pg_query_kinds(state, q, emit, NULL, arg, err);
    return pg_query(state, q, emit, arg, err);
}

int
pg_query_timing(void *state, const gw_query_t *q, gw_timing_point_fn emit,
                void *arg, gw_error_t *err)
{
    return pg_query_kinds(state, q, NULL, emit, arg, err);
}
