/*
 * tests/ingest/test_event.c: the event parsers at their own entry points
 * (ingest/event.c, ingest/event_json.c, ingest/event_fast.c).
 *
 * Each test parses events with gw__event_parse_json (from a jansson
 * tree), gw__event_parse_fast (from the text) or gw__event_parse_struct
 * and checks the gw__pevent_t exactly: an event with every field, the
 * defaults (action, project, value, the clock for a missing ts), each
 * refusal's exact message and reason, the fast scanner giving the same
 * event as the jansson parser on what it accepts (escapes, UTF-8,
 * exponents, nested values), and falling back (GW_AGAIN, *pos unmoved) on
 * everything it leaves to the jansson parser.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define T 1392454739 /* Sat 2014-02-15 08:58:59 UTC */
#define A10 "aaaaaaaaaa"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static double now_value;
static unsigned now_calls;
static gw__limits_t limits;
/* jp: the jansson and the structured parser's; fp: the fast parser's, so
 * that the two JSON parsers' filter pairs can be compared. */
static gw__parse_t jp, fp;

static double
fake_now(void)
{
    now_calls++;
    return now_value;
}

static void
ctx_init(gw__parse_t *c)
{
    memset(c, 0, sizeof(*c));
    c->limits = &limits;
    c->now_fn = fake_now;
    c->project = "test_project";
    c->project_len = strlen(c->project);
    gw__arena_init(&c->scratch);
}

/* A new request for c: no filter pairs, an empty scratch arena. */
static void
ctx_reset(gw__parse_t *c)
{
    c->npf = 0;
    gw__arena_reset(&c->scratch);
}

static void
setup(void)
{
    limits.max_event_bytes = 65536;
    limits.max_filters = 32;
    limits.max_filter_values = 64;
    limits.max_name_bytes = 255;
    limits.max_batch_events = 10000;
    limits.max_series = 100000;
    limits.max_pending_series = 1000000;
    now_value = T + 0.25;
    now_calls = 0;
    ctx_init(&jp);
    ctx_init(&fp);
}

/* Small limits, to test them at the limit and one past it. */
static void
setup_small(void)
{
    setup();
    limits.max_filters = 3;
    limits.max_filter_values = 2;
    limits.max_name_bytes = 8;
}

static void
teardown(void)
{
    free(jp.pf);
    gw__arena_free(&jp.scratch);
    free(fp.pf);
    gw__arena_free(&fp.scratch);
}

/* text as gw__ingest_json loads it, then gw__event_parse_json; the event
 * borrows from *root, which the caller frees. */
static int
parse_json(const char *text, json_t **root, gw__pevent_t *out,
           gw__reject_t *why, gw_error_t *err)
{
    json_error_t jerr;

    ctx_reset(&jp);
    *root = json_loadb(text, strlen(text), 0, &jerr);
    ck_assert_msg(*root != NULL && json_is_object(*root),
                  "%s: not a JSON object: %s", text, jerr.text);
    *why = GW__REJECT_NONE;
    memset(err, 0, sizeof(*err));
    return gw__event_parse_json(&jp, *root, out, why, err);
}

/* text from its first byte through gw__event_parse_fast. */
static int
parse_fast(const char *text, size_t *pos, gw__pevent_t *out)
{
    ctx_reset(&fp);
    *pos = 0;
    return gw__event_parse_fast(&fp, text, strlen(text), pos, out);
}

static int
parse_struct(const gw_event_t *ev, gw__pevent_t *out, gw__reject_t *why,
             gw_error_t *err)
{
    ctx_reset(&jp);
    *why = GW__REJECT_NONE;
    memset(err, 0, sizeof(*err));
    return gw__event_parse_struct(&jp, ev, out, why, err);
}

static int
str_is(gw__str_t s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.s, want, s.n) == 0;
}

/* ---- exact events ---------------------------------------------------- */

/* What an event must be; filters: its pairs as "name=value", in order. */
typedef struct want_s {
    gw_action_t action;
    const char *project;
    const char *name;
    double ts;
    double value;
    const char *filters[12];
} want_t;

static void
check_event(const char *what, const gw__parse_t *c, const gw__pevent_t *e,
            const want_t *w)
{
    char pair[600];
    size_t i, n = 0;

    while (w->filters[n] != NULL)
        n++;
    ck_assert_msg(e->action == w->action, "%s: action %d, want %d", what,
                  (int) e->action, (int) w->action);
    ck_assert_msg(str_is(e->project, w->project), "%s: project %.*s", what,
                  (int) e->project.n, e->project.s);
    ck_assert_msg(str_is(e->name, w->name), "%s: name %.*s", what,
                  (int) e->name.n, e->name.s);
    ck_assert_msg(e->ts == w->ts, "%s: ts %.17g, want %.17g", what, e->ts,
                  w->ts);
    ck_assert_msg(e->value == w->value &&
                      !signbit(e->value) == !signbit(w->value),
                  "%s: value %.17g, want %.17g", what, e->value, w->value);
    ck_assert_msg(e->f0 == 0 && e->nf == n && c->npf == n,
                  "%s: %zu filter pairs from %zu, want %zu from 0", what,
                  e->nf, e->f0, n);
    for (i = 0; i < n; i++) {
        snprintf(pair, sizeof(pair), "%.*s=%.*s", (int) c->pf[i].name.n,
                 c->pf[i].name.s, (int) c->pf[i].value.n,
                 c->pf[i].value.s);
        ck_assert_msg(strcmp(pair, w->filters[i]) == 0,
                      "%s: pair %zu is %s, want %s", what, i + 1, pair,
                      w->filters[i]);
    }
}

