/*
 * plugins/transport/tcpip/tcpip.c: the raw TCP stream transport (SPEC §5).
 *
 * A client connects and sends `{S2, S3 or S4 header}{AUTH_DELIMITER}`; the
 * server answers `OK` (2 bytes) and keeps the connection, or `FAIL`
 * (4 bytes) and closes it. Then it streams `{json}{CHUNK_DELIMITER}`...:
 * each complete chunk is submitted as one event of the authenticated
 * project. A bad chunk is counted (by submit_json) and skipped; the stream
 * goes on. A chunk growing past MAX_EVENT_SIZE, an auth header past
 * MAX_AUTH_SIZE, no auth within AUTH_TIMEOUT, or IDLE_TIMEOUT without a
 * byte closes the connection (counted). A chunk still unterminated when
 * the client closes is submitted too (the original dropped it).
 *
 * Each connection keeps one buffer bounded by the limit plus the
 * delimiter, and remembers where its delimiter search stopped, so the
 * work is O(bytes) whatever the read sizes: the same bytes split at any
 * point give the same events.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/plugin.h>

#include "../common/listen.h"

#define TC_READS 8          /* reads per connection per wakeup */
#define TC_READ_MIN 4096    /* first buffer size */
#define TC_ACCEPT_BATCH 64

typedef struct tc_state_s tc_state_t;

typedef struct tc_conn_s {
    tc_state_t *st;
    tl_lane_t *lane;      /* the ingest loop it runs on */
    struct tc_conn_s *prev, *next;
    int fd;
    ev_io rio;
    ev_timer timer;
    char *buf;
    size_t len, cap;
    size_t scan;          /* no delimiter starts before this offset */
    const char *project;  /* set once authenticated (core-owned) */
    char project_copy[256];
    ev_tstamp last;       /* last byte received */
    /* The shared replay cache's answer (ABI 1.3 auth_claim): 0 none
     * pending, 1 waited for (reads paused), 2 given inside tc_auth. */
    int claim;
    int claim_ok;
    int in_auth;
    int dead;             /* closed while its claim was pending */
} tc_conn_t;

struct tc_state_s {
    tl_framed_t tl; /* first: ctx, host, HOST, PORT, the delimiters, fd */
    struct ev_loop *loop;

    /* The rest of the config (filled by config_apply). */
    double auth_timeout;
    double idle_timeout;
    int64_t max_event_size;
    int64_t max_auth_size;
    int64_t max_connections;

    ev_io aio;
    ev_timer retry;
    tl_lanes_t lanes;     /* each loop's connections */
    size_t nconns;        /* over all loops (atomic) */
    int stopped;
};

static const gw_config_key_t tc_keys[] = {
    TL_FRAMED_KEYS(tc_state_t, "--stream-auth--",
                   "ends the auth header at the start of a connection",
                   "ends each JSON event"),
    GW_CONFIG_KEY_RANGE("AUTH_TIMEOUT", GW_CONFIG_DOUBLE, "5", tc_state_t,
                        auth_timeout,
                        "seconds a new connection has to authenticate", 0.01,
                        3600),
    GW_CONFIG_KEY_RANGE("IDLE_TIMEOUT", GW_CONFIG_DOUBLE, "300", tc_state_t,
                        idle_timeout,
                        "seconds an authenticated connection may stay silent",
                        0.01, 86400),
    GW_CONFIG_KEY_RANGE("MAX_EVENT_SIZE", GW_CONFIG_INT, "65536", tc_state_t,
                        max_event_size,
                        "longest chunk in bytes; a longer one closes the "
                        "connection",
                        16, 16777216),
    GW_CONFIG_KEY_RANGE("MAX_AUTH_SIZE", GW_CONFIG_INT, "1024", tc_state_t,
                        max_auth_size,
                        "longest auth header in bytes; a longer one gets FAIL",
                        64, 65536),
    GW_CONFIG_KEY_RANGE("MAX_CONNECTIONS", GW_CONFIG_INT, "1024", tc_state_t,
                        max_connections, "open connections at most", 1,
                        1000000),
    GW_CONFIG_END};

/* ---- Connections ---- */

static void
tc_conn_close(tc_conn_t *c)
{
    tc_state_t *st = c->st;
    tl_lane_t *l = c->lane;

    ev_io_stop(l->loop, &c->rio);
    ev_timer_stop(l->loop, &c->timer);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    __atomic_sub_fetch(&st->nconns, 1, __ATOMIC_RELAXED);
    if (c->claim == 1) {
        c->dead = 1; /* tc_claimed frees it */
        return;
    }
    free(c->buf);
    free(c);
}

