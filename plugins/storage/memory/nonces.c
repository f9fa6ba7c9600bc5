/*
 * plugins/storage/memory/nonces.c: the memory storage's share of the
 * replay cache (gw_storage_ops_t.nonce_claim): the S3/S4 nonces claimed
 * and not yet expired, kept in the snapshot so that a restart remembers
 * them. A hash set with chaining and a FIFO in claim order: expiries grow
 * with the claims (now + the window), so purging pops the FIFO's head
 * while it is expired, O(1) per nonce, and a lookup also checks the
 * expiry of what it finds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "../../common/keyhash.h"
#include "memory.h"

/* The keyed hash of the key: project, NUL, nonce (a client's choice). */
static uint64_t
mn_hash(const char *key, size_t len)
{
    return pc_hash(key, len);
}

static void
mn_unlink(ms_nonces_t *n, ms_nonce_t *e)
{
    ms_nonce_t **pp = &n->buckets[e->hash & (n->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    n->count--;
}

size_t
ms_nonces_purge(ms_nonces_t *n, double now)
{
    size_t dropped = 0;

    while (n->head != NULL && n->head->expires_at <= now) {
        ms_nonce_t *e = n->head;

        n->head = e->fnext;
        if (n->head == NULL)
            n->tail = NULL;
        mn_unlink(n, e);
        free(e);
        dropped++;
    }
    return dropped;
}

static int
mn_grow(ms_nonces_t *n)
{
    size_t nb = n->nbuckets ? n->nbuckets * 2 : 1024, i;
    ms_nonce_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return n->nbuckets ? 0 : -1; /* longer chains, still correct */
    for (i = 0; i < n->nbuckets; i++) {
        ms_nonce_t *e = n->buckets[i];

        while (e != NULL) {
            ms_nonce_t *next = e->hnext;

            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(n->buckets);
    n->buckets = b;
    n->nbuckets = nb;
    return 0;
}

int
ms_nonces_add(ms_nonces_t *n, const char *project, const char *nonce,
              size_t len, double expires_at, double now)
{
    size_t plen = strlen(project), klen = plen + 1 + len;
    uint64_t h;
    ms_nonce_t *e;

    ms_nonces_purge(n, now);
    if (klen > MS_NONCE_KEY_MAX)
        return GW_AGAIN;
    {
        char key[MS_NONCE_KEY_MAX];

        memcpy(key, project, plen);
        key[plen] = '\0';
        memcpy(key + plen + 1, nonce, len);
        h = mn_hash(key, klen);
        for (e = n->nbuckets ? n->buckets[h & (n->nbuckets - 1)] : NULL;
             e != NULL; e = e->hnext)
            if (e->hash == h && e->keylen == klen
                && memcmp(e->key, key, klen) == 0) {
                if (e->expires_at > now)
                    return GW_ERR;
                /* Expired but not purged yet (behind a later expiry in
                 * the FIFO): a new claim. */
                e->expires_at = expires_at;
                return GW_OK;
            }
        if (n->count >= MS_NONCES_MAX)
            return GW_AGAIN;
        if ((n->count >= n->nbuckets && mn_grow(n) != 0)
            || (e = malloc(sizeof(*e) + klen)) == NULL)
            return GW_AGAIN;
        memcpy(e->key, key, klen);
    }
    e->keylen = klen;
    e->hash = h;
    e->expires_at = expires_at;
    e->fnext = NULL;
    e->hnext = n->buckets[h & (n->nbuckets - 1)];
    n->buckets[h & (n->nbuckets - 1)] = e;
    if (n->tail != NULL)
        n->tail->fnext = e;
    else
        n->head = e;
    n->tail = e;
    n->count++;
    return GW_OK;
}

void
ms_nonces_free(ms_nonces_t *n)
{
    ms_nonce_t *e = n->head;

    while (e != NULL) {
        ms_nonce_t *next = e->fnext;

        free(e);
        e = next;
    }
    free(n->buckets);
    memset(n, 0, sizeof(*n));
}
