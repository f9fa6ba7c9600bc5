/*
 * server/api_stat.c: the stat= of stats and stats_dataset (issue 15) and
 * GET {PREFIX}/api/v1/{project}/kinds.
 *
 * Each kind has its stats: counter value (its sum), count (events) and
 * sum; avg value (the mean), count, sum and mean; gauge value; timing
 * value (the mean), count, sum, min, max, mean and any percentile pNN;
 * set value (the distinct members) and count (events). A percentile is
 * the storage's sketch's (query_timing): within 1 % of the exact
 * nearest-rank one, the value at rank ceil(q n) of the n sorted values.
 * A timing's bucket without events has no min, max, mean or percentile:
 * null, where count and sum are 0.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/sketch.h>

#include "api_int.h"
#include "net/http.h"

static const char *const stat_names[] = {"value", "count", "sum",
                                         "min",   "max",   "mean"};

/* The stats of each kind, as a bit set of gw__api_stat_what_t, and as
 * said in a refusal. */
static unsigned
stat_allowed(gw_kind_t kind)
{
    switch (kind) {
    case GW_KIND_COUNTER:
        return 1u << GW__STAT_VALUE | 1u << GW__STAT_COUNT |
               1u << GW__STAT_SUM;
    case GW_KIND_AVG:
        return 1u << GW__STAT_VALUE | 1u << GW__STAT_COUNT |
               1u << GW__STAT_SUM | 1u << GW__STAT_MEAN;
    case GW_KIND_TIMING:
        return ~0u;
    case GW_KIND_SET:
        return 1u << GW__STAT_VALUE | 1u << GW__STAT_COUNT;
    case GW_KIND_GAUGE:
    default:
        return 1u << GW__STAT_VALUE;
    }
}

static const char *
stat_list(gw_kind_t kind)
{
    switch (kind) {
    case GW_KIND_COUNTER:
        return "value, count, sum";
    case GW_KIND_AVG:
        return "value, count, sum, mean";
    case GW_KIND_TIMING:
        return "value, count, sum, min, max, mean and percentiles (p50, "
               "p90, p99, p999...)";
    case GW_KIND_SET:
        return "value, count";
    case GW_KIND_GAUGE:
    default:
        return "value";
    }
}

int
gw__api_stat_parse(const char *s, gw__api_stat_t *st, gw_error_t *err)
{
    size_t i, n;

    memset(st, 0, sizeof(*st));
    if (s == NULL || strcmp(s, "value") == 0) {
        snprintf(st->name, sizeof(st->name), "value");
        return GW_OK;
    }
    n = strlen(s);
    for (i = 1; i < sizeof(stat_names) / sizeof(stat_names[0]); i++)
        if (strcmp(s, stat_names[i]) == 0) {
            st->what = (gw__api_stat_what_t) i;
            snprintf(st->name, sizeof(st->name), "%s", s);
            return GW_OK;
        }
    /* p, two digits of percent, then its decimals: p50 p999 p05. */
    if (s[0] == 'p' && n >= 3 && n <= 9 &&
        strspn(s + 1, "0123456789") == n - 1) {
        st->what = GW__STAT_QUANTILE;
        st->q = strtod(s + 1, NULL) / pow(10, (double) (n - 1));
        if (strcmp(s, "p100") == 0)
            st->q = 1;
        snprintf(st->name, sizeof(st->name), "%s", s);
        return GW_OK;
    }
    return gw_error_set(err,
                        "stat \"%.40s\" is unknown; use value, count, sum, "
                        "min, max, mean or a percentile: p followed by two "
                        "or more digits (p50, p95, p99, p999 is 99.9 %%)",
                        s);
}

int
gw__api_stat_check(const gw__api_stat_t *st, gw_kind_t kind,
                   const char *metric, char *msg, size_t size)
{
    if (stat_allowed(kind) & (1u << st->what))
        return GW_OK;
    snprintf(msg, size,
             "stat \"%s\" does not exist for metric \"%.60s\", %s %s; its "
             "stats are: %s",
             st->name, metric, kind == GW_KIND_AVG ? "an" : "a",
             gw_kind_name(kind) ? gw_kind_name(kind) : "metric",
             stat_list(kind));
    return GW_ERR;
}

