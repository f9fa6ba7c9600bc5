/*
 * base/metrics.c: the daemon's own counters, keyed by (instance, counter,
 * reason), rendered in the Prometheus text format for GET {PREFIX}/metrics.
 * One mutex guards the table's shape (adding and resetting rows); a value
 * is added atomically. Each thread keeps a few rows it counted into lately,
 * so the common call (a transport counting every event or datagram) takes
 * no lock: it checks its cache and adds. Rows are never freed while the
 * process runs (a reset retires them), so a cached row stays valid memory;
 * a reset bumps a generation that makes every cache miss. The table is
 * small (a few dozen rows), so a linear search under the lock is enough.
 * A row's value is kept in MT_SHARDS slots, each on a cache line of its
 * own, and each thread adds to its own slot: with several ingest loops
 * counting the same transport's events, no cache line moves between cores
 * per event. A read sums the slots.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

#define MT_SHARDS 8
#define MT_LINE 64

typedef struct mt_shard_s {
    uint64_t value; /* atomic */
    char pad[MT_LINE - sizeof(uint64_t)];
} mt_shard_t;

typedef struct mt_row_s {
    mt_shard_t shard[MT_SHARDS]; /* first: the row is MT_LINE-aligned */
    char *instance;
    gw_counter_t counter;
    char *reason; /* NULL when the counter has none */
    struct mt_row_s *retired; /* the next retired row, after a reset */
} mt_row_t;

static pthread_mutex_t mt_lock = PTHREAD_MUTEX_INITIALIZER;
static mt_row_t **mt_rows;
static size_t mt_nrows;
static mt_row_t *mt_retired;
static unsigned mt_gen = 1; /* atomic; bumped by each reset */

#define MT_CACHE 8

/* This thread's recent rows; valid while gen == mt_gen. */
static __thread struct {
    unsigned gen;
    mt_row_t *row;
} mt_cache[MT_CACHE];
static __thread unsigned mt_cache_next;
/* This thread's slot in every row: 0 until it first counts. */
static __thread unsigned mt_shard_id;
static unsigned mt_shards_given; /* atomic */

static inline void
mt_add(mt_row_t *row, uint64_t n)
{
    if (mt_shard_id == 0)
        mt_shard_id = __atomic_add_fetch(&mt_shards_given, 1,
                                         __ATOMIC_RELAXED);
    __atomic_fetch_add(&row->shard[mt_shard_id % MT_SHARDS].value, n,
                       __ATOMIC_RELAXED);
}

static uint64_t
mt_value(const mt_row_t *row)
{
    uint64_t sum = 0;
    int i;

    for (i = 0; i < MT_SHARDS; i++)
        sum += __atomic_load_n(&row->shard[i].value, __ATOMIC_RELAXED);
    return sum;
}

/* label: what the instance is called in the line, {label="instance"}. */
static const struct {
    gw_counter_t counter;
    const char *name;
    const char *label;
    const char *help;
} mt_names[] = {
    {GW_COUNTER_RECEIVED, "gottwall_events_received_total", "transport",
     "Events received by a transport, valid or not."},
    {GW_COUNTER_ACCEPTED, "gottwall_events_accepted_total", "transport",
     "Events validated, authenticated and aggregated."},
    {GW_COUNTER_DROPPED, "gottwall_events_dropped_total", "transport",
     "Events or messages dropped, by reason."},
    {GW_COUNTER_AUTH_FAILED, "gottwall_auth_failures_total", "transport",
     "Failed authentications, by reason."},
    {GW_COUNTER_SATURATED, "gottwall_values_saturated_total", "where",
     "Sums kept at +-DBL_MAX because they would have overflowed, by where "
     "they were summed (aggregator or storage)."},
    {GW_COUNTER_IGNORED, "gottwall_events_ignored_total", "transport",
     "Messages that are not events, left alone on purpose, by reason."},
};

#define MT_NNAMES (sizeof(mt_names) / sizeof(mt_names[0]))

static int
mt_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* strcmp(a, b) == 0 without the call, for short instance names. */
static inline int
mt_streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int
mt_match(const mt_row_t *r, const char *instance, gw_counter_t counter,
         const char *reason)
{
    return r->counter == counter && mt_same(r->reason, reason) &&
           mt_streq(r->instance, instance);
}

void
gw__metrics_count(const char *instance, gw_counter_t counter,
                  const char *reason, uint64_t n)
{
    unsigned gen = __atomic_load_n(&mt_gen, __ATOMIC_ACQUIRE), k;
    mt_row_t *row = NULL;
    size_t i;

    if (instance == NULL)
        instance = "";
    /* The row's own entry first (one per counter without a reason), then
     * the others. */
    k = ((unsigned) counter + (reason != NULL ? 4 : 0)) % MT_CACHE;
    if (mt_cache[k].gen == gen &&
        mt_match(mt_cache[k].row, instance, counter, reason)) {
        mt_add(mt_cache[k].row, n);
        return;
    }
    for (k = 0; k < MT_CACHE; k++) {
        if (mt_cache[k].gen == gen &&
            mt_match(mt_cache[k].row, instance, counter, reason)) {
            mt_add(mt_cache[k].row, n);
            return;
        }
    }
    pthread_mutex_lock(&mt_lock);
    for (i = 0; i < mt_nrows && row == NULL; i++)
        if (mt_match(mt_rows[i], instance, counter, reason))
            row = mt_rows[i];
    if (row == NULL) {
        mt_row_t **rows = realloc(mt_rows, (mt_nrows + 1) * sizeof(*mt_rows));

        if (rows != NULL)
            mt_rows = rows;
        if (rows == NULL ||
            posix_memalign((void **) &row, MT_LINE, sizeof(*row)) != 0) {
            /* Out of memory: this count is lost, nothing else. */
            pthread_mutex_unlock(&mt_lock);
            return;
        }
        memset(row, 0, sizeof(*row));
        row->instance = strdup(instance);
        row->counter = counter;
        row->reason = reason != NULL ? strdup(reason) : NULL;
        mt_rows[mt_nrows++] = row;
    }
    mt_add(row, n);
    k = ((unsigned) counter + (reason != NULL ? 4 : 0)) % MT_CACHE;
    if (mt_cache[k].gen == mt_gen)
        k = mt_cache_next++ % MT_CACHE; /* taken: any entry */
    mt_cache[k].gen = mt_gen;
    mt_cache[k].row = row;
    pthread_mutex_unlock(&mt_lock);
}

