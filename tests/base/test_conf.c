/*
 * tests/base/test_conf.c: base/conf.c. Every refusal with its exact
 * "file:line: message", both project forms, the defaults, PREFIX,
 * PLUGIN_PATH and ALLOWED_HOSTS, and the plugins' key tables (types, bounds, unknown keys).
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gottwall/event.h>

#include "base/conf.h"

static char tmpdir[256];
static char path[512];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gwcfgXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/gottwall.conf", tmpdir);
}

static void
teardown(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void
write_conf(const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text; expects GW_ERR with "path:LINE: msg". */
static void
expect_error(const char *text, int line, const char *msg)
{
    gw__config_t cfg;
    gw_error_t err;
    char want[1024];

    write_conf(text);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(gw__config_load(path, &cfg, &err), GW_ERR);
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
    ck_assert_str_eq(err.msg, want);
    gw__config_free(&cfg); /* safe on the zeroed struct */
}

static void
load_ok(const char *text, gw__config_t *cfg)
{
    gw_error_t err;

    write_conf(text);
    err.msg[0] = '\0';
    if (gw__config_load(path, cfg, &err) != GW_OK)
        ck_abort_msg("load failed: %s", err.msg);
}

/* ---- Errors ---- */

START_TEST(test_syntax_error)
{
    expect_error("SECRET_KEY = \"x\";\nPROJECTS = {\n  a = ;\n};\n", 3,
                 "syntax error");
}
END_TEST

START_TEST(test_missing_file)
{
    gw__config_t cfg;
    gw_error_t err;
    char want[600];

    ck_assert_int_eq(gw__config_load(path, &cfg, &err), GW_ERR);
    snprintf(want, sizeof(want),
             "%s: cannot read the config file: No such file or directory",
             path);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_unknown_top_level)
{
    expect_error("SECRET_KEY = \"x\";\n\nFLUSH_INTERVALL = 100;\n", 3,
                 "FLUSH_INTERVALL is not a known setting; did you mean "
                 "FLUSH_INTERVAL?");
    expect_error("SECRET_KEY = \"x\";\nfrobnicate = 1;\n", 2,
                 "frobnicate is not a known setting (see "
                 "gottwall.conf.example for the settings there are)");
}
END_TEST

START_TEST(test_wrong_types)
{
    expect_error("FLUSH_INTERVAL = \"fast\";\n", 1,
                 "FLUSH_INTERVAL must be an integer, not a string");
    expect_error("\nANONYMOUS_LOGIN = 1;\n", 2,
                 "ANONYMOUS_LOGIN must be true or false, not an integer");
    expect_error("SECRET_KEY = 12;\n", 1,
                 "SECRET_KEY must be a string in quotes, not an integer");
    expect_error("PROJECTS = [ \"a\" ];\n", 1,
                 "PROJECTS must be a group { name = \"public_key\"; ... }, "
                 "not an array [ ... ]");
    expect_error("BACKENDS = { http = 8890; };\n", 1,
                 "BACKENDS.http must be a group of settings { ... } (may be "
                 "empty), not an integer");
    expect_error("HTTP_IDLE_TIMEOUT = \"1\";\n", 1,
                 "HTTP_IDLE_TIMEOUT must be a number of seconds, not a "
                 "string");
}
END_TEST

START_TEST(test_bad_values)
{
    expect_error("FLUSH_INTERVAL = 5;\n", 1,
                 "FLUSH_INTERVAL must be between 10 and 3600000, not 5");
    expect_error("SERVER = {\n  HOST = \"::1\";\n  PORT = 70000;\n};\n", 3,
                 "SERVER.PORT must be between 0 and 65535, not 70000");
    expect_error("SERVER = { HOTS = \"x\"; };\n", 1,
                 "SERVER.HOTS is not a known setting (known: HOST, PORT)");
    expect_error("PERIODS = [ \"day\",\n \"fortnight\" ];\n", 2,
                 "PERIODS: unknown period \"fortnight\" (known: minute, "
                 "hour, day, week, month, year, all)");
    expect_error("PERIODS = [ ];\n", 1,
                 "PERIODS is empty: name at least one of minute, hour, day, "
                 "week, month, year, all");
    expect_error("SECRET_KEY = \"\";\n", 1, "SECRET_KEY must not be empty");
    expect_error("STORAGE = \"\";\n", 1,
                 "STORAGE must name a storage plugin (\"memory\", \"redis\", "
                 "\"postgres\")");
}
END_TEST

