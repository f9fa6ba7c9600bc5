/*
 * plugins/storage/redis/read.c: the redis storage's reads (query,
 * metadata); documents are in docs.c.
 *
 * A query reads one series' hash: ranges up to RS_HMGET_MAX buckets HMGET
 * exactly the fields in range (and the ;count or ;ts sibling hash in the
 * same pipeline), longer ones HGETALL the hash and keep what is in range.
 * Metadata is three pipelined rounds: the metric names and kinds, each
 * metric's filter names, each filter's values. A document is one string
 * key (SET, GET).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "rs.h"

/* Ranges up to this many buckets are read with HMGET of exactly those
 * fields; longer ones with HGETALL and a filter. */
#define RS_HMGET_MAX 10000

/* ---- query ---- */

typedef struct rs_field_s {
    int64_t bucket;
    char name[24];
} rs_field_t;

static int
rs_parse_double(const redisReply *r, double *out)
{
    char *end;

    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (double) r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return -1;
    /* A number beyond a double's range is +-inf (an older GottWall could
     * store one: HINCRBYFLOAT adds in long double); the read API shows it
     * as null and logs it, rather than failing the whole query. */
    *out = strtod(r->str, &end);
    return *end != '\0' ? -1 : 0;
}

/* The fields of the buckets in from..to, or NULL with *n = SIZE_MAX when
 * there are more than RS_HMGET_MAX. */
static rs_field_t *
rs_range_fields(gw_period_t period, int64_t from, int64_t to, size_t *n)
{
    rs_field_t *f;
    int64_t b;
    size_t i = 0;

    *n = 0;
    if (period == GW_PERIOD_ALL) {
        if (from > 0 || to < 0)
            return NULL;
        if ((f = calloc(2, sizeof(*f))) == NULL)
            return NULL;
        strcpy(f[0].name, "0");
        strcpy(f[1].name, "None"); /* the original's all bucket */
        *n = 2;
        return f;
    }
    for (b = rs_bucket_align_up(period, from); b <= to && i <= RS_HMGET_MAX;
         b = rs_bucket_next(period, b))
        i++;
    if (i > RS_HMGET_MAX) {
        *n = SIZE_MAX;
        return NULL;
    }
    if (i == 0 || (f = calloc(i, sizeof(*f))) == NULL)
        return NULL;
    i = 0;
    for (b = rs_bucket_align_up(period, from); b <= to;
         b = rs_bucket_next(period, b)) {
        f[i].bucket = b;
        snprintf(f[i].name, sizeof(f[i].name), "%lld", (long long) b);
        i++;
    }
    *n = i;
    return f;
}

static int
rs_append_hmget(rs_state_t *s, const char *key, size_t keylen,
                const rs_field_t *f, size_t n)
{
    const char **argv = malloc((n + 2) * sizeof(*argv));
    size_t *lens = malloc((n + 2) * sizeof(*lens)), i;
    int rc = -1;

    if (argv != NULL && lens != NULL) {
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = key;
        lens[1] = keylen;
        for (i = 0; i < n; i++) {
            argv[i + 2] = f[i].name;
            lens[i + 2] = strlen(f[i].name);
        }
        rc = redisAppendCommandArgv(s->c, (int) n + 2, argv, lens) ==
                     REDIS_OK
                 ? 0
                 : -1;
    }
    free(argv);
    free(lens);
    return rc;
}

/* HGETALL key, keeping the numeric fields (and "None" for all) in range. */
static int
rs_fields_from_hash(rs_state_t *s, const char *key, size_t keylen,
                    const gw_query_t *q, rs_field_t **out, size_t *n,
                    gw_error_t *err)
{
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, keylen}, i, m = 0;
    redisReply *r;
    rs_field_t *f;
    int rc = rs_call(s, 2, argv, lens, &r, "HGETALL", err);

    if (rc != GW_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        rc = rs_reply_error(s, r, "HGETALL", err);
        freeReplyObject(r);
        return rc;
    }
    f = calloc(r->elements / 2 + 1, sizeof(*f));
    if (f == NULL) {
        freeReplyObject(r);
        return gw_error_set(err, "redis storage: out of memory");
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *name = r->element[i];
        char *end;
        long long b;

        if (name->type != REDIS_REPLY_STRING || name->len >= 24)
            continue;
        if (q->period == GW_PERIOD_ALL && strcmp(name->str, "None") == 0) {
            b = 0;
        } else {
            errno = 0;
            b = strtoll(name->str, &end, 10);
            if (name->len == 0 || *end != '\0' || errno != 0)
                continue;
        }
        if (b < q->from || b > q->to)
            continue;
        f[m].bucket = b;
        memcpy(f[m].name, name->str, name->len + 1);
        m++;
    }
    freeReplyObject(r);
    *out = f;
    *n = m;
    return GW_OK;
}

