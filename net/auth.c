/*
 * net/auth.c: checks the credentials a transport received (SPEC §4).
 *
 * Schemes: the legacy GottWallS1 (HTTP) and GottWallS2 (TCP, UDP) HMAC-MD5
 * signatures of public_key + solt (ts floored or rounded to a multiple of
 * base: ts itself is not signed, so a solt is accepted only inside
 * now - base - AUTH_MAX_SKEW .. now + AUTH_MAX_SKEW, and base only up to
 * AUTH_MAX_BASE), HTTP Basic with both key orders, the
 * GottWallS3 HMAC-SHA256 signature over the body with a nonce, and the
 * redis transport's key pair. Headers are parsed strictly (exact token
 * counts, decimal digits only); every comparison of secrets is
 * constant-time (CRYPTO_memcmp); every failure names what failed and never
 * a key or a signature.
 *
 * S3 nonces are remembered per project in a bounded replay cache: a hash
 * set whose entries expire in insertion order (a FIFO), so purging is O(1)
 * per entry. When a project's cache is full, new nonces are refused rather
 * than live ones forgotten.
 *
 * One gw__auth_t is used by one thread (it caches signatures). With more
 * ingest loops each loop has its own (gw__auth_new_sharing), and all of
 * them share the first one's replay cache, under its lock: taken only to
 * look a nonce up and remember it, never around a signature's HMAC.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth.h"
#include "base/buf.h"

#define AUTH_DEFAULT_SKEW 900
#define AUTH_DEFAULT_S3_WINDOW 300
/* The protocol's largest base, and AUTH_MAX_BASE's default and maximum. */
#define AUTH_BASE_LIMIT 3600
#define AUTH_MAX_TS_DIGITS 12
#define AUTH_NONCE_MIN 8
#define AUTH_NONCE_MAX 64
#define AUTH_MAX_TOKENS 6
/* Nonces remembered per project at most (about 100 bytes each). */
#define AUTH_REPLAY_CAP 200000u
/* Legacy signatures remembered (direct-mapped by project and solt). */
#define AUTH_SIGN_CACHE 64u

typedef struct auth_nonce_s {
    struct auth_nonce_s *hnext; /* hash chain */
    struct auth_nonce_s *fnext; /* FIFO, oldest first */
    double expiry;
    uint32_t hash;
    uint8_t len;
    char nonce[AUTH_NONCE_MAX];
} auth_nonce_t;

typedef struct auth_replay_s {
    struct auth_replay_s *next;
    char *project;
    auth_nonce_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    auth_nonce_t *head, *tail;
} auth_replay_t;

/* A legacy signature depends only on the project's keys and the solt, so
 * every request inside one base window shares it: remembering the last few
 * saves two HMACs per datagram (the original's memo grew without bound;
 * this one is a fixed table, cleared when the config changes). */
typedef struct auth_sign_s {
    const gw__project_t *project; /* NULL: empty */
    int64_t solt;
    char sign[33];
} auth_sign_t;

/* Keyed digests of a project's keys, for comparing Basic credentials and
 * key pairs in constant time without hashing the keys on every request. */
typedef struct auth_keydig_s {
    const gw__project_t *project; /* NULL: empty */
    unsigned char pub[32];
    unsigned char priv[32];
} auth_keydig_t;

struct gw__auth_s {
    const gw__config_t *cfg;
    auth_sign_t signs[AUTH_SIGN_CACHE];
    auth_keydig_t keydigs[AUTH_SIGN_CACHE];
    double (*now_fn)(void);
    auth_replay_t *replays;
    unsigned char cmp_key[32]; /* for comparing secrets of any length */
    gw__auth_t *primary;       /* whose replay cache this one uses, or NULL */
    pthread_mutex_t replay_mu; /* guards replays */
    struct {                   /* the last S3/S4 nonce accepted */
        const char *project;   /* cfg-owned; NULL: none */
        char nonce[AUTH_NONCE_MAX + 1];
        size_t len;
        double expires_at;
    } last;
};

/* A token of a header: borrowed bytes. */
typedef struct auth_tok_s {
    const char *p;
    size_t len;
} auth_tok_t;

static double
auth_real_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

gw__auth_t *
gw__auth_new(const gw__config_t *cfg, double (*now_fn)(void))
{
    gw__auth_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->cfg = cfg;
    a->now_fn = now_fn != NULL ? now_fn : auth_real_now;
    if (RAND_bytes(a->cmp_key, sizeof(a->cmp_key)) != 1) {
        /* Only comparisons depend on it; a fixed value keeps them
         * correct, merely less hardened. */
        memset(a->cmp_key, 0x5a, sizeof(a->cmp_key));
    }
    pthread_mutex_init(&a->replay_mu, NULL);
    return a;
}

