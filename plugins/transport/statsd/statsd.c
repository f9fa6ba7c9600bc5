/*
 * plugins/transport/statsd/statsd.c: the statsd transport (SPEC §5).
 *
 * Listens for the statsd line protocol on UDP (and, with TCP = true, on TCP
 * at the same port) and submits every value to one configured PROJECT:
 * counters as incr (value / rate), gauges as gauge, timers and histograms as
 * avg, DogStatsD tags as filters. statsd has no signatures, so the listener
 * is on loopback by default. Lines are parsed in place (statsd_parse.c);
 * nothing is allocated per line. A bad line is counted and skipped; the
 * other lines of its datagram are kept.
 *
 * Gauge deltas (`+N|g`, `-N|g`) need the gauge's current value, which the
 * core does not read back: this transport remembers the last value it saw
 * for each (name, tags as written) and submits prev + N as an absolute
 * gauge (0 + N the first time).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/plugin.h>

#include "../common/listen.h"
#include "statsd_parse.h"
#include "../../common/keyhash.h"

#define SD_UDP_BATCH 16      /* datagrams per recvmmsg */
#define SD_UDP_ROUNDS 8      /* recvmmsg calls per wakeup */
#define SD_DGRAM_MAX 65536   /* bytes per datagram buffer */
#define SD_TCP_READS 8       /* reads per connection per wakeup */

typedef struct sd_conn_s sd_conn_t;

/* One remembered gauge: "name\0tags" and its last value. */
typedef struct sd_gauge_s {
    char *key; /* NULL: free slot */
    size_t key_len;
    uint64_t hash;
    double value;
} sd_gauge_t;

typedef struct sd_state_s sd_state_t;

/* What one ingest loop needs of its own: its reader of the UDP socket
 * and the parser's scratch (its TCP connections are in lane). */
typedef struct sd_worker_s {
    sd_state_t *s;
    tl_lane_t *lane;
    int udp_fd; /* its UDP socket (the group's, or the one all share) */
    ev_io udp_w;
    int started;
    char *dgrams; /* SD_UDP_BATCH buffers of SD_DGRAM_MAX + 1 */
    struct mmsghdr msgs[SD_UDP_BATCH];
    struct iovec iovs[SD_UDP_BATCH];
    sd_line_t line; /* scratch for the parser */
    char *json;     /* a set value as a JSON event (sd_submit_set) */
    size_t json_cap;
} sd_worker_t;

struct sd_state_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;
    struct ev_loop *loop;

    /* Config (filled by config_apply). */
    const char *host_name;
    int64_t port;
    const char *project;
    int tcp;
    int64_t max_line;
    int64_t max_connections;
    int64_t max_gauges;

    int udp_fd;  /* the first UDP socket */
    int nudp;    /* UDP sockets: one per loop (a group), or 1 all read */
    int tcp_fd;
    ev_io tcp_w;
    ev_timer accept_retry;
    size_t nconns; /* over all loops (atomic) */
    int started;

    /* One per ingest loop: the UDP socket is read by all of them, and
     * TCP connections are spread over them (tl_lanes_hand). */
    tl_lanes_t lanes;
    sd_worker_t *workers;
    int nworkers;

    /* Remembered gauges, shared by the loops under gauges_mu (taken for
     * gauge lines only). */
    pthread_mutex_t gauges_mu;
    sd_gauge_t *gauges; /* open addressing, power of two */
    size_t gauges_cap;
    size_t ngauges;

    int warned_bad; /* atomic */
};

struct sd_conn_s {
    sd_state_t *s;
    tl_lane_t *lane; /* the loop it runs on */
    sd_conn_t *prev, *next;
    int fd;
    ev_io w;
    size_t used;
    int discarding; /* inside a line longer than MAX_LINE */
    char buf[];     /* MAX_LINE + 2 */
};

static const gw_config_key_t sd_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", sd_state_t,
                  host_name, "address to listen on (UDP and TCP)"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8125", sd_state_t, port,
                        "port to listen on", 1, 65535),
    GW_CONFIG_KEY("PROJECT", GW_CONFIG_STRING, NULL, sd_state_t, project,
                  "the project every statsd metric is counted in (required)"),
    GW_CONFIG_KEY("TCP", GW_CONFIG_BOOL, "true", sd_state_t, tcp,
                  "also accept the line protocol over TCP on the same port"),
    GW_CONFIG_KEY_RANGE("MAX_LINE", GW_CONFIG_INT, "8192", sd_state_t,
                        max_line, "longest accepted line, in bytes", 64,
                        SD_DGRAM_MAX),
    GW_CONFIG_KEY_RANGE("MAX_CONNECTIONS", GW_CONFIG_INT, "1024", sd_state_t,
                        max_connections, "open TCP connections at most", 1,
                        1000000),
    GW_CONFIG_KEY_RANGE("MAX_GAUGES", GW_CONFIG_INT, "100000", sd_state_t,
                        max_gauges,
                        "gauges whose last value is remembered for +N/-N",
                        1, 100000000),
    GW_CONFIG_END};

