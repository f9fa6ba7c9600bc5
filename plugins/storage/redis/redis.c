/*
 * plugins/storage/redis/redis.c: the Redis storage (SPEC §6).
 *
 * Runs on the storage thread with hiredis' synchronous API and timeouts.
 * A flush batch is one pipelined round trip: the deltas are split into
 * chunks of CHUNK deltas, each applied by one Lua script (EVALSHA) that
 * first SETs gottwall:batch:{id}[/{k}] NX with an expiry and applies its
 * deltas only if that key was new, so a retried batch is applied once.
 * Counter cells keep the original GottWall layout (keys.h); avg and gauge
 * keep their count and ts in sibling hashes. The connection is made lazily
 * and dropped on any I/O error; while the server is unreachable every call
 * returns GW_AGAIN with the reason. docs/storage-redis.md has the layout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "../../common/fnv1a.h"

/* Ranges up to this many buckets are read with HMGET of exactly those
 * fields; longer ones with HGETALL and a filter. */
#define RS_HMGET_MAX 10000

typedef struct rs_state_s {
    const gw_ctx_t *ctx;
    /* config */
    const char *host;
    int64_t port;
    const char *password;
    int64_t db;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t chunk;     /* deltas per script */
    int64_t batch_ttl; /* seconds a batch id is remembered */
    /* connection */
    redisContext *c;
    char sha[41];
} rs_state_t;

static const gw_config_key_t rs_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", rs_state_t, host,
                  "Redis server address"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "6379", rs_state_t, port,
                        "Redis server port", 1, 65535),
    GW_CONFIG_KEY("PASSWORD", GW_CONFIG_STRING, NULL, rs_state_t, password,
                  "AUTH password (none by default)"),
    GW_CONFIG_KEY_RANGE("DB", GW_CONFIG_INT, "0", rs_state_t, db,
                        "database number (SELECT)", 0, 100000),
    GW_CONFIG_KEY_RANGE("CONNECT_TIMEOUT", GW_CONFIG_INT, "2000", rs_state_t,
                        connect_timeout_ms, "connect timeout, ms", 1,
                        600000),
    GW_CONFIG_KEY_RANGE("TIMEOUT", GW_CONFIG_INT, "10000", rs_state_t,
                        timeout_ms, "command timeout, ms", 1, 3600000),
    GW_CONFIG_KEY_RANGE("CHUNK", GW_CONFIG_INT, "10000", rs_state_t, chunk,
                        "deltas applied by one script call", 1, 1000000),
    GW_CONFIG_KEY_RANGE("BATCH_TTL", GW_CONFIG_INT, "604800", rs_state_t,
                        batch_ttl,
                        "seconds a batch id is kept for exactly-once", 60,
                        31536000),
    GW_CONFIG_END};

/*
 * KEYS[1]: gottwall:batch:{id}[/{k}]; ARGV[1]: its expiry in seconds;
 * ARGV[2..7]: how many ops of each section follow, in this order:
 *   M metrics kinds metric kind     SADD the metric, HSETNX its kind
 *   F filters values fname fvalue   SADD the filter name and its value
 *   I key field n                   counter, n integral: HINCRBY (or
 *                                   HINCRBYFLOAT when the field is not)
 *   C key field sum                 counter: HINCRBYFLOAT
 *   A key field sum count           avg: sum, and count in key;count
 *   G key field value ts            gauge: newer-or-equal ts wins (key;ts)
 * Sections without an op code per delta keep the script's work per delta
 * to the redis.call itself. Returns 1 when applied, 0 when the batch id
 * was already there.
 */
