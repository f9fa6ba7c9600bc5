/*
 * net/http.c: the core's HTTP/1.1 server, on libev and http-parser: its
 * listeners and connections (net/http_parse.c builds the requests).
 *
 * One listener accepts non-blocking connections. Each connection feeds
 * what it reads to its http_parser, which is paused after every complete
 * request: the request then joins the connection's queue and goes to the
 * handler, which answers now or later (the read API answers after a
 * storage-thread job). Answers leave in request order: an answer waits in
 * its request until every earlier one has gone into the output buffer.
 *
 * Every buffer is bounded: the input (one read, kept only while parsing
 * is paused), the header bytes and count of a request (431), its body
 * (413, from Content-Length before reading, or while reading chunks), the
 * requests queued per connection and the output not yet written (parsing
 * and reading stop until the client reads), and the connections: per
 * listener (MAX_CONNECTIONS), and per client address once only the
 * reserved slots are left (MAX_CONNECTIONS_PER_ADDRESS,
 * RESERVED_CONNECTIONS), so that one client cannot hold them all. One
 * timer per connection enforces the header, body, idle and write
 * timeouts, a request's total deadline and its body's minimum rate
 * (HTTP_REQUEST_TIMEOUT, HTTP_MIN_BODY_RATE). A request stream
 * that can no longer be trusted gets its error answer, then the
 * connection is shut down for writing and drained briefly ("lingering
 * close"), so a client still sending a large body reads the answer rather
 * than a reset.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <ev.h>
#include <http_parser.h>

#include "http_int.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"

#define HTTP_LINGER 2.0               /* s to drain input after an error */
#define HTTP_ACCEPT_BATCH 64

#define HTTP_DEF_MAX_BODY (1024u * 1024u)
#define HTTP_DEF_HEADER_BYTES 16384u
#define HTTP_DEF_HEADERS 64u
#define HTTP_DEF_HEADER_TIMEOUT 10.0
#define HTTP_DEF_IDLE_TIMEOUT 60.0
#define HTTP_DEF_MAX_CONNECTIONS 1024u
#define HTTP_DEF_REQUEST_TIMEOUT 60.0
#define HTTP_DEF_PER_ADDRESS 64u
#define HTTP_WARN_EVERY 60.0          /* s between per-address warnings */

/* ---- Connections per address ---- */

struct http_addr_s {
    http_addr_t *next;                /* in its bucket */
    size_t n;                         /* connections open from it */
    char key[INET6_ADDRSTRLEN + 4];   /* "192.0.2.1", "2001:db8::/64" */
};

/* The address a client is counted under: IPv4 as it is, IPv6 by its /64
 * (one host may hold a whole /64). "" when neither. */
static void
http_addr_key(const struct sockaddr_storage *ss, char *key, size_t cap)
{
    key[0] = '\0';
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *) ss)->sin_addr, key,
                  (socklen_t) cap);
    } else if (ss->ss_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *) ss)->sin6_addr;

        memset(a.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a, key, (socklen_t) cap) != NULL)
            strncat(key, "/64", cap - strlen(key) - 1);
    }
}

static http_addr_t **
http_addr_slot(gw_http_server_t *s, const char *key)
{
    /* Keyed: a client picks its addresses (IPv6 /64s) but not where
     * they fall. */
    uint64_t h = gw__hash_str(key, strlen(key));

    return &s->addrs[h & (s->addr_buckets - 1)];
}

static http_addr_t *
http_addr_find(gw_http_server_t *s, const char *key)
{
    http_addr_t *a = *http_addr_slot(s, key);

    while (a != NULL && strcmp(a->key, key) != 0)
        a = a->next;
    return a;
}

/* Counts one more connection from key; NULL when out of memory. */
static http_addr_t *
http_addr_hold(gw_http_server_t *s, http_addr_t *a, const char *key)
{
    if (a == NULL) {
        http_addr_t **pp = http_addr_slot(s, key);

        a = calloc(1, sizeof(*a));
        if (a == NULL)
            return NULL;
        snprintf(a->key, sizeof(a->key), "%s", key);
        a->next = *pp;
        *pp = a;
    }
    a->n++;
    return a;
}

