/*
 * core/workers.h: the extra ingest loops (INGEST_LOOPS - 1 of them), each
 * a thread running its own libev loop with its own ingest state (sharing
 * one registry of kinds and MAX_SERIES counts with loop 0) and its own
 * auth state (sharing loop 0's S3 replay cache). Transports that ask for
 * them (host->loop_at) watch their sockets there; at loop 0's flush tick
 * (gw__workers_tick) each loop hands its table over through the daemon's
 * hand_over callback, which may be called on any loop's thread.
 */
#ifndef GW_CORE_WORKERS_H
#define GW_CORE_WORKERS_H

#include <stddef.h>

#include "base/conf.h"
#include "base/post.h"
#include "ingest/ingest.h"
#include "net/auth.h"

struct ev_loop;
typedef struct gw__workers_s gw__workers_t;

/* Called with each table a loop takes out of its ingest state (never
 * NULL), on that loop's thread (or the main thread at stop). GW_OK: taken;
 * GW_ERR (out of memory): the loop keeps it for its next flush. */
typedef int (*gw__workers_hand_over_fn)(void *arg, gw__table_t *t);

/* The number of ingest loops INGEST_LOOPS asks for: 0 (the default) is
 * one per CPU this process may run on (taskset and cgroups count), at most
 * 8, and one when a JOURNAL is kept (loop 0 alone writes it); *cpus gets
 * the CPUs counted (0 when INGEST_LOOPS was given). */
int gw__workers_wanted(const gw__config_t *cfg, int *cpus);

/*
 * Creates n extra loops and their ingest and auth states (not started:
 * the transports may watch sockets on them first). ingest0 and auth0 are
 * loop 0's: ingest0 is made to share the registry the loops share. n may
 * be 0 (then ingest0 is left alone). GW_OK, or GW_ERR (logged) with *out
 * NULL and nothing left allocated.
 */
int gw__workers_create(size_t n, const gw__config_t *cfg,
                       gw__ingest_t *ingest0, gw__auth_t *auth0,
                       gw__workers_hand_over_fn hand_over, void *arg,
                       gw__workers_t **out);

/* Starts their threads (after the transports started). GW_OK or GW_ERR
 * (logged). */
int gw__workers_start(gw__workers_t *w);

/* Stops their threads: afterwards their loops no longer run, so the main
 * thread may stop the transports' watchers on them. NULL: no-op. */
void gw__workers_stop(gw__workers_t *w);

/*
 * Loop 0's flush tick: asks every extra loop to hand its table over (on
 * its own thread, unless the storage is down), and then to call the
 * on_flushed function (gw__workers_on_flushed, with the create's arg).
 * A loop that has not yet run the previous tick's request is not asked
 * again. Returns how many loops were asked (each calls on_flushed once).
 * NULL: 0.
 */
int gw__workers_tick(gw__workers_t *w);
void gw__workers_on_flushed(gw__workers_t *w, void (*fn)(void *arg));

/* Hands what the stopped loops aggregated over. NULL: no-op. */
void gw__workers_flush(gw__workers_t *w);

/* Frees the stopped loops and their states. NULL: no-op. */
void gw__workers_free(gw__workers_t *w);

/* How many extra loops there are (0 for NULL), and loop i (0-based). */
size_t gw__workers_count(const gw__workers_t *w);
struct ev_loop *gw__workers_loop(const gw__workers_t *w, size_t i);

/*
 * Runs p->fn(p) soon on extra loop i's thread (0-based: loop i + 1),
 * posts in the order made; once the loop stopped, fn runs before this
 * returns, on the caller's thread (then no loop races with it). Cannot
 * fail for an existing loop. Any thread. GW_OK, or GW_ERR: no such loop
 * (fn does not run).
 */
int gw__workers_post(gw__workers_t *w, size_t i, gw__post_t *p);

/* The ingest loop the calling thread runs: 1.. for an extra loop, 0 for
 * loop 0 (and any thread that is not an extra loop). */
int gw__workers_current(void);

/* On an extra loop's thread: its ingest state, and its auth state brought
 * up to date with cfg (SIGHUP's). On any other thread: NULL. */
gw__ingest_t *gw__workers_ingest(void);
gw__auth_t *gw__workers_auth(const gw__config_t *cfg);

#endif /* GW_CORE_WORKERS_H */
