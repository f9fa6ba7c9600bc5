/*
 * tests/storage/conformance.c: the storage conformance suite, installed as
 * `gottwall-storage-test` so a third party can run it against their own
 * storage plugin.
 *
 *     gottwall-storage-test PLUGIN [KEY=VALUE...]
 *
 * PLUGIN is a name (looked up like the daemon does, GOTTWALL_PLUGIN_PATH
 * first) or a path to a .so; the KEY=VALUE pairs become the instance's
 * config section. Every test creates a fresh instance, writes under a
 * project name unique to this run (so a shared server is fine) and checks
 * that the same deltas in give the same answers out: counters, avg, gauge,
 * filters, every period, inclusive ranges, sums saturating at +-DBL_MAX
 * instead of overflowing, metadata, documents,
 * exactly-once batch ids, Unicode and hostile names, 100,000-delta batches
 * and a reopened instance; and, when ops->kinds declares them (else each
 * such test prints why it is skipped and passes), the timing kind (sums,
 * counts, min, max and quantiles within 1 % of the exact nearest-rank ones
 * through query and query_timing, merging, exactly-once, the bin bound,
 * expiry, a reopen) and the set kind (exact counts, unions, 100,000
 * members within 2 %, exactly-once, expiry, metadata). The memory plugin
 * also gets its snapshot tests and an all-or-nothing store() test.
 *
 *     gottwall-storage-test --bench SERIES[:PERIODS] PLUGIN [KEY=VALUE...]
 *
 * times one store of SERIES series x PERIODS periods instead (ct_bench).
 *
 * GW_STORAGE_TEST_UNREACHABLE="KEY=VALUE" (several separated by newlines)
 * adds a test that points the instance at a dead server (e.g. "PORT=1") and
 * expects GW_AGAIN, quickly.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gottwall/plugin.h>

#include "ingest/bucket.h"
#include "core/loader.h"

/* ---- the host table: config from KEY=VALUE pairs, logs to stderr ---- */

#define CT_MAX_PAIRS 64

static const char *ct_pairs[CT_MAX_PAIRS];   /* from the command line */
static size_t ct_npairs;
static const char *ct_extra[CT_MAX_PAIRS];   /* a test's overrides */
static size_t ct_nextra;
static const gw__plugin_t *ct_plugin;
static const gw_storage_ops_t *ct_ops;
static char ct_run[32]; /* unique per run: prefix of projects and batch ids */

static void
ct_log(const gw_ctx_t *ctx, int level, const char *fmt, ...)
{
    static const char *const names[] = {"", "", "", "error", "warning",
                                        "notice", "info", "debug"};
    va_list ap;

    (void) ctx;
    if (level > GW_LOG_INFO && getenv("GW_STORAGE_TEST_DEBUG") == NULL)
        return;
    fprintf(stderr, "[storage:%s] %s: ", ct_plugin ? ct_plugin->name : "?",
            (level >= 0 && level <= 7) ? names[level] : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *
ct_instance_name(const gw_ctx_t *ctx)
{
    (void) ctx;
    return "conformance";
}

/* The value of key in the overrides, then the command line; NULL if none. */
static const char *
ct_pair(const char *key)
{
    size_t i, kl = strlen(key);

    for (i = ct_nextra; i-- > 0;)
        if (strncmp(ct_extra[i], key, kl) == 0 && ct_extra[i][kl] == '=')
            return ct_extra[i] + kl + 1;
    for (i = ct_npairs; i-- > 0;)
        if (strncmp(ct_pairs[i], key, kl) == 0 && ct_pairs[i][kl] == '=')
            return ct_pairs[i] + kl + 1;
    return NULL;
}

static int
ct_known(const gw_config_key_t *keys, const char *pair)
{
    const char *eq = strchr(pair, '=');
    size_t kl = eq ? (size_t) (eq - pair) : strlen(pair);

    for (; keys->name != NULL; keys++)
        if (strlen(keys->name) == kl && strncmp(keys->name, pair, kl) == 0)
            return 1;
    return 0;
}

static int
ct_config_apply(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                void *state, gw_error_t *err)
{
    const gw_config_key_t *k;
    size_t i;

    (void) ctx;
    for (i = 0; i < ct_npairs + ct_nextra; i++) {
        const char *p = i < ct_npairs ? ct_pairs[i] : ct_extra[i - ct_npairs];

        if (!ct_known(keys, p))
            return gw_error_set(err, "settings: unknown key in \"%s\"", p);
    }
    for (k = keys; k->name != NULL; k++) {
        const char *v = ct_pair(k->name);
        char *end = NULL;
        void *at = (char *) state + k->offset;

        if (v == NULL)
            v = k->def;
        switch (k->type) {
        case GW_CONFIG_STRING:
            *(const char **) at = v;
            break;
        case GW_CONFIG_INT: {
            long long n = v ? strtoll(v, &end, 10) : 0;

            if (v != NULL && (*v == '\0' || *end != '\0'))
                return gw_error_set(err, "settings: %s must be an integer",
                                    k->name);
            if (k->min < k->max && (n < k->min || n > k->max))
                return gw_error_set(err, "settings: %s must be %.0f..%.0f",
                                    k->name, k->min, k->max);
            *(int64_t *) at = n;
            break;
        }
        case GW_CONFIG_DOUBLE: {
            double d = v ? strtod(v, &end) : 0;

            if (v != NULL && (*v == '\0' || *end != '\0'))
                return gw_error_set(err, "settings: %s must be a number",
                                    k->name);
            if (k->min < k->max && (d < k->min || d > k->max))
                return gw_error_set(err, "settings: %s must be %g..%g",
                                    k->name, k->min, k->max);
            *(double *) at = d;
            break;
        }
        case GW_CONFIG_BOOL:
            if (v == NULL || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
                *(int *) at = 0;
            else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
                *(int *) at = 1;
            else
                return gw_error_set(err, "settings: %s must be true or "
                                    "false", k->name);
            break;
        default:
            return gw_error_set(err, "settings: %s has an unknown type",
                                k->name);
        }
    }
    return GW_OK;
}

/* What the instance counted as GW_COUNTER_SATURATED (test_saturation). */
static uint64_t ct_saturated;

static void
ct_count(const gw_ctx_t *ctx, gw_counter_t counter, const char *reason,
         uint64_t n)
{
    (void) ctx;
    (void) reason;
    if (counter == GW_COUNTER_SATURATED)
        ct_saturated += n;
}

static const gw_host_t ct_host = {
    .struct_size = sizeof(gw_host_t),
    .abi_major = GW_PLUGIN_ABI_MAJOR,
    .abi_minor = GW_PLUGIN_ABI_MINOR,
    .log = ct_log,
    .instance_name = ct_instance_name,
    .config_apply = ct_config_apply,
    .count = ct_count,
};

static const gw_ctx_t ct_ctx = {&ct_host, NULL};

/* ---- the instance under test ---- */

static void *ct_state;

static void
ct_open(void)
{
    gw_error_t err = {""};
    int rc = ct_ops->create(&ct_ctx, &ct_state, &err);

    ck_assert_msg(rc == GW_OK, "create failed: %s", err.msg);
}

static void
ct_close(void)
{
    if (ct_state != NULL)
        ct_ops->destroy(ct_state);
    ct_state = NULL;
}

static void
ct_reopen(void)
{
    ct_close();
    ct_open();
}

static void
ct_setup(void)
{
    ct_nextra = 0;
    ct_open();
}

static void
ct_teardown(void)
{
    ct_close();
}

/* A project name unique to this run and test. */
static const char *
P(const char *test)
{
    static char buf[8][128];
    static int n;
    char *b = buf[n++ % 8];

    snprintf(b, sizeof(buf[0]), "%s_%s", ct_run, test);
    return b;
}

/* A batch id unique to this run (each test is a forked child: the pid
 * keeps tests apart). */
static const char *
ct_batch_id(const char *tag)
{
    static char buf[4][128];
    static int n;
    static unsigned seq;
    char *b = buf[n++ % 4];

    snprintf(b, sizeof(buf[0]), "%s:%s:%ld:%u", ct_run, tag, (long) getpid(),
             ++seq);
    return b;
}

static gw_delta_t
D(const char *project, const char *metric, const char *fname,
  const char *fvalue, gw_kind_t kind, gw_period_t period, int64_t bucket,
  double sum, int64_t count, double ts)
{
    gw_delta_t d;

    d.project = project;
    d.metric = metric;
    d.filter_name = fname;
    d.filter_value = fvalue;
    d.kind = kind;
    d.period = period;
    d.bucket = bucket;
    d.sum = sum;
    d.count = count;
    d.ts = ts;
    return d;
}

/* A counter delta of the total series. */
static gw_delta_t
C(const char *project, const char *metric, gw_period_t period,
  int64_t bucket, double sum)
{
    return D(project, metric, NULL, NULL, GW_KIND_COUNTER, period, bucket,
             sum, 1, 0);
}

static int
ct_store_id(const gw_delta_t *d, size_t n, const char *id)
{
    gw_batch_t b;
    gw_error_t err = {""};
    int rc;

    b.id = id;
    b.deltas = d;
    b.ndeltas = n;
    b.data = NULL;
    rc = ct_ops->store(ct_state, &b, &err);
    ck_assert_msg(rc == GW_OK, "store of %zu deltas (batch %s) returned %d: "
                  "%s", n, id, rc, err.msg);
    return rc;
}

static void
ct_store(const gw_delta_t *d, size_t n)
{
    ct_store_id(d, n, ct_batch_id("b"));
}

/* ---- reading back ---- */

typedef struct ct_points_s {
    gw_point_t *v;
    size_t n;
    size_t cap;
} ct_points_t;

static void
ct_point(void *arg, const gw_point_t *p)
{
    ct_points_t *pts = arg;

    if (pts->n == pts->cap) {
        pts->cap = pts->cap ? pts->cap * 2 : 16;
        pts->v = realloc(pts->v, pts->cap * sizeof(*pts->v));
        ck_assert_ptr_nonnull(pts->v);
    }
    pts->v[pts->n++] = *p;
}

static int
ct_point_cmp(const void *a, const void *b)
{
    const gw_point_t *x = a, *y = b;

    return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

/* The points of a series in from..to, sorted by bucket (free pts.v). */
static ct_points_t
Q(const char *project, const char *metric, const char *fname,
  const char *fvalue, gw_kind_t kind, gw_period_t period, int64_t from,
  int64_t to)
{
    gw_query_t q;
    ct_points_t pts = {NULL, 0, 0};
    gw_error_t err = {""};
    size_t i;
    int rc;

    q.project = project;
    q.metric = metric;
    q.filter_name = fname;
    q.filter_value = fvalue;
    q.kind = kind;
    q.period = period;
    q.from = from;
    q.to = to;
    rc = ct_ops->query(ct_state, &q, ct_point, &pts, &err);
    ck_assert_msg(rc == GW_OK, "query %s/%s returned %d: %s", project, metric,
                  rc, err.msg);
    if (pts.n > 1)
        qsort(pts.v, pts.n, sizeof(*pts.v), ct_point_cmp);
    for (i = 0; i < pts.n; i++)
        ck_assert_msg(pts.v[i].bucket >= from && pts.v[i].bucket <= to,
                      "query %s..%s returned bucket %lld outside the range",
                      "from", "to", (long long) pts.v[i].bucket);
    for (i = 1; i < pts.n; i++)
        ck_assert_msg(pts.v[i].bucket != pts.v[i - 1].bucket,
                      "bucket %lld returned twice", (long long) pts.v[i].bucket);
    return pts;
}

/* The sum stored in one bucket of a counter series; 0 if none. */
static double
S(const char *project, const char *metric, const char *fname,
  const char *fvalue, gw_period_t period, int64_t bucket)
{
    ct_points_t pts = Q(project, metric, fname, fvalue, GW_KIND_COUNTER,
                        period, bucket, bucket);
    double sum = pts.n ? pts.v[0].sum : 0;

    ck_assert_uint_le(pts.n, 1);
    free(pts.v);
    return sum;
}

typedef struct ct_lines_s {
    char **v;
    size_t n;
} ct_lines_t;

/* One metadata entry as a line: fields split by \037, \036 for none
 * and \035 ending each line (names may hold '|', '-' or newlines, never
 * those control bytes in these tests). */
static void
ct_line(char *buf, size_t size, const char *metric, const char *kind,
        const char *fname, const char *fvalue)
{
    snprintf(buf, size, "%s\037%s\037%s\037%s\035", metric, kind,
             fname ? fname : "\036", fvalue ? fvalue : "\036");
}

/* Appends an expected metadata line to buf (of CT_EXPECT bytes). */
#define CT_EXPECT 16384
static void
E(char *buf, const char *metric, const char *kind, const char *fname,
  const char *fvalue)
{
    size_t n = strlen(buf);

    ct_line(buf + n, CT_EXPECT - n, metric, kind, fname, fvalue);
}

static void
ct_meta(void *arg, const gw_meta_t *m)
{
    ct_lines_t *l = arg;
    char buf[2048];

    ct_line(buf, sizeof(buf), m->metric,
            gw_kind_name(m->kind) ? gw_kind_name(m->kind) : "?",
            m->filter_name, m->filter_value);
    l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
    ck_assert_ptr_nonnull(l->v);
    l->v[l->n++] = strdup(buf);
}

static int
ct_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Metadata as sorted ct_line lines, joined (free it). */
static char *
M(const char *project)
{
    ct_lines_t l = {NULL, 0};
    gw_error_t err = {""};
    size_t i, len = 1;
    char *out;
    int rc = ct_ops->metadata(ct_state, project, ct_meta, &l, &err);

    ck_assert_msg(rc == GW_OK, "metadata %s returned %d: %s", project, rc,
                  err.msg);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), ct_str_cmp);
    for (i = 0; i < l.n; i++)
        len += strlen(l.v[i]) + 1;
    out = calloc(1, len);
    for (i = 0; i < l.n; i++) {
        strcat(out, l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    return out;
}

/* Sorts ct_line lines (for building expected metadata). */
static char *
ct_sorted(const char *lines)
{
    char *copy = strdup(lines), *save = NULL, *tok, **v = NULL, *out;
    size_t n = 0, i;

    for (tok = strtok_r(copy, "\035", &save); tok != NULL;
         tok = strtok_r(NULL, "\035", &save)) {
        v = realloc(v, (n + 1) * sizeof(*v));
        v[n++] = tok;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), ct_str_cmp);
    out = calloc(1, strlen(lines) + 2);
    for (i = 0; i < n; i++) {
        strcat(out, v[i]);
        strcat(out, "\035");
    }
    free(v);
    free(copy);
    return out;
}

#define ck_assert_meta(project, expected)                                     \
    do {                                                                      \
        char *got_ = M(project), *want_ = ct_sorted(expected);                \
        ck_assert_str_eq(got_, want_);                                        \
        free(got_);                                                           \
        free(want_);                                                          \
    } while (0)

typedef struct ct_doc_s {
    int calls;
    char *data;
    size_t len;
} ct_doc_t;

static void
ct_doc(void *arg, const char *data, size_t len)
{
    ct_doc_t *d = arg;

    d->calls++;
    free(d->data);
    d->data = malloc(len + 1);
    memcpy(d->data, data, len);
    d->data[len] = '\0';
    d->len = len;
}

static ct_doc_t
G(const char *ns, const char *id)
{
    ct_doc_t d = {0, NULL, 0};
    gw_error_t err = {""};
    int rc = ct_ops->doc_get(ct_state, ns, id, ct_doc, &d, &err);

    ck_assert_msg(rc == GW_OK, "doc_get %s/%s returned %d: %s", ns, id, rc,
                  err.msg);
    ck_assert_int_le(d.calls, 1);
    return d;
}

static void
ct_put(const char *ns, const char *id, const char *data, size_t len)
{
    gw_error_t err = {""};
    int rc = ct_ops->doc_put(ct_state, ns, id, data, len, &err);

    ck_assert_msg(rc == GW_OK, "doc_put %s/%s returned %d: %s", ns, id, rc,
                  err.msg);
}

/* ---- the tests ---- */

#define T0 1392422400 /* 2014-02-15 00:00 UTC, a day bucket */

START_TEST(test_counter_sums)
{
    const char *p = P("counter");
    gw_delta_t d[] = {
        C(p, "orders", GW_PERIOD_MINUTE, T0, 2),
        C(p, "orders", GW_PERIOD_MINUTE, T0 + 60, 5),
        C(p, "orders", GW_PERIOD_MINUTE, T0, 3),
        C(p, "orders", GW_PERIOD_HOUR, T0, 10),
        C(p, "refunds", GW_PERIOD_MINUTE, T0, -4),
        C(p, "ratio", GW_PERIOD_MINUTE, T0, 0.5),
    };
    gw_delta_t more[] = {
        C(p, "orders", GW_PERIOD_MINUTE, T0 + 60, 1),
        C(p, "refunds", GW_PERIOD_MINUTE, T0, -1.5),
        C(p, "ratio", GW_PERIOD_MINUTE, T0, 0.25),
        C(p, "zero", GW_PERIOD_MINUTE, T0, 0),
    };

    ct_store(d, 6);
    ct_store(more, 4);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_MINUTE, T0), 5);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_MINUTE, T0 + 60),
                        6);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_HOUR, T0), 10);
    ck_assert_double_eq(S(p, "refunds", NULL, NULL, GW_PERIOD_MINUTE, T0),
                        -5.5);
    ck_assert_double_eq(S(p, "ratio", NULL, NULL, GW_PERIOD_MINUTE, T0), 0.75);
    ck_assert_double_eq(S(p, "zero", NULL, NULL, GW_PERIOD_MINUTE, T0), 0);
    ck_assert_double_eq(S(p, "missing", NULL, NULL, GW_PERIOD_MINUTE, T0), 0);
}
END_TEST

