/*
 * ingest/series.c: the registry of live series (ingest/series.h).
 *
 * One array of entries on four levels: a project, a metric (parent: its
 * project), a filter name (parent: its metric) and a value (parent: its
 * filter name), found through one open-addressing table keyed by (parent,
 * name) (ingest/slots.h). Entries never move, so a parent is an index; the
 * newest are last, so undo pops them. Counts live in the parents: a
 * project's series, a metric's series and filter names, a filter's values.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "slots.h"

#define NONE UINT32_MAX

enum { LV_PROJECT, LV_METRIC, LV_FILTER, LV_VALUE };

typedef struct sr_entry_s {
    uint64_t hash;     /* of (parent, name) */
    char *name;
    uint32_t len;
    uint32_t parent;   /* NONE for a project */
    uint32_t n;        /* project, metric: series; filter: values */
    uint32_t nfilters; /* metric: filter names */
    int level;
} sr_entry_t;

struct gw__series_s {
    sr_entry_t *e;
    size_t n, cap;
    uint64_t *slots;
    size_t mask;
};

#define SR_STRIDE sizeof(sr_entry_t)
#define SR_HASH offsetof(sr_entry_t, hash)

gw__series_t *
gw__series_new(void)
{
    gw__series_t *r = gw__xcalloc(1, sizeof(*r));

    r->mask = 63;
    r->slots = gw__xcalloc(r->mask + 1, sizeof(*r->slots));
    return r;
}

void
gw__series_free(gw__series_t *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        free(r->e[i].name);
    free(r->e);
    free(r->slots);
    free(r);
}

size_t
gw__series_mark(const gw__series_t *r)
{
    return r->n;
}

static uint64_t
sr_hash(uint32_t parent, const char *name, size_t len)
{
    gw_hash_t h;

    gw_hash_begin(&h, &gw__hash_key);
    gw_hash_add(&h, &parent, sizeof(parent));
    gw_hash_add(&h, name, len);
    return gw_hash_end(&h);
}

/* The entry (parent, name) of hash h, or NONE with *j its free slot. */
static uint32_t
sr_find(const gw__series_t *r, uint32_t parent, const char *name, size_t len,
        uint64_t h, size_t *j)
{
    const sr_entry_t *e;
    uint64_t s;
    size_t k;

    for (k = (size_t) h & r->mask; (s = r->slots[k]) != 0;
         k = (k + 1) & r->mask) {
        if (!SLOT_HASH_MATCH(s, h))
            continue;
        e = &r->e[SLOT_INDEX(s)];
        if (e->parent == parent && e->len == len &&
            gw__mem_eq(e->name, name, len))
            return SLOT_INDEX(s);
    }
    *j = k;
    return NONE;
}

/* Adds (parent, name) at free slot j; NONE if memory ran out. */
static uint32_t
sr_add(gw__series_t *r, uint32_t parent, const char *name, size_t len,
       uint64_t h, size_t j, int level)
{
    sr_entry_t *e;
    char *copy;

    if (r->n >= NONE - 1)
        return NONE;
    e = sl_entry_room(r->e, r->n, &r->cap, SR_STRIDE, SR_HASH, &r->slots,
                      &r->mask, h, &j);
    if (e == NULL)
        return NONE;
    r->e = e;
    copy = gw__malloc(len + 1);
    if (copy == NULL)
        return NONE;
    memcpy(copy, name, len);
    copy[len] = '\0';
    e = &r->e[r->n];
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->name = copy;
    e->len = (uint32_t) len;
    e->parent = parent;
    e->level = level;
    r->slots[j] = SLOT(h, r->n);
    /* Count it in its parents. */
    switch (level) {
    case LV_VALUE:
        r->e[parent].n++;                                 /* filter */
        r->e[r->e[parent].parent].n++;                    /* metric */
        r->e[r->e[r->e[parent].parent].parent].n++;       /* project */
        break;
    case LV_FILTER:
        r->e[parent].nfilters++;
        break;
    case LV_METRIC:
        e->n = 1; /* its total series */
        r->e[parent].n++;
        break;
    }
    return (uint32_t) r->n++;
}

void
gw__series_undo(gw__series_t *r, size_t mark)
{
    sr_entry_t *e;
    uint32_t p;

    while (r->n > mark) {
        e = &r->e[r->n - 1];
        p = e->parent;
        switch (e->level) {
        case LV_VALUE:
            r->e[p].n--;
            r->e[r->e[p].parent].n--;
            r->e[r->e[r->e[p].parent].parent].n--;
            break;
        case LV_FILTER:
            r->e[p].nfilters--;
            break;
        case LV_METRIC:
            r->e[p].n--;
            break;
        }
        sl_slots_remove(r->slots, r->mask, r->e, SR_STRIDE, SR_HASH, e->hash,
                        r->n - 1);
        free(e->name);
        r->n--;
    }
}

/* The quoted, cut name of entry i for messages. */
#define SR_NAME(r, i) (int) ((r)->e[i].len < 48 ? (r)->e[i].len : 48), \
                      (r)->e[i].name
#define SR_STR(x) (int) ((x).n < 48 ? (x).n : 48), (x).s

static int
sr_refuse(gw__reject_t *reject, gw__reject_t why)
{
    if (reject != NULL)
        *reject = why;
    return GW_ERR;
}

