/*
 * tests/core/core_test.c: what the core's Check suites share
 * (tests/core/core_test.h): the per-test directory and its log, the
 * fixture plugins, the fixture storage's DOWN_FILE and config files.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core_test.h"

char fixdir[PATH_MAX];
char tmpdir[64];
char down_file[128];
char log_path[128];

void
find_fixtures(void)
{
    const char *b = getenv("GW_BUILDDIR");

    snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/plugins/.libs",
             b != NULL ? b : ".");
}

double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void
setup(void)
{
    int fd;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gwcoreXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(down_file, sizeof(down_file), "%s/down", tmpdir);
    snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

void
teardown(void)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        abort();
}

TCase *
fixture_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

int
run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void
set_down(int down)
{
    if (down) {
        FILE *f = fopen(down_file, "w");

        ck_assert_ptr_nonnull(f);
        fclose(f);
    } else {
        unlink(down_file);
    }
}

int
log_count(const char *needle, char *line, size_t size)
{
    FILE *f = fopen(log_path, "r");
    char buf[1024];
    int n = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (strstr(buf, needle) != NULL) {
            if (n == 0 && line != NULL)
                snprintf(line, size, "%s", buf);
            n++;
        }
    }
    fclose(f);
    return n;
}

const char *
after_time(const char *line)
{
    const char *p = strchr(line, ' ');

    return p != NULL ? p + 1 : line;
}

const char *
load_conf(gw__config_t *cfg, const char *text)
{
    static char path[200];
    gw_error_t err;
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "%s/gottwall.conf", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    if (gw__config_load(path, cfg, &err) != GW_OK)
        ck_abort_msg("config: %s", err.msg);
    return path;
}
