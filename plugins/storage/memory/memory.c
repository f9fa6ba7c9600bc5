/*
 * plugins/storage/memory/memory.c: the in-process storage (SPEC §6).
 *
 * Keeps every cell in memory (see memory.h for the layout) and survives a
 * restart through a snapshot file (snapshot.c): loaded at create, started
 * from store() once SNAPSHOT_INTERVAL seconds have passed since the last one
 * began (the storage thread has no timer of its own; it copies the store and
 * a thread of the snapshot's own writes it) and written at destroy. The ids of
 * the last MS_BATCH_IDS batches are remembered so a retried batch is applied
 * once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gottwall/plugin.h>

#include "memory.h"

static const gw_config_key_t ms_keys[] = {
    GW_CONFIG_KEY("PATH", GW_CONFIG_STRING, "gottwall.snapshot", ms_state_t,
                  path, "snapshot file; \"\" keeps nothing across restarts"),
    GW_CONFIG_KEY_RANGE("SNAPSHOT_INTERVAL", GW_CONFIG_INT, "60", ms_state_t,
                        snapshot_interval,
                        "seconds between snapshots (also written at stop)",
                        0, 86400 * 365),
    GW_CONFIG_END};

static double
ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
ms_has_path(const ms_state_t *s)
{
    return s->path != NULL && s->path[0] != '\0';
}

static void
ms_project_free(void *p)
{
    ms_project_t *proj = p;
    size_t i, j;

    for (i = 0; i < proj->metrics.count; i++) {
        ms_metric_t *m = proj->metrics.entries[i].value;

        for (j = 0; m != NULL && j < m->series.count; j++) {
            ms_series_t *se = m->series.entries[j].value;
            int k;

            for (k = 0; se != NULL && k < GW_PERIOD_COUNT; k++) {
                ms_cells_t *c = &se->periods[k];
                size_t x;

                for (x = 0; ms_kind_sketch(se->kind) && x < c->n; x++)
                    ms_cell_free_sketch(&c->v[x], se->kind);
                free(c->v - c->off);
            }
            free(se);
        }
        if (m != NULL)
            mm_map_free(&m->series, NULL);
        free(m);
    }
    mm_map_free(&proj->metrics, NULL);
    free(proj);
}

static void
ms_free(ms_state_t *s)
{
    size_t i;
    int ok;

    ms_snapshot_finish(s, 1, &ok); /* its thread is done with nothing of s */
    mm_map_free(&s->projects, ms_project_free);
    mm_map_free(&s->docs, free);
    ms_nonces_free(&s->nonces);
    free(s->prep);
    for (i = 0; i < MS_BATCH_IDS; i++)
        free(s->batch_ids[i]);
    free(s);
}

ms_series_t *
ms_series_get(ms_state_t *s, const char *project, const char *metric,
              gw_kind_t kind, const char *fname, const char *fvalue,
              int create)
{
    ms_project_t *proj;
    ms_metric_t *m;
    ms_series_t *se;
    mm_entry_t *e;
    char stack[1024], *key = stack;
    size_t nl = 0, vl = 0, keylen = 0;
    int created;

    if (!create) {
        proj = mm_map_get(&s->projects, project, strlen(project));
        m = proj ? mm_map_get(&proj->metrics, metric, strlen(metric)) : NULL;
        if (m == NULL)
            return NULL;
    } else {
        e = mm_map_upsert(&s->projects, project, strlen(project), &created);
        if (e == NULL)
            return NULL;
        if (created) {
            proj = calloc(1, sizeof(*proj));
            if (proj == NULL)
                return NULL; /* the entry stays with a NULL value */
            proj->name = e->key;
            e->value = proj;
        }
        if ((proj = e->value) == NULL)
            return NULL;
        e = mm_map_upsert(&proj->metrics, metric, strlen(metric), &created);
        if (e == NULL)
            return NULL;
        if (created) {
            m = calloc(1, sizeof(*m));
            if (m == NULL)
                return NULL;
            m->name = e->key;
            m->kind = kind;
            e->value = m;
        }
        if ((m = e->value) == NULL)
            return NULL;
    }

    if (fname != NULL && fvalue != NULL) {
        nl = strlen(fname);
        vl = strlen(fvalue);
        keylen = nl + 1 + vl;
        if (keylen > sizeof(stack) && (key = malloc(keylen)) == NULL)
            return NULL;
        memcpy(key, fname, nl);
        key[nl] = '\0';
        memcpy(key + nl + 1, fvalue, vl);
    }
    if (!create) {
        se = mm_map_get(&m->series, key, keylen);
    } else {
        se = NULL;
        e = mm_map_upsert(&m->series, key, keylen, &created);
        if (e != NULL && created && (se = calloc(1, sizeof(*se))) != NULL) {
            se->kind = m->kind;
            if (keylen > 0) {
                se->fname = e->key;
                se->fvalue = e->key + nl + 1;
            }
            e->value = se;
        }
        if (e != NULL)
            se = e->value;
    }
    if (key != stack)
        free(key);
    return se;
}