/*
 * Sums that would overflow a double (issue 16) stay at +-DBL_MAX, each
 * counted once as GW_COUNTER_SATURATED (gw_sum_add), and the storage goes
 * on: a store never fails because of one, and the next batch is applied.
 * Counters and avg, positive and negative, total and filter series, two
 * deltas of one cell in one batch, and (PostgreSQL) cells that are not a
 * slot: a bucket older than the series' newest.
 */
START_TEST(test_saturation)
{
    const char *p = P("saturation");
    const double big = 1.7e308;
    gw_delta_t d[] = {
        C(p, "c", GW_PERIOD_ALL, 0, big),
        C(p, "n", GW_PERIOD_ALL, 0, -big),
        D(p, "c", "s", "x", GW_KIND_COUNTER, GW_PERIOD_ALL, 0, big, 1, 0),
        D(p, "a", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, big, 1, 0),
        C(p, "m", GW_PERIOD_MINUTE, T0 + 60, big),
        C(p, "m", GW_PERIOD_MINUTE, T0, big),
        D(p, "g", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_ALL, 0, DBL_MAX, 1,
          T0),
    };
    gw_delta_t again[] = {
        C(p, "c", GW_PERIOD_ALL, 0, big),
        C(p, "n", GW_PERIOD_ALL, 0, -big),
        D(p, "c", "s", "x", GW_KIND_COUNTER, GW_PERIOD_ALL, 0, big, 1, 0),
        D(p, "a", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, big, 1, 0),
        C(p, "m", GW_PERIOD_MINUTE, T0, big),
        C(p, "one", GW_PERIOD_ALL, 0, big),
        C(p, "one", GW_PERIOD_ALL, 0, big),
        C(p, "fine", GW_PERIOD_ALL, 0, 1e300),
    };
    gw_delta_t after[] = {
        C(p, "c", GW_PERIOD_ALL, 0, -1e308),
        C(p, "n", GW_PERIOD_ALL, 0, 1),
        C(p, "fine", GW_PERIOD_ALL, 0, 1e300),
    };
    ct_points_t pts;

    ct_saturated = 0;
    ct_store(d, sizeof(d) / sizeof(d[0]));
    ck_assert_uint_eq(ct_saturated, 0);
    ck_assert_double_eq(S(p, "c", NULL, NULL, GW_PERIOD_ALL, 0), big);

    /* c, n, c s=x, a, m at T0 (not the newest minute), one (twice in the
     * batch): six sums saturate; fine does not. */
    ct_store(again, sizeof(again) / sizeof(again[0]));
    ck_assert_uint_eq(ct_saturated, 6);
    ck_assert_double_eq(S(p, "c", NULL, NULL, GW_PERIOD_ALL, 0), DBL_MAX);
    ck_assert_double_eq(S(p, "n", NULL, NULL, GW_PERIOD_ALL, 0), -DBL_MAX);
    ck_assert_double_eq(S(p, "c", "s", "x", GW_PERIOD_ALL, 0), DBL_MAX);
    ck_assert_double_eq(S(p, "m", NULL, NULL, GW_PERIOD_MINUTE, T0), DBL_MAX);
    ck_assert_double_eq(S(p, "m", NULL, NULL, GW_PERIOD_MINUTE, T0 + 60), big);
    ck_assert_double_eq(S(p, "one", NULL, NULL, GW_PERIOD_ALL, 0), DBL_MAX);
    ck_assert_double_eq(S(p, "fine", NULL, NULL, GW_PERIOD_ALL, 0), 1e300);
    pts = Q(p, "a", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, 0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, DBL_MAX);
    ck_assert_int_eq(pts.v[0].count, 2);
    free(pts.v);
    pts = Q(p, "g", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_ALL, 0, 0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, DBL_MAX);
    free(pts.v);

    /* Saturated cells are ordinary numbers again: they go down exactly. */
    ct_store(after, sizeof(after) / sizeof(after[0]));
    ck_assert_uint_eq(ct_saturated, 6);
    ck_assert_double_eq(S(p, "c", NULL, NULL, GW_PERIOD_ALL, 0),
                        DBL_MAX - 1e308);
    ck_assert_double_eq(S(p, "n", NULL, NULL, GW_PERIOD_ALL, 0), -DBL_MAX);
    ck_assert_double_eq(S(p, "fine", NULL, NULL, GW_PERIOD_ALL, 0), 2e300);
    /* And survive a reopen as they are. */
    ct_reopen();
    ck_assert_double_eq(S(p, "c", NULL, NULL, GW_PERIOD_ALL, 0),
                        DBL_MAX - 1e308);
    ck_assert_double_eq(S(p, "one", NULL, NULL, GW_PERIOD_ALL, 0), DBL_MAX);
}
END_TEST

START_TEST(test_range_inclusive)
{
    const char *p = P("range");
    gw_delta_t d[5];
    ct_points_t pts;
    int i;

    for (i = 0; i < 5; i++)
        d[i] = C(p, "visits", GW_PERIOD_MINUTE, T0 + 60 * i, i + 1);
    ct_store(d, 5);

    pts = Q(p, "visits", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_MINUTE,
            T0 + 60, T0 + 180);
    ck_assert_uint_eq(pts.n, 3);
    ck_assert_int_eq(pts.v[0].bucket, T0 + 60);
    ck_assert_double_eq(pts.v[0].sum, 2);
    ck_assert_int_eq(pts.v[2].bucket, T0 + 180);
    ck_assert_double_eq(pts.v[2].sum, 4);
    free(pts.v);

    pts = Q(p, "visits", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_MINUTE,
            T0 + 120, T0 + 120);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 3);
    free(pts.v);

    pts = Q(p, "visits", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_MINUTE,
            T0 + 61, T0 + 119);
    ck_assert_uint_eq(pts.n, 0);
    free(pts.v);

    pts = Q(p, "visits", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_MINUTE,
            T0 - 86400 * 365, T0 + 86400 * 365);
    ck_assert_uint_eq(pts.n, 5);
    free(pts.v);

    /* A long range over a sparse series: only stored buckets come back. */
    pts = Q(p, "visits", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_MINUTE, 0,
            T0 + 86400LL * 365 * 100);
    ck_assert_uint_eq(pts.n, 5);
    free(pts.v);
}
END_TEST

START_TEST(test_every_period)
{
    static const int64_t buckets[GW_PERIOD_COUNT] = {
        1392454680, 1392451200, 1392422400, 1391990400, 1391212800,
        1388534400, 0};
    const char *p = P("periods");
    gw_delta_t d[GW_PERIOD_COUNT * 2];
    int i, j;

    for (i = 0; i < GW_PERIOD_COUNT; i++) {
        d[2 * i] = C(p, "hits", (gw_period_t) i, buckets[i], 10 + i);
        d[2 * i + 1] = D(p, "hits", "os", "linux", GW_KIND_COUNTER,
                         (gw_period_t) i, buckets[i], 100 + i, 1, 0);
    }
    ct_store(d, GW_PERIOD_COUNT * 2);
    for (i = 0; i < GW_PERIOD_COUNT; i++) {
        ct_points_t pts = Q(p, "hits", NULL, NULL, GW_KIND_COUNTER,
                            (gw_period_t) i, 0, 2000000000);

        ck_assert_msg(pts.n == 1, "period %s: %zu points", gw_period_name(i),
                      pts.n);
        ck_assert_int_eq(pts.v[0].bucket, buckets[i]);
        ck_assert_double_eq(pts.v[0].sum, 10 + i);
        free(pts.v);
        ck_assert_double_eq(S(p, "hits", "os", "linux", (gw_period_t) i,
                              buckets[i]), 100 + i);
        for (j = 0; j < GW_PERIOD_COUNT; j++)
            if (buckets[j] != buckets[i])
                ck_assert_double_eq(S(p, "hits", NULL, NULL, (gw_period_t) i,
                                      buckets[j]), 0);
    }
    /* all: the single bucket 0 is found by a range that holds 0. */
    ck_assert_double_eq(S(p, "hits", NULL, NULL, GW_PERIOD_ALL, 0), 16);
}
END_TEST

START_TEST(test_avg)
{
    const char *p = P("avg");
    gw_delta_t a[] = {
        D(p, "latency", NULL, NULL, GW_KIND_AVG, GW_PERIOD_HOUR, T0, 35, 2, 0),
        D(p, "latency", "route", "/api", GW_KIND_AVG, GW_PERIOD_HOUR, T0, 35,
          2, 0),
    };
    gw_delta_t b[] = {
        D(p, "latency", NULL, NULL, GW_KIND_AVG, GW_PERIOD_HOUR, T0, 7.5, 3,
          0),
        D(p, "latency", NULL, NULL, GW_KIND_AVG, GW_PERIOD_HOUR, T0 + 3600, 4,
          1, 0),
    };
    ct_points_t pts;

    ct_store(a, 2);
    ct_store(b, 2);
    pts = Q(p, "latency", NULL, NULL, GW_KIND_AVG, GW_PERIOD_HOUR, T0,
            T0 + 3600);
    ck_assert_uint_eq(pts.n, 2);
    ck_assert_double_eq(pts.v[0].sum, 42.5);
    ck_assert_int_eq(pts.v[0].count, 5);
    ck_assert_double_eq(pts.v[1].sum, 4);
    ck_assert_int_eq(pts.v[1].count, 1);
    free(pts.v);
    pts = Q(p, "latency", "route", "/api", GW_KIND_AVG, GW_PERIOD_HOUR, T0,
            T0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 35);
    ck_assert_int_eq(pts.v[0].count, 2);
    free(pts.v);
}
END_TEST

static void
ct_gauge_is(const char *p, const char *fname, const char *fvalue,
            int64_t bucket, double value, double ts)
{
    ct_points_t pts = Q(p, "temp", fname, fvalue, GW_KIND_GAUGE,
                        GW_PERIOD_DAY, bucket, bucket);

    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, value);
    ck_assert_double_eq(pts.v[0].ts, ts);
    free(pts.v);
}

START_TEST(test_gauge)
{
    const char *p = P("gauge");
    gw_delta_t d1[] = {
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 20, 1,
          T0 + 100.5),
        D(p, "temp", "room", "1", GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 18, 1,
          T0 + 100.5),
    };
    gw_delta_t older[] = {
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, -3, 1,
          T0 + 50),
    };
    gw_delta_t newer[] = {
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 21.25, 1,
          T0 + 200),
        D(p, "temp", "room", "1", GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 0, 1,
          T0 + 300),
    };
    gw_delta_t same_ts[] = {
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 22, 1,
          T0 + 200),
    };

    ct_store(d1, 2);
    ct_gauge_is(p, NULL, NULL, T0, 20, T0 + 100.5);
    ct_store(older, 1);
    ct_gauge_is(p, NULL, NULL, T0, 20, T0 + 100.5);
    ct_store(newer, 2);
    ct_gauge_is(p, NULL, NULL, T0, 21.25, T0 + 200);
    ct_gauge_is(p, "room", "1", T0, 0, T0 + 300);
    ct_store(same_ts, 1); /* ties: the last received wins */
    ct_gauge_is(p, NULL, NULL, T0, 22, T0 + 200);
}
END_TEST

START_TEST(test_filters)
{
    const char *p = P("filters");
    gw_delta_t d[] = {
        C(p, "orders", GW_PERIOD_DAY, T0, 3),
        D(p, "orders", "status", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 2,
          2, 0),
        D(p, "orders", "status", "new", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 1,
          1, 0),
        D(p, "orders", "device", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 7,
          7, 0),
        D(p, "orders", "status", "", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 9, 9,
          0),
        D(p, "orders", "", "x", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 11, 11, 0),
    };

    ct_store(d, 6);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 3);
    ck_assert_double_eq(S(p, "orders", "status", "paid", GW_PERIOD_DAY, T0),
                        2);
    ck_assert_double_eq(S(p, "orders", "status", "new", GW_PERIOD_DAY, T0), 1);
    ck_assert_double_eq(S(p, "orders", "device", "paid", GW_PERIOD_DAY, T0),
                        7);
    ck_assert_double_eq(S(p, "orders", "status", "", GW_PERIOD_DAY, T0), 9);
    ck_assert_double_eq(S(p, "orders", "", "x", GW_PERIOD_DAY, T0), 11);
    ck_assert_double_eq(S(p, "orders", "status", "old", GW_PERIOD_DAY, T0), 0);
    ck_assert_double_eq(S(p, "orders", "device", "new", GW_PERIOD_DAY, T0), 0);
}
END_TEST

START_TEST(test_metadata)
{
    const char *p = P("meta");
    gw_delta_t d[] = {
        C(p, "orders", GW_PERIOD_DAY, T0, 1),
        D(p, "orders", "status", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 1,
          1, 0),
        D(p, "orders", "status", "new", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 1,
          1, 0),
        D(p, "orders", "status", "new", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 1,
          1, 0),
        D(p, "orders", "device", "ios", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 1,
          1, 0),
        D(p, "latency", NULL, NULL, GW_KIND_AVG, GW_PERIOD_DAY, T0, 5, 1, 0),
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 5, 1, T0),
        D(p, "temp", "room", "kitchen", GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 5, 1,
          T0),
    };

    char want[CT_EXPECT] = "";

    ck_assert_meta(p, "");
    ct_store(d, 8);
    E(want, "orders", "counter", NULL, NULL);
    E(want, "orders", "counter", "status", "paid");
    E(want, "orders", "counter", "status", "new");
    E(want, "orders", "counter", "device", "ios");
    E(want, "latency", "avg", NULL, NULL);
    E(want, "temp", "gauge", NULL, NULL);
    E(want, "temp", "gauge", "room", "kitchen");
    ck_assert_meta(p, want);
    ck_assert_meta(P("meta_other"), "");
}
END_TEST

START_TEST(test_documents)
{
    const char *ns = "embedded";
    char id[64], id2[64], big[100001];
    const char *json = "{\"project\": \"x\", \"name\": \"Заказы ✓\"}";
    ct_doc_t d;
    size_t i;

    snprintf(id, sizeof(id), "%s-doc-1", ct_run);
    snprintf(id2, sizeof(id2), "%s-doc-2", ct_run);
    d = G(ns, id);
    ck_assert_int_eq(d.calls, 0);

    ct_put(ns, id, json, strlen(json));
    d = G(ns, id);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.len, strlen(json));
    ck_assert_str_eq(d.data, json);
    free(d.data);

    /* The same id in another namespace is another document. */
    d = G("dashboard", id);
    ck_assert_int_eq(d.calls, 0);

    ct_put(ns, id, "{}", 2);
    d = G(ns, id);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_str_eq(d.data, "{}");
    free(d.data);

    for (i = 0; i < sizeof(big) - 1; i++)
        big[i] = "abcdefghij"[i % 10];
    big[sizeof(big) - 1] = '\0';
    ct_put("dashboard", id2, big, sizeof(big) - 1);
    d = G("dashboard", id2);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.len, sizeof(big) - 1);
    ck_assert_int_eq(memcmp(d.data, big, d.len), 0);
    free(d.data);

    ct_put("dashboard", id2, "", 0);
    d = G("dashboard", id2);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.len, 0);
    free(d.data);
}
END_TEST

START_TEST(test_document_hostile_ids)
{
    static const char *const ids[] = {
        "o'rders\"; DROP TABLE x; --", "a:b", "a:b:c", "%s%n", "a b",
        "*", "[x]", "\\", "ключ", "a;b|c/d:e"};
    char id[300], long_id[256];
    size_t i;

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char body[64];

        snprintf(id, sizeof(id), "%s%s", ct_run, ids[i]);
        snprintf(body, sizeof(body), "{\"n\": %zu}", i);
        ct_put("dashboard", id, body, strlen(body));
    }
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char body[64];
        ct_doc_t d;

        snprintf(id, sizeof(id), "%s%s", ct_run, ids[i]);
        snprintf(body, sizeof(body), "{\"n\": %zu}", i);
        d = G("dashboard", id);
        ck_assert_int_eq(d.calls, 1);
        ck_assert_str_eq(d.data, body);
        free(d.data);
    }
    memset(long_id, 'i', 255);
    memcpy(long_id, ct_run, strlen(ct_run));
    long_id[255] = '\0';
    ct_put("embedded", long_id, "[1]", 3);
    {
        ct_doc_t d = G("embedded", long_id);

        ck_assert_int_eq(d.calls, 1);
        ck_assert_str_eq(d.data, "[1]");
        free(d.data);
    }
}
END_TEST

/* ---- compare-and-set, list and delete (ABI 1.6): when the ops are there ---- */

static int
ct_cas(const char *ns, const char *id, const char *expect, const char *data)
{
    gw_error_t err = {""};
    int rc = ct_ops->doc_cas(ct_state, ns, id, expect,
                             expect ? strlen(expect) : 0, data, strlen(data),
                             &err);

    ck_assert_msg(rc == GW_OK || rc == GW_CONFLICT,
                  "doc_cas %s/%s returned %d: %s", ns, id, rc, err.msg);
    if (rc == GW_CONFLICT)
        ck_assert_msg(err.msg[0] != '\0', "a conflict without a message");
    return rc;
}

