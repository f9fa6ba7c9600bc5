/*
 * ingest/alloc.c: what ingest allocates with (ingest/ingest_int.h):
 * gw__malloc & co, which a test can make fail one allocation at a time
 * (gw__ingest_alloc_fail_after), the x-variants that stop the process for
 * start-up, and the arena, a bump allocator for the many small strings of
 * a table, a batch or a request, which can go back to a mark.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"

/* ---- the allocator ---------------------------------------------------- */

/* Allocations left to succeed before one fails (tests only, see
 * gw__ingest_alloc_fail_after); -1: none fails. A relaxed load per
 * allocation is all it costs when no test set it. */
static long alloc_fail_after = -1;

long
gw__ingest_alloc_fail_after(long n)
{
    return __atomic_exchange_n(&alloc_fail_after, n < 0 ? -1 : n,
                               __ATOMIC_RELAXED);
}

/* Whether this allocation is the one a test wants to fail. */
static int
alloc_fails(void)
{
    long n = __atomic_load_n(&alloc_fail_after, __ATOMIC_RELAXED);

    if (n < 0)
        return 0;
    __atomic_store_n(&alloc_fail_after, n - 1, __ATOMIC_RELAXED);
    return n == 0;
}

void *
gw__malloc(size_t n)
{
    return alloc_fails() ? NULL : malloc(n ? n : 1);
}

void *
gw__calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *
gw__realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : realloc(p, n ? n : 1);
}

static void
oom(size_t n)
{
    fprintf(stderr, "gottwall: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *
gw__xmalloc(size_t n)
{
    void *p = gw__malloc(n);

    if (p == NULL)
        oom(n);
    return p;
}

void *
gw__xcalloc(size_t n, size_t size)
{
    void *p = gw__calloc(n, size);

    if (p == NULL)
        oom(n * size);
    return p;
}

/* ---- the arena -------------------------------------------------------- */

struct gw__arena_chunk_s {
    gw__arena_chunk_t *next;
    size_t size;
    /* data follows, aligned like a double */
    double data[];
};

#define ARENA_CHUNK 65536

void
gw__arena_init(gw__arena_t *a)
{
    a->head = NULL;
    a->pos = NULL;
    a->left = 0;
}

/* gw__arena_alloc (align 8) and gw__arena_bytes_alloc (align 1), inlined
 * into gw__arena_strndup as well. */
static inline void *
arena_get(gw__arena_t *a, size_t n, size_t align)
{
    gw__arena_chunk_t *c;
    size_t size, pad = align > 1 ? (size_t) -(uintptr_t) a->pos & (align - 1)
                                  : 0;
    void *p;

    if (pad > 0 && pad <= a->left) {
        a->pos += pad;
        a->left -= pad;
    }
    if (n > a->left) {
        size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        c = gw__malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->size = size;
        if (size > ARENA_CHUNK && a->head != NULL) {
            /* A big one-off: keep the current chunk as the one to fill. */
            c->next = a->head->next;
            a->head->next = c;
            return c->data;
        }
        c->next = a->head;
        a->head = c;
        a->pos = (char *) c->data;
        a->left = size;
    }
    p = a->pos;
    a->pos += n;
    a->left -= n;
    return p;
}

void *
gw__arena_alloc(gw__arena_t *a, size_t n)
{
    return arena_get(a, (n + 7) & ~(size_t) 7, 8);
}

void *
gw__arena_bytes_alloc(gw__arena_t *a, size_t n)
{
    return arena_get(a, n, 1);
}

char *
gw__arena_strndup(gw__arena_t *a, const char *s, size_t n)
{
    char *p = arena_get(a, (n + 8) & ~(size_t) 7, 8);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
gw__arena_reset(gw__arena_t *a)
{
    gw__arena_chunk_t *c, *next;

    if (a->head == NULL)
        return;
    for (c = a->head->next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->head->next = NULL;
    a->pos = (char *) a->head->data;
    a->left = a->head->size;
}

void
gw__arena_mark(const gw__arena_t *a, gw__arena_mark_t *m)
{
    m->head = a->head;
    m->next = a->head != NULL ? a->head->next : NULL;
    m->pos = a->pos;
    m->left = a->left;
}

void
gw__arena_undo(gw__arena_t *a, const gw__arena_mark_t *m)
{
    gw__arena_chunk_t *c;

    /* Chunks made since went in front of the head, big one-offs right
     * after the head of their time. */
    while (a->head != m->head) {
        c = a->head;
        a->head = c->next;
        free(c);
    }
    while (a->head != NULL && a->head->next != m->next) {
        c = a->head->next;
        a->head->next = c->next;
        free(c);
    }
    a->pos = m->pos;
    a->left = m->left;
}

size_t
gw__arena_bytes(const gw__arena_t *a)
{
    const gw__arena_chunk_t *c;
    size_t n = 0;

    for (c = a->head; c != NULL; c = c->next)
        n += sizeof(*c) + c->size;
    return n;
}

void
gw__arena_free(gw__arena_t *a)
{
    gw__arena_chunk_t *c, *next;

    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    gw__arena_init(a);
}
