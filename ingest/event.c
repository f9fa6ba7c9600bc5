/*
 * ingest/event.c: one event to a validated gw__pevent_t (SPEC §2): what the
 * two JSON parsers share (ingest/event.h: the keys, the checks of each
 * field with their limits and messages) and the parser of a transport's
 * gw_event_t. The JSON parsers are ingest/event_json.c (jansson, which
 * explains every refusal) and ingest/event_fast.c (a scanner for the plain
 * events most requests hold).
 *
 * Every refusal names the field and says what is allowed. The kind rule
 * and MAX_SERIES are checked later by ingest.c, which knows the metrics;
 * these files know one event only.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "event.h"

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
    case GW_ACTION_TIMING:
        return "timing";
    case GW_ACTION_SET:
        return "set";
    default:
        return "incr";
    }
}

const char *
gw__reject_name(gw__reject_t r)
{
    switch (r) {
    case GW__REJECT_NONE:
        return "none";
    case GW__REJECT_JSON:
        return "bad_json";
    case GW__REJECT_INVALID:
        return "invalid_event";
    case GW__REJECT_PROJECT:
        return "wrong_project";
    case GW__REJECT_KIND:
        return "kind_conflict";
    case GW__REJECT_LIMIT:
        return "limit";
    case GW__REJECT_MAX_SERIES:
        return "max_series";
    case GW__REJECT_SERIES_PER_METRIC:
        return "max_series_per_metric";
    case GW__REJECT_VALUES_PER_FILTER:
        return "max_values_per_filter";
    case GW__REJECT_FILTERS_PER_METRIC:
        return "max_filters_per_metric";
    case GW__REJECT_PENDING:
        return "max_pending_series";
    case GW__REJECT_NOMEM:
        return "out_of_memory";
    case GW__REJECT_RANGE:
        return "value_out_of_range";
    case GW__REJECT_UNKEPT:
        return "unsupported_kind";
    }
    return "unknown";
}

/* A new metric of a kind the storage does not keep (ops->kinds). */
int
gw__event_kind_unkept(const char *storage, const gw__pevent_t *e,
                      gw_kind_t kind, gw__reject_t *reject, gw_error_t *err)
{
    gw_error_set(err,
                 "metric \"%.48s\" is a %s metric, which the storage "
                 "\"%s\" does not keep (its plugin does not declare them)",
                 e->name.s, gw_kind_name(kind), storage);
    if (reject != NULL)
        *reject = GW__REJECT_UNKEPT;
    return GW_ERR;
}

int
gw__event_kind_conflict(const gw__pevent_t *e, const char *metric, gw_kind_t have,
              gw__reject_t *reject, gw_error_t *err)
{
    gw_error_set(err,
                 "metric \"%.48s\" is %s %s; action \"%s\" does not fit it (a "
                 "metric keeps the kind of its first event)",
                 metric, have == GW_KIND_AVG ? "an" : "a", gw_kind_name(have),
                 gw__action_name(e->action));
    if (reject != NULL)
        *reject = GW__REJECT_KIND;
    return GW_ERR;
}