/* ---- gauges ---- */

static sd_gauge_t *
sd_gauge_slot(sd_gauge_t *tab, size_t cap, const char *key, size_t len,
              uint64_t h)
{
    size_t i = (size_t) h & (cap - 1);

    for (;;) {
        sd_gauge_t *g = &tab[i];

        if (g->key == NULL ||
            (g->hash == h && g->key_len == len && memcmp(g->key, key, len) == 0))
            return g;
        i = (i + 1) & (cap - 1);
    }
}

static int
sd_gauge_grow(sd_state_t *s)
{
    size_t cap = s->gauges_cap ? s->gauges_cap * 2 : 64, i;
    sd_gauge_t *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (i = 0; i < s->gauges_cap; i++) {
        sd_gauge_t *g = &s->gauges[i];

        if (g->key != NULL)
            *sd_gauge_slot(tab, cap, g->key, g->key_len, g->hash) = *g;
    }
    free(s->gauges);
    s->gauges = tab;
    s->gauges_cap = cap;
    return 0;
}

/* The remembered gauge for the current line, created if missing; NULL when
 * MAX_GAUGES is reached or memory is short. */
static sd_gauge_t *
sd_gauge_get(sd_state_t *s, const sd_line_t *l)
{
    char stack[512], *key = stack;
    size_t len = l->name_len + 1 + l->tags_raw_len;
    uint64_t h;
    sd_gauge_t *g = NULL;

    if (len > sizeof(stack) && (key = malloc(len)) == NULL)
        return NULL;
    memcpy(key, l->name, l->name_len);
    key[l->name_len] = '\0';
    memcpy(key + l->name_len + 1, l->tags_raw, l->tags_raw_len);
    h = pc_hash(key, len);

    if (s->gauges_cap != 0) {
        g = sd_gauge_slot(s->gauges, s->gauges_cap, key, len, h);
        if (g->key != NULL)
            goto out;
    }
    g = NULL;
    if (s->ngauges >= (size_t) s->max_gauges)
        goto out;
    if ((s->ngauges + 1) * 4 > s->gauges_cap * 3 && sd_gauge_grow(s) != 0)
        goto out;
    g = sd_gauge_slot(s->gauges, s->gauges_cap, key, len, h);
    g->key = malloc(len);
    if (g->key == NULL) {
        g = NULL;
        goto out;
    }
    memcpy(g->key, key, len);
    g->key_len = len;
    g->hash = h;
    g->value = 0;
    s->ngauges++;
out:
    if (key != stack)
        free(key);
    return g;
}

/* ---- lines ---- */

static void
sd_drop(sd_state_t *s, const char *reason, uint64_t n)
{
    s->host->count(s->ctx, GW_COUNTER_RECEIVED, NULL, n);
    s->host->count(s->ctx, GW_COUNTER_DROPPED, reason, n);
}

static void
sd_bad_line(sd_state_t *s, const char *reason, const char *why)
{
    sd_drop(s, reason, 1);
    if (!__atomic_exchange_n(&s->warned_bad, 1, __ATOMIC_RELAXED)) {
        gw_log_warning(s->ctx, "dropped a statsd line: %s (counted as "
                       "dropped{reason=\"%s\"}; further ones are logged at "
                       "debug level)", why, reason);
    } else {
        gw_log_debug(s->ctx, "dropped a statsd line: %s", why);
    }
}

/* Appends s[0..n) as a JSON string to s->json at *at (room checked by
 * the caller: 6 bytes per byte and the quotes). */
static void
sd_json_str(sd_worker_t *st, size_t *at, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = st->json + *at;
    size_t i;

    *o++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char) c;
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char) c;
        }
    }
    *o++ = '"';
    *at = (size_t) (o - st->json);
}

/*
 * A set value (|s): submitted as the JSON event {"n": name, "a": "set",
 * "v": member, "f": {tag: [values]}, "ts": T}, since a structured event
 * has no string value; the journal keeps it as such. Tags of one name
 * become one list. GW_ERR: out of memory or refused (err says why).
 */
