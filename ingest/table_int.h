/*
 * ingest/table_int.h: the aggregation table's cells, groups and filter
 * series, which the table (ingest/table.c) makes and the batch
 * (ingest/batch.c) reads when it merges a table. Nobody else needs them.
 *
 * The layout is what a live series costs between two flushes (issue 18:
 * at most 64 bytes at 1,000,000 counter series, measured by
 * tools/tablebench): a group or a filter series is 32 bytes, its key one
 * pointer to a few bytes in the table's arena, its slot 4 bytes; what
 * only gauges, timings and sets need is kept aside (gw__aside_t).
 */
#ifndef GW_INGEST_TABLE_INT_H
#define GW_INGEST_TABLE_INT_H

#include <stdint.h>

#include <gottwall/sketch.h>

#include "ingest_int.h"

#define NONE UINT32_MAX

/* Kinds whose cell keeps its data aside: gauge, timing, set. */
#define TB_ASIDE(k) ((k) >= GW_KIND_GAUGE)

/* What a gauge, timing or set cell holds besides its count. */
typedef struct gw__aside_s {
    double sum; /* gauge: its value; timing: the sum; set: unused (0) */
    union {
        /* gauge: the ts of its value, and when that value was received
         * (CLOCK_MONOTONIC, ns), which decides between equal ts of two
         * loops' tables */
        struct {
            double ts;
            uint64_t rx;
        };
        /* timing: gw_timing_t; set: tb_set_t (NULL until the first add
         * is reserved); rpos, rneg: gw__table_make's count of this
         * request's adds */
        struct {
            void *x;
            uint32_t rpos, rneg;
        };
    };
} gw__aside_t;

/* A cell: counter and avg keep their sum in it, the other kinds the
 * index of their gw__aside_t. */
typedef struct gw__cell_s {
    union {
        double sum;
        uint64_t aside;
    };
    uint64_t ck; /* count << 4 | kind */
} gw__cell_t;

/* A set cell and the registers it takes when it turns into a
 * HyperLogLog, allocated by gw__table_make so that adding cannot fail. */
typedef struct tb_set_s {
    gw_set_t s;
    uint8_t *spare;
} tb_set_t;

/*
 * The keys are in the arena, each string as its length (one byte below
 * 255, else 255 and two bytes, little-endian) and its bytes: a group's
 * as its project's index in gw__table_t.projects (two bytes) and its
 * metric; a filter series' as its name and its value.
 */
typedef struct gw__group_s {
    gw__cell_t cell;
    const uint8_t *key;
    uint32_t minute; /* minutes since the epoch */
    uint32_t first;  /* first filter cell, NONE if none */
} gw__group_t;

typedef struct gw__fcell_s {
    gw__cell_t cell;
    const uint8_t *key;
    uint32_t group;
    uint32_t next; /* next filter cell of the group, NONE at the end */
} gw__fcell_t;

struct gw__table_s {
    gw__arena_t arena;
    gw__group_t *groups;
    size_t ngroups, capgroups;
    uint32_t *gslots; /* index + 1 of a group; 0 is empty */
    size_t gmask;
    gw__fcell_t *fcells;
    size_t nfcells, capfcells;
    uint32_t *fslots;
    size_t fmask;
    gw__aside_t *aside;
    size_t naside, capaside;
    gw__str_t *projects; /* the groups' projects, copied into the arena */
    size_t nprojects, capprojects, lastproject;
    uint64_t events;
    gw__pending_t *pending; /* reserved deltas of it, given back at free */
    size_t reserved;
    size_t nx; /* cells with x: timing and set (freed one by one) */
};

static inline gw_kind_t
gw__cell_kind(const gw__cell_t *c)
{
    return (gw_kind_t) (c->ck & 15);
}

static inline uint64_t
gw__cell_count(const gw__cell_t *c)
{
    return c->ck >> 4;
}

/* The aside of a gauge, timing or set cell of t. */
static inline gw__aside_t *
gw__cell_aside(const gw__table_t *t, const gw__cell_t *c)
{
    return &t->aside[c->aside];
}

static inline double
gw__cell_sum(const gw__table_t *t, const gw__cell_t *c)
{
    return TB_ASIDE(gw__cell_kind(c)) ? t->aside[c->aside].sum : c->sum;
}

/* Reads the string at p of a key into *s; returns what follows it. */
static inline const uint8_t *
gw__key_str(const uint8_t *p, gw__str_t *s)
{
    size_t n = *p++;

    if (n == 255) {
        n = (size_t) p[0] | (size_t) p[1] << 8;
        p += 2;
    }
    s->s = (const char *) p;
    s->n = n;
    return p + n;
}

/* The index of group g's project in gw__table_t.projects. */
static inline size_t
gw__group_project(const gw__group_t *g)
{
    return (size_t) g->key[0] | (size_t) g->key[1] << 8;
}

/* The project and metric of group g of t. */
static inline void
gw__group_names(const gw__table_t *t, const gw__group_t *g,
                gw__str_t *project, gw__str_t *metric)
{
    *project = t->projects[gw__group_project(g)];
    (void) gw__key_str(g->key + 2, metric);
}

/* The filter name and value of filter cell c. */
static inline void
gw__fcell_names(const gw__fcell_t *c, gw__str_t *name, gw__str_t *value)
{
    (void) gw__key_str(gw__key_str(c->key, name), value);
}

/* A sum that overflowed: +-DBL_MAX, counted (see table.c). */
double gw__table_saturate(double s);

#endif /* GW_INGEST_TABLE_INT_H */
