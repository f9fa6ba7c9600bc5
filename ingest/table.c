/*
 * ingest/table.c: the aggregation table (DESIGN §3); the batch it is merged
 * into is ingest/batch.c.
 *
 * The table is what the loop thread updates per event. Its key is
 * (project, metric, minute) for a "group" (the total series) and
 * (group, filter name, filter value) for each filter series under it, so an
 * event costs one hash of (project, metric) plus one per filter pair, and
 * grouping lets a batch keep or drop all the series of one event together.
 * Both levels use open addressing with linear probing over slots holding
 * (32 bits of hash, index + 1); entries and their strings (copied into the
 * table's arena the first time a key is seen) never move once made, so
 * nothing is allocated per event once the table has grown.
 *
 * Out of memory: an event's keys are made first (empty), then its values
 * added, so that a failed allocation leaves nothing half added; the keys
 * made since a gw__table_mark are removed again by gw__table_undo. A
 * table that failed to grow keeps what it had and takes further events.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/metrics.h"
#include "bucket.h"
#include "ingest_int.h"
#include "slots.h"
#include "table_int.h"


/* ---- the table ------------------------------------------------------ */

gw__table_t *
gw__table_new(size_t ngroups, size_t nfilters)
{
    gw__table_t *t = gw__calloc(1, sizeof(*t));
    size_t gcap = sl_pow2_at_least(ngroups * 2);
    size_t fcap = sl_pow2_at_least(nfilters * 2);

    if (t == NULL)
        return NULL;
    gw__arena_init(&t->arena);
    t->capgroups = gcap / 2;
    t->groups = gw__malloc(t->capgroups * sizeof(*t->groups));
    t->gslots = gw__calloc(gcap, sizeof(*t->gslots));
    t->gmask = gcap - 1;
    t->capfcells = fcap / 2;
    t->fcells = gw__malloc(t->capfcells * sizeof(*t->fcells));
    t->fslots = gw__calloc(fcap, sizeof(*t->fslots));
    t->fmask = fcap - 1;
    if (t->groups == NULL || t->gslots == NULL || t->fcells == NULL ||
        t->fslots == NULL) {
        gw__table_free(t);
        return NULL;
    }
    return t;
}

static void
tb_cell_free(gw__table_t *t, gw__cell_t *c)
{
    tb_set_t *s;

    if (c->x == NULL)
        return;
    t->nx--;
    if (c->kind == GW_KIND_TIMING) {
        gw_timing_free(c->x);
    } else {
        s = c->x;
        gw_set_free(&s->s);
        free(s->spare);
    }
    free(c->x);
    c->x = NULL;
}

void
gw__table_free(gw__table_t *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; t->nx > 0 && i < t->ngroups; i++)
        tb_cell_free(t, &t->groups[i].cell);
    for (i = 0; t->nx > 0 && i < t->nfcells; i++)
        tb_cell_free(t, &t->fcells[i].cell);
    if (t->reserved > 0)
        __atomic_sub_fetch(&t->pending->reserved, t->reserved,
                           __ATOMIC_SEQ_CST);
    gw__arena_free(&t->arena);
    free(t->groups);
    free(t->gslots);
    free(t->fcells);
    free(t->fslots);
    free(t);
}

void
gw__table_reserved(gw__table_t *t, gw__pending_t *p, size_t deltas)
{
    t->pending = p;
    t->reserved += deltas;
}

uint64_t
gw__table_events(const gw__table_t *t)
{
    return t ? t->events : 0;
}

size_t
gw__table_keys(const gw__table_t *t)
{
    return t ? t->ngroups + t->nfcells : 0;
}

size_t
gw__table_bytes(const gw__table_t *t)
{
    size_t n;

    if (t == NULL)
        return 0;
    n = sizeof(*t);
    n += t->capgroups * sizeof(*t->groups);
    n += (t->gmask + 1) * sizeof(*t->gslots);
    n += t->capfcells * sizeof(*t->fcells);
    n += (t->fmask + 1) * sizeof(*t->fslots);
    return n + gw__arena_bytes(&t->arena);
}

size_t
gw__table_groups(const gw__table_t *t)
{
    return t ? t->ngroups : 0;
}

/*
 * A sum that would overflow (issue 16): values are at most 1e300, so only
 * some 10^8 of them in one cell get there. It stays at +-DBL_MAX instead
 * of becoming inf (which the read API cannot show and every later sum
 * keeps), counted as gottwall_values_saturated_total{where="aggregator"}.
 * Rare, so counted at once from whichever thread adds.
 */
