/*
 * plugins/storage/redis/kinds.c: the timing and set kinds (ABI 1.5) in
 * Redis (docs/storage-redis.md, "Timings and sets").
 *
 * A timing cell keeps its sum and count where an avg's are (so the mean
 * reads the same), and its sketch in the hash {series};q:{field}: "min",
 * "max", "z" (values that count as zero) and one field per bin, "p{i}"
 * for positive values and "n{i}" for negative ones, each a count that the
 * store script adds with HINCRBY: commutative, so any number of
 * aggregators write the same cell. The script folds the lowest bins when
 * a cell passes GW_SKETCH_MAX_BINS, as gw_timing_merge does.
 *
 * A set cell is Redis' own HyperLogLog at {series};hll:{field}, the
 * events in the main hash. The batch gives the members as hashes or
 * registers (gw_set_t), computed exactly as PFADD computes them
 * (MurmurHash64A with Redis' seed, the same index and rank), so this file
 * writes them in Redis' HYLL format (sparse when it can, else dense) and
 * the script PFMERGEs them into the cell: the registers are those PFADD
 * of the members would have made, and PFCOUNT answers as it would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs.h"
#include "keys.h"
#include "../../common/points.h"

#define RS_HLL_HDR 16
#define RS_HLL_DENSE (RS_HLL_HDR + GW_HLL_REGISTERS * 6 / 8)

/* The registers of s into r (GW_HLL_REGISTERS bytes). */
static void
rs_hll_registers(const gw_set_t *s, uint8_t *r)
{
    uint32_t idx;
    uint8_t rank;
    size_t i;

    if (s->registers != NULL) {
        memcpy(r, s->registers, GW_HLL_REGISTERS);
        return;
    }
    memset(r, 0, GW_HLL_REGISTERS);
    for (i = 0; i < s->nhashes; i++) {
        gw_hll_position(s->hashes[i], &idx, &rank);
        if (rank > r[idx])
            r[idx] = rank;
    }
}

/* Redis' HYLL header: magic, encoding, 3 unused bytes, and the cached
 * cardinality marked invalid (the most significant bit of its last
 * byte). */
static void
rs_hll_header(unsigned char *h, int sparse)
{
    memset(h, 0, RS_HLL_HDR);
    memcpy(h, "HYLL", 4);
    h[4] = sparse ? 1 : 0;
    h[15] = 0x80;
}

/* The sparse form of r into out (at most 3 + 2 bytes per register run):
 * ZERO 00xxxxxx (1..64 zeros), XZERO 01xxxxxx yyyyyyyy (1..16384), VAL
 * 1vvvvvxx (value 1..32, 1..4 registers). Its length, or 0 when a
 * register is over 32 (dense only). */
static size_t
rs_hll_sparse(const uint8_t *r, unsigned char *out)
{
    size_t i = 0, n = RS_HLL_HDR, run;

    rs_hll_header(out, 1);
    while (i < GW_HLL_REGISTERS) {
        if (r[i] > 32)
            return 0;
        for (run = 1; i + run < GW_HLL_REGISTERS && r[i + run] == r[i]; run++)
            ;
        if (r[i] == 0) {
            i += run;
            while (run > 0) {
                size_t k = run > 16384 ? 16384 : run;

                if (k <= 64) {
                    out[n++] = (unsigned char) (k - 1);
                } else {
                    out[n++] = (unsigned char) (0x40 | ((k - 1) >> 8));
                    out[n++] = (unsigned char) ((k - 1) & 0xff);
                }
                run -= k;
            }
            continue;
        }
        {
            uint8_t v = r[i];

            i += run;
            while (run > 0) {
                size_t k = run > 4 ? 4 : run;

                out[n++] = (unsigned char) (0x80 | ((v - 1) << 2) | (k - 1));
                run -= k;
            }
        }
    }
    return n;
}

