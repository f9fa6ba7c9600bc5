/*
 * core/daemon.h: one running gottwall process: the loop, the config, the
 * storage instance and its thread, the transports (aggregator role) and the
 * read API and dashboard (server role). Plugin instances reach it through
 * their gw_instance_s.
 */
#ifndef GW_CORE_DAEMON_H
#define GW_CORE_DAEMON_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <gottwall/plugin.h>

#include "server/api.h"
#include "net/auth.h"
#include "base/conf.h"
#include "ingest/ingest.h"
#include "journal.h"
#include "loader.h"
#include "store.h"

#define GW__ROLE_AGGREGATOR 0x1u
#define GW__ROLE_SERVER 0x2u

typedef struct gw__daemon_s gw__daemon_t;
typedef struct gw__worker_s gw__worker_t;

/* One plugin instance. ctx.inst points back here. */
struct gw_instance_s {
    gw_ctx_t ctx;
    gw__daemon_t *daemon;
    gw__plugin_t *plugin;
    char *name;                  /* instance name */
    char *prefix;                /* log prefix: "transport:http:http" */
    config_setting_t *section;   /* may be NULL */
    void *state;                 /* the plugin's */
    int started;
};
typedef struct gw_instance_s gw__instance_t;

struct gw__daemon_s {
    struct ev_loop *loop;
    gw__config_t *cfg;           /* written by SIGHUP with __atomic_store */
    unsigned roles;
    gw__loader_t loader;
    gw__auth_t *auth;
    gw__ingest_t *ingest;        /* aggregator role */
    gw__instance_t *storage;
    gw__store_t *store;
    gw__instance_t **transports;
    size_t ntransports;
    gw__api_t *api;              /* server role */
    char id[40];                 /* random per process: batch ids */
    ev_timer flush_timer;
    ev_prepare count_flush;      /* gw__host_flush_counts, each iteration */
    ev_signal sig_term, sig_int, sig_hup;
    int stopping;
    /* Overrides from the command line (server start -h/-p). */
    const char *server_host;
    int server_port;
    gw__journal_t *journal;      /* JOURNAL, or NULL */
    /* INGEST_LOOPS - 1 more ingest loops, each on a thread of its own with
     * its own gw__ingest_t and gw__auth_t; loop 0 is d->loop with
     * d->ingest and d->auth. With any, every ingest shares the registry
     * (kinds, MAX_SERIES) and every auth d->auth's S3 replay cache; each
     * loop's auth takes up cfg when SIGHUP replaces it (stored atomically
     * for them). */
    gw__worker_t *workers;
    size_t nworkers;
    gw__ingest_t *registry;
};

/* Hands what is aggregated to the storage thread (rotating the journal
 * with it). The flush timer calls it; so does host->on_stored. Loop. */
void gw__daemon_flush(gw__daemon_t *d);

/* The ingest state of the calling thread's loop: d->ingest on the main
 * thread, a worker's on that worker's thread. */
gw__ingest_t *gw__daemon_ingest(gw__daemon_t *d);

/* The auth state of the calling thread's loop, up to date with SIGHUP. */
gw__auth_t *gw__daemon_auth(gw__daemon_t *d);

/* Ingest loop i (0: d->loop), or NULL when i >= INGEST_LOOPS. */
struct ev_loop *gw__daemon_loop_at(gw__daemon_t *d, int i);

/* Adds what the calling thread's submits accepted since the last call to
 * the received and accepted counters (core/host.c). Each ingest loop
 * calls it once per iteration; call it before reading those counters on
 * the thread that submitted, and before freeing an instance. */
void gw__host_flush_counts(void);

/* The clock ingestion reads for events without "ts": the real clock, or,
 * while pinned, the pinned time (a request's receipt time, as kept in the
 * journal, so that a replay buckets it exactly where it was). 0 unpins. */
double gw__daemon_clock(void);
void gw__daemon_pin_clock(double t);

/* The single host table handed to every plugin instance. */
extern const gw_host_t gw__host;

/* Options from the command line. */
typedef struct gw__run_opts_s {
    unsigned roles;
    const char *server_host;     /* NULL: SERVER.HOST */
    int server_port;             /* 0: SERVER.PORT */
    char *const *plugin_dirs;    /* --plugin-path and GOTTWALL_PLUGIN_PATH */
    size_t nplugin_dirs;
} gw__run_opts_t;

/* Runs until SIGTERM/SIGINT: starts the storage, transports and server,
 * then on a signal stops accepting, flushes everything and stops. cfg is
 * owned by the caller (SIGHUP replaces it inside). Returns 0 on a clean
 * stop, 1 on a start-up error (already logged). */
int gw__daemon_run(const char *config_path, gw__config_t *cfg,
                   const gw__run_opts_t *opts);

/* Loads the storage plugin, creates its instance and reaches it (ping);
 * for `gottwall check`. Logs what fails; 0 or 1. */
int gw__daemon_check(gw__config_t *cfg, const gw__run_opts_t *opts);

#endif /* GW_CORE_DAEMON_H */
