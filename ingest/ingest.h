/*
 * ingest/ingest.h: from submitted events to batches of deltas.
 *
 * The loop thread owns a gw__ingest_t. Transports submit JSON or structured
 * events; ingest parses and validates them (SPEC §2), enforces the kind rule
 * and the limits, and adds each to the current aggregation table at the
 * minute bucket: one update for the total series and one per filter value.
 *
 * At each flush the loop swaps the table out (gw__ingest_swap, O(1)) and
 * hands it to the storage thread, which expands it into every configured
 * period and merges it into a batch (gw__batch_add_table). A table and a
 * batch own all their strings, so they can cross threads.
 *
 * Out of memory: only gw__ingest_new (start-up) stops the process with a
 * message. A request that runs out is refused whole (GW__REJECT_NOMEM:
 * send it again later), the table as it was; see gw__batch_add_table for
 * the storage thread.
 */
#ifndef GW_INGEST_INGEST_H
#define GW_INGEST_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/event.h>

#include "base/conf.h"

typedef struct gw__ingest_s gw__ingest_t;
typedef struct gw__table_s gw__table_t;
typedef struct gw__batch_s gw__batch_t;

/* Why an event was refused, for the dropped counter's reason label. */
typedef enum gw__reject_e {
    GW__REJECT_NONE = 0,
    GW__REJECT_JSON,        /* "bad_json": not JSON, or nesting too deep */
    GW__REJECT_INVALID,     /* "invalid_event": a field is wrong */
    GW__REJECT_PROJECT,     /* "wrong_project": p is not the authenticated project */
    GW__REJECT_KIND,        /* "kind_conflict": action does not fit the metric's kind */
    GW__REJECT_LIMIT,       /* "limit": too many filters, values, bytes */
    GW__REJECT_MAX_SERIES,  /* "max_series": the project has MAX_SERIES series */
    GW__REJECT_SERIES_PER_METRIC,  /* "max_series_per_metric" */
    GW__REJECT_VALUES_PER_FILTER,  /* "max_values_per_filter" */
    GW__REJECT_FILTERS_PER_METRIC, /* "max_filters_per_metric" */
    GW__REJECT_PENDING,     /* "max_pending_series": the storage is behind
                             * by MAX_PENDING_SERIES; send it again later */
    GW__REJECT_NOMEM,       /* "out_of_memory": not now, send it again later */
    GW__REJECT_RANGE,       /* "value_out_of_range": v not finite or
                             * |v| > GW_VALUE_MAX */
    GW__REJECT_UNKEPT       /* "unsupported_kind": a new timing or set
                             * metric, which the storage does not keep */
} gw__reject_t;

/* The instance name sums saturated by the aggregator (its tables and
 * batches) are counted under, GW_COUNTER_SATURATED: shown as
 * gottwall_values_saturated_total{where="aggregator"}; a storage's are
 * counted under GW__SATURATED_STORAGE (core/host.c). */
#define GW__SATURATED_AGGREGATOR "aggregator"
#define GW__SATURATED_STORAGE "storage"

/* The reason's label: "bad_json", "invalid_event", ... */
const char *gw__reject_name(gw__reject_t r);

/* Creates the loop's ingest state (at start-up: stops the process with a
 * message if memory runs out). limits are copied. now_fn returns the
 * current time in epoch seconds (NULL: the real clock); tests pass a fake.
 * It also makes jansson allocate through ingest (json_set_alloc_funcs, for
 * the process), so that JSON it cannot parse for lack of memory is refused
 * as out of memory rather than as bad JSON. */
gw__ingest_t *gw__ingest_new(const gw__limits_t *limits,
                             double (*now_fn)(void));
void gw__ingest_free(gw__ingest_t *ing);

