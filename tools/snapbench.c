/*
 * tools/snapbench.c: what a snapshot of the memory storage costs.
 *
 * Loads the memory storage plugin the way the daemon does (core/loader.c),
 * with PATH in a temp directory and SNAPSHOT_INTERVAL = 0 (every store()
 * may write one), fills it with CELLS minute cells (SERIES counter series
 * of CELLS / SERIES consecutive minutes each, one store() of every delta)
 * and then times, on the calling thread, which is the storage thread in
 * the daemon:
 *
 *   fill      the store() of all the cells (it also starts a snapshot);
 *   snapshot  one store() of a single new cell once the first snapshot is
 *             on disk: the storage thread's share of a snapshot of CELLS
 *             cells (a store of one cell alone takes microseconds);
 *   on disk   from the start of that store() until the new file has been
 *             renamed over PATH (a new inode), polled every millisecond;
 *   busy      store()s of one cell while that write is in flight (the
 *             slowest of them);
 *   destroy   the final snapshot written at stop;
 *   load      create() reading the file back.
 *
 * plus the file's size and the process's VmRSS after the fill and its peak
 * (VmHWM), and the heap the store's cells hold (glibc's mallinfo2: bytes
 * in use after the fill less before it, the batch freed). With --kind
 * timing the cells are timing cells of V lognormal values each (median
 * 20, sigma 0.8: a latency in ms; --values V, default 1000), with --kind
 * set set cells of V members each (default 100; past 1024 a HyperLogLog),
 * so that the bytes a cell of either kind costs in RAM and in the file
 * are measured. Usage:
 *
 *   tools/snapbench [--cells N] [--series S] [--kind counter|timing|set]
 *                   [--values V] [--plugin-dir DIR] [--dir D]
 *
 * (defaults 1,000,000 cells, 1,000 series, ./.libs, a new /tmp/gwsnapbench-*
 * removed at the end). Not a test: a measurement for docs/performance.md.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gottwall/plugin.h>

#include "core/loader.h"

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#include <malloc.h>
#define SB_HEAP 1
#endif

static const char *sb_path_setting;
static gw_kind_t sb_kind = GW_KIND_COUNTER;
static size_t sb_values; /* per timing or set cell; 0: the default */
static double sb_store_s; /* the fill's store() alone */

static void
sb_log(const gw_ctx_t *ctx, int level, const char *fmt, ...)
{
    va_list ap;

    (void) ctx;
    if (level > GW_LOG_WARNING)
        return;
    fputs("[memory] ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *
sb_instance_name(const gw_ctx_t *ctx)
{
    (void) ctx;
    return "snapbench";
}

/* PATH is ours, SNAPSHOT_INTERVAL is 0, every other key its default. */
static int
sb_config_apply(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                void *state, gw_error_t *err)
{
    const gw_config_key_t *k;

    (void) ctx;
    for (k = keys; k->name != NULL; k++) {
        void *at = (char *) state + k->offset;
        const char *v = k->def;

        if (strcmp(k->name, "PATH") == 0)
            v = sb_path_setting;
        else if (strcmp(k->name, "SNAPSHOT_INTERVAL") == 0)
            v = "0";
        switch (k->type) {
        case GW_CONFIG_STRING:
            *(const char **) at = v;
            break;
        case GW_CONFIG_INT:
            *(int64_t *) at = v ? strtoll(v, NULL, 10) : 0;
            break;
        case GW_CONFIG_DOUBLE:
            *(double *) at = v ? strtod(v, NULL) : 0;
            break;
        case GW_CONFIG_BOOL:
            *(int *) at = v != NULL && strcmp(v, "true") == 0;
            break;
        default:
            return gw_error_set(err, "%s: unknown type", k->name);
        }
    }
    return GW_OK;
}

static void
sb_count(const gw_ctx_t *ctx, gw_counter_t counter, const char *reason,
         uint64_t n)
{
    (void) ctx;
    (void) counter;
    (void) reason;
    (void) n;
}

static const gw_host_t sb_host = {
    .struct_size = sizeof(gw_host_t),
    .abi_major = GW_PLUGIN_ABI_MAJOR,
    .abi_minor = GW_PLUGIN_ABI_MINOR,
    .log = sb_log,
    .instance_name = sb_instance_name,
    .config_apply = sb_config_apply,
    .count = sb_count,
};

static const gw_ctx_t sb_ctx = {&sb_host, NULL};

static double
sb_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* VmRSS or VmHWM of this process, KiB. */
static long
sb_status_kib(const char *field)
{
    char line[256];
    long kib = -1;
    size_t fl = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, fl) == 0)
            kib = strtol(line + fl, NULL, 10);
    fclose(f);
    return kib;
}

