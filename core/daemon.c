/*
 * core/daemon.c: one running gottwall process (core/daemon.h).
 *
 * Start-up, in order: the storage plugin and its instance (created on the
 * main thread), its storage thread, the metric kinds every project already
 * has (so the kind rule holds across restarts), the transports (aggregator
 * role), the read API and dashboard (server role), the flush timer and the
 * signal watchers. SIGTERM/SIGINT stop accepting, flush what is aggregated,
 * wait for the storage up to SHUTDOWN_TIMEOUT and free everything; SIGHUP
 * reloads projects, keys and users.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's (the build directory's), for PACKAGE_VERSION */
#endif

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "daemon.h"
#include "base/log.h"
#include "base/metrics.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Configs loaded by SIGHUP; freed at exit (plugins keep pointers into
 * the first one, and in-flight requests may still read the last ones). */
typedef struct dm_extra_s {
    gw__daemon_t d;
    const char *config_path;
    gw__config_t **reloaded;
    size_t nreloaded;
    uint64_t events_flushed;
    int seeding;
    int exit_code;
} dm_extra_t;

#define DM(d) ((dm_extra_t *) (d))

static const char *
dm_kind_name(uint32_t kind)
{
    return kind == GW_PLUGIN_STORAGE ? "storage" : "transport";
}

/* ---- Instances ---- */

static gw__instance_t *
dm_instance_new(gw__daemon_t *d, gw__plugin_t *plugin, const char *name,
                config_setting_t *section)
{
    gw__instance_t *inst = calloc(1, sizeof(*inst));
    size_t n;

    inst->ctx.host = &gw__host;
    inst->ctx.inst = inst;
    inst->daemon = d;
    inst->plugin = plugin;
    inst->name = strdup(name);
    inst->section = section;
    n = strlen(plugin->name) + strlen(name) + 16;
    inst->prefix = malloc(n);
    snprintf(inst->prefix, n, "%s:%s:%s", dm_kind_name(plugin->desc.kind),
             plugin->name, name);
    return inst;
}

static void
dm_instance_free(gw__instance_t *inst)
{
    if (inst == NULL)
        return;
    if (inst->state != NULL) {
        if (inst->plugin->desc.kind == GW_PLUGIN_STORAGE)
            inst->plugin->storage.destroy(inst->state);
        else
            inst->plugin->transport.destroy(inst->state);
    }
    free(inst->name);
    free(inst->prefix);
    free(inst);
}

/* Loads the plugin and creates an instance (no start). */
static int
dm_create(gw__daemon_t *d, uint32_t kind, const gw__plugin_conf_t *pc,
          gw__instance_t **out, gw_error_t *err)
{
    gw__plugin_t *plugin;
    gw__instance_t *inst;
    gw_error_t e;
    int rc;

    if (gw__loader_load(&d->loader, kind, pc->plugin, &plugin, err) != GW_OK)
        return GW_ERR;
    inst = dm_instance_new(d, plugin, pc->instance, pc->section);
    e.msg[0] = '\0';
    if (kind == GW_PLUGIN_STORAGE)
        rc = plugin->storage.create(&inst->ctx, &inst->state, &e);
    else
        rc = plugin->transport.create(&inst->ctx, &inst->state, &e);
    if (rc != GW_OK) {
        inst->state = NULL;
        dm_instance_free(inst);
        return gw_error_set(err, "%s \"%s\": %s", dm_kind_name(kind),
                            pc->instance, e.msg[0] ? e.msg : "create failed");
    }
    *out = inst;
    return GW_OK;
}

static void
dm_loader_init(gw__daemon_t *d, const gw__run_opts_t *opts)
{
    size_t n = d->cfg->nplugin_path + (opts != NULL ? opts->nplugin_dirs : 0);
    char **dirs = calloc(n + 1, sizeof(char *));
    size_t i, k = 0;

    for (i = 0; i < d->cfg->nplugin_path; i++)
        dirs[k++] = d->cfg->plugin_path[i];
    for (i = 0; opts != NULL && i < opts->nplugin_dirs; i++)
        dirs[k++] = opts->plugin_dirs[i];
    gw__loader_init(&d->loader, dirs, k);
    free(dirs);
}

