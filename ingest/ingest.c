/*
 * ingest/ingest.c: the loop thread's ingest state (ingest/ingest.h).
 *
 * A request (one JSON object, a JSON array of them, or one gw_event_t)
 * goes through three steps, so that it is aggregated all or nothing:
 *   1. parse and validate every event (ingest/event*.c);
 *   2. make each event's keys in the current table (ingest/table.c), then
 *      admit the events against the metrics known so far: the kind rule
 *      and MAX_SERIES, recording the kinds of new metrics (undone, and the
 *      keys removed, if a later event of the request is refused);
 *   3. add each to its keys, which allocates nothing and cannot fail.
 *
 * Out of memory: any allocation that fails refuses the request with
 * GW__REJECT_NOMEM and leaves nothing of it behind (steps 1 and 2 undo
 * what they did); the client may send it again later. The keys are made
 * before the metrics are recorded so that a failure never has to take back
 * a kind that the registry of other loops may have shown them already.
 * Only gw__ingest_new, at start-up, stops the process instead.
 *
 * Known metrics live in one open-addressing map keyed by (project, metric)
 * with backward-shift deletion (needed to undo step 2); projects are a
 * short array, as there are few and the last one used is checked first.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest_int.h"
#include "event.h"
#include "series.h"

typedef struct gw__proj_s {
    char *name;
    size_t len;
} gw__proj_t;

/* One slot of the known-metrics map; metric NULL: empty. */
typedef struct gw__kslot_s {
    uint64_t hash;
    char *metric;
    size_t mlen;
    size_t proj;
    gw_kind_t kind;
} gw__kslot_t;

struct gw__ingest_s {
    gw__limits_t limits;
    gw__table_t *table; /* NULL until the first event after a swap */
    size_t hint_groups, hint_filters;

    gw__proj_t *projs;
    size_t nprojs, capprojs, last_proj;
    gw__kslot_t *kinds;
    size_t kmask, nkinds;
    gw__series_t *series; /* the live series (the registry's is used) */
    gw__pending_t *pending; /* MAX_PENDING_SERIES at admission, or NULL */
    int replaying;          /* no limits: events accepted before */
    uint32_t kinds_kept;    /* GW_KIND_BIT of the kinds the storage keeps */
    char storage[64];       /* its name, for the refusal */

    /* Per request, reused. */
    gw__parse_t parse;
    gw__pevent_t *pev;
    size_t cappev;
    size_t *added; /* events whose metric step 2 recorded */
    size_t *rest;  /* events step 2 could not settle from the table */
    size_t capadded; /* of both */
    size_t *sizes; /* bytes of each batch element, when needed */
    size_t capsizes;
    int fast;      /* try gw__event_parse_fast first */

    /* With several ingest loops (gw__ingest_share): the registry every
     * loop asks about metrics its own map (then a cache) does not hold. */
    gw__ingest_t *shared;
    unsigned seen_gen;   /* the registry's gen when the cache was last right */
    unsigned table_gen;  /* the registry's (or own) gen when table began */
    /* As a registry: mu guards kinds and projs; gen counts set_kind calls
     * that may have changed a kind a cache holds. */
    pthread_mutex_t mu;
    unsigned gen;
};

static const char nomem_msg[] =
    "out of memory: event refused, send it again later";

/* Refuses a request because memory ran out; returns GW_ERR. */
static int
refuse_nomem(gw__reject_t *reject, gw_error_t *err)
{
    if (reject != NULL)
        *reject = GW__REJECT_NOMEM;
    return gw_error_set(err, "%s", nomem_msg);
}

/* jansson allocates through gw__malloc too (gw__ingest_new sets it for
 * the process; frees stay free). A json_loadb that fails with this set on
 * its thread ran out of memory: jansson then often reports a syntax error
 * that is not there. */
static __thread int json_nomem;

static void *
jansson_alloc(size_t n)
{
    void *p = gw__malloc(n);

    if (p == NULL)
        json_nomem = 1;
    return p;
}

double
gw__ingest_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

gw__ingest_t *
gw__ingest_new(const gw__limits_t *limits, double (*now_fn)(void))
{
    gw__ingest_t *ing = gw__xcalloc(1, sizeof(*ing));

    json_set_alloc_funcs(jansson_alloc, free);
    ing->limits = *limits;
    ing->kmask = 255;
    ing->kinds = gw__xcalloc(ing->kmask + 1, sizeof(*ing->kinds));
    ing->series = gw__series_new();
    ing->parse.limits = &ing->limits;
    ing->parse.now_fn = now_fn ? now_fn : gw__ingest_now;
    gw__arena_init(&ing->parse.scratch);
    ing->hint_groups = 64;
    ing->hint_filters = 64;
    ing->fast = 1;
    ing->kinds_kept = UINT32_MAX;
    pthread_mutex_init(&ing->mu, NULL);
    return ing;
}

void
gw__ingest_set_storage_kinds(gw__ingest_t *ing, uint32_t kinds,
                             const char *storage)
{
    ing->kinds_kept = kinds | GW_KIND_BIT(GW_KIND_COUNTER) |
                      GW_KIND_BIT(GW_KIND_AVG) | GW_KIND_BIT(GW_KIND_GAUGE);
    snprintf(ing->storage, sizeof(ing->storage), "%s",
             storage != NULL ? storage : "");
}

