/*
 * server/api_stats.c: the read API (SPEC §7): projects, metrics, stats and
 * stats_dataset.
 *
 * A stats request is checked on the loop (name, period, dates, range size:
 * 400s with a message that says what to fix), then one storage job looks up
 * the metric's kind in the metadata and queries the series; the loop turns
 * the points into a sorted, zero-filled range with one entry per bucket from
 * the normalised from_date to the normalised to_date. An unknown metric is
 * not an error: its range is all zeros (it may simply have no events yet).
 */
#include "api_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "ingest/bucket.h"
#include "net/http.h"

#define STATS_DEFAULT_POINTS 30
#define STATS_MAX_CELLS 1000000 /* stats_dataset: values x buckets */

/* ---- Periods, dates and ranges ---- */

static void
stats_period_list(unsigned periods, char *out, size_t size)
{
    int p;
    size_t n = 0;

    out[0] = '\0';
    for (p = 0; p < GW_PERIOD_COUNT; p++) {
        if (!(periods & (1u << p)))
            continue;
        n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s%s",
                              n ? ", " : "", gw_period_name((gw_period_t)p));
        if (n >= size)
            break;
    }
}

int
gw__api_period(const char *name, unsigned periods, gw_period_t *p,
               gw_error_t *err)
{
    char list[128];

    stats_period_list(periods, list, sizeof(list));
    if (name == NULL || name[0] == '\0') {
        *p = GW_PERIOD_MONTH;
        if (periods & (1u << GW_PERIOD_MONTH))
            return GW_OK;
        return gw_error_set(err,
                            "period is required (PERIODS does not keep "
                            "month): use one of %s",
                            list);
    }
    if (gw__period_parse(name, p) != GW_OK)
        return gw_error_set(err, "unknown period \"%.64s\": use one of %s",
                            name, list);
    if (!(periods & (1u << *p)))
        return gw_error_set(err,
                            "period \"%s\" is not kept by this server "
                            "(PERIODS): use one of %s",
                            name, list);
    return GW_OK;
}

/* A date parameter: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC) or epoch
 * seconds. */
static int
stats_date(const char *what, const char *s, int64_t *out, gw_error_t *err)
{
    const char *c = s;
    char *end;
    long long v;

    if (*c == '-')
        c++;
    if (*c != '\0' && strspn(c, "0123456789") == strlen(c) && strlen(c) <= 12) {
        v = strtoll(s, &end, 10);
        *out = (int64_t)v;
        return GW_OK;
    }
    if (strlen(s) == 10 && gw__date_parse(s, out) == GW_OK)
        return GW_OK;
    if (strlen(s) == 19 && gw__time_parse_iso(s, out) == GW_OK)
        return GW_OK;
    return gw_error_set(err,
                        "bad %s \"%.64s\": use YYYY-MM-DD, "
                        "YYYY-MM-DDTHH:MM:SS (UTC) or epoch seconds",
                        what, s);
}

/* The number of buckets of p from from to to (both aligned), capped at
 * cap + 1. */
static uint64_t
stats_count(gw_period_t p, int64_t from, int64_t to, uint64_t cap)
{
    static const int64_t width[] = {60, 3600, 86400, 604800};
    struct tm a, b;
    time_t ta = (time_t)from, tb = (time_t)to;
    uint64_t n;

    if (p == GW_PERIOD_ALL)
        return 1;
    if (p <= GW_PERIOD_WEEK)
        n = (uint64_t)((to - from) / width[p]) + 1;
    else {
        gmtime_r(&ta, &a);
        gmtime_r(&tb, &b);
        if (p == GW_PERIOD_MONTH)
            n = (uint64_t)((int64_t)(b.tm_year - a.tm_year) * 12 +
                           (b.tm_mon - a.tm_mon)) +
                1;
        else
            n = (uint64_t)(b.tm_year - a.tm_year) + 1;
    }
    return n > cap + 1 ? cap + 1 : n;
}

static void
stats_fmt_date(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0)
        strftime(out, size, "%Y-%m-%d", &tm);
    else
        strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* The error for from_date f after to_date t. */
