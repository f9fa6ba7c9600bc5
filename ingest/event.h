/*
 * ingest/event.h: what the event parsers share and nobody else needs
 * (ingest/event.c has it, ingest/event_json.c and ingest/event_fast.c use
 * it): the keys of an event object, the checks of one event's fields with
 * their limits and messages, and the list of an event's distinct filter
 * pairs.
 *
 * The checks return GW_OK, or GW_ERR with err holding the message and
 * *reject (when not NULL) the reason.
 */
#ifndef GW_INGEST_EVENT_H
#define GW_INGEST_EVENT_H

#include <stddef.h>
#include <string.h>

#include "ingest_int.h"

/* 9999-12-31T23:59:59 UTC is the last second an event may carry. */
#define GW__EVENT_TS_MAX 253402300799.0

/* Messages quote at most this many bytes of a name the client sent. */
#define GW__EVENT_QUOTE_MAX 48

/* The keys of an event object, in the order they win within each field:
 * "a" over "action" over "type", "p" over "project", ... */
enum {
    GW__KEY_A,
    GW__KEY_ACTION,
    GW__KEY_TYPE,
    GW__KEY_P,
    GW__KEY_PROJECT,
    GW__KEY_N,
    GW__KEY_NAME,
    GW__KEY_TS,
    GW__KEY_TIMESTAMP,
    GW__KEY_V,
    GW__KEY_VALUE,
    GW__KEY_F,
    GW__KEY_FILTERS,
    GW__KEY_COUNT
};

/* The GW__KEY_ of the key k[0..n), or -1 for a key events do not have. */
int gw__event_key_index(const char *k, size_t n);

/* "incr", "decr", "avg" or "gauge" in s[0..n) into *a; GW_ERR otherwise. */
int gw__event_parse_action(const char *s, size_t n, gw_action_t *a);

/* A printable prefix of s[0..n): at most GW__EVENT_QUOTE_MAX bytes, cut on
 * a UTF-8 boundary, "..." when cut. buf holds GW__EVENT_QUOTE_MAX + 4
 * bytes. */
const char *gw__event_quote(char *buf, const char *s, size_t n);

/* Sets *reject (when not NULL) to why and returns GW_ERR. */
int gw__event_fail(gw__reject_t *reject, gw__reject_t why);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, no NUL). */
int gw__event_utf8_valid(const char *str, size_t n);

/* The event's project p[0..n) given as key, or with p NULL the
 * authenticated project (then required): into out->project, checked. */
int gw__event_project(gw__parse_t *ctx, const char *key, const char *p,
                      size_t n, gw__pevent_t *out, gw__reject_t *reject,
                      gw_error_t *err);

/* A metric name of n bytes given as key: not empty, within the limit. */
int gw__event_check_name(gw__parse_t *ctx, const char *key, size_t n,
                         gw__reject_t *reject, gw_error_t *err);

/* A timestamp given as key: finite, from 0 to GW__EVENT_TS_MAX. */
int gw__event_check_ts(const char *key, double ts, gw__reject_t *reject,
                       gw_error_t *err);

/* A value given as key: finite, |v| <= GW_VALUE_MAX (GW__REJECT_RANGE).
 * Inline: the fast path checks every value. */
int gw__event_value_refuse(const char *key, double v, gw__reject_t *reject,
                           gw_error_t *err);

static inline int
gw__event_check_value(const char *key, double v, gw__reject_t *reject,
                      gw_error_t *err)
{
    if (v >= -GW_VALUE_MAX && v <= GW_VALUE_MAX) /* false for NaN too */
        return GW_OK;
    return gw__event_value_refuse(key, v, reject, err);
}

/* A filter name of n bytes in the filters given as fkey. */
int gw__event_check_fname(gw__parse_t *ctx, const char *fkey, size_t n,
                          gw__reject_t *reject, gw_error_t *err);

/* A value of n bytes of the filter name in the filters given as fkey. */
int gw__event_check_fvalue(gw__parse_t *ctx, const char *fkey,
                           gw__str_t name, size_t n, gw__reject_t *reject,
                           gw_error_t *err);

/* A real as jansson writes it, at the shortest precision that reads back
 * the same double: 0.1 -> "0.1", 2.0 -> "2.0", 1e21 -> "1e21", into buf
 * of size bytes (64 are enough); returns its length. */
size_t gw__event_format_real(char *buf, size_t size, double v);

/* ---- the distinct filter pairs (inline: the fast path's per value) ---- */

/* NULL with ctx->nomem set if memory ran out. */
static inline gw__pfilter_t *
gw__event_pf_push(gw__parse_t *ctx)
{
    if (ctx->npf == ctx->cappf) {
        size_t cap = ctx->cappf ? ctx->cappf * 2 : 64;
        gw__pfilter_t *pf = gw__realloc(ctx->pf, cap * sizeof(*ctx->pf));

        if (pf == NULL) {
            ctx->nomem = 1;
            return NULL;
        }
        ctx->pf = pf;
        ctx->cappf = cap;
    }
    return &ctx->pf[ctx->npf++];
}

static inline int
gw__event_str_eq(gw__str_t a, gw__str_t b)
{
    return a.n == b.n && memcmp(a.s, b.s, a.n) == 0;
}

/* Adds (name, value) unless pf[from..] already holds it. */
static inline void
gw__event_pf_add_distinct(gw__parse_t *ctx, size_t from, gw__str_t name,
                          gw__str_t value)
{
    gw__pfilter_t *f;
    size_t i;

    for (i = from; i < ctx->npf; i++)
        if (gw__event_str_eq(ctx->pf[i].value, value) &&
            gw__event_str_eq(ctx->pf[i].name, name))
            return;
    f = gw__event_pf_push(ctx);
    if (f == NULL)
        return;
    f->name = name;
    f->value = value;
}

/* The byte size of each element of a JSON array text that jansson has
 * already accepted, from its first to its last byte: sizes gets n. */
void gw__json_element_sizes(const char *s, size_t len, size_t *sizes,
                            size_t n);

/* The kind rule's refusals (GW__REJECT_KIND): metric already has kind
 * have; and (GW__REJECT_UNKEPT) a new metric of a kind the storage named
 * does not keep. Both return GW_ERR with err set. */
int gw__event_kind_conflict(const gw__pevent_t *e, const char *metric,
                            gw_kind_t have, gw__reject_t *reject,
                            gw_error_t *err);
int gw__event_kind_unkept(const char *storage, const gw__pevent_t *e,
                          gw_kind_t kind, gw__reject_t *reject,
                          gw_error_t *err);

#endif /* GW_INGEST_EVENT_H */
