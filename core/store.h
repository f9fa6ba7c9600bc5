/*
 * core/store.h: the storage thread (DESIGN §2).
 *
 * One gw__store_t runs one storage plugin instance on its own thread. The
 * loop hands it aggregation tables to write (gw__store_flush) and jobs to
 * run (gw__store_call: queries, metadata, documents). Every call into the
 * plugin happens on that thread, one at a time. Results come back to the
 * loop through an ev_async.
 *
 * Writes: tables merge into the "next" batch; the thread stores the
 * "current" batch; GW_AGAIN keeps it (same id) and retries with backoff
 * (100 ms doubling to 5 s) while new tables keep merging into "next",
 * bounded by MAX_PENDING_SERIES. The outage is logged once, the recovery
 * once.
 */
#ifndef GW_CORE_STORE_H
#define GW_CORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/plugin.h>

#include "ingest/ingest.h"

struct ev_loop;
typedef struct gw__store_s gw__store_t;

/* Runs on the storage thread: call the plugin through ops and state. */
typedef int (*gw__store_job_fn)(const gw_storage_ops_t *ops, void *state,
                                void *arg, gw_error_t *err);
/* Runs on the loop thread afterwards with the job's return code. */
typedef void (*gw__store_done_fn)(void *arg, int rc, const gw_error_t *err);

typedef struct gw__store_stats_s {
    uint64_t batches_stored;
    uint64_t events_stored;      /* events in batches stored */
    uint64_t events_dropped;     /* in GW_ERR batches, or out of memory */
    uint64_t store_errors;       /* GW_AGAIN and GW_ERR returns */
    size_t pending_series;       /* series waiting: the batches' deltas
                                  * over the periods, and the keys of the
                                  * loops' tables (gw__store_stats) */
    double last_flush_seconds;   /* duration of the last successful store() */
    int down;                    /* 1 while the storage refuses */
    /* RETENTION (gw__store_set_retention) */
    uint64_t skipped[GW_PERIOD_COUNT]; /* cells not written: their bucket
                                        * was past its retention */
    uint64_t expiry_passes;      /* expiries of every period, done */
    uint64_t expiry_errors;      /* expire() calls that failed */
    double last_expiry_seconds;  /* duration of the last pass */
} gw__store_stats_t;

/*
 * Starts the thread for an instance whose plugin state is already created.
 * log_prefix: what the thread's log lines start with ("storage:redis:x";
 * kept, not copied; NULL: none).
 * periods: bit set of periods to expand to; max_pending: MAX_PENDING_SERIES;
 * id_prefix: unique per process (batch ids are "{id_prefix}:{seq}").
 */
int gw__store_start(struct ev_loop *loop, const char *log_prefix,
                    const gw_storage_ops_t *ops, void *state,
                    unsigned periods, size_t max_pending,
                    const char *id_prefix, gw__store_t **out,
                    gw_error_t *err);

/*
 * RETENTION: from now on, deltas of buckets past their period's retention
 * are left out of batches (counted in skipped), and the thread calls the
 * storage's expire op (if it has one) for each period with a retention,
 * finest first: first 1 s from now, then every interval_s seconds.
 * retention: seconds per period, 0 for ever (copied).
 */
void gw__store_set_retention(gw__store_t *st, const int64_t *retention,
                             double interval_s);

/* Says what RETENTION will do (check and start): a warning without it;
 * each period's retention and, at start (cut_now 1), the time before
 * which the first expiry removes buckets; a warning when the storage
 * named has no expire op (can_expire 0). */
void gw__store_log_retention(const gw__config_t *cfg, const char *storage,
                             int can_expire, int cut_now);

/* Out of memory, every call below that queues something returns GW_ERR
 * and takes nothing: the caller still owns its table or argument (the
 * events of a table are acknowledged already, so the caller keeps them,
 * see gw__ingest_unswap). Otherwise GW_OK. */

/* What waits for this storage, for every ingest loop to hold
 * MAX_PENDING_SERIES at admission (gw__ingest_set_pending); lives as long
 * as st. */
gw__pending_t *gw__store_pending(gw__store_t *st);

/*
 * One flush of every ingest loop as one batch: gw__store_hold(st, n)
 * keeps the storage thread from beginning to store the batch the tables
 * merge into until n gw__store_release calls came (the tables handed over
 * meanwhile merge into it as ever), so that the tables the loops swapped at
 * one flush tick are stored together, and of two equal-ts gauges the one
 * received last wins whichever loop took it (the receipt times decide
 * within a batch). Any thread.
 */
void gw__store_hold(gw__store_t *st, int n);
void gw__store_release(gw__store_t *st);

/* Hands a table to the thread (takes ownership; NULL is a no-op). Any
 * ingest loop's thread. */
int gw__store_flush(gw__store_t *st, gw__table_t *t);

struct gw__journal_s;

/* Batches of journaled tables are recorded in j's manifest before their
 * first store() (core/journal.h). Call before the first flush. */
void gw__store_set_journal(gw__store_t *st, struct gw__journal_s *j);

/* gw__store_flush for the journaling loop's table t (not NULL): once the
 * hand-over cannot fail any more, rotates the journal set with
 * gw__store_set_journal (if any), so that *seg gets the segment that holds
 * exactly t's events (0 without a journal). On GW_ERR nothing rotated. */
int gw__store_flush_seg(gw__store_t *st, gw__table_t *t, uint64_t *seg);

/* A replayed table that becomes a batch of its own with the id it had
 * before (journal segments first..last), so that a storage that already
 * applied it skips it. Loop thread. */
int gw__store_flush_batch(gw__store_t *st, gw__table_t *t, const char *id,
                          uint64_t first, uint64_t last);

/* Calls done(arg) on the loop once every table handed over before this
 * call has been stored (rc GW_OK) or the store is closing (GW_AGAIN). */
int gw__store_when_stored(gw__store_t *st, gw__store_done_fn done,
                          void *arg);

/* Queues a job; done runs on the loop thread. Jobs do not wait behind a
 * write that is backing off. Loop thread. */
int gw__store_call(gw__store_t *st, gw__store_job_fn job,
                   gw__store_done_fn done, void *arg);

/* A snapshot of the counters. Any thread. */
void gw__store_stats(gw__store_t *st, gw__store_stats_t *out);

/*
 * Stops: waits up to timeout_ms for everything handed over to be stored
 * (runs the loop's async callbacks meanwhile), logs what could not be
 * stored, joins the thread and frees st (the plugin state is NOT destroyed:
 * the caller does that). Returns the number of events not stored.
 */
uint64_t gw__store_close(gw__store_t *st, int timeout_ms);

/* The same, and *final (may be NULL) gets the counters as they stood when
 * the thread stopped (for the daemon's summary line). */
uint64_t gw__store_close_stats(gw__store_t *st, int timeout_ms,
                               gw__store_stats_t *final);

#endif /* GW_CORE_STORE_H */
