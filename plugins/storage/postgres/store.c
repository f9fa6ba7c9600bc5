/*
 * plugins/storage/postgres/store.c: the PostgreSQL storage's flush.
 *
 * One batch is one transaction (docs/storage-postgres.md, "Writes"; sql.c
 * has the statements), in stages:
 *
 *   pg_flush_prepare   the batch merged into cells and walked into series
 *                      and slots (batch.c), in memory
 *   pg_flush_new_rows  the COPY rows of the series not cached
 *   BEGIN; pg_flush_batch_id: the batch id, and nothing else (COMMIT) when
 *                      it was applied before
 *   pg_flush_insert    the new series inserted with their slots; the ids
 *                      of all the series not cached
 *   pg_flush_upd_rows  the COPY rows of the series that were there
 *   pg_flush_update    their slots spilled and updated; deltas found late
 *   pg_flush_cells     the cells that are no slot, into gottwall_cells
 *   the metrics; COMMIT; pg_flush_committed: the cache learns the ids
 *
 * A failed stage rolls the transaction back; the core keeps the batch and
 * retries it, and the batch id makes the retry apply it once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* Where each series of a flush stands. */
enum {
    PG_SER_CACHED, /* id from the cache: its row is there */
    PG_SER_ASK,    /* not cached: sent to pg_ins_sql */
    PG_SER_NEW,    /* inserted by this flush, slots and all */
    PG_SER_OLD     /* was there (looked up): update its slots */
};

/* The buffers of one flush: column arrays and COPY streams. */
enum {
    PG_H_SID = 0,     /* pg_cells_sql: 7 arrays */
    PG_M_PROJECT = 7, /* pg_metrics_sql: 3 arrays */
    PG_CP_NEW = 10,   /* COPY gottwall_stage_new */
    PG_CP_UPD = 11,   /* COPY gottwall_stage_upd */
    PG_NARRS = 12
};
static const uint32_t pg_cell_oid[7] = {PG_OID_INT8, PG_OID_INT2,
                                        PG_OID_INT8, PG_OID_INT2,
                                        PG_OID_FLOAT8, PG_OID_INT8,
                                        PG_OID_FLOAT8};

/* A cell bound for gottwall_cells: its series' id and the cell. */
typedef struct pg_hcell_s {
    int64_t sid;
    const pg_cell_t *cell;
} pg_hcell_t;

/* One flush: the batch's cells, its series and where each stands, and the
 * buffers of its statements. The arrays have room for one entry per cell
 * (a batch has no more series than cells). */
typedef struct pg_flush_s {
    pg_arr_t arr[PG_NARRS];
    pg_cell_t *cells; /* sorted and merged */
    size_t n;
    size_t *sidx;              /* per cell: its series */
    const gw_delta_t **series; /* per series: its first delta */
    size_t ns;
    int64_t *ids;      /* per series: its id, -1 when not known yet */
    unsigned char *st; /* per series: PG_SER_* */
    pg_slot_t *slots;  /* per series, PG_SLOTS: the batch's slots */
    uint32_t *kb;      /* per series, PG_SLOTS: the buckets cached */
    size_t *hist;      /* the cells that are no slot */
    pg_hcell_t *h;     /* the cells bound for gottwall_cells (nh) */
    size_t nh;
    size_t nask;    /* series sent to pg_ins_sql */
    size_t *upd;    /* the series that were there, in id order (nupd) */
    size_t nupd;
    int64_t *pairs; /* {id, series index}: sorts upd */
    int check;      /* a series of upd may spill */
    uint64_t saturated; /* sums merged in memory kept at +-DBL_MAX */
    const gw_batch_t *batch;
} pg_flush_t;

/* d's bucket as stored: 0 for GW_PERIOD_ALL. */
static int64_t
pg_bucket(const gw_delta_t *d)
{
    return d->period == GW_PERIOD_ALL ? 0 : d->bucket;
}

static int
pg_hcell_cmp(const void *x, const void *y)
{
    const pg_hcell_t *a = x, *b = y;
    int64_t ba, bb;

    if (a->sid != b->sid)
        return a->sid < b->sid ? -1 : 1;
    if (a->cell->d->period != b->cell->d->period)
        return a->cell->d->period < b->cell->d->period ? -1 : 1;
    ba = pg_bucket(a->cell->d);
    bb = pg_bucket(b->cell->d);
    return (ba > bb) - (ba < bb);
}

