/*
 * plugins/storage/redis/store.c: the redis storage's store(), the flush.
 *
 * A flush batch is two round trips: an MGET of the batch ids of its chunks
 * of CHUNK deltas (a retry sends only the chunks that did not run; a batch
 * of one chunk skips this), then a pipeline of one Lua script (EVALSHA)
 * per chunk, which first SETs gottwall:batch:{id}[/{k}] NX with an expiry
 * and applies its deltas only if that key was new, so a retried batch is
 * applied once, and then the batch's metadata as plain idempotent
 * commands.
 * Commands are written in the Redis protocol directly (rs_resp_*, redis.c),
 * and whole counters sharing a bucket and an increment travel as runs of
 * keys (one argument per delta). The script and its arguments are
 * described where it is, in redis.c (the connection loads it).
 * Counter cells keep the original GottWall layout (keys.h); avg and gauge
 * keep their count and ts in sibling hashes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "rs.h"
#include "../../common/keyhash.h"

/* A set of strings seen in one batch (each metadata name is sent once per
 * batch). */
typedef struct rs_seen_s {
    rs_buf_t keys;
    size_t *off; /* SIZE_MAX: empty */
    size_t *len;
    size_t slots;
    size_t n;
} rs_seen_t;

/* 1 if key (len bytes, which may hold NULs) was new, 0 if seen, -1 when
 * out of memory. */
static int
rs_seen_add(rs_seen_t *z, const char *key, size_t len)
{
    size_t i, mask;

    if ((z->n + 1) * 2 > z->slots) {
        size_t slots = z->slots ? z->slots * 2 : 256, j;
        size_t *off = malloc(slots * sizeof(*off));
        size_t *lens = malloc(slots * sizeof(*lens));

        if (off == NULL || lens == NULL) {
            free(off);
            free(lens);
            return -1;
        }
        for (j = 0; j < slots; j++)
            off[j] = SIZE_MAX;
        for (j = 0; j < z->slots; j++) {
            size_t o = z->off[j];

            if (o == SIZE_MAX)
                continue;
            i = pc_hash(z->keys.p + o, z->len[j]) & (slots - 1);
            while (off[i] != SIZE_MAX)
                i = (i + 1) & (slots - 1);
            off[i] = o;
            lens[i] = z->len[j];
        }
        free(z->off);
        free(z->len);
        z->off = off;
        z->len = lens;
        z->slots = slots;
    }
    mask = z->slots - 1;
    for (i = pc_hash(key, len) & mask; z->off[i] != SIZE_MAX;
         i = (i + 1) & mask) {
        if (z->len[i] == len && memcmp(z->keys.p + z->off[i], key, len) == 0)
            return 0;
    }
    z->off[i] = z->keys.len;
    z->len[i] = len;
    rs_buf_put(&z->keys, key, len);
    if (z->keys.oom)
        return -1;
    z->n++;
    return 1;
}

static void
rs_seen_free(rs_seen_t *z)
{
    rs_buf_free(&z->keys);
    free(z->off);
    free(z->len);
    memset(z, 0, sizeof(*z));
}

/* gw_delta_check, and the values must be finite. */
static int
rs_check_delta(const gw_delta_t *d, size_t i, gw_error_t *err)
{
    if (gw_delta_check(d, i, err) != GW_OK)
        return GW_ERR;
    if (!isfinite(d->sum) || !isfinite(d->ts))
        return gw_error_set(err, "delta %zu has a value that is not finite",
                            i);
    return GW_OK;
}

/* A timing or set delta needs its data (ABI 1.5). */
static int
rs_check_data(const gw_batch_t *batch, size_t i, gw_error_t *err)
{
    const gw_delta_t *d = &batch->deltas[i];

    if (d->kind != GW_KIND_TIMING && d->kind != GW_KIND_SET)
        return GW_OK;
    if (batch->data == NULL ||
        (d->kind == GW_KIND_TIMING ? batch->data[i].timing == NULL
                                   : batch->data[i].set == NULL))
        return gw_error_set(err, "delta %zu is a %s without its data", i,
                            gw_kind_name(d->kind));
    return GW_OK;
}

/* The batch id key of chunk k: gottwall:batch:{id}, or .../{k} when the
 * batch has more than one chunk. */
