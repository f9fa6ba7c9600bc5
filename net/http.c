/*
 * net/http.c: the core's HTTP/1.1 server, on libev and http-parser.
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
 * and reading stop until the client reads). One timer per connection
 * enforces the header, body, idle and write timeouts. A request stream
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <http_parser.h>

#include <gottwall/version.h>

#include "http.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"

#define HTTP_READ_CHUNK 16384
#define HTTP_MAX_PIPELINE 32          /* requests queued per connection */
#define HTTP_OUT_HIGH (256u * 1024u)  /* stop parsing above this output */
#define HTTP_LINGER 2.0               /* s to drain input after an error */
#define HTTP_ACCEPT_BATCH 64
#define HTTP_SERVER_HEADER "GottWall/0.1.0"

#define HTTP_DEF_MAX_BODY (1024u * 1024u)
#define HTTP_DEF_HEADER_BYTES 16384u
#define HTTP_DEF_HEADERS 64u
#define HTTP_DEF_HEADER_TIMEOUT 10.0
#define HTTP_DEF_IDLE_TIMEOUT 60.0
#define HTTP_DEF_MAX_CONNECTIONS 1024u

typedef struct http_hdr_s {
    gw__buf_t name;
    gw__buf_t value;
} http_hdr_t;

typedef struct http_conn_s http_conn_t;

struct gw_http_req_s {
    http_conn_t *conn;      /* NULL once the connection is gone */
    gw_http_req_t *next;    /* the connection's queue */
    const char *method;     /* static, from http-parser */
    gw__buf_t url;
    char *path;             /* decoded */
    char *query;            /* raw, "" if none */
    http_hdr_t *hdrs;
    size_t nhdrs, hdrs_cap;
    gw__buf_t body;
    char peer[INET6_ADDRSTRLEN];
    int keep_alive;
    int is_head;
    int handed;             /* given to the handler: it will answer */
    int answered;           /* resp holds the answer */
    int close_after;        /* close the connection after this answer */
    gw__buf_t resp;
};

enum http_state {
    HTTP_IDLE,    /* between requests (or nothing received yet) */
    HTTP_HEADERS, /* a request's head is arriving */
    HTTP_BODY,    /* its body is arriving */
    HTTP_LINGER_ST /* answered the last thing; draining input */
};

struct http_conn_s {
    gw_http_server_t *srv;
    http_conn_t *prev, *next;
    int fd;
    ev_io rio, wio;
    ev_timer timer;
    http_parser parser;
    gw_http_req_t *cur;           /* being parsed */
    gw_http_req_t *qhead, *qtail; /* parsed, in order */
    size_t nqueued;
    gw__buf_t out;
    size_t out_off;
    char *in;                     /* HTTP_READ_CHUNK bytes */
    size_t in_off, in_len;        /* unparsed bytes in[in_off..in_len) */
    enum http_state state;
    ev_tstamp mark;               /* start of the current timeout */
    size_t hdr_bytes;
    int last_was_value;
    int err_status;               /* set by a callback before failing */
    const char *err_msg;
    char err_buf[128];
    int closing;                  /* parse no more; close when answered */
    int eof;                      /* the peer stopped sending */
    int dead;
    int busy;
    int again;
    int reading, writing;
    char peer[INET6_ADDRSTRLEN];
};

struct gw_http_server_s {
    struct ev_loop *loop;
    char *name;
    int fd;
    int port;
    ev_io aio;
    ev_timer retry;
    gw__http_limits_t lim;
    gw_http_handler_fn fn;
    void *arg;
    http_conn_t *conns;
    size_t nconns;
    int stopping;
    http_parser_settings settings;
};

static void conn_progress(http_conn_t *c);

/* ---- Requests ---- */

static gw_http_req_t *
req_new(http_conn_t *c)
{
    gw_http_req_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->conn = c;
    memcpy(r->peer, c->peer, sizeof(r->peer));
    return r;
}

static void
req_free(gw_http_req_t *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->nhdrs; i++) {
        gw__buf_free(&r->hdrs[i].name);
        gw__buf_free(&r->hdrs[i].value);
    }
    free(r->hdrs);
    gw__buf_free(&r->url);
    gw__buf_free(&r->body);
    gw__buf_free(&r->resp);
    free(r->path);
    free(r->query);
    free(r);
}

