/*
 * gottwall/storage.h: what a storage plugin implements.
 *
 * The core pre-aggregates events and hands a storage batches of deltas; the
 * storage applies them and answers the read API: queries of one series,
 * metadata (metrics, their filters and values) and small JSON documents
 * (embedded charts, saved dashboards).
 *
 * Threads: create and destroy run on the main thread. Every other op runs
 * on the instance's own storage thread and calls into one instance are never
 * concurrent, so a storage may block (with timeouts) and needs no locks.
 */
#ifndef GOTTWALL_STORAGE_H
#define GOTTWALL_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/event.h>
#include <gottwall/host.h>

/* Receives one stored point. p is borrowed for the call. */
typedef void (*gw_point_fn)(void *arg, const gw_point_t *p);
/* Receives one metadata entry. m is borrowed for the call. */
typedef void (*gw_meta_fn)(void *arg, const gw_meta_t *m);
/* Receives one stored timing point (query_data): p and its sketch t are
 * borrowed for the call. */
typedef void (*gw_timing_point_fn)(void *arg, const gw_point_t *p,
                                   const gw_timing_t *t);
/* Receives a document's bytes. data is borrowed for the call. */
typedef void (*gw_doc_fn)(void *arg, const char *data, size_t len);
/* Receives one document of doc_list (ABI 1.6): its id and bytes, both
 * borrowed for the call. */
typedef void (*gw_doc_entry_fn)(void *arg, const char *id, const char *data,
                                size_t len);