double
gw__api_stat_value(const gw__api_stat_t *st, gw_kind_t kind,
                   const gw_point_t *pt)
{
    gw__api_stat_what_t what = st != NULL ? st->what : GW__STAT_VALUE;
    double mean = pt->count ? pt->sum / (double) pt->count : NAN;

    switch (what) {
    case GW__STAT_COUNT:
        return (double) pt->count;
    case GW__STAT_SUM:
        return pt->sum;
    case GW__STAT_MEAN:
        return mean;
    case GW__STAT_VALUE:
        if (kind == GW_KIND_AVG || kind == GW_KIND_TIMING)
            return mean; /* no events: null */
        return pt->sum;
    default: /* min, max, pNN: from the sketch (stat_timing_point) */
        return NAN;
    }
}

int
gw__api_stat_null_fill(const gw__api_stat_t *st, gw_kind_t kind)
{
    gw__api_stat_what_t what = st != NULL ? st->what : GW__STAT_VALUE;

    return kind != GW_KIND_COUNTER && kind != 0 && what != GW__STAT_COUNT &&
           what != GW__STAT_SUM;
}

typedef struct stat_fill_s {
    const gw__api_stat_t *st;
    const int64_t *buckets;
    size_t n;
    double *vals;
} stat_fill_t;

static void
stat_timing_point(void *arg, const gw_point_t *pt, const gw_timing_t *t)
{
    stat_fill_t *f = arg;
    size_t lo = 0, hi = f->n, mid;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (f->buckets[mid] < pt->bucket)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= f->n || f->buckets[lo] != pt->bucket ||
        gw_timing_total(t) == 0)
        return;
    switch (f->st->what) {
    case GW__STAT_MIN:
        f->vals[lo] = t->min;
        break;
    case GW__STAT_MAX:
        f->vals[lo] = t->max;
        break;
    default:
        f->vals[lo] = gw_timing_quantile(t, f->st->q);
        break;
    }
}

int
gw__api_series_timing(const gw_storage_ops_t *ops, void *state,
                      const gw_query_t *q, const gw__api_stat_t *st,
                      const int64_t *buckets, size_t npoints, double *vals,
                      gw_error_t *err)
{
    stat_fill_t f;

    f.st = st;
    f.buckets = buckets;
    f.n = npoints;
    f.vals = vals;
    if (ops->query_timing == NULL) /* the loader refuses such a plugin */
        return gw_error_set(err, "the storage keeps no timing sketches");
    return ops->query_timing(state, q, stat_timing_point, &f, err);
}

/* ---- GET /api/v1/{project}/kinds ---- */

typedef struct stat_kinds_s {
    gw__api_pending_t base;
    char *project;
    json_t *kinds;
} stat_kinds_t;

static int
stat_kinds_job(const gw_storage_ops_t *ops, void *state, void *arg,
               gw_error_t *err)
{
    stat_kinds_t *sk = arg;

    sk->kinds = json_object();
    return gw__api_kinds(ops, state, sk->project, sk->kinds, err);
}

static void
stat_kinds_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    stat_kinds_t *sk = (stat_kinds_t *) p;
    json_t *out, *v;
    const char *k;

    if (rc != GW_OK) {
        gw__api_storage_error(p->req, rc, err);
        return;
    }
    gw__api_kinds_learn(p->api, sk->project, sk->kinds);
    out = json_object();
    json_object_foreach(sk->kinds, k, v)
    {
        const char *name = gw_kind_name((gw_kind_t) json_integer_value(v));

        json_object_set_new(out, k, json_string(name ? name : "unknown"));
    }
    gw__api_json(p->req, 200, gw__api_sorted(out));
    json_decref(out);
}

static void
stat_kinds_release(gw__api_pending_t *p)
{
    stat_kinds_t *sk = (stat_kinds_t *) p;

    json_decref(sk->kinds);
    free(sk->project);
    free(sk);
}

void
gw__api_kinds_route(gw__api_t *api, gw_http_req_t *req, const char *project)
{
    stat_kinds_t *sk = calloc(1, sizeof(*sk));

    if (sk == NULL || (sk->project = strdup(project)) == NULL) {
        free(sk);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    sk->base.req = req;
    sk->base.finish = stat_kinds_finish;
    sk->base.release = stat_kinds_release;
    gw__api_submit(api, &sk->base, stat_kinds_job);
}