static int
pg_id_cmp(const void *x, const void *y)
{
    const int64_t *a = x, *b = y; /* {id, series index} */

    return (a[0] > b[0]) - (a[0] < b[0]);
}

/* Appends one series' slots (5 fields each) to a COPY row. */
static void
pg_copy_slots(pg_arr_t *a, const pg_slot_t *sl)
{
    int p, k;

    for (p = 0; p < PG_SLOTS; p++) {
        const pg_cell_t *c = sl[p].cell;

        if (c == NULL) {
            for (k = 0; k < 5; k++)
                pg_arr_null(a);
            continue;
        }
        pg_arr_i64(a, pg_bucket(c->d));
        pg_arr_i16(a, (int) c->d->kind);
        pg_arr_f64(a, c->sum);
        pg_arr_i64(a, c->count);
        pg_arr_f64(a, c->ts);
    }
}

/* Creates this session's staging tables (once). */
static int
pg_stage(pg_state_t *s, gw_error_t *err)
{
    int rc, i;

    if (s->staged)
        return GW_OK;
    for (i = 0; i < 2; i++)
        if ((rc = pg_exec(s, pg_stmts()->stage[i], PGRES_COMMAND_OK,
                          "creating a staging table", err)) != GW_OK)
            return rc;
    s->staged = 1;
    return GW_OK;
}

/* A bucket as the cache keeps it. */
static uint32_t
pg_kb(int64_t bucket)
{
    return bucket >= 0 && bucket < PG_KB_UNKNOWN ? (uint32_t) bucket
                                                 : PG_KB_UNKNOWN;
}

/* Whether a slot of a series that was there may move on (so pg_spill_sql
 * must look at it): one of the batch's buckets is after the one the cache
 * knows the slot reached, or the cache does not know. */
static unsigned char
pg_may_spill(const pg_slot_t *sl, const uint32_t *kb)
{
    int p;

    for (p = 0; p < PG_SLOTS; p++)
        if (sl[p].cell != NULL &&
            (kb[p] == PG_KB_UNKNOWN || pg_bucket(sl[p].cell->d) > kb[p]))
            return 1;
    return 0;
}

static int
pg_get_is(const PGresult *r, int row, int col, const char *str)
{
    size_t len = strlen(str);

    return (size_t) PQgetlength(r, row, col) == len &&
           memcmp(PQgetvalue(r, row, col), str, len) == 0;
}

/* Row `row` of the series insert's RETURNING is the series of d. */
static int
pg_row_is(const PGresult *r, int row, const gw_delta_t *d)
{
    return pg_get_is(r, row, 1, d->project) &&
           pg_get_is(r, row, 2, d->metric) &&
           pg_get_is(r, row, 3, pg_fname(d)) &&
           pg_get_is(r, row, 4, pg_fvalue(d)) &&
           pg_get_int(r, row, 5) == (d->filter_name != NULL);
}

/* Finds the id of each series sent to the insert (st[i] PG_SER_ASK): the
 * rows the insert returned (PG_SER_NEW, in the batch's order), then one
 * lookup of those that were there before (PG_SER_OLD; also any the walk
 * did not match: any order of the returned rows stays correct). */
