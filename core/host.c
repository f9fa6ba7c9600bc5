/*
 * core/host.c: the host table (gottwall/host.h) handed to every plugin
 * instance. Each member finds its instance through ctx->inst and calls the
 * core function that does the work, adding what the plugin should not have
 * to: the log prefix, the section's name in config errors, the counters
 * keyed by instance name.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/conf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "claim.h"
#include "daemon.h"
#include "host.h"
#include "ingest/ingest.h"
#include "journal.h"
#include "net/auth.h"
#include "net/http.h"
#include "workers.h"

/* ---- Instances ---- */

gw__instance_t *
gw__instance_new(struct gw__daemon_s *d, gw__plugin_t *plugin,
                 const char *name, config_setting_t *section)
{
    gw__instance_t *inst = calloc(1, sizeof(*inst));
    size_t n = strlen(plugin->name) + strlen(name) + 16;

    if (inst == NULL)
        return NULL;
    inst->ctx.host = &gw__host;
    inst->ctx.inst = inst;
    inst->daemon = d;
    inst->plugin = plugin;
    inst->section = section;
    inst->name = strdup(name);
    inst->prefix = malloc(n);
    if (inst->name == NULL || inst->prefix == NULL) {
        gw__instance_free(inst);
        return NULL;
    }
    snprintf(inst->prefix, n, "%s:%s:%s",
             gw__loader_kind_name(plugin->desc.kind), plugin->name, name);
    return inst;
}

void
gw__instance_free(gw__instance_t *inst)
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

/* ---- The table's members ---- */

static gw__instance_t *
hs_inst(const gw_ctx_t *ctx)
{
    return (gw__instance_t *) ctx->inst;
}

static void
hs_log(const gw_ctx_t *ctx, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw__logv(level, hs_inst(ctx)->prefix, fmt, ap);
    va_end(ap);
}

static const char *
hs_instance_name(const gw_ctx_t *ctx)
{
    return hs_inst(ctx)->name;
}

static int
hs_config_apply(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                void *state, gw_error_t *err)
{
    gw__instance_t *inst = hs_inst(ctx);
    const gw__config_t *cfg =
        inst->daemon != NULL ? gw__daemon_config(inst->daemon) : NULL;
    const char *file = cfg != NULL && cfg->path != NULL ? cfg->path : "config";
    char what[300];

    if (inst->plugin != NULL && inst->plugin->desc.kind == GW_PLUGIN_STORAGE)
        snprintf(what, sizeof(what), "STORAGE_SETTINGS");
    else
        snprintf(what, sizeof(what), "BACKENDS.%s", inst->name);
    return gw__config_apply_keys(inst->section, file, what, keys, state,
                                 err);
}

static struct ev_loop *
hs_loop(const gw_ctx_t *ctx)
{
    return gw__daemon_loop(hs_inst(ctx)->daemon);
}

static int
hs_loops(const gw_ctx_t *ctx)
{
    return gw__daemon_loops(hs_inst(ctx)->daemon);
}

static struct ev_loop *
hs_loop_at(const gw_ctx_t *ctx, int i)
{
    return gw__daemon_loop_at(hs_inst(ctx)->daemon, i);
}

static int
hs_project_exists(const gw_ctx_t *ctx, const char *project)
{
    return gw__config_project(gw__daemon_config(hs_inst(ctx)->daemon),
                              project) != NULL;
}

/* Claims the nonce of the last S3/S4 check on this thread in the shared
 * replay cache; fn NULL: recorded, nobody waits. */
static int
hs_claim_last(gw__instance_t *inst, void (*fn)(void *arg, int ok),
              void *arg)
{
    gw__daemon_t *d = inst->daemon;
    const char *project;
    char nonce[72];
    size_t len;
    double exp;

    if (!gw__auth_last_nonce(gw__daemon_auth(d), &project, nonce, &len,
                             &exp)) {
        if (fn != NULL)
            fn(arg, 1);
        return GW_OK;
    }
    return gw__claims_claim(gw__daemon_claims(d), inst->name, project, nonce,
                            len, exp, fn, arg);
}

