/*
 * tests/core/test_store.c: core/store.c, the storage thread, driven with
 * the fixture storage (tests/fixtures/plugins/storage_fixture.c) loaded
 * through the real loader and configured through the real config file:
 * an outage then recovery stores each batch exactly once, jobs are served
 * while a write backs off, MAX_PENDING_SERIES drops exact counts, a batch
 * the storage refuses is dropped and counted, and close gives up after its
 * timeout. The log (stderr) is captured and checked line by line.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "base/conf.h"
#include "core/host.h"
#include "core/loader.h"
#include "core/store.h"
#include "core_test.h"
#include "ingest/ingest.h"

typedef struct env_s {
    gw__config_t cfg;
    gw__loader_t loader;
    struct ev_loop *loop;
    gw__instance_t inst;
    gw__ingest_t *ing;
    gw__store_t *st;
} env_t;

/* Starts the fixture storage with settings (libconfig text inside
 * STORAGE_SETTINGS = { ... }) and its thread. */
static void
env_start(env_t *e, const char *settings, size_t max_pending)
{
    char path[200], *dirs[] = {fixdir};
    gw__plugin_t *p;
    gw_error_t err;
    FILE *f;

    memset(e, 0, sizeof(*e));
    snprintf(path, sizeof(path), "%s/gottwall.conf", tmpdir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "STORAGE = \"fixture\";\nSTORAGE_SETTINGS = { %s };\n"
            "PERIODS = [ \"all\" ];\n", settings);
    fclose(f);
    if (gw__config_load(path, &e->cfg, &err) != GW_OK)
        ck_abort_msg("config: %s", err.msg);
    gw__loader_init(&e->loader, dirs, 1);
    if (gw__loader_load(&e->loader, GW_PLUGIN_STORAGE, "fixture", &p, &err) !=
        GW_OK)
        ck_abort_msg("loader: %s", err.msg);
    e->loop = ev_loop_new(EVFLAG_AUTO);
    e->inst.ctx.host = &gw__host;
    e->inst.ctx.inst = &e->inst;
    e->inst.daemon = NULL; /* no daemon: config errors name "config" */
    e->inst.plugin = p;
    e->inst.name = "fixture";
    e->inst.prefix = "storage:fixture:fixture";
    e->inst.section = e->cfg.storage.section;
    if (p->storage.create(&e->inst.ctx, &e->inst.state, &err) != GW_OK)
        ck_abort_msg("create: %s", err.msg);
    ck_assert_int_eq(gw__store_start(e->loop, e->inst.prefix, &p->storage,
                                     e->inst.state, e->cfg.periods,
                                     max_pending, "test", &e->st, &err),
                     GW_OK);
    e->ing = gw__ingest_new(&e->cfg.limits, NULL);
}

static void
env_stop(env_t *e)
{
    if (e->st != NULL)
        gw__store_close(e->st, 1000);
    e->inst.plugin->storage.destroy(e->inst.state);
    gw__ingest_free(e->ing);
    gw__loader_free(&e->loader);
    ev_loop_destroy(e->loop);
    gw__config_free(&e->cfg);
}

/* Aggregates n "incr" events of metric into the current table and hands
 * the table to the storage thread. */
static void
flush_events(env_t *e, const char *metric, int n)
{
    char json[128];
    gw_error_t err;
    int i;

    snprintf(json, sizeof(json), "{\"n\": \"%s\"}", metric);
    for (i = 0; i < n; i++) {
        if (gw__ingest_json(e->ing, "p", GW_ACTION_INCR, json, strlen(json),
                            0, NULL, NULL, &err) != GW_OK)
            ck_abort_msg("ingest: %s", err.msg);
    }
    gw__store_flush(e->st, gw__ingest_swap(e->ing));
}

/* ---- Running the loop until something happened ---- */

typedef struct wait_s {
    int done;
    int rc;
    char text[512];
    double sum;
} wait_t;

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    *(int *) w->data = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until w->done or timeout seconds; returns w->done. */
static int
run_until(env_t *e, wait_t *w, double timeout)
{
    ev_timer t;
    int timed_out = 0;

    ev_timer_init(&t, timeout_cb, timeout, 0);
    t.data = &timed_out;
    ev_timer_start(e->loop, &t);
    while (!w->done && !timed_out)
        ev_run(e->loop, EVRUN_ONCE);
    ev_timer_stop(e->loop, &t);
    return w->done;
}