static void
http_addr_release(gw_http_server_t *s, http_addr_t *a)
{
    http_addr_t **pp;

    if (a == NULL || --a->n > 0)
        return;
    for (pp = http_addr_slot(s, a->key); *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            free(a);
            return;
        }
    }
}

/* Whether one more connection from a may open: NULL, or the reason it
 * is refused. Past MAX_CONNECTIONS nothing opens; once only
 * RESERVED_CONNECTIONS slots are free, they go to addresses holding
 * fewer than MAX_CONNECTIONS_PER_ADDRESS, so one client (or a few)
 * cannot take every slot. */
static const char *
http_admit(gw_http_server_t *s, const http_addr_t *a)
{
    size_t left;

    if (s->nconns >= s->lim.max_connections)
        return "max_connections";
    left = s->lim.max_connections - s->nconns;
    if (a != NULL && a->n >= s->lim.max_per_address
        && left <= s->lim.reserved_connections) {
        if (s->warned == 0 || ev_now(s->loop) - s->warned >= HTTP_WARN_EVERY) {
            s->warned = ev_now(s->loop);
            gw__log(GW_LOG_WARNING, s->name,
                    "%s holds %zu connections (MAX_CONNECTIONS_PER_ADDRESS "
                    "is %zu) and only %zu of MAX_CONNECTIONS (%zu) are "
                    "free: refusing its new ones (counted as "
                    "max_connections_per_address; logged once a minute)",
                    a->key, a->n, s->lim.max_per_address, left,
                    s->lim.max_connections);
        }
        return "max_connections_per_address";
    }
    return NULL;
}

/* ---- Connections ---- */

static void
http_conn_count(http_conn_t *c, const char *reason)
{
    gw__metrics_count(c->srv->name, GW_COUNTER_DROPPED, reason, 1);
}

void
gw__http_queue_push(http_conn_t *c, gw_http_req_t *r)
{
    r->next = NULL;
    if (c->qtail != NULL)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    c->nqueued++;
}

void
gw__http_conn_fail(http_conn_t *c, int status, const char *msg,
                   const char *reason)
{
    gw_http_req_t *r;
    gw__buf_t body = {0};

    if (c->closing)
        return;
    c->closing = 1;
    if (reason != NULL)
        http_conn_count(c, reason);
    gw__http_req_free(c->cur);
    c->cur = NULL;
    r = gw__http_req_new(c);
    if (r == NULL) {
        c->dead = 1;
        return;
    }
    r->close_after = 1;
    gw__http_error_body(&body, msg);
    gw__http_req_format(r, status, "application/json", NULL, body.p, body.len);
    gw__buf_free(&body);
    gw__http_queue_push(c, r);
}

static void
http_conn_unlink(http_conn_t *c)
{
    gw_http_server_t *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nlist--;
}

/* The listener holding the connection counts of s. */
static gw_http_server_t *
http_listener(gw_http_server_t *s)
{
    return s->parent != NULL ? s->parent : s;
}

/* Counts one more connection from key on the listener s: NULL, *out its
 * address's count, or the reason it is refused ("" when out of memory:
 * closed, not counted). Spread over loops, under the listener's lock. */
static const char *
http_take(gw_http_server_t *s, const char *key, http_addr_t **out)
{
    const char *refused;
    http_addr_t *a;

    if (s->spread)
        pthread_mutex_lock(&s->amu);
    a = http_addr_find(s, key);
    refused = http_admit(s, a);
    if (refused == NULL) {
        a = http_addr_hold(s, a, key);
        if (a == NULL)
            refused = "";
        else
            s->nconns++;
    }
    if (s->spread)
        pthread_mutex_unlock(&s->amu);
    *out = a;
    return refused;
}

/* Gives back what http_take counted for c, from c's loop. */
static void
http_give_back(http_conn_t *c)
{
    gw_http_server_t *s = http_listener(c->srv);

    if (c->addr == NULL)
        return;
    if (s->spread)
        pthread_mutex_lock(&s->amu);
    http_addr_release(s, c->addr);
    s->nconns--;
    if (s->spread)
        pthread_mutex_unlock(&s->amu);
    c->addr = NULL;
}

