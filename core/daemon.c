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

#include <ev.h>
#include <openssl/rand.h>

#include "base/conf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "daemon.h"
#include "host.h"
#include "ingest/ingest.h"
#include "journal.h"
#include "loader.h"
#include "net/auth.h"
#include "server/server.h"
#include "seed.h"
#include "store.h"
#include "workers.h"
#include "claim.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* The roles a process runs besides the aggregator, started in this order
 * after the storage and the transports, stopped in the reverse order. */
static const struct {
    unsigned role;
    const gw__role_t *hooks;
} dm_roles[] = {
    {GW__ROLE_SERVER, &gw__server_role},
};
#define DM_NROLES (sizeof(dm_roles) / sizeof(dm_roles[0]))

struct gw__daemon_s {
    struct ev_loop *loop;
    gw__config_t *cfg;           /* written by SIGHUP with __atomic_store */
    const char *config_path;
    unsigned roles;
    gw__loader_t loader;
    gw__auth_t *auth;            /* loop 0's */
    gw__ingest_t *ingest;        /* loop 0's; aggregator role */
    gw__instance_t *storage;
    gw__store_t *store;
    gw__claims_t *claims;        /* the shared replay cache (claim.h) */
    gw__instance_t **transports;
    size_t ntransports;
    gw__server_env_t env;        /* what the other roles see of the process */
    void *role_state[DM_NROLES]; /* each started role's */
    char id[40];                 /* random per process: batch ids */
    ev_timer flush_timer;
    ev_prepare count_flush;      /* gw__host_flush_counts, each iteration */
    ev_signal sig_term, sig_int, sig_hup;
    int stopping;
    /* Overrides from the command line (server start -h/-p). */
    const char *server_host;
    int server_port;
    gw__journal_t *journal;      /* JOURNAL, or NULL */
    /* INGEST_LOOPS - 1 more ingest loops (core/workers.h), or NULL. */
    gw__workers_t *workers;
    /* Configs loaded by SIGHUP; freed at exit (plugins keep pointers into
     * the first one, and in-flight requests may still read the last
     * ones). */
    gw__config_t **reloaded;
    size_t nreloaded;
    uint64_t events_flushed;     /* added to by every ingest loop */
    uint64_t pending_logged;     /* MAX_PENDING_SERIES refusals logged */
    double pending_log_at;       /* when, monotonic */
    int replay_failed;           /* out of memory while replaying */
};

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
    inst = gw__instance_new(d, plugin, pc->instance, pc->section);
    if (inst == NULL)
        return gw_error_set(err, "%s \"%s\": out of memory",
                            gw__loader_kind_name(kind), pc->instance);
    e.msg[0] = '\0';
    if (kind == GW_PLUGIN_STORAGE)
        rc = plugin->storage.create(&inst->ctx, &inst->state, &e);
    else
        rc = plugin->transport.create(&inst->ctx, &inst->state, &e);
    if (rc != GW_OK) {
        inst->state = NULL;
        gw__instance_free(inst);
        return gw_error_set(err, "%s \"%s\": %s", gw__loader_kind_name(kind),
                            pc->instance, e.msg[0] ? e.msg : "create failed");
    }
    *out = inst;
    return GW_OK;
}

static int
dm_loader_init(gw__daemon_t *d, const gw__run_opts_t *opts)
{
    size_t n = d->cfg->nplugin_path + (opts != NULL ? opts->nplugin_dirs : 0);
    char **dirs = calloc(n + 1, sizeof(char *));
    size_t i, k = 0;

    if (dirs == NULL)
        return GW_ERR;
    for (i = 0; i < d->cfg->nplugin_path; i++)
        dirs[k++] = d->cfg->plugin_path[i];
    for (i = 0; opts != NULL && i < opts->nplugin_dirs; i++)
        dirs[k++] = opts->plugin_dirs[i];
    gw__loader_init(&d->loader, dirs, k);
    free(dirs);
    return GW_OK;
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

/* ---- The journal ---- */

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

    if (s != NULL) {
        s->d = d;
        s->seq = seq;
        if (gw__store_when_stored(d->store, dm_seg_stored, s) == GW_OK)
            return;
        free(s);
    }
    /* Not marked stored: the segment stays and is replayed at the next
     * start (where the storage skips a batch it already applied). */
    gw__log_error("journal: out of memory: segment %llu is kept",
                  (unsigned long long) seq);
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

    if (gw__ingest_json_at(d->ingest, now, project, action, json, len,
                           (flags & GW_SUBMIT_BATCH) != 0, NULL, NULL,
                           &err) != GW_OK)
        gw__log_warning("journal: a request of project \"%s\" accepted "
                        "before is refused at replay: %s", project, err.msg);
}

