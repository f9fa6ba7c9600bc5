/*
 * tests/core/test_workers.c: core/workers.c without a daemon: how many
 * loops INGEST_LOOPS asks for, the loops' threads taking events into
 * their own tables, every table handed over exactly once (and kept by its
 * loop when the hand-over fails), and the kind rule holding across loops
 * through the shared registry.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "base/conf.h"
#include "core/workers.h"
#include "core_test.h"
#include "ingest/ingest.h"
#include "net/auth.h"

/* A config with one project and a flush timer that never fires in a test,
 * plus extra lines. */
static void
load(gw__config_t *cfg, const char *extra)
{
    char text[512];

    snprintf(text, sizeof(text),
             "SECRET_KEY = \"secret\";\nPROJECTS = { p = \"pub\"; };\n"
             "STORAGE = \"memory\";\nFLUSH_INTERVAL = 3600000;\n%s\n",
             extra);
    load_conf(cfg, text);
}

START_TEST(test_wanted)
{
    gw__config_t cfg;
    cpu_set_t set;
    int cpus, n;

    load(&cfg, "INGEST_LOOPS = 3;");
    ck_assert_int_eq(gw__workers_wanted(&cfg, &cpus), 3);
    ck_assert_int_eq(cpus, 0);
    gw__config_free(&cfg);

    load(&cfg, "JOURNAL = \"/tmp/never-made\";");
    ck_assert_int_eq(gw__workers_wanted(&cfg, &cpus), 1);
    gw__config_free(&cfg);

    load(&cfg, "");
    ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    n = CPU_COUNT(&set);
    ck_assert_int_eq(gw__workers_wanted(&cfg, &cpus), n > 8 ? 8 : n);
    ck_assert_int_eq(cpus, n);
    gw__config_free(&cfg);
}
END_TEST

/* What the hand-over callback saw; fail_first makes its first call
 * refuse (as out of memory does). */
typedef struct seen_s {
    pthread_mutex_t mu;
    uint64_t events;
    unsigned tables, refused, fail_first;
    unsigned flushed; /* on_flushed calls */
} seen_t;

static void
flushed(void *arg)
{
    seen_t *s = arg;

    pthread_mutex_lock(&s->mu);
    s->flushed++;
    pthread_mutex_unlock(&s->mu);
}

/* Waits (bounded) until s->flushed is want; returns it. */
static unsigned
wait_flushed(seen_t *s, unsigned want)
{
    unsigned got = 0;
    int spins;

    for (spins = 0; spins < 500; spins++) {
        pthread_mutex_lock(&s->mu);
        got = s->flushed;
        pthread_mutex_unlock(&s->mu);
        if (got == want)
            break;
        usleep(10000);
    }
    return got;
}

static int
hand_over(void *arg, gw__table_t *t)
{
    seen_t *s = arg;

    pthread_mutex_lock(&s->mu);
    if (s->fail_first > 0) {
        s->fail_first--;
        s->refused++;
        pthread_mutex_unlock(&s->mu);
        return GW_ERR;
    }
    s->events += gw__table_events(t);
    s->tables++;
    pthread_mutex_unlock(&s->mu);
    gw__table_free(t);
    return GW_OK;
}

/* A config of extra lines, loop 0's ingest and auth states and n extra
 * loops around them handing over to seen. */
static gw__workers_t *
make(gw__config_t *cfg, const char *extra, size_t n, seen_t *seen,
     gw__ingest_t **ing0, gw__auth_t **auth0)
{
    gw__workers_t *w;

    load(cfg, extra);
    *ing0 = gw__ingest_new(&cfg->limits, NULL);
    *auth0 = gw__auth_new(cfg, NULL);
    ck_assert_int_eq(gw__workers_create(n, cfg, *ing0, *auth0, hand_over,
                                        seen, &w),
                     GW_OK);
    return w;
}

/* Frees what make made, and seen's lock. */
static void
unmake(gw__workers_t *w, gw__config_t *cfg, seen_t *seen, gw__ingest_t *ing0,
       gw__auth_t *auth0)
{
    gw__workers_free(w);
    gw__ingest_free(ing0);
    gw__auth_free(auth0);
    gw__config_free(cfg);
    pthread_mutex_destroy(&seen->mu);
}

/* Runs once on a loop's own thread: takes n events there. */
typedef struct feed_s {
    ev_timer timer;
    int n;
    int accepted, refused;
    char last_err[GW_ERROR_MAX];
    const char *json;
} feed_t;

static void
feed_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    feed_t *f = (feed_t *)w;
    gw__ingest_t *ing = gw__workers_ingest();
    gw_error_t err;
    int i;

    (void)loop;
    (void)revents;
    ck_assert_ptr_nonnull(ing); /* on a worker's thread */
    for (i = 0; i < f->n; i++) {
        if (gw__ingest_json(ing, "p", GW_ACTION_DEFAULT, f->json,
                            strlen(f->json), 0, NULL, NULL, &err) == GW_OK)
            f->accepted++;
        else {
            f->refused++;
            snprintf(f->last_err, sizeof(f->last_err), "%s", err.msg);
        }
    }
}

