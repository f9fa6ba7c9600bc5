/*
 * core/store.c: the storage thread (DESIGN §2, core/store.h).
 *
 * The loop hands over aggregation tables (gw__store_flush) and jobs
 * (gw__store_call) through a queue guarded by one mutex and a condition
 * variable; the thread does every call into the storage plugin, one at a
 * time, and hands results back through done records and an ev_async that
 * the loop owns.
 *
 * Writes: tables merge into the "next" batch; the thread stores the
 * "current" one. GW_AGAIN keeps current (with its id, so a storage can
 * apply it exactly once) and retries after a backoff of 100 ms doubling to
 * 5 s, while tables keep merging into next (MAX_PENDING_SERIES is held at
 * admission, see gw__pending_t). Jobs run between attempts, so reads do not
 * wait for an outage to end. The outage is logged once and the recovery
 * once.
 *
 * RETENTION: merges leave out the cells already past their period's
 * retention, and between stores and jobs the thread calls the storage's
 * expire op for each period with one, every RETENTION_INTERVAL
 * (st_expire_step), in small steps when the storage asks for them.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "journal.h"
#include "base/log.h"
#include "ingest/bucket.h"
#include "store.h"

#define ST_BACKOFF_MIN 0.1
#define ST_BACKOFF_MAX 5.0

/* A queued table, job, waiter or finished record. */
typedef struct st_item_s {
    struct st_item_s *next;
    gw__table_t *table;        /* a flush */
    gw__store_job_fn job;      /* a job */
    gw__store_done_fn done;    /* job or waiter */
    void *arg;
    uint64_t target;           /* waiter: tables handed over before it */
    uint64_t seg;              /* a flush: its journal segment (0: none) */
    uint64_t seg_last;         /* a replayed flush: last segment */
    char *fixed_id;            /* a replayed flush: its batch id */
    int rc;                    /* when finished */
    gw_error_t err;
} st_item_t;

typedef struct st_list_s {
    st_item_t *head, *tail;
} st_list_t;

/* A batch that must not take further tables (a replayed batch keeps the
 * id it had, and the batch before it is closed for it). */
typedef struct st_ready_s {
    struct st_ready_s *next;
    gw__batch_t *batch;
    uint64_t upto;
    uint64_t seg_first, seg_last;
} st_ready_t;

struct gw__store_s {
    struct ev_loop *loop;
    gw_storage_ops_t ops;
    void *state;
    unsigned periods;
    gw__pending_t pending;       /* MAX_PENDING_SERIES, for admission */
    unsigned nperiods;
    char *id_prefix;
    const char *log_prefix;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* wakes the thread */
    pthread_cond_t finished;   /* wakes gw__store_close */
    ev_async async;

    /* Under mu. */
    st_list_t tables;
    st_list_t jobs;
    st_list_t waiters;
    st_list_t done;            /* finished jobs and waiters for the loop */
    uint64_t tables_in;        /* tables handed over (loop side) */
    uint64_t tables_done;      /* tables stored or dropped */
    uint64_t drop_from;        /* the last refused batch held tables */
    uint64_t drop_to;          /* drop_from < n <= drop_to */
    int closing;
    int hold; /* gw__store_hold: next is not begun while > 0 */
    int thread_done;
    double deadline;           /* closing: monotonic time to give up */
    gw__store_stats_t stats;

    /* The thread's own. */
    gw__batch_t *current;
    uint64_t current_upto;     /* tables_in count current covers */
    uint64_t current_first, current_last; /* its journal segments */
    int current_begun;         /* its batch id is in the journal manifest */
    gw__batch_t *next;
    uint64_t next_upto;
    uint64_t next_first, next_last;
    st_ready_t *ready, *ready_tail; /* closed batches before next */
    size_t ready_series;
    uint64_t ready_events;
    gw__journal_t *journal;
    uint64_t tables_merged;    /* tables taken from the queue */
    uint64_t seq;
    double backoff;
    double retry_at;
    double down_since;
    uint64_t not_stored;       /* events left when the thread gave up */

    /* RETENTION (gw__store_set_retention); under mu. */
    int64_t retention[GW_PERIOD_COUNT];
    int have_retention;
    double expire_every;       /* s between passes */
    double expire_at;          /* monotonic: next expire() call; 0: none */
    int expire_p;              /* the period being expired, -1: between */
    int64_t expire_cuts[GW_PERIOD_COUNT]; /* of the pass */
    double expire_t0;
};

