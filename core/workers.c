/*
 * core/workers.c: the extra ingest loops (core/workers.h).
 *
 * One more ingest loop is a thread running its own libev loop, on which
 * transports that ask for it (host->loop_at) watch their sockets; what
 * they submit there goes into this loop's own table, which it hands over
 * when loop 0's flush tick tells it to (gw__workers_tick: a post to each
 * loop; gw__store_flush is thread-safe; the storage thread merges the
 * tables of all loops of one tick into one batch).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE (pthread_setname_np) */
#endif

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "base/log.h"
#include "host.h"
#include "workers.h"

typedef struct wk_loop_s {
    gw__workers_t *set;
    struct ev_loop *loop;
    gw__ingest_t *ingest;
    gw__auth_t *auth;
    pthread_t thread;
    int running;
    ev_async stop;
    gw__post_t flush; /* gw__workers_tick's: hand the table over */
    int flush_queued; /* flush is posted and has not run (atomic) */
    ev_prepare counts;
    /* Posts: a list under its lock, woken by an ev_async; closed once the
     * loop stopped (then a post runs at once on the poster's thread). */
    pthread_mutex_t mu;
    gw__post_t *head, *tail;
    int closed;
    int has_mu;
    ev_async posted;
} wk_loop_t;

struct gw__workers_s {
    wk_loop_t *loops;
    size_t n;
    int logged_count; /* INGEST_LOOPS was given: log the count at start */
    gw__ingest_t *registry;
    gw__pending_t *pending; /* loop 0's MAX_PENDING_SERIES bound */
    gw__workers_hand_over_fn hand_over;
    void (*flushed)(void *arg);
    void *arg;
};

static __thread gw__ingest_t *wk_thread_ingest;
static __thread gw__auth_t *wk_thread_auth;
static __thread int wk_thread_index; /* 0: loop 0 or not an ingest loop */

int
gw__workers_current(void)
{
    return wk_thread_index;
}

/* Runs the posts of l in order; on l's thread, or after it stopped. */
static void
wk_run_posts(wk_loop_t *l)
{
    gw__post_t *p;

    pthread_mutex_lock(&l->mu);
    p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (p != NULL) {
        gw__post_t *next = p->next;

        p->fn(p); /* may free p */
        p = next;
    }
}

static void
wk_posted_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    wk_run_posts(w->data);
}

int
gw__workers_post(gw__workers_t *w, size_t i, gw__post_t *p)
{
    wk_loop_t *l;
    int closed;

    if (w == NULL || i >= w->n || !w->loops[i].has_mu)
        return GW_ERR;
    l = &w->loops[i];
    p->next = NULL;
    pthread_mutex_lock(&l->mu);
    closed = l->closed;
    if (!closed) {
        if (l->tail != NULL)
            l->tail->next = p;
        else
            l->head = p;
        l->tail = p;
    }
    pthread_mutex_unlock(&l->mu);
    if (closed) {
        /* The loop no longer runs: nothing races with fn here. */
        p->fn(p);
        return GW_OK;
    }
    ev_async_send(l->loop, &l->posted);
    return GW_OK;
}

gw__ingest_t *
gw__workers_ingest(void)
{
    return wk_thread_ingest;
}

gw__auth_t *
gw__workers_auth(const gw__config_t *cfg)
{
    /* A worker takes up SIGHUP's config on its own thread. */
    if (wk_thread_auth != NULL && gw__auth_config(wk_thread_auth) != cfg)
        gw__auth_set_config(wk_thread_auth, cfg);
    return wk_thread_auth;
}

int
gw__workers_wanted(const gw__config_t *cfg, int *cpus)
{
    cpu_set_t set;
    int n = 1;

    *cpus = 0;
    if (cfg->ingest_loops > 0)
        return cfg->ingest_loops;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = *cpus = CPU_COUNT(&set);
    if (cfg->journal != NULL || n < 1)
        return 1;
    return n > 8 ? 8 : n;
}