/* Frees a connection. Requests the handler still holds become orphans:
 * valid until answered, then freed. */
static void
http_conn_free(http_conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;
    gw_http_req_t *r = c->qhead;

    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    if (c->fd >= 0)
        close(c->fd);
    while (r != NULL) {
        gw_http_req_t *next = r->next;
        r->next = NULL;
        if (r->handed && !r->answered)
            r->conn = NULL;
        else
            gw__http_req_free(r);
        r = next;
    }
    gw__http_req_free(c->cur);
    gw__buf_free(&c->out);
    free(c->in);
    http_give_back(c);
    if (c->linked)
        http_conn_unlink(c);
    free(c);
}

/* Moves answers at the head of the queue into the output buffer. */
static void
http_conn_collect(http_conn_t *c)
{
    while (c->qhead != NULL && c->qhead->answered) {
        gw_http_req_t *r = c->qhead;
        int last = r->close_after;

        if (c->out_off > 0 && c->out_off == c->out.len) {
            c->out.len = 0;
            c->out_off = 0;
        }
        if (gw__buf_add(&c->out, r->resp.p, r->resp.len) != 0) {
            c->dead = 1;
            return;
        }
        c->qhead = r->next;
        if (c->qhead == NULL)
            c->qtail = NULL;
        c->nqueued--;
        gw__http_req_free(r);
        if (c->state == HTTP_IDLE)
            c->mark = gw__http_now(c); /* idle time counts from the answer */
        if (last) {
            c->closing = 1;
            /* Nothing after a closing answer is sent. */
            while (c->qhead != NULL) {
                gw_http_req_t *n = c->qhead->next;
                if (c->qhead->handed && !c->qhead->answered)
                    c->qhead->conn = NULL;
                else
                    gw__http_req_free(c->qhead);
                c->qhead = n;
            }
            c->qtail = NULL;
            c->nqueued = 0;
            return;
        }
    }
}

static void
http_conn_write(http_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
            c->mark = gw__http_now(c);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->dead = 1; /* the peer is gone */
        return;
    }
    if (c->out.len > 0) {
        c->out.len = 0;
        c->out_off = 0;
        if (c->out.cap > 4 * HTTP_OUT_HIGH) {
            gw__buf_free(&c->out);
        }
    }
}

/* When the connection's timer should fire (0: never), and what for
 * (c->deadline). A request being received is bounded three ways: its
 * head by HTTP_HEADER_TIMEOUT, its body by HTTP_IDLE_TIMEOUT without a
 * byte and by HTTP_MIN_BODY_RATE (HTTP_HEADER_TIMEOUT of grace, then one
 * second per that many bytes), and the whole by HTTP_REQUEST_TIMEOUT;
 * none runs while the handler holds one of its requests. */
static ev_tstamp
http_conn_deadline(http_conn_t *c, int want_write)
{
    const gw__http_limits_t *lim = &c->srv->lim;
    ev_tstamp at;

    c->deadline = HTTP_DL_CLOSE;
    if (c->state == HTTP_LINGER_ST)
        return c->mark + HTTP_LINGER;
    if (want_write)
        return c->mark + lim->idle_timeout; /* a reader that never reads */
    if (c->qhead != NULL)
        return 0; /* the handler answers; no timeout */
    if (c->state == HTTP_IDLE)
        return c->mark + lim->idle_timeout;
    c->deadline = HTTP_DL_TIMEOUT;
    at = c->mark + (c->state == HTTP_HEADERS ? lim->header_timeout
                                             : lim->idle_timeout);
    if (c->cur == NULL)
        return at;
    if (c->state == HTTP_BODY && lim->min_body_rate > 0) {
        ev_tstamp slow = c->body_start + lim->header_timeout
                         + (double) c->cur->body.len
                               / (double) lim->min_body_rate;
        if (slow < at) {
            at = slow;
            c->deadline = HTTP_DL_SLOW;
        }
    }
    if (c->req_start + lim->request_timeout < at) {
        at = c->req_start + lim->request_timeout;
        c->deadline = HTTP_DL_REQUEST;
    }
    return at;
}