static const char *
status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return status < 300 ? "OK" : status < 400 ? "Redirect"
                       : status < 500 ? "Client Error" : "Server Error";
}

/* "Thu, 01 Jan 1970 00:00:00 GMT", cached per second. */
static const char *
http_date(void)
{
    static char buf[40];
    static time_t last = (time_t) -1;
    time_t now = time(NULL);
    struct tm tm;

    if (now != last) {
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* Formats the whole answer into r->resp. */
static void
req_format(gw_http_req_t *r, int status, const char *ctype,
           const char *headers, const void *body, size_t len)
{
    gw__buf_t *b = &r->resp;

    b->len = 0;
    gw__buf_printf(b,
               "HTTP/1.1 %d %s\r\nServer: " HTTP_SERVER_HEADER
               "\r\nDate: %s\r\n",
               status, status_text(status), http_date());
    if (ctype != NULL)
        gw__buf_printf(b, "Content-Type: %s\r\n", ctype);
    gw__buf_printf(b, "Content-Length: %zu\r\n", len);
    if (r->close_after)
        gw__buf_printf(b, "Connection: close\r\n");
    if (headers != NULL)
        gw__buf_add(b, headers, strlen(headers));
    gw__buf_add(b, "\r\n", 2);
    if (len > 0 && !r->is_head)
        gw__buf_add(b, body, len);
    r->answered = 1;
}

/* JSON-escapes msg into a {"error": "..."} body. */
static void
error_body(gw__buf_t *b, const char *msg)
{
    const unsigned char *s = (const unsigned char *) msg;

    gw__buf_add(b, "{\"error\": \"", 11);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            char e[2] = {'\\', (char) *s};
            gw__buf_add(b, e, 2);
        } else if (*s < 0x20) {
            gw__buf_printf(b, "\\u%04x", *s);
        } else {
            gw__buf_add(b, s, 1);
        }
    }
    gw__buf_add(b, "\"}", 2);
}

/* ---- Connections ---- */

static ev_tstamp
conn_now(http_conn_t *c)
{
    return ev_now(c->srv->loop);
}

static void
conn_count(http_conn_t *c, const char *reason)
{
    gw__metrics_count(c->srv->name, GW_COUNTER_DROPPED, reason, 1);
}

static void
queue_push(http_conn_t *c, gw_http_req_t *r)
{
    r->next = NULL;
    if (c->qtail != NULL)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    c->nqueued++;
}

/* Queues the server's own error answer after everything already queued;
 * no further request is read from this connection. */
static void
conn_fail(http_conn_t *c, int status, const char *msg, const char *reason)
{
    gw_http_req_t *r;
    gw__buf_t body = {0};

    if (c->closing)
        return;
    c->closing = 1;
    if (reason != NULL)
        conn_count(c, reason);
    req_free(c->cur);
    c->cur = NULL;
    r = req_new(c);
    if (r == NULL) {
        c->dead = 1;
        return;
    }
    r->close_after = 1;
    error_body(&body, msg);
    req_format(r, status, "application/json", NULL, body.p, body.len);
    gw__buf_free(&body);
    queue_push(c, r);
}

static void
conn_unlink(http_conn_t *c)
{
    gw_http_server_t *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
}

/* Frees a connection. Requests the handler still holds become orphans:
 * valid until answered, then freed. */
static void
conn_free(http_conn_t *c)
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
            req_free(r);
        r = next;
    }
    req_free(c->cur);
    gw__buf_free(&c->out);
    free(c->in);
    conn_unlink(c);
    free(c);
}

/* Moves answers at the head of the queue into the output buffer. */
static void
conn_collect(http_conn_t *c)
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
        req_free(r);
        if (c->state == HTTP_IDLE)
            c->mark = conn_now(c); /* idle time counts from the answer */
        if (last) {
            c->closing = 1;
            /* Nothing after a closing answer is sent. */
            while (c->qhead != NULL) {
                gw_http_req_t *n = c->qhead->next;
                if (c->qhead->handed && !c->qhead->answered)
                    c->qhead->conn = NULL;
                else
                    req_free(c->qhead);
                c->qhead = n;
            }
            c->qtail = NULL;
            c->nqueued = 0;
            return;
        }
    }
}