double
gw__table_saturate(double s)
{
    gw__metrics_count(GW__SATURATED_AGGREGATOR, GW_COUNTER_SATURATED, NULL, 1);
    return s > 0 ? DBL_MAX : -DBL_MAX;
}

/* The receipt time of a gauge value (gw__cell_t.rx): one clock read per
 * gauge event, none for the other kinds. */
static inline uint64_t
tb_rx_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

static inline void
tb_cell_add(gw__cell_t *c, double sum, double ts, uint64_t rx)
{
    if (c->kind == GW_KIND_GAUGE) {
        /* The latest by ts; ties: the last received. */
        if (c->count == 0 || ts >= c->ts) {
            c->sum = sum;
            c->ts = ts;
            c->rx = rx;
        }
    } else {
        c->sum += sum;
        if (isinf(c->sum))
            c->sum = gw__table_saturate(c->sum);
    }
    c->count++;
}

static inline void
tb_cell_init(gw__cell_t *c, gw_kind_t kind)
{
    c->kind = kind;
    c->sum = 0;
    c->count = 0;
    c->ts = 0;
    c->x = NULL;
    c->rpos = c->rneg = 0;
}

/* Adds e (idx: its bin, gw_timing_index_of) to a timing or set cell that
 * tb_cell_reserve made room in: cannot fail. */
static inline void
tb_cell_add_x(gw__cell_t *c, const gw__pevent_t *e, int32_t idx)
{
    tb_set_t *s;

    if (c->kind == GW_KIND_TIMING) {
        c->sum += e->value;
        if (isinf(c->sum))
            c->sum = gw__table_saturate(c->sum);
        (void) gw_timing_add_index(c->x, e->value, idx, 1);
    } else {
        s = c->x;
        (void) gw_set_add_with(&s->s, e->member, &s->spare);
    }
    c->count++;
}

/* The room a store of n bins needs for want more adds. */
static size_t
tb_bins_want(size_t n, size_t want)
{
    return n + want < GW_SKETCH_MAX_BINS ? n + want : GW_SKETCH_MAX_BINS + 1;
}

/* Room in c for the adds counted in rpos and rneg (then reset), so that
 * tb_cell_add_x cannot fail. GW_ERR: out of memory (the room made so far
 * stays; it is only capacity). */
static int
tb_cell_reserve(gw__table_t *t, gw__cell_t *c)
{
    size_t addp = c->rpos, addn = c->rneg, want;
    gw_timing_t *tm;
    tb_set_t *s;
    uint64_t *h;

    c->rpos = c->rneg = 0;
    if (c->x == NULL) {
        c->x = gw__calloc(1, c->kind == GW_KIND_TIMING ? sizeof(gw_timing_t)
                                                      : sizeof(tb_set_t));
        if (c->x == NULL)
            return GW_ERR;
        t->nx++;
    }
    if (c->kind == GW_KIND_TIMING) {
        tm = c->x;
        if (addp > 0 && gw__bins_room(&tm->pos, &tm->cappos,
                                      tb_bins_want(tm->npos, addp)) != GW_OK)
            return GW_ERR;
        return addn == 0 ? GW_OK
                         : gw__bins_room(&tm->neg, &tm->capneg,
                                         tb_bins_want(tm->nneg, addn));
    }
    s = c->x;
    if (s->s.registers != NULL)
        return GW_OK;
    want = s->s.nhashes + addp;
    if (s->s.caphashes < want && s->s.caphashes < GW_SET_EXACT_MAX) {
        size_t cap = want < GW_SET_EXACT_MAX ? want : GW_SET_EXACT_MAX;

        h = gw__realloc(s->s.hashes, cap * sizeof(*h));
        if (h == NULL)
            return GW_ERR;
        s->s.hashes = h;
        s->s.caphashes = cap;
    }
    if (s->spare == NULL && want > GW_SET_EXACT_MAX) {
        s->spare = gw__calloc(GW_HLL_REGISTERS, 1);
        if (s->spare == NULL)
            return GW_ERR;
    }
    return GW_OK;
}

/* The index of the group (project, metric, minute) of hash h, or -1 with
 * *empty the free slot where it would go. */
