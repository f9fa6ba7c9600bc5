/*
 * ingest/table.c: the aggregation table (DESIGN §3); the batch it is merged
 * into is ingest/batch.c.
 *
 * The table is what the loop thread updates per event. Its key is
 * (project, metric, minute) for a "group" (the total series) and
 * (group, filter name, filter value) for each filter series under it, so an
 * event costs one hash of (project, metric) plus one per filter pair, and
 * grouping lets a batch keep or drop all the series of one event together.
 * Both levels use open addressing with linear probing over 4-byte slots
 * holding index + 1 of an entry (table_int.h has the layout: 32 bytes an
 * entry, its key packed in the table's arena the first time it is seen,
 * the projects interned); a probe compares the entry itself, and the
 * hashes are made again from the keys when the slots grow, which a table
 * sized from the last one (ingest.c) rarely does. Entries and keys never
 * move once made, so nothing is allocated per event once the table has
 * grown.
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
    gw_kind_t kind = gw__cell_kind(c);
    gw__aside_t *a;
    tb_set_t *s;

    if (kind != GW_KIND_TIMING && kind != GW_KIND_SET)
        return;
    a = gw__cell_aside(t, c);
    if (a->x == NULL)
        return;
    t->nx--;
    if (kind == GW_KIND_TIMING) {
        gw_timing_free(a->x);
    } else {
        s = a->x;
        gw_set_free(&s->s);
        free(s->spare);
    }
    free(a->x);
    a->x = NULL;
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
    free(t->aside);
    free(t->projects);
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
    n += t->capaside * sizeof(*t->aside);
    n += t->capprojects * sizeof(*t->projects);
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

/* The receipt time of a gauge value (gw__aside_t.rx): one clock read per
 * gauge event, none for the other kinds. */
static inline uint64_t
tb_rx_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/* ---- cells ---------------------------------------------------------- */

static inline void
tb_sum_add(double *to, double sum)
{
    *to += sum;
    if (isinf(*to))
        *to = gw__table_saturate(*to);
}

static inline void
tb_cell_add(gw__table_t *t, gw__cell_t *c, double sum, double ts,
            uint64_t rx)
{
    gw_kind_t kind = gw__cell_kind(c);
    gw__aside_t *a;

    if (kind == GW_KIND_GAUGE) {
        /* The latest by ts; ties: the last received. */
        a = gw__cell_aside(t, c);
        if (gw__cell_count(c) == 0 || ts >= a->ts) {
            a->sum = sum;
            a->ts = ts;
            a->rx = rx;
        }
    } else {
        tb_sum_add(TB_ASIDE(kind) ? &gw__cell_aside(t, c)->sum : &c->sum,
                   sum);
    }
    c->ck += 16;
}

/* A new empty cell of kind in *c, with its aside if the kind has one;
 * GW_ERR: memory ran out (nothing made). */
static int
tb_cell_init(gw__table_t *t, gw__cell_t *c, gw_kind_t kind)
{
    gw__aside_t *a;

    c->ck = (uint64_t) kind;
    if (!TB_ASIDE(kind)) {
        c->sum = 0;
        return GW_OK;
    }
    if (t->naside == t->capaside) {
        a = sl_array_grow(t->aside, &t->capaside, sizeof(*a));
        if (a == NULL)
            return GW_ERR;
        t->aside = a;
    }
    memset(&t->aside[t->naside], 0, sizeof(*t->aside));
    c->aside = t->naside++;
    return GW_OK;
}

/* Adds e (idx: its bin, gw_timing_index_of) to a timing or set cell that
 * tb_cell_reserve made room in: cannot fail. */
static inline void
tb_cell_add_x(gw__table_t *t, gw__cell_t *c, const gw__pevent_t *e,
              int32_t idx)
{
    gw__aside_t *a = gw__cell_aside(t, c);
    tb_set_t *s;

    if (gw__cell_kind(c) == GW_KIND_TIMING) {
        tb_sum_add(&a->sum, e->value);
        (void) gw_timing_add_index(a->x, e->value, idx, 1);
    } else {
        s = a->x;
        (void) gw_set_add_with(&s->s, e->member, &s->spare);
    }
    c->ck += 16;
}