/* Writes a tiny answer; a socket this fresh always has room. */
static void
tc_reply(tc_conn_t *c, const char *s, size_t n)
{
    ssize_t w;

    do
        w = send(c->fd, s, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
}

/* Finds delim in buf[from..len); returns its offset or -1. */
static long
tc_find(const char *buf, size_t len, size_t from, const char *delim,
        size_t dlen)
{
    const char *p;

    if (len < dlen || from > len - dlen)
        return -1;
    p = memmem(buf + from, len - from, delim, dlen);
    return p != NULL ? (long) (p - buf) : -1;
}

static void
tc_submit(tc_conn_t *c, const char *json, size_t n)
{
    tc_state_t *st = c->st;
    gw_error_t err;

    if (n == 0 || tl_blank(json, n))
        return;
    if (st->tl.host->submit_json(st->tl.ctx, c->project, GW_ACTION_DEFAULT,
                                 json, n, 0, &err)
        != GW_OK)
        gw_log_debug(st->tl.ctx, "chunk dropped: %s", err.msg);
}

static int tc_process(tc_conn_t *c);

/* Switches an authenticated connection to its idle timer. */
static void
tc_authed(tc_conn_t *c)
{
    tc_state_t *st = c->st;

    c->project = c->project_copy;
    tc_reply(c, "OK", 2);
    c->last = ev_now(c->lane->loop);
    ev_timer_stop(c->lane->loop, &c->timer);
    ev_timer_set(&c->timer, st->idle_timeout, 0.);
    ev_timer_start(c->lane->loop, &c->timer);
}

/* The shared replay cache answered the claim of a stream's nonce. */
static void
tc_claimed(void *arg, int ok)
{
    tc_conn_t *c = arg;
    tc_state_t *st = c->st;
    long at;

    c->claim_ok = ok;
    if (c->in_auth) {
        c->claim = 2; /* tc_auth goes on */
        return;
    }
    c->claim = 0;
    if (c->dead) {
        free(c->buf);
        free(c);
        return;
    }
    if (!ok) {
        tc_reply(c, "FAIL", 4);
        tc_conn_close(c);
        return;
    }
    /* Drop the header and its delimiter; the chunks read meanwhile are
     * handled now, then reading resumes. */
    at = tc_find(c->buf, c->len, 0, st->tl.auth_delim, st->tl.auth_dlen);
    if (at >= 0) {
        size_t start = (size_t) at + st->tl.auth_dlen;

        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
    }
    c->scan = 0;
    tc_authed(c);
    if (tc_process(c) != 0) {
        tc_conn_close(c);
        return;
    }
    ev_io_start(c->lane->loop, &c->rio);
}

/* Handles the auth header at buf[0..end): 0 if the connection goes on, 1
 * if it waits for the shared replay cache (reads paused), -1 to close. */
static int
tc_auth(tc_conn_t *c, size_t end)
{
    tc_state_t *st = c->st;
    const gw_host_t *h = st->tl.host;
    gw_auth_req_t ar;
    const char *project;
    gw_error_t err;
    size_t plen;

    memset(&ar, 0, sizeof(ar));
    ar.schemes = GW_AUTH_S2 | GW_AUTH_S3 | GW_AUTH_S4;
    ar.scope = "tcp";
    ar.scope_len = 3;
    ar.header = c->buf;
    ar.header_len = end;
    if (h->auth_check(st->tl.ctx, &ar, &project, &err) != GW_OK) {
        gw_log_debug(st->tl.ctx, "auth failed: %s", err.msg);
        tc_reply(c, "FAIL", 4);
        return -1;
    }
    plen = strlen(project);
    if (plen >= sizeof(c->project_copy)) {
        tc_reply(c, "FAIL", 4);
        return -1;
    }
    /* The core's string is valid only until we return to the loop. */
    memcpy(c->project_copy, project, plen + 1);
    /* ABI 1.3: OK only once the nonce is claimed in the shared cache. */
    if (h->abi_minor >= 3 && h->auth_claim != NULL) {
        c->claim = 1;
        c->in_auth = 1;
        if (h->auth_claim(st->tl.ctx, tc_claimed, c) != GW_OK) {
            c->claim = 0;
            c->in_auth = 0;
            tc_reply(c, "FAIL", 4);
            return -1;
        }
        c->in_auth = 0;
        if (c->claim == 1) {
            ev_io_stop(c->lane->loop, &c->rio);
            return 1;
        }
        c->claim = 0;
        if (!c->claim_ok) {
            tc_reply(c, "FAIL", 4);
            return -1;
        }
    }
    tc_authed(c);
    return 0;
}

/* Consumes what the buffer holds; 0 to go on, -1 to close. */
static int
tc_process(tc_conn_t *c)
{
    tc_state_t *st = c->st;
    size_t start = 0;
    long at;

    if (c->project == NULL) {
        at = tc_find(c->buf, c->len, c->scan, st->tl.auth_delim,
                     st->tl.auth_dlen);
        if (at < 0) {
            if (c->len > (size_t) st->max_auth_size + st->tl.auth_dlen - 1) {
                st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED,
                                   "oversize", 1);
                tc_reply(c, "FAIL", 4);
                return -1;
            }
            c->scan = c->len >= st->tl.auth_dlen
                          ? c->len - st->tl.auth_dlen + 1
                          : 0;
            return 0;
        }
        if ((size_t) at > (size_t) st->max_auth_size) {
            st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "oversize", 1);
            tc_reply(c, "FAIL", 4);
            return -1;
        }
        switch (tc_auth(c, (size_t) at)) {
        case 1:
            return 0; /* tc_claimed goes on */
        case 0:
            break;
        default:
            return -1;
        }
        start = (size_t) at + st->tl.auth_dlen;
        c->scan = start;
    }
    while ((at = tc_find(c->buf, c->len, c->scan, st->tl.chunk_delim,
                         st->tl.chunk_dlen))
           >= 0) {
        size_t n = (size_t) at - start;

        if (n > (size_t) st->max_event_size) {
            st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "oversize", 1);
            return -1;
        }
        tc_submit(c, c->buf + start, n);
        start = (size_t) at + st->tl.chunk_dlen;
        c->scan = start;
    }
    /* Keep the unterminated rest at the front. */
    if (start > 0) {
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
        c->scan -= start;
    }
    if (c->len > (size_t) st->max_event_size + st->tl.chunk_dlen - 1) {
        /* The chunk cannot end inside the limit any more. */
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "oversize", 1);
        return -1;
    }
    c->scan = c->len >= st->tl.chunk_dlen ? c->len - st->tl.chunk_dlen + 1 : 0;
    return 0;
}

