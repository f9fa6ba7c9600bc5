/*
 * tests/core/test_host.c: core/host.c, the host table (gw__host) the core
 * hands to every plugin instance, driven on an instance of a real daemon
 * (gw__daemon_new, never run) and of the fixture transport loaded through
 * the real loader: what submit_json and submit accept lands in the
 * daemon's ingest, what they refuse comes back with its exact message and
 * is counted dropped with its reason, the received/accepted counters,
 * project_exists, config_apply's messages, prefix, loops, when_durable
 * and on_stored without a journal or a storage, and a daemon without the
 * aggregator role refusing every submit. The log (stderr) is captured.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "base/conf.h"
#include "base/metrics.h"
#include "core/daemon.h"
#include "core/host.h"
#include "core/loader.h"
#include "core_test.h"
#include "ingest/ingest.h"

/* Line 4 holds feed's BOGUS, line 5 typed's PORT (config_apply's
 * messages name them). */
static const char hs_conf[] =
    "SECRET_KEY = \"secret\";\n"
    "PROJECTS = { test_project = \"public\"; shop = \"shop_public\"; };\n"
    "BACKENDS = {\n"
    "    feed = { PLUGIN = \"fixture\"; PORT = 9; BOGUS = 1; };\n"
    "    typed = { PLUGIN = \"fixture\"; PORT = \"ninety\"; };\n"
    "    plain = { PLUGIN = \"fixture\"; PORT = 7; };\n"
    "};\n"
    "STORAGE = \"fixture\";\n"
    "STORAGE_SETTINGS = { BOGUS = true; };\n"
    "PREFIX = \"/gw\";\n"
    "PERIODS = [ \"all\" ];\n";

typedef struct env_s {
    gw__config_t cfg;
    const char *path;
    gw__loader_t loader;
    struct ev_loop *loop;
    gw__daemon_t *d;
    gw__instance_t *inst;
    const gw_ctx_t *ctx;
} env_t;

/* A daemon of roles on hs_conf and an instance of the fixture transport
 * named after BACKENDS[backend] (with its section). */
static void
env_start(env_t *e, unsigned roles, size_t backend)
{
    char *dirs[] = {fixdir};
    gw__run_opts_t opts;
    gw__plugin_t *p;
    gw_error_t err;

    memset(e, 0, sizeof(*e));
    gw__metrics_reset();
    e->path = load_conf(&e->cfg, hs_conf);
    ck_assert_uint_gt(e->cfg.nbackends, backend);
    memset(&opts, 0, sizeof(opts));
    opts.roles = roles;
    e->loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_ptr_nonnull(e->loop);
    e->d = gw__daemon_new(&e->cfg, &opts, e->loop);
    ck_assert_ptr_nonnull(e->d);
    gw__loader_init(&e->loader, dirs, 1);
    if (gw__loader_load(&e->loader, GW_PLUGIN_TRANSPORT, "fixture", &p,
                        &err) != GW_OK)
        ck_abort_msg("loader: %s", err.msg);
    e->inst = gw__instance_new(e->d, p, e->cfg.backends[backend].instance,
                               e->cfg.backends[backend].section);
    ck_assert_ptr_nonnull(e->inst);
    e->ctx = &e->inst->ctx;
}

static void
env_stop(env_t *e)
{
    gw__host_flush_counts(); /* before the instance goes */
    gw__instance_free(e->inst);
    gw__loader_free(&e->loader);
    gw__daemon_free(e->d);
    ev_loop_destroy(e->loop);
    gw__config_free(&e->cfg);
}

/* The events aggregated in the daemon's ingest since the last call (the
 * table is taken out). */
static uint64_t
taken_events(env_t *e)
{
    gw__table_t *t = gw__ingest_swap(gw__daemon_ingest(e->d));
    uint64_t n = t != NULL ? gw__table_events(t) : 0;

    gw__table_free(t);
    return n;
}

static uint64_t
counter(const char *inst, gw_counter_t c, const char *reason)
{
    return gw__metrics_get(inst, c, reason);
}

static int
submit_text(env_t *e, const char *json, unsigned flags, gw_error_t *err)
{
    err->msg[0] = '\0';
    return gw__host.submit_json(e->ctx, "test_project", GW_ACTION_DEFAULT,
                                json, strlen(json), flags, err);
}

/* ---- Instances ---- */