/* The inode of path, 0 if missing. */
static ino_t
sb_inode(const char *path, off_t *size)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return 0;
    if (size != NULL)
        *size = st.st_size;
    return st.st_ino;
}

/* Waits (up to 600 s) until path is a file other than inode `old`;
 * returns when it happened, or -1. */
static double
sb_wait_new(const char *path, ino_t old)
{
    double until = sb_seconds() + 600;
    ino_t ino;

    while (((ino = sb_inode(path, NULL)) == 0 || ino == old) &&
           sb_seconds() < until)
        usleep(1000);
    return (ino != 0 && ino != old) ? sb_seconds() : -1;
}

static int
sb_store1(const gw_storage_ops_t *ops, void *state, int64_t bucket,
          double *took)
{
    gw_delta_t d = {"bench", "extra", NULL, NULL, GW_KIND_COUNTER,
                    GW_PERIOD_MINUTE, bucket, 1, 1, 0};
    gw_batch_t b = {NULL, &d, 1, NULL};
    gw_error_t err = {""};
    double t0 = sb_seconds();
    int rc = ops->store(state, &b, &err);

    *took = sb_seconds() - t0;
    if (rc != GW_OK)
        fprintf(stderr, "snapbench: store: %s\n", err.msg);
    return rc;
}

/* Bytes of the heap in use (-1: not known here). */
static long long
sb_heap(void)
{
#ifdef SB_HEAP
    struct mallinfo2 mi = mallinfo2();

    return (long long) (mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

/* The sketch (timing) or members (set) of cell i into data[i]; its sum
 * and count into d. 0, or -1 when out of memory. */
static int
sb_sketch(gw_delta_t *d, gw_delta_data_t *data, void *sk, size_t i)
{
    unsigned seed = (unsigned) i * 2654435761u + 1;
    size_t k;
    char m[32];

    d->kind = sb_kind;
    d->count = (int64_t) sb_values;
    d->sum = 0;
    if (sb_kind == GW_KIND_TIMING) {
        gw_timing_init(sk);
        data->timing = sk;
        for (k = 0; k < sb_values; k++) {
            double u1 = (rand_r(&seed) + 1.0) / (RAND_MAX + 2.0);
            double u2 = (rand_r(&seed) + 1.0) / (RAND_MAX + 2.0);
            double v = exp(log(20) + 0.8 * sqrt(-2 * log(u1)) *
                           cos(6.283185307179586 * u2));

            if (gw_timing_add(sk, v, 1) != GW_OK)
                return -1;
            d->sum += v;
        }
    } else {
        gw_set_init(sk);
        data->set = sk;
        for (k = 0; k < sb_values; k++) {
            int len = snprintf(m, sizeof(m), "u%zu-%zu", i, k);

            if (gw_set_add(sk, gw_set_hash(m, (size_t) len)) != GW_OK)
                return -1;
        }
    }
    return 0;
}

static void
sb_sketches_free(void *sk, size_t n)
{
    size_t i;

    for (i = 0; sk != NULL && i < n; i++) {
        if (sb_kind == GW_KIND_TIMING)
            gw_timing_free((gw_timing_t *) sk + i);
        else
            gw_set_free((gw_set_t *) sk + i);
    }
    free(sk);
}

/* Stores nseries x per minute cells in one store(); the series' names
 * (to free), or NULL. */
static char (*sb_fill(const gw_storage_ops_t *ops, void *state,
                      size_t nseries, size_t per, int64_t t0))[16]
{
    size_t n = nseries * per, i;
    gw_delta_t *d = calloc(n, sizeof(*d));
    char (*names)[16] = calloc(nseries, sizeof(*names));
    gw_error_t err = {""};
    gw_batch_t b;
    gw_delta_data_t *data = NULL;
    void *sk = NULL;
    int rc;
    size_t sksize = sb_kind == GW_KIND_TIMING ? sizeof(gw_timing_t)
                                              : sizeof(gw_set_t);

    if (sb_kind != GW_KIND_COUNTER) {
        data = calloc(n, sizeof(*data));
        sk = calloc(n, sksize);
    }
    if (d == NULL || names == NULL ||
        (sb_kind != GW_KIND_COUNTER && (data == NULL || sk == NULL))) {
        fprintf(stderr, "snapbench: out of memory\n");
        return NULL;
    }
    for (i = 0; i < nseries; i++)
        snprintf(names[i], sizeof(names[i]), "m%07lu",
                 (unsigned long) (i % 10000000));
    for (i = 0; i < n; i++) {
        gw_delta_t x = {"bench", names[i / per], NULL, NULL, GW_KIND_COUNTER,
                        GW_PERIOD_MINUTE, t0 + (int64_t) (i % per) * 60, 1, 1,
                        0};

        d[i] = x;
        if (sb_kind != GW_KIND_COUNTER &&
            sb_sketch(&d[i], &data[i], (char *) sk + i * sksize, i) != 0) {
            fprintf(stderr, "snapbench: out of memory\n");
            return NULL;
        }
    }
    b.id = NULL;
    b.deltas = d;
    b.ndeltas = n;
    b.data = data;
    sb_store_s = sb_seconds();
    rc = ops->store(state, &b, &err);
    sb_store_s = sb_seconds() - sb_store_s;
    if (rc != GW_OK) {
        fprintf(stderr, "snapbench: store: %s\n", err.msg);
        free(names);
        names = NULL;
    }
    free(d);
    free(data);
    sb_sketches_free(sk, sb_kind == GW_KIND_COUNTER ? 0 : n);
    return names;
}

static int
sb_usage(void)
{
    fprintf(stderr, "usage: snapbench [--cells N] [--series S] "
            "[--kind counter|timing|set] [--values V] [--plugin-dir DIR] "
            "[--dir D]\n");
    return 2;
}

/* The command line; 0, or -1 (usage). */
static int
sb_args(int argc, char **argv, size_t *cells, size_t *nseries,
        const char **pdir, const char **dir)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--cells") == 0)
            *cells = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--series") == 0)
            *nseries = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--plugin-dir") == 0)
            *pdir = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0)
            *dir = argv[++i];
        else if (strcmp(argv[i], "--values") == 0)
            sb_values = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--kind") != 0)
            return -1;
        else if (strcmp(argv[++i], "timing") == 0)
            sb_kind = GW_KIND_TIMING;
        else if (strcmp(argv[i], "set") == 0)
            sb_kind = GW_KIND_SET;
        else if (strcmp(argv[i], "counter") != 0)
            return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    size_t cells = 1000000, nseries = 1000, per, n;
    const char *pdir = ".libs", *dir = NULL;
    char tmpl[] = "/tmp/gwsnapbench-XXXXXX", path[4096], (*names)[16];
    gw__loader_t loader;
    gw__plugin_t *plugin = NULL;
    const gw_storage_ops_t *ops;
    gw_error_t err = {""};
    void *state = NULL;
    int64_t t0 = 1700006400; /* a day boundary */
    double s0, s1, w, store_s, busy_max = 0, took, destroy_s, load_s;
    ino_t ino;
    off_t size = 0;
    long rss_fill;
    long long heap0, heap1;
    int busy = 0;

    if (sb_args(argc, argv, &cells, &nseries, &pdir, &dir) != 0)
        return sb_usage();
    if (nseries == 0 || cells < nseries)
        return sb_usage();
    if (sb_values == 0)
        sb_values = sb_kind == GW_KIND_TIMING ? 1000 : 100;
    per = cells / nseries;
    n = per * nseries;
    if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
        perror("snapbench: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/bench.snapshot", dir);
    sb_path_setting = path;
    gw__loader_init(&loader, (char *const *) &pdir, 1);
    if (gw__loader_load(&loader, GW_PLUGIN_STORAGE, "memory", &plugin,
                        &err) != GW_OK) {
        fprintf(stderr, "snapbench: %s\n", err.msg);
        return 1;
    }
    ops = &plugin->storage;
    unlink(path);
    if (ops->create(&sb_ctx, &state, &err) != GW_OK) {
        fprintf(stderr, "snapbench: create: %s\n", err.msg);
        return 1;
    }
    heap0 = sb_heap();
    s0 = sb_seconds();
    if ((names = sb_fill(ops, state, nseries, per, t0)) == NULL)
        return 1;
    s1 = sb_seconds();
    heap1 = sb_heap();
    w = sb_wait_new(path, 0);
    usleep(200000); /* the writer (if any) is done with its copy */
    rss_fill = sb_status_kib("VmRSS:");
    printf("fill: one store() of %zu %s cells (%zu series x %zu minutes): "
           "%.3f s (%.3f s with making the batch); first snapshot on disk "
           "%.3f s after its start\n", n, gw_kind_name(sb_kind), nseries,
           per, sb_store_s, s1 - s0, w - s0);
    if (sb_kind != GW_KIND_COUNTER)
        printf("%s cells of %zu %s each\n", gw_kind_name(sb_kind), sb_values,
               sb_kind == GW_KIND_TIMING ? "lognormal values" : "members");
    if (heap0 >= 0)
        printf("heap held by the store after the fill: %lld bytes (%.1f per "
               "cell)\n", heap1 - heap0, (double) (heap1 - heap0) /
                                         (double) n);
    ino = sb_inode(path, NULL);
    /* The one under test: a store of one new cell that writes a snapshot
     * of all the others. */
    s0 = sb_seconds();
    if (sb_store1(ops, state, t0 + (int64_t) per * 60, &store_s) != GW_OK)
        return 1;
    busy_max = store_s;
    /* Stores while it is being written (as flushes would be). */
    while (sb_inode(path, NULL) == ino && busy < 100000 &&
           sb_seconds() - s0 < 600) {
        if (sb_store1(ops, state, t0 + (int64_t) (per + 1 + busy) * 60,
                      &took) != GW_OK)
            return 1;
        if (took > busy_max)
            busy_max = took;
        busy++;
        usleep(1000);
    }
    w = sb_wait_new(path, ino);
    sb_inode(path, &size);
    printf("snapshot of %zu cells: the store() that began it %.3f s on the "
           "storage thread; on disk %.3f s after it began; %d more store()s "
           "of one cell during the write; slowest store() %.3f s\n", n + 1,
           store_s, w - s0, busy, busy_max);
    printf("file %lld bytes (%.1f per cell); VmRSS after the fill and the "
           "first snapshot %ld KiB, "
           "peak (VmHWM) %ld KiB\n", (long long) size,
           (double) size / (double) n, rss_fill, sb_status_kib("VmHWM:"));
    s0 = sb_seconds();
    ops->destroy(state);
    destroy_s = sb_seconds() - s0;
    s0 = sb_seconds();
    if (ops->create(&sb_ctx, &state, &err) != GW_OK) {
        fprintf(stderr, "snapbench: load: %s\n", err.msg);
        return 1;
    }
    load_s = sb_seconds() - s0;
    printf("destroy (final snapshot, written at stop): %.3f s; load: "
           "%.3f s\n", destroy_s, load_s);
    ops->destroy(state);
    unlink(path);
    if (dir == tmpl)
        rmdir(dir);
    free(names);
    gw__loader_free(&loader);
    return 0;
}