/* Index of the first cell with bucket >= b. */
static size_t
ms_lower_bound(const ms_cells_t *c, int64_t b)
{
    size_t lo = 0, hi = c->n;

    /* Appending the newest bucket is the common case. */
    if (c->n > 0 && c->v[c->n - 1].bucket < b)
        return c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (c->v[mid].bucket < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ms_cell_t *
ms_cell_get(ms_cells_t *c, int64_t bucket, int create)
{
    size_t i = ms_lower_bound(c, bucket);

    if (i < c->n && c->v[i].bucket == bucket)
        return &c->v[i];
    if (!create)
        return NULL;
    if (c->off + c->n == c->cap && c->off > 0 && c->off >= c->cap / 4) {
        /* A quarter of it or more expired: move the live cells to the
         * start rather than grow (at most 3 cells moved per cell added,
         * and a series whose retention is reached stays at its size). */
        memmove(c->v - c->off, c->v, c->n * sizeof(*c->v));
        c->v -= c->off;
        c->off = 0;
    }
    if (c->off + c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        ms_cell_t *v = realloc(c->v - c->off, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        c->v = v + c->off;
        c->cap = cap;
    }
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
    c->n++;
    memset(&c->v[i], 0, sizeof(c->v[i]));
    c->v[i].bucket = bucket;
    c->v[i].u.ts = -INFINITY;
    return &c->v[i];
}

void
ms_cell_remove(ms_cells_t *c, int64_t bucket)
{
    size_t i = ms_lower_bound(c, bucket);

    if (i < c->n && c->v[i].bucket == bucket) {
        memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof(*c->v));
        c->n--;
    }
}

int
ms_doc_set(ms_state_t *s, const char *ns, size_t nslen, const char *id,
           size_t idlen, const char *data, size_t len)
{
    char *key = malloc(nslen + 1 + idlen);
    ms_doc_t *doc = malloc(sizeof(*doc) + len + 1);
    mm_entry_t *e = NULL;
    int created;

    if (key != NULL && doc != NULL) {
        memcpy(key, ns, nslen);
        key[nslen] = '\0';
        memcpy(key + nslen + 1, id, idlen);
        e = mm_map_upsert(&s->docs, key, nslen + 1 + idlen, &created);
    }
    free(key);
    if (e == NULL) {
        free(doc);
        return GW_ERR;
    }
    doc->len = len;
    memcpy(doc->data, data, len);
    doc->data[len] = '\0';
    free(e->value);
    e->value = doc;
    return GW_OK;
}

static int
ms_batch_seen(const ms_state_t *s, const char *id)
{
    size_t i;

    for (i = 0; i < MS_BATCH_IDS; i++)
        if (s->batch_ids[i] != NULL && strcmp(s->batch_ids[i], id) == 0)
            return 1;
    return 0;
}

void
ms_batch_keep(ms_state_t *s, char *copy)
{
    free(s->batch_ids[s->batch_next]);
    s->batch_ids[s->batch_next] = copy;
    s->batch_next = (s->batch_next + 1) % MS_BATCH_IDS;
}

int
ms_batch_remember(ms_state_t *s, const char *id, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return GW_ERR;
    memcpy(copy, id, len);
    copy[len] = '\0';
    ms_batch_keep(s, copy);
    return GW_OK;
}

/*
 * Starts a snapshot when one is due: the store is copied here and written
 * by a thread of its own, so this thread never waits on the disk. While
 * one is being written no other starts (a later store() tries again); one
 * that failed leaves the store dirty, so the next is tried at the next
 * interval. force (destroy) waits for the one in flight and then writes the
 * last one here.
 */
static void
ms_maybe_snapshot(ms_state_t *s, int force)
{
    gw_error_t err;
    double now = ms_now();
    int ok;

    if (ms_snapshot_finish(s, force, &ok) == 0)
        return; /* still being written */
    if (!ok)
        s->dirty = 1; /* what it held is in no file: write it again */
    if (!ms_has_path(s) || !s->dirty)
        return;
    if (!force && now - s->last_snapshot < (double) s->snapshot_interval)
        return;
    s->last_snapshot = now;
    if (force) {
        if (ms_snapshot_save(s, &err) == GW_OK) {
            s->dirty = 0;
            gw_log_debug(s->ctx, "snapshot written to %s", s->path);
        } else {
            gw_log_error(s->ctx, "%s", err.msg);
        }
    } else if (ms_snapshot_start(s, &err) == GW_OK) {
        s->dirty = 0; /* what changes from now on is in the next one */
    } else {
        gw_log_error(s->ctx, "%s", err.msg);
    }
}

static int
ms_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    ms_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "memory storage: out of memory");
    s->ctx = ctx;
    mm_map_init(&s->projects);
    mm_map_init(&s->docs);
    if (ctx->host->config_apply(ctx, ms_keys, s, err) != GW_OK) {
        ms_free(s);
        return GW_ERR;
    }
    if (ms_has_path(s) && ms_snapshot_load(s, err) != GW_OK) {
        ms_free(s);
        return GW_ERR;
    }
    s->last_snapshot = ms_now();
    *state = s;
    return GW_OK;
}