typedef struct gw_storage_ops_s {
    uint32_t struct_size; /* sizeof(gw_storage_ops_t) as compiled */

    /* Reads config (host->config_apply), allocates *state. Should not need
     * the server to be up: connect lazily. GW_OK or GW_ERR. Required. */
    int (*create)(const gw_ctx_t *ctx, void **state, gw_error_t *err);

    /* Frees everything. Never fails. Required. */
    void (*destroy)(void *state);

    /*
     * Applies a batch (see gw_delta_t for the rules), atomically if it can.
     * GW_OK: applied. GW_AGAIN: the server is unreachable; the core keeps
     * the batch and calls again later with the same batch->id, so a batch
     * whose write may have happened must be recognised by id and not
     * applied twice. GW_ERR: the batch can never be applied (it is dropped
     * and counted). Required.
     */
    int (*store)(void *state, const gw_batch_t *batch, gw_error_t *err);

    /*
     * Calls emit once for each stored bucket of q's series with
     * q->from <= bucket <= q->to, in any order; buckets never written may
     * be skipped. GW_OK, GW_AGAIN (unreachable) or GW_ERR. Required.
     */
    int (*query)(void *state, const gw_query_t *q, gw_point_fn emit,
                 void *arg, gw_error_t *err);

    /*
     * Calls emit once per metric of the project (filter_name NULL), and
     * once per (metric, filter name, filter value), in any order.
     * GW_OK, GW_AGAIN or GW_ERR. Required.
     */
    int (*metadata)(void *state, const char *project, gw_meta_fn emit,
                    void *arg, gw_error_t *err);

    /* Stores a document (replacing any with the same ns and id). ns is a
     * short word ("embedded", "dashboard"), id at most 255 bytes of any
     * content. GW_OK, GW_AGAIN or GW_ERR. Required. */
    int (*doc_put)(void *state, const char *ns, const char *id,
                   const char *data, size_t len, gw_error_t *err);

    /* Calls emit once with the document if it exists; not at all if not.
     * GW_OK, GW_AGAIN or GW_ERR. Required. */
    int (*doc_get)(void *state, const char *ns, const char *id,
                   gw_doc_fn emit, void *arg, gw_error_t *err);

    /* Checks the server answers (GET /health). GW_OK or GW_AGAIN.
     * Optional: NULL means always healthy. */
    int (*ping)(void *state, gw_error_t *err);

    /* ---- ABI 1.3 ---- */

    /*
     * The replay cache shared by every process on this storage, and kept
     * across restarts: claims the S3/S4 nonce (len bytes of [A-Za-z0-9_-],
     * 8..64) of a project until expires_at (epoch seconds, the real
     * clock; after it, the nonce's ts can no longer pass the window, so
     * the claim may be forgotten and the nonce claimed again).
     * GW_OK: the first claim (it is now remembered until expires_at).
     * GW_ERR: already claimed and not yet expired: a replay (err says so).
     * GW_AGAIN: cannot tell now (unreachable, or any other failure); the
     * core then relies on each process's own cache and does not retry.
     * Optional: NULL (or a plugin built before 1.3) means no shared cache.
     */
    int (*nonce_claim)(void *state, const char *project, const char *nonce,
                       size_t len, double expires_at, gw_error_t *err);

    /* ---- ABI 1.4 ---- */

    /*
     * Retention (RETENTION): removes the cells of period whose bucket
     * starts before `before` (a bucket start of that period, epoch
     * seconds), of every project, metric and filter value; cells of other
     * periods stay. The storage thread calls it every RETENTION_INTERVAL
     * for each period that has a retention, finest first, between stores.
     * A storage may do part of the work per call, so that flushes never
     * wait long: GW_AGAIN then means "more to do": the core calls again
     * after a short pause, with the same arguments or a later `before`.
     * GW_OK: done: no query returns a cell of period before `before` any
     * more (a storage may keep such rows on disk until it can drop them
     * whole, as PostgreSQL does with the partition holding the cut, and
     * may answer GW_OK when another process sharing it does the work).
     * GW_ERR: failed, the storage unreachable included (err says why;
     * logged and tried again at the next interval). Note that GW_AGAIN
     * here is "more to do", not "unreachable" as for the other ops. A later write
     * into an expired bucket is never sent (the core skips it), and a read
     * of it is refused before it reaches the storage.
     * Optional: NULL (or a plugin built before 1.4) means the storage
     * keeps everything; the core logs that at start.
     */
    int (*expire)(void *state, gw_period_t period, int64_t before,
                  gw_error_t *err);

    /* ---- ABI 1.5 ---- */

    /*
     * The kinds beyond counter, avg and gauge the storage keeps, as
     * GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET). The core
     * refuses events of a kind its storage does not keep, at admission
     * ("metric \"m\" is a timing metric, which the storage \"x\" does not
     * keep"), so store() never sees them. 0 (or a plugin built before
     * 1.5): neither.
     */
    uint32_t kinds;

    /*
     * query for a timing series: calls emit once per stored bucket with
     * its point (sum, count) and its sketch. Required when kinds has
     * GW_KIND_TIMING (query then answers the same buckets without the
     * sketch). Sets need no such op: query answers a set's bucket with
     * the distinct count in sum and the events in count.
     */
    int (*query_timing)(void *state, const gw_query_t *q,
                        gw_timing_point_fn emit, void *arg, gw_error_t *err);

    /* ---- ABI 1.6 ---- */

    /*
     * Compare-and-set of a document, atomic against every process sharing
     * the storage: stores data (len bytes) as (ns, id) only when the stored
     * document is exactly the expect_len bytes at expect, or, with expect
     * NULL, only when there is no such document. GW_OK: stored.
     * GW_CONFLICT: the stored document is not expect (another value, or
     * none, or one when expect is NULL); nothing was written. GW_AGAIN
     * (unreachable; whether it was written is then unknown, as for
     * doc_put) or GW_ERR. Optional: NULL (or a plugin built before 1.6)
     * and the core compares and writes with doc_get and doc_put, which is
     * atomic within one process only (its calls into an instance are
     * serialised) and says so in the log, once.
     */
    int (*doc_cas)(void *state, const char *ns, const char *id,
                   const char *expect, size_t expect_len, const char *data,
                   size_t len, gw_error_t *err);

    /*
     * Calls emit once for each document of ns whose id begins with the
     * prefix (NUL-terminated, "" for all), in any order. GW_OK, GW_AGAIN
     * or GW_ERR. Optional: NULL (or a plugin built before 1.6) and the
     * core reads the documents it indexes itself one by one with doc_get.
     */
    int (*doc_list)(void *state, const char *ns, const char *prefix,
                    gw_doc_entry_fn emit, void *arg, gw_error_t *err);

    /*
     * Removes the document (ns, id): with expect NULL whatever it holds
     * (GW_OK also when there is none), else only when it is exactly the
     * expect_len bytes at expect (GW_CONFLICT, nothing removed, when not,
     * or when there is none). Atomic as doc_cas. GW_OK, GW_CONFLICT,
     * GW_AGAIN or GW_ERR. Optional: NULL (or a plugin built before 1.6)
     * and the core overwrites the document with a small tombstone
     * instead, which stays in the storage.
     */
    int (*doc_del)(void *state, const char *ns, const char *id,
                   const char *expect, size_t expect_len, gw_error_t *err);
} gw_storage_ops_t;

#endif /* GOTTWALL_STORAGE_H */