static void
wk_hand_over(wk_loop_t *l)
{
    gw__table_t *t = gw__ingest_swap(l->ingest);

    if (t != NULL && l->set->hand_over(l->set->arg, t) != GW_OK)
        gw__ingest_unswap(l->ingest, t);
}

/* Loop 0's flush tick, on this loop's thread: the table goes over, then
 * the daemon is told (it holds the batch until every loop's came). */
static void
wk_flush_post(gw__post_t *p)
{
    wk_loop_t *l = (wk_loop_t *) ((char *) p - offsetof(wk_loop_t, flush));

    __atomic_store_n(&l->flush_queued, 0, __ATOMIC_RELEASE);
    /* The storage is down: keep the table (see gw__pending_t.down). */
    if (l->set->pending == NULL ||
        !__atomic_load_n(&l->set->pending->down, __ATOMIC_RELAXED))
        wk_hand_over(l);
    if (l->set->flushed != NULL)
        l->set->flushed(l->set->arg);
}

void
gw__workers_on_flushed(gw__workers_t *w, void (*fn)(void *arg))
{
    if (w != NULL)
        w->flushed = fn;
}

int
gw__workers_tick(gw__workers_t *w)
{
    size_t i;
    int n = 0;

    for (i = 0; w != NULL && i < w->n; i++) {
        wk_loop_t *l = &w->loops[i];

        /* A loop still busy with the last tick's post is not asked again
         * (the node is in its queue; it hands over when it gets there). */
        if (__atomic_exchange_n(&l->flush_queued, 1, __ATOMIC_ACQ_REL))
            continue;
        l->flush.fn = wk_flush_post;
        if (gw__workers_post(w, i, &l->flush) == GW_OK)
            n++;
        else
            __atomic_store_n(&l->flush_queued, 0, __ATOMIC_RELEASE);
    }
    return n;
}

static void
wk_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *
wk_main(void *arg)
{
    wk_loop_t *l = arg;
    sigset_t all;
    char name[16];

    /* Signals are the main loop's. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    /* Named for top -H and ps -L: gw-ingest-1, gw-ingest-2, ... */
    snprintf(name, sizeof(name), "gw-ingest-%u",
             (unsigned) ((l - l->set->loops) + 1) % 100u);
    pthread_setname_np(pthread_self(), name);
    wk_thread_ingest = l->ingest;
    wk_thread_auth = l->auth;
    wk_thread_index = (int) (l - l->set->loops) + 1;
    ev_run(l->loop, 0);
    gw__host_flush_counts();
    return NULL;
}

/* Makes loop i of w (counted in w->n once its libev loop exists, so that
 * gw__workers_free frees exactly what was made). */
static int
wk_loop_init(gw__workers_t *w, size_t i, const gw__config_t *cfg,
             gw__auth_t *auth0)
{
    wk_loop_t *l = &w->loops[i];

    l->set = w;
    l->loop = ev_loop_new(EVFLAG_AUTO);
    if (l->loop == NULL) {
        gw__log_error("cannot create ingest loop %zu (libev)", i + 1);
        return GW_ERR;
    }
    w->n++;
    ev_async_init(&l->stop, wk_stop_cb);
    ev_async_start(l->loop, &l->stop);
    pthread_mutex_init(&l->mu, NULL);
    l->has_mu = 1;
    ev_async_init(&l->posted, wk_posted_cb);
    l->posted.data = l;
    ev_async_start(l->loop, &l->posted);
    ev_prepare_init(&l->counts, gw__host_counts_cb);
    ev_prepare_start(l->loop, &l->counts);
    l->ingest = gw__ingest_new(&cfg->limits, NULL);
    l->auth = gw__auth_new_sharing(cfg, auth0);
    if (l->ingest == NULL || l->auth == NULL) {
        gw__log_error("out of memory for ingest loop %zu", i + 1);
        return GW_ERR;
    }
    gw__ingest_share(l->ingest, w->registry);
    gw__ingest_set_pending(l->ingest, w->pending);
    return GW_OK;
}

