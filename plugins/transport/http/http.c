/*
 * plugins/transport/http/http.c: the HTTP ingest transport (SPEC §5).
 *
 * A thin plugin over the core's HTTP server (host->http_listen, its
 * connections spread over the ingest loops, ABI 1.7): it routes
 * POST {PREFIX}/api/v1/{project}/{action}, checks in the order the
 * original did (unknown project 404, unknown action 404, failed auth 403)
 * and then hands the body, one event or an array of them, to
 * host->submit_json (bad JSON or an invalid event: 400; GW_AGAIN, the core
 * out of memory: 503 with Retry-After, to be sent again later). The server
 * itself answers 413 for a body over MAX_BODY and 400/408/431 for broken
 * requests. Success is 200 with the body `OK`, as clients of the original
 * expect; every error is JSON {"error": "..."}.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/plugin.h>

typedef struct ht_state_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;

    /* Config (filled by config_apply). */
    const char *bind_host;
    int64_t port;
    int64_t max_body;

    gw_http_server_t *srv;
    int stopped;
} ht_state_t;

static const gw_config_key_t ht_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", ht_state_t,
                  bind_host, "address to listen on"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8890", ht_state_t, port,
                        "port to listen on", 1, 65535),
    GW_CONFIG_KEY_RANGE("MAX_BODY", GW_CONFIG_INT, "0", ht_state_t,
                        max_body,
                        "largest request body in bytes (larger: 413); "
                        "0: the top-level MAX_BODY",
                        0, 1073741824),
    GW_CONFIG_END};

static gw_action_t
ht_action(const char *name)
{
    if (strcmp(name, "incr") == 0)
        return GW_ACTION_INCR;
    if (strcmp(name, "decr") == 0)
        return GW_ACTION_DECR;
    if (strcmp(name, "avg") == 0)
        return GW_ACTION_AVG;
    if (strcmp(name, "gauge") == 0)
        return GW_ACTION_GAUGE;
    if (strcmp(name, "timing") == 0)
        return GW_ACTION_TIMING;
    if (strcmp(name, "set") == 0)
        return GW_ACTION_SET;
    return GW_ACTION_DEFAULT;
}

static void
ht_error(ht_state_t *st, gw_http_req_t *req, int status, const char *headers,
         const char *msg)
{
    char body[GW_ERROR_MAX * 2 + 32];
    size_t o = 0;
    const unsigned char *s = (const unsigned char *) msg;

    o += (size_t) snprintf(body, sizeof(body), "{\"error\": \"");
    for (; *s && o + 8 < sizeof(body); s++) {
        if (*s == '"' || *s == '\\') {
            body[o++] = '\\';
            body[o++] = (char) *s;
        } else if (*s < 0x20) {
            o += (size_t) snprintf(body + o, sizeof(body) - o, "\\u%04x", *s);
        } else {
            body[o++] = (char) *s;
        }
    }
    body[o++] = '"';
    body[o++] = '}';
    st->host->http_respond(req, status, "application/json", headers, body, o);
}

/* A bounded, printable copy of a client's string for messages. */
static void
ht_quote(const char *s, char *out, size_t outsz)
{
    size_t i, o = 0;

    for (i = 0; s[i] != '\0' && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char) s[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char) c
                                                                    : '?';
    }
    out[o] = '\0';
    if (s[i] != '\0')
        strcat(out, "...");
}

/* The host table (one for every instance), for ht_durable. */
static const gw_host_t *ht_host;

/* Answers a request whose events the journal now holds (or could not). */
static void
ht_durable(void *arg, int ok)
{
    gw_http_req_t *req = arg;

    if (ok) {
        ht_host->http_respond(req, 200, "text/plain", NULL, "OK", 2);
    } else {
        static const char msg[] = "{\"error\": \"the journal could not be "
                                  "written; the events are not safe, retry "
                                  "later\"}";

        ht_host->http_respond(req, 503, "application/json", NULL, msg,
                              sizeof(msg) - 1);
    }
}

/* Submits an authenticated request's events and answers (now, or once
 * the journal holds them). */
