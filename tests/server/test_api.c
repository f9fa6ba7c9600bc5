/*
 * tests/server/test_api.c: the server role's pure parts: periods, date ranges
 * and their buckets (api_stats.c), session cookies (api_auth.c), numbers and
 * escaping (api.c), the Host check (api_host.c). The routes themselves are
 * tested against the real daemon by tests/integration/test_api.py.
 */
#include "server/api_int.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ingest/bucket.h"

#define ALL_PERIODS 0x7fu
#define NOW 1392454739 /* 2014-02-15 08:58:59 UTC */

static int64_t from, to;
static size_t n;
static gw_error_t err;

static int
range(const char *f, const char *t, gw_period_t p, size_t max)
{
    memset(&err, 0, sizeof(err));
    from = to = -1;
    n = 0;
    return gw__api_range(f, t, p, NOW, max, 0x7f, NULL, &from, &to, &n, &err);
}

START_TEST(test_period_names)
{
    gw_period_t p;

    ck_assert_int_eq(gw__api_period("week", ALL_PERIODS, &p, &err), GW_OK);
    ck_assert_int_eq(p, GW_PERIOD_WEEK);
    ck_assert_int_eq(gw__api_period(NULL, ALL_PERIODS, &p, &err), GW_OK);
    ck_assert_int_eq(p, GW_PERIOD_MONTH);
    ck_assert_int_eq(gw__api_period("", ALL_PERIODS, &p, &err), GW_OK);
    ck_assert_int_eq(p, GW_PERIOD_MONTH);
    ck_assert_int_eq(gw__api_period("Week", ALL_PERIODS, &p, &err), GW_ERR);
    ck_assert_str_eq(err.msg, "unknown period \"Week\": use one of minute, "
                              "hour, day, week, month, year, all");
    ck_assert_int_eq(gw__api_period("minute", 0x7eu, &p, &err), GW_ERR);
    ck_assert_str_eq(err.msg, "period \"minute\" is not kept by this server "
                              "(PERIODS): use one of hour, day, week, month, "
                              "year, all");
    ck_assert_int_eq(gw__api_period(NULL, 1u << GW_PERIOD_DAY, &p, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "period is required (PERIODS does not keep "
                              "month): use one of day");
}
END_TEST

START_TEST(test_range_explicit)
{
    /* Days: both ends inclusive. */
    ck_assert_int_eq(range("2014-02-12", "2014-02-14", GW_PERIOD_DAY, 10000),
                     GW_OK);
    ck_assert_int_eq(from, 1392163200);
    ck_assert_int_eq(to, 1392336000);
    ck_assert_uint_eq(n, 3);
    /* Never past the current bucket (NOW is 2014-02-15 08:58:59): a
     * to_date after it ends there. */
    ck_assert_int_eq(range("2014-02-14", "2014-02-17", GW_PERIOD_DAY, 10000),
                     GW_OK);
    ck_assert_int_eq(from, 1392336000);
    ck_assert_int_eq(to, 1392422400);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(range("2014-02-15T08:00:00", "2014-03-01",
                           GW_PERIOD_MINUTE, 10000), GW_OK);
    ck_assert_int_eq(to, 1392454680);
    ck_assert_uint_eq(n, 59);
    /* A range after now has no buckets (and no error). */
    ck_assert_int_eq(range("2015-01-01", "2015-02-01", GW_PERIOD_DAY, 10000),
                     GW_OK);
    ck_assert_uint_eq(n, 0);
    /* Weeks start on Monday: 2013-12-31 is in the week of 12-30, 2014-01-05
     * (a Sunday) too. */
    ck_assert_int_eq(range("2013-12-31", "2014-01-05", GW_PERIOD_WEEK, 10000),
                     GW_OK);
    ck_assert_int_eq(from, 1388361600);
    ck_assert_int_eq(to, 1388361600);
    ck_assert_uint_eq(n, 1);
    /* Months across a year; years. */
    ck_assert_int_eq(range("2013-11-30", "2014-02-01", GW_PERIOD_MONTH, 10000),
                     GW_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(from, 1383264000); /* 2013-11-01 */
    ck_assert_int_eq(to, 1391212800);   /* 2014-02-01 */
    ck_assert_int_eq(range("2000-06-01", "2014-01-01", GW_PERIOD_YEAR, 10000),
                     GW_OK);
    ck_assert_uint_eq(n, 15);
    /* Epoch seconds and ISO times align down to their bucket. */
    ck_assert_int_eq(
        range("1392451300", "2014-02-15T08:10:00", GW_PERIOD_HOUR, 10000),
        GW_OK);
    ck_assert_int_eq(from, 1392451200);
    ck_assert_int_eq(to, 1392451200);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(
        range("1392440000", "2014-02-15T08:10:00", GW_PERIOD_HOUR, 10000),
        GW_OK);
    ck_assert_int_eq(from, 1392436800);
    ck_assert_uint_eq(n, 5);
    /* all: one bucket 0, dates or not. */
    ck_assert_int_eq(range("2014-01-01", "2014-02-01", GW_PERIOD_ALL, 1),
                     GW_OK);
    ck_assert_int_eq(from, 0);
    ck_assert_int_eq(to, 0);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_range_defaults)
{
    /* Nothing: the 30 buckets up to now. */
    ck_assert_int_eq(range(NULL, NULL, GW_PERIOD_DAY, 10000), GW_OK);
    ck_assert_int_eq(to, 1392422400);
    ck_assert_int_eq(from, 1392422400 - 29 * 86400);
    ck_assert_uint_eq(n, 30);
    ck_assert_int_eq(range("", "", GW_PERIOD_MONTH, 10000), GW_OK);
    ck_assert_int_eq(to, 1391212800);   /* 2014-02-01 */
    ck_assert_int_eq(from, 1314835200); /* 2011-09-01 */
    ck_assert_uint_eq(n, 30);
    /* Only to: 30 buckets up to it; only from: up to now. */
    ck_assert_int_eq(range(NULL, "2014-01-10", GW_PERIOD_DAY, 10000), GW_OK);
    ck_assert_int_eq(to, 1389312000);
    ck_assert_uint_eq(n, 30);
    ck_assert_int_eq(range("2014-02-10", NULL, GW_PERIOD_DAY, 10000), GW_OK);
    ck_assert_int_eq(from, 1391990400);
    ck_assert_int_eq(to, 1392422400);
    ck_assert_uint_eq(n, 6);
}
END_TEST

START_TEST(test_range_retention)
{
    int64_t ret[GW_PERIOD_COUNT] = {0};

    ret[GW_PERIOD_MINUTE] = 86400;
    ret[GW_PERIOD_HOUR] = 90 * 86400;
    memset(&err, 0, sizeof(err));
    /* 2 days back in minutes: refused before MAX_POINTS is looked at. */
    ck_assert_int_eq(gw__api_range("2014-02-13T08:00:00",
                                   "2014-02-15T08:00:00", GW_PERIOD_MINUTE,
                                   NOW, 10, ALL_PERIODS, ret, &from, &to, &n,
                                   &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "minute buckets are kept for 1d (RETENTION.minute): the "
                     "oldest starts at 2014-02-14T08:58:00; for "
                     "2014-02-13T08:00:00 ask period=hour (kept 90d)");
    /* Past the hour's too: the day (kept for ever) holds it. */
    ck_assert_int_eq(gw__api_range("2013-01-01", NULL, GW_PERIOD_HOUR, NOW,
                                   100000, ALL_PERIODS, ret, &from, &to, &n,
                                   &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "hour buckets are kept for 90d (RETENTION.hour): the "
                     "oldest starts at 2013-11-17T08:00:00; for "
                     "2013-01-01 ask period=day (kept for ever)");
    /* From the oldest kept bucket on: fine. */
    ck_assert_int_eq(gw__api_range("2014-02-14T08:58:00", NULL,
                                   GW_PERIOD_MINUTE, NOW, 10000, ALL_PERIODS,
                                   ret, &from, &to, &n, &err),
                     GW_OK);
    ck_assert_int_eq(from, 1392368280);
    /* Without from_date the default range starts no earlier than it:
     * with 1 minute kept, the last 2 minutes only. */
    ret[GW_PERIOD_MINUTE] = 60;
    ck_assert_int_eq(gw__api_range(NULL, NULL, GW_PERIOD_MINUTE, NOW, 10000,
                                   ALL_PERIODS, ret, &from, &to, &n, &err),
                     GW_OK);
    ck_assert_int_eq(from, 1392454620);
    ck_assert_int_eq(to, 1392454680);
    ck_assert_uint_eq(n, 2);
    /* No period keeps it. */
    ck_assert_int_eq(gw__api_range("2014-01-01", NULL, GW_PERIOD_MINUTE, NOW,
                                   10000, 1u << GW_PERIOD_MINUTE, ret, &from,
                                   &to, &n, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "minute buckets are kept for 1m (RETENTION.minute): the "
                     "oldest starts at 2014-02-15T08:57:00, and no period "
                     "keeps 2014-01-01");
    /* Only to_date, before the oldest minute kept: refused too, not one
     * expired bucket that reads as 0. */
    ret[GW_PERIOD_MINUTE] = 86400;
    ck_assert_int_eq(gw__api_range(NULL, "2014-02-13T08:00:00",
                                   GW_PERIOD_MINUTE, NOW, 10000, ALL_PERIODS,
                                   ret, &from, &to, &n, &err),
                     GW_ERR);
    ck_assert_str_eq(err.msg,
                     "minute buckets are kept for 1d (RETENTION.minute): the "
                     "oldest starts at 2014-02-14T08:58:00; for "
                     "2014-02-13T08:00:00 ask period=hour (kept 90d)");
    /* Only to_date, its 30 buckets reaching before it: they start at it. */
    ck_assert_int_eq(gw__api_range(NULL, "2014-02-14T09:10:00",
                                   GW_PERIOD_MINUTE, NOW, 10000, ALL_PERIODS,
                                   ret, &from, &to, &n, &err),
                     GW_OK);
    ck_assert_int_eq(from, 1392368280);
    ck_assert_uint_eq(n, 13);
}
END_TEST

START_TEST(test_range_errors)
{
    ck_assert_int_eq(range("2014-02-10", "2014-02-01", GW_PERIOD_DAY, 10000),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "reversed date range: from_date 2014-02-10 is "
                              "after to_date 2014-02-01");
    /* Only from, in the future: no buckets, not an error. */
    ck_assert_int_eq(range("2015-01-01", NULL, GW_PERIOD_DAY, 10000), GW_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(range("2014-02-30", NULL, GW_PERIOD_DAY, 10000), GW_ERR);
    ck_assert_str_eq(err.msg, "bad from_date \"2014-02-30\": use YYYY-MM-DD, "
                              "YYYY-MM-DDTHH:MM:SS (UTC) or epoch seconds");
    ck_assert_int_eq(range(NULL, "12e3", GW_PERIOD_DAY, 10000), GW_ERR);
    ck_assert_str_eq(err.msg, "bad to_date \"12e3\": use YYYY-MM-DD, "
                              "YYYY-MM-DDTHH:MM:SS (UTC) or epoch seconds");
    /* MAX_POINTS: the limit itself passes, one more fails. */
    ck_assert_int_eq(range("2014-01-01", "2014-01-10", GW_PERIOD_DAY, 10),
                     GW_OK);
    ck_assert_uint_eq(n, 10);
    ck_assert_int_eq(range("2014-01-01", "2014-01-11", GW_PERIOD_DAY, 10),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "the range asks for 11 day buckets, more than "
                              "MAX_POINTS (10): shorten the range or use a "
                              "longer period");
    ck_assert_int_eq(range("1970-01-01", "2014-01-01", GW_PERIOD_MINUTE, 10000),
                     GW_ERR);
    ck_assert_str_eq(err.msg, "the range asks for 23142241 minute buckets, "
                              "more than MAX_POINTS (10000): shorten the "
                              "range or use a longer period");
}
END_TEST

START_TEST(test_buckets)
{
    int64_t *b = gw__api_buckets(GW_PERIOD_MONTH, 1388534400, 3);

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b[0], 1388534400); /* 2014-01-01 */
    ck_assert_int_eq(b[1], 1391212800); /* 2014-02-01 */
    ck_assert_int_eq(b[2], 1393632000); /* 2014-03-01 */
    free(b);
    b = gw__api_buckets(GW_PERIOD_WEEK, 1388361600, 2);
    ck_assert_int_eq(b[1] - b[0], 7 * 86400);
    free(b);
}
END_TEST

START_TEST(test_number)
{
    json_t *v = gw__api_number(3.0);

    ck_assert(json_is_integer(v));
    ck_assert_int_eq(json_integer_value(v), 3);
    json_decref(v);
    v = gw__api_number(0.75);
    ck_assert(json_is_real(v));
    json_decref(v);
    v = gw__api_number(-0.0);
    ck_assert(json_is_integer(v) && json_integer_value(v) == 0);
    json_decref(v);
    v = gw__api_number(1e300);
    ck_assert(json_is_real(v));
    json_decref(v);
}
END_TEST

/* Non-finite values (an old storage's inf) are null, never 0 (issue 16). */
START_TEST(test_number_not_finite)
{
    const double bad[] = {INFINITY, -INFINITY, NAN};
    json_t *v;
    char *text;
    size_t i;

    for (i = 0; i < 3; i++) {
        v = gw__api_number(bad[i]);
        ck_assert_msg(json_is_null(v), "value %zu is not null", i);
        json_decref(v);
    }
    v = gw__api_number(DBL_MAX);
    text = json_dumps(v, JSON_ENCODE_ANY);
    ck_assert_str_eq(text, "1.7976931348623157e308");
    free(text);
    json_decref(v);
}
END_TEST

/* range, avg, min and max of values near DBL_MAX and of nulls. */
START_TEST(test_series_json_bounds)
{
    const int64_t buckets[3] = {0, 60, 120};
    const double vals[3] = {DBL_MAX, DBL_MAX, NAN};
    const double none[2] = {NAN, INFINITY};
    json_t *o = json_object();
    char *text;

    gw__api_series_json(o, buckets, vals, 3);
    text = json_dumps(o, JSON_SORT_KEYS);
    ck_assert_str_eq(text,
                     "{\"avg\": 1.7976931348623157e308, "
                     "\"max\": 1.7976931348623157e308, "
                     "\"min\": 1.7976931348623157e308, "
                     "\"range\": [[0, 1.7976931348623157e308], "
                     "[60, 1.7976931348623157e308], [120, null]]}");
    free(text);
    json_decref(o);
    o = json_object();
    gw__api_series_json(o, buckets, none, 2);
    text = json_dumps(o, JSON_SORT_KEYS);
    ck_assert_str_eq(text, "{\"avg\": null, \"max\": null, \"min\": null, "
                           "\"range\": [[0, null], [60, null]]}");
    free(text);
    json_decref(o);
}
END_TEST

/* A storage that holds inf in bucket 60 and a number in bucket 0. */
static int
inf_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
          gw_error_t *err)
{
    gw_point_t pt = {0, 5, 1, 0};

    (void)state;
    (void)q;
    (void)err;
    emit(arg, &pt);
    pt.bucket = 60;
    pt.sum = INFINITY;
    emit(arg, &pt);
    return GW_OK;
}

static char logged[1024];

static void
log_sink(int level, const char *line)
{
    (void)level;
    snprintf(logged, sizeof(logged), "%s", line);
}

START_TEST(test_series_inf_logged)
{
    gw_storage_ops_t ops;
    gw_query_t q;
    const int64_t buckets[2] = {0, 60};
    double vals[2] = {0, 0};
    gw_error_t err;

    memset(&ops, 0, sizeof(ops));
    ops.query = inf_query;
    memset(&q, 0, sizeof(q));
    q.project = "shop";
    q.metric = "or\"ders";
    q.filter_name = "s";
    q.filter_value = "x";
    q.kind = GW_KIND_COUNTER;
    q.period = GW_PERIOD_MINUTE;
    gw__log_set_sink(log_sink);
    ck_assert_int_eq(gw__api_series(&ops, NULL, &q, NULL, buckets, 2, vals, &err),
                     GW_OK);
    gw__log_set_sink(NULL);
    ck_assert(vals[0] == 5 && isnan(vals[1]));
    ck_assert_msg(strstr(logged,
                         "[server] storage returned a non-finite value (inf) "
                         "for project \"shop\" metric \"or\\\"ders\" filter "
                         "\"s\" = \"x\" period minute bucket 60 (1 of 2 in "
                         "the range): shown as null") != NULL,
                  "logged: %s", logged);
}
END_TEST

START_TEST(test_escaping)
{
    char *s = gw__api_html_escape("<a href=\"x\">&'</a>");

    ck_assert_str_eq(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    free(s);
    s = gw__api_urlencode("/gw/?a=b c&d");
    ck_assert_str_eq(s, "%2Fgw%2F%3Fa%3Db%20c%26d");
    free(s);
}
END_TEST

/* The server's view of the process: here ctx is the config itself. */
static const gw__config_t *
session_config(void *ctx)
{
    return ctx;
}

/* session_valid of v at now for generation gen and password hash pw. */
static int
session_ok(gw__api_t *api, const char *v, int64_t now, uint64_t gen,
           const char *pw, char *email)
{
    gw__api_session_t s;

    if (!gw__api_session_parse(v, &s))
        return 0;
    strcpy(email, s.email);
    return gw__api_session_valid(api, &s, gen, pw, now);
}

START_TEST(test_sessions)
{
    gw__config_t cfg;
    gw__api_t api;
    char email[256];
    char *v, *bad;
    const char *pw = "pbkdf2-sha256$1$salt$hash";

    memset(&cfg, 0, sizeof(cfg));
    memset(&api, 0, sizeof(api));
    cfg.cookie_secret = "test cookie secret";
    cfg.prefix = "";
    cfg.session_max_age = 100;
    cfg.session_idle_timeout = 10;
    api.env.ctx = &cfg;
    api.env.config = session_config;

    v = gw__api_session_make(&api, "ann@example.com", NOW, NOW + 5, 7, pw);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(
        strncmp(v, "ann@example.com|1392454739|1392454744|", 38), 0);
    ck_assert_uint_eq(strlen(v), 38 + 64);
    ck_assert_int_eq(session_ok(&api, v, NOW + 5, 7, pw, email), 1);
    ck_assert_str_eq(email, "ann@example.com");
    /* Idle for longer than SESSION_IDLE_TIMEOUT, then off. */
    ck_assert_int_eq(session_ok(&api, v, NOW + 15, 7, pw, email), 1);
    ck_assert_int_eq(session_ok(&api, v, NOW + 16, 7, pw, email), 0);
    cfg.session_idle_timeout = 0;
    ck_assert_int_eq(session_ok(&api, v, NOW + 100, 7, pw, email), 1);
    /* Older than SESSION_MAX_AGE. */
    ck_assert_int_eq(session_ok(&api, v, NOW + 101, 7, pw, email), 0);
    /* Another generation (a logout) or password hash. */
    ck_assert_int_eq(session_ok(&api, v, NOW + 5, 8, pw, email), 0);
    ck_assert_int_eq(session_ok(&api, v, NOW + 5, 7, "pbkdf2-sha256$x", email),
                     0);
    /* Another e-mail or time with the same MAC. */
    bad = strdup(v);
    bad[0] = 'b';
    ck_assert_int_eq(session_ok(&api, bad, NOW + 5, 7, pw, email), 0);
    free(bad);
    bad = strdup(v);
    bad[25] = '8'; /* the login 1 s earlier: not what was signed */
    ck_assert_int_eq(session_ok(&api, bad, NOW + 5, 7, pw, email), 0);
    free(bad);
    /* Another secret. */
    cfg.cookie_secret = "another secret";
    ck_assert_int_eq(session_ok(&api, v, NOW + 5, 7, pw, email), 0);
    cfg.cookie_secret = "test cookie secret";
    free(v);
    /* Times ahead of the clock, or seen before issued. */
    v = gw__api_session_make(&api, "ann@example.com", NOW + 61, NOW + 61, 7, pw);
    ck_assert_int_eq(session_ok(&api, v, NOW, 7, pw, email), 0);
    free(v);
    v = gw__api_session_make(&api, "ann@example.com", NOW, NOW - 1, 7, pw);
    ck_assert_int_eq(session_ok(&api, v, NOW, 7, pw, email), 0);
    free(v);
    /* A '|' in the e-mail stays in it. */
    v = gw__api_session_make(&api, "a|b@example.com", NOW, NOW, 0, pw);
    ck_assert_int_eq(session_ok(&api, v, NOW, 0, pw, email), 1);
    ck_assert_str_eq(email, "a|b@example.com");
    free(v);
    /* Garbage, and the format before issue 16 (email|expiry|mac). */
    ck_assert_int_eq(session_ok(&api, "", NOW, 0, pw, email), 0);
    ck_assert_int_eq(session_ok(&api, "a|1|zz", NOW, 0, pw, email), 0);
    ck_assert_int_eq(session_ok(&api, "|||", NOW, 0, pw, email), 0);
    ck_assert_int_eq(session_ok(&api, "a|x|1|0000000000000000000000000000000"
                                      "000000000000000000000000000000000",
                                NOW, 0, pw, email), 0);
    ck_assert_int_eq(session_ok(&api, "ann@example.com|1392454839|4735285dd"
                                      "fdded489b23a903df50577132a38fb8894fe3"
                                      "ce9c75b6290441c4df", NOW, 0, pw, email),
                     0);
}
END_TEST

START_TEST(test_hosts)
{
    char *lo = gw__api_host_listen("127.0.0.2");
    char *v6 = gw__api_host_listen("FD00::5");
    char *names[] = {"stats.example.com", ".corp.example", "[2001:db8::1]"};
    char *any[] = {"x.example", "*"};
    /* Host value, listen address (0: every address, 1: lo, 2: v6), names
     * (0: none, 1: names, 2: any), whether it is answered. */
    static const struct {
        const char *host;
        int listen, names, ok;
    } cases[] = {
        /* On every address: only the loopback names. */
        {NULL, 0, 0, 1},
        {"localhost:8889", 0, 0, 1},
        {"127.0.0.1", 0, 0, 1},
        {"[::1]:1", 0, 0, 1},
        {"0.0.0.0", 0, 0, 0},
        {"192.0.2.10", 0, 0, 0},
        {"attacker.example", 0, 0, 0},
        /* The listen address, any port. */
        {"127.0.0.2:80", 1, 0, 1},
        {"127.0.0.3", 1, 0, 0},
        {"[FD00::5]:8889", 2, 0, 1},
        /* Names, ".domain", brackets; malformed values never match. */
        {"Stats.Example.Com.", 1, 1, 1},
        {"a.b.corp.example:1", 1, 1, 1},
        {"corp.example", 1, 1, 1},
        {".corp.example", 1, 1, 0},
        {"xcorp.example", 1, 1, 0},
        {"[2001:db8::1]", 1, 1, 1},
        {"2001:db8::1", 1, 1, 0},
        {"localhost:123456", 1, 1, 0},
        {"localhost:", 1, 1, 0},
        {"a@localhost", 1, 1, 0},
        {"[::1]x", 1, 1, 0},
        {"[]", 1, 1, 0},
        {"", 1, 1, 0},
        {" localhost\t", 1, 1, 1},
        /* "*": anything. */
        {"attacker.example", 0, 2, 1},
        {"", 0, 2, 1},
    };
    const char *listens[] = {NULL, lo, v6};
    char **lists[] = {NULL, names, any};
    size_t counts[] = {0, 3, 2}, i;

    ck_assert_str_eq(lo, "127.0.0.2");
    ck_assert_str_eq(v6, "[fd00::5]");
    ck_assert_ptr_null(gw__api_host_listen("0.0.0.0"));
    ck_assert_ptr_null(gw__api_host_listen("::"));
    ck_assert_ptr_null(gw__api_host_listen(""));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(gw__api_host_allowed(cases[i].host,
                                           listens[cases[i].listen],
                                           lists[cases[i].names],
                                           counts[cases[i].names]) ==
                          cases[i].ok,
                      "Host \"%s\": expected %d", cases[i].host ? cases[i].host
                                                               : "(none)",
                      cases[i].ok);
    free(lo);
    free(v6);
}
END_TEST

static Suite *
api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_period_names);
    tcase_add_test(tc, test_range_explicit);
    tcase_add_test(tc, test_range_defaults);
    tcase_add_test(tc, test_range_errors);
    tcase_add_test(tc, test_range_retention);
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_number);
    tcase_add_test(tc, test_number_not_finite);
    tcase_add_test(tc, test_series_json_bounds);
    tcase_add_test(tc, test_series_inf_logged);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_sessions);
    tcase_add_test(tc, test_hosts);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(api_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