START_TEST(test_instance)
{
    env_t e;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_ptr_eq(e.ctx->host, &gw__host);
    ck_assert_ptr_eq(e.ctx->inst, e.inst);
    ck_assert_str_eq(e.inst->name, "feed");
    ck_assert_str_eq(e.inst->prefix, "transport:fixture:feed");
    ck_assert_ptr_null(e.inst->state);
    ck_assert_str_eq(gw__host.instance_name(e.ctx), "feed");
    ck_assert_uint_eq(gw__host.struct_size, sizeof(gw_host_t));
    ck_assert_uint_eq(gw__host.abi_major, GW_PLUGIN_ABI_MAJOR);
    ck_assert_uint_eq(gw__host.abi_minor, GW_PLUGIN_ABI_MINOR);
    gw__instance_free(NULL);
    env_stop(&e);
}
END_TEST

START_TEST(test_log_prefix)
{
    env_t e;
    char line[1024];

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    gw_log_warning(e.ctx, "listening on %d", 9);
    ck_assert_int_eq(log_count("listening on", line, sizeof(line)), 1);
    ck_assert_str_eq(after_time(line),
                     "warning [transport:fixture:feed] listening on 9\n");
    env_stop(&e);
}
END_TEST

/* ---- Submits ---- */

START_TEST(test_submit_accepted)
{
    env_t e;
    gw_error_t err;
    gw_filter_t f = {"country", "de"};
    gw_event_t ev;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"orders\"}", 0, &err), GW_OK);
    ck_assert_int_eq(submit_text(&e, "[{\"n\": \"orders\"}, {\"n\": "
                                     "\"visits\", \"v\": 3}]",
                                 GW_SUBMIT_BATCH, &err),
                     GW_OK);
    memset(&ev, 0, sizeof(ev));
    ev.name = "orders";
    ev.value = 2;
    ev.filters = &f;
    ev.nfilters = 1;
    ck_assert_int_eq(gw__host.submit(e.ctx, "test_project", &ev, &err),
                     GW_OK);
    /* Accepted submits are counted once per loop iteration. */
    ck_assert_uint_eq(counter("feed", GW_COUNTER_RECEIVED, NULL), 0);
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("feed", GW_COUNTER_RECEIVED, NULL), 4);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_ACCEPTED, NULL), 4);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, NULL), 0);
    /* A second flush adds nothing. */
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("feed", GW_COUNTER_ACCEPTED, NULL), 4);
    ck_assert_uint_eq(taken_events(&e), 4);
    ck_assert_uint_eq(taken_events(&e), 0);
    env_stop(&e);
}
END_TEST

START_TEST(test_submit_refused)
{
    env_t e;
    gw_error_t err;
    gw_event_t ev;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"x\", \"p\": \"shop\"}", 0,
                                 &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "project \"shop\" in the event does not match "
                              "the authenticated project \"test_project\"");
    /* All or nothing: the batch's good first event is not aggregated. */
    ck_assert_int_eq(submit_text(&e, "[{\"n\": \"a\"}, 5]", GW_SUBMIT_BATCH,
                                 &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "event 2: must be a JSON object");
    ck_assert_int_eq(submit_text(&e, "{\"n\": ", 0, &err), GW_ERR);
    ck_assert_str_eq(err.msg, "invalid JSON at line 1 column 6: "
                              "unexpected token near end of file");
    memset(&ev, 0, sizeof(ev));
    ev.name = "orders";
    ev.value = NAN;
    err.msg[0] = '\0';
    ck_assert_int_eq(gw__host.submit(e.ctx, "test_project", &ev, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "\"v\" nan is out of range: |v| must be at most 1e300");
    /* Refusals are counted at once, each with its reason. */
    ck_assert_uint_eq(counter("feed", GW_COUNTER_RECEIVED, NULL), 5);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, NULL), 5);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, "wrong_project"),
                      1);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, "invalid_event"),
                      2);
    ck_assert_uint_eq(
        counter("feed", GW_COUNTER_DROPPED, "value_out_of_range"), 1);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, "bad_json"), 1);
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("feed", GW_COUNTER_ACCEPTED, NULL), 0);
    ck_assert_uint_eq(taken_events(&e), 0);
    env_stop(&e);
}
END_TEST

