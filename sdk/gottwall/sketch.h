/*
 * gottwall/sketch.h: the cells of the timing and set kinds (ABI 1.5).
 *
 * A timing cell keeps count, sum (in gw_delta_t / gw_point_t), min, max
 * and a DDSketch of the values (Masson, Rim and Lee, "DDSketch: a fast
 * and fully-mergeable quantile sketch with relative-error guarantees",
 * VLDB 2019): a value v > 0 goes to bin i = ceil(log_gamma(v)), with
 * gamma = (1 + a) / (1 - a) and a = GW_SKETCH_ALPHA (1 %); -v to bin i of
 * a second store; |v| < GW_SKETCH_MIN_VALUE to the zero count. A bin's
 * value is 2 gamma^i / (gamma + 1), within a of every value in it, so
 * the q-quantile a sketch answers is within a (relative) of the exact
 * nearest-rank one: the value at rank ceil(q n) of the n sorted values.
 * Merging adds the counts bin by bin, so merging is exact: the sketch of
 * an hour is the sketch of its minutes' events, whatever merged them.
 * A cell holds at most GW_SKETCH_MAX_BINS bins: past that the lowest bins
 * (the most negative values, then the smallest positive ones) are folded
 * into the next one, as the paper's collapsing store does; only quantiles
 * that fall into folded bins lose the guarantee, and min stays exact.
 *
 * A set cell counts distinct members. Each member is hashed to 64 bits
 * (gw_set_hash: MurmurHash64A with Redis' seed, so the registers are
 * those Redis' own PFADD makes). Up to GW_SET_EXACT_MAX members the cell
 * keeps the hashes, sorted, and its count is exact; past that it keeps a
 * HyperLogLog of GW_HLL_REGISTERS registers (standard error 1.04 / 128 =
 * 0.81 %), estimated as Ertl's improved estimator does ("New cardinality
 * estimation algorithms for HyperLogLog sketches", 2017), the one Redis
 * uses. Merging is the union of hashes, or the maximum per register.
 *
 * No packaged C library does either (Debian has none; the reference
 * implementations are Java, Go and Python), so the SDK has its own: the
 * core, the storages in this tree and a third party's storage use the
 * same code, as static functions of this header (tests/sdk/test_sketch.c
 * tests them). Functions that allocate return GW_ERR when memory runs out
 * and leave the cell as it was.
 *
 * Encoding (gw_timing_encode, gw_set_encode): a storage that keeps cells
 * as bytes may use it; it is versioned by its first byte, little-endian
 * and the same on every machine.
 */
#ifndef GOTTWALL_SKETCH_H
#define GOTTWALL_SKETCH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/common.h>

#define GW_SKETCH_ALPHA 0.01
/* gamma = (1 + a) / (1 - a) and 1 / ln(gamma), for a = 0.01. */
#define GW_SKETCH_GAMMA (1.01 / 0.99)
#define GW_SKETCH_INV_LN_GAMMA 49.99833328888678
#define GW_SKETCH_MIN_VALUE 1e-9
#define GW_SKETCH_MAX_BINS 2048

/* One bin: count values whose bin index is index. */
typedef struct gw_bin_s {
    int32_t index;
    uint32_t reserved; /* 0 */
    uint64_t count;
} gw_bin_t;

/*
 * A timing cell's sketch. pos and neg are sorted by index, distinct, with
 * count > 0 (neg holds the bins of -v for negative v). As a borrowed view
 * (in a batch, a query's answer) the cap members are unused.
 */
typedef struct gw_timing_s {
    double min, max;   /* of the values (meaningless while empty) */
    uint64_t zero;     /* values with |v| < GW_SKETCH_MIN_VALUE */
    gw_bin_t *pos;
    size_t npos, cappos;
    gw_bin_t *neg;
    size_t nneg, capneg;
} gw_timing_t;