static void
dm_replay_event(void *arg, double now, const char *project,
                const gw_event_t *ev)
{
    gw__daemon_t *d = arg;
    gw_error_t err;

    if (gw__ingest_event_at(d->ingest, now, project, ev, NULL, &err) != GW_OK)
        gw__log_warning("journal: an event of project \"%s\" accepted "
                        "before is refused at replay: %s", project, err.msg);
}

static void
dm_replay_group(void *arg, uint64_t first, uint64_t last, const char *id)
{
    gw__daemon_t *d = arg;
    gw__table_t *t = gw__ingest_swap(d->ingest);
    char fresh[96];

    if (d->replay_failed) {
        gw__table_free(t);
        return;
    }
    if (t == NULL) {
        gw__journal_stored(d->journal, last);
        return;
    }
    if (id == NULL) {
        /* Never tried: a new id, recorded for first..last when tried. */
        snprintf(fresh, sizeof(fresh), "%s:replay:%llu", d->id,
                 (unsigned long long) first);
        id = fresh;
    }
    if (gw__store_flush_batch(d->store, t, id, first, last) != GW_OK) {
        /* At start-up: stop; the segments stay for the next start. */
        gw__log_error("journal: out of memory replaying segments %llu-%llu",
                      (unsigned long long) first, (unsigned long long) last);
        gw__table_free(t);
        d->replay_failed = 1;
        return;
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
    /* What the journal holds was accepted: no limit refuses it now. */
    gw__ingest_set_replaying(d->ingest, 1);
    gw__journal_replay(d->journal, &r);
    gw__ingest_set_replaying(d->ingest, 0);
    if (d->replay_failed)
        return GW_ERR;
    gw__log_info("journal: %s, sync %s, stored segments kept %d s",
                 d->cfg->journal,
                 d->cfg->journal_sync_always ? "always (before every "
                                               "acknowledgement)"
                                             : "every FLUSH_INTERVAL",
                 d->cfg->journal_retain);
    return GW_OK;
}

/* ---- What the host table and the other roles see ---- */

struct ev_loop *
gw__daemon_loop(const gw__daemon_t *d)
{
    return d->loop;
}

const gw__config_t *
gw__daemon_config(const gw__daemon_t *d)
{
    return __atomic_load_n(&d->cfg, __ATOMIC_ACQUIRE);
}

int
gw__daemon_loops(const gw__daemon_t *d)
{
    return (int) gw__workers_count(d->workers) + 1;
}

struct ev_loop *
gw__daemon_loop_at(const gw__daemon_t *d, int i)
{
    if (i == 0)
        return d->loop;
    if (i < 0)
        return NULL;
    return gw__workers_loop(d->workers, (size_t) i - 1);
}

int
gw__daemon_post(const gw__daemon_t *d, int i, gw__post_t *p)
{
    if (i < 1)
        return GW_ERR;
    return gw__workers_post(d->workers, (size_t) i - 1, p);
}

gw__ingest_t *
gw__daemon_ingest(gw__daemon_t *d)
{
    gw__ingest_t *ing = gw__workers_ingest();

    return ing != NULL ? ing : d->ingest;
}

gw__claims_t *
gw__daemon_claims(const gw__daemon_t *d)
{
    return d->claims;
}

gw__auth_t *
gw__daemon_auth(gw__daemon_t *d)
{
    gw__auth_t *a = gw__workers_auth(gw__daemon_config(d));

    return a != NULL ? a : d->auth;
}

gw__journal_t *
gw__daemon_journal(const gw__daemon_t *d)
{
    return d->journal;
}

/* An extra loop did its part of a flush tick (its thread). */
static void
dm_loop_flushed(void *arg)
{
    gw__daemon_t *d = arg;

    if (d->store != NULL)
        gw__store_release(d->store);
}

/* A table taken out of an extra ingest loop goes to the storage thread.
 * That loop's thread. GW_ERR: out of memory, the loop keeps the table. */
static int
dm_hand_over(void *arg, gw__table_t *t)
{
    gw__daemon_t *d = arg;
    uint64_t events = gw__table_events(t);

    if (d->store == NULL) {
        gw__table_free(t);
        return GW_OK;
    }
    /* events was read before: the storage thread may free t at once. */
    if (gw__store_flush(d->store, t) != GW_OK) {
        gw__log_error("out of memory handing %llu events to the storage "
                      "thread: kept for the next flush",
                      (unsigned long long) events);
        return GW_ERR;
    }
    __atomic_add_fetch(&d->events_flushed, events, __ATOMIC_RELAXED);
    return GW_OK;
}

/* The server role's view of the process (server/server.h). */
static const gw__config_t *
dm_env_config(void *ctx)
{
    return gw__daemon_config(ctx);
}

static gw__auth_t *
dm_env_auth(void *ctx)
{
    return ((gw__daemon_t *) ctx)->auth;
}

static int
dm_env_storage_call(void *ctx, gw__server_job_fn job, gw__server_done_fn done,
                    void *arg)
{
    gw__daemon_t *d = ctx;

    if (d->store == NULL)
        return GW_ERR;
    return gw__store_call(d->store, job, done, arg);
}

/* The read API's claim of the nonce its last auth check accepted. */
static int
dm_env_auth_claim(void *ctx, void (*fn)(void *arg, int ok), void *arg)
{
    gw__daemon_t *d = ctx;
    const char *project;
    char nonce[72];
    size_t len;
    double exp;

    if (!gw__auth_last_nonce(d->auth, &project, nonce, &len, &exp)) {
        fn(arg, 1);
        return GW_OK;
    }
    return gw__claims_claim(d->claims, "server", project, nonce, len, exp,
                            fn, arg);
}

/* The storage removes old buckets itself (ABI 1.4's expire). */
static int
dm_can_expire(const gw__instance_t *storage)
{
    return storage->plugin->desc.abi_minor >= 4 &&
           storage->plugin->storage.expire != NULL;
}

/* cfg's RETENTION to the storage thread (at start, and on SIGHUP), and
 * what it will do to the log. */
static void
dm_apply_retention(gw__daemon_t *d, const gw__config_t *cfg)
{
    gw__store_set_retention(d->store, cfg->retention,
                            cfg->retention_interval);
    gw__store_log_retention(cfg, d->storage->name, dm_can_expire(d->storage),
                            1);
}

static int
dm_env_storage_stats(void *ctx, gw__server_storage_t *out)
{
    gw__daemon_t *d = ctx;
    gw__store_stats_t st;

    if (d->store == NULL)
        return 0;
    if (out == NULL)
        return 1;
    gw__store_stats(d->store, &st);
    out->batches_stored = st.batches_stored;
    out->events_stored = st.events_stored;
    out->events_dropped = st.events_dropped;
    out->store_errors = st.store_errors;
    out->pending_series = st.pending_series;
    out->last_flush_seconds = st.last_flush_seconds;
    out->down = st.down;
    memcpy(out->skipped, st.skipped, sizeof(out->skipped));
    out->expiry_passes = st.expiry_passes;
    out->expiry_errors = st.expiry_errors;
    out->last_expiry_seconds = st.last_expiry_seconds;
    out->can_expire = d->cfg->retention_set && dm_can_expire(d->storage);
    return 1;
}

static void
dm_env_flush_counts(void *ctx)
{
    (void) ctx;
    gw__host_flush_counts();
}

static void
dm_env_init(gw__daemon_t *d)
{
    d->env.ctx = d;
    d->env.loop = d->loop;
    d->env.aggregator = (d->roles & GW__ROLE_AGGREGATOR) != 0;
    d->env.config = dm_env_config;
    d->env.auth = dm_env_auth;
    d->env.storage_call = dm_env_storage_call;
    d->env.storage_stats = dm_env_storage_stats;
    d->env.flush_counts = dm_env_flush_counts;
    d->env.auth_claim = dm_env_auth_claim;
}

/* Creates the extra ingest loops (before the transports, which may watch
 * sockets on them in start()). */
static int
dm_workers_create(gw__daemon_t *d)
{
    int cpus, loops = gw__workers_wanted(d->cfg, &cpus);

    if (d->cfg->ingest_loops == 0 && d->ingest != NULL)
        gw__log_info("INGEST_LOOPS = 0: %d ingest loop%s (%d CPU%s%s)", loops,
                     loops == 1 ? "" : "s", cpus, cpus == 1 ? "" : "s",
                     d->cfg->journal != NULL ? "; one with a JOURNAL" : "");
    if (d->ingest == NULL)
        return GW_OK;
    /* ABI 1.5: the zero-filled copy of an older plugin's ops keeps none. */
    gw__ingest_set_storage_kinds(d->ingest, d->storage->plugin->storage.kinds,
                                 d->storage->name);
    if (gw__workers_create((size_t) loops - 1, d->cfg, d->ingest, d->auth,
                           dm_hand_over, d, &d->workers) != GW_OK)
        return GW_ERR;
    gw__workers_on_flushed(d->workers, dm_loop_flushed);
    return GW_OK;
}

/* ---- Loop callbacks ---- */

/* Hands loop 0's table to the storage thread; out of memory, the table
 * stays loop 0's and goes out with the next flush. */
static void
dm_flush(gw__daemon_t *d)
{
    gw__table_t *t;
    uint64_t seg = 0, events;

    if (d->ingest == NULL || d->store == NULL)
        return;
    t = gw__ingest_swap(d->ingest);
    if (t == NULL) {
        /* An empty segment: nothing to wait for. */
        if (d->journal != NULL && (seg = gw__journal_rotate(d->journal)) != 0)
            gw__journal_stored(d->journal, seg);
        return;
    }
    /* Counted before the hand-over: the storage thread may free t at
     * once. */
    events = gw__table_events(t);
    if (gw__store_flush_seg(d->store, t, &seg) != GW_OK) {
        gw__ingest_unswap(d->ingest, t);
        gw__log_error("out of memory handing %llu events to the storage "
                      "thread: kept for the next flush",
                      (unsigned long long) events);
        return;
    }
    __atomic_add_fetch(&d->events_flushed, events, __ATOMIC_RELAXED);
    if (seg != 0)
        dm_when_seg_stored(d, seg);
}

typedef struct dm_stored_s {
    void (*fn)(void *arg, int ok);
    void *arg;
} dm_stored_t;

static void
dm_stored_done(void *arg, int rc, const gw_error_t *err)
{
    dm_stored_t *s = arg;

    (void) err;
    s->fn(s->arg, rc == GW_OK);
    free(s);
}

int
gw__daemon_when_stored(gw__daemon_t *d, void (*done)(void *arg, int ok),
                       void *arg, gw_error_t *err)
{
    dm_stored_t *s;

    if (d->store == NULL || d->ingest == NULL)
        return gw_error_set(err, "this process has no storage to wait for");
    s = malloc(sizeof(*s));
    if (s == NULL)
        return gw_error_set(err, "out of memory");
    s->fn = done;
    s->arg = arg;
    /* Hand over what is aggregated now so that the wait is short. */
    dm_flush(d);
    if (gw__store_when_stored(d->store, dm_stored_done, s) != GW_OK) {
        free(s);
        return gw_error_set(err, "out of memory");
    }
    return GW_OK;
}

/* Says, at most once every 10 s, that MAX_PENDING_SERIES refuses new
 * series: the one place an operator sees why clients get 503. */
static void
dm_log_pending(gw__daemon_t *d)
{
    gw__pending_t *p = gw__store_pending(d->store);
    uint64_t n = __atomic_load_n(&p->refusals, __ATOMIC_RELAXED);
    double now = ev_now(d->loop);
    gw__store_stats_t st;

    if (n == d->pending_logged ||
        (d->pending_log_at != 0 && now - d->pending_log_at < 10))
        return;
    gw__store_stats(d->store, &st);
    gw__log_warning("MAX_PENDING_SERIES (%zu) reached%s: %llu requests with "
                    "new series refused (HTTP 503, counted as "
                    "max_pending_series); they are taken again once the "
                    "storage catches up", d->cfg->limits.max_pending_series,
                    st.down ? " while the storage is unreachable" : "",
                    (unsigned long long) (n - d->pending_logged));
    d->pending_logged = n;
    d->pending_log_at = now;
}

static void
dm_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    gw__daemon_t *d = w->data;

    (void) loop;
    (void) revents;
    if (d->store == NULL)
        return;
    /* While the storage is down the table stays the loop's, so that events
     * of series it holds keep being taken at MAX_PENDING_SERIES (their keys
     * need no more room); a journal's segment then grows until the
     * storage is back. Waiting for storage and stopping still hand over. */
    if (!__atomic_load_n(&gw__store_pending(d->store)->down,
                         __ATOMIC_RELAXED)) {
        /* Every loop's table of this tick in one batch: held until each
         * extra loop handed its own over (dm_loop_flushed). */
        int n = (int) gw__workers_count(d->workers), asked;

        gw__store_hold(d->store, n);
        dm_flush(d);
        /* A loop busy since the last tick was not asked: not waited for. */
        for (asked = gw__workers_tick(d->workers); asked < n; asked++)
            gw__store_release(d->store);
    }
    dm_log_pending(d);
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

static int dm_check_placeholders(const gw__config_t *cfg, unsigned roles,
                                 const char *server_host);

static void
dm_reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    gw__daemon_t *d = w->data;
    gw__config_t *cfg = calloc(1, sizeof(*cfg));
    gw__config_t **more;
    gw_error_t err;

    (void) loop;
    (void) revents;
    more = realloc(d->reloaded, (d->nreloaded + 1) * sizeof(gw__config_t *));
    if (cfg == NULL || more == NULL) {
        gw__log_error("SIGHUP: out of memory; keeping the config loaded "
                      "before");
        free(cfg);
        return;
    }
    d->reloaded = more;
    if (gw__config_load(d->config_path, cfg, &err) != GW_OK) {
        gw__log_error("SIGHUP: %s; keeping the config loaded before",
                      err.msg);
        free(cfg);
        return;
    }
    if (dm_check_placeholders(cfg, d->roles, d->server_host) != GW_OK) {
        gw__log_error("SIGHUP: a placeholder secret (above) with a listener "
                      "off loopback; keeping the config loaded before");
        gw__config_free(cfg);
        free(cfg);
        return;
    }
    d->reloaded[d->nreloaded++] = cfg;
    /* The other loops' auth take it up at their next check. */
    __atomic_store_n(&d->cfg, cfg, __ATOMIC_RELEASE);
    if (d->auth != NULL)
        gw__auth_set_config(d->auth, cfg);
    gw__log_info("SIGHUP: reloaded %s: %zu projects, %zu users (projects, "
                 "keys, users and RETENTION take effect now; other settings "
                 "at the next start)", d->config_path, cfg->nprojects,
                 cfg->nusers);
    /* Reads refuse by the new RETENTION at once: the expiry follows. */
    if (d->store != NULL)
        dm_apply_retention(d, cfg);
}