static int
stats_reversed(int64_t f, int64_t t, gw_error_t *err)
{
    char a[32], b[32];

    stats_fmt_date(f, a, sizeof(a));
    stats_fmt_date(t, b, sizeof(b));
    return gw_error_set(err,
                        "reversed date range: from_date %s is after "
                        "to_date %s",
                        a, b);
}

/* from_date f is before the oldest bucket of p kept at now (cuts). */
static int
stats_expired(gw_period_t p, int64_t f, const int64_t *cuts, unsigned periods,
              const int64_t *retention, gw_error_t *err)
{
    char kept[32], oldest[32], asked[32], other[32];
    int q;

    gw__retention_format(retention[p], kept, sizeof(kept));
    stats_fmt_date(cuts[p], oldest, sizeof(oldest));
    stats_fmt_date(f, asked, sizeof(asked));
    for (q = (int) p + 1; q < GW_PERIOD_COUNT; q++)
        if ((periods & (1u << q)) && cuts[q] <= gw__bucket_start(q, f))
            break;
    if (q == GW_PERIOD_COUNT)
        return gw_error_set(err,
                            "%s buckets are kept for %s (RETENTION.%s): the "
                            "oldest starts at %s, and no period keeps "
                            "%s", gw_period_name(p), kept, gw_period_name(p),
                            oldest, asked);
    gw__retention_format(retention[q], other, sizeof(other));
    return gw_error_set(err,
                        "%s buckets are kept for %s (RETENTION.%s): the "
                        "oldest starts at %s; for %s ask period=%s (kept "
                        "%s)", gw_period_name(p), kept, gw_period_name(p),
                        oldest, asked, gw_period_name((gw_period_t) q), other);
}

int
gw__api_range(const char *from_s, const char *to_s, gw_period_t p, int64_t now,
              size_t max_points, unsigned periods, const int64_t *retention,
              int64_t *from, int64_t *to, size_t *npoints, gw_error_t *err)
{
    int64_t cuts[GW_PERIOD_COUNT];
    int64_t f = 0, t = 0;
    int has_from = from_s != NULL && from_s[0] != '\0';
    int has_to = to_s != NULL && to_s[0] != '\0';
    uint64_t n;
    int i;

    if (has_from && stats_date("from_date", from_s, &f, err) != GW_OK)
        return GW_ERR;
    if (has_to && stats_date("to_date", to_s, &t, err) != GW_OK)
        return GW_ERR;
    if (has_from && has_to && f > t)
        return stats_reversed(f, t, err);
    if (p == GW_PERIOD_ALL) {
        *from = *to = 0;
        *npoints = 1;
        return GW_OK;
    }
    /* Never past the current bucket; a range that starts after it has
     * no buckets at all. */
    t = gw__bucket_start(p, has_to && t < now ? t : now);
    if (has_from) {
        f = gw__bucket_start(p, f);
        if (f > t) {
            *from = f;
            *to = t;
            *npoints = 0;
            return GW_OK;
        }
    } else {
        f = t;
        for (i = 1; i < STATS_DEFAULT_POINTS; i++)
            f = gw__bucket_start(p, f - 1);
    }
    if (retention != NULL && retention[p] > 0) {
        gw__retention_cuts(retention, now, cuts);
        if (f < cuts[p] && has_from)
            return stats_expired(p, f, cuts, periods, retention, err);
        /* Only to_date, and it is expired too: no bucket of the range is
         * kept, and clamping would answer one that reads as 0. */
        if (t < cuts[p])
            return stats_expired(p, t, cuts, periods, retention, err);
        if (f < cuts[p])
            f = cuts[p];
    }
    n = stats_count(p, f, t, (uint64_t)1 << 40);
    if (n > max_points)
        return gw_error_set(err,
                            "the range asks for %llu %s buckets, more "
                            "than MAX_POINTS (%zu): shorten the range or "
                            "use a longer period",
                            (unsigned long long)n, gw_period_name(p),
                            max_points);
    *from = f;
    *to = t;
    *npoints = (size_t)n;
    return GW_OK;
}