void
gw__ingest_free(gw__ingest_t *ing)
{
    size_t i;

    if (ing == NULL)
        return;
    gw__table_free(ing->table);
    for (i = 0; i < ing->nprojs; i++)
        free(ing->projs[i].name);
    free(ing->projs);
    for (i = 0; i <= ing->kmask; i++)
        free(ing->kinds[i].metric);
    free(ing->kinds);
    gw__series_free(ing->series);
    free(ing->parse.pf);
    gw__arena_free(&ing->parse.scratch);
    free(ing->pev);
    free(ing->added);
    free(ing->rest);
    free(ing->sizes);
    pthread_mutex_destroy(&ing->mu);
    free(ing);
}

size_t
gw__ingest_pending(const gw__ingest_t *ing)
{
    return gw__table_keys(ing->table);
}

gw__table_t *
gw__ingest_swap(gw__ingest_t *ing)
{
    gw__table_t *t = ing->table;

    if (t == NULL || gw__table_events(t) == 0)
        return NULL;
    /* The next table starts about as big as this one ended. */
    ing->hint_groups = gw__table_groups(t);
    ing->hint_filters = gw__table_keys(t) - ing->hint_groups;
    ing->table = NULL;
    return t;
}

void
gw__ingest_unswap(gw__ingest_t *ing, gw__table_t *t)
{
    /* Right after the swap nothing made a new table yet. */
    if (ing->table == NULL)
        ing->table = t;
    else
        abort(); /* a caller broke the contract: never lose events quietly */
}

/* ---- projects and known metrics ---------------------------------------- */

/* proj_get and kinds_find when memory ran out. */
#define NO_PROJ ((size_t) -1)

/* The index of project name in ing->projs (added if new), or NO_PROJ. */
static size_t
proj_get(gw__ingest_t *ing, const char *name, size_t len)
{
    gw__proj_t *p;
    size_t i, cap;

    p = ing->nprojs ? &ing->projs[ing->last_proj] : NULL;
    if (p != NULL && p->len == len && gw__mem_eq(p->name, name, len))
        return ing->last_proj;
    for (i = 0; i < ing->nprojs; i++) {
        p = &ing->projs[i];
        if (p->len == len && memcmp(p->name, name, len) == 0)
            return ing->last_proj = i;
    }
    if (ing->nprojs == ing->capprojs) {
        cap = ing->capprojs ? ing->capprojs * 2 : 8;
        p = gw__realloc(ing->projs, cap * sizeof(*ing->projs));
        if (p == NULL)
            return NO_PROJ;
        ing->projs = p;
        ing->capprojs = cap;
    }
    p = &ing->projs[ing->nprojs];
    p->name = gw__malloc(len + 1);
    if (p->name == NULL)
        return NO_PROJ;
    memcpy(p->name, name, len);
    p->name[len] = '\0';
    p->len = len;
    return ing->last_proj = ing->nprojs++;
}

/* The slot of (proj, metric): the one holding it, or the empty one where
 * it would go. h is gw__hash_mix of its pm_hash. */
static size_t
kinds_slot(const gw__ingest_t *ing, size_t proj, const char *metric,
           size_t mlen, uint64_t h)
{
    size_t j;
    const gw__kslot_t *k;

    for (j = (size_t) h & ing->kmask;; j = (j + 1) & ing->kmask) {
        k = &ing->kinds[j];
        if (k->metric == NULL ||
            (k->hash == h && k->proj == proj && k->mlen == mlen &&
             gw__mem_eq(k->metric, metric, mlen)))
            return j;
    }
}

/* GW_ERR: out of memory, and the map stays as it was. */
static int
kinds_grow(gw__ingest_t *ing)
{
    gw__kslot_t *old = ing->kinds, *kinds;
    size_t oldcap = ing->kmask + 1, mask = oldcap * 2 - 1, i, j;

    kinds = gw__calloc(oldcap * 2, sizeof(*kinds));
    if (kinds == NULL)
        return GW_ERR;
    for (i = 0; i < oldcap; i++) {
        if (old[i].metric == NULL)
            continue;
        for (j = (size_t) old[i].hash & mask; kinds[j].metric != NULL;
             j = (j + 1) & mask)
            ;
        kinds[j] = old[i];
    }
    ing->kinds = kinds;
    ing->kmask = mask;
    free(old);
    return GW_OK;
}

/* Records a metric not yet known (the caller checked). GW_ERR: out of
 * memory, nothing recorded. */
static int
kinds_insert(gw__ingest_t *ing, size_t proj, const char *metric, size_t mlen,
             uint64_t h, gw_kind_t kind)
{
    gw__kslot_t *k;
    char *copy;

    if ((ing->nkinds + 1) * 2 > ing->kmask + 1 && kinds_grow(ing) != GW_OK)
        return GW_ERR;
    copy = gw__malloc(mlen + 1);
    if (copy == NULL)
        return GW_ERR;
    memcpy(copy, metric, mlen);
    copy[mlen] = '\0';
    k = &ing->kinds[kinds_slot(ing, proj, metric, mlen, h)];
    k->hash = h;
    k->metric = copy;
    k->mlen = mlen;
    k->proj = proj;
    k->kind = kind;
    ing->nkinds++;
    return GW_OK;
}