/*
 * Parses and aggregates one JSON event object, or with allow_batch a JSON
 * array of them (all or nothing). project: the authenticated project (every
 * event's "p", if given, must equal it). default_action: for events without
 * "a" (GW_ACTION_DEFAULT: incr). On GW_ERR nothing was aggregated, err says
 * what to fix ("event 3: \"v\" must be a finite number") and *reject (may
 * be NULL) says why. *nevents (may be NULL) gets the number of events the
 * request held (1 when it could not be parsed); on GW_OK all were
 * aggregated, on GW_ERR none. When memory runs out: GW_ERR with
 * GW__REJECT_NOMEM and err "out of memory: event refused, send it again
 * later", nothing of the request aggregated.
 */
int gw__ingest_json(gw__ingest_t *ing, const char *project,
                    gw_action_t default_action, const char *json, size_t len,
                    int allow_batch, size_t *nevents, gw__reject_t *reject,
                    gw_error_t *err);

/* The same for one structured event. */
int gw__ingest_event(gw__ingest_t *ing, const char *project,
                     const gw_event_t *ev, gw__reject_t *reject,
                     gw_error_t *err);

/* The same two with the time events without "ts" are bucketed at given
 * (epoch seconds) instead of read from the clock; 0 reads the clock, as
 * the two above do. The journal records the receipt time of what it keeps
 * and replays it at that time. */
int gw__ingest_json_at(gw__ingest_t *ing, double now, const char *project,
                       gw_action_t default_action, const char *json,
                       size_t len, int allow_batch, size_t *nevents,
                       gw__reject_t *reject, gw_error_t *err);
int gw__ingest_event_at(gw__ingest_t *ing, double now, const char *project,
                        const gw_event_t *ev, gw__reject_t *reject,
                        gw_error_t *err);

/* The real clock (CLOCK_REALTIME) in epoch seconds: what an ingest state
 * made with now_fn NULL reads. */
double gw__ingest_now(void);

/* Tells ingest a metric's kind (from the storage's metadata at start), so
 * the kind rule holds across restarts. GW_ERR: memory ran out, and the
 * kind is learnt from the metric's next event instead. */
int gw__ingest_set_kind(gw__ingest_t *ing, const char *project,
                        const char *metric, gw_kind_t kind);

/*
 * With several ingest loops, each has its own gw__ingest_t (and table) and
 * all of them share one registry: a gw__ingest_t that aggregates nothing
 * and holds the kinds of all metrics and the live series (the limits of
 * ingest/series.h), under a lock. ing then keeps a cache of the metrics'
 * kinds it has seen and takes the registry's lock only for metrics it has
 * not and for keys new in its table, so the kind rule and the series
 * limits hold across loops exactly as with one. gw__ingest_set_kind on
 * a sharer (or the registry) sets the kind in the registry and makes every
 * cache start again. Call before ing takes any event.
 */
void gw__ingest_share(gw__ingest_t *ing, gw__ingest_t *registry);

/*
 * MAX_PENDING_SERIES at admission (SPEC §6): what waits for the storage,
 * in deltas, shared by every loop and the storage thread. A request whose
 * new table keys could make the deltas waiting pass max once merged (one
 * per period kept per key) is refused (GW__REJECT_PENDING), so that a
 * bound never drops an event that was accepted. Set before any event.
 */
typedef struct gw__pending_s {
    size_t max;         /* MAX_PENDING_SERIES x nper; 0: no bound */
    unsigned nper;      /* periods kept */
    size_t stored;      /* atomic: deltas in the storage thread's batches */
    size_t reserved;    /* atomic: what tables not merged yet may add */
    uint64_t refusals;  /* atomic: requests refused so far */
    int down;           /* atomic: the storage is unreachable, so the loops
                         * keep aggregating into their tables rather than
                         * hand them over at each flush: a key already in
                         * a table then needs no room (core/daemon.c) */
} gw__pending_t;

void gw__ingest_set_pending(gw__ingest_t *ing, gw__pending_t *p);
gw__pending_t *gw__ingest_get_pending(const gw__ingest_t *ing);