int64_t *
gw__api_buckets(gw_period_t p, int64_t from, size_t npoints)
{
    int64_t *b = malloc((npoints ? npoints : 1) * sizeof(*b));
    size_t i;

    if (b == NULL)
        return NULL;
    for (i = 0; i < npoints; i++) {
        b[i] = from;
        from = gw__bucket_next(p, from);
    }
    return b;
}

/* ---- Storage-thread helpers ---- */

typedef struct stats_meta_s {
    const char *metric;
    const char *filter_name;
    gw_kind_t kind;
    json_t *values;
} stats_meta_t;

static void
stats_meta_emit(void *arg, const gw_meta_t *m)
{
    stats_meta_t *sm = arg;

    if (m->metric == NULL || strcmp(m->metric, sm->metric) != 0)
        return;
    if (sm->kind == 0 && m->kind != 0)
        sm->kind = m->kind;
    if (sm->values != NULL && m->filter_name != NULL &&
        m->filter_value != NULL &&
        strcmp(m->filter_name, sm->filter_name) == 0) {
        size_t i;
        json_t *v;

        json_array_foreach(
            sm->values, i,
            v) if (strcmp(json_string_value(v), m->filter_value) == 0) return;
        json_array_append_new(sm->values, json_string(m->filter_value));
    }
}

static int
stats_strcmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a),
                  json_string_value(*(json_t *const *)b));
}

/* Sorts an array of strings in place. */
static void
stats_sort_strings(json_t *arr)
{
    size_t n = json_array_size(arr), i;
    json_t **items;

    if (n < 2)
        return;
    items = malloc(n * sizeof(*items));
    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(*items), stats_strcmp);
    json_array_clear(arr);
    for (i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
}

int
gw__api_metric_info(const gw_storage_ops_t *ops, void *state,
                    const char *project, const char *metric,
                    const char *filter_name, gw_kind_t *kind, json_t **values,
                    gw_error_t *err)
{
    stats_meta_t sm;
    int rc;

    memset(&sm, 0, sizeof(sm));
    sm.metric = metric;
    sm.filter_name = filter_name;
    if (filter_name != NULL)
        sm.values = json_array();
    rc = ops->metadata(state, project, stats_meta_emit, &sm, err);
    if (rc != GW_OK) {
        json_decref(sm.values);
        return rc;
    }
    *kind = sm.kind;
    if (values != NULL) {
        if (sm.values != NULL)
            stats_sort_strings(sm.values);
        *values = sm.values;
    } else {
        json_decref(sm.values);
    }
    return GW_OK;
}

static void
stats_kinds_emit(void *arg, const gw_meta_t *m)
{
    json_t *kinds = arg;

    if (m->metric != NULL && m->kind != 0 &&
        json_object_get(kinds, m->metric) == NULL)
        json_object_set_new(kinds, m->metric, json_integer(m->kind));
}

int
gw__api_kinds(const gw_storage_ops_t *ops, void *state, const char *project,
              json_t *kinds, gw_error_t *err)
{
    return ops->metadata(state, project, stats_kinds_emit, kinds, err);
}

/* ---- The loop's cache of metric kinds ---- */

#define STATS_KIND_CACHE_MAX 100000
#define STATS_KIND_CACHE_TTL 300.0

static char *
stats_kind_key(const char *project, const char *metric)
{
    size_t a = strlen(project), b = strlen(metric);
    char *k = malloc(a + b + 2);

    if (k == NULL)
        return NULL;
    memcpy(k, project, a);
    k[a] = '\n';
    memcpy(k + a + 1, metric, b + 1);
    return k;
}

gw_kind_t
gw__api_kind_cached(gw__api_t *api, const char *project, const char *metric)
{
    char *k;
    json_t *v;

    if (api->kinds == NULL ||
        ev_now(api->env.loop) - api->kinds_since > STATS_KIND_CACHE_TTL)
        return 0;
    k = stats_kind_key(project, metric);
    v = k ? json_object_get(api->kinds, k) : NULL;
    free(k);
    return v ? (gw_kind_t)json_integer_value(v) : 0;
}