static void
dm_random_id(char *out, size_t size)
{
    unsigned char raw[8];
    size_t i;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        snprintf(out, size, "%lx", (unsigned long) getpid());
        return;
    }
    out[0] = '\0';
    for (i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* A setting of an instance for the start-up log ("PORT 8890"). */
static void
dm_describe(const gw__instance_t *inst, char *out, size_t size)
{
    int port = 0;
    const char *host = NULL;

    out[0] = '\0';
    if (inst->section == NULL)
        return;
    config_setting_lookup_string(inst->section, "HOST", &host);
    if (config_setting_lookup_int(inst->section, "PORT", &port) ==
        CONFIG_TRUE)
        snprintf(out, size, ", %s:%d", host != NULL ? host : "default host",
                 port);
}

/* ---- Seeding metric kinds from the storage ---- */

typedef struct dm_seed_s {
    gw__daemon_t *d;
    char *project;
    char **metrics;
    gw_kind_t *kinds;
    size_t n;
} dm_seed_t;

static void
dm_seed_emit(void *arg, const gw_meta_t *m)
{
    dm_seed_t *s = arg;

    if (m->filter_name != NULL || m->metric == NULL)
        return;
    s->metrics = realloc(s->metrics, (s->n + 1) * sizeof(char *));
    s->kinds = realloc(s->kinds, (s->n + 1) * sizeof(gw_kind_t));
    s->metrics[s->n] = strdup(m->metric);
    s->kinds[s->n] = m->kind;
    s->n++;
}

static int
dm_seed_job(const gw_storage_ops_t *ops, void *state, void *arg,
            gw_error_t *err)
{
    dm_seed_t *s = arg;

    return ops->metadata(state, s->project, dm_seed_emit, s, err);
}

static void
dm_seed_done(void *arg, int rc, const gw_error_t *err)
{
    dm_seed_t *s = arg;
    size_t i;

    if (rc != GW_OK)
        gw__log_warning("could not read the metrics of project \"%s\" from "
                        "the storage (%s); their kinds are learnt afresh",
                        s->project, err != NULL ? err->msg : "");
    for (i = 0; i < s->n; i++) {
        if (rc == GW_OK && s->d->ingest != NULL &&
            gw_kind_name(s->kinds[i]) != NULL)
            gw__ingest_set_kind(s->d->ingest, s->project, s->metrics[i],
                                s->kinds[i]);
        free(s->metrics[i]);
    }
    DM(s->d)->seeding--;
    free(s->metrics);
    free(s->kinds);
    free(s->project);
    free(s);
}

static void
dm_seed_kinds(gw__daemon_t *d)
{
    size_t i;

    for (i = 0; i < d->cfg->nprojects; i++) {
        dm_seed_t *s = calloc(1, sizeof(*s));

        s->d = d;
        s->project = strdup(d->cfg->projects[i].name);
        DM(d)->seeding++;
        gw__store_call(d->store, dm_seed_job, dm_seed_done, s);
    }
    while (DM(d)->seeding > 0 && !d->stopping)
        ev_run(d->loop, EVRUN_ONCE);
}

/* ---- The clock and the journal ---- */

static double dm_pinned;

double
gw__daemon_clock(void)
{
    struct timespec ts;

    if (dm_pinned != 0)
        return dm_pinned;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
gw__daemon_pin_clock(double t)
{
    dm_pinned = t;
}

typedef struct dm_seg_s {
    gw__daemon_t *d;
    uint64_t seq;
} dm_seg_t;

static void
dm_seg_stored(void *arg, int rc, const gw_error_t *err)
{
    dm_seg_t *s = arg;

    (void) err;
    /* GW_ERR: the storage refused the batch for good; keeping its
     * segments would only replay the refusal. GW_AGAIN: not stored (the
     * daemon stops): the segments stay for the next start. */
    if (rc != GW_AGAIN && s->d->journal != NULL)
        gw__journal_stored(s->d->journal, s->seq);
    free(s);
}

static void
dm_when_seg_stored(gw__daemon_t *d, uint64_t seq)
{
    dm_seg_t *s = malloc(sizeof(*s));

    s->d = d;
    s->seq = seq;
    gw__store_when_stored(d->store, dm_seg_stored, s);
}

/* Replay callbacks: the journal's records go through the same ingestion
 * as when they arrived, at their receipt time. */
static void
dm_replay_json(void *arg, double now, const char *project,
               gw_action_t action, unsigned flags, const char *json,
               size_t len)
{
    gw__daemon_t *d = arg;
    gw_error_t err;

    gw__daemon_pin_clock(now);
    if (gw__ingest_json(d->ingest, project, action, json, len,
                        (flags & GW_SUBMIT_BATCH) != 0, NULL, NULL,
                        &err) != GW_OK)
        gw__log_warning("journal: a request of project \"%s\" accepted "
                        "before is refused at replay: %s", project, err.msg);
    gw__daemon_pin_clock(0);
}

static void
dm_replay_event(void *arg, double now, const char *project,
                const gw_event_t *ev)
{
    gw__daemon_t *d = arg;
    gw_error_t err;

    gw__daemon_pin_clock(now);
    if (gw__ingest_event(d->ingest, project, ev, NULL, &err) != GW_OK)
        gw__log_warning("journal: an event of project \"%s\" accepted "
                        "before is refused at replay: %s", project, err.msg);
    gw__daemon_pin_clock(0);
}

static void
dm_replay_group(void *arg, uint64_t first, uint64_t last, const char *id)
{
    gw__daemon_t *d = arg;
    gw__table_t *t = gw__ingest_swap(d->ingest);

    if (t == NULL) {
        gw__journal_stored(d->journal, last);
        return;
    }
    if (id != NULL) {
        gw__store_flush_batch(d->store, t, id, first, last);
    } else {
        /* Never tried: a new id, recorded for first..last when tried. */
        char fresh[96];

        snprintf(fresh, sizeof(fresh), "%s:replay:%llu", d->id,
                 (unsigned long long) first);
        gw__store_flush_batch(d->store, t, fresh, first, last);
    }
    dm_when_seg_stored(d, last);
}

static int
dm_journal_start(gw__daemon_t *d)
{
    gw__journal_replay_t r;
    gw_error_t err;

    if (gw__journal_open(d->loop, d->cfg->journal,
                         d->cfg->journal_sync_always,
                         d->cfg->journal_retain, &d->journal,
                         &err) != GW_OK) {
        gw__log_error("%s", err.msg);
        return GW_ERR;
    }
    gw__store_set_journal(d->store, d->journal);
    r.arg = d;
    r.json = dm_replay_json;
    r.event = dm_replay_event;
    r.group = dm_replay_group;
    gw__journal_replay(d->journal, &r);
    gw__log_info("journal: %s, sync %s, stored segments kept %d s",
                 d->cfg->journal,
                 d->cfg->journal_sync_always ? "always (before every "
                                               "acknowledgement)"
                                             : "every FLUSH_INTERVAL",
                 d->cfg->journal_retain);
    return GW_OK;
}

/* ---- More ingest loops (INGEST_LOOPS) ---- */

/* One more ingest loop: a thread running its own libev loop, on which
 * transports that ask for it (host->loop_at) watch their sockets; what
 * they submit there goes into this loop's own table, which its own flush
 * timer hands to the storage thread (gw__store_flush is thread-safe; the
 * storage thread merges the tables of all loops into one batch). */
struct gw__worker_s {
    gw__daemon_t *d;
    struct ev_loop *loop;
    gw__ingest_t *ingest;
    gw__auth_t *auth;
    pthread_t thread;
    int running;
    ev_async stop;
    ev_timer flush;
    ev_prepare counts;
};

/* Before each wait for events: the counts this loop's submits kept. */
static void
dm_counts_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
    gw__host_flush_counts();
}

static __thread gw__ingest_t *dm_thread_ingest;
static __thread gw__auth_t *dm_thread_auth;

gw__ingest_t *
gw__daemon_ingest(gw__daemon_t *d)
{
    return dm_thread_ingest != NULL ? dm_thread_ingest : d->ingest;
}

gw__auth_t *
gw__daemon_auth(gw__daemon_t *d)
{
    const gw__config_t *cfg;

    if (dm_thread_auth == NULL)
        return d->auth;
    /* A worker takes up SIGHUP's config on its own thread. */
    cfg = __atomic_load_n(&d->cfg, __ATOMIC_ACQUIRE);
    if (gw__auth_config(dm_thread_auth) != cfg)
        gw__auth_set_config(dm_thread_auth, cfg);
    return dm_thread_auth;
}

struct ev_loop *
gw__daemon_loop_at(gw__daemon_t *d, int i)
{
    if (i == 0)
        return d->loop;
    if (i < 0 || (size_t) i > d->nworkers)
        return NULL;
    return d->workers[i - 1].loop;
}

static void
dm_worker_hand_over(gw__worker_t *w)
{
    gw__table_t *t = gw__ingest_swap(w->ingest);

    if (t != NULL && w->d->store != NULL) {
        __atomic_add_fetch(&DM(w->d)->events_flushed, gw__table_events(t),
                           __ATOMIC_RELAXED);
        gw__store_flush(w->d->store, t);
    } else {
        gw__table_free(t);
    }
}

static void
dm_worker_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    dm_worker_hand_over(w->data);
}

