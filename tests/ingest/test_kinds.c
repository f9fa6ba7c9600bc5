/*
 * tests/ingest/test_kinds.c: the timing and set kinds (issue 15) through
 * ingest and the batch: events in (gw__ingest_json / gw__ingest_event),
 * tables expanded and merged into a batch, and the deltas and sketches a
 * storage would be handed read back.
 *
 * Timing: exact count, sum, min and max at minute, hour and day, and every
 * quantile within 1 % (GW_SKETCH_ALPHA) of the exact nearest-rank one
 * computed here from the values sent. Sets: exact distinct counts below
 * GW_SET_EXACT_MAX, within 2 % above, across two tables. The kind rule
 * with its exception (timing on an avg metric is avg), the refusal of a
 * kind the storage does not keep, and out of memory: every allocation of
 * a timing or set request failed in turn leaves the table as it was, and
 * a failed merge drops a group whole.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/sketch.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define H0 1392451200 /* 2014-02-15 08:00 UTC */
#define DAY0 1392422400
#define MDH ((1u << GW_PERIOD_MINUTE) | (1u << GW_PERIOD_HOUR) | \
             (1u << GW_PERIOD_DAY))
#define MINUTE_ONLY (1u << GW_PERIOD_MINUTE)

static gw__ingest_t *ing, *registry;
static gw__batch_t *batch;
static gw__limits_t limits;

static double
fake_now(void)
{
    return 1392454739.0;
}

static void
setup(void)
{
    gw__limits_t l;

    memset(&l, 0, sizeof(l));
    l.max_event_bytes = 65536;
    l.max_filters = 32;
    l.max_filter_values = 64;
    l.max_name_bytes = 255;
    l.max_batch_events = 10000;
    l.max_series = 100000;
    l.max_pending_series = 1000000;
    limits = l;
    ing = gw__ingest_new(&l, fake_now);
    registry = NULL;
    batch = gw__batch_new("node-1:7");
}

static void
teardown(void)
{
    gw__ingest_alloc_fail_after(-1);
    gw__ingest_free(ing);
    gw__ingest_free(registry);
    gw__batch_free(batch);
}

/* A fresh ingest sharing a fresh registry (several loops). */
static void
use_registry(void)
{
    gw__ingest_free(ing);
    ing = gw__ingest_new(&limits, fake_now);
    registry = gw__ingest_new(&limits, fake_now);
    gw__ingest_share(ing, registry);
}

#define IN(json) in_at(__LINE__, (json))
static void
in_at(int line, const char *json)
{
    gw_error_t err = {{0}};

    ck_assert_msg(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                  json, strlen(json), 1, NULL, NULL,
                                  &err) == GW_OK,
                  "line %d: %.200s: %s", line, json, err.msg);
}

#define BAD(json, why_, msg_) bad_at(__LINE__, (json), (why_), (msg_))
static void
bad_at(int line, const char *json, gw__reject_t why_, const char *msg)
{
    gw__reject_t why = GW__REJECT_NONE;
    gw_error_t err = {{0}};
    size_t keys = gw__ingest_pending(ing);

    ck_assert_msg(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                  json, strlen(json), 1, NULL, &why,
                                  &err) == GW_ERR,
                  "line %d: %s accepted", line, json);
    ck_assert_msg(why == why_, "line %d: reason %s", line,
                  gw__reject_name(why));
    ck_assert_msg(strcmp(err.msg, msg) == 0, "line %d: message %s", line,
                  err.msg);
    /* Refused whole: no key of it stays. */
    ck_assert_uint_eq(gw__ingest_pending(ing), keys);
}

static uint64_t
merge(unsigned periods)
{
    gw__table_t *t = gw__ingest_swap(ing);
    uint64_t dropped = 12345;

    ck_assert_ptr_nonnull(t);
    gw__batch_add_table(batch, t, periods, &dropped);
    gw__table_free(t);
    return dropped;
}

static int
str_eq_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The index of the delta of the key in the batch, or -1. */
static long
find(const char *metric, const char *fname, const char *fvalue,
     gw_period_t p, int64_t bucket)
{
    const gw_batch_t *b = gw__batch_view(batch);
    long found = -1;
    size_t i;

    for (i = 0; i < b->ndeltas; i++) {
        const gw_delta_t *d = &b->deltas[i];

        if (strcmp(d->metric, metric) == 0 &&
            str_eq_null(d->filter_name, fname) &&
            str_eq_null(d->filter_value, fvalue) && d->period == p &&
            d->bucket == bucket) {
            ck_assert_msg(found < 0, "two deltas for one key");
            found = (long) i;
        }
    }
    return found;
}

static long
must_find(const char *metric, const char *fname, const char *fvalue,
          gw_period_t p, int64_t bucket)
{
    long i = find(metric, fname, fvalue, p, bucket);

    ck_assert_msg(i >= 0, "no delta %s %s=%s %s %lld", metric,
                  fname ? fname : "-", fvalue ? fvalue : "-",
                  gw_period_name(p), (long long) bucket);
    return i;
}

/* ---- timing ----------------------------------------------------------- */

static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

