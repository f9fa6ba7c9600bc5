/*
 * tests/ingest/test_table.c: tables expanded into periods and merged into
 * batches (ingest/table.c).
 *
 * Events go in through gw__ingest_json (so the tables are real ones), then
 * gw__batch_add_table expands them: exact bucket ids for all seven
 * periods, exact sums and counts by kind, the gauge's tie rule across
 * tables, many tables merged into one batch (a storage outage), and
 * MAX_PENDING_SERIES drops counted in events, all or nothing per event.
 *
 * Out of memory: every allocation of a request, in turn, is made to fail
 * (gw__ingest_alloc_fail_after; jansson's go through the same hook); the
 * request must be refused with GW__REJECT_NOMEM leaving nothing behind, and
 * the same request sent again must count exactly once. Merging a table
 * into a batch when an allocation fails keeps or drops each group whole.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <float.h>

#include "base/metrics.h"
#include "ingest/bucket.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"
#include "ingest/table_int.h"

#define ALL_PERIODS 0x7fu
#define MINUTE_ONLY (1u << GW_PERIOD_MINUTE)

static gw__ingest_t *ing;
static gw__batch_t *batch;
static gw__limits_t limits;

static double
fake_now(void)
{
    return 1392454739.0;
}

static void
setup(void)
{
    gw__limits_t l;

    l.max_event_bytes = 65536;
    l.max_filters = 32;
    l.max_filter_values = 64;
    l.max_name_bytes = 255;
    l.max_batch_events = 10000;
    l.max_series = 100000;
    l.max_pending_series = 1000000;
    limits = l;
    ing = gw__ingest_new(&l, fake_now);
    batch = gw__batch_new("node-1:7");
}

static void
teardown(void)
{
    gw__ingest_free(ing);
    gw__batch_free(batch);
}

#define IN(json) in_at(__LINE__, (json))
static void
in_at(int line, const char *json)
{
    gw_error_t err = {{0}};

    ck_assert_msg(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                  json, strlen(json), 1, NULL, NULL,
                                  &err) == GW_OK,
                  "line %d: %s: %s", line, json, err.msg);
}

/* Swaps the table out and merges it into the batch; returns the events
 * dropped. */
static uint64_t
merge(unsigned periods)
{
    gw__table_t *t = gw__ingest_swap(ing);
    uint64_t dropped = 12345;

    ck_assert_ptr_nonnull(t);
    gw__batch_add_table(batch, t, periods, &dropped);
    gw__table_free(t);
    return dropped;
}

static int
str_eq_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static const gw_delta_t *
find(const char *metric, const char *fname, const char *fvalue,
     gw_period_t p, int64_t bucket)
{
    const gw_batch_t *b = gw__batch_view(batch);
    const gw_delta_t *found = NULL;
    size_t i;

    for (i = 0; i < b->ndeltas; i++) {
        const gw_delta_t *d = &b->deltas[i];

        if (strcmp(d->metric, metric) == 0 &&
            str_eq_null(d->filter_name, fname) &&
            str_eq_null(d->filter_value, fvalue) && d->period == p &&
            d->bucket == bucket) {
            ck_assert_msg(found == NULL, "two deltas for one key");
            found = d;
        }
    }
    return found;
}

/* The delta must exist with exactly these values. */
#define ck_delta(m, fn, fv, p, bucket, kind_, sum_, count_, ts_)             \
    do {                                                                     \
        const gw_delta_t *d_ = find((m), (fn), (fv), (p), (bucket));         \
        ck_assert_msg(d_ != NULL, "no delta %s %s=%s %s %lld", (m),          \
                      (fn) ? (fn) : "-", (fv) ? (fv) : "-",                  \
                      gw_period_name(p), (long long) (bucket));              \
        ck_assert_str_eq(d_->project, "test_project");                       \
        ck_assert_int_eq(d_->kind, (kind_));                                 \
        ck_assert_double_eq(d_->sum, (sum_));                                \
        ck_assert_int_eq(d_->count, (count_));                               \
        ck_assert_double_eq(d_->ts, (ts_));                                  \
    } while (0)

START_TEST(test_expand_all_periods)
{
    static const int64_t buckets[GW_PERIOD_COUNT] = {
        1392454680, /* minute 08:58 */
        1392451200, /* hour 08:00 */
        1392422400, /* day 2014-02-15 */
        1391990400, /* week: Mon 2014-02-10 */
        1391212800, /* month 2014-02-01 */
        1388534400, /* year 2014-01-01 */
        0};         /* all */
    const gw_batch_t *b;
    uint64_t dropped;
    int p;

    IN("{\"n\": \"orders\", \"ts\": 1392454739, \"v\": 2, "
       "\"f\": {\"status\": \"paid\"}}");
    IN("{\"n\": \"orders\", \"ts\": 1392454739.5, \"v\": 3}");
    dropped = merge(ALL_PERIODS);
    ck_assert_uint_eq(dropped, 0);
    b = gw__batch_view(batch);
    ck_assert_str_eq(b->id, "node-1:7");
    ck_assert_uint_eq(b->ndeltas, 14);
    ck_assert_uint_eq(gw__batch_size(batch), 14);
    ck_assert_uint_eq(gw__batch_events(batch), 2);
    for (p = 0; p < GW_PERIOD_COUNT; p++) {
        ck_delta("orders", NULL, NULL, (gw_period_t) p, buckets[p],
                 GW_KIND_COUNTER, 5, 2, 0);
        ck_delta("orders", "status", "paid", (gw_period_t) p, buckets[p],
                 GW_KIND_COUNTER, 2, 1, 0);
    }
}
END_TEST

