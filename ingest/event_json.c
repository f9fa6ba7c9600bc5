/*
 * ingest/event_json.c: one event from a jansson object (SPEC §2), the
 * parser that decides every event and explains every refusal (the fast
 * scanner of ingest/event_fast.c leaves all it is not sure of to it).
 *
 * Keys: short ones win over long ones ("a" over "action" over "type", "p"
 * over "project", ...); a key whose value is null counts as absent; other
 * keys are ignored. The checks and messages the parsers share are in
 * ingest/event.c.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bucket.h"
#include "event.h"

/* One scalar filter value as a string; GW_ERR for null, lists, objects. */
static int
ej_fvalue(gw__parse_t *ctx, const char *fkey, gw__str_t name, json_t *v,
          gw__str_t *out, gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];
    char buf[64];
    size_t n;

    switch (json_typeof(v)) {
    case JSON_STRING:
        out->s = json_string_value(v);
        out->n = json_string_length(v);
        return gw__event_check_fvalue(ctx, fkey, name, out->n, reject, err);
    case JSON_INTEGER:
        n = (size_t) snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
        break;
    case JSON_REAL:
        n = gw__event_format_real(buf, sizeof(buf), json_real_value(v));
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
                     fkey, gw__event_quote(q, name.s, name.n));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    default:
        gw_error_set(err,
                     "\"%s\".\"%s\" holds a list or object inside a list; "
                     "a filter value must be a string, number or boolean",
                     fkey, gw__event_quote(q, name.s, name.n));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    gw__parse_dup(ctx, buf, n, out);
    return gw__event_check_fvalue(ctx, fkey, name, n, reject, err);
}

/* One filter: name -> scalar, or name -> list of scalars. */
static int
ej_filter(gw__parse_t *ctx, const char *fkey, const char *nm, size_t nlen,
          json_t *v, gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];
    gw__str_t name = {nm, nlen}, value;
    size_t i, n, from = ctx->npf;

    if (gw__event_check_fname(ctx, fkey, nlen, reject, err) != GW_OK)
        return GW_ERR;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > ctx->limits->max_filter_values) {
            gw_error_set(err,
                         "\"%s\".\"%s\" has %zu values; at most %zu are "
                         "allowed",
                         fkey, gw__event_quote(q, nm, nlen), n,
                         ctx->limits->max_filter_values);
            return gw__event_fail(reject, GW__REJECT_LIMIT);
        }
        for (i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);

            if (json_is_array(e) || json_is_object(e)) {
                gw_error_set(err,
                             "\"%s\".\"%s\" holds a list or object inside "
                             "a list; a filter value must be a string, "
                             "number or boolean",
                             fkey, gw__event_quote(q, nm, nlen));
                return gw__event_fail(reject, GW__REJECT_INVALID);
            }
            if (ej_fvalue(ctx, fkey, name, e, &value, reject, err) != GW_OK)
                return GW_ERR;
            gw__event_pf_add_distinct(ctx, from, name, value);
        }
        return GW_OK;
    }
    if (json_is_object(v)) {
        gw_error_set(err,
                     "\"%s\".\"%s\" is an object; a filter value must be a "
                     "string, number, boolean or a list of those",
                     fkey, gw__event_quote(q, nm, nlen));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (ej_fvalue(ctx, fkey, name, v, &value, reject, err) != GW_OK)
        return GW_ERR;
    gw__event_pf_add_distinct(ctx, from, name, value);
    return GW_OK;
}