static void
conn_write(http_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
            c->mark = conn_now(c);
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

static int
conn_can_parse(const http_conn_t *c)
{
    return !c->closing && !c->dead && c->nqueued < HTTP_MAX_PIPELINE
           && c->out.len - c->out_off < HTTP_OUT_HIGH;
}

/* Turns the request just parsed into path and query; 0 or -1 (400). */
static int
req_split_url(gw_http_req_t *r)
{
    struct http_parser_url u;
    const char *path = "/", *query = "";
    size_t plen = 1, qlen = 0;

    http_parser_url_init(&u);
    if (r->url.len == 0
        || http_parser_parse_url(r->url.p, r->url.len, 0, &u) != 0)
        return -1;
    if (u.field_set & (1 << UF_PATH)) {
        path = r->url.p + u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1 << UF_QUERY)) {
        query = r->url.p + u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
    }
    /* NULL for a %00 as for out of memory: either way a 400. */
    r->path = gw__url_decode(path, plen, GW__URL_NO_NUL);
    r->query = malloc(qlen + 1);
    if (r->path == NULL || r->query == NULL)
        return -1;
    memcpy(r->query, query, qlen);
    r->query[qlen] = '\0';
    return 0;
}

/* ---- Parser callbacks ---- */

static int
cb_fail(http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int
cb_header_room(http_conn_t *c, size_t len)
{
    c->hdr_bytes += len;
    if (c->hdr_bytes > c->srv->lim.max_header_bytes) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request headers are larger than %zu bytes",
                 c->srv->lim.max_header_bytes);
        return cb_fail(c, 431, c->err_buf);
    }
    return 0;
}

static int
on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;

    req_free(c->cur);
    c->cur = req_new(c);
    if (c->cur == NULL)
        return cb_fail(c, 503, "out of memory");
    c->state = HTTP_HEADERS;
    c->mark = conn_now(c);
    c->hdr_bytes = 0;
    c->last_was_value = 1;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    if (cb_header_room(c, len) != 0)
        return -1;
    return gw__buf_add(&c->cur->url, at, len) == 0 ? 0
                                              : cb_fail(c, 503, "out of memory");
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (cb_header_room(c, len) != 0)
        return -1;
    if (c->last_was_value) {
        if (r->nhdrs >= c->srv->lim.max_headers) {
            snprintf(c->err_buf, sizeof(c->err_buf),
                     "more than %zu request headers",
                     c->srv->lim.max_headers);
            return cb_fail(c, 431, c->err_buf);
        }
        if (r->nhdrs == r->hdrs_cap) {
            size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 8;
            http_hdr_t *h = realloc(r->hdrs, cap * sizeof(*h));
            if (h == NULL)
                return cb_fail(c, 503, "out of memory");
            r->hdrs = h;
            r->hdrs_cap = cap;
        }
        memset(&r->hdrs[r->nhdrs], 0, sizeof(r->hdrs[0]));
        r->nhdrs++;
        c->last_was_value = 0;
        if (cb_header_room(c, 4) != 0) /* ": " and CRLF */
            return -1;
    }
    if (gw__buf_add(&r->hdrs[r->nhdrs - 1].name, at, len) != 0)
        return cb_fail(c, 503, "out of memory");
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (cb_header_room(c, len) != 0)
        return -1;
    if (r->nhdrs == 0)
        return cb_fail(c, 400, "malformed request header");
    c->last_was_value = 1;
    if (gw__buf_add(&r->hdrs[r->nhdrs - 1].value, at, len) != 0)
        return cb_fail(c, 503, "out of memory");
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;
    const char *expect;
    size_t i;

    if (p->http_major != 1)
        return cb_fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    r->method = http_method_str((enum http_method) p->method);
    r->is_head = p->method == HTTP_HEAD;
    for (i = 0; i < r->nhdrs; i++) {
        /* A header with no value leaves an unset buffer. */
        if (r->hdrs[i].value.p == NULL && gw__buf_add(&r->hdrs[i].value, "", 0))
            return cb_fail(c, 503, "out of memory");
        if (r->hdrs[i].name.p == NULL && gw__buf_add(&r->hdrs[i].name, "", 0))
            return cb_fail(c, 503, "out of memory");
    }
    if (req_split_url(r) != 0)
        return cb_fail(c, 400, "malformed request target");
    if ((p->flags & F_CONTENTLENGTH)
        && p->content_length > (uint64_t) c->srv->lim.max_body) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request body is larger than the limit of %zu bytes",
                 c->srv->lim.max_body);
        return cb_fail(c, 413, c->err_buf);
    }
    expect = gw__http_header(r, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0
        && c->qhead == NULL && c->out.len == c->out_off)
        gw__buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = HTTP_BODY;
    c->mark = conn_now(c);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (r->body.len + len > c->srv->lim.max_body) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request body is larger than the limit of %zu bytes",
                 c->srv->lim.max_body);
        return cb_fail(c, 413, c->err_buf);
    }
    if (gw__buf_add(&r->body, at, len) != 0)
        return cb_fail(c, 503, "out of memory");
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    r->keep_alive = http_should_keep_alive(p);
    if (p->upgrade || c->srv->stopping)
        r->keep_alive = 0;
    if (!r->keep_alive)
        r->close_after = 1;
    if (r->body.p == NULL && gw__buf_add(&r->body, "", 0) != 0)
        return cb_fail(c, 503, "out of memory");
    c->cur = NULL;
    queue_push(c, r);
    c->state = HTTP_IDLE;
    c->mark = conn_now(c);
    /* One request at a time: the loop hands it over, then resumes. */
    http_parser_pause(p, 1);
    return 0;
}