static void
done_cb(void *arg, int rc, const gw_error_t *err)
{
    wait_t *w = arg;

    (void) err;
    w->done = 1;
    w->rc = rc;
}

static void
doc_emit(void *arg, const char *data, size_t len)
{
    wait_t *w = arg;

    snprintf(w->text, sizeof(w->text), "%.*s", (int) len, data);
}

static int
stats_job(const gw_storage_ops_t *ops, void *state, void *arg,
          gw_error_t *err)
{
    return ops->doc_get(state, "fixture", "stats", doc_emit, arg, err);
}

static void
point_emit(void *arg, const gw_point_t *p)
{
    ((wait_t *) arg)->sum += p->sum;
}

static const char *query_metric;

static int
total_job(const gw_storage_ops_t *ops, void *state, void *arg,
          gw_error_t *err)
{
    gw_query_t q;

    memset(&q, 0, sizeof(q));
    q.project = "p";
    q.metric = query_metric;
    q.kind = GW_KIND_COUNTER;
    q.period = GW_PERIOD_ALL;
    q.from = 0;
    q.to = 0;
    return ops->query(state, &q, point_emit, arg, err);
}

/* The fixture's own counters, as JSON text. */
static const char *
fixture_stats(env_t *e)
{
    static wait_t w;

    memset(&w, 0, sizeof(w));
    gw__store_call(e->st, stats_job, done_cb, &w);
    ck_assert(run_until(e, &w, 5));
    ck_assert_int_eq(w.rc, GW_OK);
    return w.text;
}

static double
stored_total(env_t *e, const char *metric)
{
    wait_t w;

    memset(&w, 0, sizeof(w));
    query_metric = metric;
    gw__store_call(e->st, total_job, done_cb, &w);
    ck_assert(run_until(e, &w, 5));
    ck_assert_int_eq(w.rc, GW_OK);
    return w.sum;
}

static void
wait_stored(env_t *e, int want_rc, double timeout)
{
    wait_t w;

    memset(&w, 0, sizeof(w));
    gw__store_when_stored(e->st, done_cb, &w);
    ck_assert(run_until(e, &w, timeout));
    ck_assert_int_eq(w.rc, want_rc);
}

/* Polls the store's counters until pred holds (bounded). */
static void
wait_down(env_t *e, int down)
{
    gw__store_stats_t s;
    double end = now() + 5;

    do {
        gw__store_stats(e->st, &s);
        if (s.down == down)
            return;
        usleep(10000);
    } while (now() < end);
    ck_abort_msg("storage never became %s", down ? "down" : "up");
}

/* ---- Tests ---- */

START_TEST(test_store_and_ids)
{
    env_t e;
    gw__store_stats_t s;

    env_start(&e, "", 1000);
    flush_events(&e, "orders", 3);
    wait_stored(&e, GW_OK, 5);
    flush_events(&e, "orders", 2);
    wait_stored(&e, GW_OK, 5);
    ck_assert_str_eq(fixture_stats(&e),
                     "{\"calls\": 2, \"applied\": 2, \"duplicates\": 0, "
                     "\"last_id\": \"test:2\"}");
    ck_assert(stored_total(&e, "orders") == 5);
    gw__store_stats(e.st, &s);
    ck_assert_uint_eq(s.batches_stored, 2);
    ck_assert_uint_eq(s.events_stored, 5);
    ck_assert_uint_eq(s.events_dropped, 0);
    ck_assert_uint_eq(s.store_errors, 0);
    ck_assert_uint_eq(s.pending_series, 0);
    ck_assert_int_eq(s.down, 0);
    /* Nothing pending: the waiter is answered at once. */
    wait_stored(&e, GW_OK, 1);
    env_stop(&e);
}
END_TEST