int
rs_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    if (q->kind == GW_KIND_SET)
        return rs_query_set(state, q, emit, arg, err);
    return rs_query_plain(state, q, emit, arg, err);
}

int
rs_query_plain(rs_state_t *s, const gw_query_t *q, gw_point_fn emit,
               void *arg, gw_error_t *err)
{
    rs_buf_t key = {NULL, 0, 0, 0}, extra = {NULL, 0, 0, 0};
    rs_field_t *f = NULL;
    redisReply *r[2] = {NULL, NULL};
    size_t n = 0, i, nreplies;
    int rc;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((q->filter_name == NULL) != (q->filter_value == NULL))
        return gw_error_set(err, "a filter name needs a value");
    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    rs_key_series(&key, q->project, q->metric, q->period, q->filter_name,
                  q->filter_value);
    if (q->kind == GW_KIND_AVG || q->kind == GW_KIND_GAUGE ||
        q->kind == GW_KIND_TIMING) {
        rs_buf_put(&extra, key.p, key.len);
        rs_buf_puts(&extra, q->kind == GW_KIND_GAUGE ? RS_SUFFIX_TS
                                                     : RS_SUFFIX_COUNT);
    }
    if (key.oom || extra.oom) {
        rc = gw_error_set(err, "redis storage: out of memory");
        goto out;
    }
    f = rs_range_fields(q->period, q->from, q->to, &n);
    if (n == SIZE_MAX) {
        /* A long range: read the whole hash once and keep what is in it. */
        rc = rs_fields_from_hash(s, key.p, key.len, q, &f, &n, err);
        if (rc != GW_OK)
            goto out;
    }
    if (n == 0) {
        rc = GW_OK;
        goto out;
    }
    nreplies = extra.p != NULL ? 2 : 1;
    if (rs_append_hmget(s, key.p, key.len, f, n) < 0 ||
        (extra.p != NULL && rs_append_hmget(s, extra.p, extra.len, f, n) < 0)) {
        rc = gw_error_set(err, "redis storage: out of memory");
        goto out;
    }
    for (i = 0; i < nreplies; i++) {
        if (redisGetReply(s->c, (void **) &r[i]) != REDIS_OK || r[i] == NULL) {
            rc = rs_io_error(s, "HMGET", err);
            goto out;
        }
    }
    for (i = 0; i < nreplies; i++) {
        if (r[i]->type != REDIS_REPLY_ARRAY || r[i]->elements != n) {
            rc = rs_reply_error(s, r[i], "HMGET", err);
            goto out;
        }
    }
    {
        gw_point_t all = {0, 0, 0, 0};
        int have_all = 0;

        for (i = 0; i < n; i++) {
            gw_point_t p = {f[i].bucket, 0, 0, 0};
            const redisReply *v = r[0]->element[i];
            double x = 0;

            if (v->type == REDIS_REPLY_NIL)
                continue;
            if (rs_parse_double(v, &p.sum) < 0) {
                rc = gw_error_set(err, "redis: %s field %s holds \"%.40s\", "
                                  "not a number", key.p, f[i].name,
                                  v->type == REDIS_REPLY_STRING ? v->str : "");
                goto out;
            }
            if (nreplies == 2 && r[1]->element[i]->type != REDIS_REPLY_NIL &&
                rs_parse_double(r[1]->element[i], &x) == 0) {
                if (q->kind != GW_KIND_GAUGE)
                    p.count = (int64_t) x;
                else
                    p.ts = x;
            }
            if (q->period == GW_PERIOD_ALL) {
                /* "0" and the original's "None" are the same bucket. */
                all.sum += p.sum;
                all.count += p.count;
                if (p.ts > all.ts)
                    all.ts = p.ts;
                have_all = 1;
                continue;
            }
            emit(arg, &p);
        }
        if (have_all)
            emit(arg, &all);
    }
    rc = GW_OK;
out:
    if (rc != GW_OK)
        rs_disconnect(s); /* replies may be left unread: start over */
    if (r[0] != NULL)
        freeReplyObject(r[0]);
    if (r[1] != NULL)
        freeReplyObject(r[1]);
    free(f);
    rs_buf_free(&key);
    rs_buf_free(&extra);
    return rc;
}