START_TEST(test_submit_mixed)
{
    env_t e;
    gw_error_t err;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"a\"}", 0, &err), GW_OK);
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"a\", \"a\": \"gauge\"}", 0,
                                 &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "metric \"a\" is a counter; action \"gauge\" "
                              "does not fit it (a metric keeps the kind of "
                              "its first event)");
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"b\"}", 0, &err), GW_OK);
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("feed", GW_COUNTER_RECEIVED, NULL), 3);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_ACCEPTED, NULL), 2);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, "kind_conflict"),
                      1);
    ck_assert_uint_eq(taken_events(&e), 2);
    env_stop(&e);
}
END_TEST

START_TEST(test_counts_per_instance)
{
    env_t e;
    gw__instance_t *other;
    gw_error_t err;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    other = gw__instance_new(e.d, e.inst->plugin, "other", NULL);
    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"a\"}", 0, &err), GW_OK);
    /* Another instance's submit hands feed's count over first. */
    ck_assert_int_eq(gw__host.submit_json(&other->ctx, "test_project",
                                          GW_ACTION_DEFAULT, "{\"n\": \"a\"}",
                                          10, 0, &err),
                     GW_OK);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_ACCEPTED, NULL), 1);
    ck_assert_uint_eq(counter("other", GW_COUNTER_ACCEPTED, NULL), 0);
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("other", GW_COUNTER_ACCEPTED, NULL), 1);
    gw__host.count(&other->ctx, GW_COUNTER_DROPPED, "too_big", 3);
    ck_assert_uint_eq(counter("other", GW_COUNTER_DROPPED, "too_big"), 3);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, NULL), 0);
    gw__instance_free(other);
    ck_assert_uint_eq(taken_events(&e), 2);
    env_stop(&e);
}
END_TEST

START_TEST(test_not_aggregator)
{
    env_t e;
    gw_error_t err;
    gw_event_t ev;

    env_start(&e, GW__ROLE_SERVER, 0);
    ck_assert_ptr_null(gw__daemon_ingest(e.d));
    ck_assert_int_eq(submit_text(&e, "{\"n\": \"orders\"}", 0, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "this process does not aggregate events");
    memset(&ev, 0, sizeof(ev));
    ev.name = "orders";
    err.msg[0] = '\0';
    ck_assert_int_eq(gw__host.submit(e.ctx, "test_project", &ev, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "this process does not aggregate events");
    gw__host_flush_counts();
    ck_assert_uint_eq(counter("feed", GW_COUNTER_RECEIVED, NULL), 0);
    ck_assert_uint_eq(counter("feed", GW_COUNTER_DROPPED, NULL), 0);
    env_stop(&e);
}
END_TEST

/* ---- The rest of the table ---- */

START_TEST(test_project_exists)
{
    env_t e;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_int_eq(gw__host.project_exists(e.ctx, "test_project"), 1);
    ck_assert_int_eq(gw__host.project_exists(e.ctx, "shop"), 1);
    ck_assert_int_eq(gw__host.project_exists(e.ctx, "nosuch"), 0);
    ck_assert_int_eq(gw__host.project_exists(e.ctx, "test_projec"), 0);
    env_stop(&e);
}
END_TEST

typedef struct keys_s {
    int64_t port;
    const char *host;
} keys_t;

static const gw_config_key_t hs_keys[] = {
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8890", keys_t, port, "port",
                        1, 65535),
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", keys_t, host,
                  "host"),
    GW_CONFIG_END,
};

/* config_apply on BACKENDS[backend]: its message (empty on GW_OK). */
static int
apply(size_t backend, keys_t *k, char *msg, size_t size)
{
    env_t e;
    gw_error_t err;
    int rc;

    env_start(&e, GW__ROLE_AGGREGATOR, backend);
    err.msg[0] = '\0';
    memset(k, 0, sizeof(*k));
    rc = gw__host.config_apply(e.ctx, hs_keys, k, &err);
    snprintf(msg, size, "%s", err.msg);
    if (rc == GW_OK)
        ck_assert_str_eq(k->host, "127.0.0.1"); /* the default's text */
    env_stop(&e);
    return rc;
}

START_TEST(test_config_apply)
{
    char msg[GW_ERROR_MAX], want[GW_ERROR_MAX + 300];
    keys_t k;

    /* The messages name the file and BACKENDS.<instance>, not the
     * plugin. */
    ck_assert_int_eq(apply(0, &k, msg, sizeof(msg)), GW_ERR);
    snprintf(want, sizeof(want), "%s/gottwall.conf:4: BACKENDS.feed.BOGUS "
             "is not a setting of this plugin; known: PORT, HOST", tmpdir);
    ck_assert_str_eq(msg, want);
    ck_assert_int_eq(apply(1, &k, msg, sizeof(msg)), GW_ERR);
    snprintf(want, sizeof(want), "%s/gottwall.conf:5: BACKENDS.typed.PORT "
             "must be an integer, not a string", tmpdir);
    ck_assert_str_eq(msg, want);
    ck_assert_int_eq(apply(2, &k, msg, sizeof(msg)), GW_OK);
    ck_assert_str_eq(msg, "");
    ck_assert_int_eq(k.port, 7);
}
END_TEST