/* The exact nearest-rank q-quantile of v[0..n) (sorted here). */
static double
nearest_rank(double *v, size_t n, double q)
{
    size_t rank = (size_t) ceil(q * (double) n - 1e-9);

    qsort(v, n, sizeof(*v), dbl_cmp);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

/* What a timing series' bucket must hold: the values sent to it. */
typedef struct want_s {
    double v[4000];
    size_t n;
    double sum, min, max;
} want_t;

static void
want_add(want_t *w, double v)
{
    if (w->n == 0 || v < w->min)
        w->min = v;
    if (w->n == 0 || v > w->max)
        w->max = v;
    w->v[w->n++] = v;
    w->sum += v;
}

static const double qs[] = {0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999};

/* The timing delta i holds exactly w's count, sum, min and max, and each
 * quantile within 1 % of w's exact one. */
static void
ck_timing(long i, want_t *w, const char *what)
{
    const gw_batch_t *b = gw__batch_view(batch);
    const gw_delta_t *d = &b->deltas[i];
    const gw_timing_t *t;
    size_t k;

    ck_assert_ptr_nonnull(b->data);
    t = b->data[i].timing;
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(b->data[i].set);
    ck_assert_int_eq(d->kind, GW_KIND_TIMING);
    ck_assert_msg(d->count == (int64_t) w->n, "%s: count %lld, want %zu",
                  what, (long long) d->count, w->n);
    ck_assert_uint_eq(gw_timing_total(t), w->n);
    ck_assert_msg(d->sum == w->sum, "%s: sum %.17g, want %.17g", what,
                  d->sum, w->sum);
    ck_assert_double_eq(t->min, w->min);
    ck_assert_double_eq(t->max, w->max);
    ck_assert_double_eq(d->ts, 0);
    for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double exact = nearest_rank(w->v, w->n, qs[k]);
        double got = gw_timing_quantile(t, qs[k]);

        ck_assert_msg(fabs(got - exact) <= GW_SKETCH_ALPHA * fabs(exact),
                      "%s: p%g %.17g, exact %.17g", what, qs[k] * 100, got,
                      exact);
    }
}

/* A deterministic lognormal-ish latency in ms, in 1/16ths (so that sums
 * are exact in any order). */
static uint64_t rng = 88172645463325252ull;

static double
latency(void)
{
    double u1, u2, z;

    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    u1 = ((double) (rng >> 11) + 1) / 9007199254740993.0;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    u2 = (double) (rng >> 11) / 9007199254740992.0;
    z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
    return round(exp(3 + z) * 16) / 16;
}

static want_t w_min[5][3], w_hour[3];

START_TEST(test_timing_periods)
{
    static const char *const hosts[] = {"a", "b"};
    static char json[65536];
    size_t n, ev, k, m, s;
    char what[64];
    long i;

    memset(w_min, 0, sizeof(w_min));
    memset(w_hour, 0, sizeof(w_hour));
    /* 3000 values over five minutes of one hour, two hosts; in batches of
     * 100 (one request adds to a cell many times) and, for the second
     * table, one by one (the fast path). */
    for (ev = 0; ev < 3000;) {
        int batched = ev < 2000;

        n = (size_t) snprintf(json, sizeof(json), batched ? "[" : "");
        for (k = 0; k < (batched ? 100u : 1u); k++, ev++) {
            double v = latency();
            size_t mi = ev % 5, h = (ev / 5) % 2;

            n += (size_t) snprintf(json + n, sizeof(json) - n,
                                   "%s{\"n\": \"lat\", \"a\": \"timing\", "
                                   "\"v\": %.17g, \"ts\": %d, \"f\": "
                                   "{\"host\": \"%s\"}}",
                                   k ? ", " : "", v,
                                   H0 + 60 * (int) mi + 7, hosts[h]);
            want_add(&w_min[mi][0], v);
            want_add(&w_min[mi][1 + h], v);
            want_add(&w_hour[0], v);
            want_add(&w_hour[1 + h], v);
        }
        if (batched)
            snprintf(json + n, sizeof(json) - n, "]");
        IN(json);
        if (ev == 2000)
            ck_assert_uint_eq(merge(MDH), 0); /* the first table */
    }
    ck_assert_uint_eq(merge(MDH), 0);
    ck_assert_uint_eq(gw__batch_events(batch), 3000);
    /* 5 minutes + hour + day, each total, host=a, host=b. */
    ck_assert_uint_eq(gw__batch_size(batch), 7 * 3);
    for (s = 0; s < 3; s++) {
        const char *fn = s ? "host" : NULL, *fv = s ? hosts[s - 1] : NULL;

        for (m = 0; m < 5; m++) {
            snprintf(what, sizeof(what), "minute %zu series %zu", m, s);
            i = must_find("lat", fn, fv, GW_PERIOD_MINUTE,
                          H0 + 60 * (int64_t) m);
            ck_timing(i, &w_min[m][s], what);
        }
        snprintf(what, sizeof(what), "hour series %zu", s);
        ck_timing(must_find("lat", fn, fv, GW_PERIOD_HOUR, H0), &w_hour[s],
                  what);
        snprintf(what, sizeof(what), "day series %zu", s);
        ck_timing(must_find("lat", fn, fv, GW_PERIOD_DAY, DAY0), &w_hour[s],
                  what);
    }
}
END_TEST