static void
dm_worker_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *
dm_worker_main(void *arg)
{
    gw__worker_t *w = arg;
    sigset_t all;

    /* Signals are the main loop's. */
    char name[16];

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    /* Named for top -H and ps -L: gw-ingest-1, gw-ingest-2, ... */
    snprintf(name, sizeof(name), "gw-ingest-%u",
             (unsigned) ((w - w->d->workers) + 1) % 100u);
    pthread_setname_np(pthread_self(), name);
    dm_thread_ingest = w->ingest;
    dm_thread_auth = w->auth;
    ev_run(w->loop, 0);
    gw__host_flush_counts();
    return NULL;
}

/* INGEST_LOOPS, with 0 (the default) read as one loop per CPU this process
 * may run on (its affinity: taskset and cgroups count), at most 8, and
 * one when a JOURNAL is kept (it is written by loop 0 alone). */
static int
dm_ingest_loops(const gw__config_t *cfg, int *cpus)
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

/* Creates the loops and their ingest states (before the transports, which
 * may watch sockets on them in start()). */
static int
dm_workers_create(gw__daemon_t *d)
{
    int cpus, loops = dm_ingest_loops(d->cfg, &cpus);
    size_t i, n = (size_t) loops - 1;

    if (d->cfg->ingest_loops == 0 && d->ingest != NULL)
        gw__log_info("INGEST_LOOPS = 0: %d ingest loop%s (%d CPU%s%s)", loops,
                     loops == 1 ? "" : "s", cpus, cpus == 1 ? "" : "s",
                     d->cfg->journal != NULL ? "; one with a JOURNAL" : "");

    if (n == 0 || d->ingest == NULL)
        return GW_OK;
    d->workers = calloc(n, sizeof(*d->workers));
    if (d->workers == NULL)
        return GW_ERR;
    d->registry = gw__ingest_new(&d->cfg->limits, NULL);
    gw__ingest_share(d->ingest, d->registry);
    for (i = 0; i < n; i++) {
        gw__worker_t *w = &d->workers[i];

        w->d = d;
        w->loop = ev_loop_new(EVFLAG_AUTO);
        if (w->loop == NULL) {
            gw__log_error("cannot create ingest loop %zu (libev)", i + 1);
            return GW_ERR;
        }
        d->nworkers++;
        w->ingest = gw__ingest_new(&d->cfg->limits, NULL);
        gw__ingest_share(w->ingest, d->registry);
        w->auth = gw__auth_new_sharing(d->cfg, d->auth);
        if (w->auth == NULL) {
            gw__log_error("out of memory for ingest loop %zu", i + 1);
            return GW_ERR;
        }
        ev_async_init(&w->stop, dm_worker_stop_cb);
        ev_async_start(w->loop, &w->stop);
        ev_timer_init(&w->flush, dm_worker_flush_cb,
                      d->cfg->flush_interval_ms / 1000.0,
                      d->cfg->flush_interval_ms / 1000.0);
        w->flush.data = w;
        ev_timer_start(w->loop, &w->flush);
        ev_prepare_init(&w->counts, dm_counts_cb);
        ev_prepare_start(w->loop, &w->counts);
    }
    return GW_OK;
}

