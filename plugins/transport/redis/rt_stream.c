/*
 * plugins/transport/redis/rt_stream.c: MODE = "stream", a Redis Streams
 * consumer group with acknowledgement after storage.
 *
 * Producers XADD entries with the fields project, auth (a GottWallS3
 * header whose signed body is the event field's bytes) and event (one JSON
 * event or an array of them). Every aggregator reads with
 * XREADGROUP GROUP {GROUP} {CONSUMER} COUNT {BATCH} BLOCK ... STREAMS
 * {STREAM} > on its own connection, verifies and submits each entry, and
 * XACKs an entry only after the flush holding its events was stored
 * (host->on_stored). Until then the entry id is "in flight": claimed
 * entries already in flight are not processed twice, and their idle time is
 * reset (XCLAIM ... JUSTID) every CLAIM_IDLE_MS / 3 so that no other
 * aggregator takes them while this one is alive and connected. Entries left
 * pending by a dead aggregator are taken over with XAUTOCLAIM once idle
 * longer than CLAIM_IDLE_MS.
 *
 * Entries that can never be stored (missing fields, bad signature, invalid
 * JSON) are counted and acknowledged with the rest, so they do not come
 * back forever. An entry the core cannot take now (submit_json GW_AGAIN:
 * MAX_PENDING_SERIES, out of memory) waits in the process, in flight, and
 * is submitted again every PERIODIC_PROCESSOR_TIME; nothing more is read
 * or taken over meanwhile, so the stream itself holds the backlog.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "rt.h"
#include "../../common/keyhash.h"

#define RT_HEARTBEAT_CHUNK 500

static void rt_read(rt_state_t *s);
static void rt_claim(rt_state_t *s, const char *start);

/* ---- the in-flight id set ---- */

static int
rt_inflight_has(rt_state_t *s, const char *id)
{
    uint64_t h = pc_hash(id, strlen(id));
    rt_idnode_t *n;

    if (s->inflight_cap == 0)
        return 0;
    for (n = s->inflight[h & (s->inflight_cap - 1)]; n; n = n->next)
        if (n->hash == h && strcmp(n->id, id) == 0)
            return 1;
    return 0;
}

static int
rt_inflight_add(rt_state_t *s, const char *id)
{
    uint64_t h = pc_hash(id, strlen(id));
    size_t len = strlen(id), i;
    rt_idnode_t *n;

    if (s->ninflight + 1 > s->inflight_cap) {
        size_t cap = s->inflight_cap ? s->inflight_cap * 2 : 1024;
        rt_idnode_t **tab = calloc(cap, sizeof(*tab));

        if (tab == NULL)
            return -1;
        for (i = 0; i < s->inflight_cap; i++) {
            while ((n = s->inflight[i]) != NULL) {
                s->inflight[i] = n->next;
                n->next = tab[n->hash & (cap - 1)];
                tab[n->hash & (cap - 1)] = n;
            }
        }
        free(s->inflight);
        s->inflight = tab;
        s->inflight_cap = cap;
    }
    n = malloc(sizeof(*n) + len + 1);
    if (n == NULL)
        return -1;
    n->hash = h;
    memcpy(n->id, id, len + 1);
    n->next = s->inflight[h & (s->inflight_cap - 1)];
    s->inflight[h & (s->inflight_cap - 1)] = n;
    s->ninflight++;
    return 0;
}

static void
rt_inflight_del(rt_state_t *s, const char *id)
{
    uint64_t h = pc_hash(id, strlen(id));
    rt_idnode_t **pp, *n;

    if (s->inflight_cap == 0)
        return;
    for (pp = &s->inflight[h & (s->inflight_cap - 1)]; (n = *pp); pp = &n->next) {
        if (n->hash == h && strcmp(n->id, id) == 0) {
            *pp = n->next;
            free(n);
            s->ninflight--;
            return;
        }
    }
}

/* ---- groups of ids ---- */

static void
rt_group_free(rt_group_t *g)
{
    size_t i;

    if (g == NULL)
        return;
    for (i = 0; i < g->n; i++)
        free(g->ids[i]);
    free(g->ids);
    free(g);
}