/* Decides which watchers run and when the timer fires. */
static void
http_conn_arm(http_conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;
    int want_read, want_write;
    ev_tstamp at;

    want_write = c->out_off < c->out.len;
    if (c->state == HTTP_LINGER_ST)
        want_read = 1;
    else
        want_read = !c->eof && !c->closing && c->in_off == c->in_len
                    && gw__http_can_parse(c);
    if (want_read != c->reading) {
        if (want_read)
            ev_io_start(loop, &c->rio);
        else
            ev_io_stop(loop, &c->rio);
        c->reading = want_read;
    }
    if (want_write != c->writing) {
        if (want_write)
            ev_io_start(loop, &c->wio);
        else
            ev_io_stop(loop, &c->wio);
        c->writing = want_write;
    }

    at = http_conn_deadline(c, want_write);
    ev_timer_stop(loop, &c->timer);
    if (at > 0) {
        ev_tstamp left = at - ev_now(loop);
        ev_timer_set(&c->timer, left > 0.001 ? left : 0.001, 0.);
        ev_timer_start(loop, &c->timer);
    }
}

/* After answering the last thing: stop writing, drain what the client
 * still sends for a short while, then close. */
static void
http_conn_linger(http_conn_t *c)
{
    if (c->eof) {
        c->dead = 1;
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = HTTP_LINGER_ST;
    c->mark = gw__http_now(c);
}

static void
http_conn_step(http_conn_t *c)
{
    http_conn_collect(c);
    if (!c->dead)
        http_conn_write(c);
    if (c->dead || c->state == HTTP_LINGER_ST)
        return;
    if (gw__http_can_parse(c) && c->in_off < c->in_len) {
        gw__http_parse(c);
        if (c->dead)
            return;
        http_conn_collect(c);
        if (!c->dead)
            http_conn_write(c);
        if (c->dead)
            return;
    }
    if ((c->closing || c->eof) && c->qhead == NULL
        && c->out_off == c->out.len) {
        if (c->closing && !c->eof)
            http_conn_linger(c);
        else
            c->dead = 1;
    }
}

void
gw__http_progress(http_conn_t *c)
{
    if (c->busy) {
        c->again = 1;
        return;
    }
    c->busy = 1;
    do {
        c->again = 0;
        http_conn_step(c);
    } while (c->again && !c->dead);
    c->busy = 0;
    if (c->dead)
        http_conn_free(c);
    else
        http_conn_arm(c);
}

static void
http_conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    http_conn_t *c = w->data;
    ssize_t n;

    (void) loop;
    (void) revents;
    if (c->state == HTTP_LINGER_ST) {
        char junk[HTTP_READ_CHUNK];
        int i;
        for (i = 0; i < 16; i++) {
            n = recv(c->fd, junk, sizeof(junk), 0);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            c->dead = 1;
            break;
        }
        gw__http_progress(c);
        return;
    }
    if (c->in == NULL) {
        c->in = malloc(HTTP_READ_CHUNK);
        if (c->in == NULL) {
            c->dead = 1;
            gw__http_progress(c);
            return;
        }
    }
    n = recv(c->fd, c->in, HTTP_READ_CHUNK, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        c->dead = 1; /* reset by the peer */
    } else if (n == 0) {
        c->eof = 1;
        /* A request cut short is dropped; earlier ones are answered. */
        gw__http_req_free(c->cur);
        c->cur = NULL;
        if (c->state != HTTP_IDLE)
            c->state = HTTP_IDLE;
    } else {
        c->in_off = 0;
        c->in_len = (size_t) n;
        if (c->state == HTTP_BODY || c->state == HTTP_IDLE)
            c->mark = gw__http_now(c); /* activity resets body/idle timeouts */
    }
    gw__http_progress(c);
}

static void
http_conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    gw__http_progress(w->data);
}