static void
ms_destroy(void *state)
{
    ms_state_t *s = state;

    ms_maybe_snapshot(s, 1);
    ms_free(s);
}

/* One delta's numbers into its cell (a sketch kind's merged sketch is
 * put in by ms_commit); a sum that would overflow stays at +-DBL_MAX,
 * counted in *saturated. */
static void
ms_apply(ms_cell_t *c, const gw_delta_t *d, uint64_t *saturated)
{
    switch (d->kind) {
    case GW_KIND_COUNTER:
    case GW_KIND_AVG:
    case GW_KIND_TIMING:
        c->sum = gw_sum_add(c->sum, d->sum, saturated);
        c->count += d->count;
        break;
    case GW_KIND_GAUGE:
        c->count += d->count;
        if (d->ts >= c->u.ts) {
            c->sum = d->sum;
            c->u.ts = d->ts;
        }
        break;
    case GW_KIND_SET:
        c->count += d->count;
        break;
    }
}

static void
ms_count_saturated(ms_state_t *s, uint64_t n)
{
    if (n > 0)
        s->ctx->host->count(s->ctx, GW_COUNTER_SATURATED, NULL, n);
}

/*
 * store() is all or nothing: a batch is applied whole or, when memory runs
 * out, not at all. Three passes over the deltas:
 *
 *   place    finds (creates) every series and cell and checks the kinds;
 *            a failure removes the cells it made;
 *   prepare  for every timing or set cell the batch touches, merges the
 *            stored sketch and the batch's deltas of that cell into a new
 *            copy (the deltas of one cell found by sorting, so a cell
 *            written twice by one batch gets both);
 *   commit   adds the numbers and swaps each copy in: nothing allocates.
 *
 * The batch id's copy is made first, so remembering it cannot fail either.
 * Series and metrics created by a batch that then failed stay (empty) in
 * the metadata; no cell does. Commit reuses the cell pointer place found
 * unless a later cell went into the same array (its n grew).
 */
typedef struct ms_prep_s {
    ms_series_t *se;
    ms_cell_t *cell; /* valid while se->periods[period].n == n */
    void *pending;   /* the first delta of a sketch cell: its merged copy */
    uint32_t n;      /* the low 32 bits are enough to see a change */
    uint32_t created; /* place made the cell */
} ms_prep_t;

/* A sketch delta, sorted by cell (series, period, bucket), then order. */
typedef struct ms_skey_s {
    const ms_series_t *se;
    int64_t bucket;
    int period;
    size_t i;
} ms_skey_t;