START_TEST(test_retention_cuts)
{
    /* ts 1392454739 (2014-02-15 08:58:59): its minute 1392454680 is past
     * a cut at 08:59, its hour 08:00 is not past one at 08:00: only the
     * minute deltas are left out, and counted (total and filter). */
    int64_t cuts[GW_PERIOD_COUNT], retention[GW_PERIOD_COUNT] = {0};
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        cuts[p] = INT64_MIN;
    cuts[GW_PERIOD_MINUTE] = 1392454740;
    cuts[GW_PERIOD_HOUR] = 1392451200;
    gw__batch_set_cuts(batch, cuts);
    IN("{\"n\": \"orders\", \"ts\": 1392454739, \"f\": {\"s\": \"x\"}}");
    IN("{\"n\": \"orders\", \"ts\": 1392454799}"); /* 08:59:59: kept */
    ck_assert_uint_eq(merge(ALL_PERIODS), 0);
    ck_assert_ptr_null(find("orders", NULL, NULL, GW_PERIOD_MINUTE,
                            1392454680));
    ck_assert_ptr_null(find("orders", "s", "x", GW_PERIOD_MINUTE,
                            1392454680));
    ck_delta("orders", NULL, NULL, GW_PERIOD_MINUTE, 1392454740,
             GW_KIND_COUNTER, 1, 1, 0);
    ck_delta("orders", NULL, NULL, GW_PERIOD_HOUR, 1392451200,
             GW_KIND_COUNTER, 2, 2, 0);
    ck_delta("orders", "s", "x", GW_PERIOD_HOUR, 1392451200,
             GW_KIND_COUNTER, 1, 1, 0);
    ck_assert_uint_eq(gw__batch_skipped(batch, GW_PERIOD_MINUTE), 2);
    ck_assert_uint_eq(gw__batch_skipped(batch, GW_PERIOD_HOUR), 0);
    ck_assert_uint_eq(gw__batch_events(batch), 2);
    /* The cuts of a retention: the bucket holding now - retention is the
     * oldest kept; all never has one. */
    retention[GW_PERIOD_MINUTE] = 86400;
    retention[GW_PERIOD_HOUR] = 90 * 86400;
    retention[GW_PERIOD_ALL] = 86400;
    gw__retention_cuts(retention, 1392454739, cuts);
    ck_assert_int_eq(cuts[GW_PERIOD_MINUTE], 1392454739 - 86400 - 59);
    ck_assert_int_eq(cuts[GW_PERIOD_HOUR],
                     gw__bucket_start(GW_PERIOD_HOUR,
                                      1392454739 - 90 * 86400));
    ck_assert(cuts[GW_PERIOD_DAY] == INT64_MIN);
    ck_assert(cuts[GW_PERIOD_ALL] == INT64_MIN);
}
END_TEST

START_TEST(test_expand_period_subset)
{
    const gw_batch_t *b;

    IN("{\"n\": \"x\", \"ts\": 1392454739, \"f\": {\"s\": \"1\"}}");
    merge((1u << GW_PERIOD_DAY) | (1u << GW_PERIOD_ALL) |
          (1u << GW_PERIOD_MONTH));
    b = gw__batch_view(batch);
    ck_assert_uint_eq(b->ndeltas, 6);
    ck_delta("x", NULL, NULL, GW_PERIOD_DAY, 1392422400, GW_KIND_COUNTER, 1,
             1, 0);
    ck_delta("x", "s", "1", GW_PERIOD_MONTH, 1391212800, GW_KIND_COUNTER, 1,
             1, 0);
    ck_delta("x", "s", "1", GW_PERIOD_ALL, 0, GW_KIND_COUNTER, 1, 1, 0);
    ck_assert_ptr_null(find("x", NULL, NULL, GW_PERIOD_MINUTE, 1392454680));
}
END_TEST

START_TEST(test_avg_is_exact_over_minutes)
{
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 10, \"ts\": 1392454739}");
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 20, \"ts\": 1392454770}");
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 30, \"ts\": 1392454775}");
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 60, \"ts\": 1392455400}");
    merge(ALL_PERIODS);
    /* Minutes 08:58, 08:59 (two events), 09:10. */
    ck_delta("lat", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_AVG,
             10, 1, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_MINUTE, 1392454740, GW_KIND_AVG,
             50, 2, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_MINUTE, 1392455400, GW_KIND_AVG,
             60, 1, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_HOUR, 1392451200, GW_KIND_AVG, 60,
             3, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_HOUR, 1392454800, GW_KIND_AVG, 60,
             1, 0);
    /* The day's average is 120 / 4 = 30, not the mean of minute means. */
    ck_delta("lat", NULL, NULL, GW_PERIOD_DAY, 1392422400, GW_KIND_AVG, 120,
             4, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_AVG, 120, 4, 0);
    ck_assert_uint_eq(gw__batch_size(batch), 3 + 2 + 5);
}
END_TEST

