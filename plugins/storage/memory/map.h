/*
 * plugins/storage/memory/map.h: the memory storage's hash table.
 *
 * Maps byte-string keys to pointers and remembers insertion order, so that
 * iteration (metadata, snapshots) is stable and needs no sorting. Values
 * are replaced in place; mm_map_remove (the documents only) moves the last
 * entry into the hole, so it changes the order, and rebuilds the index. Open addressing over an
 * index array; the entries live in a separate growing array.
 */
#ifndef GW_MEMORY_MAP_H
#define GW_MEMORY_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct mm_entry_s {
    char *key; /* owned copy, NUL-terminated after keylen bytes */
    size_t keylen;
    uint64_t hash;
    void *value;
} mm_entry_t;

typedef struct mm_map_s {
    mm_entry_t *entries; /* insertion order */
    size_t count;
    size_t cap;
    int32_t *index; /* -1: empty slot; else an entries index */
    size_t slots;   /* power of two */
} mm_map_t;

void mm_map_init(mm_map_t *m);

/* Frees the keys and the arrays; free_value (may be NULL) frees values. */
void mm_map_free(mm_map_t *m, void (*free_value)(void *));

/* The value stored under key, or NULL. */
void *mm_map_get(const mm_map_t *m, const void *key, size_t keylen);

/* The entry of key, created with value NULL if missing (*created set to 1).
 * NULL only when out of memory. The pointer is valid until the next
 * insertion. */
mm_entry_t *mm_map_upsert(mm_map_t *m, const void *key, size_t keylen,
                          int *created);

/* Removes key's entry and answers its value (NULL: there was none, or its
 * value was NULL). O(count): meant for rare removals. */
void *mm_map_remove(mm_map_t *m, const void *key, size_t keylen);

#endif /* GW_MEMORY_MAP_H */
