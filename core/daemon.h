/*
 * core/daemon.h: one running gottwall process: the loop, the config, the
 * storage instance and its thread, the transports (aggregator role) and
 * the server role. The daemon is opaque: the host table (core/host.c)
 * reaches what it needs through the accessors below, the server role
 * through server/server.h's environment.
 */
#ifndef GW_CORE_DAEMON_H
#define GW_CORE_DAEMON_H

#include <stddef.h>

#include <gottwall/common.h>

#include "base/post.h"

struct ev_loop;
struct gw__config_s;
struct gw__ingest_s;
struct gw__auth_s;
struct gw__journal_s;

#define GW__ROLE_AGGREGATOR 0x1u
#define GW__ROLE_SERVER 0x2u

typedef struct gw__daemon_s gw__daemon_t;

/* Options from the command line. */
typedef struct gw__run_opts_s {
    unsigned roles;
    const char *server_host;     /* NULL: SERVER.HOST */
    int server_port;             /* 0: SERVER.PORT */
    char *const *plugin_dirs;    /* --plugin-path and GOTTWALL_PLUGIN_PATH */
    size_t nplugin_dirs;
    /* For tests (the fuzz targets pin it): the clock of the auth state
     * (every loop's) and of loop 0's ingest state. NULL: the real one. */
    double (*now)(void);
} gw__run_opts_t;

/* Runs until SIGTERM/SIGINT: starts the storage, transports and server,
 * then on a signal stops accepting, flushes everything and stops. cfg is
 * owned by the caller (SIGHUP replaces it inside). Returns 0 on a clean
 * stop, 1 on a start-up error (already logged). */
int gw__daemon_run(const char *config_path, struct gw__config_s *cfg,
                   const gw__run_opts_t *opts);

/* Loads the storage plugin, creates its instance and reaches it (ping);
 * for `gottwall check`. Logs what fails; 0 or 1. */
int gw__daemon_check(struct gw__config_s *cfg, const gw__run_opts_t *opts);

/* A daemon that runs nothing yet: cfg (kept, not copied), the roles,
 * command line overrides, plugin directories and clock of opts, loop 0,
 * the loader, loop 0's auth state and (aggregator role) ingest state. What
 * gw__daemon_run and gw__daemon_check start from; the unit suites make one
 * to drive the host table. NULL when out of memory. */
gw__daemon_t *gw__daemon_new(struct gw__config_s *cfg,
                             const gw__run_opts_t *opts, struct ev_loop *loop);
/* Frees what gw__daemon_new made (not the loop, not cfg). NULL: no-op. */
void gw__daemon_free(gw__daemon_t *d);

/* ---- For the host table (core/host.c) ---- */

/* The main loop (ingest loop 0). */
struct ev_loop *gw__daemon_loop(const gw__daemon_t *d);
/* The config of the moment (SIGHUP replaces it; any thread). */
const struct gw__config_s *gw__daemon_config(const gw__daemon_t *d);
/* INGEST_LOOPS as running: 1 + the extra loops. */
int gw__daemon_loops(const gw__daemon_t *d);
/* Ingest loop i (0: the main loop), or NULL when i >= INGEST_LOOPS. */
struct ev_loop *gw__daemon_loop_at(const gw__daemon_t *d, int i);
/* Runs p->fn(p) soon on ingest loop i's thread, 0 < i < loops (see
 * gw__workers_post). GW_OK, or GW_ERR: no such loop (fn does not run).
 * Any thread. */
int gw__daemon_post(const gw__daemon_t *d, int i, gw__post_t *p);
/* The ingest state of the calling thread's loop, or NULL when this
 * process does not aggregate. */
struct gw__ingest_s *gw__daemon_ingest(gw__daemon_t *d);
/* The shared replay cache (core/claim.h), or NULL before the storage
 * started and after it stopped. */
struct gw__claims_s *gw__daemon_claims(const gw__daemon_t *d);
/* The auth state of the calling thread's loop, up to date with SIGHUP. */
struct gw__auth_s *gw__daemon_auth(gw__daemon_t *d);
/* JOURNAL's journal, or NULL. */
struct gw__journal_s *gw__daemon_journal(const gw__daemon_t *d);
/* Hands what is aggregated to the storage thread (rotating the journal
 * with it), and calls done(arg, ok) on the loop once that and everything
 * before it is stored (ok 1) or the daemon stops first (ok 0). GW_OK, or
 * GW_ERR when this process has no storage to wait for or is out of memory
 * (err says which). Loop. */
int gw__daemon_when_stored(gw__daemon_t *d, void (*done)(void *arg, int ok),
                           void *arg, gw_error_t *err);

#endif /* GW_CORE_DAEMON_H */