/* The same event from both JSON parsers: a from jp, b from fp. */
static void
check_same(const char *text, const gw__pevent_t *a, const gw__pevent_t *b)
{
    size_t i;

    ck_assert_msg(a->action == b->action, "%s: actions differ", text);
    ck_assert_msg(a->project.n == b->project.n &&
                      memcmp(a->project.s, b->project.s, a->project.n) == 0,
                  "%s: projects differ", text);
    ck_assert_msg(a->name.n == b->name.n &&
                      memcmp(a->name.s, b->name.s, a->name.n) == 0,
                  "%s: names differ", text);
    ck_assert_msg(a->ts == b->ts, "%s: ts %.17g and %.17g", text, a->ts,
                  b->ts);
    ck_assert_msg(a->value == b->value &&
                      !signbit(a->value) == !signbit(b->value),
                  "%s: values %.17g and %.17g", text, a->value, b->value);
    ck_assert_msg(a->nf == b->nf, "%s: %zu and %zu pairs", text, a->nf,
                  b->nf);
    for (i = 0; i < a->nf; i++) {
        const gw__pfilter_t *x = &jp.pf[a->f0 + i], *y = &fp.pf[b->f0 + i];

        ck_assert_msg(x->name.n == y->name.n &&
                          memcmp(x->name.s, y->name.s, x->name.n) == 0 &&
                          x->value.n == y->value.n &&
                          memcmp(x->value.s, y->value.s, x->value.n) == 0,
                      "%s: pair %zu differs: %.*s=%.*s and %.*s=%.*s", text,
                      i + 1, (int) x->name.n, x->name.s, (int) x->value.n,
                      x->value.s, (int) y->name.n, y->name.s,
                      (int) y->value.n, y->value.s);
    }
}

static const char every_field[] =
    "{\"a\": \"avg\", \"p\": \"test_project\", \"n\": \"latency\", "
    "\"ts\": 1392454739.75, \"v\": 12.5, \"f\": {\"status\": \"200\", "
    "\"host\": [\"web1\", \"web2\", \"web1\"], \"ok\": true, \"no\": false, "
    "\"code\": 404, \"r\": 0.5, \"e\": 1e2}}";

static const want_t every_field_want = {
    GW_ACTION_AVG, "test_project", "latency", T + 0.75, 12.5,
    {"status=200", "host=web1", "host=web2", "ok=true", "no=false",
     "code=404", "r=0.5", "e=100.0", NULL}};

START_TEST(test_json_every_field)
{
    static const want_t longw = {
        GW_ACTION_GAUGE, "test_project", "temp", T, -3,
        {"floor=2", "room=b", NULL}};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;

    ck_assert_int_eq(parse_json(every_field, &root, &e, &why, &err), GW_OK);
    ck_assert_int_eq(why, GW__REJECT_NONE);
    check_event(every_field, &jp, &e, &every_field_want);
    json_decref(root);

    /* The long keys, and filters as pairs: a name given twice, the last
     * wins. */
    ck_assert_int_eq(
        parse_json("{\"action\": \"gauge\", \"project\": \"test_project\", "
                   "\"name\": \"temp\", \"timestamp\": "
                   "\"2014-02-15T08:58:59\", \"value\": -3, \"filters\": "
                   "[[\"room\", \"a\"], [\"floor\", 2], [\"room\", \"b\"]]}",
                   &root, &e, &why, &err),
        GW_OK);
    check_event("long keys", &jp, &e, &longw);
    json_decref(root);
    ck_assert_uint_eq(now_calls, 0);
}
END_TEST

START_TEST(test_fast_every_field)
{
    static const char longk[] =
        "{\"type\":\"gauge\",\"project\":\"test_project\",\"name\":\"temp\","
        "\"timestamp\":\"2014-02-15T08:58:59\",\"value\":-3,\"filters\":"
        "{\"room\":\"b\",\"floor\":2}}";
    static const want_t longw = {
        GW_ACTION_GAUGE, "test_project", "temp", T, -3,
        {"room=b", "floor=2", NULL}};
    gw__pevent_t e;
    size_t pos;

    ck_assert_int_eq(parse_fast(every_field, &pos, &e), GW_OK);
    ck_assert_uint_eq(pos, strlen(every_field));
    check_event(every_field, &fp, &e, &every_field_want);

    ck_assert_int_eq(parse_fast(longk, &pos, &e), GW_OK);
    ck_assert_uint_eq(pos, strlen(longk));
    check_event(longk, &fp, &e, &longw);
    ck_assert_uint_eq(now_calls, 0);

    /* One event of a batch: *pos stops right after its '}'. */
    ck_assert_int_eq(parse_fast("{\"n\":\"x\"} ,{\"n\":\"y\"}", &pos, &e),
                     GW_OK);
    ck_assert_uint_eq(pos, 9);
    ck_assert(str_is(e.name, "x"));
}
END_TEST