static int
sd_submit_set(sd_worker_t *s, const sd_line_t *l, const sd_sample_t *smp,
              gw_error_t *err)
{
    size_t need = 64 + 6 * (l->name_len + smp->member_len), at = 0, i, j;
    char *p;

    for (i = 0; i < l->ntags; i++)
        need += 8 + 6 * (strlen(l->tags[i].name) + strlen(l->tags[i].value));
    if (need > s->json_cap) {
        p = realloc(s->json, need);
        if (p == NULL)
            return gw_error_set(err, "out of memory");
        s->json = p;
        s->json_cap = need;
    }
    memcpy(s->json, "{\"a\":\"set\",\"n\":", 15);
    at = 15;
    sd_json_str(s, &at, l->name, l->name_len);
    memcpy(s->json + at, ",\"v\":", 5);
    at += 5;
    sd_json_str(s, &at, smp->member, smp->member_len);
    if (l->has_ts)
        at += (size_t) snprintf(s->json + at, 40, ",\"ts\":%.17g", l->ts);
    for (i = 0; i < l->ntags; i++) {
        const char *name = l->tags[i].name;

        for (j = 0; j < i && strcmp(l->tags[j].name, name) != 0; j++)
            ;
        if (j < i)
            continue; /* listed with the first of its name */
        memcpy(s->json + at, i == 0 ? ",\"f\":{" : ",", i == 0 ? 6 : 1);
        at += i == 0 ? 6 : 1;
        sd_json_str(s, &at, name, strlen(name));
        memcpy(s->json + at, ":[", 2);
        at += 2;
        for (j = i; j < l->ntags; j++) {
            if (strcmp(l->tags[j].name, name) != 0)
                continue;
            if (j > i)
                s->json[at++] = ',';
            sd_json_str(s, &at, l->tags[j].value, strlen(l->tags[j].value));
        }
        s->json[at++] = ']';
    }
    if (l->ntags > 0)
        s->json[at++] = '}';
    s->json[at++] = '}';
    return s->s->host->submit_json(s->s->ctx, s->s->project, GW_ACTION_SET,
                                   s->json, at, 0, err);
}

/* Parses and submits one line, line[len] writable. */
static void
sd_handle_line(sd_worker_t *w, char *line, size_t len)
{
    sd_state_t *s = w->s;
    sd_line_t *l = &w->line;
    const char *why = NULL;
    size_t i;

    if (len > (size_t) s->max_line) {
        sd_bad_line(s, "line_too_long", "line longer than MAX_LINE");
        return;
    }
    switch (sd_parse_line(line, len, l, &why)) {
    case SD_LINE_EMPTY:
        return;
    case SD_LINE_DOGSTATSD:
        /* Not a metric: counted, nothing logged per line. */
        s->host->count(s->ctx, GW_COUNTER_RECEIVED, NULL, 1);
        s->host->count(s->ctx, GW_COUNTER_IGNORED, "dogstatsd_event", 1);
        return;
    case SD_LINE_BAD:
        sd_bad_line(s, "bad_line", why);
        return;
    case SD_LINE_RANGE:
        /* The core's reason for |v| > 1e300 too (a rate or a gauge delta
         * that takes a value past it is refused by submit). */
        sd_bad_line(s, "value_out_of_range", why);
        return;
    case SD_LINE_OK:
        break;
    }

    for (i = 0; i < l->nsamples; i++) {
        const sd_sample_t *smp = &l->samples[i];
        sd_gauge_t *g = NULL;
        gw_event_t ev;
        gw_error_t err;

        memset(&ev, 0, sizeof(ev));
        ev.name = l->name;
        ev.has_ts = l->has_ts;
        ev.ts = l->ts;
        ev.filters = l->ntags ? l->tags : NULL;
        ev.nfilters = l->ntags;

        switch (smp->type) {
        case SD_COUNTER:
            ev.action = GW_ACTION_INCR;
            ev.value = smp->value / smp->rate;
            break;
        case SD_TIMER:
            /* A timing (count, sum, min, max, percentiles); a metric that
             * was an avg before stays one. The sample rate is not applied:
             * count is the values received. */
            ev.action = GW_ACTION_TIMING;
            ev.value = smp->value;
            break;
        case SD_GAUGE:
            /* Held until the value is remembered, so that deltas of one
             * gauge on two loops both count. */
            pthread_mutex_lock(&s->gauges_mu);
            g = sd_gauge_get(s, l);
            ev.action = GW_ACTION_GAUGE;
            if (smp->gauge_delta) {
                if (g == NULL) {
                    pthread_mutex_unlock(&s->gauges_mu);
                    sd_bad_line(s, "too_many_gauges",
                                "gauge delta for a gauge beyond MAX_GAUGES");
                    continue;
                }
                ev.value = g->value + smp->value;
            } else {
                ev.value = smp->value;
            }
            break;
        case SD_SET:
            if (sd_submit_set(w, l, smp, &err) != GW_OK)
                gw_log_debug(s->ctx, "statsd set value of %s refused: %s",
                             l->name, err.msg);
            continue;
        default:
            continue;
        }
        if (s->host->submit(s->ctx, s->project, &ev, &err) != GW_OK) {
            if (smp->type == SD_GAUGE)
                pthread_mutex_unlock(&s->gauges_mu);
            gw_log_debug(s->ctx, "statsd value of %s refused: %s", l->name,
                         err.msg);
            continue;
        }
        /* Only a gauge the core took is the base of the next delta: a
         * refused one (out of range, say) is not the gauge's value. */
        if (g != NULL)
            g->value = ev.value;
        if (smp->type == SD_GAUGE)
            pthread_mutex_unlock(&s->gauges_mu);
    }
}

