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
 * The batch is what the storage thread stores: the table expanded into
 * every configured period and merged with earlier tables. Its strings are
 * interned once (each string id is an index), and its deltas are a plain
 * gw_delta_t array a storage can read directly.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "ingest_int.h"

#define NONE UINT32_MAX

/* ---- memory --------------------------------------------------------- */

/* Allocations left to succeed before one fails (tests only, see
 * gw__ingest_alloc_fail_after); -1: none fails. A relaxed load per
 * allocation is all it costs when no test set it. */
static long alloc_fail_after = -1;

long
gw__ingest_alloc_fail_after(long n)
{
    return __atomic_exchange_n(&alloc_fail_after, n < 0 ? -1 : n,
                               __ATOMIC_RELAXED);
}

/* Whether this allocation is the one a test wants to fail. */
static int
alloc_fails(void)
{
    long n = __atomic_load_n(&alloc_fail_after, __ATOMIC_RELAXED);

    if (n < 0)
        return 0;
    __atomic_store_n(&alloc_fail_after, n - 1, __ATOMIC_RELAXED);
    return n == 0;
}

void *
gw__malloc(size_t n)
{
    return alloc_fails() ? NULL : malloc(n ? n : 1);
}

void *
gw__calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *
gw__realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : realloc(p, n ? n : 1);
}