START_TEST(test_again_then_recovery_exactly_once)
{
    env_t e;
    gw__store_stats_t s;
    char line[1024];
    double t0;

    /* Three answers lost after the write happened, then OK. */
    env_start(&e, "AGAIN_COUNT = 3; APPLY_THEN_AGAIN = true;", 1000);
    t0 = now();
    flush_events(&e, "orders", 5);
    wait_stored(&e, GW_OK, 10);
    /* Backoff: 0.1 + 0.2 + 0.4 s. */
    ck_assert(now() - t0 >= 0.65);
    ck_assert(now() - t0 < 3.0);
    ck_assert_str_eq(fixture_stats(&e),
                     "{\"calls\": 4, \"applied\": 1, \"duplicates\": 3, "
                     "\"last_id\": \"test:1\"}");
    ck_assert(stored_total(&e, "orders") == 5);
    gw__store_stats(e.st, &s);
    ck_assert_uint_eq(s.batches_stored, 1);
    ck_assert_uint_eq(s.events_stored, 5);
    ck_assert_uint_eq(s.store_errors, 3);
    ck_assert_int_eq(s.down, 0);
    /* The outage once, the recovery once. */
    ck_assert_int_eq(log_count("storage unreachable", line, sizeof(line)), 1);
    ck_assert_str_eq(after_time(line),
                     "warning [storage:fixture:fixture] storage unreachable: "
                     "connection refused (fixture); keeping 1 pending "
                     "series, retrying\n");
    ck_assert_int_eq(log_count("storage back after", line, sizeof(line)), 1);
    ck_assert_int_eq(strncmp(after_time(line),
                             "notice [storage:fixture:fixture] storage back "
                             "after 0.",
                             strlen("notice [storage:fixture:fixture] storage "
                                    "back after 0.")),
                     0);
    ck_assert_ptr_nonnull(strstr(line, " s; stored 1 pending series\n"));
    env_stop(&e);
}
END_TEST

START_TEST(test_jobs_served_during_backoff)
{
    env_t e;
    gw__store_stats_t s;
    char settings[256];
    double t0;

    snprintf(settings, sizeof(settings), "DOWN_FILE = \"%s\";", down_file);
    set_down(1);
    env_start(&e, settings, 1000);
    flush_events(&e, "orders", 4);
    wait_down(&e, 1);
    /* Let the backoff grow past a second. */
    usleep(1600000);
    t0 = now();
    ck_assert_ptr_nonnull(strstr(fixture_stats(&e), "\"applied\": 0"));
    ck_assert(now() - t0 < 0.5);
    gw__store_stats(e.st, &s);
    ck_assert_uint_eq(s.pending_series, 1);
    ck_assert_uint_ge(s.store_errors, 4);
    set_down(0);
    wait_stored(&e, GW_OK, 10);
    ck_assert(stored_total(&e, "orders") == 4);
    ck_assert_int_eq(log_count("storage unreachable", NULL, 0), 1);
    ck_assert_int_eq(log_count("storage back after", NULL, 0), 1);
    env_stop(&e);
}
END_TEST

START_TEST(test_pending_published)
{
    env_t e;
    gw__store_stats_t s;
    gw__pending_t *p;
    unsigned nper;
    char settings_buf[256];

    /* MAX_PENDING_SERIES is held at admission (tests/ingest/test_series.c);
     * the thread tells admission what waits, in deltas, and whether the
     * storage is down, and never drops a table, even past the bound. */
    snprintf(settings_buf, sizeof(settings_buf), "DOWN_FILE = \"%s\";",
             down_file);
    set_down(1);
    env_start(&e, settings_buf, 3);
    p = gw__store_pending(e.st);
    nper = p->nper;
    ck_assert_uint_ge(nper, 1);
    ck_assert_uint_eq(p->max, 3 * nper);
    flush_events(&e, "a", 2);
    flush_events(&e, "b", 1);
    wait_down(&e, 1);
    ck_assert_int_eq(__atomic_load_n(&p->down, __ATOMIC_SEQ_CST), 1);
    flush_events(&e, "c", 1);
    flush_events(&e, "d", 5);
    flush_events(&e, "e", 7);
    {
        double end = now() + 5;

        do {
            usleep(10000);
            gw__store_stats(e.st, &s);
        } while (s.pending_series < 5 && now() < end);
    }
    ck_assert_uint_eq(s.pending_series, 5);
    ck_assert_uint_eq(__atomic_load_n(&p->stored, __ATOMIC_SEQ_CST),
                      5 * nper);
    ck_assert_uint_eq(s.events_dropped, 0);
    ck_assert_int_eq(log_count("MAX_PENDING_SERIES", NULL, 0), 0);
    set_down(0);
    wait_stored(&e, GW_OK, 10);
    ck_assert(stored_total(&e, "a") == 2);
    ck_assert(stored_total(&e, "d") == 5);
    ck_assert(stored_total(&e, "e") == 7);
    ck_assert_uint_eq(__atomic_load_n(&p->stored, __ATOMIC_SEQ_CST), 0);
    ck_assert_int_eq(__atomic_load_n(&p->down, __ATOMIC_SEQ_CST), 0);
    gw__store_stats(e.st, &s);
    ck_assert_uint_eq(s.events_stored, 16);
    env_stop(&e);
}
END_TEST