static int
ct_del(const char *ns, const char *id, const char *expect)
{
    gw_error_t err = {""};
    int rc = ct_ops->doc_del(ct_state, ns, id, expect,
                             expect ? strlen(expect) : 0, &err);

    ck_assert_msg(rc == GW_OK || rc == GW_CONFLICT,
                  "doc_del %s/%s returned %d: %s", ns, id, rc, err.msg);
    return rc;
}

/* The document's bytes, or "(none)". */
static char *
ct_doc_text(const char *ns, const char *id)
{
    ct_doc_t d = G(ns, id);

    return d.calls ? d.data : strdup("(none)");
}

#define ck_assert_doc(ns, id, want)                                           \
    do {                                                                      \
        char *got_ = ct_doc_text(ns, id);                                     \
        ck_assert_str_eq(got_, want);                                         \
        free(got_);                                                           \
    } while (0)

START_TEST(test_document_cas)
{
    char id[128];

    if (ct_ops->doc_cas == NULL || ct_ops->doc_del == NULL)
        return; /* a storage before ABI 1.6: the core falls back */
    snprintf(id, sizeof(id), "%s-cas:1", ct_run);
    /* expect NULL: only when there is none */
    ck_assert_int_eq(ct_cas("dashboards", id, NULL, "{\"r\":1}"), GW_OK);
    ck_assert_int_eq(ct_cas("dashboards", id, NULL, "{\"r\":9}"), GW_CONFLICT);
    ck_assert_doc("dashboards", id, "{\"r\":1}");
    /* a stale expectation is refused and writes nothing */
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":0}", "{\"r\":2}"),
                     GW_CONFLICT);
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":1} ", "{\"r\":2}"),
                     GW_CONFLICT);
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":1", "{\"r\":2}"),
                     GW_CONFLICT);
    ck_assert_doc("dashboards", id, "{\"r\":1}");
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":1}", "{\"r\":2}"), GW_OK);
    ck_assert_doc("dashboards", id, "{\"r\":2}");
    /* another namespace is another document */
    ck_assert_int_eq(ct_cas("embedded", id, "{\"r\":2}", "x"), GW_CONFLICT);
    ck_assert_doc("embedded", id, "(none)");
    /* doc_put and doc_cas see each other's writes */
    ct_put("dashboards", id, "{\"r\":3}", 7);
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":2}", "{\"r\":4}"),
                     GW_CONFLICT);
    ck_assert_int_eq(ct_cas("dashboards", id, "{\"r\":3}", ""), GW_OK);
    ck_assert_doc("dashboards", id, "");
    ck_assert_int_eq(ct_cas("dashboards", id, "", "{\"r\":5}"), GW_OK);
    /* delete: with a stale expectation nothing goes */
    ck_assert_int_eq(ct_del("dashboards", id, "{\"r\":4}"), GW_CONFLICT);
    ck_assert_doc("dashboards", id, "{\"r\":5}");
    ck_assert_int_eq(ct_del("dashboards", id, "{\"r\":5}"), GW_OK);
    ck_assert_doc("dashboards", id, "(none)");
    ck_assert_int_eq(ct_del("dashboards", id, "{\"r\":5}"), GW_CONFLICT);
    ck_assert_int_eq(ct_del("dashboards", id, NULL), GW_OK);
    /* gone, so it can be created again */
    ck_assert_int_eq(ct_cas("dashboards", id, NULL, "{\"r\":6}"), GW_OK);
    ck_assert_int_eq(ct_del("dashboards", id, NULL), GW_OK);
    ck_assert_doc("dashboards", id, "(none)");
}
END_TEST

typedef struct ct_list_s {
    char *text; /* "id=data" entries ended by \035, as ct_sorted sorts */
    size_t len;
} ct_list_t;

static void
ct_list_entry(void *arg, const char *id, const char *data, size_t len)
{
    ct_list_t *l = arg;
    size_t n = strlen(id) + len + 2;

    l->text = realloc(l->text, l->len + n + 1);
    memcpy(l->text + l->len, id, strlen(id));
    l->text[l->len + strlen(id)] = '=';
    memcpy(l->text + l->len + strlen(id) + 1, data, len);
    l->text[l->len + n - 1] = '\035';
    l->len += n;
    l->text[l->len] = '\0';
}

static char *
L(const char *ns, const char *prefix)
{
    ct_list_t l = {NULL, 0};
    gw_error_t err = {""};
    int rc = ct_ops->doc_list(ct_state, ns, prefix, ct_list_entry, &l, &err);
    char *sorted;

    ck_assert_msg(rc == GW_OK, "doc_list %s/%s returned %d: %s", ns, prefix,
                  rc, err.msg);
    sorted = ct_sorted(l.text ? l.text : "");
    free(l.text);
    return sorted;
}

START_TEST(test_document_list)
{
    char pre[128], id[300], want[2048], *got;
    static const char *const tails[] = {"a", "b:c", "ключ", "x;y|z/w\\v",
                                        "*", "[x]%s"};
    size_t i;

    if (ct_ops->doc_list == NULL || ct_ops->doc_del == NULL)
        return;
    snprintf(pre, sizeof(pre), "%s-list\n", ct_run);
    got = L("dashboards", pre);
    ck_assert_str_eq(got, "");
    free(got);
    want[0] = '\0';
    for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        char body[32];

        snprintf(id, sizeof(id), "%s%s", pre, tails[i]);
        snprintf(body, sizeof(body), "{\"n\":%zu}", i);
        if (i % 2)
            ct_put("dashboards", id, body, strlen(body));
        else
            ck_assert_int_eq(ct_cas("dashboards", id, NULL, body), GW_OK);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s=%s\035",
                 id, body);
    }
    /* neither another namespace nor an id that only shares a shorter prefix */
    snprintf(id, sizeof(id), "%s-list", ct_run);
    ct_put("dashboards", id, "{}", 2);
    snprintf(id, sizeof(id), "%sa", pre);
    ct_put("embedded", id, "{}", 2);
    got = L("dashboards", pre);
    {
        char *w = ct_sorted(want);

        ck_assert_str_eq(got, w);
        free(w);
    }
    free(got);
    /* a deleted document is not listed */
    snprintf(id, sizeof(id), "%sb:c", pre);
    ck_assert_int_eq(ct_del("dashboards", id, NULL), GW_OK);
    snprintf(id, sizeof(id), "%sa", pre);
    got = L("dashboards", id);
    snprintf(want, sizeof(want), "%s={\"n\":0}\035", id);
    ck_assert_str_eq(got, want);
    free(got);
    got = L("dashboards", pre);
    ck_assert_ptr_null(strstr(got, "b:c="));
    ck_assert_ptr_nonnull(strstr(got, "ключ={\"n\":2}"));
    free(got);
}
END_TEST

START_TEST(test_exactly_once)
{
    const char *p = P("once");
    gw_delta_t d[] = {
        C(p, "orders", GW_PERIOD_DAY, T0, 5),
        D(p, "orders", "status", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 5,
          5, 0),
        D(p, "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_DAY, T0, 10, 2, 0),
    };
    char id[128];
    ct_points_t pts;

    snprintf(id, sizeof(id), "%s:once:1", ct_run);
    ct_store_id(d, 3, id);
    ct_store_id(d, 3, id);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 5);
    ck_assert_double_eq(S(p, "orders", "status", "paid", GW_PERIOD_DAY, T0),
                        5);
    pts = Q(p, "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_DAY, T0, T0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 10);
    ck_assert_int_eq(pts.v[0].count, 2);
    free(pts.v);

    /* Another id with the same deltas is another batch. */
    snprintf(id, sizeof(id), "%s:once:2", ct_run);
    ct_store_id(d, 3, id);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 10);

    /* Still remembered by a new instance (a restarted daemon). */
    ct_reopen();
    ct_store_id(d, 3, id);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 10);
}
END_TEST

START_TEST(test_unicode_names)
{
    const char *p = P("unicode_проект");
    gw_delta_t d[] = {
        C(p, "заказы 🚀", GW_PERIOD_DAY, T0, 4),
        D(p, "заказы 🚀", "状态", "已支付", GW_KIND_COUNTER, GW_PERIOD_DAY,
          T0, 3, 3, 0),
        D(p, "заказы 🚀", "状态", "新", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 1,
          1, 0),
        C(p, "Ünïcödé", GW_PERIOD_DAY, T0, 2),
    };

    ct_store(d, 4);
    ck_assert_double_eq(S(p, "заказы 🚀", NULL, NULL, GW_PERIOD_DAY, T0), 4);
    ck_assert_double_eq(S(p, "заказы 🚀", "状态", "已支付", GW_PERIOD_DAY,
                          T0), 3);
    ck_assert_double_eq(S(p, "заказы 🚀", "状态", "新", GW_PERIOD_DAY, T0),
                        1);
    ck_assert_double_eq(S(p, "Ünïcödé", NULL, NULL, GW_PERIOD_DAY, T0), 2);
    {
        char want[CT_EXPECT] = "";

        E(want, "заказы 🚀", "counter", NULL, NULL);
        E(want, "заказы 🚀", "counter", "状态", "已支付");
        E(want, "заказы 🚀", "counter", "状态", "新");
        E(want, "Ünïcödé", "counter", NULL, NULL);
        ck_assert_meta(p, want);
    }
}
END_TEST

static const char *const ct_hostile[] = {
    "o'rders\"; DROP TABLE x; --",
    "a;b|c/d:e",
    "%s%n%x%%",
    "a b c",
    "back\\slash",
    "*?[]{}",
    "tab\there\nnewline\r",
    "%",
    "%25",
    "%3B",
    "\\",
    ";",
    "|",
    "/",
    ":",
    "-metrics",
    "'",
    "$1",
    "NULL",
    "\x01\x7f",
};

#define CT_NHOSTILE (sizeof(ct_hostile) / sizeof(ct_hostile[0]))

START_TEST(test_hostile_names)
{
    const char *p = P("hostile");
    gw_delta_t d[CT_NHOSTILE * 2];
    char expect[CT_EXPECT] = "", longname[256];
    size_t i;

    for (i = 0; i < CT_NHOSTILE; i++) {
        const char *v = ct_hostile[(i + 1) % CT_NHOSTILE];

        d[2 * i] = C(p, ct_hostile[i], GW_PERIOD_DAY, T0, (double) i + 1);
        d[2 * i + 1] = D(p, "filtered", ct_hostile[i], v, GW_KIND_COUNTER,
                         GW_PERIOD_DAY, T0, 100.0 + i, 1, 0);
        E(expect, ct_hostile[i], "counter", NULL, NULL);
        E(expect, "filtered", "counter", ct_hostile[i], v);
    }
    E(expect, "filtered", "counter", NULL, NULL);
    ct_store(d, CT_NHOSTILE * 2);
    {
        gw_delta_t total = C(p, "filtered", GW_PERIOD_DAY, T0, 1);

        ct_store(&total, 1);
    }
    for (i = 0; i < CT_NHOSTILE; i++) {
        const char *v = ct_hostile[(i + 1) % CT_NHOSTILE];

        ck_assert_msg(S(p, ct_hostile[i], NULL, NULL, GW_PERIOD_DAY, T0) ==
                          (double) i + 1,
                      "metric \"%s\" does not read back", ct_hostile[i]);
        ck_assert_msg(S(p, "filtered", ct_hostile[i], v, GW_PERIOD_DAY, T0) ==
                          100.0 + i,
                      "filter \"%s\"=\"%s\" does not read back",
                      ct_hostile[i], v);
    }
    ck_assert_meta(p, expect);

    /* 255-byte names (UTF-8: 127 two-byte letters and one more byte). */
    for (i = 0; i < 127; i++)
        memcpy(longname + 2 * i, "é", 2);
    longname[254] = 'x';
    longname[255] = '\0';
    {
        const char *lp = P("hostile_long");
        gw_delta_t l[] = {
            C(lp, longname, GW_PERIOD_MONTH, 1391212800, 8),
            D(lp, longname, longname, longname, GW_KIND_COUNTER,
              GW_PERIOD_MONTH, 1391212800, 9, 1, 0),
        };

        ct_store(l, 2);
        ck_assert_double_eq(S(lp, longname, NULL, NULL, GW_PERIOD_MONTH,
                              1391212800), 8);
        ck_assert_double_eq(S(lp, longname, longname, longname,
                              GW_PERIOD_MONTH, 1391212800), 9);
        expect[0] = '\0';
        E(expect, longname, "counter", NULL, NULL);
        E(expect, longname, "counter", longname, longname);
        ck_assert_meta(lp, expect);
    }
}
END_TEST

/*
 * Names that would share a key in the original Redis layout, where nothing
 * was escaped: each must keep its own count and its own metadata.
 */
START_TEST(test_no_collisions)
{
    const char *p = P("collide");
    char p2[160];
    gw_delta_t d[] = {
        /* p-metrics-filter-values:a:b:c, both ways */
        D(p, "a:b", "c", "v", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 1, 1, 0),
        D(p, "a", "b:c", "v", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 2, 1, 0),
        /* p;m;hour;f|x/g|y */
        D(p, "m", "f", "x/g|y", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 3, 1, 0),
        D(p, "m", "f|x/g", "y", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 4, 1, 0),
        /* p;m;hour;day;x|y */
        D(p, "m;hour", "x", "y", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 5, 1, 0),
        D(p, "m", "day;x", "y", GW_KIND_COUNTER, GW_PERIOD_HOUR, T0, 6, 1, 0),
        /* the escape characters themselves */
        C(p, "e;f", GW_PERIOD_HOUR, T0, 7),
        C(p, "e%3Bf", GW_PERIOD_HOUR, T0, 8),
        C(p, "e\\;f", GW_PERIOD_HOUR, T0, 9),
        C(p, "e%253Bf", GW_PERIOD_HOUR, T0, 10),
        C(p, "e\\\\;f", GW_PERIOD_HOUR, T0, 11),
        C(p, "e\\3Bf", GW_PERIOD_HOUR, T0, 12),
        /* a project that ends like another project's metric */
        C(p2, "m", GW_PERIOD_HOUR, T0, 13),
        C(p, "x;m", GW_PERIOD_HOUR, T0, 14),
    };

    char want[CT_EXPECT] = "";
    size_t i;

    snprintf(p2, sizeof(p2), "%s;x", p);
    ct_store(d, sizeof(d) / sizeof(d[0]));
    ck_assert_double_eq(S(p, "a:b", "c", "v", GW_PERIOD_HOUR, T0), 1);
    ck_assert_double_eq(S(p, "a", "b:c", "v", GW_PERIOD_HOUR, T0), 2);
    ck_assert_double_eq(S(p, "m", "f", "x/g|y", GW_PERIOD_HOUR, T0), 3);
    ck_assert_double_eq(S(p, "m", "f|x/g", "y", GW_PERIOD_HOUR, T0), 4);
    ck_assert_double_eq(S(p, "m;hour", "x", "y", GW_PERIOD_DAY, T0), 5);
    ck_assert_double_eq(S(p, "m", "day;x", "y", GW_PERIOD_HOUR, T0), 6);
    ck_assert_double_eq(S(p, "e;f", NULL, NULL, GW_PERIOD_HOUR, T0), 7);
    ck_assert_double_eq(S(p, "e%3Bf", NULL, NULL, GW_PERIOD_HOUR, T0), 8);
    ck_assert_double_eq(S(p, "e\\;f", NULL, NULL, GW_PERIOD_HOUR, T0), 9);
    ck_assert_double_eq(S(p, "e%253Bf", NULL, NULL, GW_PERIOD_HOUR, T0), 10);
    ck_assert_double_eq(S(p, "e\\\\;f", NULL, NULL, GW_PERIOD_HOUR, T0), 11);
    ck_assert_double_eq(S(p, "e\\3Bf", NULL, NULL, GW_PERIOD_HOUR, T0), 12);
    ck_assert_double_eq(S(p2, "m", NULL, NULL, GW_PERIOD_HOUR, T0), 13);
    ck_assert_double_eq(S(p, "x;m", NULL, NULL, GW_PERIOD_HOUR, T0), 14);
    ck_assert_double_eq(S(p, "m", NULL, NULL, GW_PERIOD_HOUR, T0), 0);
    E(want, "a:b", "counter", NULL, NULL);
    E(want, "a:b", "counter", "c", "v");
    E(want, "a", "counter", NULL, NULL);
    E(want, "a", "counter", "b:c", "v");
    E(want, "m", "counter", NULL, NULL);
    E(want, "m", "counter", "f", "x/g|y");
    E(want, "m", "counter", "f|x/g", "y");
    E(want, "m", "counter", "day;x", "y");
    E(want, "m;hour", "counter", NULL, NULL);
    E(want, "m;hour", "counter", "x", "y");
    for (i = 6; i < 12; i++)
        E(want, d[i].metric, "counter", NULL, NULL);
    E(want, "x;m", "counter", NULL, NULL);
    ck_assert_meta(p, want);
    want[0] = '\0';
    E(want, "m", "counter", NULL, NULL);
    ck_assert_meta(p2, want);
}
END_TEST

static double
ct_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CT_LARGE 100000
#define CT_LARGE_METRICS 100