static int
ms_skey_cmp(const void *a, const void *b)
{
    const ms_skey_t *x = a, *y = b;

    if (x->se != y->se)
        return (uintptr_t) x->se < (uintptr_t) y->se ? -1 : 1;
    if (x->period != y->period)
        return x->period < y->period ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void
ms_pending_free(gw_kind_t kind, void *p)
{
    if (p == NULL)
        return;
    if (kind == GW_KIND_TIMING)
        gw_timing_free(p);
    else
        gw_set_free(p);
    free(p);
}

/* A new copy of a cell's sketch (c NULL: none yet), or NULL (no memory). */
static void *
ms_pending_new(gw_kind_t kind, const ms_cell_t *c)
{
    void *p = malloc(kind == GW_KIND_TIMING ? sizeof(gw_timing_t)
                                            : sizeof(gw_set_t));

    if (p == NULL)
        return NULL;
    if (kind == GW_KIND_TIMING) {
        gw_timing_init(p);
        if (c != NULL && c->u.timing != NULL &&
            gw_timing_copy(p, c->u.timing) != GW_OK) {
            free(p);
            return NULL;
        }
    } else {
        gw_set_init(p);
        if (c != NULL && c->u.set != NULL &&
            gw_set_merge(p, c->u.set) != GW_OK) {
            ms_pending_free(kind, p);
            return NULL;
        }
    }
    return p;
}

/* Gives back the room a merge left in a timing copy's bins (it makes
 * room for both sketches' bins, and in the steady state most are the same
 * ones): a cell keeps 16 bytes a bin it holds. A failed shrink keeps the
 * room. */
static void
ms_pending_fit(gw_timing_t *t)
{
    gw_bin_t *b;

    if (t->cappos > t->npos && t->npos > 0 &&
        (b = realloc(t->pos, t->npos * sizeof(*b))) != NULL) {
        t->pos = b;
        t->cappos = t->npos;
    }
    if (t->capneg > t->nneg && t->nneg > 0 &&
        (b = realloc(t->neg, t->nneg * sizeof(*b))) != NULL) {
        t->neg = b;
        t->capneg = t->nneg;
    }
}

/* The cell place found for delta i. */
static ms_cell_t *
ms_prep_cell(const gw_batch_t *batch, const ms_prep_t *prep, size_t i)
{
    const gw_delta_t *d = &batch->deltas[i];
    ms_cells_t *cells = &prep[i].se->periods[d->period];

    if ((uint32_t) cells->n == prep[i].n)
        return prep[i].cell;
    return ms_cell_get(cells, d->bucket, 0);
}

/* Undoes place for deltas 0..n-1 (the cells it made go, when undo is
 * set) and frees the copies of prepare. */
static void
ms_prep_done(const gw_batch_t *batch, ms_prep_t *prep, size_t n, int undo)
{
    size_t i;

    for (i = n; undo && i-- > 0;)
        if (prep[i].created)
            ms_cell_remove(&prep[i].se->periods[batch->deltas[i].period],
                           batch->deltas[i].bucket);
    for (i = 0; i < n; i++)
        ms_pending_free(batch->deltas[i].kind, prep[i].pending);
}

/* The scratch of a batch of n deltas (s->prep, grown or given back when a
 * quarter of it would do), or NULL. */
static ms_prep_t *
ms_prep_get(ms_state_t *s, size_t n)
{
    size_t cap = n ? n : 1;
    void *p;

    if (cap <= s->prep_cap && cap * 4 > s->prep_cap)
        return s->prep;
    if ((p = realloc(s->prep, cap * sizeof(ms_prep_t))) == NULL)
        return cap <= s->prep_cap ? s->prep : NULL;
    s->prep = p;
    s->prep_cap = cap;
    return p;
}

/* Checks delta i against its series: a delta has its metric's kind when
 * either is timing or set (their cells hold a sketch), and a sketch delta
 * has its data. */
static int
ms_check_kind(const gw_batch_t *batch, size_t i, const ms_series_t *se,
              gw_error_t *err)
{
    const gw_delta_t *d = &batch->deltas[i];

    if ((ms_kind_sketch(d->kind) || ms_kind_sketch(se->kind)) &&
        d->kind != se->kind)
        return gw_error_set(err, "memory storage: delta %zu is %s but "
                            "metric \"%s\" of project \"%s\" is %s (a "
                            "metric keeps its first kind); nothing of the "
                            "batch was applied", i, gw_kind_name(d->kind),
                            d->metric, d->project, gw_kind_name(se->kind));
    if (ms_kind_sketch(d->kind) &&
        (batch->data == NULL ||
         (d->kind == GW_KIND_TIMING && batch->data[i].timing == NULL) ||
         (d->kind == GW_KIND_SET && batch->data[i].set == NULL)))
        return gw_error_set(err, "memory storage: delta %zu is %s without "
                            "its batch->data[%zu].%s; nothing of the batch "
                            "was applied", i, gw_kind_name(d->kind), i,
                            d->kind == GW_KIND_SET ? "set" : "timing");
    return GW_OK;
}

/* Finds or creates the series and the cell of every delta; *done: the
 * deltas placed (all of them on GW_OK), *nsk: the sketch deltas. */
static int
ms_place(ms_state_t *s, const gw_batch_t *batch, ms_prep_t *prep,
         size_t *done, size_t *nsk, gw_error_t *err)
{
    size_t i;

    for (*nsk = 0, i = 0; i < batch->ndeltas; *done = ++i) {
        const gw_delta_t *d = &batch->deltas[i];
        ms_series_t *se = ms_series_get(s, d->project, d->metric, d->kind,
                                        d->filter_name, d->filter_value, 1);
        ms_cells_t *cells;
        size_t n0;

        if (se == NULL)
            break;
        if (ms_check_kind(batch, i, se, err) != GW_OK)
            return GW_ERR;
        cells = &se->periods[d->period];
        n0 = cells->n;
        prep[i].se = se;
        prep[i].pending = NULL;
        prep[i].created = 0;
        if ((prep[i].cell = ms_cell_get(cells, d->bucket, 1)) == NULL)
            break;
        prep[i].n = (uint32_t) cells->n;
        if (cells->n > n0) {
            prep[i].created = 1;
            if (ms_kind_sketch(se->kind))
                prep[i].cell->u.timing = NULL; /* the same for u.set */
        }
        *nsk += ms_kind_sketch(d->kind) != 0;
    }
    if (i == batch->ndeltas)
        return GW_OK;
    return gw_error_set(err, "memory storage: out of memory at delta %zu of "
                        "%zu; nothing of the batch was applied", i,
                        batch->ndeltas);
}

/* Merges each sketch cell's deltas into a copy of it (prep[first].pending). */
static int
ms_prepare(const gw_batch_t *batch, ms_prep_t *prep, size_t nsk,
           gw_error_t *err)
{
    ms_skey_t *k = malloc((nsk ? nsk : 1) * sizeof(*k));
    size_t i, n = 0, first = 0;
    int rc = GW_OK;

    if (k == NULL)
        return gw_error_set(err, "memory storage: out of memory; nothing of "
                            "the batch was applied");
    for (i = 0; i < batch->ndeltas; i++)
        if (ms_kind_sketch(batch->deltas[i].kind)) {
            k[n].se = prep[i].se;
            k[n].bucket = batch->deltas[i].bucket;
            k[n].period = (int) batch->deltas[i].period;
            k[n++].i = i;
        }
    qsort(k, n, sizeof(*k), ms_skey_cmp);
    for (i = 0; i < n && rc == GW_OK; i++) {
        const gw_delta_t *d = &batch->deltas[k[i].i];
        void *p;

        if (i == 0 || k[i - 1].se != k[i].se ||
            k[i - 1].period != k[i].period ||
            k[i - 1].bucket != k[i].bucket) {
            first = k[i].i;
            prep[first].pending = ms_pending_new(
                d->kind, ms_prep_cell(batch, prep, first));
            if (prep[first].pending == NULL) {
                rc = GW_ERR;
                break;
            }
        }
        p = prep[first].pending;
        if (d->kind == GW_KIND_TIMING)
            rc = gw_timing_merge(p, batch->data[k[i].i].timing);
        else
            rc = gw_set_merge(p, batch->data[k[i].i].set);
    }
    for (i = 0; i < n && rc == GW_OK; i++)
        if (batch->deltas[k[i].i].kind == GW_KIND_TIMING &&
            prep[k[i].i].pending != NULL)
            ms_pending_fit(prep[k[i].i].pending);
    free(k);
    if (rc != GW_OK)
        return gw_error_set(err, "memory storage: out of memory merging "
                            "sketches; nothing of the batch was applied");
    return GW_OK;
}

/* Applies every delta; allocates nothing, so it cannot fail. */
static void
ms_commit(const gw_batch_t *batch, ms_prep_t *prep, uint64_t *saturated)
{
    size_t i;

    for (i = 0; i < batch->ndeltas; i++) {
        const gw_delta_t *d = &batch->deltas[i];
        ms_cell_t *c = ms_prep_cell(batch, prep, i);

        ms_apply(c, d, saturated);
        if (prep[i].pending != NULL) {
            ms_cell_free_sketch(c, d->kind);
            if (d->kind == GW_KIND_TIMING)
                c->u.timing = prep[i].pending;
            else
                c->u.set = prep[i].pending;
            prep[i].pending = NULL;
        }
    }
}

static int
ms_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    ms_state_t *s = state;
    uint64_t saturated = 0;
    ms_prep_t *prep;
    char *id = NULL;
    size_t i, nsk = 0, placed = 0;

    if (batch->id != NULL && ms_batch_seen(s, batch->id)) {
        gw_log_debug(s->ctx, "batch %s was already applied; skipped",
                     batch->id);
        return GW_OK;
    }
    for (i = 0; i < batch->ndeltas; i++)
        if (gw_delta_check(&batch->deltas[i], i, err) != GW_OK)
            return GW_ERR;
    prep = ms_prep_get(s, batch->ndeltas);
    if (prep == NULL || (batch->id != NULL &&
                         (id = strdup(batch->id)) == NULL))
        return gw_error_set(err, "memory storage: out of memory; nothing of "
                            "the batch was applied");
    if (ms_place(s, batch, prep, &placed, &nsk, err) != GW_OK ||
        (nsk > 0 && ms_prepare(batch, prep, nsk, err) != GW_OK)) {
        ms_prep_done(batch, prep, placed, 1);
        free(id);
        return GW_ERR;
    }
    ms_commit(batch, prep, &saturated);
    ms_prep_done(batch, prep, batch->ndeltas, 0);
    ms_count_saturated(s, saturated);
    if (id != NULL)
        ms_batch_keep(s, id);
    s->dirty = 1;
    ms_maybe_snapshot(s, 0);
    return GW_OK;
}