void
gw__api_kinds_learn(gw__api_t *api, const char *project, json_t *kinds)
{
    const char *metric;
    json_t *v;

    if (api == NULL || kinds == NULL)
        return;
    if (api->kinds == NULL ||
        json_object_size(api->kinds) + json_object_size(kinds) >
            STATS_KIND_CACHE_MAX ||
        ev_now(api->env.loop) - api->kinds_since > STATS_KIND_CACHE_TTL) {
        json_decref(api->kinds);
        api->kinds = json_object();
        api->kinds_since = ev_now(api->env.loop);
    }
    json_object_foreach(kinds, metric, v)
    {
        char *k = stats_kind_key(project, metric);

        if (k != NULL)
            json_object_set(api->kinds, k, v);
        free(k);
    }
}

typedef struct stats_fill_s {
    const int64_t *buckets;
    size_t n;
    double *vals;
    const gw__api_stat_t *st;
    gw_kind_t kind;
    size_t nonfinite; /* points the storage gave as inf or NaN */
    int64_t bad_bucket; /* the first of them */
    double bad_value;
} stats_fill_t;

static void
stats_point(void *arg, const gw_point_t *pt)
{
    stats_fill_t *f = arg;
    size_t lo = 0, hi = f->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (f->buckets[mid] < pt->bucket)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= f->n || f->buckets[lo] != pt->bucket)
        return;
    if (!isfinite(pt->sum)) {
        /* Stored before values were bounded (issue 16): shown as null,
         * never as 0 (gw__api_number), and logged by gw__api_series. */
        if (f->nonfinite++ == 0) {
            f->bad_bucket = pt->bucket;
            f->bad_value = pt->sum;
        }
        f->vals[lo] = NAN;
        return;
    }
    f->vals[lo] = gw__api_stat_value(f->st, f->kind, pt);
}

/* The storage gave f->nonfinite points that are no finite number: one
 * warning a minute (a dashboard asks again every few seconds), the others
 * at debug level. */
static void
stats_log_nonfinite(const gw_query_t *q, const stats_fill_t *f)
{
    static double last;
    char proj[128], metric[300], fn[300], fv[300], filter[640] = "";
    double now = (double)time(NULL);
    int level = GW_LOG_DEBUG;

    if (now - last >= 60 || last == 0) {
        last = now;
        level = GW_LOG_WARNING;
    }
    if (q->filter_name != NULL)
        snprintf(filter, sizeof(filter), " filter \"%s\" = \"%s\"",
                 gw__log_escape(q->filter_name, fn, sizeof(fn)),
                 gw__log_escape(q->filter_value, fv, sizeof(fv)));
    gw__log(level, "server",
            "storage returned a non-finite value (%s) for project \"%s\" "
            "metric \"%s\"%s period %s bucket %lld (%zu of %zu in the "
            "range): shown as null. GottWall stores finite values only since "
            "values are bounded; this one is older: correct or delete it in "
            "the storage",
            isnan(f->bad_value) ? "nan" : f->bad_value > 0 ? "inf" : "-inf",
            gw__log_escape(q->project, proj, sizeof(proj)),
            gw__log_escape(q->metric, metric, sizeof(metric)), filter,
            gw_period_name(q->period), (long long)f->bad_bucket, f->nonfinite,
            f->n);
}

int
gw__api_series(const gw_storage_ops_t *ops, void *state, const gw_query_t *q,
               const gw__api_stat_t *st, const int64_t *buckets,
               size_t npoints, double *vals, gw_error_t *err)
{
    stats_fill_t f;
    size_t i;
    int rc;

    if (gw__api_stat_null_fill(st, q->kind))
        for (i = 0; i < npoints; i++)
            vals[i] = NAN;
    if (st != NULL && (st->what == GW__STAT_MIN || st->what == GW__STAT_MAX ||
                       st->what == GW__STAT_QUANTILE))
        return gw__api_series_timing(ops, state, q, st, buckets, npoints,
                                     vals, err);
    f.buckets = buckets;
    f.n = npoints;
    f.vals = vals;
    f.st = st;
    f.kind = q->kind;
    f.nonfinite = 0;
    rc = ops->query(state, q, stats_point, &f, err);
    if (rc == GW_OK && f.nonfinite > 0)
        stats_log_nonfinite(q, &f);
    return rc;
}

