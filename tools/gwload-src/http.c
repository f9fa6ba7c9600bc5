/*
 * tools/gwload-src/http.c: the http protocol: POST {prefix}/api/v1/{project}/
 * {action} over HTTP/1.1 keep-alive connections, --pipeline requests in
 * flight on each, driven by epoll. The body is one event or a JSON array of
 * --per-packet events; S1 and Basic headers are prebuilt with the ring, S3
 * ones are signed per request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "gwload.h"

/* ---- the payloads ---- */

/* The body of events first .. first+P-1: one event, or an array of P. */
size_t
http_body(char *buf, size_t room, uint64_t first, long ts)
{
    size_t len = 0;
    int k;

    if (opt.per_packet > 1)
        buf[len++] = '[';
    for (k = 0; k < opt.per_packet; k++) {
        if (k)
            buf[len++] = ',';
        len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
    }
    if (opt.per_packet > 1)
        buf[len++] = ']';
    return len;
}

/* Sets the hex SHA-256 of un's body (for S3) and, unless S3 signs each
 * request, prebuilds its request line and headers. Returns their bytes. */
size_t
http_prepare(gl_unit_t *un)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char head[1024];
    char authline[600] = "";
    size_t n = un->body_len;
    int hl;

    SHA256((const unsigned char *)un->body, n, md);
    hex(md, SHA256_DIGEST_LENGTH, un->sha_hex);
    if (opt.auth == GL_AUTH_S3)
        return 0;
    if (opt.auth == GL_AUTH_S1)
        snprintf(authline, sizeof(authline), "X-GottWall-Auth: %s\r\n", s_header);
    else if (opt.auth == GL_AUTH_BASIC)
        snprintf(authline, sizeof(authline), "Authorization: Basic %s\r\n", basic_value);
    hl = snprintf(head, sizeof(head),
                  "POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                  opt.prefix, opt.project, opt.action, opt.host, opt.port, n, authline);
    un->head = xmalloc((size_t)hl + 1);
    memcpy(un->head, head, (size_t)hl + 1);
    un->head_len = (size_t)hl;
    return (size_t)hl;
}

/* --print-payload with S3: the headers of the first request, signed at ts. */
void
http_print_s3_head(long ts)
{
    char auth[300];
    char nonce[96];

    snprintf(nonce, sizeof(nonce), "%s-00-%010d", opt.run_id, 0);
    sign_s3(ts, nonce, ring[0].sha_hex, auth, sizeof(auth));
    printf("POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
           "Content-Type: application/json\r\nContent-Length: %zu\r\n"
           "X-GottWall-Auth: %s\r\n\r\n",
           opt.prefix, opt.project, opt.action, opt.host, opt.port, ring[0].body_len, auth);
}

/* ---- the connections ---- */

typedef struct gl_conn_s {
    int fd;
    int inflight; /* requests written (wholly or partly) and not yet answered */
    int wpending; /* the last request is partly written */
    struct iovec iov[2];
    int iovcnt;
    char head[1024];
    char *rbuf;
    size_t rlen;
} gl_conn_t;

#define GL_RBUF 16384