/* Every '\n'-separated line of buf[0..len); buf[len] writable. */
static void
sd_handle_lines(sd_worker_t *s, char *buf, size_t len)
{
    size_t start = 0;

    while (start < len) {
        char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t) (nl - buf) : len;

        sd_handle_line(s, buf + start, end - start);
        start = end + 1;
    }
}

/* ---- UDP ---- */

static void
sd_udp_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sd_worker_t *w = io->data;
    sd_state_t *s = w->s;
    int round, i, n;

    (void) loop;
    (void) revents;
    for (round = 0; round < SD_UDP_ROUNDS; round++) {
        n = tl_recv_batch(s->ctx, w->udp_fd, w->msgs, w->iovs, w->dgrams,
                          SD_UDP_BATCH, SD_DGRAM_MAX);
        if (n < 0)
            return;
        for (i = 0; i < n; i++)
            sd_handle_lines(w, w->iovs[i].iov_base, w->msgs[i].msg_len);
        if (n < SD_UDP_BATCH)
            return;
    }
}

/* ---- TCP ---- */

static void
sd_conn_close(sd_conn_t *c)
{
    sd_state_t *s = c->s;

    ev_io_stop(c->lane->loop, &c->w);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->lane->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    __atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
    free(c);
}

/* Handles the complete lines in c->buf and keeps the rest. */
static void
sd_conn_lines(sd_conn_t *c)
{
    sd_state_t *s = c->s;
    sd_worker_t *w = &s->workers[c->lane->index];
    size_t start = 0;
    char *nl;

    while ((nl = memchr(c->buf + start, '\n', c->used - start)) != NULL) {
        size_t end = (size_t) (nl - c->buf);

        if (c->discarding)
            c->discarding = 0; /* the end of a line already counted */
        else
            sd_handle_line(w, c->buf + start, end - start);
        start = end + 1;
    }
    if (start > 0) {
        memmove(c->buf, c->buf + start, c->used - start);
        c->used -= start;
    }
    if (c->used > (size_t) s->max_line) {
        /* No newline within MAX_LINE + 1 bytes: count the line once and
         * skip the rest of it. */
        if (!c->discarding)
            sd_bad_line(s, "line_too_long", "line longer than MAX_LINE");
        c->discarding = 1;
        c->used = 0;
    }
}

static void
sd_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sd_conn_t *c = w->data;
    size_t cap = (size_t) c->s->max_line + 1;
    int i;

    (void) loop;
    (void) revents;
    for (i = 0; i < SD_TCP_READS; i++) {
        ssize_t n = read(c->fd, c->buf + c->used, cap - c->used);

        if (n > 0) {
            c->used += (size_t) n;
            sd_conn_lines(c);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        /* EOF (or an error): a last line without '\n' is still a line. */
        if (n == 0 && c->used > 0 && !c->discarding)
            sd_handle_line(&c->s->workers[c->lane->index], c->buf, c->used);
        sd_conn_close(c);
        return;
    }
}

static void
sd_accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    sd_state_t *s = w->data;

    (void) revents;
    ev_io_start(loop, &s->tcp_w);
}