static void
rs_marker(rs_buf_t *b, const gw_batch_t *batch, size_t k, size_t nchunks)
{
    char tmp[24], *e = tmp + sizeof(tmp);
    char *q = rs_digits(e, (int64_t) k);

    rs_key_batch(b, batch->id ? batch->id : "");
    if (nchunks > 1) {
        rs_buf_put(b, "/", 1);
        rs_buf_put(b, q, (size_t) (e - q));
    }
}

/* Batch ids asked for by one MGET. */
#define RS_MGET_KEYS 1000

/*
 * Sets todo[k] for each chunk whose batch id is not in Redis yet: one round
 * trip of MGETs. A retried batch then sends only the chunks that did not
 * run (and the metadata). The scripts still SET their id NX and skip themselves when it is
 * there (a chunk of a broken connection may run after this check), so this
 * only saves sending what would be skipped.
 */
static int
rs_pending_chunks(rs_state_t *s, const gw_batch_t *batch, size_t nchunks,
                  unsigned char *todo, gw_error_t *err)
{
    rs_buf_t cmd = {NULL, 0, 0, 0}, key = {NULL, 0, 0, 0};
    size_t k, from, n;
    int rc = GW_OK;

    for (from = 0; from < nchunks; from += RS_MGET_KEYS) {
        n = nchunks - from < RS_MGET_KEYS ? nchunks - from : RS_MGET_KEYS;
        rs_resp_cmd(&cmd, n + 1);
        rs_resp_arg(&cmd, "MGET", 4);
        for (k = from; k < from + n; k++) {
            key.len = 0;
            rs_marker(&key, batch, k, nchunks);
            rs_resp_arg(&cmd, key.p, key.len);
        }
    }
    if (key.oom || rs_append(s, &cmd) < 0) {
        rs_buf_free(&cmd);
        rs_buf_free(&key);
        rs_disconnect(s); /* maybe half a command in the output buffer */
        return gw_error_set(err, "redis storage: out of memory");
    }
    rs_buf_free(&cmd);
    rs_buf_free(&key);
    for (from = 0; from < nchunks; from += RS_MGET_KEYS) {
        redisReply *r = NULL;

        n = nchunks - from < RS_MGET_KEYS ? nchunks - from : RS_MGET_KEYS;
        if (redisGetReply(s->c, (void **) &r) != REDIS_OK || r == NULL)
            return rs_io_error(s, "checking batch ids", err);
        if (rc == GW_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != n))
            rc = rs_reply_error(s, r, "checking batch ids", err);
        for (k = 0; rc == GW_OK && k < n; k++)
            todo[from + k] = r->element[k]->type == REDIS_REPLY_NIL;
        freeReplyObject(r);
        if (s->c == NULL)
            break;
    }
    return rc;
}

/* Members added to one set key until the key changes (one SADD each). */
typedef struct rs_run_s {
    rs_buf_t key;
    rs_buf_t members; /* in RESP */
    size_t n;
} rs_run_t;

/* Members per SADD at most. */
#define RS_SADD_MAX 1000

static void
rs_run_close(rs_run_t *r, rs_buf_t *out, size_t *ncmds)
{
    if (r->n == 0)
        return;
    rs_resp_cmd(out, r->n + 2);
    rs_resp_arg(out, "SADD", 4);
    rs_resp_arg(out, r->key.p, r->key.len);
    rs_buf_put(out, r->members.p, r->members.len);
    (*ncmds)++;
    r->n = 0;
    r->members.len = 0;
}

static void
rs_run_add(rs_run_t *r, const rs_buf_t *key, const char *member,
           rs_buf_t *out, size_t *ncmds)
{
    if (r->n > 0 && (r->n >= RS_SADD_MAX || r->key.len != key->len ||
                     memcmp(r->key.p, key->p, key->len) != 0))
        rs_run_close(r, out, ncmds);
    if (r->n == 0) {
        r->key.len = 0;
        rs_buf_put(&r->key, key->p, key->len);
    }
    rs_resp_str(&r->members, member);
    r->n++;
}

static int
rs_same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * The metadata of a batch as plain commands in out (*ncmds of them): SADD
 * of the project names (gottwall:projects, which expiry walks), of the
 * metric names, HSETNX of each metric's kind, SADD of the filter names and
 * of the filter values. Each name is sent once per batch, and consecutive
 * names of one set go in one SADD (a flush is series-major, so a metric's
 * filter values come together). All of it is idempotent, so it needs no
 * batch id: it is sent with every try of a batch, even one whose chunks
 * all ran.
 *
 * It is sent after the chunks: expiry (expire.c) removes a filter value
 * from its set, atomically, only when none of the value's series holds
 * data. Sent before, another process's prune could run between this SADD
 * and the data and remove the value for good; sent after, a value removed
 * before the data lands is added again by this SADD.
 */