static void
http_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    http_conn_t *c = w->data;

    (void) loop;
    (void) revents;
    if (c->state == HTTP_LINGER_ST || c->out_off < c->out.len) {
        c->dead = 1;
    } else if ((c->state == HTTP_HEADERS || c->state == HTTP_BODY)
               && c->cur != NULL) {
        /* A request partially received: tell the client. */
        char msg[128];

        if (c->deadline == HTTP_DL_REQUEST) {
            snprintf(msg, sizeof(msg),
                     "request not received within %g s "
                     "(HTTP_REQUEST_TIMEOUT)",
                     c->srv->lim.request_timeout);
            gw__http_conn_fail(c, 408, msg, "request_timeout");
        } else if (c->deadline == HTTP_DL_SLOW) {
            snprintf(msg, sizeof(msg),
                     "request body arrived slower than %zu bytes/s "
                     "(HTTP_MIN_BODY_RATE)",
                     c->srv->lim.min_body_rate);
            gw__http_conn_fail(c, 408, msg, "slow_body");
        } else {
            gw__http_conn_fail(c, 408, "request not received in time",
                               "timeout");
        }
        c->state = HTTP_IDLE;
    } else if (c->qhead == NULL) {
        c->dead = 1; /* idle */
    }
    gw__http_progress(c);
}

/* ---- Listening ---- */

/* Starts c on the loop of its server c->srv, on that loop's thread (or
 * once the loops stopped). */
static void
http_conn_start(http_conn_t *c)
{
    gw_http_server_t *s = c->srv;
    struct ev_loop *loop = s->loop;

    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ev_io_init(&c->rio, http_conn_read_cb, c->fd, EV_READ);
    ev_io_init(&c->wio, http_conn_write_cb, c->fd, EV_WRITE);
    ev_init(&c->timer, http_conn_timer_cb);
    c->rio.data = c->wio.data = c->timer.data = c;
    c->state = HTTP_HEADERS; /* a new connection must send a request */
    c->mark = c->req_start = ev_now(loop);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nlist++;
    c->linked = 1;
    http_conn_arm(c);
}

/* A connection handed to another loop arrives there. */
static void
http_conn_adopt(gw__post_t *p)
{
    http_conn_start((http_conn_t *) p);
}

/* Opens the connection of an accepted fd from ss (key: its address, as
 * counted) on the listener s, or on the next of its loops; closes fd when
 * refused or out of memory. */
static void
http_conn_open(gw_http_server_t *s, int fd,
               const struct sockaddr_storage *ss, const char *key)
{
    http_conn_t *c;
    http_addr_t *a;
    const char *refused = http_take(s, key, &a);
    int k;

    if (refused != NULL) {
        /* Counted before the close: whoever sees the close sees it. */
        if (refused[0] != '\0')
            gw__metrics_count(s->name, GW_COUNTER_DROPPED, refused, 1);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        c = &(http_conn_t){.srv = s, .addr = a};
        http_give_back(c);
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->addr = a;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *) ss)->sin_addr,
                  c->peer, sizeof(c->peer));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) ss)->sin6_addr,
                  c->peer, sizeof(c->peer));
    if (s->spread) {
        /* Round robin: connection k to loop k mod n; loop 0 is s. */
        k = (int) (s->next_kid++ % (unsigned) s->nkids);
        if (k > 0) {
            c->srv = s->kids[k];
            c->hop.fn = http_conn_adopt;
            if (s->post(s->post_env, k, &c->hop) == GW_OK)
                return;
            c->srv = s;
        }
    }
    http_conn_start(c);
}

static void
http_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    gw_http_server_t *s = w->data;
    int i;

    (void) revents;
    for (i = 0; i < HTTP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char key[INET6_ADDRSTRLEN + 4];
        int fd = accept4(s->fd, (struct sockaddr *) &ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                || errno == ENOMEM) {
                gw__log(GW_LOG_WARNING, s->name,
                        "accept: %s; pausing new connections for 100 ms",
                        strerror(errno));
                ev_io_stop(loop, &s->aio);
                ev_timer_set(&s->retry, 0.1, 0.);
                ev_timer_start(loop, &s->retry);
            }
            return;
        }
        http_addr_key(&ss, key, sizeof(key));
        http_conn_open(s, fd, &ss, key);
    }
}