START_TEST(test_projects_errors)
{
    expect_error("PROJECTS = {\n  shop = \"pub\";\n};\n", 2,
                 "project \"shop\" uses the legacy form (name = "
                 "\"public_key\"), which needs SECRET_KEY; set SECRET_KEY = "
                 "\"...\"; or write shop = { public_key = \"...\"; "
                 "private_key = \"...\"; };");
    expect_error("PROJECTS = {\n  shop = { public_key = \"p\"; };\n};\n", 2,
                 "PROJECTS.shop needs private_key = \"...\";");
    expect_error("PROJECTS = {\n  shop = { public_key = \"p\";\n"
                 "  private_key = \"q\"; secret = \"s\"; };\n};\n",
                 3,
                 "PROJECTS.shop.secret is not a known setting (known: "
                 "public_key, private_key)");
    expect_error("PROJECTS = { shop = { public_key = \"\"; "
                 "private_key = \"q\"; }; };\n",
                 1, "PROJECTS.shop.public_key must not be empty");
    expect_error("PROJECTS = { shop = 5; };\n", 1,
                 "PROJECTS.shop must be a public key string or a group "
                 "{ public_key = \"...\"; private_key = \"...\"; }, not an "
                 "integer");
}
END_TEST

START_TEST(test_users_errors)
{
    expect_error("USERS = ( { email = \"a@b\"; password = \"hunter2\"; } );\n",
                 1,
                 "USERS[0].password must be a hash printed by `gottwall "
                 "passwd` (pbkdf2-sha256$...), not a plain password");
    expect_error("USERS = (\n { email = \"a@b\"; }\n);\n", 2,
                 "USERS[0] needs password = \"...\";");
    expect_error("USERS = { a = 1; };\n", 1,
                 "USERS must be a list ( { email = \"...\"; password = "
                 "\"...\"; }, ... ), not a group { ... }");
}
END_TEST

START_TEST(test_backend_plugin_key)
{
    expect_error("BACKENDS = {\n  x = { PLUGIN = 3; };\n};\n", 2,
                 "BACKENDS.x.PLUGIN must be a plugin name or a path to a .so "
                 "in quotes");
}
END_TEST

/* ---- What is read ---- */

START_TEST(test_defaults)
{
    gw__config_t cfg;

    load_ok("", &cfg);
    ck_assert_ptr_null(cfg.secret_key);
    ck_assert_uint_eq(cfg.nprojects, 0);
    ck_assert_str_eq(cfg.prefix, "");
    ck_assert_uint_eq(cfg.periods, 0x7f);
    ck_assert_str_eq(cfg.storage.instance, "memory");
    ck_assert_str_eq(cfg.storage.plugin, "memory");
    ck_assert_ptr_null(cfg.storage.section);
    ck_assert_uint_eq(cfg.nbackends, 0);
    ck_assert_str_eq(cfg.server_host, "127.0.0.1");
    ck_assert_int_eq(cfg.server_port, 8889);
    ck_assert_int_eq(cfg.anonymous_login, 0);
    ck_assert_int_eq(cfg.flush_interval_ms, 1000);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 30000);
    ck_assert_int_eq(cfg.auth_max_skew, 900);
    ck_assert_int_eq(cfg.auth_s3_window, 300);
    ck_assert_uint_eq(cfg.max_points, 10000);
    ck_assert_uint_eq(cfg.limits.max_event_bytes, 65536);
    ck_assert_uint_eq(cfg.limits.max_filters, 32);
    ck_assert_uint_eq(cfg.limits.max_filter_values, 64);
    ck_assert_uint_eq(cfg.limits.max_name_bytes, 255);
    ck_assert_uint_eq(cfg.limits.max_batch_events, 10000);
    ck_assert_uint_eq(cfg.limits.max_series, 100000);
    ck_assert_uint_eq(cfg.limits.max_pending_series, 1000000);
    ck_assert_uint_eq(cfg.http.max_body, 1048576);
    ck_assert_uint_eq(cfg.http.max_header_bytes, 16384);
    ck_assert_uint_eq(cfg.http.max_headers, 64);
    ck_assert(cfg.http.header_timeout == 10.0);
    ck_assert(cfg.http.idle_timeout == 60.0);
    ck_assert_uint_eq(cfg.http.max_connections, 1024);
    gw__config_free(&cfg);
}
END_TEST

