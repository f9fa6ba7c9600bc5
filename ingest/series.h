/*
 * ingest/series.h: the registry of live series (SPEC §3 "Limits"), which
 * bounds what a project may make the aggregator and the storage hold.
 *
 * A series is the total series of a metric, or one (filter name, value)
 * series of it. The registry knows every series of every project that the
 * aggregator has admitted or read from the storage's metadata at start,
 * and counts, at admission, the limits of gw__limits_t:
 *   MAX_SERIES             series per project (totals and filter series);
 *   MAX_SERIES_PER_METRIC  series per metric (its total and filter series);
 *   MAX_VALUES_PER_FILTER  values per filter name of one metric;
 *   MAX_FILTERS_PER_METRIC filter names per metric (its metadata).
 * A limit of 0 is none. Entries are strings copied once; nothing is
 * allocated for a series already known. With several ingest loops there is
 * one registry, used under the lock of the shared gw__ingest_t.
 */
#ifndef GW_INGEST_SERIES_H
#define GW_INGEST_SERIES_H

#include <stddef.h>

#include "ingest.h"
#include "ingest_int.h"

typedef struct gw__series_s gw__series_t;

/* An empty registry; at start-up only: stops the process with a message
 * if memory runs out (as gw__ingest_new). */
gw__series_t *gw__series_new(void);
void gw__series_free(gw__series_t *r);

/* What gw__series_undo goes back to. */
size_t gw__series_mark(const gw__series_t *r);
/* Forgets the series (and their projects, metrics, filter names) added
 * since mark, newest first, with their counts. */
void gw__series_undo(gw__series_t *r, size_t mark);

/*
 * Makes the series known: the total series of (project, metric), and with
 * filter not NULL the series (filter, value) of that metric. GW_OK if it
 * was known or is added; GW_ERR with *reject and err (which limit, its
 * value, how to raise it) if a limit of lim (NULL: none, for seeding from
 * the storage) refuses it or memory ran out (GW__REJECT_NOMEM). What a
 * refused call made on the way (a new metric before its filter was
 * refused) stays until the caller undoes to its mark.
 */
int gw__series_admit(gw__series_t *r, const gw__limits_t *lim,
                     gw__str_t project, gw__str_t metric,
                     const gw__str_t *filter, const gw__str_t *value,
                     gw__reject_t *reject, gw_error_t *err);

/* The live series of project: its metrics' totals and filter series. */
size_t gw__series_count(const gw__series_t *r, const char *project);

#endif /* GW_INGEST_SERIES_H */