/* The bin of |v| >= GW_SKETCH_MIN_VALUE. */
static inline int32_t
gw_sketch_index(double absv)
{
    return (int32_t) ceil(log(absv) * GW_SKETCH_INV_LN_GAMMA);
}

/* The value a bin stands for: within a of every value of the bin. */
static inline double
gw_sketch_value(int32_t index)
{
    return 2.0 * pow(GW_SKETCH_GAMMA, (double) index) /
           (GW_SKETCH_GAMMA + 1.0);
}

static inline void
gw_timing_init(gw_timing_t *t)
{
    memset(t, 0, sizeof(*t));
}

static inline void
gw_timing_free(gw_timing_t *t)
{
    free(t->pos);
    free(t->neg);
    gw_timing_init(t);
}

/* Values in the sketch: zero + every bin's count. */
static inline uint64_t
gw_timing_total(const gw_timing_t *t)
{
    uint64_t n = t->zero;
    size_t i;

    for (i = 0; i < t->npos; i++)
        n += t->pos[i].count;
    for (i = 0; i < t->nneg; i++)
        n += t->neg[i].count;
    return n;
}

/* Folds bins so that npos + nneg <= GW_SKETCH_MAX_BINS: the lowest values
 * go first, i.e. the highest neg indices (kept as one bin, the lowest
 * neg index), then the lowest pos indices. */
static inline void
gw__timing_collapse(gw_timing_t *t)
{
    size_t over, k, i;
    uint64_t c;

    if (t->npos + t->nneg <= GW_SKETCH_MAX_BINS)
        return;
    over = t->npos + t->nneg - GW_SKETCH_MAX_BINS;
    if (t->nneg > 1) {
        k = over < t->nneg - 1 ? over : t->nneg - 1;
        /* neg[nneg - k - 1] takes the k highest. */
        for (c = 0, i = t->nneg - k; i < t->nneg; i++)
            c += t->neg[i].count;
        t->neg[t->nneg - k - 1].count += c;
        t->nneg -= k;
        over -= k;
    }
    if (over > 0 && t->npos > over) {
        for (c = 0, i = 0; i < over; i++)
            c += t->pos[i].count;
        t->pos[over].count += c;
        memmove(t->pos, t->pos + over, (t->npos - over) * sizeof(gw_bin_t));
        t->npos -= over;
    }
}

/* Room for n bins in *bins (capacity *cap). GW_ERR: out of memory. */
static inline int
gw__bins_room(gw_bin_t **bins, size_t *cap, size_t n)
{
    size_t c = *cap ? *cap : 8;
    gw_bin_t *b;

    if (n <= *cap)
        return GW_OK;
    while (c < n)
        c *= 2;
    b = (gw_bin_t *) realloc(*bins, c * sizeof(gw_bin_t));
    if (b == NULL)
        return GW_ERR;
    *bins = b;
    *cap = c;
    return GW_OK;
}