START_TEST(test_both_project_forms)
{
    gw__config_t cfg;
    const gw__project_t *p;

    load_ok("SECRET_KEY = \"secret_key\";\n"
            "PROJECTS = {\n"
            "    test_project = \"my_public_key\";\n"
            "    shop = { public_key = \"shop_public\"; "
            "private_key = \"shop_private\"; };\n"
            "};\n",
            &cfg);
    ck_assert_uint_eq(cfg.nprojects, 2);
    p = gw__config_project(&cfg, "test_project");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->public_key, "my_public_key");
    ck_assert_str_eq(p->private_key, "secret_key");
    p = gw__config_project(&cfg, "shop");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->public_key, "shop_public");
    ck_assert_str_eq(p->private_key, "shop_private");
    ck_assert_ptr_null(gw__config_project(&cfg, "nope"));
    gw__config_free(&cfg);

    /* Every project with its own keys: no SECRET_KEY needed. */
    load_ok("PROJECTS = { a = { public_key = \"x\"; private_key = \"y\"; }; "
            "};\n",
            &cfg);
    ck_assert_uint_eq(cfg.nprojects, 1);
    ck_assert_ptr_null(cfg.secret_key);
    gw__config_free(&cfg);
}
END_TEST

START_TEST(test_full_example)
{
    gw__config_t cfg;

    load_ok("SECRET_KEY = \"s\";\n"
            "PROJECTS = { test_project = \"p\"; };\n"
            "PREFIX = \"gottwall/\";\n"
            "PERIODS = [ \"minute\", \"all\" ];\n"
            "STORAGE = \"redis\";\n"
            "STORAGE_SETTINGS = { HOST = \"127.0.0.1\"; PORT = 6379; };\n"
            "BACKENDS = {\n"
            "    http = { PORT = 8890; };\n"
            "    udp2 = { PLUGIN = \"udp\"; PORT = 8898; };\n"
            "    tcpip = { };\n"
            "};\n"
            "SERVER = { HOST = \"0.0.0.0\"; PORT = 9000; };\n"
            "USERS = ( { email = \"you@example.com\"; "
            "password = \"pbkdf2-sha256$1$AAAA$BBBB\"; } );\n"
            "ANONYMOUS_LOGIN = true;\n"
            "cookie_secret = \"c\";\n"
            "FLUSH_INTERVAL = 250;\n"
            "HTTP_IDLE_TIMEOUT = 2;\n"
            "PLUGIN_PATH = [ \"/a\", \"/b:/c\" ];\n",
            &cfg);
    ck_assert_str_eq(cfg.prefix, "/gottwall");
    ck_assert_uint_eq(cfg.periods,
                      (1u << GW_PERIOD_MINUTE) | (1u << GW_PERIOD_ALL));
    ck_assert_str_eq(cfg.storage.instance, "redis");
    ck_assert_str_eq(cfg.storage.plugin, "redis");
    ck_assert_ptr_nonnull(cfg.storage.section);
    ck_assert_uint_eq(cfg.nbackends, 3);
    ck_assert_str_eq(cfg.backends[0].instance, "http");
    ck_assert_str_eq(cfg.backends[0].plugin, "http");
    ck_assert_str_eq(cfg.backends[1].instance, "udp2");
    ck_assert_str_eq(cfg.backends[1].plugin, "udp");
    ck_assert_str_eq(cfg.backends[2].instance, "tcpip");
    ck_assert_ptr_nonnull(cfg.backends[2].section);
    ck_assert_str_eq(cfg.server_host, "0.0.0.0");
    ck_assert_int_eq(cfg.server_port, 9000);
    ck_assert_uint_eq(cfg.nusers, 1);
    ck_assert_str_eq(cfg.users[0].email, "you@example.com");
    ck_assert_str_eq(cfg.users[0].password_hash, "pbkdf2-sha256$1$AAAA$BBBB");
    ck_assert_int_eq(cfg.anonymous_login, 1);
    ck_assert_str_eq(cfg.cookie_secret, "c");
    ck_assert_int_eq(cfg.flush_interval_ms, 250);
    ck_assert(cfg.http.idle_timeout == 2.0);
    ck_assert_uint_eq(cfg.nplugin_path, 3);
    ck_assert_str_eq(cfg.plugin_path[0], "/a");
    ck_assert_str_eq(cfg.plugin_path[1], "/b");
    ck_assert_str_eq(cfg.plugin_path[2], "/c");
    gw__config_free(&cfg);
}
END_TEST