/* Starts their threads (after the transports started). */
static int
dm_workers_start(gw__daemon_t *d)
{
    size_t i;
    int rc;

    for (i = 0; i < d->nworkers; i++) {
        gw__worker_t *w = &d->workers[i];

        rc = pthread_create(&w->thread, NULL, dm_worker_main, w);
        if (rc != 0) {
            gw__log_error("cannot start ingest loop %zu: %s", i + 1,
                          strerror(rc));
            return GW_ERR;
        }
        w->running = 1;
    }
    if (d->nworkers > 0 && d->cfg->ingest_loops > 0)
        gw__log_info("ingest loops: %zu (INGEST_LOOPS)", d->nworkers + 1);
    return GW_OK;
}

/* Stops their threads: afterwards their loops no longer run, so the main
 * thread may stop the transports' watchers on them. */
static void
dm_workers_stop(gw__daemon_t *d)
{
    size_t i;

    for (i = 0; i < d->nworkers; i++) {
        gw__worker_t *w = &d->workers[i];

        if (!w->running)
            continue;
        ev_async_send(w->loop, &w->stop);
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
}

/* Hands what the stopped loops aggregated to the storage thread. */
static void
dm_workers_flush(gw__daemon_t *d)
{
    size_t i;

    for (i = 0; i < d->nworkers; i++)
        dm_worker_hand_over(&d->workers[i]);
}

static void
dm_workers_free(gw__daemon_t *d)
{
    size_t i;

    for (i = 0; i < d->nworkers; i++) {
        gw__worker_t *w = &d->workers[i];

        ev_timer_stop(w->loop, &w->flush);
        ev_prepare_stop(w->loop, &w->counts);
        ev_async_stop(w->loop, &w->stop);
        ev_loop_destroy(w->loop);
        gw__ingest_free(w->ingest);
        gw__auth_free(w->auth);
    }
    free(d->workers);
    d->workers = NULL;
    d->nworkers = 0;
    gw__ingest_free(d->registry);
    d->registry = NULL;
}

/* ---- Loop callbacks ---- */

static void
dm_flush(gw__daemon_t *d)
{
    gw__table_t *t;
    uint64_t seg = 0;

    if (d->ingest == NULL || d->store == NULL)
        return;
    t = gw__ingest_swap(d->ingest);
    if (d->journal != NULL)
        seg = gw__journal_rotate(d->journal);
    if (t != NULL) {
        __atomic_add_fetch(&DM(d)->events_flushed, gw__table_events(t),
                           __ATOMIC_RELAXED);
        gw__store_flush_seg(d->store, t, seg);
    }
    if (seg != 0) {
        if (t != NULL)
            dm_when_seg_stored(d, seg);
        else
            gw__journal_stored(d->journal, seg);
    }
}

void
gw__daemon_flush(gw__daemon_t *d)
{
    dm_flush(d);
}

static void
dm_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    dm_flush(w->data);
}