/* The cells of q's series in from..to: *first, *end; NULL if none. */
static const ms_series_t *
ms_query_cells(ms_state_t *s, const gw_query_t *q, size_t *first,
               size_t *end)
{
    const ms_series_t *se = ms_series_get(s, q->project, q->metric, q->kind,
                                          q->filter_name, q->filter_value, 0);
    const ms_cells_t *c;

    if (se == NULL)
        return NULL;
    c = &se->periods[q->period];
    *first = ms_lower_bound(c, q->from);
    for (*end = *first; *end < c->n && c->v[*end].bucket <= q->to; (*end)++)
        ;
    return se;
}

static int
ms_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    const ms_series_t *se;
    size_t i, end;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((se = ms_query_cells(state, q, &i, &end)) == NULL)
        return GW_OK;
    for (; i < end; i++) {
        const ms_cell_t *c = &se->periods[q->period].v[i];
        gw_point_t p;

        p.bucket = c->bucket;
        p.sum = c->sum;
        p.count = c->count;
        p.ts = 0;
        if (se->kind == GW_KIND_SET)
            p.sum = c->u.set != NULL ? gw_set_count(c->u.set) : 0;
        else if (!ms_kind_sketch(se->kind) && isfinite(c->u.ts))
            p.ts = c->u.ts;
        emit(arg, &p);
    }
    return GW_OK;
}