static double
st_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
st_push(st_list_t *l, st_item_t *it)
{
    it->next = NULL;
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
}

static st_item_t *
st_pop(st_list_t *l)
{
    st_item_t *it = l->head;

    if (it != NULL) {
        l->head = it->next;
        if (l->head == NULL)
            l->tail = NULL;
        it->next = NULL;
    }
    return it;
}

static void
st_timespec(double t, struct timespec *ts)
{
    ts->tv_sec = (time_t) t;
    ts->tv_nsec = (long) ((t - (double) ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* ---- Thread side (mu held unless said otherwise) ---- */

/* Moves waiters whose tables are all done to the done list with rc
 * (GW_OK: stored; GW_ERR: the storage refused the last of them). */
static void
st_release_waiters(gw__store_t *st, int rc)
{
    st_list_t keep = {NULL, NULL};
    st_item_t *it;
    int any = 0;

    while ((it = st_pop(&st->waiters)) != NULL) {
        if (it->target <= st->tables_done) {
            it->rc = rc;
            st_push(&st->done, it);
            any = 1;
        } else {
            st_push(&keep, it);
        }
    }
    st->waiters = keep;
    if (any)
        ev_async_send(st->loop, &st->async);
}

/* Deltas as series: a series pending in every period is nperiods deltas. */
static size_t
st_series(const gw__store_t *st, size_t deltas)
{
    return (deltas + st->nperiods - 1) / st->nperiods;
}

/* The deltas of every batch: the thread's own, so it reads them without
 * mu (ready_series is written by the thread only). */
static size_t
st_deltas(const gw__store_t *st)
{
    return (st->current != NULL ? gw__batch_size(st->current) : 0) +
           (st->next != NULL ? gw__batch_size(st->next) : 0) +
           st->ready_series;
}

/* Tells admission how many deltas wait (gw__pending_t.stored). After a
 * merge this comes before the table is freed (which gives back what it
 * reserved), so admission never sees less than what waits. */
static void
st_publish(gw__store_t *st)
{
    __atomic_store_n(&st->pending.stored, st_deltas(st), __ATOMIC_SEQ_CST);
}

static void
st_update_pending(gw__store_t *st)
{
    st->stats.pending_series = st_series(st, st_deltas(st));
    st_publish(st);
}

/* Closes next (if any) into the ready list. */
static void
st_ready_push(gw__store_t *st, gw__batch_t *b, uint64_t upto, uint64_t first,
              uint64_t last)
{
    st_ready_t *r = calloc(1, sizeof(*r));

    r->batch = b;
    r->upto = upto;
    r->seg_first = first;
    r->seg_last = last;
    if (st->ready_tail != NULL)
        st->ready_tail->next = r;
    else
        st->ready = r;
    st->ready_tail = r;
    st->ready_series += gw__batch_size(b);
    st->ready_events += gw__batch_events(b);
}

static void
st_close_next(gw__store_t *st)
{
    if (st->next == NULL)
        return;
    st_ready_push(st, st->next, st->next_upto, st->next_first,
                  st->next_last);
    st->next = NULL;
    st->next_first = st->next_last = 0;
}

static gw__batch_t *
st_new_batch(gw__store_t *st)
{
    char id[96];

    snprintf(id, sizeof(id), "%s:%llu", st->id_prefix,
             (unsigned long long) ++st->seq);
    return gw__batch_new(id);
}

/* gw__batch_add_table with the retention cuts of the moment; the cells
 * left out are counted in skipped (taken under mu by the caller). mu is
 * not held. */
static void
st_merge_into(gw__store_t *st, gw__batch_t *b, const gw__table_t *t,
              uint64_t *dropped, uint64_t *skipped)
{
    int64_t cuts[GW_PERIOD_COUNT];
    uint64_t before[GW_PERIOD_COUNT];
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        before[p] = gw__batch_skipped(b, (gw_period_t) p);
    if (st->have_retention) {
        gw__retention_cuts(st->retention, (int64_t) time(NULL), cuts);
        gw__batch_set_cuts(b, cuts);
    }
    gw__batch_add_table(b, t, st->periods, dropped);
    for (p = 0; p < GW_PERIOD_COUNT; p++)
        skipped[p] = gw__batch_skipped(b, (gw_period_t) p) - before[p];
}

/* Merges queued tables into next. Drops mu while merging. */
static void
st_merge_tables(gw__store_t *st)
{
    st_item_t *it;

    while ((it = st_pop(&st->tables)) != NULL) {
        uint64_t dropped = 0, upto = ++st->tables_merged;
        uint64_t skipped[GW_PERIOD_COUNT];
        int p;

        if (it->fixed_id != NULL) {
            gw__batch_t *b;

            st_close_next(st);
            pthread_mutex_unlock(&st->mu);
            b = gw__batch_new(it->fixed_id);
            st_merge_into(st, b, it->table, &dropped, skipped);
            pthread_mutex_lock(&st->mu);
            st_ready_push(st, b, upto, it->seg, it->seg_last);
            st_publish(st);
            gw__table_free(it->table);
            free(it->fixed_id);
            free(it);
        } else {
            uint64_t seg = it->seg;

            pthread_mutex_unlock(&st->mu);
            if (st->next == NULL)
                st->next = st_new_batch(st);
            st_merge_into(st, st->next, it->table, &dropped, skipped);
            st_publish(st);
            gw__table_free(it->table);
            free(it);
            pthread_mutex_lock(&st->mu);
            st->next_upto = upto;
            if (seg != 0) {
                if (st->next_first == 0)
                    st->next_first = seg;
                st->next_last = seg;
            }
        }
        /* Only out of memory drops here (logged by the merge):
         * MAX_PENDING_SERIES is held at admission (gw__pending_t). */
        st->stats.events_dropped += dropped;
        for (p = 0; p < GW_PERIOD_COUNT; p++)
            st->stats.skipped[p] += skipped[p];
        st_update_pending(st);
    }
}

static void
st_run_job(gw__store_t *st, st_item_t *it)
{
    pthread_mutex_unlock(&st->mu);
    it->err.msg[0] = '\0';
    it->rc = it->job(&st->ops, st->state, it->arg, &it->err);
    pthread_mutex_lock(&st->mu);
    st_push(&st->done, it);
    ev_async_send(st->loop, &st->async);
}

/* One attempt to store current. */
static void
st_store_current(gw__store_t *st)
{
    gw_error_t err;
    double t0, t1;
    int rc;
    size_t nseries = st_series(st, gw__batch_size(st->current));
    uint64_t nevents = gw__batch_events(st->current);

    pthread_mutex_unlock(&st->mu);
    if (!st->current_begun && st->journal != NULL && st->current_first != 0)
        gw__journal_batch_begin(st->journal,
                                gw__batch_view(st->current)->id,
                                st->current_first, st->current_last);
    st->current_begun = 1;
    err.msg[0] = '\0';
    t0 = st_now();
    rc = st->ops.store(st->state, gw__batch_view(st->current), &err);
    t1 = st_now();
    pthread_mutex_lock(&st->mu);
    if (rc == GW_AGAIN) {
        st->stats.store_errors++;
        if (!st->stats.down) {
            st->stats.down = 1;
            __atomic_store_n(&st->pending.down, 1, __ATOMIC_RELAXED);
            st->down_since = t0;
            st_update_pending(st);
            gw__log(GW_LOG_WARNING, st->log_prefix,
                    "storage unreachable: %s; keeping %zu pending series, "
                    "retrying", err.msg[0] ? err.msg : "no reason given",
                    st->stats.pending_series);
            st->backoff = ST_BACKOFF_MIN;
        } else {
            st->backoff *= 2;
            if (st->backoff > ST_BACKOFF_MAX)
                st->backoff = ST_BACKOFF_MAX;
        }
        st->retry_at = t1 + st->backoff;
        return;
    }
    if (rc == GW_OK) {
        st->stats.batches_stored++;
        st->stats.events_stored += nevents;
        st->stats.last_flush_seconds = t1 - t0;
        if (st->stats.down) {
            st->stats.down = 0;
            __atomic_store_n(&st->pending.down, 0, __ATOMIC_RELAXED);
            gw__log(GW_LOG_NOTICE, st->log_prefix,
                    "storage back after %.1f s; stored %zu pending series",
                    t1 - st->down_since, nseries);
        }
    } else {
        st->stats.store_errors++;
        st->stats.events_dropped += nevents;
        gw__log(GW_LOG_ERR, st->log_prefix,
                "storage refused a batch: %s; dropped %llu events in %zu "
                "series", err.msg[0] ? err.msg : "no reason given",
                (unsigned long long) nevents, nseries);
    }
    st->backoff = 0;
    st->retry_at = 0;
    pthread_mutex_unlock(&st->mu);
    gw__batch_free(st->current);
    pthread_mutex_lock(&st->mu);
    st->current = NULL;
    if (rc != GW_OK) {
        st->drop_from = st->tables_done;
        st->drop_to = st->current_upto;
    }
    if (st->current_upto > st->tables_done)
        st->tables_done = st->current_upto;
    st_update_pending(st);
    st_release_waiters(st, rc == GW_OK ? GW_OK : GW_ERR);
}

/* The period after p (-1: the first) that has a cut in this pass, or -1. */
static int
st_expire_next(const gw__store_t *st, int p)
{
    for (p++; p < GW_PERIOD_COUNT; p++)
        if ((st->periods & (1u << p)) && st->expire_cuts[p] != INT64_MIN)
            return p;
    return -1;
}

/* "2026-11-26T13:00:00Z" */
static void
st_iso(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t) t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * One expire() call of the pass of retention, finest period first: a pass
 * starts with the cuts of the moment; GW_AGAIN (more to do) calls the same
 * period again after 10 ms, between stores and jobs; GW_OK goes on with
 * the next period; the pass ends after the last one, or at an error, and
 * the next starts expire_every later. mu held (dropped for the call).
 */
static void
st_expire_step(gw__store_t *st)
{
    gw_error_t err;
    char when[32], kept[32];
    int p = st->expire_p, rc;
    double now;

    if (p < 0) {
        gw__retention_cuts(st->retention, (int64_t) time(NULL),
                           st->expire_cuts);
        st->expire_t0 = st_now();
        p = st_expire_next(st, -1);
        if (p < 0) {
            st->expire_at = 0;
            return;
        }
    }
    err.msg[0] = '\0';
    pthread_mutex_unlock(&st->mu);
    rc = st->ops.expire(st->state, (gw_period_t) p, st->expire_cuts[p], &err);
    pthread_mutex_lock(&st->mu);
    now = st_now();
    if (rc == GW_AGAIN) {
        st->expire_p = p;
        st->expire_at = now + 0.01;
        return;
    }
    st_iso(st->expire_cuts[p], when, sizeof(when));
    gw__retention_format(st->retention[p], kept, sizeof(kept));
    if (rc != GW_OK) {
        st->stats.expiry_errors++;
        gw__log(GW_LOG_ERR, st->log_prefix,
                "retention: removing %s buckets before %s failed: %s; trying "
                "again in %.0f s", gw_period_name((gw_period_t) p), when,
                err.msg[0] ? err.msg : "no reason given", st->expire_every);
        p = -1;
    } else {
        gw__log(st->stats.expiry_passes == 0 ? GW_LOG_INFO : GW_LOG_DEBUG,
                st->log_prefix, "retention: %s buckets before %s removed "
                "(kept %s)", gw_period_name((gw_period_t) p), when, kept);
        p = st_expire_next(st, p);
    }
    st->expire_p = p;
    if (p >= 0) {
        st->expire_at = now;
        return;
    }
    if (rc == GW_OK) {
        st->stats.expiry_passes++;
        st->stats.last_expiry_seconds = now - st->expire_t0;
    }
    st->expire_at = now + st->expire_every;
}

static int
st_has_work(gw__store_t *st)
{
    return st->current != NULL || st->ready != NULL ||
           (st->next != NULL && gw__batch_size(st->next) > 0);
}

/* Makes the oldest closed batch (or next) current. */
static void
st_promote(gw__store_t *st)
{
    gw__batch_t *b = NULL;
    uint64_t upto = 0, first = 0, last = 0;

    if (st->ready != NULL) {
        st_ready_t *r = st->ready;

        st->ready = r->next;
        if (st->ready == NULL)
            st->ready_tail = NULL;
        st->ready_series -= gw__batch_size(r->batch);
        st->ready_events -= gw__batch_events(r->batch);
        b = r->batch;
        upto = r->upto;
        first = r->seg_first;
        last = r->seg_last;
        free(r);
    } else if (st->next != NULL) {
        b = st->next;
        upto = st->next_upto;
        first = st->next_first;
        last = st->next_last;
        st->next = NULL;
        st->next_first = st->next_last = 0;
    } else {
        return;
    }
    if (gw__batch_size(b) > 0) {
        st->current = b;
        st->current_upto = upto;
        st->current_first = first;
        st->current_last = last;
        st->current_begun = 0;
    } else {
        /* Tables that held nothing: done already. */
        gw__batch_free(b);
        if (upto > st->tables_done)
            st->tables_done = upto;
        st_release_waiters(st, GW_OK);
    }
}

static void *
st_thread(void *arg)
{
    gw__store_t *st = arg;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        double now;
        st_item_t *it;

        if (st->tables.head != NULL) {
            st_merge_tables(st);
            continue;
        }
        if ((it = st_pop(&st->jobs)) != NULL) {
            st_run_job(st, it);
            continue;
        }
        if (st->current == NULL
            && (st->ready != NULL || (st->next != NULL && st->hold == 0))) {
            st_promote(st);
            if (st->current == NULL)
                continue;
        }
        now = st_now();
        if (st->current != NULL && now >= st->retry_at &&
            !(st->closing && now >= st->deadline && st->stats.down)) {
            st_store_current(st);
            continue;
        }
        if (st->closing && (!st_has_work(st) || now >= st->deadline))
            break;
        if (st->expire_at != 0 && now >= st->expire_at && !st->closing) {
            st_expire_step(st);
            continue;
        }
        if (st->current != NULL || st->closing ||
            (st->expire_at != 0 && !st->closing)) {
            struct timespec ts;
            double until = st->current != NULL ? st->retry_at : st->deadline;

            if (st->current == NULL && !st->closing)
                until = st->expire_at;
            else if (st->expire_at != 0 && !st->closing &&
                     st->expire_at < until)
                until = st->expire_at;
            if (st->closing && st->deadline < until)
                until = st->deadline;
            st_timespec(until, &ts);
            pthread_cond_timedwait(&st->cond, &st->mu, &ts);
        } else {
            pthread_cond_wait(&st->cond, &st->mu);
        }
    }
    /* Whatever is left could not be stored in time. */
    st->not_stored = (st->current != NULL ? gw__batch_events(st->current)
                                          : 0) +
                     (st->next != NULL ? gw__batch_events(st->next) : 0) +
                     st->ready_events;
    st->thread_done = 1;
    pthread_cond_broadcast(&st->finished);
    ev_async_send(st->loop, &st->async);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- Loop side ---- */

static void
st_run_done(gw__store_t *st)
{
    st_item_t *it, *list;

    pthread_mutex_lock(&st->mu);
    list = st->done.head;
    st->done.head = st->done.tail = NULL;
    pthread_mutex_unlock(&st->mu);
    while ((it = list) != NULL) {
        list = it->next;
        if (it->done != NULL)
            it->done(it->arg, it->rc, &it->err);
        free(it);
    }
}

static void
st_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    st_run_done(w->data);
}

int
gw__store_start(struct ev_loop *loop, const char *log_prefix,
                const gw_storage_ops_t *ops, void *state, unsigned periods,
                size_t max_pending, const char *id_prefix, gw__store_t **out,
                gw_error_t *err)
{
    gw__store_t *st = calloc(1, sizeof(*st));
    pthread_condattr_t ca;
    int rc;

    if (st == NULL)
        return gw_error_set(err, "out of memory");
    st->loop = loop;
    st->ops = *ops;
    st->state = state;
    st->periods = periods;
    /* MAX_PENDING_SERIES counts series; each expands into one delta per
     * period kept, so a healthy flush of that many series fits. */
    st->nperiods = (unsigned) __builtin_popcount(periods);
    if (st->nperiods == 0)
        st->nperiods = 1;
    st->pending.nper = st->nperiods;
    st->pending.max = max_pending > SIZE_MAX / st->nperiods
                          ? SIZE_MAX
                          : max_pending * st->nperiods;
    st->id_prefix = strdup(id_prefix != NULL ? id_prefix : "gw");
    st->log_prefix = log_prefix;
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_cond_init(&st->finished, &ca);
    pthread_condattr_destroy(&ca);
    ev_async_init(&st->async, st_async_cb);
    st->async.data = st;
    ev_async_start(loop, &st->async);
    rc = pthread_create(&st->thread, NULL, st_thread, st);
    if (rc != 0) {
        ev_async_stop(loop, &st->async);
        pthread_cond_destroy(&st->cond);
        pthread_cond_destroy(&st->finished);
        pthread_mutex_destroy(&st->mu);
        free(st->id_prefix);
        free(st);
        return gw_error_set(err, "cannot start the storage thread: %s",
                            strerror(rc));
    }
    *out = st;
    return GW_OK;
}

/* Queues table item it (the caller filled it in). */
static void
st_queue_table(gw__store_t *st, st_item_t *it)
{
    pthread_mutex_lock(&st->mu);
    st->tables_in++;
    st_push(&st->tables, it);
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
}

void
gw__store_set_retention(gw__store_t *st, const int64_t *retention,
                        double interval_s)
{
    int p;

    pthread_mutex_lock(&st->mu);
    memcpy(st->retention, retention, sizeof(st->retention));
    st->have_retention = 0;
    for (p = 0; p < GW_PERIOD_ALL; p++)
        if (retention[p] > 0 && (st->periods & (1u << p)))
            st->have_retention = 1;
    st->expire_every = interval_s;
    st->expire_p = -1;
    st->expire_at = st->have_retention && st->ops.expire != NULL
                        ? st_now() + 1.0
                        : 0;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
}

void
gw__store_hold(gw__store_t *st, int n)
{
    pthread_mutex_lock(&st->mu);
    st->hold += n;
    pthread_mutex_unlock(&st->mu);
}

void
gw__store_release(gw__store_t *st)
{
    pthread_mutex_lock(&st->mu);
    if (st->hold > 0)
        st->hold--;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
}

gw__pending_t *
gw__store_pending(gw__store_t *st)
{
    return &st->pending;
}

int
gw__store_flush(gw__store_t *st, gw__table_t *t)
{
    st_item_t *it;

    if (t == NULL)
        return GW_OK;
    it = calloc(1, sizeof(*it));
    if (it == NULL)
        return GW_ERR;
    it->table = t;
    st_queue_table(st, it);
    return GW_OK;
}

void
gw__store_set_journal(gw__store_t *st, gw__journal_t *j)
{
    st->journal = j;
}

int
gw__store_flush_batch(gw__store_t *st, gw__table_t *t, const char *id,
                      uint64_t first, uint64_t last)
{
    st_item_t *it;

    if (t == NULL)
        return GW_OK;
    it = calloc(1, sizeof(*it));
    if (it == NULL || (it->fixed_id = strdup(id)) == NULL) {
        free(it);
        return GW_ERR;
    }
    it->table = t;
    it->seg = first;
    it->seg_last = last;
    st_queue_table(st, it);
    return GW_OK;
}

int
gw__store_flush_seg(gw__store_t *st, gw__table_t *t, uint64_t *seg)
{
    st_item_t *it = calloc(1, sizeof(*it));

    *seg = 0;
    if (it == NULL)
        return GW_ERR;
    /* Rotated only now that nothing can fail: t holds exactly the events
     * of the segment that closes. */
    if (st->journal != NULL)
        *seg = gw__journal_rotate(st->journal);
    it->table = t;
    it->seg = *seg;
    st_queue_table(st, it);
    return GW_OK;
}

int
gw__store_when_stored(gw__store_t *st, gw__store_done_fn done, void *arg)
{
    st_item_t *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return GW_ERR;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&st->mu);
    it->target = st->tables_in;
    if (it->target <= st->tables_done) {
        /* Done already: stored, unless its last table was in the batch
         * the storage refused most recently. */
        it->rc = it->target > st->drop_from && it->target <= st->drop_to
                     ? GW_ERR
                     : GW_OK;
        st_push(&st->done, it);
        ev_async_send(st->loop, &st->async);
    } else if (st->closing) {
        it->rc = GW_AGAIN;
        st_push(&st->done, it);
        ev_async_send(st->loop, &st->async);
    } else {
        st_push(&st->waiters, it);
    }
    pthread_mutex_unlock(&st->mu);
    return GW_OK;
}

int
gw__store_call(gw__store_t *st, gw__store_job_fn job, gw__store_done_fn done,
               void *arg)
{
    st_item_t *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return GW_ERR;
    it->job = job;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&st->mu);
    if (st->thread_done) {
        it->rc = GW_AGAIN;
        gw_error_set(&it->err, "the daemon is stopping");
        st_push(&st->done, it);
        ev_async_send(st->loop, &st->async);
    } else {
        st_push(&st->jobs, it);
        pthread_cond_signal(&st->cond);
    }
    pthread_mutex_unlock(&st->mu);
    return GW_OK;
}