static const char rs_script[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then\n"
    "  return 0\n"
    "end\n"
    "local call, pcall, A = redis.call, redis.pcall, ARGV\n"
    "local i = 8\n"
    "for _ = 1, tonumber(A[2]) do\n"
    "  call('SADD', A[i], A[i+2])\n"
    "  call('HSETNX', A[i+1], A[i+2], A[i+3])\n"
    "  i = i + 4\n"
    "end\n"
    "for _ = 1, tonumber(A[3]) do\n"
    "  call('SADD', A[i], A[i+2])\n"
    "  call('SADD', A[i+1], A[i+3])\n"
    "  i = i + 4\n"
    "end\n"
    "for _ = 1, tonumber(A[4]) do\n"
    "  local r = pcall('HINCRBY', A[i], A[i+1], A[i+2])\n"
    "  if type(r) == 'table' and r.err then\n"
    "    call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[5]) do\n"
    "  call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[6]) do\n"
    "  call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  call('HINCRBY', A[i] .. '" RS_SUFFIX_COUNT "', A[i+1], A[i+3])\n"
    "  i = i + 4\n"
    "end\n"
    "for _ = 1, tonumber(A[7]) do\n"
    "  local tk = A[i] .. '" RS_SUFFIX_TS "'\n"
    "  local old = call('HGET', tk, A[i+1])\n"
    "  if (not old) or tonumber(A[i+3]) >= tonumber(old) then\n"
    "    call('HSET', A[i], A[i+1], A[i+2])\n"
    "    call('HSET', tk, A[i+1], A[i+3])\n"
    "  end\n"
    "  i = i + 4\n"
    "end\n"
    "return 1\n";

/* ---- connection ---- */

static struct timeval
rs_tv(int64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
    return tv;
}

static void
rs_disconnect(rs_state_t *s)
{
    if (s->c != NULL)
        redisFree(s->c);
    s->c = NULL;
}

/* The connection broke (or timed out): drop it; GW_AGAIN with why. */
static int
rs_io_error(rs_state_t *s, const char *what, gw_error_t *err)
{
    const char *why = s->c && s->c->errstr[0] ? s->c->errstr : "no reply";

    gw_error_set(err, "redis %s:%d: %s: %s", s->host, (int) s->port, what,
                 why);
    rs_disconnect(s);
    return GW_AGAIN;
}

/* Error replies that mean "not now" rather than "never". */
static int
rs_transient(const char *msg)
{
    static const char *const words[] = {
        "LOADING", "BUSY", "MASTERDOWN", "READONLY", "NOAUTH", "WRONGPASS",
        "OOM", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "ERR invalid password",
        NULL};
    size_t i;

    for (i = 0; words[i] != NULL; i++)
        if (strncmp(msg, words[i], strlen(words[i])) == 0)
            return 1;
    return 0;
}

/* An error reply: GW_AGAIN when transient, else GW_ERR; err says which. */
static int
rs_reply_error(rs_state_t *s, const redisReply *r, const char *what,
               gw_error_t *err)
{
    const char *msg = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";

    gw_error_set(err, "redis %s:%d: %s: %s", s->host, (int) s->port, what,
                 msg);
    if (r->type == REDIS_REPLY_ERROR && rs_transient(msg)) {
        rs_disconnect(s);
        return GW_AGAIN;
    }
    return GW_ERR;
}

/* Runs one command; *out is the reply (free it) unless an error is
 * returned. Error replies are turned into GW_AGAIN/GW_ERR. */
static int
rs_call(rs_state_t *s, int argc, const char **argv, const size_t *lens,
        redisReply **out, const char *what, gw_error_t *err)
{
    redisReply *r = redisCommandArgv(s->c, argc, argv, lens);

    if (r == NULL)
        return rs_io_error(s, what, err);
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = rs_reply_error(s, r, what, err);

        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return GW_OK;
}

static int
rs_load_script(rs_state_t *s, gw_error_t *err)
{
    const char *argv[] = {"SCRIPT", "LOAD", rs_script};
    size_t lens[] = {6, 4, sizeof(rs_script) - 1};
    redisReply *r;
    int rc = rs_call(s, 3, argv, lens, &r, "SCRIPT LOAD", err);

    if (rc != GW_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        rc = rs_reply_error(s, r, "SCRIPT LOAD", err);
        freeReplyObject(r);
        return rc;
    }
    memcpy(s->sha, r->str, 40);
    s->sha[40] = '\0';
    freeReplyObject(r);
    return GW_OK;
}

static int
rs_connect(rs_state_t *s, gw_error_t *err)
{
    redisReply *r;
    char db[32];
    int rc;

    if (s->c != NULL)
        return GW_OK;
    s->c = redisConnectWithTimeout(s->host, (int) s->port,
                                   rs_tv(s->connect_timeout_ms));
    if (s->c == NULL) {
        gw_error_set(err, "redis %s:%d: out of memory", s->host,
                     (int) s->port);
        return GW_AGAIN;
    }
    if (s->c->err)
        return rs_io_error(s, "cannot connect", err);
    if (redisSetTimeout(s->c, rs_tv(s->timeout_ms)) != REDIS_OK)
        return rs_io_error(s, "cannot set the timeout", err);
    redisEnableKeepAlive(s->c);
    if (s->password != NULL && s->password[0] != '\0') {
        const char *argv[] = {"AUTH", s->password};
        size_t lens[] = {4, strlen(s->password)};

        rc = rs_call(s, 2, argv, lens, &r, "AUTH (check PASSWORD)", err);
        if (rc != GW_OK) {
            rs_disconnect(s);
            return GW_AGAIN;
        }
        freeReplyObject(r);
    }
    if (s->db != 0) {
        const char *argv[] = {"SELECT", db};
        size_t lens[2];

        snprintf(db, sizeof(db), "%lld", (long long) s->db);
        lens[0] = 6;
        lens[1] = strlen(db);
        rc = rs_call(s, 2, argv, lens, &r, "SELECT (check DB)", err);
        if (rc != GW_OK) {
            rs_disconnect(s);
            return GW_AGAIN;
        }
        freeReplyObject(r);
    }
    rc = rs_load_script(s, err);
    if (rc != GW_OK) {
        rs_disconnect(s);
        return GW_AGAIN;
    }
    gw_log_debug(s->ctx, "connected to redis %s:%d db %lld", s->host,
                 (int) s->port, (long long) s->db);
    return GW_OK;
}

/* ---- argument lists ---- */

/* Arguments kept as offsets into one buffer until sent. */
typedef struct rs_args_s {
    rs_buf_t buf;
    size_t *off;
    size_t *len;
    size_t n;
    size_t cap;
    int oom;
} rs_args_t;

static void
rs_args_begin(rs_args_t *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        size_t *off = realloc(a->off, cap * sizeof(*off));
        size_t *len = off ? realloc(a->len, cap * sizeof(*len)) : NULL;

        if (off != NULL)
            a->off = off;
        if (off == NULL || len == NULL) {
            a->oom = 1;
            return;
        }
        a->len = len;
        a->cap = cap;
    }
    a->off[a->n] = a->buf.len;
    a->len[a->n] = 0;
}

