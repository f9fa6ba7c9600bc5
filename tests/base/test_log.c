/*
 * tests/base/test_log.c: base/log.c: the line format ("<UTC time with
 * milliseconds>Z <level> [prefix] message"), the level filter and its
 * names, a message kept on one line, and a line longer than the buffer
 * cut rather than overrun. Lines are read back through the sink.
 */
#define _GNU_SOURCE
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static char last[8192];
static int last_level;
static unsigned nlines;

static void
sink(int level, const char *line)
{
    snprintf(last, sizeof(last), "%s", line);
    last_level = level;
    nlines++;
}

static void
setup(void)
{
    last[0] = '\0';
    nlines = 0;
    gw__log_set_level(GW_LOG_INFO);
    gw__log_set_sink(sink);
}

static void
teardown(void)
{
    gw__log_set_sink(NULL);
    gw__log_set_level(GW_LOG_INFO);
}

/* The line after its time stamp, which the regex checks. */
static const char *
after_time(void)
{
    regex_t re;
    regmatch_t m;

    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                             "[0-9]{2}\\.[0-9]{3}Z ",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, last, 1, &m, 0) == 0, "bad line: %s", last);
    regfree(&re);
    return last + m.rm_eo;
}

START_TEST(test_format)
{
    gw__log(GW_LOG_WARNING, "storage:redis:main", "down for %d s", 3);
    ck_assert_uint_eq(nlines, 1);
    ck_assert_int_eq(last_level, GW_LOG_WARNING);
    ck_assert_str_eq(after_time(), "warning [storage:redis:main] down for 3 s");
    gw__log_error("no prefix: %s", "x");
    ck_assert_str_eq(after_time(), "error no prefix: x");
    gw__log(GW_LOG_NOTICE, "", "empty prefix");
    ck_assert_str_eq(after_time(), "notice empty prefix");
    gw__log_info("two\nlines\r\nhere");
    ck_assert_str_eq(after_time(), "info two lines  here");
}
END_TEST

START_TEST(test_levels)
{
    int level = -1;

    gw__log_debug("not shown");
    ck_assert_uint_eq(nlines, 0);
    gw__log_set_level(GW_LOG_DEBUG);
    gw__log_debug("shown");
    ck_assert_str_eq(after_time(), "debug shown");
    gw__log_set_level(GW_LOG_ERR);
    gw__log_warning("not shown");
    ck_assert_uint_eq(nlines, 1);

    ck_assert_int_eq(gw__log_parse_level("error", &level), GW_OK);
    ck_assert_int_eq(level, GW_LOG_ERR);
    ck_assert_int_eq(gw__log_parse_level("warning", &level), GW_OK);
    ck_assert_int_eq(level, GW_LOG_WARNING);
    ck_assert_int_eq(gw__log_parse_level("notice", &level), GW_OK);
    ck_assert_int_eq(level, GW_LOG_NOTICE);
    ck_assert_int_eq(gw__log_parse_level("info", &level), GW_OK);
    ck_assert_int_eq(level, GW_LOG_INFO);
    ck_assert_int_eq(gw__log_parse_level("debug", &level), GW_OK);
    ck_assert_int_eq(level, GW_LOG_DEBUG);
    level = 42;
    ck_assert_int_eq(gw__log_parse_level("verbose", &level), GW_ERR);
    ck_assert_int_eq(level, 42);
}
END_TEST

START_TEST(test_long_line)
{
    static char big[10000];

    memset(big, 'a', sizeof(big) - 1);
    gw__log_info("%s", big);
    ck_assert_uint_eq(nlines, 1);
    /* Cut to the 4096-byte buffer, one byte kept for the newline. */
    ck_assert_uint_eq(strlen(last), 4094);
    ck_assert_int_eq(last[4093], 'a');
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_long_line);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