/* Negative values, zeros, values below GW_SKETCH_MIN_VALUE; a structured
 * event (a transport's submit) with GW_ACTION_TIMING. */
START_TEST(test_timing_signs)
{
    static const double vals[] = {-10, -2.5, 0, 0, 1e-12, 4, 8, -2.5};
    gw_event_t ev = {NULL, "sig", GW_ACTION_TIMING, 1, H0 + 5, 8, NULL, 0};
    static want_t w;
    gw_error_t err = {{0}};
    char json[256];
    size_t k;

    memset(&w, 0, sizeof(w));
    gw__ingest_set_fast(ing, 0); /* the jansson path */
    for (k = 0; k + 1 < sizeof(vals) / sizeof(vals[0]); k++) {
        snprintf(json, sizeof(json),
                 "{\"n\": \"sig\", \"a\": \"timing\", \"v\": %.17g, "
                 "\"ts\": %d}",
                 vals[k], H0 + 5);
        IN(json);
        want_add(&w, vals[k]);
    }
    ev.value = vals[k];
    ck_assert_int_eq(gw__ingest_event(ing, "test_project", &ev, NULL, &err),
                     GW_OK);
    want_add(&w, vals[k]);
    /* No "v": 1, as for avg. */
    IN("{\"n\": \"sig\", \"a\": \"timing\", \"ts\": 1392451205}");
    want_add(&w, 1);
    merge(MDH);
    ck_timing(must_find("sig", NULL, NULL, GW_PERIOD_HOUR, H0), &w, "hour");
    ck_assert_uint_eq(gw__batch_view(batch)->data[0].timing->zero, 3);
}
END_TEST

/* A batch without timing or set deltas hands out no data. */
START_TEST(test_no_data_without_sketches)
{
    IN("[{\"n\": \"c\", \"v\": 2}, {\"n\": \"g\", \"a\": \"gauge\"}, "
       "{\"n\": \"avg\", \"a\": \"avg\", \"v\": 3, \"f\": {\"x\": 1}}]");
    merge(MDH);
    ck_assert_uint_eq(gw__batch_size(batch), 12);
    ck_assert_ptr_null(gw__batch_view(batch)->data);
    /* Once it has one, data[i] is NULL for every other kind. */
    IN("{\"n\": \"t\", \"a\": \"timing\", \"v\": 3}");
    merge(MDH);
    ck_assert_ptr_nonnull(gw__batch_view(batch)->data);
    {
        long i = must_find("c", NULL, NULL, GW_PERIOD_DAY, DAY0);

        ck_assert_ptr_null(gw__batch_view(batch)->data[i].timing);
        ck_assert_ptr_null(gw__batch_view(batch)->data[i].set);
    }
}
END_TEST

/* A batch of many timing and set deltas is freed with everything it
 * holds: its sketches are freed by their deltas' kinds, read before the
 * deltas go (an array this large is given back to the system at once, so
 * reading it after would fault). */
START_TEST(test_free_a_large_batch)
{
    static char json[65536];
    size_t n;
    int i, k;

    for (k = 0; k < 4; k++) {
        n = (size_t) snprintf(json, sizeof(json), "[");
        for (i = 0; i < 100; i++)
            n += (size_t) snprintf(
                json + n, sizeof(json) - n,
                "%s{\"n\": \"m%d\", \"a\": \"%s\", \"v\": %d, "
                "\"f\": {\"h\": [\"a%d\", \"b\"]}}",
                i ? ", " : "", k * 100 + i, k % 2 ? "set" : "timing", i + 1,
                i);
        snprintf(json + n, sizeof(json) - n, "]");
        IN(json);
    }
    ck_assert_uint_eq(merge(0x7fu), 0);
    ck_assert_uint_eq(gw__batch_size(batch), 400 * 3 * 7);
    gw__batch_free(batch);
    batch = NULL;
}
END_TEST

/* ---- sets ------------------------------------------------------------- */

/* The set delta holds events and distinct members; exact: no HLL. */
static void
ck_set(long i, int64_t events, double distinct, int exact)
{
    const gw_batch_t *b = gw__batch_view(batch);
    const gw_set_t *s;

    ck_assert_ptr_nonnull(b->data);
    s = b->data[i].set;
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(b->data[i].timing);
    ck_assert_int_eq(b->deltas[i].kind, GW_KIND_SET);
    ck_assert_int_eq(b->deltas[i].count, events);
    ck_assert_double_eq(b->deltas[i].sum, 0);
    if (exact) {
        ck_assert_ptr_null(s->registers);
        ck_assert_double_eq(gw_set_count(s), distinct);
    } else {
        ck_assert_ptr_nonnull(s->registers);
        ck_assert_msg(fabs(gw_set_count(s) - distinct) <= 0.02 * distinct,
                      "%g members, want %g within 2 %%", gw_set_count(s),
                      distinct);
    }
}