static int
ej_filters(gw__parse_t *ctx, const char *fkey, json_t *f,
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
            if (ej_filter(ctx, fkey, k, strlen(k), v, reject, err) != GW_OK)
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
                return gw__event_fail(reject, GW__REJECT_INVALID);
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
            if (ej_filter(ctx, fkey, json_string_value(name),
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
    return gw__event_fail(reject, GW__REJECT_INVALID);

too_many:
    gw_error_set(err, "\"%s\" has %zu filters; at most %zu are allowed", fkey,
                 n, ctx->limits->max_filters);
    return gw__event_fail(reject, GW__REJECT_LIMIT);
}

/* The keys by GW__KEY_ index, for the messages. */
static const char *const ej_key_names[GW__KEY_COUNT] = {
    "a", "action", "type", "p", "project", "n", "name",
    "ts", "timestamp", "v", "value", "f", "filters"};

/* The first non-null of slots first..last: its index, or -1. */
static int
ej_pick(json_t *const *slot, int first, int last)
{
    int i;

    for (i = first; i <= last; i++)
        if (slot[i] != NULL)
            return i;
    return -1;
}

/* a / action / type */
static int
ej_action(gw__parse_t *ctx, json_t *const *slot, gw__pevent_t *out,
          gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];
    int i = ej_pick(slot, GW__KEY_A, GW__KEY_TYPE);

    if (i < 0) {
        out->action = ctx->default_action ? ctx->default_action
                                          : GW_ACTION_INCR;
    } else if (!json_is_string(slot[i])) {
        gw_error_set(err,
                     "\"%s\" (action) must be a string: incr, decr, avg, "
                     "gauge, timing or set",
                     ej_key_names[i]);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    } else if (gw__event_parse_action(json_string_value(slot[i]),
                                      json_string_length(slot[i]),
                                      &out->action) != GW_OK) {
        gw_error_set(err,
                     "action \"%s\" is unknown; use incr, decr, avg, "
                     "gauge, timing or set",
                     gw__event_quote(q, json_string_value(slot[i]),
                                     json_string_length(slot[i])));
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    return GW_OK;
}

/* p / project: the event's, or the authenticated one */
static int
ej_project(gw__parse_t *ctx, json_t *const *slot, gw__pevent_t *out,
           gw__reject_t *reject, gw_error_t *err)
{
    int i = ej_pick(slot, GW__KEY_P, GW__KEY_PROJECT);

    if (i >= 0 && !json_is_string(slot[i])) {
        gw_error_set(err, "\"%s\" (project) must be a string",
                     ej_key_names[i]);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    return gw__event_project(ctx, i >= 0 ? ej_key_names[i] : "p",
                             i >= 0 ? json_string_value(slot[i]) : NULL,
                             i >= 0 ? json_string_length(slot[i]) : 0, out,
                             reject, err);
}

/* n / name */
static int
ej_name(gw__parse_t *ctx, json_t *const *slot, gw__pevent_t *out,
        gw__reject_t *reject, gw_error_t *err)
{
    int i = ej_pick(slot, GW__KEY_N, GW__KEY_NAME);

    if (i < 0) {
        gw_error_set(err, "\"n\" (metric name) is required");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (!json_is_string(slot[i])) {
        gw_error_set(err, "\"%s\" (metric name) must be a string",
                     ej_key_names[i]);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    out->name.s = json_string_value(slot[i]);
    out->name.n = json_string_length(slot[i]);
    return gw__event_check_name(ctx, ej_key_names[i], out->name.n, reject,
                                err);
}

/* ts / timestamp: epoch seconds or an ISO 8601 string; none is now. */
static int
ej_ts(gw__parse_t *ctx, json_t *const *slot, gw__pevent_t *out,
      gw__reject_t *reject, gw_error_t *err)
{
    char q[GW__EVENT_QUOTE_MAX + 4];
    int i = ej_pick(slot, GW__KEY_TS, GW__KEY_TIMESTAMP);
    const char *s;
    int64_t its;

    if (i < 0) {
        out->ts = ctx->now != 0 ? ctx->now : ctx->now_fn();
        return GW_OK;
    }
    if (json_is_number(slot[i])) {
        out->ts = json_number_value(slot[i]);
    } else if (json_is_string(slot[i])) {
        s = json_string_value(slot[i]);
        if (gw__time_parse_iso(s, &its) != GW_OK) {
            gw_error_set(err,
                         "\"%s\" \"%s\" is not a valid time; use epoch "
                         "seconds or \"YYYY-MM-DDTHH:MM:SS\" (UTC)",
                         ej_key_names[i],
                         gw__event_quote(q, s, json_string_length(slot[i])));
            return gw__event_fail(reject, GW__REJECT_INVALID);
        }
        out->ts = (double) its;
    } else {
        gw_error_set(err,
                     "\"%s\" must be epoch seconds or a "
                     "\"YYYY-MM-DDTHH:MM:SS\" string (UTC)",
                     ej_key_names[i]);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    return gw__event_check_ts(ej_key_names[i], out->ts, reject, err);
}

/* The member of a set event: v as a string of 1..255 bytes, or a number
 * as its text (as a filter value's). */
#define EJ_MEMBER_MAX 255

static int
ej_member(json_t *v, const char *key, gw__pevent_t *out,
          gw__reject_t *reject, gw_error_t *err)
{
    char buf[64];
    const char *m = buf;
    size_t n;

    if (v == NULL) {
        gw_error_set(err, "a set event needs \"v\", the member to count "
                          "(a string)");
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (json_is_string(v)) {
        m = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t) snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
    } else if (json_is_real(v)) {
        n = gw__event_format_real(buf, sizeof(buf), json_real_value(v));
    } else {
        gw_error_set(err, "\"%s\" of a set event must be a string (the "
                          "member) or a number", key);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    }
    if (n == 0 || n > EJ_MEMBER_MAX) {
        gw_error_set(err, "\"%s\" of a set event must be 1 to %d bytes, "
                          "not %zu", key, EJ_MEMBER_MAX, n);
        return gw__event_fail(reject, GW__REJECT_LIMIT);
    }
    out->member = gw_set_hash(m, n);
    out->value = 1;
    return GW_OK;
}

/* v / value: a finite number, |v| <= GW_VALUE_MAX; none is 1. A set's
 * is its member (ej_member). */
static int
ej_value(json_t *const *slot, gw__pevent_t *out, gw__reject_t *reject,
         gw_error_t *err)
{
    int i = ej_pick(slot, GW__KEY_V, GW__KEY_VALUE);

    if (out->action == GW_ACTION_SET)
        return ej_member(i >= 0 ? slot[i] : NULL,
                         i >= 0 ? ej_key_names[i] : "v", out, reject, err);
    if (i < 0) {
        out->value = 1;
    } else if (!json_is_number(slot[i])) {
        gw_error_set(err, "\"%s\" must be a finite number", ej_key_names[i]);
        return gw__event_fail(reject, GW__REJECT_INVALID);
    } else {
        out->value = json_number_value(slot[i]);
        return gw__event_check_value(ej_key_names[i], out->value, reject, err);
    }
    return GW_OK;
}

int
gw__event_parse_json(gw__parse_t *ctx, json_t *obj, gw__pevent_t *out,
                     gw__reject_t *reject, gw_error_t *err)
{
    json_t *slot[GW__KEY_COUNT] = {NULL};
    const char *k;
    json_t *v;
    int i;

    json_object_foreach(obj, k, v)
    {
        i = gw__event_key_index(k, strlen(k));
        if (i >= 0 && !json_is_null(v))
            slot[i] = v;
    }
    if (ej_action(ctx, slot, out, reject, err) != GW_OK ||
        ej_project(ctx, slot, out, reject, err) != GW_OK ||
        ej_name(ctx, slot, out, reject, err) != GW_OK ||
        ej_ts(ctx, slot, out, reject, err) != GW_OK ||
        ej_value(slot, out, reject, err) != GW_OK)
        return GW_ERR;

    /* f / filters */
    out->f0 = ctx->npf;
    i = ej_pick(slot, GW__KEY_F, GW__KEY_FILTERS);
    if (i >= 0 &&
        ej_filters(ctx, ej_key_names[i], slot[i], reject, err) != GW_OK)
        return GW_ERR;
    out->nf = ctx->npf - out->f0;
    return GW_OK;
}

/*
 * The byte size of each element of a JSON array text that jansson has
 * already accepted (so brackets and strings are balanced), from its first
 * to its last byte. sizes gets one entry per element.
 */
void
gw__json_element_sizes(const char *s, size_t len, size_t *sizes, size_t n)
{
    size_t i = 0, k = 0, start, end;
    int depth, instr;
    char c;

#define WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
    while (i < len && WS(s[i]))
        i++;
    i++; /* '[' */
    while (k < n) {
        while (i < len && (WS(s[i]) || s[i] == ','))
            i++;
        if (i >= len || s[i] == ']')
            break;
        start = i;
        depth = 0;
        instr = 0;
        for (; i < len; i++) {
            c = s[i];
            if (instr) {
                if (c == '\\')
                    i++;
                else if (c == '"')
                    instr = 0;
                continue;
            }
            if (c == '"') {
                instr = 1;
            } else if (c == '[' || c == '{') {
                depth++;
            } else if (c == ']' || c == '}') {
                if (depth == 0)
                    break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        end = i;
        while (end > start && WS(s[end - 1]))
            end--;
        sizes[k++] = end - start;
    }
    while (k < n)
        sizes[k++] = 0;
#undef WS
}
