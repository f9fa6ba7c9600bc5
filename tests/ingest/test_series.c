/*
 * tests/ingest/test_series.c: the live-series limits at admission
 * (ingest/series.c through ingest/ingest.c) and MAX_PENDING_SERIES at
 * admission (gw__pending_t).
 *
 * Each limit at limit - 1, limit and limit + 1 with its exact message and
 * reason; a refused request keeps nothing; series stay known across
 * tables; seeded series count; a replay is not refused; the limits hold
 * across loops sharing a registry; and the pending bound refuses new keys
 * exactly when the deltas they could make would pass it, giving the room
 * back when the table is freed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define T 1392454739.0

static gw__ingest_t *ing, *registry, *other;

static double
fake_now(void)
{
    return T;
}

static gw__limits_t
limits(void)
{
    gw__limits_t l;

    memset(&l, 0, sizeof(l));
    l.max_event_bytes = 65536;
    l.max_filters = 32;
    l.max_filter_values = 64;
    l.max_name_bytes = 255;
    l.max_batch_events = 10000;
    l.max_series = 100;
    l.max_series_per_metric = 100;
    l.max_values_per_filter = 100;
    l.max_filters_per_metric = 100;
    l.max_pending_series = 1000000;
    return l;
}

static void
start(gw__limits_t l)
{
    ing = gw__ingest_new(&l, fake_now);
}

static void
teardown(void)
{
    gw__ingest_free(ing);
    gw__ingest_free(other);
    gw__ingest_free(registry);
    ing = other = registry = NULL;
}

#define OK(json) ok_at(__LINE__, (json))
static void
ok_at(int line, const char *json)
{
    gw_error_t err = {{0}};

    ck_assert_msg(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                  json, strlen(json), 1, NULL, NULL,
                                  &err) == GW_OK,
                  "line %d: %s refused: %s", line, json, err.msg);
}

#define BAD(json, why, msg) bad_at(__LINE__, (json), (why), (msg))
static void
bad_at(int line, const char *json, gw__reject_t why, const char *msg)
{
    gw_error_t err = {{0}};
    gw__reject_t r = GW__REJECT_NONE;

    ck_assert_msg(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                  json, strlen(json), 1, NULL, &r,
                                  &err) == GW_ERR,
                  "line %d: %s accepted", line, json);
    ck_assert_msg(strcmp(err.msg, msg) == 0, "line %d:\n got:  %s\n want: %s",
                  line, err.msg, msg);
    ck_assert_msg(r == why, "line %d: reason %s, want %s", line,
                  gw__reject_name(r), gw__reject_name(why));
}

/* Empties the current table (as a flush does). */
static void
swap_free(void)
{
    gw__table_free(gw__ingest_swap(ing));
}

START_TEST(test_values_per_filter)
{
    gw__limits_t l = limits();

    l.max_values_per_filter = 3;
    start(l);
    OK("{\"n\": \"m\", \"f\": {\"s\": \"a\"}}");
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"b\", \"c\"]}}");
    OK("{\"n\": \"m\", \"f\": {\"s\": \"a\"}}");
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"d\"}}", GW__REJECT_VALUES_PER_FILTER,
        "filter \"s\" of metric \"m\" already has 3 values, the most "
        "MAX_VALUES_PER_FILTER allows; value \"d\" is new (raise "
        "MAX_VALUES_PER_FILTER to accept more)");
    /* Another filter, and the same filter of another metric, count apart. */
    OK("{\"n\": \"m\", \"f\": {\"t\": [\"a\", \"b\", \"c\"]}}");
    OK("{\"n\": \"other\", \"f\": {\"s\": [\"d\", \"e\", \"f\"]}}");
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 2 + 3 + 3 + 3);
}
END_TEST

START_TEST(test_series_per_metric)
{
    gw__limits_t l = limits();

    l.max_series_per_metric = 4; /* the total and 3 filter series */
    start(l);
    OK("{\"n\": \"m\", \"f\": {\"s\": \"a\", \"t\": \"a\"}}");
    OK("{\"n\": \"m\", \"f\": {\"u\": \"a\"}}");
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"b\"}}", GW__REJECT_SERIES_PER_METRIC,
        "metric \"m\" already has 4 series, the most MAX_SERIES_PER_METRIC "
        "allows; s=\"b\" is new (raise MAX_SERIES_PER_METRIC to accept "
        "more)");
    OK("{\"n\": \"m\", \"f\": {\"s\": \"a\", \"t\": \"a\", \"u\": \"a\"}}");
}
END_TEST

START_TEST(test_filters_per_metric)
{
    gw__limits_t l = limits();

    l.max_filters_per_metric = 2;
    start(l);
    OK("{\"n\": \"m\", \"f\": {\"a\": \"1\", \"b\": \"1\"}}");
    OK("{\"n\": \"m\", \"f\": {\"a\": \"2\"}}");
    BAD("{\"n\": \"m\", \"f\": {\"a\": \"1\", \"c\": \"1\"}}",
        GW__REJECT_FILTERS_PER_METRIC,
        "metric \"m\" already has 2 filters, the most MAX_FILTERS_PER_METRIC "
        "allows; filter \"c\" is new (raise MAX_FILTERS_PER_METRIC to accept "
        "more)");
    OK("{\"n\": \"n\", \"f\": {\"c\": \"1\"}}");
}
END_TEST

