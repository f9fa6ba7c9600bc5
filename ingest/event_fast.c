/*
 * ingest/event_fast.c: the fast path, one plain JSON event read straight
 * from the request text (SPEC §2).
 *
 * Most events are small plain objects: no escapes, no duplicate keys, valid
 * values. This parser reads those without building a jansson tree, and
 * gives up (GW_AGAIN) at the first thing it does not expect; the caller
 * then runs the jansson path (ingest/event_json.c), which also writes
 * every error message. So it only has to agree with the jansson path on
 * what it accepts, which tests/fuzz/fuzz_event.c checks differentially and
 * tests/ingest/test_event.c on chosen inputs.
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
#include "event.h"

#define FP_DEPTH 32

typedef struct fp_s {
    const char *s;
    size_t len, i;
} fp_t;

enum {
    FP_NONE,
    FP_NULL,
    FP_STR,
    FP_INT,
    FP_REAL,
    FP_TRUE,
    FP_FALSE,
    FP_OBJ,
    FP_ARR
};

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
    if (high && !gw__event_utf8_valid(out->s, out->n))
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
        v->type = FP_INT;
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
        v->type = FP_REAL;
        v->dv = strtod(buf, &end);
        if (!isfinite(v->dv))
            return GW_AGAIN;
    } else {
        v->type = FP_INT;
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

    if (depth >= FP_DEPTH)
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
        v->type = FP_STR;
        return fp_string(c, &v->str);
    case '{':
        v->type = FP_OBJ;
        return fp_skip(c, depth);
    case '[':
        v->type = FP_ARR;
        return fp_skip(c, depth);
    case 't':
        v->type = FP_TRUE;
        return fp_literal(c, "true", 4);
    case 'f':
        v->type = FP_FALSE;
        return fp_literal(c, "false", 5);
    case 'n':
        v->type = FP_NULL;
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
    case FP_STR:
        *out = v->str;
        return out->n <= ctx->limits->max_name_bytes ? GW_OK : GW_AGAIN;
    case FP_INT:
        n = (size_t) snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                              v->iv);
        break;
    case FP_REAL:
        n = gw__event_format_real(buf, sizeof(buf), v->dv);
        break;
    case FP_TRUE:
        out->s = "true";
        out->n = 4;
        return GW_OK;
    case FP_FALSE:
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
            if (gw__event_str_eq(names[k], name))
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
                    gw__event_pf_add_distinct(ctx, from, name, value);
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
            gw__event_pf_add_distinct(ctx, from, name, value);
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
        if (slot[i].type != FP_NONE && slot[i].type != FP_NULL)
            return i;
    return -1;
}

static int
fp_ts(const fp_val_t *v, double *ts)
{
    char buf[20];
    int64_t t;

    if (v->type == FP_INT || v->type == FP_REAL) {
        *ts = v->dv;
    } else if (v->type == FP_STR && v->str.n == 19) {
        memcpy(buf, v->str.s, 19);
        buf[19] = '\0';
        if (gw__time_parse_iso(buf, &t) != GW_OK)
            return GW_AGAIN;
        *ts = (double) t;
    } else {
        return GW_AGAIN;
    }
    return (*ts >= 0 && *ts < GW__EVENT_TS_MAX + 1) ? GW_OK : GW_AGAIN;
}

/* The key at c->i, as its GW__KEY_ index (-1 for one events do not have)
 * in *key, and c->i past its ':'. */
static int
fp_key(fp_t *c, int *key)
{
    const char *s = c->s;
    gw__str_t name;
    int i = -1;

    /* The usual keys written compactly ("n":, "ts":) in one comparison;
     * anything else the long way. */
    if (c->i + 4 <= c->len && s[c->i] == '"' && s[c->i + 2] == '"' &&
        s[c->i + 3] == ':') {
        switch (s[c->i + 1]) {
        case 'a': i = GW__KEY_A; break;
        case 'n': i = GW__KEY_N; break;
        case 'v': i = GW__KEY_V; break;
        case 'f': i = GW__KEY_F; break;
        case 'p': i = GW__KEY_P; break;
        }
        if (i >= 0)
            c->i += 4;
    } else if (c->i + 5 <= c->len && s[c->i] == '"' && s[c->i + 1] == 't' &&
               s[c->i + 2] == 's' && s[c->i + 3] == '"' &&
               s[c->i + 4] == ':') {
        i = GW__KEY_TS;
        c->i += 5;
    }
    if (i < 0) {
        if (c->i >= c->len || s[c->i] != '"' || fp_string(c, &name) != GW_OK)
            return GW_AGAIN;
        fp_ws(c);
        if (c->i >= c->len || s[c->i] != ':')
            return GW_AGAIN;
        c->i++;
        i = gw__event_key_index(name.s, name.n);
    }
    *key = i;
    return GW_OK;
}