/* A new connection starts on its lane's loop, on that loop's thread. */
static void
sd_conn_begin(void *arg)
{
    sd_conn_t *c = arg;
    tl_lane_t *l = c->lane;
    sd_conn_t *head = l->conns;

    c->prev = NULL;
    c->next = head;
    if (head)
        head->prev = c;
    l->conns = c;
    ev_io_init(&c->w, sd_conn_cb, c->fd, EV_READ);
    c->w.data = c;
    ev_io_start(l->loop, &c->w);
}

static void
sd_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sd_state_t *s = w->data;
    int i;

    (void) revents;
    for (i = 0; i < 64; i++) {
        int fd = accept4(s->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        sd_conn_t *c;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                gw_log_warning(s->ctx, "accept: %s; pausing for 1 s",
                               strerror(errno));
                ev_io_stop(loop, &s->tcp_w);
                ev_timer_set(&s->accept_retry, 1.0, 0.0);
                ev_timer_start(loop, &s->accept_retry);
            }
            return;
        }
        if (__atomic_load_n(&s->nconns, __ATOMIC_RELAXED)
            >= (size_t) s->max_connections) {
            gw_log_warning(s->ctx, "refusing a TCP connection: "
                           "MAX_CONNECTIONS (%lld) are open",
                           (long long) s->max_connections);
            close(fd);
            continue;
        }
        c = malloc(sizeof(*c) + (size_t) s->max_line + 2);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        c->used = 0;
        c->discarding = 0;
        __atomic_add_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
        tl_lanes_hand(s->ctx, &s->lanes, &c->lane, sd_conn_begin, c);
    }
}

/* ---- sockets ---- */

static int
sd_socket(sd_state_t *s, int type, gw_error_t *err)
{
    const char *what = (type == SOCK_DGRAM) ? "udp" : "tcp";
    int fd, gai, sys, i, fds[64];

    if (type == SOCK_DGRAM) {
        /* One socket per loop in a group that spreads datagrams at
         * random (tl_open_spread), or one that every loop reads. */
        s->nudp = tl_open_spread(s->host_name, (int) s->port, 0,
                                 s->nworkers < 64 ? s->nworkers : 64, fds,
                                 &gai, &sys);
        fd = s->nudp > 0 ? fds[0] : -1;
        for (i = 0; i < s->nworkers; i++)
            s->workers[i].udp_fd = i < s->nudp ? fds[i] : fd;
    } else {
        fd = tl_open(s->host_name, (int) s->port, type, 511, 0, &gai, &sys);
    }
    if (gai != 0) {
        gw_error_set(err, "HOST \"%s\": %s", s->host_name, gai_strerror(gai));
        return -1;
    }
    if (fd < 0) {
        gw_error_set(err, "bind %s %s:%lld: %s", what, s->host_name,
                     (long long) s->port, strerror(sys));
        return -1;
    }
    for (i = 0; type == SOCK_DGRAM && i < s->nudp; i++) {
        int rcvbuf = 4 * 1024 * 1024;

        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    return fd;
}

/* ---- ops ---- */

static int
sd_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    sd_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "out of memory");
    s->ctx = ctx;
    s->host = ctx->host;
    s->udp_fd = -1;
    s->tcp_fd = -1;
    if (ctx->host->config_apply(ctx, sd_keys, s, err) != GW_OK) {
        free(s);
        return GW_ERR;
    }
    if (s->project == NULL || s->project[0] == '\0') {
        free(s);
        return gw_error_set(err, "PROJECT is required: name the project "
                            "(from PROJECTS) that statsd metrics are counted in");
    }
    pthread_mutex_init(&s->gauges_mu, NULL);
    *state = s;
    return GW_OK;
}

/* A reader of the UDP socket and the parser's scratch for every ingest
 * loop, beside its lane. */
static int
sd_workers(sd_state_t *s, gw_error_t *err)
{
    int i;

    if (tl_lanes_init(s->ctx, &s->lanes, err) != GW_OK)
        return GW_ERR;
    s->workers = calloc((size_t) s->lanes.n, sizeof(*s->workers));
    if (s->workers == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < s->lanes.n; i++) {
        sd_worker_t *w = &s->workers[i];

        w->s = s;
        w->lane = &s->lanes.v[i];
        w->dgrams = malloc((size_t) SD_UDP_BATCH * (SD_DGRAM_MAX + 1));
        s->nworkers++; /* destroy frees its buffers */
        if (w->dgrams == NULL)
            return gw_error_set(err, "out of memory");
    }
    return GW_OK;
}

