/*
 * tests/ingest/test_bucket.c: calendar buckets in UTC (ingest/bucket.c).
 *
 * The SPEC §3 vectors, month/year/leap-year and ISO-week edges, negative
 * times, gw__bucket_next for every period, period names and the strict
 * date parsers; and a property check against the C library's gmtime for
 * a spread of times, as an independent oracle.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ingest/bucket.h"

#define MIN GW_PERIOD_MINUTE
#define HOUR GW_PERIOD_HOUR
#define DAY GW_PERIOD_DAY
#define WEEK GW_PERIOD_WEEK
#define MONTH GW_PERIOD_MONTH
#define YEAR GW_PERIOD_YEAR
#define ALL GW_PERIOD_ALL

#define ck_bucket(p, ts, want) \
    ck_assert_int_eq(gw__bucket_start((p), (ts)), (int64_t) (want))

START_TEST(test_spec_2012_11_01)
{
    /* 2012-11-01 04:05:02 UTC */
    int64_t ts = 1351742702;

    ck_bucket(YEAR, ts, 1325376000);  /* 2012-01-01 */
    ck_bucket(MONTH, ts, 1351728000); /* 2012-11-01 */
    ck_bucket(WEEK, ts, 1351468800);  /* Mon 2012-10-29 */
    ck_bucket(DAY, ts, 1351728000);   /* 2012-11-01 */
    ck_bucket(HOUR, ts, 1351742400);  /* 04:00 */
    ck_bucket(MIN, ts, 1351742700);   /* 04:05 */
    ck_bucket(ALL, ts, 0);
}
END_TEST

START_TEST(test_spec_1392454739)
{
    int64_t ts = 1392454739; /* Sat 2014-02-15 08:58:59 UTC */

    ck_bucket(MIN, ts, 1392454680);
    ck_bucket(HOUR, ts, 1392451200);
    ck_bucket(DAY, ts, 1392422400);
    ck_bucket(WEEK, ts, 1391990400);
    ck_bucket(MONTH, ts, 1391212800);
    ck_bucket(YEAR, ts, 1388534400);
    ck_bucket(ALL, ts, 0);
}
END_TEST

START_TEST(test_week_across_new_year)
{
    /* The week of Monday 2013-12-30 ends on Sunday 2014-01-05. */
    ck_bucket(WEEK, 1388361600, 1388361600);     /* Mon 2013-12-30 00:00 */
    ck_bucket(WEEK, 1388534400, 1388361600);     /* Wed 2014-01-01 00:00 */
    ck_bucket(WEEK, 1388966399, 1388361600);     /* Sun 2014-01-05 23:59:59 */
    ck_bucket(WEEK, 1388966400, 1388966400);     /* Mon 2014-01-06 */
    ck_assert_int_eq(gw__bucket_next(WEEK, 1388361600), 1388966400);
    /* Thu 2009-01-01 is in the week of Mon 2008-12-29. */
    ck_bucket(WEEK, 1230796800, 1230508800);
    /* Sun 2021-01-03 12:00 is in the week of Mon 2020-12-28. */
    ck_bucket(WEEK, 1609675200, 1609113600);
    /* 1970-01-01 was a Thursday: its week began Mon 1969-12-29. */
    ck_bucket(WEEK, 0, -259200);
}
END_TEST

START_TEST(test_leap_years)
{
    /* 2012-02-29 12:00 */
    ck_bucket(DAY, 1330516800, 1330473600);
    ck_bucket(MONTH, 1330516800, 1328054400);              /* 2012-02-01 */
    ck_assert_int_eq(gw__bucket_next(MONTH, 1328054400), 1330560000);
    ck_assert_int_eq(gw__bucket_next(DAY, 1330473600), 1330560000);
    /* 2100 is not a leap year: Feb 28 23:59:59 is followed by Mar 1. */
    ck_bucket(MONTH, 4107542399, 4105123200);              /* 2100-02-01 */
    ck_bucket(MONTH, 4107542400, 4107542400);              /* 2100-03-01 */
    ck_bucket(DAY, 4107542399, 4107542399 - 86399);
    ck_assert_int_eq(gw__bucket_next(MONTH, 4105123200), 4107542400);
    /* 2000 is: 2000-02-29 exists, and March starts a day later. */
    ck_bucket(DAY, 951782400 + 3600, 951782400);            /* 2000-02-29 */
    ck_bucket(MONTH, 951782400, 949363200);                 /* 2000-02-01 */
    ck_assert_int_eq(gw__bucket_next(MONTH, 949363200), 951868800);
    ck_assert_int_eq(gw__bucket_next(YEAR, 946684800), 978307200);
    ck_assert_int_eq(978307200 - 946684800, 366 * 86400);
}
END_TEST