/* Sends members from..to (as "u<i>"), in batches of 100, at minute m. */
static void
send_members(const char *metric, int from, int to, int m, const char *f)
{
    static char json[65536];
    size_t n;
    int i;

    while (from < to) {
        n = (size_t) snprintf(json, sizeof(json), "[");
        for (i = 0; i < 100 && from < to; i++, from++)
            n += (size_t) snprintf(json + n, sizeof(json) - n,
                                   "%s{\"n\": \"%s\", \"a\": \"set\", "
                                   "\"v\": \"u%d\", \"ts\": %d%s}",
                                   i ? ", " : "", metric, from,
                                   H0 + 60 * m, f);
        snprintf(json + n, sizeof(json) - n, "]");
        IN(json);
    }
}

START_TEST(test_set_exact_two_tables)
{
    /* Table 1: u0..u299 at minute 0 (twice: duplicates count as events,
     * not members), with a filter. */
    send_members("users", 0, 300, 0, ", \"f\": {\"k\": \"x\"}");
    send_members("users", 0, 300, 0, "");
    merge(MDH);
    /* Table 2: u200..u499 at minute 1; a number and its text are the
     * same member. */
    send_members("users", 200, 500, 1, "");
    IN("{\"n\": \"users\", \"a\": \"set\", \"v\": 42, \"ts\": 1392451260}");
    IN("{\"n\": \"users\", \"a\": \"set\", \"v\": \"42\", \"ts\": "
       "1392451260}");
    IN("{\"n\": \"users\", \"a\": \"set\", \"v\": 2.5, \"ts\": 1392451260}");
    IN("{\"n\": \"users\", \"a\": \"set\", \"v\": \"2.5\", \"ts\": "
       "1392451260}");
    merge(MDH);
    ck_assert_uint_eq(gw__batch_events(batch), 904);
    ck_set(must_find("users", NULL, NULL, GW_PERIOD_MINUTE, H0), 600, 300, 1);
    ck_set(must_find("users", "k", "x", GW_PERIOD_MINUTE, H0), 300, 300, 1);
    ck_set(must_find("users", NULL, NULL, GW_PERIOD_MINUTE, H0 + 60), 304,
           302, 1);
    ck_set(must_find("users", NULL, NULL, GW_PERIOD_HOUR, H0), 904, 502, 1);
    ck_set(must_find("users", NULL, NULL, GW_PERIOD_DAY, DAY0), 904, 502, 1);
    ck_set(must_find("users", "k", "x", GW_PERIOD_DAY, DAY0), 300, 300, 1);
}
END_TEST

START_TEST(test_set_hll)
{
    /* 1000 a minute (exact), 3000 in the hour (a HyperLogLog); one
     * request crosses GW_SET_EXACT_MAX in one cell (members 1000..1099
     * at minute 3 on top of its first 1000). */
    send_members("uv", 0, 1000, 0, "");
    send_members("uv", 1000, 2000, 1, "");
    merge(MDH);
    send_members("uv", 2000, 3000, 2, "");
    send_members("uv", 0, 1100, 3, "");
    merge(MDH);
    ck_set(must_find("uv", NULL, NULL, GW_PERIOD_MINUTE, H0), 1000, 1000, 1);
    ck_set(must_find("uv", NULL, NULL, GW_PERIOD_MINUTE, H0 + 120), 1000,
           1000, 1);
    ck_set(must_find("uv", NULL, NULL, GW_PERIOD_MINUTE, H0 + 180), 1100,
           1100, 0);
    ck_set(must_find("uv", NULL, NULL, GW_PERIOD_HOUR, H0), 4100, 3000, 0);
    ck_set(must_find("uv", NULL, NULL, GW_PERIOD_DAY, DAY0), 4100, 3000, 0);
}
END_TEST

START_TEST(test_set_refusals)
{
    char json[600];

    BAD("{\"n\": \"s\", \"a\": \"set\"}", GW__REJECT_INVALID,
        "a set event needs \"v\", the member to count (a string)");
    BAD("{\"n\": \"s\", \"a\": \"set\", \"v\": true}", GW__REJECT_INVALID,
        "\"v\" of a set event must be a string (the member) or a number");
    BAD("{\"n\": \"s\", \"a\": \"set\", \"value\": [1]}", GW__REJECT_INVALID,
        "\"value\" of a set event must be a string (the member) or a "
        "number");
    BAD("{\"n\": \"s\", \"a\": \"set\", \"v\": \"\"}", GW__REJECT_LIMIT,
        "\"v\" of a set event must be 1 to 255 bytes, not 0");
    snprintf(json, sizeof(json),
             "[{\"n\": \"s\", \"a\": \"set\", \"v\": \"a\"}, {\"n\": \"s\", "
             "\"a\": \"set\", \"v\": \"%0256d\"}]",
             0);
    BAD(json, GW__REJECT_LIMIT,
        "event 2: \"v\" of a set event must be 1 to 255 bytes, not 256");
    snprintf(json, sizeof(json),
             "{\"n\": \"s\", \"a\": \"set\", \"v\": \"%0255d\"}", 0);
    IN(json);
    {
        gw_event_t ev = {NULL, "s", GW_ACTION_SET, 0, 0, 1, NULL, 0};
        gw__reject_t why;
        gw_error_t err = {{0}};

        ck_assert_int_eq(gw__ingest_event(ing, "test_project", &ev, &why,
                                          &err),
                         GW_ERR);
        ck_assert_int_eq(why, GW__REJECT_INVALID);
        ck_assert_str_eq(err.msg,
                         "a set event's member is a string \"v\": submit set "
                         "events as JSON (submit_json)");
    }
}
END_TEST