static int
sr_nomem(gw__reject_t *reject, gw_error_t *err)
{
    gw_error_set(err, "out of memory: event refused, send it again later");
    return sr_refuse(reject, GW__REJECT_NOMEM);
}

/* The entry (parent, s) at level, added if new; NONE if memory ran out. */
static uint32_t
sr_get(gw__series_t *r, uint32_t parent, gw__str_t s, int level, int *isnew)
{
    uint64_t h = sr_hash(parent, s.s, s.n);
    size_t j;
    uint32_t i = sr_find(r, parent, s.s, s.n, h, &j);

    *isnew = i == NONE;
    return i != NONE ? i : sr_add(r, parent, s.s, s.n, h, j, level);
}

int
gw__series_admit(gw__series_t *r, const gw__limits_t *lim,
                 gw__str_t project, gw__str_t metric,
                 const gw__str_t *filter, const gw__str_t *value,
                 gw__reject_t *reject, gw_error_t *err)
{
    uint32_t p, m, f, v;
    uint64_t h;
    size_t j;
    int isnew;

    if ((p = sr_get(r, NONE, project, LV_PROJECT, &isnew)) == NONE)
        return sr_nomem(reject, err);
    h = sr_hash(p, metric.s, metric.n);
    if ((m = sr_find(r, p, metric.s, metric.n, h, &j)) == NONE) {
        if (lim != NULL && lim->max_series != 0 &&
            r->e[p].n >= lim->max_series) {
            gw_error_set(err, "project \"%.*s\" already has %u series, the "
                         "most MAX_SERIES allows; metric \"%.*s\" is new "
                         "(raise MAX_SERIES to accept more)",
                         SR_NAME(r, p), r->e[p].n, SR_STR(metric));
            return sr_refuse(reject, GW__REJECT_MAX_SERIES);
        }
        if ((m = sr_add(r, p, metric.s, metric.n, h, j, LV_METRIC)) == NONE)
            return sr_nomem(reject, err);
    }
    if (filter == NULL)
        return GW_OK;
    h = sr_hash(m, filter->s, filter->n);
    if ((f = sr_find(r, m, filter->s, filter->n, h, &j)) == NONE) {
        if (lim != NULL && lim->max_filters_per_metric != 0 &&
            r->e[m].nfilters >= lim->max_filters_per_metric) {
            gw_error_set(err, "metric \"%.*s\" already has %u filters, the "
                         "most MAX_FILTERS_PER_METRIC allows; filter \"%.*s\" "
                         "is new (raise MAX_FILTERS_PER_METRIC to accept "
                         "more)", SR_STR(metric), r->e[m].nfilters,
                         SR_STR(*filter));
            return sr_refuse(reject, GW__REJECT_FILTERS_PER_METRIC);
        }
        if ((f = sr_add(r, m, filter->s, filter->n, h, j, LV_FILTER)) == NONE)
            return sr_nomem(reject, err);
    }
    h = sr_hash(f, value->s, value->n);
    if ((v = sr_find(r, f, value->s, value->n, h, &j)) != NONE)
        return GW_OK;
    if (lim != NULL && lim->max_values_per_filter != 0 &&
        r->e[f].n >= lim->max_values_per_filter) {
        gw_error_set(err, "filter \"%.*s\" of metric \"%.*s\" already has %u "
                     "values, the most MAX_VALUES_PER_FILTER allows; value "
                     "\"%.*s\" is new (raise MAX_VALUES_PER_FILTER to accept "
                     "more)", SR_STR(*filter), SR_STR(metric), r->e[f].n,
                     SR_STR(*value));
        return sr_refuse(reject, GW__REJECT_VALUES_PER_FILTER);
    }
    if (lim != NULL && lim->max_series_per_metric != 0 &&
        r->e[m].n >= lim->max_series_per_metric) {
        gw_error_set(err, "metric \"%.*s\" already has %u series, the most "
                     "MAX_SERIES_PER_METRIC allows; %.*s=\"%.*s\" is new "
                     "(raise MAX_SERIES_PER_METRIC to accept more)",
                     SR_STR(metric), r->e[m].n, SR_STR(*filter),
                     SR_STR(*value));
        return sr_refuse(reject, GW__REJECT_SERIES_PER_METRIC);
    }
    if (lim != NULL && lim->max_series != 0 && r->e[p].n >= lim->max_series) {
        gw_error_set(err, "project \"%.*s\" already has %u series, the most "
                     "MAX_SERIES allows; %.*s=\"%.*s\" of metric \"%.*s\" is "
                     "new (raise MAX_SERIES to accept more)", SR_NAME(r, p),
                     r->e[p].n, SR_STR(*filter), SR_STR(*value),
                     SR_STR(metric));
        return sr_refuse(reject, GW__REJECT_MAX_SERIES);
    }
    if (sr_add(r, f, value->s, value->n, h, j, LV_VALUE) == NONE)
        return sr_nomem(reject, err);
    return GW_OK;
}

size_t
gw__series_count(const gw__series_t *r, const char *project)
{
    size_t len = strlen(project), j;
    uint32_t p = sr_find(r, NONE, project, len, sr_hash(NONE, project, len),
                         &j);

    return p != NONE ? r->e[p].n : 0;
}