START_TEST(test_config_apply_storage)
{
    env_t e;
    gw__plugin_t *p;
    gw__instance_t *st;
    gw_error_t err;
    char want[GW_ERROR_MAX + 300];
    keys_t k;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_int_eq(gw__loader_load(&e.loader, GW_PLUGIN_STORAGE,
                                     "fixture", &p, &err),
                     GW_OK);
    st = gw__instance_new(e.d, p, "fixture", e.cfg.storage.section);
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(st->prefix, "storage:fixture:fixture");
    ck_assert_int_eq(gw__host.config_apply(&st->ctx, hs_keys, &k, &err),
                     GW_ERR);
    snprintf(want, sizeof(want), "%s/gottwall.conf:9: "
             "STORAGE_SETTINGS.BOGUS is not a setting of this plugin; known: "
             "PORT, HOST", tmpdir);
    ck_assert_str_eq(err.msg, want);
    gw__instance_free(st);
    env_stop(&e);
}
END_TEST

START_TEST(test_prefix_and_loops)
{
    env_t e;

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_str_eq(gw__host.prefix(e.ctx), "/gw");
    ck_assert_ptr_eq(gw__host.loop(e.ctx), e.loop);
    ck_assert_int_eq(gw__host.loops(e.ctx), 1);
    ck_assert_ptr_eq(gw__host.loop_at(e.ctx, 0), e.loop);
    ck_assert_ptr_null(gw__host.loop_at(e.ctx, 1));
    ck_assert_ptr_null(gw__host.loop_at(e.ctx, -1));
    env_stop(&e);
}
END_TEST

typedef struct called_s {
    int n;
    int ok;
} called_t;

static void
called_cb(void *arg, int ok)
{
    called_t *c = arg;

    c->n++;
    c->ok = ok;
}

START_TEST(test_when_durable_without_journal)
{
    env_t e;
    called_t c = {0, -1};

    env_start(&e, GW__ROLE_AGGREGATOR, 0);
    ck_assert_ptr_null(gw__daemon_journal(e.d));
    /* Nothing to wait for: called back before it returns. */
    ck_assert_int_eq(gw__host.when_durable(e.ctx, called_cb, &c), GW_OK);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.ok, 1);
    env_stop(&e);
}
END_TEST

START_TEST(test_on_stored_without_storage)
{
    env_t e;
    called_t c = {0, -1};
    gw_error_t err;
    unsigned roles[] = {GW__ROLE_AGGREGATOR, GW__ROLE_SERVER};
    size_t i;

    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        env_start(&e, roles[i], 0);
        err.msg[0] = '\0';
        ck_assert_int_eq(gw__host.on_stored(e.ctx, called_cb, &c, &err),
                         GW_ERR);
        ck_assert_str_eq(err.msg, "this process has no storage to wait for");
        ck_assert_int_eq(c.n, 0);
        env_stop(&e);
    }
}
END_TEST

static Suite *
host_suite(void)
{
    Suite *s = suite_create("host");
    TCase *tc = fixture_tcase(s, "submit");

    tcase_add_test(tc, test_instance);
    tcase_add_test(tc, test_log_prefix);
    tcase_add_test(tc, test_submit_accepted);
    tcase_add_test(tc, test_submit_refused);
    tcase_add_test(tc, test_submit_mixed);
    tcase_add_test(tc, test_counts_per_instance);
    tcase_add_test(tc, test_not_aggregator);
    tc = fixture_tcase(s, "table");
    tcase_add_test(tc, test_project_exists);
    tcase_add_test(tc, test_config_apply);
    tcase_add_test(tc, test_config_apply_storage);
    tcase_add_test(tc, test_prefix_and_loops);
    tcase_add_test(tc, test_when_durable_without_journal);
    tcase_add_test(tc, test_on_stored_without_storage);
    return s;
}

int
main(void)
{
    find_fixtures();
    return run_suite(host_suite());
}
