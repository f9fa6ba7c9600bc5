/*
 * tests/core/test_daemon.c: core/daemon.c without the network: a daemon
 * made with gw__daemon_new for each role (ingest state or not), what the
 * host table reads of it (config, loops, loop_at's bounds, journal),
 * gw__daemon_run refusing to start without its storage plugin (exit code
 * and logged message, plugin directories in search order), and
 * gw__daemon_check with the fixture storage
 * (tests/fixtures/plugins/storage_fixture.c) up, down, misconfigured, and
 * with a transport that does not exist. The log (stderr) is captured and
 * checked line by line.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <gottwall/version.h>

#include "base/conf.h"
#include "core/daemon.h"
#include "core_test.h"

#define DM_CONF_HEAD                                                          \
    "SECRET_KEY = \"secret\";\n"                                              \
    "PROJECTS = { test_project = \"public\"; };\n"                            \
    "PERIODS = [ \"all\" ];\n"

typedef struct env_s {
    gw__config_t cfg;
    const char *path;
    gw__run_opts_t opts;
    char *dirs[1];
} env_t;

/* Loads DM_CONF_HEAD followed by rest; the options take roles and the
 * fixture directory as --plugin-path. */
static void
env_load(env_t *e, unsigned roles, const char *rest)
{
    char text[2048];

    memset(e, 0, sizeof(*e));
    snprintf(text, sizeof(text), "%s%s", DM_CONF_HEAD, rest);
    e->path = load_conf(&e->cfg, text);
    e->dirs[0] = fixdir;
    e->opts.roles = roles;
    e->opts.plugin_dirs = e->dirs;
    e->opts.nplugin_dirs = 1;
}

/* The first log line holding needle, after its time stamp; "" if none. */
static const char *
logged(const char *needle)
{
    static char line[1024];

    if (log_count(needle, line, sizeof(line)) == 0)
        return "";
    return after_time(line);
}

/* ---- A daemon that runs nothing ---- */

/* Makes a daemon of roles and checks what the host table reads of it. */
static void
check_new(unsigned roles, int aggregates)
{
    env_t e;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    gw__daemon_t *d;

    ck_assert_ptr_nonnull(loop);
    env_load(&e, roles, "STORAGE = \"fixture\";\n");
    d = gw__daemon_new(&e.cfg, &e.opts, loop);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_eq(gw__daemon_config(d), &e.cfg);
    ck_assert_ptr_eq(gw__daemon_loop(d), loop);
    if (aggregates)
        ck_assert_ptr_nonnull(gw__daemon_ingest(d));
    else
        ck_assert_ptr_null(gw__daemon_ingest(d));
    ck_assert_ptr_nonnull(gw__daemon_auth(d));
    ck_assert_ptr_null(gw__daemon_journal(d));
    /* No workers until it runs: loop 0 only. */
    ck_assert_int_eq(gw__daemon_loops(d), 1);
    gw__daemon_free(d);
    ev_loop_destroy(loop);
    gw__config_free(&e.cfg);
}

START_TEST(test_new_aggregator)
{
    check_new(GW__ROLE_AGGREGATOR, 1);
}
END_TEST

START_TEST(test_new_server)
{
    check_new(GW__ROLE_SERVER, 0);
}
END_TEST

START_TEST(test_new_both)
{
    check_new(GW__ROLE_AGGREGATOR | GW__ROLE_SERVER, 1);
}
END_TEST

START_TEST(test_new_logs_nothing)
{
    check_new(GW__ROLE_AGGREGATOR | GW__ROLE_SERVER, 1);
    ck_assert_int_eq(log_count("", NULL, 0), 0);
    gw__daemon_free(NULL);
}
END_TEST