static int
rs_build_meta(const gw_batch_t *batch, rs_buf_t *out, size_t *ncmds)
{
    rs_seen_t seen;
    rs_run_t runs[4]; /* metric names, filter names, filter values,
                       * projects */
    rs_buf_t tmp = {NULL, 0, 0, 0}, key = {NULL, 0, 0, 0};
    const gw_delta_t *prev = NULL;
    size_t i;
    int fresh, rc = 0;

    memset(&seen, 0, sizeof(seen));
    memset(runs, 0, sizeof(runs));
    for (i = 0; i < batch->ndeltas && rc == 0; i++) {
        const gw_delta_t *d = &batch->deltas[i];

        /* The periods of one series come together: nothing new. */
        if (prev != NULL && rs_same_str(prev->project, d->project) &&
            rs_same_str(prev->metric, d->metric) &&
            rs_same_str(prev->filter_name, d->filter_name) &&
            rs_same_str(prev->filter_value, d->filter_value))
            continue;
        prev = d;
        /* The project: "project" (no NUL) */
        tmp.len = 0;
        rs_buf_puts(&tmp, d->project);
        if (tmp.oom || (fresh = rs_seen_add(&seen, tmp.p, tmp.len)) < 0) {
            rc = -1;
            break;
        }
        if (fresh) {
            key.len = 0;
            rs_key_projects(&key);
            rs_run_add(&runs[3], &key, d->project, out, ncmds);
        }
        /* The metric: "project\0metric" */
        rs_buf_put(&tmp, "", 1);
        rs_buf_puts(&tmp, d->metric);
        if (tmp.oom || (fresh = rs_seen_add(&seen, tmp.p, tmp.len)) < 0) {
            rc = -1;
            break;
        }
        if (fresh) {
            key.len = 0;
            rs_key_metrics(&key, d->project);
            rs_run_add(&runs[0], &key, d->metric, out, ncmds);
            key.len = 0;
            rs_key_kinds(&key, d->project);
            rs_resp_cmd(out, 4);
            rs_resp_arg(out, "HSETNX", 6);
            rs_resp_arg(out, key.p, key.len);
            rs_resp_str(out, d->metric);
            rs_resp_str(out, gw_kind_name(d->kind));
            (*ncmds)++;
        }
        if (d->filter_name == NULL)
            continue;
        /* The filter name: "project\0metric\0fname" (names hold no NUL,
         * so the number of NULs tells the three kinds apart) */
        rs_buf_put(&tmp, "", 1);
        rs_buf_puts(&tmp, d->filter_name);
        if (tmp.oom || (fresh = rs_seen_add(&seen, tmp.p, tmp.len)) < 0) {
            rc = -1;
            break;
        }
        if (fresh) {
            key.len = 0;
            rs_key_filters(&key, d->project, d->metric);
            rs_run_add(&runs[1], &key, d->filter_name, out, ncmds);
        }
        /* The filter value: "project\0metric\0fname\0fvalue" */
        rs_buf_put(&tmp, "", 1);
        rs_buf_puts(&tmp, d->filter_value);
        if (tmp.oom || (fresh = rs_seen_add(&seen, tmp.p, tmp.len)) < 0) {
            rc = -1;
            break;
        }
        if (fresh) {
            key.len = 0;
            rs_key_values(&key, d->project, d->metric, d->filter_name);
            rs_run_add(&runs[2], &key, d->filter_value, out, ncmds);
        }
    }
    for (i = 0; i < 4; i++) {
        rs_run_close(&runs[i], out, ncmds);
        if (runs[i].key.oom || runs[i].members.oom)
            rc = -1;
        rs_buf_free(&runs[i].key);
        rs_buf_free(&runs[i].members);
    }
    if (key.oom || out->oom)
        rc = -1;
    rs_seen_free(&seen);
    rs_buf_free(&tmp);
    rs_buf_free(&key);
    return rc;
}

/* The sections of a script call, in the script's order (redis.c). */
enum { RS_R, RS_S, RS_C, RS_A, RS_G, RS_T, RS_H, RS_NSECT };