/* Forgets a metric, shifting later entries of its run back. */
static void
kinds_delete(gw__ingest_t *ing, size_t proj, const char *metric, size_t mlen,
             uint64_t h)
{
    size_t j = kinds_slot(ing, proj, metric, mlen, h), k, ideal;

    if (ing->kinds[j].metric == NULL)
        return;
    free(ing->kinds[j].metric);
    ing->kinds[j].metric = NULL;
    ing->nkinds--;
    for (k = (j + 1) & ing->kmask; ing->kinds[k].metric != NULL;
         k = (k + 1) & ing->kmask) {
        ideal = (size_t) ing->kinds[k].hash & ing->kmask;
        /* Move k back to j if j lies on the way from its ideal slot. */
        if (((k - ideal) & ing->kmask) >= ((k - j) & ing->kmask)) {
            ing->kinds[j] = ing->kinds[k];
            ing->kinds[k].metric = NULL;
            j = k;
        }
    }
}

static int
set_kind(gw__ingest_t *ing, const char *project, const char *metric,
         gw_kind_t kind)
{
    size_t plen = strlen(project), mlen = strlen(metric);
    size_t proj = proj_get(ing, project, plen);
    uint64_t h = gw__hash_mix(gw__pm_hash(project, plen, metric, mlen));
    gw__kslot_t *k;

    if (proj == NO_PROJ)
        return GW_ERR;
    k = &ing->kinds[kinds_slot(ing, proj, metric, mlen, h)];
    if (k->metric == NULL)
        return kinds_insert(ing, proj, metric, mlen, h, kind);
    k->kind = kind;
    return GW_OK;
}

int
gw__ingest_set_kind(gw__ingest_t *ing, const char *project,
                    const char *metric, gw_kind_t kind)
{
    int rc;

    if (ing->shared != NULL)
        ing = ing->shared;
    pthread_mutex_lock(&ing->mu);
    rc = set_kind(ing, project, metric, kind);
    /* Caches may hold the old kind: they start again. */
    __atomic_add_fetch(&ing->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ing->mu);
    return rc;
}

void
gw__ingest_share(gw__ingest_t *ing, gw__ingest_t *registry)
{
    ing->shared = registry;
    ing->seen_gen = __atomic_load_n(&registry->gen, __ATOMIC_ACQUIRE);
    /* New metrics are recorded in the registry: it refuses the kinds the
     * storage does not keep, as set on ing. */
    if (ing->kinds_kept != UINT32_MAX) {
        registry->kinds_kept = ing->kinds_kept;
        memcpy(registry->storage, ing->storage, sizeof(ing->storage));
    }
}

void
gw__ingest_set_pending(gw__ingest_t *ing, gw__pending_t *p)
{
    ing->pending = p;
}

gw__pending_t *
gw__ingest_get_pending(const gw__ingest_t *ing)
{
    return ing->pending;
}

void
gw__ingest_set_replaying(gw__ingest_t *ing, int on)
{
    ing->replaying = on;
}

