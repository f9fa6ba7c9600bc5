/*
 * gottwall/event.h: the data model every plugin sees.
 *
 * An event (gw_event_t) is what a transport hands the core: one "order paid"
 * or "request took 35 ms". The core validates it and aggregates it into
 * series; at each flush it hands a storage a batch of deltas (gw_delta_t),
 * one per (project, metric, series, period, bucket). A storage answers
 * queries with points (gw_point_t), the stored cell of one bucket.
 */
#ifndef GOTTWALL_EVENT_H
#define GOTTWALL_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/sketch.h>

/*
 * The largest |v| an event may carry (issue 16): the core refuses a value
 * that is not finite or beyond it (reason "value_out_of_range"), so a sum
 * of up to 10^8 such values stays far below DBL_MAX (1.8e308).
 */
#define GW_VALUE_MAX 1e300

/* DBL_MAX, the largest finite double, where stored sums saturate (spelled
 * out: the SDK headers include no <float.h>). */
#define GW_SUM_MAX 1.7976931348623157e308

/* What an event does to its buckets. 0 means "not given": the default. */
typedef enum gw_action_e {
    GW_ACTION_DEFAULT = 0,
    GW_ACTION_INCR = 1,  /* value += v */
    GW_ACTION_DECR = 2,  /* value -= |v| */
    GW_ACTION_AVG = 3,   /* keeps sum and count; value = sum / count */
    GW_ACTION_GAUGE = 4, /* value = v of the latest event by ts */
    /* ABI 1.5 */
    GW_ACTION_TIMING = 5, /* count, sum, min, max and a sketch of v */
    GW_ACTION_SET = 6     /* v (a string) is a member; value = distinct */
} gw_action_t;

/* What a metric is, fixed by its first event. */
typedef enum gw_kind_e {
    GW_KIND_COUNTER = 1, /* incr and decr */
    GW_KIND_AVG = 2,
    GW_KIND_GAUGE = 3,
    /* ABI 1.5: kept only by a storage whose ops->kinds has their bit
     * (GW_KIND_BIT); a plugin built before knows neither. */
    GW_KIND_TIMING = 4,
    GW_KIND_SET = 5
} gw_kind_t;

/* The bit of kind k in gw_storage_ops_t.kinds. */
#define GW_KIND_BIT(k) (1u << (unsigned) (k))

/* Calendar periods, all in UTC. A bucket's id is the epoch second of its
 * start; GW_PERIOD_ALL has the single bucket 0. */
typedef enum gw_period_e {
    GW_PERIOD_MINUTE = 0,
    GW_PERIOD_HOUR = 1,
    GW_PERIOD_DAY = 2,
    GW_PERIOD_WEEK = 3, /* ISO: starts Monday 00:00 */
    GW_PERIOD_MONTH = 4,
    GW_PERIOD_YEAR = 5,
    GW_PERIOD_ALL = 6
} gw_period_t;

#define GW_PERIOD_COUNT 7

/* The period's name as used in config, the API and the Redis layout:
 * "minute", "hour", "day", "week", "month", "year", "all"; NULL if p is out
 * of range. The string is static. */
static inline const char *
gw_period_name(gw_period_t p)
{
    static const char *const names[GW_PERIOD_COUNT] = {
        "minute", "hour", "day", "week", "month", "year", "all"};

    return ((unsigned) p < GW_PERIOD_COUNT) ? names[p] : NULL;
}

/* The kind's name: "counter", "avg", "gauge", "timing", "set"; NULL if
 * out of range. */
static inline const char *
gw_kind_name(gw_kind_t k)
{
    switch (k) {
    case GW_KIND_COUNTER:
        return "counter";
    case GW_KIND_AVG:
        return "avg";
    case GW_KIND_GAUGE:
        return "gauge";
    case GW_KIND_TIMING:
        return "timing";
    case GW_KIND_SET:
        return "set";
    }
    return NULL;
}

/*
 * One filter value of an event. A filter with a list of values is given as
 * several gw_filter_t with the same name. Both strings are borrowed.
 */
typedef struct gw_filter_s {
    const char *name;
    const char *value;
} gw_filter_t;

/*
 * One event as a transport submits it (host->submit). Everything is
 * borrowed for the duration of the call; the core copies what it keeps.
 */
typedef struct gw_event_s {
    const char *project;        /* NULL: the authenticated project */
    const char *name;           /* metric name, 1..255 bytes of UTF-8 */
    gw_action_t action;         /* GW_ACTION_DEFAULT: incr */
    int has_ts;                 /* 0: the server's clock at receipt */
    double ts;                  /* epoch seconds, UTC */
    double value;               /* finite, |value| <= GW_VALUE_MAX */
    const gw_filter_t *filters; /* nfilters pairs, may be NULL if 0 */
    size_t nfilters;
} gw_event_t;

/*
 * One aggregated change to one stored cell, as a storage receives it.
 * A storage applies it as:
 *   counter: sum += d.sum
 *   avg:     sum += d.sum; count += d.count
 *   gauge:   if d.ts >= stored ts: value = d.sum, ts = d.ts
 *   timing:  as avg, and the stored sketch (min, max, bins) merged with
 *            the batch's data[i].timing (gw_timing_merge)
 *   set:     count += d.count (events), and the stored members merged with
 *            data[i].set (gw_set_merge); sum is unused (0)
 * All strings are borrowed for the duration of store().
 */