uint64_t
gw__metrics_get(const char *instance, gw_counter_t counter,
                const char *reason)
{
    uint64_t sum = 0;
    size_t i;

    if (instance == NULL)
        instance = "";
    pthread_mutex_lock(&mt_lock);
    for (i = 0; i < mt_nrows; i++) {
        if (mt_rows[i]->counter == counter &&
            strcmp(mt_rows[i]->instance, instance) == 0 &&
            (reason == NULL || mt_same(mt_rows[i]->reason, reason)))
            sum += mt_value(mt_rows[i]);
    }
    pthread_mutex_unlock(&mt_lock);
    return sum;
}

void
gw__metrics_reset(void)
{
    size_t i;

    /* Rows are retired, not freed: another thread's cache may still point
     * at one (its count is then lost, which only tests' resets allow). */
    pthread_mutex_lock(&mt_lock);
    for (i = 0; i < mt_nrows; i++) {
        mt_rows[i]->retired = mt_retired;
        mt_retired = mt_rows[i];
    }
    free(mt_rows);
    mt_rows = NULL;
    mt_nrows = 0;
    __atomic_add_fetch(&mt_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mt_lock);
}

/* ---- Rendering ---- */

/* A label value with \, " and newline escaped. */
static void
mt_put_label(gw__buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            gw__buf_puts(b, "\\\\");
        else if (*s == '"')
            gw__buf_puts(b, "\\\"");
        else if (*s == '\n')
            gw__buf_puts(b, "\\n");
        else
            gw__buf_add(b, s, 1);
    }
}

/* A row as read for rendering. */
typedef struct mt_snap_s {
    char *instance;
    gw_counter_t counter;
    char *reason;
    uint64_t value;
} mt_snap_t;

static int
mt_cmp(const void *pa, const void *pb)
{
    const mt_snap_t *a = pa, *b = pb;
    int c = strcmp(a->instance, b->instance);

    if (c != 0)
        return c;
    if (a->reason == NULL || b->reason == NULL)
        return (a->reason != NULL) - (b->reason != NULL);
    return strcmp(a->reason, b->reason);
}

/* Writes the sorted rows and extra into b. */
static void
mt_render_rows(gw__buf_t *b, mt_snap_t *rows, size_t n, const char *extra)
{
    size_t i, k;
    char num[32];

    qsort(rows, n, sizeof(*rows), mt_cmp);

    gw__buf_puts(b, "");
    for (k = 0; k < MT_NNAMES; k++) {
        gw__buf_puts(b, "# HELP ");
        gw__buf_puts(b, mt_names[k].name);
        gw__buf_puts(b, " ");
        gw__buf_puts(b, mt_names[k].help);
        gw__buf_puts(b, "\n# TYPE ");
        gw__buf_puts(b, mt_names[k].name);
        gw__buf_puts(b, " counter\n");
        for (i = 0; i < n; i++) {
            if (rows[i].counter != mt_names[k].counter)
                continue;
            gw__buf_puts(b, mt_names[k].name);
            gw__buf_puts(b, "{");
            gw__buf_puts(b, mt_names[k].label);
            gw__buf_puts(b, "=\"");
            mt_put_label(b, rows[i].instance);
            gw__buf_puts(b, "\"");
            if (rows[i].reason != NULL) {
                gw__buf_puts(b, ",reason=\"");
                mt_put_label(b, rows[i].reason);
                gw__buf_puts(b, "\"");
            }
            snprintf(num, sizeof(num), "} %llu\n",
                     (unsigned long long) rows[i].value);
            gw__buf_puts(b, num);
        }
    }
    if (extra != NULL)
        gw__buf_puts(b, extra);
}

char *
gw__metrics_render(const char *extra)
{
    gw__buf_t b = {0};
    mt_snap_t *rows;
    size_t n, i;

    pthread_mutex_lock(&mt_lock);
    n = mt_nrows;
    rows = malloc((n + 1) * sizeof(*rows));
    if (rows == NULL) {
        pthread_mutex_unlock(&mt_lock);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        rows[i].counter = mt_rows[i]->counter;
        rows[i].value = mt_value(mt_rows[i]);
        rows[i].instance = strdup(mt_rows[i]->instance);
        rows[i].reason =
            mt_rows[i]->reason ? strdup(mt_rows[i]->reason) : NULL;
        if (rows[i].instance == NULL ||
            (mt_rows[i]->reason != NULL && rows[i].reason == NULL))
            b.oom = 1;
    }
    pthread_mutex_unlock(&mt_lock);
    if (!b.oom) /* every row was copied: sort and render them */
        mt_render_rows(&b, rows, n, extra);
    for (i = 0; i < n; i++) {
        free(rows[i].instance);
        free(rows[i].reason);
    }
    free(rows);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