static void
rs_args_end(rs_args_t *a)
{
    if (a->oom)
        return;
    a->len[a->n] = a->buf.len - a->off[a->n];
    a->n++;
}

static void
rs_arg(rs_args_t *a, const char *s)
{
    rs_args_begin(a);
    rs_buf_puts(&a->buf, s);
    rs_args_end(a);
}

static void
rs_arg_int(rs_args_t *a, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *q = e;
    uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--q = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--q = '-';
    rs_args_begin(a);
    rs_buf_put(&a->buf, q, (size_t) (e - q));
    rs_args_end(a);
}

/* Whole values below 2^53 in magnitude: exactly an int64. */
static int
rs_integral(double d)
{
    return d == floor(d) && fabs(d) < 9007199254740992.0;
}

static void
rs_arg_double(rs_args_t *a, double d)
{
    if (rs_integral(d)) {
        rs_arg_int(a, (int64_t) d); /* the same number, printed faster */
        return;
    }
    rs_args_begin(a);
    rs_buf_printf(&a->buf, "%.17g", d);
    rs_args_end(a);
}

static void
rs_args_reset(rs_args_t *a)
{
    a->buf.len = 0;
    a->n = 0;
}

static void
rs_args_free(rs_args_t *a)
{
    rs_buf_free(&a->buf);
    free(a->off);
    free(a->len);
    memset(a, 0, sizeof(*a));
}

/* ---- store ---- */

/* The sections of a script call, in the script's order. */
enum { RS_M, RS_F, RS_I, RS_C, RS_A, RS_G, RS_NSECT };

/* Appends EVALSHA with the header h and the sections to the connection's
 * output buffer. */