gw__auth_t *
gw__auth_new_sharing(const gw__config_t *cfg, gw__auth_t *primary)
{
    gw__auth_t *a = gw__auth_new(cfg, primary->now_fn);

    if (a != NULL)
        a->primary = primary->primary != NULL ? primary->primary : primary;
    return a;
}

const gw__config_t *
gw__auth_config(const gw__auth_t *a)
{
    return a->cfg;
}

void
gw__auth_set_config(gw__auth_t *a, const gw__config_t *cfg)
{
    a->cfg = cfg;
    OPENSSL_cleanse(a->signs, sizeof(a->signs));
    memset(a->signs, 0, sizeof(a->signs));
    OPENSSL_cleanse(a->keydigs, sizeof(a->keydigs));
    memset(a->keydigs, 0, sizeof(a->keydigs));
}

static void
auth_replay_free(auth_replay_t *r)
{
    auth_nonce_t *n = r->head;

    while (n != NULL) {
        auth_nonce_t *next = n->fnext;
        free(n);
        n = next;
    }
    free(r->buckets);
    free(r->project);
    free(r);
}

void
gw__auth_free(gw__auth_t *a)
{
    if (a == NULL)
        return;
    while (a->replays != NULL) {
        auth_replay_t *next = a->replays->next;
        auth_replay_free(a->replays);
        a->replays = next;
    }
    OPENSSL_cleanse(a->cmp_key, sizeof(a->cmp_key));
    OPENSSL_cleanse(a->signs, sizeof(a->signs));
    OPENSSL_cleanse(a->keydigs, sizeof(a->keydigs));
    pthread_mutex_destroy(&a->replay_mu);
    free(a);
}

/* ---- Helpers ---- */

/* The keyed digest used to compare secrets of any length in constant
 * time: equal digests, equal strings; neither the contents nor where they
 * differ leak. */
static void
auth_digest(const gw__auth_t *a, const char *x, size_t len,
            unsigned char out[32])
{
    unsigned int l = 0;

    if (HMAC(EVP_sha256(), a->cmp_key, sizeof(a->cmp_key),
             (const unsigned char *) x, len, out, &l) == NULL
        || l != 32)
        RAND_bytes(out, 32); /* fails closed: matches nothing */
}

/* The digests of a project's keys, from the cache or computed. */
static const auth_keydig_t *
auth_keydig(gw__auth_t *a, const gw__project_t *p)
{
    uint64_t h = (uint64_t) (uintptr_t) p * 0x9e3779b97f4a7c15ull;
    auth_keydig_t *e = &a->keydigs[(h >> 32) % AUTH_SIGN_CACHE];

    if (e->project != p) {
        auth_digest(a, p->public_key, strlen(p->public_key), e->pub);
        auth_digest(a, p->private_key, strlen(p->private_key), e->priv);
        e->project = p;
    }
    return e;
}

/* Splits s[0..len) at runs of spaces and tabs. Returns the number of
 * tokens, or AUTH_MAX_TOKENS + 1 if there are more than max. */
static size_t
auth_split(const char *s, size_t len, auth_tok_t *tok, size_t max)
{
    size_t i = 0, n = 0;

    while (i < len) {
        size_t start;

        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= len)
            break;
        start = i;
        while (i < len && s[i] != ' ' && s[i] != '\t')
            i++;
        if (n == max)
            return max + 1;
        tok[n].p = s + start;
        tok[n].len = i - start;
        n++;
    }
    return n;
}

