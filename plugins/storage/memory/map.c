/*
 * plugins/storage/memory/map.c: an insertion-ordered hash table of byte
 * strings (see map.h). FNV-1a hashing, linear probing, load factor <= 1/2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "../../common/keyhash.h"

void
mm_map_init(mm_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void
mm_map_free(mm_map_t *m, void (*free_value)(void *))
{
    size_t i;

    for (i = 0; i < m->count; i++) {
        if (free_value != NULL && m->entries[i].value != NULL)
            free_value(m->entries[i].value);
        free(m->entries[i].key);
    }
    free(m->entries);
    free(m->index);
    memset(m, 0, sizeof(*m));
}

static long
mm_find(const mm_map_t *m, const void *key, size_t keylen, uint64_t h,
        size_t *slot)
{
    size_t mask, i;

    if (m->slots == 0) {
        *slot = 0;
        return -1;
    }
    mask = m->slots - 1;
    for (i = h & mask;; i = (i + 1) & mask) {
        int32_t e = m->index[i];

        if (e < 0) {
            *slot = i;
            return -1;
        }
        if (m->entries[e].hash == h && m->entries[e].keylen == keylen &&
            memcmp(m->entries[e].key, key, keylen) == 0) {
            *slot = i;
            return e;
        }
    }
}

/* Fills index (slots slots, a power of two) with the entries' positions. */
static void
mm_fill(const mm_map_t *m, int32_t *index, size_t slots)
{
    size_t i;

    for (i = 0; i < slots; i++)
        index[i] = -1;
    for (i = 0; i < m->count; i++) {
        size_t j = m->entries[i].hash & (slots - 1);

        while (index[j] >= 0)
            j = (j + 1) & (slots - 1);
        index[j] = (int32_t) i;
    }
}

static int
mm_grow(mm_map_t *m)
{
    size_t slots = m->slots ? m->slots * 2 : 16;
    int32_t *index = malloc(slots * sizeof(*index));

    if (index == NULL)
        return -1;
    mm_fill(m, index, slots);
    free(m->index);
    m->index = index;
    m->slots = slots;
    return 0;
}

void *
mm_map_get(const mm_map_t *m, const void *key, size_t keylen)
{
    size_t slot;
    long e = mm_find(m, key, keylen, pc_hash(key, keylen), &slot);

    return e < 0 ? NULL : m->entries[e].value;
}

mm_entry_t *
mm_map_upsert(mm_map_t *m, const void *key, size_t keylen, int *created)
{
    uint64_t h = pc_hash(key, keylen);
    size_t slot;
    long e;
    mm_entry_t *ent;

    *created = 0;
    e = mm_find(m, key, keylen, h, &slot);
    if (e >= 0)
        return &m->entries[e];
    if ((m->count + 1) * 2 > m->slots) {
        if (m->count >= INT32_MAX / 2 || mm_grow(m) < 0)
            return NULL;
        mm_find(m, key, keylen, h, &slot);
    }
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        mm_entry_t *n = realloc(m->entries, cap * sizeof(*n));

        if (n == NULL)
            return NULL;
        m->entries = n;
        m->cap = cap;
    }
    ent = &m->entries[m->count];
    ent->key = malloc(keylen + 1);
    if (ent->key == NULL)
        return NULL;
    memcpy(ent->key, key, keylen);
    ent->key[keylen] = '\0';
    ent->keylen = keylen;
    ent->hash = h;
    ent->value = NULL;
    m->index[slot] = (int32_t) m->count;
    m->count++;
    *created = 1;
    return ent;
}

void *
mm_map_remove(mm_map_t *m, const void *key, size_t keylen)
{
    size_t slot;
    long e = mm_find(m, key, keylen, pc_hash(key, keylen), &slot);
    void *value;

    if (e < 0)
        return NULL;
    value = m->entries[e].value;
    free(m->entries[e].key);
    m->entries[e] = m->entries[m->count - 1];
    m->count--;
    mm_fill(m, m->index, m->slots);
    return value;
}
