/*
 * net/http.h: the core's HTTP/1.1 server (libev + http-parser).
 *
 * Used by the read API and dashboard, and offered to plugins through the
 * host table (gottwall/http.h). Keep-alive, pipelining (answers go out in
 * request order), chunked request bodies, and limits: header bytes and
 * count (431), body (413), header and idle timeouts, a total deadline
 * per request and a minimum body rate (408 / close), connections per
 * listener and per client address (refused and counted). Malformed requests get
 * 400, and so does framing RFC 9112 says to reject; every error answer
 * closes the connection when the request stream can no longer be trusted.
 */
#ifndef GW_NET_HTTP_H
#define GW_NET_HTTP_H

#include <stddef.h>

#include <gottwall/common.h>
#include <gottwall/http.h>

#include "base/conf.h"
#include "base/post.h"

struct ev_loop;

/* Starts listening. name labels counters and logs ("http", "server").
 * limits are copied; lopts->max_body, when set, overrides limits->max_body. */
int gw__http_listen(struct ev_loop *loop, const char *name,
                    const gw_http_listen_t *lopts,
                    const gw__http_limits_t *limits, gw_http_handler_fn fn,
                    void *arg, gw_http_server_t **out, gw_error_t *err);

/*
 * Spreads srv's connections over n loops (loops[0] is srv's own): srv
 * keeps accepting on its loop and hands connection k to loops[k mod n]
 * through post(env, i, ...), whose thread then runs it and its handler
 * calls; the connection limits stay one count, under a lock taken at
 * accept and close only. Stop and close srv only while the other loops
 * no longer run. n < 2: no-op. GW_OK, or GW_ERR (out of memory: close
 * srv).
 */
int gw__http_spread(gw_http_server_t *srv, int n, struct ev_loop *const *loops,
                    gw__post_fn post, void *env);

/* Stops accepting new connections, keeps serving open ones (for a
 * graceful stop). */
void gw__http_stop_accepting(gw_http_server_t *srv);

/* Closes everything; unanswered requests are answered 503 first. A request
 * the handler still holds stays valid: answering it later is safe (the
 * answer is discarded and the request freed). */
void gw__http_close(gw_http_server_t *srv);

/* Header lines ("Name: value\r\n"...) sent with every answer of srv,
 * including its own error answers; headers must outlive srv (a string
 * literal). NULL: none. */
void gw__http_set_headers(gw_http_server_t *srv, const char *headers);

/* The port actually bound (for PORT = 0 in tests). */
int gw__http_port(const gw_http_server_t *srv);

const char *gw__http_method(const gw_http_req_t *req);
const char *gw__http_path(const gw_http_req_t *req);
const char *gw__http_query(const gw_http_req_t *req);
const char *gw__http_header(const gw_http_req_t *req, const char *name);
const void *gw__http_body(const gw_http_req_t *req, size_t *len);
/* The peer's address as text ("127.0.0.1"). */
const char *gw__http_peer(const gw_http_req_t *req);
void gw__http_respond(gw_http_req_t *req, int status, const char *ctype,
                      const char *headers, const void *body, size_t len);

/* Adds header lines ("Name: value\r\n", copied) to the answer req will
 * get, whatever answers it (a refreshed session cookie, say). */
void gw__http_add_header(gw_http_req_t *req, const char *lines);

/* Answers {"error": msg} as application/json with that status. */
void gw__http_error(gw_http_req_t *req, int status, const char *msg);

/* Looks up name in a query string ("a=1&b=x%20y"); decodes into a new
 * string the caller frees, or NULL if absent. */
char *gw__http_query_param(const char *query, const char *name);

#endif /* GW_NET_HTTP_H */