/* ---- metadata ---- */

static gw_kind_t
rs_kind_of(const redisReply *kinds, const char *metric, size_t len)
{
    size_t i;

    if (kinds == NULL || kinds->type != REDIS_REPLY_ARRAY)
        return GW_KIND_COUNTER;
    for (i = 0; i + 1 < kinds->elements; i += 2) {
        const redisReply *k = kinds->element[i], *v = kinds->element[i + 1];

        if (k->type == REDIS_REPLY_STRING && (size_t) k->len == len &&
            memcmp(k->str, metric, len) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            if (strcmp(v->str, "avg") == 0)
                return GW_KIND_AVG;
            if (strcmp(v->str, "gauge") == 0)
                return GW_KIND_GAUGE;
            if (strcmp(v->str, "timing") == 0)
                return GW_KIND_TIMING;
            if (strcmp(v->str, "set") == 0)
                return GW_KIND_SET;
        }
    }
    return GW_KIND_COUNTER;
}

/* Reads n pipelined replies into r (each an array), or fails. */
static int
rs_read_arrays(rs_state_t *s, redisReply **r, size_t n, const char *what,
               gw_error_t *err)
{
    size_t i;
    int rc = GW_OK;

    for (i = 0; i < n; i++) {
        if (redisGetReply(s->c, (void **) &r[i]) != REDIS_OK || r[i] == NULL) {
            r[i] = NULL;
            return rs_io_error(s, what, err);
        }
    }
    for (i = 0; i < n; i++)
        if (rc == GW_OK && r[i]->type != REDIS_REPLY_ARRAY)
            rc = rs_reply_error(s, r[i], what, err);
    return rc;
}

static void
rs_free_replies(redisReply **r, size_t n)
{
    size_t i;

    for (i = 0; r != NULL && i < n; i++)
        if (r[i] != NULL)
            freeReplyObject(r[i]);
    free(r);
}

/* Appends "SMEMBERS key" built by the caller in b. */
static int
rs_append_smembers(rs_state_t *s, rs_buf_t *b)
{
    const char *argv[2];
    size_t lens[2];

    if (b->oom)
        return -1;
    argv[0] = "SMEMBERS";
    lens[0] = 8;
    argv[1] = b->p;
    lens[1] = b->len;
    return redisAppendCommandArgv(s->c, 2, argv, lens) == REDIS_OK ? 0 : -1;
}