/* query for a timing series, with each cell's sketch; a series of another
 * kind has none, and answers nothing. */
static int
ms_query_timing(void *state, const gw_query_t *q, gw_timing_point_fn emit,
                void *arg, gw_error_t *err)
{
    static const gw_timing_t empty;
    const ms_series_t *se;
    size_t i, end;

    if ((unsigned) q->period >= GW_PERIOD_COUNT)
        return gw_error_set(err, "unknown period %d", (int) q->period);
    if ((se = ms_query_cells(state, q, &i, &end)) == NULL ||
        se->kind != GW_KIND_TIMING)
        return GW_OK;
    for (; i < end; i++) {
        const ms_cell_t *c = &se->periods[q->period].v[i];
        gw_point_t p;

        p.bucket = c->bucket;
        p.sum = c->sum;
        p.count = c->count;
        p.ts = 0;
        emit(arg, &p, c->u.timing != NULL ? c->u.timing : &empty);
    }
    return GW_OK;
}

static int
ms_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
            gw_error_t *err)
{
    ms_state_t *s = state;
    ms_project_t *proj = mm_map_get(&s->projects, project, strlen(project));
    size_t i, j;

    (void) err;
    if (proj == NULL)
        return GW_OK;
    for (i = 0; i < proj->metrics.count; i++) {
        const ms_metric_t *m = proj->metrics.entries[i].value;
        gw_meta_t meta;

        if (m == NULL)
            continue;
        meta.metric = m->name;
        meta.kind = m->kind;
        meta.filter_name = NULL;
        meta.filter_value = NULL;
        emit(arg, &meta);
        for (j = 0; j < m->series.count; j++) {
            const ms_series_t *se = m->series.entries[j].value;

            if (se == NULL || se->fname == NULL)
                continue;
            meta.filter_name = se->fname;
            meta.filter_value = se->fvalue;
            emit(arg, &meta);
        }
    }
    return GW_OK;
}