START_TEST(test_calendar_edges)
{
    /* 2014-01-31 23:59:30 and 2014-02-01 00:00:10: two months, one week
     * (Mon 2014-01-27), one year. 2014-01-01 12:00 is in the week of Mon
     * 2013-12-30. */
    IN("{\"n\": \"e\", \"ts\": \"2014-01-31T23:59:30\"}");
    IN("{\"n\": \"e\", \"ts\": \"2014-02-01T00:00:10\", \"v\": 2}");
    IN("{\"n\": \"e\", \"ts\": \"2014-01-01T12:00:00\", \"v\": 4}");
    IN("{\"n\": \"e\", \"ts\": \"2013-12-31T23:59:59\", \"v\": 8}");
    merge(ALL_PERIODS);
    ck_delta("e", NULL, NULL, GW_PERIOD_MONTH, 1388534400, GW_KIND_COUNTER,
             5, 2, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_MONTH, 1391212800, GW_KIND_COUNTER,
             2, 1, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_MONTH, 1385856000, GW_KIND_COUNTER,
             8, 1, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_WEEK, 1390780800, GW_KIND_COUNTER, 3,
             2, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_WEEK, 1388361600, GW_KIND_COUNTER,
             12, 2, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_YEAR, 1388534400, GW_KIND_COUNTER, 7,
             3, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_YEAR, 1356998400, GW_KIND_COUNTER, 8,
             1, 0);
    ck_delta("e", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_COUNTER, 15, 4, 0);
}
END_TEST

START_TEST(test_gauge_expansion)
{
    /* Two minutes of one hour: the hour keeps the newest. */
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 5, \"ts\": 1392454775}");
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 3, \"ts\": 1392454739}");
    merge(ALL_PERIODS);
    ck_delta("g", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_GAUGE, 3,
             1, 1392454739);
    ck_delta("g", NULL, NULL, GW_PERIOD_MINUTE, 1392454740, GW_KIND_GAUGE, 5,
             1, 1392454775);
    ck_delta("g", NULL, NULL, GW_PERIOD_HOUR, 1392451200, GW_KIND_GAUGE, 5, 2,
             1392454775);
    ck_delta("g", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_GAUGE, 5, 2,
             1392454775);
}
END_TEST

START_TEST(test_gauge_ties_across_tables)
{
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 1, \"ts\": 1392454739}");
    merge(MINUTE_ONLY);
    /* Same ts in a later table: the later one merged wins. */
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 2, \"ts\": 1392454739}");
    merge(MINUTE_ONLY);
    ck_delta("g", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_GAUGE, 2,
             2, 1392454739);
    /* An older ts merged later does not. */
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 9, \"ts\": 1392454738.5}");
    merge(MINUTE_ONLY);
    ck_delta("g", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_GAUGE, 2,
             3, 1392454739);
    /* A newer one does. */
    IN("{\"n\": \"g\", \"a\": \"gauge\", \"v\": -1, \"ts\": 1392454739.25}");
    merge(MINUTE_ONLY);
    ck_delta("g", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_GAUGE, -1,
             4, 1392454739.25);
    ck_assert_uint_eq(gw__batch_size(batch), 1);
    ck_assert_uint_eq(gw__batch_events(batch), 4);
}
END_TEST

START_TEST(test_merge_two_tables)
{
    IN("{\"n\": \"c\", \"v\": 2, \"f\": {\"s\": [\"a\", \"b\"]}}");
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 10}");
    merge(ALL_PERIODS);
    ck_assert_uint_eq(gw__batch_size(batch), 28);
    IN("{\"n\": \"c\", \"a\": \"decr\", \"v\": 5, \"f\": {\"s\": \"b\"}}");
    IN("{\"n\": \"c\", \"f\": {\"s\": \"new\"}}");
    IN("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 20}");
    merge(ALL_PERIODS);
    ck_assert_uint_eq(gw__batch_size(batch), 35);
    ck_assert_uint_eq(gw__batch_events(batch), 5);
    ck_delta("c", NULL, NULL, GW_PERIOD_DAY, 1392422400, GW_KIND_COUNTER, -2,
             3, 0);
    ck_delta("c", "s", "a", GW_PERIOD_WEEK, 1391990400, GW_KIND_COUNTER, 2, 1,
             0);
    ck_delta("c", "s", "b", GW_PERIOD_WEEK, 1391990400, GW_KIND_COUNTER, -3,
             2, 0);
    ck_delta("c", "s", "new", GW_PERIOD_YEAR, 1388534400, GW_KIND_COUNTER, 1,
             1, 0);
    ck_delta("lat", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_AVG, 30, 2, 0);
}
END_TEST

/* Adds sum to ("test_project", metric) at the minute of fake_now, with
 * one filter s=a, straight into t (values past 1e300 cannot come in as
 * events: this is what some 10^8 of them in one cell would add up to). */
static void
table_add(gw__table_t *t, const char *metric, gw_kind_t kind, double sum)
{
    gw__str_t ps = {"test_project", 12}, ms = {metric, strlen(metric)};
    gw__pfilter_t f = {{"s", 1}, {"a", 1}, 0};
    uint64_t h = gw__pm_hash(ps.s, ps.n, ms.s, ms.n);

    ck_assert_int_eq(gw__table_add(t, h, ps, ms, 1392454680, kind, sum,
                                   fake_now(), &f, 1),
                     GW_OK);
}

static uint64_t
saturated(void)
{
    return gw__metrics_get(GW__SATURATED_AGGREGATOR, GW_COUNTER_SATURATED,
                           NULL);
}

/* Adds sum to (project, metric) at minute 1392454680, with filter name=value
 * if name is not NULL, straight into t; the strings' lengths given. */