/* Remembers id as processed and in flight, in the group being filled. */
static int
rt_acc_add(rt_state_t *s, const char *id)
{
    rt_group_t *g = s->acc;

    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL)
            return -1;
        g->s = s;
        s->acc = g;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **ids = realloc(g->ids, cap * sizeof(*ids));

        if (ids == NULL)
            return -1;
        g->ids = ids;
        g->cap = cap;
    }
    g->ids[g->n] = strdup(id);
    if (g->ids[g->n] == NULL)
        return -1;
    g->n++;
    return rt_inflight_add(s, id);
}

static void
rt_retry_free(rt_retry_t *r)
{
    free(r->id);
    free(r->project);
    free(r->event);
    free(r);
}

/*
 * Keeps entry id, the last rt_acc_add took, for later: the core cannot take
 * it now (GW_AGAIN: MAX_PENDING_SERIES, out of memory). It stays in flight
 * (its idle time kept short, not acknowledged, not taken by another
 * aggregator), and reading stops until rt_retry_run has submitted it, so
 * at most one read's entries wait. Sent again from Redis instead, its
 * nonce would be refused as a replay. why: the core's reason, for the
 * first one.
 */
static void
rt_retry_push(rt_state_t *s, const char *id, const char *project,
              const char *event, size_t len, const char *why)
{
    rt_group_t *g = s->acc;
    rt_retry_t *r = calloc(1, sizeof(*r));

    free(g->ids[--g->n]); /* out of acc, still in flight */
    if (r == NULL || (r->id = strdup(id)) == NULL ||
        (r->project = strdup(project)) == NULL ||
        (r->event = malloc(len + 1)) == NULL) {
        /* Left pending in Redis: taken over after CLAIM_IDLE_MS. */
        if (r != NULL)
            rt_retry_free(r);
        rt_inflight_del(s, id);
        gw_log_error(s->ctx, "out of memory keeping stream entry %s: left "
                     "pending", id);
        return;
    }
    memcpy(r->event, event, len);
    r->event[len] = '\0';
    r->len = len;
    if (s->retry_tail != NULL)
        s->retry_tail->next = r;
    else
        s->retry = r;
    s->retry_tail = r;
    if (why != NULL)
        gw_log_notice(s->ctx, "stream entry %s waits, and reading stops "
                      "until it is taken: %s", id, why);
}

static void
rt_group_done(rt_state_t *s, rt_group_t *g)
{
    size_t i;

    for (i = 0; i < g->n; i++)
        rt_inflight_del(s, g->ids[i]);
    rt_group_free(g);
}

/* ---- XACK ---- */

static int
rt_xack_argv(rt_state_t *s, rt_group_t *g, const char ***argv,
             size_t **argvlen)
{
    size_t i, n = g->n + 3;

    *argv = malloc(n * sizeof(**argv));
    *argvlen = malloc(n * sizeof(**argvlen));
    if (*argv == NULL || *argvlen == NULL) {
        free(*argv);
        free(*argvlen);
        return -1;
    }
    (*argv)[0] = "XACK";
    (*argv)[1] = s->stream;
    (*argv)[2] = s->group;
    for (i = 0; i < g->n; i++)
        (*argv)[i + 3] = g->ids[i];
    for (i = 0; i < n; i++)
        (*argvlen)[i] = strlen((*argv)[i]);
    return (int) n;
}

/* After the loop has stopped: a short blocking connection just for the
 * final XACKs, so that a clean stop leaves nothing pending. */
static int
rt_xack_sync(rt_state_t *s, rt_group_t *g)
{
    struct timeval tv = {2, 0};
    redisReply *r;
    const char **argv;
    size_t *argvlen;
    int argc, ok = 0;

    if (s->sync == NULL) {
        s->sync = redisConnectWithTimeout(s->host_name, (int) s->port, tv);
        if (s->sync == NULL || s->sync->err)
            goto fail;
        redisSetTimeout(s->sync, tv);
        if (s->password != NULL && *s->password) {
            r = redisCommand(s->sync, "AUTH %s", s->password);
            if (r == NULL || r->type == REDIS_REPLY_ERROR) {
                if (r)
                    freeReplyObject(r);
                goto fail;
            }
            freeReplyObject(r);
        }
        if (s->db != 0) {
            r = redisCommand(s->sync, "SELECT %lld", (long long) s->db);
            if (r == NULL || r->type == REDIS_REPLY_ERROR) {
                if (r)
                    freeReplyObject(r);
                goto fail;
            }
            freeReplyObject(r);
        }
    }
    argc = rt_xack_argv(s, g, &argv, &argvlen);
    if (argc < 0)
        return -1;
    r = redisCommandArgv(s->sync, argc, argv, argvlen);
    free(argv);
    free(argvlen);
    ok = (r != NULL && r->type == REDIS_REPLY_INTEGER);
    if (r)
        freeReplyObject(r);
    if (ok)
        return 0;
fail:
    gw_log_warning(s->ctx, "could not XACK %zu stored stream entries at "
                   "shutdown (%s); another aggregator will claim them after "
                   "CLAIM_IDLE_MS and count them again", g->n,
                   s->sync && s->sync->err ? s->sync->errstr : "redis error");
    if (s->sync != NULL) {
        redisFree(s->sync);
        s->sync = NULL;
    }
    return -1;
}

