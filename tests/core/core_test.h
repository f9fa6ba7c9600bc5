/*
 * tests/core/core_test.h: what the core's Check suites share: a temporary
 * directory per test whose log file takes stderr (the daemon's log stays
 * out of the test output and can be checked line by line), the fixture
 * plugins' directory, the fixture storage's DOWN_FILE switch, and config
 * files written into the temporary directory and loaded.
 */
#ifndef GW_TESTS_CORE_TEST_H
#define GW_TESTS_CORE_TEST_H

#include <check.h>
#include <limits.h>
#include <stddef.h>

#include "base/conf.h"

extern char fixdir[PATH_MAX];  /* tests/fixtures/plugins/.libs */
extern char tmpdir[64];        /* this test's directory */
extern char down_file[128];    /* the fixture storage's DOWN_FILE */
extern char log_path[128];     /* stderr goes here */

/* Sets fixdir from GW_BUILDDIR (the harness's) or ".". From main. */
void find_fixtures(void);

/* A checked fixture: makes tmpdir and sends stderr to log_path;
 * teardown removes the directory. */
void setup(void);
void teardown(void);

/* A test case named name with setup and teardown around each test, added
 * to s. */
TCase *fixture_tcase(Suite *s, const char *name);

/* Runs every test of s: the exit code for main (EXIT_SUCCESS when none
 * failed). Frees s. */
int run_suite(Suite *s);

/* Creates (down 1) or removes (down 0) down_file: the fixture storage
 * with DOWN_FILE = down_file answers GW_AGAIN while it exists. */
void set_down(int down);

/* The monotonic clock in seconds. */
double now(void);

/* The number of log lines containing needle; *line gets the first. */
int log_count(const char *needle, char *line, size_t size);

/* The log line's text after its time stamp ("warning [...] ..."). */
const char *after_time(const char *line);

/* Writes text (a whole config file) to tmpdir/gottwall.conf, mode
 * 0600, and loads it into *cfg; aborts the test with the loader's message
 * if it does not load. Returns the file's path (a static buffer). */
const char *load_conf(gw__config_t *cfg, const char *text);

#endif /* GW_TESTS_CORE_TEST_H */
