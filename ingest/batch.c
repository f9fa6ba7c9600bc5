/*
 * ingest/batch.c: the batch of deltas (DESIGN §3).
 *
 * The batch is what the storage thread stores: the table expanded into
 * every configured period and merged with earlier tables. Its strings are
 * interned once (each string id is an index), and its deltas are a plain
 * gw_delta_t array a storage can read directly; the timing and set
 * deltas' sketches are in the parallel array data (gw_batch_t.data). It
 * merges one group at a time the way the table adds an event (its deltas
 * made, then added), so that a failed allocation drops a group whole (see
 * gw__batch_add_table).
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
#include "table_int.h"



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
    uint64_t rx; /* a gauge's: the receipt time of its value (not key) */
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
    /* First: it reads each delta's kind to free its sketch. */
    tb_data_free(b);
    free(b->id);
    gw__arena_free(&b->arena);
    free(b->strs);
    free(b->sslots);
    free(b->deltas);
    free(b->keys);
    free(b->dslots);
    free(b->gidx);
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
 * and the final mix, rather than a hash over its 28 bytes; the storage
 * thread hashes every key of every period at each flush. The process's
 * key goes in before the mix, so where a bucket (from an event's ts)
 * falls cannot be worked out from outside. */
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
    k->hash = gw__hash_mix(h ^ gw__hash_key.k0);
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
    b->keys[b->ndeltas].rx = 0;
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
tb_delta_merge(gw_delta_t *d, gw__dkey_t *k, const gw__table_t *t,
               const gw__cell_t *c)
{
    const gw__aside_t *a;

    if (d->kind == GW_KIND_GAUGE) {
        /* The newest ts; ties: the one received last, whichever ingest
         * loop's table it came in (and of equal receipt times, the one
         * merged later). */
        a = gw__cell_aside(t, c);
        if (d->count == 0 || a->ts > d->ts
            || (a->ts == d->ts && a->rx >= k->rx)) {
            d->sum = a->sum;
            d->ts = a->ts;
            k->rx = a->rx;
        }
    } else {
        d->sum += gw__cell_sum(t, c);
        if (isinf(d->sum))
            d->sum = gw__table_saturate(d->sum);
    }
    d->count += (int64_t) gw__cell_count(c);
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

/* The filter series under group g of t. */
static size_t
tb_group_filters(const gw__table_t *t, const gw__group_t *g)
{
    size_t n = 0;
    uint32_t ci;

    for (ci = g->first; ci != NONE; ci = t->fcells[ci].next)
        n++;
    return n;
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
    gw_kind_t kind = gw__cell_kind(cell);
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
        /* Every cell of a group has its kind (a retyped one, all of
         * them); a cell without an aside merges as empty all the same. */
        b->stage[k] = tb_obj_merged(kind,
                                    tb_data_obj(&b->data[b->gidx[k]], kind),
                                    TB_ASIDE(gw__cell_kind(cell))
                                        ? gw__cell_aside(t, cell)->x
                                        : NULL);
        if (b->stage[k] == NULL) {
            while (k-- > 0)
                tb_obj_free(kind, b->stage[k]);
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
    size_t need = (1 + tb_group_filters(t, g)) * nper, mark = b->ndeltas;
    size_t k = 0;
    uint32_t pid, mid, fn, fv, ci;
    gw_kind_t kind = gw__cell_kind(&g->cell);
    const gw__fcell_t *c;
    gw__str_t p, m, n, v;
    uint32_t *gidx;

    if (need > b->capgidx) {
        gidx = gw__realloc(b->gidx, need * sizeof(*gidx));
        if (gidx == NULL)
            return GW_ERR;
        b->gidx = gidx;
        b->capgidx = need;
    }
    gw__group_names(t, g, &p, &m);
    pid = tb_batch_str(b, p.s, p.n, ph);
    mid = pid != NONE ? tb_batch_str(b, m.s, m.n, mh) : NONE;
    if (mid == NONE || tb_series_make(b, pid, mid, NONE, NONE, kind, periods,
                                      buckets, nper, &k) != GW_OK)
        goto undo;
    for (ci = g->first; ci != NONE; ci = c->next) {
        c = &t->fcells[ci];
        gw__fcell_names(c, &n, &v);
        fn = tb_batch_str(b, n.s, n.n, gw__hash_str(n.s, n.n));
        fv = fn != NONE ? tb_batch_str(b, v.s, v.n, gw__hash_str(v.s, v.n))
                        : NONE;
        if (fv == NONE ||
            tb_series_make(b, pid, mid, fn, fv, gw__cell_kind(&c->cell),
                           periods, buckets, nper, &k) != GW_OK)
            goto undo;
    }
    if ((kind == GW_KIND_TIMING || kind == GW_KIND_SET) &&
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
    gw_kind_t kind = gw__cell_kind(&g->cell);
    const gw__fcell_t *c;
    uint32_t ci;
    size_t i;

    for (i = 0; i < nper; i++, x++)
        tb_delta_merge(&b->deltas[*x], &b->keys[*x], t, &g->cell);
    for (ci = g->first; ci != NONE; ci = c->next) {
        c = &t->fcells[ci];
        for (i = 0; i < nper; i++, x++)
            tb_delta_merge(&b->deltas[*x], &b->keys[*x], t, &c->cell);
    }
    b->events += gw__cell_count(&g->cell);
    if (kind != GW_KIND_TIMING && kind != GW_KIND_SET)
        return;
    /* The objects group_make merged take the place of the old ones. */
    for (i = 0; i < (size_t) (x - b->gidx); i++) {
        gw_delta_data_t *d = &b->data[b->gidx[i]];

        tb_obj_free(kind, tb_data_obj(d, kind));
        if (kind == GW_KIND_TIMING)
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
    gw__str_t pn, mn;
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
                                             (int64_t) g->minute * 60);

            if (b->have_cuts && start < b->cuts[plist[i]]) {
                b->skipped[plist[i]] += 1 + (uint64_t) tb_group_filters(t, g);
                continue;
            }
            keep[nkeep] = plist[i];
            buckets[nkeep++] = start;
        }
        gw__group_names(t, g, &pn, &mn);
        ph = gw__hash_str(pn.s, pn.n);
        mh = gw__hash_str(mn.s, mn.n);
        if (tb_group_make(b, t, g, keep, buckets, nkeep, ph, mh) != GW_OK) {
            nomem += gw__cell_count(&g->cell);
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
