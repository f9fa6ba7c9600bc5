/*
 * plugins/storage/postgres/cache.c: the series ids a connection has seen
 * committed (pg_cache_t in pg.h says what it keeps and when it is
 * dropped).
 *
 * An open-addressing hash table (keyed: plugins/common/keyhash.h; linear
 * probing, at most half full) over keys "project\0metric\0fname\0fvalue\0S" stored back to back
 * in one buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#include "../../common/keyhash.h"

void
pg_cache_free(pg_cache_t *c)
{
    free(c->keys);
    free(c->off);
    free(c->len);
    free(c->id);
    free(c->kb);
    memset(c, 0, sizeof(*c));
}

/* The cache key of d's series: "project\0metric\0fname\0fvalue\0S" in
 * buf; its length, or 0 when it does not fit. */
static size_t
pg_cache_key(char *buf, size_t size, const gw_delta_t *d)
{
    const char *part[4];
    size_t i, n = 0, l;

    part[0] = d->project;
    part[1] = d->metric;
    part[2] = d->filter_name ? d->filter_name : "";
    part[3] = d->filter_value ? d->filter_value : "";
    for (i = 0; i < 4; i++) {
        l = strlen(part[i]);
        if (n + l + 2 > size)
            return 0;
        memcpy(buf + n, part[i], l + 1);
        n += l + 1;
    }
    buf[n++] = d->filter_name != NULL ? '1' : '0';
    return n;
}

/* The slot of key, or of the empty slot where it would go. */
static size_t
pg_cache_slot(const pg_cache_t *c, const char *key, size_t len)
{
    size_t mask = c->slots - 1, i;

    for (i = pc_hash(key, len) & mask; c->off[i] != SIZE_MAX;
         i = (i + 1) & mask)
        if (c->len[i] == len && memcmp(c->keys + c->off[i], key, len) == 0)
            break;
    return i;
}

/* d's series id, or -1 when not cached; its PG_SLOTS buckets in kb. */
int64_t
pg_cache_get(const pg_cache_t *c, const gw_delta_t *d, uint32_t *kb)
{
    char key[4096];
    size_t len = pg_cache_key(key, sizeof(key), d), i;

    for (i = 0; i < PG_SLOTS; i++)
        kb[i] = PG_KB_UNKNOWN;
    if (len == 0 || c->n == 0)
        return -1;
    i = pg_cache_slot(c, key, len);
    if (c->off[i] == SIZE_MAX)
        return -1;
    memcpy(kb, &c->kb[i * PG_SLOTS], PG_SLOTS * sizeof(*kb));
    return c->id[i];
}

/* Remembers d's series id and buckets (quietly nothing when out of
 * memory). */
void
pg_cache_put(pg_cache_t *c, const gw_delta_t *d, int64_t id,
             const uint32_t *kb)
{
    char key[4096];
    size_t len = pg_cache_key(key, sizeof(key), d), i;

    if (len == 0)
        return;
    if (c->n >= PG_CACHE_MAX)
        pg_cache_free(c);
    if ((c->n + 1) * 2 > c->slots) {
        pg_cache_t g;
        size_t j;

        memset(&g, 0, sizeof(g));
        g.slots = c->slots ? c->slots * 2 : 1024;
        g.off = malloc(g.slots * sizeof(*g.off));
        g.len = malloc(g.slots * sizeof(*g.len));
        g.id = malloc(g.slots * sizeof(*g.id));
        g.kb = malloc(g.slots * PG_SLOTS * sizeof(*g.kb));
        if (g.off == NULL || g.len == NULL || g.id == NULL || g.kb == NULL) {
            free(g.off);
            free(g.len);
            free(g.id);
            free(g.kb);
            return;
        }
        for (j = 0; j < g.slots; j++)
            g.off[j] = SIZE_MAX;
        g.keys = c->keys;
        g.klen = c->klen;
        g.kcap = c->kcap;
        g.n = c->n;
        for (j = 0; j < c->slots; j++) {
            if (c->off[j] == SIZE_MAX)
                continue;
            i = pg_cache_slot(&g, c->keys + c->off[j], c->len[j]);
            g.off[i] = c->off[j];
            g.len[i] = c->len[j];
            g.id[i] = c->id[j];
            memcpy(&g.kb[i * PG_SLOTS], &c->kb[j * PG_SLOTS],
                   PG_SLOTS * sizeof(*g.kb));
        }
        free(c->off);
        free(c->len);
        free(c->id);
        free(c->kb);
        *c = g;
    }
    i = pg_cache_slot(c, key, len);
    if (c->off[i] != SIZE_MAX) {
        c->id[i] = id;
        memcpy(&c->kb[i * PG_SLOTS], kb, PG_SLOTS * sizeof(*kb));
        return;
    }
    if (c->klen + len > c->kcap) {
        size_t cap = c->kcap ? c->kcap * 2 : 65536;
        char *k;

        while (cap < c->klen + len)
            cap *= 2;
        if ((k = realloc(c->keys, cap)) == NULL)
            return;
        c->keys = k;
        c->kcap = cap;
    }
    memcpy(c->keys + c->klen, key, len);
    c->off[i] = c->klen;
    c->len[i] = len;
    c->id[i] = id;
    memcpy(&c->kb[i * PG_SLOTS], kb, PG_SLOTS * sizeof(*kb));
    c->klen += len;
    c->n++;
}