/* Room for one more read: the buffer never outgrows the limit. */
static size_t
tc_room(tc_conn_t *c)
{
    tc_state_t *st = c->st;
    size_t limit = (c->project == NULL ? (size_t) st->max_auth_size
                                       : (size_t) st->max_event_size)
                   + (st->tl.auth_dlen > st->tl.chunk_dlen ? st->tl.auth_dlen
                                                           : st->tl.chunk_dlen)
                   + 1;
    size_t want;

    if (c->cap - c->len == 0 || c->cap < limit) {
        want = c->cap ? c->cap * 2 : TC_READ_MIN;
        if (want > limit)
            want = limit;
        if (want > c->cap) {
            char *p = realloc(c->buf, want);
            if (p == NULL)
                return 0;
            c->buf = p;
            c->cap = want;
        }
    }
    return c->cap - c->len;
}

/* Reads and handles up to max reads; -1 if the connection was closed. */
static int
tc_read(tc_conn_t *c, int max)
{
    tc_state_t *st = c->st;
    int i;

    for (i = 0; i < max; i++) {
        size_t room = tc_room(c);
        ssize_t n;

        if (room == 0) {
            st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "oversize", 1);
            tc_conn_close(c);
            return -1;
        }
        n = recv(c->fd, c->buf + c->len, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            tc_conn_close(c);
            return -1;
        }
        if (n == 0) {
            /* The client is done: its last chunk counts even without a
             * delimiter. */
            if (c->project != NULL && c->len > 0)
                tc_submit(c, c->buf, c->len);
            tc_conn_close(c);
            return -1;
        }
        c->len += (size_t) n;
        if (c->project != NULL)
            c->last = ev_now(c->lane->loop);
        if (tc_process(c) != 0) {
            tc_conn_close(c);
            return -1;
        }
        if (c->claim == 1)
            return 0; /* paused until the shared replay cache answers */
    }
    return 0;
}

static void
tc_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    tc_read(w->data, TC_READS);
}

