/*
 * tests/base/test_metrics.c: base/metrics.c. Counting by (instance,
 * counter, reason), from several threads at once, and the exact
 * Prometheus text.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"

START_TEST(test_count_and_get)
{
    gw__metrics_reset();
    gw__metrics_count("udp", GW_COUNTER_RECEIVED, NULL, 5);
    gw__metrics_count("udp", GW_COUNTER_RECEIVED, NULL, 2);
    gw__metrics_count("udp", GW_COUNTER_DROPPED, "bad_json", 3);
    gw__metrics_count("udp", GW_COUNTER_DROPPED, "bad_auth", 1);
    gw__metrics_count("http", GW_COUNTER_DROPPED, "bad_json", 10);
    ck_assert_uint_eq(gw__metrics_get("udp", GW_COUNTER_RECEIVED, NULL), 7);
    ck_assert_uint_eq(gw__metrics_get("udp", GW_COUNTER_DROPPED, "bad_json"),
                      3);
    ck_assert_uint_eq(gw__metrics_get("udp", GW_COUNTER_DROPPED, NULL), 4);
    ck_assert_uint_eq(gw__metrics_get("http", GW_COUNTER_DROPPED, NULL), 10);
    ck_assert_uint_eq(gw__metrics_get("tcpip", GW_COUNTER_DROPPED, NULL), 0);
    gw__metrics_reset();
    ck_assert_uint_eq(gw__metrics_get("udp", GW_COUNTER_RECEIVED, NULL), 0);
}
END_TEST

START_TEST(test_render)
{
    char *text;

    gw__metrics_reset();
    gw__metrics_count("udp", GW_COUNTER_RECEIVED, NULL, 7);
    gw__metrics_count("http", GW_COUNTER_RECEIVED, NULL, 1);
    gw__metrics_count("udp", GW_COUNTER_ACCEPTED, NULL, 4);
    gw__metrics_count("udp", GW_COUNTER_DROPPED, "bad_json", 3);
    gw__metrics_count("udp", GW_COUNTER_AUTH_FAILED, "bad_signature", 2);
    gw__metrics_count("we\"ird", GW_COUNTER_ACCEPTED, NULL, 1);
    gw__metrics_count("storage", GW_COUNTER_SATURATED, NULL, 0);
    gw__metrics_count("aggregator", GW_COUNTER_SATURATED, NULL, 2);
    gw__metrics_count("statsd", GW_COUNTER_IGNORED, "dogstatsd_event", 3);
    text = gw__metrics_render("gottwall_storage_up 1\n");
    ck_assert_str_eq(
        text,
        "# HELP gottwall_events_received_total Events received by a "
        "transport, valid or not.\n"
        "# TYPE gottwall_events_received_total counter\n"
        "gottwall_events_received_total{transport=\"http\"} 1\n"
        "gottwall_events_received_total{transport=\"udp\"} 7\n"
        "# HELP gottwall_events_accepted_total Events validated, "
        "authenticated and aggregated.\n"
        "# TYPE gottwall_events_accepted_total counter\n"
        "gottwall_events_accepted_total{transport=\"udp\"} 4\n"
        "gottwall_events_accepted_total{transport=\"we\\\"ird\"} 1\n"
        "# HELP gottwall_events_dropped_total Events or messages dropped, by "
        "reason.\n"
        "# TYPE gottwall_events_dropped_total counter\n"
        "gottwall_events_dropped_total{transport=\"udp\",reason=\"bad_json\"} "
        "3\n"
        "# HELP gottwall_auth_failures_total Failed authentications, by "
        "reason.\n"
        "# TYPE gottwall_auth_failures_total counter\n"
        "gottwall_auth_failures_total{transport=\"udp\","
        "reason=\"bad_signature\"} 2\n"
        "# HELP gottwall_values_saturated_total Sums kept at +-DBL_MAX "
        "because they would have overflowed, by where they were summed "
        "(aggregator or storage).\n"
        "# TYPE gottwall_values_saturated_total counter\n"
        "gottwall_values_saturated_total{where=\"aggregator\"} 2\n"
        "gottwall_values_saturated_total{where=\"storage\"} 0\n"
        "# HELP gottwall_events_ignored_total Messages that are not events, "
        "left alone on purpose, by reason.\n"
        "# TYPE gottwall_events_ignored_total counter\n"
        "gottwall_events_ignored_total{transport=\"statsd\","
        "reason=\"dogstatsd_event\"} 3\n"
        "gottwall_storage_up 1\n");
    free(text);
    gw__metrics_reset();
}
END_TEST

static void *
counter_thread(void *arg)
{
    int i;

    (void) arg;
    for (i = 0; i < 100000; i++)
        gw__metrics_count("udp", GW_COUNTER_RECEIVED, NULL, 1);
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t t[4];
    int i;

    gw__metrics_reset();
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, counter_thread, NULL),
                         0);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(gw__metrics_get("udp", GW_COUNTER_RECEIVED, NULL),
                      400000);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("counters");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_count_and_get);
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
