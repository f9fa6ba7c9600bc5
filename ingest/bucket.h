/*
 * ingest/bucket.h: calendar buckets in UTC (SPEC §3).
 */
#ifndef GW_INGEST_BUCKET_H
#define GW_INGEST_BUCKET_H

#include <stdint.h>

#include <gottwall/event.h>

/* The epoch second at which the bucket of period p holding ts starts.
 * GW_PERIOD_ALL: 0. Works for any ts, negative too (floor semantics). */
int64_t gw__bucket_start(gw_period_t p, int64_t ts);

/* The start of the bucket after the one starting at start (start must be
 * aligned). GW_PERIOD_ALL: INT64_MAX. */
int64_t gw__bucket_next(gw_period_t p, int64_t start);

/* RETENTION at time now: cuts[p] is the start of the oldest bucket of p
 * still kept (the one holding now - retention[p]); buckets that start
 * before it are expired. INT64_MIN where retention[p] is 0 (kept for ever)
 * and always for GW_PERIOD_ALL. */
void gw__retention_cuts(const int64_t *retention, int64_t now,
                        int64_t *cuts);

/* Parses a period name ("minute" ... "all") into *p. GW_OK or GW_ERR. */
int gw__period_parse(const char *name, gw_period_t *p);

/* Parses "YYYY-MM-DDTHH:MM:SS" (UTC) into epoch seconds. GW_OK or GW_ERR. */
int gw__time_parse_iso(const char *s, int64_t *out);

/* Parses "YYYY-MM-DD" (UTC midnight) into epoch seconds. GW_OK or GW_ERR. */
int gw__date_parse(const char *s, int64_t *out);

#endif /* GW_INGEST_BUCKET_H */