void
gw__store_stats(gw__store_t *st, gw__store_stats_t *out)
{
    size_t held;

    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    pthread_mutex_unlock(&st->mu);
    /* And the keys the loops' tables hold (reserved at admission). */
    held = __atomic_load_n(&st->pending.reserved, __ATOMIC_RELAXED);
    out->pending_series += held / st->nperiods;
}

uint64_t
gw__store_close(gw__store_t *st, int timeout_ms)
{
    return gw__store_close_stats(st, timeout_ms, NULL);
}

uint64_t
gw__store_close_stats(gw__store_t *st, int timeout_ms,
                      gw__store_stats_t *final)
{
    st_item_t *it;
    uint64_t lost;
    struct timespec ts;

    if (st == NULL)
        return 0;
    pthread_mutex_lock(&st->mu);
    st->closing = 1;
    st->deadline = st_now() + (timeout_ms > 0 ? timeout_ms / 1000.0 : 0);
    pthread_cond_signal(&st->cond);
    while (!st->thread_done) {
        /* Answer finished jobs and waiters while we wait. */
        if (st->done.head != NULL) {
            pthread_mutex_unlock(&st->mu);
            st_run_done(st);
            pthread_mutex_lock(&st->mu);
            continue;
        }
        st_timespec(st_now() + 0.05, &ts);
        pthread_cond_timedwait(&st->finished, &st->mu, &ts);
    }
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);

    /* Jobs that never ran and waiters that never will be satisfied. */
    while ((it = st_pop(&st->jobs)) != NULL) {
        it->rc = GW_AGAIN;
        gw_error_set(&it->err, "the daemon is stopping");
        st_push(&st->done, it);
    }
    while ((it = st_pop(&st->waiters)) != NULL) {
        it->rc = GW_AGAIN;
        st_push(&st->done, it);
    }
    while ((it = st_pop(&st->tables)) != NULL) {
        st->not_stored += gw__table_events(it->table);
        gw__table_free(it->table);
        free(it->fixed_id);
        free(it);
    }
    while (st->ready != NULL) {
        st_ready_t *r = st->ready;

        st->ready = r->next;
        gw__batch_free(r->batch);
        free(r);
    }
    st_run_done(st);
    lost = st->not_stored;
    if (final != NULL)
        *final = st->stats;
    if (lost > 0)
        gw__log(GW_LOG_ERR, st->log_prefix,
                "could not store %llu events in %zu series within "
                "SHUTDOWN_TIMEOUT (%d ms); they are lost",
                (unsigned long long) lost, st->stats.pending_series,
                timeout_ms);
    ev_async_stop(st->loop, &st->async);
    if (st->current != NULL)
        gw__batch_free(st->current);
    if (st->next != NULL)
        gw__batch_free(st->next);
    pthread_cond_destroy(&st->cond);
    pthread_cond_destroy(&st->finished);
    pthread_mutex_destroy(&st->mu);
    free(st->id_prefix);
    free(st);
    return lost;
}

