/*
 * plugins/storage/memory/memory.h: the memory storage's data structures,
 * shared by memory.c (the storage ops) and snapshot.c (the snapshot file).
 *
 * The store is a tree of hash tables: project -> metric -> series (the
 * total, or one filter value) -> one sorted array of cells per period. A
 * query walks exactly one series' array (binary search to `from`), metadata
 * walks one project, and nothing ever scans the whole store.
 */
#ifndef GW_MEMORY_H
#define GW_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <gottwall/plugin.h>
#include <gottwall/sketch.h>

#include "map.h"

/* Batch ids remembered for exactly-once (and kept in the snapshot). */
#define MS_BATCH_IDS 1024

/* One stored bucket. The last member depends on the series' kind: a
 * gauge's ts (the counter's and avg's unused ts), or the cell's sketch, a
 * heap gw_timing_t or gw_set_t owned by the cell (NULL only while a
 * store() that created the cell has not committed it). Keeping it in the
 * place of ts keeps every cell 32 bytes (the snapshot's cell of the other
 * kinds is the in-memory one). */
typedef struct ms_cell_s {
    int64_t bucket;
    double sum;
    int64_t count;
    union {
        double ts;           /* counter, avg, gauge */
        gw_timing_t *timing; /* timing: count, sum above; min, max, bins */
        gw_set_t *set;       /* set: count above is the events */
    } u;
} ms_cell_t;

/* The kinds whose cells own a sketch (u.timing, u.set). */
static inline int
ms_kind_sketch(gw_kind_t k)
{
    return k == GW_KIND_TIMING || k == GW_KIND_SET;
}

/* Frees a cell's sketch (of a series of kind k); the cell keeps its place. */
static inline void
ms_cell_free_sketch(ms_cell_t *c, gw_kind_t k)
{
    if (k == GW_KIND_TIMING && c->u.timing != NULL) {
        gw_timing_free(c->u.timing);
        free(c->u.timing);
        c->u.timing = NULL;
    } else if (k == GW_KIND_SET && c->u.set != NULL) {
        gw_set_free(c->u.set);
        free(c->u.set);
        c->u.set = NULL;
    }
}

/* The cells of one series and period, sorted by bucket. Expiry drops cells
 * from the front by moving v forward (off cells past the allocation's
 * start), so a pass costs what it cuts, not what it keeps; the array is
 * compacted when it must grow and a quarter of it is dead, or shrunk. */
typedef struct ms_cells_s {
    ms_cell_t *v;
    size_t n;
    size_t cap; /* cells allocated from v - off */
    size_t off;
} ms_cells_t;

typedef struct ms_series_s {
    gw_kind_t kind;     /* the metric's: what the cells' u holds */
    const char *fname;  /* NULL for the total series; points into the key */
    const char *fvalue; /* NULL for the total series; points into the key */
    ms_cells_t periods[GW_PERIOD_COUNT];
} ms_series_t;

typedef struct ms_metric_s {
    const char *name; /* points into the project's map key */
    gw_kind_t kind;   /* fixed by the first delta */
    mm_map_t series;  /* "" -> total; "fname\0fvalue" -> a filter value */
} ms_metric_t;

typedef struct ms_project_s {
    const char *name;
    mm_map_t metrics;
} ms_project_t;

typedef struct ms_doc_s {
    size_t len;
    char data[];
} ms_doc_t;

/* A claimed nonce (nonces.c): key is project, NUL, nonce. */
typedef struct ms_nonce_s {
    struct ms_nonce_s *hnext; /* hash chain */
    struct ms_nonce_s *fnext; /* FIFO, oldest claim first */
    double expires_at;        /* epoch seconds */
    uint64_t hash;
    size_t keylen;
    char key[];
} ms_nonce_t;

/* Nonces remembered at most (about 100 bytes each); more are not claimed
 * (GW_AGAIN: each process's own cache still refuses its replays). */
#define MS_NONCES_MAX 2000000u
#define MS_NONCE_KEY_MAX 1024