void
gw__api_series_json(json_t *obj, const int64_t *buckets, const double *vals,
                    size_t npoints)
{
    json_t *range = json_array();
    double sum = 0, mn = 0, mx = 0, avg;
    size_t i, n = 0;

    /* A non-finite value (NaN: see stats_point) is null in range and
     * left out of avg, min and max; with none left they are null too. */
    for (i = 0; i < npoints; i++) {
        json_array_append_new(range, json_pack("[I, o]", (json_int_t)buckets[i],
                                               gw__api_number(vals[i])));
        if (!isfinite(vals[i]))
            continue;
        sum += vals[i];
        if (n == 0 || vals[i] < mn)
            mn = vals[i];
        if (n == 0 || vals[i] > mx)
            mx = vals[i];
        n++;
    }
    avg = n ? sum / (double)n : 0;
    if (isinf(sum)) {
        /* Values near DBL_MAX: their sum overflows, their mean does not. */
        for (i = 0, avg = 0; i < npoints; i++)
            if (isfinite(vals[i]))
                avg += vals[i] / (double)n;
    }
    if (n == 0)
        avg = mn = mx = NAN;
    json_object_set_new(obj, "range", range);
    json_object_set_new(obj, "avg", gw__api_number(avg));
    json_object_set_new(obj, "min", gw__api_number(mn));
    json_object_set_new(obj, "max", gw__api_number(mx));
}

/* ---- GET /api/v1/projects ---- */

int
gw__api_user_may_see(const gw__config_t *cfg, const char *email,
                     const char *project)
{
    size_t i, j;

    for (i = 0; i < cfg->nusers; i++) {
        const gw__user_t *u = &cfg->users[i];

        if (strcasecmp(u->email, email) != 0)
            continue;
        if (!u->restricted)
            return 1;
        for (j = 0; j < u->nprojects; j++)
            if (strcmp(u->projects[j], project) == 0)
                return 1;
        return 0;
    }
    return 0;
}

int
gw__api_may_see(const gw__api_t *api, const gw__api_who_t *who,
                const char *project)
{
    if (!who->ok)
        return 0;
    if (who->key_project != NULL)
        return strcmp(who->key_project, project) == 0;
    if (who->via_cookie)
        return gw__api_user_may_see(gw__api_cfg(api), who->user, project);
    return who->anonymous;
}

void
gw__api_projects(gw__api_t *api, gw_http_req_t *req, const gw__api_who_t *who)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < cfg->nprojects; i++)
        if (gw__api_may_see(api, who, cfg->projects[i].name))
            json_array_append_new(arr, json_string(cfg->projects[i].name));
    gw__api_json(req, 200, arr);
}

/* ---- GET /api/v1/config ---- */

void
gw__api_config(gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    json_t *periods = json_array(), *retention = json_object();
    int p;

    /* The periods kept, finest first, and how long each one's buckets are
     * (null: for ever), so that a client can keep its ranges inside them
     * instead of meeting the 400 of a range before the oldest bucket. */
    for (p = 0; p < GW_PERIOD_COUNT; p++) {
        const char *name = gw_period_name((gw_period_t) p);
        int64_t secs = cfg->retention_set ? cfg->retention[p] : 0;

        if (!(cfg->periods & (1u << p)))
            continue;
        json_array_append_new(periods, json_string(name));
        json_object_set_new(retention, name,
                            p != GW_PERIOD_ALL && secs > 0
                                ? json_integer((json_int_t) secs)
                                : json_null());
    }
    gw__api_json(req, 200,
                 json_pack("{s:o, s:o, s:I, s:I}", "periods", periods,
                           "retention", retention, "max_points",
                           (json_int_t) cfg->max_points, "now",
                           (json_int_t) time(NULL)));
}

/* ---- GET /api/v1/{project}/metrics ---- */

typedef struct stats_metrics_s {
    gw__api_pending_t base;
    char *project;
    json_t *out;
    json_t *kinds;
} stats_metrics_t;

typedef struct stats_metrics_acc_s {
    json_t *out, *kinds;
} stats_metrics_acc_t;

