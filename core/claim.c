/*
 * core/claim.c: the replay cache shared through the storage (see
 * core/claim.h). A claim is a storage-thread job; its answer comes back on
 * loop 0, where the outage state lives (so it needs no lock).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "claim.h"

struct gw__claims_s {
    gw__store_t *store;
    int has_op;
    const char *storage;
    /* Loop 0 only: 1 the storage answered last, 0 it could not (protection
     * is per process), -1 not known yet. */
    int shared;
    int stopping;
    int no_op_logged;
};

typedef struct cl_item_s {
    gw__claims_t *c;
    const char *counter;
    const char *project;
    char nonce[72];
    size_t len;
    double expires_at;
    gw__claim_fn fn;
    void *arg;
} cl_item_t;

gw__claims_t *
gw__claims_new(gw__store_t *st, int has_op, const char *storage)
{
    gw__claims_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->store = st;
    c->has_op = has_op;
    c->storage = storage;
    c->shared = -1;
    return c;
}

void
gw__claims_stopping(gw__claims_t *c)
{
    if (c != NULL)
        __atomic_store_n(&c->stopping, 1, __ATOMIC_RELAXED);
}

void
gw__claims_free(gw__claims_t *c)
{
    free(c);
}

/* Storage thread. */
static int
cl_job(const gw_storage_ops_t *ops, void *state, void *arg, gw_error_t *err)
{
    cl_item_t *it = arg;

    return ops->nonce_claim(state, it->project, it->nonce, it->len,
                            it->expires_at, err);
}

/* Loop 0: what the storage said. */
static void
cl_done(void *arg, int rc, const gw_error_t *err)
{
    cl_item_t *it = arg;
    gw__claims_t *c = it->c;

    if (rc == GW_AGAIN) {
        if (c->shared != 0 && !__atomic_load_n(&c->stopping, __ATOMIC_RELAXED))
            gw__log_warning("the shared replay cache (storage \"%s\") does "
                            "not answer: %s; until it does, each process "
                            "refuses only the S3/S4 replays it saw itself "
                            "(a nonce used on another process, or before a "
                            "restart, is not refused)",
                            c->storage,
                            err != NULL && err->msg[0] ? err->msg
                                                       : "no reason given");
        if (!__atomic_load_n(&c->stopping, __ATOMIC_RELAXED))
            c->shared = 0;
    } else {
        if (c->shared == 0)
            gw__log_notice("the shared replay cache (storage \"%s\") answers "
                           "again: S3/S4 replays are refused across "
                           "processes and restarts again",
                           c->storage);
        c->shared = 1;
    }
    if (rc == GW_ERR && it->fn != NULL) {
        /* (A claim nobody waits for refuses nothing.) */
        gw__metrics_count(it->counter, GW_COUNTER_AUTH_FAILED, "replay", 1);
        gw__log_debug("%s: S3/S4 nonce of project \"%s\" refused: claimed "
                      "before (by this process before a restart, or by "
                      "another)", it->counter, it->project);
    }
    if (it->fn != NULL)
        it->fn(it->arg, rc != GW_ERR);
    free(it);
}

int
gw__claims_claim(gw__claims_t *c, const char *counter, const char *project,
                 const char *nonce, size_t len, double expires_at,
                 gw__claim_fn fn, void *arg)
{
    cl_item_t *it;

    if (c == NULL || !c->has_op || len >= sizeof(it->nonce)) {
        /* Logged once: a storage without the op never shares. */
        if (c != NULL && !c->has_op
            && !__atomic_exchange_n(&c->no_op_logged, 1, __ATOMIC_RELAXED))
            gw__log_warning("storage \"%s\" keeps no shared replay cache "
                            "(its plugin has no nonce_claim, plugin ABI "
                            "1.3): each process refuses only the S3/S4 "
                            "replays it saw itself, and forgets them at a "
                            "restart",
                            c->storage);
        if (fn != NULL)
            fn(arg, 1);
        return GW_OK;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL)
        return GW_ERR;
    it->c = c;
    it->counter = counter;
    it->project = project;
    memcpy(it->nonce, nonce, len);
    it->len = len;
    it->expires_at = expires_at;
    it->fn = fn;
    it->arg = arg;
    if (gw__store_call(c->store, cl_job, cl_done, it) != GW_OK) {
        free(it);
        return GW_ERR;
    }
    return GW_OK;
}