/* Starts w's threads with one feed on each loop, waits until every feed
 * ran, and stops them. */
static void
run_feeds(gw__workers_t *w, feed_t *feeds, size_t n)
{
    size_t i;
    int spins;

    for (i = 0; i < n; i++) {
        ev_timer_init(&feeds[i].timer, feed_cb, 0., 0.);
        ev_timer_start(gw__workers_loop(w, i), &feeds[i].timer);
    }
    ck_assert_int_eq(gw__workers_start(w), GW_OK);
    for (spins = 0; spins < 500; spins++) {
        int done = 1;

        for (i = 0; i < n; i++)
            done &= feeds[i].accepted + feeds[i].refused == feeds[i].n;
        if (done)
            break;
        usleep(10000);
    }
    gw__workers_stop(w);
}

START_TEST(test_loops_take_and_hand_over)
{
    gw__config_t cfg;
    gw__ingest_t *ing0;
    gw__auth_t *auth0;
    gw__workers_t *w;
    seen_t seen;
    feed_t feeds[2];

    memset(&seen, 0, sizeof(seen));
    memset(feeds, 0, sizeof(feeds));
    pthread_mutex_init(&seen.mu, NULL);
    w = make(&cfg, "INGEST_LOOPS = 3;", 2, &seen, &ing0, &auth0);
    ck_assert_uint_eq(gw__workers_count(w), 2);
    ck_assert_ptr_nonnull(gw__workers_loop(w, 0));
    ck_assert_ptr_nonnull(gw__workers_loop(w, 1));
    ck_assert_ptr_ne(gw__workers_loop(w, 0), gw__workers_loop(w, 1));
    ck_assert_ptr_null(gw__workers_loop(w, 2));
    /* Not on a worker's thread: no ingest or auth state of its own. */
    ck_assert_ptr_null(gw__workers_ingest());
    ck_assert_ptr_null(gw__workers_auth(&cfg));

    feeds[0].n = 5;
    feeds[1].n = 7;
    feeds[0].json = feeds[1].json = "{\"n\": \"orders\", \"v\": 1}";
    seen.fail_first = 1; /* the first hand-over is refused: kept */
    run_feeds(w, feeds, 2);
    ck_assert_int_eq(feeds[0].accepted, 5);
    ck_assert_int_eq(feeds[1].accepted, 7);
    gw__workers_flush(w);
    ck_assert_uint_eq(seen.refused, 1);
    ck_assert_uint_eq(seen.tables, 1);
    /* The refused table stayed with its loop and goes out now. */
    gw__workers_flush(w);
    ck_assert_uint_eq(seen.tables, 2);
    ck_assert_uint_eq(seen.events, 12);
    /* Nothing left to hand over. */
    gw__workers_flush(w);
    ck_assert_uint_eq(seen.tables, 2);

    unmake(w, &cfg, &seen, ing0, auth0);
}
END_TEST

START_TEST(test_kind_rule_across_loops)
{
    gw__config_t cfg;
    gw__ingest_t *ing0;
    gw__auth_t *auth0;
    gw__workers_t *w;
    seen_t seen;
    feed_t feeds[1];
    gw_error_t err;
    const char *avg = "{\"n\": \"lat\", \"v\": 3, \"a\": \"avg\"}";

    memset(&seen, 0, sizeof(seen));
    memset(feeds, 0, sizeof(feeds));
    pthread_mutex_init(&seen.mu, NULL);
    w = make(&cfg, "", 1, &seen, &ing0, &auth0);
    /* Loop 0 makes "lat" an avg metric; loop 1 must refuse incr on it. */
    ck_assert_int_eq(gw__ingest_json(ing0, "p", GW_ACTION_DEFAULT, avg,
                                     strlen(avg), 0, NULL, NULL, &err),
                     GW_OK);
    feeds[0].n = 1;
    feeds[0].json = "{\"n\": \"lat\", \"v\": 1}";
    run_feeds(w, feeds, 1);
    ck_assert_int_eq(feeds[0].accepted, 0);
    ck_assert_int_eq(feeds[0].refused, 1);
    ck_assert_msg(strstr(feeds[0].last_err, "avg") != NULL, "%s",
                  feeds[0].last_err);
    unmake(w, &cfg, &seen, ing0, auth0);
}
END_TEST

/* A post records the loop it ran on, in order. */
typedef struct post_s {
    gw__post_t post; /* first */
    int k;           /* which post */
    int *order;      /* the log: which post ran, in order */
    int *ran_on;     /* the log: the loop each post ran on */
    int *n;
    pthread_mutex_t *mu;
} post_t;

static void
post_run(gw__post_t *p)
{
    post_t *x = (post_t *)p;

    pthread_mutex_lock(x->mu);
    x->order[*x->n] = x->k;
    x->ran_on[(*x->n)++] = gw__workers_current();
    pthread_mutex_unlock(x->mu);
}