/* ---- Start and stop ---- */

static void
dm_placeholder_log(void *arg, int fatal, const char *msg)
{
    (void) arg;
    if (fatal)
        gw__log_error("%s", msg);
    else
        gw__log_warning("%s", msg);
}

/* The example's placeholder secrets: refused (GW_ERR) when a listener of
 * the roles that run is not on loopback, else a warning each. */
static int
dm_check_placeholders(const gw__config_t *cfg, unsigned roles,
                      const char *server_host)
{
    if (server_host == NULL)
        server_host = cfg->server_host;
    return gw__config_placeholders(cfg, (roles & GW__ROLE_SERVER) ? server_host
                                                                  : NULL,
                                   (roles & GW__ROLE_AGGREGATOR) != 0,
                                   dm_placeholder_log, NULL) > 0
               ? GW_ERR
               : GW_OK;
}

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

/* Starts each role of dm_roles the process runs. */
static int
dm_roles_start(gw__daemon_t *d)
{
    const char *host =
        d->server_host != NULL ? d->server_host : d->cfg->server_host;
    int port = d->server_port > 0 ? d->server_port : d->cfg->server_port;
    gw_error_t err;
    size_t i;

    dm_env_init(d);
    for (i = 0; i < DM_NROLES; i++) {
        if (!(d->roles & dm_roles[i].role))
            continue;
        err.msg[0] = '\0';
        if (dm_roles[i].hooks->start(&d->env, host, port, &d->role_state[i],
                                     &err) != GW_OK) {
            gw__log_error("%s could not start on %s:%d: %s",
                          dm_roles[i].hooks->name, host, port, err.msg);
            return GW_ERR;
        }
    }
    return GW_OK;
}