static void
rt_unacked_push(rt_state_t *s, rt_group_t *g)
{
    g->next = s->unacked;
    s->unacked = g;
}

static void
rt_xack_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;
    rt_group_t *g = priv;

    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        rt_group_done(s, g);
        return;
    }
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        gw_log_warning(s->ctx, "XACK %s: %s", s->stream, r->str);
    rt_unacked_push(s, g); /* again when the connection is back */
}

static void
rt_xack(rt_state_t *s, rt_group_t *g)
{
    const char **argv;
    size_t *argvlen;
    int argc;

    if (s->stopping) {
        rt_xack_sync(s, g);
        rt_group_done(s, g);
        return;
    }
    argc = rt_xack_argv(s, g, &argv, &argvlen);
    if (argc < 0 ||
        rt_link_cmd(&s->cmd, rt_xack_cb, g, argc, argv, argvlen) != GW_OK)
        rt_unacked_push(s, g);
    if (argc >= 0) {
        free(argv);
        free(argvlen);
    }
}

static void
rt_xack_unacked(rt_state_t *s)
{
    rt_group_t *g = s->unacked;

    s->unacked = NULL;
    while (g != NULL) {
        rt_group_t *next = g->next;

        g->next = NULL;
        rt_xack(s, g);
        g = next;
    }
}

/* ---- waiting for storage ---- */

static void rt_wait_next(rt_state_t *s);

static void
rt_stored_cb(void *arg, int ok)
{
    rt_group_t *g = arg;
    rt_state_t *s = g->s;

    if (s->waiting == g)
        s->waiting = NULL;
    if (ok) {
        rt_xack(s, g);
    } else {
        gw_log_warning(s->ctx, "%zu stream entries were not stored; they stay "
                       "pending, and an aggregator will claim them after "
                       "CLAIM_IDLE_MS", g->n);
        rt_group_done(s, g);
    }
    if (!s->stopping) {
        rt_wait_next(s);
        rt_read(s); /* reading pauses while MAX_INFLIGHT entries wait */
    }
}

/* Hands the filled group to on_stored, one at a time: while one waits,
 * the next fills, so a flush covers many reads. */
static void
rt_wait_group(rt_state_t *s, rt_group_t *g)
{
    gw_error_t err;

    if (s->host->on_stored(s->ctx, rt_stored_cb, g, &err) != GW_OK) {
        gw_log_error(s->ctx, "cannot wait for storage: %s; %zu stream "
                     "entries stay pending", err.msg, g->n);
        if (s->waiting == g)
            s->waiting = NULL;
        rt_group_done(s, g);
    }
}

static void
rt_wait_next(rt_state_t *s)
{
    rt_group_t *g = s->acc;

    if (s->waiting != NULL || g == NULL || g->n == 0)
        return;
    s->acc = NULL;
    s->waiting = g;
    rt_wait_group(s, g);
}

/* ---- entries ---- */

static const redisReply *
rt_field(const redisReply *fields, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];

        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    }
    return NULL;
}