static inline long
tb_group_probe(const gw__table_t *t, uint64_t h, gw__str_t project,
            gw__str_t metric, int64_t minute, size_t *empty)
{
    const gw__group_t *g;
    uint64_t s;
    size_t j;

    for (j = (size_t) h & t->gmask; (s = t->gslots[j]) != 0;
         j = (j + 1) & t->gmask) {
        if (!SLOT_HASH_MATCH(s, h))
            continue;
        g = &t->groups[SLOT_INDEX(s)];
        if (g->hash == h && g->minute == minute && g->mlen == metric.n &&
            g->plen == project.n &&
            gw__mem_eq(g->metric, metric.s, metric.n) &&
            gw__mem_eq(g->project, project.s, project.n))
            return (long) SLOT_INDEX(s);
    }
    *empty = j;
    return -1;
}

/* Copies a and b into t's arena as *as and *bs; GW_ERR if memory ran out
 * (a copy made stays until gw__table_undo). */
static int
tb_strs(gw__table_t *t, gw__str_t a, gw__str_t b, const char **as,
           const char **bs)
{
    *as = gw__arena_strndup(&t->arena, a.s, a.n);
    *bs = *as != NULL ? gw__arena_strndup(&t->arena, b.s, b.n) : NULL;
    return *bs != NULL ? GW_OK : GW_ERR;
}

/* Makes the group (project, metric, minute) of hash h, empty, for the free
 * slot j group_probe found; its index, or -1 if memory ran out (t keeps
 * what it had; a string already copied stays in the arena until
 * gw__table_undo). */
static long
tb_group_new(gw__table_t *t, uint64_t h, gw__str_t project, gw__str_t metric,
          int64_t minute, gw_kind_t kind, size_t j)
{
    gw__group_t *g;
    const char *ps, *ms;

    g = sl_entry_room(t->groups, t->ngroups, &t->capgroups, sizeof(gw__group_t),
                   offsetof(gw__group_t, hash), &t->gslots, &t->gmask, h, &j);
    if (g != NULL)
        t->groups = g;
    if (g == NULL || tb_strs(t, project, metric, &ps, &ms) != GW_OK)
        return -1;
    g = &t->groups[t->ngroups];
    g->hash = h;
    g->project = ps;
    g->metric = ms;
    g->plen = (uint32_t) project.n;
    g->mlen = (uint32_t) metric.n;
    g->minute = minute;
    tb_cell_init(&g->cell, kind);
    g->first = NONE;
    g->nf = 0;
    t->gslots[j] = SLOT(h, t->ngroups);
    return (long) t->ngroups++;
}

/* The index of filter series f of group gi (of hash h), or -1 with *empty
 * the free slot where it would go. */
static inline long
tb_fcell_probe(const gw__table_t *t, uint32_t gi, const gw__pfilter_t *f,
            uint64_t h, size_t *empty)
{
    const gw__fcell_t *c;
    uint64_t s;
    size_t j;

    for (j = (size_t) h & t->fmask; (s = t->fslots[j]) != 0;
         j = (j + 1) & t->fmask) {
        if (!SLOT_HASH_MATCH(s, h))
            continue;
        c = &t->fcells[SLOT_INDEX(s)];
        if (c->hash == h && c->group == gi && c->nlen == f->name.n &&
            c->vlen == f->value.n &&
            gw__mem_eq(c->name, f->name.s, f->name.n) &&
            gw__mem_eq(c->value, f->value.s, f->value.n))
            return (long) SLOT_INDEX(s);
    }
    *empty = j;
    return -1;
}

/* Makes filter series f of group gi (hash h), empty, for the free slot j
 * fcell_probe found; as group_new. */
static long
tb_fcell_new(gw__table_t *t, uint32_t gi, const gw__pfilter_t *f,
          gw_kind_t kind, uint64_t h, size_t j)
{
    gw__fcell_t *c;
    gw__group_t *g;
    const char *ns, *vs;

    c = sl_entry_room(t->fcells, t->nfcells, &t->capfcells, sizeof(gw__fcell_t),
                   offsetof(gw__fcell_t, hash), &t->fslots, &t->fmask, h, &j);
    if (c == NULL)
        return -1;
    t->fcells = c;
    if (tb_strs(t, f->name, f->value, &ns, &vs) != GW_OK)
        return -1;
    g = &t->groups[gi];
    c = &t->fcells[t->nfcells];
    c->hash = h;
    c->group = gi;
    c->next = g->first;
    c->name = ns;
    c->value = vs;
    c->nlen = (uint32_t) f->name.n;
    c->vlen = (uint32_t) f->value.n;
    tb_cell_init(&c->cell, kind);
    g->first = (uint32_t) t->nfcells;
    g->nf++;
    t->fslots[j] = SLOT(h, t->nfcells);
    return (long) t->nfcells++;
}