/* The kinds the storage keeps beyond counter, avg and gauge
 * (gw_storage_ops_t.kinds) and its name: a new metric of another kind is
 * refused (GW__REJECT_UNKEPT). Until called, every kind is kept. Set it
 * on loop 0's ingest before gw__ingest_share, which hands it to the
 * registry, before any event. */
void gw__ingest_set_storage_kinds(gw__ingest_t *ing, uint32_t kinds,
                                  const char *storage);

/* Replaying the journal: events accepted before are not refused by the
 * series limits nor by MAX_PENDING_SERIES (their series still count). */
void gw__ingest_set_replaying(gw__ingest_t *ing, int on);

/* Records a series read from the storage's metadata (filter NULL: the
 * total series of metric), over the limits if need be, so that they count
 * from the start. GW_ERR: out of memory. Any thread (under the registry's
 * lock). */
int gw__ingest_seed_series(gw__ingest_t *ing, const char *project,
                           const char *metric, const char *filter,
                           const char *value);

/* The live series of project that the registry knows. Any thread. */
size_t gw__ingest_series(gw__ingest_t *ing, const char *project);

/* Number of series (keys) in the current table. */
size_t gw__ingest_pending(const gw__ingest_t *ing);

/* Takes the current table (NULL if it is empty) and starts an empty one.
 * The caller owns the result. Loop thread. */
gw__table_t *gw__ingest_swap(gw__ingest_t *ing);

/* Gives back a table gw__ingest_swap just took (nothing was aggregated
 * in between) when it could not be handed over (out of memory): it becomes
 * the current table again, so its events go out with the next swap.
 * Loop thread. */
void gw__ingest_unswap(gw__ingest_t *ing, gw__table_t *t);

/* Number of events aggregated into a table. */
uint64_t gw__table_events(const gw__table_t *t);
void gw__table_free(gw__table_t *t);

/* A batch of deltas with its id (copied); NULL if memory ran out. The
 * calls below (but gw__batch_view) take NULL as a batch that stays empty:
 * gw__batch_add_table counts all of the table's events as dropped. */
gw__batch_t *gw__batch_new(const char *id);
void gw__batch_free(gw__batch_t *b);

/*
 * Expands t into every period in the bit set periods (1u << gw_period_t)
 * and merges it into b: deltas with the same (project, metric, filter,
 * value, period, bucket) combine by kind. (MAX_PENDING_SERIES is held at
 * admission: see gw__pending_t.) When memory runs out, the groups
 * (project, metric, minute with their filter series) it cannot make room
 * for are dropped whole, counted in *dropped_events (may be NULL), and
 * logged; b never holds part of a group. Any thread that owns both.
 */
void gw__batch_add_table(gw__batch_t *b, const gw__table_t *t,
                         unsigned periods, uint64_t *dropped_events);

/* The table's share of gw__pending_t reserved: it holds deltas of p's
 * reserved, which gw__table_free gives back. Loop thread (ingest). */
void gw__table_reserved(gw__table_t *t, gw__pending_t *p, size_t deltas);

/* Retention: from now on, gw__batch_add_table leaves out the deltas of
 * period p whose bucket starts before cuts[p] (INT64_MIN: none; see
 * gw__retention_cuts) and counts them per period (gw__batch_skipped).
 * cuts NULL: none. */
void gw__batch_set_cuts(gw__batch_t *b, const int64_t *cuts);
/* Deltas of period p left out so far (their series' cells, not events). */
uint64_t gw__batch_skipped(const gw__batch_t *b, gw_period_t p);

/* Number of distinct deltas in b. */
size_t gw__batch_size(const gw__batch_t *b);
/* Number of events merged into b. */
uint64_t gw__batch_events(const gw__batch_t *b);
/* The batch as a storage sees it; valid until b changes or is freed. */
const gw_batch_t *gw__batch_view(gw__batch_t *b);

#endif /* GW_INGEST_INGEST_H */
