/*
 * plugins/storage/postgres/batch.c: a flush batch in memory, before any
 * of it goes to the server.
 *
 * The deltas are checked, sorted by the primary key (the lock order every
 * writer shares), and the deltas of one cell merged by its kind's rule;
 * pg_scan then walks the cells into series, each series' slots (the
 * newest bucket of each period) and the older cells, and collects the
 * metrics.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

const char *
pg_fname(const gw_delta_t *d)
{
    return d->filter_name ? d->filter_name : "";
}

const char *
pg_fvalue(const gw_delta_t *d)
{
    return d->filter_value ? d->filter_value : "";
}

/* gw_delta_check, and the values must be finite. */
int
pg_check_delta(const gw_delta_t *d, size_t i, gw_error_t *err)
{
    if (gw_delta_check(d, i, err) != GW_OK)
        return GW_ERR;
    if (!isfinite(d->sum) || !isfinite(d->ts))
        return gw_error_set(err, "delta %zu has a value that is not finite",
                            i);
    /* The partitions cover event times (years 1970 to 9999). */
    if (d->period != GW_PERIOD_ALL &&
        (d->bucket < 0 || d->bucket >= PG_BUCKET_END))
        return gw_error_set(err, "delta %zu has bucket %lld, outside 0 to "
                            "253402300799 (1970 to 9999)", i,
                            (long long) d->bucket);
    return GW_OK;
}

/* strcmp, at once for the same pointer: the core's batches hold each
 * distinct string once, so the deltas of one metric share its name. */
static inline int
pg_strcmp(const char *a, const char *b)
{
    return a == b ? 0 : strcmp(a, b);
}

/* Orders cells by the primary key (the lock order of every writer). The
 * byte order of strcmp, not the database's collation: any fixed order
 * serves. Ties keep the batch order (index). */
int
pg_cell_cmp(const void *x, const void *y)
{
    const gw_delta_t *a = ((const pg_cell_t *) x)->d;
    const gw_delta_t *b = ((const pg_cell_t *) y)->d;
    int c;

    if ((c = pg_strcmp(a->project, b->project)) != 0 ||
        (c = pg_strcmp(a->metric, b->metric)) != 0 ||
        (c = pg_strcmp(pg_fname(a), pg_fname(b))) != 0 ||
        (c = pg_strcmp(pg_fvalue(a), pg_fvalue(b))) != 0)
        return c;
    if ((a->filter_name != NULL) != (b->filter_name != NULL))
        return a->filter_name != NULL ? 1 : -1;
    if (a->period != b->period)
        return a->period < b->period ? -1 : 1;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return (a > b) - (a < b);
}

int
pg_same_cell(const gw_delta_t *a, const gw_delta_t *b)
{
    return a->period == b->period && a->bucket == b->bucket &&
           (a->filter_name != NULL) == (b->filter_name != NULL) &&
           pg_strcmp(a->project, b->project) == 0 &&
           pg_strcmp(a->metric, b->metric) == 0 &&
           pg_strcmp(pg_fname(a), pg_fname(b)) == 0 &&
           pg_strcmp(pg_fvalue(a), pg_fvalue(b)) == 0;
}

/* Sorts and merges the deltas into cells; *n set. NULL: out of memory. */
pg_cell_t *
pg_merge(const gw_batch_t *batch, size_t *n, uint64_t *saturated)
{
    pg_cell_t *c = malloc(batch->ndeltas * sizeof(*c));
    size_t i, m = 0;

    if (c == NULL)
        return NULL;
    for (i = 0; i < batch->ndeltas; i++) {
        c[i].d = &batch->deltas[i];
        c[i].sum = batch->deltas[i].sum;
        c[i].count = batch->deltas[i].count;
        c[i].ts = batch->deltas[i].ts;
    }
    qsort(c, batch->ndeltas, sizeof(*c), pg_cell_cmp);
    for (i = 0; i < batch->ndeltas; i++) {
        if (m > 0 && pg_same_cell(c[m - 1].d, c[i].d)) {
            pg_cell_t *t = &c[m - 1];

            t->count += c[i].count;
            if (c[i].d->kind == GW_KIND_GAUGE) {
                if (c[i].ts >= t->ts) { /* ties: the later delta */
                    t->sum = c[i].sum;
                    t->ts = c[i].ts;
                }
            } else {
                t->sum = gw_sum_add(t->sum, c[i].sum, saturated);
            }
            continue;
        }
        c[m++] = c[i];
    }
    *n = m;
    return c;
}

/* Same series (the cells are sorted, so a batch's series are runs). */
static int
pg_same_series(const gw_delta_t *a, const gw_delta_t *b)
{
    return (a->filter_name != NULL) == (b->filter_name != NULL) &&
           pg_strcmp(a->project, b->project) == 0 &&
           pg_strcmp(a->metric, b->metric) == 0 &&
           pg_strcmp(pg_fname(a), pg_fname(b)) == 0 &&
           pg_strcmp(pg_fvalue(a), pg_fvalue(b)) == 0;
}

/* Walks the sorted, merged cells: the series (series[k] its first delta,
 * ids[k] its cached id or -1), each series' slots (slots[k * PG_SLOTS +
 * period]: the newest bucket of the period), and the cells that are no
 * slot (hist, *nh: older buckets of the batch); sidx[i] is cell i's series.
 * Fills the metrics arrays (project, metric, kind). Returns the number of
 * series. */
size_t
pg_scan(pg_arr_t *metrics, const pg_cell_t *cells, size_t n, size_t *sidx,
        const gw_delta_t **series, int64_t *ids, uint32_t *kb,
        pg_slot_t *slots, size_t *hist, size_t *nh, const pg_cache_t *cache)
{
    const gw_delta_t *ps = NULL, *pm = NULL;
    size_t i, ns = 0;

    *nh = 0;
    for (i = 0; i < n; i++) {
        const gw_delta_t *d = cells[i].d;

        if (pm == NULL || strcmp(pm->project, d->project) != 0 ||
            strcmp(pm->metric, d->metric) != 0) {
            pg_arr_str(&metrics[0], d->project);
            pg_arr_str(&metrics[1], d->metric);
            pg_arr_i16(&metrics[2], (int) d->kind);
            pm = d;
        }
        if (ps == NULL || !pg_same_series(ps, d)) {
            ids[ns] = pg_cache_get(cache, d, &kb[ns * PG_SLOTS]);
            memset(&slots[ns * PG_SLOTS], 0, PG_SLOTS * sizeof(*slots));
            ps = d;
            series[ns++] = d;
        }
        sidx[i] = ns - 1;
        /* Sorted by period then bucket within the series: the last cell
         * of a period is its slot, the ones before go to the cells. */
        if (slots[(ns - 1) * PG_SLOTS + d->period].cell != NULL)
            hist[(*nh)++] = (size_t) (slots[(ns - 1) * PG_SLOTS + d->period]
                                          .cell - cells);
        slots[(ns - 1) * PG_SLOTS + d->period].cell = &cells[i];
    }
    return ns;
}
