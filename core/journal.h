/*
 * core/journal.h: the write-ahead journal of accepted events (JOURNAL).
 *
 * Every request the core accepts is appended to the journal before it is
 * acknowledged, and replayed at start through the same aggregation path, so
 * that `kill -9` loses nothing acknowledged. The journal is a series of
 * segment files "{JOURNAL}.{seq}", one per flush: the events of segment N
 * are exactly the events of the aggregation table handed to the storage at
 * flush N. A segment is deleted JOURNAL_RETAIN seconds after the storage
 * stored its batch (the retention covers storages that make writes durable
 * later, such as the memory storage's snapshot).
 *
 * Exactly once: before the storage thread first tries to store a batch it
 * appends "{first} {last} {batch id}" to the manifest "{JOURNAL}.batches"
 * (fsynced). At replay the segments of one manifest line are aggregated
 * into one batch with that same id, which a storage that already applied it
 * recognises and skips; segments no batch covered yet get a new id.
 *
 * Group commit: appends go to a buffer; once per loop iteration (an
 * ev_prepare watcher) the buffer is written and, with JOURNAL_SYNC
 * "always", fdatasync'ed, and then the callbacks waiting for durability
 * run (the http transport answers 200 from one). With "interval" the buffer
 * is written every iteration (a crash of the daemon loses nothing; a crash
 * of the machine loses at most one FLUSH_INTERVAL) and synced at each flush.
 *
 * Threads: everything runs on the loop thread except
 * gw__journal_batch_begin (the storage thread).
 */
#ifndef GW_CORE_JOURNAL_H
#define GW_CORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/event.h>

struct ev_loop;
typedef struct gw__journal_s gw__journal_t;

/* What replay hands back, record by record, in the order accepted. */
typedef struct gw__journal_replay_s {
    void *arg;
    /* One accepted submit_json call. now: the receipt time. */
    void (*json)(void *arg, double now, const char *project,
                 gw_action_t action, unsigned flags, const char *json,
                 size_t len);
    /* One accepted structured event (submit). */
    void (*event)(void *arg, double now, const char *project,
                  const gw_event_t *ev);
    /* End of a group of segments first..last that become one batch: id is
     * the batch id recorded in the manifest, or NULL for a new batch. */
    void (*group)(void *arg, uint64_t first, uint64_t last, const char *id);
} gw__journal_replay_t;

/*
 * Opens the journal at path (creating nothing yet), finds the segments and
 * the manifest a previous run left. sync_always: JOURNAL_SYNC "always".
 * retain: JOURNAL_RETAIN seconds. GW_ERR if the directory cannot be used.
 */
int gw__journal_open(struct ev_loop *loop, const char *path, int sync_always,
                     int retain, gw__journal_t **out, gw_error_t *err);

/*
 * Replays every segment left by the previous run, in order, through r. A
 * torn last record (a crash in the middle of a write) is detected by its
 * checksum, logged and ignored. Then opens a fresh segment for new events
 * and starts the group commit watcher. Returns the number of records
 * replayed; segments replayed stay until gw__journal_stored says so.
 */
uint64_t gw__journal_replay(gw__journal_t *j, const gw__journal_replay_t *r);

/* Appends one accepted request (after it was aggregated). Loop thread. */
void gw__journal_append_json(gw__journal_t *j, double now,
                             const char *project, gw_action_t action,
                             unsigned flags, const char *json, size_t len);
void gw__journal_append_event(gw__journal_t *j, double now,
                              const char *project, const gw_event_t *ev);

/*
 * Calls fn(arg, ok) on the loop thread once everything appended so far is
 * written (and with "always" fsynced): ok 1; or ok 0 if the journal could
 * not be written (the error is logged). May call fn before it returns when
 * nothing is pending. Loop thread.
 */
void gw__journal_when_durable(gw__journal_t *j, void (*fn)(void *arg, int ok),
                              void *arg);

/*
 * At a flush: writes and syncs the current segment, closes it and opens the
 * next. Returns the closed segment's number, or 0 if it held nothing (no
 * new segment then). Loop thread.
 */
uint64_t gw__journal_rotate(gw__journal_t *j);

/* Segments up to and including seq are in the storage; they are deleted
 * once JOURNAL_RETAIN seconds have passed. Loop thread. */
void gw__journal_stored(gw__journal_t *j, uint64_t seq);

/* Storage thread, before the first store() of a batch of segments
 * first..last: records the batch id in the manifest (fsynced). */
void gw__journal_batch_begin(gw__journal_t *j, const char *id, uint64_t first,
                             uint64_t last);

/* Writes and syncs what is pending now and runs the waiting callbacks
 * (at stop, before the transports close their connections). */
void gw__journal_commit(gw__journal_t *j);

/* Writes and syncs what is pending and frees j; segments stay on disk. */
void gw__journal_close(gw__journal_t *j);

#endif /* GW_CORE_JOURNAL_H */