START_TEST(test_max_series_counts_filter_series)
{
    gw__limits_t l = limits();

    l.max_series = 5;
    start(l);
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"a\", \"b\"]}}"); /* 3 */
    OK("{\"n\": \"n\", \"f\": {\"s\": \"a\"}}");          /* 5 */
    BAD("{\"n\": \"n\", \"f\": {\"s\": \"b\"}}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 5 series, the most MAX_SERIES "
        "allows; s=\"b\" of metric \"n\" is new (raise MAX_SERIES to accept "
        "more)");
    BAD("{\"n\": \"o\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 5 series, the most MAX_SERIES "
        "allows; metric \"o\" is new (raise MAX_SERIES to accept more)");
    ck_assert_int_eq(gw__ingest_json(ing, "shop", GW_ACTION_DEFAULT,
                                     "{\"n\": \"o\"}", 10, 0, NULL, NULL,
                                     NULL),
                     GW_OK);
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 5);
    ck_assert_uint_eq(gw__ingest_series(ing, "shop"), 1);
    ck_assert_uint_eq(gw__ingest_series(ing, "nobody"), 0);
}
END_TEST

START_TEST(test_refused_batch_keeps_nothing)
{
    gw__limits_t l = limits();
    gw_error_t err;
    const char *json = "[{\"n\": \"m\", \"f\": {\"s\": \"a\"}}, "
                       "{\"n\": \"m\", \"f\": {\"s\": \"b\"}}, "
                       "{\"n\": \"m\", \"f\": {\"s\": \"c\"}}]";

    l.max_values_per_filter = 2;
    start(l);
    ck_assert_int_eq(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                     json, strlen(json), 1, NULL, NULL,
                                     &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "event 3: filter \"s\" of metric \"m\" already has 2 "
                     "values, the most MAX_VALUES_PER_FILTER allows; value "
                     "\"c\" is new (raise MAX_VALUES_PER_FILTER to accept "
                     "more)");
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 0);
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
    OK("{\"n\": \"m\", \"f\": {\"s\": \"c\"}}");
    OK("{\"n\": \"m\", \"f\": {\"s\": \"d\"}}");
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"a\"}}", GW__REJECT_VALUES_PER_FILTER,
        "filter \"s\" of metric \"m\" already has 2 values, the most "
        "MAX_VALUES_PER_FILTER allows; value \"a\" is new (raise "
        "MAX_VALUES_PER_FILTER to accept more)");
}
END_TEST

START_TEST(test_series_outlive_tables)
{
    gw__limits_t l = limits();

    l.max_values_per_filter = 2;
    start(l);
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"a\", \"b\"]}}");
    swap_free();
    /* New keys in the new table, but known series: not counted again. */
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"b\", \"a\"]}}");
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"c\"}}", GW__REJECT_VALUES_PER_FILTER,
        "filter \"s\" of metric \"m\" already has 2 values, the most "
        "MAX_VALUES_PER_FILTER allows; value \"c\" is new (raise "
        "MAX_VALUES_PER_FILTER to accept more)");
    /* A new minute is a new key too; still the same series. */
    OK("{\"n\": \"m\", \"ts\": 1392454800, \"f\": {\"s\": \"a\"}}");
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 3);
}
END_TEST

START_TEST(test_seeded_series_count)
{
    gw__limits_t l = limits();

    l.max_values_per_filter = 2;
    l.max_series = 4;
    start(l);
    ck_assert_int_eq(gw__ingest_seed_series(ing, "test_project", "m", NULL,
                                            NULL), GW_OK);
    ck_assert_int_eq(gw__ingest_seed_series(ing, "test_project", "m", "s",
                                            "a"), GW_OK);
    ck_assert_int_eq(gw__ingest_seed_series(ing, "test_project", "m", "s",
                                            "b"), GW_OK);
    /* Seeding goes over a limit if the storage holds more. */
    ck_assert_int_eq(gw__ingest_seed_series(ing, "test_project", "m", "s",
                                            "c"), GW_OK);
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 4);
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"a\", \"b\", \"c\"]}}");
    BAD("{\"n\": \"m\", \"f\": {\"t\": \"a\"}}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; t=\"a\" of metric \"m\" is new (raise MAX_SERIES to accept "
        "more)");
}
END_TEST