static void
ht_submit(ht_state_t *st, gw_http_req_t *req, const char *project,
          gw_action_t action)
{
    const gw_host_t *h = st->host;
    const void *body;
    size_t blen;
    gw_error_t err;
    int rc;

    body = h->http_body(req, &blen);
    rc = h->submit_json(st->ctx, project, action, body, blen, GW_SUBMIT_BATCH,
                        &err);
    if (rc != GW_OK) {
        /* GW_AGAIN: the core could not take it now (out of memory). */
        if (rc == GW_AGAIN)
            ht_error(st, req, 503, "Retry-After: 1\r\n", err.msg);
        else
            ht_error(st, req, 400, NULL, err.msg);
        return;
    }
    /* Acknowledge only what the journal holds (ABI 1.1). */
    if (h->abi_minor >= 1 && h->when_durable != NULL) {
        h->when_durable(st->ctx, ht_durable, req);
        return;
    }
    h->http_respond(req, 200, "text/plain", NULL, "OK", 2);
}

/* A request waiting for the shared replay cache's answer. */
typedef struct ht_claim_s {
    ht_state_t *st;
    gw_http_req_t *req;
    gw_action_t action;
    char project[256];
} ht_claim_t;

static void
ht_claimed(void *arg, int ok)
{
    ht_claim_t *c = arg;

    if (!ok)
        ht_error(c->st, c->req, 403, NULL,
                 "authentication failed: the nonce was already used (a "
                 "replayed request? use a new random nonce per request)");
    else if (c->st->stopped)
        ht_error(c->st, c->req, 503, NULL, "the aggregator is shutting down");
    else
        ht_submit(c->st, c->req, c->project, c->action);
    free(c);
}

static void
ht_handle(void *arg, gw_http_req_t *req)
{
    ht_state_t *st = arg;
    const gw_host_t *h = st->host;
    const char *prefix = h->prefix(st->ctx);
    const char *path = h->http_path(req);
    size_t plen = strlen(prefix);
    const char *rest, *slash, *hdr, *project;
    char name[256], quoted[80], msg[GW_ERROR_MAX + 64], scope[2048];
    size_t nlen, blen;
    const void *body;
    gw_action_t action;
    gw_auth_req_t ar;
    gw_error_t err;

    if (st->stopped) {
        ht_error(st, req, 503, NULL, "the aggregator is shutting down");
        return;
    }
    /* Route: {prefix}/api/v1/{project}/{action}, split at the last '/'. */
    if (strncmp(path, prefix, plen) != 0
        || strncmp(path + plen, "/api/v1/", 8) != 0) {
        ht_error(st, req, 404, NULL, "not found: events go to POST "
                                     "{PREFIX}/api/v1/{project}/{action}");
        return;
    }
    rest = path + plen + 8;
    slash = strrchr(rest, '/');
    if (slash == NULL || slash == rest) {
        ht_error(st, req, 404, NULL, "not found: events go to POST "
                                     "{PREFIX}/api/v1/{project}/{action}");
        return;
    }
    if (strcmp(h->http_method(req), "POST") != 0) {
        ht_error(st, req, 405, "Allow: POST\r\n",
                 "method not allowed: send events with POST");
        return;
    }
    nlen = (size_t) (slash - rest);
    if (nlen >= sizeof(name)) {
        ht_error(st, req, 404, NULL, "unknown project");
        return;
    }
    memcpy(name, rest, nlen);
    name[nlen] = '\0';
    if (!h->project_exists(st->ctx, name)) {
        ht_quote(name, quoted, sizeof(quoted));
        snprintf(msg, sizeof(msg), "unknown project \"%s\"", quoted);
        ht_error(st, req, 404, NULL, msg);
        return;
    }
    action = ht_action(slash + 1);
    if (action == GW_ACTION_DEFAULT) {
        ht_quote(slash + 1, quoted, sizeof(quoted));
        snprintf(msg, sizeof(msg),
                 "unknown action \"%s\": use incr, decr, avg, gauge, "
                 "timing or set",
                 quoted);
        ht_error(st, req, 404, NULL, msg);
        return;
    }

    /* Auth: X-GottWall-Auth alone decides when present (S1, S3 or S4);
     * otherwise Authorization: Basic. S4 signs the scope "POST {path}". */
    body = h->http_body(req, &blen);
    memset(&ar, 0, sizeof(ar));
    ar.project = name;
    ar.body = body;
    ar.body_len = blen;
    snprintf(scope, sizeof(scope), "POST %s", path);
    ar.scope = scope;
    ar.scope_len = strlen(scope);
    hdr = h->http_header(req, "X-GottWall-Auth");
    if (hdr != NULL) {
        ar.schemes = GW_AUTH_S1 | GW_AUTH_S2 | GW_AUTH_S3 | GW_AUTH_S4;
    } else {
        hdr = h->http_header(req, "Authorization");
        ar.schemes = GW_AUTH_BASIC;
    }
    if (hdr == NULL) {
        ht_error(st, req, 403, NULL,
                 "missing X-GottWall-Auth or Authorization header");
        return;
    }
    ar.header = hdr;
    ar.header_len = strlen(hdr);
    if (h->auth_check(st->ctx, &ar, &project, &err) != GW_OK) {
        snprintf(msg, sizeof(msg), "authentication failed: %s", err.msg);
        ht_error(st, req, 403, NULL, msg);
        return;
    }
    /* ABI 1.3: an S3/S4 nonce is claimed in the replay cache the storage
     * shares before anything of the request is taken; the answer waits
     * for it. */
    if (h->abi_minor >= 3 && h->auth_claim != NULL) {
        ht_claim_t *c = malloc(sizeof(*c));

        if (c == NULL) {
            ht_error(st, req, 503, "Retry-After: 1\r\n", "out of memory");
            return;
        }
        c->st = st;
        c->req = req;
        c->action = action;
        snprintf(c->project, sizeof(c->project), "%s", project);
        if (h->auth_claim(st->ctx, ht_claimed, c) != GW_OK) {
            free(c);
            ht_error(st, req, 503, "Retry-After: 1\r\n", "out of memory");
        }
        return;
    }
    ht_submit(st, req, project, action);
}