typedef struct rs_sect_s {
    rs_buf_t b;   /* the arguments, in RESP */
    size_t nargs; /* arguments in b */
    size_t nops;  /* runs or deltas */
} rs_sect_t;

/* Whole counter deltas of one chunk with the same field and increment. */
typedef struct rs_group_s {
    int64_t field;
    int64_t n;
    size_t count; /* deltas */
    size_t at;    /* where its deltas start in order[] */
} rs_group_t;

/* What building chunks needs, kept from one chunk to the next. */
typedef struct rs_chunker_s {
    rs_sect_t sect[RS_NSECT];
    rs_buf_t head;
    rs_buf_t key;
    size_t *gid;        /* per delta of the chunk: its group, SIZE_MAX: none */
    size_t *order;      /* deltas of runs, by group */
    rs_group_t *groups;
    size_t *slots;      /* hash of (field, n): group + 1, 0: empty */
    size_t nslots;
    rs_buf_t hll;       /* a set delta's members in Redis' HYLL format */
} rs_chunker_t;

static int
rs_chunker_init(rs_chunker_t *ch, size_t chunk)
{
    memset(ch, 0, sizeof(*ch));
    ch->nslots = 16;
    while (ch->nslots < chunk * 2)
        ch->nslots *= 2;
    ch->gid = malloc(chunk * sizeof(*ch->gid));
    ch->order = malloc(chunk * sizeof(*ch->order));
    ch->groups = malloc(chunk * sizeof(*ch->groups));
    ch->slots = malloc(ch->nslots * sizeof(*ch->slots));
    return ch->gid && ch->order && ch->groups && ch->slots ? 0 : -1;
}

static void
rs_chunker_free(rs_chunker_t *ch)
{
    size_t k;

    for (k = 0; k < RS_NSECT; k++)
        rs_buf_free(&ch->sect[k].b);
    rs_buf_free(&ch->head);
    rs_buf_free(&ch->key);
    free(ch->gid);
    free(ch->order);
    free(ch->groups);
    free(ch->slots);
    rs_buf_free(&ch->hll);
    memset(ch, 0, sizeof(*ch));
}

/* The key of d's series, as one argument of section t. */
static void
rs_sect_key(rs_chunker_t *ch, rs_sect_t *t, const gw_delta_t *d)
{
    ch->key.len = 0;
    rs_key_series(&ch->key, d->project, d->metric, d->period, d->filter_name,
                  d->filter_value);
    rs_resp_arg(&t->b, ch->key.p, ch->key.len);
    t->nargs++;
}

static int64_t
rs_field(const gw_delta_t *d)
{
    return d->period == GW_PERIOD_ALL ? 0 : d->bucket;
}

/* One store of a timing's sketch as (field name, count) pairs. */
static size_t
rs_bins(rs_sect_t *t, char sign, const gw_bin_t *b, size_t n)
{
    char f[16];
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(f, sizeof(f), "%c%d", sign, (int) b[i].index);
        rs_resp_str(&t->b, f);
        rs_resp_int(&t->b, (int64_t) b[i].count);
    }
    return n;
}

/* A timing delta for section T: key field sum count min max nb, then nb
 * (bin, count) pairs; or a set delta for H: key field events hll. -1:
 * out of memory. */
static int
rs_kind_delta(rs_chunker_t *ch, const gw_delta_t *d, const gw_delta_data_t *x)
{
    rs_sect_t *t = &ch->sect[d->kind == GW_KIND_TIMING ? RS_T : RS_H];
    size_t nb;

    rs_sect_key(ch, t, d);
    rs_resp_int(&t->b, rs_field(d));
    if (d->kind == GW_KIND_SET) {
        const gw_set_t *s = x->set;
        char h[24];
        size_t j;

        if (rs_hll_encode(s, &ch->hll) != 0)
            return -1;
        rs_resp_int(&t->b, d->count);
        rs_resp_arg(&t->b, ch->hll.p, ch->hll.len);
        rs_resp_int(&t->b, s->registers != NULL ? -1 : (int64_t) s->nhashes);
        for (j = 0; s->registers == NULL && j < s->nhashes; j++) {
            /* As signed integers: Redis keeps a set of up to 512 of them
             * as an intset, 8 bytes a member. */
            int n = snprintf(h, sizeof(h), "%lld", (long long) s->hashes[j]);

            rs_resp_arg(&t->b, h, (size_t) n);
        }
        t->nargs += 4 + (s->registers != NULL ? 0 : s->nhashes);
        t->nops++;
        return 0;
    }
    nb = x->timing->npos + x->timing->nneg + (x->timing->zero > 0);
    rs_resp_double(&t->b, d->sum);
    rs_resp_int(&t->b, d->count);
    rs_resp_double(&t->b, x->timing->min);
    rs_resp_double(&t->b, x->timing->max);
    rs_resp_int(&t->b, (int64_t) nb);
    rs_bins(t, 'p', x->timing->pos, x->timing->npos);
    rs_bins(t, 'n', x->timing->neg, x->timing->nneg);
    if (x->timing->zero > 0) {
        rs_resp_str(&t->b, "z");
        rs_resp_int(&t->b, (int64_t) x->timing->zero);
    }
    t->nargs += 6 + 2 * nb;
    t->nops++;
    return 0;
}