static void
key_add(gw__table_t *t, const char *project, const char *metric, size_t mlen,
        const char *name, size_t nlen, const char *value, size_t vlen,
        double sum)
{
    gw__str_t ps = {project, strlen(project)}, ms = {metric, mlen};
    gw__pfilter_t f = {{name, nlen}, {value, vlen}, 0};
    uint64_t h = gw__pm_hash(ps.s, ps.n, ms.s, ms.n);

    ck_assert_int_eq(gw__table_add(t, h, ps, ms, 1392454680, GW_KIND_COUNTER,
                                   sum, fake_now(), &f, name ? 1 : 0),
                     GW_OK);
}

/* The all-time delta of (project, metric[0..mlen), filter) in the batch. */
static const gw_delta_t *
key_find(const char *project, const char *metric, size_t mlen,
         const char *name, size_t nlen, const char *value, size_t vlen)
{
    const gw_batch_t *b = gw__batch_view(batch);
    const gw_delta_t *d;
    size_t i;

    for (i = 0; i < b->ndeltas; i++) {
        d = &b->deltas[i];
        if (strcmp(d->project, project) == 0 && strlen(d->metric) == mlen &&
            memcmp(d->metric, metric, mlen) == 0 &&
            (name == NULL ? d->filter_name == NULL
                          : d->filter_name != NULL &&
                                strlen(d->filter_name) == nlen &&
                                memcmp(d->filter_name, name, nlen) == 0 &&
                                strlen(d->filter_value) == vlen &&
                                memcmp(d->filter_value, value, vlen) == 0))
            return d;
    }
    return NULL;
}

/* The table's keys (issue 18: a group's project index and metric, a
 * filter series' name and value, packed in its arena) hold names of every
 * length MAX_NAME_LENGTH allows (up to 65,535 bytes: from 255 on a
 * length takes three bytes), several projects, enough series that the
 * slots grow (which makes every hash again from the keys), and a mark
 * undone (slots shifted back, a project taken out again). */
START_TEST(test_table_keys)
{
    static const size_t lens[] = {1, 254, 255, 256, 65535};
    static char big[65536], big2[65536];
    gw__table_t *t = gw__table_new(4, 4);
    const char *projects[] = {"p0", "project_one"};
    gw__table_mark_t m;
    const gw_delta_t *d;
    char name[16];
    size_t i, k, keys;
    gw_kind_t kind;
    uint64_t h;
    gw__str_t ps = {"p2", 2}, ms;

    ck_assert_ptr_nonnull(t);
    memset(big, 'm', sizeof(big));
    memset(big2, 'v', sizeof(big2));
    for (k = 0; k < 2; k++)
        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            key_add(t, projects[k], big, lens[i], NULL, 0, NULL, 0, 1);
            key_add(t, projects[k], big, lens[i], big2, lens[4 - i], big,
                    lens[i], 2);
        }
    for (i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "m%zu", i);
        key_add(t, projects[i % 2], name, strlen(name), "s", 1, "a", 1, 3);
    }
    keys = gw__table_keys(t);
    ck_assert_uint_eq(keys, 2 * 5 * 2 + 3000 * 2);
    /* Made since the mark, then taken out: a new project's group, a new
     * filter series of an old group. */
    gw__table_mark(t, &m);
    key_add(t, "p2", "m1", 2, "s", 1, "b", 1, 5);
    key_add(t, projects[1], "m1", 2, "s", 1, "c", 1, 5);
    ck_assert_uint_eq(gw__table_keys(t), keys + 3);
    gw__table_undo(t, &m);
    ck_assert_uint_eq(gw__table_keys(t), keys);
    ms.s = "m1";
    ms.n = 2;
    h = gw__pm_hash(ps.s, ps.n, ms.s, ms.n);
    ck_assert_int_eq(gw__table_find(t, h, ps, ms, 1392454680, &kind), -1);
    /* Every series is found again after the undo's shifts. */
    for (i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "m%zu", i);
        key_add(t, projects[i % 2], name, strlen(name), "s", 1, "a", 1, 3);
    }
    ck_assert_uint_eq(gw__table_keys(t), keys);
    gw__batch_add_table(batch, t, 1u << GW_PERIOD_ALL, NULL);
    ck_assert_uint_eq(gw__batch_view(batch)->ndeltas, keys);
    for (k = 0; k < 2; k++)
        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            d = key_find(projects[k], big, lens[i], NULL, 0, NULL, 0);
            ck_assert_msg(d != NULL, "no total of a %zu-byte metric", lens[i]);
            ck_assert_double_eq(d->sum, 3);
            ck_assert_int_eq(d->count, 2);
            d = key_find(projects[k], big, lens[i], big2, lens[4 - i], big,
                         lens[i]);
            ck_assert_msg(d != NULL, "no filter series of a %zu-byte metric",
                          lens[i]);
            ck_assert_double_eq(d->sum, 2);
            ck_assert_int_eq(d->count, 1);
        }
    for (i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "m%zu", i);
        d = key_find(projects[i % 2], name, strlen(name), "s", 1, "a", 1);
        ck_assert_msg(d != NULL, "no %s s=a", name);
        ck_assert_double_eq(d->sum, 6);
        ck_assert_int_eq(d->count, 2);
    }
    gw__table_free(t);
}
END_TEST

/* The table's hash before it was keyed: FNV-1a over project, a 0xff
 * separator and metric, then the group's mix with the minute. */
