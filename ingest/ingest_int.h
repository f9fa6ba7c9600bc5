/*
 * ingest/ingest_int.h: what ingest/ingest.c, the event parsers
 * (ingest/event*.c) and ingest/table.c share and nobody else needs: the
 * allocator and an arena (ingest/alloc.c), the aggregation table's update
 * calls and the parsed form of an event (the string hash they share with
 * net/auth.c is in base/buf.h).
 *
 * A parsed event (gw__pevent_t) borrows its strings from the JSON tree or
 * the submitted gw_event_t, and from a scratch arena for filter values that
 * were numbers; it lives until the request has been aggregated.
 */
#ifndef GW_INGEST_INGEST_INT_H
#define GW_INGEST_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include <gottwall/common.h>
#include <gottwall/event.h>

#include "base/buf.h" /* the hash: gw__hash_str, _pair, _mix */
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

/* The same that stop the process with a message when memory runs out:
 * for start-up only (gw__ingest_new). */
void *gw__xmalloc(size_t n);
void *gw__xcalloc(size_t n, size_t size);

typedef struct gw__arena_chunk_s gw__arena_chunk_t;

/* A bump allocator: many small strings, freed all at once. */
typedef struct gw__arena_s {
    gw__arena_chunk_t *head;
    char *pos;
    size_t left;
} gw__arena_t;

/* Where an arena stands, to go back to with gw__arena_undo. */
typedef struct gw__arena_mark_s {
    gw__arena_chunk_t *head, *next;
    char *pos;
    size_t left;
} gw__arena_mark_t;

void gw__arena_init(gw__arena_t *a);
/* A copy of s[0..n) with a NUL after it; NULL if memory ran out. */
char *gw__arena_strndup(gw__arena_t *a, const char *s, size_t n);
/* n bytes aligned like a double; NULL if memory ran out. */
void *gw__arena_alloc(gw__arena_t *a, size_t n);
/* n bytes, not aligned (for byte strings packed tight); NULL if memory
 * ran out. */
void *gw__arena_bytes_alloc(gw__arena_t *a, size_t n);
void gw__arena_mark(const gw__arena_t *a, gw__arena_mark_t *m);
/* Frees everything allocated since m (no reset in between). */
void gw__arena_undo(gw__arena_t *a, const gw__arena_mark_t *m);
/* The bytes of its chunks (headers and data). */
size_t gw__arena_bytes(const gw__arena_t *a);
/* Forgets everything but keeps the newest chunk for reuse. */
void gw__arena_reset(gw__arena_t *a);
void gw__arena_free(gw__arena_t *a);

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
    uint32_t cell; /* its filter series in the table: gw__table_make */
} gw__pfilter_t;

/* One validated event. */
typedef struct gw__pevent_s {
    gw__str_t project; /* the event's, or the authenticated project */
    gw__str_t name;
    uint64_t pm_hash;  /* of (project, name): filled in by ingest.c */
    long group;        /* its group in the current table, or -1: ingest.c */
    gw_action_t action; /* never GW_ACTION_DEFAULT */
    double ts;
    double value;  /* set: unused (1) */
    uint64_t member; /* set: gw_set_hash of the member */
    int retimed;     /* a timing the kind rule made avg: ingest.c */
    size_t f0; /* its filters: pf[f0 .. f0 + nf) of the parse context */
    size_t nf;
} gw__pevent_t;

/* Where parsing puts filters and number texts; reused across requests. */
typedef struct gw__parse_s {
    const gw__limits_t *limits;
    double (*now_fn)(void);
    double now;                 /* 0, or the time of this request (_at) */
    const char *project;        /* the authenticated project */
    size_t project_len;         /* strlen(project) */
    gw_action_t default_action; /* for events without "a" */
    gw__pfilter_t *pf;
    size_t npf, cappf;
    gw__arena_t scratch;
    int nomem; /* an allocation failed: the request is refused (NOMEM) */
} gw__parse_t;

/* *out = a copy of s[0..n) in ctx's scratch arena; when memory runs out,
 * "" with ctx->nomem set, which refuses the request whatever the parser
 * says. */
static inline void
gw__parse_dup(gw__parse_t *ctx, const char *s, size_t n, gw__str_t *out)
{
    char *p = gw__arena_strndup(&ctx->scratch, s, n);

    out->s = p != NULL ? p : "";
    out->n = p != NULL ? n : 0;
    if (p == NULL)
        ctx->nomem = 1;
}

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
    case GW_ACTION_TIMING:
        return GW_KIND_TIMING;
    case GW_ACTION_SET:
        return GW_KIND_SET;
    default:
        return GW_KIND_COUNTER;
    }
}

