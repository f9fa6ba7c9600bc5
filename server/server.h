/*
 * server/server.h: the server role as the process sees it, and the process
 * as the server role sees it.
 *
 * The read side (routing, pages, /health and /metrics, login and sessions,
 * stats queries, embedded charts and dashboards) never reaches into the
 * daemon: everything it needs of the process (the loop, the config of the
 * moment, the storage thread, the auth state) comes through one
 * gw__server_env_t that core/ fills in. The daemon starts and stops the
 * role through the hooks of gw__server_role, as it does every role.
 */
#ifndef GW_SERVER_SERVER_H
#define GW_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/storage.h>

#include "base/conf.h"
#include "net/auth.h"

struct ev_loop;

/* Runs on the storage thread: calls the storage plugin through ops and
 * state. (The same shape as the storage thread's jobs.) */
typedef int (*gw__server_job_fn)(const gw_storage_ops_t *ops, void *state,
                                 void *arg, gw_error_t *err);
/* Runs on the loop afterwards with the job's return code. */
typedef void (*gw__server_done_fn)(void *arg, int rc, const gw_error_t *err);

/* What /health and /metrics show of the storage thread. */
typedef struct gw__server_storage_s {
    uint64_t batches_stored;
    uint64_t events_stored;
    uint64_t events_dropped;
    uint64_t store_errors;
    size_t pending_series;
    double last_flush_seconds;
    int down; /* 1 while the storage refuses writes */
    uint64_t skipped[GW_PERIOD_COUNT]; /* cells past RETENTION, not written */
    uint64_t expiry_passes, expiry_errors;
    double last_expiry_seconds;
    int can_expire; /* RETENTION is set and the storage has expire */
} gw__server_storage_t;

/* What the server role needs of the process. ctx is the process's and is
 * passed back to every function. Every function runs on the loop thread. */
typedef struct gw__server_env_s {
    void *ctx;
    struct ev_loop *loop;
    int aggregator; /* 1: the process also runs the aggregator role */
    /* The config of the moment: SIGHUP may replace it between requests. */
    const gw__config_t *(*config)(void *ctx);
    /* The loop's auth state (up to date with SIGHUP), or NULL. */
    gw__auth_t *(*auth)(void *ctx);
    /* Queues job on the storage thread; done(arg) runs on the loop once it
     * ran. GW_OK, or GW_ERR when no storage runs (nothing is queued). */
    int (*storage_call)(void *ctx, gw__server_job_fn job,
                        gw__server_done_fn done, void *arg);
    /* 1 while a storage runs (with *out filled unless out is NULL), else
     * 0. */
    int (*storage_stats)(void *ctx, gw__server_storage_t *out);
    /* Adds what this loop's transports accepted to the counters, before
     * /metrics renders them. */
    void (*flush_counts)(void *ctx);
    /* Claims the nonce of the last S3/S4 header auth accepted in the
     * replay cache the storage shares (core/claim.h): fn(arg, 1) if it
     * was new there, or the storage could not tell; fn(arg, 0) if it was
     * spent before (a replay: refuse the request). Without a nonce, fn
     * runs before it returns. GW_OK, or GW_ERR when out of memory (fn does
     * not run). NULL: no shared cache. */
    int (*auth_claim)(void *ctx, void (*fn)(void *arg, int ok), void *arg);
} gw__server_env_t;

/* One role of the process (nginx' module hooks, in small): the daemon calls
 * start for each role it runs, after the storage started, and stop in the
 * reverse order before the storage stops. host and port: where to listen
 * (the command line's -h/-p or SERVER.HOST/PORT). start logs nothing on
 * failure: err says what failed. *state is the role's. */
typedef struct gw__role_s {
    const char *name;
    int (*start)(const gw__server_env_t *env, const char *host, int port,
                 void **state, gw_error_t *err);
    void (*stop)(void *state);
} gw__role_t;

/* The server role: the read API and the dashboard. */
extern const gw__role_t gw__server_role;

#endif /* GW_SERVER_SERVER_H */
