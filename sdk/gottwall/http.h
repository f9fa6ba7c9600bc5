/*
 * gottwall/http.h: the core's HTTP/1.1 server, offered to plugins.
 *
 * A transport that speaks HTTP asks the core for a listener
 * (host->http_listen) and gets every complete request in its handler; the
 * core does the parsing, keep-alive, pipelining, chunked bodies, limits and
 * timeouts. The request object is core-owned.
 */
#ifndef GOTTWALL_HTTP_H
#define GOTTWALL_HTTP_H

#include <stddef.h>

typedef struct gw_http_req_s gw_http_req_t;       /* opaque, core-owned */
typedef struct gw_http_server_s gw_http_server_t; /* opaque, core-owned */

/*
 * Called on the loop thread for each complete request. The handler must
 * answer it exactly once with host->http_respond, now or later (a request
 * stays valid until it is answered, even if the client went away).
 */
typedef void (*gw_http_handler_fn)(void *arg, gw_http_req_t *req);

/* Where and how to listen. Zero members take the core's defaults. */
typedef struct gw_http_listen_s {
    const char *host; /* "127.0.0.1", "::1", "0.0.0.0" */
    int port;
    size_t max_body;  /* bytes; larger bodies get 413 (default 1 MiB) */
    /* ABI 1.7 (read only from plugins built against 1.7 or later): 1:
     * loop 0 accepts and hands connection k to ingest loop k mod
     * host->loops(), where the handler then runs for its requests (it may
     * call what host.h allows on any loop); the connection limits stay
     * one count over all loops. 0: every connection on loop 0. */
    int loops;
} gw_http_listen_t;

#endif /* GOTTWALL_HTTP_H */