/* One [id, [field, value, ...]] entry. */
static void
rt_entry(rt_state_t *s, const redisReply *e)
{
    const redisReply *id, *fields, *project, *auth, *event;
    const char *authed = NULL;
    gw_auth_req_t req;
    gw_error_t err;
    int rc;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return;
    id = e->element[0];
    fields = e->element[1];
    if (rt_inflight_has(s, id->str))
        return; /* ours already: its XACK follows its storage */
    if (rt_acc_add(s, id->str) != 0) {
        gw_log_error(s->ctx, "out of memory for stream entry ids");
        return;
    }
    if (fields->type != REDIS_REPLY_ARRAY)
        return; /* deleted from the stream: only acknowledged */
    project = rt_field(fields, "project");
    auth = rt_field(fields, "auth");
    event = rt_field(fields, "event");
    if (project == NULL || auth == NULL || event == NULL) {
        s->host->count(s->ctx, GW_COUNTER_RECEIVED, NULL, 1);
        s->host->count(s->ctx, GW_COUNTER_DROPPED, "bad_entry", 1);
        gw_log_debug(s->ctx, "stream entry %s has no %s field", id->str,
                     project == NULL ? "project"
                                     : (auth == NULL ? "auth" : "event"));
        return;
    }
    memset(&req, 0, sizeof(req));
    req.schemes = GW_AUTH_S3 | GW_AUTH_S4;
    req.scope = "redis-stream";
    req.scope_len = 12;
    req.header = auth->str;
    req.header_len = auth->len;
    req.project = project->str;
    req.body = event->str;
    req.body_len = event->len;
    if (s->host->auth_check(s->ctx, &req, &authed, &err) != GW_OK) {
        gw_log_debug(s->ctx, "stream entry %s refused: %s", id->str, err.msg);
        return;
    }
    /* Entries keep their order: behind one that waits, all wait. */
    rc = s->retry != NULL
             ? GW_AGAIN
             : s->host->submit_json(s->ctx, authed, GW_ACTION_DEFAULT,
                                    event->str, event->len, GW_SUBMIT_BATCH,
                                    &err);
    if (rc == GW_AGAIN)
        rt_retry_push(s, id->str, authed, event->str, event->len,
                      s->retry != NULL ? NULL : err.msg);
    else if (rc != GW_OK)
        gw_log_debug(s->ctx, "stream entry %s refused: %s", id->str, err.msg);
}

/* Submits the waiting entries in order until the core says not yet. Each
 * one taken joins the ids acknowledged after their flush is stored. */
static void
rt_retry_run(rt_state_t *s)
{
    rt_retry_t *r;
    gw_error_t err;
    int rc;

    while ((r = s->retry) != NULL) {
        rc = s->host->submit_json(s->ctx, r->project, GW_ACTION_DEFAULT,
                                  r->event, r->len, GW_SUBMIT_BATCH, &err);
        if (rc == GW_AGAIN)
            return;
        if (rc != GW_OK)
            gw_log_debug(s->ctx, "stream entry %s refused: %s", r->id,
                         err.msg);
        s->retry = r->next;
        if (s->retry == NULL)
            s->retry_tail = NULL;
        rt_inflight_del(s, r->id);
        if (rt_acc_add(s, r->id) != 0)
            gw_log_error(s->ctx, "out of memory for stream entry ids");
        rt_retry_free(r);
    }
    gw_log_info(s->ctx, "the waiting stream entries are taken: reading "
                "again");
}

/* ---- XREADGROUP ---- */

static void
rt_read_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;
    size_t i, j;

    (void) priv;
    s->reading = 0;
    if (r == NULL || s->stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            /* Redis lost the group (restarted without persistence). */
            s->group_ready = 0;
            if (s->cmd.ready)
                rt_stream_periodic(s);
            return;
        }
        gw_log_warning(s->ctx, "XREADGROUP %s: %s", s->stream, r->str);
        rt_link_drop(l, "XREADGROUP failed");
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            redisReply *st = r->element[i];

            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (j = 0; j < st->element[1]->elements; j++)
                rt_entry(s, st->element[1]->element[j]);
        }
        rt_wait_next(s);
    }
    rt_read(s);
}