static int
rs_args_append(rs_state_t *s, rs_args_t *h, rs_args_t *sect)
{
    const char **argv;
    size_t *lens, i, j, n = h->n, k;
    int rc;

    for (k = 0; k < RS_NSECT; k++) {
        if (sect[k].oom || sect[k].buf.oom)
            return -1;
        n += sect[k].n;
    }
    if (h->oom || h->buf.oom || n > INT32_MAX)
        return -1;
    argv = malloc(n * sizeof(*argv));
    lens = malloc(n * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return -1;
    }
    for (i = 0; i < h->n; i++) {
        argv[i] = h->buf.p + h->off[i];
        lens[i] = h->len[i];
    }
    for (k = 0; k < RS_NSECT; k++) {
        for (j = 0; j < sect[k].n; j++, i++) {
            argv[i] = sect[k].buf.p + sect[k].off[j];
            lens[i] = sect[k].len[j];
        }
    }
    rc = redisAppendCommandArgv(s->c, (int) n, argv, lens);
    free(argv);
    free(lens);
    return rc == REDIS_OK ? 0 : -1;
}

/* Writes what is buffered, so Redis runs one chunk while the next is
 * built. 0, or -1 on an I/O error. */
static int
rs_flush_out(rs_state_t *s)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            return -1;
    return 0;
}