START_TEST(test_large_batch)
{
    const char *p = P("large");
    gw_delta_t *d = calloc(CT_LARGE, sizeof(*d));
    char (*names)[16] = calloc(CT_LARGE_METRICS, 16);
    char id[128];
    double t, expect[CT_LARGE_METRICS] = {0};
    size_t i, per = CT_LARGE / CT_LARGE_METRICS;
    int round;

    ck_assert_ptr_nonnull(d);
    for (i = 0; i < CT_LARGE_METRICS; i++)
        snprintf(names[i], 16, "m%03zu", i);
    for (i = 0; i < CT_LARGE; i++) {
        size_t m = i % CT_LARGE_METRICS;

        d[i] = C(p, names[m], GW_PERIOD_MINUTE,
                 T0 + 60 * (int64_t) (i / CT_LARGE_METRICS),
                 (double) (i % 7 + 1));
        expect[m] += (double) (i % 7 + 1);
    }
    snprintf(id, sizeof(id), "%s:large", ct_run);
    for (round = 0; round < 2; round++) {
        /* The second round repeats the id: nothing changes. */
        t = ct_seconds();
        ct_store_id(d, CT_LARGE, id);
        fprintf(stderr, "%s: store of %d distinct deltas: %.3f s%s\n",
                ct_plugin->name, CT_LARGE, ct_seconds() - t,
                round ? " (repeated id)" : "");
    }
    t = ct_seconds();
    for (i = 0; i < CT_LARGE_METRICS; i++) {
        ct_points_t pts = Q(p, names[i], NULL, NULL, GW_KIND_COUNTER,
                            GW_PERIOD_MINUTE, T0, T0 + 60 * (int64_t) per);
        double sum = 0;
        size_t j;

        ck_assert_uint_eq(pts.n, per);
        for (j = 0; j < pts.n; j++)
            sum += pts.v[j].sum;
        ck_assert_msg(sum == expect[i], "%s: sum %g, expected %g", names[i],
                      sum, expect[i]);
        free(pts.v);
    }
    fprintf(stderr, "%s: %d queries of %zu buckets: %.3f s\n",
            ct_plugin->name, CT_LARGE_METRICS, per, ct_seconds() - t);
    /* A narrow range of a long series. */
    {
        ct_points_t pts = Q(p, "m007", NULL, NULL, GW_KIND_COUNTER,
                            GW_PERIOD_MINUTE, T0 + 600, T0 + 720);

        ck_assert_uint_eq(pts.n, 3);
        ck_assert_double_eq(pts.v[0].sum, (double) ((1000 + 7) % 7 + 1));
        free(pts.v);
    }
    free(d);
    free(names);
}
END_TEST

START_TEST(test_reopen)
{
    const char *p = P("reopen");
    gw_delta_t d[] = {
        C(p, "orders", GW_PERIOD_DAY, T0, 3),
        D(p, "orders", "status", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY, T0, 2,
          2, 0),
        D(p, "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, 9.5, 4, 0),
        D(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_YEAR, 1388534400, 7,
          1, 1392454739.25),
    };
    char id[64];
    ct_points_t pts;
    ct_doc_t doc;
    char *meta;

    snprintf(id, sizeof(id), "%s-reopen", ct_run);
    ct_store(d, 4);
    ct_put("dashboard", id, "{\"w\": 1}", 8);
    meta = M(p);
    ct_reopen();
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 3);
    ck_assert_double_eq(S(p, "orders", "status", "paid", GW_PERIOD_DAY, T0),
                        2);
    pts = Q(p, "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, 0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 9.5);
    ck_assert_int_eq(pts.v[0].count, 4);
    free(pts.v);
    pts = Q(p, "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_YEAR, 1388534400,
            1388534400);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 7);
    ck_assert_double_eq(pts.v[0].ts, 1392454739.25);
    free(pts.v);
    doc = G("dashboard", id);
    ck_assert_int_eq(doc.calls, 1);
    ck_assert_str_eq(doc.data, "{\"w\": 1}");
    free(doc.data);
    {
        char *again = M(p);

        ck_assert_str_eq(again, meta);
        free(again);
    }
    free(meta);
}
END_TEST

START_TEST(test_ping)
{
    gw_error_t err = {""};

    if (ct_ops->ping != NULL)
        ck_assert_msg(ct_ops->ping(ct_state, &err) == GW_OK, "ping: %s",
                      err.msg);
}
END_TEST

/* ---- the shared replay cache (ABI 1.3's nonce_claim) ---- */

static double
ct_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One claim; GW_ERR must come with a message. */
static int
ct_claim(const char *project, const char *nonce, double expires_at)
{
    gw_error_t err = {""};
    int rc = ct_ops->nonce_claim(ct_state, project, nonce, strlen(nonce),
                                 expires_at, &err);

    ck_assert_msg(rc == GW_OK || err.msg[0] != '\0',
                  "nonce_claim returned %d without a message", rc);
    return rc;
}

START_TEST(test_nonce_claim)
{
    const char *p = P("nonce"), *q = P("nonce_other");
    static const char n64[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                              "UVWXYZ0123456789_-";
    double now = ct_wall();

    if (ct_ops->nonce_claim == NULL)
        return; /* optional: no shared replay cache */
    ck_assert_int_eq(ct_claim(p, "nonce-0001_abc", now + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, "nonce-0001_abc", now + 600), GW_ERR);
    ck_assert_int_eq(ct_claim(p, "nonce-0001_abc", now + 900), GW_ERR);
    /* Per project, and byte for byte. */
    ck_assert_int_eq(ct_claim(q, "nonce-0001_abc", now + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, "nonce-0001_abd", now + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, "Nonce-0001_abc", now + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, n64, now + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, n64, now + 600), GW_ERR);
    /* An expired claim is forgotten: the nonce may be claimed again. */
    ck_assert_int_eq(ct_claim(p, "nonce-short_1", now + 1), GW_OK);
    while (ct_wall() < now + 2.2)
        usleep(50000);
    ck_assert_int_eq(ct_claim(p, "nonce-short_1", ct_wall() + 600), GW_OK);
    ck_assert_int_eq(ct_claim(p, "nonce-short_1", ct_wall() + 600), GW_ERR);
    /* A restart remembers (for memory: through the snapshot). */
    ct_reopen();
    ck_assert_int_eq(ct_claim(p, "nonce-0001_abc", now + 600), GW_ERR);
    ck_assert_int_eq(ct_claim(q, "nonce-0001_abc", now + 600), GW_ERR);
    ck_assert_int_eq(ct_claim(p, "nonce-short_1", now + 600), GW_ERR);
    ck_assert_int_eq(ct_claim(p, "nonce-0002_abc", now + 600), GW_OK);
}
END_TEST

/* ---- retention (ABI 1.4's expire) ---- */

/* expire() to the end: GW_AGAIN means more to do. */
static void
ct_expire(gw_period_t period, int64_t before)
{
    gw_error_t err = {""};
    int rc, calls = 0;

    do {
        rc = ct_ops->expire(ct_state, period, before, &err);
        ck_assert_msg(++calls < 1000000, "expire never finished");
    } while (rc == GW_AGAIN);
    ck_assert_msg(rc == GW_OK, "expire(%s, %lld) returned %d: %s",
                  gw_period_name(period), (long long) before, rc, err.msg);
}

START_TEST(test_expire)
{
    /* In 1990, so that the cuts leave every other test's 2014 cells. */
    static const int64_t m0 = 631152000, m1 = m0 + 60, m2 = m0 + 120;
    static const int64_t h0 = m0 - 3600, h1 = m0;
    const char *p = P("expire"), *q = P("expire_other");
    gw_delta_t d[16];
    size_t n = 0;
    int i;

    if (ct_ops->expire == NULL)
        return; /* optional: the storage keeps everything */
    for (i = 0; i < 2; i++) {
        const char *pr = i == 0 ? p : q;

        d[n++] = C(pr, "hits", GW_PERIOD_MINUTE, m0, 1);
        d[n++] = C(pr, "hits", GW_PERIOD_MINUTE, m1, 2);
        d[n++] = C(pr, "hits", GW_PERIOD_MINUTE, m2, 4);
        d[n++] = D(pr, "hits", "os", "linux", GW_KIND_COUNTER,
                   GW_PERIOD_MINUTE, m0, 8, 1, 0);
        d[n++] = D(pr, "hits", "os", "linux", GW_KIND_COUNTER,
                   GW_PERIOD_MINUTE, m2, 16, 1, 0);
        d[n++] = C(pr, "hits", GW_PERIOD_HOUR, h0, 32);
        d[n++] = C(pr, "hits", GW_PERIOD_HOUR, h1, 64);
        d[n++] = C(pr, "hits", GW_PERIOD_ALL, 0, 128);
    }
    ct_store(d, n);
    /* The minute cells before m2 go, in every project and series; the
     * other periods' stay. */
    ct_expire(GW_PERIOD_MINUTE, m2);
    for (i = 0; i < 2; i++) {
        const char *pr = i == 0 ? p : q;
        ct_points_t pts = Q(pr, "hits", NULL, NULL, GW_KIND_COUNTER,
                            GW_PERIOD_MINUTE, 0, 2000000000);

        ck_assert_uint_eq(pts.n, 1);
        ck_assert_int_eq(pts.v[0].bucket, m2);
        ck_assert_double_eq(pts.v[0].sum, 4);
        free(pts.v);
        ck_assert_double_eq(S(pr, "hits", "os", "linux", GW_PERIOD_MINUTE,
                              m0), 0);
        ck_assert_double_eq(S(pr, "hits", "os", "linux", GW_PERIOD_MINUTE,
                              m2), 16);
        ck_assert_double_eq(S(pr, "hits", NULL, NULL, GW_PERIOD_HOUR, h0),
                            32);
        ck_assert_double_eq(S(pr, "hits", NULL, NULL, GW_PERIOD_HOUR, h1),
                            64);
        ck_assert_double_eq(S(pr, "hits", NULL, NULL, GW_PERIOD_ALL, 0), 128);
    }
    /* Again: nothing more goes. Then the hours before h1. */
    ct_expire(GW_PERIOD_MINUTE, m2);
    ct_expire(GW_PERIOD_HOUR, h1);
    ck_assert_double_eq(S(p, "hits", NULL, NULL, GW_PERIOD_HOUR, h0), 0);
    ck_assert_double_eq(S(p, "hits", NULL, NULL, GW_PERIOD_HOUR, h1), 64);
    ck_assert_double_eq(S(p, "hits", NULL, NULL, GW_PERIOD_MINUTE, m2), 4);
    /* Gone for good: a restart (memory: its snapshot) does not bring the
     * cells back, and the series can still be written. */
    ct_reopen();
    ck_assert_double_eq(S(q, "hits", NULL, NULL, GW_PERIOD_MINUTE, m0), 0);
    ck_assert_double_eq(S(q, "hits", NULL, NULL, GW_PERIOD_HOUR, h0), 0);
    ck_assert_double_eq(S(q, "hits", NULL, NULL, GW_PERIOD_MINUTE, m2), 4);
    d[0] = C(p, "hits", GW_PERIOD_MINUTE, m2, 1);
    ct_store(d, 1);
    ck_assert_double_eq(S(p, "hits", NULL, NULL, GW_PERIOD_MINUTE, m2), 5);
}
END_TEST

/* ---- timing and set (ABI 1.5): for a storage whose ops->kinds has them ---- */

/* Skips the rest of a test (passing) when the storage does not declare k:
 * the core never hands such a storage those deltas. */
#define CT_NEED_KIND(k)                                                       \
    do {                                                                      \
        if (!(ct_ops->kinds & GW_KIND_BIT(k))) {                              \
            fprintf(stderr, "skipped: the storage \"%s\" does not declare "   \
                    "the kind %s (ops->kinds 0x%x)\n", ct_plugin->name,       \
                    gw_kind_name(k), (unsigned) ct_ops->kinds);               \
            return;                                                           \
        }                                                                     \
    } while (0)

/* n values of a shape, multiples of 1/8 (so that every sum is exact):
 * 0 uniform 1..1000, 1 lognormal (median 20), 2 a bimodal mix with a 1 %
 * slow tail (about 15 and 2000), 3 signed -50..50 with zeros. */
static double *
ct_values(unsigned seed, size_t n, int shape)
{
    double *v = malloc((n ? n : 1) * sizeof(*v));
    size_t i;

    ck_assert_ptr_nonnull(v);
    for (i = 0; i < n; i++) {
        double u1 = (rand_r(&seed) + 1.0) / (RAND_MAX + 2.0);
        double u2 = (rand_r(&seed) + 1.0) / (RAND_MAX + 2.0);
        double g = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2), x;

        switch (shape) {
        case 0:
            x = 1 + 999 * u1;
            break;
        case 1:
            x = exp(log(20) + 0.8 * g);
            break;
        case 2:
            x = u2 < 0.01 ? 2000 + 300 * g : 15 + 2 * g;
            break;
        default:
            x = u2 < 0.1 ? 0 : -50 + 100 * u1;
            break;
        }
        v[i] = round(x * 8) / 8;
    }
    return v;
}

/* The sketch and the sum of n values, as the core builds a delta. */
static double
ct_timing_of(gw_timing_t *t, const double *v, size_t n)
{
    double sum = 0;
    size_t i;

    gw_timing_init(t);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(gw_timing_add(t, v[i], 1), GW_OK);
        sum += v[i];
    }
    return sum;
}

static int
ct_double_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

/* The exact nearest-rank q-quantile of sorted: rank max(1, ceil(q n)). */
static double
ct_exact_quantile(const double *sorted, size_t n, double q)
{
    size_t rank = (size_t) ceil(q * (double) n - 1e-9);

    return sorted[(rank < 1 ? 1 : rank) - 1];
}

/* t is the sketch of the n values v: total, min and max exact, p50, p90,
 * p99 and p999 within 1 % of the exact nearest-rank ones (qs: the ones
 * to check, 0-terminated; NULL: those four). */
static void
ck_timing_is(const gw_timing_t *t, const double *v, size_t n,
             const double *qs, const char *what)
{
    static const double all[] = {0.5, 0.9, 0.99, 0.999, 0};
    double *s = malloc(n * sizeof(*s));

    ck_assert_ptr_nonnull(s);
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), ct_double_cmp);
    ck_assert_msg(gw_timing_total(t) == n, "%s: the sketch holds %llu values, "
                  "%zu were stored", what,
                  (unsigned long long) gw_timing_total(t), n);
    ck_assert_msg(t->min == s[0] && t->max == s[n - 1], "%s: min %.17g max "
                  "%.17g, the values' are %.17g and %.17g", what, t->min,
                  t->max, s[0], s[n - 1]);
    for (qs = qs ? qs : all; *qs > 0; qs++) {
        double want = ct_exact_quantile(s, n, *qs);
        double got = gw_timing_quantile(t, *qs);

        ck_assert_msg(fabs(got - want) <= 0.01 * fabs(want) + 1e-12,
                      "%s: p%g is %.17g, the exact nearest-rank one %.17g "
                      "(more than 1 %% off)", what, *qs * 100, got, want);
    }
    free(s);
}

static void
ct_store_data(const gw_delta_t *d, const gw_delta_data_t *data, size_t n,
              const char *id)
{
    gw_batch_t b;
    gw_error_t err = {""};
    int rc;

    b.id = id;
    b.deltas = d;
    b.ndeltas = n;
    b.data = data;
    rc = ct_ops->store(ct_state, &b, &err);
    ck_assert_msg(rc == GW_OK, "store of %zu timing/set deltas (batch %s) "
                  "returned %d: %s", n, id, rc, err.msg);
}

typedef struct ct_tpoints_s {
    gw_point_t p;
    gw_timing_t t;
    size_t n;
} ct_tpoints_t;

static void
ct_tpoint(void *arg, const gw_point_t *p, const gw_timing_t *t)
{
    ct_tpoints_t *x = arg;

    ck_assert_msg(x->n == 0, "query_timing of one bucket answered %zu "
                  "points", x->n + 1);
    x->p = *p;
    gw_timing_init(&x->t);
    ck_assert_int_eq(gw_timing_copy(&x->t, t), GW_OK);
    x->n++;
}

/* query_timing of one bucket: 0 or 1 point into *p and *t (a copy, free
 * it with gw_timing_free); the point must be query()'s. */
static size_t
QT(const char *project, const char *metric, const char *fname,
   const char *fvalue, gw_period_t period, int64_t bucket, gw_point_t *p,
   gw_timing_t *t)
{
    gw_query_t q = {project, metric, fname, fvalue, GW_KIND_TIMING, period,
                    bucket, bucket};
    ct_tpoints_t x;
    gw_error_t err = {""};
    ct_points_t pts;
    int rc;

    memset(&x, 0, sizeof(x));
    gw_timing_init(t);
    rc = ct_ops->query_timing(ct_state, &q, ct_tpoint, &x, &err);
    ck_assert_msg(rc == GW_OK, "query_timing %s/%s returned %d: %s", project,
                  metric, rc, err.msg);
    pts = Q(project, metric, fname, fvalue, GW_KIND_TIMING, period, bucket,
            bucket);
    ck_assert_msg(pts.n == x.n, "query answered %zu points, query_timing "
                  "%zu", pts.n, x.n);
    if (x.n == 1) {
        ck_assert_int_eq(x.p.bucket, bucket);
        ck_assert_double_eq(x.p.sum, pts.v[0].sum);
        ck_assert_int_eq(x.p.count, pts.v[0].count);
        ck_assert_double_eq(pts.v[0].ts, 0);
        *p = x.p;
        *t = x.t;
    }
    free(pts.v);
    return x.n;
}