static int
sd_start(void *state, gw_error_t *err)
{
    sd_state_t *s = state;
    int i;

    s->loop = s->host->loop(s->ctx);
    if (!s->host->project_exists(s->ctx, s->project))
        return gw_error_set(err, "PROJECT \"%s\" is not in PROJECTS: statsd "
                            "metrics need a configured project", s->project);
    if (sd_workers(s, err) != GW_OK)
        return GW_ERR;
    s->udp_fd = sd_socket(s, SOCK_DGRAM, err);
    if (s->udp_fd < 0)
        return GW_ERR;
    if (s->tcp) {
        s->tcp_fd = sd_socket(s, SOCK_STREAM, err);
        if (s->tcp_fd < 0) {
            for (i = 1; i < s->nudp; i++)
                close(s->workers[i].udp_fd);
            close(s->udp_fd);
            s->udp_fd = -1;
            s->nudp = 0;
            return GW_ERR;
        }
        ev_io_init(&s->tcp_w, sd_accept_cb, s->tcp_fd, EV_READ);
        s->tcp_w.data = s;
        ev_init(&s->accept_retry, sd_accept_retry_cb);
        s->accept_retry.data = s;
        ev_io_start(s->loop, &s->tcp_w);
    }
    /* Every loop reads its UDP socket of the group (as the udp transport
     * does; or all read one where the kernel refused the group). */
    for (i = 0; i < s->nworkers; i++) {
        sd_worker_t *w = &s->workers[i];

        ev_io_init(&w->udp_w, sd_udp_cb, w->udp_fd, EV_READ);
        w->udp_w.data = w;
        ev_io_start(w->lane->loop, &w->udp_w);
        w->started = 1;
    }
    s->started = 1;
    if (s->nworkers > 1)
        gw_log_info(s->ctx, "statsd on %s:%lld (udp%s) for project %s, on "
                    "%d ingest loops",
                    s->host_name, (long long) s->port,
                    s->tcp ? " and tcp" : "", s->project, s->nworkers);
    else
        gw_log_info(s->ctx, "statsd on %s:%lld (udp%s) for project %s",
                    s->host_name, (long long) s->port,
                    s->tcp ? " and tcp" : "", s->project);
    return GW_OK;
}

static void
sd_stop(void *state)
{
    sd_state_t *s = state;
    int i;

    if (!s->started)
        return;
    s->started = 0;
    /* The other loops no longer run (host.h): this thread stops all. */
    for (i = 0; i < s->nworkers; i++)
        if (s->workers[i].started) {
            ev_io_stop(s->workers[i].lane->loop, &s->workers[i].udp_w);
            s->workers[i].started = 0;
        }
    for (i = 1; i < s->nudp; i++)
        close(s->workers[i].udp_fd);
    close(s->udp_fd);
    s->udp_fd = -1;
    if (s->tcp_fd >= 0) {
        ev_io_stop(s->loop, &s->tcp_w);
        ev_timer_stop(s->loop, &s->accept_retry);
        close(s->tcp_fd);
        s->tcp_fd = -1;
    }
    /* Complete lines were handled as they arrived. Bytes after a
     * connection's last '\n' may be half a line ("foo:12" of "foo:123|c"):
     * they are counted as dropped, not guessed at. */
    for (i = 0; i < s->lanes.n; i++)
        while (s->lanes.v[i].conns != NULL) {
            sd_conn_t *c = s->lanes.v[i].conns;

            if (c->used > 0 && !c->discarding)
                sd_drop(s, "partial_line", 1);
            sd_conn_close(c);
        }
}

static void
sd_destroy(void *state)
{
    sd_state_t *s = state;
    size_t i;

    if (s == NULL)
        return;
    sd_stop(s);
    for (i = 0; i < s->gauges_cap; i++)
        free(s->gauges[i].key);
    free(s->gauges);
    pthread_mutex_destroy(&s->gauges_mu);
    for (i = 0; i < (size_t) s->nworkers; i++) {
        free(s->workers[i].dgrams);
        free(s->workers[i].json);
    }
    free(s->workers);
    free(s->lanes.v);
    free(s);
}

static const gw_transport_ops_t sd_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = sd_create,
    .start = sd_start,
    .stop = sd_stop,
    .destroy = sd_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "statsd",
    .version = "0.1.0",
    .description = "statsd and DogStatsD line protocol over UDP and TCP",
    .transport = &sd_ops,
};