static int
ht_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    ht_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return gw_error_set(err, "out of memory");
    st->ctx = ctx;
    st->host = ctx->host;
    ht_host = ctx->host;
    if (st->host->config_apply(ctx, ht_keys, st, err) != GW_OK) {
        free(st);
        return GW_ERR;
    }
    *state = st;
    return GW_OK;
}

static int
ht_start(void *state, gw_error_t *err)
{
    ht_state_t *st = state;
    gw_http_listen_t lo;

    memset(&lo, 0, sizeof(lo));
    lo.host = st->bind_host;
    lo.port = (int) st->port;
    lo.max_body = (size_t) st->max_body;
    /* ABI 1.7: connections spread over every ingest loop; ht_handle then
     * runs on the loop of its request's connection. */
    lo.loops = 1;
    if (st->host->http_listen(st->ctx, &lo, ht_handle, st, &st->srv, err)
        != GW_OK)
        return GW_ERR;
    if (st->host->loops(st->ctx) > 1)
        gw_log_info(st->ctx, "listening for HTTP events on %s:%d "
                    "(connections spread over %d ingest loops)",
                    lo.host, lo.port, st->host->loops(st->ctx));
    else
        gw_log_info(st->ctx, "listening for HTTP events on %s:%d", lo.host,
                    lo.port);
    return GW_OK;
}

static void
ht_stop(void *state)
{
    ht_state_t *st = state;

    st->stopped = 1;
    if (st->srv != NULL) {
        st->host->http_close(st->srv);
        st->srv = NULL;
    }
}

static void
ht_destroy(void *state)
{
    ht_state_t *st = state;

    if (st == NULL)
        return;
    ht_stop(st);
    free(st);
}

static const gw_transport_ops_t ht_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = ht_create,
    .start = ht_start,
    .stop = ht_stop,
    .destroy = ht_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "http",
    .version = "0.1.0",
    .description = "events over HTTP: POST {PREFIX}/api/v1/{project}/{action}",
    .transport = &ht_ops,
};