static uint64_t
fnv_group_hash(const char *metric, size_t mlen, int64_t minute)
{
    const char *p = "test_project";
    uint64_t h = UINT64_C(14695981039346656037);
    size_t i;

    for (i = 0; i < 12; i++)
        h = (h ^ (unsigned char) p[i]) * UINT64_C(1099511628211);
    h = (h ^ 0xffu) * UINT64_C(1099511628211);
    for (i = 0; i < mlen; i++)
        h = (h ^ (unsigned char) metric[i]) * UINT64_C(1099511628211);
    return gw__hash_mix(h ^ ((uint64_t) minute * UINT64_C(0x9e3779b97f4a7c15)));
}

/* A hash flood: 2,000 metric names chosen (as anyone could, offline) so
 * that under the unkeyed hash they all start at one slot of a table of
 * 4,096 slots. Each insert then probed every name before it (2 million
 * probes; 100,000 such names, 5 * 10^9, kept a loop busy for minutes).
 * Under the process's random key they spread: no run of occupied slots
 * is longer than a random table's. */
START_TEST(test_hash_flood)
{
    gw__table_t *t = gw__table_new(4, 4);
    char names[2000][16];
    size_t n = 0, i, run = 0, longest = 0;
    unsigned long long k;
    int len;

    ck_assert_ptr_nonnull(t);
    for (k = 0; n < 2000; k++) {
        len = snprintf(names[n], sizeof(names[n]), "k%llx", k);
        if ((fnv_group_hash(names[n], (size_t) len, 1392454680) & 4095) == 0)
            n++;
    }
    for (i = 0; i < n; i++)
        key_add(t, "test_project", names[i], strlen(names[i]), NULL, 0, NULL,
                0, 1);
    ck_assert_uint_eq(gw__table_groups(t), 2000);
    ck_assert_uint_eq(t->gmask + 1, 4096);
    for (i = 0; i <= t->gmask; i++) {
        run = t->gslots[i] != 0 ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    /* Random keys at half load: the longest run is some tens of slots
     * (none of 100,000 simulated tables had one above 65); the flood
     * made it 2,000. */
    ck_assert_msg(longest < 100, "a run of %zu slots", longest);
    gw__table_free(t);
}
END_TEST

/* A cell that would overflow stays at +-DBL_MAX, in the table and in the
 * batch merge, and each time is counted (issue 16). */
START_TEST(test_saturation)
{
    gw__table_t *t = gw__table_new(4, 4), *t2 = gw__table_new(4, 4);
    uint64_t before = saturated();

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(t2);
    /* In the table: 1.7e308 + 1.7e308, both the total and the filter. */
    table_add(t, "c", GW_KIND_COUNTER, 1.7e308);
    table_add(t, "c", GW_KIND_COUNTER, 1.7e308);
    ck_assert_uint_eq(saturated() - before, 2);
    /* Down again from DBL_MAX, exactly. */
    table_add(t, "c", GW_KIND_COUNTER, -1e308);
    table_add(t, "n", GW_KIND_COUNTER, -1.7e308);
    table_add(t, "n", GW_KIND_COUNTER, -1.7e308);
    table_add(t, "a", GW_KIND_AVG, 1e308);
    table_add(t, "g", GW_KIND_GAUGE, 1.7e308);
    table_add(t, "g", GW_KIND_GAUGE, 1.7e308);
    ck_assert_uint_eq(saturated() - before, 4);
    gw__batch_add_table(batch, t, MINUTE_ONLY | (1u << GW_PERIOD_ALL),
                        NULL);
    ck_assert_uint_eq(saturated() - before, 4);
    ck_delta("c", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_COUNTER,
             DBL_MAX - 1e308, 3, 0);
    ck_delta("c", "s", "a", GW_PERIOD_ALL, 0, GW_KIND_COUNTER,
             DBL_MAX - 1e308, 3, 0);
    ck_delta("n", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_COUNTER, -DBL_MAX, 2,
             0);
    ck_delta("g", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_GAUGE, 1.7e308, 2,
             fake_now());
    /* In the batch merge: a second table's cells on top. */
    table_add(t2, "c", GW_KIND_COUNTER, 1.5e308);
    table_add(t2, "n", GW_KIND_COUNTER, 1e308);
    table_add(t2, "a", GW_KIND_AVG, 1.7976931348623157e308);
    gw__batch_add_table(batch, t2, MINUTE_ONLY | (1u << GW_PERIOD_ALL),
                        NULL);
    /* c: total and filter, minute and all; a: the same. */
    ck_assert_uint_eq(saturated() - before, 4 + 4 + 4);
    ck_delta("c", NULL, NULL, GW_PERIOD_MINUTE, 1392454680, GW_KIND_COUNTER,
             DBL_MAX, 4, 0);
    ck_delta("c", "s", "a", GW_PERIOD_ALL, 0, GW_KIND_COUNTER, DBL_MAX, 4, 0);
    ck_delta("n", "s", "a", GW_PERIOD_ALL, 0, GW_KIND_COUNTER,
             -DBL_MAX + 1e308, 3, 0);
    ck_delta("a", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_AVG, DBL_MAX, 2, 0);
    gw__table_free(t);
    gw__table_free(t2);
}
END_TEST

START_TEST(test_many_merges)
{
    char json[128];
    const gw_batch_t *b;
    int round, i;

    /* A long outage: a table per flush keeps merging into one batch,
     * growing its arrays and string arena many times over. */
    for (round = 0; round < 40; round++) {
        for (i = 0; i <= round; i++) {
            snprintf(json, sizeof(json),
                     "{\"n\": \"metric-%d\", \"f\": {\"filter-%d\": "
                     "\"value-%d\"}, \"ts\": %d}",
                     i, i % 3, round, 1392454739 + 60 * (round % 5));
            IN(json);
        }
        merge(ALL_PERIODS);
    }
    b = gw__batch_view(batch);
    ck_assert_uint_eq(gw__batch_events(batch), 40 * 41 / 2);
    /* metric-0 was sent once per round: 40 events, 5 distinct minutes. */
    ck_delta("metric-0", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_COUNTER, 40,
             40, 0);
    ck_delta("metric-0", NULL, NULL, GW_PERIOD_MINUTE, 1392454680,
             GW_KIND_COUNTER, 8, 8, 0);
    ck_delta("metric-39", NULL, NULL, GW_PERIOD_ALL, 0, GW_KIND_COUNTER, 1, 1,
             0);
    /* Round 7 sent at 09:00:59. */
    ck_delta("metric-7", "filter-1", "value-7", GW_PERIOD_HOUR, 1392454800,
             GW_KIND_COUNTER, 1, 1, 0);
    ck_delta("metric-7", "filter-1", "value-39", GW_PERIOD_DAY, 1392422400,
             GW_KIND_COUNTER, 1, 1, 0);
    /* Every delta's strings are readable and its key distinct. */
    for (i = 0; i < (int) b->ndeltas; i++) {
        ck_assert_str_eq(b->deltas[i].project, "test_project");
        ck_assert_int_eq(strncmp(b->deltas[i].metric, "metric-", 7), 0);
        ck_assert_ptr_eq(find(b->deltas[i].metric, b->deltas[i].filter_name,
                              b->deltas[i].filter_value, b->deltas[i].period,
                              b->deltas[i].bucket),
                         &b->deltas[i]);
    }
}
END_TEST

START_TEST(test_empty_batch)
{
    const gw_batch_t *b;
    uint64_t dropped = 99;
    gw__batch_t *other = gw__batch_new("");

    b = gw__batch_view(batch);
    ck_assert_str_eq(b->id, "node-1:7");
    ck_assert_uint_eq(b->ndeltas, 0);
    ck_assert_uint_eq(gw__batch_events(batch), 0);
    gw__batch_add_table(batch, NULL, ALL_PERIODS, &dropped);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_uint_eq(gw__batch_size(batch), 0);
    /* No periods: nothing to write, nothing dropped. */
    IN("{\"n\": \"a\"}");
    ck_assert_uint_eq(merge(0), 0);
    ck_assert_uint_eq(gw__batch_size(batch), 0);
    ck_assert_str_eq(gw__batch_view(other)->id, "");
    gw__batch_free(other);
    gw__batch_free(NULL);
}
END_TEST

/* ---- out of memory ---------------------------------------------------- */

#define NOMEM_MSG "out of memory: event refused, send it again later"

static gw__ingest_t *registry;

/* One request of the out-of-memory runs. */
typedef struct oom_req_s {
    const char *json;  /* NULL: oom_ev through gw__ingest_event */
    const char *probe; /* its new metrics with other kinds, or NULL */
} oom_req_t;

static const gw_filter_t oom_ev_filters[] = {
    {"device", "web"}, {"device", "ios"}, {"status", "paid"}};
static const gw_event_t oom_ev = {NULL, "checkout", GW_ACTION_AVG, 1,
                                  1392454700, 4.5, oom_ev_filters, 3};

/* What is in the table before each request: a table that exists, with
 * groups and filter series the requests add to. */
#define OOM_BASELINE                                                         \
    "[{\"n\": \"orders\", \"v\": 3, \"f\": {\"status\": \"paid\"}},"         \
    " {\"n\": \"lat\", \"a\": \"avg\", \"v\": 10},"                          \
    " {\"n\": \"temp\", \"a\": \"gauge\", \"v\": 21.5}]"

static char oom_big[32768];

/* A new filter series under a group the table has, then 280 events over
 * 140 metrics (more than the table's and the kind map's first sizes), two
 * filters each, one of them a number. */
static const char *
oom_big_batch(void)
{
    size_t n = 0;
    int i;

    n += (size_t) snprintf(oom_big + n, sizeof(oom_big) - n,
                           "[{\"n\": \"orders\", \"f\": {\"status\": "
                           "\"big\"}}");
    for (i = 0; i < 280; i++)
        n += (size_t) snprintf(oom_big + n, sizeof(oom_big) - n,
                               ", {\"n\": \"m%03d\", \"v\": %d, \"f\": "
                               "{\"k\": \"v%d\", \"n\": %d}}",
                               i % 140, i, i % 7, i % 5);
    snprintf(oom_big + n, sizeof(oom_big) - n, "]");
    return oom_big;
}

/* A fresh ingest (sharing a fresh registry if shared) holding the
 * baseline, and no failure set. */
static void
oom_fresh(int shared)
{
    gw__ingest_alloc_fail_after(-1);
    gw__ingest_free(ing);
    gw__ingest_free(registry);
    registry = NULL;
    ing = gw__ingest_new(&limits, fake_now);
    if (shared) {
        registry = gw__ingest_new(&limits, fake_now);
        gw__ingest_share(ing, registry);
    }
    IN(OOM_BASELINE);
}

static int
oom_submit(const oom_req_t *r, gw__reject_t *why, gw_error_t *err)
{
    size_t n = 0;
    int rc;

    if (r->json == NULL)
        return gw__ingest_event(ing, "test_project", &oom_ev, why, err);
    rc = gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT, r->json,
                         strlen(r->json), 1, &n, why, err);
    ck_assert_uint_ge(n, 1);
    return rc;
}