static inline uint64_t
tb_group_hash(uint64_t pm_hash, int64_t minute)
{
    return gw__hash_mix(pm_hash ^
                        ((uint64_t) minute * UINT64_C(0x9e3779b97f4a7c15)));
}

void
gw__table_retype(gw__table_t *t, const gw__pevent_t *e,
                 const gw__pfilter_t *pf)
{
    gw__cell_t *c = &t->groups[e->group].cell;
    size_t k;

    for (k = 0; k <= e->nf; k++) {
        if (k > 0)
            c = &t->fcells[pf[e->f0 + k - 1].cell].cell;
        if (c->kind == GW_KIND_TIMING) {
            tb_cell_free(t, c);
            c->kind = GW_KIND_AVG;
        }
    }
}

long
gw__table_find(const gw__table_t *t, uint64_t pm_hash, gw__str_t project,
               gw__str_t metric, int64_t minute, gw_kind_t *kind)
{
    size_t empty;
    long gi = tb_group_probe(t, tb_group_hash(pm_hash, minute), project, metric,
                          minute, &empty);

    if (gi >= 0)
        *kind = t->groups[gi].cell.kind;
    return gi;
}

void
gw__table_mark(const gw__table_t *t, gw__table_mark_t *m)
{
    m->ngroups = t->ngroups;
    m->nfcells = t->nfcells;
    gw__arena_mark(&t->arena, &m->arena);
}

void
gw__table_undo(gw__table_t *t, const gw__table_mark_t *m)
{
    gw__fcell_t *c;
    gw__group_t *g;

    /* Newest first: each filter cell went to the front of its group's
     * list, so its group's list starts with it again. */
    while (t->nfcells > m->nfcells) {
        c = &t->fcells[--t->nfcells];
        tb_cell_free(t, &c->cell);
        g = &t->groups[c->group];
        g->first = c->next;
        g->nf--;
        sl_slots_remove(t->fslots, t->fmask, t->fcells, sizeof(gw__fcell_t),
                     offsetof(gw__fcell_t, hash), c->hash, t->nfcells);
    }
    while (t->ngroups > m->ngroups) {
        g = &t->groups[--t->ngroups];
        tb_cell_free(t, &g->cell);
        sl_slots_remove(t->gslots, t->gmask, t->groups, sizeof(gw__group_t),
                     offsetof(gw__group_t, hash), g->hash, t->ngroups);
    }
    gw__arena_undo(&t->arena, &m->arena);
}

/* The steps of adding an event (for gw__table_make, gw__table_apply and
 * gw__table_add). */
static inline long
tb_group(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
            gw__str_t metric, int64_t minute, gw_kind_t kind)
{
    uint64_t h = tb_group_hash(pm_hash, minute);
    size_t j;
    long gi = tb_group_probe(t, h, project, metric, minute, &j);

    return gi >= 0 ? gi : tb_group_new(t, h, project, metric, minute, kind, j);
}

static inline int
tb_filters(gw__table_t *t, size_t group, gw__pfilter_t *filters,
              size_t nfilters)
{
    uint32_t gi = (uint32_t) group;
    const gw__pfilter_t *f;
    size_t i, j;
    uint64_t h;
    long ci;

    for (i = 0; i < nfilters; i++) {
        f = &filters[i];
        h = gw__hash_bytes(GW__HASH_INIT, f->name.s, f->name.n);
        h = gw__hash_sep(h);
        h = gw__hash_bytes(h, f->value.s, f->value.n);
        h = gw__hash_mix(h ^ ((uint64_t) gi * UINT64_C(0x9e3779b97f4a7c15)));
        ci = tb_fcell_probe(t, gi, f, h, &j);
        if (ci < 0)
            ci = tb_fcell_new(t, gi, f, t->groups[group].cell.kind, h, j);
        if (ci < 0)
            return GW_ERR;
        filters[i].cell = (uint32_t) ci;
    }
    return GW_OK;
}

static inline void
tb_add_to(gw__table_t *t, size_t group, double sum, double ts, uint64_t rx,
             const gw__pfilter_t *filters, size_t nfilters)
{
    size_t i;

    tb_cell_add(&t->groups[group].cell, sum, ts, rx);
    for (i = 0; i < nfilters; i++)
        tb_cell_add(&t->fcells[filters[i].cell].cell, sum, ts, rx);
    t->events++;
}