/* A timing delta of values v (n of them) into *t, sum and count set. */
static gw_delta_t
TD(const char *project, const char *metric, const char *fname,
   const char *fvalue, gw_period_t period, int64_t bucket, gw_timing_t *t,
   const double *v, size_t n)
{
    double sum = ct_timing_of(t, v, n);

    return D(project, metric, fname, fvalue, GW_KIND_TIMING, period, bucket,
             sum, (int64_t) n, 0);
}

/* The cell of one bucket holds exactly the values v: sum, count, sketch. */
static void
ck_timing_cell(const char *p, const char *metric, const char *fname,
               const char *fvalue, gw_period_t period, int64_t bucket,
               const double *v, size_t n, double sum, const char *what)
{
    gw_point_t pt;
    gw_timing_t t;

    ck_assert_msg(QT(p, metric, fname, fvalue, period, bucket, &pt, &t) == 1,
                  "%s: no cell", what);
    ck_assert_msg(pt.sum == sum, "%s: sum %.17g, %.17g was stored", what,
                  pt.sum, sum);
    ck_assert_int_eq(pt.count, (int64_t) n);
    ck_timing_is(&t, v, n, NULL, what);
    gw_timing_free(&t);
}

#define CT_TN 1000

START_TEST(test_timing_store_query)
{
    static const char *const fv[3] = {NULL, "eu", "us"};
    static const gw_period_t per[4] = {GW_PERIOD_MINUTE, GW_PERIOD_MINUTE,
                                       GW_PERIOD_HOUR, GW_PERIOD_DAY};
    static const int64_t bk[4] = {T0, T0 + 60, T0, T0};
    const char *p = P("timing");
    gw_delta_t d[12];
    gw_delta_data_t data[12];
    gw_timing_t t[12];
    double *v[12];
    ct_points_t pts;
    size_t i;
    char what[96];

    CT_NEED_KIND(GW_KIND_TIMING);
    for (i = 0; i < 12; i++) {
        v[i] = ct_values(100 + (unsigned) i, CT_TN, (int) (i % 4));
        d[i] = TD(p, "latency", fv[i / 4] ? "region" : NULL, fv[i / 4],
                  per[i % 4], bk[i % 4], &t[i], v[i], CT_TN);
        data[i].timing = &t[i];
        data[i].set = NULL;
    }
    ct_store_data(d, data, 12, ct_batch_id("timing"));
    for (i = 0; i < 12; i++) {
        snprintf(what, sizeof(what), "latency %s=%s %s %lld",
                 fv[i / 4] ? "region" : "", fv[i / 4] ? fv[i / 4] : "total",
                 gw_period_name(per[i % 4]), (long long) bk[i % 4]);
        ck_timing_cell(p, "latency", d[i].filter_name, fv[i / 4], per[i % 4],
                       bk[i % 4], v[i], CT_TN, d[i].sum, what);
    }
    pts = Q(p, "latency", "region", "us", GW_KIND_TIMING, GW_PERIOD_MINUTE,
            T0, T0 + 60);
    ck_assert_uint_eq(pts.n, 2);
    ck_assert_double_eq(pts.v[1].sum, d[9].sum);
    free(pts.v);
    for (i = 0; i < 12; i++) {
        gw_timing_free(&t[i]);
        free(v[i]);
    }
}
END_TEST

/* Two batches into one cell, and two deltas of one batch into another:
 * the cell is the union of the values. */
START_TEST(test_timing_merge)
{
    const char *p = P("timing_merge");
    double *a, *b, *ab;
    gw_timing_t ta, tb;
    gw_delta_t d[2];
    gw_delta_data_t data[2] = {{&ta, NULL}, {&tb, NULL}};

    /* Skipped before allocating: a skipped test leaks nothing. */
    CT_NEED_KIND(GW_KIND_TIMING);
    a = ct_values(7, 2000, 1);
    b = ct_values(8, 3000, 2);
    ab = malloc(5000 * sizeof(*ab));
    memcpy(ab, a, 2000 * sizeof(*ab));
    memcpy(ab + 2000, b, 3000 * sizeof(*ab));
    d[0] = TD(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, &ta, a, 2000);
    d[1] = TD(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, &tb, b, 3000);
    ct_store_data(&d[0], &data[0], 1, ct_batch_id("tm"));
    ct_store_data(&d[1], &data[1], 1, ct_batch_id("tm"));
    ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, ab, 5000,
                   d[0].sum + d[1].sum, "two batches");
    d[0].period = d[1].period = GW_PERIOD_HOUR;
    ct_store_data(d, data, 2, ct_batch_id("tm"));
    ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_HOUR, T0, ab, 5000,
                   d[0].sum + d[1].sum, "two deltas of one batch");
    ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, ab, 5000,
                   d[0].sum + d[1].sum, "the day after the hour's batch");
    gw_timing_free(&ta);
    gw_timing_free(&tb);
    free(a);
    free(b);
    free(ab);
}
END_TEST

START_TEST(test_timing_exactly_once)
{
    const char *p = P("timing_once");
    double *v;
    gw_timing_t t;
    gw_delta_t d;
    gw_delta_data_t data = {&t, NULL};
    char id[128];

    CT_NEED_KIND(GW_KIND_TIMING);
    v = ct_values(9, 500, 0);
    d = TD(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, &t, v, 500);
    snprintf(id, sizeof(id), "%s:timing_once:1", ct_run);
    ct_store_data(&d, &data, 1, id);
    ct_store_data(&d, &data, 1, id);
    ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, v, 500, d.sum,
                   "the same batch twice");
    ct_reopen();
    ct_store_data(&d, &data, 1, id);
    ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, v, 500, d.sum,
                   "the same batch after a reopen");
    gw_timing_free(&t);
    free(v);
}
END_TEST

/* Two deltas of 2000 distinct bins each (values gamma^(k - 1/2), bin k):
 * the cell keeps at most GW_SKETCH_MAX_BINS, folding the lowest; max and
 * min stay exact and the upper quantiles within 1 %. */
START_TEST(test_timing_bounded)
{
    static const double upper[] = {0.9, 0.99, 0.999, 0};
    const char *p = P("timing_bins");
    double *v;
    gw_timing_t t[2], got;
    gw_delta_t d[2];
    gw_delta_data_t data[2] = {{&t[0], NULL}, {&t[1], NULL}};
    gw_point_t pt;
    size_t i;

    CT_NEED_KIND(GW_KIND_TIMING);
    v = malloc(4000 * sizeof(*v));
    for (i = 0; i < 4000; i++)
        v[i] = pow(GW_SKETCH_GAMMA, (double) i + 0.5);
    for (i = 0; i < 2; i++) {
        d[i] = TD(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, &t[i],
                  v + 2000 * i, 2000);
        ck_assert_uint_eq(t[i].npos, 2000);
        ct_store_data(&d[i], &data[i], 1, ct_batch_id("bins"));
    }
    ck_assert_uint_eq(QT(p, "lat", NULL, NULL, GW_PERIOD_DAY, T0, &pt, &got),
                      1);
    ck_assert_msg(got.npos + got.nneg <= GW_SKETCH_MAX_BINS, "the cell holds "
                  "%zu bins, more than GW_SKETCH_MAX_BINS (%d)",
                  got.npos + got.nneg, GW_SKETCH_MAX_BINS);
    ck_assert_int_eq(pt.count, 4000);
    ck_assert_msg(fabs(pt.sum - (d[0].sum + d[1].sum)) <=
                  1e-12 * (d[0].sum + d[1].sum), "sum %.17g, stored %.17g",
                  pt.sum, d[0].sum + d[1].sum);
    ck_timing_is(&got, v, 4000, upper, "4000 distinct bins");
    gw_timing_free(&got);
    gw_timing_free(&t[0]);
    gw_timing_free(&t[1]);
    free(v);
}
END_TEST

/* Negative values and zeros, filters and every period survive a reopen
 * bin for bin. */
START_TEST(test_timing_reopen)
{
    static const size_t nv[3] = {800, 900, 700};
    const char *p = P("timing_reopen");
    double *v[3];
    gw_timing_t t[3], before[3], after;
    gw_delta_t d[3];
    gw_delta_data_t data[3];
    gw_point_t pt;
    char *meta;
    size_t i, j;

    CT_NEED_KIND(GW_KIND_TIMING);
    v[0] = ct_values(21, nv[0], 3);
    v[1] = ct_values(22, nv[1], 1);
    v[2] = ct_values(23, nv[2], 2);
    for (i = 0; i < 3; i++) {
        d[i] = TD(p, "lat", i ? "os" : NULL, i ? (i == 1 ? "ios" : "linux")
                                                : NULL,
                  i == 2 ? GW_PERIOD_ALL : GW_PERIOD_YEAR,
                  i == 2 ? 0 : 1388534400, &t[i], v[i], nv[i]);
        data[i].timing = &t[i];
        data[i].set = NULL;
    }
    ck_assert_uint_gt(t[0].nneg, 0);
    ck_assert_uint_gt(t[0].zero, 0);
    ct_store_data(d, data, 3, ct_batch_id("treopen"));
    for (i = 0; i < 3; i++)
        ck_assert_uint_eq(QT(p, "lat", d[i].filter_name, d[i].filter_value,
                             d[i].period, d[i].bucket, &pt, &before[i]), 1);
    meta = M(p);
    ct_reopen();
    for (i = 0; i < 3; i++) {
        ck_assert_uint_eq(QT(p, "lat", d[i].filter_name, d[i].filter_value,
                             d[i].period, d[i].bucket, &pt, &after), 1);
        ck_assert_double_eq(pt.sum, d[i].sum);
        ck_assert_int_eq(pt.count, d[i].count);
        ck_assert_uint_eq(after.npos, before[i].npos);
        ck_assert_uint_eq(after.nneg, before[i].nneg);
        ck_assert_uint_eq(after.zero, before[i].zero);
        ck_assert_double_eq(after.min, before[i].min);
        ck_assert_double_eq(after.max, before[i].max);
        for (j = 0; j < after.npos; j++) {
            ck_assert_int_eq(after.pos[j].index, before[i].pos[j].index);
            ck_assert_uint_eq(after.pos[j].count, before[i].pos[j].count);
        }
        for (j = 0; j < after.nneg; j++) {
            ck_assert_int_eq(after.neg[j].index, before[i].neg[j].index);
            ck_assert_uint_eq(after.neg[j].count, before[i].neg[j].count);
        }
        ck_timing_is(&after, v[i], (size_t) d[i].count, NULL, "reopened");
        gw_timing_free(&after);
        gw_timing_free(&before[i]);
        gw_timing_free(&t[i]);
        free(v[i]);
    }
    {
        char *again = M(p);

        ck_assert_str_eq(again, meta);
        free(again);
    }
    free(meta);
}
END_TEST

/* The members "prefix<from>" .. "prefix<to - 1>" added to *s. */
static void
ct_set_add(gw_set_t *s, const char *prefix, int from, int to)
{
    char m[64];
    int i;

    for (i = from; i < to; i++) {
        int n = snprintf(m, sizeof(m), "%s%d", prefix, i);

        ck_assert_int_eq(gw_set_add(s, gw_set_hash(m, (size_t) n)), GW_OK);
    }
}

/* A set delta of events events whose members are prefix<from..to-1>. */
static gw_delta_t
SD(const char *project, const char *metric, const char *fname,
   const char *fvalue, gw_period_t period, int64_t bucket, gw_set_t *s,
   int from, int to, int64_t events)
{
    gw_set_init(s);
    ct_set_add(s, "user-", from, to);
    return D(project, metric, fname, fvalue, GW_KIND_SET, period, bucket, 0,
             events, 0);
}

/* The set cell of one bucket: *count set to its events; its distinct
 * members (query's sum); -1 when there is no cell. */
static double
ct_set_count(const char *p, const char *metric, const char *fname,
             const char *fvalue, gw_period_t period, int64_t bucket,
             int64_t *count)
{
    ct_points_t pts = Q(p, metric, fname, fvalue, GW_KIND_SET, period,
                        bucket, bucket);
    double n = -1;

    ck_assert_uint_le(pts.n, 1);
    *count = 0;
    if (pts.n == 1) {
        n = pts.v[0].sum;
        *count = pts.v[0].count;
        ck_assert_double_eq(pts.v[0].ts, 0);
    }
    free(pts.v);
    return n;
}

/* The distinct members within 2 % (exactly when members <= 0: no cell, or
 * none): what every storage promises; the memory and PostgreSQL storages
 * are exact below GW_SET_EXACT_MAX, which their own tests check, Redis'
 * own HyperLogLog is approximate at every size. Events exact. */
#define ck_set_is(p, metric, fname, fvalue, period, bucket, members, events) \
    do {                                                                      \
        int64_t ev_;                                                          \
        double n_ = ct_set_count(p, metric, fname, fvalue, period, bucket,    \
                                 &ev_);                                       \
        double want_ = (members);                                             \
        ck_assert_msg(want_ <= 0 ? n_ == want_                                \
                                 : fabs(n_ - want_) <= 0.02 * want_,          \
                      "%s %s: %.17g distinct members, %d were stored",        \
                      metric, gw_period_name(period), n_, (int) (members));   \
        ck_assert_int_eq(ev_, events);                                        \
    } while (0)

/* Within 2 % of the true count (members), events exact. */
#define ck_set_near(p, metric, period, bucket, members, events)               \
    do {                                                                      \
        int64_t ev_;                                                          \
        double n_ = ct_set_count(p, metric, NULL, NULL, period, bucket,       \
                                 &ev_);                                       \
        ck_assert_msg(fabs(n_ - (members)) <= 0.02 * (members), "%s %s: "     \
                      "%.17g distinct members, %d were stored (more than "    \
                      "2 %% off)", metric, gw_period_name(period), n_,        \
                      (int) (members));                                       \
        ck_assert_int_eq(ev_, events);                                        \
    } while (0)

/* 300 members in 450 events: exactly 300, in every series and period. */
START_TEST(test_set_exact)
{
    const char *p = P("set");
    gw_set_t s[3];
    gw_delta_t d[3];
    gw_delta_data_t data[3];
    int i;

    CT_NEED_KIND(GW_KIND_SET);
    for (i = 0; i < 3; i++) {
        d[i] = SD(p, "users", i == 2 ? "plan" : NULL, i == 2 ? "pro" : NULL,
                  i == 1 ? GW_PERIOD_HOUR : GW_PERIOD_DAY, T0, &s[i], 0,
                  300 - 100 * (i == 2), 450);
        data[i].timing = NULL;
        data[i].set = &s[i];
    }
    ct_store_data(d, data, 3, ct_batch_id("set"));
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 300, 450);
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_HOUR, T0, 300, 450);
    ck_set_is(p, "users", "plan", "pro", GW_PERIOD_DAY, T0, 200, 450);
    ct_reopen();
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 300, 450);
    ck_set_is(p, "users", "plan", "pro", GW_PERIOD_DAY, T0, 200, 450);
    for (i = 0; i < 3; i++)
        gw_set_free(&s[i]);
}
END_TEST

/* Overlapping members from two batches: the exact union; past
 * GW_SET_EXACT_MAX members within 2 %. */
START_TEST(test_set_union)
{
    const char *p = P("set_union");
    gw_set_t s[4];
    gw_delta_t d[4];
    gw_delta_data_t data[4];
    int i;

    CT_NEED_KIND(GW_KIND_SET);
    d[0] = SD(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, &s[0], 0, 600, 600);
    d[1] = SD(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, &s[1], 400, 1000,
              700);
    d[2] = SD(p, "users", NULL, NULL, GW_PERIOD_HOUR, T0, &s[2], 0, 800, 800);
    d[3] = SD(p, "users", NULL, NULL, GW_PERIOD_HOUR, T0, &s[3], 500, 1500,
              1000);
    for (i = 0; i < 4; i++) {
        data[i].timing = NULL;
        data[i].set = &s[i];
        ct_store_data(&d[i], &data[i], 1, ct_batch_id("union"));
    }
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 1000, 1300);
    ck_set_near(p, "users", GW_PERIOD_HOUR, T0, 1500, 1800);
    for (i = 0; i < 4; i++)
        gw_set_free(&s[i]);
}
END_TEST

/* 100,000 members as HyperLogLog registers merged from five deltas (in
 * three batches, two deltas of one cell in a batch): within 2 %. */
START_TEST(test_set_large)
{
    const char *p = P("set_large");
    gw_set_t s[5];
    gw_delta_t d[5];
    gw_delta_data_t data[5];
    int i;

    CT_NEED_KIND(GW_KIND_SET);
    for (i = 0; i < 5; i++) {
        int to = (i + 1) * 20000 + 5000;

        d[i] = SD(p, "visitors", NULL, NULL, GW_PERIOD_DAY, T0, &s[i],
                  i * 20000, to > 100000 ? 100000 : to, 30000);
        ck_assert_ptr_nonnull(s[i].registers);
        data[i].timing = NULL;
        data[i].set = &s[i];
    }
    ct_store_data(&d[0], &data[0], 2, ct_batch_id("large"));
    ct_store_data(&d[2], &data[2], 2, ct_batch_id("large"));
    ct_store_data(&d[4], &data[4], 1, ct_batch_id("large"));
    ck_set_near(p, "visitors", GW_PERIOD_DAY, T0, 100000, 150000);
    ct_reopen();
    ck_set_near(p, "visitors", GW_PERIOD_DAY, T0, 100000, 150000);
    for (i = 0; i < 5; i++)
        gw_set_free(&s[i]);
}
END_TEST