START_TEST(test_prefix_forms)
{
    static const char *const cases[][2] = {
        {"PREFIX = \"\";\n", ""},
        {"PREFIX = \"/\";\n", ""},
        {"PREFIX = \"/gottwall\";\n", "/gottwall"},
        {"PREFIX = \"/gottwall/\";\n", "/gottwall"},
        {"PREFIX = \"a/b//\";\n", "/a/b"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw__config_t cfg;

        load_ok(cases[i][0], &cfg);
        ck_assert_str_eq(cfg.prefix, cases[i][1]);
        gw__config_free(&cfg);
    }
}
END_TEST

START_TEST(test_plugin_path_string)
{
    gw__config_t cfg;

    load_ok("PLUGIN_PATH = \"/x:/y\";\n", &cfg);
    ck_assert_uint_eq(cfg.nplugin_path, 2);
    ck_assert_str_eq(cfg.plugin_path[0], "/x");
    ck_assert_str_eq(cfg.plugin_path[1], "/y");
    gw__config_free(&cfg);
}
END_TEST

START_TEST(test_allowed_hosts)
{
    gw__config_t cfg;

    load_ok("ALLOWED_HOSTS = [ \"Stats.Example.COM.\", \".corp.example\", "
            "\"2001:DB8::1\", \"[::2]\", \"10.0.0.5\", \"*\" ];\n", &cfg);
    ck_assert_uint_eq(cfg.nallowed_hosts, 6);
    ck_assert_str_eq(cfg.allowed_hosts[0], "stats.example.com");
    ck_assert_str_eq(cfg.allowed_hosts[1], ".corp.example");
    ck_assert_str_eq(cfg.allowed_hosts[2], "[2001:db8::1]");
    ck_assert_str_eq(cfg.allowed_hosts[3], "[::2]");
    ck_assert_str_eq(cfg.allowed_hosts[4], "10.0.0.5");
    ck_assert_str_eq(cfg.allowed_hosts[5], "*");
    gw__config_free(&cfg);
    load_ok("ALLOWED_HOSTS = \"stats.example.com\";\n", &cfg);
    ck_assert_uint_eq(cfg.nallowed_hosts, 1);
    ck_assert_str_eq(cfg.allowed_hosts[0], "stats.example.com");
    gw__config_free(&cfg);
    load_ok("FLUSH_INTERVAL = 100;\n", &cfg);
    ck_assert_uint_eq(cfg.nallowed_hosts, 0);
    gw__config_free(&cfg);
    expect_error("ALLOWED_HOSTS = [ \"a..b\" ];\n", 1,
                 "ALLOWED_HOSTS[0]: \"a..b\" is not a host name: give only "
                 "the name (\"stats.example.com\"), an address, \".domain\" "
                 "for it and its subdomains, or \"*\" for any");
    expect_error("ALLOWED_HOSTS = [ \"x\", \"[::1]:80\" ];\n", 1,
                 "ALLOWED_HOSTS[1]: \"[::1]:80\" is not a host name: give "
                 "only the name (\"stats.example.com\"), an address, "
                 "\".domain\" for it and its subdomains, or \"*\" for any");
    expect_error("ALLOWED_HOSTS = [ \"localhost:8889\" ];\n", 1,
                 "ALLOWED_HOSTS[0]: \"localhost:8889\": give the name "
                 "without a port (every port is allowed)");
    expect_error("ALLOWED_HOSTS = { a = 1; };\n", 1,
                 "ALLOWED_HOSTS must be a host name in quotes or a list of "
                 "them [ \"stats.example.com\", \".example.org\" ], not a "
                 "group { ... }");
}
END_TEST

START_TEST(test_sessions_and_proxies)
{
    gw__config_t cfg;

    load_ok("FLUSH_INTERVAL = 100;\n", &cfg);
    ck_assert(cfg.session_max_age == 604800);
    ck_assert(cfg.session_idle_timeout == 86400);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 2); /* 127.0.0.1 and ::1 */
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 2, "127.0.0.1"));
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 2, "::ffff:127.0.0.1"));
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 2, "::1"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 2, "127.0.0.2"));
    gw__config_free(&cfg);
    load_ok("SESSION_MAX_AGE = 3600; SESSION_IDLE_TIMEOUT = 0;\n"
            "TRUSTED_PROXIES = [ \"10.0.0.0/8\", \"192.0.2.128/25\", "
            "\"fd00::/8\", \"0.0.0.0/0\" ];\n", &cfg);
    ck_assert(cfg.session_max_age == 3600 && cfg.session_idle_timeout == 0);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 4);
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 3, "10.255.0.1"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 3, "11.0.0.1"));
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 3, "192.0.2.200"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 3, "192.0.2.127"));
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 3, "fdab::1"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 3, "fe80::1"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 3, "127.0.0.1"));
    ck_assert(!gw__cidr_match(cfg.trusted_proxies, 3, "not an address"));
    ck_assert(gw__cidr_match(cfg.trusted_proxies, 4, "203.0.113.9"));
    gw__config_free(&cfg);
    load_ok("TRUSTED_PROXIES = [ ];\n", &cfg);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 0);
    gw__config_free(&cfg);
    expect_error("TRUSTED_PROXIES = [ \"10.0.0.0/33\" ];\n", 1,
                 "TRUSTED_PROXIES[0]: \"10.0.0.0/33\" is not an address or "
                 "a network: give an IPv4 or IPv6 address (\"10.0.0.5\", "
                 "\"::1\"), or one with a prefix length (\"10.0.0.0/8\", "
                 "\"fd00::/8\"); names are not looked up");
    expect_error("TRUSTED_PROXIES = [ \"proxy.example\" ];\n", 1,
                 "TRUSTED_PROXIES[0]: \"proxy.example\" is not an address "
                 "or a network: give an IPv4 or IPv6 address (\"10.0.0.5\", "
                 "\"::1\"), or one with a prefix length (\"10.0.0.0/8\", "
                 "\"fd00::/8\"); names are not looked up");
    expect_error("SESSION_MAX_AGE = 10;\n", 1,
                 "SESSION_MAX_AGE must be between 60 and 31622400, not 10");
    ck_assert(gw__config_host_loopback("127.0.0.1"));
    ck_assert(gw__config_host_loopback("127.1.2.3"));
    ck_assert(gw__config_host_loopback("::1"));
    ck_assert(gw__config_host_loopback("[::1]"));
    ck_assert(gw__config_host_loopback("LocalHost"));
    ck_assert(!gw__config_host_loopback("0.0.0.0"));
    ck_assert(!gw__config_host_loopback("::"));
    ck_assert(!gw__config_host_loopback(""));
    ck_assert(!gw__config_host_loopback("192.0.2.10"));
    ck_assert(!gw__config_host_loopback("stats.example.com"));
}
END_TEST