/* Adds n counts to bin index of a store. */
static inline int
gw__bins_add(gw_bin_t **bins, size_t *nbins, size_t *cap, int32_t index,
             uint64_t n)
{
    size_t lo = 0, hi = *nbins, mid;

    /* Values cluster: the last bin first, then a binary search. */
    if (hi > 0 && (*bins)[hi - 1].index == index) {
        (*bins)[hi - 1].count += n;
        return GW_OK;
    }
    while (lo < hi) {
        mid = (lo + hi) / 2;
        if ((*bins)[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < *nbins && (*bins)[lo].index == index) {
        (*bins)[lo].count += n;
        return GW_OK;
    }
    if (gw__bins_room(bins, cap, *nbins + 1) != GW_OK)
        return GW_ERR;
    memmove(*bins + lo + 1, *bins + lo, (*nbins - lo) * sizeof(gw_bin_t));
    (*bins)[lo].index = index;
    (*bins)[lo].reserved = 0;
    (*bins)[lo].count = n;
    (*nbins)++;
    return GW_OK;
}

/* The bin index gw_timing_add_index wants for v: gw_sketch_index(|v|),
 * or 0 for a v that counts as zero. */
static inline int32_t
gw_timing_index_of(double v)
{
    return v >= GW_SKETCH_MIN_VALUE    ? gw_sketch_index(v)
           : v <= -GW_SKETCH_MIN_VALUE ? gw_sketch_index(-v)
                                       : 0;
}

/* gw_timing_add with index = gw_timing_index_of(v) computed once for
 * several cells. It cannot fail when the store v goes to (pos for
 * v >= GW_SKETCH_MIN_VALUE, neg for v <= -GW_SKETCH_MIN_VALUE) has room
 * for one more bin (cappos > npos, capneg > nneg). */
static inline int
gw_timing_add_index(gw_timing_t *t, double v, int32_t index, uint64_t n)
{
    int empty = t->zero == 0 && t->npos == 0 && t->nneg == 0;
    int rc = GW_OK;

    if (v >= GW_SKETCH_MIN_VALUE)
        rc = gw__bins_add(&t->pos, &t->npos, &t->cappos, index, n);
    else if (v <= -GW_SKETCH_MIN_VALUE)
        rc = gw__bins_add(&t->neg, &t->nneg, &t->capneg, index, n);
    else
        t->zero += n;
    if (rc != GW_OK)
        return rc;
    if (empty || v < t->min)
        t->min = v;
    if (empty || v > t->max)
        t->max = v;
    gw__timing_collapse(t);
    return GW_OK;
}

/* Adds n values v (finite) to t. GW_ERR: out of memory, t unchanged. */
static inline int
gw_timing_add(gw_timing_t *t, double v, uint64_t n)
{
    return gw_timing_add_index(t, v, gw_timing_index_of(v), n);
}

/* Merges the sorted store b into a's (*bins, *nbins, *cap). */
static inline int
gw__bins_merge(gw_bin_t **bins, size_t *nbins, size_t *cap,
               const gw_bin_t *b, size_t nb)
{
    size_t i = 0, j = 0, k = 0, na = *nbins;
    gw_bin_t *out;

    if (nb == 0)
        return GW_OK;
    out = (gw_bin_t *) malloc((na + nb) * sizeof(gw_bin_t));
    if (out == NULL)
        return GW_ERR;
    while (i < na || j < nb) {
        if (j >= nb || (i < na && (*bins)[i].index < b[j].index))
            out[k++] = (*bins)[i++];
        else if (i >= na || b[j].index < (*bins)[i].index)
            out[k++] = b[j++];
        else {
            out[k] = (*bins)[i++];
            out[k++].count += b[j++].count;
        }
    }
    free(*bins);
    *bins = out;
    *nbins = k;
    *cap = na + nb;
    return GW_OK;
}

/* a += b (b may be a borrowed view). GW_ERR: out of memory; a may then
 * hold b's positive bins without its negative ones: a caller that must
 * not be left so merges into a copy. */
static inline int
gw_timing_merge(gw_timing_t *a, const gw_timing_t *b)
{
    int a_empty = a->zero == 0 && a->npos == 0 && a->nneg == 0;
    int b_empty = b->zero == 0 && b->npos == 0 && b->nneg == 0;

    if (b_empty)
        return GW_OK;
    if (gw__bins_merge(&a->pos, &a->npos, &a->cappos, b->pos, b->npos) !=
            GW_OK ||
        gw__bins_merge(&a->neg, &a->nneg, &a->capneg, b->neg, b->nneg) !=
            GW_OK)
        return GW_ERR;
    a->zero += b->zero;
    if (a_empty || b->min < a->min)
        a->min = b->min;
    if (a_empty || b->max > a->max)
        a->max = b->max;
    gw__timing_collapse(a);
    return GW_OK;
}

/* *dst = a copy of src (dst's old bins freed). GW_ERR: out of memory,
 * dst unchanged. */
static inline int
gw_timing_copy(gw_timing_t *dst, const gw_timing_t *src)
{
    gw_timing_t t;

    gw_timing_init(&t);
    if (gw_timing_merge(&t, src) != GW_OK) {
        gw_timing_free(&t);
        return GW_ERR;
    }
    t.min = src->min;
    t.max = src->max;
    gw_timing_free(dst);
    *dst = t;
    return GW_OK;
}

/*
 * The q-quantile (0 <= q <= 1) of the sketch's values, nearest-rank: the
 * value at rank max(1, ceil(q n)) of the n sorted values, within
 * GW_SKETCH_ALPHA of the exact one, and never outside [min, max]; q 0 is
 * min and q 1 max exactly. NAN when the sketch is empty.
 */
static inline double
gw_timing_quantile(const gw_timing_t *t, double q)
{
    uint64_t n = gw_timing_total(t), rank, seen = 0;
    double v;
    size_t i;

    if (n == 0)
        return NAN;
    if (q <= 0)
        return t->min;
    if (q >= 1)
        return t->max;
    /* Less a hair, so that 0.99 x 100 (98.99999999999999 or 99.00000000000001
     * in doubles) is rank 99. */
    rank = (uint64_t) ceil(q * (double) n - 1e-9);
    if (rank < 1)
        rank = 1;
    v = t->max;
    for (i = t->nneg; i-- > 0;)
        if ((seen += t->neg[i].count) >= rank) {
            v = -gw_sketch_value(t->neg[i].index);
            goto found;
        }
    if ((seen += t->zero) >= rank) {
        v = 0;
        goto found;
    }
    for (i = 0; i < t->npos; i++)
        if ((seen += t->pos[i].count) >= rank) {
            v = gw_sketch_value(t->pos[i].index);
            goto found;
        }
found:
    return v < t->min ? t->min : v > t->max ? t->max : v;
}

/* ---- encoding: varints ------------------------------------------------ */

static inline size_t
gw__varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char) v;
    return n;
}