static void
stats_metrics_emit(void *arg, const gw_meta_t *m)
{
    stats_metrics_acc_t *acc = arg;
    json_t *out = acc->out;
    json_t *metric, *values;
    size_t i;
    json_t *v;

    if (m->metric == NULL)
        return;
    stats_kinds_emit(acc->kinds, m);
    metric = json_object_get(out, m->metric);
    if (metric == NULL) {
        metric = json_object();
        json_object_set_new(out, m->metric, metric);
    }
    if (m->filter_name == NULL || m->filter_value == NULL)
        return;
    values = json_object_get(metric, m->filter_name);
    if (values == NULL) {
        values = json_array();
        json_object_set_new(metric, m->filter_name, values);
    }
    json_array_foreach(values, i, v) if (strcmp(json_string_value(v),
                                                m->filter_value) == 0) return;
    json_array_append_new(values, json_string(m->filter_value));
}

static int
stats_metrics_job(const gw_storage_ops_t *ops, void *state, void *arg,
                  gw_error_t *err)
{
    stats_metrics_t *sm = arg;
    stats_metrics_acc_t acc;

    sm->out = json_object();
    sm->kinds = json_object();
    acc.out = sm->out;
    acc.kinds = sm->kinds;
    return ops->metadata(state, sm->project, stats_metrics_emit, &acc, err);
}

/* A copy of obj with its keys sorted (and its arrays of values sorted). */
json_t *
gw__api_sorted(json_t *obj)
{
    const char **keys;
    size_t n = json_object_size(obj), i = 0;
    const char *k;
    json_t *v, *out = json_object();

    keys = malloc((n ? n : 1) * sizeof(*keys));
    if (keys == NULL)
        return out;
    json_object_foreach(obj, k, v) keys[i++] = k;
    for (i = 1; i < n; i++) {
        const char *t = keys[i];
        size_t j = i;

        while (j > 0 && strcmp(keys[j - 1], t) > 0) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = t;
    }
    for (i = 0; i < n; i++) {
        v = json_object_get(obj, keys[i]);
        if (json_is_object(v)) {
            json_object_set_new(out, keys[i], gw__api_sorted(v));
        } else {
            if (json_is_array(v))
                stats_sort_strings(v);
            json_object_set(out, keys[i], v);
        }
    }
    free(keys);
    return out;
}

void
gw__api_storage_error(gw_http_req_t *req, int rc, const gw_error_t *err)
{
    if (rc == GW_AGAIN)
        gw__api_errorf(req, 503, "the storage is unreachable: %s",
                       err && err->msg[0] ? err->msg : "try again later");
    else
        gw__api_errorf(req, 500, "the storage failed: %s",
                       err && err->msg[0] ? err->msg : "unknown error");
}

static void
stats_metrics_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    stats_metrics_t *sm = (stats_metrics_t *)p;

    if (rc != GW_OK) {
        gw__api_storage_error(p->req, rc, err);
        return;
    }
    gw__api_kinds_learn(p->api, sm->project, sm->kinds);
    gw__api_json(p->req, 200, gw__api_sorted(sm->out));
}

static void
stats_metrics_release(gw__api_pending_t *p)
{
    stats_metrics_t *sm = (stats_metrics_t *)p;

    json_decref(sm->out);
    json_decref(sm->kinds);
    free(sm->project);
    free(sm);
}

