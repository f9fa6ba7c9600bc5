/*
 * tools/gwload-src/readback.c: --read-back: after sending, the all-time totals
 * of every metric name used, from the read API (GET {prefix}/api/v1/
 * {project}/stats?name=...&period=all with Basic auth), polled until they
 * reach the events sent or stop growing. A small HTTP/1.1 client of its own:
 * keep-alive, Content-Length, chunked or read-to-close bodies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gwload.h"

typedef struct rb_s {
    int fd;
    char host[256];
    int port;
    char prefix[256];
    struct sockaddr_in addr;
    char *buf;
    size_t len, cap;
} rb_t;

static void
rb_parse_url(rb_t *rb, const char *url)
{
    const char *p = url, *colon, *slash;
    size_t hl;

    if (strncmp(p, "http://", 7) != 0)
        die("--read-back wants http://HOST:PORT[/PREFIX], not '%s'", url);
    p += 7;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    hl = (size_t)((colon ? colon : slash) - p);
    if (hl == 0 || hl >= sizeof(rb->host))
        die("--read-back: bad host in '%s'", url);
    memcpy(rb->host, p, hl);
    rb->host[hl] = '\0';
    rb->port = colon ? atoi(colon + 1) : 80;
    snprintf(rb->prefix, sizeof(rb->prefix), "%s", slash);
    hl = strlen(rb->prefix);
    while (hl > 0 && rb->prefix[hl - 1] == '/')
        rb->prefix[--hl] = '\0';
    memset(&rb->addr, 0, sizeof(rb->addr));
    rb->addr.sin_family = AF_INET;
    rb->addr.sin_port = htons((uint16_t)rb->port);
    if (inet_pton(AF_INET, rb->host, &rb->addr.sin_addr) != 1)
        die("--read-back: '%s' is not an IPv4 address", rb->host);
    if (!opt.allow_remote && (ntohl(rb->addr.sin_addr.s_addr) >> 24) != 127)
        die("--read-back: %s is not a loopback address (--allow-remote to permit)", rb->host);
    rb->fd = -1;
    rb->cap = 65536;
    rb->buf = xmalloc(rb->cap);
}

/* Reads more bytes into rb->buf: >0 read, 0 EOF, -1 error. */
static ssize_t
rb_fill(rb_t *rb)
{
    ssize_t r;

    if (rb->len + 4096 > rb->cap) {
        rb->cap *= 2;
        rb->buf = realloc(rb->buf, rb->cap);
        if (rb->buf == NULL)
            die("out of memory");
    }
    do
        r = read(rb->fd, rb->buf + rb->len, rb->cap - rb->len - 1);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        rb->len += (size_t)r;
    return r;
}

/* One GET; the body is left NUL-terminated at *body. Returns status or -1. */
static int
rb_get_once(rb_t *rb, const char *path, char **body)
{
    char req[2048];
    char *end;
    const char *v;
    size_t hlen;
    long vl;
    int status, closing = 0;

    if (rb->fd < 0) {
        struct timeval tv = {10, 0};

        rb->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(rb->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(rb->fd, (struct sockaddr *)&rb->addr, sizeof(rb->addr)) < 0) {
            close(rb->fd);
            rb->fd = -1;
            return -1;
        }
    }
    snprintf(req, sizeof(req),
             "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Basic %s\r\n\r\n", rb->prefix,
             path, rb->host, rb->port, basic_value);
    rb->len = 0;
    if (write_all(rb->fd, req, strlen(req)) < 0)
        goto fail;
    while ((end = memmem(rb->buf, rb->len, "\r\n\r\n", 4)) == NULL)
        if (rb_fill(rb) <= 0)
            goto fail;
    hlen = (size_t)(end - rb->buf) + 4;
    if (strncmp(rb->buf, "HTTP/1.", 7) != 0)
        goto fail;
    status = atoi(rb->buf + 9);
    vl = header_value(rb->buf, end, "connection", &v);
    if (vl == 5 && strncasecmp(v, "close", 5) == 0)
        closing = 1;
    if ((vl = header_value(rb->buf, end, "content-length", &v)) > 0) {
        size_t blen = (size_t)strtoul(v, NULL, 10);
        while (rb->len < hlen + blen)
            if (rb_fill(rb) <= 0)
                goto fail;
        rb->buf[hlen + blen] = '\0';
        *body = rb->buf + hlen;
    } else if ((vl = header_value(rb->buf, end, "transfer-encoding", &v)) > 0) {
        /* chunked: decode in place */
        size_t in = hlen, out = hlen;
        for (;;) {
            char *eol;
            size_t csz;

            while ((eol = memmem(rb->buf + in, rb->len - in, "\r\n", 2)) == NULL)
                if (rb_fill(rb) <= 0)
                    goto fail;
            csz = (size_t)strtoul(rb->buf + in, NULL, 16);
            in = (size_t)(eol - rb->buf) + 2;
            while (rb->len < in + csz + 2)
                if (rb_fill(rb) <= 0)
                    goto fail;
            if (csz == 0)
                break;
            memmove(rb->buf + out, rb->buf + in, csz);
            out += csz;
            in += csz + 2;
        }
        rb->buf[out] = '\0';
        *body = rb->buf + hlen;
    } else {
        ssize_t r;
        while ((r = rb_fill(rb)) > 0)
            ;
        if (r < 0)
            goto fail;
        rb->buf[rb->len] = '\0';
        *body = rb->buf + hlen;
        closing = 1;
    }
    if (closing) {
        close(rb->fd);
        rb->fd = -1;
    }
    return status;
fail:
    close(rb->fd);
    rb->fd = -1;
    return -1;
}