static void
http_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_http_server_t *s = w->data;

    (void) revents;
    if (s->fd >= 0 && !s->stopping)
        ev_io_start(loop, &s->aio);
}

static int
http_bind(const char *host, int port, int *out_fd, int *out_port,
          gw_error_t *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int rc, fd = -1, one = 1, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0)
        return gw_error_set(err, "listen %s:%d: %s", host, port,
                            gai_strerror(rc));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
            && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return gw_error_set(err, "bind %s:%d: %s", host, port,
                            strerror(saved ? saved : EADDRNOTAVAIL));
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        *out_port = port;
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                *out_port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                *out_port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
        }
    }
    *out_fd = fd;
    return GW_OK;
}

int
gw__http_listen(struct ev_loop *loop, const char *name,
                const gw_http_listen_t *lopts,
                const gw__http_limits_t *limits, gw_http_handler_fn fn,
                void *arg, gw_http_server_t **out, gw_error_t *err)
{
    gw_http_server_t *s;
    const char *host = lopts->host != NULL ? lopts->host : "127.0.0.1";

    if (lopts->port < 0 || lopts->port > 65535)
        return gw_error_set(err, "listen %s:%d: PORT must be 0..65535", host,
                            lopts->port);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return gw_error_set(err, "out of memory");
    s->loop = loop;
    s->name = strdup(name != NULL ? name : "http");
    s->fn = fn;
    s->arg = arg;
    s->fd = -1;
    if (limits != NULL)
        s->lim = *limits;
    if (lopts->max_body > 0)
        s->lim.max_body = lopts->max_body;
    if (s->lim.max_body == 0)
        s->lim.max_body = HTTP_DEF_MAX_BODY;
    if (s->lim.max_header_bytes == 0)
        s->lim.max_header_bytes = HTTP_DEF_HEADER_BYTES;
    if (s->lim.max_headers == 0)
        s->lim.max_headers = HTTP_DEF_HEADERS;
    if (s->lim.header_timeout <= 0)
        s->lim.header_timeout = HTTP_DEF_HEADER_TIMEOUT;
    if (s->lim.idle_timeout <= 0)
        s->lim.idle_timeout = HTTP_DEF_IDLE_TIMEOUT;
    if (s->lim.max_connections == 0)
        s->lim.max_connections = HTTP_DEF_MAX_CONNECTIONS;
    if (s->lim.request_timeout <= 0)
        s->lim.request_timeout = HTTP_DEF_REQUEST_TIMEOUT;
    if (s->lim.max_per_address == 0)
        s->lim.max_per_address = HTTP_DEF_PER_ADDRESS;
    /* About two connections a bucket when full; 16 to 65536 buckets. */
    s->addr_buckets = 16;
    while (s->addr_buckets < 65536
           && s->addr_buckets * 2 < s->lim.max_connections)
        s->addr_buckets *= 2;
    s->addrs = calloc(s->addr_buckets, sizeof(*s->addrs));
    gw__http_settings_init(&s->settings);
    if (s->name == NULL || s->addrs == NULL) {
        free(s->name);
        free(s->addrs);
        free(s);
        return gw_error_set(err, "out of memory");
    }
    if (http_bind(host, lopts->port, &s->fd, &s->port, err) != GW_OK) {
        free(s->name);
        free(s->addrs);
        free(s);
        return GW_ERR;
    }
    ev_io_init(&s->aio, http_accept_cb, s->fd, EV_READ);
    s->aio.data = s;
    ev_init(&s->retry, http_retry_cb);
    s->retry.data = s;
    ev_io_start(loop, &s->aio);
    *out = s;
    return GW_OK;
}

void
gw__http_add_header(gw_http_req_t *req, const char *lines)
{
    gw__buf_add(&req->extra, lines, strlen(lines));
}

void
gw__http_set_headers(gw_http_server_t *srv, const char *headers)
{
    int i;

    srv->headers = headers;
    for (i = 1; i < srv->nkids; i++)
        srv->kids[i]->headers = headers;
}

