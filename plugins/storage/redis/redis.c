/*
 * plugins/storage/redis/redis.c: the Redis storage (SPEC §6): its config,
 * the flush's Lua script, the connection, the Redis protocol writer, ping
 * and the ops table.
 *
 * Runs on the storage thread with hiredis' synchronous API and timeouts.
 * The connection is made lazily (rs_connect: AUTH, SELECT, SCRIPT LOAD of
 * the script) and dropped on any I/O error; while the server is
 * unreachable every call returns GW_AGAIN with the reason. store() is in
 * store.c, the reads and the documents in read.c, the key layout in
 * keys.c; rs.h lists what they share. docs/storage-redis.md has the layout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "rs.h"

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

/* ---- the script ---- */

/*
 * The flush's script (store.c builds its arguments, rs_build_chunk).
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
 * it is idempotent and sent as plain commands (rs_build_meta). Returns 0
 * when the batch id was already there, else 1 + the number of sums that
 * saturated.
 *
 * Saturation (issue 16): HINCRBYFLOAT adds in long double, so a sum past
 * DBL_MAX is stored as text no double can hold (a reader gets inf), and
 * it refuses with an error only past long double's range or on a stored
 * "inf": an error that would stop the script halfway, after its batch id
 * was set, and so lose the rest of the batch for good. incrf stores such
 * a sum as +-DBL_MAX (%.17g, what a double reads back exactly) instead
 * and counts it: the script never stops on an overflow.
 */
#define RS_STR2(x) #x
#define RS_STR(x) RS_STR2(x)
#define RS_MAX_BINS_S RS_STR(GW_SKETCH_MAX_BINS)
/* Members counted exactly: set-max-intset-entries' default, so the set
 * stays an intset (docs/storage-redis.md). */
#define RS_SET_EXACT_S "512"

