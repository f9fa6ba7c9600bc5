/*
 * tests/ingest/test_ingest.c: events in, aggregated series out
 * (ingest/ingest.c and ingest/event.c).
 *
 * Each test feeds JSON (or a gw_event_t) to a fresh gw__ingest_t with a
 * fake clock, then swaps the table out and expands it into a batch of
 * minute deltas to see exactly what was aggregated: every alias and
 * default, every refusal with its exact message and reason, the four
 * actions, the kind rule, MAX_SERIES, filters, limits at limit - 1, limit
 * and limit + 1, and batches being all or nothing.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define T 1392454739        /* Sat 2014-02-15 08:58:59 UTC */
#define M 1392454680        /* its minute */
#define MINUTE_ONLY (1u << GW_PERIOD_MINUTE)

static double now_value;
static gw__ingest_t *ing;
static gw__batch_t *batch;
/* INGEST_LOOPS > 1: the registry ing shares, and a second loop's state. */
static gw__ingest_t *registry, *other;

static double
fake_now(void)
{
    return now_value;
}

static gw__limits_t
default_limits(void)
{
    gw__limits_t l;

    l.max_event_bytes = 65536;
    l.max_filters = 32;
    l.max_filter_values = 64;
    l.max_name_bytes = 255;
    l.max_batch_events = 10000;
    l.max_series = 100000;
    l.max_series_per_metric = 10000;
    l.max_values_per_filter = 1000;
    l.max_filters_per_metric = 64;
    l.max_pending_series = 1000000;
    return l;
}

/* Small limits, to test them at limit - 1, limit and limit + 1. */
static gw__limits_t
small_limits(void)
{
    gw__limits_t l = default_limits();

    l.max_event_bytes = 100;
    l.max_filters = 3;
    l.max_filter_values = 2;
    l.max_name_bytes = 8;
    l.max_batch_events = 3;
    l.max_series = 4;
    return l;
}

static void
setup_with(gw__limits_t l)
{
    now_value = T + 0.25;
    ing = gw__ingest_new(&l, fake_now);
    batch = NULL;
}

/* small_limits for a test of other limits than MAX_SERIES, which counts
 * filter series too: ing afresh with room for 100 series. */
static void
small_with_room(void)
{
    gw__limits_t l = small_limits();

    l.max_series = 100;
    gw__ingest_free(ing);
    ing = gw__ingest_new(&l, fake_now);
}

static void
setup(void)
{
    setup_with(default_limits());
}

static void
setup_small(void)
{
    setup_with(small_limits());
}

static void
teardown(void)
{
    gw__ingest_free(ing);
    gw__batch_free(batch);
    gw__ingest_free(other);
    gw__ingest_free(registry);
    other = registry = NULL;
}

/* The same tests with ing sharing a registry, as each loop's does when
 * INGEST_LOOPS > 1; other is a second loop's ingest sharing it too. */
static void
share_with(gw__limits_t l)
{
    registry = gw__ingest_new(&l, fake_now);
    other = gw__ingest_new(&l, fake_now);
    gw__ingest_share(ing, registry);
    gw__ingest_share(other, registry);
}

static void
setup_shared(void)
{
    setup();
    share_with(default_limits());
}

static void
setup_shared_small(void)
{
    setup_small();
    share_with(small_limits());
}

static int
submit(const char *json, gw_action_t dflt, int allow_batch, size_t *n,
       gw__reject_t *r, gw_error_t *err)
{
    return gw__ingest_json(ing, "test_project", dflt, json, strlen(json),
                           allow_batch, n, r, err);
}

/* json must be accepted. */
#define OK(json) ok_at(__LINE__, (json), GW_ACTION_DEFAULT)
#define OK_AS(json, dflt) ok_at(__LINE__, (json), (dflt))
static void
ok_at(int line, const char *json, gw_action_t dflt)
{
    gw_error_t err = {{0}};
    gw__reject_t r = GW__REJECT_LIMIT;
    size_t n = 99;

    ck_assert_msg(submit(json, dflt, 1, &n, &r, &err) == GW_OK,
                  "line %d: %s refused: %s", line, json, err.msg);
    ck_assert_int_eq(r, GW__REJECT_NONE);
}

/* json must be refused for reason why with exactly msg. */
#define BAD(json, why, msg) bad_at(__LINE__, (json), 1, (why), (msg))
#define BAD1(json, why, msg) bad_at(__LINE__, (json), 0, (why), (msg))
static void
bad_at(int line, const char *json, int allow_batch, gw__reject_t why,
       const char *msg)
{
    gw_error_t err = {{0}};
    gw__reject_t r = GW__REJECT_NONE;
    size_t n = 99;

    ck_assert_msg(submit(json, GW_ACTION_DEFAULT, allow_batch, &n, &r,
                         &err) == GW_ERR,
                  "line %d: %s accepted", line, json);
    ck_assert_msg(strcmp(err.msg, msg) == 0,
                  "line %d: message\n  got:  %s\n  want: %s", line, err.msg,
                  msg);
    ck_assert_msg(r == why, "line %d: reason %s, want %s", line,
                  gw__reject_name(r), gw__reject_name(why));
}

/* Swaps the table out into a new batch expanded into periods. */
static const gw_batch_t *
flush(unsigned periods)
{
    gw__table_t *t = gw__ingest_swap(ing);

    gw__batch_free(batch);
    batch = gw__batch_new("test");
    if (t != NULL) {
        gw__batch_add_table(batch, t, periods, NULL);
        gw__table_free(t);
    }
    return gw__batch_view(batch);
}

static int
str_eq_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The one delta of that key, or NULL. */
static const gw_delta_t *
find(const gw_batch_t *b, const char *metric, const char *fname,
     const char *fvalue, gw_period_t p, int64_t bucket)
{
    const gw_delta_t *found = NULL;
    size_t i;

    for (i = 0; i < b->ndeltas; i++) {
        const gw_delta_t *d = &b->deltas[i];

        if (strcmp(d->metric, metric) == 0 &&
            str_eq_null(d->filter_name, fname) &&
            str_eq_null(d->filter_value, fvalue) && d->period == p &&
            d->bucket == bucket) {
            ck_assert_msg(found == NULL, "two deltas for one key");
            found = d;
        }
    }
    return found;
}

/* The minute delta of (metric, filter) at minute M; must exist. */
static const gw_delta_t *
cell_at(int line, const gw_batch_t *b, const char *metric, const char *fname,
        const char *fvalue, int64_t minute)
{
    const gw_delta_t *d = find(b, metric, fname, fvalue, GW_PERIOD_MINUTE,
                               minute);

    ck_assert_msg(d != NULL, "line %d: no delta for %s %s=%s", line, metric,
                  fname ? fname : "-", fvalue ? fvalue : "-");
    ck_assert_str_eq(d->project, "test_project");
    return d;
}
#define CELL(b, m, fn, fv) cell_at(__LINE__, (b), (m), (fn), (fv), M)

#define ck_cell(b, m, fn, fv, kind_, sum_, count_)                       \
    do {                                                                 \
        const gw_delta_t *d_ = CELL((b), (m), (fn), (fv));               \
        ck_assert_int_eq(d_->kind, (kind_));                             \
        ck_assert_double_eq(d_->sum, (sum_));                            \
        ck_assert_int_eq(d_->count, (count_));                           \
    } while (0)

/* ---- aliases and defaults ------------------------------------------- */