static int
rb_get(rb_t *rb, const char *path, char **body)
{
    int st = rb_get_once(rb, path, body);

    if (st < 0) /* the server may have closed an idle keep-alive connection */
        st = rb_get_once(rb, path, body);
    return st;
}

/* Sums the values of "range": [[ts, value], ...] in a stats answer. */
static int
parse_range_sum(const char *body, double *sum)
{
    const char *p = strstr(body, "\"range\"");
    char *e;

    *sum = 0;
    if (p == NULL)
        return -1;
    p += 7;
    while (*p == ' ' || *p == ':')
        p++;
    if (*p++ != '[')
        return -1;
    for (;;) {
        double v;

        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p == ']')
            return 0;
        if (*p++ != '[')
            return -1;
        strtod(p, &e);
        if (e == p)
            return -1;
        p = e;
        while (*p == ' ' || *p == ',')
            p++;
        v = strtod(p, &e);
        if (e == p) {
            if (strncmp(p, "null", 4) != 0)
                return -1;
            e = (char *)p + 4;
            v = 0;
        }
        *sum += v;
        p = e;
        while (*p == ' ')
            p++;
        if (*p++ != ']')
            return -1;
    }
}

/* Sums the all-time totals of the metrics marked in used[]. */
static double
read_totals(rb_t *rb, const unsigned char *used, uint64_t *errors, char *errmsg, size_t errsz)
{
    double total = 0;
    char path[512];
    int m;

    *errors = 0;
    for (m = 0; m < opt.metrics; m++) {
        char *body = NULL;
        double v;
        int st;

        if (!used[m])
            continue;
        /* A timing's value is its mean: its events are its count. */
        snprintf(path, sizeof(path), "/api/v1/%s/stats?name=%s.m%d&period=all%s", opt.project,
                 opt.run_id, m, opt.timers ? "&stat=count" : "");
        st = rb_get(rb, path, &body);
        if (st != 200 || parse_range_sum(body, &v) < 0) {
            if (*errors == 0) {
                if (st < 0)
                    snprintf(errmsg, errsz, "GET %.100s%.300s: no answer", rb->prefix, path);
                else
                    snprintf(errmsg, errsz, "GET %.100s%.300s: %d %.80s", rb->prefix, path, st,
                             body ? body : "");
            }
            (*errors)++;
            continue;
        }
        total += v;
    }
    return total;
}

/* Polls the totals of the names in used[] until they reach sent, stop
 * changing for --settle seconds or --read-back-timeout passes; prints
 * stored=, loss= (and readback_errors=) to the summary line. */
void
read_back(const unsigned char *used, uint64_t sent)
{
    rb_t rb;
    double stored = -1, last = -1, last_change = now_mono();
    double give_up = now_mono() + opt.read_back_timeout;
    uint64_t errors = 0;
    char errmsg[512] = "";

    rb_parse_url(&rb, opt.read_back);
    for (;;) {
        double now;

        stored = read_totals(&rb, used, &errors, errmsg, sizeof(errmsg));
        now = now_mono();
        if (opt.verbose)
            fprintf(stderr, "gwload: read back %.0f of %" PRIu64 "\n", stored, sent);
        if (stored != last) {
            last = stored;
            last_change = now;
        }
        if (stored >= (double)sent || now - last_change >= opt.settle || now >= give_up)
            break;
        usleep(200000);
    }
    if (rb.fd >= 0)
        close(rb.fd);
    printf(" stored=%.0f loss=%.3f%%", stored,
           100.0 * ((double)sent - stored) / (double)sent);
    if (errors) {
        printf(" readback_errors=%" PRIu64, errors);
        fprintf(stderr, "gwload: read-back: %s\n", errmsg);
    }
    free(rb.buf);
}
