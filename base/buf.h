/*
 * base/buf.h: the core's small byte utilities: a growable NUL-terminated
 * buffer, hex digits, URL (percent) decoding, strict base64 decoding, and
 * the process's keyed hash (gottwall/hash.h) with a final mix. Used by the
 * HTTP server, the auth schemes, the read API and the counters'
 * rendering; the hash by the aggregation tables, the registries, the
 * per-address limits and the replay cache.
 */
#ifndef GW_BASE_BUF_H
#define GW_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/hash.h>

/* ---- a growable buffer ----------------------------------------------- */

/* Zero-initialised ({0}) it is empty. p is NULL until the first append,
 * then always NUL-terminated (p[len] == '\0'). oom is set when an append
 * failed for want of memory: the content then misses that piece (later
 * appends are still tried), and a caller that must not use a partial
 * result checks oom at the end. */
typedef struct gw__buf_s {
    char *p;
    size_t len, cap;
    int oom;
} gw__buf_t;

/* Room for extra more bytes and the NUL. 0, or -1 (oom set). */
int gw__buf_reserve(gw__buf_t *b, size_t extra);
/* Appends data[0..len). 0, or -1 (oom set; b unchanged). */
int gw__buf_add(gw__buf_t *b, const void *data, size_t len);
/* Appends s up to its NUL. 0 or -1, as gw__buf_add. */
int gw__buf_puts(gw__buf_t *b, const char *s);
/* Appends printf-formatted text. 0, or -1 (a format error, or oom set). */
int gw__buf_printf(gw__buf_t *b, const char *fmt, ...) GW_PRINTF(2, 3);
/* Frees the memory and empties b (oom cleared). */
void gw__buf_free(gw__buf_t *b);

/* ---- hex and URL decoding -------------------------------------------- */

/* The value of one hex digit (0-9, a-f, A-F), or -1. */
int gw__hex_val(int ch);
/* Writes in[0..n) as 2 * n lowercase hex digits and a NUL into out. */
void gw__hex_encode(const unsigned char *in, size_t n, char *out);

#define GW__URL_PLUS 1   /* '+' decodes to a space (forms, query strings) */
#define GW__URL_NO_NUL 2 /* a %00 makes the whole string invalid */

/* Decodes s[0..len) into a new NUL-terminated string the caller frees:
 * '%' and two hex digits (both within s) become that byte; any other byte,
 * a '%' without two hex digits included, is copied. NULL when out of
 * memory, or with GW__URL_NO_NUL when a %00 would cut the string short. */
char *gw__url_decode(const char *s, size_t len, int flags);

/* ---- base64 ----------------------------------------------------------- */

/* Decodes strict standard base64 (RFC 4648 alphabet, no whitespace) of
 * in[0..len) into out, which has room for cap bytes. The "=" padding is
 * optional, but when present it must complete the last group of four.
 * Returns the decoded length, or -1 if in is not base64 or decodes to more
 * than cap bytes. */
long gw__b64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* ---- hashing --------------------------------------------------------- */

/* The process's key for every table whose keys come from the network
 * (gottwall/hash.h: SipHash-1-3), 128 random bits drawn before main. */
extern gw_hash_key_t gw__hash_key;

/* The hash of string s[0..n) and of the pair (a, b) under gw__hash_key. */
static inline uint64_t
gw__hash_str(const void *s, size_t n)
{
    return gw_hash_bytes(&gw__hash_key, s, n);
}

static inline uint64_t
gw__hash_pair(const void *a, size_t an, const void *b, size_t bn)
{
    return gw_hash_pair(&gw__hash_key, a, an, b, bn);
}

/* A bijective mix of 64 bits (MurmurHash3's finalizer): for keys made of
 * numbers, and to spread a keyed hash combined with one. */
static inline uint64_t
gw__hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

#endif /* GW_BASE_BUF_H */