START_TEST(test_set_exactly_once)
{
    const char *p = P("set_once");
    gw_set_t s;
    gw_delta_t d;
    gw_delta_data_t data = {NULL, &s};
    char id[128];

    CT_NEED_KIND(GW_KIND_SET);
    d = SD(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, &s, 0, 50, 80);
    snprintf(id, sizeof(id), "%s:set_once:1", ct_run);
    ct_store_data(&d, &data, 1, id);
    ct_store_data(&d, &data, 1, id);
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 50, 80);
    ct_reopen();
    ct_store_data(&d, &data, 1, id);
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 50, 80);
    /* Another id is another batch: the events add, the members do not. */
    snprintf(id, sizeof(id), "%s:set_once:2", ct_run);
    ct_store_data(&d, &data, 1, id);
    ck_set_is(p, "users", NULL, NULL, GW_PERIOD_DAY, T0, 50, 160);
    gw_set_free(&s);
}
END_TEST

/* Retention removes timing and set cells like any other (1990, as
 * test_expire, but an hour later: a storage may take a cut it already
 * made as done, the core never writing before it again). */
START_TEST(test_kinds_expire)
{
    static const int64_t m0 = 631152000 + 3600, m2 = m0 + 120;
    const char *p = P("kinds_expire");
    gw_delta_t d[6];
    gw_delta_data_t data[6];
    gw_timing_t t[3];
    gw_set_t s[3];
    double *v;
    gw_point_t pt;
    gw_timing_t got;
    size_t n = 0, i;
    int timing = (ct_ops->kinds & GW_KIND_BIT(GW_KIND_TIMING)) != 0;
    int set = (ct_ops->kinds & GW_KIND_BIT(GW_KIND_SET)) != 0;

    if (ct_ops->expire == NULL)
        return; /* optional: the storage keeps everything */
    if (!timing)
        CT_NEED_KIND(GW_KIND_SET);
    v = ct_values(31, 300, 1);
    for (i = 0; i < 3; i++) {
        gw_period_t per = i == 2 ? GW_PERIOD_HOUR : GW_PERIOD_MINUTE;
        int64_t b = i == 1 ? m2 : m0;

        if (timing) {
            data[n].timing = &t[i];
            data[n].set = NULL;
            d[n++] = TD(p, "lat", NULL, NULL, per, b, &t[i], v, 300);
        } else {
            gw_timing_init(&t[i]);
        }
        if (set) {
            data[n].timing = NULL;
            data[n].set = &s[i];
            d[n++] = SD(p, "users", NULL, NULL, per, b, &s[i], 0, 40, 40);
        } else {
            gw_set_init(&s[i]);
        }
    }
    ct_store_data(d, data, n, ct_batch_id("kexp"));
    ct_expire(GW_PERIOD_MINUTE, m2);
    for (i = 0; i < 2; i++) {
        if (timing) {
            ck_assert_uint_eq(QT(p, "lat", NULL, NULL, GW_PERIOD_MINUTE, m0,
                                 &pt, &got), 0);
            ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_MINUTE, m2, v, 300,
                           d[0].sum, "the minute after the cut");
            ck_timing_cell(p, "lat", NULL, NULL, GW_PERIOD_HOUR, m0, v, 300,
                           d[0].sum, "the hour (another period)");
        }
        if (set) {
            ck_set_is(p, "users", NULL, NULL, GW_PERIOD_MINUTE, m0, -1, 0);
            ck_set_is(p, "users", NULL, NULL, GW_PERIOD_MINUTE, m2, 40, 40);
            ck_set_is(p, "users", NULL, NULL, GW_PERIOD_HOUR, m0, 40, 40);
        }
        ct_reopen(); /* gone for good */
    }
    for (i = 0; i < 3; i++) {
        gw_timing_free(&t[i]);
        gw_set_free(&s[i]);
    }
    free(v);
}
END_TEST

/* Metadata reports the kinds "timing" and "set" (with filter values). */
START_TEST(test_kinds_metadata)
{
    const char *p = P("kinds_meta");
    gw_delta_t d[4];
    gw_delta_data_t data[4];
    gw_timing_t t[2];
    gw_set_t s[2];
    double v[3] = {1.5, 2, 40};
    char want[CT_EXPECT] = "";
    size_t n = 0, i;

    if (!(ct_ops->kinds & GW_KIND_BIT(GW_KIND_TIMING)))
        CT_NEED_KIND(GW_KIND_SET);
    for (i = 0; i < 2; i++) {
        if (ct_ops->kinds & GW_KIND_BIT(GW_KIND_TIMING)) {
            data[n].timing = &t[i];
            data[n].set = NULL;
            d[n++] = TD(p, "latency", i ? "route" : NULL, i ? "/api" : NULL,
                        GW_PERIOD_DAY, T0, &t[i], v, 3);
            E(want, "latency", "timing", i ? "route" : NULL,
              i ? "/api" : NULL);
        } else {
            gw_timing_init(&t[i]);
        }
        if (ct_ops->kinds & GW_KIND_BIT(GW_KIND_SET)) {
            data[n].timing = NULL;
            data[n].set = &s[i];
            d[n++] = SD(p, "visitors", i ? "country" : NULL, i ? "fr" : NULL,
                        GW_PERIOD_DAY, T0, &s[i], 0, 3, 3);
            E(want, "visitors", "set", i ? "country" : NULL, i ? "fr" : NULL);
        } else {
            gw_set_init(&s[i]);
        }
    }
    ct_store_data(d, data, n, ct_batch_id("kmeta"));
    ck_assert_meta(p, want);
    ct_reopen();
    ck_assert_meta(p, want);
    for (i = 0; i < 2; i++) {
        gw_timing_free(&t[i]);
        gw_set_free(&s[i]);
    }
}
END_TEST

/* ---- a dead server: GW_AGAIN, quickly, with a message ---- */

static char *ct_unreachable_copy;

static void
ct_unreachable_setup(void)
{
    char *save = NULL, *tok;

    ct_nextra = 0;
    ct_unreachable_copy = strdup(getenv("GW_STORAGE_TEST_UNREACHABLE"));
    for (tok = strtok_r(ct_unreachable_copy, "\n", &save);
         tok != NULL && ct_nextra < CT_MAX_PAIRS;
         tok = strtok_r(NULL, "\n", &save))
        ct_extra[ct_nextra++] = tok;
    ct_open(); /* connecting is lazy: create works with the server down */
}

#define ck_assert_again(call)                                                 \
    do {                                                                      \
        gw_error_t err_ = {""};                                               \
        double t_ = ct_seconds();                                             \
        int rc_ = call;                                                       \
        ck_assert_msg(rc_ == GW_AGAIN, #call " returned %d, not GW_AGAIN",    \
                      rc_);                                                   \
        ck_assert_msg(err_.msg[0] != '\0', #call " gave no message");         \
        ck_assert_msg(ct_seconds() - t_ < 10, #call " took %.1f s",           \
                      ct_seconds() - t_);                                     \
        fprintf(stderr, "unreachable: %s\n", err_.msg);                       \
    } while (0)

START_TEST(test_unreachable)
{
    const char *p = P("down");
    gw_delta_t d = C(p, "orders", GW_PERIOD_DAY, T0, 1);
    gw_batch_t b = {"down:1", &d, 1, NULL};
    gw_query_t q = {p, "orders", NULL, NULL, GW_KIND_COUNTER, GW_PERIOD_DAY,
                    T0, T0};
    ct_points_t pts = {NULL, 0, 0};
    ct_lines_t l = {NULL, 0};
    ct_doc_t doc = {0, NULL, 0};

    ck_assert_again(ct_ops->store(ct_state, &b, &err_));
    ck_assert_again(ct_ops->store(ct_state, &b, &err_));
    ck_assert_again(ct_ops->query(ct_state, &q, ct_point, &pts, &err_));
    ck_assert_again(ct_ops->metadata(ct_state, p, ct_meta, &l, &err_));
    ck_assert_again(ct_ops->doc_put(ct_state, "dashboard", "x", "{}", 2,
                                    &err_));
    ck_assert_again(ct_ops->doc_get(ct_state, "dashboard", "x", ct_doc, &doc,
                                    &err_));
    if (ct_ops->doc_cas != NULL)
        ck_assert_again(ct_ops->doc_cas(ct_state, "dashboard", "x", NULL, 0,
                                        "{}", 2, &err_));
    if (ct_ops->doc_del != NULL)
        ck_assert_again(ct_ops->doc_del(ct_state, "dashboard", "x", NULL, 0,
                                        &err_));
    if (ct_ops->ping != NULL)
        ck_assert_again(ct_ops->ping(ct_state, &err_));
    if (ct_ops->nonce_claim != NULL)
        ck_assert_again(ct_ops->nonce_claim(ct_state, p, "nonce-0001_abc", 14,
                                            ct_wall() + 600, &err_));
    ck_assert_uint_eq(pts.n, 0);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(doc.calls, 0);
}
END_TEST

static void
ct_unreachable_teardown(void)
{
    ct_close();
    free(ct_unreachable_copy);
}

/* ---- memory only: the snapshot file ---- */

static char ct_snap_dir[64];
static char ct_snap_path[128];
static char ct_snap_setting[160];

static void
ct_snap_setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(strcpy(ct_snap_dir, "/tmp/gwsnap-XXXXXX")));
    snprintf(ct_snap_path, sizeof(ct_snap_path), "%s/s.snap", ct_snap_dir);
    snprintf(ct_snap_setting, sizeof(ct_snap_setting), "PATH=%s",
             ct_snap_path);
    ct_extra[0] = ct_snap_setting;
    ct_extra[1] = "SNAPSHOT_INTERVAL=3600";
    ct_nextra = 2;
    ct_state = NULL;
}

static void
ct_snap_teardown(void)
{
    char tmp[160];

    ct_close();
    snprintf(tmp, sizeof(tmp), "%s.tmp", ct_snap_path);
    unlink(tmp);
    unlink(ct_snap_path);
    rmdir(ct_snap_dir);
}

/* Fills an instance with a little of everything. */
static void
ct_snap_fill(void)
{
    gw_delta_t d[] = {
        C("snap", "orders", GW_PERIOD_DAY, T0, 3),
        C("snap", "orders", GW_PERIOD_DAY, T0 + 86400, 4),
        D("snap", "orders", "status", "paid", GW_KIND_COUNTER, GW_PERIOD_DAY,
          T0, 2, 2, 0),
        D("snap", "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, 9.5, 4, 0),
        D("snap", "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, 7, 1,
          T0 + 5.5),
    };

    ct_store_id(d, 5, "snap:1");
    ct_put("embedded", "doc-1", "{\"marker\": \"0123456789abcdef\"}", 30);
}

static void
ct_snap_check(void)
{
    ct_points_t pts;
    ct_doc_t doc;

    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_DAY, T0), 3);
    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_DAY,
                          T0 + 86400), 4);
    ck_assert_double_eq(S("snap", "orders", "status", "paid", GW_PERIOD_DAY,
                          T0), 2);
    pts = Q("snap", "lat", NULL, NULL, GW_KIND_AVG, GW_PERIOD_ALL, 0, 0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 9.5);
    ck_assert_int_eq(pts.v[0].count, 4);
    free(pts.v);
    pts = Q("snap", "temp", NULL, NULL, GW_KIND_GAUGE, GW_PERIOD_DAY, T0, T0);
    ck_assert_uint_eq(pts.n, 1);
    ck_assert_double_eq(pts.v[0].sum, 7);
    ck_assert_double_eq(pts.v[0].ts, T0 + 5.5);
    free(pts.v);
    doc = G("embedded", "doc-1");
    ck_assert_int_eq(doc.calls, 1);
    ck_assert_str_eq(doc.data, "{\"marker\": \"0123456789abcdef\"}");
    free(doc.data);
    {
        char want[CT_EXPECT] = "";

        E(want, "orders", "counter", NULL, NULL);
        E(want, "orders", "counter", "status", "paid");
        E(want, "lat", "avg", NULL, NULL);
        E(want, "temp", "gauge", NULL, NULL);
        ck_assert_meta("snap", want);
    }
}

START_TEST(test_snap_reload)
{
    struct stat st;

    ct_open();
    ck_assert_int_eq(stat(ct_snap_path, &st), -1); /* no snapshot yet */
    ct_snap_fill();
    ct_reopen();
    ct_snap_check();
    /* the batch id survived: a retry after the restart is skipped */
    ct_snap_fill();
    ct_snap_check();
    /* a second generation reads the same */
    ct_reopen();
    ct_snap_check();
}
END_TEST

static void ct_snap_settle(void);

START_TEST(test_snap_interval)
{
    struct stat st;
    void *first;

    ct_extra[1] = "SNAPSHOT_INTERVAL=0";
    ct_open();
    ct_snap_fill();
    /* Begun by store() itself, without a destroy, and written by the
     * snapshot's own thread: on disk shortly after; the document saved
     * while it was written is in the next. */
    ct_snap_settle();
    ck_assert_int_eq(stat(ct_snap_path, &st), 0);
    first = ct_state;
    ct_open();
    ct_snap_check();
    ct_close();
    ct_state = first;
}
END_TEST

/* Reads the snapshot file into memory; *len set. */
static unsigned char *
ct_slurp(size_t *len)
{
    FILE *f = fopen(ct_snap_path, "rb");
    unsigned char *p = malloc(1 << 20);

    ck_assert_ptr_nonnull(f);
    *len = fread(p, 1, 1 << 20, f);
    fclose(f);
    return p;
}