START_TEST(test_dec31_to_jan1)
{
    ck_bucket(YEAR, 1388534399, 1356998400);  /* 2013-12-31 23:59:59 */
    ck_bucket(MONTH, 1388534399, 1385856000); /* 2013-12-01 */
    ck_bucket(DAY, 1388534399, 1388448000);
    ck_bucket(HOUR, 1388534399, 1388530800);
    ck_bucket(MIN, 1388534399, 1388534340);
    ck_bucket(YEAR, 1388534400, 1388534400);  /* 2014-01-01 */
    ck_bucket(MONTH, 1388534400, 1388534400);
    ck_assert_int_eq(gw__bucket_next(MONTH, 1385856000), 1388534400);
    ck_assert_int_eq(gw__bucket_next(YEAR, 1356998400), 1388534400);
}
END_TEST

START_TEST(test_negative_times)
{
    /* 1969-12-31 23:59:59 */
    ck_bucket(MIN, -1, -60);
    ck_bucket(HOUR, -1, -3600);
    ck_bucket(DAY, -1, -86400);
    ck_bucket(WEEK, -1, -259200);      /* Mon 1969-12-29 */
    ck_bucket(MONTH, -1, -2678400);    /* 1969-12-01 */
    ck_bucket(YEAR, -1, -31536000);    /* 1969-01-01 */
    ck_bucket(ALL, -1, 0);
    /* Exactly on a boundary stays there. */
    ck_bucket(MIN, -60, -60);
    ck_bucket(DAY, -86400, -86400);
    /* 1960-02-29 10:30:15, a Monday in a leap year. */
    ck_bucket(MIN, -310483785, -310483800);
    ck_bucket(HOUR, -310483785, -310485600);
    ck_bucket(DAY, -310483785, -310521600);
    ck_bucket(WEEK, -310483785, -310521600);
    ck_bucket(MONTH, -310483785, -312940800);
    ck_bucket(YEAR, -310483785, -315619200);
    /* 0001-01-01 */
    ck_bucket(YEAR, -62135596800 + 5, -62135596800);
}
END_TEST

START_TEST(test_extremes_do_not_overflow)
{
    int p;

    int64_t s;

    for (p = 0; p < ALL; p++) {
        /* The true start is below INT64_MIN: it saturates. */
        ck_assert_int_eq(gw__bucket_start((gw_period_t) p, INT64_MIN),
                         INT64_MIN);
        s = gw__bucket_start((gw_period_t) p, INT64_MAX);
        ck_assert_int_gt(s, INT64_MAX - 366 * 86400LL);
        ck_assert_int_eq(gw__bucket_start((gw_period_t) p, s), s);
        ck_assert_int_eq(gw__bucket_next((gw_period_t) p, s), INT64_MAX);
    }
    ck_assert_int_eq(gw__bucket_start(ALL, INT64_MIN), 0);
    ck_assert_int_eq(gw__bucket_start(MIN, INT64_MIN), INT64_MIN);
    ck_assert_int_eq(gw__bucket_start(MIN, INT64_MAX),
                     INT64_MAX - INT64_MAX % 60);
    ck_assert_int_eq(gw__bucket_next(ALL, 0), INT64_MAX);
    /* 9999-12-31 23:59:59 */
    ck_bucket(YEAR, 253402300799, 253370764800);
    ck_bucket(MONTH, 253402300799, 253399622400);
    ck_assert_int_eq(gw__bucket_next(YEAR, 253370764800), 253402300800);
}
END_TEST

START_TEST(test_next_every_period)
{
    int64_t s = 1351742700; /* 2012-11-01 04:05 */

    ck_assert_int_eq(gw__bucket_next(MIN, s), s + 60);
    ck_assert_int_eq(gw__bucket_next(HOUR, 1351742400), 1351746000);
    ck_assert_int_eq(gw__bucket_next(DAY, 1351728000), 1351814400);
    ck_assert_int_eq(gw__bucket_next(WEEK, 1351468800), 1352073600);
    ck_assert_int_eq(gw__bucket_next(MONTH, 1351728000), 1354320000);
    ck_assert_int_eq(gw__bucket_next(YEAR, 1325376000), 1356998400);
    ck_assert_int_eq(gw__bucket_next(ALL, 0), INT64_MAX);
    /* Negative: December 1969 -> January 1970. */
    ck_assert_int_eq(gw__bucket_next(MONTH, -2678400), 0);
    ck_assert_int_eq(gw__bucket_next(YEAR, -31536000), 0);
    ck_assert_int_eq(gw__bucket_next(WEEK, -259200), 345600);
}
END_TEST

