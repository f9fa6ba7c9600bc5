/*
 * plugins/storage/redis/expire.c: the redis storage's expire() (RETENTION,
 * plugin ABI 1.4): HDELs the fields of one period older than the cut from
 * every series' hashes, a bounded slice per call, resumable after a
 * restart (docs/storage-redis.md, "Expiry").
 *
 * The walk: projects (gottwall:projects, seeded once per process by a SCAN
 * for {P}-metrics keys, since the original layout lists no projects), their
 * metrics ({P}-metrics), each metric's total series, its filters
 * ({P}-metrics-filters:{M}) and their values
 * ({P}-metrics-filter-values:{M}:{F}), each set read by SSCAN and sorted,
 * so the walk has a stable order and a position that is a name. One call
 * reads at most RS_EXP_STEPS replies of SSCAN and runs one Lua script
 * (rs_exp_script) on at most RS_EXP_SERIES series with a budget of
 * RS_EXP_BUDGET field operations, then returns GW_AGAIN: Redis is never
 * held for more than that script at a time, and the core waits 10 ms
 * before the next slice.
 *
 * gottwall:expire:{period} (a hash) keeps the pass: `before` (its cut),
 * `from` (the cut of the pass before, so only the buckets in between need
 * deleting), `at` (the last series done, written by the script with its
 * deletions, atomically) and `done` (the cut of the last finished pass),
 * plus the figures of the last pass. gottwall:expire:lock is a lease (SET
 * PX, renewed by every call's script) so that of several processes on one
 * Redis one prunes at a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "rs.h"

/* Series handed to one script call at most. */
#define RS_EXP_SERIES 128
/* Field operations (HLEN, each field deleted, listed or scanned) after
 * which the script stops: the bound on how long one call holds Redis
 * (docs/storage-redis.md has the measurement). */
#define RS_EXP_BUDGET 1000
#define RS_EXP_BUDGET_S "1000"
/* Replies of SSCAN/SCAN (COUNT RS_EXP_COUNT) read by one call at most. */
#define RS_EXP_STEPS 8
#define RS_EXP_COUNT "500"
/* The cut moved by at most this many buckets since the last pass: the
 * script HDELs exactly those fields of a hash holding more; otherwise it
 * lists the hash (HKEYS up to RS_EXP_SMALL fields, HSCAN beyond). */
#define RS_EXP_RANGE_MAX 1000
#define RS_EXP_SMALL_S "1000"
/* ms the lease lasts without a call renewing it. */
#define RS_EXP_LEASE_MS "10000"

/*
 * KEYS[1]: gottwall:expire:{period}; KEYS[2]: gottwall:expire:lock.
 * ARGV[1]: the op, ARGV[2]: this process's owner id, ARGV[3]: the lease
 * in ms. Every op first takes (or renews) the lease, and returns
 * {-1, holder} when another process holds it.
 *   state                  returns {1, HGETALL KEYS[1]}
 *   set f v ...            HSET each field (HDEL when v is ""); {1}
 *   prune before period budget cursor kfirst nrange range... then per
 *         series: base suffix setkey member
 * prune: for each series, its hashes base..period..suffix and the ;count
 * and ;ts siblings (absent ones cost one HLEN): when the cut moved by
 * nrange >= 0 buckets (the range fields) and the hash holds more fields,
 * HDEL of exactly those; else the fields < before, listed by HKEYS (up to
 * RS_EXP_SMALL) or HSCAN (resumable: cursor, kfirst say where). Then, for
 * a filter value (setkey not ""), when its hash of this period is gone and
 * no period's hash of that series exists, SREM of the value from setkey:
 * in the same script, so a flush cannot write the series in between (and
 * the flush's SADD follows its data, store.c). Stops after the series on
 * which budget ran out, or inside a big hash; HSETs `at` to the last
 * series done. Returns {series done, hash index (1-based) to resume in or
 * 0, HSCAN cursor, fields removed, values removed}.
 */