/* The room a store of n bins needs for want more adds. */
static size_t
tb_bins_want(size_t n, size_t want)
{
    return n + want < GW_SKETCH_MAX_BINS ? n + want : GW_SKETCH_MAX_BINS + 1;
}

/* Room in timing or set cell c for the adds counted in its rpos and rneg
 * (then reset), so that tb_cell_add_x cannot fail. GW_ERR: out of memory
 * (the room made so far stays; it is only capacity). */
static int
tb_cell_reserve(gw__table_t *t, gw__cell_t *c)
{
    gw__aside_t *a = gw__cell_aside(t, c);
    size_t addp = a->rpos, addn = a->rneg, want;
    int timing = gw__cell_kind(c) == GW_KIND_TIMING;
    gw_timing_t *tm;
    tb_set_t *s;
    uint64_t *h;

    a->rpos = a->rneg = 0;
    if (a->x == NULL) {
        a->x = gw__calloc(1, timing ? sizeof(gw_timing_t) : sizeof(tb_set_t));
        if (a->x == NULL)
            return GW_ERR;
        t->nx++;
    }
    if (timing) {
        tm = a->x;
        if (addp > 0 && gw__bins_room(&tm->pos, &tm->cappos,
                                      tb_bins_want(tm->npos, addp)) != GW_OK)
            return GW_ERR;
        return addn == 0 ? GW_OK
                         : gw__bins_room(&tm->neg, &tm->capneg,
                                         tb_bins_want(tm->nneg, addn));
    }
    s = a->x;
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

/* ---- keys ----------------------------------------------------------- */

/* The bytes string s takes in a key (gw__key_str). */
static inline size_t
tb_str_size(gw__str_t s)
{
    return (s.n < 255 ? 1 : 3) + s.n;
}

static inline uint8_t *
tb_str_put(uint8_t *p, gw__str_t s)
{
    if (s.n < 255) {
        *p++ = (uint8_t) s.n;
    } else {
        *p++ = 255;
        *p++ = (uint8_t) (s.n & 255);
        *p++ = (uint8_t) (s.n >> 8);
    }
    memcpy(p, s.s, s.n);
    return p + s.n;
}

/* Whether the string at p of a key is s; *next: what follows it. */
static inline int
tb_str_is(const uint8_t *p, gw__str_t s, const uint8_t **next)
{
    gw__str_t k;

    *next = gw__key_str(p, &k);
    return k.n == s.n && gw__mem_eq(k.s, s.s, s.n);
}

/* The index of project p in t->projects, or -1. */
static inline long
tb_project_find(const gw__table_t *t, gw__str_t p)
{
    const gw__str_t *q;
    size_t i;

    if (t->lastproject < t->nprojects) {
        q = &t->projects[t->lastproject];
        if (q->n == p.n && gw__mem_eq(q->s, p.s, p.n))
            return (long) t->lastproject;
    }
    for (i = 0; i < t->nprojects; i++) {
        q = &t->projects[i];
        if (q->n == p.n && gw__mem_eq(q->s, p.s, p.n))
            return (long) i;
    }
    return -1;
}

/* Project p copied into t (a group key holds its index in two bytes); its
 * index, or -1 if memory ran out or 65,536 projects are in t. */
static long
tb_project_add(gw__table_t *t, gw__str_t p)
{
    gw__str_t *q;
    char *s;

    if (t->nprojects == 65536)
        return -1;
    if (t->nprojects == t->capprojects) {
        q = sl_array_grow(t->projects, &t->capprojects, sizeof(*q));
        if (q == NULL)
            return -1;
        t->projects = q;
    }
    s = gw__arena_bytes_alloc(&t->arena, p.n > 0 ? p.n : 1);
    if (s == NULL)
        return -1;
    memcpy(s, p.s, p.n);
    t->projects[t->nprojects].s = s;
    t->projects[t->nprojects].n = p.n;
    return (long) t->nprojects++;
}

static inline uint64_t
tb_group_hash(uint64_t pm_hash, int64_t minute)
{
    return gw__hash_mix(pm_hash ^
                        ((uint64_t) minute * UINT64_C(0x9e3779b97f4a7c15)));
}

static inline uint64_t
tb_filter_hash(gw__str_t name, gw__str_t value, uint32_t gi)
{
    uint64_t h = gw__hash_pair(name.s, name.n, value.s, value.n);

    return gw__hash_mix(h ^ ((uint64_t) gi * UINT64_C(0x9e3779b97f4a7c15)));
}

/* The hashes of group i and of filter cell i, made again from their keys
 * (the slots hold only indices) when the slots grow or shift. */
typedef uint64_t (*tb_hash_fn)(const gw__table_t *t, size_t i);

static uint64_t
tb_ghash(const gw__table_t *t, size_t i)
{
    const gw__group_t *g = &t->groups[i];
    gw__str_t p, m;

    gw__group_names(t, g, &p, &m);
    return tb_group_hash(gw__pm_hash(p.s, p.n, m.s, m.n),
                         (int64_t) g->minute * 60);
}

static uint64_t
tb_fhash(const gw__table_t *t, size_t i)
{
    const gw__fcell_t *c = &t->fcells[i];
    gw__str_t n, v;

    gw__fcell_names(c, &n, &v);
    return tb_filter_hash(n, v, c->group);
}

/* ---- slots: index + 1 of an entry, 0 empty; linear probing ---------- */

static inline size_t
tb_slot_free(const uint32_t *slots, size_t mask, uint64_t h)
{
    size_t j;

    for (j = (size_t) h & mask; slots[j] != 0; j = (j + 1) & mask)
        ;
    return j;
}

/* Doubles *slots (of n entries) GW_ERR: out of memory, and the old ones
 * stay. */
static int
tb_slots_grow(const gw__table_t *t, uint32_t **slots, size_t *mask, size_t n,
              tb_hash_fn hash)
{
    size_t cap = (*mask + 1) * 2, i;
    uint32_t *s = gw__calloc(cap, sizeof(*s));

    if (s == NULL)
        return GW_ERR;
    for (i = 0; i < n; i++)
        s[tb_slot_free(s, cap - 1, hash(t, i))] = (uint32_t) i + 1;
    free(*slots);
    *slots = s;
    *mask = cap - 1;
    return GW_OK;
}

/* Room for entry n of an array (*cap entries of stride bytes) and of its
 * slots, *j then the free slot for hash h: the array, perhaps moved; NULL
 * if memory ran out (what grew stays grown). */
static void *
tb_entry_room(const gw__table_t *t, void *entries, size_t n, size_t *cap,
              size_t stride, uint32_t **slots, size_t *mask, tb_hash_fn hash,
              uint64_t h, size_t *j)
{
    /* The slots first if they would pass half full. */
    if ((n + 1) * 2 > *mask + 1) {
        if (tb_slots_grow(t, slots, mask, n, hash) != GW_OK)
            return NULL;
        *j = tb_slot_free(*slots, *mask, h);
    }
    return n < *cap ? entries : sl_array_grow(entries, cap, stride);
}

/* Takes entry i (of hash h) out of the slots; later slots of its run move
 * back so that every other entry stays reachable from its first slot. */
static void
tb_slots_remove(const gw__table_t *t, uint32_t *slots, size_t mask,
                tb_hash_fn hash, uint64_t h, size_t i)
{
    size_t j, k, ideal;

    for (j = (size_t) h & mask; slots[j] != i + 1; j = (j + 1) & mask)
        ;
    slots[j] = 0;
    for (k = (j + 1) & mask; slots[k] != 0; k = (k + 1) & mask) {
        ideal = (size_t) hash(t, slots[k] - 1) & mask;
        /* Move k back to j if j lies on the way from its ideal slot. */
        if (((k - ideal) & mask) >= ((k - j) & mask)) {
            slots[j] = slots[k];
            slots[k] = 0;
            j = k;
        }
    }
}

/* ---- groups and filter series --------------------------------------- */

/* The index of the group (project pid, metric, minute) of hash h, or -1
 * with *empty the free slot where it would go; pid -1: a project t does
 * not have. */
static inline long
tb_group_probe(const gw__table_t *t, uint64_t h, long pid, gw__str_t metric,
               uint32_t minute, size_t *empty)
{
    const gw__group_t *g;
    const uint8_t *end;
    uint32_t s;
    size_t j;

    for (j = (size_t) h & t->gmask; (s = t->gslots[j]) != 0;
         j = (j + 1) & t->gmask) {
        g = &t->groups[s - 1];
        if (pid >= 0 && g->minute == minute &&
            gw__group_project(g) == (size_t) pid &&
            tb_str_is(g->key + 2, metric, &end))
            return (long) s - 1;
    }
    *empty = j;
    return -1;
}

/* Makes the group (project, metric, minute) of hash h, empty, for the free
 * slot j group_probe found; pid: the project's index, -1 if t has none
 * yet. Its index, or -1 if memory ran out (t keeps what it had; a project
 * or a key already copied stays until gw__table_undo). */
static long
tb_group_new(gw__table_t *t, uint64_t h, gw__str_t project, long pid,
             gw__str_t metric, int64_t minute, gw_kind_t kind, size_t j)
{
    gw__group_t *g;
    uint8_t *key;

    g = tb_entry_room(t, t->groups, t->ngroups, &t->capgroups,
                      sizeof(gw__group_t), &t->gslots, &t->gmask, tb_ghash, h,
                      &j);
    if (g == NULL)
        return -1;
    t->groups = g;
    if (pid < 0 && (pid = tb_project_add(t, project)) < 0)
        return -1;
    t->lastproject = (size_t) pid;
    key = gw__arena_bytes_alloc(&t->arena, 2 + tb_str_size(metric));
    g = &t->groups[t->ngroups];
    if (key == NULL || tb_cell_init(t, &g->cell, kind) != GW_OK)
        return -1;
    key[0] = (uint8_t) (pid & 255);
    key[1] = (uint8_t) (pid >> 8);
    (void) tb_str_put(key + 2, metric);
    g->key = key;
    g->minute = (uint32_t) (minute / 60);
    g->first = NONE;
    t->gslots[j] = (uint32_t) t->ngroups + 1;
    return (long) t->ngroups++;
}

/* The index of filter series f of group gi (of hash h), or -1 with *empty
 * the free slot where it would go. */
static inline long
tb_fcell_probe(const gw__table_t *t, uint32_t gi, const gw__pfilter_t *f,
               uint64_t h, size_t *empty)
{
    const gw__fcell_t *c;
    const uint8_t *next;
    uint32_t s;
    size_t j;

    for (j = (size_t) h & t->fmask; (s = t->fslots[j]) != 0;
         j = (j + 1) & t->fmask) {
        c = &t->fcells[s - 1];
        if (c->group == gi && tb_str_is(c->key, f->name, &next) &&
            tb_str_is(next, f->value, &next))
            return (long) s - 1;
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
    uint8_t *key;

    c = tb_entry_room(t, t->fcells, t->nfcells, &t->capfcells,
                      sizeof(gw__fcell_t), &t->fslots, &t->fmask, tb_fhash, h,
                      &j);
    if (c == NULL)
        return -1;
    t->fcells = c;
    key = gw__arena_bytes_alloc(&t->arena,
                                tb_str_size(f->name) + tb_str_size(f->value));
    c = &t->fcells[t->nfcells];
    if (key == NULL || tb_cell_init(t, &c->cell, kind) != GW_OK)
        return -1;
    (void) tb_str_put(tb_str_put(key, f->name), f->value);
    g = &t->groups[gi];
    c->key = key;
    c->group = gi;
    c->next = g->first;
    g->first = (uint32_t) t->nfcells;
    t->fslots[j] = (uint32_t) t->nfcells + 1;
    return (long) t->nfcells++;
}

void
gw__table_retype(gw__table_t *t, const gw__pevent_t *e,
                 const gw__pfilter_t *pf)
{
    gw__cell_t *c = &t->groups[e->group].cell;
    double sum;
    size_t k;

    for (k = 0; k <= e->nf; k++) {
        if (k > 0)
            c = &t->fcells[pf[e->f0 + k - 1].cell].cell;
        if (gw__cell_kind(c) == GW_KIND_TIMING) {
            /* An avg keeps its sum in the cell; its aside stays unused. */
            tb_cell_free(t, c);
            sum = gw__cell_aside(t, c)->sum;
            c->sum = sum;
            c->ck = (c->ck & ~(uint64_t) 15) | GW_KIND_AVG;
        }
    }
}

long
gw__table_find(const gw__table_t *t, uint64_t pm_hash, gw__str_t project,
               gw__str_t metric, int64_t minute, gw_kind_t *kind)
{
    size_t empty;
    long pid = tb_project_find(t, project), gi;

    if (pid < 0)
        return -1;
    gi = tb_group_probe(t, tb_group_hash(pm_hash, minute), pid, metric,
                        (uint32_t) (minute / 60), &empty);
    if (gi >= 0)
        *kind = gw__cell_kind(&t->groups[gi].cell);
    return gi;
}

void
gw__table_mark(const gw__table_t *t, gw__table_mark_t *m)
{
    m->ngroups = t->ngroups;
    m->nfcells = t->nfcells;
    m->naside = t->naside;
    m->nprojects = t->nprojects;
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
        tb_slots_remove(t, t->fslots, t->fmask, tb_fhash,
                        tb_fhash(t, t->nfcells), t->nfcells);
    }
    while (t->ngroups > m->ngroups) {
        g = &t->groups[--t->ngroups];
        tb_cell_free(t, &g->cell);
        tb_slots_remove(t, t->gslots, t->gmask, tb_ghash,
                        tb_ghash(t, t->ngroups), t->ngroups);
    }
    t->naside = m->naside;
    t->nprojects = m->nprojects;
    gw__arena_undo(&t->arena, &m->arena);
}

/* ---- adding events -------------------------------------------------- */

/* The steps of adding an event (for gw__table_make, gw__table_apply and
 * gw__table_add). */
static inline long
tb_group(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
         gw__str_t metric, int64_t minute, gw_kind_t kind)
{
    uint64_t h = tb_group_hash(pm_hash, minute);
    long pid = tb_project_find(t, project), gi;
    size_t j;

    if (pid >= 0)
        t->lastproject = (size_t) pid;
    gi = tb_group_probe(t, h, pid, metric, (uint32_t) (minute / 60), &j);
    return gi >= 0 ? gi
                   : tb_group_new(t, h, project, pid, metric, minute, kind, j);
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
        h = tb_filter_hash(f->name, f->value, gi);
        ci = tb_fcell_probe(t, gi, f, h, &j);
        if (ci < 0)
            ci = tb_fcell_new(t, gi, f, gw__cell_kind(&t->groups[group].cell),
                              h, j);
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

    tb_cell_add(t, &t->groups[group].cell, sum, ts, rx);
    for (i = 0; i < nfilters; i++)
        tb_cell_add(t, &t->fcells[filters[i].cell].cell, sum, ts, rx);
    t->events++;
}

/* The same for a timing or set event (its bin found once). */
static void
tb_add_x(gw__table_t *t, const gw__pevent_t *e, const gw__pfilter_t *filters)
{
    int32_t idx = e->action == GW_ACTION_TIMING ? gw_timing_index_of(e->value)
                                                : 0;
    size_t i;

    tb_cell_add_x(t, &t->groups[e->group].cell, e, idx);
    for (i = 0; i < e->nf; i++)
        tb_cell_add_x(t, &t->fcells[filters[i].cell].cell, e, idx);
    t->events++;
}

/* Counts e's adds to one of its cells (pass 1 of tb_reserve). */
static inline void
tb_count(gw__table_t *t, gw__cell_t *c, const gw__pevent_t *e)
{
    gw__aside_t *a = gw__cell_aside(t, c);

    if (gw__cell_kind(c) == GW_KIND_TIMING && e->value <= -GW_SKETCH_MIN_VALUE)
        a->rneg++;
    else
        a->rpos++;
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
    gw__aside_t *a;
    gw_kind_t kind;
    size_t i, k;
    int pass, rc = GW_OK;

    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < n; i++) {
            e = &ev[i];
            c = &t->groups[e->group].cell;
            kind = gw__cell_kind(c);
            if (kind != GW_KIND_TIMING && kind != GW_KIND_SET)
                continue;
            for (k = 0; k <= e->nf; k++) {
                if (k > 0)
                    c = &t->fcells[pf[e->f0 + k - 1].cell].cell;
                if (!TB_ASIDE(gw__cell_kind(c)))
                    continue; /* no room to make in a counter or avg */
                a = gw__cell_aside(t, c);
                if (pass == 0)
                    tb_count(t, c, e);
                else if ((a->rpos | a->rneg) != 0 &&
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
     * but what it copied (a project, a key, an aside), unused. */
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
