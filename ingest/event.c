/*
 * ingest/event.c: one event, from JSON or from a transport's gw_event_t, to
 * a validated gw__pevent_t (SPEC §2).
 *
 * Keys: short ones win over long ones ("a" over "action" over "type", "p"
 * over "project", ...); a key whose value is null counts as absent; other
 * keys are ignored. Every refusal names the field and says what is
 * allowed. The kind rule and MAX_SERIES are checked later by ingest.c,
 * which knows the metrics; this file knows one event only.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "ingest_int.h"

/* 9999-12-31T23:59:59 UTC is the last second an event may carry. */
#define TS_MAX 253402300799.0

/* Messages quote at most this many bytes of a name the client sent. */
#define QUOTE_MAX 48

const char *
gw__action_name(gw_action_t a)
{
    switch (a) {
    case GW_ACTION_INCR:
        return "incr";
    case GW_ACTION_DECR:
        return "decr";
    case GW_ACTION_AVG:
        return "avg";
    case GW_ACTION_GAUGE:
        return "gauge";
    default:
        return "incr";
    }
}

/* A printable prefix of s[0..n): at most QUOTE_MAX bytes, cut on a UTF-8
 * boundary, "..." when cut. buf holds QUOTE_MAX + 4 bytes. */
static const char *
quote(char *buf, const char *s, size_t n)
{
    size_t k = n;

    if (k > QUOTE_MAX) {
        k = QUOTE_MAX;
        while (k > 0 && ((unsigned char) s[k] & 0xc0) == 0x80)
            k--;
    }
    memcpy(buf, s, k);
    if (k < n)
        memcpy(buf + k, "...", 4);
    else
        buf[k] = '\0';
    return buf;
}