/* Parses what is buffered while allowed; hands each request over. */
static void
conn_parse(http_conn_t *c)
{
    while (c->in_off < c->in_len && conn_can_parse(c)) {
        size_t n = http_parser_execute(&c->parser, &c->srv->settings,
                                       c->in + c->in_off,
                                       c->in_len - c->in_off);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        c->in_off += n;
        if (e == HPE_PAUSED) {
            gw_http_req_t *r = c->qtail;

            http_parser_pause(&c->parser, 0);
            if (r != NULL && !r->handed && !r->answered) {
                if (r->close_after || c->parser.upgrade)
                    c->closing = 1; /* read nothing after it */
                r->handed = 1;
                c->srv->fn(c->srv->arg, r);
                if (c->dead)
                    return;
            }
            continue;
        }
        if (e != HPE_OK) {
            int status = c->err_status;
            const char *msg = c->err_msg;

            if (status == 0) {
                status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
                if (e == HPE_HEADER_OVERFLOW) {
                    msg = "request headers are too large";
                } else {
                    snprintf(c->err_buf, sizeof(c->err_buf),
                             "malformed HTTP request: %s",
                             http_errno_description(e));
                    msg = c->err_buf;
                }
            }
            conn_fail(c, status, msg,
                      status == 413 || status == 431 ? "oversize"
                      : status == 503               ? "no_memory"
                                                    : "bad_format");
            c->in_off = c->in_len;
            return;
        }
        if (n == 0)
            break; /* cannot happen without an error; never spin */
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
}

/* Decides which watchers run and when the timer fires. */
static void
conn_arm(http_conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;
    int want_read, want_write;
    ev_tstamp limit = 0;

    want_write = c->out_off < c->out.len;
    if (c->state == HTTP_LINGER_ST)
        want_read = 1;
    else
        want_read = !c->eof && !c->closing && c->in_off == c->in_len
                    && conn_can_parse(c);
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

    if (c->state == HTTP_LINGER_ST)
        limit = HTTP_LINGER;
    else if (want_write)
        limit = c->srv->lim.idle_timeout; /* a reader that never reads */
    else if (c->qhead != NULL)
        limit = 0; /* the handler answers; no timeout */
    else if (c->state == HTTP_HEADERS)
        limit = c->srv->lim.header_timeout;
    else if (c->state == HTTP_BODY)
        limit = c->srv->lim.idle_timeout;
    else if (c->state == HTTP_IDLE)
        limit = c->srv->lim.idle_timeout;
    ev_timer_stop(loop, &c->timer);
    if (limit > 0) {
        ev_tstamp left = c->mark + limit - ev_now(loop);
        ev_timer_set(&c->timer, left > 0.001 ? left : 0.001, 0.);
        ev_timer_start(loop, &c->timer);
    }
}

/* After answering the last thing: stop writing, drain what the client
 * still sends for a short while, then close. */
static void
conn_linger(http_conn_t *c)
{
    if (c->eof) {
        c->dead = 1;
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = HTTP_LINGER_ST;
    c->mark = conn_now(c);
}

static void
conn_step(http_conn_t *c)
{
    conn_collect(c);
    if (!c->dead)
        conn_write(c);
    if (c->dead || c->state == HTTP_LINGER_ST)
        return;
    if (conn_can_parse(c) && c->in_off < c->in_len) {
        conn_parse(c);
        if (c->dead)
            return;
        conn_collect(c);
        if (!c->dead)
            conn_write(c);
        if (c->dead)
            return;
    }
    if ((c->closing || c->eof) && c->qhead == NULL
        && c->out_off == c->out.len) {
        if (c->closing && !c->eof)
            conn_linger(c);
        else
            c->dead = 1;
    }
}

static void
conn_progress(http_conn_t *c)
{
    if (c->busy) {
        c->again = 1;
        return;
    }
    c->busy = 1;
    do {
        c->again = 0;
        conn_step(c);
    } while (c->again && !c->dead);
    c->busy = 0;
    if (c->dead)
        conn_free(c);
    else
        conn_arm(c);
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
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
        conn_progress(c);
        return;
    }
    if (c->in == NULL) {
        c->in = malloc(HTTP_READ_CHUNK);
        if (c->in == NULL) {
            c->dead = 1;
            conn_progress(c);
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
        req_free(c->cur);
        c->cur = NULL;
        if (c->state != HTTP_IDLE)
            c->state = HTTP_IDLE;
    } else {
        c->in_off = 0;
        c->in_len = (size_t) n;
        if (c->state == HTTP_BODY || c->state == HTTP_IDLE)
            c->mark = conn_now(c); /* activity resets body/idle timeouts */
    }
    conn_progress(c);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    conn_progress(w->data);
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    http_conn_t *c = w->data;

    (void) loop;
    (void) revents;
    if (c->state == HTTP_LINGER_ST || c->out_off < c->out.len) {
        c->dead = 1;
    } else if ((c->state == HTTP_HEADERS || c->state == HTTP_BODY)
               && c->cur != NULL) {
        /* A request partially received: tell the client. */
        conn_fail(c, 408, "request not received in time", "timeout");
        c->state = HTTP_IDLE;
    } else if (c->qhead == NULL) {
        c->dead = 1; /* idle */
    }
    conn_progress(c);
}

/* ---- Listening ---- */

static void
srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    gw_http_server_t *s = w->data;
    int i;

    (void) revents;
    for (i = 0; i < HTTP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        http_conn_t *c;
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
        if (s->nconns >= s->lim.max_connections) {
            /* Counted before the close: whoever sees the close sees it. */
            gw__metrics_count(s->name, GW_COUNTER_DROPPED, "max_connections",
                              1);
            close(fd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr,
                      c->peer, sizeof(c->peer));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr,
                      c->peer, sizeof(c->peer));
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        ev_init(&c->timer, conn_timer_cb);
        c->rio.data = c->wio.data = c->timer.data = c;
        c->state = HTTP_HEADERS; /* a new connection must send a request */
        c->mark = ev_now(loop);
        c->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        conn_arm(c);
    }
}

static void
srv_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_http_server_t *s = w->data;

    (void) revents;
    if (s->fd >= 0 && !s->stopping)
        ev_io_start(loop, &s->aio);
}