static void
rt_read(rt_state_t *s)
{
    char count[24], block[24];
    const char *argv[10];
    size_t argvlen[10];
    int i;

    if (s->stopping || s->reading || !s->reader.ready || !s->group_ready ||
        s->ninflight >= (size_t) s->max_inflight || s->retry != NULL)
        return;
    snprintf(count, sizeof(count), "%lld", (long long) s->batch);
    snprintf(block, sizeof(block), "%lld", (long long) s->block_ms);
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = s->group;
    argv[3] = s->consumer;
    argv[4] = "COUNT";
    argv[5] = count;
    argv[6] = "BLOCK";
    argv[7] = block;
    argv[8] = "STREAMS";
    argv[9] = s->stream;
    for (i = 0; i < 10; i++)
        argvlen[i] = strlen(argv[i]);
    {
        const char *all[11];
        size_t alllen[11];

        memcpy(all, argv, sizeof(argv));
        memcpy(alllen, argvlen, sizeof(argvlen));
        all[10] = ">";
        alllen[10] = 1;
        if (rt_link_cmd(&s->reader, rt_read_cb, NULL, 11, all, alllen) ==
            GW_OK)
            s->reading = 1;
    }
}

/* ---- XAUTOCLAIM: entries a dead aggregator left pending ---- */

static void
rt_claim_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;
    size_t i, before;

    (void) priv;
    s->claiming = 0;
    if (r == NULL || s->stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            s->group_ready = 0;
            return;
        }
        gw_log_error(s->ctx, "XAUTOCLAIM %s: %s (entries of a dead aggregator "
                     "are not taken over: this needs Redis >= 6.2)",
                     s->stream, r->str);
        s->claim_off = 1;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    before = s->acc ? s->acc->n : 0;
    for (i = 0; i < r->element[1]->elements; i++)
        rt_entry(s, r->element[1]->element[i]);
    if ((s->acc ? s->acc->n : 0) > before)
        gw_log_notice(s->ctx, "took over %zu stream entries pending longer "
                      "than CLAIM_IDLE_MS (%lld ms)",
                      (s->acc ? s->acc->n : 0) - before,
                      (long long) s->claim_idle_ms);
    rt_wait_next(s);
    if (strcmp(r->element[0]->str, "0-0") != 0)
        rt_claim(s, r->element[0]->str);
}

static void
rt_claim(rt_state_t *s, const char *start)
{
    char idle[24], count[24];
    const char *argv[8];
    size_t argvlen[8];
    int i;

    if (s->claiming || s->claim_off || !s->cmd.ready || !s->group_ready ||
        s->stopping || s->ninflight >= (size_t) s->max_inflight)
        return;
    snprintf(idle, sizeof(idle), "%lld", (long long) s->claim_idle_ms);
    snprintf(count, sizeof(count), "%lld", (long long) s->batch);
    argv[0] = "XAUTOCLAIM";
    argv[1] = s->stream;
    argv[2] = s->group;
    argv[3] = s->consumer;
    argv[4] = idle;
    argv[5] = start;
    argv[6] = "COUNT";
    argv[7] = count;
    for (i = 0; i < 8; i++)
        argvlen[i] = strlen(argv[i]);
    if (rt_link_cmd(&s->cmd, rt_claim_cb, NULL, 8, argv, argvlen) == GW_OK)
        s->claiming = 1;
}

/* Resets the idle time of every entry still in flight here, so that it is
 * not claimed by another aggregator while this one waits for storage. */
static void
rt_heartbeat(rt_state_t *s)
{
    const char **argv;
    size_t *argvlen, i, n = 0;

    if (s->ninflight == 0 || !s->cmd.ready)
        return;
    argv = malloc((RT_HEARTBEAT_CHUNK + 6) * sizeof(*argv));
    argvlen = malloc((RT_HEARTBEAT_CHUNK + 6) * sizeof(*argvlen));
    if (argv == NULL || argvlen == NULL)
        goto out;
    for (i = 0; i < s->inflight_cap; i++) {
        rt_idnode_t *node;

        for (node = s->inflight[i]; node; node = node->next) {
            argv[5 + n++] = node->id;
            if (n == RT_HEARTBEAT_CHUNK) {
                argv[0] = "XCLAIM";
                argv[1] = s->stream;
                argv[2] = s->group;
                argv[3] = s->consumer;
                argv[4] = "0";
                argv[5 + n] = "JUSTID";
                for (size_t k = 0; k < n + 6; k++)
                    argvlen[k] = strlen(argv[k]);
                rt_link_cmd(&s->cmd, NULL, NULL, (int) n + 6, argv, argvlen);
                n = 0;
            }
        }
    }
    if (n > 0) {
        argv[0] = "XCLAIM";
        argv[1] = s->stream;
        argv[2] = s->group;
        argv[3] = s->consumer;
        argv[4] = "0";
        argv[5 + n] = "JUSTID";
        for (i = 0; i < n + 6; i++)
            argvlen[i] = strlen(argv[i]);
        rt_link_cmd(&s->cmd, NULL, NULL, (int) n + 6, argv, argvlen);
    }
out:
    free(argv);
    free(argvlen);
}

