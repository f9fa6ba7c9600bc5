/*
 * net/http_int.h: what net/http.c (connections) and net/http_parse.c
 * (requests and the http-parser glue) share and nobody else needs: the
 * request, connection and server structures and the calls each file makes
 * into the other.
 */
#ifndef GW_NET_HTTP_INT_H
#define GW_NET_HTTP_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <http_parser.h>

#include "http.h"
#include "base/buf.h"
#include "base/post.h"

#define HTTP_READ_CHUNK 16384
#define HTTP_MAX_PIPELINE 32          /* requests queued per connection */
#define HTTP_OUT_HIGH (256u * 1024u)  /* stop parsing above this output */

typedef struct http_hdr_s {
    gw__buf_t name;
    gw__buf_t value;
} http_hdr_t;

typedef struct http_conn_s http_conn_t;
/* The connections open from one client address (net/http.c). */
typedef struct http_addr_s http_addr_t;

/* What the connection's timer does when it fires. */
enum http_deadline {
    HTTP_DL_CLOSE,   /* idle, lingering or not reading: close */
    HTTP_DL_TIMEOUT, /* HTTP_HEADER_TIMEOUT, or a body stalled: 408 */
    HTTP_DL_REQUEST, /* HTTP_REQUEST_TIMEOUT: 408 */
    HTTP_DL_SLOW     /* a body under HTTP_MIN_BODY_RATE: 408 */
};

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
    gw__buf_t extra;        /* header lines added by gw__http_add_header */
    gw__buf_t resp;
};

enum http_state {
    HTTP_IDLE,    /* between requests (or nothing received yet) */
    HTTP_HEADERS, /* a request's head is arriving */
    HTTP_BODY,    /* its body is arriving */
    HTTP_LINGER_ST /* answered the last thing; draining input */
};

/* Where net/http_parse.c's framing check is in the request stream: it
 * reads the bytes that frame a message (head, chunk-size lines, the CRLF
 * after chunk data, trailers) before http-parser does, and refuses what
 * RFC 9112 says to reject and http-parser lets through. */
enum http_frame {
    HTTP_FR_HEAD,       /* empty lines, the request line, header lines */
    HTTP_FR_OPAQUE,     /* a Content-Length body or none: http-parser's */
    HTTP_FR_CHUNK_SIZE, /* a chunk-size line (with extensions) */
    HTTP_FR_CHUNK_DATA, /* fr_left bytes of chunk data */
    HTTP_FR_CHUNK_CR,   /* the CRLF after chunk data */
    HTTP_FR_CHUNK_LF,
    HTTP_FR_TRAILER,    /* trailer lines */
    HTTP_FR_END         /* a head or message ended: http-parser's turn */
};

struct http_conn_s {
    gw__post_t hop;               /* handed to another loop's server */
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
    ev_tstamp req_start;          /* the current request's first byte */
    ev_tstamp body_start;         /* the end of its head */
    enum http_deadline deadline;  /* what the armed timer is for */
    http_addr_t *addr;            /* its address's count */
    size_t hdr_bytes;
    int last_was_value;
    enum http_frame fr;           /* the framing check's place */
    uint64_t fr_left;             /* chunk data still to come */
    unsigned fr_lines;            /* non-empty lines of the head or trailers */
    int fr_inline;                /* inside a line (not at its start) */
    int fr_cr;                    /* the byte before was CR */
    int fr_name;                  /* in a header line's name */
    int fr_ext;                   /* past a chunk-size's digits */
    int err_status;               /* set by a callback before failing */
    const char *err_msg;
    char err_buf[128];
    int closing;                  /* parse no more; close when answered */
    int eof;                      /* the peer stopped sending */
    int dead;
    int linked;                   /* in its server's list */
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
    const char *headers;    /* header lines of every answer, or NULL */
    http_conn_t *conns;
    size_t nconns;
    http_addr_t **addrs;          /* open connections by address */
    size_t addr_buckets;          /* a power of two */
    ev_tstamp warned;             /* the last per-address refusal logged */
    int stopping;
    http_parser_settings settings;
    /* Spread over loops (gw__http_spread): the listener holds the
     * connection counts (nconns, addrs) for all of them, under amu; each
     * loop's server (the listener's kids[i], kids[0] the listener itself)
     * holds the list of its own connections (nlist). */
    gw_http_server_t *parent;     /* the listener; NULL for it */
    gw_http_server_t **kids;
    int nkids;
    unsigned next_kid;
    size_t nlist;
    int spread;
    pthread_mutex_t amu;
    gw__post_fn post;
    void *post_env;
};

/* ---- net/http.c: connections ---- */

/* Appends r to the connection's queue of parsed requests. */
void gw__http_queue_push(http_conn_t *c, gw_http_req_t *r);
/* Queues the server's own error answer after everything already queued;
 * no further request is read from this connection. reason, when not
 * NULL, is counted as a dropped request. */
void gw__http_conn_fail(http_conn_t *c, int status, const char *msg,
                        const char *reason);
/* Collects answers, writes, parses and re-arms the watchers; frees the
 * connection if it died. Safe to call from inside itself (the handler). */
void gw__http_progress(http_conn_t *c);

static inline ev_tstamp
gw__http_now(const http_conn_t *c)
{
    return ev_now(c->srv->loop);
}

/* Whether more input may be parsed now: the connection is not closing,
 * and neither the queue nor the unwritten output is full. */
static inline int
gw__http_can_parse(const http_conn_t *c)
{
    return !c->closing && !c->dead && c->nqueued < HTTP_MAX_PIPELINE
           && c->out.len - c->out_off < HTTP_OUT_HIGH;
}

/* ---- net/http_parse.c: requests and the parser ---- */

gw_http_req_t *gw__http_req_new(http_conn_t *c);
void gw__http_req_free(gw_http_req_t *r);
/* Formats the whole answer into r->resp. */
void gw__http_req_format(gw_http_req_t *r, int status, const char *ctype,
                         const char *headers, const void *body, size_t len);
/* JSON-escapes msg into a {"error": "..."} body. */
void gw__http_error_body(gw__buf_t *b, const char *msg);
/* The parser callbacks, for the server's http_parser_settings. */
void gw__http_settings_init(http_parser_settings *s);
/* Parses what is buffered while allowed; hands each request over. */
void gw__http_parse(http_conn_t *c);

#endif /* GW_NET_HTTP_INT_H */
