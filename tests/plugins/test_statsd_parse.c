/*
 * tests/plugins/test_statsd_parse.c: the statsd line parser
 * (plugins/transport/statsd/statsd_parse.c), alone: every type, rates,
 * tags, several values per line, and malformed lines with the exact reason
 * a user would read in the log.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd_parse.h"

static sd_line_t L;
static char buf[70000];

/* Parses a copy of text (the parser writes into its buffer). */
static sd_result_t
parse(const char *text, const char **why)
{
    size_t n = strlen(text);

    ck_assert_uint_lt(n, sizeof(buf) - 1);
    memcpy(buf, text, n + 1);
    return sd_parse_line(buf, n, &L, why);
}

static void
assert_bad(const char *text, const char *expect)
{
    const char *why = NULL;

    ck_assert_msg(parse(text, &why) == SD_LINE_BAD, "%s: not refused", text);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, expect);
}

/* A value that is no finite number: refused as value_out_of_range. */
static void
assert_range(const char *text)
{
    const char *why = NULL;

    ck_assert_msg(parse(text, &why) == SD_LINE_RANGE, "%s: not refused as "
                  "out of range", text);
    ck_assert_str_eq(why,
                     "value is not a finite number: |v| must be at most 1e300");
}

START_TEST(test_counter)
{
    ck_assert_int_eq(parse("orders:3|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "orders");
    ck_assert_uint_eq(L.name_len, 6);
    ck_assert_uint_eq(L.nsamples, 1);
    ck_assert_int_eq(L.samples[0].type, SD_COUNTER);
    ck_assert_double_eq(L.samples[0].value, 3);
    ck_assert_double_eq(L.samples[0].rate, 1);
    ck_assert_int_eq(L.samples[0].gauge_delta, 0);
    ck_assert_uint_eq(L.ntags, 0);
    ck_assert_int_eq(L.has_ts, 0);

    ck_assert_int_eq(parse("neg:-4|c", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].value, -4);
    ck_assert_int_eq(parse("frac:0.25|c", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].value, 0.25);
    ck_assert_int_eq(parse("exp:1.5e3|c", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].value, 1500);
    ck_assert_int_eq(parse("a.b-c_d:1|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "a.b-c_d");
}
END_TEST

START_TEST(test_rate)
{
    ck_assert_int_eq(parse("orders:1|c|@0.1", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].rate, 0.1);
    ck_assert_int_eq(parse("orders:1|c|@1", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].rate, 1);
    ck_assert_int_eq(parse("t:20|ms|@0.5", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_TIMER);
    ck_assert_double_eq(L.samples[0].rate, 0.5);
    assert_bad("orders:1|c|@0", "rate must be a number in (0, 1]");
    assert_bad("orders:1|c|@1.5", "rate must be a number in (0, 1]");
    assert_bad("orders:1|c|@-0.5", "rate must be a number in (0, 1]");
    assert_bad("orders:1|c|@", "rate must be a number in (0, 1]");
    assert_bad("orders:1|c|@x", "rate must be a number in (0, 1]");
}
END_TEST

START_TEST(test_gauge)
{
    ck_assert_int_eq(parse("temp:21.5|g", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_GAUGE);
    ck_assert_double_eq(L.samples[0].value, 21.5);
    ck_assert_int_eq(L.samples[0].gauge_delta, 0);
    ck_assert_int_eq(parse("temp:+3|g", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].value, 3);
    ck_assert_int_eq(L.samples[0].gauge_delta, 1);
    ck_assert_int_eq(parse("temp:-2|g", NULL), SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].value, -2);
    ck_assert_int_eq(L.samples[0].gauge_delta, 1);
    /* A sign makes a delta only for gauges. */
    ck_assert_int_eq(parse("c:+3|c", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].gauge_delta, 0);
}
END_TEST

START_TEST(test_timers_and_sets)
{
    ck_assert_int_eq(parse("req:35|ms", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_TIMER);
    ck_assert_double_eq(L.samples[0].value, 35);
    ck_assert_int_eq(parse("req:12|h", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_TIMER);
    ck_assert_int_eq(parse("req:7|d", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_TIMER);
    /* Sets parse (their values need not be numbers); the transport drops
     * them as unsupported. */
    ck_assert_int_eq(parse("users:alice|s", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_SET);
    ck_assert_str_eq(L.name, "users");
}
END_TEST

START_TEST(test_tags)
{
    ck_assert_int_eq(parse("req:1|c|#env:prod,host:a,canary", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "req");
    ck_assert_uint_eq(L.ntags, 3);
    ck_assert_str_eq(L.tags[0].name, "env");
    ck_assert_str_eq(L.tags[0].value, "prod");
    ck_assert_str_eq(L.tags[1].name, "host");
    ck_assert_str_eq(L.tags[1].value, "a");
    ck_assert_str_eq(L.tags[2].name, "canary");
    ck_assert_str_eq(L.tags[2].value, "true");
    ck_assert_uint_eq(L.tags_raw_len, strlen("env:prod,host:a,canary"));

    /* The first ':' splits; later ones belong to the value. */
    ck_assert_int_eq(parse("x:1|c|#url:http://a:80/", NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.ntags, 1);
    ck_assert_str_eq(L.tags[0].name, "url");
    ck_assert_str_eq(L.tags[0].value, "http://a:80/");

    /* Rate before tags, timestamp and container id after them. */
    ck_assert_int_eq(parse("x:2|c|@0.5|#a:b|T1392454739|c:abc123", NULL),
                     SD_LINE_OK);
    ck_assert_double_eq(L.samples[0].rate, 0.5);
    ck_assert_uint_eq(L.ntags, 1);
    ck_assert_str_eq(L.tags[0].name, "a");
    ck_assert_str_eq(L.tags[0].value, "b");
    ck_assert_int_eq(L.has_ts, 1);
    ck_assert_double_eq(L.ts, 1392454739);

    /* Empty tags (",,", a trailing ',') are skipped. */
    ck_assert_int_eq(parse("x:1|c|#a:1,,b:2,", NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.ntags, 2);
    ck_assert_str_eq(L.tags[1].name, "b");
    ck_assert_str_eq(L.tags[1].value, "2");

    /* The same name twice gives two values of one filter. */
    ck_assert_int_eq(parse("x:1|c|#d:web,d:ios", NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.ntags, 2);
    ck_assert_str_eq(L.tags[0].value, "web");
    ck_assert_str_eq(L.tags[1].value, "ios");

    assert_bad("x:1|c|#:v", "tag with an empty name");
    assert_bad("x:1|c|#k:", "tag with an empty value");
    assert_bad("x:1|c|#a:b|#c:d", "tags given twice");
}
END_TEST

START_TEST(test_telegraf_tags)
{
    /* hot-shots with telegraf: true, Telegraf's own statsd input. */
    ck_assert_int_eq(parse("hs.telegraf,env=prod,host=a:1|c", NULL),
                     SD_LINE_OK);
    ck_assert_str_eq(L.name, "hs.telegraf");
    ck_assert_uint_eq(L.name_len, 11);
    ck_assert_uint_eq(L.ntags, 2);
    ck_assert_str_eq(L.tags[0].name, "env");
    ck_assert_str_eq(L.tags[0].value, "prod");
    ck_assert_str_eq(L.tags[1].name, "host");
    ck_assert_str_eq(L.tags[1].value, "a");
    ck_assert_uint_eq(L.tags_raw_len, strlen("env=prod,host=a"));
    ck_assert_int_eq(L.samples[0].type, SD_COUNTER);
    ck_assert_int_eq(parse("lat,region=eu:35|ms|@0.5", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "lat");
    ck_assert_uint_eq(L.ntags, 1);
    ck_assert_double_eq(L.samples[0].rate, 0.5);
    /* A comma that is not k=v is part of the name, as before. */
    ck_assert_int_eq(parse("a,b:1|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "a,b");
    ck_assert_uint_eq(L.ntags, 0);
    ck_assert_int_eq(parse("a,k=v,b:1|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "a,k=v,b");
    ck_assert_int_eq(parse("a,=v:1|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "a,=v");
    assert_bad(",k=v:1|c", "empty metric name");
    assert_bad("a,k=v:1|c|#x:y",
               "tags given twice (in the name, Telegraf's form, and after #, "
               "DogStatsD's: use one)");
}
END_TEST

START_TEST(test_dogstatsd_events)
{
    ck_assert_int_eq(parse("_e{5,4}:title|text|d:1392454739|#env:prod", NULL),
                     SD_LINE_DOGSTATSD);
    ck_assert_int_eq(parse("_sc|db.up|0|#env:prod|m:ok", NULL),
                     SD_LINE_DOGSTATSD);
    /* A metric merely starting with _e or _sc is a metric. */
    ck_assert_int_eq(parse("_e:1|c", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "_e");
    ck_assert_int_eq(parse("_sc:1|c", NULL), SD_LINE_OK);
}
END_TEST

START_TEST(test_too_many_tags)
{
    char line[2000];
    size_t n;
    int i;

    n = (size_t) snprintf(line, sizeof(line), "x:1|c|#");
    for (i = 0; i < SD_MAX_TAGS; i++)
        n += (size_t) snprintf(line + n, sizeof(line) - n, "t%d:v,", i);
    ck_assert_int_eq(parse(line, NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.ntags, SD_MAX_TAGS);
    snprintf(line + n, sizeof(line) - n, "one:more");
    assert_bad(line, "more than 64 tags");
}
END_TEST

START_TEST(test_multi_value)
{
    ck_assert_int_eq(parse("x:1|c:2|c|@0.5:3|ms", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "x");
    ck_assert_uint_eq(L.nsamples, 3);
    ck_assert_int_eq(L.samples[0].type, SD_COUNTER);
    ck_assert_double_eq(L.samples[0].value, 1);
    ck_assert_double_eq(L.samples[0].rate, 1);
    ck_assert_int_eq(L.samples[1].type, SD_COUNTER);
    ck_assert_double_eq(L.samples[1].value, 2);
    ck_assert_double_eq(L.samples[1].rate, 0.5);
    ck_assert_int_eq(L.samples[2].type, SD_TIMER);
    ck_assert_double_eq(L.samples[2].value, 3);

    /* Tags end the line and apply to all of its values. */
    ck_assert_int_eq(parse("x:1|c:2|g|#a:b", NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.nsamples, 2);
    ck_assert_uint_eq(L.ntags, 1);

    /* One bad value refuses the whole line. */
    assert_bad("x:1|c:oops|c", "value is not a finite decimal number");
    assert_bad("x:1|c:", "empty value");
    assert_bad("x:1|c:2", "missing type");
}
END_TEST

START_TEST(test_too_many_values)
{
    char line[2000];
    size_t n;
    int i;

    n = (size_t) snprintf(line, sizeof(line), "x");
    for (i = 0; i < SD_MAX_SAMPLES; i++)
        n += (size_t) snprintf(line + n, sizeof(line) - n, ":1|c");
    ck_assert_int_eq(parse(line, NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.nsamples, SD_MAX_SAMPLES);
    snprintf(line + n, sizeof(line) - n, ":1|c");
    assert_bad(line, "more than 64 values on one line");
}
END_TEST

START_TEST(test_whitespace_and_empty)
{
    ck_assert_int_eq(parse("", NULL), SD_LINE_EMPTY);
    ck_assert_int_eq(parse("   \r", NULL), SD_LINE_EMPTY);
    ck_assert_int_eq(parse("orders:5|c\r", NULL), SD_LINE_OK);
    ck_assert_int_eq(L.samples[0].type, SD_COUNTER);
    ck_assert_double_eq(L.samples[0].value, 5);
    ck_assert_int_eq(parse("  orders:5|c  ", NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "orders");
}
END_TEST

START_TEST(test_malformed)
{
    char name[300];

    assert_bad("nocolon", "missing ':' after the metric name");
    assert_bad("a|b:1|c", "missing ':' after the metric name");
    assert_bad(":1|c", "empty metric name");
    assert_bad("x:1", "missing type");
    assert_bad("x:1|", "missing type");
    assert_bad("x:|c", "empty value");
    assert_bad("x:abc|c", "value is not a finite decimal number");
    assert_range("x:nan|c");
    assert_range("x:NaN|ms");
    assert_range("x:-nan|c");
    assert_range("x:inf|g");
    assert_range("x:+inf|g");
    assert_range("x:-Infinity|c");
    assert_range("x:INF|h");
    assert_range("x:1e999|c");
    assert_range("x:-1e400|g");
    assert_range("x:1|c:1e999|c");
    assert_bad("x:infinit|c", "value is not a finite decimal number");
    assert_bad("x:nanx|c", "value is not a finite decimal number");
    /* In range for the parser: the core refuses |v| > 1e300 itself. */
    ck_assert_int_eq(parse("x:1e308|c", NULL), SD_LINE_OK);
    assert_bad("x:0x10|c", "value is not a finite decimal number");
    assert_bad("x:1.|c|", "empty field");
    assert_bad("x:.|c", "value is not a finite decimal number");
    assert_bad("x:1e|c", "value is not a finite decimal number");
    assert_bad("x:1|q", "unknown type");
    assert_bad("x:1|cc", "unknown type");
    assert_bad("x:1|c|zzz", "unknown field");
    assert_bad("x:1|c||@0.5", "empty field");
    assert_bad("x:1|c|T0", "timestamp must be positive epoch seconds");
    assert_bad("x:1|c|Tabc", "timestamp must be positive epoch seconds");

    memset(name, 'n', 255);
    strcpy(name + 255, ":1|c");
    ck_assert_int_eq(parse(name, NULL), SD_LINE_OK);
    ck_assert_uint_eq(L.name_len, 255);
    memset(name, 'n', 256);
    strcpy(name + 256, ":1|c");
    assert_bad(name, "metric name longer than 255 bytes");
}
END_TEST

/* Parsing in place must not touch bytes beyond line[len]. */
START_TEST(test_in_place_bounds)
{
    char b[32] = "a:1|c\nb:2|c";

    ck_assert_int_eq(sd_parse_line(b, 5, &L, NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "a");
    ck_assert_str_eq(b + 6, "b:2|c");
    ck_assert_int_eq(sd_parse_line(b + 6, 5, &L, NULL), SD_LINE_OK);
    ck_assert_str_eq(L.name, "b");
    ck_assert_double_eq(L.samples[0].value, 2);
}
END_TEST

/* A value reads as the double strtod gives for its text, bit for bit:
 * random decimals of 1 to 18 digits, the point anywhere, either sign
 * (the parser computes short ones itself). */
START_TEST(test_values_as_strtod)
{
    unsigned long x = 88172645463325252UL;
    char line[64], num[32];
    int k;

    for (k = 0; k < 200000; k++) {
        int nd, point, j, at = 0;
        double want;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        nd = (int) (x % 18) + 1;
        point = (int) ((x >> 8) % (unsigned long) (nd + 1));
        if ((x >> 16) & 1)
            num[at++] = '-';
        for (j = 0; j < nd; j++) {
            if (j == point && j > 0)
                num[at++] = '.';
            num[at++] = (char) ('0' + (x >> (20 + 2 * j % 40)) % 10);
        }
        num[at] = '\0';
        want = strtod(num, NULL);
        snprintf(line, sizeof(line), "t:%s|ms", num);
        ck_assert_int_eq(parse(line, NULL), SD_LINE_OK);
        ck_assert_msg(memcmp(&L.samples[0].value, &want, sizeof(want)) == 0,
                      "%s read as %.17g, strtod %.17g", num,
                      L.samples[0].value, want);
    }
}
END_TEST

static Suite *
statsd_suite(void)
{
    Suite *s = suite_create("statsd_parse");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_counter);
    tcase_add_test(tc, test_rate);
    tcase_add_test(tc, test_gauge);
    tcase_add_test(tc, test_timers_and_sets);
    tcase_add_test(tc, test_tags);
    tcase_add_test(tc, test_telegraf_tags);
    tcase_add_test(tc, test_dogstatsd_events);
    tcase_add_test(tc, test_too_many_tags);
    tcase_add_test(tc, test_multi_value);
    tcase_add_test(tc, test_too_many_values);
    tcase_add_test(tc, test_whitespace_and_empty);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_in_place_bounds);
    tcase_add_test(tc, test_values_as_strtod);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(statsd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
