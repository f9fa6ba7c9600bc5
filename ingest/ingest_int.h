/*
 * ingest/ingest_int.h: what ingest/ingest.c, ingest/event.c and ingest/table.c
 * share and nobody else needs: an arena, the string hash, the aggregation
 * table's update call and the parsed form of an event.
 *
 * A parsed event (gw__pevent_t) borrows its strings from the JSON tree or
 * the submitted gw_event_t, and from a scratch arena for filter values that
 * were numbers; it lives until the request has been aggregated.
 */
#ifndef GW_CORE_INGEST_INT_H
#define GW_CORE_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include <gottwall/common.h>
#include <gottwall/event.h>

#include "base/conf.h"
#include "ingest.h"

/* ---- memory --------------------------------------------------------- */

/* malloc, calloc and realloc for everything ingest allocates: NULL when
 * memory runs out, or when a test made this one fail. */
void *gw__malloc(size_t n);
void *gw__calloc(size_t n, size_t size);
void *gw__realloc(void *p, size_t n);

/*
 * Tests: the next n allocations of gw__malloc & co succeed and the one after
 * them fails (once); n < 0: none fails. Returns what was left of the
 * previous setting: -1 if its failure happened (or none was set), else the
 * allocations that were still to succeed. One counter for the process.
 */
long gw__ingest_alloc_fail_after(long n);

/* The same that abort with a message when memory runs out: the hot
 * path has no way to undo half an aggregation. */
void *gw__xmalloc(size_t n);
void *gw__xcalloc(size_t n, size_t size);
void *gw__xrealloc(void *p, size_t n);

typedef struct gw__arena_chunk_s gw__arena_chunk_t;

/* A bump allocator: many small strings, freed all at once. */
typedef struct gw__arena_s {
    gw__arena_chunk_t *head;
    char *pos;
    size_t left;
} gw__arena_t;

void gw__arena_init(gw__arena_t *a);
/* A copy of s[0..n) with a NUL after it. */
char *gw__arena_strndup(gw__arena_t *a, const char *s, size_t n);
void *gw__arena_alloc(gw__arena_t *a, size_t n);
/* Forgets everything but keeps the newest chunk for reuse. */
void gw__arena_reset(gw__arena_t *a);
void gw__arena_free(gw__arena_t *a);

/* ---- hashing (FNV-1a, then a final mix for power-of-two tables) ------ */

#define GW__HASH_INIT UINT64_C(14695981039346656037)

static inline uint64_t
gw__hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* A separator between two strings of one key ("ab","c" != "a","bc"). */
static inline uint64_t
gw__hash_sep(uint64_t h)
{
    h ^= 0xffu;
    return h * UINT64_C(1099511628211);
}

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

/* Whether a[0..n) == b[0..n): memcmp without the call, for the short keys
 * the hot path compares (metric names, filter names and values). */
static inline int
gw__mem_eq(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    uint64_t u, v, w, z;
    uint32_t p, q, r, t;

    if (n >= 8) {
        for (; n > 16; x += 8, y += 8, n -= 8) {
            memcpy(&u, x, 8);
            memcpy(&v, y, 8);
            if (u != v)
                return 0;
        }
        /* 8..16 bytes left: the first and the last 8 (they may overlap). */
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        memcpy(&w, x + n - 8, 8);
        memcpy(&z, y + n - 8, 8);
        return ((u ^ v) | (w ^ z)) == 0;
    }
    if (n >= 4) {
        memcpy(&p, x, 4);
        memcpy(&q, y, 4);
        memcpy(&r, x + n - 4, 4);
        memcpy(&t, y + n - 4, 4);
        return ((p ^ q) | (r ^ t)) == 0;
    }
    for (; n > 0; x++, y++, n--)
        if (*x != *y)
            return 0;
    return 1;
}

/* ---- strings and parsed events ------------------------------------- */

/* A borrowed string with its length (not necessarily NUL-terminated). */
typedef struct gw__str_s {
    const char *s;
    size_t n;
} gw__str_t;

/* One distinct (filter name, value) pair of an event. */
typedef struct gw__pfilter_s {
    gw__str_t name;
    gw__str_t value;
} gw__pfilter_t;