static int
fail(gw__reject_t *reject, gw__reject_t why)
{
    if (reject != NULL)
        *reject = why;
    return GW_ERR;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
static int
utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *) str;
    size_t i = 0, k, len;
    uint32_t cp;

    while (i < n) {
        if (s[i] < 0x80) {
            if (s[i] == 0)
                return 0;
            i++;
            continue;
        }
        if ((s[i] & 0xe0) == 0xc0) {
            len = 2;
            cp = s[i] & 0x1f;
        } else if ((s[i] & 0xf0) == 0xe0) {
            len = 3;
            cp = s[i] & 0x0f;
        } else if ((s[i] & 0xf8) == 0xf0) {
            len = 4;
            cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* ---- shared checks ---------------------------------------------------- */

static int
check_project(gw__parse_t *ctx, const char *key, const char *p, size_t n,
              gw__reject_t *reject, gw_error_t *err)
{
    char q[QUOTE_MAX + 4], q2[QUOTE_MAX + 4];

    if (n == 0) {
        gw_error_set(err, "\"%s\" (project) must not be empty", key);
        return fail(reject, GW__REJECT_INVALID);
    }
    if (ctx->project != NULL &&
        (strlen(ctx->project) != n || memcmp(ctx->project, p, n) != 0)) {
        gw_error_set(err,
                     "project \"%s\" in the event does not match the "
                     "authenticated project \"%s\"",
                     quote(q, p, n),
                     quote(q2, ctx->project, strlen(ctx->project)));
        return fail(reject, GW__REJECT_PROJECT);
    }
    return GW_OK;
}

static int
check_name(gw__parse_t *ctx, const char *key, size_t n,
           gw__reject_t *reject, gw_error_t *err)
{
    if (n == 0) {
        gw_error_set(err, "\"%s\" (metric name) must not be empty", key);
        return fail(reject, GW__REJECT_INVALID);
    }
    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\" (metric name) is %zu bytes; at most %zu are "
                     "allowed",
                     key, n, ctx->limits->max_name_bytes);
        return fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

static int
check_ts(const char *key, double ts, gw__reject_t *reject, gw_error_t *err)
{
    if (!isfinite(ts) || ts < 0 || ts >= TS_MAX + 1) {
        gw_error_set(err,
                     "\"%s\" %.15g is out of range; epoch seconds must be "
                     "from 0 to 253402300799 (9999-12-31T23:59:59 UTC)",
                     key, ts);
        return fail(reject, GW__REJECT_INVALID);
    }
    return GW_OK;
}

static int
check_fname(gw__parse_t *ctx, const char *fkey, size_t n,
            gw__reject_t *reject, gw_error_t *err)
{
    if (n == 0) {
        gw_error_set(err, "\"%s\" has an empty filter name", fkey);
        return fail(reject, GW__REJECT_INVALID);
    }
    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\" has a filter name of %zu bytes; at most %zu "
                     "are allowed",
                     fkey, n, ctx->limits->max_name_bytes);
        return fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

static int
check_fvalue(gw__parse_t *ctx, const char *fkey, gw__str_t name, size_t n,
             gw__reject_t *reject, gw_error_t *err)
{
    char q[QUOTE_MAX + 4];

    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\".\"%s\" has a value of %zu bytes; at most %zu "
                     "are allowed",
                     fkey, quote(q, name.s, name.n), n,
                     ctx->limits->max_name_bytes);
        return fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

/* NULL with ctx->nomem set if memory ran out. */
static gw__pfilter_t *
pf_push(gw__parse_t *ctx)
{
    size_t cap = ctx->cappf ? ctx->cappf * 2 : 64;
    gw__pfilter_t *pf;

    if (ctx->npf == ctx->cappf) {
        pf = gw__realloc(ctx->pf, cap * sizeof(*ctx->pf));
        if (pf == NULL) {
            ctx->nomem = 1;
            return NULL;
        }
        ctx->pf = pf;
        ctx->cappf = cap;
    }
    return &ctx->pf[ctx->npf++];
}

static int
str_eq(gw__str_t a, gw__str_t b)
{
    return a.n == b.n && memcmp(a.s, b.s, a.n) == 0;
}

/* Adds (name, value) unless pf[from..] already holds it. */
static void
pf_add_distinct(gw__parse_t *ctx, size_t from, gw__str_t name,
                gw__str_t value)
{
    gw__pfilter_t *f;
    size_t i;

    for (i = from; i < ctx->npf; i++)
        if (str_eq(ctx->pf[i].value, value) && str_eq(ctx->pf[i].name, name))
            return;
    f = pf_push(ctx);
    if (f == NULL)
        return;
    f->name = name;
    f->value = value;
}

/* ---- JSON -------------------------------------------------------------- */

/* A real as jansson writes it, at the shortest precision that reads back
 * the same double: 0.1 -> "0.1", 2.0 -> "2.0", 1e21 -> "1e21". */
static size_t
format_real(char *buf, size_t size, double v)
{
    int prec;
    size_t n;
    char *e, *p;

    for (prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL)
        strcat(buf, ".0");
    e = strchr(buf, 'e');
    if (e != NULL) {
        /* "1e+21" -> "1e21", "1e-07" -> "1e-7" */
        p = e + 1;
        if (*p == '+')
            memmove(p, p + 1, strlen(p + 1) + 1);
        else if (*p == '-')
            p++;
        while (p[0] == '0' && p[1] != '\0')
            memmove(p, p + 1, strlen(p + 1) + 1);
    }
    n = strlen(buf);
    return n;
}

/* One scalar filter value as a string; GW_ERR for null, lists, objects. */
static int
json_fvalue(gw__parse_t *ctx, const char *fkey, gw__str_t name, json_t *v,
            gw__str_t *out, gw__reject_t *reject, gw_error_t *err)
{
    char q[QUOTE_MAX + 4];
    char buf[64];
    size_t n;

    switch (json_typeof(v)) {
    case JSON_STRING:
        out->s = json_string_value(v);
        out->n = json_string_length(v);
        return check_fvalue(ctx, fkey, name, out->n, reject, err);
    case JSON_INTEGER:
        n = (size_t) snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
        break;
    case JSON_REAL:
        n = format_real(buf, sizeof(buf), json_real_value(v));
        break;
    case JSON_TRUE:
        out->s = "true";
        out->n = 4;
        return GW_OK;
    case JSON_FALSE:
        out->s = "false";
        out->n = 5;
        return GW_OK;
    case JSON_NULL:
        gw_error_set(err,
                     "\"%s\".\"%s\" is null; a filter value must be a "
                     "string, number or boolean",
                     fkey, quote(q, name.s, name.n));
        return fail(reject, GW__REJECT_INVALID);
    default:
        gw_error_set(err,
                     "\"%s\".\"%s\" holds a list or object inside a list; "
                     "a filter value must be a string, number or boolean",
                     fkey, quote(q, name.s, name.n));
        return fail(reject, GW__REJECT_INVALID);
    }
    gw__parse_dup(ctx, buf, n, out);
    return check_fvalue(ctx, fkey, name, n, reject, err);
}

/* One filter: name -> scalar, or name -> list of scalars. */
static int
json_filter(gw__parse_t *ctx, const char *fkey, const char *nm, size_t nlen,
            json_t *v, gw__reject_t *reject, gw_error_t *err)
{
    char q[QUOTE_MAX + 4];
    gw__str_t name = {nm, nlen}, value;
    size_t i, n, from = ctx->npf;

    if (check_fname(ctx, fkey, nlen, reject, err) != GW_OK)
        return GW_ERR;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > ctx->limits->max_filter_values) {
            gw_error_set(err,
                         "\"%s\".\"%s\" has %zu values; at most %zu are "
                         "allowed",
                         fkey, quote(q, nm, nlen), n,
                         ctx->limits->max_filter_values);
            return fail(reject, GW__REJECT_LIMIT);
        }
        for (i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);

            if (json_is_array(e) || json_is_object(e)) {
                gw_error_set(err,
                             "\"%s\".\"%s\" holds a list or object inside "
                             "a list; a filter value must be a string, "
                             "number or boolean",
                             fkey, quote(q, nm, nlen));
                return fail(reject, GW__REJECT_INVALID);
            }
            if (json_fvalue(ctx, fkey, name, e, &value, reject, err) != GW_OK)
                return GW_ERR;
            pf_add_distinct(ctx, from, name, value);
        }
        return GW_OK;
    }
    if (json_is_object(v)) {
        gw_error_set(err,
                     "\"%s\".\"%s\" is an object; a filter value must be a "
                     "string, number, boolean or a list of those",
                     fkey, quote(q, nm, nlen));
        return fail(reject, GW__REJECT_INVALID);
    }
    if (json_fvalue(ctx, fkey, name, v, &value, reject, err) != GW_OK)
        return GW_ERR;
    pf_add_distinct(ctx, from, name, value);
    return GW_OK;
}

