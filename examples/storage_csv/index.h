/*
 * examples/storage_csv/index.h: the csv storage's in-memory index.
 *
 * The CSV file is the truth; this index is what answers queries without
 * reading the file again. It is rebuilt from the file at create and kept up
 * to date by every store() and doc_put(). Nothing here knows about files or
 * the CSV format; csv.c does that.
 *
 * Not thread-safe, and it need not be: the core never calls one storage
 * instance from two threads at once.
 */
#ifndef CSV_INDEX_H
#define CSV_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/plugin.h>

/* A string-keyed hash table (open addressing). Keys are byte strings with
 * a length and may hold NULs; the table owns copies of them. */
typedef struct ix_slot_s {
    char *key;
    size_t len;
    uint64_t hash;
    void *val;
} ix_slot_t;

typedef struct ix_map_s {
    ix_slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} ix_map_t;

typedef struct ix_index_s {
    ix_map_t series;   /* series key -> ix_series_t */
    ix_map_t meta;     /* meta key -> ix_meta_t (for de-duplication) */
    ix_map_t projects; /* project -> ix_project_t (metadata in order) */
    ix_map_t docs;     /* ns \0 id -> ix_doc_t */
    ix_map_t ids[2];   /* batch ids: the current and the previous 1024 */
    uint64_t saturated; /* sums ix_apply kept at +-DBL_MAX (gw_sum_add) */
} ix_index_t;

void ix_init(ix_index_t *ix);
void ix_free(ix_index_t *ix);

/* Applies one delta (see gw_delta_t): a sum that would overflow stays at
 * +-DBL_MAX and is counted in ix->saturated. Returns GW_OK, or GW_ERR when
 * out of memory. */
int ix_apply(ix_index_t *ix, const gw_delta_t *d);

/* Calls emit for each stored bucket of q's series in q->from..q->to. */
void ix_query(ix_index_t *ix, const gw_query_t *q, gw_point_fn emit,
              void *arg);

/* Calls emit for each metric and (metric, filter, value) of project. */
void ix_metadata(ix_index_t *ix, const char *project, gw_meta_fn emit,
                 void *arg);

/* Stores a copy of a document (replacing one with the same ns and id). */
int ix_doc_put(ix_index_t *ix, const char *ns, const char *id,
               const char *data, size_t len);

/* Calls emit with the document, if there is one. */
void ix_doc_get(ix_index_t *ix, const char *ns, const char *id,
                gw_doc_fn emit, void *arg);

/* 1 if batch id was applied (among the last 1024 to 2048 batches). */
int ix_seen(ix_index_t *ix, const char *id);

/* Remembers batch id as applied. GW_OK or GW_ERR (out of memory). */
int ix_remember(ix_index_t *ix, const char *id);

#endif /* CSV_INDEX_H */