/* A plugin's work for another loop (host->post), or a claim's answer on
 * its way back to the loop that asked (ABI 1.7). */
typedef struct hs_hop_s {
    gw__post_t post; /* first */
    gw__instance_t *inst;
    int loop;
    int ok;
    void (*fn)(void *arg);
    void (*claim_fn)(void *arg, int ok);
    void *arg;
} hs_hop_t;

static void
hs_hop_run(gw__post_t *p)
{
    hs_hop_t *h = (hs_hop_t *) p;

    if (h->claim_fn != NULL)
        h->claim_fn(h->arg, h->ok);
    else
        h->fn(h->arg);
    free(h);
}

static hs_hop_t *
hs_hop_new(gw__instance_t *inst, int loop, void *arg)
{
    hs_hop_t *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->post.fn = hs_hop_run;
    h->inst = inst;
    h->loop = loop;
    h->arg = arg;
    return h;
}

static int
hs_post(const gw_ctx_t *ctx, int i, void (*fn)(void *arg), void *arg)
{
    gw__instance_t *inst = hs_inst(ctx);
    hs_hop_t *h;

    if (i < 1 || i >= gw__daemon_loops(inst->daemon) || fn == NULL
        || (h = hs_hop_new(inst, i, arg)) == NULL)
        return GW_ERR;
    h->fn = fn;
    if (gw__daemon_post(inst->daemon, i, &h->post) != GW_OK) {
        free(h);
        return GW_ERR;
    }
    return GW_OK;
}

/* Loop 0: the claim's answer, passed on to the loop that asked. */
static void
hs_claim_back(void *arg, int ok)
{
    hs_hop_t *h = arg;

    h->ok = ok;
    if (gw__daemon_post(h->inst->daemon, h->loop, &h->post) != GW_OK)
        hs_hop_run(&h->post); /* cannot happen: the loop exists */
}

static int
hs_auth_claim(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok), void *arg)
{
    gw__instance_t *inst = hs_inst(ctx);
    int loop = gw__workers_current();
    hs_hop_t *h;

    /* Plugins built before 1.7 get the answer on loop 0, as then. */
    if (loop == 0 || fn == NULL || inst->plugin == NULL
        || inst->plugin->desc.abi_minor < 7)
        return hs_claim_last(inst, fn, arg);
    h = hs_hop_new(inst, loop, arg);
    if (h == NULL)
        return GW_ERR;
    h->claim_fn = fn;
    if (hs_claim_last(inst, hs_claim_back, h) != GW_OK) {
        free(h);
        return GW_ERR;
    }
    return GW_OK;
}

static int
hs_auth_check(const gw_ctx_t *ctx, const gw_auth_req_t *req,
              const char **project, gw_error_t *err)
{
    gw__instance_t *inst = hs_inst(ctx);
    gw__daemon_t *d = inst->daemon;
    const char *reason = NULL;
    gw_auth_req_t old;
    int rc;

    /* A nonce the caller did not claim (it never called auth_claim) is
     * still recorded in the shared cache. */
    hs_claim_last(inst, NULL, NULL);
    /* A plugin built before ABI 1.3 hands a gw_auth_req_t without scope:
     * read only the members it knows, and no S4 (it cannot have meant
     * it). */
    if (inst->plugin != NULL && inst->plugin->desc.abi_minor < 3) {
        memset(&old, 0, sizeof(old));
        memcpy(&old, req, offsetof(gw_auth_req_t, scope));
        old.schemes &= ~GW_AUTH_S4;
        req = &old;
    }
    /* Each ingest loop checks with its own auth state (no lock around the
     * HMACs); *project stays valid: every config loaded is kept until
     * exit. */
    rc = gw__auth_check(gw__daemon_auth(d), req, project, &reason, err);
    if (rc != GW_OK)
        gw__metrics_count(inst->name, GW_COUNTER_AUTH_FAILED,
                          reason != NULL ? reason : "failed", 1);
    else if (req == &old)
        hs_claim_last(inst, NULL, NULL); /* a plugin that cannot wait */
    return rc;
}