/* GW_ERR: truncated or longer than 10 bytes. */
static inline int
gw__varint_get(const unsigned char *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    unsigned shift = 0;

    while (*pos < len && shift < 64) {
        unsigned char c = p[(*pos)++];

        r |= (uint64_t) (c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return GW_OK;
        }
        shift += 7;
    }
    return GW_ERR;
}

static inline uint64_t
gw__zigzag(int64_t v)
{
    return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static inline int64_t
gw__unzigzag(uint64_t v)
{
    return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

static inline void
gw__f64_put(unsigned char *p, double d)
{
    uint64_t u;
    int i;

    memcpy(&u, &d, 8);
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char) (u >> (8 * i));
}

static inline double
gw__f64_get(const unsigned char *p)
{
    uint64_t u = 0;
    double d;
    int i;

    for (i = 0; i < 8; i++)
        u |= (uint64_t) p[i] << (8 * i);
    memcpy(&d, &u, 8);
    return d;
}

/* The most bytes gw_timing_encode writes for t. */
static inline size_t
gw_timing_encoded_max(const gw_timing_t *t)
{
    return 1 + 16 + 3 * 10 + (t->npos + t->nneg) * 20;
}

/*
 * Writes t to buf (at least gw_timing_encoded_max(t) bytes); returns the
 * length. Format 1: the byte 'D', min and max (f64 LE), varints zero, npos,
 * nneg, then each store's bins as (zigzag varint of index minus the
 * previous index, from 0; varint count).
 */
static inline size_t
gw_timing_encode(const gw_timing_t *t, unsigned char *buf)
{
    size_t n = 0, i, s;
    int32_t prev;
    const gw_bin_t *bins;
    size_t nb;

    buf[n++] = 'D';
    gw__f64_put(buf + n, t->min);
    gw__f64_put(buf + n + 8, t->max);
    n += 16;
    n += gw__varint_put(buf + n, t->zero);
    n += gw__varint_put(buf + n, t->npos);
    n += gw__varint_put(buf + n, t->nneg);
    for (s = 0; s < 2; s++) {
        bins = s == 0 ? t->pos : t->neg;
        nb = s == 0 ? t->npos : t->nneg;
        for (prev = 0, i = 0; i < nb; i++) {
            n += gw__varint_put(buf + n, gw__zigzag((int64_t) bins[i].index -
                                                    prev));
            n += gw__varint_put(buf + n, bins[i].count);
            prev = bins[i].index;
        }
    }
    return n;
}

/* Reads what gw_timing_encode wrote into *t (initialised here; free it
 * with gw_timing_free). GW_ERR: not such an encoding (or out of memory),
 * and *t is empty. */
static inline int
gw_timing_decode(const unsigned char *p, size_t len, gw_timing_t *t)
{
    uint64_t zero, np, nn, v, c;
    size_t pos = 17, s, i, nb;
    gw_bin_t *bins;
    int64_t idx;

    gw_timing_init(t);
    if (len < 17 || p[0] != 'D')
        return GW_ERR;
    if (gw__varint_get(p, len, &pos, &zero) != GW_OK ||
        gw__varint_get(p, len, &pos, &np) != GW_OK ||
        gw__varint_get(p, len, &pos, &nn) != GW_OK ||
        np + nn > (uint64_t) (len - pos) / 2 + 1 ||
        np + nn > 4 * (uint64_t) GW_SKETCH_MAX_BINS)
        return GW_ERR;
    t->min = gw__f64_get(p + 1);
    t->max = gw__f64_get(p + 9);
    t->zero = zero;
    t->pos = (gw_bin_t *) calloc(np ? np : 1, sizeof(gw_bin_t));
    t->neg = (gw_bin_t *) calloc(nn ? nn : 1, sizeof(gw_bin_t));
    if (t->pos == NULL || t->neg == NULL)
        goto bad;
    t->cappos = np ? np : 1;
    t->capneg = nn ? nn : 1;
    for (s = 0; s < 2; s++) {
        bins = s == 0 ? t->pos : t->neg;
        nb = (size_t) (s == 0 ? np : nn);
        for (idx = 0, i = 0; i < nb; i++) {
            if (gw__varint_get(p, len, &pos, &v) != GW_OK ||
                gw__varint_get(p, len, &pos, &c) != GW_OK || c == 0)
                goto bad;
            idx += gw__unzigzag(v);
            if (idx < INT32_MIN || idx > INT32_MAX ||
                (i > 0 && idx <= bins[i - 1].index))
                goto bad;
            bins[i].index = (int32_t) idx;
            bins[i].count = c;
        }
    }
    if (pos != len)
        goto bad;
    t->npos = (size_t) np;
    t->nneg = (size_t) nn;
    return GW_OK;
bad:
    gw_timing_free(t);
    return GW_ERR;
}

/* ---- sets ----------------------------------------------------------- */

#define GW_SET_EXACT_MAX 1024
#define GW_HLL_P 14
#define GW_HLL_REGISTERS (1u << GW_HLL_P)
#define GW_HLL_Q (64 - GW_HLL_P)

/*
 * A set cell: exact (registers NULL: the nhashes hashes, sorted and
 * distinct, nhashes <= GW_SET_EXACT_MAX) or a HyperLogLog (registers:
 * GW_HLL_REGISTERS bytes, each the register's value 0..GW_HLL_Q + 1;
 * hashes unused). As a borrowed view the cap member is unused.
 */
typedef struct gw_set_s {
    uint64_t *hashes;
    size_t nhashes, caphashes;
    uint8_t *registers;
} gw_set_t;

/* MurmurHash64A (Austin Appleby's, little-endian reads) with Redis'
 * HyperLogLog seed: the hash Redis' PFADD uses. */
static inline uint64_t
gw_set_hash(const void *key, size_t len)
{
    const uint64_t m = UINT64_C(0xc6a4a7935bd1e995);
    const unsigned char *p = (const unsigned char *) key;
    uint64_t h = UINT64_C(0xadc83b19) ^ ((uint64_t) len * m), k;
    size_t i, nblocks = len / 8;
    int j;

    for (i = 0; i < nblocks; i++, p += 8) {
        for (k = 0, j = 7; j >= 0; j--)
            k = k << 8 | p[j];
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
    }
    if (len & 7) {
        for (j = (int) (len & 7) - 1; j >= 0; j--)
            h ^= (uint64_t) p[j] << (8 * j);
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

/* The register a hash sets, and the value it sets it to (at least). */
static inline void
gw_hll_position(uint64_t h, uint32_t *index, uint8_t *rank)
{
    uint64_t rest = (h >> GW_HLL_P) | (UINT64_C(1) << GW_HLL_Q);
    uint8_t r = 1;

    *index = (uint32_t) (h & (GW_HLL_REGISTERS - 1));
    while ((rest & 1) == 0) {
        r++;
        rest >>= 1;
    }
    *rank = r;
}

static inline void
gw_set_init(gw_set_t *s)
{
    memset(s, 0, sizeof(*s));
}

static inline void
gw_set_free(gw_set_t *s)
{
    free(s->hashes);
    free(s->registers);
    gw_set_init(s);
}

/* Turns an exact set into a HyperLogLog, in the registers r (zeroed,
 * GW_HLL_REGISTERS bytes, malloc'ed: s takes them). */
static inline void
gw__set_hll_into(gw_set_t *s, uint8_t *r)
{
    uint8_t rank;
    uint32_t idx;
    size_t i;

    for (i = 0; i < s->nhashes; i++) {
        gw_hll_position(s->hashes[i], &idx, &rank);
        if (rank > r[idx])
            r[idx] = rank;
    }
    free(s->hashes);
    s->hashes = NULL;
    s->nhashes = s->caphashes = 0;
    s->registers = r;
}

/* Turns an exact set into a HyperLogLog. GW_ERR: out of memory. */
static inline int
gw__set_to_hll(gw_set_t *s)
{
    uint8_t *r;

    if (s->registers != NULL)
        return GW_OK;
    r = (uint8_t *) calloc(GW_HLL_REGISTERS, 1);
    if (r == NULL)
        return GW_ERR;
    gw__set_hll_into(s, r);
    return GW_OK;
}

/*
 * gw_set_add that takes the registers it needs to become a HyperLogLog
 * from *spare (zeroed GW_HLL_REGISTERS bytes, malloc'ed; set to NULL once
 * taken) instead of allocating them. It cannot fail when the exact set
 * has room for one more hash (caphashes > nhashes, or nhashes is
 * GW_SET_EXACT_MAX) and, at GW_SET_EXACT_MAX hashes, *spare is given.
 */
static inline int
gw_set_add_with(gw_set_t *s, uint64_t h, uint8_t **spare)
{
    size_t lo = 0, hi = s->nhashes, mid, c;
    uint32_t idx;
    uint8_t rank;
    uint64_t *nh;

    if (s->registers == NULL) {
        while (lo < hi) {
            mid = (lo + hi) / 2;
            if (s->hashes[mid] < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < s->nhashes && s->hashes[lo] == h)
            return GW_OK;
        if (s->nhashes < GW_SET_EXACT_MAX) {
            if (s->nhashes == s->caphashes) {
                c = s->caphashes ? s->caphashes * 2 : 4;
                nh = (uint64_t *) realloc(s->hashes, c * sizeof(uint64_t));
                if (nh == NULL)
                    return GW_ERR;
                s->hashes = nh;
                s->caphashes = c;
            }
            memmove(s->hashes + lo + 1, s->hashes + lo,
                    (s->nhashes - lo) * sizeof(uint64_t));
            s->hashes[lo] = h;
            s->nhashes++;
            return GW_OK;
        }
        if (spare != NULL && *spare != NULL) {
            gw__set_hll_into(s, *spare);
            *spare = NULL;
        } else if (gw__set_to_hll(s) != GW_OK)
            return GW_ERR;
    }
    gw_hll_position(h, &idx, &rank);
    if (rank > s->registers[idx])
        s->registers[idx] = rank;
    return GW_OK;
}

/* Adds one member by its hash. GW_ERR: out of memory, s unchanged. */
static inline int
gw_set_add(gw_set_t *s, uint64_t h)
{
    return gw_set_add_with(s, h, NULL);
}

/* a = a u b (b may be a borrowed view). GW_ERR: out of memory; a then
 * holds part of b (a caller that must not be left so merges into a copy). */
static inline int
gw_set_merge(gw_set_t *a, const gw_set_t *b)
{
    size_t i;

    if (b->registers != NULL) {
        if (gw__set_to_hll(a) != GW_OK)
            return GW_ERR;
        for (i = 0; i < GW_HLL_REGISTERS; i++)
            if (b->registers[i] > a->registers[i])
                a->registers[i] = b->registers[i];
        return GW_OK;
    }
    for (i = 0; i < b->nhashes; i++)
        if (gw_set_add(a, b->hashes[i]) != GW_OK)
            return GW_ERR;
    return GW_OK;
}

/* Ertl's sigma and tau (the improved estimator's corrections). */
static inline double
gw__hll_sigma(double x)
{
    double y = 1, z = x, zp;

    if (x == 1.0)
        return INFINITY;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (zp != z);
    return z;
}

static inline double
gw__hll_tau(double x)
{
    double y = 1.0, z, zp;

    if (x == 0.0 || x == 1.0)
        return 0.0;
    z = 1 - x;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (zp != z);
    return z / 3;
}

/* The number of distinct members: exact below GW_SET_EXACT_MAX, else
 * estimated (standard error 0.81 %), rounded to an integer. */
static inline double
gw_set_count(const gw_set_t *s)
{
    const double m = GW_HLL_REGISTERS;
    uint32_t histo[GW_HLL_Q + 2];
    double z;
    size_t i;
    int j;

    if (s->registers == NULL)
        return (double) s->nhashes;
    memset(histo, 0, sizeof(histo));
    for (i = 0; i < GW_HLL_REGISTERS; i++)
        histo[s->registers[i] <= GW_HLL_Q + 1 ? s->registers[i]
                                              : GW_HLL_Q + 1]++;
    z = m * gw__hll_tau((m - histo[GW_HLL_Q + 1]) / m);
    for (j = GW_HLL_Q; j >= 1; --j) {
        z += histo[j];
        z *= 0.5;
    }
    z += m * gw__hll_sigma(histo[0] / m);
    return round(0.5 / log(2.0) * m * m / z);
}

/* The most bytes gw_set_encode writes for s. */
static inline size_t
gw_set_encoded_max(const gw_set_t *s)
{
    return s->registers != NULL ? 1 + 10 + GW_HLL_REGISTERS * 3
                                : 1 + 10 + s->nhashes * 10;
}

/*
 * Writes s to buf (at least gw_set_encoded_max(s) bytes); returns the
 * length. Format 1: 'E', varint n, then n hashes as varints of the
 * difference to the previous (from 0); or 'H', varint k, then the k
 * registers that are not 0 as (varint of index minus the previous index,
 * plus one for the first; one byte of value) when that is shorter than
 * 'R' followed by the GW_HLL_REGISTERS bytes.
 */
static inline size_t
gw_set_encode(const gw_set_t *s, unsigned char *buf)
{
    size_t n = 1, i, k = 0, sparse = 0;
    uint64_t prev = 0;
    uint32_t last = 0;

    if (s->registers == NULL) {
        buf[0] = 'E';
        n += gw__varint_put(buf + n, s->nhashes);
        for (i = 0; i < s->nhashes; i++) {
            n += gw__varint_put(buf + n, s->hashes[i] - prev);
            prev = s->hashes[i];
        }
        return n;
    }
    for (i = 0; i < GW_HLL_REGISTERS; i++)
        if (s->registers[i] != 0) {
            k++;
            sparse += (i - last + 1 < 128 ? 1 : i - last + 1 < 16384 ? 2 : 3) +
                      1;
            last = (uint32_t) i + 1;
        }
    if (sparse + 11 >= GW_HLL_REGISTERS) {
        buf[0] = 'R';
        memcpy(buf + 1, s->registers, GW_HLL_REGISTERS);
        return 1 + GW_HLL_REGISTERS;
    }
    buf[0] = 'H';
    n += gw__varint_put(buf + n, k);
    for (last = 0, i = 0; i < GW_HLL_REGISTERS; i++)
        if (s->registers[i] != 0) {
            n += gw__varint_put(buf + n, i - last + 1);
            buf[n++] = s->registers[i];
            last = (uint32_t) i + 1;
        }
    return n;
}

/* Reads what gw_set_encode wrote into *s (initialised here; free it with
 * gw_set_free). GW_ERR: not such an encoding (or out of memory), and *s
 * is empty. */
static inline int
gw_set_decode(const unsigned char *p, size_t len, gw_set_t *s)
{
    uint64_t n, v, h = 0, at = 0;
    size_t pos = 1, i;

    gw_set_init(s);
    if (len < 1)
        return GW_ERR;
    if (p[0] == 'R') {
        if (len != 1 + GW_HLL_REGISTERS)
            return GW_ERR;
        s->registers = (uint8_t *) malloc(GW_HLL_REGISTERS);
        if (s->registers == NULL)
            return GW_ERR;
        memcpy(s->registers, p + 1, GW_HLL_REGISTERS);
        for (i = 0; i < GW_HLL_REGISTERS; i++)
            if (s->registers[i] > GW_HLL_Q + 1)
                goto bad;
        return GW_OK;
    }
    if ((p[0] != 'E' && p[0] != 'H') ||
        gw__varint_get(p, len, &pos, &n) != GW_OK)
        return GW_ERR;
    if (p[0] == 'E') {
        if (n > GW_SET_EXACT_MAX || n > len - pos)
            return GW_ERR;
        s->hashes = (uint64_t *) malloc((n ? n : 1) * sizeof(uint64_t));
        if (s->hashes == NULL)
            return GW_ERR;
        s->caphashes = n ? n : 1;
        for (i = 0; i < n; i++) {
            if (gw__varint_get(p, len, &pos, &v) != GW_OK ||
                (i > 0 && v == 0))
                goto bad;
            h += v;
            if (i > 0 && h <= s->hashes[i - 1])
                goto bad;
            s->hashes[i] = h;
        }
        s->nhashes = (size_t) n;
    } else {
        if (n > GW_HLL_REGISTERS)
            return GW_ERR;
        s->registers = (uint8_t *) calloc(GW_HLL_REGISTERS, 1);
        if (s->registers == NULL)
            return GW_ERR;
        for (i = 0; i < n; i++) {
            if (gw__varint_get(p, len, &pos, &v) != GW_OK || v == 0 ||
                pos >= len)
                goto bad;
            at += v;
            if (at > GW_HLL_REGISTERS || p[pos] == 0 ||
                p[pos] > GW_HLL_Q + 1)
                goto bad;
            s->registers[at - 1] = p[pos++];
        }
    }
    if (pos != len)
        goto bad;
    return GW_OK;
bad:
    gw_set_free(s);
    return GW_ERR;
}

#endif /* GOTTWALL_SKETCH_H */