START_TEST(test_struct_every_field)
{
    static const gw_filter_t f[] = {
        {"room", "a"}, {"room", "a"}, {"room", "b"}, {"floor", "2"}};
    static const want_t w = {
        GW_ACTION_GAUGE, "test_project", "temp", T + 0.5, -3,
        {"room=a", "room=b", "floor=2", NULL}};
    gw_event_t ev = {"test_project", "temp", GW_ACTION_GAUGE, 1, T + 0.5,
                     -3, f, COUNT(f)};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;

    ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_OK);
    ck_assert_int_eq(why, GW__REJECT_NONE);
    check_event("struct", &jp, &e, &w);
    ck_assert_uint_eq(now_calls, 0);
}
END_TEST

/* ---- defaults ---------------------------------------------------------- */

START_TEST(test_defaults)
{
    static const char *const texts[] = {
        "{\"n\":\"x\"}",
        "{\"n\": \"x\", \"a\": null, \"p\": null, \"ts\": null, "
        "\"v\": null, \"f\": null, \"other\": 1}"};
    want_t w = {GW_ACTION_INCR, "test_project", "x", T + 0.25, 1, {NULL}};
    gw_event_t ev = {NULL, "x", GW_ACTION_DEFAULT, 0, 0, 1, NULL, 0};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t i, pos;
    unsigned calls = 0;

    for (i = 0; i < 2 * COUNT(texts); i++) {
        const char *text = texts[i % COUNT(texts)];

        /* The second round: a request's default action, and a clock that
         * has moved on (read at each event). */
        if (i == COUNT(texts)) {
            jp.default_action = fp.default_action = GW_ACTION_AVG;
            w.action = GW_ACTION_AVG;
            now_value = w.ts = T + 7.5;
        }
        ck_assert_int_eq(parse_json(text, &root, &e, &why, &err), GW_OK);
        check_event(text, &jp, &e, &w);
        json_decref(root);
        ck_assert_uint_eq(now_calls, ++calls);
        ck_assert_int_eq(parse_fast(text, &pos, &e), GW_OK);
        check_event(text, &fp, &e, &w);
        ck_assert_uint_eq(now_calls, ++calls);
        ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_OK);
        check_event("struct", &jp, &e, &w);
        ck_assert_uint_eq(now_calls, ++calls);
    }

    /* An action given wins over the request's default. */
    w.action = GW_ACTION_DECR;
    ck_assert_int_eq(
        parse_json("{\"n\":\"x\",\"a\":\"decr\"}", &root, &e, &why, &err),
        GW_OK);
    check_event("json decr", &jp, &e, &w);
    json_decref(root);
    ck_assert_int_eq(parse_fast("{\"n\":\"x\",\"a\":\"decr\"}", &pos, &e),
                     GW_OK);
    check_event("fast decr", &fp, &e, &w);
    ev.action = GW_ACTION_DECR;
    ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_OK);
    check_event("struct decr", &jp, &e, &w);
}
END_TEST

/* Without an authenticated project the event must name one. */
START_TEST(test_no_authenticated_project)
{
    static const want_t w = {GW_ACTION_INCR, "shop", "x", T + 0.25, 1,
                             {NULL}};
    gw_event_t ev = {NULL, "x", GW_ACTION_DEFAULT, 0, 0, 1, NULL, 0};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t pos;

    jp.project = fp.project = NULL;
    jp.project_len = fp.project_len = 0;
    ck_assert_int_eq(parse_json("{\"n\":\"x\"}", &root, &e, &why, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "\"p\" (project) is required");
    ck_assert_int_eq(why, GW__REJECT_INVALID);
    json_decref(root);
    ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_ERR);
    ck_assert_str_eq(err.msg, "\"p\" (project) is required");
    ck_assert_int_eq(why, GW__REJECT_INVALID);

    ck_assert_int_eq(
        parse_json("{\"n\":\"x\",\"p\":\"shop\"}", &root, &e, &why, &err),
        GW_OK);
    check_event("json", &jp, &e, &w);
    json_decref(root);
    ev.project = "shop";
    ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_OK);
    check_event("struct", &jp, &e, &w);
    /* The fast path only serves authenticated requests. */
    ck_assert_int_eq(parse_fast("{\"n\":\"x\",\"p\":\"shop\"}", &pos, &e),
                     GW_AGAIN);
    ck_assert_uint_eq(pos, 0);
}
END_TEST

/* ---- refusals ---------------------------------------------------------- */

typedef struct bad_s {
    const char *text;
    gw__reject_t why;
    const char *msg;
} bad_t;

#define INVALID GW__REJECT_INVALID
#define LIMIT GW__REJECT_LIMIT
#define RANGE                                                                  \
    " is out of range; epoch seconds must be from 0 to 253402300799 "          \
    "(9999-12-31T23:59:59 UTC)"
#define SCALAR "a filter value must be a string, number or boolean"

