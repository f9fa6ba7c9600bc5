/*
 * ingest/table.c: the aggregation table and the batch of deltas (DESIGN §3).
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
 *
 * The batch is what the storage thread stores: the table expanded into
 * every configured period and merged with earlier tables. Its strings are
 * interned once (each string id is an index), and its deltas are a plain
 * gw_delta_t array a storage can read directly. It merges one group at a
 * time the same way (its deltas made, then added), so that a failed
 * allocation drops a group whole (see gw__batch_add_table).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "bucket.h"
#include "ingest_int.h"
#include "slots.h"

#define NONE UINT32_MAX

/* ---- the table ------------------------------------------------------ */

typedef struct gw__cell_s {
    gw_kind_t kind;
    double sum;
    int64_t count;
    double ts;
    void *x;         /* timing: gw_timing_t; set: tb_set_t; else NULL */
    uint32_t rpos, rneg; /* gw__table_make: this request's adds to it */
} gw__cell_t;

/* A set cell and the registers it takes when it turns into a
 * HyperLogLog, allocated by gw__table_make so that adding cannot fail. */
typedef struct tb_set_s {
    gw_set_t s;
    uint8_t *spare;
} tb_set_t;

typedef struct gw__group_s {
    uint64_t hash;
    const char *project;
    const char *metric;
    uint32_t plen, mlen;
    int64_t minute;
    gw__cell_t cell;
    uint32_t first; /* first filter cell, NONE if none */
    uint32_t nf;    /* filter cells under it */
} gw__group_t;

typedef struct gw__fcell_s {
    uint64_t hash;
    uint32_t group;
    uint32_t next; /* next filter cell of the group, NONE at the end */
    const char *name;
    const char *value;
    uint32_t nlen, vlen;
    gw__cell_t cell;
} gw__fcell_t;

struct gw__table_s {
    gw__arena_t arena;
    gw__group_t *groups;
    size_t ngroups, capgroups;
    uint64_t *gslots;
    size_t gmask;
    gw__fcell_t *fcells;
    size_t nfcells, capfcells;
    uint64_t *fslots;
    size_t fmask;
    uint64_t events;
    gw__pending_t *pending; /* reserved deltas of it, given back at free */
    size_t reserved;
    size_t nx; /* cells with x: timing and set (freed one by one) */
};

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
static double
tb_saturate(double s)
{
    gw__metrics_count(GW__SATURATED_AGGREGATOR, GW_COUNTER_SATURATED, NULL, 1);
    return s > 0 ? DBL_MAX : -DBL_MAX;
}

