/*
 * plugins/storage/redis/redis.c: the Redis storage (SPEC §6).
 *
 * Runs on the storage thread with hiredis' synchronous API and timeouts.
 * A flush batch is two round trips: an MGET of the batch ids of its chunks
 * of CHUNK deltas (a retry sends only the chunks that did not run; a batch
 * of one chunk skips this), then a pipeline of the batch's metadata as
 * plain idempotent commands and one Lua script (EVALSHA) per chunk, which
 * first SETs gottwall:batch:{id}[/{k}] NX with an expiry and applies its
 * deltas only if that key was new, so a retried batch is applied once.
 * Commands are written in the Redis protocol directly, and whole counters
 * sharing a bucket and an increment travel as runs of keys (one argument
 * per delta).
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
 * ARGV[2..6]: how many ops of each section follow, in this order:
 *   R field n count key...          whole counters sharing field and n:
 *                                   HINCRBY each key (HINCRBYFLOAT when
 *                                   the field holds a fraction)
 *   S key field n                   one whole counter, the same way
 *   C key field sum                 other counters: HINCRBYFLOAT
 *   A key field sum count           avg: sum, and count in key;count
 *   G key field value ts            gauge: newer-or-equal ts wins (key;ts)
 * Runs make most deltas one argument (the key) instead of three: fewer
 * arguments to parse and to turn into Lua strings. Metadata is not here:
 * it is idempotent and sent as plain commands (rs_build_meta). Returns 1
 * when applied, 0 when the batch id was already there.
 */