static void
json_refusals(const bad_t *bad, size_t n)
{
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t i;

    for (i = 0; i < n; i++) {
        ck_assert_msg(parse_json(bad[i].text, &root, &e, &why, &err) ==
                          GW_ERR,
                      "%s accepted", bad[i].text);
        ck_assert_msg(strcmp(err.msg, bad[i].msg) == 0,
                      "%s:\n  got:  %s\n  want: %s", bad[i].text, err.msg,
                      bad[i].msg);
        ck_assert_msg(why == bad[i].why, "%s: reason %s, want %s",
                      bad[i].text, gw__reject_name(why),
                      gw__reject_name(bad[i].why));
        json_decref(root);
    }
}

START_TEST(test_json_refusals)
{
    static const bad_t bad[] = {
        {"{\"n\":\"x\",\"a\":1}", INVALID,
         "\"a\" (action) must be a string: incr, decr, avg, gauge, timing or set"},
        {"{\"n\":\"x\",\"type\":\"sum\"}", INVALID,
         "action \"sum\" is unknown; use incr, decr, avg, gauge, timing or set"},
        {"{\"n\":\"x\",\"p\":7}", INVALID, "\"p\" (project) must be a string"},
        {"{\"n\":\"x\",\"project\":\"\"}", INVALID,
         "\"project\" (project) must not be empty"},
        {"{\"n\":\"x\",\"p\":\"shop\"}", GW__REJECT_PROJECT,
         "project \"shop\" in the event does not match the authenticated "
         "project \"test_project\""},
        /* Quotes are cut at 48 bytes, on a UTF-8 boundary. */
        {"{\"n\":\"x\",\"p\":\"" A10 A10 A10 A10 "aaaaaaa\xc3\xa9\"}",
         GW__REJECT_PROJECT,
         "project \"" A10 A10 A10 A10 "aaaaaaa...\" in the event does not "
         "match the authenticated project \"test_project\""},
        {"{\"v\":1}", INVALID, "\"n\" (metric name) is required"},
        {"{\"name\":[\"x\"]}", INVALID,
         "\"name\" (metric name) must be a string"},
        {"{\"n\":\"\"}", INVALID, "\"n\" (metric name) must not be empty"},
        {"{\"n\":\"x\",\"ts\":-1}", INVALID, "\"ts\" -1" RANGE},
        {"{\"n\":\"x\",\"timestamp\":253402300800}", INVALID,
         "\"timestamp\" 253402300800" RANGE},
        {"{\"n\":\"x\",\"ts\":\"10000-01-01T00:00:00\"}", INVALID,
         "\"ts\" \"10000-01-01T00:00:00\" is not a valid time; use epoch "
         "seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)"},
        {"{\"n\":\"x\",\"timestamp\":\"2014-02-30T00:00:00\"}", INVALID,
         "\"timestamp\" \"2014-02-30T00:00:00\" is not a valid time; use "
         "epoch seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)"},
        {"{\"n\":\"x\",\"ts\":true}", INVALID,
         "\"ts\" must be epoch seconds or a \"YYYY-MM-DDTHH:MM:SS\" string "
         "(UTC)"},
        {"{\"n\":\"x\",\"value\":\"1\"}", INVALID,
         "\"value\" must be a finite number"},
        {"{\"n\":\"x\",\"value\":1.7e308}", GW__REJECT_RANGE,
         "\"value\" 1.7e308 is out of range: |v| must be at most 1e300"},
        {"{\"n\":\"x\",\"v\":-1e301,\"a\":\"avg\"}", GW__REJECT_RANGE,
         "\"v\" -1e301 is out of range: |v| must be at most 1e300"},
        {"{\"n\":\"x\",\"f\":\"a=b\"}", INVALID,
         "\"f\" (filters) must be an object of name: value, or a list of "
         "[name, value] pairs"},
        {"{\"n\":\"x\",\"filters\":[[\"a\",1],\"b\"]}", INVALID,
         "\"filters\" item 2 must be a [name, value] pair with a string "
         "name"},
        {"{\"n\":\"x\",\"f\":[[1,1]]}", INVALID,
         "\"f\" item 1 must be a [name, value] pair with a string name"},
        {"{\"n\":\"x\",\"f\":{\"\":\"v\"}}", INVALID,
         "\"f\" has an empty filter name"},
        {"{\"n\":\"x\",\"f\":{\"s\":null}}", INVALID,
         "\"f\".\"s\" is null; " SCALAR},
        {"{\"n\":\"x\",\"f\":{\"s\":[\"a\",null]}}", INVALID,
         "\"f\".\"s\" is null; " SCALAR},
        {"{\"n\":\"x\",\"f\":{\"s\":{\"t\":1}}}", INVALID,
         "\"f\".\"s\" is an object; a filter value must be a string, "
         "number, boolean or a list of those"},
        {"{\"n\":\"x\",\"filters\":{\"s\":[1,[2]]}}", INVALID,
         "\"filters\".\"s\" holds a list or object inside a list; " SCALAR},
    };

    json_refusals(bad, COUNT(bad));
}
END_TEST

