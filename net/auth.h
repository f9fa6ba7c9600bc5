/*
 * net/auth.h: signatures and keys (SPEC §4): S1, S2, Basic, S3, S4, and the
 * redis transport's key pair. Every comparison of secrets is constant-time;
 * a malformed header, an unknown project or a wrong key is a failure.
 */
#ifndef GW_NET_AUTH_H
#define GW_NET_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/host.h>

#include "base/conf.h"

typedef struct gw__auth_s gw__auth_t;

/* cfg is borrowed and must outlive the auth state (or be replaced with
 * gw__auth_set_config). now_fn: NULL for the real clock. */
gw__auth_t *gw__auth_new(const gw__config_t *cfg, double (*now_fn)(void));
void gw__auth_set_config(gw__auth_t *a, const gw__config_t *cfg);

/* Another auth state for another thread (an ingest loop): its own caches,
 * primary's S3 replay cache (shared under a lock, so a nonce used on one
 * loop is refused on every loop). Free it before primary. Each state is
 * used, and set_config'd, by one thread at a time. */
gw__auth_t *gw__auth_new_sharing(const gw__config_t *cfg,
                                 gw__auth_t *primary);

/* The config a was created or last set with. */
const gw__config_t *gw__auth_config(const gw__auth_t *a);
void gw__auth_free(gw__auth_t *a);

/*
 * Checks req (see gottwall/host.h). On GW_OK *project is the authenticated
 * project's name (owned by cfg). On GW_ERR err says what failed without any
 * secret ("signature does not match", "timestamp 1392454739 is 5 s outside
 * AUTH_MAX_SKEW", "unknown project \"x\"") and *reason (may be NULL) a short
 * label ("bad_header", "unknown_project", "bad_signature", "stale",
 * "replay", "base_too_large").
 */
int gw__auth_check(gw__auth_t *a, const gw_auth_req_t *req,
                   const char **project, const char **reason,
                   gw_error_t *err);

/* The legacy signature: hex(HMAC-MD5(private, public + decimal(solt))) into
 * out (33 bytes), solt = floor(ts / base) * base. For clients and tests. */
void gw__auth_sign_legacy(const char *public_key, const char *private_key,
                          int64_t ts, int64_t base, char out[33]);

/* The S3 signature (hex HMAC-SHA256, 65 bytes) of a request. */
void gw__auth_sign_s3(const char *private_key, const char *project,
                      int64_t ts, const char *nonce, const void *body,
                      size_t body_len, char out[65]);

/* The S4 signature: S3's with the scope ("POST /api/v1/shop/incr", "tcp",
 * "udp", "redis-stream") between the nonce and the body's hash. */
void gw__auth_sign_s4(const char *private_key, const char *project,
                      int64_t ts, const char *nonce, const char *scope,
                      const void *body, size_t body_len, char out[65]);

/* The nonce of the last S3/S4 header gw__auth_check accepted on a (since
 * it last started), for the shared replay cache: 1 with *project (cfg-
 * owned), nonce (65 bytes: NUL-terminated), *len and *expires_at (epoch
 * seconds after which the nonce's ts can no longer pass AUTH_S3_WINDOW),
 * and forgets it; 0 if there is none (another scheme, a failure, or
 * taken already). */
int gw__auth_last_nonce(gw__auth_t *a, const char **project, char *nonce,
                        size_t *len, double *expires_at);

/* 1 if gw__auth_last_nonce would give a nonce now. */
int gw__auth_has_nonce(const gw__auth_t *a);

#endif /* GW_NET_AUTH_H */