START_TEST(test_retention)
{
    gw__config_t cfg;
    char buf[32];
    int64_t v;

    load_ok("RETENTION = { minute = \"7d\"; hour = \"90d\"; day = \"5y\"; "
            "week = 315360000; };\n", &cfg);
    ck_assert_int_eq(cfg.retention_set, 1);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_MINUTE], 7 * 86400);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_HOUR], 90 * 86400);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_DAY], 5 * 365 * 86400);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_WEEK], 10 * 365 * 86400);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_MONTH], 0);
    ck_assert(cfg.retention_interval == 60);
    gw__config_free(&cfg);
    load_ok("SECRET_KEY = \"x\";\n", &cfg);
    ck_assert_int_eq(cfg.retention_set, 0);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_MINUTE], 0);
    gw__config_free(&cfg);
    /* Units and their formatting. */
    ck_assert_int_eq(gw__retention_parse("90s", &v), GW_OK);
    ck_assert_int_eq(v, 90);
    ck_assert_int_eq(gw__retention_parse("15m", &v), GW_OK);
    ck_assert_int_eq(v, 900);
    ck_assert_int_eq(gw__retention_parse("36h", &v), GW_OK);
    ck_assert_int_eq(v, 36 * 3600);
    ck_assert_int_eq(gw__retention_parse("2w", &v), GW_OK);
    ck_assert_int_eq(v, 14 * 86400);
    ck_assert_int_eq(gw__retention_parse("7", &v), GW_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(gw__retention_parse("7 d", &v), GW_ERR);
    ck_assert_int_eq(gw__retention_parse("d", &v), GW_ERR);
    ck_assert_int_eq(gw__retention_parse("0d", &v), GW_ERR);
    ck_assert_int_eq(gw__retention_parse("1.5d", &v), GW_ERR);
    ck_assert_int_eq(gw__retention_parse("7dd", &v), GW_ERR);
    gw__retention_format(7 * 86400, buf, sizeof(buf));
    ck_assert_str_eq(buf, "7d");
    gw__retention_format(2 * 365 * 86400, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2y");
    gw__retention_format(90 * 86400, buf, sizeof(buf));
    ck_assert_str_eq(buf, "90d");
    gw__retention_format(36 * 3600, buf, sizeof(buf));
    ck_assert_str_eq(buf, "36h");
    gw__retention_format(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "for ever");
    /* What check and start refuse, with the line. */
    expect_error("RETENTION = {\n minute = \"7d\";\n hour = \"3d\";\n};\n",
                 2, "RETENTION.minute (7d) is longer than RETENTION.hour "
                 "(3d): a finer period cannot be kept longer than a coarser "
                 "one; keep minute at most \"3d\"");
    expect_error("RETENTION = { hour = \"90d\"; };\n", 1,
                 "RETENTION: minute is not named, so it is kept for ever, "
                 "longer than hour (90d): a finer period cannot be kept "
                 "longer than a coarser one; add minute = \"90d\"; (or "
                 "less)");
    expect_error("RETENTION = {\n minute = \"30s\"; };\n", 2,
                 "RETENTION.minute is shorter than one minute bucket: keep at "
                 "least \"1m\", or remove it to keep minute buckets for ever");
    expect_error("RETENTION = { minute = \"7d\"; month = \"3w\"; };\n", 1,
                 "RETENTION.month is shorter than one month bucket: keep at "
                 "least \"28d\", or remove it to keep month buckets for ever");
    expect_error("RETENTION = { minute = \"7 days\"; };\n", 1,
                 "RETENTION.minute must be a duration: a whole number and a "
                 "unit s, m, h, d, w or y, like \"7d\" or \"90d\", not \"7 "
                 "days\"");
    expect_error("RETENTION = { minute = true; };\n", 1,
                 "RETENTION.minute must be a duration: a whole number and a "
                 "unit s, m, h, d, w or y, like \"7d\" or \"90d\"");
    expect_error("RETENTION = { minutes = \"7d\"; };\n", 1,
                 "RETENTION.minutes: unknown period (known: minute, hour, "
                 "day, week, month, year)");
    expect_error("RETENTION = { all = \"1y\"; };\n", 1,
                 "RETENTION.all: the all-time bucket is one cell per series "
                 "and cannot expire; remove it");
    expect_error("PERIODS = [ \"hour\", \"day\" ];\n"
                 "RETENTION = { minute = \"7d\"; };\n", 2,
                 "RETENTION.minute: minute is not in PERIODS, so nothing of it "
                 "is kept; remove it or add \"minute\" to PERIODS");
    expect_error("RETENTION = [ \"7d\" ];\n", 1,
                 "RETENTION must be a group { minute = \"7d\"; hour = "
                 "\"90d\"; }, not an array [ ... ]");
    /* Without minute in PERIODS, hour alone is fine. */
    load_ok("PERIODS = [ \"hour\", \"day\" ];\n"
            "RETENTION = { hour = \"90d\"; };\nRETENTION_INTERVAL = 5;\n",
            &cfg);
    ck_assert_int_eq(cfg.retention[GW_PERIOD_HOUR], 90 * 86400);
    ck_assert(cfg.retention_interval == 5);
    gw__config_free(&cfg);
}
END_TEST

START_TEST(test_include)
{
    gw__config_t cfg;
    gw_error_t err;
    char inc[600], want[1300];
    FILE *f;

    /* Relative to the including file, whatever the working directory. */
    snprintf(inc, sizeof(inc), "%s/projects.conf", tmpdir);
    f = fopen(inc, "w");
    ck_assert_ptr_nonnull(f);
    fputs("PROJECTS = {\n  shop = { public_key = \"p\"; private_key = \"q\"; };\n};\n",
          f);
    fclose(f);
    ck_assert_int_eq(chdir("/"), 0);
    load_ok("FLUSH_INTERVAL = 100;\n@include \"projects.conf\"\n", &cfg);
    ck_assert_uint_eq(cfg.nprojects, 1);
    gw__config_free(&cfg);

    /* An error inside the included file names that file and its line. */
    f = fopen(inc, "w");
    fputs("# projects\nPROJECTS = {\n  shop = 5;\n};\n", f);
    fclose(f);
    write_conf("@include \"projects.conf\"\n");
    ck_assert_int_eq(gw__config_load(path, &cfg, &err), GW_ERR);
    snprintf(want, sizeof(want), "%s:3: PROJECTS.shop must be a public key "
             "string or a group { public_key = \"...\"; private_key = "
             "\"...\"; }, not an integer", inc);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

/* ---- Plugin key tables ---- */

typedef struct ak_state_s {
    const char *host;
    int64_t port;
    int enabled;
    double ratio;
    const char *unset;
} ak_state_t;

static const gw_config_key_t ak_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", ak_state_t, host,
                  "address"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8890", ak_state_t, port,
                        "port", 1, 65535),
    GW_CONFIG_KEY("ENABLED", GW_CONFIG_BOOL, "true", ak_state_t, enabled,
                  "on"),
    GW_CONFIG_KEY_RANGE("RATIO", GW_CONFIG_DOUBLE, "0.5", ak_state_t, ratio,
                        "ratio", 0, 1),
    GW_CONFIG_KEY("UNSET", GW_CONFIG_STRING, NULL, ak_state_t, unset, "x"),
    GW_CONFIG_END,
};