START_TEST(test_replay_is_not_refused)
{
    gw__limits_t l = limits();
    gw__pending_t p = {1, 1, 0, 0, 0};

    l.max_values_per_filter = 1;
    start(l);
    gw__ingest_set_pending(ing, &p);
    gw__ingest_set_replaying(ing, 1);
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"a\", \"b\", \"c\"]}}");
    gw__ingest_set_replaying(ing, 0);
    ck_assert_uint_eq(gw__ingest_series(ing, "test_project"), 4);
    ck_assert_uint_eq(p.reserved, 0); /* nothing taken while replaying */
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"d\"}}", GW__REJECT_VALUES_PER_FILTER,
        "filter \"s\" of metric \"m\" already has 3 values, the most "
        "MAX_VALUES_PER_FILTER allows; value \"d\" is new (raise "
        "MAX_VALUES_PER_FILTER to accept more)");
    swap_free();
}
END_TEST

START_TEST(test_shared_registry_counts_all_loops)
{
    gw__limits_t l = limits();
    gw__ingest_t *mine;

    l.max_values_per_filter = 3;
    start(l);
    registry = gw__ingest_new(&l, fake_now);
    other = gw__ingest_new(&l, fake_now);
    gw__ingest_share(ing, registry);
    gw__ingest_share(other, registry);
    OK("{\"n\": \"m\", \"f\": {\"s\": [\"a\", \"b\"]}}");
    mine = ing;
    ing = other; /* the second loop */
    OK("{\"n\": \"m\", \"f\": {\"s\": \"c\"}}");
    ing = mine;
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"d\"}}", GW__REJECT_VALUES_PER_FILTER,
        "filter \"s\" of metric \"m\" already has 3 values, the most "
        "MAX_VALUES_PER_FILTER allows; value \"d\" is new (raise "
        "MAX_VALUES_PER_FILTER to accept more)");
    ck_assert_uint_eq(gw__ingest_series(other, "test_project"), 4);
    ck_assert_uint_eq(gw__ingest_series(registry, "test_project"), 4);
}
END_TEST

START_TEST(test_pending_bound)
{
    /* One period kept: a key can make one delta. Room for 3. */
    gw__pending_t p = {3, 1, 0, 0, 0};
    gw__table_t *t;

    start(limits());
    gw__ingest_set_pending(ing, &p);
    OK("{\"n\": \"m\"}");
    OK("{\"n\": \"n\", \"f\": {\"s\": \"a\"}}");
    ck_assert_uint_eq(p.reserved, 3);
    /* No new key: accepted at the bound. */
    OK("[{\"n\": \"m\"}, {\"n\": \"n\", \"f\": {\"s\": \"a\"}}]");
    BAD("{\"n\": \"o\"}", GW__REJECT_PENDING,
        "the storage is behind: 3 series wait to be stored, the most "
        "MAX_PENDING_SERIES (3) allows; send it again later");
    ck_assert_uint_eq(p.reserved, 3);
    ck_assert_uint_eq(p.refusals, 1);
    /* The table goes to the storage thread: merged, its deltas wait there
     * (stored), then freed, which gives its reservation back. */
    t = gw__ingest_swap(ing);
    p.stored = 2;
    gw__table_free(t);
    ck_assert_uint_eq(p.reserved, 0);
    OK("{\"n\": \"o\"}");
    BAD("{\"n\": \"m\", \"f\": {\"s\": \"b\"}}", GW__REJECT_PENDING,
        "the storage is behind: 3 series wait to be stored, the most "
        "MAX_PENDING_SERIES (3) allows; send it again later");
    /* A refusal after the room was taken gives it back. */
    p.stored = 0;
    BAD("{\"n\": \"m\", \"a\": \"avg\"}", GW__REJECT_KIND,
        "metric \"m\" is a counter; action \"avg\" does not fit it (a "
        "metric keeps the kind of its first event)");
    ck_assert_uint_eq(p.reserved, 1); /* o's */
    swap_free();
    ck_assert_uint_eq(p.reserved, 0);
}
END_TEST

START_TEST(test_pending_counts_periods)
{
    /* Seven periods: a key can make 7 deltas; MAX_PENDING_SERIES 2. */
    gw__pending_t p = {14, 7, 0, 0, 0};

    start(limits());
    gw__ingest_set_pending(ing, &p);
    OK("{\"n\": \"m\", \"f\": {\"s\": \"a\"}}");
    ck_assert_uint_eq(p.reserved, 14);
    BAD("{\"n\": \"n\"}", GW__REJECT_PENDING,
        "the storage is behind: 2 series wait to be stored, the most "
        "MAX_PENDING_SERIES (2) allows; send it again later");
    swap_free();
}
END_TEST

static Suite *
series_suite(void)
{
    Suite *s = suite_create("series");
    TCase *tc = tcase_create("limits");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_values_per_filter);
    tcase_add_test(tc, test_series_per_metric);
    tcase_add_test(tc, test_filters_per_metric);
    tcase_add_test(tc, test_max_series_counts_filter_series);
    tcase_add_test(tc, test_refused_batch_keeps_nothing);
    tcase_add_test(tc, test_series_outlive_tables);
    tcase_add_test(tc, test_seeded_series_count);
    tcase_add_test(tc, test_replay_is_not_refused);
    tcase_add_test(tc, test_shared_registry_counts_all_loops);
    tcase_add_test(tc, test_pending_bound);
    tcase_add_test(tc, test_pending_counts_periods);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(series_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