/* ---- the kind rule ---------------------------------------------------- */

static void
kind_rule(void)
{
    long i;

    IN("{\"n\": \"t\", \"a\": \"timing\", \"v\": 3}");
    IN("{\"n\": \"s\", \"a\": \"set\", \"v\": \"x\"}");
    IN("{\"n\": \"c\", \"v\": 3}");
    BAD("{\"n\": \"t\", \"a\": \"avg\", \"v\": 3}", GW__REJECT_KIND,
        "metric \"t\" is a timing; action \"avg\" does not fit it (a metric "
        "keeps the kind of its first event)");
    BAD("{\"n\": \"t\", \"a\": \"set\", \"v\": \"3\"}", GW__REJECT_KIND,
        "metric \"t\" is a timing; action \"set\" does not fit it (a metric "
        "keeps the kind of its first event)");
    BAD("{\"n\": \"s\", \"v\": 3}", GW__REJECT_KIND,
        "metric \"s\" is a set; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    BAD("{\"n\": \"c\", \"a\": \"timing\", \"v\": 3}", GW__REJECT_KIND,
        "metric \"c\" is a counter; action \"timing\" does not fit it (a "
        "metric keeps the kind of its first event)");
    BAD("[{\"n\": \"new\", \"a\": \"timing\"}, {\"n\": \"new\", \"a\": "
        "\"avg\", \"ts\": 1392450000}]",
        GW__REJECT_KIND,
        "event 2: metric \"new\" is a timing; action \"avg\" does not fit it "
        "(a metric keeps the kind of its first event)");
    /* The exception: timing on an avg metric is avg (a statsd timer of a
     * metric that was avg stays avg), in the group the table has, in a
     * new minute (a group made for it) and with filters; avg first in
     * the same request too. */
    IN("{\"n\": \"a\", \"a\": \"avg\", \"v\": 1, \"ts\": 1392451205}");
    IN("{\"n\": \"a\", \"a\": \"timing\", \"v\": 3, \"ts\": 1392451205}");
    IN("{\"n\": \"a\", \"a\": \"timing\", \"v\": 5, \"ts\": 1392451265, "
       "\"f\": {\"h\": \"x\"}}");
    IN("[{\"n\": \"b\", \"a\": \"avg\", \"v\": 2}, {\"n\": \"b\", \"a\": "
       "\"timing\", \"v\": 4, \"ts\": 1392451205, \"f\": {\"h\": \"y\"}}]");
    BAD("[{\"n\": \"b2\", \"a\": \"timing\", \"v\": 2}, {\"n\": \"b2\", "
        "\"a\": \"avg\", \"v\": 4}]",
        GW__REJECT_KIND,
        "event 2: metric \"b2\" is a timing; action \"avg\" does not fit it "
        "(a metric keeps the kind of its first event)");
    ck_assert_int_eq(gw__ingest_set_kind(ing, "test_project", "old",
                                         GW_KIND_AVG),
                     GW_OK);
    IN("{\"n\": \"old\", \"a\": \"timing\", \"v\": 7, \"ts\": 1392451205, "
       "\"f\": {\"h\": [\"x\", \"y\"]}}");
    merge(MDH);
    ck_assert_int_eq(
        gw__batch_view(batch)
            ->deltas[must_find("t", NULL, NULL, GW_PERIOD_DAY, DAY0)]
            .kind,
        GW_KIND_TIMING);
    i = must_find("a", NULL, NULL, GW_PERIOD_HOUR, H0);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].kind, GW_KIND_AVG);
    ck_assert_double_eq(gw__batch_view(batch)->deltas[i].sum, 9);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].count, 3);
    ck_assert_ptr_null(gw__batch_view(batch)->data[i].timing);
    i = must_find("a", "h", "x", GW_PERIOD_MINUTE, H0 + 60);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].kind, GW_KIND_AVG);
    ck_assert_double_eq(gw__batch_view(batch)->deltas[i].sum, 5);
    i = must_find("b", "h", "y", GW_PERIOD_DAY, DAY0);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].kind, GW_KIND_AVG);
    ck_assert_double_eq(gw__batch_view(batch)->deltas[i].sum, 4);
    i = must_find("old", "h", "y", GW_PERIOD_DAY, DAY0);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].kind, GW_KIND_AVG);
    ck_assert_double_eq(gw__batch_view(batch)->deltas[i].sum, 7);
    ck_assert_int_eq(gw__batch_view(batch)->deltas[i].count, 1);
    ck_assert_int_lt(find("new", NULL, NULL, GW_PERIOD_DAY, DAY0), 0);
    ck_assert_int_lt(find("b2", NULL, NULL, GW_PERIOD_DAY, DAY0), 0);
    /* In the next table too, whatever the loop has seen. */
    IN("{\"n\": \"old\", \"a\": \"timing\", \"v\": 1}");
    BAD("{\"n\": \"t\", \"a\": \"avg\", \"v\": 3}", GW__REJECT_KIND,
        "metric \"t\" is a timing; action \"avg\" does not fit it (a metric "
        "keeps the kind of its first event)");
}