/* The members of the object at c->i into slot[] by key (the filters read
 * into ctx's pairs on the way), and c->i past its '}'. */
static int
fp_members(gw__parse_t *ctx, fp_t *c, fp_val_t *slot)
{
    fp_val_t v;
    int i, rc, nobj = 0;

    if (c->i >= c->len || c->s[c->i] != '{')
        return GW_AGAIN;
    c->i++;
    fp_ws(c);
    if (c->i < c->len && c->s[c->i] == '}') {
        c->i++;
        return GW_OK;
    }
    for (;;) {
        if (fp_key(c, &i) != GW_OK)
            return GW_AGAIN;
        fp_ws(c);
        if ((i == GW__KEY_F || i == GW__KEY_FILTERS) && c->i < c->len &&
            c->s[c->i] == '{') {
            /* The filters, read in the same pass. Only one object of
             * the two keys may be given here: the one picked by
             * fp_fields, if it is an object, is this one. */
            if (nobj++ > 0)
                return GW_AGAIN;
            v.type = FP_OBJ;
            v.start = c->i;
            if (fp_filters(ctx, c) != GW_OK)
                return GW_AGAIN;
        } else if (fp_value(c, &v, 1) != GW_OK) {
            return GW_AGAIN;
        }
        if (i >= 0) {
            if (slot[i].type != FP_NONE)
                return GW_AGAIN; /* a duplicate key */
            slot[i] = v;
        }
        rc = fp_next(c, '}');
        if (rc < 0)
            return GW_AGAIN;
        if (rc == 0)
            return GW_OK;
    }
}

/* The event's fields from its members, when the jansson path would
 * accept them as they are. */
static int
fp_fields(gw__parse_t *ctx, const fp_val_t *slot, gw__pevent_t *out)
{
    int i = fp_pick(slot, GW__KEY_A, GW__KEY_TYPE);

    if (i < 0)
        out->action = ctx->default_action ? ctx->default_action
                                          : GW_ACTION_INCR;
    else if (slot[i].type != FP_STR ||
             gw__event_parse_action(slot[i].str.s, slot[i].str.n,
                                    &out->action) != GW_OK)
        return GW_AGAIN;
    if (out->action == GW_ACTION_SET) /* a string v: the jansson path */
        return GW_AGAIN;

    if (ctx->project == NULL)
        return GW_AGAIN;
    out->project.s = ctx->project;
    out->project.n = ctx->project_len;
    i = fp_pick(slot, GW__KEY_P, GW__KEY_PROJECT);
    if (i >= 0 && (slot[i].type != FP_STR ||
                   !gw__event_str_eq(slot[i].str, out->project)))
        return GW_AGAIN;

    i = fp_pick(slot, GW__KEY_N, GW__KEY_NAME);
    if (i < 0 || slot[i].type != FP_STR || slot[i].str.n == 0 ||
        slot[i].str.n > ctx->limits->max_name_bytes)
        return GW_AGAIN;
    out->name = slot[i].str;

    i = fp_pick(slot, GW__KEY_TS, GW__KEY_TIMESTAMP);
    if (i < 0)
        out->ts = ctx->now != 0 ? ctx->now : ctx->now_fn();
    else if (fp_ts(&slot[i], &out->ts) != GW_OK)
        return GW_AGAIN;

    i = fp_pick(slot, GW__KEY_V, GW__KEY_VALUE);
    if (i < 0)
        out->value = 1;
    else if ((slot[i].type == FP_INT || slot[i].type == FP_REAL) &&
             slot[i].dv >= -GW_VALUE_MAX && slot[i].dv <= GW_VALUE_MAX)
        out->value = slot[i].dv;
    else /* the jansson path refuses it with the message */
        return GW_AGAIN;

    i = fp_pick(slot, GW__KEY_F, GW__KEY_FILTERS);
    if (i >= 0 && slot[i].type != FP_OBJ)
        return GW_AGAIN;
    return GW_OK;
}

int
gw__event_parse_fast(gw__parse_t *ctx, const char *s, size_t len,
                     size_t *pos, gw__pevent_t *out)
{
    fp_t c = {s, len, *pos};
    fp_val_t slot[GW__KEY_COUNT];
    int i;

    for (i = 0; i < GW__KEY_COUNT; i++)
        slot[i].type = FP_NONE;
    out->f0 = ctx->npf;
    if (fp_members(ctx, &c, slot) != GW_OK ||
        fp_fields(ctx, slot, out) != GW_OK)
        return GW_AGAIN;
    out->nf = ctx->npf - out->f0;
    *pos = c.i;
    return GW_OK;
}