static const char rs_script[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then\n"
    "  return 0\n"
    "end\n"
    "local call, pcall, A = redis.call, redis.pcall, ARGV\n"
    "local i = 7\n"
    "for _ = 1, tonumber(A[2]) do\n"
    "  local f, n = A[i], A[i+1]\n"
    "  local e = i + 2 + tonumber(A[i+2])\n"
    "  for j = i + 3, e do\n"
    "    if type(pcall('HINCRBY', A[j], f, n)) ~= 'number' then\n"
    "      call('HINCRBYFLOAT', A[j], f, n)\n"
    "    end\n"
    "  end\n"
    "  i = e + 1\n"
    "end\n"
    "for _ = 1, tonumber(A[3]) do\n"
    "  if type(pcall('HINCRBY', A[i], A[i+1], A[i+2])) ~= 'number' then\n"
    "    call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[4]) do\n"
    "  call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[5]) do\n"
    "  call('HINCRBYFLOAT', A[i], A[i+1], A[i+2])\n"
    "  call('HINCRBY', A[i] .. '" RS_SUFFIX_COUNT "', A[i+1], A[i+3])\n"
    "  i = i + 4\n"
    "end\n"
    "for _ = 1, tonumber(A[6]) do\n"
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

/* ---- the Redis protocol, written directly ---- */

/*
 * A flush writes up to millions of arguments: they are put in the Redis
 * protocol (RESP) straight into buffers and handed to hiredis with
 * redisAppendFormattedCommand, with no argv arrays and no formatting pass
 * per argument.
 */

/* Writes the decimal digits of v to end at e; returns where they start. */
static char *
rs_digits(char *e, int64_t v)
{
    uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--e = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--e = '-';
    return e;
}

/* One argument: "$len\r\n" data "\r\n". */
static void
rs_resp_arg(rs_buf_t *b, const void *p, size_t len)
{
    char tmp[32], *e = tmp + sizeof(tmp) - 2, *q;

    e[0] = '\r';
    e[1] = '\n';
    q = rs_digits(e, (int64_t) len);
    *--q = '$';
    rs_buf_put(b, q, (size_t) (tmp + sizeof(tmp) - q));
    rs_buf_put(b, p, len);
    rs_buf_put(b, "\r\n", 2);
}

static void
rs_resp_str(rs_buf_t *b, const char *s)
{
    rs_resp_arg(b, s, strlen(s));
}

static void
rs_resp_int(rs_buf_t *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *q = rs_digits(e, v);

    rs_resp_arg(b, q, (size_t) (e - q));
}

/* Whole values below 2^53 in magnitude: exactly an int64. */
static int
rs_integral(double d)
{
    return d == floor(d) && fabs(d) < 9007199254740992.0;
}

static void
rs_resp_double(rs_buf_t *b, double d)
{
    char tmp[40];
    int n;

    if (rs_integral(d)) {
        rs_resp_int(b, (int64_t) d); /* the same number, printed faster */
        return;
    }
    n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    rs_resp_arg(b, tmp, (size_t) n);
}

/* The start of a command of n arguments: "*n\r\n". */
static void
rs_resp_cmd(rs_buf_t *b, size_t n)
{
    char tmp[32], *e = tmp + sizeof(tmp) - 2, *q;

    e[0] = '\r';
    e[1] = '\n';
    q = rs_digits(e, (int64_t) n);
    *--q = '*';
    rs_buf_put(b, q, (size_t) (tmp + sizeof(tmp) - q));
}

/* Appends what b holds (whole commands, or the rest of one) to the
 * connection's output buffer. */
static int
rs_append(rs_state_t *s, const rs_buf_t *b)
{
    if (b->oom)
        return -1;
    if (b->len == 0)
        return 0;
    return redisAppendFormattedCommand(s->c, b->p, b->len) == REDIS_OK ? 0
                                                                       : -1;
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

/* ---- store ---- */

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
 * run. The scripts still SET their id NX and skip themselves when it is
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
 * of the metric names, HSETNX of each metric's kind, SADD of the filter
 * names and of the filter values. Each name is sent once per batch, and
 * consecutive names of one set go in one SADD (a flush is series-major, so
 * a metric's filter values come together). All of it is idempotent, so it
 * needs no batch id: it is sent before the chunks, and again with the
 * chunks of a retry.
 */
static int
rs_build_meta(const gw_batch_t *batch, rs_buf_t *out, size_t *ncmds)
{
    rs_seen_t seen;
    rs_run_t runs[3]; /* metric names, filter names, filter values */
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
        /* The metric: "project\0metric" */
        tmp.len = 0;
        rs_buf_put(&tmp, d->project, strlen(d->project) + 1);
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
    for (i = 0; i < 3; i++) {
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

/* The sections of a script call, in the script's order. */
enum { RS_R, RS_S, RS_C, RS_A, RS_G, RS_NSECT };

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
 * Sends the metadata (meta, nmeta commands; may be none) and the chunks
 * flagged in todo in one pipeline, each chunk written as soon as it is
 * built, then reads the replies. Afterwards todo[k] is set only for chunks
 * that hit NOSCRIPT (or were not sent because of an error).
 */
static int
rs_send(rs_state_t *s, const gw_batch_t *batch, size_t nchunks,
        unsigned char *todo, const rs_buf_t *meta, size_t nmeta,
        size_t *skipped, gw_error_t *err)
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
    if (nmeta > 0 && (rs_append(s, meta) < 0 || rs_flush_out(s) < 0)) {
        rc = meta->oom ? gw_error_set(err, "redis storage: out of memory")
                       : rs_io_error(s, "storing a batch", err);
        nmeta = 0;
        rs_disconnect(s);
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
    free(was);
    return rc;
}

static int
rs_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t meta = {NULL, 0, 0, 0};
    size_t i, nchunks, skipped = 0, nmeta = 0, npending = 0;
    unsigned char *todo;
    int rc, pass;

    if (batch->ndeltas == 0)
        return GW_OK;
    for (i = 0; i < batch->ndeltas; i++)
        if (rs_check_delta(&batch->deltas[i], i, err) != GW_OK)
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
    if (npending == 0)
        goto out;
    if (rs_build_meta(batch, &meta, &nmeta) < 0) {
        rc = gw_error_set(err, "redis storage: out of memory building "
                          "a batch of %zu deltas", batch->ndeltas);
        goto out;
    }
    rc = rs_send(s, batch, nchunks, todo, &meta, nmeta, &skipped, err);
    /* NOSCRIPT: the server lost its script cache (restart, SCRIPT FLUSH);
     * those chunks did not run: load the script and send them again. */
    for (pass = 0; rc == GW_OK && pass < 2; pass++) {
        if (memchr(todo, 1, nchunks) == NULL)
            break;
        if ((rc = rs_load_script(s, err)) != GW_OK)
            break;
        rc = rs_send(s, batch, nchunks, todo, NULL, 0, &skipped, err);
    }
    if (rc == GW_OK && memchr(todo, 1, nchunks) != NULL)
        rc = gw_error_set(err, "redis %s:%d: the script keeps vanishing "
                          "(NOSCRIPT)", s->host, (int) s->port);
out:
    free(todo);
    rs_buf_free(&meta);
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