/* One validated event. */
typedef struct gw__pevent_s {
    gw__str_t project; /* the event's, or the authenticated project */
    gw__str_t name;
    uint64_t pm_hash;  /* of (project, name): filled in by ingest.c */
    long group;        /* its group in the current table, or -1: ingest.c */
    gw_action_t action; /* never GW_ACTION_DEFAULT */
    double ts;
    double value;
    size_t f0; /* its filters: pf[f0 .. f0 + nf) of the parse context */
    size_t nf;
} gw__pevent_t;

/* Where parsing puts filters and number texts; reused across requests. */
typedef struct gw__parse_s {
    const gw__limits_t *limits;
    double (*now_fn)(void);
    const char *project;        /* the authenticated project */
    size_t project_len;         /* strlen(project) */
    gw_action_t default_action; /* for events without "a" */
    gw__pfilter_t *pf;
    size_t npf, cappf;
    gw__arena_t scratch;
} gw__parse_t;

/* Parses one JSON event object into *out. On GW_ERR err holds the
 * message (without the "event N: " prefix) and *reject the reason. */
int gw__event_parse_json(gw__parse_t *ctx, json_t *obj, gw__pevent_t *out,
                         gw__reject_t *reject, gw_error_t *err);

/*
 * The fast path: parses the plain event object at json[*pos] (no escapes,
 * no duplicate keys, nothing refused) without jansson and moves *pos past
 * it. GW_AGAIN: anything else; the caller must use the jansson path,
 * which accepts the same events with the same result and explains every
 * refusal.
 */
int gw__event_parse_fast(gw__parse_t *ctx, const char *json, size_t len,
                         size_t *pos, gw__pevent_t *out);

/* The same for a structured event. */
int gw__event_parse_struct(gw__parse_t *ctx, const gw_event_t *ev,
                           gw__pevent_t *out, gw__reject_t *reject,
                           gw_error_t *err);

/* The kind an action makes. */
static inline gw_kind_t
gw__action_kind(gw_action_t a)
{
    switch (a) {
    case GW_ACTION_AVG:
        return GW_KIND_AVG;
    case GW_ACTION_GAUGE:
        return GW_KIND_GAUGE;
    default:
        return GW_KIND_COUNTER;
    }
}

/* "incr", "decr", "avg", "gauge". */
const char *gw__action_name(gw_action_t a);

/* Turns the fast path of gw__ingest_json on (the default) or off, so that
 * tests can compare the two. */
void gw__ingest_set_fast(gw__ingest_t *ing, int on);

/* ---- the aggregation table ----------------------------------------- */

/* A new empty table with room for about ngroups totals and nfilters
 * filter series before it has to grow. */
gw__table_t *gw__table_new(size_t ngroups, size_t nfilters);

/* Number of total series (project, metric, minute) in t. */
size_t gw__table_groups(const gw__table_t *t);

/* Number of keys (total series plus filter series) in t. */
size_t gw__table_keys(const gw__table_t *t);

/* The bytes t holds, exactly: the table itself, its hash slots, group and
 * filter cell arrays (their allocated capacity) and its string arena
 * chunks; malloc's own headers are not counted. */
size_t gw__table_bytes(const gw__table_t *t);

/*
 * Adds one event to t at its minute: the total series of (project, metric)
 * and one series per filter pair. pm_hash is gw__hash_bytes over project,
 * gw__hash_sep, metric (before gw__hash_mix). sum: the value to add
 * (already negative for decr) or, for a gauge, the value.
 */
void gw__table_add(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
                   gw__str_t metric, int64_t minute, gw_kind_t kind,
                   double sum, double ts, const gw__pfilter_t *filters,
                   size_t nfilters);

/* The index of the group (project, metric, minute) in t and its kind in
 * *kind, or -1 if t has none; pm_hash as for gw__table_add. */
long gw__table_find(const gw__table_t *t, uint64_t pm_hash,
                    gw__str_t project, gw__str_t metric, int64_t minute,
                    gw_kind_t *kind);

/* gw__table_add to a group gw__table_find found (groups never move). */
void gw__table_add_to(gw__table_t *t, size_t group, double sum, double ts,
                      const gw__pfilter_t *filters, size_t nfilters);

#endif /* GW_CORE_INGEST_INT_H */