START_TEST(test_kind_rule)
{
    kind_rule();
}
END_TEST

START_TEST(test_kind_rule_shared)
{
    use_registry();
    kind_rule();
}
END_TEST

/* ---- admission: the storage's kinds ----------------------------------- */

/* A fresh ingest (sharing a fresh registry if shared) for a storage
 * "name" that keeps kinds, set as core/daemon.c does: on loop 0's ingest
 * before it shares. */
static void
fresh_kinds(int shared, uint32_t kinds, const char *name)
{
    gw__ingest_free(ing);
    gw__ingest_free(registry);
    registry = NULL;
    ing = gw__ingest_new(&limits, fake_now);
    gw__ingest_set_storage_kinds(ing, kinds, name);
    if (shared) {
        registry = gw__ingest_new(&limits, fake_now);
        gw__ingest_share(ing, registry);
    }
}

static void
unsupported(int shared)
{
    gw_event_t ev = {NULL, "t", GW_ACTION_TIMING, 0, 0, 3, NULL, 0};
    gw__reject_t why;
    gw_error_t err = {{0}};

    fresh_kinds(shared, 0, "mem");
    ck_assert_int_eq(gw__ingest_set_kind(ing, "test_project", "lat",
                                         GW_KIND_AVG),
                     GW_OK);
    BAD("{\"n\": \"t\", \"a\": \"timing\", \"v\": 3}",
        GW__REJECT_UNKEPT,
        "metric \"t\" is a timing metric, which the storage \"mem\" does not "
        "keep (its plugin does not declare them)");
    BAD("[{\"n\": \"c\"}, {\"n\": \"s\", \"a\": \"set\", \"v\": \"x\"}]",
        GW__REJECT_UNKEPT,
        "event 2: metric \"s\" is a set metric, which the storage \"mem\" "
        "does not keep (its plugin does not declare them)");
    ck_assert_int_eq(gw__ingest_event(ing, "test_project", &ev, &why, &err),
                     GW_ERR);
    ck_assert_int_eq(why, GW__REJECT_UNKEPT);
    ck_assert_str_eq(err.msg,
                     "metric \"t\" is a timing metric, which the storage "
                     "\"mem\" does not keep (its plugin does not declare "
                     "them)");
    ck_assert_str_eq(gw__reject_name(why), "unsupported_kind");
    /* Timing on an avg metric is avg: kept. */
    IN("{\"n\": \"lat\", \"a\": \"timing\", \"v\": 3}");
    /* The refused metric got no kind: it may still be a counter. */
    IN("{\"n\": \"t\", \"v\": 3}");
    merge(MDH);
    ck_assert_int_eq(gw__batch_view(batch)
                         ->deltas[must_find("lat", NULL, NULL,
                                            GW_PERIOD_DAY, DAY0)]
                         .kind,
                     GW_KIND_AVG);
    ck_assert_ptr_null(gw__batch_view(batch)->data);

    /* A storage that keeps timing but not sets. */
    fresh_kinds(shared, GW_KIND_BIT(GW_KIND_TIMING), "redis");
    IN("{\"n\": \"t2\", \"a\": \"timing\", \"v\": 3}");
    BAD("{\"n\": \"s\", \"a\": \"set\", \"v\": \"x\"}",
        GW__REJECT_UNKEPT,
        "metric \"s\" is a set metric, which the storage \"redis\" does not "
        "keep (its plugin does not declare them)");
    fresh_kinds(shared,
                GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET),
                "redis");
    IN("{\"n\": \"s\", \"a\": \"set\", \"v\": \"x\"}");
}

START_TEST(test_unsupported_kind)
{
    unsupported(0);
}
END_TEST

START_TEST(test_unsupported_kind_shared)
{
    unsupported(1);
}
END_TEST

/* ---- out of memory ---------------------------------------------------- */

#define NOMEM_MSG "out of memory: event refused, send it again later"

static char big[65536];

/* The table before each request: a timing metric with filter series,
 * a set at 1020 members (the request takes it past GW_SET_EXACT_MAX), an
 * avg metric. */
static void
oom_fresh(int shared)
{
    size_t n;
    int i;

    gw__ingest_alloc_fail_after(-1);
    gw__ingest_free(ing);
    gw__ingest_free(registry);
    registry = NULL;
    ing = gw__ingest_new(&limits, fake_now);
    if (shared) {
        registry = gw__ingest_new(&limits, fake_now);
        gw__ingest_share(ing, registry);
    }
    IN("[{\"n\": \"lat\", \"a\": \"timing\", \"v\": 10, \"f\": {\"h\": "
       "\"a\"}}, {\"n\": \"lat\", \"a\": \"timing\", \"v\": -3}, "
       "{\"n\": \"avg\", \"a\": \"avg\", \"v\": 2}]");
    n = (size_t) snprintf(big, sizeof(big), "[");
    for (i = 0; i < 1020; i++)
        n += (size_t) snprintf(big + n, sizeof(big) - n,
                               "%s{\"n\": \"uv\", \"a\": \"set\", \"v\": "
                               "\"m%d\", \"f\": {\"k\": \"x\"}}",
                               i ? ", " : "", i);
    snprintf(big + n, sizeof(big) - n, "]");
    IN(big);
}

