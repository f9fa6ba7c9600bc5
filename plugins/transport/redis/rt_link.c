/*
 * plugins/transport/redis/rt_link.c: one self-healing Redis connection.
 *
 * A link is a hiredis async context attached to the daemon's libev loop.
 * It sends AUTH and SELECT when configured, then PING; the PING's answer
 * makes it ready and runs on_ready (which subscribes, reads, sweeps...).
 * When Redis goes away the link logs it once, tells on_down, and
 * reconnects after 100 ms, doubling up to 5 s; when it is back it logs that
 * once. hiredis 0.14 has no command timeout, so a watchdog drops a
 * connection whose oldest command has waited longer than `timeout`.
 * Nothing here blocks the loop.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libev.h>

#include "rt.h"

#define RT_BACKOFF_MIN 0.1
#define RT_BACKOFF_MAX 5.0

typedef struct rt_call_s {
    rt_link_t *l;
    redisAsyncContext *ac;
    rt_reply_fn fn;
    void *priv;
} rt_call_t;

static void rt_link_connect(rt_link_t *l);

static void
rt_link_down(rt_link_t *l, const char *why)
{
    rt_state_t *s = l->s;
    int was_ready = l->ready;

    l->ready = 0;
    l->outstanding = 0;
    if (!l->down_logged && !s->stopping) {
        l->down_logged = 1;
        gw_log_warning(s->ctx, "redis %s:%lld (%s connection) is down: %s; "
                       "reconnecting every %.1f to %.0f s",
                       s->host_name, (long long) s->port, l->role,
                       why != NULL && *why ? why : "connection closed",
                       RT_BACKOFF_MIN, RT_BACKOFF_MAX);
    }
    if (was_ready && l->on_down != NULL)
        l->on_down(l);
    if (s->stopping)
        return;
    ev_timer_stop(s->loop, &l->retry);
    ev_timer_set(&l->retry, l->backoff, 0.0);
    ev_timer_start(s->loop, &l->retry);
    l->backoff *= 2;
    if (l->backoff > RT_BACKOFF_MAX)
        l->backoff = RT_BACKOFF_MAX;
}

static void
rt_call_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    rt_call_t *c = priv;
    rt_link_t *l = c->l;

    if (l->ac == ac && l->ac != NULL) {
        if (l->outstanding > 0)
            l->outstanding--;
        l->progress = ev_now(l->s->loop);
    }
    /* A reply from a context we already dropped is an unknown outcome. */
    if (c->ac != l->ac)
        reply = NULL;
    if (c->fn != NULL)
        c->fn(l, reply, c->priv);
    free(c);
}

static int
rt_send(rt_link_t *l, rt_reply_fn fn, void *priv, int argc,
        const char **argv, const size_t *argvlen)
{
    rt_call_t *c;

    if (l->ac == NULL)
        return GW_ERR;
    c = malloc(sizeof(*c));
    if (c == NULL)
        return GW_ERR;
    c->l = l;
    c->ac = l->ac;
    c->fn = fn;
    c->priv = priv;
    if (redisAsyncCommandArgv(l->ac, rt_call_cb, c, argc, argv, argvlen) !=
        REDIS_OK) {
        free(c);
        return GW_ERR;
    }
    if (l->outstanding++ == 0)
        l->progress = ev_now(l->s->loop);
    return GW_OK;
}

int
rt_link_cmd(rt_link_t *l, rt_reply_fn fn, void *priv, int argc,
            const char **argv, const size_t *argvlen)
{
    if (!l->ready)
        return GW_ERR;
    return rt_send(l, fn, priv, argc, argv, argvlen);
}

void
rt_link_drop(rt_link_t *l, const char *why)
{
    redisAsyncContext *ac = l->ac;

    if (ac == NULL)
        return;
    l->ac = NULL;
    rt_link_down(l, why);
    redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
}

/* AUTH and SELECT: an error reply stops the connection. */
static void
rt_setup_cb(rt_link_t *l, redisReply *r, void *priv)
{
    const char *what = priv;
    char why[200];

    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return;
    snprintf(why, sizeof(why), "%s failed: %.150s", what, r->str);
    if (!l->down_logged)
        gw_log_error(l->s->ctx, "redis %s:%lld: %s (check PASSWORD and DB)",
                     l->s->host_name, (long long) l->s->port, why);
    rt_link_drop(l, why);
}