/* Against gmtime_r and timegm, over times from 1901 to 9999. */
START_TEST(test_against_gmtime)
{
    uint64_t x = 88172645463325252ULL;
    int i, p;

    for (i = 0; i < 20000; i++) {
        struct tm tm, b;
        time_t t, want[GW_PERIOD_COUNT];
        int64_t ts, s;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ts = (int64_t) (x % 255500000000ULL) - 2147483648LL;
        t = (time_t) ts;
        ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
        b = tm;
        b.tm_sec = 0;
        want[MIN] = timegm(&b);
        b.tm_min = 0;
        want[HOUR] = timegm(&b);
        b.tm_hour = 0;
        want[DAY] = timegm(&b);
        b.tm_mday -= (tm.tm_wday + 6) % 7;
        want[WEEK] = timegm(&b);
        b = tm;
        b.tm_sec = b.tm_min = b.tm_hour = 0;
        b.tm_mday = 1;
        want[MONTH] = timegm(&b);
        b.tm_mon = 0;
        want[YEAR] = timegm(&b);
        want[ALL] = 0;
        for (p = 0; p < GW_PERIOD_COUNT; p++) {
            s = gw__bucket_start((gw_period_t) p, ts);
            ck_assert_int_eq(s, (int64_t) want[p]);
            ck_assert_int_eq(gw__bucket_start((gw_period_t) p, s), s);
            if (p != ALL) {
                ck_assert_int_le(s, ts);
                ck_assert_int_gt(gw__bucket_next((gw_period_t) p, s), ts);
                ck_assert_int_eq(
                    gw__bucket_start((gw_period_t) p,
                                     gw__bucket_next((gw_period_t) p, s) - 1),
                    s);
            }
        }
    }
}
END_TEST

START_TEST(test_period_names)
{
    gw_period_t p = ALL;
    int i;

    for (i = 0; i < GW_PERIOD_COUNT; i++) {
        ck_assert_int_eq(gw__period_parse(gw_period_name((gw_period_t) i), &p),
                         GW_OK);
        ck_assert_int_eq(p, i);
    }
    p = HOUR;
    ck_assert_int_eq(gw__period_parse("Minute", &p), GW_ERR);
    ck_assert_int_eq(gw__period_parse("minutes", &p), GW_ERR);
    ck_assert_int_eq(gw__period_parse("", &p), GW_ERR);
    ck_assert_int_eq(gw__period_parse("quarter", &p), GW_ERR);
    ck_assert_int_eq(gw__period_parse(NULL, &p), GW_ERR);
    ck_assert_int_eq(p, HOUR);
    ck_assert_ptr_null(gw_period_name((gw_period_t) 7));
}
END_TEST

START_TEST(test_parse_iso)
{
    int64_t t = 42;

    ck_assert_int_eq(gw__time_parse_iso("2012-11-01T04:05:02", &t), GW_OK);
    ck_assert_int_eq(t, 1351742702);
    ck_assert_int_eq(gw__time_parse_iso("1970-01-01T00:00:00", &t), GW_OK);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(gw__time_parse_iso("2012-02-29T12:00:00", &t), GW_OK);
    ck_assert_int_eq(t, 1330516800);
    ck_assert_int_eq(gw__time_parse_iso("9999-12-31T23:59:59", &t), GW_OK);
    ck_assert_int_eq(t, 253402300799);
    ck_assert_int_eq(gw__time_parse_iso("1969-12-31T23:59:59", &t), GW_OK);
    ck_assert_int_eq(t, -1);

    t = 42;
    ck_assert_int_eq(gw__time_parse_iso("2013-02-29T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-02-30T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2100-02-29T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-13-01T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-00-01T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-04-31T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-00T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T24:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T23:60:00", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T23:59:60", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T23:59:59Z", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T23:59:59.5", &t),
                     GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01 23:59:59", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-1-01T23:59:59", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01T2:59:590", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("+012-01-01T23:59:59", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("2012-01-01", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso("", &t), GW_ERR);
    ck_assert_int_eq(gw__time_parse_iso(NULL, &t), GW_ERR);
    ck_assert_int_eq(t, 42);
}
END_TEST

START_TEST(test_parse_date)
{
    int64_t t = 42;

    ck_assert_int_eq(gw__date_parse("2012-11-01", &t), GW_OK);
    ck_assert_int_eq(t, 1351728000);
    ck_assert_int_eq(gw__date_parse("2000-02-29", &t), GW_OK);
    ck_assert_int_eq(t, 951782400);
    ck_assert_int_eq(gw__date_parse("1969-12-31", &t), GW_OK);
    ck_assert_int_eq(t, -86400);

    t = 42;
    ck_assert_int_eq(gw__date_parse("2012-02-30", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("1900-02-29", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("2012-13-01", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("2012-11-01x", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("2012-11-01T00:00:00", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse(" 2012-11-01", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("2012/11/01", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("12-11-01", &t), GW_ERR);
    ck_assert_int_eq(gw__date_parse("", &t), GW_ERR);
    ck_assert_int_eq(t, 42);
}
END_TEST

static Suite *
bucket_suite(void)
{
    Suite *s = suite_create("bucket");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_spec_2012_11_01);
    tcase_add_test(tc, test_spec_1392454739);
    tcase_add_test(tc, test_week_across_new_year);
    tcase_add_test(tc, test_leap_years);
    tcase_add_test(tc, test_dec31_to_jan1);
    tcase_add_test(tc, test_negative_times);
    tcase_add_test(tc, test_extremes_do_not_overflow);
    tcase_add_test(tc, test_next_every_period);
    tcase_add_test(tc, test_against_gmtime);
    tcase_add_test(tc, test_period_names);
    tcase_add_test(tc, test_parse_iso);
    tcase_add_test(tc, test_parse_date);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(bucket_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