static void
ct_spit(const unsigned char *p, size_t len)
{
    FILE *f = fopen(ct_snap_path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* Creates an instance that must fail; returns its message. */
static const char *
ct_refused(void)
{
    static gw_error_t err;
    void *state = NULL;

    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(ct_ops->create(&ct_ctx, &state, &err), GW_ERR);
    fprintf(stderr, "refused: %s\n", err.msg);
    return err.msg;
}

static void
ct_make_snapshot(void)
{
    ct_open();
    ct_snap_fill();
    ct_close();
}

START_TEST(test_snap_bad_magic)
{
    char want[256];
    unsigned char *p;
    size_t len;

    ct_make_snapshot();
    p = ct_slurp(&len);
    p[0] = 'X';
    ct_spit(p, len);
    snprintf(want, sizeof(want), "%s: not a GottWall memory snapshot (bad "
             "magic at byte 0); move it away to start empty", ct_snap_path);
    ck_assert_str_eq(ct_refused(), want);
    free(p);
}
END_TEST

START_TEST(test_snap_bad_version)
{
    char want[256];
    unsigned char *p;
    size_t len;

    ct_make_snapshot();
    p = ct_slurp(&len);
    p[8] = 4;
    ct_spit(p, len);
    snprintf(want, sizeof(want), "%s: corrupt snapshot at byte 8: "
             "unsupported version 4 (this build reads 1 to 3); move it away "
             "to start empty", ct_snap_path);
    ck_assert_str_eq(ct_refused(), want);
    free(p);
}
END_TEST

START_TEST(test_snap_truncated)
{
    char want[256];
    unsigned char *p;
    size_t len;

    ct_make_snapshot();
    p = ct_slurp(&len);
    ct_spit(p, len - 2);
    snprintf(want, sizeof(want), "%s: corrupt snapshot at byte %zu: "
             "truncated: the checksum is missing; move it away to start "
             "empty", ct_snap_path, len - 2);
    ck_assert_str_eq(ct_refused(), want);

    /* Cut inside the first record (a series of 3 + 2 strings and 1 cell). */
    ct_spit(p, 40);
    snprintf(want, sizeof(want), "%s: corrupt snapshot at byte 40: "
             "truncated: the record at byte 12 needs ", ct_snap_path);
    ck_assert_msg(strncmp(ct_refused(), want, strlen(want)) == 0,
                  "expected a message starting \"%s\"", want);

    ct_spit(p, 0);
    snprintf(want, sizeof(want), "%s: not a GottWall memory snapshot (bad "
             "magic at byte 0); move it away to start empty", ct_snap_path);
    ck_assert_str_eq(ct_refused(), want);
    free(p);
}
END_TEST

START_TEST(test_snap_flipped_byte)
{
    char want[256];
    const char *msg;
    unsigned char *p, *at;
    size_t len;

    ct_make_snapshot();
    p = ct_slurp(&len);
    at = memmem(p, len, "0123456789abcdef", 16);
    ck_assert_ptr_nonnull(at);
    at[5] ^= 0x20;
    ct_spit(p, len);
    msg = ct_refused();
    snprintf(want, sizeof(want), "%s: corrupt snapshot at byte %zu: checksum "
             "mismatch (stored ", ct_snap_path, len - 4);
    ck_assert_msg(strncmp(msg, want, strlen(want)) == 0,
                  "expected a message starting \"%s\"", want);
    ck_assert_ptr_nonnull(strstr(msg, "): the file is damaged; move it away "
                                      "to start empty"));
    free(p);
}
END_TEST

START_TEST(test_snap_garbage)
{
    unsigned char junk[4096];
    size_t i;
    unsigned seed = 12345;

    /* Random bytes after a good magic and version: refused, never a crash. */
    for (i = 0; i < 200; i++) {
        size_t n = 12 + (size_t) (rand_r(&seed) % (sizeof(junk) - 12)), j;

        memcpy(junk, "GWMEMSNP\x01\0\0\0", 12);
        for (j = 12; j < n; j++)
            junk[j] = (unsigned char) rand_r(&seed);
        ct_spit(junk, n);
        {
            gw_error_t err;
            void *state = NULL;

            ck_assert_int_eq(ct_ops->create(&ct_ctx, &state, &err), GW_ERR);
            ck_assert_ptr_nonnull(strstr(err.msg, "move it away to start "
                                                  "empty"));
        }
    }
}
END_TEST

/* Claimed nonces are kept in the snapshot; expired ones are dropped when
 * it is written. */
START_TEST(test_snap_nonces)
{
    unsigned char *p;
    size_t len;
    double now = ct_wall();

    ct_open();
    ck_assert_int_eq(ct_claim("snap", "nonce-kept_0001", now + 600), GW_OK);
    ck_assert_int_eq(ct_claim("snap", "nonce-gone_0001", now + 1), GW_OK);
    while (ct_wall() < now + 1.5)
        usleep(50000);
    ct_reopen();
    p = ct_slurp(&len);
    ck_assert_ptr_nonnull(memmem(p, len, "nonce-kept_0001", 15));
    ck_assert_ptr_null(memmem(p, len, "nonce-gone_0001", 15));
    free(p);
    ck_assert_int_eq(ct_claim("snap", "nonce-kept_0001", now + 600), GW_ERR);
    ck_assert_int_eq(ct_claim("snap", "nonce-gone_0001", now + 600), GW_OK);
}
END_TEST

START_TEST(test_snap_missing_ok)
{
    ct_open(); /* logs "no snapshot at PATH, starting empty" */
    ck_assert_meta("snap", "");
}
END_TEST

/* Waits (up to 30 s) until the snapshot file is there as a file other than
 * inode old (0: any); returns its inode. */
static ino_t
ct_snap_wait(ino_t old)
{
    struct stat st;
    double until = ct_seconds() + 30;

    while ((stat(ct_snap_path, &st) != 0 || st.st_ino == old) &&
           ct_seconds() < until)
        usleep(2000);
    ck_assert_msg(stat(ct_snap_path, &st) == 0 && st.st_ino != old,
                  "no new snapshot at %s after 30 s", ct_snap_path);
    return st.st_ino;
}

/*
 * Waits until everything stored so far is on disk without a destroy: a
 * snapshot begins at a store() once the one being written is done (with
 * SNAPSHOT_INTERVAL = 0), so after the first is on disk this saves a
 * document until the snapshot that this began is on disk too.
 */
static void
ct_snap_settle(void)
{
    ino_t ino = ct_snap_wait(0);
    struct stat st;
    int i;

    for (i = 0; i < 3000; i++) {
        ct_put("embedded", "settle", "{}", 2);
        if (stat(ct_snap_path, &st) == 0 && st.st_ino != ino)
            return;
        usleep(10000);
    }
    ct_snap_wait(ino);
}

/* CRC-32 (IEEE), as the snapshot's. */
static uint32_t
ct_crc32(const unsigned char *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    int k;

    while (len--) {
        c ^= *p++;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* A whole snapshot image: magic, and the checksum of all before it. */
static void
ck_assert_snapshot_image(const unsigned char *p, size_t len)
{
    uint32_t want;

    ck_assert_uint_ge(len, 12 + 5 + 4);
    ck_assert_int_eq(memcmp(p, "GWMEMSNP\x03\0\0\0", 12), 0);
    want = (uint32_t) p[len - 4] | (uint32_t) p[len - 3] << 8 |
           (uint32_t) p[len - 2] << 16 | (uint32_t) p[len - 1] << 24;
    ck_assert_uint_eq(ct_crc32(p, len - 4), want);
}

/* Reads the fifo at path to its end (it blocks until a writer opens it). */
static unsigned char *
ct_fifo_drain(const char *path, size_t *len)
{
    unsigned char *p = malloc(1 << 20);
    int fd = open(path, O_RDONLY);
    ssize_t r;

    ck_assert_int_ge(fd, 0);
    *len = 0;
    while ((r = read(fd, p + *len, (1 << 20) - *len)) > 0)
        *len += (size_t) r;
    close(fd);
    return p;
}

/*
 * The snapshot is written off the storage thread: with PATH.tmp a fifo
 * nobody reads, the writer blocks opening it, and store() (the storage
 * thread) still comes back, again and again, without starting a second
 * writer. What the writer writes is the store as it was when store() began
 * the snapshot (a cell stored after is not in it), whole and checksummed.
 * Its failure (fsync of a fifo) leaves the store to be written again, and
 * destroy waits for nothing and writes the rest.
 */
START_TEST(test_snap_off_thread)
{
    char tmp[160];
    unsigned char *img;
    size_t len, i;
    gw_delta_t later = C("snap", "orders", GW_PERIOD_DAY, T0 + 2 * 86400, 5);
    struct stat st;

    ct_extra[1] = "SNAPSHOT_INTERVAL=0";
    snprintf(tmp, sizeof(tmp), "%s.tmp", ct_snap_path);
    ck_assert_int_eq(mkfifo(tmp, 0600), 0);
    ct_open();
    /* The fill's store() begins a snapshot; its writer waits on the fifo,
     * the document saved after it and the later cell are not in it. */
    ct_snap_fill();
    for (i = 0; i < 20; i++)
        ct_put("embedded", "doc-2", "{}", 2);
    ct_store(&later, 1);
    ck_assert_int_eq(stat(ct_snap_path, &st), -1);
    img = ct_fifo_drain(tmp, &len);
    ck_assert_snapshot_image(img, len);
    /* The writer's fsync fails on a fifo: it removes PATH.tmp and the next
     * store() begins another snapshot, of everything. */
    while (stat(tmp, &st) == 0)
        usleep(1000);
    for (i = 0; i < 3000 && stat(ct_snap_path, &st) != 0; i++) {
        ct_put("embedded", "doc-2", "{}", 2);
        usleep(10000);
    }
    ct_snap_wait(0);
    ct_reopen();
    ct_snap_check();
    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_DAY,
                          T0 + 2 * 86400), 5);
    ct_close();
    /* The image from the fifo: the fill's cells, not what came after. */
    ct_spit(img, len);
    free(img);
    ct_open();
    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_DAY, T0), 3);
    ck_assert_double_eq(S("snap", "orders", "status", "paid", GW_PERIOD_DAY,
                          T0), 2);
    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_DAY,
                          T0 + 2 * 86400), 0);
    ck_assert_int_eq(G("embedded", "doc-1").calls, 0);
    ck_assert_int_eq(G("embedded", "doc-2").calls, 0);
}
END_TEST

/*
 * A crash (SIGKILL) while the writer thread is in the middle of its write
 * leaves the previous snapshot whole: the child writes one, then begins a
 * second of many more cells whose writer is caught half way (PATH.tmp is a
 * fifo the parent reads 1000 bytes of) and is killed there.
 */
START_TEST(test_snap_crash_mid_write)
{
    char tmp[160], part[1000];
    int fd, status;
    size_t got = 0;
    ssize_t r;
    pid_t pid;

    ct_extra[1] = "SNAPSHOT_INTERVAL=0";
    snprintf(tmp, sizeof(tmp), "%s.tmp", ct_snap_path);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static gw_delta_t d[20000];
        size_t i;

        ct_open();
        ct_snap_fill();
        ct_snap_settle();
        usleep(300000); /* its writer is done: the next store begins one */
        if (mkfifo(tmp, 0600) != 0)
            _exit(3);
        for (i = 0; i < 20000; i++)
            d[i] = C("snap", "orders", GW_PERIOD_MINUTE,
                     T0 + 60 * (int64_t) i, 1);
        ct_store(d, 20000); /* 640 KB to write: more than a pipe holds */
        pause();
        _exit(4);
    }
    /* Once PATH.tmp is the fifo (before, it is the first snapshot's file),
     * the open waits for the child's writer; the pipe fills and its write
     * blocks half way. */
    for (;;) {
        struct stat st;

        if (lstat(tmp, &st) == 0 && S_ISFIFO(st.st_mode))
            break;
        ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);
        usleep(2000);
    }
    fd = open(tmp, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    while (got < sizeof(part) &&
           (r = read(fd, part + got, sizeof(part) - got)) > 0)
        got += (size_t) r;
    ck_assert_uint_eq(got, sizeof(part));
    ck_assert_int_eq(memcmp(part, "GWMEMSNP", 8), 0);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fd);
    unlink(tmp);
    /* The first snapshot, whole: the fill, none of the 20,000 minutes. */
    ct_open();
    ct_snap_check();
    ck_assert_double_eq(S("snap", "orders", NULL, NULL, GW_PERIOD_MINUTE,
                          T0), 0);
}
END_TEST

/*
 * Expiry moves the start of a series' cells instead of copying the rest;
 * cells written after it (growing the array past its dead front, which is
 * then compacted), queries and the snapshot see exactly the cells kept.
 */
START_TEST(test_snap_expire_then_grow)
{
    static gw_delta_t d[3000];
    static const int64_t m0 = 631152000; /* 1990, as in test_expire */
    ct_points_t pts;
    size_t i, k;
    int round;

    if (ct_ops->expire == NULL)
        return;
    ct_open();
    for (i = 0; i < 1000; i++)
        d[i] = C("snap", "grow", GW_PERIOD_MINUTE, m0 + 60 * (int64_t) i,
                 (double) i);
    ct_store(d, 1000);
    for (round = 0; round < 2; round++) {
        /* round 0: 600 of 1000 go (600 dead in front, compacted when the
         * array fills, then it grows); round 1: all but the last 10 (it
         * shrinks). */
        int64_t cut = round == 0 ? m0 + 60 * 600 : m0 + 60 * 2990;

        ct_expire(GW_PERIOD_MINUTE, cut);
        if (round == 0) {
            for (i = 0; i < 2000; i++)
                d[i] = C("snap", "grow", GW_PERIOD_MINUTE,
                         m0 + 60 * (int64_t) (1000 + i), (double) (1000 + i));
            ct_store(d, 2000);
        }
        for (k = 0; k < 2; k++) {
            size_t first = round == 0 ? 600 : 2990;

            pts = Q("snap", "grow", NULL, NULL, GW_KIND_COUNTER,
                    GW_PERIOD_MINUTE, m0 - 86400, m0 + 86400 * 30);
            ck_assert_uint_eq(pts.n, 3000 - first);
            for (i = 0; i < pts.n; i++) {
                ck_assert_int_eq(pts.v[i].bucket,
                                 m0 + 60 * (int64_t) (first + i));
                ck_assert_double_eq(pts.v[i].sum, (double) (first + i));
            }
            free(pts.v);
            ct_reopen(); /* k == 0: the same through the snapshot */
        }
    }
}
END_TEST

/* A version 1 snapshot (written before nonces were kept) still loads. */
START_TEST(test_snap_version1_loads)
{
    unsigned char *p;
    size_t len;
    uint32_t crc;

    ct_make_snapshot();
    p = ct_slurp(&len);
    ck_assert_int_eq(p[8], 3);
    p[8] = 1;
    crc = ct_crc32(p, len - 4);
    p[len - 4] = (unsigned char) crc;
    p[len - 3] = (unsigned char) (crc >> 8);
    p[len - 2] = (unsigned char) (crc >> 16);
    p[len - 1] = (unsigned char) (crc >> 24);
    ct_spit(p, len);
    free(p);
    ct_open();
    ct_snap_check();
}
END_TEST


/* A version 2 snapshot of ct_snap_fill, written by the memory storage of
 * before the timing and set kinds (snapshot.c of commit 353fca0, built
 * on its own and driven with the deltas and the document of ct_snap_fill,
 * then destroyed): it loads unchanged. */
static const unsigned char ct_snap_v2[] = {
    0x47, 0x57, 0x4d, 0x45, 0x4d, 0x53, 0x4e, 0x50, 0x02, 0x00, 0x00, 0x00,
    0x01, 0x59, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x73, 0x6e, 0x61,
    0x70, 0x06, 0x00, 0x00, 0x00, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x01,
    0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0xae, 0xfe, 0x52, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x40, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xf0, 0xff, 0x80, 0xff, 0xff, 0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x10, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0xff, 0x01, 0x4b,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x73, 0x6e, 0x61, 0x70, 0x06,
    0x00, 0x00, 0x00, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x01, 0x01, 0x06,
    0x00, 0x00, 0x00, 0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x04, 0x00, 0x00,
    0x00, 0x70, 0x61, 0x69, 0x64, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0xae,
    0xfe, 0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x40, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xf0, 0xff, 0x01, 0x36, 0x00, 0x00, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x73, 0x6e, 0x61, 0x70, 0x03, 0x00, 0x00, 0x00, 0x6c,
    0x61, 0x74, 0x02, 0x00, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23,
    0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xf0, 0xff, 0x01, 0x37, 0x00, 0x00, 0x00, 0x04, 0x00,
    0x00, 0x00, 0x73, 0x6e, 0x61, 0x70, 0x04, 0x00, 0x00, 0x00, 0x74, 0x65,
    0x6d, 0x70, 0x03, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0xae, 0xfe,
    0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c,
    0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60,
    0x81, 0xab, 0xbf, 0xd4, 0x41, 0x02, 0x37, 0x00, 0x00, 0x00, 0x08, 0x00,
    0x00, 0x00, 0x65, 0x6d, 0x62, 0x65, 0x64, 0x64, 0x65, 0x64, 0x05, 0x00,
    0x00, 0x00, 0x64, 0x6f, 0x63, 0x2d, 0x31, 0x1e, 0x00, 0x00, 0x00, 0x7b,
    0x22, 0x6d, 0x61, 0x72, 0x6b, 0x65, 0x72, 0x22, 0x3a, 0x20, 0x22, 0x30,
    0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63,
    0x64, 0x65, 0x66, 0x22, 0x7d, 0x03, 0x0a, 0x00, 0x00, 0x00, 0x06, 0x00,
    0x00, 0x00, 0x73, 0x6e, 0x61, 0x70, 0x3a, 0x31, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x9a, 0x89, 0x88, 0x02,
};

START_TEST(test_snap_version2_loads)
{
    ck_assert_int_eq(ct_snap_v2[8], 2);
    ct_spit(ct_snap_v2, sizeof(ct_snap_v2));
    ct_open();
    ct_snap_check();
    /* the batch id came with it */
    ct_snap_fill();
    ct_snap_check();
    /* written again as version 3, it reads the same */
    ct_reopen();
    ct_snap_check();
}
END_TEST

/* A timing cell (negative values and zeros too), an exact set and a
 * HyperLogLog one, in the snapshot. */
static void
ct_snap_kinds_fill(gw_timing_t *t, gw_set_t *s, double **v)
{
    gw_delta_t d[3];
    gw_delta_data_t data[3] = {{t, NULL}, {NULL, &s[0]}, {NULL, &s[1]}};

    *v = ct_values(41, 1000, 3);
    d[0] = TD("snapk", "lat", "os", "ios", GW_PERIOD_DAY, T0, t, *v, 1000);
    d[1] = SD("snapk", "users", NULL, NULL, GW_PERIOD_DAY, T0, &s[0], 0, 300,
              300);
    d[2] = SD("snapk", "users", NULL, NULL, GW_PERIOD_HOUR, T0, &s[1], 0, 5000,
              6000);
    ct_open();
    ct_store_data(d, data, 3, "snapk:1");
    ct_close();
}

START_TEST(test_snap_kinds)
{
    gw_timing_t t;
    gw_set_t s[2];
    double *v;
    int64_t ev;
    double n1, sum = 0;
    size_t i;

    ct_snap_kinds_fill(&t, s, &v);
    for (i = 0; i < 1000; i++)
        sum += v[i];
    ct_open();
    ck_timing_cell("snapk", "lat", "os", "ios", GW_PERIOD_DAY, T0, v, 1000,
                   sum, "from the snapshot");
    ck_set_is("snapk", "users", NULL, NULL, GW_PERIOD_DAY, T0, 300, 300);
    n1 = ct_set_count("snapk", "users", NULL, NULL, GW_PERIOD_HOUR, T0, &ev);
    ck_assert_double_eq(n1, gw_set_count(&s[1]));
    ck_assert_int_eq(ev, 6000);
    ct_reopen(); /* a second generation */
    ck_set_is("snapk", "users", NULL, NULL, GW_PERIOD_DAY, T0, 300, 300);
    ck_set_is("snapk", "users", NULL, NULL, GW_PERIOD_HOUR, T0, n1, 6000);
    gw_timing_free(&t);
    gw_set_free(&s[0]);
    gw_set_free(&s[1]);
    free(v);
}
END_TEST

/* Replaces the checksum of a snapshot image after an edit. */
static void
ct_snap_recrc(unsigned char *p, size_t len)
{
    uint32_t crc = ct_crc32(p, len - 4);
    int i;

    for (i = 0; i < 4; i++)
        p[len - 4 + i] = (unsigned char) (crc >> (8 * i));
}

/* A damaged sketch (checksum right: a bug, not the disk) is refused with
 * the byte where it starts. */