static void
rt_ping_cb(rt_link_t *l, redisReply *r, void *priv)
{
    rt_state_t *s = l->s;

    (void) priv;
    if (r == NULL || r->type == REDIS_REPLY_ERROR || l->ac == NULL)
        return; /* rt_setup_cb or the disconnect handles it */
    l->ready = 1;
    l->backoff = RT_BACKOFF_MIN;
    if (l->down_logged) {
        l->down_logged = 0;
        gw_log_notice(s->ctx, "redis %s:%lld (%s connection) is back",
                      s->host_name, (long long) s->port, l->role);
    } else {
        gw_log_info(s->ctx, "redis %s:%lld (%s connection) connected",
                    s->host_name, (long long) s->port, l->role);
    }
    if (l->on_ready != NULL)
        l->on_ready(l);
}

static void
rt_on_connect(const redisAsyncContext *ac, int status)
{
    rt_link_t *l = ac->data;

    if (l == NULL || l->ac != ac || status == REDIS_OK)
        return;
    l->ac = NULL; /* hiredis frees it after this returns */
    rt_link_down(l, ac->errstr);
}

static void
rt_on_disconnect(const redisAsyncContext *ac, int status)
{
    rt_link_t *l = ac->data;

    (void) status;
    if (l == NULL || l->ac != ac)
        return;
    l->ac = NULL; /* hiredis frees it after this returns */
    rt_link_down(l, ac->err ? ac->errstr : "connection closed by the server");
}

static void
rt_link_connect(rt_link_t *l)
{
    rt_state_t *s = l->s;
    redisAsyncContext *ac;
    char db[24];
    const char *argv[2];
    size_t argvlen[2];

    if (s->stopping || l->ac != NULL)
        return;
    ac = redisAsyncConnect(s->host_name, (int) s->port);
    if (ac == NULL) {
        rt_link_down(l, "out of memory");
        return;
    }
    if (ac->err) {
        char why[160];

        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        rt_link_down(l, why);
        return;
    }
    ac->data = l;
    redisEnableKeepAlive(&ac->c);
    if (redisLibevAttach(s->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        rt_link_down(l, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, rt_on_connect);
    redisAsyncSetDisconnectCallback(ac, rt_on_disconnect);
    l->ac = ac;
    l->ready = 0;
    l->outstanding = 0;

    if (s->password != NULL && *s->password) {
        argv[0] = "AUTH";
        argv[1] = s->password;
        argvlen[0] = 4;
        argvlen[1] = strlen(s->password);
        rt_send(l, rt_setup_cb, (void *) "AUTH", 2, argv, argvlen);
    }
    if (s->db != 0) {
        snprintf(db, sizeof(db), "%lld", (long long) s->db);
        argv[0] = "SELECT";
        argv[1] = db;
        argvlen[0] = 6;
        argvlen[1] = strlen(db);
        rt_send(l, rt_setup_cb, (void *) "SELECT", 2, argv, argvlen);
    }
    argv[0] = "PING";
    argvlen[0] = 4;
    if (rt_send(l, rt_ping_cb, NULL, 1, argv, argvlen) != GW_OK)
        rt_link_drop(l, "cannot send PING");
}

static void
rt_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rt_link_connect(w->data);
}

static void
rt_watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rt_link_t *l = w->data;
    char why[96];

    (void) revents;
    if (l->ac == NULL || l->outstanding == 0 || l->timeout <= 0)
        return;
    if (ev_now(loop) - l->progress <= l->timeout)
        return;
    snprintf(why, sizeof(why), "no reply within %.0f ms", l->timeout * 1000);
    rt_link_drop(l, why);
}

void
rt_link_init(rt_state_t *s, rt_link_t *l, const char *role, double timeout,
             void (*on_ready)(rt_link_t *), void (*on_down)(rt_link_t *))
{
    memset(l, 0, sizeof(*l));
    l->s = s;
    l->role = role;
    l->timeout = timeout;
    l->backoff = RT_BACKOFF_MIN;
    l->on_ready = on_ready;
    l->on_down = on_down;
    ev_init(&l->retry, rt_retry_cb);
    l->retry.data = l;
    ev_init(&l->watchdog, rt_watchdog_cb);
    l->watchdog.data = l;
}

void
rt_link_start(rt_link_t *l)
{
    if (l->timeout > 0) {
        ev_timer_set(&l->watchdog, 0.25, 0.25);
        ev_timer_start(l->s->loop, &l->watchdog);
    }
    rt_link_connect(l);
}

/* Closes the link for good (s->stopping is set): pending callbacks run
 * with a NULL reply. */
void
rt_link_stop(rt_link_t *l)
{
    redisAsyncContext *ac = l->ac;

    if (l->s->loop != NULL) {
        ev_timer_stop(l->s->loop, &l->retry);
        ev_timer_stop(l->s->loop, &l->watchdog);
    }
    l->ready = 0;
    if (ac != NULL) {
        l->ac = NULL;
        redisAsyncFree(ac);
    }
}