int
gw__ingest_seed_series(gw__ingest_t *ing, const char *project,
                       const char *metric, const char *filter,
                       const char *value)
{
    gw__ingest_t *reg = ing->shared != NULL ? ing->shared : ing;
    gw__str_t p = {project, strlen(project)}, m = {metric, strlen(metric)};
    gw__str_t f = {filter, filter ? strlen(filter) : 0};
    gw__str_t v = {value, value ? strlen(value) : 0};
    gw_error_t err;
    int rc;

    pthread_mutex_lock(&reg->mu);
    rc = gw__series_admit(reg->series, NULL, p, m, filter ? &f : NULL,
                          filter ? &v : NULL, NULL, &err);
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

size_t
gw__ingest_series(gw__ingest_t *ing, const char *project)
{
    gw__ingest_t *reg = ing->shared != NULL ? ing->shared : ing;
    size_t n;

    pthread_mutex_lock(&reg->mu);
    n = gw__series_count(reg->series, project);
    pthread_mutex_unlock(&reg->mu);
    return n;
}

/* Empties the cache of a sharer. */
static void
kinds_clear(gw__ingest_t *ing)
{
    size_t i;

    for (i = 0; i <= ing->kmask; i++) {
        free(ing->kinds[i].metric);
        ing->kinds[i].metric = NULL;
    }
    ing->nkinds = 0;
}

/* ---- the three steps ------------------------------------------------------ */

/* The slot of e's metric in ing's known-metrics map (see kinds_slot),
 * with its project's index and its mixed hash, which kinds_insert wants;
 * NO_PROJ if memory ran out for a new project. */
static size_t
kinds_find(gw__ingest_t *ing, const gw__pevent_t *e, size_t *proj,
           uint64_t *h)
{
    *proj = proj_get(ing, e->project.s, e->project.n);
    *h = gw__hash_mix(e->pm_hash);
    if (*proj == NO_PROJ)
        return NO_PROJ;
    return kinds_slot(ing, *proj, e->name.s, e->name.n, *h);
}

/* Whether e fits a metric of kind have (the kind rule). A timing event
 * for an avg metric fits, as avg: a statsd |ms metric that was an avg
 * before timings existed keeps its kind and its readers. */
static int
kind_fits(gw__pevent_t *e, gw_kind_t have)
{
    if (gw__action_kind(e->action) == have)
        return 1;
    if (have == GW_KIND_AVG && e->action == GW_ACTION_TIMING) {
        e->action = GW_ACTION_AVG;
        e->retimed = 1;
        return 1;
    }
    return 0;
}

/* Records pev[0..n)'s new metrics in ing (the kind rule), or none
 * of them. pm_hash is set. Returns GW_OK, or GW_ERR with *failed the event
 * refused (or GW__REJECT_NOMEM). The events to check are pev[idx[k]] for
 * k < nidx (idx NULL: all n). */
static int
record(gw__ingest_t *ing, const size_t *idx, size_t n, gw__reject_t *reject,
       gw_error_t *err, size_t *failed)
{
    size_t i, k, nadded = 0, proj, slot;
    gw__pevent_t *e;
    gw_kind_t kind;
    uint64_t h;

    for (k = 0; k < n; k++) {
        i = idx != NULL ? idx[k] : k;
        e = &ing->pev[i];
        kind = gw__action_kind(e->action);
        slot = kinds_find(ing, e, &proj, &h);
        if (slot == NO_PROJ)
            goto nomem;
        if (ing->kinds[slot].metric != NULL) {
            if (kind_fits(e, ing->kinds[slot].kind))
                continue;
            gw__event_kind_conflict(e, ing->kinds[slot].metric,
                                    ing->kinds[slot].kind, reject, err);
            goto undo;
        }
        if (!(ing->kinds_kept & GW_KIND_BIT(kind))) {
            gw__event_kind_unkept(ing->storage, e, kind, reject, err);
            goto undo;
        }
        if (kinds_insert(ing, proj, e->name.s, e->name.n, h, kind) != GW_OK)
            goto nomem;
        ing->added[nadded++] = i;
    }
    return GW_OK;

nomem:
    refuse_nomem(reject, err);
undo:
    *failed = i;
    while (nadded > 0) {
        e = &ing->pev[ing->added[--nadded]];
        kinds_delete(ing, proj_get(ing, e->project.s, e->project.n),
                     e->name.s, e->name.n, gw__hash_mix(e->pm_hash));
    }
    return GW_ERR;
}

/*
 * The live series step (ingest/series.h) for the keys of pev[0..n) that
 * the table made since mark: only those can be series the registry reg
 * has not seen (a key already in the table was admitted when it was
 * made). GW_OK, or GW_ERR with *failed the event refused.
 */
static int
admit_series(gw__ingest_t *ing, gw__ingest_t *reg, size_t n,
             const gw__table_mark_t *mark, gw__reject_t *reject,
             gw_error_t *err, size_t *failed)
{
    const gw__limits_t *lim = ing->replaying ? NULL : &ing->limits;
    const gw__pfilter_t *f;
    const gw__pevent_t *e;
    size_t i, k;

    for (i = 0; i < n; i++) {
        e = &ing->pev[i];
        *failed = i;
        if ((size_t) e->group >= mark->ngroups &&
            gw__series_admit(reg->series, lim, e->project, e->name, NULL,
                             NULL, reject, err) != GW_OK)
            return GW_ERR;
        for (k = 0; k < e->nf; k++) {
            f = &ing->parse.pf[e->f0 + k];
            if (f->cell >= mark->nfcells &&
                gw__series_admit(reg->series, lim, e->project, e->name,
                                 &f->name, &f->value, reject,
                                 err) != GW_OK)
                return GW_ERR;
        }
    }
    return GW_OK;
}

/* The series step (if the table made new keys) and the kinds of the
 * metrics in miss[0..nmiss) in reg, all or nothing. */
static int
admit_in(gw__ingest_t *ing, gw__ingest_t *reg, size_t n, const size_t *miss,
         size_t nmiss, const gw__table_mark_t *mark, int newkeys,
         gw__reject_t *reject, gw_error_t *err, size_t *failed)
{
    size_t smark = gw__series_mark(reg->series);
    int rc = GW_OK;

    if (newkeys)
        rc = admit_series(ing, reg, n, mark, reject, err, failed);
    if (rc == GW_OK && nmiss > 0)
        rc = record(reg, miss, nmiss, reject, err, failed);
    if (rc != GW_OK)
        gw__series_undo(reg->series, smark);
    return rc;
}

/* Step 2 with a registry for the events pev[idx[0..nidx)] not settled by
 * the table, of the n of the request: the cache answers for metrics it
 * holds; the others, and the series of new keys, are recorded in the
 * registry under its lock (all or none), then the metrics are cached with
 * the kind the registry agreed to. */
static int
admit_shared(gw__ingest_t *ing, size_t n, const size_t *idx, size_t nidx,
             const gw__table_mark_t *mark, int newkeys, gw__reject_t *reject,
             gw_error_t *err, size_t *failed)
{
    gw__ingest_t *reg = ing->shared;
    size_t i, k, nmiss = 0, proj, slot;
    gw__pevent_t *e;
    uint64_t h;
    int rc;

    for (k = 0; k < nidx; k++) {
        i = idx[k];
        e = &ing->pev[i];
        slot = kinds_find(ing, e, &proj, &h);
        if (slot == NO_PROJ || ing->kinds[slot].metric == NULL) {
            ing->added[nmiss++] = i; /* ask the registry */
            continue;
        }
        if (!kind_fits(e, ing->kinds[slot].kind)) {
            *failed = i;
            return gw__event_kind_conflict(e, ing->kinds[slot].metric,
                                           ing->kinds[slot].kind, reject,
                                           err);
        }
    }
    if (nmiss == 0 && !newkeys)
        return GW_OK;
    pthread_mutex_lock(&reg->mu);
    if (reg->capadded < ing->capadded) {
        size_t *added =
            gw__realloc(reg->added, ing->capadded * sizeof(*reg->added));

        if (added == NULL) {
            pthread_mutex_unlock(&reg->mu);
            *failed = 0;
            return refuse_nomem(reject, err);
        }
        reg->added = added;
        reg->capadded = ing->capadded;
    }
    /* The registry reads the events through its own pev: lend ours. */
    reg->pev = ing->pev;
    rc = admit_in(ing, reg, n, ing->added, nmiss, mark, newkeys, reject, err,
                  failed);
    reg->pev = NULL;
    pthread_mutex_unlock(&reg->mu);
    if (rc != GW_OK)
        return GW_ERR;
    /* A metric the cache has no memory for is asked for again next time:
     * the registry has it now, so that answers the same. */
    for (k = 0; k < nmiss; k++) {
        e = &ing->pev[ing->added[k]];
        slot = kinds_find(ing, e, &proj, &h);
        if (slot != NO_PROJ && ing->kinds[slot].metric == NULL)
            (void) kinds_insert(ing, proj, e->name.s, e->name.n, h,
                                gw__action_kind(e->action));
    }
    return GW_OK;
}

/* MAX_PENDING_SERIES: room for the deltas that nkeys new keys can make
 * once merged (one per period kept), taken from what waits for the
 * storage, or GW_ERR (the storage is behind: send it again later). */
static int
pending_take(gw__ingest_t *ing, size_t nkeys, gw__reject_t *reject,
             gw_error_t *err)
{
    gw__pending_t *p = ing->pending;
    size_t want = nkeys * p->nper, used;

    used = __atomic_add_fetch(&p->reserved, want, __ATOMIC_SEQ_CST) +
           __atomic_load_n(&p->stored, __ATOMIC_SEQ_CST);
    if (used <= p->max)
        return GW_OK;
    __atomic_sub_fetch(&p->reserved, want, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&p->refusals, 1, __ATOMIC_RELAXED);
    if (reject != NULL)
        *reject = GW__REJECT_PENDING;
    return gw_error_set(err,
                        "the storage is behind: %zu series wait to be "
                        "stored, the most MAX_PENDING_SERIES (%zu) allows; "
                        "send it again later",
                        (used - want + p->nper - 1) / p->nper,
                        p->max / p->nper);
}

/* Room for n events in added and rest. */
static int
admit_reserve(gw__ingest_t *ing, size_t n)
{
    size_t *a;

    if (ing->capadded >= n)
        return GW_OK;
    a = gw__realloc(ing->added, n * sizeof(*a));
    if (a == NULL)
        return GW_ERR;
    ing->added = a;
    a = gw__realloc(ing->rest, n * sizeof(*a));
    if (a == NULL)
        return GW_ERR;
    ing->rest = a;
    ing->capadded = n;
    return GW_OK;
}

/*
 * Step 2 for pev[0..n): GW_OK, or GW_ERR with nothing recorded and no key
 * made. An event whose group (project, metric, minute) is in the current
 * table already has its metric's kind there: if it fits, neither the
 * known-metrics map nor the registry is asked, and step 3 adds to that
 * group directly. That holds while no gw__ingest_set_kind came after the
 * table was started (table_gen).
 */
static int
admit(gw__ingest_t *ing, size_t n, gw__reject_t *reject, gw_error_t *err,
      size_t *failed)
{
    gw__ingest_t *reg = ing->shared != NULL ? ing->shared : ing;
    unsigned gen = __atomic_load_n(&reg->gen, __ATOMIC_ACQUIRE);
    int lookup = ing->table != NULL && ing->table_gen == gen, rc, take;
    size_t i, nrest = 0, nkeys, nmake = 0;
    gw__table_mark_t mark;
    gw__pevent_t *e;
    gw_kind_t kind;
    long gi;

    *failed = 0;
    if (admit_reserve(ing, n) != GW_OK)
        return refuse_nomem(reject, err);
    if (ing->shared != NULL && gen != ing->seen_gen) {
        kinds_clear(ing);
        ing->seen_gen = gen;
    }
    for (i = 0; i < n; i++) {
        e = &ing->pev[i];
        e->pm_hash = gw__pm_hash(e->project.s, e->project.n, e->name.s,
                             e->name.n);
        e->group = -1;
        e->retimed = 0;
        if (lookup) {
            gi = gw__table_find(ing->table, e->pm_hash, e->project, e->name,
                                gw__event_minute(e), &kind);
            if (gi >= 0 && kind_fits(e, kind)) {
                e->group = gi;
                /* Filter series to find, or room to make for a sketch. */
                nmake += e->nf != 0 || e->action == GW_ACTION_TIMING ||
                         e->action == GW_ACTION_SET;
                continue;
            }
        }
        ing->rest[nrest++] = i;
    }
    /* Every group found, and nothing else to make (as statsd's counters
     * and gauges after their first line): the table is ready for step 3. */
    if (nrest == 0 && nmake == 0 && n > 0)
        return GW_OK;
    if (ing->table == NULL) {
        ing->table = gw__table_new(ing->hint_groups, ing->hint_filters);
        if (ing->table == NULL)
            return refuse_nomem(reject, err);
        ing->table_gen = gen;
    }
    if (gw__table_make(ing->table, ing->pev, n, ing->parse.pf, &mark) !=
        GW_OK) {
        gw__table_undo(ing->table, &mark);
        return refuse_nomem(reject, err);
    }
    nkeys = gw__table_keys(ing->table) - (mark.ngroups + mark.nfcells);
    if (nrest == 0 && nkeys == 0)
        return GW_OK;
    /* Room first: a refusal after the kinds are recorded would have to
     * take back what other loops may have seen already. */
    take = nkeys > 0 && ing->pending != NULL && ing->pending->max != 0 &&
           !ing->replaying;
    if (take && pending_take(ing, nkeys, reject, err) != GW_OK) {
        gw__table_undo(ing->table, &mark);
        return GW_ERR;
    }
    if (ing->shared != NULL)
        rc = admit_shared(ing, n, ing->rest, nrest, &mark, nkeys > 0, reject,
                          err, failed);
    else
        rc = admit_in(ing, ing, n, ing->rest, nrest, &mark, nkeys > 0,
                      reject, err, failed);
    if (rc != GW_OK) {
        if (take)
            __atomic_sub_fetch(&ing->pending->reserved,
                               nkeys * ing->pending->nper, __ATOMIC_SEQ_CST);
        gw__table_undo(ing->table, &mark);
        return rc;
    }
    if (take)
        gw__table_reserved(ing->table, ing->pending,
                           nkeys * ing->pending->nper);
    for (i = 0; i < n; i++)
        if (ing->pev[i].retimed)
            gw__table_retype(ing->table, &ing->pev[i], ing->parse.pf);
    return GW_OK;
}

/* Step 3 for pev[0..n), into the keys step 2 made. */
static void
apply(gw__ingest_t *ing, size_t n)
{
    gw__table_apply(ing->table, ing->pev, n, ing->parse.pf);
}

/* Room for n parsed events (growing by doubling, as the fast path asks
 * for one more at a time); GW_ERR (and parse.nomem) if memory ran out. */
static int
pev_reserve(gw__ingest_t *ing, size_t n)
{
    gw__pevent_t *pev;
    size_t cap = ing->cappev * 2 > n ? ing->cappev * 2 : n;

    if (ing->cappev >= n)
        return GW_OK;
    if (cap < 16)
        cap = 16;
    pev = gw__realloc(ing->pev, cap * sizeof(*ing->pev));
    if (pev == NULL) {
        ing->parse.nomem = 1;
        return GW_ERR;
    }
    ing->pev = pev;
    ing->cappev = cap;
    return GW_OK;
}

static inline int
request_start(gw__ingest_t *ing, const char *project,
              gw_action_t default_action, size_t n)
{
    ing->parse.project = project;
    ing->parse.project_len = project != NULL ? strlen(project) : 0;
    ing->parse.default_action = default_action;
    ing->parse.npf = 0;
    ing->parse.nomem = 0;
    gw__arena_reset(&ing->parse.scratch);
    return pev_reserve(ing, n);
}

void
gw__ingest_set_fast(gw__ingest_t *ing, int on)
{
    ing->fast = on;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')


/*
 * Step 1 without jansson, for requests of plain events only (see
 * gw__event_parse_fast): GW_OK with *n events parsed, or GW_AGAIN when
 * the jansson path must decide. p: the first byte that is not space.
 */
static int
parse_fast(gw__ingest_t *ing, const char *json, size_t len, size_t p,
           int batch, size_t *n)
{
    const gw__limits_t *lim = &ing->limits;
    size_t count = 0, start;

    if (!batch) {
        if (gw__event_parse_fast(&ing->parse, json, len, &p, &ing->pev[0]) !=
            GW_OK)
            return GW_AGAIN;
        count = 1;
    } else {
        for (p++; p < len && IS_WS(json[p]); p++)
            ;
        if (p < len && json[p] == ']') {
            p++;
        } else {
            for (;;) {
                if (count == lim->max_batch_events ||
                    pev_reserve(ing, count + 1) != GW_OK)
                    return GW_AGAIN;
                start = p;
                if (gw__event_parse_fast(&ing->parse, json, len, &p,
                                         &ing->pev[count]) != GW_OK ||
                    p - start > lim->max_event_bytes)
                    return GW_AGAIN;
                count++;
                while (p < len && IS_WS(json[p]))
                    p++;
                if (p < len && json[p] == ',') {
                    for (p++; p < len && IS_WS(json[p]); p++)
                        ;
                    continue;
                }
                if (p < len && json[p] == ']') {
                    p++;
                    break;
                }
                return GW_AGAIN;
            }
        }
    }
    while (p < len && IS_WS(json[p]))
        p++;
    if (p != len)
        return GW_AGAIN;
    *n = count;
    return GW_OK;
}

/* err = "event N: " + msg for batches, msg otherwise. */
static int
fail_event(gw_error_t *err, int batch, size_t i, const gw_error_t *msg)
{
    if (batch)
        return gw_error_set(err, "event %zu: %s", i + 1, msg->msg);
    return gw_error_set(err, "%s", msg->msg);
}

/*
 * Refuses a text jansson could not parse. A number too large for a double
 * (1e400: jansson says "real number overflow near '1e400'") is well-formed
 * JSON that would be inf: refused as out of range, like |v| > 1e300, with
 * where it is (which event of a batch is not known at this point).
 */
static int
refuse_json(const json_error_t *jerr, gw__reject_t *reject, gw_error_t *err)
{
    static const char ovf[] = "real number overflow near '";
    const char *num, *end;

    if (strncmp(jerr->text, ovf, sizeof(ovf) - 1) == 0) {
        num = jerr->text + sizeof(ovf) - 1;
        end = strchr(num, '\'');
        if (end != NULL) {
            if (reject != NULL)
                *reject = GW__REJECT_RANGE;
            return gw_error_set(err,
                                "number %.*s is out of range: |v| must be at "
                                "most 1e300 (line %d column %d)",
                                (int) (end - num), num, jerr->line,
                                jerr->column);
        }
    }
    if (reject != NULL)
        *reject = GW__REJECT_JSON;
    return gw_error_set(err, "invalid JSON at line %d column %d: %s",
                        jerr->line, jerr->column, jerr->text);
}

/* The fast path of gw__ingest_json, p its first byte that is not space:
 * GW_OK (aggregated), GW_ERR (out of memory) or GW_AGAIN: anything
 * unusual, or a refusal, which the jansson path decides and explains
 * exactly as if there were no fast path. */
static int
ingest_fast(gw__ingest_t *ing, const char *project, gw_action_t default_action,
            const char *json, size_t len, size_t p, int batch, size_t *nevents,
            gw__reject_t *why, gw_error_t *err)
{
    size_t n = 1, failed;
    int parsed;

    parsed = request_start(ing, project, default_action, 1) == GW_OK &&
             parse_fast(ing, json, len, p, batch, &n) == GW_OK &&
             !ing->parse.nomem;
    if (parsed && admit(ing, n, why, err, &failed) == GW_OK) {
        if (nevents != NULL)
            *nevents = n;
        apply(ing, n);
        return GW_OK;
    }
    if (ing->parse.nomem || *why == GW__REJECT_NOMEM) {
        if (nevents != NULL && parsed)
            *nevents = n;
        return refuse_nomem(why, err);
    }
    if (*why == GW__REJECT_PENDING) {
        /* The request's, not one event's: the same on any path. */
        if (nevents != NULL)
            *nevents = n;
        return GW_ERR;
    }
    *why = GW__REJECT_NONE;
    return GW_AGAIN;
}

/* Step 1 for the n events of the JSON array root (the text json[0..len)):
 * GW_OK, or GW_ERR with *why and err. */
static int
parse_array(gw__ingest_t *ing, json_t *root, size_t n, const char *json,
            size_t len, gw__reject_t *why, gw_error_t *err)
{
    const gw__limits_t *lim = &ing->limits;
    size_t i, *sizes;
    gw_error_t msg;
    json_t *e;

    if (len > lim->max_event_bytes) {
        if (ing->capsizes < n) {
            sizes = gw__realloc(ing->sizes, n * sizeof(*ing->sizes));
            if (sizes == NULL)
                return refuse_nomem(why, err);
            ing->sizes = sizes;
            ing->capsizes = n;
        }
        gw__json_element_sizes(json, len, ing->sizes, n);
    }
    for (i = 0; i < n; i++) {
        e = json_array_get(root, i);
        if (!json_is_object(e)) {
            *why = GW__REJECT_INVALID;
            return gw_error_set(err, "event %zu: must be a JSON object", i + 1);
        }
        if (len > lim->max_event_bytes &&
            ing->sizes[i] > lim->max_event_bytes) {
            *why = GW__REJECT_LIMIT;
            return gw_error_set(err,
                                "event %zu: the event is %zu bytes; at most "
                                "%zu are allowed",
                                i + 1, ing->sizes[i], lim->max_event_bytes);
        }
        if (gw__event_parse_json(&ing->parse, e, &ing->pev[i], why, &msg) !=
                GW_OK ||
            ing->parse.nomem) {
            if (ing->parse.nomem)
                return refuse_nomem(why, err);
            return fail_event(err, 1, i, &msg);
        }
    }
    return GW_OK;
}

int
gw__ingest_json(gw__ingest_t *ing, const char *project,
                gw_action_t default_action, const char *json, size_t len,
                int allow_batch, size_t *nevents, gw__reject_t *reject,
                gw_error_t *err)
{
    const gw__limits_t *lim = &ing->limits;
    gw__reject_t why = GW__REJECT_NONE;
    json_error_t jerr;
    gw_error_t msg;
    json_t *root;
    size_t n = 1, p = 0, failed;
    int batch = 0, rc = GW_ERR;

    if (nevents != NULL)
        *nevents = 1;
    if (reject != NULL)
        *reject = GW__REJECT_NONE;

    while (p < len && IS_WS(json[p]))
        p++;
    batch = allow_batch && p < len && json[p] == '[';
    if (!batch && len > lim->max_event_bytes) {
        if (reject != NULL)
            *reject = GW__REJECT_LIMIT;
        return gw_error_set(err,
                            "the event is %zu bytes; at most %zu are allowed",
                            len, lim->max_event_bytes);
    }

    if (ing->fast) {
        rc = ingest_fast(ing, project, default_action, json, len, p, batch,
                         nevents, &why, err);
        if (rc != GW_AGAIN) {
            if (rc != GW_OK && reject != NULL)
                *reject = why;
            return rc;
        }
        rc = GW_ERR;
    }

    json_nomem = 0;
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        if (json_nomem)
            return refuse_nomem(reject, err);
        return refuse_json(&jerr, reject, err);
    }

    if (json_is_array(root)) {
        if (!batch) {
            why = GW__REJECT_INVALID;
            gw_error_set(err, "a JSON array (a batch of events) is not "
                              "accepted here; send one event object");
            goto out;
        }
        n = json_array_size(root);
        if (nevents != NULL)
            *nevents = n;
        if (n > lim->max_batch_events) {
            why = GW__REJECT_LIMIT;
            gw_error_set(err,
                         "the batch has %zu events; at most %zu are allowed",
                         n, lim->max_batch_events);
            goto out;
        }
        if (request_start(ing, project, default_action, n) != GW_OK) {
            refuse_nomem(&why, err);
            goto out;
        }
        if (parse_array(ing, root, n, json, len, &why, err) != GW_OK)
            goto out;
    } else {
        if (request_start(ing, project, default_action, 1) != GW_OK) {
            refuse_nomem(&why, err);
            goto out;
        }
        if (gw__event_parse_json(&ing->parse, root, &ing->pev[0], &why,
                                 &msg) != GW_OK ||
            ing->parse.nomem) {
            if (ing->parse.nomem)
                refuse_nomem(&why, err);
            else
                fail_event(err, 0, 0, &msg);
            goto out;
        }
    }

    if (admit(ing, n, &why, &msg, &failed) != GW_OK) {
        /* Out of memory and MAX_PENDING_SERIES are the request's, not
         * one event's. */
        fail_event(err,
                   batch && why != GW__REJECT_NOMEM && why != GW__REJECT_PENDING,
                   failed, &msg);
        goto out;
    }
    apply(ing, n);
    rc = GW_OK;

out:
    if (rc != GW_OK && reject != NULL)
        *reject = why;
    json_decref(root);
    return rc;
}

int
gw__ingest_event(gw__ingest_t *ing, const char *project,
                 const gw_event_t *ev, gw__reject_t *reject, gw_error_t *err)
{
    gw__reject_t why = GW__REJECT_NONE;
    size_t failed;

    if (reject != NULL)
        *reject = GW__REJECT_NONE;
    if (request_start(ing, project, GW_ACTION_DEFAULT, 1) != GW_OK)
        return refuse_nomem(reject, err);
    if (gw__event_parse_struct(&ing->parse, ev, &ing->pev[0], &why, err) !=
            GW_OK ||
        ing->parse.nomem || admit(ing, 1, &why, err, &failed) != GW_OK) {
        if (ing->parse.nomem)
            return refuse_nomem(reject, err);
        if (reject != NULL)
            *reject = why;
        return GW_ERR;
    }
    apply(ing, 1);
    return GW_OK;
}

int
gw__ingest_json_at(gw__ingest_t *ing, double now, const char *project,
                   gw_action_t default_action, const char *json, size_t len,
                   int allow_batch, size_t *nevents, gw__reject_t *reject,
                   gw_error_t *err)
{
    int rc;

    ing->parse.now = now;
    rc = gw__ingest_json(ing, project, default_action, json, len,
                         allow_batch, nevents, reject, err);
    ing->parse.now = 0;
    return rc;
}

int
gw__ingest_event_at(gw__ingest_t *ing, double now, const char *project,
                    const gw_event_t *ev, gw__reject_t *reject,
                    gw_error_t *err)
{
    int rc;

    ing->parse.now = now;
    rc = gw__ingest_event(ing, project, ev, reject, err);
    ing->parse.now = 0;
    return rc;
}