static void
tc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tc_conn_t *c = w->data;
    tc_state_t *st = c->st;
    ev_tstamp left;

    (void) revents;
    if (c->project == NULL) {
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "timeout", 1);
        tc_reply(c, "FAIL", 4);
        tc_conn_close(c);
        return;
    }
    left = c->last + st->idle_timeout - ev_now(loop);
    if (left > 0.001) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "timeout", 1);
    tc_conn_close(c);
}

/* A new connection starts on its lane's loop, on that loop's thread. */
static void
tc_conn_begin(void *arg)
{
    tc_conn_t *c = arg;
    tc_state_t *st = c->st;
    tl_lane_t *l = c->lane;
    tc_conn_t *head = l->conns;

    c->last = ev_now(l->loop);
    ev_io_init(&c->rio, tc_read_cb, c->fd, EV_READ);
    c->rio.data = c;
    ev_timer_init(&c->timer, tc_timer_cb, st->auth_timeout, 0.);
    c->timer.data = c;
    ev_io_start(l->loop, &c->rio);
    ev_timer_start(l->loop, &c->timer);
    c->next = head;
    if (head != NULL)
        head->prev = c;
    l->conns = c;
}

static void
tc_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    tc_state_t *st = w->data;
    int i, one = 1;

    (void) revents;
    for (i = 0; i < TC_ACCEPT_BATCH; i++) {
        tc_conn_t *c;
        int fd = accept4(st->tl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                || errno == ENOMEM) {
                gw_log_warning(st->tl.ctx,
                               "accept: %s; pausing new connections for "
                               "100 ms",
                               strerror(errno));
                ev_io_stop(loop, &st->aio);
                ev_timer_set(&st->retry, 0.1, 0.);
                ev_timer_start(loop, &st->retry);
            }
            return;
        }
        if (__atomic_load_n(&st->nconns, __ATOMIC_RELAXED)
            >= (size_t) st->max_connections) {
            close(fd);
            st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED,
                               "max_connections", 1);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->st = st;
        c->fd = fd;
        __atomic_add_fetch(&st->nconns, 1, __ATOMIC_RELAXED);
        tl_lanes_hand(st->tl.ctx, &st->lanes, &c->lane, tc_conn_begin, c);
    }
}

static void
tc_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tc_state_t *st = w->data;

    (void) revents;
    if (!st->stopped && st->tl.fd >= 0)
        ev_io_start(loop, &st->aio);
}

/* ---- The plugin ---- */

static int
tc_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    return tl_framed_create(ctx, tc_keys, sizeof(tc_state_t), state, err);
}

static int
tc_start(void *state, gw_error_t *err)
{
    tc_state_t *st = state;

    st->loop = st->tl.host->loop(st->tl.ctx);
    if (tl_lanes_init(st->tl.ctx, &st->lanes, err) != GW_OK
        || tl_framed_listen(&st->tl, SOCK_STREAM, 1024, "", err) != GW_OK)
        return GW_ERR;
    ev_io_init(&st->aio, tc_accept_cb, st->tl.fd, EV_READ);
    st->aio.data = st;
    ev_init(&st->retry, tc_retry_cb);
    st->retry.data = st;
    ev_io_start(st->loop, &st->aio);
    tl_framed_listening(&st->tl, "TCP event streams", st->lanes.n);
    return GW_OK;
}

static void
tc_stop(void *state)
{
    tc_state_t *st = state;
    int i;

    if (st->stopped)
        return;
    st->stopped = 1;
    if (st->loop != NULL) {
        ev_io_stop(st->loop, &st->aio);
        ev_timer_stop(st->loop, &st->retry);
    }
    if (st->tl.fd >= 0) {
        close(st->tl.fd);
        st->tl.fd = -1;
    }
    /* Take what the clients already sent (bounded), then close. A chunk
     * still unterminated is dropped like any cut-off stream. The other
     * loops no longer run (host.h), so this thread closes them all. */
    for (i = 0; i < st->lanes.n; i++)
        while (st->lanes.v[i].conns != NULL) {
            tc_conn_t *c = st->lanes.v[i].conns;
            if (c->project == NULL || tc_read(c, 64) == 0)
                tc_conn_close(c);
        }
}

static void
tc_destroy(void *state)
{
    tc_state_t *st = state;

    if (st == NULL)
        return;
    tc_stop(st);
    free(st->lanes.v);
    free(st);
}

static const gw_transport_ops_t tc_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = tc_create,
    .start = tc_start,
    .stop = tc_stop,
    .destroy = tc_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "tcpip",
    .version = "0.1.0",
    .description = "signed event streams over TCP ({json}--chunk--...)",
    .transport = &tc_ops,
};