static int
srv_bind(const char *host, int port, int *out_fd, int *out_port,
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
    http_parser_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    if (s->name == NULL) {
        free(s);
        return gw_error_set(err, "out of memory");
    }
    if (srv_bind(host, lopts->port, &s->fd, &s->port, err) != GW_OK) {
        free(s->name);
        free(s);
        return GW_ERR;
    }
    ev_io_init(&s->aio, srv_accept_cb, s->fd, EV_READ);
    s->aio.data = s;
    ev_init(&s->retry, srv_retry_cb);
    s->retry.data = s;
    ev_io_start(loop, &s->aio);
    *out = s;
    return GW_OK;
}

int
gw__http_port(const gw_http_server_t *srv)
{
    return srv->port;
}

void
gw__http_stop_accepting(gw_http_server_t *srv)
{
    http_conn_t *c, *next;

    if (srv->stopping)
        return;
    srv->stopping = 1;
    ev_io_stop(srv->loop, &srv->aio);
    ev_timer_stop(srv->loop, &srv->retry);
    if (srv->fd >= 0) {
        close(srv->fd);
        srv->fd = -1;
    }
    /* Idle keep-alive connections go now; busy ones close after their
     * answers (which say Connection: close). */
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->qhead == NULL && c->cur == NULL && !c->busy
            && c->out_off == c->out.len && c->state != HTTP_BODY) {
            c->dead = 1;
            conn_progress(c);
        } else {
            gw_http_req_t *r;
            for (r = c->qhead; r != NULL; r = r->next)
                if (!r->answered)
                    r->close_after = 1;
        }
    }
}