int
rs_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
            gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t b = {NULL, 0, 0, 0};
    redisReply *top[2] = {NULL, NULL}, **filters = NULL, **values = NULL;
    const redisReply *metrics;
    size_t i, j, nm = 0, nv = 0, v;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    /* 1: the metrics and their kinds */
    rs_key_metrics(&b, project);
    if (rs_append_smembers(s, &b) < 0)
        goto oom;
    b.len = 0;
    rs_key_kinds(&b, project);
    {
        const char *argv[] = {"HGETALL", b.p};
        size_t lens[] = {7, b.len};

        if (b.oom || redisAppendCommandArgv(s->c, 2, argv, lens) != REDIS_OK)
            goto oom;
    }
    if ((rc = rs_read_arrays(s, top, 2, "metadata", err)) != GW_OK)
        goto out;
    metrics = top[0];
    nm = metrics->elements;
    /* 2: each metric's filter names */
    if (nm > 0 && (filters = calloc(nm, sizeof(*filters))) == NULL)
        goto oom;
    for (i = 0; i < nm; i++) {
        if (metrics->element[i]->type != REDIS_REPLY_STRING)
            continue;
        b.len = 0;
        rs_key_filters(&b, project, metrics->element[i]->str);
        if (rs_append_smembers(s, &b) < 0)
            goto oom;
    }
    for (i = 0; i < nm; i++) {
        if (metrics->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if ((rc = rs_read_arrays(s, &filters[i], 1, "metadata", err)) !=
            GW_OK)
            goto out;
        nv += filters[i]->elements;
    }
    /* 3: each filter's values */
    if (nv > 0 && (values = calloc(nv, sizeof(*values))) == NULL)
        goto oom;
    for (i = 0; i < nm; i++) {
        for (j = 0; filters[i] != NULL && j < filters[i]->elements; j++) {
            b.len = 0;
            rs_key_values(&b, project, metrics->element[i]->str,
                          filters[i]->element[j]->str);
            if (rs_append_smembers(s, &b) < 0)
                goto oom;
        }
    }
    for (v = 0; v < nv; v++)
        if ((rc = rs_read_arrays(s, &values[v], 1, "metadata", err)) != GW_OK)
            goto out;
    /* emit */
    for (i = 0, v = 0; i < nm; i++) {
        const redisReply *m = metrics->element[i];
        gw_meta_t meta;

        if (m->type != REDIS_REPLY_STRING)
            continue;
        meta.metric = m->str;
        meta.kind = rs_kind_of(top[1], m->str, (size_t) m->len);
        meta.filter_name = NULL;
        meta.filter_value = NULL;
        emit(arg, &meta);
        for (j = 0; j < filters[i]->elements; j++, v++) {
            size_t k;

            meta.filter_name = filters[i]->element[j]->str;
            for (k = 0; k < values[v]->elements; k++) {
                meta.filter_value = values[v]->element[k]->str;
                emit(arg, &meta);
            }
        }
    }
    rc = GW_OK;
    goto out;
oom:
    /* The pipeline is now out of step: start over next time. */
    rs_disconnect(s);
    rc = gw_error_set(err, "redis storage: out of memory");
out:
    if (rc != GW_OK)
        rs_disconnect(s); /* replies may be left unread: start over */
    if (top[0] != NULL)
        freeReplyObject(top[0]);
    if (top[1] != NULL)
        freeReplyObject(top[1]);
    rs_free_replies(filters, nm);
    rs_free_replies(values, nv);
    rs_buf_free(&b);
    return rc;
}

/* The shared replay cache: SET gottwall:nonce:{P}:{nonce} 1 NX EX ttl. OK:
 * the first claim; nil: a replay; any failure: GW_AGAIN (the core then
 * relies on each process's own cache). */
int
rs_nonce_claim(void *state, const char *project, const char *nonce,
               size_t len, double expires_at, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t key = {NULL, 0, 0, 0};
    redisReply *r = NULL;
    struct timespec now;
    char ttl[24];
    double left;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return GW_AGAIN;
    clock_gettime(CLOCK_REALTIME, &now);
    left = ceil(expires_at - ((double) now.tv_sec + now.tv_nsec / 1e9));
    snprintf(ttl, sizeof(ttl), "%lld", left >= 1 ? (long long) left : 1LL);
    rs_key_nonce(&key, project, nonce, len);
    if (key.oom) {
        rs_buf_free(&key);
        gw_error_set(err, "redis storage: out of memory");
        return GW_AGAIN;
    }
    {
        const char *argv[] = {"SET", key.p, "1", "NX", "EX", ttl};
        size_t lens[] = {3, key.len, 1, 2, 2, strlen(ttl)};

        rc = rs_call(s, 6, argv, lens, &r, "SET NX", err);
    }
    rs_buf_free(&key);
    if (rc != GW_OK)
        return GW_AGAIN;
    rc = r->type == REDIS_REPLY_NIL ? GW_ERR
         : r->type == REDIS_REPLY_STATUS ? GW_OK : GW_AGAIN;
    freeReplyObject(r);
    if (rc == GW_ERR)
        return gw_error_set(err, "nonce already claimed (a replay)");
    if (rc == GW_AGAIN)
        gw_error_set(err, "redis %s:%d: SET NX: unexpected reply", s->host,
                     (int) s->port);
    return rc;
}