static const char rs_script[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then\n"
    "  return 0\n"
    "end\n"
    "local call, pcall, A = redis.call, redis.pcall, ARGV\n"
    "local M, sat = 1.7976931348623157e308, 0\n"
    "local function incrf(k, f, n)\n"
    "  local x = tonumber(pcall('HINCRBYFLOAT', k, f, n))\n"
    "  if x == nil then\n"
    "    local o = tonumber(call('HGET', k, f) or '0')\n"
    "    if o == nil or o ~= o then\n"
    "      call('HINCRBYFLOAT', k, f, n)\n" /* its error, as before */
    "    end\n"
    "    x = o + tonumber(n)\n"
    "  end\n"
    "  if x > M or x < -M then\n"
    "    call('HSET', k, f, string.format('%.17g', x > 0 and M or -M))\n"
    "    sat = sat + 1\n"
    "  end\n"
    "end\n"
    "local i = 9\n"
    "for _ = 1, tonumber(A[2]) do\n"
    "  local f, n = A[i], A[i+1]\n"
    "  local e = i + 2 + tonumber(A[i+2])\n"
    "  for j = i + 3, e do\n"
    "    if type(pcall('HINCRBY', A[j], f, n)) ~= 'number' then\n"
    "      incrf(A[j], f, n)\n"
    "    end\n"
    "  end\n"
    "  i = e + 1\n"
    "end\n"
    "for _ = 1, tonumber(A[3]) do\n"
    "  if type(pcall('HINCRBY', A[i], A[i+1], A[i+2])) ~= 'number' then\n"
    "    incrf(A[i], A[i+1], A[i+2])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[4]) do\n"
    "  incrf(A[i], A[i+1], A[i+2])\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, tonumber(A[5]) do\n"
    "  incrf(A[i], A[i+1], A[i+2])\n"
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
    /* Timings: sum and count as avg; min, max and the bins in the
     * sketch hash; past the bound, the lowest bins folded (the most
     * negative values first, then the smallest positive ones). */
    "local function fold(q, sign, over, top)\n"
    "  local b = {}\n"
    "  for _, f in ipairs(call('HKEYS', q)) do\n"
    "    if string.sub(f, 1, 1) == sign then\n"
    "      b[#b+1] = tonumber(string.sub(f, 2))\n"
    "    end\n"
    "  end\n"
    "  if #b < 2 then return over end\n"
    "  table.sort(b)\n"
    "  local k = math.min(over, #b - 1)\n"
    "  local from, to, into = 1, k, b[k+1]\n"
    "  if top then from, to, into = #b - k + 1, #b, b[#b-k] end\n"
    "  local add = 0\n"
    "  for j = from, to do\n"
    "    add = add + tonumber(call('HGET', q, sign .. b[j]))\n"
    "    call('HDEL', q, sign .. b[j])\n"
    "  end\n"
    "  call('HINCRBY', q, sign .. into, add)\n"
    "  return over - k\n"
    "end\n"
    "for _ = 1, tonumber(A[7]) do\n"
    "  local k, f = A[i], A[i+1]\n"
    "  local q = k .. '" RS_SUFFIX_SKETCH "' .. f\n"
    "  incrf(k, f, A[i+2])\n"
    "  call('HINCRBY', k .. '" RS_SUFFIX_COUNT "', f, A[i+3])\n"
    "  local mn, mx = call('HGET', q, 'min'), call('HGET', q, 'max')\n"
    "  if (not mn) or tonumber(A[i+4]) < tonumber(mn) then\n"
    "    call('HSET', q, 'min', A[i+4])\n"
    "  end\n"
    "  if (not mx) or tonumber(A[i+5]) > tonumber(mx) then\n"
    "    call('HSET', q, 'max', A[i+5])\n"
    "  end\n"
    "  local j = i + 7\n"
    "  for _ = 1, tonumber(A[i+6]) do\n"
    "    call('HINCRBY', q, A[j], A[j+1])\n"
    "    j = j + 2\n"
    "  end\n"
    "  local over = call('HLEN', q) - 3 - " RS_MAX_BINS_S "\n"
    "  if call('HEXISTS', q, 'z') == 0 then over = over + 1 end\n"
    "  if over > 0 then over = fold(q, 'n', over, true) end\n"
    "  if over > 0 then fold(q, 'p', over, false) end\n"
    "  i = j\n"
    "end\n"
    /* Sets: the events in the main hash, the members PFMERGEd from the
     * HyperLogLog the storage wrote (kinds.c), through a key of this
     * chunk's own; and, while they are few, the members' hashes in a
     * set, which counts them exactly ("big" once past the bound, or once
     * a delta came as registers only: nh is -1). */
    "for _ = 1, tonumber(A[8]) do\n"
    "  local tmp, ex = KEYS[1] .. ':hll', A[i] .. '" RS_SUFFIX_EXACT "' .. A[i+1]\n"
    "  call('HINCRBY', A[i], A[i+1], A[i+2])\n"
    "  call('SET', tmp, A[i+3])\n"
    "  call('PFMERGE', A[i] .. '" RS_SUFFIX_HLL "' .. A[i+1], tmp)\n"
    "  call('DEL', tmp)\n"
    "  local nh = tonumber(A[i+4])\n"
    "  if call('TYPE', ex).ok ~= 'string' then\n"
    "    if nh < 0 then\n"
    "      call('DEL', ex) call('SET', ex, 'big')\n"
    "    else\n"
    "      for j = i + 5, i + 4 + nh, 1000 do\n"
    "        call('SADD', ex, unpack(A, j, math.min(j + 999, i + 4 + nh)))\n"
    "      end\n"
    "      if call('SCARD', ex) > " RS_SET_EXACT_S " then\n"
    "        call('DEL', ex) call('SET', ex, 'big')\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  i = i + 5 + math.max(nh, 0)\n"
    "end\n"
    "return 1 + sat\n";

/* ---- connection ---- */

static struct timeval
rs_tv(int64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
    return tv;
}

void
rs_disconnect(rs_state_t *s)
{
    if (s->c != NULL)
        redisFree(s->c);
    s->c = NULL;
}

/* The connection broke (or timed out): drop it; GW_AGAIN with why. */
int
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
int
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
int
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


int
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

int
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
char *
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
void
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

void
rs_resp_str(rs_buf_t *b, const char *s)
{
    rs_resp_arg(b, s, strlen(s));
}

void
rs_resp_int(rs_buf_t *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *q = rs_digits(e, v);

    rs_resp_arg(b, q, (size_t) (e - q));
}

/* Whole values below 2^53 in magnitude: exactly an int64. */
int
rs_integral(double d)
{
    return d == floor(d) && fabs(d) < 9007199254740992.0;
}

void
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
void
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
int
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
int
rs_flush_out(rs_state_t *s)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            return -1;
    return 0;
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

    rs_exp_free(s); /* gives its lease back: still connected */
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
    .nonce_claim = rs_nonce_claim,
    .expire = rs_expire,
    .kinds = GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET),
    .query_timing = rs_query_timing,
    .doc_cas = rs_doc_cas,
    .doc_list = rs_doc_list,
    .doc_del = rs_doc_del,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "redis",
    .version = "0.1.0",
    .description = "Redis storage, original GottWall key layout",
    .storage = &rs_ops,
};