void
gw__http_close(gw_http_server_t *srv)
{
    if (srv == NULL)
        return;
    gw__http_stop_accepting(srv);
    while (srv->conns != NULL) {
        http_conn_t *c = srv->conns;
        gw_http_req_t *r;

        /* Unanswered requests get 503 (best effort: one non-blocking
         * write); the handler may still answer them later, harmlessly. */
        for (r = c->qhead; r != NULL; r = r->next) {
            if (!r->answered) {
                gw__buf_t body = {0};
                gw_http_req_t *tmp = req_new(c);
                if (tmp == NULL)
                    break;
                tmp->close_after = 1;
                error_body(&body, "the server is shutting down");
                req_format(tmp, 503, "application/json", NULL, body.p,
                           body.len);
                gw__buf_free(&body);
                gw__buf_add(&c->out, tmp->resp.p, tmp->resp.len);
                req_free(tmp);
                break; /* answers after it cannot be sent in order */
            }
            gw__buf_add(&c->out, r->resp.p, r->resp.len);
        }
        c->busy = 1; /* never re-enter through a handler */
        conn_write(c);
        conn_free(c);
    }
    free(srv->name);
    free(srv);
}

/* ---- Requests, for handlers ---- */

const char *
gw__http_method(const gw_http_req_t *req)
{
    return req->method != NULL ? req->method : "";
}

const char *
gw__http_path(const gw_http_req_t *req)
{
    return req->path != NULL ? req->path : "/";
}

const char *
gw__http_query(const gw_http_req_t *req)
{
    return req->query != NULL ? req->query : "";
}

const char *
gw__http_header(const gw_http_req_t *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nhdrs; i++)
        if (req->hdrs[i].name.p != NULL
            && strcasecmp(req->hdrs[i].name.p, name) == 0)
            return req->hdrs[i].value.p != NULL ? req->hdrs[i].value.p : "";
    return NULL;
}

const void *
gw__http_body(const gw_http_req_t *req, size_t *len)
{
    if (len != NULL)
        *len = req->body.len;
    return req->body.p != NULL ? req->body.p : "";
}

const char *
gw__http_peer(const gw_http_req_t *req)
{
    return req->peer;
}

void
gw__http_respond(gw_http_req_t *req, int status, const char *ctype,
                 const char *headers, const void *body, size_t len)
{
    http_conn_t *c = req->conn;

    if (c == NULL) {
        /* The client went away or the server closed: nothing to send. */
        req_free(req);
        return;
    }
    if (req->answered)
        return; /* answered twice: the first answer stands */
    if (c->srv->stopping)
        req->close_after = 1;
    req_format(req, status, ctype, headers, body, len);
    conn_progress(c);
}

void
gw__http_error(gw_http_req_t *req, int status, const char *msg)
{
    gw__buf_t body = {0};

    error_body(&body, msg);
    gw__http_respond(req, status, "application/json", NULL, body.p,
                     body.len);
    gw__buf_free(&body);
}

/* ---- Query strings ---- */

char *
gw__http_query_param(const char *query, const char *name)
{
    const char *p = query;

    if (query == NULL || name == NULL)
        return NULL;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t seglen = end != NULL ? (size_t) (end - p) : strlen(p);
        char *key;

        eq = memchr(p, '=', seglen);
        key = gw__url_decode(p, eq != NULL ? (size_t) (eq - p) : seglen,
                             GW__URL_PLUS);
        if (key != NULL && strcmp(key, name) == 0) {
            free(key);
            if (eq == NULL)
                return strdup("");
            return gw__url_decode(eq + 1, seglen - (size_t) (eq - p) - 1,
                                  GW__URL_PLUS);
        }
        free(key);
        if (end == NULL)
            break;
        p = end + 1;
    }
    return NULL;
}