/* A decimal integer of 1..maxdigits digits, nothing else. */
static int
auth_parse_uint(const auth_tok_t *t, size_t maxdigits, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (t->len == 0 || t->len > maxdigits)
        return -1;
    for (i = 0; i < t->len; i++) {
        if (t->p[i] < '0' || t->p[i] > '9')
            return -1;
        v = v * 10 + (t->p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Exactly n hex digits, copied lowercased into out (n + 1 bytes). */
static int
auth_parse_hex(const auth_tok_t *t, size_t n, char *out)
{
    size_t i;

    if (t->len != n)
        return -1;
    for (i = 0; i < n; i++) {
        char c = t->p[i];
        if (c >= 'A' && c <= 'F')
            c = (char) (c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

/* A printable, bounded rendering of untrusted bytes for messages. */
static void
auth_quote(const char *s, size_t len, char *out, size_t outsz)
{
    size_t i, o = 0;

    for (i = 0; i < len && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char) s[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char) c
                                                                    : '?';
    }
    if (i < len && o + 4 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static const gw__project_t *
auth_project(const gw__config_t *cfg, const char *name, size_t len)
{
    size_t i;

    if (cfg == NULL)
        return NULL;
    for (i = 0; i < cfg->nprojects; i++) {
        const gw__project_t *p = &cfg->projects[i];
        if (strlen(p->name) == len && memcmp(p->name, name, len) == 0)
            return p;
    }
    return NULL;
}

static int
auth_fail(const char **reason, const char *why, gw_error_t *err,
          const char *fmt, ...) GW_PRINTF(4, 5);

static int
auth_fail(const char **reason, const char *why, gw_error_t *err,
          const char *fmt, ...)
{
    va_list ap;

    if (reason != NULL)
        *reason = why;
    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return GW_ERR;
}

static int
auth_unknown_project(const char *name, size_t len, const char **reason,
                     gw_error_t *err)
{
    char q[80];

    auth_quote(name, len, q, sizeof(q));
    return auth_fail(reason, "unknown_project", err, "unknown project \"%s\"",
                     q);
}

/* ---- Signatures ---- */

void
gw__auth_sign_legacy(const char *public_key, const char *private_key,
                     int64_t ts, int64_t base, char out[33])
{
    char msg[1024];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int64_t solt = base > 0 ? (ts / base) * base : ts;
    int n;

    if (base > 0 && ts < 0 && ts % base != 0)
        solt -= base; /* floor, not truncation */
    n = snprintf(msg, sizeof(msg), "%s%lld", public_key, (long long) solt);
    if (n < 0 || (size_t) n >= sizeof(msg))
        n = (int) sizeof(msg) - 1;
    HMAC(EVP_md5(), private_key, (int) strlen(private_key),
         (const unsigned char *) msg, (size_t) n, md, &mdlen);
    gw__hex_encode(md, 16, out);
}

/* The S3/S4 string to sign, hashed with the private key: scheme "\n"
 * project "\n" ts "\n" nonce ["\n" scope] "\n" hex(SHA256(body)); the
 * scope only for S4 (scope != NULL). */
static void
auth_sign_sha(const char *scheme, const char *private_key,
              const char *project, int64_t ts, const char *nonce,
              const char *scope, size_t scope_len, const void *body,
              size_t body_len, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char body_hex[2 * SHA256_DIGEST_LENGTH + 1];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char head[64];
    size_t plen = strlen(project), nlen = strlen(nonce), hlen, total, o;
    char *msg;

    SHA256(body != NULL ? body : (const void *) "", body != NULL ? body_len : 0,
           digest);
    gw__hex_encode(digest, sizeof(digest), body_hex);
    hlen = (size_t) snprintf(head, sizeof(head), "%lld", (long long) ts);
    total = 10 + 1 + plen + 1 + hlen + 1 + nlen + 1 + 64
            + (scope != NULL ? scope_len + 1 : 0);
    msg = malloc(total);
    if (msg == NULL) {
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    memcpy(msg, scheme, 10);
    o = 10;
    msg[o++] = '\n';
    memcpy(msg + o, project, plen);
    o += plen;
    msg[o++] = '\n';
    memcpy(msg + o, head, hlen);
    o += hlen;
    msg[o++] = '\n';
    memcpy(msg + o, nonce, nlen);
    o += nlen;
    msg[o++] = '\n';
    if (scope != NULL) {
        memcpy(msg + o, scope, scope_len);
        o += scope_len;
        msg[o++] = '\n';
    }
    memcpy(msg + o, body_hex, 64);
    HMAC(EVP_sha256(), private_key, (int) strlen(private_key),
         (const unsigned char *) msg, total, md, &mdlen);
    free(msg);
    gw__hex_encode(md, 32, out);
}

void
gw__auth_sign_s3(const char *private_key, const char *project, int64_t ts,
                 const char *nonce, const void *body, size_t body_len,
                 char out[65])
{
    auth_sign_sha("GottWallS3", private_key, project, ts, nonce, NULL, 0,
                  body, body_len, out);
}

void
gw__auth_sign_s4(const char *private_key, const char *project, int64_t ts,
                 const char *nonce, const char *scope, const void *body,
                 size_t body_len, char out[65])
{
    auth_sign_sha("GottWallS4", private_key, project, ts, nonce,
                  scope != NULL ? scope : "", scope != NULL ? strlen(scope) : 0,
                  body, body_len, out);
}

/* ---- The replay cache ---- */

/* Keyed with the process's key: a client picks its nonces, not where
 * they fall. */
static uint32_t
auth_nonce_hash(const char *s, size_t len)
{
    uint64_t h = gw__hash_str(s, len);

    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t) h;
}

static auth_replay_t *
auth_replay_get(gw__auth_t *a, const char *project)
{
    auth_replay_t *r;

    for (r = a->replays; r != NULL; r = r->next)
        if (strcmp(r->project, project) == 0)
            return r;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->project = strdup(project);
    r->nbuckets = 64;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (r->project == NULL || r->buckets == NULL) {
        free(r->project);
        free(r->buckets);
        free(r);
        return NULL;
    }
    r->next = a->replays;
    a->replays = r;
    return r;
}

static void
auth_replay_unlink(auth_replay_t *r, auth_nonce_t *n)
{
    auth_nonce_t **pp = &r->buckets[n->hash & (r->nbuckets - 1)];

    while (*pp != NULL && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp == n)
        *pp = n->hnext;
}

static void
auth_replay_expire(auth_replay_t *r, double now)
{
    while (r->head != NULL && r->head->expiry <= now) {
        auth_nonce_t *n = r->head;
        r->head = n->fnext;
        if (r->head == NULL)
            r->tail = NULL;
        auth_replay_unlink(r, n);
        free(n);
        r->count--;
    }
}

static void
auth_replay_grow(auth_replay_t *r)
{
    size_t nb = r->nbuckets * 2, i;
    auth_nonce_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (i = 0; i < r->nbuckets; i++) {
        auth_nonce_t *n = r->buckets[i];
        while (n != NULL) {
            auth_nonce_t *next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = nb;
}

/* GW_OK if the nonce was new (it is now remembered until expiry). The
 * caller holds the owner's replay_mu. */
static int
auth_replay_locked(gw__auth_t *a, const char *scheme, const char *project,
                   const char *nonce, size_t len, double now, double expiry,
                   const char **reason, gw_error_t *err)
{
    auth_replay_t *r = auth_replay_get(a, project);
    uint32_t h = auth_nonce_hash(nonce, len);
    auth_nonce_t *n;

    if (r == NULL)
        return auth_fail(reason, "replay_cache_full", err,
                         "out of memory for the S3 replay cache");
    auth_replay_expire(r, now);
    for (n = r->buckets[h & (r->nbuckets - 1)]; n != NULL; n = n->hnext)
        if (n->hash == h && n->len == len && memcmp(n->nonce, nonce, len) == 0)
            return auth_fail(reason, "replay", err,
                             "%s nonce was already used (a replayed "
                             "request? use a new random nonce per request)",
                             scheme);
    if (r->count >= AUTH_REPLAY_CAP)
        return auth_fail(reason, "replay_cache_full", err,
                         "too many %s requests for project \"%s\" "
                         "inside AUTH_S3_WINDOW; try again later",
                         scheme, project);
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return auth_fail(reason, "replay_cache_full", err,
                         "out of memory for the S3 replay cache");
    memcpy(n->nonce, nonce, len);
    n->len = (uint8_t) len;
    n->hash = h;
    n->expiry = expiry;
    if (r->count >= r->nbuckets)
        auth_replay_grow(r);
    n->hnext = r->buckets[h & (r->nbuckets - 1)];
    r->buckets[h & (r->nbuckets - 1)] = n;
    if (r->tail != NULL)
        r->tail->fnext = n;
    else
        r->head = n;
    r->tail = n;
    r->count++;
    return GW_OK;
}

static int
auth_replay_check(gw__auth_t *a, const char *scheme, const char *project,
                  const char *nonce, size_t len, double now, double expiry,
                  const char **reason, gw_error_t *err)
{
    gw__auth_t *owner = a->primary != NULL ? a->primary : a;
    int rc;

    pthread_mutex_lock(&owner->replay_mu);
    rc = auth_replay_locked(owner, scheme, project, nonce, len, now, expiry,
                            reason, err);
    pthread_mutex_unlock(&owner->replay_mu);
    return rc;
}

/* ---- The schemes ---- */

static int
auth_skew(const gw__auth_t *a)
{
    return (a->cfg != NULL && a->cfg->auth_max_skew > 0)
               ? a->cfg->auth_max_skew
               : AUTH_DEFAULT_SKEW;
}

/* The largest base a legacy signature may use: how long it stays valid. */
static int
auth_max_base(const gw__auth_t *a)
{
    return (a->cfg != NULL && a->cfg->auth_max_base > 0
            && a->cfg->auth_max_base <= AUTH_BASE_LIMIT)
               ? a->cfg->auth_max_base
               : AUTH_BASE_LIMIT;
}

static int
auth_s3_window(const gw__auth_t *a)
{
    return (a->cfg != NULL && a->cfg->auth_s3_window > 0)
               ? a->cfg->auth_s3_window
               : AUTH_DEFAULT_S3_WINDOW;
}

/* Checks ts against now with a window; GW_OK or a "stale" failure. */
static int
auth_check_time(int64_t ts, double now, int window, const char *setting,
                const char **reason, gw_error_t *err)
{
    double d = (double) ts - now;

    if (fabs(d) <= (double) window)
        return GW_OK;
    return auth_fail(reason, "stale", err,
                     "timestamp %lld is %.0f s %s the server's clock, more "
                     "than %s (%d s) allows; check the client's clock",
                     (long long) ts, floor(fabs(d)),
                     d < 0 ? "behind" : "ahead of", setting, window);
}

/* The legacy signature of (project, solt), from the cache or computed. */
static void
auth_legacy_sign(gw__auth_t *a, const gw__project_t *p, int64_t solt,
                 char out[33])
{
    uint64_t h = (uint64_t) (uintptr_t) p * 0x9e3779b97f4a7c15ull
                 ^ (uint64_t) solt * 0xbf58476d1ce4e5b9ull;
    auth_sign_t *e = &a->signs[(h >> 32) % AUTH_SIGN_CACHE];

    if (e->project != p || e->solt != solt) {
        gw__auth_sign_legacy(p->public_key, p->private_key, solt, 1, e->sign);
        e->project = p;
        e->solt = solt;
    }
    memcpy(out, e->sign, 33);
}

/* Is a legacy solt inside now - base - skew .. now + skew? The signature
 * covers the solt only, not ts: this bounds how long a captured header
 * stays good with its ts rewritten (base + skew seconds at most). */
static int
auth_solt_in_window(int64_t solt, double now, int64_t base, int skew)
{
    return (double) solt >= now - (double) base - skew
           && (double) solt <= now + skew;
}

/* Verifies a legacy sign for (public, private, ts, base) against the floor
 * solt and the round-to-nearest solt; both are always compared. GW_OK when
 * one matches inside the window; else *matched is the solt that matched
 * outside it, or -1 when none matched. */
static int
auth_legacy_matches(gw__auth_t *a, const gw__project_t *p, int64_t ts,
                    int64_t base, const char *sign, double now,
                    int64_t *matched)
{
    char s1[33], s2[33];
    int64_t lo = (ts / base) * base;
    int64_t hi = ((ts % base) * 2 >= base) ? lo + base : lo;
    int skew = auth_skew(a), ok1, ok2;

    auth_legacy_sign(a, p, lo, s1);
    auth_legacy_sign(a, p, hi, s2);
    ok1 = CRYPTO_memcmp(s1, sign, 32) == 0;
    ok2 = CRYPTO_memcmp(s2, sign, 32) == 0;
    OPENSSL_cleanse(s1, sizeof(s1));
    OPENSSL_cleanse(s2, sizeof(s2));
    if ((ok1 && auth_solt_in_window(lo, now, base, skew))
        || (ok2 && auth_solt_in_window(hi, now, base, skew)))
        return GW_OK;
    *matched = ok2 ? hi : ok1 ? lo : -1;
    return GW_ERR;
}

/* The failure for a legacy signature whose solt is outside the window. */
static int
auth_solt_stale(const char *scheme, int64_t solt, double now, int64_t base,
                int skew, const char **reason, gw_error_t *err)
{
    double d = (double) solt - now;

    if (d > 0)
        return auth_fail(reason, "stale", err,
                         "%s signature's solt %lld is %.0f s ahead of the "
                         "server's clock, more than AUTH_MAX_SKEW (%d s) "
                         "allows; check the client's clock",
                         scheme, (long long) solt, floor(d), skew);
    return auth_fail(reason, "stale", err,
                     "%s signature's solt %lld is %.0f s behind the "
                     "server's clock, more than base + AUTH_MAX_SKEW "
                     "(%lld s) allows; check the client's clock",
                     scheme, (long long) solt, floor(-d),
                     (long long) base + skew);
}

/* The project of a signed header: the one its project token names (which
 * must then be the request's, if the request names one), else the
 * request's. GW_OK with *out, or a failure. */
static int
auth_header_project(const gw__auth_t *a, const char *scheme,
                    const auth_tok_t *tok, const gw_auth_req_t *req,
                    const gw__project_t **out, const char **reason,
                    gw_error_t *err)
{
    const char *pname;
    size_t plen;

    if (tok != NULL) {
        pname = tok->p;
        plen = tok->len;
        if (req->project != NULL
            && (strlen(req->project) != plen
                || memcmp(req->project, pname, plen) != 0))
            return auth_fail(reason, "bad_header", err,
                             "the project in the %s header does not match "
                             "the project \"%s\" of the request",
                             scheme, req->project);
    } else {
        if (req->project == NULL)
            return auth_fail(reason, "bad_header", err,
                             "malformed %s header: it must name the project",
                             scheme);
        pname = req->project;
        plen = strlen(pname);
    }
    *out = auth_project(a->cfg, pname, plen);
    if (*out == NULL)
        return auth_unknown_project(pname, plen, reason, err);
    return GW_OK;
}

/* S1 and S2: tok[0] ts, tok[1] sign, tok[2] base, tok[3] project (S2, or
 * the optional S1 one). */
static int
auth_legacy(gw__auth_t *a, const char *scheme, const auth_tok_t *tok,
            size_t ntok, const gw_auth_req_t *req, const char **project,
            const char **reason, gw_error_t *err)
{
    int is_s2 = strcmp(scheme, "GottWallS2") == 0;
    const gw__project_t *p;
    int64_t ts, base, matched;
    char sign[33];
    double now;

    if (is_s2 ? ntok != 4 : (ntok != 3 && ntok != 4))
        return auth_fail(reason, "bad_header", err,
                         is_s2 ? "malformed GottWallS2 header: expected "
                                 "\"GottWallS2 {ts} {sign} {base} {project}\""
                               : "malformed GottWallS1 header: expected "
                                 "\"GottWallS1 {ts} {sign} {base}\"");
    if (auth_parse_uint(&tok[0], AUTH_MAX_TS_DIGITS, &ts) != 0)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: ts must be integer epoch "
                         "seconds", scheme);
    if (auth_parse_hex(&tok[1], 32, sign) != 0)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: sign must be 32 hex digits",
                         scheme);
    if (auth_parse_uint(&tok[2], 12, &base) != 0 || base < 1
        || base > AUTH_BASE_LIMIT)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: base must be an integer "
                         "from 1 to %d", scheme, AUTH_BASE_LIMIT);
    if (base > auth_max_base(a))
        return auth_fail(reason, "base_too_large", err,
                         "%s base %lld is more than AUTH_MAX_BASE (%d) "
                         "allows; sign with a base from 1 to %d or raise "
                         "AUTH_MAX_BASE",
                         scheme, (long long) base, auth_max_base(a),
                         auth_max_base(a));

    if (auth_header_project(a, scheme, ntok == 4 ? &tok[3] : NULL, req, &p,
                            reason, err)
        != GW_OK)
        return GW_ERR;
    now = a->now_fn();
    if (auth_check_time(ts, now, auth_skew(a), "AUTH_MAX_SKEW", reason, err)
        != GW_OK)
        return GW_ERR;
    if (auth_legacy_matches(a, p, ts, base, sign, now, &matched) != GW_OK) {
        if (matched >= 0)
            return auth_solt_stale(scheme, matched, now, base, auth_skew(a),
                                   reason, err);
        return auth_fail(reason, "bad_signature", err,
                         "%s signature does not match project \"%s\"'s keys",
                         scheme, p->name);
    }
    *project = p->name;
    return GW_OK;
}

/* S3 and S4 (s4 set): tok[0] ts, tok[1] nonce, tok[2] sign, tok[3]
 * optional project. S4 also signs req->scope: what the request is for. */
static int
auth_s3(gw__auth_t *a, int s4, const auth_tok_t *tok, size_t ntok,
        const gw_auth_req_t *req, const char **project, const char **reason,
        gw_error_t *err)
{
    const char *scheme = s4 ? "GottWallS4" : "GottWallS3";
    const gw__project_t *p;
    size_t i;
    int64_t ts;
    char sign[65], expect[65], nonce[AUTH_NONCE_MAX + 1];
    double now;
    int window, ok;

    if (ntok != 3 && ntok != 4)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: expected "
                         "\"%s {ts} {nonce} {sign} [{project}]\"",
                         scheme, scheme);
    if (auth_parse_uint(&tok[0], AUTH_MAX_TS_DIGITS, &ts) != 0)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: ts must be integer "
                         "epoch seconds", scheme);
    for (i = 0; i < tok[1].len && i < AUTH_NONCE_MAX; i++) {
        char c = tok[1].p[i];
        if (!isalnum((unsigned char) c) && c != '_' && c != '-')
            break;
        nonce[i] = c;
    }
    if (tok[1].len < AUTH_NONCE_MIN || tok[1].len > AUTH_NONCE_MAX
        || i != tok[1].len)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: nonce must be %d to "
                         "%d characters of [A-Za-z0-9_-]",
                         scheme, AUTH_NONCE_MIN, AUTH_NONCE_MAX);
    nonce[tok[1].len] = '\0';
    if (auth_parse_hex(&tok[2], 64, sign) != 0)
        return auth_fail(reason, "bad_header", err,
                         "malformed %s header: sign must be 64 hex "
                         "digits", scheme);
    if (auth_header_project(a, scheme, ntok == 4 ? &tok[3] : NULL, req, &p,
                            reason, err)
        != GW_OK)
        return GW_ERR;
    now = a->now_fn();
    window = auth_s3_window(a);
    if (auth_check_time(ts, now, window, "AUTH_S3_WINDOW", reason, err)
        != GW_OK)
        return GW_ERR;
    if (s4)
        auth_sign_sha(scheme, p->private_key, p->name, ts, nonce,
                      req->scope != NULL ? req->scope : "",
                      req->scope != NULL ? req->scope_len : 0, req->body,
                      req->body_len, expect);
    else
        gw__auth_sign_s3(p->private_key, p->name, ts, nonce, req->body,
                         req->body_len, expect);
    ok = CRYPTO_memcmp(expect, sign, 64) == 0;
    OPENSSL_cleanse(expect, sizeof(expect));
    /* A header signed for another scope (another route, role or
     * transport) fails here too: the server cannot tell the two apart. */
    if (!ok)
        return auth_fail(reason, "bad_signature", err,
                         s4 ? "GottWallS4 signature does not match project "
                              "\"%s\"'s key, the body and the scope"
                            : "GottWallS3 signature does not match project "
                              "\"%s\"'s key and the body",
                         p->name);
    /* Remember the nonce until its ts can no longer pass the window. */
    if (auth_replay_check(a, scheme, p->name, nonce, tok[1].len, now,
                          now + 2.0 * window + 1.0, reason, err)
        != GW_OK)
        return GW_ERR;
    /* For the shared replay cache (gw__auth_last_nonce). */
    a->last.project = p->name;
    memcpy(a->last.nonce, nonce, tok[1].len + 1);
    a->last.len = tok[1].len;
    a->last.expires_at = now + 2.0 * window + 1.0;
    *project = p->name;
    return GW_OK;
}

int
gw__auth_has_nonce(const gw__auth_t *a)
{
    return a->last.project != NULL;
}

int
gw__auth_last_nonce(gw__auth_t *a, const char **project, char *nonce,
                    size_t *len, double *expires_at)
{
    if (a->last.project == NULL)
        return 0;
    *project = a->last.project;
    memcpy(nonce, a->last.nonce, a->last.len + 1);
    *len = a->last.len;
    *expires_at = a->last.expires_at;
    a->last.project = NULL;
    return 1;
}

static int
auth_basic(gw__auth_t *a, const char *val, size_t len,
           const gw_auth_req_t *req, const char **project,
           const char **reason, gw_error_t *err)
{
    const gw__project_t *p;
    unsigned char *dec;
    long n;
    const char *colon;
    const auth_keydig_t *kd;
    unsigned char d1[32], d2[32];
    size_t l1, l2, room;
    int ok;

    while (len > 0 && (*val == ' ' || *val == '\t')) {
        val++;
        len--;
    }
    if (len == 0 || len > 4096)
        return auth_fail(reason, "bad_header", err,
                         "malformed Basic credentials: expected "
                         "base64 of \"{public key}:{private key}\"");
    if (req->project == NULL)
        return auth_fail(reason, "bad_header", err,
                         "Basic credentials need a project in the request");
    p = auth_project(a->cfg, req->project, strlen(req->project));
    if (p == NULL)
        return auth_unknown_project(req->project, strlen(req->project),
                                    reason, err);
    room = len * 3 / 4 + 4; /* more than any base64 of len decodes to */
    dec = malloc(room);
    if (dec == NULL)
        return auth_fail(reason, "bad_header", err, "out of memory");
    n = gw__b64_decode(val, len, dec, room);
    colon = n > 0 ? memchr(dec, ':', (size_t) n) : NULL;
    if (colon == NULL) {
        if (n > 0)
            OPENSSL_cleanse(dec, (size_t) n);
        free(dec);
        return auth_fail(reason, "bad_header", err,
                         "malformed Basic credentials: expected "
                         "base64 of \"{public key}:{private key}\"");
    }
    l1 = (size_t) (colon - (const char *) dec);
    l2 = (size_t) n - l1 - 1;
    kd = auth_keydig(a, p);
    auth_digest(a, (char *) dec, l1, d1);
    auth_digest(a, colon + 1, l2, d2);
    /* public:private, or private:public; all four compared always. */
    ok = ((CRYPTO_memcmp(d1, kd->pub, 32) == 0)
          & (CRYPTO_memcmp(d2, kd->priv, 32) == 0))
         | ((CRYPTO_memcmp(d1, kd->priv, 32) == 0)
            & (CRYPTO_memcmp(d2, kd->pub, 32) == 0));
    OPENSSL_cleanse(dec, (size_t) n);
    free(dec);
    if (!ok)
        return auth_fail(reason, "bad_signature", err,
                         "Basic credentials do not match project \"%s\"'s "
                         "keys", p->name);
    *project = p->name;
    return GW_OK;
}

static int
auth_keys(gw__auth_t *a, const gw_auth_req_t *req, const char **project,
          const char **reason, gw_error_t *err)
{
    const gw__project_t *p;
    const auth_keydig_t *kd;
    unsigned char d1[32], d2[32];
    int ok;

    if (req->project == NULL || req->public_key == NULL
        || req->private_key == NULL)
        return auth_fail(reason, "bad_header", err,
                         "missing project, public key or private key");
    p = auth_project(a->cfg, req->project, strlen(req->project));
    if (p == NULL)
        return auth_unknown_project(req->project, strlen(req->project),
                                    reason, err);
    kd = auth_keydig(a, p);
    auth_digest(a, req->public_key, strlen(req->public_key), d1);
    auth_digest(a, req->private_key, strlen(req->private_key), d2);
    ok = (CRYPTO_memcmp(d1, kd->pub, 32) == 0)
         & (CRYPTO_memcmp(d2, kd->priv, 32) == 0);
    if (!ok)
        return auth_fail(reason, "bad_signature", err,
                         "the keys do not match project \"%s\"'s keys",
                         p->name);
    *project = p->name;
    return GW_OK;
}

/* Does the header start with word followed by a space or tab? */
static int
auth_prefix(const char *h, size_t len, const char *word)
{
    size_t wl = strlen(word);

    return len > wl && memcmp(h, word, wl) == 0
           && (h[wl] == ' ' || h[wl] == '\t');
}

int
gw__auth_check(gw__auth_t *a, const gw_auth_req_t *req, const char **project,
               const char **reason, gw_error_t *err)
{
    static const struct {
        const char *word;
        unsigned bit;
    } schemes[] = {{"GottWallS1", GW_AUTH_S1},
                   {"GottWallS2", GW_AUTH_S2},
                   {"GottWallS3", GW_AUTH_S3},
                   {"GottWallS4", GW_AUTH_S4},
                   {"Basic", GW_AUTH_BASIC}};
    const char *h = req->header;
    size_t len = req->header_len, i;
    auth_tok_t tok[AUTH_MAX_TOKENS];
    size_t ntok;

    if (reason != NULL)
        *reason = NULL;
    a->last.project = NULL;
    if (h == NULL || len == 0) {
        if ((req->schemes & GW_AUTH_KEYS) && req->public_key != NULL)
            return auth_keys(a, req, project, reason, err);
        return auth_fail(reason, "bad_header", err, "missing credentials");
    }
    /* Surrounding whitespace (a line end after a TCP header) is ignored. */
    while (len > 0 && isspace((unsigned char) h[0])) {
        h++;
        len--;
    }
    while (len > 0 && isspace((unsigned char) h[len - 1]))
        len--;

    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        const char *word = schemes[i].word;
        size_t wl = strlen(word);

        if (!auth_prefix(h, len, word))
            continue;
        if (!(req->schemes & schemes[i].bit))
            return auth_fail(reason, "bad_header", err,
                             "%s is not accepted here", word);
        if (schemes[i].bit == GW_AUTH_BASIC)
            return auth_basic(a, h + wl, len - wl, req, project, reason, err);
        ntok = auth_split(h + wl, len - wl, tok, AUTH_MAX_TOKENS);
        if (schemes[i].bit == GW_AUTH_S3 || schemes[i].bit == GW_AUTH_S4)
            return auth_s3(a, schemes[i].bit == GW_AUTH_S4, tok, ntok, req,
                           project, reason, err);
        return auth_legacy(a, word, tok, ntok, req, project, reason, err);
    }
    return auth_fail(reason, "bad_header", err,
                     "malformed credentials: expected a GottWallS1, "
                     "GottWallS2, GottWallS3, GottWallS4 or Basic header");
}
