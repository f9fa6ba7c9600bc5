/*
 * plugins/storage/postgres/part.c: the partitions of gottwall_cells
 * (schema 5).
 *
 * gottwall_cells is partitioned by LIST (period); each period but all is
 * partitioned again by RANGE (bucket), one partition per span: a UTC day
 * of minutes, a week (from Monday) of hours, a calendar year of days,
 * weeks, months and years (pg_span). A partition is named after its period
 * and the date its span starts (gottwall_cells_minute_20261203), so its
 * bounds follow from its name.
 *
 * A flush never waits on DDL for long: a new partition is made as a plain
 * table and then attached (ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE
 * on the period's table, which inserts and reads do not conflict with;
 * CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE), before the
 * flush's transaction, under an advisory lock so that two processes make
 * it once. The span of now and the next one are made ahead of time, so a
 * flush at a day's first minute finds its partition there. Each
 * connection remembers the partitions it knows exist (pg_part_known).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

#define PG_PART_LOCK "7236521983416270850" /* pg_advisory_xact_lock key */

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil). */
static int64_t
pg_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

/* The civil date of day z since 1970-01-01 (civil_from_days). */
static void
pg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned) (z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}

static int64_t
pg_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* 1970-01-05, a Monday: weeks start there. */
#define PG_MONDAY 345600

void
pg_span(int period, int64_t b, int64_t *lo, int64_t *hi)
{
    int64_t y;
    unsigned m, d;

    switch (period) {
    case GW_PERIOD_MINUTE:
        *lo = pg_floor_div(b, 86400) * 86400;
        *hi = *lo + 86400;
        break;
    case GW_PERIOD_HOUR:
        *lo = pg_floor_div(b - PG_MONDAY, 604800) * 604800 + PG_MONDAY;
        *hi = *lo + 604800;
        break;
    default:
        pg_civil_from_days(pg_floor_div(b, 86400), &y, &m, &d);
        *lo = pg_days_from_civil(y, 1, 1) * 86400;
        *hi = pg_days_from_civil(y + 1, 1, 1) * 86400;
        break;
    }
    /* Buckets are in [0, PG_BUCKET_END): the first week and the last one
     * are cut to fit, so every span lies inside and none overlap. */
    if (*lo < 0)
        *lo = 0;
    if (*hi > PG_BUCKET_END)
        *hi = PG_BUCKET_END;
}

void
pg_part_name(int period, int64_t lo, char *buf, size_t size)
{
    int64_t y;
    unsigned m, d;

    pg_civil_from_days(pg_floor_div(lo, 86400), &y, &m, &d);
    snprintf(buf, size, "gottwall_cells_%s_%04lld%02u%02u",
             gw_period_name((gw_period_t) period), (long long) y, m, d);
}

int
pg_part_parse(const char *name, int *period, int64_t *lo)
{
    static const char prefix[] = "gottwall_cells_";
    int p;

    if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    name += sizeof(prefix) - 1;
    for (p = 0; p < GW_PERIOD_ALL; p++) {
        const char *pn = gw_period_name((gw_period_t) p);
        size_t n = strlen(pn);
        unsigned y, m, d;
        char tail;

        if (strncmp(name, pn, n) != 0 || name[n] != '_')
            continue;
        if (strlen(name + n + 1) != 8 ||
            sscanf(name + n + 1, "%4u%2u%2u%c", &y, &m, &d, &tail) != 3 ||
            m < 1 || m > 12 || d < 1 || d > 31)
            return 0;
        *period = p;
        *lo = pg_days_from_civil(y, m, d) * 86400;
        return 1;
    }
    return 0;
}

static int
pg_i64_cmp(const void *x, const void *y)
{
    const int64_t *a = x, *b = y;

    return (*a > *b) - (*a < *b);
}

int
pg_part_known(const pg_state_t *s, int period, int64_t lo)
{
    const pg_parts_t *k = &s->parts[period];

    return k->n > 0 && bsearch(&lo, k->lo, k->n, sizeof(*k->lo),
                               pg_i64_cmp) != NULL;
}

