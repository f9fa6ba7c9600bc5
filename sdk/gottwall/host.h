/*
 * gottwall/host.h: the services the core offers a plugin instance.
 *
 * Each instance receives a gw_ctx_t at create time. Everything the plugin
 * may ask of the core goes through ctx->host, a table of function pointers:
 * plugins never link against the daemon. The table is append-only; check
 * host->struct_size (or abi_minor) before using a member added after 1.0.
 *
 * Threads: a transport runs on the loop thread. A storage instance runs
 * every call but create/destroy on its own storage thread. Each host
 * function says from which threads it may be called.
 */
#ifndef GOTTWALL_HOST_H
#define GOTTWALL_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/config.h>
#include <gottwall/event.h>
#include <gottwall/http.h>

struct ev_loop; /* <ev.h>, libev 4.x */

typedef struct gw_host_s gw_host_t;
typedef struct gw_instance_s gw_instance_t; /* opaque, core-owned */

/* Owned by the core; valid until the instance's destroy returns. Keep the
 * pointer; never copy the struct. */
typedef struct gw_ctx_s {
    const gw_host_t *host; /* ro */
    gw_instance_t *inst;   /* private to the core */
} gw_ctx_t;

/* Authentication schemes, as a bit set of what a transport allows. */
#define GW_AUTH_S1 0x01u    /* "GottWallS1 {ts} {sign} {base} [project]" */
#define GW_AUTH_S2 0x02u    /* "GottWallS2 {ts} {sign} {base} {project}" */
#define GW_AUTH_S3 0x04u    /* "GottWallS3 {ts} {nonce} {sign} [project]" */
#define GW_AUTH_BASIC 0x08u /* "Basic base64(public:private)" */
#define GW_AUTH_KEYS 0x10u  /* public_key and private_key given directly */
/* ABI 1.3: "GottWallS4 {ts} {nonce} {sign} [project]", S3 that also signs
 * req->scope, what the request is for. Set it only with a scope. */
#define GW_AUTH_S4 0x20u

/*
 * What to authenticate. All members are borrowed for the call.
 * header: the credentials as sent (the X-GottWall-Auth or Authorization
 *         value, or the TCP/UDP auth part), not NUL-terminated.
 * project: the project the request names (the HTTP URL), or NULL when the
 *         header must name it.
 * body:   the signed bytes for S3 and S4 (HTTP body, UDP payload); NULL/0
 *         for TCP.
 * public_key, private_key: for GW_AUTH_KEYS (the redis transport's channel).
 * scope, scope_len (ABI 1.3, read only with GW_AUTH_S4 and from plugins
 *         built for 1.3 or later): what an S4 header must have been signed
 *         for: "METHOD /path" for HTTP (the method, one space, the
 *         percent-decoded path with PREFIX, without the query: what
 *         http_method and http_path return), "tcp", "udp", "redis-stream".
 */
typedef struct gw_auth_req_s {
    unsigned schemes;
    const char *header;
    size_t header_len;
    const char *project;
    const void *body;
    size_t body_len;
    const char *public_key;
    const char *private_key;
    const char *scope; /* ABI 1.3 */
    size_t scope_len;
} gw_auth_req_t;

/* Counters kept by the core for GET /metrics, per instance. */
typedef enum gw_counter_e {
    GW_COUNTER_RECEIVED = 1, /* events seen (valid or not) */
    GW_COUNTER_ACCEPTED = 2, /* events aggregated */
    GW_COUNTER_DROPPED = 3,  /* events or messages dropped; reason says why */
    GW_COUNTER_AUTH_FAILED = 4,
    /* Added after ABI 1.2 (a daemon before it counts it but does not show
     * it): sums a storage kept at +-DBL_MAX because they would have
     * overflowed (gw_sum_add in gottwall/event.h). reason NULL. Shown as
     * gottwall_values_saturated_total{where="storage"}. */
    GW_COUNTER_SATURATED = 5,
    /* Added after ABI 1.3 (a daemon before it counts it but does not show
     * it): messages that are not events and are left alone on purpose,
     * reason says which (DogStatsD events and service checks:
     * "dogstatsd_event"). Shown as gottwall_events_ignored_total. */
    GW_COUNTER_IGNORED = 6
} gw_counter_t;

/* Flags for submit_json. */
#define GW_SUBMIT_BATCH 0x01u /* a JSON array of events is allowed: all or nothing */

struct gw_host_s {
    uint32_t struct_size; /* sizeof(gw_host_t) as the core was compiled */
    uint16_t abi_major;
    uint16_t abi_minor;