/* Each limit at the limit (accepted) and one past it. */
START_TEST(test_json_limits)
{
    static const bad_t bad[] = {
        {"{\"n\":\"123456789\"}", LIMIT,
         "\"n\" (metric name) is 9 bytes; at most 8 are allowed"},
        {"{\"n\":\"x\",\"f\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4}}", LIMIT,
         "\"f\" has 4 filters; at most 3 are allowed"},
        {"{\"n\":\"x\",\"f\":[[\"a\",1],[\"b\",2],[\"c\",3],[\"d\",4]]}",
         LIMIT, "\"f\" has 4 filters; at most 3 are allowed"},
        {"{\"n\":\"x\",\"f\":{\"a\":[1,2,3]}}", LIMIT,
         "\"f\".\"a\" has 3 values; at most 2 are allowed"},
        {"{\"n\":\"x\",\"f\":{\"123456789\":1}}", LIMIT,
         "\"f\" has a filter name of 9 bytes; at most 8 are allowed"},
        {"{\"n\":\"x\",\"f\":{\"a\":\"123456789\"}}", LIMIT,
         "\"f\".\"a\" has a value of 9 bytes; at most 8 are allowed"},
        /* A number's text counts as jansson writes it. */
        {"{\"n\":\"x\",\"f\":{\"a\":0.1234567}}", LIMIT,
         "\"f\".\"a\" has a value of 9 bytes; at most 8 are allowed"},
    };
    static const want_t w = {
        GW_ACTION_INCR, "test_project", "12345678", T + 0.25, 1,
        {"12345678=1", "12345678=2", "b=12345678", "c=0.123456", NULL}};
    static const char at[] =
        "{\"n\":\"12345678\",\"f\":{\"12345678\":[1,2],\"b\":\"12345678\","
        "\"c\":0.123456}}";
    gw__pevent_t e, e2;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t pos;

    json_refusals(bad, COUNT(bad));
    ck_assert_int_eq(parse_json(at, &root, &e, &why, &err), GW_OK);
    check_event(at, &jp, &e, &w);
    ck_assert_int_eq(parse_fast(at, &pos, &e2), GW_OK);
    check_same(at, &e, &e2);
    json_decref(root);
}
END_TEST

typedef struct sbad_s {
    gw_event_t ev;
    gw__reject_t why;
    const char *msg;
} sbad_t;

static void
struct_refusals(const sbad_t *bad, size_t n)
{
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    size_t i;

    for (i = 0; i < n; i++) {
        ck_assert_msg(parse_struct(&bad[i].ev, &e, &why, &err) == GW_ERR,
                      "event %zu accepted", i + 1);
        ck_assert_msg(strcmp(err.msg, bad[i].msg) == 0,
                      "event %zu:\n  got:  %s\n  want: %s", i + 1, err.msg,
                      bad[i].msg);
        ck_assert_msg(why == bad[i].why, "event %zu: reason %s, want %s",
                      i + 1, gw__reject_name(why),
                      gw__reject_name(bad[i].why));
    }
}

static const gw_filter_t f_null_name[] = {{"a", "1"}, {NULL, "v"}};
static const gw_filter_t f_empty_name[] = {{"", "v"}};
static const gw_filter_t f_bad_name[] = {{"\xc3", "v"}};
static const gw_filter_t f_null_value[] = {{"s", NULL}};
static const gw_filter_t f_bad_value[] = {{"s", "\xed\xa0\x80"}};
static const gw_filter_t f_long_name[] = {{"123456789", "v"}};
static const gw_filter_t f_long_value[] = {{"s", "123456789"}};
static const gw_filter_t f_seven[] = {{"a", "1"}, {"a", "1"}, {"a", "1"},
                                      {"a", "1"}, {"a", "1"}, {"a", "1"},
                                      {"a", "1"}};
static const gw_filter_t f_values[] = {
    {"s", "a"}, {"s", "a"}, {"t", "1"}, {"s", "b"}, {"s", "c"}};
static const gw_filter_t f_names[] = {{"a", "1"}, {"b", "1"}, {"a", "2"},
                                      {"c", "1"}, {"d", "1"}};

#define EV(p, n, a) p, n, (gw_action_t) (a), 0, 0, 1
#define F(f) f, COUNT(f)