/* The dense form: 6 bits a register, least significant bit first. */
static size_t
rs_hll_dense(const uint8_t *r, unsigned char *out)
{
    size_t i, bit;
    int b;

    rs_hll_header(out, 0);
    memset(out + RS_HLL_HDR, 0, RS_HLL_DENSE - RS_HLL_HDR);
    for (i = 0; i < GW_HLL_REGISTERS; i++)
        for (b = 0; b < 6; b++)
            if (r[i] >> b & 1) {
                bit = i * 6 + (size_t) b;
                out[RS_HLL_HDR + bit / 8] |= (unsigned char) (1u << bit % 8);
            }
    return RS_HLL_DENSE;
}

int
rs_hll_encode(const gw_set_t *s, rs_buf_t *out)
{
    uint8_t *r = malloc(GW_HLL_REGISTERS);
    unsigned char *b = malloc(RS_HLL_HDR + 3 * GW_HLL_REGISTERS);
    size_t n;

    if (r == NULL || b == NULL) {
        free(r);
        free(b);
        return -1;
    }
    rs_hll_registers(s, r);
    n = rs_hll_sparse(r, b);
    if (n == 0 || n >= RS_HLL_DENSE)
        n = rs_hll_dense(r, b);
    out->len = 0;
    rs_buf_put(out, (const char *) b, n);
    free(r);
    free(b);
    return out->oom ? -1 : 0;
}

/* ---- reading a sketch ---- */

static int
rs_bin_cmp(const void *a, const void *b)
{
    int32_t x = ((const gw_bin_t *) a)->index, y = ((const gw_bin_t *) b)->index;

    return x < y ? -1 : x > y;
}

int
rs_sketch_parse(const redisReply *r, gw_timing_t *t)
{
    size_t i, np = 0, nn = 0;

    gw_timing_init(t);
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    t->pos = calloc(r->elements / 2 + 1, sizeof(gw_bin_t));
    t->neg = calloc(r->elements / 2 + 1, sizeof(gw_bin_t));
    if (t->pos == NULL || t->neg == NULL) {
        gw_timing_free(t);
        return -1;
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        char *end;
        long long c;

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            f->len == 0)
            continue;
        if (strcmp(f->str, "min") == 0) {
            t->min = strtod(v->str, NULL);
            continue;
        }
        if (strcmp(f->str, "max") == 0) {
            t->max = strtod(v->str, NULL);
            continue;
        }
        c = strtoll(v->str, &end, 10);
        if (*end != '\0' || c <= 0)
            continue;
        if (strcmp(f->str, "z") == 0) {
            t->zero += (uint64_t) c;
        } else if (f->str[0] == 'p' || f->str[0] == 'n') {
            gw_bin_t *b = f->str[0] == 'p' ? &t->pos[np++] : &t->neg[nn++];

            b->index = (int32_t) strtol(f->str + 1, NULL, 10);
            b->count = (uint64_t) c;
        }
    }
    t->npos = np;
    t->nneg = nn;
    t->cappos = t->capneg = r->elements / 2 + 1;
    qsort(t->pos, np, sizeof(gw_bin_t), rs_bin_cmp);
    qsort(t->neg, nn, sizeof(gw_bin_t), rs_bin_cmp);
    return 0;
}

/* ---- query_timing and the sets' counts ---- */

/* Appends one command per point of a to the pipeline: cmd with the
 * series key + suffix + bucket. */
static int
rs_pts_append(rs_state_t *s, const gw_query_t *q, const pc_points_t *a,
              const char *cmd, const char *suffix, gw_error_t *err)
{
    rs_buf_t key = {NULL, 0, 0, 0};
    size_t i, base;
    char num[32];
    int oom;

    rs_key_series(&key, q->project, q->metric, q->period, q->filter_name,
                  q->filter_value);
    rs_buf_puts(&key, suffix);
    base = key.len;
    for (i = 0; i < a->n && !key.oom; i++) {
        const char *argv[2];
        size_t lens[2];

        key.len = base;
        snprintf(num, sizeof(num), "%lld",
                 (long long) (q->period == GW_PERIOD_ALL ? 0 : a->p[i].bucket));
        rs_buf_puts(&key, num);
        argv[0] = cmd;
        lens[0] = strlen(cmd);
        argv[1] = key.p;
        lens[1] = key.len;
        if (redisAppendCommandArgv(s->c, 2, argv, lens) != REDIS_OK)
            key.oom = 1;
    }
    oom = key.oom;
    rs_buf_free(&key);
    if (oom) {
        rs_disconnect(s); /* the pipeline holds part of the commands */
        return gw_error_set(err, "redis storage: out of memory");
    }
    return GW_OK;
}