static int
http_connect(gl_conn_t *c, int ep)
{
    struct epoll_event ev;

    c->fd = open_socket(SOCK_STREAM);
    if (c->fd < 0)
        return -1;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->inflight = 0;
    c->wpending = 0;
    c->rlen = 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Drops a broken connection and opens a new one. */
static int
http_reconnect(gl_thread_t *t, gl_conn_t *c, int ep)
{
    t->st.unanswered += (uint64_t)c->inflight;
    close(c->fd);
    c->fd = -1;
    t->st.reconnects++;
    if (t->st.reconnects > 1000) {
        snprintf(t->fatal, sizeof(t->fatal), "http: over 1000 reconnects: the server closes connections");
        return -1;
    }
    if (http_connect(c, ep) < 0) {
        snprintf(t->fatal, sizeof(t->fatal), "http reconnect: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes what is left of the current request: 0 done or blocked, -1 error. */
static int
http_flush(gl_conn_t *c)
{
    while (c->wpending) {
        ssize_t w = writev(c->fd, c->iov, c->iovcnt);
        size_t left;
        int i;

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        left = (size_t)w;
        for (i = 0; i < c->iovcnt; i++) {
            size_t k = left < c->iov[i].iov_len ? left : c->iov[i].iov_len;
            c->iov[i].iov_base = (char *)c->iov[i].iov_base + k;
            c->iov[i].iov_len -= k;
            left -= k;
        }
        if (c->iov[c->iovcnt - 1].iov_len == 0)
            c->wpending = 0;
    }
    return 0;
}

static void
http_start(gl_thread_t *t, gl_conn_t *c, size_t unit, uint64_t seq)
{
    gl_unit_t *u = &ring[unit];

    if (u->head) {
        c->iov[0].iov_base = u->head;
        c->iov[0].iov_len = u->head_len;
    } else {
        char nonce[96], auth[300];
        int hl;

        snprintf(nonce, sizeof(nonce), "%s-%02d-%010" PRIu64, opt.run_id, t->id, seq);
        sign_s3((long)time(NULL), nonce, u->sha_hex, auth, sizeof(auth));
        hl = snprintf(c->head, sizeof(c->head),
                      "POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "X-GottWall-Auth: %s\r\n\r\n",
                      opt.prefix, opt.project, opt.action, opt.host, opt.port, u->body_len, auth);
        c->iov[0].iov_base = c->head;
        c->iov[0].iov_len = (size_t)hl;
    }
    c->iov[1].iov_base = u->body;
    c->iov[1].iov_len = u->body_len;
    c->iovcnt = 2;
    c->wpending = 1;
    c->inflight++;
    t->st.units++;
    t->st.events += (uint64_t)opt.per_packet;
}

/* Reads and counts responses: 0 ok, -1 the connection is gone. */
static int
http_read(gl_thread_t *t, gl_conn_t *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->rbuf + c->rlen, GL_RBUF - c->rlen);
        int closing = 0, drained;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        if (r == 0)
            return -1;
        c->rlen += (size_t)r;
        /* a short read drained the socket: the next byte raises a new edge */
        drained = (size_t)r < GL_RBUF - (c->rlen - (size_t)r);
        for (;;) {
            char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            const char *v;
            long vl;
            size_t hlen, blen = 0;
            int status;

            if (end == NULL) {
                if (c->rlen == GL_RBUF)
                    return -1; /* headers too large */
                break;
            }
            hlen = (size_t)(end - c->rbuf) + 4;
            if (c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7) != 0)
                return -1;
            status = atoi(c->rbuf + 9);
            vl = header_value(c->rbuf, end, "content-length", &v);
            if (vl > 0)
                blen = (size_t)strtoul(v, NULL, 10);
            else if (header_value(c->rbuf, end, "transfer-encoding", &v) > 0) {
                snprintf(t->fatal, sizeof(t->fatal), "http: chunked responses are not supported");
                return -1;
            }
            vl = header_value(c->rbuf, end, "connection", &v);
            if (vl == 5 && strncasecmp(v, "close", 5) == 0)
                closing = 1;
            if (hlen + blen > GL_RBUF)
                return -1;
            if (c->rlen < hlen + blen)
                break;
            memmove(c->rbuf, c->rbuf + hlen + blen, c->rlen - hlen - blen);
            c->rlen -= hlen + blen;
            c->inflight--;
            t->st.responses++;
            if (status >= 200 && status < 300)
                t->st.ok++;
            else {
                t->st.bad_status++;
                t->st.last_bad_status = status;
            }
            if (closing)
                return -1;
        }
        if (drained)
            return 0;
    }
}

void
run_http(gl_thread_t *t)
{
    gl_conn_t *conns = xmalloc(sizeof(*conns) * (size_t)t->nconns);
    struct epoll_event evs[64];
    size_t next = t->first_unit;
    uint64_t seq = 0;
    double drain_deadline = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int i, rr = 0;

    for (i = 0; i < t->nconns; i++) {
        conns[i].rbuf = xmalloc(GL_RBUF);
        if (http_connect(&conns[i], ep) < 0) {
            snprintf(t->fatal, sizeof(t->fatal), "connect http %s:%d: %s", opt.host, opt.port,
                     strerror(errno));
            t->nconns = i;
            goto out;
        }
    }
    for (;;) {
        int sending = !time_up(t), room = 0, inflight = 0, n, k;

        if (!sending) {
            for (i = 0; i < t->nconns; i++)
                inflight += conns[i].inflight;
            if (inflight == 0)
                break;
            if (drain_deadline == 0)
                drain_deadline = now_mono() + 5.0;
            else if (now_mono() > drain_deadline)
                break;
        }
        if (sending) {
            for (k = 0; k < t->nconns && !time_up(t); k++) {
                gl_conn_t *c = &conns[(rr + k) % t->nconns];

                if (c->wpending || c->inflight >= opt.pipeline)
                    continue;
                if (pace(t, 1) == 0)
                    break;
                http_start(t, c, next, seq++);
                next = (next + 1) % ring_units;
                if (http_flush(c) < 0 && http_reconnect(t, c, ep) < 0)
                    goto out;
                if (!c->wpending && c->inflight < opt.pipeline)
                    room = 1;
            }
            rr = (rr + 1) % t->nconns;
        }
        n = epoll_wait(ep, evs, 64, room ? 0 : 10);
        for (k = 0; k < n; k++) {
            gl_conn_t *c = evs[k].data.ptr;

            if ((evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && http_read(t, c) < 0) {
                if (t->fatal[0] || http_reconnect(t, c, ep) < 0)
                    goto out;
                continue;
            }
            if ((evs[k].events & EPOLLOUT) && http_flush(c) < 0 && http_reconnect(t, c, ep) < 0)
                goto out;
            /* refill this connection at once, so the server always has
             * requests waiting rather than getting them in bursts */
            while (!c->wpending && c->inflight < opt.pipeline && !time_up(t) && pace(t, 1) > 0) {
                http_start(t, c, next, seq++);
                next = (next + 1) % ring_units;
                if (http_flush(c) < 0) {
                    if (http_reconnect(t, c, ep) < 0)
                        goto out;
                    break;
                }
            }
        }
    }
out:
    for (i = 0; i < t->nconns; i++) {
        t->st.unanswered += (uint64_t)conns[i].inflight;
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].rbuf);
    }
    free(conns);
    close(ep);
}