static int
json_filters(gw__parse_t *ctx, const char *fkey, json_t *f,
             gw__reject_t *reject, gw_error_t *err)
{
    const char *k;
    json_t *v, *pair, *name;
    size_t n, i, j;

    if (json_is_object(f)) {
        n = json_object_size(f);
        if (n > ctx->limits->max_filters)
            goto too_many;
        json_object_foreach(f, k, v)
        {
            if (json_filter(ctx, fkey, k, strlen(k), v, reject, err) != GW_OK)
                return GW_ERR;
        }
        return GW_OK;
    }
    if (json_is_array(f)) {
        n = json_array_size(f);
        if (n > ctx->limits->max_filters)
            goto too_many;
        for (i = 0; i < n; i++) {
            pair = json_array_get(f, i);
            name = json_array_get(pair, 0);
            if (!json_is_array(pair) || json_array_size(pair) != 2 ||
                !json_is_string(name)) {
                gw_error_set(err,
                             "\"%s\" item %zu must be a [name, value] pair "
                             "with a string name",
                             fkey, i + 1);
                return fail(reject, GW__REJECT_INVALID);
            }
        }
        for (i = 0; i < n; i++) {
            pair = json_array_get(f, i);
            name = json_array_get(pair, 0);
            /* A name given twice: the last pair wins, as in an object. */
            for (j = i + 1; j < n; j++)
                if (json_equal(name, json_array_get(json_array_get(f, j), 0)))
                    break;
            if (j < n)
                continue;
            if (json_filter(ctx, fkey, json_string_value(name),
                            json_string_length(name),
                            json_array_get(pair, 1), reject, err) != GW_OK)
                return GW_ERR;
        }
        return GW_OK;
    }
    gw_error_set(err,
                 "\"%s\" (filters) must be an object of name: value, or a "
                 "list of [name, value] pairs",
                 fkey);
    return fail(reject, GW__REJECT_INVALID);

too_many:
    gw_error_set(err, "\"%s\" has %zu filters; at most %zu are allowed", fkey,
                 n, ctx->limits->max_filters);
    return fail(reject, GW__REJECT_LIMIT);
}

enum {
    K_A,
    K_ACTION,
    K_TYPE,
    K_P,
    K_PROJECT,
    K_N,
    K_NAME,
    K_TS,
    K_TIMESTAMP,
    K_V,
    K_VALUE,
    K_F,
    K_FILTERS,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    "a", "action", "type", "p", "project", "n", "name",
    "ts", "timestamp", "v", "value", "f", "filters"};

static int
key_index(const char *k, size_t n)
{
#define KEY(lit, idx) \
    if (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0) \
        return idx;
    switch (n ? k[0] : 0) {
    case 'a':
        KEY("a", K_A);
        KEY("action", K_ACTION);
        break;
    case 't':
        KEY("ts", K_TS);
        KEY("type", K_TYPE);
        KEY("timestamp", K_TIMESTAMP);
        break;
    case 'p':
        KEY("p", K_P);
        KEY("project", K_PROJECT);
        break;
    case 'n':
        KEY("n", K_N);
        KEY("name", K_NAME);
        break;
    case 'v':
        KEY("v", K_V);
        KEY("value", K_VALUE);
        break;
    case 'f':
        KEY("f", K_F);
        KEY("filters", K_FILTERS);
        break;
    }
    return -1;
#undef KEY
}

/* The first non-null of slots first..last: its index, or -1. */
static int
pick(json_t *const *slot, int first, int last)
{
    int i;

    for (i = first; i <= last; i++)
        if (slot[i] != NULL)
            return i;
    return -1;
}

static int
parse_action(const char *s, size_t n, gw_action_t *a)
{
    if (n == 4 && memcmp(s, "incr", 4) == 0)
        *a = GW_ACTION_INCR;
    else if (n == 4 && memcmp(s, "decr", 4) == 0)
        *a = GW_ACTION_DECR;
    else if (n == 3 && memcmp(s, "avg", 3) == 0)
        *a = GW_ACTION_AVG;
    else if (n == 5 && memcmp(s, "gauge", 5) == 0)
        *a = GW_ACTION_GAUGE;
    else
        return GW_ERR;
    return GW_OK;
}