typedef struct ms_nonces_s {
    ms_nonce_t **buckets;
    size_t nbuckets; /* a power of two, or 0 */
    size_t count;
    ms_nonce_t *head, *tail;
} ms_nonces_t;

/* Claims a nonce until expires_at: GW_OK (new), GW_ERR (claimed and not
 * expired: a replay) or GW_AGAIN (out of memory, or full). */
int ms_nonces_add(ms_nonces_t *n, const char *project, const char *nonce,
                  size_t len, double expires_at, double now);
/* Forgets the nonces expired at now; returns how many. */
size_t ms_nonces_purge(ms_nonces_t *n, double now);
void ms_nonces_free(ms_nonces_t *n);

/* A snapshot being written by its own thread (snapshot.c). */
typedef struct ms_snap_job_s ms_snap_job_t;

typedef struct ms_state_s {
    const gw_ctx_t *ctx;
    /* config */
    const char *path; /* "" or NULL: no snapshot */
    int64_t snapshot_interval;
    /* data */
    mm_map_t projects;
    mm_map_t docs; /* "ns\0id" -> ms_doc_t */
    char *batch_ids[MS_BATCH_IDS]; /* ring; oldest at batch_next */
    size_t batch_next;
    ms_nonces_t nonces; /* the shared replay cache's share */
    /* expiry (expire): where a pass paused, as map entry indices */
    int exp_period;
    int64_t exp_before;
    size_t exp_proj, exp_metric, exp_series;
    /* store(): its per-delta scratch, kept from batch to batch (a fresh
     * one of a large batch costs its page faults every flush) */
    void *prep;
    size_t prep_cap;
    /* snapshots */
    int dirty;
    double last_snapshot;  /* monotonic seconds: when the last one began */
    ms_snap_job_t *writing; /* the one being written, or NULL */
} ms_state_t;

/* The series, created (with its project and metric) when create is set.
 * NULL if missing, or out of memory when creating. */
ms_series_t *ms_series_get(ms_state_t *s, const char *project,
                           const char *metric, gw_kind_t kind,
                           const char *fname, const char *fvalue, int create);

/* The cell of bucket, inserted in order when create is set (zeroed, with
 * ts -inf; a caller of a sketch kind sets u to NULL). */
ms_cell_t *ms_cell_get(ms_cells_t *c, int64_t bucket, int create);

/* Removes the cell of bucket (its sketch must be freed already). */
void ms_cell_remove(ms_cells_t *c, int64_t bucket);

/* Stores a copy of a document. GW_OK or GW_ERR (out of memory). */
int ms_doc_set(ms_state_t *s, const char *ns, size_t nslen, const char *id,
               size_t idlen, const char *data, size_t len);

/* Remembers a batch id (the oldest is forgotten). GW_OK or GW_ERR. */
int ms_batch_remember(ms_state_t *s, const char *id, size_t len);

/* The same with a malloc'ed copy the ring takes over (cannot fail). */
void ms_batch_keep(ms_state_t *s, char *copy);

/* Writes the snapshot to s->path atomically, on the calling thread (at
 * stop). No write may be in flight (ms_snapshot_finish). GW_OK or GW_ERR. */
int ms_snapshot_save(ms_state_t *s, gw_error_t *err);

/* Copies the store as it is now into an image of the snapshot file and
 * starts a thread that writes it to s->path atomically (s->writing set).
 * GW_ERR when out of memory for the copy (nothing started). No write may be
 * in flight. */
int ms_snapshot_start(ms_state_t *s, gw_error_t *err);

/* The write in flight: 0 while it runs when wait is 0; else (joined, or
 * none) 1, with *ok 0 only when it failed (it logged why). */
int ms_snapshot_finish(ms_state_t *s, int wait, int *ok);

/* Loads s->path into the (empty) store: GW_OK (a missing file is logged and
 * is fine) or GW_ERR naming the file, the byte offset and what to do. */
int ms_snapshot_load(ms_state_t *s, gw_error_t *err);

#endif /* GW_MEMORY_H */