int
gw__http_spread(gw_http_server_t *srv, int n, struct ev_loop *const *loops,
                gw__post_fn post, void *env)
{
    int i;

    if (n < 2 || srv->kids != NULL)
        return GW_OK;
    srv->kids = calloc((size_t) n, sizeof(*srv->kids));
    if (srv->kids == NULL)
        return GW_ERR;
    srv->kids[0] = srv;
    srv->nkids = 1;
    for (i = 1; i < n; i++) {
        gw_http_server_t *k = calloc(1, sizeof(*k));

        if (k == NULL)
            return GW_ERR; /* gw__http_close frees the kids made */
        k->loop = loops[i];
        k->name = srv->name;
        k->fd = -1;
        k->port = srv->port;
        k->lim = srv->lim;
        k->fn = srv->fn;
        k->arg = srv->arg;
        k->headers = srv->headers;
        k->settings = srv->settings;
        k->parent = srv;
        srv->kids[srv->nkids++] = k;
    }
    pthread_mutex_init(&srv->amu, NULL);
    srv->post = post;
    srv->post_env = env;
    srv->spread = 1;
    return GW_OK;
}

int
gw__http_port(const gw_http_server_t *srv)
{
    return srv->port;
}

/* Closes s's idle keep-alive connections now; busy ones close after
 * their answers (which say Connection: close). */
static void
http_quiesce(gw_http_server_t *s)
{
    http_conn_t *c, *next;

    s->stopping = 1;
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->qhead == NULL && c->cur == NULL && !c->busy
            && c->out_off == c->out.len && c->state != HTTP_BODY) {
            c->dead = 1;
            gw__http_progress(c);
        } else {
            gw_http_req_t *r;
            for (r = c->qhead; r != NULL; r = r->next)
                if (!r->answered)
                    r->close_after = 1;
        }
    }
}

void
gw__http_stop_accepting(gw_http_server_t *srv)
{
    int i;

    if (srv->stopping)
        return;
    ev_io_stop(srv->loop, &srv->aio);
    ev_timer_stop(srv->loop, &srv->retry);
    if (srv->fd >= 0) {
        close(srv->fd);
        srv->fd = -1;
    }
    http_quiesce(srv);
    for (i = 1; i < srv->nkids; i++)
        http_quiesce(srv->kids[i]);
}

/* Writes what s's connections have (unanswered requests get 503) and
 * closes them. */
static void
http_close_conns(gw_http_server_t *s)
{
    while (s->conns != NULL) {
        http_conn_t *c = s->conns;
        gw_http_req_t *r;

        /* Unanswered requests get 503 (best effort: one non-blocking
         * write); the handler may still answer them later, harmlessly. */
        for (r = c->qhead; r != NULL; r = r->next) {
            if (!r->answered) {
                gw__buf_t body = {0};
                gw_http_req_t *tmp = gw__http_req_new(c);
                if (tmp == NULL)
                    break;
                tmp->close_after = 1;
                gw__http_error_body(&body, "the server is shutting down");
                gw__http_req_format(tmp, 503, "application/json", NULL,
                                    body.p, body.len);
                gw__buf_free(&body);
                gw__buf_add(&c->out, tmp->resp.p, tmp->resp.len);
                gw__http_req_free(tmp);
                break; /* answers after it cannot be sent in order */
            }
            gw__buf_add(&c->out, r->resp.p, r->resp.len);
        }
        c->busy = 1; /* never re-enter through a handler */
        http_conn_write(c);
        http_conn_free(c);
    }
}

void
gw__http_close(gw_http_server_t *srv)
{
    int i;

    if (srv == NULL)
        return;
    gw__http_stop_accepting(srv);
    for (i = 1; i < srv->nkids; i++) {
        http_close_conns(srv->kids[i]);
        free(srv->kids[i]);
    }
    http_close_conns(srv);
    if (srv->spread)
        pthread_mutex_destroy(&srv->amu);
    free(srv->kids);
    free(srv->addrs); /* empty: each connection's count went with it */
    free(srv->name);
    free(srv);
}