int
gw__event_parse_json(gw__parse_t *ctx, json_t *obj, gw__pevent_t *out,
                     gw__reject_t *reject, gw_error_t *err)
{
    json_t *slot[K_COUNT] = {NULL};
    char q[QUOTE_MAX + 4];
    const char *k, *s;
    json_t *v;
    int i;
    int64_t its;

    json_object_foreach(obj, k, v)
    {
        i = key_index(k, strlen(k));
        if (i >= 0 && !json_is_null(v))
            slot[i] = v;
    }

    /* a / action / type */
    i = pick(slot, K_A, K_TYPE);
    if (i < 0) {
        out->action = ctx->default_action ? ctx->default_action
                                          : GW_ACTION_INCR;
    } else if (!json_is_string(slot[i])) {
        gw_error_set(err,
                     "\"%s\" (action) must be a string: incr, decr, avg or "
                     "gauge",
                     key_names[i]);
        return fail(reject, GW__REJECT_INVALID);
    } else if (parse_action(json_string_value(slot[i]),
                            json_string_length(slot[i]),
                            &out->action) != GW_OK) {
        gw_error_set(err,
                     "action \"%s\" is unknown; use incr, decr, avg or gauge",
                     quote(q, json_string_value(slot[i]),
                           json_string_length(slot[i])));
        return fail(reject, GW__REJECT_INVALID);
    }

    /* p / project */
    i = pick(slot, K_P, K_PROJECT);
    if (i >= 0) {
        if (!json_is_string(slot[i])) {
            gw_error_set(err, "\"%s\" (project) must be a string",
                         key_names[i]);
            return fail(reject, GW__REJECT_INVALID);
        }
        out->project.s = json_string_value(slot[i]);
        out->project.n = json_string_length(slot[i]);
        if (check_project(ctx, key_names[i], out->project.s, out->project.n,
                          reject, err) != GW_OK)
            return GW_ERR;
    } else if (ctx->project == NULL) {
        gw_error_set(err, "\"p\" (project) is required");
        return fail(reject, GW__REJECT_INVALID);
    } else {
        out->project.s = ctx->project;
        out->project.n = ctx->project_len;
    }

    /* n / name */
    i = pick(slot, K_N, K_NAME);
    if (i < 0) {
        gw_error_set(err, "\"n\" (metric name) is required");
        return fail(reject, GW__REJECT_INVALID);
    }
    if (!json_is_string(slot[i])) {
        gw_error_set(err, "\"%s\" (metric name) must be a string",
                     key_names[i]);
        return fail(reject, GW__REJECT_INVALID);
    }
    out->name.s = json_string_value(slot[i]);
    out->name.n = json_string_length(slot[i]);
    if (check_name(ctx, key_names[i], out->name.n, reject, err) != GW_OK)
        return GW_ERR;

    /* ts / timestamp */
    i = pick(slot, K_TS, K_TIMESTAMP);
    if (i < 0) {
        out->ts = ctx->now_fn();
    } else if (json_is_number(slot[i])) {
        out->ts = json_number_value(slot[i]);
        if (check_ts(key_names[i], out->ts, reject, err) != GW_OK)
            return GW_ERR;
    } else if (json_is_string(slot[i])) {
        s = json_string_value(slot[i]);
        if (gw__time_parse_iso(s, &its) != GW_OK) {
            gw_error_set(err,
                         "\"%s\" \"%s\" is not a valid time; use epoch "
                         "seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)",
                         key_names[i],
                         quote(q, s, json_string_length(slot[i])));
            return fail(reject, GW__REJECT_INVALID);
        }
        out->ts = (double) its;
        if (check_ts(key_names[i], out->ts, reject, err) != GW_OK)
            return GW_ERR;
    } else {
        gw_error_set(err,
                     "\"%s\" must be epoch seconds or a "
                     "\"YYYY-MM-DDTHH:MM:SS\" string (UTC)",
                     key_names[i]);
        return fail(reject, GW__REJECT_INVALID);
    }

    /* v / value */
    i = pick(slot, K_V, K_VALUE);
    if (i < 0) {
        out->value = 1;
    } else if (!json_is_number(slot[i]) ||
               !isfinite(json_number_value(slot[i]))) {
        gw_error_set(err, "\"%s\" must be a finite number", key_names[i]);
        return fail(reject, GW__REJECT_INVALID);
    } else {
        out->value = json_number_value(slot[i]);
    }

    /* f / filters */
    out->f0 = ctx->npf;
    i = pick(slot, K_F, K_FILTERS);
    if (i >= 0 &&
        json_filters(ctx, key_names[i], slot[i], reject, err) != GW_OK)
        return GW_ERR;
    out->nf = ctx->npf - out->f0;
    return GW_OK;
}

/* ---- structured events -------------------------------------------------- */