const char *
gw__event_quote(char *buf, const char *s, size_t n)
{
    size_t k = n;

    if (k > GW__EVENT_QUOTE_MAX) {
        k = GW__EVENT_QUOTE_MAX;
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

int
gw__event_fail(gw__reject_t *reject, gw__reject_t why)
{
    if (reject != NULL)
        *reject = why;
    return GW_ERR;
}

int
gw__event_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *) str;
    size_t i = 0, k, len;
    uint32_t cp;

    while (i < n) {
        /* Eight ASCII bytes at a time, none of them NUL (the names and
         * values of nearly every event). */
        while (n - i >= 8) {
            uint64_t w;

            memcpy(&w, s + i, 8);
            /* A byte with its high bit set, or (each byte's high bit
             * set, less one: no borrow crosses bytes) a zero byte. */
            if ((w & 0x8080808080808080u) != 0
                || (((w | 0x8080808080808080u) - 0x0101010101010101u)
                    & 0x8080808080808080u) != 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i == n)
            break;
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

int
gw__event_project(gw__parse_t *ctx, const char *key, const char *p, size_t n,
                  gw__pevent_t *out, gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4], q2[GW__EVENT_QUOTE_MAX + 4];

    if (p == NULL) {
        if (ctx->project == NULL) {
            gw_error_set(err, "\"p\" (project) is required");
            return gw__event_fail(reject, GW__REJECT_INVALID);
        }
        out->project.s = ctx->project;
        out->project.n = ctx->project_len;
        return GW_OK;
    }
    out->project.s = p;
    out->project.n = n;
    if (n == 0) {
        gw_error_set(err, "\"%s\" (project) must not be empty", key);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (ctx->project != NULL &&
        (strlen(ctx->project) != n || memcmp(ctx->project, p, n) != 0)) {
        gw_error_set(err,
                     "project \"%s\" in the event does not match the "
                     "authenticated project \"%s\"",
                     gw__event_quote(q, p, n),
                     gw__event_quote(q2, ctx->project, strlen(ctx->project)));
        return gw__event_fail(reject, GW__REJECT_PROJECT);
    }
    return GW_OK;
}

int
gw__event_check_name(gw__parse_t *ctx, const char *key, size_t n,
                     gw__reject_t *reject, gw_error_t *err)
{
    if (n == 0) {
        gw_error_set(err, "\"%s\" (metric name) must not be empty", key);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\" (metric name) is %zu bytes; at most %zu are "
                     "allowed",
                     key, n, ctx->limits->max_name_bytes);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

int
gw__event_check_ts(const char *key, double ts, gw__reject_t *reject,
                   gw_error_t *err)
{
    if (!isfinite(ts) || ts < 0 || ts >= GW__EVENT_TS_MAX + 1) {
        gw_error_set(err,
                     "\"%s\" %.15g is out of range; epoch seconds must be "
                     "from 0 to 253402300799 (9999-12-31T23:59:59 UTC)",
                     key, ts);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    return GW_OK;
}

int
gw__event_value_refuse(const char *key, double v, gw__reject_t *reject,
                       gw_error_t *err)
{
    char num[64];

    if (isnan(v))
        snprintf(num, sizeof(num), "nan");
    else if (isinf(v))
        snprintf(num, sizeof(num), "%sinf", v < 0 ? "-" : "");
    else
        gw__event_format_real(num, sizeof(num), v);
    gw_error_set(err, "\"%s\" %s is out of range: |v| must be at most 1e300",
                 key, num);
    return gw__event_fail(reject, GW__REJECT_RANGE);
}

int
gw__event_check_fname(gw__parse_t *ctx, const char *fkey, size_t n,
                      gw__reject_t *reject, gw_error_t *err)
{
    if (n == 0) {
        gw_error_set(err, "\"%s\" has an empty filter name", fkey);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\" has a filter name of %zu bytes; at most %zu "
                     "are allowed",
                     fkey, n, ctx->limits->max_name_bytes);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

int
gw__event_check_fvalue(gw__parse_t *ctx, const char *fkey, gw__str_t name,
                       size_t n, gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];

    if (n > ctx->limits->max_name_bytes) {
        gw_error_set(err,
                     "\"%s\".\"%s\" has a value of %zu bytes; at most %zu "
                     "are allowed",
                     fkey, gw__event_quote(q, name.s, name.n), n,
                     ctx->limits->max_name_bytes);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

size_t
gw__event_format_real(char *buf, size_t size, double v)
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

int
gw__event_key_index(const char *k, size_t n)
{
#define KEY(lit, idx) \
    if (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0) \
        return idx;
    switch (n ? k[0] : 0) {
    case 'a':
        KEY("a", GW__KEY_A);
        KEY("action", GW__KEY_ACTION);
        break;
    case 't':
        KEY("ts", GW__KEY_TS);
        KEY("type", GW__KEY_TYPE);
        KEY("timestamp", GW__KEY_TIMESTAMP);
        break;
    case 'p':
        KEY("p", GW__KEY_P);
        KEY("project", GW__KEY_PROJECT);
        break;
    case 'n':
        KEY("n", GW__KEY_N);
        KEY("name", GW__KEY_NAME);
        break;
    case 'v':
        KEY("v", GW__KEY_V);
        KEY("value", GW__KEY_VALUE);
        break;
    case 'f':
        KEY("f", GW__KEY_F);
        KEY("filters", GW__KEY_FILTERS);
        break;
    }
    return -1;
#undef KEY
}

int
gw__event_parse_action(const char *s, size_t n, gw_action_t *a)
{
    if (n == 4 && memcmp(s, "incr", 4) == 0)
        *a = GW_ACTION_INCR;
    else if (n == 4 && memcmp(s, "decr", 4) == 0)
        *a = GW_ACTION_DECR;
    else if (n == 3 && memcmp(s, "avg", 3) == 0)
        *a = GW_ACTION_AVG;
    else if (n == 5 && memcmp(s, "gauge", 5) == 0)
        *a = GW_ACTION_GAUGE;
    else if (n == 6 && memcmp(s, "timing", 6) == 0)
        *a = GW_ACTION_TIMING;
    else if (n == 3 && memcmp(s, "set", 3) == 0)
        *a = GW_ACTION_SET;
    else
        return GW_ERR;
    return GW_OK;
}

/* ---- structured events -------------------------------------------------- */

/* Everything of ev but its filters. */
static int
ev_struct_fields(gw__parse_t *ctx, const gw_event_t *ev, gw__pevent_t *out,
                 gw__reject_t *reject, gw_error_t *err)
{
    if ((int) ev->action < (int) GW_ACTION_DEFAULT ||
        (int) ev->action > (int) GW_ACTION_SET) {
        gw_error_set(err,
                     "action %d is unknown; use incr, decr, avg, gauge, "
                     "timing or set",
                     (int) ev->action);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    /* A structured event has no string value: a set's member comes as
     * JSON (submit_json), as the statsd transport sends |s. */
    if (ev->action == GW_ACTION_SET ||
        (ev->action == GW_ACTION_DEFAULT &&
         ctx->default_action == GW_ACTION_SET)) {
        gw_error_set(err, "a set event's member is a string \"v\": "
                          "submit set events as JSON (submit_json)");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    out->action = ev->action != GW_ACTION_DEFAULT ? ev->action
                  : ctx->default_action       ? ctx->default_action
                                              : GW_ACTION_INCR;

    if (gw__event_project(ctx, "p", ev->project,
                          ev->project != NULL ? strlen(ev->project) : 0, out,
                          reject, err) != GW_OK)
        return GW_ERR;

    if (ev->name == NULL) {
        gw_error_set(err, "\"n\" (metric name) is required");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    out->name.s = ev->name;
    out->name.n = strlen(ev->name);
    if (gw__event_check_name(ctx, "n", out->name.n, reject, err) != GW_OK)
        return GW_ERR;
    if (!gw__event_utf8_valid(out->name.s, out->name.n)) {
        gw_error_set(err, "\"n\" (metric name) is not valid UTF-8");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }

    if (ev->has_ts) {
        if (gw__event_check_ts("ts", ev->ts, reject, err) != GW_OK)
            return GW_ERR;
        out->ts = ev->ts;
    } else {
        out->ts = ctx->now != 0 ? ctx->now : ctx->now_fn();
    }

    if (gw__event_check_value("v", ev->value, reject, err) != GW_OK)
        return GW_ERR;
    out->value = ev->value;
    return GW_OK;
}

/* One filter of a structured event, added to the pairs after pf[f0]. */
static int
ev_struct_filter(gw__parse_t *ctx, const gw_filter_t *f, size_t f0,
                 gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];
    gw__str_t name, value;

    if (f->name == NULL) {
        gw_error_set(err, "\"f\" has an empty filter name");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    name.s = f->name;
    name.n = strlen(f->name);
    if (gw__event_check_fname(ctx, "f", name.n, reject, err) != GW_OK)
        return GW_ERR;
    if (!gw__event_utf8_valid(name.s, name.n)) {
        gw_error_set(err, "\"f\" has a filter name that is not valid "
                          "UTF-8");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (f->value == NULL) {
        gw_error_set(err,
                     "\"f\".\"%s\" is null; a filter value must be a "
                     "string, number or boolean",
                     gw__event_quote(q, name.s, name.n));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    value.s = f->value;
    value.n = strlen(f->value);
    if (gw__event_check_fvalue(ctx, "f", name, value.n, reject, err) != GW_OK)
        return GW_ERR;
    if (!gw__event_utf8_valid(value.s, value.n)) {
        gw_error_set(err, "\"f\".\"%s\" has a value that is not valid "
                          "UTF-8",
                     gw__event_quote(q, name.s, name.n));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    gw__event_pf_add_distinct(ctx, f0, name, value);
    return GW_OK;
}

/* The limits over the distinct pairs pf[f0..]: names, and values per
 * name. */
static int
ev_struct_limits(gw__parse_t *ctx, size_t f0, gw__reject_t *reject,
                 gw_error_t *err)
{
    const gw__limits_t *lim = ctx->limits;
    char q[GW__EVENT_QUOTE_MAX + 4];
    size_t i, j, nnames = 0, nvalues;

    for (i = f0; i < ctx->npf; i++) {
        for (j = f0; j < i; j++)
            if (gw__event_str_eq(ctx->pf[j].name, ctx->pf[i].name))
                break;
        if (j < i)
            continue; /* counted with its first occurrence */
        nnames++;
        nvalues = 0;
        for (j = i; j < ctx->npf; j++)
            if (gw__event_str_eq(ctx->pf[j].name, ctx->pf[i].name))
                nvalues++;
        if (nvalues > lim->max_filter_values) {
            gw_error_set(err,
                         "\"f\".\"%s\" has %zu values; at most %zu are "
                         "allowed",
                         gw__event_quote(q, ctx->pf[i].name.s,
                                         ctx->pf[i].name.n),
                         nvalues, lim->max_filter_values);
            return gw__event_fail(reject, GW__REJECT_LIMIT);
        }
    }
    if (nnames > lim->max_filters) {
        gw_error_set(err, "\"f\" has %zu filters; at most %zu are allowed",
                     nnames, lim->max_filters);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    return GW_OK;
}

int
gw__event_parse_struct(gw__parse_t *ctx, const gw_event_t *ev,
                       gw__pevent_t *out, gw__reject_t *reject,
                       gw_error_t *err)
{
    const gw__limits_t *lim = ctx->limits;
    size_t i;

    if (ev_struct_fields(ctx, ev, out, reject, err) != GW_OK)
        return GW_ERR;
    out->f0 = ctx->npf;
    if (ev->nfilters > lim->max_filters * lim->max_filter_values) {
        gw_error_set(err,
                     "\"f\" has %zu filter values; at most %zu filters of "
                     "%zu values are allowed",
                     ev->nfilters, lim->max_filters, lim->max_filter_values);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    for (i = 0; i < ev->nfilters; i++)
        if (ev_struct_filter(ctx, &ev->filters[i], out->f0, reject, err) !=
            GW_OK)
            return GW_ERR;
    if (ev_struct_limits(ctx, out->f0, reject, err) != GW_OK)
        return GW_ERR;
    out->nf = ctx->npf - out->f0;
    return GW_OK;
}