/* The group of the whole counter delta d (a new one when needed). */
static size_t
rs_group_of(rs_chunker_t *ch, size_t *ngroups, int64_t field, int64_t n)
{
    uint64_t h = (uint64_t) field * 0x9E3779B97F4A7C15ULL ^
                 (uint64_t) n * 0xC2B2AE3D27D4EB4FULL;
    size_t mask = ch->nslots - 1, i, g;

    h ^= h >> 29;
    for (i = (size_t) h & mask; ch->slots[i] != 0; i = (i + 1) & mask) {
        g = ch->slots[i] - 1;
        if (ch->groups[g].field == field && ch->groups[g].n == n)
            return g;
    }
    g = (*ngroups)++;
    ch->slots[i] = g + 1;
    ch->groups[g].field = field;
    ch->groups[g].n = n;
    ch->groups[g].count = 0;
    return g;
}

/*
 * Builds the EVALSHA of deltas [from, to) as chunk k of nchunks into
 * ch->head (the command up to the sections) and ch->sect. Whole counters
 * with the same field and increment become runs (R), other whole counters
 * singles (S); counters apply in any order, so they may be regrouped; avg
 * and gauge deltas keep their order.
 */
static int
rs_build_chunk(rs_state_t *s, const gw_batch_t *batch, size_t from,
               size_t to, size_t k, size_t nchunks, rs_chunker_t *ch)
{
    size_t i, g, ngroups = 0, at = 0, nargs = 0;
    rs_sect_t *t;

    for (i = 0; i < RS_NSECT; i++) {
        ch->sect[i].b.len = 0;
        ch->sect[i].nargs = 0;
        ch->sect[i].nops = 0;
    }
    memset(ch->slots, 0, ch->nslots * sizeof(*ch->slots));
    for (i = from; i < to; i++) {
        const gw_delta_t *d = &batch->deltas[i];

        ch->gid[i - from] = SIZE_MAX;
        if (d->kind == GW_KIND_TIMING || d->kind == GW_KIND_SET) {
            if (rs_kind_delta(ch, d, &batch->data[i]) != 0)
                return -1;
            continue;
        }
        if (d->kind == GW_KIND_COUNTER && rs_integral(d->sum)) {
            g = rs_group_of(ch, &ngroups, rs_field(d), (int64_t) d->sum);
            ch->groups[g].count++;
            ch->gid[i - from] = g;
            continue;
        }
        t = &ch->sect[d->kind == GW_KIND_COUNTER ? RS_C
                      : d->kind == GW_KIND_AVG   ? RS_A
                                                 : RS_G];
        rs_sect_key(ch, t, d);
        rs_resp_int(&t->b, rs_field(d));
        rs_resp_double(&t->b, d->sum);
        t->nargs += 2;
        if (d->kind == GW_KIND_AVG) {
            rs_resp_int(&t->b, d->count);
            t->nargs++;
        } else if (d->kind == GW_KIND_GAUGE) {
            rs_resp_double(&t->b, d->ts);
            t->nargs++;
        }
        t->nops++;
    }
    /* Runs: their deltas in order[], group by group. */
    for (g = 0; g < ngroups; g++) {
        ch->groups[g].at = at;
        if (ch->groups[g].count > 1)
            at += ch->groups[g].count;
    }
    t = &ch->sect[RS_S];
    for (i = from; i < to; i++) {
        const gw_delta_t *d = &batch->deltas[i];

        if ((g = ch->gid[i - from]) == SIZE_MAX)
            continue;
        if (ch->groups[g].count > 1) {
            ch->order[ch->groups[g].at++] = i;
            continue;
        }
        rs_sect_key(ch, t, d);
        rs_resp_int(&t->b, ch->groups[g].field);
        rs_resp_int(&t->b, ch->groups[g].n);
        t->nargs += 2;
        t->nops++;
    }
    t = &ch->sect[RS_R];
    for (g = 0, at = 0; g < ngroups; g++) {
        size_t n = ch->groups[g].count, j;

        if (n < 2)
            continue;
        rs_resp_int(&t->b, ch->groups[g].field);
        rs_resp_int(&t->b, ch->groups[g].n);
        rs_resp_int(&t->b, (int64_t) n);
        t->nargs += 3;
        t->nops++;
        for (j = 0; j < n; j++)
            rs_sect_key(ch, t, &batch->deltas[ch->order[at + j]]);
        at += n;
    }
    for (i = 0; i < RS_NSECT; i++) {
        if (ch->sect[i].b.oom)
            return -1;
        nargs += ch->sect[i].nargs;
    }
    ch->head.len = 0;
    rs_resp_cmd(&ch->head, 5 + RS_NSECT + nargs);
    rs_resp_arg(&ch->head, "EVALSHA", 7);
    rs_resp_arg(&ch->head, s->sha, 40);
    rs_resp_arg(&ch->head, "1", 1);
    ch->key.len = 0;
    rs_marker(&ch->key, batch, k, nchunks);
    rs_resp_arg(&ch->head, ch->key.p, ch->key.len);
    rs_resp_int(&ch->head, s->batch_ttl);
    for (i = 0; i < RS_NSECT; i++)
        rs_resp_int(&ch->head, (int64_t) ch->sect[i].nops);
    return ch->head.oom || ch->key.oom ? -1 : 0;
}

