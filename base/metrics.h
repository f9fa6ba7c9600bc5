/*
 * base/metrics.h: the daemon's own counters, served as Prometheus text at
 * GET {PREFIX}/metrics. Thread-safe: any thread may count.
 */
#ifndef GW_BASE_METRICS_H
#define GW_BASE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/host.h>

/* Adds n to counter for the transport (or storage) instance named
 * instance; reason is a static snake_case label or NULL. */
void gw__metrics_count(const char *instance, gw_counter_t counter,
                       const char *reason, uint64_t n);

/* The current value of one counter (tests). reason NULL sums all. */
uint64_t gw__metrics_get(const char *instance, gw_counter_t counter,
                         const char *reason);

/* Renders every counter, plus extra (already formatted lines, may be
 * NULL), in the Prometheus text format. The caller frees the result;
 * NULL when out of memory. */
char *gw__metrics_render(const char *extra);

/* Forgets every counter (tests). */
void gw__metrics_reset(void);

#endif /* GW_BASE_METRICS_H */