static void
dm_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    gw__daemon_t *d = w->data;

    (void) revents;
    if (d->stopping)
        return;
    d->stopping = 1;
    gw__log_info("%s: stopping", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

static void
dm_reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    gw__daemon_t *d = w->data;
    dm_extra_t *x = DM(d);
    gw__config_t *cfg = calloc(1, sizeof(*cfg));
    gw_error_t err;

    (void) loop;
    (void) revents;
    if (gw__config_load(x->config_path, cfg, &err) != GW_OK) {
        gw__log_error("SIGHUP: %s; keeping the config loaded before",
                      err.msg);
        free(cfg);
        return;
    }
    x->reloaded = realloc(x->reloaded,
                          (x->nreloaded + 1) * sizeof(gw__config_t *));
    x->reloaded[x->nreloaded++] = cfg;
    /* The other loops' auth take it up at their next check. */
    __atomic_store_n(&d->cfg, cfg, __ATOMIC_RELEASE);
    if (d->auth != NULL)
        gw__auth_set_config(d->auth, cfg);
    gw__log_info("SIGHUP: reloaded %s: %zu projects, %zu users (projects, "
                 "keys and users take effect now; other settings at the "
                 "next start)", x->config_path, cfg->nprojects, cfg->nusers);
}

/* ---- Start and stop ---- */