int
gw__event_parse_struct(gw__parse_t *ctx, const gw_event_t *ev,
                       gw__pevent_t *out, gw__reject_t *reject,
                       gw_error_t *err)
{
    const gw__limits_t *lim = ctx->limits;
    char q[QUOTE_MAX + 4];
    gw__str_t name, value;
    size_t i, j, nnames = 0, nvalues;
    const gw_filter_t *f;

    if ((int) ev->action < (int) GW_ACTION_DEFAULT ||
        (int) ev->action > (int) GW_ACTION_GAUGE) {
        gw_error_set(err,
                     "action %d is unknown; use incr, decr, avg or gauge",
                     (int) ev->action);
        return fail(reject, GW__REJECT_INVALID);
    }
    out->action = ev->action != GW_ACTION_DEFAULT ? ev->action
                  : ctx->default_action       ? ctx->default_action
                                              : GW_ACTION_INCR;

    if (ev->project != NULL) {
        out->project.s = ev->project;
        out->project.n = strlen(ev->project);
        if (check_project(ctx, "p", out->project.s, out->project.n, reject,
                          err) != GW_OK)
            return GW_ERR;
    } else if (ctx->project == NULL) {
        gw_error_set(err, "\"p\" (project) is required");
        return fail(reject, GW__REJECT_INVALID);
    } else {
        out->project.s = ctx->project;
        out->project.n = ctx->project_len;
    }

    if (ev->name == NULL) {
        gw_error_set(err, "\"n\" (metric name) is required");
        return fail(reject, GW__REJECT_INVALID);
    }
    out->name.s = ev->name;
    out->name.n = strlen(ev->name);
    if (check_name(ctx, "n", out->name.n, reject, err) != GW_OK)
        return GW_ERR;
    if (!utf8_valid(out->name.s, out->name.n)) {
        gw_error_set(err, "\"n\" (metric name) is not valid UTF-8");
        return fail(reject, GW__REJECT_INVALID);
    }

    if (ev->has_ts) {
        if (check_ts("ts", ev->ts, reject, err) != GW_OK)
            return GW_ERR;
        out->ts = ev->ts;
    } else {
        out->ts = ctx->now_fn();
    }

    if (!isfinite(ev->value)) {
        gw_error_set(err, "\"v\" must be a finite number");
        return fail(reject, GW__REJECT_INVALID);
    }
    out->value = ev->value;

    out->f0 = ctx->npf;
    if (ev->nfilters > lim->max_filters * lim->max_filter_values) {
        gw_error_set(err,
                     "\"f\" has %zu filter values; at most %zu filters of "
                     "%zu values are allowed",
                     ev->nfilters, lim->max_filters, lim->max_filter_values);
        return fail(reject, GW__REJECT_LIMIT);
    }
    for (i = 0; i < ev->nfilters; i++) {
        f = &ev->filters[i];
        if (f->name == NULL) {
            gw_error_set(err, "\"f\" has an empty filter name");
            return fail(reject, GW__REJECT_INVALID);
        }
        name.s = f->name;
        name.n = strlen(f->name);
        if (check_fname(ctx, "f", name.n, reject, err) != GW_OK)
            return GW_ERR;
        if (!utf8_valid(name.s, name.n)) {
            gw_error_set(err, "\"f\" has a filter name that is not valid "
                              "UTF-8");
            return fail(reject, GW__REJECT_INVALID);
        }
        if (f->value == NULL) {
            gw_error_set(err,
                         "\"f\".\"%s\" is null; a filter value must be a "
                         "string, number or boolean",
                         quote(q, name.s, name.n));
            return fail(reject, GW__REJECT_INVALID);
        }
        value.s = f->value;
        value.n = strlen(f->value);
        if (check_fvalue(ctx, "f", name, value.n, reject, err) != GW_OK)
            return GW_ERR;
        if (!utf8_valid(value.s, value.n)) {
            gw_error_set(err, "\"f\".\"%s\" has a value that is not valid "
                              "UTF-8",
                         quote(q, name.s, name.n));
            return fail(reject, GW__REJECT_INVALID);
        }
        pf_add_distinct(ctx, out->f0, name, value);
    }

    /* Limits over the distinct pairs: names, and values per name. */
    for (i = out->f0; i < ctx->npf; i++) {
        for (j = out->f0; j < i; j++)
            if (str_eq(ctx->pf[j].name, ctx->pf[i].name))
                break;
        if (j < i)
            continue; /* counted with its first occurrence */
        nnames++;
        nvalues = 0;
        for (j = i; j < ctx->npf; j++)
            if (str_eq(ctx->pf[j].name, ctx->pf[i].name))
                nvalues++;
        if (nvalues > lim->max_filter_values) {
            gw_error_set(err,
                         "\"f\".\"%s\" has %zu values; at most %zu are "
                         "allowed",
                         quote(q, ctx->pf[i].name.s, ctx->pf[i].name.n),
                         nvalues, lim->max_filter_values);
            return fail(reject, GW__REJECT_LIMIT);
        }
    }
    if (nnames > lim->max_filters) {
        gw_error_set(err, "\"f\" has %zu filters; at most %zu are allowed",
                     nnames, lim->max_filters);
        return fail(reject, GW__REJECT_LIMIT);
    }
    out->nf = ctx->npf - out->f0;
    return GW_OK;
}

/* ---- the fast path --------------------------------------------------------
 *
 * Most events are small plain objects: no escapes, no duplicate keys, valid
 * values. This parser reads those straight from the request text, without
 * building a jansson tree, and gives up (GW_AGAIN) at the first thing it
 * does not expect; the caller then runs the jansson path, which also writes
 * every error message. So it only has to agree with the jansson path on
 * what it accepts, which tests/fuzz/fuzz_event.c checks differentially.
 */

#define FAST_DEPTH 32

typedef struct fp_s {
    const char *s;
    size_t len, i;
} fp_t;

enum { T_NONE, T_NULL, T_STR, T_INT, T_REAL, T_TRUE, T_FALSE, T_OBJ, T_ARR };

/* One scanned value: strings and numbers are read, containers skipped
 * (start is where they begin). */
typedef struct fp_val_s {
    int type;
    gw__str_t str;
    json_int_t iv;
    double dv;
    size_t start;
} fp_val_t;