    /*
     * Writes one log line, prefixed "[kind:plugin:instance]" by the core.
     * Any thread. Never log keys, signatures or passwords.
     */
    void (*log)(const gw_ctx_t *ctx, int level, const char *fmt, ...)
        GW_PRINTF(3, 4);

    /* This instance's name (its key in BACKENDS, or the STORAGE name).
     * Core-owned, valid until destroy. Any thread. */
    const char *(*instance_name)(const gw_ctx_t *ctx);

    /*
     * Fills state from this instance's config section as keys describe
     * (see config.h). Unknown keys, wrong types and out-of-range values are
     * errors whose message names the file and line. Returns GW_OK or GW_ERR.
     * Call from create.
     */
    int (*config_apply)(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                        void *state, gw_error_t *err);

    /* The daemon's event loop (ingest loop 0). Start and stop your own
     * watchers; never ev_run or ev_break it. Transports only; loop thread.
     * "Loop thread" below means the thread of whichever ingest loop the
     * caller's watcher runs on (see loop_at). */
    struct ev_loop *(*loop)(const gw_ctx_t *ctx);

    /* 1 if a project of that name is configured, else 0. Loop thread. */
    int (*project_exists)(const gw_ctx_t *ctx, const char *project);

    /*
     * Checks credentials. On GW_OK *project points at the authenticated
     * project's name (core-owned, valid until the next return to the
     * loop or the next auth_check on the same thread). On GW_ERR err says why, without any secret in it, and the
     * failure is counted. Loop thread.
     */
    int (*auth_check)(const gw_ctx_t *ctx, const gw_auth_req_t *req,
                      const char **project, gw_error_t *err);

    /*
     * Parses, validates and aggregates JSON events of an authenticated
     * project: one event object, or (with GW_SUBMIT_BATCH) an array of them,
     * all or nothing. default_action applies to events without "a". Counts
     * received/accepted/dropped. Returns GW_OK, or GW_ERR with a message a
     * client can act on (nothing of that call was aggregated). Loop thread.
     */
    int (*submit_json)(const gw_ctx_t *ctx, const char *project,
                       gw_action_t default_action, const char *json,
                       size_t len, unsigned flags, gw_error_t *err);

    /* The same for an event already in structured form (statsd). */
    int (*submit)(const gw_ctx_t *ctx, const char *project,
                  const gw_event_t *ev, gw_error_t *err);

    /* Adds n to one of this instance's counters; reason (a short
     * snake_case word, static) is used with GW_COUNTER_DROPPED and
     * GW_COUNTER_AUTH_FAILED, else NULL. Any thread. */
    void (*count)(const gw_ctx_t *ctx, gw_counter_t counter,
                  const char *reason, uint64_t n);

    /*
     * Listens for HTTP on opts->host:opts->port with the core's server and
     * calls fn(arg, req) for each request. *out is core-owned; close it with
     * http_close before destroy. Loop thread.
     */
    int (*http_listen)(const gw_ctx_t *ctx, const gw_http_listen_t *opts,
                       gw_http_handler_fn fn, void *arg,
                       gw_http_server_t **out, gw_error_t *err);

    /* Stops listening and closes the server's connections; requests not yet
     * answered are answered 503. Loop thread. */
    void (*http_close)(gw_http_server_t *srv);

    /* Request accessors: core-owned strings valid until http_respond.
     * method: "GET", "POST"...; path: percent-decoded, without the query;
     * query: the raw query string without '?', "" if none; header: the
     * value of a header by case-insensitive name, or NULL; body: the whole
     * body (chunked bodies already joined), *len set. Loop thread. */
    const char *(*http_method)(const gw_http_req_t *req);
    const char *(*http_path)(const gw_http_req_t *req);
    const char *(*http_query)(const gw_http_req_t *req);
    const char *(*http_header)(const gw_http_req_t *req, const char *name);
    const void *(*http_body)(const gw_http_req_t *req, size_t *len);

    /*
     * Answers a request: status, Content-Type (NULL: none), extra header
     * lines each ending in "\r\n" (NULL: none) and the body (copied). After
     * it returns the request is gone. Loop thread.
     */
    void (*http_respond)(gw_http_req_t *req, int status,
                         const char *content_type, const char *headers,
                         const void *body, size_t len);

