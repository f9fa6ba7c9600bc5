/*
 * net/http_parse.c: the requests of the core's HTTP/1.1 server (see
 * net/http.c for the connections): the framing check that reads ahead of
 * http-parser and refuses, with 400, what RFC 9112 says to reject and
 * http-parser lets through (bare LF, obs-fold, whitespace before a
 * colon, chunk data without CRLF: the ways to smuggle a request past a
 * proxy), the http-parser callbacks that build a request while enforcing
 * the header and body limits (431, 413), the split and decoding of the
 * request target, the handler's accessors and answers (formatted whole
 * into the request, sent in order by the connection), and query-string
 * lookup.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <ctype.h>
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
    gw__buf_free(&r->extra);
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
    if (r->extra.len > 0)
        gw__buf_add(b, r->extra.p, r->extra.len);
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

/* ---- Framing (RFC 9112), checked before http-parser reads it ---- */

/* Records an answer for gw__http_parse to give; -1 stops http-parser. */
static int
hp_fail(http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

#define HP_MALFORMED "malformed HTTP request: "
#define HP_BARE_LF                                                            \
    HP_MALFORMED "a line ends in LF without CR; end every line with CRLF"
#define HP_BARE_CR                                                            \
    HP_MALFORMED "CR not followed by LF; end every line with CRLF"
#define HP_WS_COLON                                                           \
    HP_MALFORMED "whitespace between a header name and its colon"
#define HP_OBS_FOLD                                                           \
    HP_MALFORMED "a header line starts with whitespace (obs-fold); send "     \
                 "each header on one line"
#define HP_CHUNK_END HP_MALFORMED "chunk data is not followed by CRLF"

/* Starts the lines of a head or of trailers. */
static void
hp_frame_lines(http_conn_t *c, enum http_frame fr)
{
    c->fr = fr;
    c->fr_lines = 0;
    c->fr_inline = 0;
    c->fr_cr = 0;
    c->fr_name = 0;
}

/* The line ends in one byte: 1 when ch is the LF of a CRLF, 2 when it is
 * a CR (its LF must follow), 0 for any other byte, -1 for a CR without
 * LF or an LF without CR (*why says which; RFC 9112 §2.2). */
static int
hp_frame_eol(http_conn_t *c, unsigned char ch, const char **why)
{
    if (c->fr_cr) {
        c->fr_cr = 0;
        if (ch == '\n')
            return 1;
        *why = HP_BARE_CR;
        return -1;
    }
    if (ch == '\r') {
        c->fr_cr = 1;
        return 2;
    }
    if (ch == '\n') {
        *why = HP_BARE_LF;
        return -1;
    }
    return 0;
}

/* One byte of a head or of trailers: NULL, or what is wrong. *end is set
 * at the empty line that ends them (empty lines before a request line
 * are skipped, RFC 9112 §2.2). Header lines may not start with
 * whitespace (obs-fold, §5.2) nor have any before their colon (§5.1);
 * every line ends in CRLF. */
static const char *
hp_frame_line_byte(http_conn_t *c, unsigned char ch, int *end)
{
    int header = c->fr == HTTP_FR_TRAILER || c->fr_lines > 0;
    const char *why = NULL;
    int eol = hp_frame_eol(c, ch, &why);

    if (eol == 1) {
        if (c->fr_inline) {
            c->fr_lines++;
            c->fr_inline = 0;
        } else if (header) {
            *end = 1;
        }
        return NULL;
    }
    if (eol != 0)
        return why;
    if (!c->fr_inline) {
        c->fr_inline = 1;
        if (header && (ch == ' ' || ch == '\t'))
            return HP_OBS_FOLD;
        c->fr_name = header;
    }
    if (c->fr_name) {
        if (ch == ':')
            c->fr_name = 0;
        else if (ch == ' ' || ch == '\t')
            return HP_WS_COLON;
    }
    return NULL;
}

/* Starts a chunk-size line. */
static void
hp_frame_chunk(http_conn_t *c)
{
    c->fr = HTTP_FR_CHUNK_SIZE;
    c->fr_left = 0;
    c->fr_ext = 0;
    c->fr_cr = 0;
}

/* One byte of a chunk-size line. Its value is read here only to find the
 * data; http-parser checks the digits and extensions (an overflowing
 * size lets everything through, for http-parser to refuse). */
static const char *
hp_frame_size_byte(http_conn_t *c, unsigned char ch)
{
    static const char hex[] = "0123456789abcdef";
    const char *why = NULL, *d;
    int eol = hp_frame_eol(c, ch, &why);

    if (eol == 1) {
        if (c->fr_left == 0)
            hp_frame_lines(c, HTTP_FR_TRAILER);
        else
            c->fr = HTTP_FR_CHUNK_DATA;
        return NULL;
    }
    if (eol != 0)
        return why;
    d = ch != '\0' && !c->fr_ext ? strchr(hex, tolower(ch)) : NULL;
    if (d == NULL)
        c->fr_ext = 1;
    else if (c->fr_left > (UINT64_MAX >> 4))
        c->fr_left = UINT64_MAX;
    else
        c->fr_left = c->fr_left * 16 + (uint64_t) (d - hex);
    return NULL;
}

/* Checks the framing bytes of p[0..n) ahead of http-parser and returns
 * how many it may parse now: up to the end of a head (http-parser then
 * says how the body is framed), of a chunked message, or of the bytes
 * that are fine. *why is set when the byte at the returned offset is
 * refused. Body data is passed over, never looked at. */
static size_t
hp_frame_scan(http_conn_t *c, const char *p, size_t n, const char **why)
{
    size_t i = 0;

    *why = NULL;
    while (i < n) {
        unsigned char ch = (unsigned char) p[i];
        int end = 0;

        switch (c->fr) {
        case HTTP_FR_OPAQUE:
            return n;
        case HTTP_FR_END:
            *why = HP_MALFORMED "the message framing is ambiguous";
            return i;
        case HTTP_FR_HEAD:
        case HTTP_FR_TRAILER:
            *why = hp_frame_line_byte(c, ch, &end);
            break;
        case HTTP_FR_CHUNK_SIZE:
            *why = hp_frame_size_byte(c, ch);
            break;
        case HTTP_FR_CHUNK_DATA: {
            size_t k = n - i;
            if ((uint64_t) k > c->fr_left)
                k = (size_t) c->fr_left;
            c->fr_left -= k;
            i += k;
            if (c->fr_left == 0)
                c->fr = HTTP_FR_CHUNK_CR;
            continue;
        }
        case HTTP_FR_CHUNK_CR:
        case HTTP_FR_CHUNK_LF:
            if (ch != (c->fr == HTTP_FR_CHUNK_CR ? '\r' : '\n'))
                *why = HP_CHUNK_END;
            else if (c->fr == HTTP_FR_CHUNK_CR)
                c->fr = HTTP_FR_CHUNK_LF;
            else
                hp_frame_chunk(c);
            break;
        }
        if (*why != NULL)
            return i;
        i++;
        if (end) {
            c->fr = HTTP_FR_END;
            return i;
        }
    }
    return n;
}

/* Transfer-Encoding that http-parser takes but RFC 9112 §6.1 makes
 * ambiguous: in an HTTP/1.0 request, or chunked more than once (over
 * several header lines). 0 or -1 (400). */
static int
hp_check_te(http_conn_t *c, const http_parser *p, const gw_http_req_t *r)
{
    size_t i, chunked = 0, te = 0;

    for (i = 0; i < r->nhdrs; i++) {
        const char *v = r->hdrs[i].value.p;

        if (strcasecmp(r->hdrs[i].name.p, "Transfer-Encoding") != 0)
            continue;
        te++;
        while (*v != '\0') {
            size_t len;

            v += strspn(v, " \t,");
            len = strcspn(v, " \t,");
            if (len == 7 && strncasecmp(v, "chunked", 7) == 0)
                chunked++;
            v += len;
        }
    }
    if (te > 0 && p->http_minor == 0)
        return hp_fail(c, 400,
                       HP_MALFORMED "Transfer-Encoding in an HTTP/1.0 request");
    if (chunked > 1)
        return hp_fail(c, 400,
                       HP_MALFORMED "chunked is given more than once in "
                                    "Transfer-Encoding");
    return 0;
}

/* ---- Parser callbacks ---- */

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
    c->req_start = c->mark;
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
    if (hp_check_te(c, p, r) != 0)
        return -1;
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
    c->body_start = c->mark;
    if (p->flags & F_CHUNKED)
        hp_frame_chunk(c);
    else
        c->fr = HTTP_FR_OPAQUE;
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
    hp_frame_lines(c, HTTP_FR_HEAD);
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

/* Answers what http-parser refused, and reads nothing more. */
static void
hp_parse_failed(http_conn_t *c, enum http_errno e)
{
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
}

void
gw__http_parse(http_conn_t *c)
{
    while (c->in_off < c->in_len && gw__http_can_parse(c)) {
        const char *why;
        size_t ok = hp_frame_scan(c, c->in + c->in_off,
                                  c->in_len - c->in_off, &why);
        size_t n = 0;
        enum http_errno e = HPE_OK;

        if (ok > 0) {
            n = http_parser_execute(&c->parser, &c->srv->settings,
                                    c->in + c->in_off, ok);
            e = HTTP_PARSER_ERRNO(&c->parser);
            c->in_off += n;
        }
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
            hp_parse_failed(c, e);
            return;
        }
        if (why != NULL && n == ok) {
            /* http-parser took every byte before the refused one. */
            gw__http_conn_fail(c, 400, why, "bad_format");
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