START_TEST(test_loop_at_bounds)
{
    env_t e;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    gw__daemon_t *d;

    env_load(&e, GW__ROLE_AGGREGATOR,
             "STORAGE = \"fixture\";\nINGEST_LOOPS = 4;\n");
    d = gw__daemon_new(&e.cfg, &e.opts, loop);
    ck_assert_ptr_nonnull(d);
    /* INGEST_LOOPS takes effect when the daemon runs, not before. */
    ck_assert_int_eq(gw__daemon_loops(d), 1);
    ck_assert_ptr_eq(gw__daemon_loop_at(d, 0), loop);
    ck_assert_ptr_null(gw__daemon_loop_at(d, 1));
    ck_assert_ptr_null(gw__daemon_loop_at(d, 3));
    ck_assert_ptr_null(gw__daemon_loop_at(d, -1));
    ck_assert_ptr_null(gw__daemon_loop_at(d, INT_MAX));
    gw__daemon_free(d);
    ev_loop_destroy(loop);
    gw__config_free(&e.cfg);
}
END_TEST

/* ---- gw__daemon_run ---- */

START_TEST(test_run_without_storage_plugin)
{
    env_t e;
    char rest[512], want[PATH_MAX * 3 + 200];

    /* PLUGIN_PATH first, then --plugin-path, then the installed one. */
    snprintf(rest, sizeof(rest), "STORAGE = \"nosuch\";\n"
             "PLUGIN_PATH = \"%s/plugins\";\n", tmpdir);
    env_load(&e, GW__ROLE_AGGREGATOR, rest);
    ck_assert_int_eq(gw__daemon_run(e.path, &e.cfg, &e.opts), 1);
    snprintf(want, sizeof(want), "error storage plugin \"nosuch\" not found "
             "in %s/plugins, %s, %s\n", tmpdir, fixdir, GW_PLUGINDIR);
    ck_assert_int_eq(log_count("not found", NULL, 0), 1);
    ck_assert_str_eq(logged("not found"), want);
    snprintf(want, sizeof(want), "(plugin ABI %d.%d) starting as aggregator "
             "with %s (process id ", GW_PLUGIN_ABI_MAJOR,
             GW_PLUGIN_ABI_MINOR, e.path);
    ck_assert_int_eq(log_count(want, NULL, 0), 1);
    ck_assert_int_eq(strncmp(logged(want), "info gottwall ", 14), 0);
    /* Never ready; stops with nothing accepted. */
    ck_assert_int_eq(log_count("ready", NULL, 0), 0);
    ck_assert_str_eq(logged("stopped"),
                     "info stopped: 0 events accepted, 0 stored in 0 "
                     "batches, 0 dropped, 0 not stored\n");
    /* The config is mode 0600: no warning about who may read it. */
    ck_assert_int_eq(log_count("readable by every user", NULL, 0), 0);
    gw__config_free(&e.cfg);
}
END_TEST

START_TEST(test_run_server_without_storage_plugin)
{
    env_t e;

    env_load(&e, GW__ROLE_SERVER, "STORAGE = \"nosuch\";\n");
    ck_assert_int_eq(gw__daemon_run(e.path, &e.cfg, &e.opts), 1);
    ck_assert_int_eq(log_count("starting as server with", NULL, 0), 1);
    ck_assert_int_eq(log_count("error storage plugin \"nosuch\" not found "
                               "in ",
                               NULL, 0),
                     1);
    ck_assert_str_eq(logged("stopped"), "info stopped\n");
    gw__config_free(&e.cfg);
}
END_TEST

/* ---- gw__daemon_check ---- */

static void
check_conf(env_t *e, const char *storage_settings)
{
    char rest[1024];

    snprintf(rest, sizeof(rest), "STORAGE = \"fixture\";\n"
             "STORAGE_SETTINGS = { %s };\n"
             "BACKENDS = { feed = { PLUGIN = \"fixture\"; }; };\n",
             storage_settings);
    env_load(e, GW__ROLE_AGGREGATOR | GW__ROLE_SERVER, rest);
}