static void
dm_roles_stop(gw__daemon_t *d)
{
    size_t i = DM_NROLES;

    while (i-- > 0) {
        if (d->role_state[i] != NULL)
            dm_roles[i].hooks->stop(d->role_state[i]);
        d->role_state[i] = NULL;
    }
}

static int
dm_start(gw__daemon_t *d)
{
    gw_error_t err;
    size_t i;

    if (gw__store_start(d->loop, d->storage->prefix,
                        &d->storage->plugin->storage,
                        d->storage->state, d->cfg->periods,
                        d->cfg->limits.max_pending_series, d->id, &d->store,
                        &err) != GW_OK) {
        gw__log_error("storage \"%s\": %s", d->storage->name, err.msg);
        return GW_ERR;
    }
    if (d->ingest != NULL)
        gw__ingest_set_pending(d->ingest, gw__store_pending(d->store));
    dm_apply_retention(d, d->cfg);
    /* The zero-filled copy of an older plugin's ops has no nonce_claim;
     * its declared minor says so too. */
    d->claims = gw__claims_new(
        d->store,
        d->storage->plugin->desc.abi_minor >= 3
            && d->storage->plugin->storage.nonce_claim != NULL,
        d->storage->name);
    if (d->claims == NULL) {
        gw__log_error("out of memory at start-up");
        return GW_ERR;
    }
    if ((d->roles & GW__ROLE_AGGREGATOR) && d->cfg->journal != NULL &&
        dm_journal_start(d) != GW_OK)
        return GW_ERR;
    if ((d->roles & GW__ROLE_AGGREGATOR) && dm_workers_create(d) != GW_OK)
        return GW_ERR;
    if ((d->roles & GW__ROLE_AGGREGATOR) &&
        gw__seed_run(d->loop, d->store, d->ingest, d->cfg, &d->stopping) !=
            GW_OK)
        return GW_ERR;
    if (d->roles & GW__ROLE_AGGREGATOR) {
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
    if (dm_roles_start(d) != GW_OK)
        return GW_ERR;
    ev_timer_init(&d->flush_timer, dm_flush_cb,
                  d->cfg->flush_interval_ms / 1000.0,
                  d->cfg->flush_interval_ms / 1000.0);
    d->flush_timer.data = d;
    ev_timer_start(d->loop, &d->flush_timer);
    return gw__workers_start(d->workers);
}

/* Stops and frees everything that was started; returns the events not
 * stored. */
static void
dm_stop(gw__daemon_t *d)
{
    gw__store_stats_t st;
    uint64_t lost = 0, accepted = 0;
    size_t i;

    memset(&st, 0, sizeof(st));
    ev_timer_stop(d->loop, &d->flush_timer);
    gw__workers_stop(d->workers);
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
    dm_roles_stop(d);
    if (d->store != NULL) {
        /* What every loop holds, in one batch. */
        gw__store_hold(d->store, 1);
        gw__workers_flush(d->workers);
        dm_flush(d);
        gw__store_release(d->store);
        gw__claims_stopping(d->claims);
        lost = gw__store_close_stats(d->store, d->cfg->shutdown_timeout_ms,
                                     &st);
        d->store = NULL;
    }
    /* Every claim had its answer in the close. */
    gw__claims_free(d->claims);
    d->claims = NULL;
    if (d->journal != NULL) {
        if (lost > 0)
            gw__log_notice("journal: the %llu events not stored stay in %s "
                           "and are replayed at the next start",
                           (unsigned long long) lost, d->cfg->journal);
        gw__journal_close(d->journal);
        d->journal = NULL;
    }
    for (i = 0; i < d->ntransports; i++)
        gw__instance_free(d->transports[i]);
    d->ntransports = 0;
    gw__workers_free(d->workers);
    d->workers = NULL;
    gw__instance_free(d->storage);
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
}

gw__daemon_t *
gw__daemon_new(gw__config_t *cfg, const gw__run_opts_t *opts,
               struct ev_loop *loop)
{
    gw__daemon_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->cfg = cfg;
    d->loop = loop;
    d->roles = opts->roles;
    d->server_host = opts->server_host;
    d->server_port = opts->server_port;
    dm_random_id(d->id, sizeof(d->id));
    if (dm_loader_init(d, opts) != GW_OK ||
        (d->transports = calloc(cfg->nbackends + 1,
                                sizeof(gw__instance_t *))) == NULL ||
        (d->auth = gw__auth_new(cfg, opts->now)) == NULL ||
        ((d->roles & GW__ROLE_AGGREGATOR) &&
         (d->ingest = gw__ingest_new(&cfg->limits, opts->now)) == NULL)) {
        gw__daemon_free(d);
        return NULL;
    }
    if (d->roles & GW__ROLE_AGGREGATOR) {
        /* Shown at 0 from the start, so a rate() or an alert has them. */
        gw__metrics_count(GW__SATURATED_AGGREGATOR, GW_COUNTER_SATURATED,
                          NULL, 0);
        gw__metrics_count(GW__SATURATED_STORAGE, GW_COUNTER_SATURATED, NULL,
                          0);
    }
    return d;
}

void
gw__daemon_free(gw__daemon_t *d)
{
    size_t i;

    if (d == NULL)
        return;
    if (d->ingest != NULL)
        gw__ingest_free(d->ingest);
    if (d->auth != NULL)
        gw__auth_free(d->auth);
    gw__loader_free(&d->loader);
    free(d->transports);
    for (i = 0; i < d->nreloaded; i++) {
        gw__config_free(d->reloaded[i]);
        free(d->reloaded[i]);
    }
    free(d->reloaded);
    free(d);
}

int
gw__daemon_run(const char *config_path, gw__config_t *cfg,
               const gw__run_opts_t *opts)
{
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    gw__daemon_t *d;
    gw_error_t err;
    int rc = 1;

    if (loop == NULL) {
        gw__log_error("cannot create the event loop (libev)");
        return 1;
    }
    if (!(ev_version_major() == EV_VERSION_MAJOR &&
          ev_version_minor() >= EV_VERSION_MINOR))
        gw__log_warning("libev %d.%d is older than the %d.%d this daemon was "
                        "built with", ev_version_major(), ev_version_minor(),
                        EV_VERSION_MAJOR, EV_VERSION_MINOR);
    d = gw__daemon_new(cfg, opts, loop);
    if (d == NULL) {
        gw__log_error("out of memory at start-up");
        return 1;
    }
    d->config_path = config_path;
    signal(SIGPIPE, SIG_IGN);
    gw__log_info("gottwall %s (plugin ABI %d.%d) starting as %s with %s "
                 "(process id %s)", PACKAGE_VERSION, GW_PLUGIN_ABI_MAJOR,
                 GW_PLUGIN_ABI_MINOR,
                 d->roles == (GW__ROLE_AGGREGATOR | GW__ROLE_SERVER)
                     ? "aggregator and server"
                     : (d->roles & GW__ROLE_SERVER ? "server" : "aggregator"),
                 config_path, d->id);

    dm_check_config_mode(config_path);
    if (dm_check_placeholders(cfg, d->roles, d->server_host) != GW_OK) {
        gw__daemon_free(d);
        return 1;
    }

    /* Signals first: a SIGTERM during a slow start-up stops it cleanly. */
    ev_signal_init(&d->sig_term, dm_stop_cb, SIGTERM);
    ev_signal_init(&d->sig_int, dm_stop_cb, SIGINT);
    ev_signal_init(&d->sig_hup, dm_reload_cb, SIGHUP);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    ev_signal_start(d->loop, &d->sig_term);
    ev_signal_start(d->loop, &d->sig_int);
    ev_signal_start(d->loop, &d->sig_hup);
    ev_prepare_init(&d->count_flush, gw__host_counts_cb);
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
    gw__daemon_free(d);
    return rc;
}

int
gw__daemon_check(gw__config_t *cfg, const gw__run_opts_t *opts)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    gw__daemon_t *d = loop != NULL ? gw__daemon_new(cfg, opts, loop) : NULL;
    gw__instance_t *inst = NULL;
    gw_error_t err;
    size_t i;
    int rc = 1, prc;

    if (d == NULL) {
        gw__log_error("out of memory at start-up");
        if (loop != NULL)
            ev_loop_destroy(loop);
        return 1;
    }
    if (dm_check_placeholders(cfg, opts->roles, NULL) != GW_OK)
        goto out;
    if (dm_create(d, GW_PLUGIN_STORAGE, &cfg->storage, &inst, &err) !=
        GW_OK) {
        gw__log_error("%s", err.msg);
        goto out;
    }
    gw__log_info("storage \"%s\": plugin %s %s from %s: created",
                 inst->name, inst->plugin->name, inst->plugin->version,
                 inst->plugin->path);
    gw__store_log_retention(cfg, inst->name, dm_can_expire(inst), 0);
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
        gw__instance_free(t);
    }
    rc = 0;
out:
    gw__instance_free(inst);
    gw__daemon_free(d);
    ev_loop_destroy(loop);
    return rc;
}