START_TEST(test_snap_bad_sketch)
{
    gw_timing_t t;
    gw_set_t s[2];
    double *v;
    unsigned char *p, *enc, *at;
    size_t len, elen;
    char want[256];
    int k;

    for (k = 0; k < 2; k++) {
        ct_snap_kinds_fill(&t, s, &v);
        p = ct_slurp(&len);
        enc = malloc(k == 0 ? gw_timing_encoded_max(&t)
                            : gw_set_encoded_max(&s[0]));
        elen = k == 0 ? gw_timing_encode(&t, enc) : gw_set_encode(&s[0], enc);
        at = memmem(p, len, enc, elen);
        ck_assert_ptr_nonnull(at);
        if (k == 0)
            at[elen - 1] = 0; /* the last bin's count: 0 */
        else
            at[0] = 'Z'; /* no such set encoding */
        ct_snap_recrc(p, len);
        ct_spit(p, len);
        snprintf(want, sizeof(want), "%s: corrupt snapshot at byte %zu: bad "
                 "%s of %zu bytes (cell 0 of the series record at byte ",
                 ct_snap_path, (size_t) (at - p),
                 k == 0 ? "timing sketch" : "set members", elen);
        {
            const char *msg = ct_refused();

            ck_assert_msg(strncmp(msg, want, strlen(want)) == 0,
                          "expected a message starting \"%s\", got \"%s\"",
                          want, msg);
            ck_assert_ptr_nonnull(strstr(msg, "); move it away to start "
                                              "empty"));
        }
        unlink(ct_snap_path);
        gw_timing_free(&t);
        gw_set_free(&s[0]);
        gw_set_free(&s[1]);
        free(enc);
        free(p);
        free(v);
    }
}
END_TEST

/* ---- the memory storage's store(): all or nothing ---- */

static int
ct_store_err(const gw_delta_t *d, const gw_delta_data_t *data, size_t n,
             const char *id, char *msg, size_t size)
{
    gw_batch_t b = {id, d, n, data};
    gw_error_t err = {""};
    int rc = ct_ops->store(ct_state, &b, &err);

    snprintf(msg, size, "%s", err.msg);
    return rc;
}

/* A batch refused part way (a timing delta for a counter metric, a set
 * delta without its members) leaves nothing of it: not the deltas before
 * the bad one, not the cells they made, not its id. */
START_TEST(test_mem_all_or_nothing)
{
    const char *p = P("allornothing");
    double v[2] = {3, 4};
    gw_timing_t t, t2;
    gw_delta_t d[4];
    gw_delta_data_t data[4] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL},
                               {NULL, NULL}};
    char id[128], msg[512], want[512];

    d[0] = C(p, "orders", GW_PERIOD_DAY, T0, 5);
    ct_store(d, 1);
    d[0] = C(p, "orders", GW_PERIOD_DAY, T0, 3);
    d[1] = C(p, "orders", GW_PERIOD_MINUTE, T0, 1);
    d[2] = TD(p, "latency", NULL, NULL, GW_PERIOD_MINUTE, T0 + 60, &t, v, 2);
    d[3] = TD(p, "orders", NULL, NULL, GW_PERIOD_HOUR, T0, &t2, v, 2);
    data[2].timing = &t;
    data[3].timing = &t2;
    snprintf(id, sizeof(id), "%s:aon:1", ct_run);
    ck_assert_int_eq(ct_store_err(d, data, 4, id, msg, sizeof(msg)), GW_ERR);
    snprintf(want, sizeof(want), "memory storage: delta 3 is timing but "
             "metric \"orders\" of project \"%s\" is counter (a metric keeps "
             "its first kind); nothing of the batch was applied", p);
    ck_assert_str_eq(msg, want);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 5);
    {
        ct_points_t pts = Q(p, "orders", NULL, NULL, GW_KIND_COUNTER,
                            GW_PERIOD_MINUTE, 0, 2000000000);
        gw_point_t pt;
        gw_timing_t got;

        ck_assert_uint_eq(pts.n, 0);
        free(pts.v);
        ck_assert_uint_eq(QT(p, "latency", NULL, NULL, GW_PERIOD_MINUTE,
                             T0 + 60, &pt, &got), 0);
    }
    /* A set delta without its members. */
    d[3] = D(p, "users", NULL, NULL, GW_KIND_SET, GW_PERIOD_DAY, T0, 0, 1, 0);
    ck_assert_int_eq(ct_store_err(d, data, 4, id, msg, sizeof(msg)), GW_ERR);
    ck_assert_str_eq(msg, "memory storage: delta 3 is set without its "
                          "batch->data[3].set; nothing of the batch was "
                          "applied");
    /* The id was not remembered: the good part under it is applied. */
    ct_store_data(d, data, 3, id);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_DAY, T0), 8);
    ck_assert_double_eq(S(p, "orders", NULL, NULL, GW_PERIOD_MINUTE, T0), 1);
    ck_timing_cell(p, "latency", NULL, NULL, GW_PERIOD_MINUTE, T0 + 60, v, 2,
                   7, "after the refused batches");
    gw_timing_free(&t);
    gw_timing_free(&t2);
}
END_TEST

/* ---- --bench: the time of one flush ---- */

#define CT_BENCH_FILTERS 10 /* per metric: the total and 9 filter values */

/* Sums the points read back (ct_point asserts: not usable outside tests). */
static void
ct_bench_point(void *arg, const gw_point_t *pt)
{
    double *sum = arg;

    sum[0] += pt->sum;
    sum[1] += 1;
}

/*
 * Stores SERIES distinct series x PERIODS periods (minute, hour, ... in
 * SPEC order) as one batch, the way the core expands a flush: series-major,
 * each metric's total then its filter values, a counter of 1 per cell.
 * Series i is metric m{i/10}: the total when i%10 == 0, else filter
 * "f" = "v{i%10}". Prints the time of the store, of the same batch again
 * (its id already applied), of the same deltas with a new id (every cell
 * now there: updates) and checks one cell of each period.
 */
static int
ct_bench(const char *spec)
{
    size_t nseries, nper = GW_PERIOD_COUNT, n, i, j;
    unsigned long long v;
    char *end, id[96], (*metrics)[16] = NULL, (*values)[8] = NULL;
    const char *p = P("bench");
    gw_delta_t *d = NULL;
    gw_error_t err = {""};
    gw_batch_t b;
    int64_t now = (int64_t) time(NULL);
    double t0, t1, t2, t3;
    int rc = 1;

    errno = 0;
    v = strtoull(spec, &end, 10);
    if (errno != 0 || end == spec || v == 0 || v > 100000000ULL ||
        (*end != '\0' && *end != ':')) {
        fprintf(stderr, "gottwall-storage-test: --bench wants SERIES or "
                "SERIES:PERIODS (1..%d), not \"%s\"\n", GW_PERIOD_COUNT, spec);
        return 2;
    }
    nseries = (size_t) v;
    if (*end == ':') {
        nper = (size_t) strtoul(end + 1, &end, 10);
        if (*end != '\0' || nper < 1 || nper > GW_PERIOD_COUNT) {
            fprintf(stderr, "gottwall-storage-test: --bench: PERIODS must "
                    "be 1..%d\n", GW_PERIOD_COUNT);
            return 2;
        }
    }
    n = nseries * nper;
    d = calloc(n, sizeof(*d));
    metrics = calloc(nseries / CT_BENCH_FILTERS + 1, sizeof(*metrics));
    values = calloc(CT_BENCH_FILTERS, sizeof(*values));
    if (d == NULL || metrics == NULL || values == NULL) {
        fprintf(stderr, "gottwall-storage-test: out of memory\n");
        goto out;
    }
    for (i = 0; i < CT_BENCH_FILTERS; i++)
        snprintf(values[i], sizeof(values[i]), "v%zu", i);
    for (i = 0; i < nseries; i++) {
        size_t m = i / CT_BENCH_FILTERS, f = i % CT_BENCH_FILTERS;

        if (f == 0)
            snprintf(metrics[m], sizeof(metrics[m]), "m%zu", m);
        for (j = 0; j < nper; j++)
            d[i * nper + j] = D(p, metrics[m], f ? "f" : NULL,
                                f ? values[f] : NULL, GW_KIND_COUNTER,
                                (gw_period_t) j,
                                gw__bucket_start((gw_period_t) j, now), 1, 1,
                                0);
    }
    if (ct_ops->create(&ct_ctx, &ct_state, &err) != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: create: %s\n", err.msg);
        goto out;
    }
    /* Connect (and create a schema) before the clock starts. */
    if (ct_ops->ping != NULL && ct_ops->ping(ct_state, &err) != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: ping: %s\n", err.msg);
        goto out;
    }
    snprintf(id, sizeof(id), "%s:bench", ct_run);
    b.id = id;
    b.deltas = d;
    b.ndeltas = n;
    b.data = NULL;
    t0 = ct_seconds();
    if (ct_ops->store(ct_state, &b, &err) != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: store: %s\n", err.msg);
        goto out;
    }
    t1 = ct_seconds();
    if (ct_ops->store(ct_state, &b, &err) != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: store again: %s\n", err.msg);
        goto out;
    }
    t2 = ct_seconds();
    /* A new id: the same cells again, now all there (the steady state of
     * series that were seen before). */
    snprintf(id, sizeof(id), "%s:bench2", ct_run);
    if (ct_ops->store(ct_state, &b, &err) != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: store (new id): %s\n",
                err.msg);
        goto out;
    }
    t3 = ct_seconds();
    for (j = 0; j < nper; j++) {
        double got[2] = {0, 0};
        gw_query_t q = {p, metrics[0], NULL, NULL, GW_KIND_COUNTER,
                        (gw_period_t) j, d[j].bucket, d[j].bucket};

        if (nseries > 1) {
            q.filter_name = "f";
            q.filter_value = values[1];
        }
        if (ct_ops->query(ct_state, &q, ct_bench_point, got, &err) != GW_OK ||
            got[0] != 2 || got[1] != 1) {
            fprintf(stderr, "gottwall-storage-test: reading back period %s: "
                    "%g points, sum %g %s\n", gw_period_name((gw_period_t) j),
                    got[1], got[0], err.msg);
            goto out;
        }
    }
    printf("%s: one store of %zu series x %zu period%s = %zu deltas: %.3f s;"
           " again (id already applied): %.3f s; again with a new id (every "
           "cell there): %.3f s\n", ct_plugin->name, nseries, nper,
           nper == 1 ? "" : "s", n, t1 - t0, t2 - t1, t3 - t2);
    rc = 0;
out:
    if (ct_state != NULL)
        ct_ops->destroy(ct_state);
    ct_state = NULL;
    free(d);
    free(metrics);
    free(values);
    return rc;
}

/* ---- main ---- */

static Suite *
ct_suite(void)
{
    Suite *s = suite_create(ct_plugin->name);
    TCase *tc = tcase_create("conformance");
    TCase *big = tcase_create("large");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_counter_sums);
    tcase_add_test(tc, test_saturation);
    tcase_add_test(tc, test_range_inclusive);
    tcase_add_test(tc, test_every_period);
    tcase_add_test(tc, test_avg);
    tcase_add_test(tc, test_gauge);
    tcase_add_test(tc, test_filters);
    tcase_add_test(tc, test_metadata);
    tcase_add_test(tc, test_documents);
    tcase_add_test(tc, test_document_hostile_ids);
    tcase_add_test(tc, test_document_cas);
    tcase_add_test(tc, test_document_list);
    tcase_add_test(tc, test_exactly_once);
    tcase_add_test(tc, test_unicode_names);
    tcase_add_test(tc, test_hostile_names);
    tcase_add_test(tc, test_no_collisions);
    tcase_add_test(tc, test_reopen);
    tcase_add_test(tc, test_ping);
    tcase_add_test(tc, test_nonce_claim);
    tcase_add_test(tc, test_expire);
    tcase_add_test(tc, test_timing_store_query);
    tcase_add_test(tc, test_timing_merge);
    tcase_add_test(tc, test_timing_exactly_once);
    tcase_add_test(tc, test_timing_bounded);
    tcase_add_test(tc, test_timing_reopen);
    tcase_add_test(tc, test_set_exact);
    tcase_add_test(tc, test_set_union);
    tcase_add_test(tc, test_set_large);
    tcase_add_test(tc, test_set_exactly_once);
    tcase_add_test(tc, test_kinds_expire);
    tcase_add_test(tc, test_kinds_metadata);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(big, ct_setup, ct_teardown);
    tcase_set_timeout(big, 300);
    tcase_add_test(big, test_large_batch);
    suite_add_tcase(s, big);

    if (getenv("GW_STORAGE_TEST_UNREACHABLE") != NULL) {
        TCase *down = tcase_create("unreachable");

        tcase_add_checked_fixture(down, ct_unreachable_setup,
                                  ct_unreachable_teardown);
        tcase_set_timeout(down, 120);
        tcase_add_test(down, test_unreachable);
        suite_add_tcase(s, down);
    }
    if (strcmp(ct_plugin->name, "memory") == 0) {
        TCase *snap = tcase_create("snapshot"), *mem;

        tcase_add_checked_fixture(snap, ct_snap_setup, ct_snap_teardown);
        tcase_add_test(snap, test_snap_reload);
        tcase_add_test(snap, test_snap_interval);
        tcase_add_test(snap, test_snap_bad_magic);
        tcase_add_test(snap, test_snap_bad_version);
        tcase_add_test(snap, test_snap_truncated);
        tcase_add_test(snap, test_snap_flipped_byte);
        tcase_add_test(snap, test_snap_garbage);
        tcase_add_test(snap, test_snap_missing_ok);
        tcase_add_test(snap, test_snap_nonces);
        tcase_add_test(snap, test_snap_off_thread);
        tcase_add_test(snap, test_snap_crash_mid_write);
        tcase_add_test(snap, test_snap_version1_loads);
        tcase_add_test(snap, test_snap_expire_then_grow);
        tcase_add_test(snap, test_snap_version2_loads);
        tcase_add_test(snap, test_snap_kinds);
        tcase_add_test(snap, test_snap_bad_sketch);
        suite_add_tcase(s, snap);

        mem = tcase_create("memory");
        tcase_add_checked_fixture(mem, ct_setup, ct_teardown);
        tcase_add_test(mem, test_mem_all_or_nothing);
        suite_add_tcase(s, mem);
    }
    return s;
}

static void
ct_usage(FILE *out)
{
    fprintf(out,
            "usage: gottwall-storage-test PLUGIN [KEY=VALUE...]\n"
            "       gottwall-storage-test --bench SERIES[:PERIODS] PLUGIN "
            "[KEY=VALUE...]\n"
            "Runs the storage conformance suite against PLUGIN (a name, "
            "looked up in\nGOTTWALL_PLUGIN_PATH and the installed plugin "
            "directory, or a path to a .so).\nKEY=VALUE pairs are the "
            "instance's settings (its STORAGE_SETTINGS).\n"
            "Environment: GW_STORAGE_TEST_UNREACHABLE=\"KEY=VALUE\" (one per "
            "line) also\ntests a dead server; CK_RUN_CASE / CK_RUN_TEST select "
            "tests; GW_STORAGE_TEST_DEBUG=1\nshows debug logs.\n"
            "--bench times one store of SERIES distinct series (10 per "
            "metric: the total\nand 9 filter values) x PERIODS periods "
            "(default 7), as one flush, the same\nbatch again, and the same "
            "deltas under a new id; runs no tests.\n");
}

int
main(int argc, char **argv)
{
    gw__loader_t loader;
    gw__plugin_t *plugin = NULL;
    gw_error_t err = {""};
    char *dirs[32], *env, *save = NULL, *tok;
    size_t ndirs = 0;
    const char *bench = NULL;
    int i, failed;
    SRunner *sr;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        ct_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--bench") == 0) {
        if (argc < 4) {
            ct_usage(stderr);
            return 2;
        }
        bench = argv[2];
        argv += 2;
        argc -= 2;
    }
    for (i = 2; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL || argv[i][0] == '=' ||
            ct_npairs == CT_MAX_PAIRS) {
            fprintf(stderr, "gottwall-storage-test: \"%s\" is not KEY=VALUE\n",
                    argv[i]);
            return 2;
        }
        ct_pairs[ct_npairs++] = argv[i];
    }
    env = getenv("GOTTWALL_PLUGIN_PATH");
    env = env ? strdup(env) : NULL;
    for (tok = env ? strtok_r(env, ":", &save) : NULL; tok && ndirs < 32;
         tok = strtok_r(NULL, ":", &save))
        dirs[ndirs++] = tok;
    gw__loader_init(&loader, dirs, ndirs);
    if (strchr(argv[1], '/') != NULL)
        i = gw__loader_open(&loader, argv[1], &plugin, &err);
    else
        i = gw__loader_load(&loader, GW_PLUGIN_STORAGE, argv[1], &plugin,
                            &err);
    if (i != GW_OK) {
        fprintf(stderr, "gottwall-storage-test: %s\n", err.msg);
        return 2;
    }
    if (plugin->desc.kind != GW_PLUGIN_STORAGE) {
        fprintf(stderr, "gottwall-storage-test: %s is not a storage plugin\n",
                plugin->path);
        return 2;
    }
    ct_plugin = plugin;
    ct_ops = &plugin->storage;
    snprintf(ct_run, sizeof(ct_run), "ct%08lx%04x",
             (unsigned long) time(NULL) & 0xffffffffUL,
             (unsigned) getpid() & 0xffff);
    if (bench != NULL) {
        i = ct_bench(bench);
        gw__loader_free(&loader);
        free(env);
        return i;
    }
    fprintf(stderr, "testing storage plugin \"%s\" %s from %s (run %s)\n",
            plugin->name, plugin->version, plugin->path, ct_run);

    sr = srunner_create(ct_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    gw__loader_free(&loader);
    free(env);
    return failed == 0 ? 0 : 1;
}
