/*
 * examples/storage_csv/index.c: the csv storage's in-memory index (see
 * index.h).
 *
 * A series (project, metric, filter name and value, period) keeps its cells
 * in an array sorted by bucket, so a query is a binary search and a walk.
 * Metadata keeps one entry per metric and per (metric, filter, value), in
 * the order first seen, per project. Keys of the hash tables are the parts
 * of the name joined by NUL bytes, each part tagged 'S' (a string) or 'N'
 * (none), so that no two different names share a key and the total series
 * (no filter) differs from a filter named "".
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <gottwall/hash.h>

#include "index.h"

#define IX_IDS_PER_GENERATION 1024

typedef struct ix_cell_s {
    int64_t bucket;
    double sum;
    int64_t count;
    double ts;
} ix_cell_t;

typedef struct ix_series_s {
    ix_cell_t *cells; /* sorted by bucket */
    size_t n, cap;
} ix_series_t;

typedef struct ix_meta_s {
    char *metric;
    char *filter_name;  /* NULL for the metric itself */
    char *filter_value; /* NULL for the metric itself */
    gw_kind_t kind;
} ix_meta_t;

typedef struct ix_project_s {
    ix_meta_t **v;
    size_t n, cap;
} ix_project_t;

typedef struct ix_doc_s {
    size_t len;
    char data[]; /* len bytes */
} ix_doc_t;

/* ---- keys ---- */

typedef struct ix_key_s {
    char *p;
    size_t len, cap;
    int failed;
} ix_key_t;

static void
ix_key_part(ix_key_t *k, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (k->len + n + 2 > k->cap) {
        size_t cap = (k->len + n + 2) * 2;
        char *p = realloc(k->p, cap);

        if (p == NULL) {
            k->failed = 1;
            return;
        }
        k->p = p;
        k->cap = cap;
    }
    k->p[k->len++] = s != NULL ? 'S' : 'N';
    if (n > 0)
        memcpy(k->p + k->len, s, n);
    k->len += n;
    k->p[k->len++] = '\0';
}

/* ---- the hash table ---- */

/* Keyed (gottwall/hash.h) with 128 random bits drawn by the first
 * ix_init: metric names come from whoever sends events, and with an
 * unkeyed hash they could pick names that all fall into one run of slots
 * (docs/security.md, "Hash flooding"). */
static gw_hash_key_t ix_key;

static uint64_t
ix_hash(const char *key, size_t len)
{
    return gw_hash_bytes(&ix_key, key, len);
}