void
gw__store_log_retention(const gw__config_t *cfg, const char *storage,
                        int can_expire, int cut_now)
{
    int64_t cuts[GW_PERIOD_COUNT];
    char kept[32], when[32];
    int p, any = 0;

    if (!cfg->retention_set) {
        gw__log_warning("RETENTION is not set: every bucket is kept for "
                        "ever and the storage grows without bound; add "
                        "RETENTION = { minute = \"7d\"; hour = \"90d\"; }; "
                        "(see gottwall.conf.example)");
        return;
    }
    gw__retention_cuts(cfg->retention, (int64_t) time(NULL), cuts);
    for (p = 0; p < GW_PERIOD_ALL; p++) {
        if (cfg->retention[p] == 0 || !(cfg->periods & (1u << p)))
            continue;
        any = 1;
        gw__retention_format(cfg->retention[p], kept, sizeof(kept));
        st_iso(cuts[p], when, sizeof(when));
        if (cut_now && can_expire)
            gw__log_info("RETENTION: %s buckets are kept %s; the first "
                         "expiry, in 1 s, removes those before %s",
                         gw_period_name((gw_period_t) p), kept, when);
        else
            gw__log_info("RETENTION: %s buckets are kept %s",
                         gw_period_name((gw_period_t) p), kept);
    }
    if (any && !can_expire)
        gw__log_warning("storage \"%s\" cannot remove old buckets (its "
                        "plugin has no expire op, ABI < 1.4): it keeps "
                        "everything; RETENTION only stops writes and reads "
                        "of expired buckets", storage);
}