/* Applies ak_keys to BACKENDS.http of text. */
static int
apply(const char *text, ak_state_t *st, gw_error_t *err, gw__config_t *cfg)
{
    load_ok(text, cfg);
    memset(st, 0x5a, sizeof(*st));
    return gw__config_apply_keys(cfg->backends[0].section, cfg->path,
                                 "BACKENDS.http", ak_keys, st, err);
}

START_TEST(test_apply_defaults)
{
    ak_state_t st;

    memset(&st, 0x5a, sizeof(st));
    ck_assert_int_eq(gw__config_apply_keys(NULL, "f", "BACKENDS.http",
                                           ak_keys, &st, NULL),
                     GW_OK);
    ck_assert_str_eq(st.host, "127.0.0.1");
    ck_assert_int_eq(st.port, 8890);
    ck_assert_int_eq(st.enabled, 1);
    ck_assert(st.ratio == 0.5);
    ck_assert_ptr_null(st.unset);
}
END_TEST

START_TEST(test_apply_values)
{
    gw__config_t cfg;
    ak_state_t st;
    gw_error_t err;

    ck_assert_int_eq(apply("BACKENDS = { http = { PLUGIN = \"http\"; "
                           "HOST = \"::1\"; PORT = 9; ENABLED = false; "
                           "RATIO = 1; }; };\n",
                           &st, &err, &cfg),
                     GW_OK);
    ck_assert_str_eq(st.host, "::1");
    /* STRING values point into the config's own storage. */
    ck_assert_ptr_eq(st.host, config_setting_get_string(
                                  config_setting_get_member(
                                      cfg.backends[0].section, "HOST")));
    ck_assert_int_eq(st.port, 9);
    ck_assert_int_eq(st.enabled, 0);
    ck_assert(st.ratio == 1.0); /* an integer is accepted for a double */
    ck_assert_ptr_null(st.unset);
    gw__config_free(&cfg);
}
END_TEST

