/*
 * net/http_parse.c: the requests of the core's HTTP/1.1 server (see
 * net/http.c for the connections): the http-parser callbacks that build
 * a request while enforcing the header and body limits (431, 413), the
 * split and decoding of the request target, the handler's accessors and
 * answers (formatted whole into the request, sent in order by the
 * connection), and query-string lookup.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include <gottwall/version.h>

#include "http_int.h"
#include "base/buf.h"

#define HTTP_SERVER_HEADER "GottWall/0.1.0"

/* ---- Requests ---- */

gw_http_req_t *
gw__http_req_new(http_conn_t *c)
{
    gw_http_req_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->conn = c;
    memcpy(r->peer, c->peer, sizeof(r->peer));
    return r;
}

void
gw__http_req_free(gw_http_req_t *r)
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
hp_status_text(int status)
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
    case 421: return "Misdirected Request";
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
hp_date(void)
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

void
gw__http_req_format(gw_http_req_t *r, int status, const char *ctype,
                    const char *headers, const void *body, size_t len)
{
    gw__buf_t *b = &r->resp;

    b->len = 0;
    gw__buf_printf(b,
               "HTTP/1.1 %d %s\r\nServer: " HTTP_SERVER_HEADER
               "\r\nDate: %s\r\n",
               status, hp_status_text(status), hp_date());
    if (ctype != NULL)
        gw__buf_printf(b, "Content-Type: %s\r\n", ctype);
    gw__buf_printf(b, "Content-Length: %zu\r\n", len);
    if (r->close_after)
        gw__buf_printf(b, "Connection: close\r\n");
    if (headers != NULL)
        gw__buf_add(b, headers, strlen(headers));
    if (r->conn != NULL && r->conn->srv->headers != NULL)
        gw__buf_add(b, r->conn->srv->headers, strlen(r->conn->srv->headers));
    gw__buf_add(b, "\r\n", 2);
    if (len > 0 && !r->is_head)
        gw__buf_add(b, body, len);
    r->answered = 1;
}

void
gw__http_error_body(gw__buf_t *b, const char *msg)
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

/* Turns the request just parsed into path and query; 0 or -1 (400). */
static int
hp_split_url(gw_http_req_t *r)
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
hp_fail(http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int
hp_header_room(http_conn_t *c, size_t len)
{
    c->hdr_bytes += len;
    if (c->hdr_bytes > c->srv->lim.max_header_bytes) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request headers are larger than %zu bytes",
                 c->srv->lim.max_header_bytes);
        return hp_fail(c, 431, c->err_buf);
    }
    return 0;
}

static int
hp_on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;

    gw__http_req_free(c->cur);
    c->cur = gw__http_req_new(c);
    if (c->cur == NULL)
        return hp_fail(c, 503, "out of memory");
    c->state = HTTP_HEADERS;
    c->mark = gw__http_now(c);
    c->hdr_bytes = 0;
    c->last_was_value = 1;
    return 0;
}

static int
hp_on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    if (hp_header_room(c, len) != 0)
        return -1;
    return gw__buf_add(&c->cur->url, at, len) == 0
               ? 0
               : hp_fail(c, 503, "out of memory");
}

static int
hp_on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (hp_header_room(c, len) != 0)
        return -1;
    if (c->last_was_value) {
        if (r->nhdrs >= c->srv->lim.max_headers) {
            snprintf(c->err_buf, sizeof(c->err_buf),
                     "more than %zu request headers",
                     c->srv->lim.max_headers);
            return hp_fail(c, 431, c->err_buf);
        }
        if (r->nhdrs == r->hdrs_cap) {
            size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 8;
            http_hdr_t *h = realloc(r->hdrs, cap * sizeof(*h));
            if (h == NULL)
                return hp_fail(c, 503, "out of memory");
            r->hdrs = h;
            r->hdrs_cap = cap;
        }
        memset(&r->hdrs[r->nhdrs], 0, sizeof(r->hdrs[0]));
        r->nhdrs++;
        c->last_was_value = 0;
        if (hp_header_room(c, 4) != 0) /* ": " and CRLF */
            return -1;
    }
    if (gw__buf_add(&r->hdrs[r->nhdrs - 1].name, at, len) != 0)
        return hp_fail(c, 503, "out of memory");
    return 0;
}