/*
 * What each thread's submits accepted, added to the received and accepted
 * counters once per loop iteration (gw__host_flush_counts, from an
 * ev_prepare on every ingest loop) instead of twice per event: with
 * several loops those counters are shared by every core. Refusals are
 * counted at once.
 */
static __thread struct {
    gw__instance_t *inst;
    uint64_t n;
} hs_ok;

void
gw__host_flush_counts(void)
{
    if (hs_ok.n == 0)
        return;
    gw__metrics_count(hs_ok.inst->name, GW_COUNTER_RECEIVED, NULL, hs_ok.n);
    gw__metrics_count(hs_ok.inst->name, GW_COUNTER_ACCEPTED, NULL, hs_ok.n);
    hs_ok.n = 0;
}

void
gw__host_counts_cb(struct ev_loop *loop, struct ev_prepare *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
    gw__host_flush_counts();
}

/* Counts a submit of n events that returned rc; returns GW_OK, GW_ERR, or
 * GW_AGAIN when memory ran out or the storage is MAX_PENDING_SERIES behind
 * (the client may send them again later: HTTP 503 with Retry-After). */
static int
hs_counted(gw__instance_t *inst, int rc, gw__reject_t reject, uint64_t n)
{
    if (rc == GW_OK) {
        if (hs_ok.inst != inst) {
            gw__host_flush_counts();
            hs_ok.inst = inst;
        }
        hs_ok.n += n;
        return GW_OK;
    }
    gw__metrics_count(inst->name, GW_COUNTER_RECEIVED, NULL, n);
    gw__metrics_count(inst->name, GW_COUNTER_DROPPED, gw__reject_name(reject),
                      n);
    return reject == GW__REJECT_NOMEM || reject == GW__REJECT_PENDING
               ? GW_AGAIN
               : GW_ERR;
}

static int
hs_submit_json(const gw_ctx_t *ctx, const char *project,
               gw_action_t default_action, const char *json, size_t len,
               unsigned flags, gw_error_t *err)
{
    gw__instance_t *inst = hs_inst(ctx);
    gw__ingest_t *ing = gw__daemon_ingest(inst->daemon);
    gw__journal_t *j = gw__daemon_journal(inst->daemon);
    gw__reject_t reject = GW__REJECT_NONE;
    int batch = (flags & GW_SUBMIT_BATCH) != 0;
    size_t n = 1;
    double now;
    int rc;

    if (ing == NULL)
        return gw_error_set(err, "this process does not aggregate events");
    /* The journal keeps the receipt time, exactly the time events without
     * "ts" were bucketed at, so that a replay buckets them the same;
     * without one, ingest reads the clock only if an event needs it. */
    now = j != NULL ? gw__ingest_now() : 0;
    rc = gw__ingest_json_at(ing, now, project, default_action, json, len,
                            batch, &n, &reject, err);
    if (rc == GW_OK && j != NULL)
        gw__journal_append_json(j, now, project, default_action, flags, json,
                                len);
    return hs_counted(inst, rc, reject, n);
}

static int
hs_submit(const gw_ctx_t *ctx, const char *project, const gw_event_t *ev,
          gw_error_t *err)
{
    gw__instance_t *inst = hs_inst(ctx);
    gw__ingest_t *ing = gw__daemon_ingest(inst->daemon);
    gw__journal_t *j = gw__daemon_journal(inst->daemon);
    gw__reject_t reject = GW__REJECT_NONE;
    double now;
    int rc;

    if (ing == NULL)
        return gw_error_set(err, "this process does not aggregate events");
    now = j != NULL ? gw__ingest_now() : 0;
    rc = gw__ingest_event_at(ing, now, project, ev, &reject, err);
    if (rc == GW_OK && j != NULL)
        gw__journal_append_event(j, now, project, ev);
    return hs_counted(inst, rc, reject, 1);
}