START_TEST(test_refused_batch_dropped)
{
    env_t e;
    gw__store_stats_t s;
    char line[1024];

    env_start(&e, "ERR_COUNT = 1;", 1000);
    flush_events(&e, "orders", 2);
    wait_stored(&e, GW_ERR, 5);
    flush_events(&e, "orders", 1);
    wait_stored(&e, GW_OK, 5);
    ck_assert(stored_total(&e, "orders") == 1);
    gw__store_stats(e.st, &s);
    ck_assert_uint_eq(s.events_dropped, 2);
    ck_assert_uint_eq(s.events_stored, 1);
    ck_assert_uint_eq(s.store_errors, 1);
    ck_assert_int_eq(log_count("refused", line, sizeof(line)), 1);
    ck_assert_str_eq(after_time(line),
                     "error [storage:fixture:fixture] storage refused a "
                     "batch: the fixture refuses this batch; dropped 2 "
                     "events in 1 series\n");
    env_stop(&e);
}
END_TEST

START_TEST(test_close_timeout)
{
    env_t e;
    wait_t w;
    char settings[256], line[1024];
    double t0, took;
    uint64_t lost;

    snprintf(settings, sizeof(settings), "DOWN_FILE = \"%s\";", down_file);
    set_down(1);
    env_start(&e, settings, 1000);
    flush_events(&e, "orders", 4);
    flush_events(&e, "visits", 3);
    memset(&w, 0, sizeof(w));
    gw__store_when_stored(e.st, done_cb, &w);
    t0 = now();
    lost = gw__store_close(e.st, 300);
    took = now() - t0;
    e.st = NULL;
    ck_assert_uint_eq(lost, 7);
    ck_assert(took >= 0.29);
    ck_assert(took < 2.0);
    ck_assert_int_eq(w.done, 1);
    ck_assert_int_eq(w.rc, GW_AGAIN);
    ck_assert_int_eq(log_count("within SHUTDOWN_TIMEOUT", line, sizeof(line)),
                     1);
    ck_assert_str_eq(after_time(line),
                     "error [storage:fixture:fixture] could not store 7 "
                     "events in 2 series within SHUTDOWN_TIMEOUT (300 ms); "
                     "they are lost\n");
    env_stop(&e);
}
END_TEST

START_TEST(test_close_stores_everything)
{
    env_t e;
    uint64_t lost;

    env_start(&e, "DELAY_MS = 50;", 1000);
    flush_events(&e, "orders", 4);
    flush_events(&e, "orders", 6);
    lost = gw__store_close(e.st, 5000);
    e.st = NULL;
    ck_assert_uint_eq(lost, 0);
    ck_assert_int_eq(log_count("lost", NULL, 0), 0);
    env_stop(&e);
}
END_TEST

static Suite *
store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("thread");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_store_and_ids);
    tcase_add_test(tc, test_again_then_recovery_exactly_once);
    tcase_add_test(tc, test_jobs_served_during_backoff);
    tcase_add_test(tc, test_pending_published);
    tcase_add_test(tc, test_refused_batch_dropped);
    tcase_add_test(tc, test_close_timeout);
    tcase_add_test(tc, test_close_stores_everything);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    find_fixtures();
    sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