static inline void
fp_ws(fp_t *c)
{
    /* Compact JSON has no space at all: one test for that. */
    if (c->i < c->len && (unsigned char) c->s[c->i] > ' ')
        return;
    while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t' ||
                             c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

/* After a member of an object or array: 1 after a ',' (and the space
 * after it), 0 after the closing byte, -1 on anything else. */
static inline int
fp_next(fp_t *c, char close)
{
    fp_ws(c);
    if (c->i < c->len && c->s[c->i] == ',') {
        c->i++;
        fp_ws(c);
        return 1;
    }
    if (c->i < c->len && c->s[c->i] == close) {
        c->i++;
        return 0;
    }
    return -1;
}

/* The bytes that stop fp_string's scan: '"', '\\', controls (refused) and
 * bytes >= 0x80 (UTF-8 to check). */
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const unsigned char fp_stop[256] = {
    R16(1), R16(1),                                 /* 0x00 - 0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' at 0x22 */
    R16(0), R16(0),                                 /* 0x30 - 0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' at 0x5c */
    R16(0), R16(0),                                 /* 0x60 - 0x7f */
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1),
};
#undef R16

/* A string without escapes, at c->i == '"'. */
static int
fp_string(fp_t *c, gw__str_t *out)
{
    const unsigned char *s = (const unsigned char *) c->s;
    size_t i = c->i + 1, start = i, len = c->len;
    int high = 0;
    unsigned char ch;

    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time while eight are left: a byte is flagged
         * when it is '"' or '\\' (a zero after XOR), below 0x20 or 0x80 and
         * up. Borrows can flag bytes only after a flagged one, so the
         * lowest flag is the first stop byte. */
        while (i + 8 <= len) {
            uint64_t w, q, b, m;

            memcpy(&w, s + i, 8);
            q = w ^ UINT64_C(0x2222222222222222);
            b = w ^ UINT64_C(0x5c5c5c5c5c5c5c5c);
            m = ((q - UINT64_C(0x0101010101010101)) & ~q) |
                ((b - UINT64_C(0x0101010101010101)) & ~b) |
                ((w - UINT64_C(0x2020202020202020)) & ~w) | w;
            m &= UINT64_C(0x8080808080808080);
            if (m != 0) {
                i += (size_t) __builtin_ctzll(m) >> 3;
                break;
            }
            i += 8;
        }
#endif
        while (i < len && !fp_stop[s[i]])
            i++;
        if (i >= len)
            return GW_AGAIN;
        ch = s[i];
        if (ch == '"')
            break;
        if (ch == '\\' || ch < 0x20)
            return GW_AGAIN;
        high = 1;
        i++;
    }
    out->s = c->s + start;
    out->n = i - start;
    if (high && !utf8_valid(out->s, out->n))
        return GW_AGAIN;
    c->i = i + 1;
    return GW_OK;
}

/* A JSON number: integer as jansson reads it (strtoll, no overflow) or
 * real (strtod, finite). */
static int
fp_number(fp_t *c, fp_val_t *v)
{
    const char *s = c->s;
    size_t i = c->i, n;
    char buf[64], *end;
    int real = 0;

#define DIGIT(k) ((k) < c->len && s[k] >= '0' && s[k] <= '9')
    if (i < c->len && s[i] == '-')
        i++;
    if (i < c->len && s[i] == '0')
        i++;
    else if (DIGIT(i))
        while (DIGIT(i))
            i++;
    else
        return GW_AGAIN;
    if (i < c->len && s[i] == '.') {
        i++;
        if (!DIGIT(i))
            return GW_AGAIN;
        while (DIGIT(i))
            i++;
        real = 1;
    }
    if (i < c->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < c->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!DIGIT(i))
            return GW_AGAIN;
        while (DIGIT(i))
            i++;
        real = 1;
    }
#undef DIGIT
    n = i - c->i;
    if (!real && n <= 18) {
        /* Up to 18 characters (17 digits and a sign) cannot overflow: the
         * value strtoll would give, without its locale and errno work. */
        const char *d = s + c->i;
        int neg = *d == '-';
        int64_t iv = 0;

        for (d += neg; d < s + i; d++)
            iv = iv * 10 + (*d - '0');
        v->type = T_INT;
        v->iv = neg ? -iv : iv;
        v->dv = (double) v->iv;
        c->i = i;
        return GW_OK;
    }
    if (n >= sizeof(buf))
        return GW_AGAIN;
    memcpy(buf, s + c->i, n);
    buf[n] = '\0';
    errno = 0;
    if (real) {
        v->type = T_REAL;
        v->dv = strtod(buf, &end);
        if (!isfinite(v->dv))
            return GW_AGAIN;
    } else {
        v->type = T_INT;
        v->iv = strtoll(buf, &end, 10);
        if (errno == ERANGE)
            return GW_AGAIN;
        v->dv = (double) v->iv;
    }
    if (end != buf + n)
        return GW_AGAIN;
    c->i = i;
    return GW_OK;
}

static int fp_value(fp_t *c, fp_val_t *v, int depth);