static int
ms_doc_put(void *state, const char *ns, const char *id, const char *data,
           size_t len, gw_error_t *err)
{
    ms_state_t *s = state;

    if (ms_doc_set(s, ns, strlen(ns), id, strlen(id), data, len) != GW_OK)
        return gw_error_set(err, "memory storage: out of memory");
    s->dirty = 1;
    ms_maybe_snapshot(s, 0);
    return GW_OK;
}

/* The map key of (ns, id): ns, NUL, id; *len its length. NULL: no memory. */
static char *
ms_doc_key(const char *ns, const char *id, size_t *len)
{
    size_t nslen = strlen(ns), idlen = strlen(id);
    char *key = malloc(nslen + 1 + idlen);

    if (key != NULL) {
        memcpy(key, ns, nslen + 1);
        memcpy(key + nslen + 1, id, idlen);
    }
    *len = nslen + 1 + idlen;
    return key;
}

/* Whether doc (NULL: none) is what a compare-and-set expects. */
static int
ms_doc_is(const ms_doc_t *doc, const char *expect, size_t expect_len)
{
    if (expect == NULL || doc == NULL)
        return expect == NULL && doc == NULL;
    return doc->len == expect_len && memcmp(doc->data, expect, expect_len) == 0;
}

static int
ms_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
           void *arg, gw_error_t *err)
{
    ms_state_t *s = state;
    size_t len;
    char *key = ms_doc_key(ns, id, &len);
    const ms_doc_t *doc;

    if (key == NULL)
        return gw_error_set(err, "memory storage: out of memory");
    doc = mm_map_get(&s->docs, key, len);
    free(key);
    if (doc != NULL)
        emit(arg, doc->data, doc->len);
    return GW_OK;
}

/* The calls into an instance are serialised and the memory storage is one
 * process's, so compare and write need nothing more to be atomic. */
static int
ms_doc_cas(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, const char *data, size_t len, gw_error_t *err)
{
    ms_state_t *s = state;
    size_t klen;
    char *key = ms_doc_key(ns, id, &klen);
    int same;

    if (key == NULL)
        return gw_error_set(err, "memory storage: out of memory");
    same = ms_doc_is(mm_map_get(&s->docs, key, klen), expect, expect_len);
    free(key);
    if (!same) {
        gw_error_set(err, "the document %s/%s changed", ns, id);
        return GW_CONFLICT;
    }
    return ms_doc_put(state, ns, id, data, len, err);
}

static int
ms_doc_list(void *state, const char *ns, const char *prefix,
            gw_doc_entry_fn emit, void *arg, gw_error_t *err)
{
    ms_state_t *s = state;
    size_t i, nslen = strlen(ns), plen = strlen(prefix);

    (void) err;
    for (i = 0; i < s->docs.count; i++) {
        const mm_entry_t *e = &s->docs.entries[i];
        const ms_doc_t *doc = e->value;

        if (doc != NULL && e->keylen >= nslen + 1 + plen &&
            memcmp(e->key, ns, nslen + 1) == 0 &&
            memcmp(e->key + nslen + 1, prefix, plen) == 0)
            emit(arg, e->key + nslen + 1, doc->data, doc->len);
    }
    return GW_OK;
}

static int
ms_doc_del(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, gw_error_t *err)
{
    ms_state_t *s = state;
    size_t klen;
    char *key = ms_doc_key(ns, id, &klen);
    const ms_doc_t *doc;

    if (key == NULL)
        return gw_error_set(err, "memory storage: out of memory");
    doc = mm_map_get(&s->docs, key, klen);
    if (expect != NULL && !ms_doc_is(doc, expect, expect_len)) {
        free(key);
        gw_error_set(err, "the document %s/%s changed", ns, id);
        return GW_CONFLICT;
    }
    free(mm_map_remove(&s->docs, key, klen));
    free(key);
    s->dirty = 1;
    ms_maybe_snapshot(s, 0);
    return GW_OK;
}