/* "incr", "decr", "avg", "gauge", "timing", "set". */
const char *gw__action_name(gw_action_t a);

/* Turns the fast path of gw__ingest_json on (the default) or off, so that
 * tests can compare the two. */
void gw__ingest_set_fast(gw__ingest_t *ing, int on);

/* ---- the aggregation table ----------------------------------------- */

/* A new empty table with room for about ngroups totals and nfilters
 * filter series before it has to grow; NULL if memory ran out. */
gw__table_t *gw__table_new(size_t ngroups, size_t nfilters);

/* Number of total series (project, metric, minute) in t. */
size_t gw__table_groups(const gw__table_t *t);

/* Number of keys (total series plus filter series) in t. */
size_t gw__table_keys(const gw__table_t *t);

/* The bytes t holds, exactly: the table itself, its hash slots, group and
 * filter cell arrays (their allocated capacity) and its string arena
 * chunks; malloc's own headers are not counted. */
size_t gw__table_bytes(const gw__table_t *t);

/* The minute an event goes to. */
static inline int64_t
gw__event_minute(const gw__pevent_t *e)
{
    int64_t sec = (int64_t) e->ts; /* ts >= 0: truncation is floor */

    return sec - sec % 60;
}

/* The hash of (project, metric) under the process's key: a metric's
 * pm_hash, from which the table's, the kinds' and the registry's are
 * made. */
static inline uint64_t
gw__pm_hash(const char *project, size_t plen, const char *metric,
            size_t mlen)
{
    return gw__hash_pair(project, plen, metric, mlen);
}

/*
 * Adding events comes in steps, so that running out of memory never leaves
 * half of one (or of a request) behind: make their keys (each group, then
 * its filter series; new ones start empty), then add to them, which cannot
 * fail. gw__table_undo removes the keys made since a mark, before anything
 * was added to them. pm_hash is gw__pm_hash of (project, metric).
 */
typedef struct gw__table_mark_s {
    size_t ngroups, nfcells, naside, nprojects;
    gw__arena_mark_t arena;
} gw__table_mark_t;

void gw__table_mark(const gw__table_t *t, gw__table_mark_t *m);
void gw__table_undo(gw__table_t *t, const gw__table_mark_t *m);

/* Makes the keys of ev[0..n) (filters in pf): sets each e->group that is
 * -1 (made with the kind of e's action if new) and pf[i].cell of its
 * filters; *m gets the mark from before. GW_ERR: memory ran out (undo to
 * *m). */
int gw__table_make(gw__table_t *t, gw__pevent_t *ev, size_t n,
                   gw__pfilter_t *pf, gw__table_mark_t *m);

/* Adds ev[0..n) to the keys gw__table_make made: the value (negative for
 * decr) or, for a gauge, the latest by ts. */
void gw__table_apply(gw__table_t *t, const gw__pevent_t *ev, size_t n,
                     const gw__pfilter_t *pf);

/* All of it for one event at its minute (the minute's start in epoch
 * seconds, as gw__event_minute): the total series of (project,
 * metric) and one series per filter pair (their cells set). sum: the
 * value to add (already negative for decr) or, for a gauge, the value.
 * GW_ERR: memory ran out and t is as it was. */
int gw__table_add(gw__table_t *t, uint64_t pm_hash, gw__str_t project,
                  gw__str_t metric, int64_t minute, gw_kind_t kind,
                  double sum, double ts, gw__pfilter_t *filters,
                  size_t nfilters);

/* The kind rule made e (a timing) an avg after gw__table_make made its
 * keys as timing: its new group and filter series become avg (their
 * sketches freed). Keys that are avg already stay. */
void gw__table_retype(gw__table_t *t, const gw__pevent_t *e,
                      const gw__pfilter_t *pf);

/* The index of the group (project, metric, minute) in t and its kind in
 * *kind, or -1 if t has none; pm_hash as above. */
long gw__table_find(const gw__table_t *t, uint64_t pm_hash,
                    gw__str_t project, gw__str_t metric, int64_t minute,
                    gw_kind_t *kind);

#endif /* GW_INGEST_INGEST_INT_H */