START_TEST(test_post)
{
    gw__config_t cfg;
    gw__ingest_t *ing0;
    gw__auth_t *auth0;
    gw__workers_t *w;
    seen_t seen;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    post_t posts[12];
    int ran_on[12], order[12], n = 0, i, spins;

    memset(&seen, 0, sizeof(seen));
    pthread_mutex_init(&seen.mu, NULL);
    w = make(&cfg, "INGEST_LOOPS = 3;", 2, &seen, &ing0, &auth0);
    for (i = 0; i < 12; i++) {
        posts[i].post.fn = post_run;
        posts[i].k = i;
        posts[i].order = order;
        posts[i].ran_on = ran_on;
        posts[i].n = &n;
        posts[i].mu = &mu;
    }
    ck_assert_int_eq(gw__workers_current(), 0);
    ck_assert_int_eq(gw__workers_post(w, 2, &posts[0].post), GW_ERR);
    ck_assert_int_eq(gw__workers_post(NULL, 0, &posts[0].post), GW_ERR);
    /* Posted before the threads start: they run once the loops run. */
    ck_assert_int_eq(gw__workers_post(w, 0, &posts[0].post), GW_OK);
    ck_assert_int_eq(gw__workers_post(w, 1, &posts[1].post), GW_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(gw__workers_start(w), GW_OK);
    for (i = 2; i < 8; i++)
        ck_assert_int_eq(gw__workers_post(w, (size_t)(i % 2), &posts[i].post),
                         GW_OK);
    for (spins = 0; spins < 500; spins++) {
        pthread_mutex_lock(&mu);
        i = n;
        pthread_mutex_unlock(&mu);
        if (i == 8)
            break;
        usleep(10000);
    }
    ck_assert_int_eq(i, 8);
    gw__workers_stop(w);
    /* Each on its loop's thread (post k on loop k % 2 + 1), and the
     * posts to one loop in the order made. */
    {
        int last[3] = {-1, -1, -1};

        for (i = 0; i < 8; i++) {
            ck_assert_int_eq(ran_on[i], order[i] % 2 + 1);
            ck_assert_int_gt(order[i], last[ran_on[i]]);
            last[ran_on[i]] = order[i];
        }
    }
    /* Once the loops stopped, a post runs at once, on this thread. */
    ck_assert_int_eq(gw__workers_post(w, 1, &posts[8].post), GW_OK);
    ck_assert_int_eq(n, 9);
    ck_assert_int_eq(ran_on[8], 0);

    unmake(w, &cfg, &seen, ing0, auth0);
}
END_TEST

/* Loop 0's flush tick asks every loop once; a loop that has not yet run
 * the last tick's request is not asked again (its node is queued: posting
 * it twice looped the queue on itself, and the daemon waited for a
 * release that never came). */
START_TEST(test_tick)
{
    gw__config_t cfg;
    gw__ingest_t *ing0;
    gw__auth_t *auth0;
    gw__workers_t *w;
    seen_t seen;

    memset(&seen, 0, sizeof(seen));
    pthread_mutex_init(&seen.mu, NULL);
    w = make(&cfg, "INGEST_LOOPS = 3;", 2, &seen, &ing0, &auth0);
    gw__workers_on_flushed(w, flushed);
    ck_assert_int_eq(gw__workers_tick(NULL), 0);
    /* The loops do not run yet: the first tick's requests wait. */
    ck_assert_int_eq(gw__workers_tick(w), 2);
    ck_assert_int_eq(gw__workers_tick(w), 0);
    ck_assert_int_eq(gw__workers_start(w), GW_OK);
    ck_assert_uint_eq(wait_flushed(&seen, 2), 2);
    ck_assert_int_eq(gw__workers_tick(w), 2);
    ck_assert_uint_eq(wait_flushed(&seen, 4), 4);
    gw__workers_stop(w);
    ck_assert_uint_eq(seen.flushed, 4);

    unmake(w, &cfg, &seen, ing0, auth0);
}
END_TEST

START_TEST(test_none)
{
    gw__config_t cfg;
    gw__workers_t *w = (gw__workers_t *)&cfg;

    load(&cfg, "");
    ck_assert_int_eq(gw__workers_create(0, &cfg, NULL, NULL, hand_over, NULL,
                                        &w),
                     GW_OK);
    ck_assert_ptr_null(w);
    ck_assert_uint_eq(gw__workers_count(NULL), 0);
    ck_assert_ptr_null(gw__workers_loop(NULL, 0));
    ck_assert_int_eq(gw__workers_start(NULL), GW_OK);
    gw__workers_stop(NULL);
    gw__workers_flush(NULL);
    gw__workers_free(NULL);
    gw__config_free(&cfg);
}
END_TEST

static Suite *
workers_suite(void)
{
    Suite *s = suite_create("workers");
    TCase *tc = fixture_tcase(s, "workers");

    tcase_add_test(tc, test_wanted);
    tcase_add_test(tc, test_loops_take_and_hand_over);
    tcase_add_test(tc, test_kind_rule_across_loops);
    tcase_add_test(tc, test_post);
    tcase_add_test(tc, test_tick);
    tcase_add_test(tc, test_none);
    return s;
}

int
main(void)
{
    return run_suite(workers_suite());
}
