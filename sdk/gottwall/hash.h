/*
 * gottwall/hash.h: a keyed hash for hash tables whose keys come from the
 * network (metric names, filter values, statsd keys).
 *
 * An unkeyed hash (FNV-1a, which the core and the in-tree plugins used
 * before) lets anyone who can send metric names pick names that all fall
 * into one run of slots, so that every insert probes all of them: 100,000
 * such names cost a table some 10^10 probes. With a key of 128 random
 * bits chosen by each process, nobody outside it can compute where a name
 * falls. The function is SipHash-1-3 (Aumasson and Bernstein, "SipHash: a
 * fast short-input PRF", 2012, with one compression and three finalization
 * rounds, as Rust's and Python's hash tables use it): a word at a time,
 * which is also fewer instructions than a byte-at-a-time hash for names
 * of more than a few bytes.
 *
 * Header only, no ABI change: every function is static inline, and the
 * key is the caller's (a plugin fills a gw_hash_key_t from the system's
 * random source once, e.g. getrandom(2), and keeps it with its tables).
 * Values are never stored: they differ between processes and versions.
 *
 *   gw_hash_t h;
 *   gw_hash_begin(&h, &key);
 *   gw_hash_add(&h, name, name_len);
 *   gw_hash_add_len(&h, value_len);  (before a string that is not last)
 *   gw_hash_add(&h, value, value_len);
 *   slot = gw_hash_end(&h) & mask;
 *
 * Two keys hash apart when their pieces differ, as long as every piece but
 * the last is preceded by its length (gw_hash_add_len): ("ab", "c") and
 * ("a", "bc") then differ.
 */
#ifndef GOTTWALL_HASH_H
#define GOTTWALL_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_hash_key_s {
    uint64_t k0, k1;
} gw_hash_key_t;

/* A hash being computed: SipHash's state, the bytes of the word not yet
 * full (little-endian, ntail of them) and the length so far. */
typedef struct gw_hash_s {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;
    unsigned ntail;
    uint64_t len;
} gw_hash_t;

#define GW_HASH_ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

static inline void
gw_hash_round(gw_hash_t *h)
{
    h->v0 += h->v1;
    h->v1 = GW_HASH_ROTL(h->v1, 13);
    h->v1 ^= h->v0;
    h->v0 = GW_HASH_ROTL(h->v0, 32);
    h->v2 += h->v3;
    h->v3 = GW_HASH_ROTL(h->v3, 16);
    h->v3 ^= h->v2;
    h->v0 += h->v3;
    h->v3 = GW_HASH_ROTL(h->v3, 21);
    h->v3 ^= h->v0;
    h->v2 += h->v1;
    h->v1 = GW_HASH_ROTL(h->v1, 17);
    h->v1 ^= h->v2;
    h->v2 = GW_HASH_ROTL(h->v2, 32);
}

/* One 8-byte word m through c rounds. */
static inline void
gw_hash_word(gw_hash_t *h, uint64_t m, int c)
{
    int i;

    h->v3 ^= m;
    for (i = 0; i < c; i++)
        gw_hash_round(h);
    h->v0 ^= m;
}

/* The little-endian word at p. */
static inline uint64_t
gw_hash_load(const unsigned char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16 |
           (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32 |
           (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48 |
           (uint64_t) p[7] << 56;
}

static inline void
gw_hash_begin(gw_hash_t *h, const gw_hash_key_t *key)
{
    h->v0 = key->k0 ^ UINT64_C(0x736f6d6570736575);
    h->v1 = key->k1 ^ UINT64_C(0x646f72616e646f6d);
    h->v2 = key->k0 ^ UINT64_C(0x6c7967656e657261);
    h->v3 = key->k1 ^ UINT64_C(0x7465646279746573);
    h->tail = 0;
    h->ntail = 0;
    h->len = 0;
}

/* The n < 8 bytes at p as the low bytes of a little-endian word. */
static inline uint64_t
gw_hash_partial(const unsigned char *p, size_t n)
{
    uint64_t w = 0;

    switch (n) {
    case 7:
        w |= (uint64_t) p[6] << 48;
        /* fall through */
    case 6:
        w |= (uint64_t) p[5] << 40;
        /* fall through */
    case 5:
        w |= (uint64_t) p[4] << 32;
        /* fall through */
    case 4:
        w |= (uint64_t) p[3] << 24;
        /* fall through */
    case 3:
        w |= (uint64_t) p[2] << 16;
        /* fall through */
    case 2:
        w |= (uint64_t) p[1] << 8;
        /* fall through */
    case 1:
        w |= (uint64_t) p[0];
        /* fall through */
    default:
        break;
    }
    return w;
}

/* Adds n bytes at p with c rounds per word (gw_hash_add: c = 1). */
static inline void
gw_hash_add_c(gw_hash_t *h, const void *p, size_t n, int c)
{
    const unsigned char *s = (const unsigned char *) p;
    size_t take;

    h->len += n;
    if (h->ntail > 0) {
        take = 8 - h->ntail < n ? 8 - h->ntail : n;
        h->tail |= gw_hash_partial(s, take) << (8 * h->ntail);
        h->ntail += (unsigned) take;
        s += take;
        n -= take;
        if (h->ntail < 8)
            return;
        gw_hash_word(h, h->tail, c);
        h->tail = 0;
        h->ntail = 0;
    }
    for (; n >= 8; n -= 8, s += 8)
        gw_hash_word(h, gw_hash_load(s), c);
    if (n > 0) {
        h->tail = gw_hash_partial(s, n);
        h->ntail = (unsigned) n;
    }
}

/* The hash of what was added, with c and d rounds (gw_hash_end: 1, 3). */
static inline uint64_t
gw_hash_end_cd(gw_hash_t *h, int c, int d)
{
    uint64_t b = (h->len & 0xff) << 56 | h->tail;
    int i;

    gw_hash_word(h, b, c);
    h->v2 ^= 0xff;
    for (i = 0; i < d; i++)
        gw_hash_round(h);
    return h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}

static inline void
gw_hash_add(gw_hash_t *h, const void *p, size_t n)
{
    gw_hash_add_c(h, p, n, 1);
}

/* Adds the length n (4 bytes) before a piece that is not the last. */
static inline void
gw_hash_add_len(gw_hash_t *h, size_t n)
{
    unsigned char b[4];

    b[0] = (unsigned char) (n & 0xff);
    b[1] = (unsigned char) ((n >> 8) & 0xff);
    b[2] = (unsigned char) ((n >> 16) & 0xff);
    b[3] = (unsigned char) ((n >> 24) & 0xff);
    gw_hash_add_c(h, b, sizeof(b), 1);
}

static inline uint64_t
gw_hash_end(gw_hash_t *h)
{
    return gw_hash_end_cd(h, 1, 3);
}

/* The hash of one string. */
static inline uint64_t
gw_hash_bytes(const gw_hash_key_t *key, const void *p, size_t n)
{
    gw_hash_t h;

    gw_hash_begin(&h, key);
    gw_hash_add(&h, p, n);
    return gw_hash_end(&h);
}

/* The hash of two strings (a's length first, so that no two pairs of
 * different strings are one byte sequence). */
static inline uint64_t
gw_hash_pair(const gw_hash_key_t *key, const void *a, size_t an,
             const void *b, size_t bn)
{
    gw_hash_t h;

    gw_hash_begin(&h, key);
    gw_hash_add_len(&h, an);
    gw_hash_add(&h, a, an);
    gw_hash_add(&h, b, bn);
    return gw_hash_end(&h);
}

#endif /* GOTTWALL_HASH_H */