static int
hp_on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (hp_header_room(c, len) != 0)
        return -1;
    if (r->nhdrs == 0)
        return hp_fail(c, 400, "malformed request header");
    c->last_was_value = 1;
    if (gw__buf_add(&r->hdrs[r->nhdrs - 1].value, at, len) != 0)
        return hp_fail(c, 503, "out of memory");
    return 0;
}

static int
hp_on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;
    const char *expect;
    size_t i;

    if (p->http_major != 1)
        return hp_fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    r->method = http_method_str((enum http_method) p->method);
    r->is_head = p->method == HTTP_HEAD;
    for (i = 0; i < r->nhdrs; i++) {
        /* A header with no value leaves an unset buffer. */
        if (r->hdrs[i].value.p == NULL && gw__buf_add(&r->hdrs[i].value, "", 0))
            return hp_fail(c, 503, "out of memory");
        if (r->hdrs[i].name.p == NULL && gw__buf_add(&r->hdrs[i].name, "", 0))
            return hp_fail(c, 503, "out of memory");
    }
    if (hp_split_url(r) != 0)
        return hp_fail(c, 400, "malformed request target");
    if ((p->flags & F_CONTENTLENGTH)
        && p->content_length > (uint64_t) c->srv->lim.max_body) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request body is larger than the limit of %zu bytes",
                 c->srv->lim.max_body);
        return hp_fail(c, 413, c->err_buf);
    }
    expect = gw__http_header(r, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0
        && c->qhead == NULL && c->out.len == c->out_off)
        gw__buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = HTTP_BODY;
    c->mark = gw__http_now(c);
    return 0;
}

static int
hp_on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    if (r->body.len + len > c->srv->lim.max_body) {
        snprintf(c->err_buf, sizeof(c->err_buf),
                 "request body is larger than the limit of %zu bytes",
                 c->srv->lim.max_body);
        return hp_fail(c, 413, c->err_buf);
    }
    if (gw__buf_add(&r->body, at, len) != 0)
        return hp_fail(c, 503, "out of memory");
    return 0;
}

static int
hp_on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    gw_http_req_t *r = c->cur;

    r->keep_alive = http_should_keep_alive(p);
    if (p->upgrade || c->srv->stopping)
        r->keep_alive = 0;
    if (!r->keep_alive)
        r->close_after = 1;
    if (r->body.p == NULL && gw__buf_add(&r->body, "", 0) != 0)
        return hp_fail(c, 503, "out of memory");
    c->cur = NULL;
    gw__http_queue_push(c, r);
    c->state = HTTP_IDLE;
    c->mark = gw__http_now(c);
    /* One request at a time: the loop hands it over, then resumes. */
    http_parser_pause(p, 1);
    return 0;
}

void
gw__http_settings_init(http_parser_settings *s)
{
    http_parser_settings_init(s);
    s->on_message_begin = hp_on_message_begin;
    s->on_url = hp_on_url;
    s->on_header_field = hp_on_header_field;
    s->on_header_value = hp_on_header_value;
    s->on_headers_complete = hp_on_headers_complete;
    s->on_body = hp_on_body;
    s->on_message_complete = hp_on_message_complete;
}

void
gw__http_parse(http_conn_t *c)
{
    while (c->in_off < c->in_len && gw__http_can_parse(c)) {
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
            gw__http_conn_fail(c, status, msg,
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
        gw__http_req_free(req);
        return;
    }
    if (req->answered)
        return; /* answered twice: the first answer stands */
    if (c->srv->stopping)
        req->close_after = 1;
    gw__http_req_format(req, status, ctype, headers, body, len);
    gw__http_progress(c);
}

void
gw__http_error(gw_http_req_t *req, int status, const char *msg)
{
    gw__buf_t body = {0};

    gw__http_error_body(&body, msg);
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
