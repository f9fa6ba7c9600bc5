/*
 * tests/base/test_log.c: base/log.c. gw__log_escape's exact output (quotes,
 * backslashes, C0/C1 controls, DEL, invalid and overlong UTF-8, surrogates,
 * bidi and line controls, valid UTF-8 kept, cutting at a whole character
 * with "..."), and the line gw__log writes (captured from stderr): one
 * line, newlines as spaces, control bytes as \xNN, levels filtered.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

static char buf[256];

static const char *
esc(const char *s)
{
    return gw__log_escape(s, buf, sizeof(buf));
}

START_TEST(test_escape_ascii)
{
    ck_assert_str_eq(esc("ann@example.com"), "ann@example.com");
    ck_assert_str_eq(esc(""), "");
    ck_assert_str_eq(esc(NULL), "");
    ck_assert_str_eq(esc("a\"b\\c"), "a\\\"b\\\\c");
    ck_assert_str_eq(esc("\t\n\r"), "\\t\\n\\r");
    ck_assert_str_eq(esc("\x1b[2J\x01\x7f"), "\\x1b[2J\\x01\\x7f");
    ck_assert_str_eq(esc(" ~"), " ~");
}
END_TEST

START_TEST(test_escape_utf8)
{
    /* Valid UTF-8 stays: e-acute, the euro sign, an emoji. */
    ck_assert_str_eq(esc("j\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80"),
                     "j\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x98\x80");
    /* C1 controls (U+009B is CSI), as UTF-8 and as raw bytes. */
    ck_assert_str_eq(esc("\xc2\x9b" "2J"), "\\xc2\\x9b2J");
    ck_assert_str_eq(esc("\xc2\x80\xc2\x9f\xc2\xa0"),
                     "\\xc2\\x80\\xc2\\x9f\xc2\xa0");
    ck_assert_str_eq(esc("\x9b"), "\\x9b");
    /* Not UTF-8: stray continuation, truncated, overlong, surrogate, past
     * U+10FFFF, bytes never used. */
    ck_assert_str_eq(esc("\x80"), "\\x80");
    ck_assert_str_eq(esc("\xc3"), "\\xc3");
    ck_assert_str_eq(esc("\xe2\x82"), "\\xe2\\x82");
    ck_assert_str_eq(esc("\xc0\xaf"), "\\xc0\\xaf");
    ck_assert_str_eq(esc("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
    ck_assert_str_eq(esc("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf");
    ck_assert_str_eq(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    ck_assert_str_eq(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
    ck_assert_str_eq(esc("\xff\xfe"), "\\xff\\xfe");
    /* Line separator, right-to-left override, isolates. */
    ck_assert_str_eq(esc("\xe2\x80\xa8"), "\\xe2\\x80\\xa8");
    ck_assert_str_eq(esc("a\xe2\x80\xae" "b"), "a\\xe2\\x80\\xaeb");
    ck_assert_str_eq(esc("\xe2\x81\xa6\xe2\x81\xa9"),
                     "\\xe2\\x81\\xa6\\xe2\\x81\\xa9");
    /* Neighbours of those stay. */
    ck_assert_str_eq(esc("\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xaa"),
                     "\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xaa");
}
END_TEST

START_TEST(test_escape_cut)
{
    char small[8];

    /* Fits exactly: 7 bytes and the NUL. */
    ck_assert_str_eq(gw__log_escape("abcdefg", small, sizeof(small)),
                     "abcdefg");
    /* One more: cut with "..." in the same 8 bytes. */
    ck_assert_str_eq(gw__log_escape("abcdefgh", small, sizeof(small)),
                     "abcd...");
    /* Never inside an escape nor a UTF-8 character. */
    ck_assert_str_eq(gw__log_escape("abc\x1b" "defg", small, sizeof(small)),
                     "abc...");
    ck_assert_str_eq(gw__log_escape("ab\xe2\x82\xac\xe2\x82\xac", small,
                                    sizeof(small)),
                     "ab...");
    ck_assert_str_eq(gw__log_escape("a\"\"\"\"", small, sizeof(small)),
                     "a\\\"...");
    ck_assert_str_eq(gw__log_escape("abcdefgh", small, 4), "...");
    small[0] = 'x';
    ck_assert_str_eq(gw__log_escape("abc", small, 3), "");
}
END_TEST

/* What gw__log writes to stderr, captured through a temp file. */
static char *
logged(int level, const char *prefix, const char *msg)
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    static char out[8192];
    size_t n;

    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    dup2(fileno(f), STDERR_FILENO);
    gw__log(level, prefix, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

START_TEST(test_log_line)
{
    char *s;

    gw__log_set_level(GW_LOG_INFO);
    s = logged(GW_LOG_WARNING, "transport:http:http", "a\nb\rc\x1b[2Jd\t\x7f");
    /* "2026-11-27T20:27:47.123Z warning [prefix] message\n" */
    ck_assert_uint_eq(strlen(s), 25 + strlen("warning [transport:http:http] ")
                                     + strlen("a b c\\x1b[2Jd\\x09\\x7f\n"));
    ck_assert_int_eq(s[10], 'T');
    ck_assert_int_eq(s[23], 'Z');
    ck_assert_str_eq(s + 25,
                     "warning [transport:http:http] a b c\\x1b[2Jd\\x09\\x7f\n");
    s = logged(GW_LOG_INFO, NULL, "quoted \"x\" and \xc3\xa9");
    ck_assert_str_eq(s + 25, "info quoted \"x\" and \xc3\xa9\n");
    /* Above the level: nothing. */
    s = logged(GW_LOG_DEBUG, NULL, "hidden");
    ck_assert_str_eq(s, "");
}
END_TEST

START_TEST(test_log_long_line)
{
    static char big[6000];
    char *s;

    gw__log_set_level(GW_LOG_INFO);
    memset(big, '\x1b', sizeof(big) - 1);
    s = logged(GW_LOG_INFO, NULL, big);
    /* Cut at the 4096-byte line, between escapes, one newline at the end. */
    ck_assert_uint_le(strlen(s), 4095);
    ck_assert_int_eq(s[strlen(s) - 1], '\n');
    ck_assert_ptr_null(strchr(s, '\x1b'));
    ck_assert_int_eq((strlen(s) - 1 - 30) % 4, 0);
    ck_assert_int_eq(strncmp(s + 25, "info \\x1b\\x1b", 13), 0);
}
END_TEST

/* ---- the same lines through the sink (gw__log_set_sink) ---- */

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

START_TEST(test_sink_format)
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

START_TEST(test_sink_levels)
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

START_TEST(test_sink_long_line)
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
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_escape_ascii);
    tcase_add_test(tc, test_escape_utf8);
    tcase_add_test(tc, test_escape_cut);
    tcase_add_test(tc, test_log_line);
    tcase_add_test(tc, test_log_long_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("sink");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sink_format);
    tcase_add_test(tc, test_sink_levels);
    tcase_add_test(tc, test_sink_long_line);
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
    return failed == 0 ? 0 : 1;
}