/* A set of strings seen in one batch (metadata is sent once per batch, in
 * the chunk of the first delta that needs it). */
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
            i = pc_fnv1a(z->keys.p + o, z->len[j]) & (slots - 1);
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
    for (i = pc_fnv1a(key, len) & mask; z->off[i] != SIZE_MAX;
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

/* Adds the metadata ops of d unless this batch already has them. */
static int
rs_add_meta(rs_args_t *sect, rs_seen_t *seen, rs_buf_t *tmp,
            const gw_delta_t *d)
{
    rs_args_t *a;
    int fresh;

    /* The metric: "project\0metric" */
    tmp->len = 0;
    rs_buf_put(tmp, d->project, strlen(d->project) + 1);
    rs_buf_puts(tmp, d->metric);
    if (tmp->oom || (fresh = rs_seen_add(seen, tmp->p, tmp->len)) < 0)
        return -1;
    if (fresh) {
        a = &sect[RS_M];
        rs_args_begin(a);
        rs_key_metrics(&a->buf, d->project);
        rs_args_end(a);
        rs_args_begin(a);
        rs_key_kinds(&a->buf, d->project);
        rs_args_end(a);
        rs_arg(a, d->metric);
        rs_arg(a, gw_kind_name(d->kind));
    }
    if (d->filter_name == NULL)
        return 0;
    /* The filter value: "project\0metric\0fname\0fvalue" */
    rs_buf_put(tmp, "", 1);
    rs_buf_put(tmp, d->filter_name, strlen(d->filter_name) + 1);
    rs_buf_puts(tmp, d->filter_value);
    if (tmp->oom || (fresh = rs_seen_add(seen, tmp->p, tmp->len)) < 0)
        return -1;
    if (fresh) {
        a = &sect[RS_F];
        rs_args_begin(a);
        rs_key_filters(&a->buf, d->project, d->metric);
        rs_args_end(a);
        rs_args_begin(a);
        rs_key_values(&a->buf, d->project, d->metric, d->filter_name);
        rs_args_end(a);
        rs_arg(a, d->filter_name);
        rs_arg(a, d->filter_value);
    }
    return 0;
}

static void
rs_add_delta(rs_args_t *sect, const gw_delta_t *d)
{
    rs_args_t *a;

    if (d->kind == GW_KIND_COUNTER)
        a = &sect[rs_integral(d->sum) ? RS_I : RS_C];
    else
        a = &sect[d->kind == GW_KIND_AVG ? RS_A : RS_G];
    rs_args_begin(a);
    rs_key_series(&a->buf, d->project, d->metric, d->period, d->filter_name,
                  d->filter_value);
    rs_args_end(a);
    rs_arg_int(a, d->period == GW_PERIOD_ALL ? 0 : d->bucket);
    rs_arg_double(a, d->sum);
    if (d->kind == GW_KIND_AVG)
        rs_arg_int(a, d->count);
    else if (d->kind == GW_KIND_GAUGE)
        rs_arg_double(a, d->ts);
}

/* Builds the EVALSHA of deltas [from, to) as chunk k of nchunks: the
 * header in h, the ops in the sections. */
static int
rs_build_chunk(rs_state_t *s, const gw_batch_t *batch, size_t from,
               size_t to, size_t k, size_t nchunks, rs_args_t *h,
               rs_args_t *sect, rs_seen_t *seen, rs_buf_t *tmp)
{
    static const size_t stride[RS_NSECT] = {4, 4, 3, 3, 4, 4};
    size_t i;

    rs_args_reset(h);
    for (i = 0; i < RS_NSECT; i++)
        rs_args_reset(&sect[i]);
    for (i = from; i < to; i++) {
        if (rs_add_meta(sect, seen, tmp, &batch->deltas[i]) < 0)
            return -1;
        rs_add_delta(sect, &batch->deltas[i]);
    }
    rs_arg(h, "EVALSHA");
    rs_arg(h, s->sha);
    rs_arg(h, "1");
    rs_args_begin(h);
    rs_key_batch(&h->buf, batch->id ? batch->id : "");
    if (nchunks > 1)
        rs_buf_printf(&h->buf, "/%zu", k);
    rs_args_end(h);
    rs_arg_int(h, s->batch_ttl);
    for (i = 0; i < RS_NSECT; i++)
        rs_arg_int(h, (int64_t) (sect[i].n / stride[i]));
    return (h->oom || h->buf.oom) ? -1 : 0;
}

/* Sends chunks (all of them, or those flagged in redo) in one pipeline and
 * reads the replies; sets redo[k] for chunks that hit NOSCRIPT. */
static int
rs_send_chunks(rs_state_t *s, const gw_batch_t *batch, size_t nchunks,
               unsigned char *redo, int only_redo, size_t *skipped,
               gw_error_t *err)
{
    rs_args_t h, sect[RS_NSECT];
    rs_seen_t seen;
    rs_buf_t tmp = {NULL, 0, 0, 0};
    size_t k, chunk = (size_t) s->chunk;
    unsigned char *was = calloc(nchunks, 1);
    int rc = GW_OK;

    memset(&h, 0, sizeof(h));
    memset(sect, 0, sizeof(sect));
    memset(&seen, 0, sizeof(seen));
    if (was == NULL)
        return gw_error_set(err, "redis storage: out of memory");
    for (k = 0; k < nchunks; k++) {
        size_t from = k * chunk;
        size_t to = from + chunk < batch->ndeltas ? from + chunk
                                                  : batch->ndeltas;

        if (only_redo && !redo[k])
            continue;
        if (rs_build_chunk(s, batch, from, to, k, nchunks, &h, sect, &seen,
                           &tmp) < 0 ||
            rs_args_append(s, &h, sect) < 0) {
            rc = gw_error_set(err, "redis storage: out of memory building "
                              "a batch of %zu deltas", batch->ndeltas);
            break;
        }
        was[k] = 1;
        if (rs_flush_out(s) < 0) {
            rc = rs_io_error(s, "storing a batch", err);
            break;
        }
    }
    rs_args_free(&h);
    for (k = 0; k < RS_NSECT; k++)
        rs_args_free(&sect[k]);
    rs_seen_free(&seen);
    rs_buf_free(&tmp);
    for (k = 0; k < nchunks && s->c != NULL; k++) {
        redisReply *r = NULL;

        if (!was[k])
            continue;
        redo[k] = 0;
        if (redisGetReply(s->c, (void **) &r) != REDIS_OK || r == NULL) {
            rc = rs_io_error(s, "storing a batch", err);
            break;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            if (r->integer == 0)
                (*skipped)++;
        } else if (r->type == REDIS_REPLY_ERROR &&
                   strncmp(r->str, "NOSCRIPT", 8) == 0) {
            redo[k] = 1;
        } else if (rc == GW_OK) {
            rc = rs_reply_error(s, r, "storing a batch", err);
            if (s->c == NULL) {
                freeReplyObject(r);
                break;
            }
        }
        freeReplyObject(r);
    }
    free(was);
    return rc;
}

static int
rs_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    rs_state_t *s = state;
    size_t i, nchunks, skipped = 0;
    unsigned char *redo;
    int rc, pass;

    if (batch->ndeltas == 0)
        return GW_OK;
    for (i = 0; i < batch->ndeltas; i++)
        if (rs_check_delta(&batch->deltas[i], i, err) != GW_OK)
            return GW_ERR;
    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    nchunks = (batch->ndeltas + (size_t) s->chunk - 1) / (size_t) s->chunk;
    redo = calloc(nchunks, 1);
    if (redo == NULL)
        return gw_error_set(err, "redis storage: out of memory");
    rc = rs_send_chunks(s, batch, nchunks, redo, 0, &skipped, err);
    /* NOSCRIPT: the server lost its script cache (restart, SCRIPT FLUSH);
     * those chunks did not run: load the script and send them again. */
    for (pass = 0; rc == GW_OK && pass < 2; pass++) {
        if (memchr(redo, 1, nchunks) == NULL)
            break;
        if ((rc = rs_load_script(s, err)) != GW_OK)
            break;
        rc = rs_send_chunks(s, batch, nchunks, redo, 1, &skipped, err);
    }
    if (rc == GW_OK && memchr(redo, 1, nchunks) != NULL)
        rc = gw_error_set(err, "redis %s:%d: the script keeps vanishing "
                          "(NOSCRIPT)", s->host, (int) s->port);
    free(redo);
    if (rc == GW_OK && skipped > 0)
        gw_log_debug(s->ctx, "batch %s: %zu of %zu chunks were already "
                     "applied; skipped", batch->id ? batch->id : "",
                     skipped, nchunks);
    return rc;
}

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
    errno = 0;
    *out = strtod(r->str, &end);
    return (*end != '\0' || errno == ERANGE) ? -1 : 0;
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