/* The config holds every private key: warn when others may read it. */
static void
dm_check_config_mode(const char *path)
{
    struct stat st;

    if (path == NULL || stat(path, &st) != 0)
        return;
    if (st.st_mode & S_IROTH)
        gw__log_warning("%s is readable by every user (mode %04o) and holds "
                        "the projects' private keys; run chmod 600 %s",
                        path, (unsigned) (st.st_mode & 07777), path);
}

static void
dm_log_start(gw__daemon_t *d)
{
    char periods[128] = "";
    char where[300];
    size_t i;
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++) {
        if (d->cfg->periods & (1u << p)) {
            if (periods[0] != '\0')
                strcat(periods, ", ");
            strcat(periods, gw_period_name((gw_period_t) p));
        }
    }
    gw__log_info("storage \"%s\": plugin %s %s (ABI %u.%u) from %s; "
                 "periods: %s; flush every %d ms",
                 d->storage->name, d->storage->plugin->name,
                 d->storage->plugin->version,
                 (unsigned) d->storage->plugin->desc.abi_major,
                 (unsigned) d->storage->plugin->desc.abi_minor,
                 d->storage->plugin->path, periods, d->cfg->flush_interval_ms);
    for (i = 0; i < d->ntransports; i++) {
        gw__instance_t *t = d->transports[i];

        dm_describe(t, where, sizeof(where));
        gw__log_info("transport \"%s\": plugin %s %s (ABI %u.%u) from %s%s",
                     t->name, t->plugin->name, t->plugin->version,
                     (unsigned) t->plugin->desc.abi_major,
                     (unsigned) t->plugin->desc.abi_minor, t->plugin->path,
                     where);
    }
}

static int
dm_start(gw__daemon_t *d)
{
    gw_error_t err;
    size_t i;

    if (gw__store_start(d->loop, d->storage, &d->storage->plugin->storage,
                        d->storage->state, d->cfg->periods,
                        d->cfg->limits.max_pending_series, d->id, &d->store,
                        &err) != GW_OK) {
        gw__log_error("storage \"%s\": %s", d->storage->name, err.msg);
        return GW_ERR;
    }
    if ((d->roles & GW__ROLE_AGGREGATOR) && d->cfg->journal != NULL &&
        dm_journal_start(d) != GW_OK)
        return GW_ERR;
    if ((d->roles & GW__ROLE_AGGREGATOR) && dm_workers_create(d) != GW_OK)
        return GW_ERR;
    if (d->roles & GW__ROLE_AGGREGATOR) {
        dm_seed_kinds(d);
        for (i = 0; i < d->cfg->nbackends; i++) {
            gw__instance_t *t;

            if (dm_create(d, GW_PLUGIN_TRANSPORT, &d->cfg->backends[i], &t,
                          &err) != GW_OK) {
                gw__log_error("%s", err.msg);
                return GW_ERR;
            }
            d->transports[d->ntransports++] = t;
        }
        dm_log_start(d);
        for (i = 0; i < d->ntransports; i++) {
            gw__instance_t *t = d->transports[i];

            err.msg[0] = '\0';
            if (t->plugin->transport.start(t->state, &err) != GW_OK) {
                gw__log_error("transport \"%s\" could not start: %s", t->name,
                              err.msg[0] ? err.msg : "no reason given");
                return GW_ERR;
            }
            t->started = 1;
        }
        if (d->ntransports == 0)
            gw__log_warning("BACKENDS lists no transports: this aggregator "
                            "receives nothing");
        if (d->cfg->nprojects == 0)
            gw__log_warning("PROJECTS is empty: every event will be refused");
    } else {
        dm_log_start(d);
    }
    if (d->roles & GW__ROLE_SERVER) {
        const char *host =
            d->server_host != NULL ? d->server_host : d->cfg->server_host;
        int port = d->server_port > 0 ? d->server_port : d->cfg->server_port;

        if (gw__api_start(d, host, port, &d->api, &err) != GW_OK) {
            gw__log_error("server could not start on %s:%d: %s", host, port,
                          err.msg);
            return GW_ERR;
        }
    }
    ev_timer_init(&d->flush_timer, dm_flush_cb,
                  d->cfg->flush_interval_ms / 1000.0,
                  d->cfg->flush_interval_ms / 1000.0);
    d->flush_timer.data = d;
    ev_timer_start(d->loop, &d->flush_timer);
    return dm_workers_start(d);
}