/* Skips an object or array at c->i, checking it as far as JSON goes. */
static int
fp_skip(fp_t *c, int depth)
{
    char close = c->s[c->i] == '{' ? '}' : ']';
    fp_val_t v;
    gw__str_t key;

    if (depth >= FAST_DEPTH)
        return GW_AGAIN;
    c->i++;
    fp_ws(c);
    if (c->i < c->len && c->s[c->i] == close) {
        c->i++;
        return GW_OK;
    }
    for (;;) {
        if (close == '}') {
            if (c->i >= c->len || c->s[c->i] != '"' ||
                fp_string(c, &key) != GW_OK)
                return GW_AGAIN;
            fp_ws(c);
            if (c->i >= c->len || c->s[c->i] != ':')
                return GW_AGAIN;
            c->i++;
            fp_ws(c);
        }
        if (fp_value(c, &v, depth + 1) != GW_OK)
            return GW_AGAIN;
        switch (fp_next(c, close)) {
        case 1:
            continue;
        case 0:
            return GW_OK;
        default:
            return GW_AGAIN;
        }
    }
}

static int
fp_literal(fp_t *c, const char *lit, size_t n)
{
    if (c->len - c->i < n || memcmp(c->s + c->i, lit, n) != 0)
        return GW_AGAIN;
    c->i += n;
    return GW_OK;
}

/* Any value at c->i (after whitespace). */
static int
fp_value(fp_t *c, fp_val_t *v, int depth)
{
    if (c->i >= c->len)
        return GW_AGAIN;
    v->start = c->i;
    switch (c->s[c->i]) {
    case '"':
        v->type = T_STR;
        return fp_string(c, &v->str);
    case '{':
        v->type = T_OBJ;
        return fp_skip(c, depth);
    case '[':
        v->type = T_ARR;
        return fp_skip(c, depth);
    case 't':
        v->type = T_TRUE;
        return fp_literal(c, "true", 4);
    case 'f':
        v->type = T_FALSE;
        return fp_literal(c, "false", 5);
    case 'n':
        v->type = T_NULL;
        return fp_literal(c, "null", 4);
    default:
        return fp_number(c, v);
    }
}

/* A scalar filter value as the jansson path would write it. */
static int
fp_fvalue(gw__parse_t *ctx, const fp_val_t *v, gw__str_t *out)
{
    char buf[64];
    size_t n;

    switch (v->type) {
    case T_STR:
        *out = v->str;
        return out->n <= ctx->limits->max_name_bytes ? GW_OK : GW_AGAIN;
    case T_INT:
        n = (size_t) snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                              v->iv);
        break;
    case T_REAL:
        n = format_real(buf, sizeof(buf), v->dv);
        break;
    case T_TRUE:
        out->s = "true";
        out->n = 4;
        return GW_OK;
    case T_FALSE:
        out->s = "false";
        out->n = 5;
        return GW_OK;
    default:
        return GW_AGAIN;
    }
    if (n > ctx->limits->max_name_bytes)
        return GW_AGAIN;
    gw__parse_dup(ctx, buf, n, out);
    return GW_OK;
}

/* "f" as an object of name -> scalar or list of scalars, at c->i. */
static int
fp_filters(gw__parse_t *ctx, fp_t *c)
{
    const gw__limits_t *lim = ctx->limits;
    gw__str_t names[64], name, value;
    size_t nnames = 0, k, nvalues, from;
    int rc;
    fp_val_t v;

    c->i++; /* '{' */
    fp_ws(c);
    if (c->i < c->len && c->s[c->i] == '}') {
        c->i++;
        return GW_OK;
    }
    for (;;) {
        if (c->i >= c->len || c->s[c->i] != '"' ||
            fp_string(c, &name) != GW_OK || name.n == 0 ||
            name.n > lim->max_name_bytes)
            return GW_AGAIN;
        /* A name given twice: leave "last wins" to the jansson path. */
        if (nnames == 64 || nnames == lim->max_filters)
            return GW_AGAIN;
        for (k = 0; k < nnames; k++)
            if (str_eq(names[k], name))
                return GW_AGAIN;
        names[nnames++] = name;
        fp_ws(c);
        if (c->i >= c->len || c->s[c->i] != ':')
            return GW_AGAIN;
        c->i++;
        fp_ws(c);
        from = ctx->npf;
        if (c->i < c->len && c->s[c->i] == '[') {
            c->i++;
            fp_ws(c);
            nvalues = 0;
            if (c->i < c->len && c->s[c->i] == ']') {
                c->i++;
            } else {
                for (;;) {
                    if (fp_value(c, &v, 1) != GW_OK ||
                        ++nvalues > lim->max_filter_values ||
                        fp_fvalue(ctx, &v, &value) != GW_OK)
                        return GW_AGAIN;
                    pf_add_distinct(ctx, from, name, value);
                    rc = fp_next(c, ']');
                    if (rc < 0)
                        return GW_AGAIN;
                    if (rc == 0)
                        break;
                }
            }
        } else {
            if (fp_value(c, &v, 1) != GW_OK ||
                fp_fvalue(ctx, &v, &value) != GW_OK)
                return GW_AGAIN;
            pf_add_distinct(ctx, from, name, value);
        }
        switch (fp_next(c, '}')) {
        case 1:
            continue;
        case 0:
            return GW_OK;
        default:
            return GW_AGAIN;
        }
    }
}

/* The first of slots first..last that was given and not null. */
static int
fp_pick(const fp_val_t *slot, int first, int last)
{
    int i;

    for (i = first; i <= last; i++)
        if (slot[i].type != T_NONE && slot[i].type != T_NULL)
            return i;
    return -1;
}