typedef struct gw_delta_s {
    const char *project;
    const char *metric;
    const char *filter_name;  /* NULL for the total series */
    const char *filter_value; /* NULL for the total series */
    gw_kind_t kind;
    gw_period_t period;
    int64_t bucket; /* epoch second of the bucket's start; 0 for all */
    double sum;     /* counter: the change; avg: sum of values; gauge: value */
    int64_t count;  /* events merged into this delta */
    double ts;      /* gauge: time of the newest event merged; else 0 */
} gw_delta_t;

/*
 * A batch of deltas for one store() call. id is unique per batch and stays
 * the same when the core retries the batch, so a storage that records it in
 * the same transaction as the deltas applies each batch exactly once.
 * Everything is borrowed for the duration of the call.
 */
typedef struct gw_batch_s {
    const char *id;
    const gw_delta_t *deltas;
    size_t ndeltas;
    /* ---- ABI 1.5 ----
     * data[i] belongs to deltas[i] and is read only when deltas[i].kind
     * is GW_KIND_TIMING or GW_KIND_SET; NULL when the batch has neither.
     * A parallel array rather than members of gw_delta_t, whose size old
     * plugins compiled in. Only a storage that declared the kinds (ops->
     * kinds) is handed such deltas, and it reads data only then. */
    const struct gw_delta_data_s *data;
} gw_batch_t;

/* What a timing or set delta carries beyond gw_delta_t (borrowed views:
 * see gottwall/sketch.h). */
typedef struct gw_delta_data_s {
    const gw_timing_t *timing; /* kind timing: total == the delta's count */
    const gw_set_t *set;       /* kind set */
} gw_delta_data_t;

/*
 * Checks the fields of deltas[i] that every storage relies on: project and
 * metric are set, filter name and value are both set or both NULL, period
 * and kind are in range. Returns GW_OK, or GW_ERR with a message naming
 * the delta ("delta 3 has an unknown period 9"). The core only hands out
 * deltas that pass; a storage calls this from store() to refuse a broken
 * batch with a clear message rather than index a table out of range.
 * Values (sum, ts) are not checked: a storage that cannot keep a non-finite
 * number checks isfinite() itself. The core hands out finite sums only
 * (each within +-DBL_MAX).
 */
static inline int
gw_delta_check(const gw_delta_t *d, size_t i, gw_error_t *err)
{
    if (d->project == NULL || d->metric == NULL)
        return gw_error_set(err, "delta %zu has no project or metric", i);
    if ((d->filter_name == NULL) != (d->filter_value == NULL))
        return gw_error_set(err, "delta %zu has a filter name without a "
                                 "value (or the reverse)",
                            i);
    if ((unsigned) d->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "delta %zu has an unknown period %d", i,
                            (int) d->period);
    if (gw_kind_name(d->kind) == NULL)
        return gw_error_set(err, "delta %zu has an unknown kind %d", i,
                            (int) d->kind);
    return GW_OK;
}

/*
 * a + b for a stored sum (counter and avg cells), saturating: when the sum
 * would overflow to +-inf it is +-GW_SUM_MAX (DBL_MAX) instead and
 * *saturated (may be NULL) is incremented. b is finite (what the core
 * hands out is); with a finite a, so is the result (a stored inf from
 * before values were bounded becomes +-GW_SUM_MAX). A storage counts its saturations with
 * host->count(ctx, GW_COUNTER_SATURATED, NULL, n) (gottwall/host.h), shown
 * in /metrics as gottwall_values_saturated_total{where="storage"}.
 */
static inline double
gw_sum_add(double a, double b, uint64_t *saturated)
{
    double s = a + b;

    /* Finite; or NaN, which only a stored NaN (an older GottWall's
     * inf - inf) gives: kept, so the read API shows it as null. */
    if ((s <= GW_SUM_MAX && s >= -GW_SUM_MAX) || s != s)
        return s;
    if (saturated != NULL)
        (*saturated)++;
    return s > 0 ? GW_SUM_MAX : -GW_SUM_MAX;
}

/*
 * One stored bucket, as a storage returns it from query(): the cell's raw
 * state. The core turns it into a value by kind (sum; sum / count; the
 * gauge's value in sum; timing: sum / count; set: the distinct members,
 * which a storage puts in sum, gw_set_count of its cell).
 */
typedef struct gw_point_s {
    int64_t bucket;
    double sum;
    int64_t count;
    double ts;
} gw_point_t;

/* What a query asks for: one series of one metric over buckets
 * from..to inclusive (both already aligned to the period). */
typedef struct gw_query_s {
    const char *project;
    const char *metric;
    const char *filter_name;  /* NULL for the total series */
    const char *filter_value; /* NULL for the total series */
    gw_kind_t kind;
    gw_period_t period;
    int64_t from;
    int64_t to;
} gw_query_t;

/* One metadata entry: a metric (filter_name NULL), or one value of one of
 * its filters. Strings are borrowed for the call of the callback. */
typedef struct gw_meta_s {
    const char *metric;
    gw_kind_t kind;
    const char *filter_name;
    const char *filter_value;
} gw_meta_t;

#endif /* GOTTWALL_EVENT_H */