/* Stops and frees everything that was started; returns the events not
 * stored. */
static void
dm_stop(gw__daemon_t *d)
{
    dm_extra_t *x = DM(d);
    gw__store_stats_t st;
    uint64_t lost = 0, accepted = 0;
    size_t i;

    memset(&st, 0, sizeof(st));
    ev_timer_stop(d->loop, &d->flush_timer);
    dm_workers_stop(d);
    /* Requests waiting for the journal are answered before the transports
     * close their connections. */
    if (d->journal != NULL)
        gw__journal_commit(d->journal);
    for (i = 0; i < d->ntransports; i++) {
        gw__instance_t *t = d->transports[i];

        if (t->started) {
            t->plugin->transport.stop(t->state);
            t->started = 0;
        }
    }
    ev_prepare_stop(d->loop, &d->count_flush);
    gw__host_flush_counts();
    for (i = 0; i < d->ntransports; i++)
        accepted += gw__metrics_get(d->transports[i]->name,
                                    GW_COUNTER_ACCEPTED, NULL);
    if (d->api != NULL) {
        gw__api_stop(d->api);
        d->api = NULL;
    }
    if (d->store != NULL) {
        dm_workers_flush(d);
        dm_flush(d);
        lost = gw__store_close_stats(d->store, d->cfg->shutdown_timeout_ms,
                                     &st);
        d->store = NULL;
    }
    if (d->journal != NULL) {
        if (lost > 0)
            gw__log_notice("journal: the %llu events not stored stay in %s "
                           "and are replayed at the next start",
                           (unsigned long long) lost, d->cfg->journal);
        gw__journal_close(d->journal);
        d->journal = NULL;
    }
    for (i = 0; i < d->ntransports; i++)
        dm_instance_free(d->transports[i]);
    d->ntransports = 0;
    dm_workers_free(d);
    dm_instance_free(d->storage);
    d->storage = NULL;
    if (d->roles & GW__ROLE_AGGREGATOR)
        gw__log_info("stopped: %llu events accepted, %llu stored in %llu "
                     "batches, %llu dropped, %llu not stored",
                     (unsigned long long) accepted,
                     (unsigned long long) st.events_stored,
                     (unsigned long long) st.batches_stored,
                     (unsigned long long) st.events_dropped,
                     (unsigned long long) lost);
    else
        gw__log_info("stopped");
    (void) x;
}

static void
dm_free(gw__daemon_t *d)
{
    dm_extra_t *x = DM(d);
    size_t i;

    if (d->ingest != NULL)
        gw__ingest_free(d->ingest);
    if (d->auth != NULL)
        gw__auth_free(d->auth);
    gw__loader_free(&d->loader);
    free(d->transports);
    for (i = 0; i < x->nreloaded; i++) {
        gw__config_free(x->reloaded[i]);
        free(x->reloaded[i]);
    }
    free(x->reloaded);
    free(x);
}