/* Remembers a partition that exists (quietly nothing when out of
 * memory: it is then looked for again). */
static void
pg_part_add(pg_state_t *s, int period, int64_t lo)
{
    pg_parts_t *k = &s->parts[period];
    size_t i;

    if (pg_part_known(s, period, lo))
        return;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        int64_t *v = realloc(k->lo, cap * sizeof(*v));

        if (v == NULL)
            return;
        k->lo = v;
        k->cap = cap;
    }
    for (i = k->n; i > 0 && k->lo[i - 1] > lo; i--)
        k->lo[i] = k->lo[i - 1];
    k->lo[i] = lo;
    k->n++;
}

void
pg_parts_forget(pg_state_t *s)
{
    int p;

    for (p = 0; p < GW_PERIOD_ALL; p++) {
        free(s->parts[p].lo);
        memset(&s->parts[p], 0, sizeof(s->parts[p]));
    }
    s->parts_loaded = 0;
}

/* The partitions attached now (and not being detached), from the
 * catalog. */
static int
pg_parts_load(pg_state_t *s, gw_error_t *err)
{
    PGresult *r;
    int rc, i, period;
    int64_t lo;

    pg_parts_forget(s);
    rc = pg_runp(s, pg_parts_sql, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                 "listing the partitions", err);
    if (rc != GW_OK)
        return rc;
    for (i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 0) && pg_get_int(r, i, 1) == 0 &&
            pg_part_parse(PQgetvalue(r, i, 0), &period, &lo))
            pg_part_add(s, period, lo);
    PQclear(r);
    s->parts_loaded = 1;
    return GW_OK;
}

/* The two statements that make partition name of period for [lo, hi). */
static int
pg_part_ddl(pg_state_t *s, int period, const char *name, int64_t lo,
            int64_t hi, gw_error_t *err)
{
    char sql[512];
    int rc;

    /* Full pages: a cell of an older bucket is written once (a slot moved
     * out, or a delta of an older bucket) and seldom updated after. */
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (" PG_CELL_COLUMNS ")",
             name);
    if ((rc = pg_exec(s, sql, PGRES_COMMAND_OK, "creating a partition",
                      err)) != GW_OK)
        return rc;
    snprintf(sql, sizeof(sql), "ALTER TABLE gottwall_cells_%s ATTACH"
             " PARTITION %s FOR VALUES FROM (%lld) TO (%lld)",
             gw_period_name((gw_period_t) period), name, (long long) lo,
             (long long) hi);
    return pg_exec(s, sql, PGRES_COMMAND_OK, "attaching a partition", err);
}

int
pg_part_make(pg_state_t *s, int period, int64_t lo, int in_tx,
             gw_error_t *err)
{
    char name[64];
    const char *params[1] = {name};
    int64_t hi;
    PGresult *r;
    int rc, state;

    pg_span(period, lo, &lo, &hi);
    pg_part_name(period, lo, name, sizeof(name));
    if (in_tx) { /* a migration: the schema is locked and being made */
        if ((rc = pg_part_ddl(s, period, name, lo, hi, err)) == GW_OK)
            pg_part_add(s, period, lo);
        return rc;
    }
    if ((rc = pg_exec(s, "BEGIN", PGRES_COMMAND_OK, "BEGIN", err)) != GW_OK)
        return rc;
    rc = pg_exec(s, "SET LOCAL lock_timeout = '2s'", PGRES_COMMAND_OK,
                 "creating a partition", err);
    if (rc == GW_OK)
        rc = pg_exec(s, "SELECT pg_advisory_xact_lock(" PG_PART_LOCK ")",
                     PGRES_TUPLES_OK, "locking the partitions", err);
    /* 0: no such table; 1: attached; 2: there but not attached (being
     * removed by an expiry, here or in another process). */
    if (rc == GW_OK)
        rc = pg_runp(s, "SELECT CASE WHEN to_regclass($1) IS NULL THEN 0"
                     " WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE"
                     " inhrelid = to_regclass($1) AND NOT inhdetachpending)"
                     " THEN 1 ELSE 2 END::int4", 1, NULL, params, &r,
                     PGRES_TUPLES_OK, "looking for a partition", err);
    if (rc != GW_OK) {
        pg_rollback(s);
        return rc;
    }
    state = (int) pg_get_int(r, 0, 0);
    PQclear(r);
    if (state == 2) {
        pg_rollback(s);
        gw_error_set(err, "postgres: partition %s is being removed by an "
                     "expiry; writing into it later", name);
        return GW_AGAIN;
    }
    if (state == 0)
        rc = pg_part_ddl(s, period, name, lo, hi, err);
    if (rc == GW_OK)
        rc = pg_exec(s, "COMMIT", PGRES_COMMAND_OK, "COMMIT", err);
    if (rc != GW_OK) {
        pg_rollback(s);
        return rc;
    }
    if (state == 0)
        gw_log_debug(s->ctx, "postgres: partition %s made", name);
    pg_part_add(s, period, lo);
    return GW_OK;
}