static int
fp_ts(const fp_val_t *v, double *ts)
{
    char buf[20];
    int64_t t;

    if (v->type == T_INT || v->type == T_REAL) {
        *ts = v->dv;
    } else if (v->type == T_STR && v->str.n == 19) {
        memcpy(buf, v->str.s, 19);
        buf[19] = '\0';
        if (gw__time_parse_iso(buf, &t) != GW_OK)
            return GW_AGAIN;
        *ts = (double) t;
    } else {
        return GW_AGAIN;
    }
    return (*ts >= 0 && *ts < TS_MAX + 1) ? GW_OK : GW_AGAIN;
}

int
gw__event_parse_fast(gw__parse_t *ctx, const char *s, size_t len,
                     size_t *pos, gw__pevent_t *out)
{
    fp_t c = {s, len, *pos};
    fp_val_t slot[K_COUNT], v;
    gw__str_t key;
    int i, rc, nobj = 0;

    for (i = 0; i < K_COUNT; i++)
        slot[i].type = T_NONE;
    out->f0 = ctx->npf;
    if (c.i >= c.len || s[c.i] != '{')
        return GW_AGAIN;
    c.i++;
    fp_ws(&c);
    if (c.i < c.len && s[c.i] == '}') {
        c.i++;
    } else {
        for (;;) {
            /* The usual keys written compactly ("n":, "ts":) in one
             * comparison; anything else the long way. */
            i = -1;
            if (c.i + 4 <= c.len && s[c.i] == '"' && s[c.i + 2] == '"' &&
                s[c.i + 3] == ':') {
                switch (s[c.i + 1]) {
                case 'a': i = K_A; break;
                case 'n': i = K_N; break;
                case 'v': i = K_V; break;
                case 'f': i = K_F; break;
                case 'p': i = K_P; break;
                }
                if (i >= 0)
                    c.i += 4;
            } else if (c.i + 5 <= c.len && s[c.i] == '"' &&
                       s[c.i + 1] == 't' && s[c.i + 2] == 's' &&
                       s[c.i + 3] == '"' && s[c.i + 4] == ':') {
                i = K_TS;
                c.i += 5;
            }
            if (i < 0) {
                if (c.i >= c.len || s[c.i] != '"' ||
                    fp_string(&c, &key) != GW_OK)
                    return GW_AGAIN;
                fp_ws(&c);
                if (c.i >= c.len || s[c.i] != ':')
                    return GW_AGAIN;
                c.i++;
                i = key_index(key.s, key.n);
            }
            fp_ws(&c);
            if ((i == K_F || i == K_FILTERS) && c.i < c.len && s[c.i] == '{') {
                /* The filters, read in the same pass. Only one object of
                 * the two keys may be given here: the one picked below,
                 * if it is an object, is this one. */
                if (nobj++ > 0)
                    return GW_AGAIN;
                v.type = T_OBJ;
                v.start = c.i;
                if (fp_filters(ctx, &c) != GW_OK)
                    return GW_AGAIN;
            } else if (fp_value(&c, &v, 1) != GW_OK) {
                return GW_AGAIN;
            }
            if (i >= 0) {
                if (slot[i].type != T_NONE)
                    return GW_AGAIN; /* a duplicate key */
                slot[i] = v;
            }
            rc = fp_next(&c, '}');
            if (rc < 0)
                return GW_AGAIN;
            if (rc == 0)
                break;
        }
    }

    i = fp_pick(slot, K_A, K_TYPE);
    if (i < 0)
        out->action = ctx->default_action ? ctx->default_action
                                          : GW_ACTION_INCR;
    else if (slot[i].type != T_STR ||
             parse_action(slot[i].str.s, slot[i].str.n, &out->action) != GW_OK)
        return GW_AGAIN;

    if (ctx->project == NULL)
        return GW_AGAIN;
    out->project.s = ctx->project;
    out->project.n = ctx->project_len;
    i = fp_pick(slot, K_P, K_PROJECT);
    if (i >= 0 && (slot[i].type != T_STR || !str_eq(slot[i].str, out->project)))
        return GW_AGAIN;

    i = fp_pick(slot, K_N, K_NAME);
    if (i < 0 || slot[i].type != T_STR || slot[i].str.n == 0 ||
        slot[i].str.n > ctx->limits->max_name_bytes)
        return GW_AGAIN;
    out->name = slot[i].str;

    i = fp_pick(slot, K_TS, K_TIMESTAMP);
    if (i < 0)
        out->ts = ctx->now_fn();
    else if (fp_ts(&slot[i], &out->ts) != GW_OK)
        return GW_AGAIN;

    i = fp_pick(slot, K_V, K_VALUE);
    if (i < 0)
        out->value = 1;
    else if (slot[i].type == T_INT || slot[i].type == T_REAL)
        out->value = slot[i].dv;
    else
        return GW_AGAIN;

    i = fp_pick(slot, K_F, K_FILTERS);
    if (i >= 0 && slot[i].type != T_OBJ)
        return GW_AGAIN;
    out->nf = ctx->npf - out->f0;
    *pos = c.i;
    return GW_OK;
}