static inline void
tb_cell_add(gw__cell_t *c, double sum, double ts)
{
    if (c->kind == GW_KIND_GAUGE) {
        /* The latest by ts; ties: the last received. */
        if (c->count == 0 || ts >= c->ts) {
            c->sum = sum;
            c->ts = ts;
        }
    } else {
        c->sum += sum;
        if (isinf(c->sum))
            c->sum = tb_saturate(c->sum);
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
            c->sum = tb_saturate(c->sum);
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
tb_add_to(gw__table_t *t, size_t group, double sum, double ts,
             const gw__pfilter_t *filters, size_t nfilters)
{
    size_t i;

    tb_cell_add(&t->groups[group].cell, sum, ts);
    for (i = 0; i < nfilters; i++)
        tb_cell_add(&t->fcells[filters[i].cell].cell, sum, ts);
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
        tb_add_to(t, (size_t) gi, sum, ts, filters, nfilters);
        return GW_OK;
    }
    if (nfilters > 0)
        gw__table_undo(t, &m);
    return GW_ERR;
}

/* ---- the batch ------------------------------------------------------ */

typedef struct gw__istr_s {
    uint64_t hash;
    const char *s;
    size_t n;
} gw__istr_t;

/* A delta's key in string ids (NONE for no filter). */
typedef struct gw__dkey_s {
    uint64_t hash;
    uint32_t project, metric, fname, fvalue;
    int64_t bucket;
    int period;
} gw__dkey_t;

struct gw__batch_s {
    char *id;
    gw__arena_t arena;
    gw__istr_t *strs;
    size_t nstrs, capstrs;
    uint64_t *sslots;
    size_t smask;
    gw_delta_t *deltas;
    gw__dkey_t *keys;
    size_t ndeltas, capdeltas;
    uint64_t *dslots;
    size_t dmask;
    uint64_t events;
    gw_batch_t view;
    uint32_t *gidx; /* the deltas of the group being merged */
    size_t capgidx;
    /* Timing and set deltas: data[i] belongs to deltas[i] (capdeltas of
     * them once the first such delta came; owned objects), and stage[k]
     * the merged object group_make made for gidx[k] (NULL: none). */
    gw_delta_data_t *data;
    void **stage;
    size_t capstage;
    int64_t cuts[GW_PERIOD_COUNT]; /* retention: see gw__batch_set_cuts */
    int have_cuts;
    uint64_t skipped[GW_PERIOD_COUNT];
};

gw__batch_t *
gw__batch_new(const char *id)
{
    gw__batch_t *b = gw__calloc(1, sizeof(*b));
    size_t n = strlen(id ? id : "");

    if (b == NULL)
        return NULL;
    gw__arena_init(&b->arena);
    b->id = gw__malloc(n + 1);
    b->sslots = gw__calloc(16, sizeof(*b->sslots));
    b->smask = 15;
    b->dslots = gw__calloc(16, sizeof(*b->dslots));
    b->dmask = 15;
    if (b->id == NULL || b->sslots == NULL || b->dslots == NULL) {
        gw__batch_free(b);
        return NULL;
    }
    memcpy(b->id, id ? id : "", n + 1);
    return b;
}

void
gw__batch_set_cuts(gw__batch_t *b, const int64_t *cuts)
{
    if (b == NULL)
        return;
    b->have_cuts = cuts != NULL;
    if (cuts != NULL)
        memcpy(b->cuts, cuts, sizeof(b->cuts));
}

uint64_t
gw__batch_skipped(const gw__batch_t *b, gw_period_t p)
{
    return b != NULL && (unsigned) p < GW_PERIOD_COUNT ? b->skipped[p] : 0;
}

static void
tb_obj_free(gw_kind_t kind, void *o)
{
    if (o == NULL)
        return;
    if (kind == GW_KIND_TIMING)
        gw_timing_free(o);
    else
        gw_set_free(o);
    free(o);
}

static void *
tb_data_obj(const gw_delta_data_t *d, gw_kind_t kind)
{
    return kind == GW_KIND_TIMING ? (void *) d->timing : (void *) d->set;
}

static void
tb_data_free(gw__batch_t *b)
{
    size_t i;

    for (i = 0; b->data != NULL && i < b->ndeltas; i++)
        tb_obj_free(b->deltas[i].kind, tb_data_obj(&b->data[i],
                                                   b->deltas[i].kind));
    free(b->data);
    free(b->stage);
}

void
gw__batch_free(gw__batch_t *b)
{
    if (b == NULL)
        return;
    free(b->id);
    gw__arena_free(&b->arena);
    free(b->strs);
    free(b->sslots);
    free(b->deltas);
    free(b->keys);
    free(b->dslots);
    free(b->gidx);
    tb_data_free(b);
    free(b);
}

size_t
gw__batch_size(const gw__batch_t *b)
{
    return b != NULL ? b->ndeltas : 0;
}

uint64_t
gw__batch_events(const gw__batch_t *b)
{
    return b != NULL ? b->events : 0;
}

const gw_batch_t *
gw__batch_view(gw__batch_t *b)
{
    b->view.id = b->id;
    b->view.deltas = b->deltas;
    b->view.ndeltas = b->ndeltas;
    b->view.data = b->data;
    return &b->view;
}

static uint64_t
tb_str_hash(const char *s, size_t n)
{
    return gw__hash_mix(gw__hash_bytes(GW__HASH_INIT, s, n));
}

/* The id of string s in b, interned if new; NONE if memory ran out. */
static uint32_t
tb_batch_str(gw__batch_t *b, const char *s, size_t n, uint64_t h)
{
    size_t j;
    uint64_t sl;
    gw__istr_t *e;
    char *copy;

    for (j = (size_t) h & b->smask; (sl = b->sslots[j]) != 0;
         j = (j + 1) & b->smask) {
        if (!SLOT_HASH_MATCH(sl, h))
            continue;
        e = &b->strs[SLOT_INDEX(sl)];
        if (e->hash == h && e->n == n && memcmp(e->s, s, n) == 0)
            return SLOT_INDEX(sl);
    }
    e = sl_entry_room(b->strs, b->nstrs, &b->capstrs, sizeof(gw__istr_t),
                   offsetof(gw__istr_t, hash), &b->sslots, &b->smask, h, &j);
    if (e == NULL)
        return NONE;
    b->strs = e;
    copy = gw__arena_strndup(&b->arena, s, n);
    if (copy == NULL)
        return NONE;
    e = &b->strs[b->nstrs];
    e->hash = h;
    e->s = copy;
    e->n = n;
    b->sslots[j] = SLOT(h, b->nstrs);
    return (uint32_t) b->nstrs++;
}

/* A key is six numbers: one multiply each (by different odd constants)
 * and the final mix, rather than FNV over its 28 bytes one at a time; the
 * storage thread hashes every key of every period at each flush. */
static void
tb_dkey_hash(gw__dkey_t *k)
{
    uint64_t h;

    h = ((uint64_t) k->project << 32 | k->metric) *
        UINT64_C(0x9e3779b97f4a7c15);
    h ^= ((uint64_t) k->fname << 32 | k->fvalue) *
         UINT64_C(0xc2b2ae3d27d4eb4f);
    h = (h ^ (h >> 31)) + (uint64_t) k->bucket * UINT64_C(0x165667b19e3779f9);
    h ^= (uint64_t) (unsigned) k->period * UINT64_C(0x27d4eb2f165667c5);
    k->hash = gw__hash_mix(h);
}

static int
tb_dkey_eq(const gw__dkey_t *a, const gw__dkey_t *b)
{
    return a->hash == b->hash && a->project == b->project &&
           a->metric == b->metric && a->fname == b->fname &&
           a->fvalue == b->fvalue && a->bucket == b->bucket &&
           a->period == b->period;
}

/* data with room for cap deltas, the new part zeroed. */
static int
tb_data_grow(gw__batch_t *b, size_t cap)
{
    size_t old = b->data != NULL ? b->capdeltas : 0;
    gw_delta_data_t *d;

    if (b->data != NULL && cap <= old)
        return GW_OK;
    d = gw__realloc(b->data, cap * sizeof(*d));
    if (d == NULL)
        return GW_ERR;
    memset(d + old, 0, (cap - old) * sizeof(*d));
    b->data = d;
    return GW_OK;
}

/* The delta of key k, made (empty) if new; NULL if memory ran out. */
static gw_delta_t *
tb_batch_delta(gw__batch_t *b, const gw__dkey_t *k, gw_kind_t kind)
{
    size_t j, cap;
    uint64_t sl;
    gw_delta_t *d;
    gw__dkey_t *keys;

    for (j = (size_t) k->hash & b->dmask; (sl = b->dslots[j]) != 0;
         j = (j + 1) & b->dmask) {
        if (SLOT_HASH_MATCH(sl, k->hash) &&
            tb_dkey_eq(&b->keys[SLOT_INDEX(sl)], k))
            return &b->deltas[SLOT_INDEX(sl)];
    }
    cap = b->capdeltas;
    keys = sl_entry_room(b->keys, b->ndeltas, &cap, sizeof(gw__dkey_t),
                      offsetof(gw__dkey_t, hash), &b->dslots, &b->dmask,
                      k->hash, &j);
    if (keys == NULL)
        return NULL;
    b->keys = keys;
    if (cap != b->capdeltas) {
        /* The deltas grow with the keys; capdeltas is what both have. */
        size_t dcap = b->capdeltas;

        d = sl_array_grow(b->deltas, &dcap, sizeof(*b->deltas));
        if (d == NULL)
            return NULL;
        b->deltas = d;
        if (b->data != NULL && tb_data_grow(b, cap) != GW_OK)
            return NULL;
        b->capdeltas = cap;
    }
    if (b->data == NULL && (kind == GW_KIND_TIMING || kind == GW_KIND_SET) &&
        tb_data_grow(b, b->capdeltas) != GW_OK)
        return NULL;
    b->keys[b->ndeltas] = *k;
    d = &b->deltas[b->ndeltas];
    d->project = b->strs[k->project].s;
    d->metric = b->strs[k->metric].s;
    d->filter_name = k->fname == NONE ? NULL : b->strs[k->fname].s;
    d->filter_value = k->fvalue == NONE ? NULL : b->strs[k->fvalue].s;
    d->kind = kind;
    d->period = (gw_period_t) k->period;
    d->bucket = k->bucket;
    d->sum = 0;
    d->count = 0;
    d->ts = 0;
    if (b->data != NULL)
        memset(&b->data[b->ndeltas], 0, sizeof(*b->data));
    b->dslots[j] = SLOT(k->hash, b->ndeltas);
    b->ndeltas++;
    return d;
}

static void
tb_delta_merge(gw_delta_t *d, const gw__cell_t *c)
{
    if (d->kind == GW_KIND_GAUGE) {
        /* The newest ts; ties: the one merged later. */
        if (d->count == 0 || c->ts >= d->ts) {
            d->sum = c->sum;
            d->ts = c->ts;
        }
    } else {
        d->sum += c->sum;
        if (isinf(d->sum))
            d->sum = tb_saturate(d->sum);
    }
    d->count += c->count;
}

/* Makes (empty where new) the deltas of one series (string ids fn/fv,
 * NONE for the total) over the periods, their indices to b->gidx[*k..].
 * GW_ERR: out of memory. */
static int
tb_series_make(gw__batch_t *b, uint32_t pid, uint32_t mid, uint32_t fn,
            uint32_t fv, gw_kind_t kind, const int *periods,
            const int64_t *buckets, size_t nper, size_t *k)
{
    gw__dkey_t key;
    gw_delta_t *d;
    size_t i;

    key.project = pid;
    key.metric = mid;
    key.fname = fn;
    key.fvalue = fv;
    for (i = 0; i < nper; i++) {
        key.period = periods[i];
        key.bucket = buckets[i];
        tb_dkey_hash(&key);
        d = tb_batch_delta(b, &key, kind);
        if (d == NULL)
            return GW_ERR;
        b->gidx[(*k)++] = (uint32_t) (d - b->deltas);
    }
    return GW_OK;
}

/* Takes the deltas made since b had mark of them (all empty) out again. */
static void
tb_batch_undo(gw__batch_t *b, size_t mark)
{
    while (b->ndeltas > mark) {
        b->ndeltas--;
        sl_slots_remove(b->dslots, b->dmask, b->keys, sizeof(gw__dkey_t),
                     offsetof(gw__dkey_t, hash), b->keys[b->ndeltas].hash,
                     b->ndeltas);
    }
}

/* A new object: the delta's (NULL: none yet) merged with the cell's x. */
static void *
tb_obj_merged(gw_kind_t kind, const void *have, const void *cell)
{
    void *o = gw__calloc(1, kind == GW_KIND_TIMING ? sizeof(gw_timing_t)
                                                   : sizeof(gw_set_t));
    int rc = GW_OK;

    if (o == NULL)
        return NULL;
    if (kind == GW_KIND_TIMING) {
        if (have != NULL)
            rc = gw_timing_copy(o, have);
        if (rc == GW_OK && cell != NULL)
            rc = gw_timing_merge(o, cell);
    } else {
        if (have != NULL)
            rc = gw_set_merge(o, have);
        if (rc == GW_OK && cell != NULL)
            rc = gw_set_merge(o, &((const tb_set_t *) cell)->s);
    }
    if (rc != GW_OK) {
        tb_obj_free(kind, o);
        return NULL;
    }
    return o;
}

/* Part of group_make for a timing or set group: the merged object of
 * each of its n deltas (b->gidx) in b->stage, which group_merge puts in
 * place; all or none (GW_ERR: out of memory). */
static int
tb_group_stage(gw__batch_t *b, const gw__table_t *t, const gw__group_t *g,
               size_t nper, size_t n)
{
    const gw__cell_t *cell = &g->cell;
    uint32_t ci = g->first;
    void **st;
    size_t k;

    if (n > b->capstage) {
        st = gw__realloc(b->stage, n * sizeof(*st));
        if (st == NULL)
            return GW_ERR;
        b->stage = st;
        b->capstage = n;
    }
    for (k = 0; k < n; k++) {
        if (k > 0 && k % nper == 0) {
            cell = &t->fcells[ci].cell;
            ci = t->fcells[ci].next;
        }
        b->stage[k] = tb_obj_merged(cell->kind,
                                    tb_data_obj(&b->data[b->gidx[k]],
                                                cell->kind),
                                    cell->x);
        if (b->stage[k] == NULL) {
            while (k-- > 0)
                tb_obj_free(cell->kind, b->stage[k]);
            return GW_ERR;
        }
    }
    return GW_OK;
}

/*
 * The first half of merging group g: makes every delta it needs in b
 * (empty where new), their indices in b->gidx in the order group_merge
 * adds to them: the total over the periods, then each filter series.
 * GW_ERR: out of memory, and the deltas it made are gone again (strings
 * it interned stay; no delta uses them).
 */
static int
tb_group_make(gw__batch_t *b, const gw__table_t *t, const gw__group_t *g,
           const int *periods, const int64_t *buckets, size_t nper, uint64_t ph,
           uint64_t mh)
{
    size_t need = (1 + (size_t) g->nf) * nper, mark = b->ndeltas, k = 0;
    uint32_t pid, mid, fn, fv, ci;
    const gw__fcell_t *c;
    uint32_t *gidx;

    if (need > b->capgidx) {
        gidx = gw__realloc(b->gidx, need * sizeof(*gidx));
        if (gidx == NULL)
            return GW_ERR;
        b->gidx = gidx;
        b->capgidx = need;
    }
    pid = tb_batch_str(b, g->project, g->plen, ph);
    mid = pid != NONE ? tb_batch_str(b, g->metric, g->mlen, mh) : NONE;
    if (mid == NONE || tb_series_make(b, pid, mid, NONE, NONE, g->cell.kind,
                                   periods, buckets, nper, &k) != GW_OK)
        goto undo;
    for (ci = g->first; ci != NONE; ci = c->next) {
        c = &t->fcells[ci];
        fn = tb_batch_str(b, c->name, c->nlen, tb_str_hash(c->name, c->nlen));
        fv = fn != NONE ? tb_batch_str(b, c->value, c->vlen,
                                    tb_str_hash(c->value, c->vlen))
                        : NONE;
        if (fv == NONE || tb_series_make(b, pid, mid, fn, fv, c->cell.kind,
                                      periods, buckets, nper, &k) != GW_OK)
            goto undo;
    }
    if ((g->cell.kind == GW_KIND_TIMING || g->cell.kind == GW_KIND_SET) &&
        tb_group_stage(b, t, g, nper, k) != GW_OK)
        goto undo;
    return GW_OK;

undo:
    tb_batch_undo(b, mark);
    return GW_ERR;
}

/* The second half: adds g's cells to the deltas group_make found. */
static void
tb_group_merge(gw__batch_t *b, const gw__table_t *t, const gw__group_t *g,
            size_t nper)
{
    const uint32_t *x = b->gidx;
    const gw__fcell_t *c;
    uint32_t ci;
    size_t i;

    for (i = 0; i < nper; i++)
        tb_delta_merge(&b->deltas[*x++], &g->cell);
    for (ci = g->first; ci != NONE; ci = c->next) {
        c = &t->fcells[ci];
        for (i = 0; i < nper; i++)
            tb_delta_merge(&b->deltas[*x++], &c->cell);
    }
    b->events += (uint64_t) g->cell.count;
    if (g->cell.kind != GW_KIND_TIMING && g->cell.kind != GW_KIND_SET)
        return;
    /* The objects group_make merged take the place of the old ones. */
    for (i = 0; i < (size_t) (x - b->gidx); i++) {
        gw_delta_data_t *d = &b->data[b->gidx[i]];

        tb_obj_free(g->cell.kind, tb_data_obj(d, g->cell.kind));
        if (g->cell.kind == GW_KIND_TIMING)
            d->timing = b->stage[i];
        else
            d->set = b->stage[i];
    }
}

/*
 * Out of memory on the storage thread: a group whose deltas cannot all be
 * made is dropped whole, its events counted in *dropped_events (as for
 * MAX_PENDING_SERIES) and logged, and the merge goes on with the next
 * group; a batch that could not be made (b NULL) drops the whole table.
 * Keeping the table to merge it again later would be better, but its
 * caller (core/store.c) frees the table as soon as this returns and has
 * no way to queue it again or to wait for memory; so the batch never
 * holds half a group, and every lost event is counted and said.
 */
void
gw__batch_add_table(gw__batch_t *b, const gw__table_t *t, unsigned periods,
                    uint64_t *dropped_events)
{
    int plist[GW_PERIOD_COUNT], keep[GW_PERIOD_COUNT];
    int64_t buckets[GW_PERIOD_COUNT];
    size_t nper = 0, nkeep, gi, i;
    uint64_t nomem = 0, ph, mh;
    const gw__group_t *g;
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        if (periods & (1u << p))
            plist[nper++] = p;

    if (b == NULL)
        nomem = gw__table_events(t);
    for (gi = 0; b != NULL && t != NULL && gi < t->ngroups; gi++) {
        g = &t->groups[gi];
        /* A bucket already past its period's retention is not written:
         * the storage would delete it at once (counted per period). */
        for (i = nkeep = 0; i < nper; i++) {
            int64_t start = gw__bucket_start((gw_period_t) plist[i],
                                             g->minute);

            if (b->have_cuts && start < b->cuts[plist[i]]) {
                b->skipped[plist[i]] += 1 + (uint64_t) g->nf;
                continue;
            }
            keep[nkeep] = plist[i];
            buckets[nkeep++] = start;
        }
        ph = tb_str_hash(g->project, g->plen);
        mh = tb_str_hash(g->metric, g->mlen);
        if (tb_group_make(b, t, g, keep, buckets, nkeep, ph, mh) != GW_OK) {
            nomem += (uint64_t) g->cell.count;
            continue;
        }
        tb_group_merge(b, t, g, nkeep);
    }
    if (nomem > 0)
        gw__log(GW_LOG_ERR, NULL,
                "out of memory merging a table into batch \"%s\": dropped "
                "%llu events",
                b != NULL ? b->id : "(none)", (unsigned long long) nomem);
    if (dropped_events != NULL)
        *dropped_events = nomem;
}