static int
line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The batch's deltas with their sketches, one sorted line each. */
static char *
dump(gw__batch_t *b)
{
    const gw_batch_t *v = gw__batch_view(b);
    char **lines = calloc(v->ndeltas + 1, sizeof(*lines));
    size_t i, len = 1, n;
    char *out;

    for (i = 0; i < v->ndeltas; i++) {
        const gw_delta_t *d = &v->deltas[i];

        lines[i] = malloc(1000);
        n = (size_t) snprintf(
            lines[i], 1000, "%s|%s|%s|%d|%lld|%d|%.17g|%lld",
            d->metric, d->filter_name ? d->filter_name : "-",
            d->filter_value ? d->filter_value : "-", (int) d->period,
            (long long) d->bucket, (int) d->kind, d->sum,
            (long long) d->count);
        if (d->kind == GW_KIND_TIMING) {
            const gw_timing_t *t = v->data[i].timing;

            n += (size_t) snprintf(lines[i] + n, 1000 - n,
                                   "|%g|%g|%llu|%zu|%zu|%g|%g", t->min,
                                   t->max, (unsigned long long) t->zero,
                                   t->npos, t->nneg,
                                   gw_timing_quantile(t, 0.5),
                                   gw_timing_quantile(t, 0.99));
        } else if (d->kind == GW_KIND_SET) {
            n += (size_t) snprintf(lines[i] + n, 1000 - n, "|%d|%g",
                                   v->data[i].set->registers != NULL,
                                   gw_set_count(v->data[i].set));
        }
        snprintf(lines[i] + n, 1000 - n, "\n");
        len += strlen(lines[i]);
    }
    qsort(lines, v->ndeltas, sizeof(*lines), line_cmp);
    out = calloc(1, len);
    for (i = 0; i < v->ndeltas; i++) {
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

static char *
take(uint64_t *events)
{
    gw__table_t *t = gw__ingest_swap(ing);
    gw__batch_t *b = gw__batch_new("oom");
    char *s;

    ck_assert_ptr_nonnull(t);
    *events = gw__table_events(t);
    gw__batch_add_table(b, t, MINUTE_ONLY, NULL);
    s = dump(b);
    gw__table_free(t);
    gw__batch_free(b);
    return s;
}

static int
submit(const char *json, gw__reject_t *why, gw_error_t *err)
{
    static const gw_filter_t f[] = {{"h", "a"}, {"h", "new"}};
    gw_event_t ev = {NULL, "lat", GW_ACTION_TIMING, 0, 0, 123.5, f, 2};

    if (json == NULL)
        return gw__ingest_event(ing, "test_project", &ev, why, err);
    return gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT, json,
                           strlen(json), 1, NULL, why, err);
}

START_TEST(test_oom_every_allocation)
{
    const char *reqs[] = {
        /* Timing: new bins in existing cells, new filter series, a new
         * metric, a negative value, one request adding to a cell many
         * times. */
        "[{\"n\": \"lat\", \"a\": \"timing\", \"v\": 11, \"f\": {\"h\": "
        "[\"a\", \"b\"]}}, {\"n\": \"lat\", \"a\": \"timing\", \"v\": 12.5},"
        " {\"n\": \"lat\", \"a\": \"timing\", \"v\": -700, \"f\": {\"h\": "
        "\"a\"}}, {\"n\": \"lat2\", \"a\": \"timing\", \"v\": 1e-20},"
        " {\"n\": \"lat\", \"a\": \"timing\", \"v\": 9000}]",
        /* The set past 1024 members in one request (its registers), a
         * member it has, a new set with a filter. */
        "[{\"n\": \"uv\", \"a\": \"set\", \"v\": \"m1\", \"f\": {\"k\": "
        "\"x\"}}, {\"n\": \"uv\", \"a\": \"set\", \"v\": \"n1\", \"f\": "
        "{\"k\": \"x\"}}, {\"n\": \"uv\", \"a\": \"set\", \"v\": \"n2\"},"
        " {\"n\": \"uv\", \"a\": \"set\", \"v\": \"n3\", \"f\": {\"k\": "
        "\"x\"}}, {\"n\": \"uv\", \"a\": \"set\", \"v\": \"n4\"},"
        " {\"n\": \"uv\", \"a\": \"set\", \"v\": \"n5\", \"f\": {\"k\": "
        "[\"x\", \"y\"]}}, {\"n\": \"uv2\", \"a\": \"set\", \"v\": 7}]",
        /* Timing on avg: the new group made as timing, then avg. */
        "[{\"n\": \"avg\", \"a\": \"timing\", \"v\": 5, \"ts\": 1392450000, "
        "\"f\": {\"z\": \"1\"}}, {\"n\": \"lat\", \"a\": \"timing\", \"v\": "
        "3, \"ts\": 1392450000}]",
        NULL, /* a structured timing event */
    };
    size_t i;
    int shared;
    long k;

    for (shared = 0; shared <= 1; shared++) {
        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
            gw__reject_t why = GW__REJECT_NONE;
            gw_error_t err = {{0}};
            uint64_t events, got_events;
            char *want, *got;
            int fired = 1;

            oom_fresh(shared);
            ck_assert_int_eq(submit(reqs[i], &why, &err), GW_OK);
            want = take(&events);
            for (k = 1; fired; k++) {
                size_t keys;
                int rc;

                oom_fresh(shared);
                keys = gw__ingest_pending(ing);
                gw__ingest_alloc_fail_after(k - 1);
                rc = submit(reqs[i], &why, &err);
                fired = gw__ingest_alloc_fail_after(-1) < 0;
                if (!fired) {
                    ck_assert_msg(rc == GW_OK, "%s", err.msg);
                } else if (rc != GW_OK) {
                    ck_assert_msg(why == GW__REJECT_NOMEM,
                                  "request %zu allocation %ld: %s: %s", i, k,
                                  gw__reject_name(why), err.msg);
                    ck_assert_str_eq(err.msg, NOMEM_MSG);
                    ck_assert_uint_eq(gw__ingest_pending(ing), keys);
                    ck_assert_int_eq(submit(reqs[i], &why, &err), GW_OK);
                }
                got = take(&got_events);
                ck_assert_uint_eq(got_events, events);
                ck_assert_msg(strcmp(got, want) == 0,
                              "request %zu shared %d allocation %ld:\n%s\n"
                              "want\n%s",
                              i, shared, k, got, want);
                free(got);
            }
            ck_assert_msg(k > 2, "request %zu allocates nothing", i);
            free(want);
        }
    }
}
END_TEST

