/*
 * tools/tablebench.c: bytes per live series in the aggregation table.
 *
 * Adds 1,000,000 distinct series to one gw__table_t (ingest/table.c), as the
 * loop thread would between two flushes, and reports the bytes per series
 * twice: from gw__table_bytes (exact: slots, cells, string arena) and from
 * the growth of the process's VmRSS (what the kernel sees, malloc included).
 * Two shapes, both 1,000,000 series under "test_project":
 *   metrics  1,000,000 metrics "metric_%07d", no filter (1 series each);
 *   filters  1,000 metrics "metric_%07d" x 999 values of one filter
 *            ("status" = "v%03d"): the total plus 999 filter series each.
 * Usage: tablebench [metrics|filters] [series]. Not a test: a measurement
 * for docs/performance.md.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest_int.h"

static long
vmrss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static double
seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    const char *shape = argc > 1 ? argv[1] : "metrics";
    long series = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
    const char *project = "test_project";
    int filters = strcmp(shape, "filters") == 0;
    long nmetrics, per, m, v, before, after;
    char name[32], value[16];
    gw__pfilter_t f;
    gw__table_t *t;
    gw__str_t ps, ms;
    uint64_t h;
    double t0, t1;
    size_t bytes, keys;

    if ((!filters && strcmp(shape, "metrics") != 0) || series < 1000) {
        fprintf(stderr, "usage: tablebench [metrics|filters] [series >= "
                        "1000]\n");
        return 2;
    }
    /* filters: the total plus 999 filter series per metric. */
    per = filters ? 1000 : 1;
    nmetrics = series / per;
    ps.s = project;
    ps.n = strlen(project);
    f.name.s = "status";
    f.name.n = 6;

    before = vmrss_kib();
    t0 = seconds();
    /* The same sizing hints as the first table of a fresh daemon. */
    t = gw__table_new(64, 64);
    for (m = 0; m < nmetrics; m++) {
        ms.n = (size_t) snprintf(name, sizeof(name), "metric_%07ld", m);
        ms.s = name;
        h = gw__pm_hash(ps.s, ps.n, ms.s, ms.n);
        if (!filters) {
            gw__table_add(t, h, ps, ms, 1740000000, GW_KIND_COUNTER, 1,
                          1.74e9, NULL, 0);
            continue;
        }
        for (v = 1; v < per; v++) {
            f.value.n = (size_t) snprintf(value, sizeof(value), "v%03ld", v);
            f.value.s = value;
            gw__table_add(t, h, ps, ms, 1740000000, GW_KIND_COUNTER, 1, 1.74e9,
                          &f, 1);
        }
    }
    t1 = seconds();
    after = vmrss_kib();
    bytes = gw__table_bytes(t);
    keys = gw__table_keys(t);
    printf("shape=%s series=%zu events=%llu table_bytes=%zu "
           "bytes_per_series=%.1f rss_growth_kib=%ld rss_bytes_per_series=%.1f "
           "ns_per_add=%.0f\n",
           shape, keys, (unsigned long long) gw__table_events(t), bytes,
           (double) bytes / (double) keys, after - before,
           (double) (after - before) * 1024.0 / (double) keys,
           (t1 - t0) * 1e9 / (double) gw__table_events(t));
    gw__table_free(t);
    return 0;
}