static void
oom(size_t n)
{
    fprintf(stderr, "gottwall: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *
gw__xmalloc(size_t n)
{
    void *p = gw__malloc(n);

    if (p == NULL)
        oom(n);
    return p;
}

void *
gw__xcalloc(size_t n, size_t size)
{
    void *p = gw__calloc(n, size);

    if (p == NULL)
        oom(n * size);
    return p;
}

void *
gw__xrealloc(void *p, size_t n)
{
    void *q = gw__realloc(p, n);

    if (q == NULL)
        oom(n);
    return q;
}

struct gw__arena_chunk_s {
    gw__arena_chunk_t *next;
    size_t size;
    /* data follows, aligned like a double */
    double data[];
};

#define ARENA_CHUNK 65536

void
gw__arena_init(gw__arena_t *a)
{
    a->head = NULL;
    a->pos = NULL;
    a->left = 0;
}

void *
gw__arena_alloc(gw__arena_t *a, size_t n)
{
    gw__arena_chunk_t *c;
    size_t size;
    void *p;

    n = (n + 7) & ~(size_t) 7;
    if (n > a->left) {
        size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        c = gw__xmalloc(sizeof(*c) + size);
        c->size = size;
        if (size > ARENA_CHUNK && a->head != NULL) {
            /* A big one-off: keep the current chunk as the one to fill. */
            c->next = a->head->next;
            a->head->next = c;
            return c->data;
        }
        c->next = a->head;
        a->head = c;
        a->pos = (char *) c->data;
        a->left = size;
    }
    p = a->pos;
    a->pos += n;
    a->left -= n;
    return p;
}

char *
gw__arena_strndup(gw__arena_t *a, const char *s, size_t n)
{
    char *p = gw__arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
gw__arena_reset(gw__arena_t *a)
{
    gw__arena_chunk_t *c, *next;

    if (a->head == NULL)
        return;
    for (c = a->head->next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->head->next = NULL;
    a->pos = (char *) a->head->data;
    a->left = a->head->size;
}

void
gw__arena_free(gw__arena_t *a)
{
    gw__arena_chunk_t *c, *next;

    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    gw__arena_init(a);
}

/* ---- slots: (hash >> 32) << 32 | (index + 1); 0 is empty ------------- */

#define SLOT(h, i) (((h) & UINT64_C(0xffffffff00000000)) | ((uint64_t) (i) + 1))
#define SLOT_HASH_MATCH(s, h) \
    (((s) ^ (h)) <= UINT64_C(0xffffffff)) /* same upper 32 bits */
#define SLOT_INDEX(s) ((uint32_t) ((s) & UINT64_C(0xffffffff)) - 1)

/* A new slot array of cap (a power of two) entries, refilled from hashes. */
static uint64_t *
slots_rebuild(size_t cap, const void *entries, size_t n, size_t stride,
              size_t hash_offset)
{
    uint64_t *slots = gw__xcalloc(cap, sizeof(*slots));
    size_t mask = cap - 1;
    size_t i, j;
    uint64_t h;

    for (i = 0; i < n; i++) {
        memcpy(&h, (const char *) entries + i * stride + hash_offset,
               sizeof(h));
        for (j = (size_t) h & mask; slots[j] != 0; j = (j + 1) & mask)
            ;
        slots[j] = SLOT(h, i);
    }
    return slots;
}

/* Doubles a full slot array (*slots, *mask) and returns the empty slot
 * where an entry of hash h now goes. */
static size_t
slots_grow(uint64_t **slots, size_t *mask, const void *entries, size_t n,
           size_t stride, size_t hash_offset, uint64_t h)
{
    size_t cap = (*mask + 1) * 2, j;

    free(*slots);
    *slots = slots_rebuild(cap, entries, n, stride, hash_offset);
    *mask = cap - 1;
    for (j = (size_t) h & *mask; (*slots)[j] != 0; j = (j + 1) & *mask)
        ;
    return j;
}

static size_t
pow2_at_least(size_t n)
{
    size_t c = 16;

    while (c < n)
        c <<= 1;
    return c;
}

/* ---- the table ------------------------------------------------------ */

typedef struct gw__cell_s {
    gw_kind_t kind;
    double sum;
    int64_t count;
    double ts;
} gw__cell_t;

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
};

gw__table_t *
gw__table_new(size_t ngroups, size_t nfilters)
{
    gw__table_t *t = gw__xcalloc(1, sizeof(*t));
    size_t gcap = pow2_at_least(ngroups * 2);
    size_t fcap = pow2_at_least(nfilters * 2);

    gw__arena_init(&t->arena);
    t->capgroups = gcap / 2;
    t->groups = gw__xmalloc(t->capgroups * sizeof(*t->groups));
    t->gslots = gw__xcalloc(gcap, sizeof(*t->gslots));
    t->gmask = gcap - 1;
    t->capfcells = fcap / 2;
    t->fcells = gw__xmalloc(t->capfcells * sizeof(*t->fcells));
    t->fslots = gw__xcalloc(fcap, sizeof(*t->fslots));
    t->fmask = fcap - 1;
    return t;
}

void
gw__table_free(gw__table_t *t)
{
    if (t == NULL)
        return;
    gw__arena_free(&t->arena);
    free(t->groups);
    free(t->gslots);
    free(t->fcells);
    free(t->fslots);
    free(t);
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
    const gw__arena_chunk_t *c;
    size_t n;

    if (t == NULL)
        return 0;
    n = sizeof(*t);
    n += t->capgroups * sizeof(*t->groups);
    n += (t->gmask + 1) * sizeof(*t->gslots);
    n += t->capfcells * sizeof(*t->fcells);
    n += (t->fmask + 1) * sizeof(*t->fslots);
    for (c = t->arena.head; c != NULL; c = c->next)
        n += sizeof(*c) + c->size;
    return n;
}

size_t
gw__table_groups(const gw__table_t *t)
{
    return t ? t->ngroups : 0;
}

static inline void
cell_add(gw__cell_t *c, double sum, double ts)
{
    if (c->kind == GW_KIND_GAUGE) {
        /* The latest by ts; ties: the last received. */
        if (c->count == 0 || ts >= c->ts) {
            c->sum = sum;
            c->ts = ts;
        }
    } else {
        c->sum += sum;
    }
    c->count++;
}

static inline void
cell_init(gw__cell_t *c, gw_kind_t kind)
{
    c->kind = kind;
    c->sum = 0;
    c->count = 0;
    c->ts = 0;
}

/* The index of the group (project, metric, minute) of hash h, or -1 with
 * *empty the free slot where it would go. */
static inline long
group_probe(const gw__table_t *t, uint64_t h, gw__str_t project,
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

static gw__group_t *
table_group(gw__table_t *t, uint64_t h, gw__str_t project, gw__str_t metric,
            int64_t minute, gw_kind_t kind)
{
    size_t j;
    long gi = group_probe(t, h, project, metric, minute, &j);
    gw__group_t *g;

    if (gi >= 0)
        return &t->groups[gi];

    /* A new group: grow first if the slots would pass half full. */
    if ((t->ngroups + 1) * 2 > t->gmask + 1)
        j = slots_grow(&t->gslots, &t->gmask, t->groups, t->ngroups,
                       sizeof(gw__group_t), offsetof(gw__group_t, hash), h);
    if (t->ngroups == t->capgroups) {
        t->capgroups *= 2;
        t->groups = gw__xrealloc(t->groups,
                                 t->capgroups * sizeof(*t->groups));
    }
    g = &t->groups[t->ngroups];
    g->hash = h;
    g->project = gw__arena_strndup(&t->arena, project.s, project.n);
    g->metric = gw__arena_strndup(&t->arena, metric.s, metric.n);
    g->plen = (uint32_t) project.n;
    g->mlen = (uint32_t) metric.n;
    g->minute = minute;
    cell_init(&g->cell, kind);
    g->first = NONE;
    g->nf = 0;
    t->gslots[j] = SLOT(h, t->ngroups);
    t->ngroups++;
    return g;
}

static gw__fcell_t *
table_fcell(gw__table_t *t, uint32_t gi, const gw__pfilter_t *f,
            gw_kind_t kind)
{
    uint64_t h, s;
    size_t j;
    gw__fcell_t *c;
    gw__group_t *g;

    h = gw__hash_bytes(GW__HASH_INIT, f->name.s, f->name.n);
    h = gw__hash_sep(h);
    h = gw__hash_bytes(h, f->value.s, f->value.n);
    h = gw__hash_mix(h ^ ((uint64_t) gi * UINT64_C(0x9e3779b97f4a7c15)));

    for (j = (size_t) h & t->fmask; (s = t->fslots[j]) != 0;
         j = (j + 1) & t->fmask) {
        if (!SLOT_HASH_MATCH(s, h))
            continue;
        c = &t->fcells[SLOT_INDEX(s)];
        if (c->hash == h && c->group == gi && c->nlen == f->name.n &&
            c->vlen == f->value.n &&
            gw__mem_eq(c->name, f->name.s, f->name.n) &&
            gw__mem_eq(c->value, f->value.s, f->value.n))
            return c;
    }

    if ((t->nfcells + 1) * 2 > t->fmask + 1)
        j = slots_grow(&t->fslots, &t->fmask, t->fcells, t->nfcells,
                       sizeof(gw__fcell_t), offsetof(gw__fcell_t, hash), h);
    if (t->nfcells == t->capfcells) {
        t->capfcells *= 2;
        t->fcells = gw__xrealloc(t->fcells,
                                 t->capfcells * sizeof(*t->fcells));
    }
    g = &t->groups[gi];
    c = &t->fcells[t->nfcells];
    c->hash = h;
    c->group = gi;
    c->next = g->first;
    c->name = gw__arena_strndup(&t->arena, f->name.s, f->name.n);
    c->value = gw__arena_strndup(&t->arena, f->value.s, f->value.n);
    c->nlen = (uint32_t) f->name.n;
    c->vlen = (uint32_t) f->value.n;
    cell_init(&c->cell, kind);
    g->first = (uint32_t) t->nfcells;
    g->nf++;
    t->fslots[j] = SLOT(h, t->nfcells);
    t->nfcells++;
    return c;
}

static inline uint64_t
group_hash(uint64_t pm_hash, int64_t minute)
{
    return gw__hash_mix(pm_hash ^
                        ((uint64_t) minute * UINT64_C(0x9e3779b97f4a7c15)));
}

long
gw__table_find(const gw__table_t *t, uint64_t pm_hash, gw__str_t project,
               gw__str_t metric, int64_t minute, gw_kind_t *kind)
{
    size_t empty;
    long gi = group_probe(t, group_hash(pm_hash, minute), project, metric,
                          minute, &empty);

    if (gi >= 0)
        *kind = t->groups[gi].cell.kind;
    return gi;
}

void
gw__table_add_to(gw__table_t *t, size_t group, double sum, double ts,
                 const gw__pfilter_t *filters, size_t nfilters)
{
    gw__group_t *g = &t->groups[group];
    gw_kind_t kind = g->cell.kind;
    size_t i;

    cell_add(&g->cell, sum, ts);
    for (i = 0; i < nfilters; i++)
        cell_add(&table_fcell(t, (uint32_t) group, &filters[i], kind)->cell,
                 sum, ts);
    t->events++;
}

void
gw__table_add(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
              gw__str_t metric, int64_t minute, gw_kind_t kind, double sum,
              double ts, const gw__pfilter_t *filters, size_t nfilters)
{
    gw__group_t *g;

    g = table_group(t, group_hash(pm_hash, minute), project, metric, minute,
                    kind);
    gw__table_add_to(t, (size_t) (g - t->groups), sum, ts, filters,
                     nfilters);
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
};

gw__batch_t *
gw__batch_new(const char *id)
{
    gw__batch_t *b = gw__xcalloc(1, sizeof(*b));
    size_t n = strlen(id ? id : "");

    b->id = gw__xmalloc(n + 1);
    memcpy(b->id, id ? id : "", n + 1);
    gw__arena_init(&b->arena);
    b->sslots = gw__xcalloc(16, sizeof(*b->sslots));
    b->smask = 15;
    b->dslots = gw__xcalloc(16, sizeof(*b->dslots));
    b->dmask = 15;
    return b;
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
    free(b);
}

size_t
gw__batch_size(const gw__batch_t *b)
{
    return b->ndeltas;
}

uint64_t
gw__batch_events(const gw__batch_t *b)
{
    return b->events;
}

const gw_batch_t *
gw__batch_view(gw__batch_t *b)
{
    b->view.id = b->id;
    b->view.deltas = b->deltas;
    b->view.ndeltas = b->ndeltas;
    return &b->view;
}

static uint64_t
str_hash(const char *s, size_t n)
{
    return gw__hash_mix(gw__hash_bytes(GW__HASH_INIT, s, n));
}

/* The id of string s in b; NONE if absent and !add. */
static uint32_t
batch_str(gw__batch_t *b, const char *s, size_t n, uint64_t h, int add)
{
    size_t j;
    uint64_t sl;
    gw__istr_t *e;

    for (j = (size_t) h & b->smask; (sl = b->sslots[j]) != 0;
         j = (j + 1) & b->smask) {
        if (!SLOT_HASH_MATCH(sl, h))
            continue;
        e = &b->strs[SLOT_INDEX(sl)];
        if (e->hash == h && e->n == n && memcmp(e->s, s, n) == 0)
            return SLOT_INDEX(sl);
    }
    if (!add)
        return NONE;
    if ((b->nstrs + 1) * 2 > b->smask + 1) {
        size_t cap = (b->smask + 1) * 2;

        free(b->sslots);
        b->sslots = slots_rebuild(cap, b->strs, b->nstrs, sizeof(gw__istr_t),
                                  offsetof(gw__istr_t, hash));
        b->smask = cap - 1;
        for (j = (size_t) h & b->smask; b->sslots[j] != 0;
             j = (j + 1) & b->smask)
            ;
    }
    if (b->nstrs == b->capstrs) {
        b->capstrs = b->capstrs ? b->capstrs * 2 : 64;
        b->strs = gw__xrealloc(b->strs, b->capstrs * sizeof(*b->strs));
    }
    e = &b->strs[b->nstrs];
    e->hash = h;
    e->s = gw__arena_strndup(&b->arena, s, n);
    e->n = n;
    b->sslots[j] = SLOT(h, b->nstrs);
    return (uint32_t) b->nstrs++;
}

/* A key is six numbers: one multiply each (by different odd constants)
 * and the final mix, rather than FNV over its 28 bytes one at a time; the
 * storage thread hashes every key of every period at each flush. */
static void
dkey_hash(gw__dkey_t *k)
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
dkey_eq(const gw__dkey_t *a, const gw__dkey_t *b)
{
    return a->hash == b->hash && a->project == b->project &&
           a->metric == b->metric && a->fname == b->fname &&
           a->fvalue == b->fvalue && a->bucket == b->bucket &&
           a->period == b->period;
}

/* The delta of key k; NULL if absent and !add (a new one starts empty). */
static gw_delta_t *
batch_delta(gw__batch_t *b, const gw__dkey_t *k, gw_kind_t kind, int add)
{
    size_t j;
    uint64_t sl;
    gw_delta_t *d;

    for (j = (size_t) k->hash & b->dmask; (sl = b->dslots[j]) != 0;
         j = (j + 1) & b->dmask) {
        if (SLOT_HASH_MATCH(sl, k->hash) &&
            dkey_eq(&b->keys[SLOT_INDEX(sl)], k))
            return &b->deltas[SLOT_INDEX(sl)];
    }
    if (!add)
        return NULL;
    if ((b->ndeltas + 1) * 2 > b->dmask + 1) {
        size_t cap = (b->dmask + 1) * 2;

        free(b->dslots);
        b->dslots = slots_rebuild(cap, b->keys, b->ndeltas,
                                  sizeof(gw__dkey_t),
                                  offsetof(gw__dkey_t, hash));
        b->dmask = cap - 1;
        for (j = (size_t) k->hash & b->dmask; b->dslots[j] != 0;
             j = (j + 1) & b->dmask)
            ;
    }
    if (b->ndeltas == b->capdeltas) {
        b->capdeltas = b->capdeltas ? b->capdeltas * 2 : 64;
        b->deltas = gw__xrealloc(b->deltas,
                                 b->capdeltas * sizeof(*b->deltas));
        b->keys = gw__xrealloc(b->keys, b->capdeltas * sizeof(*b->keys));
    }
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
    b->dslots[j] = SLOT(k->hash, b->ndeltas);
    b->ndeltas++;
    return d;
}

static void
delta_merge(gw_delta_t *d, const gw__cell_t *c)
{
    if (d->kind == GW_KIND_GAUGE) {
        /* The newest ts; ties: the one merged later. */
        if (d->count == 0 || c->ts >= d->ts) {
            d->sum = c->sum;
            d->ts = c->ts;
        }
    } else {
        d->sum += c->sum;
    }
    d->count += c->count;
}

/* Counts the deltas of one series (string ids fn/fv, NONE for the total)
 * not yet in b, over the periods (buckets[i] in periods[i]). */
static size_t
series_missing(gw__batch_t *b, uint32_t pid, uint32_t mid, uint32_t fn,
               uint32_t fv, const int *periods, const int64_t *buckets,
               size_t nper)
{
    gw__dkey_t k;
    size_t missing = 0, i;

    k.project = pid;
    k.metric = mid;
    k.fname = fn;
    k.fvalue = fv;
    for (i = 0; i < nper; i++) {
        k.period = periods[i];
        k.bucket = buckets[i];
        dkey_hash(&k);
        if (batch_delta(b, &k, GW_KIND_COUNTER, 0) == NULL)
            missing++;
    }
    return missing;
}

/* Counts the deltas of group g (total and filters, over the periods) not
 * yet in b. A string b has never seen means all of its deltas are new. */
static size_t
group_missing(gw__batch_t *b, const gw__table_t *t, const gw__group_t *g,
              const int *periods, const int64_t *buckets, size_t nper,
              uint64_t ph, uint64_t mh)
{
    uint32_t pid, mid, fn, fv, ci;
    size_t missing;
    const gw__fcell_t *c;

    pid = batch_str(b, g->project, g->plen, ph, 0);
    mid = batch_str(b, g->metric, g->mlen, mh, 0);
    if (pid == NONE || mid == NONE)
        return (1 + (size_t) g->nf) * nper;
    missing = series_missing(b, pid, mid, NONE, NONE, periods, buckets, nper);
    for (ci = g->first; ci != NONE; ci = c->next) {
        c = &t->fcells[ci];
        fn = batch_str(b, c->name, c->nlen, str_hash(c->name, c->nlen), 0);
        fv = batch_str(b, c->value, c->vlen, str_hash(c->value, c->vlen), 0);
        if (fn == NONE || fv == NONE)
            missing += nper;
        else
            missing += series_missing(b, pid, mid, fn, fv, periods, buckets,
                                      nper);
    }
    return missing;
}

/* Merges cell (series fn/fv) into every period's delta. */
static void
series_merge(gw__batch_t *b, uint32_t pid, uint32_t mid, uint32_t fn,
             uint32_t fv, const gw__cell_t *cell, const int *periods,
             const int64_t *buckets, size_t nper)
{
    gw__dkey_t k;
    size_t i;

    k.project = pid;
    k.metric = mid;
    k.fname = fn;
    k.fvalue = fv;
    for (i = 0; i < nper; i++) {
        k.period = periods[i];
        k.bucket = buckets[i];
        dkey_hash(&k);
        delta_merge(batch_delta(b, &k, cell->kind, 1), cell);
    }
}

void
gw__batch_add_table(gw__batch_t *b, const gw__table_t *t, unsigned periods,
                    size_t max_series, uint64_t *dropped_events)
{
    int plist[GW_PERIOD_COUNT];
    int64_t buckets[GW_PERIOD_COUNT];
    size_t nper = 0, gi, i, per_group;
    uint64_t dropped = 0, ph, mh;
    uint32_t pid, mid, ci;
    const gw__group_t *g;
    const gw__fcell_t *c;
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        if (periods & (1u << p))
            plist[nper++] = p;

    for (gi = 0; t != NULL && gi < t->ngroups; gi++) {
        g = &t->groups[gi];
        for (i = 0; i < nper; i++)
            buckets[i] = gw__bucket_start((gw_period_t) plist[i], g->minute);
        ph = str_hash(g->project, g->plen);
        mh = str_hash(g->metric, g->mlen);
        per_group = (1 + (size_t) g->nf) * nper;
        if (max_series != 0 && b->ndeltas + per_group > max_series &&
            b->ndeltas + group_missing(b, t, g, plist, buckets, nper, ph, mh) >
                max_series) {
            /* All of the group's series, or none: its events are lost. */
            dropped += (uint64_t) g->cell.count;
            continue;
        }
        pid = batch_str(b, g->project, g->plen, ph, 1);
        mid = batch_str(b, g->metric, g->mlen, mh, 1);
        series_merge(b, pid, mid, NONE, NONE, &g->cell, plist, buckets, nper);
        for (ci = g->first; ci != NONE; ci = c->next) {
            c = &t->fcells[ci];
            series_merge(b, pid, mid,
                         batch_str(b, c->name, c->nlen,
                                   str_hash(c->name, c->nlen), 1),
                         batch_str(b, c->value, c->vlen,
                                   str_hash(c->value, c->vlen), 1),
                         &c->cell, plist, buckets, nper);
        }
        b->events += (uint64_t) g->cell.count;
    }
    if (dropped_events != NULL)
        *dropped_events = dropped;
}