static int
pg_series_ids(pg_state_t *s, const PGresult *ins,
              const gw_delta_t *const *series, size_t ns, int64_t *ids,
              unsigned char *st, gw_error_t *err)
{
    pg_arr_t arr[5];
    PGresult *r = NULL;
    size_t i, j = 0, nmiss = 0, rows = (size_t) PQntuples(ins);
    int rc = GW_OK, oom = 0;

    for (i = 0; i < ns; i++) {
        if (st[i] != PG_SER_ASK)
            continue;
        if (j < rows && pg_row_is(ins, (int) j, series[i])) {
            ids[i] = pg_get_int(ins, (int) j, 0);
            st[i] = PG_SER_NEW;
            j++;
        } else {
            st[i] = PG_SER_OLD;
            ids[i] = -1;
            nmiss++;
        }
    }
    if (nmiss == 0)
        return GW_OK;
    memset(arr, 0, sizeof(arr));
    for (i = 0; i < 5; i++)
        pg_arr_open(&arr[i]);
    for (i = 0; i < ns; i++) {
        if (st[i] != PG_SER_OLD)
            continue;
        pg_arr_str(&arr[0], series[i]->project);
        pg_arr_str(&arr[1], series[i]->metric);
        pg_arr_str(&arr[2], pg_fname(series[i]));
        pg_arr_str(&arr[3], pg_fvalue(series[i]));
        pg_arr_i16(&arr[4], series[i]->filter_name != NULL);
    }
    for (i = 0; i < 5; i++) {
        pg_arr_close(&arr[i], i < 4 ? PG_OID_TEXT : PG_OID_INT2);
        oom |= arr[i].oom;
    }
    if (oom) {
        rc = gw_error_set(err, "postgres storage: out of memory");
        goto out;
    }
    rc = pg_run_arr(s, pg_series_ids_sql, 5, arr, &r, PGRES_TUPLES_OK,
                    "looking up series ids", err);
    if (rc != GW_OK)
        goto out;
    if ((size_t) PQntuples(r) != nmiss || PQnfields(r) != 1) {
        rc = gw_error_set(err, "postgres: looking up series ids: %d rows "
                          "for %zu series", PQntuples(r), nmiss);
        goto out;
    }
    for (i = 0, j = 0; i < ns; i++) {
        if (st[i] != PG_SER_OLD)
            continue;
        if (PQgetisnull(r, (int) j, 0) || PQgetlength(r, (int) j, 0) != 8) {
            rc = gw_error_set(err, "postgres: series %s/%s has no id "
                              "(gottwall_series changed meanwhile?)",
                              series[i]->project, series[i]->metric);
            goto out;
        }
        ids[i] = pg_get_int(r, (int) j++, 0);
    }
out:
    PQclear(r);
    for (i = 0; i < 5; i++)
        free(arr[i].p);
    return rc;
}

/* The slots of the updated series that pg_upd_sql found late (rows of
 * (id, bit mask of periods)), appended to h; upd[j] is the series index
 * of update row j. */