int
gw__workers_create(size_t n, const gw__config_t *cfg, gw__ingest_t *ingest0,
                   gw__auth_t *auth0, gw__workers_hand_over_fn hand_over,
                   void *arg, gw__workers_t **out)
{
    gw__workers_t *w;
    size_t i;

    *out = NULL;
    if (n == 0)
        return GW_OK;
    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->loops = calloc(n, sizeof(*w->loops))) == NULL ||
        (w->registry = gw__ingest_new(&cfg->limits, NULL)) == NULL) {
        gw__log_error("out of memory for %zu more ingest loops", n);
        if (w != NULL)
            free(w->loops);
        free(w);
        return GW_ERR;
    }
    w->hand_over = hand_over;
    w->arg = arg;
    w->pending = gw__ingest_get_pending(ingest0);
    w->logged_count = cfg->ingest_loops > 0;
    for (i = 0; i < n; i++) {
        if (wk_loop_init(w, i, cfg, auth0) != GW_OK) {
            gw__workers_free(w);
            return GW_ERR;
        }
    }
    /* Last, so that a failure leaves loop 0's ingest as it was. */
    gw__ingest_share(ingest0, w->registry);
    *out = w;
    return GW_OK;
}

int
gw__workers_start(gw__workers_t *w)
{
    size_t i;
    int rc;

    for (i = 0; w != NULL && i < w->n; i++) {
        wk_loop_t *l = &w->loops[i];

        rc = pthread_create(&l->thread, NULL, wk_main, l);
        if (rc != 0) {
            gw__log_error("cannot start ingest loop %zu: %s", i + 1,
                          strerror(rc));
            return GW_ERR;
        }
        l->running = 1;
    }
    if (w != NULL && w->logged_count)
        gw__log_info("ingest loops: %zu (INGEST_LOOPS)", w->n + 1);
    return GW_OK;
}

void
gw__workers_stop(gw__workers_t *w)
{
    size_t i;

    for (i = 0; w != NULL && i < w->n; i++) {
        wk_loop_t *l = &w->loops[i];

        if (l->running) {
            ev_async_send(l->loop, &l->stop);
            pthread_join(l->thread, NULL);
            l->running = 0;
        }
        /* What was posted and not run yet runs here, and so do later
         * posts (gw__workers_post), on this thread. */
        if (!l->has_mu)
            continue;
        pthread_mutex_lock(&l->mu);
        l->closed = 1;
        pthread_mutex_unlock(&l->mu);
        wk_run_posts(l);
    }
}

void
gw__workers_flush(gw__workers_t *w)
{
    size_t i;

    for (i = 0; w != NULL && i < w->n; i++)
        wk_hand_over(&w->loops[i]);
}

void
gw__workers_free(gw__workers_t *w)
{
    size_t i;

    if (w == NULL)
        return;
    for (i = 0; i < w->n; i++) {
        wk_loop_t *l = &w->loops[i];

        ev_prepare_stop(l->loop, &l->counts);
        ev_async_stop(l->loop, &l->stop);
        if (l->has_mu) {
            ev_async_stop(l->loop, &l->posted);
            wk_run_posts(l);
            pthread_mutex_destroy(&l->mu);
        }
        ev_loop_destroy(l->loop);
        gw__ingest_free(l->ingest);
        gw__auth_free(l->auth);
    }
    free(w->loops);
    gw__ingest_free(w->registry);
    free(w);
}

size_t
gw__workers_count(const gw__workers_t *w)
{
    return w != NULL ? w->n : 0;
}

struct ev_loop *
gw__workers_loop(const gw__workers_t *w, size_t i)
{
    return w != NULL && i < w->n ? w->loops[i].loop : NULL;
}
