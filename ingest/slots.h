/*
 * ingest/slots.h: open addressing over slots holding (32 bits of hash,
 * index + 1) of entries kept in an array that never moves them, shared by
 * the aggregation table (ingest/table.c) and the series registry
 * (ingest/series.c). Linear probing; removal shifts later slots of a run
 * back, so no tombstones are needed. Each entry holds its 64-bit hash at
 * hash_offset, from which the slots are rebuilt when they grow.
 */
#ifndef GW_INGEST_SLOTS_H
#define GW_INGEST_SLOTS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/common.h>

#include "ingest_int.h"

/* ---- slots: (hash >> 32) << 32 | (index + 1); 0 is empty ------------- */

#define SLOT(h, i) (((h) & UINT64_C(0xffffffff00000000)) | ((uint64_t) (i) + 1))
#define SLOT_HASH_MATCH(s, h) \
    (((s) ^ (h)) <= UINT64_C(0xffffffff)) /* same upper 32 bits */
#define SLOT_INDEX(s) ((uint32_t) ((s) & UINT64_C(0xffffffff)) - 1)

/* The empty slot where an entry of hash h goes. */
static inline size_t
sl_slot_free(const uint64_t *slots, size_t mask, uint64_t h)
{
    size_t j;

    for (j = (size_t) h & mask; slots[j] != 0; j = (j + 1) & mask)
        ;
    return j;
}

/* The hash of entries[i] (at hash_offset in each entry of stride bytes). */
static inline uint64_t
sl_entry_hash(const void *entries, size_t i, size_t stride, size_t hash_offset)
{
    uint64_t h;

    memcpy(&h, (const char *) entries + i * stride + hash_offset, sizeof(h));
    return h;
}

/* A new slot array of cap (a power of two) entries, refilled from hashes;
 * NULL if memory ran out. */
static inline uint64_t *
sl_slots_rebuild(size_t cap, const void *entries, size_t n, size_t stride,
              size_t hash_offset)
{
    uint64_t *slots = gw__calloc(cap, sizeof(*slots));
    size_t i;
    uint64_t h;

    if (slots == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        h = sl_entry_hash(entries, i, stride, hash_offset);
        slots[sl_slot_free(slots, cap - 1, h)] = SLOT(h, i);
    }
    return slots;
}

/* Doubles the slot array (*slots, *mask) of entries[0..n). GW_ERR: out
 * of memory, and the old one stays. */
static inline int
sl_slots_grow(uint64_t **slots, size_t *mask, const void *entries, size_t n,
           size_t stride, size_t hash_offset)
{
    size_t cap = (*mask + 1) * 2;
    uint64_t *s = sl_slots_rebuild(cap, entries, n, stride, hash_offset);

    if (s == NULL)
        return GW_ERR;
    free(*slots);
    *slots = s;
    *mask = cap - 1;
    return GW_OK;
}

/* Takes entry i (of hash h) out of the slots; later slots of its run move
 * back so that every other entry stays reachable from its first slot. */
static inline void
sl_slots_remove(uint64_t *slots, size_t mask, const void *entries, size_t stride,
             size_t hash_offset, uint64_t h, size_t i)
{
    size_t j, k, ideal;

    for (j = (size_t) h & mask; slots[j] != SLOT(h, i); j = (j + 1) & mask)
        ;
    slots[j] = 0;
    for (k = (j + 1) & mask; slots[k] != 0; k = (k + 1) & mask) {
        ideal = (size_t) sl_entry_hash(entries, SLOT_INDEX(slots[k]), stride,
                                    hash_offset) &
                mask;
        /* Move k back to j if j lies on the way from its ideal slot. */
        if (((k - ideal) & mask) >= ((k - j) & mask)) {
            slots[j] = slots[k];
            slots[k] = 0;
            j = k;
        }
    }
}

/* p grown to twice *cap elements of size bytes (64 if none yet); NULL if
 * memory ran out (p and *cap stay as they were). */
static inline void *
sl_array_grow(void *p, size_t *cap, size_t size)
{
    size_t n = *cap ? *cap * 2 : 64;
    void *q = gw__realloc(p, n * size);

    if (q != NULL)
        *cap = n;
    return q;
}

static inline size_t
sl_pow2_at_least(size_t n)
{
    size_t c = 16;

    while (c < n)
        c <<= 1;
    return c;
}

/* entry_room when the slots or the array must grow. */
static inline void *
sl_entry_grow(void *entries, size_t n, size_t *cap, size_t stride,
           size_t hash_offset, uint64_t **slots, size_t *mask, uint64_t h,
           size_t *j)
{
    /* The slots first if they would pass half full. */
    if ((n + 1) * 2 > *mask + 1) {
        if (sl_slots_grow(slots, mask, entries, n, stride, hash_offset) != GW_OK)
            return NULL;
        *j = sl_slot_free(*slots, *mask, h);
    }
    return n < *cap ? entries : sl_array_grow(entries, cap, stride);
}

/* Room for entry n of an array (*cap entries of stride bytes, each with
 * its hash at hash_offset) and of its slots (*slots, *mask), *j then the
 * free slot for hash h: the array, perhaps moved; NULL if memory ran out
 * (what grew stays grown). */
static inline void *
sl_entry_room(void *entries, size_t n, size_t *cap, size_t stride,
           size_t hash_offset, uint64_t **slots, size_t *mask, uint64_t h,
           size_t *j)
{
    if ((n + 1) * 2 <= *mask + 1 && n < *cap)
        return entries;
    return sl_entry_grow(entries, n, cap, stride, hash_offset, slots, mask, h, j);
}

#endif /* GW_INGEST_SLOTS_H */