void
gw__api_metrics(gw__api_t *api, gw_http_req_t *req, const char *project)
{
    stats_metrics_t *sm = calloc(1, sizeof(*sm));

    if (sm == NULL || (sm->project = strdup(project)) == NULL) {
        free(sm);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    sm->base.req = req;
    sm->base.finish = stats_metrics_finish;
    sm->base.release = stats_metrics_release;
    gw__api_submit(api, &sm->base, stats_metrics_job);
}

/* ---- GET /api/v1/{project}/stats and stats_dataset ---- */

typedef struct stats_job_s {
    gw__api_pending_t base;
    int dataset;
    char *project, *name, *filter_name, *filter_value;
    gw_period_t period;
    int64_t from, to;
    size_t npoints;
    int64_t *buckets;
    /* results */
    gw_kind_t kind;    /* preset from the cache, else from metadata */
    json_t *kinds;     /* learned from metadata (stats) */
    double *vals;      /* stats */
    json_t *values;    /* dataset: the filter's values */
    char too_big[320]; /* why it is not answered (400): a dataset too big,
                        * a stat the metric's kind has not */
    gw__api_stat_t stat;
    double **dvals;    /* dataset: one series per value */
} stats_job_t;

static int
stats_job(const gw_storage_ops_t *ops, void *state, void *arg, gw_error_t *err)
{
    stats_job_t *sj = arg;
    gw_query_t q;
    size_t i;
    int rc;

    if (sj->dataset) {
        rc = gw__api_metric_info(ops, state, sj->project, sj->name,
                                 sj->filter_name, &sj->kind, &sj->values, err);
        if (rc == GW_OK && sj->kind != 0 &&
            json_array_size(sj->values) * sj->npoints > STATS_MAX_CELLS) {
            snprintf(sj->too_big, sizeof(sj->too_big),
                     "the table would have %zu values x %zu buckets, more "
                     "than %d cells: shorten the range or use a longer "
                     "period",
                     json_array_size(sj->values), sj->npoints, STATS_MAX_CELLS);
            return GW_OK;
        }
    } else if (sj->kind == 0) {
        /* Not cached: one metadata pass teaches the loop every kind. */
        sj->kinds = json_object();
        rc = gw__api_kinds(ops, state, sj->project, sj->kinds, err);
        if (rc == GW_OK)
            sj->kind = (gw_kind_t)json_integer_value(
                json_object_get(sj->kinds, sj->name));
    } else {
        rc = GW_OK;
    }
    if (rc != GW_OK || sj->kind == 0)
        return rc;
    if (gw__api_stat_check(&sj->stat, sj->kind, sj->name, sj->too_big,
                           sizeof(sj->too_big)) != GW_OK)
        return GW_OK;
    memset(&q, 0, sizeof(q));
    q.project = sj->project;
    q.metric = sj->name;
    q.kind = sj->kind;
    q.period = sj->period;
    q.from = sj->from;
    q.to = sj->to;
    if (!sj->dataset) {
        q.filter_name = sj->filter_name;
        q.filter_value = sj->filter_name ? sj->filter_value : NULL;
        if (q.filter_name != NULL && q.filter_value == NULL)
            q.filter_name = NULL;
        return gw__api_series(ops, state, &q, &sj->stat, sj->buckets,
                              sj->npoints,
                              sj->vals, err);
    }
    sj->dvals = calloc(json_array_size(sj->values) + 1, sizeof(double *));
    if (sj->dvals == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < json_array_size(sj->values); i++) {
        sj->dvals[i] = calloc(sj->npoints, sizeof(double));
        if (sj->dvals[i] == NULL)
            return gw_error_set(err, "out of memory");
        q.filter_name = sj->filter_name;
        q.filter_value = json_string_value(json_array_get(sj->values, i));
        rc = gw__api_series(ops, state, &q, &sj->stat, sj->buckets,
                            sj->npoints,
                            sj->dvals[i], err);
        if (rc != GW_OK)
            return rc;
    }
    return GW_OK;
}

static json_t *
stats_str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static void
stats_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    stats_job_t *sj = (stats_job_t *)p;
    json_t *o = json_object();
    size_t i;

    if (rc != GW_OK) {
        json_decref(o);
        gw__api_storage_error(p->req, rc, err);
        return;
    }
    gw__api_kinds_learn(p->api, sj->project, sj->kinds);
    if (sj->too_big[0] != '\0') {
        json_decref(o);
        gw__http_error(p->req, 400, sj->too_big);
        return;
    }
    if (!sj->dataset) {
        gw__api_series_json(o, sj->buckets, sj->vals, sj->npoints);
        /* SPEC §7's order: range first, then the request, then the
         * aggregates. */
        {
            json_t *r = json_pack(
                "{s:O, s:s, s:s, s:s, s:o, s:o, s:O, s:O, s:O}", "range",
                json_object_get(o, "range"), "project", sj->project, "period",
                gw_period_name(sj->period), "name", sj->name, "filter_name",
                stats_str_or_null(sj->filter_name), "filter_value",
                stats_str_or_null(sj->filter_name ? sj->filter_value : NULL),
                "avg", json_object_get(o, "avg"), "min",
                json_object_get(o, "min"), "max", json_object_get(o, "max"));

            json_decref(o);
            gw__api_json(p->req, 200, r);
        }
        return;
    }
    {
        json_t *data = json_object();

        for (i = 0; sj->values != NULL && i < json_array_size(sj->values);
             i++) {
            json_t *one = json_object();

            gw__api_series_json(one, sj->buckets, sj->dvals[i], sj->npoints);
            json_object_set_new(
                data, json_string_value(json_array_get(sj->values, i)), one);
        }
        json_decref(o);
        gw__api_json(p->req, 200,
                     json_pack("{s:o, s:s, s:s, s:s, s:s}", "data", data,
                               "project", sj->project, "period",
                               gw_period_name(sj->period), "name", sj->name,
                               "filter_name", sj->filter_name));
    }
}