/* The n replies of the commands rs_pts_append put in the pipeline, into
 * *out (n + 1 entries, freed with rs_replies_free even on failure). */
static int
rs_pts_replies(rs_state_t *s, size_t n, const char *cmd, redisReply ***out,
               gw_error_t *err)
{
    redisReply **r = calloc(n + 1, sizeof(*r));
    size_t i;

    *out = r;
    if (r == NULL) {
        rs_disconnect(s); /* the replies are left unread */
        return gw_error_set(err, "redis storage: out of memory");
    }
    for (i = 0; i < n; i++)
        if (redisGetReply(s->c, (void **) &r[i]) != REDIS_OK || r[i] == NULL)
            return rs_io_error(s, cmd, err); /* and disconnects */
    return GW_OK;
}

static void
rs_replies_free(redisReply **r, size_t n)
{
    size_t i;

    for (i = 0; r != NULL && i < n; i++)
        if (r[i] != NULL)
            freeReplyObject(r[i]);
    free(r);
}

int
rs_query_timing(void *state, const gw_query_t *q, gw_timing_point_fn emit,
                void *arg, gw_error_t *err)
{
    pc_points_t a = {NULL, 0, 0, 0};
    redisReply **r = NULL;
    gw_timing_t t;
    size_t i;
    int rc = rs_query(state, q, pc_points_add, &a, err);

    if (rc == GW_OK && a.oom)
        rc = gw_error_set(err, "redis storage: out of memory");
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_append(state, q, &a, "HGETALL", RS_SUFFIX_SKETCH, err);
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_replies(state, a.n, "HGETALL", &r, err);
    for (i = 0; rc == GW_OK && i < a.n; i++) {
        if (r[i]->type != REDIS_REPLY_ARRAY) {
            rc = rs_reply_error(state, r[i], "HGETALL", err);
            break;
        }
        if (rs_sketch_parse(r[i], &t) != 0) {
            rc = gw_error_set(err, "redis storage: out of memory");
            break;
        }
        emit(arg, &a.p[i], &t);
        gw_timing_free(&t);
    }
    rs_replies_free(r, a.n);
    free(a.p);
    return rc;
}

int
rs_query_set(rs_state_t *s, const gw_query_t *q, gw_point_fn emit, void *arg,
             gw_error_t *err)
{
    pc_points_t a = {NULL, 0, 0, 0};
    redisReply **r = NULL, **x = NULL;
    size_t i;
    int rc = rs_query_plain(s, q, pc_points_add, &a, err);

    if (rc == GW_OK && a.oom)
        rc = gw_error_set(err, "redis storage: out of memory");
    /* One round trip: every PFCOUNT, then every SCARD. */
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_append(s, q, &a, "PFCOUNT", RS_SUFFIX_HLL, err);
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_append(s, q, &a, "SCARD", RS_SUFFIX_EXACT, err);
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_replies(s, a.n, "PFCOUNT", &r, err);
    if (rc == GW_OK && a.n > 0)
        rc = rs_pts_replies(s, a.n, "SCARD", &x, err);
    for (i = 0; rc == GW_OK && i < a.n; i++) {
        gw_point_t p = a.p[i];

        if (r[i]->type != REDIS_REPLY_INTEGER) {
            rc = rs_reply_error(s, r[i], "PFCOUNT", err);
            break;
        }
        /* The main hash holds the events; the distinct members are the
         * exact set's while it is one (SCARD fails on "big"), else the
         * HyperLogLog's. */
        p.count = (int64_t) p.sum;
        p.sum = x[i]->type == REDIS_REPLY_INTEGER && x[i]->integer > 0
                    ? (double) x[i]->integer
                    : (double) r[i]->integer;
        emit(arg, &p);
    }
    rs_replies_free(r, a.n);
    rs_replies_free(x, a.n);
    free(a.p);
    return rc;
}