static void
expect_apply_error(const char *text, int line, const char *msg)
{
    gw__config_t cfg;
    ak_state_t st;
    gw_error_t err;
    char want[600];

    ck_assert_int_eq(apply(text, &st, &err, &cfg), GW_ERR);
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
    ck_assert_str_eq(err.msg, want);
    gw__config_free(&cfg);
}

START_TEST(test_apply_errors)
{
    expect_apply_error("BACKENDS = {\n http = {\n  PORTT = 1;\n };\n};\n", 3,
                       "BACKENDS.http.PORTT is not a setting of this plugin; "
                       "known: HOST, PORT, ENABLED, RATIO, UNSET");
    expect_apply_error("BACKENDS = { http = { PORT = \"80\"; }; };\n", 1,
                       "BACKENDS.http.PORT must be an integer, not a string");
    expect_apply_error("BACKENDS = { http = { PORT = 0; }; };\n", 1,
                       "BACKENDS.http.PORT must be between 1 and 65535, "
                       "not 0");
    expect_apply_error("BACKENDS = { http = { PORT = 65536; }; };\n", 1,
                       "BACKENDS.http.PORT must be between 1 and 65535, "
                       "not 65536");
    expect_apply_error("BACKENDS = { http = { HOST = 1; }; };\n", 1,
                       "BACKENDS.http.HOST must be a string in quotes, not "
                       "an integer");
    expect_apply_error("BACKENDS = { http = { ENABLED = \"yes\"; }; };\n", 1,
                       "BACKENDS.http.ENABLED must be true or false, not a "
                       "string");
    expect_apply_error("BACKENDS = { http = { RATIO = 1.5; }; };\n", 1,
                       "BACKENDS.http.RATIO must be between 0 and 1, not "
                       "1.5");
    expect_apply_error("BACKENDS = { http = { RATIO = true; }; };\n", 1,
                       "BACKENDS.http.RATIO must be a number, not true or "
                       "false");
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("errors");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_syntax_error);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_unknown_top_level);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_projects_errors);
    tcase_add_test(tc, test_users_errors);
    tcase_add_test(tc, test_backend_plugin_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_both_project_forms);
    tcase_add_test(tc, test_full_example);
    tcase_add_test(tc, test_prefix_forms);
    tcase_add_test(tc, test_plugin_path_string);
    tcase_add_test(tc, test_allowed_hosts);
    tcase_add_test(tc, test_sessions_and_proxies);
    tcase_add_test(tc, test_retention);
    tcase_add_test(tc, test_include);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply_keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_apply_defaults);
    tcase_add_test(tc, test_apply_values);
    tcase_add_test(tc, test_apply_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