START_TEST(test_short_keys)
{
    const gw_batch_t *b;

    OK("{\"a\": \"incr\", \"p\": \"test_project\", \"n\": \"orders\", "
       "\"ts\": 1392454739, \"v\": 2, \"f\": {\"status\": \"paid\"}}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 2);
    ck_assert_str_eq(b->id, "test");
    ck_cell(b, "orders", NULL, NULL, GW_KIND_COUNTER, 2, 1);
    ck_cell(b, "orders", "status", "paid", GW_KIND_COUNTER, 2, 1);
}
END_TEST

START_TEST(test_long_keys)
{
    const gw_batch_t *b;

    OK("{\"action\": \"avg\", \"project\": \"test_project\", "
       "\"name\": \"latency\", \"timestamp\": 1392454739, \"value\": 35, "
       "\"filters\": {\"route\": \"/a\"}}");
    OK("{\"type\": \"gauge\", \"name\": \"temp\", \"value\": 21.5, "
       "\"timestamp\": \"2014-02-15T08:58:59\"}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 3);
    ck_cell(b, "latency", NULL, NULL, GW_KIND_AVG, 35, 1);
    ck_cell(b, "latency", "route", "/a", GW_KIND_AVG, 35, 1);
    ck_cell(b, "temp", NULL, NULL, GW_KIND_GAUGE, 21.5, 1);
    ck_assert_double_eq(CELL(b, "temp", NULL, NULL)->ts, T);
}
END_TEST

START_TEST(test_short_keys_win)
{
    const gw_batch_t *b;

    OK("{\"action\": \"incr\", \"a\": \"decr\", \"type\": \"avg\", "
       "\"name\": \"long\", \"n\": \"short\", \"value\": 7, \"v\": 3, "
       "\"timestamp\": 0, \"ts\": 1392454739, "
       "\"filters\": {\"x\": \"1\"}, \"f\": {\"y\": \"2\"}, "
       "\"project\": \"other\", \"p\": \"test_project\"}");
    /* "action" wins over "type". */
    OK("{\"type\": \"avg\", \"action\": \"incr\", \"n\": \"c2\", "
       "\"ts\": 1392454739}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 3);
    ck_cell(b, "short", NULL, NULL, GW_KIND_COUNTER, -3, 1);
    ck_cell(b, "short", "y", "2", GW_KIND_COUNTER, -3, 1);
    ck_cell(b, "c2", NULL, NULL, GW_KIND_COUNTER, 1, 1);
}
END_TEST

START_TEST(test_null_is_absent)
{
    const gw_batch_t *b;

    /* A null short key gives way to the long one, or to the default. */
    OK("{\"n\": null, \"name\": \"orders\", \"v\": null, \"value\": 4, "
       "\"a\": null, \"ts\": null, \"p\": null, \"f\": null}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 1);
    ck_cell(b, "orders", NULL, NULL, GW_KIND_COUNTER, 4, 1);
}
END_TEST

START_TEST(test_defaults)
{
    const gw_batch_t *b;

    /* No a: incr; no p: the authenticated project; no ts: the clock;
     * no v: 1. Unknown keys are ignored. */
    OK("{\"n\": \"visits\", \"auth\": \"x\", \"random\": 5, \"N\": \"no\"}");
    OK("{\"n\": \"visits\"}");
    /* A given 0 stays 0 (the original made it 1). */
    OK("{\"n\": \"zero\", \"v\": 0}");
    OK("{\"n\": \"zero\", \"v\": 0.0}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 2);
    ck_cell(b, "visits", NULL, NULL, GW_KIND_COUNTER, 2, 2);
    ck_cell(b, "zero", NULL, NULL, GW_KIND_COUNTER, 0, 2);
}
END_TEST

START_TEST(test_default_action_argument)
{
    const gw_batch_t *b;

    /* The URL's action applies to events without "a"... */
    OK_AS("{\"n\": \"lat\", \"v\": 10}", GW_ACTION_AVG);
    OK_AS("{\"n\": \"lat\", \"v\": 20}", GW_ACTION_AVG);
    OK_AS("{\"n\": \"stock\", \"v\": 5}", GW_ACTION_DECR);
    /* ...and an event's own "a" wins over it. */
    OK_AS("{\"n\": \"stock\", \"v\": 2, \"a\": \"incr\"}", GW_ACTION_DECR);
    b = flush(MINUTE_ONLY);
    ck_cell(b, "lat", NULL, NULL, GW_KIND_AVG, 30, 2);
    ck_cell(b, "stock", NULL, NULL, GW_KIND_COUNTER, -3, 2);
}
END_TEST

START_TEST(test_clock_default_ts)
{
    const gw_batch_t *b;

    now_value = 1351742702.75; /* 2012-11-01 04:05:02.75 */
    OK("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 3}");
    b = flush(MINUTE_ONLY);
    ck_assert_ptr_nonnull(find(b, "g", NULL, NULL, GW_PERIOD_MINUTE,
                               1351742700));
    ck_assert_double_eq(find(b, "g", NULL, NULL, GW_PERIOD_MINUTE,
                             1351742700)->ts,
                        1351742702.75);
}
END_TEST

START_TEST(test_ts_forms)
{
    const gw_batch_t *b;

    OK("{\"n\": \"int\", \"ts\": 1392454739}");
    OK("{\"n\": \"frac\", \"ts\": 1392454739.9}");
    OK("{\"n\": \"frac\", \"ts\": 1392454680.0}");
    OK("{\"n\": \"iso\", \"ts\": \"2014-02-15T08:58:00\"}");
    OK("{\"n\": \"iso\", \"timestamp\": \"2014-02-15T08:58:59\"}");
    OK("{\"n\": \"first\", \"ts\": 0}");
    OK("{\"n\": \"last\", \"ts\": 253402300799}");
    OK("{\"n\": \"last\", \"ts\": 253402300799.5}");
    OK("{\"n\": \"next\", \"ts\": 1392454740}");
    b = flush(MINUTE_ONLY);
    ck_cell(b, "int", NULL, NULL, GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "frac", NULL, NULL, GW_KIND_COUNTER, 2, 2);
    ck_cell(b, "iso", NULL, NULL, GW_KIND_COUNTER, 2, 2);
    ck_assert_int_eq(cell_at(__LINE__, b, "first", NULL, NULL, 0)->count, 1);
    ck_assert_int_eq(
        cell_at(__LINE__, b, "last", NULL, NULL, 253402300740)->count, 2);
    ck_assert_int_eq(cell_at(__LINE__, b, "next", NULL, NULL, M + 60)->count,
                     1);
    ck_assert_uint_eq(b->ndeltas, 6);
}
END_TEST

/* ---- refusals ------------------------------------------------------------ */

START_TEST(test_reject_name)
{
    char json[400], name[300];

    BAD("{\"v\": 1}", GW__REJECT_INVALID, "\"n\" (metric name) is required");
    BAD("{\"n\": null}", GW__REJECT_INVALID,
        "\"n\" (metric name) is required");
    BAD("{\"n\": 5}", GW__REJECT_INVALID,
        "\"n\" (metric name) must be a string");
    BAD("{\"name\": [\"a\"]}", GW__REJECT_INVALID,
        "\"name\" (metric name) must be a string");
    BAD("{\"n\": \"\"}", GW__REJECT_INVALID,
        "\"n\" (metric name) must not be empty");
    memset(name, 'x', 256);
    name[256] = '\0';
    snprintf(json, sizeof(json), "{\"n\": \"%s\"}", name);
    BAD(json, GW__REJECT_LIMIT,
        "\"n\" (metric name) is 256 bytes; at most 255 are allowed");
    name[255] = '\0';
    snprintf(json, sizeof(json), "{\"n\": \"%s\"}", name);
    OK(json);
    /* UTF-8 is counted in bytes: 128 two-byte characters are 256. */
    strcpy(json, "{\"n\": \"");
    for (int i = 0; i < 128; i++)
        strcat(json, "\xc3\xa9");
    strcat(json, "\"}");
    BAD(json, GW__REJECT_LIMIT,
        "\"n\" (metric name) is 256 bytes; at most 255 are allowed");
}
END_TEST

START_TEST(test_reject_value)
{
    BAD("{\"n\": \"x\", \"v\": \"5\"}", GW__REJECT_INVALID,
        "\"v\" must be a finite number");
    BAD("{\"n\": \"x\", \"v\": true}", GW__REJECT_INVALID,
        "\"v\" must be a finite number");
    BAD("{\"n\": \"x\", \"value\": false}", GW__REJECT_INVALID,
        "\"value\" must be a finite number");
    BAD("{\"n\": \"x\", \"v\": [1]}", GW__REJECT_INVALID,
        "\"v\" must be a finite number");
    BAD("{\"n\": \"x\", \"v\": {}}", GW__REJECT_INVALID,
        "\"v\" must be a finite number");
    /* JSON has no NaN; jansson refuses it. A real too large for a double
     * is out of range (it would be inf), wherever it is. */
    BAD("{\"n\": \"x\", \"v\": NaN}", GW__REJECT_JSON,
        "invalid JSON at line 1 column 19: invalid token near 'NaN'");
    BAD("{\"n\": \"x\", \"v\": 1e400}", GW__REJECT_RANGE,
        "number 1e400 is out of range: |v| must be at most 1e300 (line 1 "
        "column 21)");
    BAD("[{\"n\": \"x\"},\n {\"n\": \"x\", \"v\": -1E+999}]", GW__REJECT_RANGE,
        "number -1E+999 is out of range: |v| must be at most 1e300 (line 2 "
        "column 24)");
    BAD("{\"n\": \"x\", \"f\": {\"k\": 1e309}}", GW__REJECT_RANGE,
        "number 1e309 is out of range: |v| must be at most 1e300 (line 1 "
        "column 27)");
    /* The bound: 1e300 in, the next double above it out (both paths). */
    BAD("{\"n\": \"x\", \"v\": 1.0000000000000002e300}", GW__REJECT_RANGE,
        "\"v\" 1.0000000000000002e300 is out of range: |v| must be at most "
        "1e300");
    BAD("{\"n\": \"x\", \"v\": -1.7976931348623157e308}", GW__REJECT_RANGE,
        "\"v\" -1.7976931348623157e308 is out of range: |v| must be at most "
        "1e300");
    BAD("[{\"n\": \"x\"}, {\"n\": \"x\", \"value\": 2e300}]", GW__REJECT_RANGE,
        "event 2: \"value\" 2e300 is out of range: |v| must be at most "
        "1e300");
}
END_TEST

START_TEST(test_reject_action)
{
    BAD("{\"n\": \"x\", \"a\": \"avgg\"}", GW__REJECT_INVALID,
        "action \"avgg\" is unknown; use incr, decr, avg, gauge, timing or set");
    BAD("{\"n\": \"x\", \"a\": \"INCR\"}", GW__REJECT_INVALID,
        "action \"INCR\" is unknown; use incr, decr, avg, gauge, timing or set");
    BAD("{\"n\": \"x\", \"action\": \"notification\"}", GW__REJECT_INVALID,
        "action \"notification\" is unknown; use incr, decr, avg, gauge, timing or set");
    BAD("{\"n\": \"x\", \"a\": 1}", GW__REJECT_INVALID,
        "\"a\" (action) must be a string: incr, decr, avg, gauge, timing or set");
    BAD("{\"n\": \"x\", \"type\": true}", GW__REJECT_INVALID,
        "\"type\" (action) must be a string: incr, decr, avg, gauge, timing or set");
}
END_TEST

START_TEST(test_reject_project)
{
    BAD("{\"n\": \"x\", \"p\": \"shop\"}", GW__REJECT_PROJECT,
        "project \"shop\" in the event does not match the authenticated "
        "project \"test_project\"");
    BAD("{\"n\": \"x\", \"project\": \"test_projectX\"}", GW__REJECT_PROJECT,
        "project \"test_projectX\" in the event does not match the "
        "authenticated project \"test_project\"");
    BAD("{\"n\": \"x\", \"p\": 7}", GW__REJECT_INVALID,
        "\"p\" (project) must be a string");
    BAD("{\"n\": \"x\", \"p\": \"\"}", GW__REJECT_INVALID,
        "\"p\" (project) must not be empty");
    OK("{\"n\": \"x\", \"p\": \"test_project\"}");
}
END_TEST

START_TEST(test_reject_ts)
{
    BAD("{\"n\": \"x\", \"ts\": -1}", GW__REJECT_INVALID,
        "\"ts\" -1 is out of range; epoch seconds must be from 0 to "
        "253402300799 (9999-12-31T23:59:59 UTC)");
    BAD("{\"n\": \"x\", \"ts\": -0.5}", GW__REJECT_INVALID,
        "\"ts\" -0.5 is out of range; epoch seconds must be from 0 to "
        "253402300799 (9999-12-31T23:59:59 UTC)");
    BAD("{\"n\": \"x\", \"timestamp\": 253402300800}", GW__REJECT_INVALID,
        "\"timestamp\" 253402300800 is out of range; epoch seconds must be "
        "from 0 to 253402300799 (9999-12-31T23:59:59 UTC)");
    BAD("{\"n\": \"x\", \"ts\": 1e300}", GW__REJECT_INVALID,
        "\"ts\" 1e+300 is out of range; epoch seconds must be from 0 to "
        "253402300799 (9999-12-31T23:59:59 UTC)");
    BAD("{\"n\": \"x\", \"ts\": \"2012-02-30T00:00:00\"}", GW__REJECT_INVALID,
        "\"ts\" \"2012-02-30T00:00:00\" is not a valid time; use epoch "
        "seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)");
    BAD("{\"n\": \"x\", \"ts\": \"2012-11-01T04:05:02Z\"}",
        GW__REJECT_INVALID,
        "\"ts\" \"2012-11-01T04:05:02Z\" is not a valid time; use epoch "
        "seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)");
    BAD("{\"n\": \"x\", \"ts\": \"1392454739\"}", GW__REJECT_INVALID,
        "\"ts\" \"1392454739\" is not a valid time; use epoch seconds or "
        "\"YYYY-MM-DDTHH:MM:SS\" (UTC)");
    BAD("{\"n\": \"x\", \"ts\": \"0000-01-01T00:00:00\"}", GW__REJECT_INVALID,
        "\"ts\" -62167219200 is out of range; epoch seconds must be from 0 "
        "to 253402300799 (9999-12-31T23:59:59 UTC)");
    BAD("{\"n\": \"x\", \"ts\": true}", GW__REJECT_INVALID,
        "\"ts\" must be epoch seconds or a \"YYYY-MM-DDTHH:MM:SS\" string "
        "(UTC)");
    BAD("{\"n\": \"x\", \"ts\": {}}", GW__REJECT_INVALID,
        "\"ts\" must be epoch seconds or a \"YYYY-MM-DDTHH:MM:SS\" string "
        "(UTC)");
}
END_TEST

START_TEST(test_reject_json)
{
    size_t n = 0, i;
    gw__reject_t r = GW__REJECT_NONE;
    gw_error_t err;
    char *deep;

    BAD("{\"n\": ", GW__REJECT_JSON,
        "invalid JSON at line 1 column 6: unexpected token near end of file");
    BAD("", GW__REJECT_JSON,
        "invalid JSON at line 1 column 0: '[' or '{' expected near end of "
        "file");
    BAD("5", GW__REJECT_JSON,
        "invalid JSON at line 1 column 1: '[' or '{' expected near '5'");
    BAD("{\"n\": \"a\"} x", GW__REJECT_JSON,
        "invalid JSON at line 1 column 12: end of file expected near 'x'");
    BAD("[{\"n\": \"a\"},\n {\"n\": \"b\"},\n x]", GW__REJECT_JSON,
        "invalid JSON at line 3 column 2: invalid token near 'x'");
    BAD("{\"n\": \"a\\u0000b\"}", GW__REJECT_JSON,
        "invalid JSON at line 1 column 16: \\u0000 is not allowed without "
        "JSON_ALLOW_NUL near '\"a\\u0000b\"'");
    BAD("{\"n\": \"\xff\"}", GW__REJECT_JSON,
        "invalid JSON at line 1 column 7: unable to decode byte 0xff near "
        "'\"'");
    BAD("{\"n\": \"x\", \"v\": 99999999999999999999}", GW__REJECT_JSON,
        "invalid JSON at line 1 column 36: too big integer near "
        "'99999999999999999999'");

    /* 100,000 nested '[': a clean error, not a crash. */
    deep = malloc(100000);
    memset(deep, '[', 100000);
    ck_assert_int_eq(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                     deep, 100000, 1, &n, &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "invalid JSON at line 1 column 2049: maximum "
                              "parsing depth reached near '['");
    ck_assert_int_eq(r, GW__REJECT_JSON);
    ck_assert_uint_eq(n, 1);
    /* The same as one event (no batch allowed): over the size limit. */
    ck_assert_int_eq(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                     deep, 100000, 0, &n, &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "the event is 100000 bytes; at most 65536 are allowed");
    ck_assert_int_eq(r, GW__REJECT_LIMIT);
    /* Deep inside a filter list of an event that is small enough. */
    for (i = 0; i < 3000; i++)
        deep[i] = '[';
    ck_assert_int_eq(gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                                     deep, 3000, 0, &n, &r, &err),
                     GW_ERR);
    ck_assert_int_eq(r, GW__REJECT_JSON);
    free(deep);
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
}
END_TEST

START_TEST(test_reject_filters)
{
    BAD("{\"n\": \"x\", \"f\": {\"status\": null}}", GW__REJECT_INVALID,
        "\"f\".\"status\" is null; a filter value must be a string, number "
        "or boolean");
    BAD("{\"n\": \"x\", \"f\": {\"device\": [\"web\", null]}}",
        GW__REJECT_INVALID,
        "\"f\".\"device\" is null; a filter value must be a string, number "
        "or boolean");
    BAD("{\"n\": \"x\", \"f\": {\"\": \"a\"}}", GW__REJECT_INVALID,
        "\"f\" has an empty filter name");
    BAD("{\"n\": \"x\", \"filters\": {\"\": \"a\"}}", GW__REJECT_INVALID,
        "\"filters\" has an empty filter name");
    BAD("{\"n\": \"x\", \"f\": {\"device\": [[\"web\"]]}}", GW__REJECT_INVALID,
        "\"f\".\"device\" holds a list or object inside a list; a filter "
        "value must be a string, number or boolean");
    BAD("{\"n\": \"x\", \"f\": {\"device\": [{}]}}", GW__REJECT_INVALID,
        "\"f\".\"device\" holds a list or object inside a list; a filter "
        "value must be a string, number or boolean");
    BAD("{\"n\": \"x\", \"f\": {\"device\": {\"a\": 1}}}", GW__REJECT_INVALID,
        "\"f\".\"device\" is an object; a filter value must be a string, "
        "number, boolean or a list of those");
    BAD("{\"n\": \"x\", \"f\": \"status=paid\"}", GW__REJECT_INVALID,
        "\"f\" (filters) must be an object of name: value, or a list of "
        "[name, value] pairs");
    BAD("{\"n\": \"x\", \"f\": 3}", GW__REJECT_INVALID,
        "\"f\" (filters) must be an object of name: value, or a list of "
        "[name, value] pairs");
    BAD("{\"n\": \"x\", \"f\": [[\"a\", \"1\"], [\"b\"]]}", GW__REJECT_INVALID,
        "\"f\" item 2 must be a [name, value] pair with a string name");
    BAD("{\"n\": \"x\", \"f\": [[null, \"1\"]]}", GW__REJECT_INVALID,
        "\"f\" item 1 must be a [name, value] pair with a string name");
    BAD("{\"n\": \"x\", \"f\": [\"a\"]}", GW__REJECT_INVALID,
        "\"f\" item 1 must be a [name, value] pair with a string name");
    BAD("{\"n\": \"x\", \"f\": [[\"a\", \"1\", \"2\"]]}", GW__REJECT_INVALID,
        "\"f\" item 1 must be a [name, value] pair with a string name");
    BAD("{\"n\": \"x\", \"f\": [[\"a\", null]]}", GW__REJECT_INVALID,
        "\"f\".\"a\" is null; a filter value must be a string, number or "
        "boolean");
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
}
END_TEST

START_TEST(test_reject_long_quotes_are_cut)
{
    char json[600], name[300];

    /* A long project name is quoted up to 48 bytes, then "...". */
    memset(name, 'p', 200);
    name[200] = '\0';
    snprintf(json, sizeof(json), "{\"n\": \"x\", \"p\": \"%s\"}", name);
    BAD(json, GW__REJECT_PROJECT,
        "project \"pppppppppppppppppppppppppppppppppppppppppppppppp...\" in "
        "the event does not match the authenticated project "
        "\"test_project\"");
    /* Never in the middle of a UTF-8 character. */
    strcpy(json, "{\"n\": \"x\", \"a\": \"");
    for (int i = 0; i < 30; i++)
        strcat(json, "\xc3\xa9");
    strcat(json, "\"}");
    strcpy(name, "action \"");
    for (int i = 0; i < 24; i++)
        strcat(name, "\xc3\xa9");
    strcat(name, "...\" is unknown; use incr, decr, avg, gauge, timing or set");
    BAD(json, GW__REJECT_INVALID, name);
}
END_TEST

/* ---- actions ------------------------------------------------------------- */

START_TEST(test_incr_decr)
{
    const gw_batch_t *b;

    OK("{\"n\": \"c\", \"ts\": 1392454739, \"v\": 2}");
    OK("{\"n\": \"c\", \"ts\": 1392454739, \"v\": 3.5}");
    OK("{\"n\": \"c\", \"ts\": 1392454739, \"v\": -1}");
    /* decr always subtracts: -|v|. */
    OK("{\"n\": \"c\", \"ts\": 1392454739, \"a\": \"decr\", \"v\": 5}");
    OK("{\"n\": \"c\", \"ts\": 1392454739, \"a\": \"decr\", \"v\": -0.5}");
    OK("{\"n\": \"c\", \"ts\": 1392454739, \"a\": \"decr\"}");
    b = flush(MINUTE_ONLY);
    ck_cell(b, "c", NULL, NULL, GW_KIND_COUNTER, 2 + 3.5 - 1 - 5 - 0.5 - 1,
            6);
    ck_assert_double_eq(CELL(b, "c", NULL, NULL)->ts, 0);
}
END_TEST

START_TEST(test_avg)
{
    const gw_batch_t *b;

    OK("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 10, \"f\": {\"r\": \"a\"}}");
    OK("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 20, \"f\": {\"r\": \"b\"}}");
    OK("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 45, \"f\": {\"r\": \"a\"}}");
    OK("{\"n\": \"lat\", \"a\": \"avg\", \"v\": 0}");
    b = flush(MINUTE_ONLY);
    ck_cell(b, "lat", NULL, NULL, GW_KIND_AVG, 75, 4);
    ck_cell(b, "lat", "r", "a", GW_KIND_AVG, 55, 2);
    ck_cell(b, "lat", "r", "b", GW_KIND_AVG, 20, 1);
}
END_TEST

START_TEST(test_gauge)
{
    const gw_batch_t *b;
    const gw_delta_t *d;

    /* The latest by ts wins, whatever the order of arrival. */
    OK("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 5, \"ts\": 1392454700}");
    OK("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 9, \"ts\": 1392454730.5}");
    OK("{\"n\": \"g\", \"a\": \"gauge\", \"v\": 7, \"ts\": 1392454710}");
    /* Ties: the last received. */
    OK("{\"n\": \"t\", \"a\": \"gauge\", \"v\": 1, \"ts\": 1392454739}");
    OK("{\"n\": \"t\", \"a\": \"gauge\", \"v\": 2, \"ts\": 1392454739}");
    OK("{\"n\": \"t\", \"a\": \"gauge\", \"v\": 3, \"ts\": 1392454739}");
    OK("{\"n\": \"t\", \"a\": \"gauge\", \"v\": 4, \"ts\": 1392454738}");
    /* Negative and zero values are values like any other. */
    OK("{\"n\": \"z\", \"a\": \"gauge\", \"v\": -4, \"ts\": 1392454700}");
    OK("{\"n\": \"z\", \"a\": \"gauge\", \"v\": 0, \"ts\": 1392454701}");
    b = flush(MINUTE_ONLY);
    d = CELL(b, "g", NULL, NULL);
    ck_assert_int_eq(d->kind, GW_KIND_GAUGE);
    ck_assert_double_eq(d->sum, 9);
    ck_assert_double_eq(d->ts, 1392454730.5);
    ck_assert_int_eq(d->count, 3);
    d = CELL(b, "t", NULL, NULL);
    ck_assert_double_eq(d->sum, 3);
    ck_assert_double_eq(d->ts, 1392454739);
    ck_assert_int_eq(d->count, 4);
    d = CELL(b, "z", NULL, NULL);
    ck_assert_double_eq(d->sum, 0);
    ck_assert_int_eq(d->count, 2);
}
END_TEST

/* ---- the kind rule and MAX_SERIES ---------------------------------------- */

START_TEST(test_kind_conflict)
{
    const gw_batch_t *b;

    OK("{\"n\": \"orders\"}");
    OK("{\"n\": \"orders\", \"a\": \"decr\"}");
    BAD("{\"n\": \"orders\", \"a\": \"avg\"}", GW__REJECT_KIND,
        "metric \"orders\" is a counter; action \"avg\" does not fit it (a "
        "metric keeps the kind of its first event)");
    BAD("{\"n\": \"orders\", \"a\": \"gauge\"}", GW__REJECT_KIND,
        "metric \"orders\" is a counter; action \"gauge\" does not fit it (a "
        "metric keeps the kind of its first event)");
    OK("{\"n\": \"lat\", \"a\": \"avg\"}");
    BAD("{\"n\": \"lat\", \"a\": \"incr\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    BAD("{\"n\": \"lat\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    OK("{\"n\": \"temp\", \"a\": \"gauge\"}");
    BAD("{\"n\": \"temp\", \"a\": \"decr\"}", GW__REJECT_KIND,
        "metric \"temp\" is a gauge; action \"decr\" does not fit it (a "
        "metric keeps the kind of its first event)");
    /* The kind outlives a flush. */
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 3);
    BAD("{\"n\": \"orders\", \"a\": \"avg\"}", GW__REJECT_KIND,
        "metric \"orders\" is a counter; action \"avg\" does not fit it (a "
        "metric keeps the kind of its first event)");
    ck_assert_ptr_null(gw__ingest_swap(ing));
}
END_TEST

START_TEST(test_set_kind)
{
    /* Seeded from the storage at start: the rule holds across restarts. */
    gw__ingest_set_kind(ing, "test_project", "lat", GW_KIND_AVG);
    gw__ingest_set_kind(ing, "shop", "orders", GW_KIND_GAUGE);
    BAD("{\"n\": \"lat\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    OK("{\"n\": \"lat\", \"a\": \"avg\"}");
    /* Per project: "orders" of shop is no concern of test_project. */
    OK("{\"n\": \"orders\", \"a\": \"incr\"}");
    ck_assert_int_eq(gw__ingest_json(ing, "shop", GW_ACTION_INCR,
                                     "{\"n\": \"orders\"}", 15, 0, NULL, NULL,
                                     NULL),
                     GW_ERR);
    ck_assert_int_eq(gw__ingest_json(ing, "shop", GW_ACTION_GAUGE,
                                     "{\"n\": \"orders\"}", 15, 0, NULL, NULL,
                                     NULL),
                     GW_OK);
    /* Seeding again replaces the kind. */
    gw__ingest_set_kind(ing, "test_project", "lat", GW_KIND_COUNTER);
    OK("{\"n\": \"lat\"}");
}
END_TEST

START_TEST(test_kind_conflict_inside_batch)
{
    size_t n = 0;
    gw__reject_t r;
    gw_error_t err;
    const gw_batch_t *b;
    const char *json = "[{\"n\": \"new1\"}, {\"n\": \"new2\", \"a\": \"avg\"},"
                       " {\"n\": \"new1\", \"a\": \"gauge\"}]";

    ck_assert_int_eq(submit(json, GW_ACTION_DEFAULT, 1, &n, &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "event 3: metric \"new1\" is a counter; action \"gauge\" "
                     "does not fit it (a metric keeps the kind of its first "
                     "event)");
    ck_assert_int_eq(r, GW__REJECT_KIND);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
    /* Nothing of the refused batch was remembered: new1 and new2 are
     * still free to take any kind. */
    OK("{\"n\": \"new1\", \"a\": \"gauge\"}");
    OK("{\"n\": \"new2\", \"a\": \"incr\"}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 2);
    ck_cell(b, "new1", NULL, NULL, GW_KIND_GAUGE, 1, 1);
    ck_cell(b, "new2", NULL, NULL, GW_KIND_COUNTER, 1, 1);
}
END_TEST

START_TEST(test_max_series)
{
    /* small limits: MAX_SERIES 4 */
    OK("{\"n\": \"a\"}");
    OK("{\"n\": \"b\"}");
    OK("{\"n\": \"c\"}");
    OK("{\"n\": \"d\"}");
    OK("{\"n\": \"a\"}");
    BAD("{\"n\": \"e\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; metric \"e\" is new (raise MAX_SERIES to accept more)");
    /* Another project has its own count. */
    ck_assert_int_eq(gw__ingest_json(ing, "shop", GW_ACTION_DEFAULT,
                                     "{\"n\": \"e\"}", 10, 0, NULL, NULL,
                                     NULL),
                     GW_OK);
    /* Existing metrics still work; a flush changes nothing. */
    ck_assert_uint_eq(flush(MINUTE_ONLY)->ndeltas, 5);
    OK("{\"n\": \"b\"}");
    BAD("{\"n\": \"f\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; metric \"f\" is new (raise MAX_SERIES to accept more)");
}
END_TEST

START_TEST(test_max_series_batch_undo)
{
    size_t n = 0;
    gw__reject_t r;
    gw_error_t err;

    /* small limits: MAX_SERIES 4. With p and q known, the batch adds a
     * and b, then c is one too many: nothing is kept, so a and b still fit
     * afterwards, and c with them. */
    OK("{\"n\": \"p\"}");
    OK("{\"n\": \"q\"}");
    ck_assert_int_eq(submit("[{\"n\": \"a\"}, {\"n\": \"b\"}, {\"n\": \"c\"}]",
                            GW_ACTION_DEFAULT, 1, &n, &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "event 3: project \"test_project\" already has "
                              "4 series, the most MAX_SERIES allows; metric "
                              "\"c\" is new (raise MAX_SERIES to accept "
                              "more)");
    ck_assert_int_eq(r, GW__REJECT_MAX_SERIES);
    ck_assert_uint_eq(gw__ingest_pending(ing), 2);
    OK("{\"n\": \"c\"}");
    OK("{\"n\": \"b\"}");
    BAD("{\"n\": \"a\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; metric \"a\" is new (raise MAX_SERIES to accept more)");
}
END_TEST

START_TEST(test_many_metrics_and_undo)
{
    char json[64];
    int i;
    size_t n;
    gw__reject_t r;
    gw_error_t err;
    const gw_batch_t *b;

    /* Enough metrics to grow the map several times, with undo in the
     * middle of long probe runs. */
    for (i = 0; i < 5000; i++) {
        snprintf(json, sizeof(json), "{\"n\": \"m%d\"}", i);
        OK(json);
    }
    for (i = 0; i < 500; i++) {
        snprintf(json, sizeof(json),
                 "[{\"n\": \"x%d\"}, {\"n\": \"m%d\", \"a\": \"avg\"}]", i, i);
        ck_assert_int_eq(submit(json, GW_ACTION_DEFAULT, 1, &n, &r, &err),
                         GW_ERR);
        ck_assert_int_eq(r, GW__REJECT_KIND);
    }
    for (i = 0; i < 5000; i++) {
        snprintf(json, sizeof(json), "{\"n\": \"m%d\", \"a\": \"decr\"}", i);
        OK(json);
    }
    for (i = 0; i < 500; i++) {
        snprintf(json, sizeof(json), "{\"n\": \"x%d\", \"a\": \"avg\"}", i);
        OK(json);
    }
    ck_assert_uint_eq(gw__ingest_pending(ing), 5500);
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 5500);
    ck_cell(b, "m4999", NULL, NULL, GW_KIND_COUNTER, 0, 2);
    ck_cell(b, "x499", NULL, NULL, GW_KIND_AVG, 1, 1);
}
END_TEST

/* ---- filters ------------------------------------------------------------- */

START_TEST(test_filters_per_series)
{
    const gw_batch_t *b;

    OK("{\"n\": \"orders\", \"v\": 2, "
       "\"f\": {\"status\": \"paid\", \"device\": [\"web\", \"ios\"]}}");
    OK("{\"n\": \"orders\", \"f\": {\"status\": \"new\", \"device\": \"web\"}}");
    OK("{\"n\": \"orders\"}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 5);
    ck_cell(b, "orders", NULL, NULL, GW_KIND_COUNTER, 4, 3);
    ck_cell(b, "orders", "status", "paid", GW_KIND_COUNTER, 2, 1);
    ck_cell(b, "orders", "status", "new", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "orders", "device", "web", GW_KIND_COUNTER, 3, 2);
    ck_cell(b, "orders", "device", "ios", GW_KIND_COUNTER, 2, 1);
    /* No combination series, no "None" series. */
    ck_assert_ptr_null(find(b, "orders", "status", NULL, GW_PERIOD_MINUTE, M));
}
END_TEST

START_TEST(test_filter_value_types)
{
    const gw_batch_t *b;

    OK("{\"n\": \"x\", \"f\": {\"code\": 200, \"neg\": -7, \"r\": 1.5, "
       "\"tenth\": 0.1, \"whole\": 2.0, \"big\": 1e21, \"small\": 1e-7, "
       "\"yes\": true, \"no\": false, \"s\": \"\\u00e9t\\u00e9\"}}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 11);
    ck_cell(b, "x", "code", "200", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "neg", "-7", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "r", "1.5", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "tenth", "0.1", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "whole", "2.0", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "big", "1e21", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "small", "1e-7", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "yes", "true", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "no", "false", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "s", "\xc3\xa9t\xc3\xa9", GW_KIND_COUNTER, 1, 1);
}
END_TEST

START_TEST(test_filter_lists_count_distinct)
{
    const gw_batch_t *b;

    /* Each distinct element once: "web" twice and 1 / "1" are one each. */
    OK("{\"n\": \"x\", \"v\": 3, \"f\": {\"d\": [\"web\", \"ios\", \"web\"],"
       " \"k\": [1, \"1\", true, \"true\"], \"e\": []}}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 5);
    ck_cell(b, "x", NULL, NULL, GW_KIND_COUNTER, 3, 1);
    ck_cell(b, "x", "d", "web", GW_KIND_COUNTER, 3, 1);
    ck_cell(b, "x", "d", "ios", GW_KIND_COUNTER, 3, 1);
    ck_cell(b, "x", "k", "1", GW_KIND_COUNTER, 3, 1);
    ck_cell(b, "x", "k", "true", GW_KIND_COUNTER, 3, 1);
}
END_TEST

START_TEST(test_filter_pairs)
{
    const gw_batch_t *b;

    /* The original's tests send a list of pairs. A name given twice: the
     * last pair wins, as a duplicate key in an object does. */
    OK("{\"n\": \"x\", \"f\": [[\"filter_name1\", \"flter_value1\"], "
       "[\"d\", [\"a\", \"b\"]], [\"s\", \"old\"], [\"s\", \"new\"]]}");
    OK("{\"n\": \"x\", \"f\": {\"s\": \"one\", \"s\": \"two\"}}");
    OK("{\"n\": \"x\", \"f\": []}");
    OK("{\"n\": \"x\", \"f\": {}}");
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 6);
    ck_cell(b, "x", NULL, NULL, GW_KIND_COUNTER, 4, 4);
    ck_cell(b, "x", "filter_name1", "flter_value1", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "d", "a", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "d", "b", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "s", "new", GW_KIND_COUNTER, 1, 1);
    ck_cell(b, "x", "s", "two", GW_KIND_COUNTER, 1, 1);
}
END_TEST

/* ---- limits at limit - 1, limit, limit + 1 (small limits) --------------- */

START_TEST(test_limit_filters)
{
    OK("{\"n\": \"x\", \"f\": {\"a\": 1, \"b\": 1}}");
    OK("{\"n\": \"x\", \"f\": {\"a\": 1, \"b\": 1, \"c\": 1}}");
    BAD("{\"n\": \"x\", \"f\": {\"a\": 1, \"b\": 1, \"c\": 1, \"d\": 1}}",
        GW__REJECT_LIMIT, "\"f\" has 4 filters; at most 3 are allowed");
    BAD("{\"n\": \"x\", \"f\": [[\"a\", 1], [\"b\", 1], [\"c\", 1], "
        "[\"d\", 1]]}",
        GW__REJECT_LIMIT, "\"f\" has 4 filters; at most 3 are allowed");
    OK("{\"n\": \"x\", \"f\": [[\"a\", 1], [\"b\", 1], [\"c\", 1]]}");
}
END_TEST

START_TEST(test_limit_filter_values)
{
    OK("{\"n\": \"x\", \"f\": {\"a\": [1]}}");
    OK("{\"n\": \"x\", \"f\": {\"a\": [1, 2]}}");
    BAD("{\"n\": \"x\", \"f\": {\"device\": [1, 2, 3]}}", GW__REJECT_LIMIT,
        "\"f\".\"device\" has 3 values; at most 2 are allowed");
}
END_TEST

START_TEST(test_limit_name_bytes)
{
    small_with_room();
    OK("{\"n\": \"1234567\"}");
    OK("{\"n\": \"12345678\"}");
    BAD("{\"n\": \"123456789\"}", GW__REJECT_LIMIT,
        "\"n\" (metric name) is 9 bytes; at most 8 are allowed");
    OK("{\"n\": \"x\", \"f\": {\"1234567\": \"1234567\"}}");
    OK("{\"n\": \"x\", \"f\": {\"12345678\": \"12345678\"}}");
    BAD("{\"n\": \"x\", \"f\": {\"123456789\": \"v\"}}", GW__REJECT_LIMIT,
        "\"f\" has a filter name of 9 bytes; at most 8 are allowed");
    BAD("{\"n\": \"x\", \"f\": {\"s\": \"123456789\"}}", GW__REJECT_LIMIT,
        "\"f\".\"s\" has a value of 9 bytes; at most 8 are allowed");
    BAD("{\"n\": \"x\", \"f\": {\"s\": [\"a\", 123456789]}}", GW__REJECT_LIMIT,
        "\"f\".\"s\" has a value of 9 bytes; at most 8 are allowed");
    /* Numbers count as their text: "0.333" fits, "0.1234567" does not. */
    OK("{\"n\": \"x\", \"f\": {\"s\": 0.333}}");
    BAD("{\"n\": \"x\", \"f\": {\"s\": 0.1234567}}", GW__REJECT_LIMIT,
        "\"f\".\"s\" has a value of 9 bytes; at most 8 are allowed");
}
END_TEST

START_TEST(test_limit_event_bytes)
{
    char json[200];
    size_t len;

    /* small limits: 100 bytes per event. Pad with an unknown key. */
    for (len = 99; len <= 101; len++) {
        int pad = (int) len - (int) strlen("{\"n\": \"x\", \"pad\": \"\"}");

        snprintf(json, sizeof(json), "{\"n\": \"x\", \"pad\": \"%*s\"}", pad,
                 "");
        ck_assert_uint_eq(strlen(json), len);
        if (len <= 100)
            OK(json);
        else
            BAD1(json, GW__REJECT_LIMIT,
                 "the event is 101 bytes; at most 100 are allowed");
    }
    /* In a batch each event counts on its own: the batch may be longer. */
    OK("[{\"n\": \"x\", \"pad\": \"                                    \"},"
       " {\"n\": \"x\", \"pad\": \"                                    \"}]");
    snprintf(json, sizeof(json), "[{\"n\": \"x\"}, \n {\"n\": \"x\", "
             "\"pad\": \"%*s\"}  ]", 101 - 21, "");
    BAD(json, GW__REJECT_LIMIT,
        "event 2: the event is 101 bytes; at most 100 are allowed");
    snprintf(json, sizeof(json), "[{\"n\": \"x\"}, \n {\"n\": \"x\", "
             "\"pad\": \"%*s\"}  ]", 100 - 21, "");
    OK(json);
    /* Strings with brackets, commas and escapes do not confuse it. */
    OK("[ {\"n\": \"x\", \"pad\": \"],[{\\\"\\\\\"} ,\n {\"n\": \"y\", "
       "\"pad\": \"                                              \"}\n]");
}
END_TEST

START_TEST(test_limit_batch_events)
{
    size_t n = 0;
    gw__reject_t r;
    gw_error_t err;

    OK("[{\"n\": \"x\"}, {\"n\": \"x\"}]");
    OK("[{\"n\": \"x\"}, {\"n\": \"x\"}, {\"n\": \"x\"}]");
    ck_assert_int_eq(
        submit("[{\"n\": \"x\"}, {\"n\": \"x\"}, {\"n\": \"x\"}, {\"n\": 1}]",
               GW_ACTION_DEFAULT, 1, &n, &r, &err),
        GW_ERR);
    ck_assert_str_eq(err.msg, "the batch has 4 events; at most 3 are allowed");
    ck_assert_int_eq(r, GW__REJECT_LIMIT);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(flush(MINUTE_ONLY)->deltas[0].count, 5);
}
END_TEST

/* ---- batches ------------------------------------------------------------- */

START_TEST(test_batch_all_or_nothing)
{
    size_t n = 0;
    gw__reject_t r;
    gw_error_t err;
    const gw_batch_t *b;

    ck_assert_int_eq(submit("[{\"n\": \"a\", \"v\": 5}, {\"n\": \"b\", "
                            "\"v\": \"x\"}, {\"n\": \"c\"}]",
                            GW_ACTION_DEFAULT, 1, &n, &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "event 2: \"v\" must be a finite number");
    ck_assert_int_eq(r, GW__REJECT_INVALID);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
    ck_assert_ptr_null(gw__ingest_swap(ing));

    ck_assert_int_eq(submit("[{\"n\": \"a\"}, 5]", GW_ACTION_DEFAULT, 1, &n,
                            &r, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "event 2: must be a JSON object");
    ck_assert_int_eq(r, GW__REJECT_INVALID);
    ck_assert_uint_eq(n, 2);

    BAD("[{\"n\": \"a\"}, {\"n\": \"a\", \"p\": \"shop\"}]", GW__REJECT_PROJECT,
        "event 2: project \"shop\" in the event does not match the "
        "authenticated project \"test_project\"");

    /* A whole good batch. */
    ck_assert_int_eq(submit("[{\"n\": \"a\", \"v\": 5}, {\"n\": \"b\"}, "
                            "{\"n\": \"a\", \"f\": {\"s\": \"x\"}}]",
                            GW_ACTION_AVG, 1, &n, &r, &err),
                     GW_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(gw__ingest_pending(ing), 3);
    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 3);
    ck_cell(b, "a", NULL, NULL, GW_KIND_AVG, 6, 2);
    ck_cell(b, "a", "s", "x", GW_KIND_AVG, 1, 1);
    ck_cell(b, "b", NULL, NULL, GW_KIND_AVG, 1, 1);
}
END_TEST

START_TEST(test_batch_not_allowed)
{
    size_t n = 0;
    gw__reject_t r;
    gw_error_t err;

    BAD1("[{\"n\": \"a\"}]", GW__REJECT_INVALID,
         "a JSON array (a batch of events) is not accepted here; send one "
         "event object");
    /* Refusals of a single object carry no "event N: " prefix. */
    BAD1("{\"n\": 1}", GW__REJECT_INVALID,
         "\"n\" (metric name) must be a string");
    /* An empty batch is accepted and holds nothing. */
    ck_assert_int_eq(submit(" [ ] ", GW_ACTION_DEFAULT, 1, &n, &r, &err),
                     GW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(gw__ingest_swap(ing));
    /* One event: nevents 1. */
    ck_assert_int_eq(submit("{\"n\": \"a\"}", GW_ACTION_DEFAULT, 1, &n, &r,
                            &err),
                     GW_OK);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_swap_and_pending)
{
    gw__table_t *t;

    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
    ck_assert_ptr_null(gw__ingest_swap(ing));
    OK("{\"n\": \"a\", \"f\": {\"s\": [\"x\", \"y\"]}}");
    OK("{\"n\": \"a\", \"f\": {\"s\": \"x\"}}");
    OK("{\"n\": \"a\", \"ts\": 1392454800}"); /* next minute */
    ck_assert_uint_eq(gw__ingest_pending(ing), 4);
    t = gw__ingest_swap(ing);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(gw__table_events(t), 3);
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
    ck_assert_ptr_null(gw__ingest_swap(ing));
    /* The swapped table is independent of what comes next. */
    OK("{\"n\": \"b\"}");
    ck_assert_uint_eq(gw__ingest_pending(ing), 1);
    ck_assert_uint_eq(gw__table_events(t), 3);
    gw__table_free(t);
    gw__table_free(NULL);
}
END_TEST

/* ---- structured events ----------------------------------------------------- */

static int
submit_ev(const gw_event_t *ev, gw__reject_t *r, gw_error_t *err)
{
    return gw__ingest_event(ing, "test_project", ev, r, err);
}

START_TEST(test_event_struct)
{
    gw_filter_t f[] = {{"device", "web"}, {"device", "ios"},
                       {"device", "web"}, {"status", "paid"}};
    gw_event_t ev;
    gw__reject_t r = GW__REJECT_LIMIT;
    gw_error_t err;
    const gw_batch_t *b;

    memset(&ev, 0, sizeof(ev));
    ev.name = "orders";
    ev.value = 2;
    ev.filters = f;
    ev.nfilters = 4;
    ck_assert_int_eq(submit_ev(&ev, &r, &err), GW_OK);
    ck_assert_int_eq(r, GW__REJECT_NONE);
    ev.project = "test_project";
    ev.action = GW_ACTION_DECR;
    ev.has_ts = 1;
    ev.ts = 1392454800.5;
    ev.nfilters = 0;
    ev.filters = NULL;
    ck_assert_int_eq(submit_ev(&ev, &r, &err), GW_OK);
    ev.name = "g";
    ev.action = GW_ACTION_GAUGE;
    ev.value = 0;
    ck_assert_int_eq(submit_ev(&ev, &r, &err), GW_OK);

    b = flush(MINUTE_ONLY);
    ck_assert_uint_eq(b->ndeltas, 6);
    ck_cell(b, "orders", NULL, NULL, GW_KIND_COUNTER, 2, 1);
    ck_cell(b, "orders", "device", "web", GW_KIND_COUNTER, 2, 1);
    ck_cell(b, "orders", "device", "ios", GW_KIND_COUNTER, 2, 1);
    ck_cell(b, "orders", "status", "paid", GW_KIND_COUNTER, 2, 1);
    ck_assert_double_eq(
        cell_at(__LINE__, b, "orders", NULL, NULL, M + 120)->sum, -2);
    ck_assert_double_eq(cell_at(__LINE__, b, "g", NULL, NULL, M + 120)->ts,
                        1392454800.5);
}
END_TEST

#define BAD_EV(ev, why, want)                                               \
    do {                                                                    \
        gw__reject_t r_ = GW__REJECT_NONE;                                  \
        gw_error_t e_;                                                      \
        ck_assert_int_eq(submit_ev((ev), &r_, &e_), GW_ERR);                \
        ck_assert_str_eq(e_.msg, (want));                                   \
        ck_assert_int_eq(r_, (why));                                        \
    } while (0)

START_TEST(test_event_struct_refusals)
{
    gw_filter_t f[4];
    gw_event_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.value = 1;
    BAD_EV(&ev, GW__REJECT_INVALID, "\"n\" (metric name) is required");
    ev.name = "";
    BAD_EV(&ev, GW__REJECT_INVALID, "\"n\" (metric name) must not be empty");
    ev.name = "bad\xff";
    BAD_EV(&ev, GW__REJECT_INVALID, "\"n\" (metric name) is not valid UTF-8");
    ev.name = "\xc0\xaf"; /* overlong '/' */
    BAD_EV(&ev, GW__REJECT_INVALID, "\"n\" (metric name) is not valid UTF-8");
    ev.name = "\xed\xa0\x80"; /* a surrogate */
    BAD_EV(&ev, GW__REJECT_INVALID, "\"n\" (metric name) is not valid UTF-8");
    ev.name = "x";
    ev.action = (gw_action_t) 9;
    BAD_EV(&ev, GW__REJECT_INVALID,
           "action 9 is unknown; use incr, decr, avg, gauge, timing or set");
    ev.action = GW_ACTION_INCR;
    ev.value = NAN;
    BAD_EV(&ev, GW__REJECT_RANGE,
           "\"v\" nan is out of range: |v| must be at most 1e300");
    ev.value = INFINITY;
    BAD_EV(&ev, GW__REJECT_RANGE,
           "\"v\" inf is out of range: |v| must be at most 1e300");
    ev.value = 1e303; /* statsd's 1e300|c|@0.001 */
    BAD_EV(&ev, GW__REJECT_RANGE,
           "\"v\" 1e303 is out of range: |v| must be at most 1e300");
    ev.value = 1;
    ev.has_ts = 1;
    ev.ts = -5;
    BAD_EV(&ev, GW__REJECT_INVALID,
           "\"ts\" -5 is out of range; epoch seconds must be from 0 to "
           "253402300799 (9999-12-31T23:59:59 UTC)");
    ev.ts = NAN;
    BAD_EV(&ev, GW__REJECT_INVALID,
           "\"ts\" nan is out of range; epoch seconds must be from 0 to "
           "253402300799 (9999-12-31T23:59:59 UTC)");
    ev.has_ts = 0;
    ev.project = "shop";
    BAD_EV(&ev, GW__REJECT_PROJECT,
           "project \"shop\" in the event does not match the authenticated "
           "project \"test_project\"");
    ev.project = NULL;
    ev.filters = f;
    ev.nfilters = 1;
    f[0].name = "status";
    f[0].value = NULL;
    BAD_EV(&ev, GW__REJECT_INVALID,
           "\"f\".\"status\" is null; a filter value must be a string, number "
           "or boolean");
    f[0].name = NULL;
    f[0].value = "x";
    BAD_EV(&ev, GW__REJECT_INVALID, "\"f\" has an empty filter name");
    f[0].name = "";
    BAD_EV(&ev, GW__REJECT_INVALID, "\"f\" has an empty filter name");
    f[0].name = "s";
    f[0].value = "\x80";
    BAD_EV(&ev, GW__REJECT_INVALID,
           "\"f\".\"s\" has a value that is not valid UTF-8");
    f[0].name = "\xfe";
    f[0].value = "x";
    BAD_EV(&ev, GW__REJECT_INVALID,
           "\"f\" has a filter name that is not valid UTF-8");
    ck_assert_uint_eq(gw__ingest_pending(ing), 0);
}
END_TEST

START_TEST(test_event_struct_limits)
{
    gw_filter_t f[8] = {{"a", "1"}, {"a", "2"}, {"a", "1"}, {"b", "1"},
                        {"c", "1"}, {"d", "1"}, {"a", "3"}, {"e", "1"}};
    gw_event_t ev;

    /* small limits: 3 filters of 2 values, 8 bytes. */
    small_with_room();
    memset(&ev, 0, sizeof(ev));
    ev.name = "x";
    ev.value = 1;
    ev.filters = f;
    ev.nfilters = 5; /* a:1, a:2, a:1 again, b, c */
    ck_assert_int_eq(submit_ev(&ev, NULL, NULL), GW_OK);
    ev.nfilters = 6; /* and d */
    BAD_EV(&ev, GW__REJECT_LIMIT, "\"f\" has 4 filters; at most 3 are allowed");
    f[5] = f[6]; /* a:3 instead of d */
    BAD_EV(&ev, GW__REJECT_LIMIT,
           "\"f\".\"a\" has 3 values; at most 2 are allowed");
    ev.nfilters = 7;
    BAD_EV(&ev, GW__REJECT_LIMIT,
           "\"f\" has 7 filter values; at most 3 filters of 2 values are "
           "allowed");
    ev.nfilters = 1;
    f[0].value = "12345678";
    ck_assert_int_eq(submit_ev(&ev, NULL, NULL), GW_OK);
    f[0].value = "123456789";
    BAD_EV(&ev, GW__REJECT_LIMIT,
           "\"f\".\"a\" has a value of 9 bytes; at most 8 are allowed");
    ev.name = "123456789";
    BAD_EV(&ev, GW__REJECT_LIMIT,
           "\"n\" (metric name) is 9 bytes; at most 8 are allowed");
}
END_TEST

/* The same request through the fast path and the jansson path. */
static void
agree_at(int line, const char *json)
{
    gw__limits_t l = small_limits();
    gw__ingest_t *fast = gw__ingest_new(&l, fake_now);
    gw__ingest_t *slow = gw__ingest_new(&l, fake_now);
    gw__reject_t r1 = GW__REJECT_NONE, r2 = GW__REJECT_NONE;
    gw_error_t e1 = {{0}}, e2 = {{0}};
    size_t n1 = 99, n2 = 98, i;
    gw__batch_t *b1 = gw__batch_new("1"), *b2 = gw__batch_new("2");
    gw__table_t *t1, *t2;
    const gw_batch_t *v1, *v2;
    int rc1, rc2;

    gw__ingest_set_fast(slow, 0);
    gw__ingest_set_kind(fast, "test_project", "avg", GW_KIND_AVG);
    gw__ingest_set_kind(slow, "test_project", "avg", GW_KIND_AVG);
    rc1 = gw__ingest_json(fast, "test_project", GW_ACTION_DEFAULT, json,
                          strlen(json), 1, &n1, &r1, &e1);
    rc2 = gw__ingest_json(slow, "test_project", GW_ACTION_DEFAULT, json,
                          strlen(json), 1, &n2, &r2, &e2);
    ck_assert_msg(rc1 == rc2 && r1 == r2 && n1 == n2,
                  "line %d: %s: fast %d %s %zu, jansson %d %s %zu", line,
                  json, rc1, gw__reject_name(r1), n1, rc2,
                  gw__reject_name(r2), n2);
    if (rc1 != GW_OK)
        ck_assert_str_eq(e1.msg, e2.msg);
    t1 = gw__ingest_swap(fast);
    t2 = gw__ingest_swap(slow);
    ck_assert_int_eq(t1 == NULL, t2 == NULL);
    gw__batch_add_table(b1, t1, 0x7f, NULL);
    gw__batch_add_table(b2, t2, 0x7f, NULL);
    v1 = gw__batch_view(b1);
    v2 = gw__batch_view(b2);
    ck_assert_uint_eq(v1->ndeltas, v2->ndeltas);
    for (i = 0; i < v1->ndeltas; i++) {
        ck_assert_str_eq(v1->deltas[i].metric, v2->deltas[i].metric);
        ck_assert_pstr_eq(v1->deltas[i].filter_name,
                          v2->deltas[i].filter_name);
        ck_assert_pstr_eq(v1->deltas[i].filter_value,
                          v2->deltas[i].filter_value);
        ck_assert_int_eq(v1->deltas[i].kind, v2->deltas[i].kind);
        ck_assert_int_eq(v1->deltas[i].bucket, v2->deltas[i].bucket);
        ck_assert_double_eq(v1->deltas[i].sum, v2->deltas[i].sum);
        ck_assert_int_eq(v1->deltas[i].count, v2->deltas[i].count);
        ck_assert_double_eq(v1->deltas[i].ts, v2->deltas[i].ts);
    }
    gw__table_free(t1);
    gw__table_free(t2);
    gw__batch_free(b1);
    gw__batch_free(b2);
    gw__ingest_free(fast);
    gw__ingest_free(slow);
}
#define AGREE(json) agree_at(__LINE__, (json))

START_TEST(test_fast_path_agrees)
{
    /* Plain events the fast path takes... */
    AGREE("{\"n\": \"x\"}");
    AGREE(" \n{\"a\":\"decr\",\"n\":\"x\",\"v\":-0,\"ts\":1392454739.5}\t");
    AGREE("{\"n\": \"x\", \"v\": 1e-400, \"ts\": \"2014-02-15T08:58:59\"}");
    AGREE("{\"n\": \"x\", \"f\": {\"a\": [1, \"1\", 1.0, -0, 1E2, true],"
          " \"b\": false}}");
    AGREE("{\"n\": \"\xc3\xa9\", \"auth\": {\"x\": [1, {\"y\": null}]}}");
    AGREE("[{\"n\": \"x\"}, {\"n\": \"y\", \"a\": \"gauge\", \"v\": 2}]");
    AGREE("[ ]");
    AGREE("{\"n\": \"avg\", \"a\": \"avg\", \"v\": 2.5, \"p\": \"test_project\"}");
    AGREE("{\"n\": null, \"name\": \"x\", \"f\": null, \"v\": null}");
    /* ...and everything it leaves to jansson. */
    AGREE("{\"n\": \"x\", \"n\": \"y\"}");
    AGREE("{\"\\u006e\": \"x\"}");
    AGREE("{\"n\": \"x\\ty\"}");
    AGREE("{\"n\": \"x\", \"f\": {\"s\": 1, \"s\": 2}}");
    AGREE("{\"n\": \"x\", \"f\": [[\"s\", 1]]}");
    AGREE("{\"n\": \"x\", \"v\": 01}");
    AGREE("{\"n\": \"x\", \"v\": 1.}");
    AGREE("{\"n\": \"x\", \"v\": -}");
    AGREE("{\"n\": \"x\", \"v\": 1e400}");
    AGREE("{\"n\": \"x\", \"v\": 9223372036854775808}");
    AGREE("{\"n\": \"x\", \"v\": truex}");
    AGREE("{\"n\": \"x\"} {}");
    AGREE("{\"n\": \"x\",}");
    AGREE("{\"n\": \"\xff\"}");
    AGREE("{\"n\": \"\xed\xa0\x80\"}");
    AGREE("{\"n\": \"avg\"}");
    AGREE("{\"n\": \"a\"}\n");
    AGREE("[{\"n\": \"x\"}, {\"n\": \"x\", \"a\": \"avg\"}]");
    AGREE("[{\"n\": \"1\"}, {\"n\": \"2\"}, {\"n\": \"3\"}, {\"n\": \"4\"}]");
    AGREE("[{\"n\": \"1\"}, {\"n\": \"2\"}, {\"n\": \"3\"}, {\"n\": \"4\"}, "
          "{\"n\": \"5\"}]");
    AGREE("{\"n\": \"x\", \"f\": {\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}}");
    AGREE("{\"n\": \"x\", \"f\": {\"a\": [1, 2, 3]}}");
    AGREE("{\"n\": \"x\", \"f\": {\"a\": 0.1234567}}");
    AGREE("{\"n\": \"123456789\"}");
    AGREE("{\"n\": \"x\", \"p\": \"shop\"}");
    AGREE("{\"n\": \"x\", \"ts\": -1}");
    AGREE("{\"n\": \"x\", \"ts\": \"2014-02-30T00:00:00\"}");
    AGREE("{\"n\": \"x\", \"pad\": \"                                            "
          "                                  \"}");
    AGREE("{\"n\": \"x\", \"deep\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]"
          "]]]]]]]]]]]]]]]]]]]]]]]}");
    AGREE("");
    AGREE("[");
    AGREE("{\"n\": \"x\"");
}
END_TEST

START_TEST(test_reject_names)
{
    ck_assert_str_eq(gw__reject_name(GW__REJECT_NONE), "none");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_JSON), "bad_json");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_INVALID), "invalid_event");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_PROJECT), "wrong_project");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_KIND), "kind_conflict");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_LIMIT), "limit");
    ck_assert_str_eq(gw__reject_name(GW__REJECT_MAX_SERIES), "max_series");
}
END_TEST

/* ---- several ingest loops (gw__ingest_share) ------------------------ */

START_TEST(test_loops_share_kinds)
{
    gw__ingest_t *mine = ing;

    OK("{\"n\": \"orders\"}");
    ing = other; /* the second loop */
    BAD("{\"n\": \"orders\", \"a\": \"avg\"}", GW__REJECT_KIND,
        "metric \"orders\" is a counter; action \"avg\" does not fit it (a "
        "metric keeps the kind of its first event)");
    OK("{\"n\": \"orders\", \"a\": \"decr\"}");
    OK("{\"n\": \"lat\", \"a\": \"avg\"}");
    /* A refused batch records nothing in the registry either. */
    BAD("[{\"n\": \"new1\"}, {\"n\": \"new1\", \"a\": \"gauge\"}]",
        GW__REJECT_KIND,
        "event 2: metric \"new1\" is a counter; action \"gauge\" does not "
        "fit it (a metric keeps the kind of its first event)");
    ing = mine;
    BAD("{\"n\": \"lat\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    OK("{\"n\": \"new1\", \"a\": \"gauge\"}");
    /* Each loop aggregates into its own table. */
    ck_cell(flush(MINUTE_ONLY), "orders", NULL, NULL, GW_KIND_COUNTER, 1, 1);
    ck_cell(gw__batch_view(batch), "new1", NULL, NULL, GW_KIND_GAUGE, 1, 1);
    ck_assert_uint_eq(gw__batch_view(batch)->ndeltas, 2);
    ing = other;
    ck_cell(flush(MINUTE_ONLY), "orders", NULL, NULL, GW_KIND_COUNTER, -1, 1);
    ck_cell(gw__batch_view(batch), "lat", NULL, NULL, GW_KIND_AVG, 1, 1);
    ck_assert_uint_eq(gw__batch_view(batch)->ndeltas, 2);
    ing = mine;
}
END_TEST

START_TEST(test_loops_set_kind_reaches_caches)
{
    gw__ingest_t *mine = ing;

    OK("{\"n\": \"lat\"}"); /* cached as a counter by this loop */
    ing = other;
    OK("{\"n\": \"lat\"}"); /* and by the other */
    /* The storage says otherwise (seeding at start): both caches follow. */
    gw__ingest_set_kind(mine, "test_project", "lat", GW_KIND_AVG);
    BAD("{\"n\": \"lat\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    ing = mine;
    BAD("{\"n\": \"lat\"}", GW__REJECT_KIND,
        "metric \"lat\" is an avg; action \"incr\" does not fit it (a metric "
        "keeps the kind of its first event)");
    OK("{\"n\": \"lat\", \"a\": \"avg\"}");
}
END_TEST

START_TEST(test_loops_share_max_series)
{
    gw__ingest_t *mine = ing;

    /* small limits: MAX_SERIES 4, counted over both loops. */
    OK("{\"n\": \"a\"}");
    OK("{\"n\": \"b\"}");
    ing = other;
    OK("{\"n\": \"c\"}");
    OK("{\"n\": \"a\"}"); /* known: not counted again */
    OK("{\"n\": \"d\"}");
    BAD("{\"n\": \"e\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; metric \"e\" is new (raise MAX_SERIES to accept more)");
    ing = mine;
    BAD("{\"n\": \"f\"}", GW__REJECT_MAX_SERIES,
        "project \"test_project\" already has 4 series, the most MAX_SERIES "
        "allows; metric \"f\" is new (raise MAX_SERIES to accept more)");
    OK("{\"n\": \"d\"}"); /* known through the registry */
}
END_TEST

static Suite *
ingest_suite(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("default_limits");
    TCase *small = tcase_create("small_limits");
    TCase *shared = tcase_create("shared_registry");
    TCase *shared_small = tcase_create("shared_registry_small_limits");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_short_keys);
    tcase_add_test(tc, test_long_keys);
    tcase_add_test(tc, test_short_keys_win);
    tcase_add_test(tc, test_null_is_absent);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_default_action_argument);
    tcase_add_test(tc, test_clock_default_ts);
    tcase_add_test(tc, test_ts_forms);
    tcase_add_test(tc, test_reject_name);
    tcase_add_test(tc, test_reject_value);
    tcase_add_test(tc, test_reject_action);
    tcase_add_test(tc, test_reject_project);
    tcase_add_test(tc, test_reject_ts);
    tcase_add_test(tc, test_reject_json);
    tcase_add_test(tc, test_reject_filters);
    tcase_add_test(tc, test_reject_long_quotes_are_cut);
    tcase_add_test(tc, test_incr_decr);
    tcase_add_test(tc, test_avg);
    tcase_add_test(tc, test_gauge);
    tcase_add_test(tc, test_kind_conflict);
    tcase_add_test(tc, test_set_kind);
    tcase_add_test(tc, test_kind_conflict_inside_batch);
    tcase_add_test(tc, test_many_metrics_and_undo);
    tcase_add_test(tc, test_filters_per_series);
    tcase_add_test(tc, test_filter_value_types);
    tcase_add_test(tc, test_filter_lists_count_distinct);
    tcase_add_test(tc, test_filter_pairs);
    tcase_add_test(tc, test_batch_all_or_nothing);
    tcase_add_test(tc, test_batch_not_allowed);
    tcase_add_test(tc, test_swap_and_pending);
    tcase_add_test(tc, test_event_struct);
    tcase_add_test(tc, test_event_struct_refusals);
    tcase_add_test(tc, test_reject_names);
    tcase_add_test(tc, test_fast_path_agrees);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(small, setup_small, teardown);
    tcase_add_test(small, test_max_series);
    tcase_add_test(small, test_max_series_batch_undo);
    tcase_add_test(small, test_limit_filters);
    tcase_add_test(small, test_limit_filter_values);
    tcase_add_test(small, test_limit_name_bytes);
    tcase_add_test(small, test_limit_event_bytes);
    tcase_add_test(small, test_limit_batch_events);
    tcase_add_test(small, test_event_struct_limits);
    suite_add_tcase(s, small);

    /* The kind rule and MAX_SERIES again through a registry. */
    tcase_add_checked_fixture(shared, setup_shared, teardown);
    tcase_add_test(shared, test_kind_conflict);
    tcase_add_test(shared, test_set_kind);
    tcase_add_test(shared, test_kind_conflict_inside_batch);
    tcase_add_test(shared, test_many_metrics_and_undo);
    tcase_add_test(shared, test_batch_all_or_nothing);
    tcase_add_test(shared, test_loops_share_kinds);
    tcase_add_test(shared, test_loops_set_kind_reaches_caches);
    suite_add_tcase(s, shared);
    tcase_add_checked_fixture(shared_small, setup_shared_small, teardown);
    tcase_add_test(shared_small, test_max_series);
    tcase_add_test(shared_small, test_max_series_batch_undo);
    tcase_add_test(shared_small, test_loops_share_max_series);
    suite_add_tcase(s, shared_small);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ingest_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