static void
hs_count(const gw_ctx_t *ctx, gw_counter_t counter, const char *reason,
         uint64_t n)
{
    gw__instance_t *inst = hs_inst(ctx);

    /* There is one storage: its saturated sums are {where="storage"}. */
    if (counter == GW_COUNTER_SATURATED) {
        gw__metrics_count(inst->plugin != NULL &&
                                  inst->plugin->desc.kind == GW_PLUGIN_STORAGE
                              ? GW__SATURATED_STORAGE
                              : inst->name,
                          counter, NULL, n);
        return;
    }
    gw__metrics_count(inst->name, counter, reason, n);
}

static int
hs_post_loop(void *env, int i, gw__post_t *p)
{
    return gw__daemon_post(env, i, p);
}

static int
hs_http_listen(const gw_ctx_t *ctx, const gw_http_listen_t *opts,
               gw_http_handler_fn fn, void *arg, gw_http_server_t **out,
               gw_error_t *err)
{
    gw__instance_t *inst = hs_inst(ctx);
    gw__daemon_t *d = inst->daemon;
    int rc, i, n = gw__daemon_loops(d);
    struct ev_loop *loops[64];

    rc = gw__http_listen(gw__daemon_loop(d), inst->name, opts,
                         &gw__daemon_config(d)->http, fn, arg, out, err);
    /* gw_http_listen_t.loops exists for plugins built against 1.7. */
    if (rc != GW_OK || inst->plugin == NULL
        || inst->plugin->desc.abi_minor < 7 || !opts->loops || n < 2)
        return rc;
    for (i = 0; i < n && i < 64; i++)
        loops[i] = gw__daemon_loop_at(d, i);
    if (gw__http_spread(*out, i, loops, hs_post_loop, d) != GW_OK) {
        gw__http_close(*out);
        *out = NULL;
        return gw_error_set(err, "out of memory");
    }
    return GW_OK;
}

/* ---- on_stored ---- */

static int
hs_on_stored(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok), void *arg,
             gw_error_t *err)
{
    return gw__daemon_when_stored(hs_inst(ctx)->daemon, fn, arg, err);
}

/* ---- when_durable ---- */

static int
hs_when_durable(const gw_ctx_t *ctx, void (*fn)(void *arg, int ok),
                void *arg)
{
    gw__journal_t *j = gw__daemon_journal(hs_inst(ctx)->daemon);

    if (j == NULL) {
        fn(arg, 1);
        return GW_OK;
    }
    gw__journal_when_durable(j, fn, arg);
    return GW_OK;
}

static const char *
hs_prefix(const gw_ctx_t *ctx)
{
    return gw__daemon_config(hs_inst(ctx)->daemon)->prefix;
}

const gw_host_t gw__host = {
    .struct_size = sizeof(gw_host_t),
    .abi_major = GW_PLUGIN_ABI_MAJOR,
    .abi_minor = GW_PLUGIN_ABI_MINOR,
    .log = hs_log,
    .instance_name = hs_instance_name,
    .config_apply = hs_config_apply,
    .loop = hs_loop,
    .project_exists = hs_project_exists,
    .auth_check = hs_auth_check,
    .submit_json = hs_submit_json,
    .submit = hs_submit,
    .count = hs_count,
    .http_listen = hs_http_listen,
    .http_close = gw__http_close,
    .http_method = gw__http_method,
    .http_path = gw__http_path,
    .http_query = gw__http_query,
    .http_header = gw__http_header,
    .http_body = gw__http_body,
    .http_respond = gw__http_respond,
    .on_stored = hs_on_stored,
    .prefix = hs_prefix,
    .when_durable = hs_when_durable,
    .auth_claim = hs_auth_claim,
    .post = hs_post,
    .loops = hs_loops,
    .loop_at = hs_loop_at,
};