    /*
     * Asks to be told when every event this instance submitted before the
     * call is safely in the storage: fn(arg, 1) runs on the loop thread
     * after the flush that holds them was stored, or fn(arg, 0) if the
     * daemon stops before that. For transports that acknowledge upstream
     * only after storage (the redis transport's XACK). Loop thread.
     */
    int (*on_stored)(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok),
                     void *arg, gw_error_t *err);

    /* The installation's PREFIX ("" or "/something", no trailing '/'),
     * under which HTTP routes live. Core-owned. Loop thread. */
    const char *(*prefix)(const gw_ctx_t *ctx);

    /* ---- ABI 1.1 ---- */

    /*
     * Calls fn(arg, 1) on the loop thread once every event submitted so
     * far (by any instance) is durable: written to the JOURNAL and, with
     * JOURNAL_SYNC = "always", fsynced. fn(arg, 0) if the journal could not
     * be written (answer the client an error: the events are aggregated but
     * not safe against a crash). Without a journal, and when nothing is
     * pending, fn runs before when_durable returns. A transport that
     * acknowledges (HTTP 200) calls it after submit and acknowledges from
     * fn. Several calls in one loop iteration share one fsync. Returns
     * GW_OK. Loop thread. Check host->abi_minor >= 1 before calling.
     */
    int (*when_durable)(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok),
                        void *arg);

    /*
     * ABI 1.2: more ingest loops. loops() is INGEST_LOOPS (>= 1); loop_at(
     * ctx, 0) is loop(ctx) and loop_at(ctx, i) for 0 < i < loops() is
     * another libev loop that runs on a thread of its own, with its own
     * aggregation table (merged with the others' at each flush). A
     * transport that can spread its work, such as a UDP socket read by
     * several loops at once, may start watchers on them in start() and
     * stop them in stop() (the other loops do not run during either call);
     * from a callback on loop i it may call auth_check, submit_json,
     * submit, count and log, which then run on loop i's thread and
     * aggregate into its table. Everything else stays on loop 0. Check
     * host->abi_minor >= 2 before calling.
     */
    int (*loops)(const gw_ctx_t *ctx);
    struct ev_loop *(*loop_at)(const gw_ctx_t *ctx, int i);

    /*
     * ABI 1.3: the replay cache shared through the storage. Call it right
     * after auth_check returned GW_OK, before submitting anything of the
     * request: it claims the S3/S4 nonce that check accepted in the
     * storage, so a nonce spent before a restart, or by another process
     * on the same storage, is refused too (auth_check itself refuses at
     * once the nonces this process has seen). fn(arg, 1): go on (the
     * nonce was new there, or the storage could not tell: then only this
     * process's own cache protected it, which the core logs); fn(arg, 0):
     * a replay, already counted as an auth failure "replay": refuse the
     * request (HTTP 403, TCP FAIL, drop). Without a nonce (S1, S2, Basic,
     * keys) fn runs before auth_claim returns; otherwise later, on loop
     * 0's thread (also for a callback of another ingest loop). Returns
     * GW_OK, or GW_ERR when out of memory (fn does not run: refuse the
     * request for now). A transport that does not call it still has its
     * nonces recorded (not waited for). Check host->abi_minor >= 3.
     */
    int (*auth_claim)(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok),
                      void *arg);

    /*
     * ABI 1.7: hands work to another ingest loop: fn(arg) runs soon on
     * loop i's thread (0 < i < loops()); posts to one loop run in the
     * order made. A transport that accepts connections on loop 0 spreads
     * them this way (tcpip and statsd give connection k to loop k mod
     * loops()). Once the loops stop (before the transports' stop()), fn
     * runs before post returns, on the caller's thread. Any thread.
     * GW_OK, or GW_ERR (no such loop, or out of memory: fn does not run).
     *
     * Also from 1.7, for a plugin built against 1.7 or later (its
     * descriptor's abi_minor; older plugins keep the old behaviour):
     * auth_claim's fn runs on the thread of the loop that called
     * auth_claim (before 1.7: on loop 0's), gw_http_listen_t.loops
     * spreads an HTTP listener's connections over the loops, and
     * project_exists, prefix, post and the http_ request functions (for
     * requests of the caller's loop) may be called from any loop too.
     */
    int (*post)(const gw_ctx_t *ctx, int i, void (*fn)(void *arg),
                void *arg);
};

#define gw_log_error(ctx, ...) (ctx)->host->log((ctx), GW_LOG_ERR, __VA_ARGS__)
#define gw_log_warning(ctx, ...)                                              \
    (ctx)->host->log((ctx), GW_LOG_WARNING, __VA_ARGS__)
#define gw_log_notice(ctx, ...)                                               \
    (ctx)->host->log((ctx), GW_LOG_NOTICE, __VA_ARGS__)
#define gw_log_info(ctx, ...) (ctx)->host->log((ctx), GW_LOG_INFO, __VA_ARGS__)
#define gw_log_debug(ctx, ...) (ctx)->host->log((ctx), GW_LOG_DEBUG, __VA_ARGS__)

#endif /* GOTTWALL_HOST_H */