static int
rs_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    rs_state_t *s = state;
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
    if (q->kind == GW_KIND_AVG || q->kind == GW_KIND_GAUGE) {
        rs_buf_put(&extra, key.p, key.len);
        rs_buf_puts(&extra, q->kind == GW_KIND_AVG ? RS_SUFFIX_COUNT
                                                   : RS_SUFFIX_TS);
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
                if (q->kind == GW_KIND_AVG)
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

static int
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

/* ---- documents ---- */

static int
rs_doc_put(void *state, const char *ns, const char *id, const char *data,
           size_t len, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t key = {NULL, 0, 0, 0};
    redisReply *r = NULL;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    rs_key_doc(&key, ns, id);
    if (key.oom) {
        rs_buf_free(&key);
        return gw_error_set(err, "redis storage: out of memory");
    }
    {
        const char *argv[] = {"SET", key.p, data};
        size_t lens[] = {3, key.len, len};

        rc = rs_call(s, 3, argv, lens, &r, "SET", err);
    }
    if (r != NULL)
        freeReplyObject(r);
    rs_buf_free(&key);
    return rc;
}

static int
rs_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
           void *arg, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t key = {NULL, 0, 0, 0};
    redisReply *r = NULL;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    rs_key_doc(&key, ns, id);
    if (key.oom) {
        rs_buf_free(&key);
        return gw_error_set(err, "redis storage: out of memory");
    }
    {
        const char *argv[] = {"GET", key.p};
        size_t lens[] = {3, key.len};

        rc = rs_call(s, 2, argv, lens, &r, "GET", err);
    }
    if (rc == GW_OK) {
        if (r->type == REDIS_REPLY_STRING)
            emit(arg, r->str, (size_t) r->len);
        else if (r->type != REDIS_REPLY_NIL)
            rc = rs_reply_error(s, r, "GET", err);
    }
    if (r != NULL)
        freeReplyObject(r);
    rs_buf_free(&key);
    return rc;
}

static int
rs_ping(void *state, gw_error_t *err)
{
    rs_state_t *s = state;
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    if ((rc = rs_call(s, 1, argv, lens, &r, "PING", err)) != GW_OK)
        return GW_AGAIN;
    freeReplyObject(r);
    return GW_OK;
}

/* ---- lifecycle ---- */

static int
rs_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    rs_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "redis storage: out of memory");
    s->ctx = ctx;
    if (ctx->host->config_apply(ctx, rs_keys, s, err) != GW_OK) {
        free(s);
        return GW_ERR;
    }
    if (s->host == NULL || s->host[0] == '\0') {
        free(s);
        return gw_error_set(err, "redis storage: HOST is empty");
    }
    *state = s;
    return GW_OK;
}

static void
rs_destroy(void *state)
{
    rs_state_t *s = state;

    rs_disconnect(s);
    free(s);
}

static const gw_storage_ops_t rs_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = rs_create,
    .destroy = rs_destroy,
    .store = rs_store,
    .query = rs_query,
    .metadata = rs_metadata,
    .doc_put = rs_doc_put,
    .doc_get = rs_doc_get,
    .ping = rs_ping,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "redis",
    .version = "0.1.0",
    .description = "Redis storage, original GottWall key layout",
    .storage = &rs_ops,
};