START_TEST(test_struct_refusals)
{
    static const sbad_t bad[] = {
        {{EV(NULL, "x", 7), NULL, 0}, INVALID,
         "action 7 is unknown; use incr, decr, avg, gauge, timing or set"},
        {{EV(NULL, "x", -1), NULL, 0}, INVALID,
         "action -1 is unknown; use incr, decr, avg, gauge, timing or set"},
        {{EV("", "x", 0), NULL, 0}, INVALID,
         "\"p\" (project) must not be empty"},
        {{EV("shop", "x", 0), NULL, 0}, GW__REJECT_PROJECT,
         "project \"shop\" in the event does not match the authenticated "
         "project \"test_project\""},
        {{EV(NULL, NULL, 0), NULL, 0}, INVALID,
         "\"n\" (metric name) is required"},
        {{EV(NULL, "", 0), NULL, 0}, INVALID,
         "\"n\" (metric name) must not be empty"},
        {{EV(NULL, "\xff", 0), NULL, 0}, INVALID,
         "\"n\" (metric name) is not valid UTF-8"},
        {{NULL, "x", GW_ACTION_INCR, 1, -1, 1, NULL, 0}, INVALID,
         "\"ts\" -1" RANGE},
        {{NULL, "x", GW_ACTION_INCR, 1, INFINITY, 1, NULL, 0}, INVALID,
         "\"ts\" inf" RANGE},
        {{NULL, "x", GW_ACTION_INCR, 0, 0, NAN, NULL, 0}, GW__REJECT_RANGE,
         "\"v\" nan is out of range: |v| must be at most 1e300"},
        {{NULL, "x", GW_ACTION_INCR, 0, 0, -INFINITY, NULL, 0},
         GW__REJECT_RANGE,
         "\"v\" -inf is out of range: |v| must be at most 1e300"},
        {{NULL, "x", GW_ACTION_GAUGE, 0, 0, 1.7e308, NULL, 0},
         GW__REJECT_RANGE,
         "\"v\" 1.7e308 is out of range: |v| must be at most 1e300"},
        {{NULL, "x", GW_ACTION_DECR, 0, 0, -1.0000000000000002e300, NULL, 0},
         GW__REJECT_RANGE, "\"v\" -1.0000000000000002e300 is out of range: "
                           "|v| must be at most 1e300"},
        {{EV(NULL, "x", 0), F(f_null_name)}, INVALID,
         "\"f\" has an empty filter name"},
        {{EV(NULL, "x", 0), F(f_empty_name)}, INVALID,
         "\"f\" has an empty filter name"},
        {{EV(NULL, "x", 0), F(f_bad_name)}, INVALID,
         "\"f\" has a filter name that is not valid UTF-8"},
        {{EV(NULL, "x", 0), F(f_null_value)}, INVALID,
         "\"f\".\"s\" is null; " SCALAR},
        {{EV(NULL, "x", 0), F(f_bad_value)}, INVALID,
         "\"f\".\"s\" has a value that is not valid UTF-8"},
    };

    struct_refusals(bad, COUNT(bad));
}
END_TEST

START_TEST(test_struct_limits)
{
    static const sbad_t bad[] = {
        {{EV(NULL, "123456789", 0), NULL, 0}, LIMIT,
         "\"n\" (metric name) is 9 bytes; at most 8 are allowed"},
        {{EV(NULL, "x", 0), F(f_long_name)}, LIMIT,
         "\"f\" has a filter name of 9 bytes; at most 8 are allowed"},
        {{EV(NULL, "x", 0), F(f_long_value)}, LIMIT,
         "\"f\".\"s\" has a value of 9 bytes; at most 8 are allowed"},
        /* More than max_filters * max_filter_values, distinct or not. */
        {{EV(NULL, "x", 0), F(f_seven)}, LIMIT,
         "\"f\" has 7 filter values; at most 3 filters of 2 values are "
         "allowed"},
        {{EV(NULL, "x", 0), F(f_values)}, LIMIT,
         "\"f\".\"s\" has 3 values; at most 2 are allowed"},
        {{EV(NULL, "x", 0), F(f_names)}, LIMIT,
         "\"f\" has 4 filters; at most 3 are allowed"},
    };
    /* At the limits: six values, of which two distinct per name. */
    static const gw_filter_t at[] = {{"a", "1"}, {"a", "2"}, {"a", "1"},
                                     {"b", "1"}, {"c", "12345678"},
                                     {"a", "2"}};
    static const want_t w = {
        GW_ACTION_INCR, "test_project", "12345678", T + 0.25, 1,
        {"a=1", "a=2", "b=1", "c=12345678", NULL}};
    gw_event_t ev = {EV(NULL, "12345678", 0), F(at)};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;

    struct_refusals(bad, COUNT(bad));
    ck_assert_int_eq(parse_struct(&ev, &e, &why, &err), GW_OK);
    check_event("at the limits", &jp, &e, &w);
}
END_TEST

/* ---- the fast path against the jansson path -------------------------- */