/*
 * Sends the chunks flagged in todo, each written as soon as it is built,
 * then the metadata (meta, nmeta commands; may be none), in one pipeline,
 * then reads the replies. Afterwards todo[k] is set only for chunks
 * that hit NOSCRIPT (or were not sent because of an error). *saturated
 * gets the sums the chunks applied kept at +-DBL_MAX.
 */
static int
rs_send(rs_state_t *s, const gw_batch_t *batch, size_t nchunks,
        unsigned char *todo, const rs_buf_t *meta, size_t nmeta,
        size_t *skipped, uint64_t *saturated, gw_error_t *err)
{
    rs_chunker_t ch;
    size_t k, i, chunk = (size_t) s->chunk;
    unsigned char *was = calloc(nchunks, 1);
    int rc = GW_OK;

    if (chunk > batch->ndeltas)
        chunk = batch->ndeltas;
    if (was == NULL || rs_chunker_init(&ch, chunk) < 0) {
        free(was);
        if (was != NULL)
            rs_chunker_free(&ch);
        return gw_error_set(err, "redis storage: out of memory");
    }
    for (k = 0; k < nchunks && rc == GW_OK; k++) {
        size_t from = k * (size_t) s->chunk;
        size_t to = from + (size_t) s->chunk < batch->ndeltas
                        ? from + (size_t) s->chunk
                        : batch->ndeltas;

        if (!todo[k])
            continue;
        if (rs_build_chunk(s, batch, from, to, k, nchunks, &ch) < 0) {
            rc = gw_error_set(err, "redis storage: out of memory building "
                              "a batch of %zu deltas", batch->ndeltas);
            break;
        }
        /* The head and the sections make one command. */
        if (rs_append(s, &ch.head) < 0) {
            rc = gw_error_set(err, "redis storage: out of memory");
            break;
        }
        for (i = 0; i < RS_NSECT; i++) {
            if (rs_append(s, &ch.sect[i].b) < 0) {
                /* Half a command is buffered: only a new connection
                 * can get back in step. */
                rc = gw_error_set(err, "redis storage: out of memory");
                rs_disconnect(s);
                break;
            }
        }
        if (rc != GW_OK)
            break;
        was[k] = 1;
        if (rs_flush_out(s) < 0) {
            rc = rs_io_error(s, "storing a batch", err);
            break;
        }
    }
    rs_chunker_free(&ch);
    /* The metadata after the data: see rs_build_meta. */
    if (rc != GW_OK || s->c == NULL) {
        nmeta = 0;
    } else if (nmeta > 0 && (rs_append(s, meta) < 0 || rs_flush_out(s) < 0)) {
        rc = meta->oom ? gw_error_set(err, "redis storage: out of memory")
                       : rs_io_error(s, "storing a batch", err);
        nmeta = 0;
        rs_disconnect(s);
    }
    for (k = 0; k < nchunks && s->c != NULL; k++) {
        redisReply *r = NULL;

        if (!was[k])
            continue;
        todo[k] = 0;
        if (redisGetReply(s->c, (void **) &r) != REDIS_OK || r == NULL) {
            rc = rs_io_error(s, "storing a batch", err);
            break;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            if (r->integer == 0)
                (*skipped)++;
            else
                *saturated += (uint64_t) (r->integer - 1);
        } else if (r->type == REDIS_REPLY_ERROR &&
                   strncmp(r->str, "NOSCRIPT", 8) == 0) {
            todo[k] = 1;
        } else if (rc == GW_OK) {
            rc = rs_reply_error(s, r, "storing a batch", err);
            if (s->c == NULL) {
                freeReplyObject(r);
                break;
            }
        }
        freeReplyObject(r);
    }
    for (i = 0; i < nmeta && s->c != NULL; i++) {
        redisReply *r = NULL;

        if (redisGetReply(s->c, (void **) &r) != REDIS_OK || r == NULL) {
            rc = rs_io_error(s, "storing a batch", err);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR && rc == GW_OK)
            rc = rs_reply_error(s, r, "storing a batch's metric names", err);
        freeReplyObject(r);
    }
    free(was);
    return rc;
}