static int
pg_late(const PGresult *r, const size_t *upd, size_t nupd,
        const int64_t *ids, const pg_slot_t *slots, pg_hcell_t *h,
        size_t *nh, gw_error_t *err)
{
    int64_t *map = malloc(nupd * 2 * sizeof(*map));
    int row, rows = PQntuples(r), p;
    size_t j;

    if (map == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    for (j = 0; j < nupd; j++) {
        map[2 * j] = ids[upd[j]];
        map[2 * j + 1] = (int64_t) upd[j];
    }
    qsort(map, nupd, 2 * sizeof(*map), pg_id_cmp);
    for (row = 0; row < rows; row++) {
        int64_t key[2] = {pg_get_int(r, row, 0), 0}, *m;
        int64_t late = pg_get_int(r, row, 1);

        m = bsearch(key, map, nupd, 2 * sizeof(*map), pg_id_cmp);
        if (m == NULL) {
            free(map);
            return gw_error_set(err, "postgres: updating slots: series id "
                                "%lld was not in the batch",
                                (long long) key[0]);
        }
        for (p = 0; p < PG_SLOTS; p++)
            if ((late >> p) & 1) {
                h[*nh].sid = key[0];
                h[*nh].cell = slots[(size_t) m[1] * PG_SLOTS + p].cell;
                (*nh)++;
            }
    }
    free(map);
    return GW_OK;
}

static void
pg_prune(pg_state_t *s)
{
    char interval[32];
    const char *params[] = {interval};
    PGresult *r;
    gw_error_t err;

    if (pg_now() - s->last_prune < 3600 && s->last_prune != 0)
        return;
    s->last_prune = pg_now();
    snprintf(interval, sizeof(interval), "%lld seconds",
             (long long) s->batch_retention);
    r = PQexecParams(s->conn, pg_prune_sql, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(s, r, PGRES_COMMAND_OK, "pruning gottwall_batches", &err) !=
        GW_OK)
        gw_log_warning(s->ctx, "%s", err.msg);
    else if (atoi(PQcmdTuples(r)) > 0)
        gw_log_debug(s->ctx, "pruned %s old batch ids", PQcmdTuples(r));
    PQclear(r);
}

/* Checks every delta, and the batch's size. */
static int
pg_flush_check(const gw_batch_t *batch, gw_error_t *err)
{
    size_t i;

    for (i = 0; i < batch->ndeltas; i++) {
        const gw_delta_t *d = &batch->deltas[i];

        if (pg_check_delta(d, i, err) != GW_OK)
            return GW_ERR;
        if ((d->kind == GW_KIND_TIMING &&
             (batch->data == NULL || batch->data[i].timing == NULL)) ||
            (d->kind == GW_KIND_SET &&
             (batch->data == NULL || batch->data[i].set == NULL)))
            return gw_error_set(err, "delta %zu is a %s without its data",
                                i, gw_kind_name(d->kind));
    }
    if (batch->ndeltas > 0x7fffffff)
        return gw_error_set(err, "postgres storage: a batch of %zu deltas "
                            "is too large", batch->ndeltas);
    return GW_OK;
}

/* Merges the batch into cells and walks them (pg_scan) into f, with the
 * metrics arrays. GW_ERR when out of memory. */
static int
pg_flush_prepare(pg_flush_t *f, const gw_batch_t *batch,
                 const pg_cache_t *cache, gw_error_t *err)
{
    size_t i, n;

    if ((f->cells = pg_merge(batch, &f->n, &f->saturated)) == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    n = f->n;
    f->sidx = malloc(n * sizeof(*f->sidx));
    f->series = malloc(n * sizeof(*f->series));
    f->ids = malloc(n * sizeof(*f->ids));
    f->st = malloc(n);
    f->slots = malloc(n * PG_SLOTS * sizeof(*f->slots));
    f->hist = malloc(n * sizeof(*f->hist));
    f->upd = malloc(n * sizeof(*f->upd));
    f->h = malloc(n * sizeof(*f->h));
    f->kb = malloc(n * PG_SLOTS * sizeof(*f->kb));
    f->pairs = malloc(n * 2 * sizeof(*f->pairs));
    if (f->sidx == NULL || f->series == NULL || f->ids == NULL ||
        f->st == NULL || f->slots == NULL || f->hist == NULL ||
        f->upd == NULL || f->h == NULL || f->kb == NULL || f->pairs == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    for (i = PG_M_PROJECT; i < PG_M_PROJECT + 3; i++)
        pg_arr_open(&f->arr[i]);
    f->ns = pg_scan(&f->arr[PG_M_PROJECT], f->cells, n, f->sidx, f->series,
                    f->ids, f->kb, f->slots, f->hist, &f->nh, cache);
    pg_arr_close(&f->arr[PG_M_PROJECT], PG_OID_TEXT);
    pg_arr_close(&f->arr[PG_M_PROJECT + 1], PG_OID_TEXT);
    pg_arr_close(&f->arr[PG_M_PROJECT + 2], PG_OID_INT2);
    return GW_OK;
}

/* The series not cached, for pg_ins_sql: each series' st, and the COPY
 * stream of gottwall_stage_new. GW_ERR when a buffer so far ran out of
 * memory. */
static int
pg_flush_new_rows(pg_flush_t *f, gw_error_t *err)
{
    pg_arr_t *a = &f->arr[PG_CP_NEW];
    size_t i;
    int oom = 0;

    pg_copy_open(a);
    for (i = 0; i < f->ns; i++) {
        const gw_delta_t *d = f->series[i];

        f->st[i] = f->ids[i] < 0 ? PG_SER_ASK : PG_SER_CACHED;
        if (f->st[i] != PG_SER_ASK)
            continue;
        f->nask++;
        pg_copy_row(a, 5 + 5 * PG_SLOTS);
        pg_arr_str(a, d->project);
        pg_arr_str(a, d->metric);
        pg_arr_str(a, pg_fname(d));
        pg_arr_str(a, pg_fvalue(d));
        pg_arr_i16(a, d->filter_name != NULL);
        pg_copy_slots(a, &f->slots[i * PG_SLOTS]);
    }
    pg_copy_close(a);
    for (i = 0; i < PG_NARRS; i++)
        oom |= f->arr[i].oom;
    if (oom)
        return gw_error_set(err, "postgres storage: out of memory");
    return GW_OK;
}

/* Records the batch id; *seen when the batch was applied before. */
static int
pg_flush_batch_id(pg_state_t *s, const char *id, int *seen,
                  gw_error_t *err)
{
    const char *params[1] = {id};
    PGresult *r;
    int rc;

    rc = pg_runp(s, pg_batch_sql, 1, NULL, params, &r, PGRES_COMMAND_OK,
                 "storing a batch id", err);
    if (rc != GW_OK)
        return rc;
    *seen = strcmp(PQcmdTuples(r), "0") == 0; /* applied before */
    PQclear(r);
    return GW_OK;
}

/* Inserts the series not cached, slots and all (pg_ins_sql, from
 * gottwall_stage_new), and finds the ids of all of them. */
static int
pg_flush_insert(pg_state_t *s, pg_flush_t *f, gw_error_t *err)
{
    PGresult *r;
    int rc;

    if (f->nask == 0)
        return GW_OK;
    if ((rc = pg_copy(s, "pg_temp.gottwall_stage_new", &f->arr[PG_CP_NEW],
                      err)) != GW_OK)
        return rc;
    rc = pg_runp(s, pg_stmts()->ins, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                 "storing the series", err);
    if (rc != GW_OK)
        return rc;
    rc = pg_series_ids(s, r, f->series, f->ns, f->ids, f->st, err);
    PQclear(r);
    return rc;
}

/* The series that were there, in id order (upd), and their COPY stream
 * for gottwall_stage_upd; the cells that are no slot, with their series'
 * ids (h). */
static int
pg_flush_upd_rows(pg_flush_t *f, gw_error_t *err)
{
    pg_arr_t *a = &f->arr[PG_CP_UPD];
    size_t i;

    /* In id order: {id, series index} pairs sorted, then the indices. */
    for (i = 0; i < f->ns; i++)
        if (f->st[i] == PG_SER_CACHED || f->st[i] == PG_SER_OLD) {
            f->pairs[2 * f->nupd] = f->ids[i];
            f->pairs[2 * f->nupd + 1] = (int64_t) i;
            f->nupd++;
        }
    qsort(f->pairs, f->nupd, 2 * sizeof(*f->pairs), pg_id_cmp);
    for (i = 0; i < f->nupd; i++)
        f->upd[i] = (size_t) f->pairs[2 * i + 1];
    pg_copy_open(a);
    for (i = 0; i < f->nupd; i++) {
        const size_t k = f->upd[i] * PG_SLOTS;
        unsigned char ck = pg_may_spill(&f->slots[k], &f->kb[k]);

        f->check |= ck;
        pg_copy_row(a, 2 + 5 * PG_SLOTS);
        pg_arr_i64(a, f->ids[f->upd[i]]);
        pg_arr_elem(a, &ck, 1);
        pg_copy_slots(a, &f->slots[k]);
    }
    pg_copy_close(a);
    if (a->oom)
        return gw_error_set(err, "postgres storage: out of memory");
    for (i = 0; i < f->nh; i++) {
        f->h[i].sid = f->ids[f->sidx[f->hist[i]]];
        f->h[i].cell = &f->cells[f->hist[i]];
    }
    return GW_OK;
}

/* The slots of the series that were there (gottwall_stage_upd): the
 * old cells of those moving on spilled (pg_spill_sql, only when one may),
 * then every slot merged or replaced (pg_upd_sql); the deltas it found
 * late join h. */
static int
pg_flush_update(pg_state_t *s, pg_flush_t *f, gw_error_t *err)
{
    const pg_stmts_t *q = pg_stmts();
    PGresult *r;
    int rc;

    if (f->nupd == 0)
        return GW_OK;
    if ((rc = pg_copy(s, "pg_temp.gottwall_stage_upd", &f->arr[PG_CP_UPD],
                      err)) != GW_OK)
        return rc;
    /* A batch's series are few next to the table: look each one up in
     * the primary key (in id order) rather than read the whole key
     * for a merge or hash join. For this transaction only. */
    if ((rc = pg_exec(s, "SET LOCAL enable_mergejoin = off",
                      PGRES_COMMAND_OK, "planning", err)) != GW_OK ||
        (rc = pg_exec(s, "SET LOCAL enable_hashjoin = off",
                      PGRES_COMMAND_OK, "planning", err)) != GW_OK)
        return rc;
    if (f->check &&
        (rc = pg_runp(s, q->spill, 0, NULL, NULL, NULL, PGRES_COMMAND_OK,
                      "moving cells out of the slots", err)) != GW_OK)
        return rc;
    rc = pg_runp(s, q->upd, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                 "updating the slots", err);
    if (rc != GW_OK)
        return rc;
    rc = pg_late(r, f->upd, f->nupd, f->ids, f->slots, f->h, &f->nh, err);
    PQclear(r);
    return rc;
}

/* The cells that are no slot, into gottwall_cells (pg_cells_sql), in
 * (series_id, period, bucket) order. */
static int
pg_flush_cells(pg_state_t *s, pg_flush_t *f, gw_error_t *err)
{
    pg_arr_t *a = &f->arr[PG_H_SID];
    size_t i;
    int oom = 0;

    if (f->nh == 0)
        return GW_OK;
    qsort(f->h, f->nh, sizeof(*f->h), pg_hcell_cmp);
    for (i = 0; i < 7; i++)
        pg_arr_open(&a[i]);
    for (i = 0; i < f->nh; i++) {
        const pg_cell_t *c = f->h[i].cell;

        pg_arr_i64(&a[0], f->h[i].sid);
        pg_arr_i16(&a[1], (int) c->d->period);
        pg_arr_i64(&a[2], pg_bucket(c->d));
        pg_arr_i16(&a[3], (int) c->d->kind);
        pg_arr_f64(&a[4], c->sum);
        pg_arr_i64(&a[5], c->count);
        pg_arr_f64(&a[6], c->ts);
    }
    for (i = 0; i < 7; i++) {
        pg_arr_close(&a[i], pg_cell_oid[i]);
        oom |= a[i].oom;
    }
    if (oom)
        return gw_error_set(err, "postgres storage: out of memory");
    return pg_run_arr(s, pg_cells_sql, 7, a, NULL, PGRES_COMMAND_OK,
                      "storing a batch", err);
}

/* The timing and set cells' sketches (kinds.c), once every series has its
 * id: one entry per delta (a batch may hold a cell more than once; the
 * entries are sorted as the cells are, so each cell takes its run). */
static int
pg_flush_sketches(pg_state_t *s, pg_flush_t *f, gw_error_t *err)
{
    const gw_batch_t *b = f->batch;
    pg_cell_t *w;
    pg_sketch_t *e;
    size_t i, k = 0, nd = 0;
    int rc;

    for (i = 0; i < b->ndeltas; i++)
        nd += b->deltas[i].kind == GW_KIND_TIMING ||
              b->deltas[i].kind == GW_KIND_SET;
    if (nd == 0)
        return GW_OK;
    w = malloc(nd * sizeof(*w));
    e = malloc(nd * sizeof(*e));
    if (w == NULL || e == NULL) {
        free(w);
        free(e);
        return gw_error_set(err, "postgres storage: out of memory");
    }
    for (i = 0; i < b->ndeltas; i++)
        if (b->deltas[i].kind == GW_KIND_TIMING ||
            b->deltas[i].kind == GW_KIND_SET)
            w[k++].d = &b->deltas[i];
    qsort(w, nd, sizeof(*w), pg_cell_cmp);
    for (i = 0, k = 0; i < f->n && k < nd; i++) {
        const gw_delta_t *d = f->cells[i].d;

        for (; k < nd && pg_same_cell(d, w[k].d); k++) {
            e[k].sid = f->ids[f->sidx[i]];
            e[k].d = w[k].d;
            e[k].x = &b->data[w[k].d - b->deltas];
        }
    }
    rc = k == nd ? pg_sketches_store(s, e, nd, err)
                 : gw_error_set(err, "postgres: a timing or set delta of "
                                "the batch has no cell");
    free(w);
    free(e);
    return rc;
}

/* After the commit: the cache learns each series' id (only committed ids:
 * a rolled-back insert's ids do not exist) and the buckets its slots are
 * now at or after; old batch ids are pruned now and then. */
static void
pg_flush_committed(pg_state_t *s, pg_flush_t *f)
{
    size_t i;
    int k;

    for (i = 0; i < f->ns; i++) {
        uint32_t *kb = &f->kb[i * PG_SLOTS];

        for (k = 0; k < PG_SLOTS; k++) {
            const pg_cell_t *c = f->slots[i * PG_SLOTS + k].cell;

            if (c != NULL)
                kb[k] = pg_kb(pg_bucket(c->d));
        }
        pg_cache_put(&s->cache, f->series[i], f->ids[i], kb);
    }
    pg_prune(s);
}

/* The transaction of a prepared flush. */
static int
pg_flush_run(pg_state_t *s, pg_flush_t *f, const char *id, gw_error_t *err)
{
    PGresult *r = NULL;
    uint64_t saturated;
    int rc, seen = 0;

    if ((rc = pg_exec(s, "BEGIN", PGRES_COMMAND_OK, "BEGIN", err)) != GW_OK)
        return rc;
    rc = pg_flush_batch_id(s, id, &seen, err);
    if (rc == GW_OK && seen) {
        gw_log_debug(s->ctx, "batch %s was already applied; skipped", id);
        return pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
    }
    if (rc == GW_OK)
        rc = pg_flush_insert(s, f, err);
    if (rc == GW_OK)
        rc = pg_flush_upd_rows(f, err);
    if (rc == GW_OK)
        rc = pg_flush_update(s, f, err);
    if (rc == GW_OK)
        rc = pg_flush_cells(s, f, err);
    if (rc == GW_OK)
        rc = pg_flush_sketches(s, f, err);
    if (rc == GW_OK)
        rc = pg_run_arr(s, pg_metrics_sql, 3, &f->arr[PG_M_PROJECT], &r,
                        PGRES_TUPLES_OK, "storing the metrics", err);
    if (rc != GW_OK) {
        pg_rollback(s);
        return rc;
    }
    /* The sums the statements saturated (PG_SUM, sql.c). */
    saturated = f->saturated;
    if (PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0))
        saturated += (uint64_t) pg_get_int(r, 0, 0);
    PQclear(r);
    rc = pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
    if (rc == GW_OK) {
        pg_flush_committed(s, f);
        if (saturated > 0)
            s->ctx->host->count(s->ctx, GW_COUNTER_SATURATED, NULL,
                                saturated);
    }
    return rc;
}

static void
pg_flush_free(pg_flush_t *f)
{
    size_t i;

    for (i = 0; i < PG_NARRS; i++)
        free(f->arr[i].p);
    free(f->cells);
    free(f->sidx);
    free(f->series);
    free(f->ids);
    free(f->st);
    free(f->slots);
    free(f->hist);
    free(f->upd);
    free(f->h);
    free(f->kb);
    free(f->pairs);
}

int
pg_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    pg_state_t *s = state;
    pg_flush_t f;
    int rc;

    if (batch->ndeltas == 0)
        return GW_OK;
    if ((rc = pg_flush_check(batch, err)) != GW_OK ||
        (rc = pg_connect(s, err)) != GW_OK || (rc = pg_stage(s, err)) != GW_OK)
        return rc;
    memset(&f, 0, sizeof(f));
    f.batch = batch;
    rc = pg_flush_prepare(&f, batch, &s->cache, err);
    /* The partitions the cells need, before the transaction: a flush
     * never holds its row locks while DDL waits. */
    if (rc == GW_OK)
        rc = pg_parts_ensure(s, f.cells, f.n, err);
    if (rc == GW_OK)
        rc = pg_flush_new_rows(&f, err);
    if (rc == GW_OK) {
        s->sqlstate[0] = '\0';
        rc = pg_flush_run(s, &f, batch->id ? batch->id : "", err);
    }
    if (rc == GW_ERR && strcmp(s->sqlstate, "23514") == 0) {
        /* No partition for a row: another process removed one this
         * connection knew, or a slot moved into a bucket whose partition
         * is gone. Made again (those of every slot), then the core
         * retries the batch. */
        gw_error_t e;

        if (pg_parts_heal(s, &e) != GW_OK)
            gw_log_warning(s->ctx, "%s", e.msg);
        rc = GW_AGAIN;
    }
    pg_flush_free(&f);
    return rc;
}