/* Events the fast path takes: both parsers give the same event. */
static const char *const plain[] = {
    "{\"n\":\"x\"}",
    "{ \"n\" : \"x\" ,\n\t\"v\" : 2 }",
    "{\"n\":\"\xc3\xa9t\xc3\xa9\",\"f\":{\"\xe2\x82\xac\":"
    "\"\xf0\x9f\x98\x80\",\"k\":[\"\xe4\xb8\xad\",\"\xc3\xa9\"]}}",
    "{\"n\":\"x\",\"v\":1.5e3,\"ts\":1.3924547395E9}",
    "{\"n\":\"x\",\"v\":-2.5E-2,\"ts\":1392454739}",
    "{\"n\":\"x\",\"v\":1e-400,\"ts\":0}",
    "{\"n\":\"x\",\"v\":-0.0,\"ts\":253402300799}",
    "{\"n\":\"x\",\"v\":-0}",
    "{\"n\":\"x\",\"v\":123456789012345678}",
    "{\"n\":\"x\",\"v\":-9223372036854775808}",
    "{\"n\":\"x\",\"v\":0.1e+1}",
    "{\"n\":\"x\",\"f\":{\"a\":[1,\"1\",1.0,-0,1E2,2.5e-7,true,false,"
    "123456789012345678,-9223372036854775807,1e300]}}",
    "{\"n\":\"x\",\"ts\":\"2014-02-15T08:58:59\",\"a\":\"gauge\","
    "\"v\":3.25}",
    "{\"n\":\"x\",\"deep\":{\"a\":[1,{\"b\":[true,false,null,\"s\",-1.5e-3]}"
    "],\"c\":{},\"d\":[]},\"e\":[[[[]]]]}",
    "{\"n\":null,\"name\":\"x\",\"v\":null,\"value\":4,\"f\":null}",
    "{\"type\":\"decr\",\"project\":\"test_project\",\"name\":\"x\","
    "\"timestamp\":1392454739.5,\"value\":2,\"filters\":{\"k\":\"v\"}}",
    "{\"n\":\"x\",\"f\":{},\"filters\":null}",
    "{\"n\":\"x\",\"f\":{\"a\":[],\"b\":[\"1\",\"1\"]}}",
    "{\"a\":\"incr\",\"n\":\"x\",\"unknown\":123,\"p\":\"test_project\","
    "\"action\":\"avg\"}",
    "{\"n\":\"x\",\"pad\":\"" A10 A10 A10 A10 A10 A10 A10 A10 "\"}",
};

START_TEST(test_fast_agrees)
{
    gw__pevent_t a, b;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t i, pos;

    for (i = 0; i < COUNT(plain); i++) {
        ck_assert_msg(parse_fast(plain[i], &pos, &b) == GW_OK,
                      "%s: the fast path gave up", plain[i]);
        ck_assert_msg(pos == strlen(plain[i]), "%s: stopped at %zu",
                      plain[i], pos);
        ck_assert_msg(parse_json(plain[i], &root, &a, &why, &err) == GW_OK,
                      "%s: %s", plain[i], err.msg);
        check_same(plain[i], &a, &b);
        json_decref(root);
    }
}
END_TEST

/* Escapes are the jansson path's: the fast path gives up, and jansson
 * decodes them. */
START_TEST(test_escapes)
{
    static const struct {
        const char *text, *name, *pair;
    } esc[] = {
        {"{\"n\":\"caf\\u00e9\"}", "caf\xc3\xa9", NULL},
        {"{\"n\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", NULL},
        {"{\"n\":\"a\\\"b\\\\c\"}", "a\"b\\c", NULL},
        {"{\"n\":\"x\\ty\\n\"}", "x\ty\n", NULL},
        {"{\"\\u006e\":\"x\"}", "x", NULL},
        {"{\"n\":\"x\",\"f\":{\"k\":\"a\\/b\"}}", "x", "k=a/b"},
        {"{\"n\":\"x\",\"f\":{\"k\\u00e9\":\"v\"}}", "x", "k\xc3\xa9=v"},
        {"{\"n\":\"x\",\"ignored\":\"\\r\"}", "x", NULL},
    };
    want_t w = {GW_ACTION_INCR, "test_project", "", T + 0.25, 1, {NULL}};
    gw__pevent_t e;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t i, pos;

    for (i = 0; i < COUNT(esc); i++) {
        pos = 99;
        ck_assert_msg(parse_fast(esc[i].text, &pos, &e) == GW_AGAIN &&
                          pos == 0,
                      "%s: taken by the fast path", esc[i].text);
        ck_assert_int_eq(parse_json(esc[i].text, &root, &e, &why, &err),
                         GW_OK);
        w.name = esc[i].name;
        w.filters[0] = esc[i].pair;
        check_event(esc[i].text, &jp, &e, &w);
        json_decref(root);
    }
}
END_TEST

/* What the fast path leaves to the jansson path: it gives up and leaves
 * *pos where it was. */
static void
falls_back(const char *const *texts, size_t n)
{
    gw__pevent_t e;
    size_t i, pos;

    for (i = 0; i < n; i++) {
        ck_assert_msg(parse_fast(texts[i], &pos, &e) == GW_AGAIN,
                      "%s: taken by the fast path", texts[i]);
        ck_assert_msg(pos == 0, "%s: *pos moved to %zu", texts[i], pos);
    }
}