static int
oom_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The batch's deltas, one sorted line each, in one string. */
static char *
oom_dump(gw__batch_t *b)
{
    const gw_batch_t *v = gw__batch_view(b);
    char **lines = calloc(v->ndeltas + 1, sizeof(*lines));
    size_t i, len = 1;
    char *out;

    for (i = 0; i < v->ndeltas; i++) {
        const gw_delta_t *d = &v->deltas[i];

        lines[i] = malloc(600);
        snprintf(lines[i], 600, "%s|%s|%s|%s|%d|%lld|%d|%.17g|%lld|%.17g\n",
                 d->project, d->metric, d->filter_name ? d->filter_name : "-",
                 d->filter_value ? d->filter_value : "-", (int) d->period,
                 (long long) d->bucket, (int) d->kind, d->sum,
                 (long long) d->count, d->ts);
        len += strlen(lines[i]);
    }
    qsort(lines, v->ndeltas, sizeof(*lines), oom_line_cmp);
    out = calloc(1, len);
    for (i = 0; i < v->ndeltas; i++) {
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* The table's counts and its deltas (the minute is the table's own). */
typedef struct oom_state_s {
    uint64_t events;
    size_t keys;
    char *dump;
} oom_state_t;

static void
oom_take(oom_state_t *st)
{
    gw__table_t *t = gw__ingest_swap(ing);
    gw__batch_t *b = gw__batch_new("oom");

    ck_assert_ptr_nonnull(t);
    st->events = gw__table_events(t);
    st->keys = gw__table_keys(t);
    gw__batch_add_table(b, t, MINUTE_ONLY, NULL);
    st->dump = oom_dump(b);
    gw__table_free(t);
    gw__batch_free(b);
}

/* Fails allocation k of request r (after the baseline); returns 0 when r
 * needs fewer than k allocations (and then it was accepted). */
static int
oom_fail_at(const oom_req_t *r, int shared, long k, const oom_state_t *want)
{
    gw__reject_t why = GW__REJECT_NONE;
    gw_error_t err = {{0}};
    oom_state_t got;
    size_t keys;
    int rc;

    oom_fresh(shared);
    keys = gw__ingest_pending(ing);
    gw__ingest_alloc_fail_after(k - 1);
    rc = oom_submit(r, &why, &err);
    if (gw__ingest_alloc_fail_after(-1) >= 0) {
        ck_assert_msg(rc == GW_OK, "%s", err.msg);
        return 0;
    }
    if (rc != GW_OK) {
        /* Refused, and nothing of it is left: the same request counts
         * exactly once when it comes again. */
        ck_assert_msg(rc == GW_ERR && why == GW__REJECT_NOMEM,
                      "allocation %ld of %s (shared %d): rc %d, %s: %s", k,
                      r->json ? r->json : "the event", shared, rc,
                      gw__reject_name(why), err.msg);
        ck_assert_str_eq(err.msg, NOMEM_MSG);
        ck_assert_uint_eq(gw__ingest_pending(ing), keys);
        ck_assert_int_eq(oom_submit(r, &why, &err), GW_OK);
    }
    /* (A failure something else absorbed, a cache, must not show.) */
    oom_take(&got);
    ck_assert_uint_eq(got.events, want->events);
    ck_assert_uint_eq(got.keys, want->keys);
    ck_assert_str_eq(got.dump, want->dump);
    free(got.dump);
    if (rc != GW_OK && r->probe != NULL) {
        /* Nor did the refused request fix the kinds of its new metrics. */
        oom_fresh(shared);
        gw__ingest_alloc_fail_after(k - 1);
        ck_assert_int_eq(oom_submit(r, &why, &err), GW_ERR);
        gw__ingest_alloc_fail_after(-1);
        IN(r->probe);
    }
    return 1;
}

START_TEST(test_oom_every_allocation)
{
    oom_req_t reqs[] = {
        /* One event, the fast path: a new filter series under a group
         * the table has, one value a number (the scratch arena). */
        {"{\"n\": \"orders\", \"v\": 2, \"f\": {\"status\": \"refunded\", "
         "\"code\": 42}}",
         NULL},
        {"{\"n\": \"signup\", \"a\": \"avg\", \"v\": 5, \"f\": {\"src\": "
         "[\"web\", \"app\", 3.5]}}",
         "{\"n\": \"signup\", \"a\": \"gauge\"}"},
        /* A batch through jansson (an escape), old and new metrics. */
        {"[{\"n\": \"caf\\u00e9\", \"v\": 1}, {\"n\": \"orders\", \"f\": "
         "{\"status\": \"paid\"}}, {\"n\": \"lat\", \"a\": \"avg\", \"v\": 7},"
         " {\"n\": \"new2\", \"a\": \"gauge\", \"v\": 3, \"ts\": 1392454000,"
         " \"f\": {\"x\": [true, 1e21, \"y\"]}}]",
         "[{\"n\": \"caf\\u00e9\", \"a\": \"avg\"}, {\"n\": \"new2\"}]"},
        {NULL, "{\"n\": \"checkout\"}"},
        {NULL, "[{\"n\": \"m000\", \"a\": \"avg\"}, "
               "{\"n\": \"m139\", \"a\": \"gauge\"}]"},
    };
    size_t i;
    int shared;
    long k;

    reqs[4].json = oom_big_batch();
    for (shared = 0; shared <= 1; shared++) {
        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
            oom_state_t want;
            gw_error_t err = {{0}};
            gw__reject_t why;

            oom_fresh(shared);
            ck_assert_int_eq(oom_submit(&reqs[i], &why, &err), GW_OK);
            oom_take(&want);
            for (k = 1; oom_fail_at(&reqs[i], shared, k, &want); k++)
                ;
            ck_assert_msg(k > 1, "request %zu allocates nothing", i);
            free(want.dump);
        }
    }
    gw__ingest_free(registry);
    registry = NULL;
}
END_TEST