int
rs_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t meta = {NULL, 0, 0, 0};
    size_t i, nchunks, skipped = 0, nmeta = 0, npending = 0;
    uint64_t saturated = 0;
    unsigned char *todo;
    int rc, pass;

    if (batch->ndeltas == 0)
        return GW_OK;
    for (i = 0; i < batch->ndeltas; i++)
        if (rs_check_delta(&batch->deltas[i], i, err) != GW_OK ||
            rs_check_data(batch, i, err) != GW_OK)
            return GW_ERR;
    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    nchunks = (batch->ndeltas + (size_t) s->chunk - 1) / (size_t) s->chunk;
    todo = calloc(nchunks, 1);
    if (todo == NULL)
        return gw_error_set(err, "redis storage: out of memory");
    /* A batch of one chunk skips the MGET: the script's own check costs
     * no more than the round trip (and small flushes are most flushes). */
    if (nchunks == 1)
        todo[0] = 1;
    else if ((rc = rs_pending_chunks(s, batch, nchunks, todo, err)) != GW_OK)
        goto out;
    for (i = 0; i < nchunks; i++)
        npending += todo[i];
    skipped = nchunks - npending;
    /* Every chunk ran (a retry after a lost reply): the metadata is still
     * sent, as it may not have been (it follows the data). */
    if (rs_build_meta(batch, &meta, &nmeta) < 0) {
        rc = gw_error_set(err, "redis storage: out of memory building "
                          "a batch of %zu deltas", batch->ndeltas);
        goto out;
    }
    rc = rs_send(s, batch, nchunks, todo, &meta, nmeta, &skipped, &saturated,
                 err);
    /* NOSCRIPT: the server lost its script cache (restart, SCRIPT FLUSH);
     * those chunks did not run: load the script and send them again. */
    for (pass = 0; rc == GW_OK && pass < 2; pass++) {
        if (memchr(todo, 1, nchunks) == NULL)
            break;
        if ((rc = rs_load_script(s, err)) != GW_OK)
            break;
        rc = rs_send(s, batch, nchunks, todo, &meta, nmeta, &skipped,
                     &saturated, err);
    }
    if (rc == GW_OK && memchr(todo, 1, nchunks) != NULL)
        rc = gw_error_set(err, "redis %s:%d: the script keeps vanishing "
                          "(NOSCRIPT)", s->host, (int) s->port);
out:
    /* Counted whatever rc is: a chunk that ran is applied for good. */
    if (saturated > 0)
        s->ctx->host->count(s->ctx, GW_COUNTER_SATURATED, NULL, saturated);
    free(todo);
    rs_buf_free(&meta);
    if (rc == GW_OK && skipped > 0)
        gw_log_debug(s->ctx, "batch %s: %zu of %zu chunks were already "
                     "applied; skipped", batch->id ? batch->id : "",
                     skipped, nchunks);
    return rc;
}
