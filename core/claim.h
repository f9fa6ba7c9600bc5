/*
 * core/claim.h: the replay cache shared through the storage (issue 16,
 * item 6). Each process refuses at once, on its loop, an S3/S4 nonce it
 * has seen (net/auth.c); before a request with a nonce is accepted, the
 * nonce is also claimed in the storage (gw_storage_ops_t.nonce_claim, ABI
 * 1.3), on the storage thread, so that a nonce spent before a restart or
 * by another process on the same storage is refused too.
 *
 * While the storage cannot answer (GW_AGAIN, or a storage without the op)
 * requests go through on each process's own cache alone: that is logged
 * once when it starts, and once when the storage answers again.
 */
#ifndef GW_CORE_CLAIM_H
#define GW_CORE_CLAIM_H

#include <stddef.h>

#include "store.h"

typedef struct gw__claims_s gw__claims_t;

/* fn(arg, ok): ok 1 when the nonce was new to the shared cache (or the
 * cache could not tell), 0 when it was claimed before: a replay. */
typedef void (*gw__claim_fn)(void *arg, int ok);

/* For the storage instance named storage (kept), run by st; has_op: the
 * plugin implements nonce_claim and was built for ABI 1.3 or later. NULL
 * when out of memory. */
gw__claims_t *gw__claims_new(gw__store_t *st, int has_op,
                             const char *storage);

/* From now on a storage that cannot answer is the daemon stopping, not an
 * outage: nothing is logged. Call before closing the store. */
void gw__claims_stopping(gw__claims_t *c);

/* After the store is closed (every claim has had its answer). */
void gw__claims_free(gw__claims_t *c);

/*
 * Claims project's nonce (len bytes) until expires_at. counter: the
 * instance a replay is counted under (gottwall_auth_failures_total
 * {transport=counter, reason="replay"}), kept until fn ran. project is
 * kept too (config-owned). fn runs on loop 0's thread, or before this
 * returns when there is nothing to ask. GW_OK, or GW_ERR when out of
 * memory (fn will not run). Any ingest loop's thread.
 */
int gw__claims_claim(gw__claims_t *c, const char *counter,
                     const char *project, const char *nonce, size_t len,
                     double expires_at, gw__claim_fn fn, void *arg);

#endif /* GW_CORE_CLAIM_H */