/* The table of many groups the merge tests use: 40 metrics, each with 3
 * filter series, counters only (so merging twice doubles). */
static gw__table_t *
oom_groups_table(void)
{
    char json[256];
    int i;

    for (i = 0; i < 40; i++) {
        snprintf(json, sizeof(json),
                 "{\"n\": \"g%02d\", \"v\": %d, \"f\": {\"a\": \"x%d\", "
                 "\"b\": [%d, \"y\"]}}",
                 i, i + 1, i, i);
        IN(json);
    }
    return gw__ingest_swap(ing);
}

/* How many times the batch holds metric m's deltas (those of the
 * reference, exactly), or 0 if it holds none of them; no other count. */
static int
oom_group_times(const gw_batch_t *ref, const char *m)
{
    size_t i;
    int times = -1;

    for (i = 0; i < ref->ndeltas; i++) {
        const gw_delta_t *r = &ref->deltas[i];
        const gw_delta_t *d;
        int t;

        if (strcmp(r->metric, m) != 0)
            continue;
        d = find(m, r->filter_name, r->filter_value, r->period, r->bucket);
        t = d == NULL ? 0 : (int) (d->count / r->count);
        ck_assert_msg(d == NULL || t > 0, "%s: an empty delta", m);
        if (d != NULL) {
            ck_assert_int_eq(d->count, r->count * t);
            ck_assert_double_eq(d->sum, r->sum * t);
        }
        ck_assert_msg(times < 0 || t == times, "group %s is split", m);
        times = t;
    }
    return times;
}