/* The real clock, as the core's expires_at. */
static double
ms_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
ms_nonce_claim(void *state, const char *project, const char *nonce,
               size_t len, double expires_at, gw_error_t *err)
{
    ms_state_t *s = state;
    int rc = ms_nonces_add(&s->nonces, project, nonce, len, expires_at,
                           ms_wall());

    if (rc == GW_ERR)
        return gw_error_set(err, "nonce already claimed (a replay)");
    if (rc == GW_AGAIN) {
        gw_error_set(err, "memory storage: no room for more nonces");
        return GW_AGAIN;
    }
    /* Kept with the next snapshot (a restart remembers it); a crash
     * before then forgets the claims since the last one. */
    s->dirty = 1;
    return GW_OK;
}

/* Series visited per expire() call: about a millisecond of work, so that
 * a flush never waits long behind an expiry of millions of cells. */
#define MS_EXPIRE_STEP 20000

/* Drops the cells of c before `before` by moving the array's start (no
 * copy of the cells kept: a pass that cuts one minute of a week's cells
 * costs one minute's); gives memory back when most of the array is unused.
 * Returns how many went. */
static size_t
ms_cells_expire(ms_cells_t *c, int64_t before, gw_kind_t kind)
{
    size_t i = ms_lower_bound(c, before), k;

    if (i == 0)
        return 0;
    for (k = 0; ms_kind_sketch(kind) && k < i; k++)
        ms_cell_free_sketch(&c->v[k], kind);
    c->v += i;
    c->off += i;
    c->n -= i;
    if (c->n == 0) {
        free(c->v - c->off);
        c->v = NULL;
        c->cap = c->off = 0;
    } else if (c->n * 4 < c->cap) {
        ms_cell_t *v;

        memmove(c->v - c->off, c->v, c->n * sizeof(*c->v));
        c->v -= c->off;
        c->off = 0;
        v = realloc(c->v, c->n * 2 * sizeof(*v));
        if (v != NULL) {
            c->v = v;
            c->cap = c->n * 2;
        }
    }
    return i;
}

/*
 * Retention: the cells of period before `before` go, MS_EXPIRE_STEP
 * series at a time (GW_AGAIN: more to do; the next call with the same
 * period and before goes on where this one stopped). The snapshot written
 * next leaves them out, so it no longer grows with history. A series whose
 * cells are all gone stays in the metadata.
 */
static int
ms_expire(void *state, gw_period_t period, int64_t before, gw_error_t *err)
{
    ms_state_t *s = state;
    size_t visited = 0, gone = 0;

    (void) err;
    if (s->exp_period != (int) period + 1 || s->exp_before != before) {
        s->exp_period = (int) period + 1; /* 0: no pass under way */
        s->exp_before = before;
        s->exp_proj = s->exp_metric = s->exp_series = 0;
    }
    for (; s->exp_proj < s->projects.count;
         s->exp_proj++, s->exp_metric = 0) {
        ms_project_t *proj = s->projects.entries[s->exp_proj].value;

        for (; proj != NULL && s->exp_metric < proj->metrics.count;
             s->exp_metric++, s->exp_series = 0) {
            ms_metric_t *m = proj->metrics.entries[s->exp_metric].value;

            for (; m != NULL && s->exp_series < m->series.count;
                 s->exp_series++) {
                ms_series_t *se = m->series.entries[s->exp_series].value;

                if (visited++ == MS_EXPIRE_STEP) {
                    s->dirty |= gone > 0;
                    return GW_AGAIN;
                }
                if (se != NULL)
                    gone += ms_cells_expire(&se->periods[period], before,
                                            se->kind);
            }
        }
    }
    s->dirty |= gone > 0;
    s->exp_period = 0;
    return GW_OK;
}

static const gw_storage_ops_t ms_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = ms_create,
    .destroy = ms_destroy,
    .store = ms_store,
    .query = ms_query,
    .metadata = ms_metadata,
    .doc_put = ms_doc_put,
    .doc_get = ms_doc_get,
    .ping = NULL,
    .nonce_claim = ms_nonce_claim,
    .expire = ms_expire,
    .kinds = GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET),
    .query_timing = ms_query_timing,
    .doc_cas = ms_doc_cas,
    .doc_list = ms_doc_list,
    .doc_del = ms_doc_del,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "memory",
    .version = "0.1.0",
    .description = "in-process storage with a snapshot file",
    .storage = &ms_ops,
};