int
pg_parts_ensure(pg_state_t *s, const pg_cell_t *cells, size_t n,
                gw_error_t *err)
{
    int64_t ahead[GW_PERIOD_ALL][2], now = (int64_t) time(NULL), hi;
    unsigned used = 0;
    size_t i;
    int rc, p, k;

    if (!s->parts_loaded && (rc = pg_parts_load(s, err)) != GW_OK)
        return rc;
    for (i = 0; i < n; i++) {
        const gw_delta_t *d = cells[i].d;
        int64_t lo;

        if (d->period == GW_PERIOD_ALL)
            continue;
        used |= 1u << d->period;
        pg_span((int) d->period, d->bucket, &lo, &hi);
        if (!pg_part_known(s, (int) d->period, lo) &&
            (rc = pg_part_make(s, (int) d->period, lo, 0, err)) != GW_OK)
            return rc;
    }
    /* Ahead of time, for the periods this batch writes: the span of now
     * and the next one. A failure here only logs: the flush does not need
     * them yet. */
    for (p = 0; p < GW_PERIOD_ALL; p++) {
        if (!(used & (1u << p)) || now >= PG_BUCKET_END)
            continue;
        pg_span(p, now, &ahead[p][0], &hi);
        ahead[p][1] = hi < PG_BUCKET_END ? hi : ahead[p][0];
        for (k = 0; k < 2; k++) {
            gw_error_t e;

            if (!pg_part_known(s, p, ahead[p][k]) &&
                pg_part_make(s, p, ahead[p][k], 0, &e) != GW_OK)
                gw_log_warning(s->ctx, "%s (made at the next flush)", e.msg);
        }
    }
    return GW_OK;
}

int
pg_parts_heal(pg_state_t *s, gw_error_t *err)
{
    PGresult *r;
    int rc;

    if ((rc = pg_parts_load(s, err)) != GW_OK)
        return rc;
    rc = pg_runp(s, pg_slot_days_sql, 0, NULL, NULL, &r, PGRES_TUPLES_OK,
                 "listing the slots' partitions", err);
    if (rc != GW_OK)
        return rc;
    rc = pg_parts_make_rows(s, r, 0, err);
    PQclear(r);
    return rc;
}

int
pg_parts_make_rows(pg_state_t *s, const PGresult *r, int in_tx,
                   gw_error_t *err)
{
    int i, rc = GW_OK;

    for (i = 0; i < PQntuples(r) && rc == GW_OK; i++) {
        int period = (int) pg_get_int(r, i, 0);
        int64_t lo, hi;

        pg_span(period, pg_get_int(r, i, 1), &lo, &hi);
        if (!pg_part_known(s, period, lo))
            rc = pg_part_make(s, period, lo, in_tx, err);
    }
    return rc;
}
