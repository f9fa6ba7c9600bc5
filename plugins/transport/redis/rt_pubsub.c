/*
 * plugins/transport/redis/rt_pubsub.c: MODE = "pubsub", the original
 * GottWall Redis client's protocol.
 *
 * The client SADDs each event's JSON to the set {CHANNEL}:{project}:{public}
 * and PUBLISHes {"a": "notification"} on {CHANNEL}:{project}:{public}:
 * {private}. We PSUBSCRIBE {CHANNEL}:* on the subscriber connection, check
 * the project and both keys of every channel with the core
 * (GW_AUTH_KEYS), and on a notification SPOP up to MAX_LOADING members of
 * the set on the commands connection, again while full batches come back.
 * A message that is itself an event (its action is incr, decr, ...) is
 * submitted as it is.
 *
 * Pub/sub loses messages (a subscriber that is down misses them), so every
 * PERIODIC_PROCESSOR_TIME ms the sets are swept too. The public key of a
 * project is only known from a channel whose keys were verified, so the
 * sweep covers the (project, public key) pairs seen since start.
 *
 * Nothing in a set is signed and the private key is in every channel
 * name: this mode trusts whoever can write to (or MONITOR) the Redis, and
 * says so in a warning at start when no PASSWORD is configured.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rt.h"

#define RT_MAX_PAIRS 4096
#define RT_MAX_CHANNEL 1024

int
rt_split_channel(char *rest, char **project, char **pub, char **priv)
{
    char *a = rest, *b, *c;

    b = strchr(a, ':');
    if (b == NULL)
        return -1;
    *b++ = '\0';
    c = strchr(b, ':');
    if (c == NULL)
        return -1;
    *c++ = '\0';
    if (strchr(c, ':') != NULL || *a == '\0' || *b == '\0' || *c == '\0')
        return -1;
    *project = a;
    *pub = b;
    *priv = c;
    return 0;
}

static rt_pair_t *
rt_pair_find(rt_state_t *s, const char *project, const char *pub)
{
    size_t i;
    rt_pair_t *p;

    for (i = 0; i < s->npairs; i++) {
        p = s->pairs[i];
        if (strcmp(p->project, project) == 0 && strcmp(p->public_key, pub) == 0)
            return p;
    }
    if (s->npairs == RT_MAX_PAIRS)
        return NULL;
    if (s->npairs == s->cap_pairs) {
        size_t cap = s->cap_pairs ? s->cap_pairs * 2 : 8;
        rt_pair_t **np = realloc(s->pairs, cap * sizeof(*np));

        if (np == NULL)
            return NULL;
        s->pairs = np;
        s->cap_pairs = cap;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->project = strdup(project);
    p->public_key = strdup(pub);
    p->key = malloc(strlen(s->channel) + strlen(project) + strlen(pub) + 3);
    if (p->project == NULL || p->public_key == NULL || p->key == NULL) {
        free(p->project);
        free(p->public_key);
        free(p->key);
        free(p);
        return NULL;
    }
    sprintf(p->key, "%s:%s:%s", s->channel, project, pub);
    s->pairs[s->npairs++] = p;
    gw_log_debug(s->ctx, "sweeping %s every %lld ms from now on", p->key,
                 (long long) s->periodic_ms);
    return p;
}

static void rt_load(rt_state_t *s, rt_pair_t *p);

static void
rt_spop_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;
    rt_pair_t *p = priv;
    size_t i;

    p->loading = 0;
    if (r == NULL || s->stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        gw_log_warning(s->ctx, "SPOP %s: %s", p->key, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        gw_error_t err;

        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (s->host->submit_json(s->ctx, p->project, GW_ACTION_DEFAULT, e->str,
                                 e->len, 0, &err) != GW_OK)
            gw_log_debug(s->ctx, "event from %s refused: %s", p->key, err.msg);
    }
    /* A full batch: the set may hold more. */
    if (r->elements == (size_t) s->max_loading)
        rt_load(s, p);
}

static void
rt_load(rt_state_t *s, rt_pair_t *p)
{
    char count[24];
    const char *argv[3];
    size_t argvlen[3];

    if (p->loading || !s->cmd.ready || s->stopping)
        return;
    snprintf(count, sizeof(count), "%lld", (long long) s->max_loading);
    argv[0] = "SPOP";
    argv[1] = p->key;
    argv[2] = count;
    argvlen[0] = 4;
    argvlen[1] = strlen(p->key);
    argvlen[2] = strlen(count);
    if (rt_link_cmd(&s->cmd, rt_spop_cb, p, 3, argv, argvlen) == GW_OK)
        p->loading = 1;
}

/* The action of a message body: "a", then "action", then "type". */
static int
rt_is_notification(const char *body, size_t len)
{
    static const char *const keys[] = {"a", "action", "type"};
    json_t *j = json_loadb(body, len, 0, NULL);
    int yes = 0;
    size_t i;

    if (j == NULL)
        return 0;
    if (json_is_object(j)) {
        for (i = 0; i < 3; i++) {
            json_t *v = json_object_get(j, keys[i]);

            if (v != NULL) {
                yes = json_is_string(v) &&
                      strcmp(json_string_value(v), "notification") == 0;
                break;
            }
        }
    }
    json_decref(j);
    return yes;
}