/* ---- the group and the links ---- */

static void
rt_group_create_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;

    (void) priv;
    if (r == NULL || s->stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        gw_log_error(s->ctx, "XGROUP CREATE %s %s: %s", s->stream, s->group,
                     r->str);
        return;
    }
    if (!s->group_ready)
        gw_log_info(s->ctx, "reading stream %s as consumer %s of group %s",
                    s->stream, s->consumer, s->group);
    s->group_ready = 1;
    rt_read(s);
    rt_claim(s, "0-0");
}

static void
rt_group_create(rt_state_t *s)
{
    const char *argv[6] = {"XGROUP", "CREATE", s->stream, s->group, "0",
                           "MKSTREAM"};
    size_t argvlen[6];
    int i;

    for (i = 0; i < 6; i++)
        argvlen[i] = strlen(argv[i]);
    rt_link_cmd(&s->cmd, rt_group_create_cb, NULL, 6, argv, argvlen);
}

static void
rt_cmd_ready(rt_link_t *l)
{
    rt_state_t *s = l->s;

    rt_group_create(s);
    rt_xack_unacked(s);
}

static void
rt_reader_ready(rt_link_t *l)
{
    rt_read(l->s);
}

void
rt_stream_start(rt_state_t *s)
{
    rt_link_init(s, &s->reader, "reader",
                 (s->block_ms + s->command_timeout_ms) / 1000.0,
                 rt_reader_ready, NULL);
    rt_link_init(s, &s->cmd, "commands", s->command_timeout_ms / 1000.0,
                 rt_cmd_ready, NULL);
    rt_link_start(&s->cmd);
    rt_link_start(&s->reader);
}

void
rt_stream_periodic(rt_state_t *s)
{
    ev_tstamp now = ev_now(s->loop);

    if (!s->cmd.ready)
        return;
    if (!s->group_ready) {
        rt_group_create(s);
        return;
    }
    if (s->unacked != NULL)
        rt_xack_unacked(s);
    if (now - s->last_heartbeat >= s->claim_idle_ms / 3000.0) {
        s->last_heartbeat = now;
        rt_heartbeat(s);
    }
    if (s->retry != NULL)
        rt_retry_run(s);
    if (s->retry != NULL)
        return; /* neither take over nor read more while some wait */
    rt_claim(s, "0-0");
    rt_read(s);
}

/* Called with s->stopping set, after the links were closed and before the
 * daemon's final flush: whatever was processed but not yet handed to
 * on_stored is handed now, and stored-but-unacknowledged ids are
 * acknowledged with a blocking connection. */
void
rt_stream_stop(rt_state_t *s)
{
    rt_group_t *g;

    rt_xack_unacked(s);
    g = s->acc;
    s->acc = NULL;
    if (g != NULL && g->n > 0)
        rt_wait_group(s, g);
    else
        rt_group_free(g);
}

void
rt_stream_free(rt_state_t *s)
{
    size_t i;

    rt_group_free(s->acc);
    s->acc = NULL;
    /* Never submitted: pending in Redis, taken over after CLAIM_IDLE_MS. */
    while (s->retry != NULL) {
        rt_retry_t *r = s->retry;

        s->retry = r->next;
        rt_retry_free(r);
    }
    s->retry_tail = NULL;
    while (s->unacked != NULL) {
        rt_group_t *g = s->unacked;

        s->unacked = g->next;
        rt_group_free(g);
    }
    /* A group still waiting is freed by its on_stored callback, which the
     * core runs before destroy. */
    for (i = 0; i < s->inflight_cap; i++) {
        while (s->inflight[i] != NULL) {
            rt_idnode_t *n = s->inflight[i];

            s->inflight[i] = n->next;
            free(n);
        }
    }
    free(s->inflight);
    s->inflight = NULL;
    if (s->sync != NULL)
        redisFree(s->sync);
    s->sync = NULL;
}