static const char rs_exp_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local call, A = redis.call, ARGV\n"
    "local holder = call('GET', KEYS[2])\n"
    "if holder and holder ~= A[2] then return {-1, holder} end\n"
    "call('SET', KEYS[2], A[2], 'PX', A[3])\n"
    "if A[1] == 'state' then return {1, call('HGETALL', KEYS[1])} end\n"
    "if A[1] == 'set' then\n"
    "  for i = 4, #A, 2 do\n"
    "    if A[i+1] == '' then call('HDEL', KEYS[1], A[i])\n"
    "    else call('HSET', KEYS[1], A[i], A[i+1]) end\n"
    "  end\n"
    "  return {1}\n"
    "end\n"
    "local before, per, budget = tonumber(A[4]), A[5], tonumber(A[6])\n"
    "local cursor, kfirst, nr = A[7], tonumber(A[8]), tonumber(A[9])\n"
    "local range, i = {}, 10\n"
    "for j = 1, nr do range[j] = A[i] i = i + 1 end\n"
    "local cost, done, removed, dropped = 0, 0, 0, 0\n"
    "local periods = {'minute','hour','day','week','month','year','all'}\n"
    "local main\n"
    /* A timing or set series (its first old bucket has a sketch or a
     * HyperLogLog key) loses those keys with the fields. */
    "local function hdel(k, list, n)\n"
    "  local j, sk = 1, nil\n"
    "  if k == main and n > 0 then\n"
    "    if call('EXISTS', k .. '" RS_SUFFIX_SKETCH "' .. list[1]) == 1 then\n"
    "      sk = '" RS_SUFFIX_SKETCH "'\n"
    "    elseif call('EXISTS', k .. '" RS_SUFFIX_HLL "' .. list[1]) == 1 then\n"
    "      sk = '" RS_SUFFIX_HLL "'\n"
    "    end\n"
    "  end\n"
    "  while j <= n do\n"
    "    local e = math.min(j + 999, n)\n"
    "    removed = removed + call('HDEL', k, unpack(list, j, e))\n"
    "    if sk then\n"
    "      for x = j, e do\n"
    "        call('DEL', k .. sk .. list[x], k .. '" RS_SUFFIX_EXACT "' .. list[x])\n"
    "      end\n"
    "    end\n"
    "    j = e + 1\n"
    "  end\n"
    "end\n"
    "local function old(list, step)\n"
    "  local out, n = {}, 0\n"
    "  for j = 1, #list, step do\n"
    "    local b = tonumber(list[j])\n"
    "    if b and b < before then n = n + 1 out[n] = list[j] end\n"
    "  end\n"
    "  return out, n\n"
    "end\n"
    "local function prune(k, cur)\n"
    "  local n = call('HLEN', k)\n"
    "  cost = cost + 1\n"
    "  if n == 0 then return nil end\n"
    "  if cur == '0' and nr >= 0 and nr < n then\n"
    "    hdel(k, range, nr)\n"
    "    cost = cost + nr\n"
    "    return nil\n"
    "  end\n"
    "  if cur == '0' and n <= " RS_EXP_SMALL_S " then\n"
    "    hdel(k, old(call('HKEYS', k), 1))\n"
    "    cost = cost + n\n"
    "    return nil\n"
    "  end\n"
    "  repeat\n"
    "    local r = call('HSCAN', k, cur, 'COUNT', 250)\n"
    "    cur = r[1]\n"
    "    hdel(k, old(r[2], 2))\n"
    "    cost = cost + #r[2] / 2 + 1\n"
    "  until cur == '0' or cost >= budget\n"
    "  if cur == '0' then return nil end\n"
    "  return cur\n"
    "end\n"
    "local pos\n"
    "while i + 3 <= #A do\n"
    "  local base, suf, setk = A[i], A[i+1], A[i+2]\n"
    "  main = base .. per .. suf\n"
    "  local keys = {main, main .. '" RS_SUFFIX_COUNT "', main .. '"
    RS_SUFFIX_TS "'}\n"
    "  for j = kfirst, 3 do\n"
    "    local c = prune(keys[j], cursor)\n"
    "    cursor = '0'\n"
    "    if c then\n"
    "      if pos then call('HSET', KEYS[1], 'at', pos) end\n"
    "      return {done, j, c, removed, dropped}\n"
    "    end\n"
    "  end\n"
    "  kfirst = 1\n"
    "  if setk ~= '' and call('EXISTS', main) == 0 then\n"
    "    local any = 0\n"
    "    for _, p in ipairs(periods) do\n"
    "      any = any + call('EXISTS', base .. p .. suf)\n"
    "    end\n"
    "    cost = cost + 7\n"
    "    if any == 0 then dropped = dropped + call('SREM', setk, A[i+3]) end\n"
    "  end\n"
    "  done = done + 1\n"
    "  pos = string.sub(base, 1, -2) .. suf\n"
    "  i = i + 4\n"
    "  if cost >= budget then break end\n"
    "end\n"
    "if pos then call('HSET', KEYS[1], 'at', pos) end\n"
    "return {done, 0, '0', removed, dropped}\n";

/* A sorted list of names (a set read by SSCAN), loaded over calls. */
typedef struct rs_names_s {
    char **v;
    size_t n, cap;
    int loaded;      /* 0: not yet, 1: under way, 2: complete */
    char cursor[24]; /* of the SSCAN under way */
} rs_names_t;

/* One series queued for the script (one allocation, four strings). */
typedef struct rs_item_s {
    char *base;   /* "{P};{M};" */
    char *suffix; /* "" or ";{F}|{V}" */
    char *setkey; /* the values set of a filter value, "" for a total */
    char *member; /* the value, as it is */
} rs_item_t;

struct rs_exp_s {
    char owner[128]; /* this process, in the lease */
    char sha[41];    /* of rs_exp_script, "" until loaded */
    int seeded;      /* the SCAN for projects ran in this process */
    int seeding;
    char seed_cursor[24];
    /* the pass under way (active) */
    int period; /* -1: none */
    int active;
    int64_t before; /* the pass's cut: the lowest `before` of its calls */
    int64_t from;   /* the previous pass's cut; have_from: known */
    int have_from;
    /* the fields of the buckets in [from, before) (range_for: of which
     * before), or nrange -1: too many, list the hashes */
    int64_t range_for;
    long nrange;
    char (*range)[24];
    /* the walk */
    rs_names_t projects, metrics, filters, values;
    size_t pi, mi, vi;
    long fi;    /* the filter; -1: the metric's total series is next */
    int end;    /* the walk is over (the queue may still hold series) */
    char *res[4];
    int res_n;  /* resuming after res (2: a total, 4: a value; 0: no) */
    /* series queued, q[qhead..qn) */
    rs_item_t *q;
    size_t qhead, qn, qcap;
    long kfirst;     /* the first series' hash to resume in (1..3) */
    char hcursor[24];
    /* figures of the pass, by this process */
    uint64_t calls, series, fields, dropped;
    double longest_ms;
};