int
gw__daemon_run(const char *config_path, gw__config_t *cfg,
               const gw__run_opts_t *opts)
{
    dm_extra_t *x = calloc(1, sizeof(*x));
    gw__daemon_t *d = &x->d;
    gw_error_t err;
    int rc = 1;

    x->config_path = config_path;
    d->cfg = cfg;
    d->roles = opts->roles;
    d->server_host = opts->server_host;
    d->server_port = opts->server_port;
    d->loop = ev_default_loop(EVFLAG_AUTO);
    if (d->loop == NULL) {
        gw__log_error("cannot create the event loop (libev)");
        free(x);
        return 1;
    }
    if (!(ev_version_major() == EV_VERSION_MAJOR &&
          ev_version_minor() >= EV_VERSION_MINOR))
        gw__log_warning("libev %d.%d is older than the %d.%d this daemon was "
                        "built with", ev_version_major(), ev_version_minor(),
                        EV_VERSION_MAJOR, EV_VERSION_MINOR);
    signal(SIGPIPE, SIG_IGN);
    dm_random_id(d->id, sizeof(d->id));
    dm_loader_init(d, opts);
    d->transports = calloc(cfg->nbackends + 1, sizeof(gw__instance_t *));
    d->auth = gw__auth_new(cfg, NULL);
    if (d->roles & GW__ROLE_AGGREGATOR)
        d->ingest = gw__ingest_new(&cfg->limits, cfg->journal != NULL
                                                     ? gw__daemon_clock
                                                     : NULL);
    gw__log_info("gottwall %s (plugin ABI %d.%d) starting as %s with %s "
                 "(process id %s)", PACKAGE_VERSION, GW_PLUGIN_ABI_MAJOR,
                 GW_PLUGIN_ABI_MINOR,
                 d->roles == (GW__ROLE_AGGREGATOR | GW__ROLE_SERVER)
                     ? "aggregator and server"
                     : (d->roles & GW__ROLE_SERVER ? "server" : "aggregator"),
                 config_path, d->id);

    dm_check_config_mode(config_path);

    /* Signals first: a SIGTERM during a slow start-up stops it cleanly. */
    ev_signal_init(&d->sig_term, dm_stop_cb, SIGTERM);
    ev_signal_init(&d->sig_int, dm_stop_cb, SIGINT);
    ev_signal_init(&d->sig_hup, dm_reload_cb, SIGHUP);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    ev_signal_start(d->loop, &d->sig_term);
    ev_signal_start(d->loop, &d->sig_int);
    ev_signal_start(d->loop, &d->sig_hup);
    ev_prepare_init(&d->count_flush, dm_counts_cb);
    ev_prepare_start(d->loop, &d->count_flush);
    if (dm_create(d, GW_PLUGIN_STORAGE, &cfg->storage, &d->storage, &err) !=
        GW_OK) {
        gw__log_error("%s", err.msg);
        goto out;
    }
    if (dm_start(d) != GW_OK)
        goto out;
    if (!d->stopping) {
        gw__log_info("ready");
        ev_run(d->loop, 0);
    }
    rc = 0;
out:
    ev_signal_stop(d->loop, &d->sig_term);
    ev_signal_stop(d->loop, &d->sig_int);
    ev_signal_stop(d->loop, &d->sig_hup);
    dm_stop(d);
    dm_free(d);
    return rc;
}

int
gw__daemon_check(gw__config_t *cfg, const gw__run_opts_t *opts)
{
    dm_extra_t *x = calloc(1, sizeof(*x));
    gw__daemon_t *d = &x->d;
    gw__instance_t *inst = NULL;
    gw_error_t err;
    size_t i;
    int rc = 1, prc;

    d->cfg = cfg;
    d->roles = opts->roles;
    d->loop = ev_loop_new(EVFLAG_AUTO);
    dm_loader_init(d, opts);
    if (dm_create(d, GW_PLUGIN_STORAGE, &cfg->storage, &inst, &err) !=
        GW_OK) {
        gw__log_error("%s", err.msg);
        goto out;
    }
    gw__log_info("storage \"%s\": plugin %s %s from %s: created",
                 inst->name, inst->plugin->name, inst->plugin->version,
                 inst->plugin->path);
    err.msg[0] = '\0';
    prc = inst->plugin->storage.ping != NULL
              ? inst->plugin->storage.ping(inst->state, &err)
              : GW_OK;
    if (prc != GW_OK) {
        gw__log_error("storage \"%s\" does not answer: %s", inst->name,
                      err.msg[0] ? err.msg : "no reason given");
        goto out;
    }
    gw__log_info("storage \"%s\": answers", inst->name);
    for (i = 0; i < cfg->nbackends; i++) {
        gw__instance_t *t;

        if (dm_create(d, GW_PLUGIN_TRANSPORT, &cfg->backends[i], &t, &err) !=
            GW_OK) {
            gw__log_error("%s", err.msg);
            goto out;
        }
        gw__log_info("transport \"%s\": plugin %s %s from %s: created",
                     t->name, t->plugin->name, t->plugin->version,
                     t->plugin->path);
        dm_instance_free(t);
    }
    rc = 0;
out:
    dm_instance_free(inst);
    gw__loader_free(&d->loader);
    ev_loop_destroy(d->loop);
    free(x);
    return rc;
}