static ix_slot_t *
ix_find(const ix_map_t *m, const char *key, size_t len, uint64_t h)
{
    size_t i;

    if (m->cap == 0)
        return NULL;
    for (i = (size_t) h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        ix_slot_t *s = &m->slots[i];

        if (s->key == NULL)
            return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static int
ix_grow(ix_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64, i;
    ix_slot_t *old = m->slots, *slots = calloc(cap, sizeof(*slots));
    ix_map_t bigger;

    if (slots == NULL)
        return GW_ERR;
    bigger.slots = slots;
    bigger.cap = cap;
    bigger.n = m->n;
    for (i = 0; i < m->cap; i++)
        if (old[i].key != NULL)
            *ix_find(&bigger, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
    *m = bigger;
    return GW_OK;
}

/* The value stored under key, or NULL. */
static void *
ix_get(const ix_map_t *m, const char *key, size_t len)
{
    ix_slot_t *s = ix_find(m, key, len, ix_hash(key, len));

    return s != NULL && s->key != NULL ? s->val : NULL;
}

/* The slot of key, added (with val NULL) if missing; NULL when out of
 * memory. */
static ix_slot_t *
ix_put(ix_map_t *m, const char *key, size_t len)
{
    uint64_t h = ix_hash(key, len);
    ix_slot_t *s;

    if ((m->n + 1) * 4 > m->cap * 3 && ix_grow(m) != GW_OK)
        return NULL;
    s = ix_find(m, key, len, h);
    if (s->key == NULL) {
        s->key = malloc(len ? len : 1);
        if (s->key == NULL)
            return NULL;
        memcpy(s->key, key, len);
        s->len = len;
        s->hash = h;
        s->val = NULL;
        m->n++;
    }
    return s;
}

static void
ix_map_free(ix_map_t *m, void (*free_val)(void *))
{
    size_t i;

    for (i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL)
            continue;
        free(m->slots[i].key);
        if (free_val != NULL)
            free_val(m->slots[i].val);
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- the index ---- */

void
ix_init(ix_index_t *ix)
{
    memset(ix, 0, sizeof(*ix));
    if ((ix_key.k0 | ix_key.k1) == 0 &&
        getrandom(&ix_key, sizeof(ix_key), 0) != (ssize_t) sizeof(ix_key)) {
        ix_key.k0 = (uint64_t) time(NULL) * 0x9e3779b97f4a7c15ULL;
        ix_key.k1 = (uint64_t) (uintptr_t) ix;
    }
}

static void
ix_series_free(void *p)
{
    ix_series_t *se = p;

    free(se->cells);
    free(se);
}

static void
ix_project_free(void *p)
{
    ix_project_t *pr = p;
    size_t i;

    for (i = 0; i < pr->n; i++) {
        free(pr->v[i]->metric);
        free(pr->v[i]->filter_name);
        free(pr->v[i]->filter_value);
        free(pr->v[i]);
    }
    free(pr->v);
    free(pr);
}

void
ix_free(ix_index_t *ix)
{
    ix_map_free(&ix->series, ix_series_free);
    ix_map_free(&ix->meta, NULL); /* the projects own the entries */
    ix_map_free(&ix->projects, ix_project_free);
    ix_map_free(&ix->docs, free);
    ix_map_free(&ix->ids[0], NULL);
    ix_map_free(&ix->ids[1], NULL);
}

static char *
ix_strdup(const char *s)
{
    char *c;

    if (s == NULL)
        return NULL;
    c = malloc(strlen(s) + 1);
    if (c != NULL)
        strcpy(c, s);
    return c;
}

/* Records (metric, filter, value) in the project's metadata once. */
static int
ix_note_meta_one(ix_index_t *ix, const gw_delta_t *d)
{
    ix_key_t k = {NULL, 0, 0, 0};
    ix_slot_t *s, *ps;
    ix_project_t *pr;
    ix_meta_t *m;

    ix_key_part(&k, d->project);
    ix_key_part(&k, d->metric);
    ix_key_part(&k, d->filter_name);
    ix_key_part(&k, d->filter_value);
    if (k.failed || (s = ix_put(&ix->meta, k.p, k.len)) == NULL) {
        free(k.p);
        return GW_ERR;
    }
    free(k.p);
    if (s->val != NULL)
        return GW_OK;
    ps = ix_put(&ix->projects, d->project, strlen(d->project));
    if (ps == NULL)
        return GW_ERR;
    if (ps->val == NULL && (ps->val = calloc(1, sizeof(ix_project_t))) == NULL)
        return GW_ERR;
    pr = ps->val;
    if (pr->n == pr->cap) {
        size_t cap = pr->cap ? pr->cap * 2 : 16;
        ix_meta_t **v = realloc(pr->v, cap * sizeof(*v));

        if (v == NULL)
            return GW_ERR;
        pr->v = v;
        pr->cap = cap;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return GW_ERR;
    m->metric = ix_strdup(d->metric);
    m->filter_name = ix_strdup(d->filter_name);
    m->filter_value = ix_strdup(d->filter_value);
    m->kind = d->kind;
    pr->v[pr->n++] = m;
    s->val = m;
    return GW_OK;
}

/* Records the delta's metric, and its filter value if it has one: a
 * metric seen only through its filters is still a metric. */
static int
ix_note_meta(ix_index_t *ix, const gw_delta_t *d)
{
    gw_delta_t total = *d;

    if (d->filter_name == NULL)
        return ix_note_meta_one(ix, d);
    total.filter_name = NULL;
    total.filter_value = NULL;
    if (ix_note_meta_one(ix, &total) != GW_OK)
        return GW_ERR;
    return ix_note_meta_one(ix, d);
}

/* The key of a series: project, metric, filter name and value, period. */
static int
ix_series_key(ix_key_t *k, const char *project, const char *metric,
              const char *fname, const char *fvalue, gw_period_t period)
{
    ix_key_part(k, project);
    ix_key_part(k, metric);
    ix_key_part(k, fname);
    ix_key_part(k, fvalue);
    ix_key_part(k, gw_period_name(period));
    return k->failed ? GW_ERR : GW_OK;
}

/* The index of the first cell with bucket >= b. */
static size_t
ix_lower_bound(const ix_series_t *se, int64_t b)
{
    size_t lo = 0, hi = se->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (se->cells[mid].bucket < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int
ix_apply(ix_index_t *ix, const gw_delta_t *d)
{
    ix_key_t k = {NULL, 0, 0, 0};
    ix_slot_t *s;
    ix_series_t *se;
    ix_cell_t *c;
    size_t at;

    if (ix_series_key(&k, d->project, d->metric, d->filter_name,
                      d->filter_value, d->period) != GW_OK ||
        (s = ix_put(&ix->series, k.p, k.len)) == NULL) {
        free(k.p);
        return GW_ERR;
    }
    free(k.p);
    if (s->val == NULL && (s->val = calloc(1, sizeof(ix_series_t))) == NULL)
        return GW_ERR;
    se = s->val;
    at = ix_lower_bound(se, d->bucket);
    if (at == se->n || se->cells[at].bucket != d->bucket) {
        if (se->n == se->cap) {
            size_t cap = se->cap ? se->cap * 2 : 8;
            ix_cell_t *cells = realloc(se->cells, cap * sizeof(*cells));

            if (cells == NULL)
                return GW_ERR;
            se->cells = cells;
            se->cap = cap;
        }
        memmove(se->cells + at + 1, se->cells + at,
                (se->n - at) * sizeof(*se->cells));
        se->n++;
        c = &se->cells[at];
        memset(c, 0, sizeof(*c));
        c->bucket = d->bucket;
        if (d->kind == GW_KIND_GAUGE) {
            c->sum = d->sum;
            c->count = d->count;
            c->ts = d->ts;
            return ix_note_meta(ix, d);
        }
    }
    c = &se->cells[at];
    switch (d->kind) {
    case GW_KIND_GAUGE:
        if (d->ts >= c->ts) { /* ties: the last received wins */
            c->sum = d->sum;
            c->ts = d->ts;
        }
        c->count += d->count;
        break;
    case GW_KIND_AVG:
    case GW_KIND_COUNTER:
    default:
        c->sum = gw_sum_add(c->sum, d->sum, &ix->saturated);
        c->count += d->count;
        break;
    }
    return ix_note_meta(ix, d);
}

void
ix_query(ix_index_t *ix, const gw_query_t *q, gw_point_fn emit, void *arg)
{
    ix_key_t k = {NULL, 0, 0, 0};
    ix_series_t *se = NULL;
    size_t i;

    if (ix_series_key(&k, q->project, q->metric, q->filter_name,
                      q->filter_value, q->period) == GW_OK)
        se = ix_get(&ix->series, k.p, k.len);
    free(k.p);
    if (se == NULL)
        return;
    for (i = ix_lower_bound(se, q->from);
         i < se->n && se->cells[i].bucket <= q->to; i++) {
        gw_point_t p;

        p.bucket = se->cells[i].bucket;
        p.sum = se->cells[i].sum;
        p.count = se->cells[i].count;
        p.ts = se->cells[i].ts;
        emit(arg, &p);
    }
}

void
ix_metadata(ix_index_t *ix, const char *project, gw_meta_fn emit, void *arg)
{
    ix_project_t *pr = ix_get(&ix->projects, project, strlen(project));
    size_t i;

    for (i = 0; pr != NULL && i < pr->n; i++) {
        gw_meta_t m;

        m.metric = pr->v[i]->metric;
        m.kind = pr->v[i]->kind;
        m.filter_name = pr->v[i]->filter_name;
        m.filter_value = pr->v[i]->filter_value;
        emit(arg, &m);
    }
}

int
ix_doc_put(ix_index_t *ix, const char *ns, const char *id, const char *data,
           size_t len)
{
    ix_key_t k = {NULL, 0, 0, 0};
    ix_slot_t *s;
    ix_doc_t *doc = malloc(sizeof(*doc) + len);

    ix_key_part(&k, ns);
    ix_key_part(&k, id);
    if (doc == NULL || k.failed ||
        (s = ix_put(&ix->docs, k.p, k.len)) == NULL) {
        free(doc);
        free(k.p);
        return GW_ERR;
    }
    free(k.p);
    doc->len = len;
    if (len > 0)
        memcpy(doc->data, data, len);
    free(s->val);
    s->val = doc;
    return GW_OK;
}

void
ix_doc_get(ix_index_t *ix, const char *ns, const char *id, gw_doc_fn emit,
           void *arg)
{
    ix_key_t k = {NULL, 0, 0, 0};
    ix_doc_t *doc = NULL;

    ix_key_part(&k, ns);
    ix_key_part(&k, id);
    if (!k.failed)
        doc = ix_get(&ix->docs, k.p, k.len);
    free(k.p);
    if (doc != NULL)
        emit(arg, doc->data, doc->len);
}

int
ix_seen(ix_index_t *ix, const char *id)
{
    size_t len = strlen(id);

    return ix_get(&ix->ids[0], id, len) != NULL ||
           ix_get(&ix->ids[1], id, len) != NULL;
}

int
ix_remember(ix_index_t *ix, const char *id)
{
    ix_slot_t *s;

    if (ix->ids[0].n >= IX_IDS_PER_GENERATION) {
        ix_map_free(&ix->ids[1], NULL);
        ix->ids[1] = ix->ids[0];
        memset(&ix->ids[0], 0, sizeof(ix->ids[0]));
    }
    s = ix_put(&ix->ids[0], id, strlen(id));
    if (s == NULL)
        return GW_ERR;
    s->val = ix; /* any non-NULL value: present */
    return GW_OK;
}
