/*
 * ingest/table_int.h: the aggregation table's cells, groups and filter
 * series, which the table (ingest/table.c) makes and the batch
 * (ingest/batch.c) reads when it merges a table. Nobody else needs them.
 */
#ifndef GW_INGEST_TABLE_INT_H
#define GW_INGEST_TABLE_INT_H

#include <stdint.h>

#include <gottwall/sketch.h>

#include "ingest_int.h"

#define NONE UINT32_MAX

typedef struct gw__cell_s {
    gw_kind_t kind;
    double sum;
    int64_t count;
    double ts;
    void *x;         /* timing: gw_timing_t; set: tb_set_t; else NULL */
    union {
        /* timing, set: gw__table_make's count of this request's adds */
        struct {
            uint32_t rpos, rneg;
        };
        /* gauge: when the value it holds was received (CLOCK_MONOTONIC,
         * ns), which decides between equal ts of two loops' tables */
        uint64_t rx;
    };
} gw__cell_t;

/* A set cell and the registers it takes when it turns into a
 * HyperLogLog, allocated by gw__table_make so that adding cannot fail. */
typedef struct tb_set_s {
    gw_set_t s;
    uint8_t *spare;
} tb_set_t;

typedef struct gw__group_s {
    uint64_t hash;
    const char *project;
    const char *metric;
    uint32_t plen, mlen;
    int64_t minute;
    gw__cell_t cell;
    uint32_t first; /* first filter cell, NONE if none */
    uint32_t nf;    /* filter cells under it */
} gw__group_t;

typedef struct gw__fcell_s {
    uint64_t hash;
    uint32_t group;
    uint32_t next; /* next filter cell of the group, NONE at the end */
    const char *name;
    const char *value;
    uint32_t nlen, vlen;
    gw__cell_t cell;
} gw__fcell_t;

struct gw__table_s {
    gw__arena_t arena;
    gw__group_t *groups;
    size_t ngroups, capgroups;
    uint64_t *gslots;
    size_t gmask;
    gw__fcell_t *fcells;
    size_t nfcells, capfcells;
    uint64_t *fslots;
    size_t fmask;
    uint64_t events;
    gw__pending_t *pending; /* reserved deltas of it, given back at free */
    size_t reserved;
    size_t nx; /* cells with x: timing and set (freed one by one) */
};

/* A sum that overflowed: +-DBL_MAX, counted (see table.c). */
double gw__table_saturate(double s);

#endif /* GW_INGEST_TABLE_INT_H */