static double
rs_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* ---- names ---- */

static void
rs_names_clear(rs_names_t *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int
rs_names_add(rs_names_t *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strndup(s, len)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static int
rs_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted, without the duplicates SSCAN may return. */
static void
rs_names_finish(rs_names_t *l)
{
    size_t i, o = 0;

    if (l->n > 0)
        qsort(l->v, l->n, sizeof(*l->v), rs_cmp);
    for (i = 0; i < l->n; i++) {
        if (o > 0 && strcmp(l->v[o - 1], l->v[i]) == 0)
            free(l->v[i]);
        else
            l->v[o++] = l->v[i];
    }
    l->n = o;
    l->loaded = 2;
}

/* The first index whose name is >= name; *exact when equal. */
static size_t
rs_names_find(const rs_names_t *l, const char *name, int *exact)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(l->v[mid], name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *exact = lo < l->n && strcmp(l->v[lo], name) == 0;
    return lo;
}

/* SSCANs of key into l while *steps last (each takes one). GW_OK (l may
 * still be under way) or an error. */
static int
rs_names_load(rs_state_t *s, rs_names_t *l, const rs_buf_t *key, int *steps,
              gw_error_t *err)
{
    while (l->loaded != 2 && *steps > 0) {
        const char *argv[] = {"SSCAN", key->p, l->cursor, "COUNT",
                              RS_EXP_COUNT};
        size_t lens[] = {5, key->len, 0, 5, sizeof(RS_EXP_COUNT) - 1};
        redisReply *r;
        size_t i;
        int rc;

        if (key->oom)
            return gw_error_set(err, "redis storage: out of memory");
        if (l->loaded == 0) {
            strcpy(l->cursor, "0");
            l->loaded = 1;
        }
        lens[2] = strlen(l->cursor);
        (*steps)--;
        if ((rc = rs_call(s, 5, argv, lens, &r, "SSCAN", err)) != GW_OK)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= (int) sizeof(l->cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = rs_reply_error(s, r, "SSCAN", err);
            freeReplyObject(r);
            return rc;
        }
        memcpy(l->cursor, r->element[0]->str, (size_t) r->element[0]->len);
        l->cursor[r->element[0]->len] = '\0';
        for (i = 0; i < r->element[1]->elements; i++) {
            const redisReply *m = r->element[1]->element[i];

            if (m->type == REDIS_REPLY_STRING &&
                rs_names_add(l, m->str, (size_t) m->len) < 0) {
                freeReplyObject(r);
                return gw_error_set(err, "redis storage: out of memory");
            }
        }
        freeReplyObject(r);
        if (strcmp(l->cursor, "0") == 0)
            rs_names_finish(l);
    }
    return GW_OK;
}

/* ---- the walk ---- */

static void
rs_exp_drop_items(rs_exp_t *e, size_t n)
{
    size_t i;

    for (i = 0; i < n && e->qhead < e->qn; i++)
        free(e->q[e->qhead++].base);
    if (e->qhead == e->qn)
        e->qhead = e->qn = 0;
}

/* Forgets the pass (not what Redis keeps of it). */
static void
rs_exp_reset(rs_exp_t *e)
{
    int i;

    rs_exp_drop_items(e, SIZE_MAX);
    rs_names_clear(&e->projects);
    rs_names_clear(&e->metrics);
    rs_names_clear(&e->filters);
    rs_names_clear(&e->values);
    for (i = 0; i < 4; i++) {
        free(e->res[i]);
        e->res[i] = NULL;
    }
    e->res_n = 0;
    e->pi = e->mi = e->vi = 0;
    e->fi = -1;
    e->end = 0;
    e->active = 0;
    e->kfirst = 1;
    strcpy(e->hcursor, "0");
    e->range_for = INT64_MIN;
    e->calls = e->series = e->fields = e->dropped = 0;
    e->longest_ms = 0;
}

/* Queues the series of the current metric: its total (fname NULL) or one
 * filter value. */
static int
rs_exp_queue(rs_exp_t *e, const char *fname, const char *fvalue)
{
    const char *p = e->projects.v[e->pi], *m = e->metrics.v[e->mi];
    rs_buf_t b = {NULL, 0, 0, 0};
    size_t o[4];
    rs_item_t *it;

    if (e->qn == e->qcap) {
        size_t cap = e->qcap ? e->qcap * 2 : RS_EXP_SERIES * 2;
        rs_item_t *q = realloc(e->q, cap * sizeof(*q));

        if (q == NULL)
            return -1;
        e->q = q;
        e->qcap = cap;
    }
    o[0] = 0;
    rs_buf_escape(&b, p);
    rs_buf_put(&b, ";", 1);
    rs_buf_escape(&b, m);
    rs_buf_put(&b, ";", 2); /* and its NUL */
    o[1] = b.len;
    if (fname != NULL) {
        rs_buf_put(&b, ";", 1);
        rs_buf_escape(&b, fname);
        rs_buf_put(&b, "|", 1);
        rs_buf_escape(&b, fvalue);
    }
    rs_buf_put(&b, "", 1);
    o[2] = b.len;
    if (fname != NULL)
        rs_key_values(&b, p, m, fname);
    rs_buf_put(&b, "", 1);
    o[3] = b.len;
    rs_buf_puts(&b, fname != NULL ? fvalue : "");
    if (b.oom) {
        rs_buf_free(&b);
        return -1;
    }
    it = &e->q[e->qn++];
    it->base = b.p; /* owns the block */
    it->suffix = b.p + o[1];
    it->setkey = b.p + o[2];
    it->member = b.p + o[3];
    return 0;
}

/* Applies the resume position to a level just loaded: returns where the
 * walk starts in l. depth 0..3 (project, metric, filter, value). */
static size_t
rs_exp_resume(rs_exp_t *e, const rs_names_t *l, int depth)
{
    int exact;
    size_t at;

    if (e->res_n <= depth)
        return 0;
    at = rs_names_find(l, e->res[depth], &exact);
    if (!exact || depth == 3) {
        e->res_n = 0; /* what follows starts at its beginning */
        return exact ? at + 1 : at;
    }
    if (depth == 1) {
        e->fi = 0; /* the total is done */
        if (e->res_n == 2)
            e->res_n = 0;
    }
    return at;
}

/* Loads what the walk needs next and queues series, until the queue holds
 * RS_EXP_SERIES, the SSCAN steps are used up or the walk ends. */
static int
rs_exp_fill(rs_state_t *s, rs_exp_t *e, int *steps, gw_error_t *err)
{
    rs_buf_t key = {NULL, 0, 0, 0};
    int rc = GW_OK;

    while (e->qn - e->qhead < RS_EXP_SERIES && !e->end && rc == GW_OK) {
        key.len = 0;
        if (e->projects.loaded != 2) {
            rs_key_projects(&key);
            if ((rc = rs_names_load(s, &e->projects, &key, steps, err)) ==
                    GW_OK && e->projects.loaded == 2)
                e->pi = rs_exp_resume(e, &e->projects, 0);
            if (e->projects.loaded != 2)
                break;
        } else if (e->pi >= e->projects.n) {
            e->end = 1;
        } else if (e->metrics.loaded != 2) {
            rs_key_metrics(&key, e->projects.v[e->pi]);
            e->fi = -1;
            if ((rc = rs_names_load(s, &e->metrics, &key, steps, err)) ==
                    GW_OK && e->metrics.loaded == 2)
                e->mi = rs_exp_resume(e, &e->metrics, 1);
            if (e->metrics.loaded != 2)
                break;
        } else if (e->mi >= e->metrics.n) {
            e->pi++;
            rs_names_clear(&e->metrics);
        } else if (e->fi < 0) {
            if (rs_exp_queue(e, NULL, NULL) < 0)
                rc = gw_error_set(err, "redis storage: out of memory");
            e->fi = 0;
        } else if (e->filters.loaded != 2) {
            rs_key_filters(&key, e->projects.v[e->pi], e->metrics.v[e->mi]);
            if ((rc = rs_names_load(s, &e->filters, &key, steps, err)) ==
                    GW_OK && e->filters.loaded == 2)
                e->fi = (long) rs_exp_resume(e, &e->filters, 2);
            if (e->filters.loaded != 2)
                break;
        } else if ((size_t) e->fi >= e->filters.n) {
            e->mi++;
            e->fi = -1;
            rs_names_clear(&e->filters);
        } else if (e->values.loaded != 2) {
            rs_key_values(&key, e->projects.v[e->pi], e->metrics.v[e->mi],
                          e->filters.v[e->fi]);
            if ((rc = rs_names_load(s, &e->values, &key, steps, err)) ==
                    GW_OK && e->values.loaded == 2)
                e->vi = rs_exp_resume(e, &e->values, 3);
            if (e->values.loaded != 2)
                break;
        } else if (e->vi >= e->values.n) {
            e->fi++;
            rs_names_clear(&e->values);
        } else {
            if (rs_exp_queue(e, e->filters.v[e->fi],
                             e->values.v[e->vi]) < 0)
                rc = gw_error_set(err, "redis storage: out of memory");
            e->vi++;
        }
    }
    rs_buf_free(&key);
    return rc;
}

/* ---- the projects: gottwall:projects, and the keys before it ---- */

/*
 * Projects written before gottwall:projects existed (by an older version,
 * or by the original GottWall) are found by their {P}-metrics set: a SCAN
 * (MATCH *-metrics), a few steps per call, once per process: the original
 * layout has no list of projects, so nothing but a SCAN can find them.
 * Keys that hold ; : or | are not that set (an escaped project holds none
 * of them). Each step's finds are added to gottwall:projects.
 */
static int
rs_exp_seed_step(rs_state_t *s, rs_exp_t *e, gw_error_t *err)
{
    const char *argv[] = {"SCAN", e->seed_cursor, "MATCH", "*-metrics",
                          "COUNT", RS_EXP_COUNT};
    size_t lens[] = {4, strlen(e->seed_cursor), 5, 9, 5,
                     sizeof(RS_EXP_COUNT) - 1};
    rs_names_t found = {NULL, 0, 0, 0, ""};
    rs_buf_t name = {NULL, 0, 0, 0};
    const char **sargv = NULL;
    size_t *slens = NULL, i;
    redisReply *r;
    int rc;

    if ((rc = rs_call(s, 6, argv, lens, &r, "SCAN", err)) != GW_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len >= (int) sizeof(e->seed_cursor) ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        rc = rs_reply_error(s, r, "SCAN", err);
        freeReplyObject(r);
        return rc;
    }
    memcpy(e->seed_cursor, r->element[0]->str, (size_t) r->element[0]->len);
    e->seed_cursor[r->element[0]->len] = '\0';
    for (i = 0; i < r->element[1]->elements && rc == GW_OK; i++) {
        const redisReply *k = r->element[1]->element[i];
        size_t len = (size_t) k->len;

        if (k->type != REDIS_REPLY_STRING || len <= 8 ||
            memcmp(k->str + len - 8, "-metrics", 8) != 0 ||
            memchr(k->str, ';', len) || memchr(k->str, ':', len) ||
            memchr(k->str, '|', len))
            continue;
        name.len = 0;
        if (rs_buf_unescape(&name, k->str, len - 8) < 0)
            continue; /* not a name this storage could have written */
        if (rs_names_add(&found, name.p, name.len) < 0)
            rc = gw_error_set(err, "redis storage: out of memory");
    }
    freeReplyObject(r);
    if (rc == GW_OK && found.n > 0) {
        sargv = malloc((found.n + 2) * sizeof(*sargv));
        slens = malloc((found.n + 2) * sizeof(*slens));
        name.len = 0;
        rs_key_projects(&name);
        if (sargv == NULL || slens == NULL || name.oom) {
            rc = gw_error_set(err, "redis storage: out of memory");
        } else {
            sargv[0] = "SADD";
            slens[0] = 4;
            sargv[1] = name.p;
            slens[1] = name.len;
            for (i = 0; i < found.n; i++) {
                sargv[i + 2] = found.v[i];
                slens[i + 2] = strlen(found.v[i]);
            }
            if ((rc = rs_call(s, (int) found.n + 2, sargv, slens, &r,
                              "SADD", err)) == GW_OK)
                freeReplyObject(r);
        }
    }
    if (rc == GW_OK && strcmp(e->seed_cursor, "0") == 0)
        e->seeded = 1;
    free(sargv);
    free(slens);
    rs_names_clear(&found);
    rs_buf_free(&name);
    return rc;
}

/* ---- the script ---- */

/* EVALSHA of rs_exp_script with argv[0..2] left for EVALSHA, sha, "2"
 * (filled here); loads the script first, and again after NOSCRIPT. */
static int
rs_exp_eval(rs_state_t *s, rs_exp_t *e, int argc, const char **argv,
            size_t *lens, redisReply **out, gw_error_t *err)
{
    int rc, tries;

    for (tries = 0; tries < 2; tries++) {
        redisReply *r;

        if (e->sha[0] == '\0') {
            const char *largv[] = {"SCRIPT", "LOAD", rs_exp_script};
            size_t llens[] = {6, 4, sizeof(rs_exp_script) - 1};

            if ((rc = rs_call(s, 3, largv, llens, &r, "SCRIPT LOAD",
                              err)) != GW_OK)
                return rc;
            if (r->type != REDIS_REPLY_STRING || r->len != 40) {
                rc = rs_reply_error(s, r, "SCRIPT LOAD", err);
                freeReplyObject(r);
                return rc;
            }
            memcpy(e->sha, r->str, 40);
            e->sha[40] = '\0';
            freeReplyObject(r);
        }
        argv[0] = "EVALSHA";
        lens[0] = 7;
        argv[1] = e->sha;
        lens[1] = 40;
        argv[2] = "2";
        lens[2] = 1;
        if ((r = redisCommandArgv(s->c, argc, argv, lens)) == NULL)
            return rs_io_error(s, "expiry", err);
        if (r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            e->sha[0] = '\0';
            continue;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            rc = rs_reply_error(s, r, "expiry", err);
            freeReplyObject(r);
            return rc;
        }
        *out = r;
        return GW_OK;
    }
    return gw_error_set(err, "redis %s:%d: the expiry script keeps "
                        "vanishing (NOSCRIPT)", s->host, (int) s->port);
}

/* The first arguments of every op: keys, op, owner, lease. */
static void
rs_exp_head(rs_exp_t *e, gw_period_t period, const char *op, rs_buf_t *key,
            const char **argv, size_t *lens)
{
    key->len = 0;
    rs_buf_puts(key, "gottwall:expire:");
    rs_buf_puts(key, gw_period_name(period));
    argv[3] = key->p;
    lens[3] = key->len;
    argv[4] = "gottwall:expire:lock";
    lens[4] = strlen(argv[4]);
    argv[5] = op;
    lens[5] = strlen(op);
    argv[6] = e->owner;
    lens[6] = strlen(e->owner);
    argv[7] = RS_EXP_LEASE_MS;
    lens[7] = sizeof(RS_EXP_LEASE_MS) - 1;
}

/* Another process holds the lease: logs it (debug). 1 if so. */
static int
rs_exp_refused(rs_state_t *s, const redisReply *r)
{
    if (r->element[0]->integer != -1)
        return 0;
    gw_log_debug(s->ctx, "expiry: another process prunes (%s); leaving it",
                 r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
                     ? r->element[1]->str
                     : "?");
    return 1;
}

/* HSETs (HDEL for "") the n field/value pairs in fv into the pass's hash;
 * *lost when another process holds the lease. */
static int
rs_exp_set(rs_state_t *s, rs_exp_t *e, gw_period_t period, const char **fv,
           int n, int *lost, gw_error_t *err)
{
    const char *argv[8 + 24];
    size_t lens[8 + 24];
    rs_buf_t key = {NULL, 0, 0, 0};
    redisReply *r;
    int i, rc;

    rs_exp_head(e, period, "set", &key, argv, lens);
    for (i = 0; i < 2 * n && i < 24; i++) {
        argv[8 + i] = fv[i];
        lens[8 + i] = strlen(fv[i]);
    }
    if (key.oom) {
        rs_buf_free(&key);
        return gw_error_set(err, "redis storage: out of memory");
    }
    rc = rs_exp_eval(s, e, 8 + i, argv, lens, &r, err);
    rs_buf_free(&key);
    if (rc != GW_OK)
        return rc;
    *lost = rs_exp_refused(s, r);
    freeReplyObject(r);
    return GW_OK;
}

/* The resume position "P;M" or "P;M;F|V" (escaped names) into e->res. */
static void
rs_exp_parse_at(rs_exp_t *e, const char *at, size_t len)
{
    const char *end = at + len, *p = at, *sep;
    rs_buf_t b = {NULL, 0, 0, 0};
    int n = 0;

    while (p <= end && n < 4) {
        const char *stop = n == 2 ? "|" : ";";

        sep = memchr(p, stop[0], (size_t) (end - p));
        if (n == 3 || sep == NULL)
            sep = end;
        b.len = 0;
        if (rs_buf_unescape(&b, p, (size_t) (sep - p)) < 0 ||
            (e->res[n] = strdup(b.p ? b.p : "")) == NULL)
            break;
        n++;
        p = sep + 1;
        if (sep == end)
            break;
    }
    rs_buf_free(&b);
    e->res_n = n == 2 || n == 4 ? n : 0;
}

static int64_t
rs_exp_int(const redisReply *v, int *ok)
{
    char *endp;
    long long x;

    if (v->type != REDIS_REPLY_STRING)
        return *ok = 0;
    x = strtoll(v->str, &endp, 10);
    *ok = *endp == '\0' && v->len > 0;
    return (int64_t) x;
}

/* "2026-11-26T13:00:00Z" */
static void
rs_exp_iso(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t) t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Starts (or resumes) a pass: reads the pass's hash. No pass under way
 * and the last one cut at or after before: nothing to do (*idle). A pass
 * under way (this process or another was stopped during it): goes on
 * after its `at`, with the lower of the two cuts. Else a new pass from
 * the previous pass's cut.
 */
static int
rs_exp_begin(rs_state_t *s, rs_exp_t *e, gw_period_t period, int64_t before,
             int *idle, gw_error_t *err)
{
    const char *argv[8];
    size_t lens[8], i;
    rs_buf_t key = {NULL, 0, 0, 0};
    const redisReply *h;
    redisReply *r;
    int64_t was = 0, done = 0;
    int have_was = 0, have_done = 0, ok, lost = 0, rc;
    const char *at = NULL;
    size_t atlen = 0;
    char b1[24], b2[24], when[32];

    rs_exp_head(e, period, "state", &key, argv, lens);
    rc = key.oom ? gw_error_set(err, "redis storage: out of memory")
                 : rs_exp_eval(s, e, 8, argv, lens, &r, err);
    rs_buf_free(&key);
    if (rc != GW_OK)
        return rc;
    if (rs_exp_refused(s, r) || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        *idle = 1;
        return GW_OK;
    }
    h = r->element[1];
    e->have_from = 0;
    for (i = 0; i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str;
        const redisReply *v = h->element[i + 1];

        if (h->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(f, "before") == 0)
            was = rs_exp_int(v, &have_was);
        else if (strcmp(f, "done") == 0)
            done = rs_exp_int(v, &have_done);
        else if (strcmp(f, "from") == 0) {
            e->from = rs_exp_int(v, &ok);
            e->have_from = ok;
        } else if (strcmp(f, "at") == 0 && v->type == REDIS_REPLY_STRING) {
            at = v->str;
            atlen = (size_t) v->len;
        }
    }
    rs_exp_reset(e);
    e->period = (int) period;
    if (!have_was) {
        if (have_done && done >= before) {
            freeReplyObject(r);
            *idle = 1;
            return GW_OK;
        }
        e->before = before;
        e->have_from = have_done;
        e->from = done;
        snprintf(b1, sizeof(b1), "%lld", (long long) before);
        snprintf(b2, sizeof(b2), "%lld", (long long) done);
        {
            const char *fv[] = {"before", b1, "from", have_done ? b2 : "",
                                "at", ""};

            rc = rs_exp_set(s, e, period, fv, 3, &lost, err);
        }
    } else {
        e->before = was < before ? was : before;
        if (at != NULL)
            rs_exp_parse_at(e, at, atlen);
        rs_exp_iso(e->before, when, sizeof(when));
        gw_log_info(s->ctx, "expiry: resuming the removal of %s buckets "
                    "before %s after %.*s", gw_period_name(period), when,
                    at != NULL ? (int) atlen : 7,
                    at != NULL ? at : "nothing");
        if (e->before != was) {
            const char *fv[] = {"before", b1};

            snprintf(b1, sizeof(b1), "%lld", (long long) e->before);
            rc = rs_exp_set(s, e, period, fv, 1, &lost, err);
        }
    }
    freeReplyObject(r);
    if (rc == GW_OK && lost)
        *idle = 1;
    else if (rc == GW_OK)
        e->active = 1;
    return rc;
}

/* The fields of the buckets in [from, before): nrange of them, or -1 when
 * the previous cut is unknown or further back than RS_EXP_RANGE_MAX. */
static int
rs_exp_range(rs_exp_t *e, gw_period_t period, int64_t before)
{
    int64_t b;
    long n = 0;

    if (e->range_for == before)
        return 0;
    e->range_for = before;
    e->nrange = -1;
    if (!e->have_from)
        return 0;
    if (e->range == NULL &&
        (e->range = malloc(RS_EXP_RANGE_MAX * sizeof(*e->range))) == NULL)
        return -1;
    for (b = rs_bucket_align_up(period, e->from); b < before;
         b = rs_bucket_next(period, b)) {
        if (n == RS_EXP_RANGE_MAX)
            return 0;
        snprintf(e->range[n++], sizeof(e->range[0]), "%lld", (long long) b);
    }
    e->nrange = n;
    return 0;
}

/* One script call on the queued series; *lost when another process holds
 * the lease. */
static int
rs_exp_run(rs_state_t *s, rs_exp_t *e, gw_period_t period, int64_t before,
           int *lost, gw_error_t *err)
{
    size_t nq = e->qn - e->qhead, n, i, argc;
    const char **argv;
    size_t *lens;
    rs_buf_t key = {NULL, 0, 0, 0};
    char cut[24], kfirst[24], nrange[24];
    redisReply *r;
    int rc;

    if (nq > RS_EXP_SERIES)
        nq = RS_EXP_SERIES;
    n = 14 + (e->nrange > 0 ? (size_t) e->nrange : 0) + nq * 4;
    argv = malloc(n * sizeof(*argv));
    lens = malloc(n * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return gw_error_set(err, "redis storage: out of memory");
    }
    rs_exp_head(e, period, "prune", &key, argv, lens);
    snprintf(cut, sizeof(cut), "%lld", (long long) before);
    snprintf(kfirst, sizeof(kfirst), "%ld", e->kfirst);
    snprintf(nrange, sizeof(nrange), "%ld", e->nrange);
    argv[8] = cut;
    argv[9] = gw_period_name(period);
    argv[10] = RS_EXP_BUDGET_S;
    argv[11] = e->hcursor;
    argv[12] = kfirst;
    argv[13] = nrange;
    argc = 14;
    for (i = 0; e->nrange > 0 && i < (size_t) e->nrange; i++)
        argv[argc++] = e->range[i];
    for (i = 0; i < nq; i++) {
        const rs_item_t *it = &e->q[e->qhead + i];

        argv[argc++] = it->base;
        argv[argc++] = it->suffix;
        argv[argc++] = it->setkey;
        argv[argc++] = it->member;
    }
    for (i = 8; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rc = key.oom ? gw_error_set(err, "redis storage: out of memory")
                 : rs_exp_eval(s, e, (int) argc, argv, lens, &r, err);
    free(argv);
    free(lens);
    rs_buf_free(&key);
    if (rc != GW_OK)
        return rc;
    if ((*lost = rs_exp_refused(s, r)) != 0) {
        freeReplyObject(r);
        return GW_OK;
    }
    if (r->elements != 5 || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[2]->len >= (int) sizeof(e->hcursor) ||
        r->element[3]->type != REDIS_REPLY_INTEGER ||
        r->element[4]->type != REDIS_REPLY_INTEGER ||
        r->element[0]->integer < 0 || (size_t) r->element[0]->integer > nq) {
        rc = rs_reply_error(s, r, "expiry", err);
        freeReplyObject(r);
        return rc;
    }
    e->series += (uint64_t) r->element[0]->integer;
    e->fields += (uint64_t) r->element[3]->integer;
    e->dropped += (uint64_t) r->element[4]->integer;
    rs_exp_drop_items(e, (size_t) r->element[0]->integer);
    e->kfirst = r->element[1]->integer > 0 ? (long) r->element[1]->integer
                                           : 1;
    memcpy(e->hcursor, r->element[2]->str, (size_t) r->element[2]->len);
    e->hcursor[r->element[2]->len] = '\0';
    freeReplyObject(r);
    return GW_OK;
}

/* The pass is over: done = its cut, and its figures, in the pass's hash. */
static int
rs_exp_finish(rs_state_t *s, rs_exp_t *e, gw_period_t period, int *lost,
              gw_error_t *err)
{
    char v[6][32], when[32];
    const char *fv[] = {"done", v[0], "before", "", "from", "", "at", "",
                        "last_series", v[1], "last_fields", v[2],
                        "last_values", v[3], "last_calls", v[4],
                        "last_longest_ms", v[5]};
    int rc;

    snprintf(v[0], sizeof(v[0]), "%lld", (long long) e->before);
    snprintf(v[1], sizeof(v[1]), "%llu", (unsigned long long) e->series);
    snprintf(v[2], sizeof(v[2]), "%llu", (unsigned long long) e->fields);
    snprintf(v[3], sizeof(v[3]), "%llu", (unsigned long long) e->dropped);
    snprintf(v[4], sizeof(v[4]), "%llu", (unsigned long long) e->calls);
    snprintf(v[5], sizeof(v[5]), "%.3f", e->longest_ms);
    rc = rs_exp_set(s, e, period, fv, 9, lost, err);
    if (rc == GW_OK && !*lost) {
        rs_exp_iso(e->before, when, sizeof(when));
        gw_log_debug(s->ctx, "expiry: %s buckets before %s removed: %llu "
                     "series walked, %llu fields and %llu filter values "
                     "removed, %llu calls, the longest %.1f ms",
                     gw_period_name(period), when,
                     (unsigned long long) e->series,
                     (unsigned long long) e->fields,
                     (unsigned long long) e->dropped,
                     (unsigned long long) e->calls, e->longest_ms);
    }
    return rc;
}

static rs_exp_t *
rs_exp_get(rs_state_t *s)
{
    rs_exp_t *e = s->exp;
    char host[64] = "";
    unsigned long long rnd = 0;
    FILE *f;

    if (e != NULL)
        return e;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    gethostname(host, sizeof(host) - 1);
    if ((f = fopen("/dev/urandom", "rb")) != NULL) {
        if (fread(&rnd, sizeof(rnd), 1, f) != 1)
            rnd = 0;
        fclose(f);
    }
    snprintf(e->owner, sizeof(e->owner), "%s:%ld:%016llx", host,
             (long) getpid(), rnd ^ (unsigned long long) time(NULL));
    e->period = -1;
    rs_exp_reset(e);
    s->exp = e;
    return e;
}

/* Gives the lease back (a clean stop), so that the next process, or
 * another, need not wait for it to lapse. */
static void
rs_exp_release(rs_state_t *s)
{
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "  return redis.call('DEL', KEYS[1])\n"
        "end\n"
        "return 0\n";
    const char *argv[] = {"EVAL", script, "1", "gottwall:expire:lock",
                          s->exp->owner};
    size_t lens[] = {4, sizeof(script) - 1, 1, 20, strlen(s->exp->owner)};
    gw_error_t err;
    redisReply *r;

    if (s->c != NULL && s->exp->sha[0] != '\0' &&
        rs_call(s, 5, argv, lens, &r, "EVAL", &err) == GW_OK)
        freeReplyObject(r);
}

void
rs_exp_free(rs_state_t *s)
{
    if (s->exp == NULL)
        return;
    rs_exp_release(s);
    rs_exp_reset(s->exp);
    free(s->exp->q);
    free(s->exp->range);
    free(s->exp);
    s->exp = NULL;
}

/*
 * The op (gw_storage_ops_t.expire): one slice of the pass per call. Every
 * failure is GW_ERR (the core retries at the next interval, and the pass
 * resumes from Redis' `at`), never GW_AGAIN, which would mean "call again
 * in 10 ms" even while Redis is down.
 */
int
rs_expire(void *state, gw_period_t period, int64_t before, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_exp_t *e;
    double t0 = rs_mono_ms();
    int steps = RS_EXP_STEPS, rc, idle = 0, lost = 0;

    if ((unsigned) period >= GW_PERIOD_ALL)
        return gw_error_set(err, "redis storage: the %s period has no "
                            "retention", gw_period_name(period));
    if ((e = rs_exp_get(s)) == NULL)
        return gw_error_set(err, "redis storage: out of memory");
    if ((rc = rs_connect(s, err)) != GW_OK)
        return GW_ERR;
    if (!e->seeded) {
        while (!e->seeded && steps-- > 0)
            if ((rc = rs_exp_seed_step(s, e, err)) != GW_OK)
                goto fail;
        if (!e->seeded)
            goto again;
    }
    if (e->period != (int) period || !e->active) {
        if ((rc = rs_exp_begin(s, e, period, before, &idle, err)) != GW_OK)
            goto fail;
        if (idle) {
            rs_exp_reset(e);
            return GW_OK;
        }
    } else if (before < e->before) {
        char b1[24];
        const char *fv[] = {"before", b1};

        e->before = before;
        snprintf(b1, sizeof(b1), "%lld", (long long) before);
        if ((rc = rs_exp_set(s, e, period, fv, 1, &lost, err)) != GW_OK)
            goto fail;
    }
    if (!lost && rs_exp_range(e, period, before) < 0) {
        rc = gw_error_set(err, "redis storage: out of memory");
        goto fail;
    }
    if (!lost && (rc = rs_exp_fill(s, e, &steps, err)) != GW_OK)
        goto fail;
    if (!lost && e->qn > e->qhead &&
        (rc = rs_exp_run(s, e, period, before, &lost, err)) != GW_OK)
        goto fail;
    if (!lost && e->end && e->qn == e->qhead) {
        e->calls++;
        if (rs_mono_ms() - t0 > e->longest_ms)
            e->longest_ms = rs_mono_ms() - t0;
        if ((rc = rs_exp_finish(s, e, period, &lost, err)) != GW_OK)
            goto fail;
        rs_exp_reset(e);
        return GW_OK;
    }
    if (lost) {
        rs_exp_reset(e);
        return GW_OK;
    }
again:
    e->calls++;
    if (rs_mono_ms() - t0 > e->longest_ms)
        e->longest_ms = rs_mono_ms() - t0;
    return GW_AGAIN;
fail:
    /* Start over from what Redis keeps (`at`) at the next call. */
    rs_exp_reset(e);
    e->period = -1;
    return GW_ERR;
}