START_TEST(test_fast_falls_back)
{
    static const char *const texts[] = {
        /* duplicates, which jansson resolves (the last wins) */
        "{\"n\":\"x\",\"n\":\"y\"}",
        "{\"n\":\"x\",\"name\":\"y\",\"name\":\"z\"}",
        "{\"n\":\"x\",\"f\":{\"s\":1,\"s\":2}}",
        "{\"n\":\"x\",\"f\":{\"a\":1},\"filters\":{\"b\":2}}",
        /* forms only the jansson path reads */
        "{\"n\":\"x\",\"f\":[[\"s\",1]]}",
        /* refusals, which the jansson path explains */
        "{\"n\":\"x\",\"f\":\"s\"}",
        "{\"n\":\"x\",\"f\":{\"s\":[[1]]}}",
        "{\"n\":\"x\",\"f\":{\"s\":{\"t\":1}}}",
        "{\"n\":\"x\",\"f\":{\"s\":null}}",
        "{\"n\":\"x\",\"f\":{\"s\":[null]}}",
        "{\"n\":\"x\",\"f\":{\"\":1}}",
        "{\"n\":\"x\",\"p\":\"shop\"}",
        "{\"n\":\"x\",\"p\":1}",
        "{\"n\":\"x\",\"a\":\"sum\"}",
        "{\"n\":\"x\",\"a\":1}",
        "{\"n\":\"\"}",
        "{\"n\":1}",
        "{}",
        "{\"v\":1}",
        "{\"n\":\"x\",\"v\":\"1\"}",
        "{\"n\":\"x\",\"v\":true}",
        "{\"n\":\"x\",\"ts\":-1}",
        "{\"n\":\"x\",\"ts\":253402300800}",
        "{\"n\":\"x\",\"ts\":\"2014-02-15\"}",
        "{\"n\":\"x\",\"ts\":\"2014-02-30T00:00:00\"}",
        "{\"n\":\"x\",\"ts\":false}",
        /* numbers that are not JSON, or that jansson refuses */
        "{\"n\":\"x\",\"v\":01}",
        "{\"n\":\"x\",\"v\":1.}",
        "{\"n\":\"x\",\"v\":-}",
        "{\"n\":\"x\",\"v\":.5}",
        "{\"n\":\"x\",\"v\":1e}",
        "{\"n\":\"x\",\"v\":+1}",
        "{\"n\":\"x\",\"v\":1e400}",
        "{\"n\":\"x\",\"v\":9223372036854775808}",
        "{\"n\":\"x\",\"v\":1.00000000000000000000000000000000000000000000"
        "00000000000000000001}",
        /* not JSON */
        "{\"n\":\"x\",\"v\":truex}",
        "{\"n\":\"x\",\"v\":nul}",
        "{\"n\":\"x\",}",
        "{\"n\":\"x\"",
        "{\"n\":\"x\" \"v\":1}",
        "{\"n\" \"x\"}",
        "{n:\"x\"}",
        "{\"n\":\"x\",\"o\":[1,]}",
        "{\"n\":\"x\",\"o\":{\"a\"}}",
        "{\"n\":\"\xff\"}",
        "{\"n\":\"\xed\xa0\x80\"}",
        "{\"n\":\"\xc3\"}",
        "{\"n\":\"a\x01" "b\"}",
        " {\"n\":\"x\"}",
        "[{\"n\":\"x\"}]",
        "",
    };

    falls_back(texts, COUNT(texts));
}
END_TEST

START_TEST(test_fast_falls_back_at_limits)
{
    static const char *const texts[] = {
        "{\"n\":\"123456789\"}",
        "{\"n\":\"x\",\"f\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4}}",
        "{\"n\":\"x\",\"f\":{\"a\":[1,2,3]}}",
        "{\"n\":\"x\",\"f\":{\"a\":[1,1,1]}}",
        "{\"n\":\"x\",\"f\":{\"a\":\"123456789\"}}",
        "{\"n\":\"x\",\"f\":{\"a\":0.1234567}}",
        "{\"n\":\"x\",\"f\":{\"123456789\":1}}",
    };

    falls_back(texts, COUNT(texts));
}
END_TEST

/* Values nested 31 deep are skipped; deeper ones are left to jansson. */
START_TEST(test_fast_depth)
{
    char text[128];
    gw__pevent_t a, b;
    gw__reject_t why;
    gw_error_t err;
    json_t *root;
    size_t pos;
    int depth, i, n;

    for (depth = 31; depth <= 32; depth++) {
        n = snprintf(text, sizeof(text), "{\"n\":\"x\",\"d\":");
        for (i = 0; i < depth; i++)
            text[n++] = '[';
        text[n++] = '1';
        for (i = 0; i < depth; i++)
            text[n++] = ']';
        text[n++] = '}';
        text[n] = '\0';
        ck_assert_int_eq(parse_json(text, &root, &a, &why, &err), GW_OK);
        if (depth == 31) {
            ck_assert_int_eq(parse_fast(text, &pos, &b), GW_OK);
            ck_assert_uint_eq(pos, (size_t) n);
            check_same(text, &a, &b);
        } else {
            ck_assert_int_eq(parse_fast(text, &pos, &b), GW_AGAIN);
            ck_assert_uint_eq(pos, 0);
        }
        json_decref(root);
    }
}
END_TEST

static Suite *
event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("default_limits");
    TCase *small = tcase_create("small_limits");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_json_every_field);
    tcase_add_test(tc, test_fast_every_field);
    tcase_add_test(tc, test_struct_every_field);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_no_authenticated_project);
    tcase_add_test(tc, test_json_refusals);
    tcase_add_test(tc, test_struct_refusals);
    tcase_add_test(tc, test_fast_agrees);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_fast_falls_back);
    tcase_add_test(tc, test_fast_depth);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(small, setup_small, teardown);
    tcase_add_test(small, test_json_limits);
    tcase_add_test(small, test_struct_limits);
    tcase_add_test(small, test_fast_falls_back_at_limits);
    suite_add_tcase(s, small);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(event_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