/* The same for a timing or set event (its bin found once). */
static void
tb_add_x(gw__table_t *t, const gw__pevent_t *e, const gw__pfilter_t *filters)
{
    int32_t idx = e->action == GW_ACTION_TIMING ? gw_timing_index_of(e->value)
                                                : 0;
    size_t i;

    tb_cell_add_x(&t->groups[e->group].cell, e, idx);
    for (i = 0; i < e->nf; i++)
        tb_cell_add_x(&t->fcells[filters[i].cell].cell, e, idx);
    t->events++;
}

/* Counts e's adds to one of its cells (pass 1 of tb_reserve). */
static inline void
tb_count(gw__cell_t *c, const gw__pevent_t *e)
{
    if (c->kind == GW_KIND_TIMING && e->value <= -GW_SKETCH_MIN_VALUE)
        c->rneg++;
    else
        c->rpos++;
}

/* Room in the timing and set cells of ev[0..n) for what gw__table_apply
 * will add to them: counted per cell, then reserved. GW_ERR: out of
 * memory. */
static int
tb_reserve(gw__table_t *t, const gw__pevent_t *ev, size_t n,
           const gw__pfilter_t *pf)
{
    const gw__pevent_t *e;
    gw__cell_t *c;
    size_t i, k;
    int pass, rc = GW_OK;

    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < n; i++) {
            e = &ev[i];
            c = &t->groups[e->group].cell;
            if (c->kind != GW_KIND_TIMING && c->kind != GW_KIND_SET)
                continue;
            for (k = 0; k <= e->nf; k++) {
                if (k > 0)
                    c = &t->fcells[pf[e->f0 + k - 1].cell].cell;
                if (pass == 0)
                    tb_count(c, e);
                else if ((c->rpos | c->rneg) != 0 &&
                         tb_cell_reserve(t, c) != GW_OK)
                    rc = GW_ERR; /* go on: every count back to 0 */
            }
        }
    return rc;
}

int
gw__table_make(gw__table_t *t, gw__pevent_t *ev, size_t n, gw__pfilter_t *pf,
               gw__table_mark_t *m)
{
    gw__pevent_t *e;
    size_t i;
    long gi;

    gw__table_mark(t, m);
    for (i = 0; i < n; i++) {
        e = &ev[i];
        if (e->group < 0) {
            gi = tb_group(t, e->pm_hash, e->project, e->name,
                             gw__event_minute(e), gw__action_kind(e->action));
            if (gi < 0)
                return GW_ERR;
            e->group = gi;
        }
        if (e->nf != 0 &&
            tb_filters(t, (size_t) e->group, &pf[e->f0], e->nf) != GW_OK)
            return GW_ERR;
    }
    return tb_reserve(t, ev, n, pf);
}

void
gw__table_apply(gw__table_t *t, const gw__pevent_t *ev, size_t n,
                const gw__pfilter_t *pf)
{
    const gw__pevent_t *e;
    double sum;
    size_t i;

    for (i = 0; i < n; i++) {
        e = &ev[i];
        if (e->action == GW_ACTION_TIMING || e->action == GW_ACTION_SET) {
            tb_add_x(t, e, e->nf ? &pf[e->f0] : NULL);
            continue;
        }
        sum = e->action == GW_ACTION_DECR ? -fabs(e->value) : e->value;
        tb_add_to(t, (size_t) e->group, sum, e->ts,
                  e->action == GW_ACTION_GAUGE ? tb_rx_now() : 0,
                  e->nf ? &pf[e->f0] : NULL, e->nf);
    }
}

int
gw__table_add(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
              gw__str_t metric, int64_t minute, gw_kind_t kind, double sum,
              double ts, gw__pfilter_t *filters, size_t nfilters)
{
    gw__table_mark_t m;
    long gi;

    /* Without filters a failed group_new leaves nothing to take back
     * but a string in the arena. */
    if (nfilters > 0)
        gw__table_mark(t, &m);
    gi = tb_group(t, pm_hash, project, metric, minute, kind);
    if (gi >= 0 && (nfilters == 0 || tb_filters(t, (size_t) gi, filters,
                                                   nfilters) == GW_OK)) {
        tb_add_to(t, (size_t) gi, sum, ts,
                  kind == GW_KIND_GAUGE ? tb_rx_now() : 0, filters, nfilters);
        return GW_OK;
    }
    if (nfilters > 0)
        gw__table_undo(t, &m);
    return GW_ERR;
}