START_TEST(test_oom_batch_merge)
{
    gw__table_t *t = oom_groups_table();
    gw__batch_t *ref = gw__batch_new("ref");
    uint64_t dropped, lost;
    char m[8];
    long k;
    int i, fired = 1, first[40];

    gw__batch_add_table(ref, t, ALL_PERIODS, NULL);
    for (k = 1; fired; k++) {
        gw__batch_free(batch);
        batch = gw__batch_new("node-1:7");
        /* Allocation k fails while merging: every group is in the batch
         * whole or not at all, and those not are counted as dropped. */
        gw__ingest_alloc_fail_after(k - 1);
        gw__batch_add_table(batch, t, ALL_PERIODS, &dropped);
        fired = gw__ingest_alloc_fail_after(-1) < 0;
        ck_assert_msg(!fired || dropped > 0, "allocation %ld failed", k);
        lost = 0;
        for (i = 0; i < 40; i++) {
            snprintf(m, sizeof(m), "g%02d", i);
            first[i] = oom_group_times(gw__batch_view(ref), m);
            ck_assert_msg(first[i] <= 1, "%s: %d", m, first[i]);
            lost += first[i] == 0;
        }
        ck_assert_uint_eq(dropped, lost);
        ck_assert_uint_eq(gw__batch_events(batch), 40 - lost);
        /* The batch takes the same table again: the groups dropped once
         * are there once, the others twice. */
        gw__batch_add_table(batch, t, ALL_PERIODS, &dropped);
        ck_assert_uint_eq(dropped, 0);
        for (i = 0; i < 40; i++) {
            snprintf(m, sizeof(m), "g%02d", i);
            ck_assert_int_eq(oom_group_times(gw__batch_view(ref), m),
                             first[i] + 1);
        }
        ck_assert_uint_eq(gw__batch_events(batch), 80 - lost);
        ck_assert_uint_eq(gw__batch_size(batch), gw__batch_size(ref));
    }
    ck_assert_int_gt(k, 2);
    /* A batch that could not be made holds nothing and drops it all. */
    gw__ingest_alloc_fail_after(0);
    ck_assert_ptr_null(gw__batch_new("x"));
    gw__batch_add_table(NULL, t, ALL_PERIODS, &dropped);
    ck_assert_uint_eq(dropped, 40);
    ck_assert_uint_eq(gw__batch_size(NULL), 0);
    ck_assert_uint_eq(gw__batch_events(NULL), 0);
    gw__table_free(t);
    gw__batch_free(ref);
}
END_TEST

static Suite *
batch_suite(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_expand_all_periods);
    tcase_add_test(tc, test_expand_period_subset);
    tcase_add_test(tc, test_retention_cuts);
    tcase_add_test(tc, test_avg_is_exact_over_minutes);
    tcase_add_test(tc, test_calendar_edges);
    tcase_add_test(tc, test_gauge_expansion);
    tcase_add_test(tc, test_gauge_ties_across_tables);
    tcase_add_test(tc, test_merge_two_tables);
    tcase_add_test(tc, test_many_merges);
    tcase_add_test(tc, test_saturation);
    tcase_add_test(tc, test_table_keys);
    tcase_add_test(tc, test_hash_flood);
    tcase_add_test(tc, test_empty_batch);
    suite_add_tcase(s, tc);
    /* Hundreds of runs each: more than the default 4 s on a busy box. */
    tc = tcase_create("out of memory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_oom_every_allocation);
    tcase_add_test(tc, test_oom_batch_merge);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(batch_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