static void
stats_release(gw__api_pending_t *p)
{
    stats_job_t *sj = (stats_job_t *)p;
    size_t i;

    if (sj->dvals != NULL) {
        for (i = 0; i < json_array_size(sj->values); i++)
            free(sj->dvals[i]);
        free(sj->dvals);
    }
    json_decref(sj->values);
    json_decref(sj->kinds);
    free(sj->vals);
    free(sj->buckets);
    free(sj->project);
    free(sj->name);
    free(sj->filter_name);
    free(sj->filter_value);
    free(sj);
}

static char *
stats_param(gw_http_req_t *req, const char *name)
{
    char *v = gw__http_query_param(gw__http_query(req), name);

    if (v != NULL && v[0] == '\0') {
        free(v);
        return NULL;
    }
    return v;
}

void
gw__api_stats(gw__api_t *api, gw_http_req_t *req, const char *project,
              int dataset)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    stats_job_t *sj = calloc(1, sizeof(*sj));
    char *period = NULL, *from = NULL, *to = NULL, *stat = NULL;
    gw_error_t err;

    if (sj == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    sj->base.req = req;
    sj->base.finish = stats_finish;
    sj->base.release = stats_release;
    sj->dataset = dataset;
    sj->project = strdup(project);
    sj->name = stats_param(req, "name");
    sj->filter_name = stats_param(req, "filter_name");
    sj->filter_value =
        gw__http_query_param(gw__http_query(req), "filter_value");
    period = stats_param(req, "period");
    from = stats_param(req, "from_date");
    to = stats_param(req, "to_date");
    stat = stats_param(req, "stat");
    if (sj->name == NULL) {
        gw__http_error(req, 400, "missing parameter: name (the metric)");
        goto fail;
    }
    if (!dataset && sj->filter_name != NULL && sj->filter_value == NULL) {
        gw__http_error(req, 400,
                       "filter_name needs filter_value (for every "
                       "value of a filter use stats_dataset)");
        goto fail;
    }
    if (dataset && sj->filter_name == NULL) {
        gw__http_error(req, 400,
                       "missing parameter: filter_name (the "
                       "filter whose values make the rows)");
        goto fail;
    }
    if (gw__api_stat_parse(stat, &sj->stat, &err) != GW_OK ||
        gw__api_period(period, cfg->periods, &sj->period, &err) != GW_OK ||
        gw__api_range(from, to, sj->period, (int64_t)time(NULL),
                      cfg->max_points, cfg->periods,
                      cfg->retention_set ? cfg->retention : NULL, &sj->from,
                      &sj->to, &sj->npoints, &err) != GW_OK) {
        gw__http_error(req, 400, err.msg);
        goto fail;
    }
    sj->buckets = gw__api_buckets(sj->period, sj->from, sj->npoints);
    sj->vals = calloc(sj->npoints ? sj->npoints : 1, sizeof(double));
    if (sj->project == NULL || sj->buckets == NULL || sj->vals == NULL) {
        gw__http_error(req, 500, "out of memory");
        goto fail;
    }
    free(period);
    free(from);
    free(to);
    free(stat);
    if (!dataset)
        sj->kind = gw__api_kind_cached(api, sj->project, sj->name);
    gw__api_submit(api, &sj->base, stats_job);
    return;
fail:
    free(period);
    free(from);
    free(to);
    free(stat);
    stats_release(&sj->base);
}