START_TEST(test_check_ok)
{
    env_t e;
    char settings[256], want[PATH_MAX + 200];

    snprintf(settings, sizeof(settings), "DOWN_FILE = \"%s\";", down_file);
    check_conf(&e, settings);
    ck_assert_int_eq(gw__daemon_check(&e.cfg, &e.opts), 0);
    snprintf(want, sizeof(want), "info storage \"fixture\": plugin fixture "
             "0.0.1 from %s/storage_fixture.so: created\n", fixdir);
    ck_assert_str_eq(logged("storage \"fixture\": plugin"), want);
    ck_assert_str_eq(logged("answers"), "info storage \"fixture\": answers\n");
    snprintf(want, sizeof(want), "info transport \"feed\": plugin fixture "
             "0.0.1 from %s/transport_fixture.so: created\n", fixdir);
    ck_assert_str_eq(logged("transport \"feed\""), want);
    ck_assert_int_eq(log_count("error", NULL, 0), 0);
    gw__config_free(&e.cfg);
}
END_TEST

START_TEST(test_check_down)
{
    env_t e;
    char settings[256];

    snprintf(settings, sizeof(settings), "DOWN_FILE = \"%s\";", down_file);
    check_conf(&e, settings);
    set_down(1);
    ck_assert_int_eq(gw__daemon_check(&e.cfg, &e.opts), 1);
    ck_assert_str_eq(logged("does not answer"),
                     "error storage \"fixture\" does not answer: connection "
                     "refused (fixture)\n");
    ck_assert_int_eq(log_count("answers", NULL, 0), 0);
    /* It stops at the storage: the transports are not created. */
    ck_assert_int_eq(log_count("transport", NULL, 0), 0);
    /* Up again, the same config checks. */
    set_down(0);
    ck_assert_int_eq(gw__daemon_check(&e.cfg, &e.opts), 0);
    ck_assert_int_eq(log_count("info storage \"fixture\": answers", NULL, 0),
                     1);
    gw__config_free(&e.cfg);
}
END_TEST

START_TEST(test_check_bad_setting)
{
    env_t e;
    char want[PATH_MAX + 300];

    check_conf(&e, "BOGUS = 1;");
    ck_assert_int_eq(gw__daemon_check(&e.cfg, &e.opts), 1);
    snprintf(want, sizeof(want), "error storage \"fixture\": %s:5: "
             "STORAGE_SETTINGS.BOGUS is not a setting of this plugin; known: "
             "AGAIN_COUNT, APPLY_THEN_AGAIN, ERR_COUNT, DELAY_MS, "
             "DOWN_FILE, DOCS_DOWN_FILE\n", e.path);
    ck_assert_str_eq(logged("BOGUS"), want);
    gw__config_free(&e.cfg);
}
END_TEST

START_TEST(test_check_missing_transport)
{
    env_t e;
    char want[PATH_MAX * 2 + 200];

    env_load(&e, GW__ROLE_AGGREGATOR,
             "STORAGE = \"fixture\";\n"
             "BACKENDS = { feed = { PLUGIN = \"nosuch\"; }; };\n");
    ck_assert_int_eq(gw__daemon_check(&e.cfg, &e.opts), 1);
    ck_assert_int_eq(log_count("info storage \"fixture\": answers", NULL, 0),
                     1);
    snprintf(want, sizeof(want), "error transport plugin \"nosuch\" not "
             "found in %s, %s\n", fixdir, GW_PLUGINDIR);
    ck_assert_str_eq(logged("not found"), want);
    gw__config_free(&e.cfg);
}
END_TEST

static Suite *
daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = fixture_tcase(s, "new");

    tcase_add_test(tc, test_new_aggregator);
    tcase_add_test(tc, test_new_server);
    tcase_add_test(tc, test_new_both);
    tcase_add_test(tc, test_new_logs_nothing);
    tcase_add_test(tc, test_loop_at_bounds);
    tc = fixture_tcase(s, "run");
    tcase_add_test(tc, test_run_without_storage_plugin);
    tcase_add_test(tc, test_run_server_without_storage_plugin);
    tcase_add_test(tc, test_check_ok);
    tcase_add_test(tc, test_check_down);
    tcase_add_test(tc, test_check_bad_setting);
    tcase_add_test(tc, test_check_missing_transport);
    return s;
}

int
main(void)
{
    find_fixtures();
    return run_suite(daemon_suite());
}