/* Merging a table of timing and set groups when allocation k fails: each
 * group whole or not at all. */
START_TEST(test_oom_batch_merge)
{
    gw__table_t *t;
    gw__batch_t *ref = gw__batch_new("ref");
    const gw_batch_t *rv, *bv;
    char json[256], m[8];
    uint64_t dropped, lost;
    int i, g, fired = 1;
    long k;
    size_t j;

    for (i = 0; i < 20; i++) {
        snprintf(json, sizeof(json),
                 "[{\"n\": \"t%02d\", \"a\": \"timing\", \"v\": %d, \"f\": "
                 "{\"a\": \"x%d\"}}, {\"n\": \"s%02d\", \"a\": \"set\", "
                 "\"v\": \"m%d\", \"f\": {\"b\": [\"y\", \"z\"]}}]",
                 i, i + 1, i, i, i);
        IN(json);
    }
    t = gw__ingest_swap(ing);
    gw__batch_add_table(ref, t, MDH, NULL);
    rv = gw__batch_view(ref);
    for (k = 1; fired; k++) {
        gw__batch_free(batch);
        batch = gw__batch_new("node-1:7");
        gw__ingest_alloc_fail_after(k - 1);
        gw__batch_add_table(batch, t, MDH, &dropped);
        fired = gw__ingest_alloc_fail_after(-1) < 0;
        bv = gw__batch_view(batch);
        lost = 0;
        for (g = 0; g < 40; g++) {
            int have = -1;

            snprintf(m, sizeof(m), "%c%02d", g < 20 ? 't' : 's', g % 20);
            for (j = 0; j < rv->ndeltas; j++) {
                const gw_delta_t *r = &rv->deltas[j];
                long x;

                if (strcmp(r->metric, m) != 0)
                    continue;
                x = find(m, r->filter_name, r->filter_value, r->period,
                         r->bucket);
                ck_assert_msg(have < 0 || have == (x >= 0),
                              "group %s is split", m);
                have = x >= 0;
                if (x < 0)
                    continue;
                ck_assert_int_eq(bv->deltas[x].count, r->count);
                if (r->kind == GW_KIND_TIMING)
                    ck_assert_uint_eq(gw_timing_total(bv->data[x].timing),
                                      (uint64_t) r->count);
                else
                    ck_assert_double_eq(gw_set_count(bv->data[x].set), 1);
            }
            lost += have == 0 ? (uint64_t) 1 : 0;
        }
        ck_assert_uint_eq(dropped, lost * 1);
        ck_assert_msg(!fired || dropped > 0, "allocation %ld failed", k);
        ck_assert_uint_eq(gw__batch_events(batch), 40 - lost);
    }
    ck_assert_int_gt(k, 2);
    gw__table_free(t);
    gw__batch_free(ref);
}
END_TEST

static Suite *
kinds_suite(void)
{
    Suite *s = suite_create("kinds");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timing_periods);
    tcase_add_test(tc, test_timing_signs);
    tcase_add_test(tc, test_no_data_without_sketches);
    tcase_add_test(tc, test_free_a_large_batch);
    tcase_add_test(tc, test_set_exact_two_tables);
    tcase_add_test(tc, test_set_hll);
    tcase_add_test(tc, test_set_refusals);
    tcase_add_test(tc, test_kind_rule);
    tcase_add_test(tc, test_kind_rule_shared);
    tcase_add_test(tc, test_unsupported_kind);
    tcase_add_test(tc, test_unsupported_kind_shared);
    suite_add_tcase(s, tc);
    tc = tcase_create("out of memory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_oom_every_allocation);
    tcase_add_test(tc, test_oom_batch_merge);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(kinds_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