static void
rt_message(rt_state_t *s, const char *channel, size_t chlen,
           const char *body, size_t blen)
{
    size_t plen = strlen(s->channel);
    char rest[RT_MAX_CHANNEL + 1], *project, *pub, *priv;
    const char *authed = NULL;
    gw_auth_req_t req;
    gw_error_t err;
    rt_pair_t *p;

    if (chlen <= plen + 1 || chlen - plen - 1 > RT_MAX_CHANNEL ||
        memcmp(channel, s->channel, plen) != 0 || channel[plen] != ':' ||
        memchr(channel, '\0', chlen) != NULL) {
        s->host->count(s->ctx, GW_COUNTER_DROPPED, "bad_channel", 1);
        return;
    }
    memcpy(rest, channel + plen + 1, chlen - plen - 1);
    rest[chlen - plen - 1] = '\0';
    if (rt_split_channel(rest, &project, &pub, &priv) != 0) {
        s->host->count(s->ctx, GW_COUNTER_DROPPED, "bad_channel", 1);
        gw_log_debug(s->ctx, "ignored a message on a channel that is not "
                     "%s:{project}:{public_key}:{private_key}", s->channel);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.schemes = GW_AUTH_KEYS;
    req.project = project;
    req.public_key = pub;
    req.private_key = priv;
    if (s->host->auth_check(s->ctx, &req, &authed, &err) != GW_OK) {
        gw_log_debug(s->ctx, "ignored a message for project \"%.100s\": %s",
                     project, err.msg);
        return;
    }
    p = rt_pair_find(s, authed, pub);
    if (rt_is_notification(body, blen)) {
        if (p != NULL)
            rt_load(s, p);
        return;
    }
    if (s->host->submit_json(s->ctx, authed, GW_ACTION_DEFAULT, body, blen, 0,
                             &err) != GW_OK)
        gw_log_debug(s->ctx, "event on a channel of \"%s\" refused: %s",
                     authed, err.msg);
}

/* Every reply on the subscriber connection: the PSUBSCRIBE answer, then
 * one ["pmessage", pattern, channel, body] per message. */
static void
rt_pmessage_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    rt_link_t *l = priv;
    redisReply *r = reply, *kind;

    if (r == NULL || l->s->stopping || l->ac != ac)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        return;
    kind = r->element[0];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "pmessage") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_STRING)
        return;
    rt_message(l->s, r->element[2]->str, r->element[2]->len,
               r->element[3]->str, r->element[3]->len);
}

static void
rt_sub_ready(rt_link_t *l)
{
    rt_state_t *s = l->s;
    const char *argv[2] = {"PSUBSCRIBE", s->pattern};
    size_t argvlen[2] = {10, strlen(s->pattern)};

    if (redisAsyncCommandArgv(l->ac, rt_pmessage_cb, l, 2, argv, argvlen) !=
        REDIS_OK)
        rt_link_drop(l, "cannot send PSUBSCRIBE");
}

static void
rt_cmd_ready(rt_link_t *l)
{
    /* Sets may have filled while we were away: sweep now. */
    rt_pubsub_periodic(l->s);
}

void
rt_pubsub_start(rt_state_t *s)
{
    if (s->password == NULL || s->password[0] == '\0')
        gw_log_warning(s->ctx,
                       "pubsub mode on redis %s:%lld without PASSWORD: anyone "
                       "who can write to this Redis can add events to a "
                       "project whose public key they know, and MONITOR "
                       "shows the private keys in the channel names; use "
                       "pubsub mode only on a Redis that only trusted "
                       "producers can reach and set PASSWORD (requirepass), "
                       "or use MODE = \"stream\", which signs every entry",
                       s->host_name, (long long) s->port);
    snprintf(s->pattern, sizeof(s->pattern), "%s:*", s->channel);
    rt_link_init(s, &s->sub, "subscriber", 0, rt_sub_ready, NULL);
    rt_link_init(s, &s->cmd, "commands", s->command_timeout_ms / 1000.0,
                 rt_cmd_ready, NULL);
    rt_link_start(&s->sub);
    rt_link_start(&s->cmd);
}

void
rt_pubsub_periodic(rt_state_t *s)
{
    size_t i;

    for (i = 0; i < s->npairs; i++)
        if (s->host->project_exists(s->ctx, s->pairs[i]->project))
            rt_load(s, s->pairs[i]);
}

void
rt_pubsub_free(rt_state_t *s)
{
    size_t i;

    for (i = 0; i < s->npairs; i++) {
        free(s->pairs[i]->project);
        free(s->pairs[i]->public_key);
        free(s->pairs[i]->key);
        free(s->pairs[i]);
    }
    free(s->pairs);
    s->pairs = NULL;
    s->npairs = 0;
}
