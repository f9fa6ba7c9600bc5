/*
 * plugins/transport/statsd/statsd_parse.c: the statsd line parser.
 *
 * A single pass over the line, in place: separators become NUL bytes, so
 * the metric name and the tags are usable C strings without a copy. Numbers
 * are checked against a strict grammar before strtod (which would also take
 * "nan", "inf" and hex). Nothing here knows about sockets or the daemon, so
 * the unit tests exercise it alone.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "statsd_parse.h"

#define SD_MAX_NAME 255

static int
sd_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* [+-]? then nan, inf or infinity in any case: a number strtod would take
 * that no statsd client means. s[0..len) */
static int
sd_nonfinite(const char *s, size_t len)
{
    size_t i = (len > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;

    len -= i;
    s += i;
    return (len == 3 && (strncasecmp(s, "nan", 3) == 0 ||
                         strncasecmp(s, "inf", 3) == 0)) ||
           (len == 8 && strncasecmp(s, "infinity", 8) == 0);
}

/* Strict decimal: [+-]? digits [. digits] [e [+-]? digits], with at least
 * one digit before the exponent. s[0..len). 0, -1 when malformed, -2 for
 * a number that is no finite double (nan, inf, 1e999). */
static int
sd_number(const char *s, size_t len, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                   1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15};
    char tmp[64];
    size_t i = 0, digits = 0, frac = 0;
    uint64_t m = 0;
    char *end;
    double v;

    if (sd_nonfinite(s, len))
        return -2;
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    if (s[i] == '+' || s[i] == '-')
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        m = m * 10 + (uint64_t) (s[i] - '0');
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            m = m * 10 + (uint64_t) (s[i] - '0');
            i++;
            digits++;
            frac++;
        }
    }
    if (digits == 0)
        return -1;
    if (i == len && digits <= 15) {
        /* Clinger's fast path: m < 10^15 < 2^53 and 10^frac are exact
         * doubles, so one IEEE division is the correctly rounded value,
         * the same double strtod gives, without its cost. */
        v = (double) m / pow10[frac];
        *out = s[0] == '-' ? -v : v;
        return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;

        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return -1;
    }
    if (i != len)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    v = strtod(tmp, &end);
    if (end != tmp + len)
        return -1;
    if (!isfinite(v))
        return -2;
    *out = v;
    return 0;
}

/* The type field's text s[0..len). */
static int
sd_type(const char *s, size_t len, sd_type_t *out)
{
    if (len == 1 && s[0] == 'c')
        *out = SD_COUNTER;
    else if (len == 1 && s[0] == 'g')
        *out = SD_GAUGE;
    else if ((len == 2 && s[0] == 'm' && s[1] == 's') ||
             (len == 1 && (s[0] == 'h' || s[0] == 'd')))
        *out = SD_TIMER;
    else if (len == 1 && s[0] == 's')
        *out = SD_SET;
    else
        return -1;
    return 0;
}

/* Splits the NUL-terminated tags text in place into out->tags. */
static sd_result_t
sd_tags(char *s, sd_line_t *out, const char **why)
{
    char *p = s;

    while (*p != '\0') {
        char *tag = p, *colon;

        while (*p != '\0' && *p != ',')
            p++;
        if (*p == ',')
            *p++ = '\0';
        if (*tag == '\0')
            continue; /* "a:b,,c:d" or a trailing comma */
        if (out->ntags == SD_MAX_TAGS) {
            *why = "more than 64 tags";
            return SD_LINE_BAD;
        }
        colon = strchr(tag, ':');
        if (colon == tag) {
            *why = "tag with an empty name";
            return SD_LINE_BAD;
        }
        if (colon == NULL) {
            out->tags[out->ntags].name = tag;
            out->tags[out->ntags].value = "true";
        } else {
            *colon = '\0';
            if (colon[1] == '\0') {
                *why = "tag with an empty value";
                return SD_LINE_BAD;
            }
            out->tags[out->ntags].name = tag;
            out->tags[out->ntags].value = colon + 1;
        }
        out->ntags++;
    }
    return SD_LINE_OK;
}

/* Index of the first of the stop characters (or end) in s[i..end). */
static size_t
sd_span(const char *s, size_t i, size_t end, const char *stops)
{
    /* One or two stops, compared inline (strchr per byte was the parse's
     * largest cost); a NUL stops too, as it did with strchr. */
    char a = stops[0], b = stops[1] != '\0' ? stops[1] : stops[0];

    while (i < end && s[i] != a && s[i] != b && s[i] != '\0')
        i++;
    return i;
}

/* One `value|type` plus its optional fields, from s[*pos..end). */
static sd_result_t
sd_entry(char *s, size_t *pos, size_t end, sd_line_t *out, const char **why)
{
    size_t i = *pos, vstart, vend, tstart, tend;
    sd_sample_t *smp;
    int more;

    if (out->nsamples == SD_MAX_SAMPLES) {
        *why = "more than 64 values on one line";
        return SD_LINE_BAD;
    }
    smp = &out->samples[out->nsamples];
    smp->rate = 1.0;
    smp->gauge_delta = 0;

    vstart = i;
    vend = sd_span(s, i, end, "|:");
    if (vend == end || s[vend] != '|') {
        *why = (vend == vstart) ? "empty value" : "missing type";
        return SD_LINE_BAD;
    }
    if (vend == vstart) {
        *why = "empty value";
        return SD_LINE_BAD;
    }
    tstart = vend + 1;
    tend = sd_span(s, tstart, end, "|:");
    if (sd_type(s + tstart, tend - tstart, &smp->type) != 0) {
        *why = (tend == tstart) ? "missing type" : "unknown type";
        return SD_LINE_BAD;
    }
    if (smp->type != SD_SET) {
        switch (sd_number(s + vstart, vend - vstart, &smp->value)) {
        case 0:
            break;
        case -2:
            *why = "value is not a finite number: |v| must be at most 1e300";
            return SD_LINE_RANGE;
        default:
            *why = "value is not a finite decimal number";
            return SD_LINE_BAD;
        }
        if (smp->type == SD_GAUGE && (s[vstart] == '+' || s[vstart] == '-'))
            smp->gauge_delta = 1;
    } else {
        smp->value = 0;
        smp->member = s + vstart;
        smp->member_len = vend - vstart;
    }
    i = tend;

    more = (i < end && s[i] == '|');
    while (more) {
        size_t fstart = i + 1, fend;

        if (fstart >= end || s[fstart] == '|' || s[fstart] == ':') {
            *why = "empty field";
            return SD_LINE_BAD;
        }
        if (s[fstart] == '#') {
            /* Tags run to the next '|' (a ':' belongs to them). */
            if (out->tags_raw_len != 0 || out->ntags != 0) {
                *why = out->telegraf ? "tags given twice (in the name, "
                                       "Telegraf's form, and after #, "
                                       "DogStatsD's: use one)"
                                     : "tags given twice";
                return SD_LINE_BAD;
            }
            fend = sd_span(s, fstart + 1, end, "|");
            more = (fend < end);
            s[fend] = '\0';
            out->tags_raw = s + fstart + 1;
            out->tags_raw_len = fend - fstart - 1;
            if (sd_tags(s + fstart + 1, out, why) != SD_LINE_OK)
                return SD_LINE_BAD;
            i = fend;
            continue;
        } else if (s[fstart] == '@') {
            fend = sd_span(s, fstart + 1, end, "|:");
            if (sd_number(s + fstart + 1, fend - fstart - 1, &smp->rate) != 0 ||
                !(smp->rate > 0 && smp->rate <= 1)) {
                *why = "rate must be a number in (0, 1]";
                return SD_LINE_BAD;
            }
        } else if (s[fstart] == 'T') {
            fend = sd_span(s, fstart + 1, end, "|:");
            if (sd_number(s + fstart + 1, fend - fstart - 1, &out->ts) != 0 ||
                out->ts <= 0) {
                *why = "timestamp must be positive epoch seconds";
                return SD_LINE_BAD;
            }
            out->has_ts = 1;
        } else if (s[fstart] == 'c' && fstart + 1 < end && s[fstart + 1] == ':') {
            /* DogStatsD container id: ignored. */
            fend = sd_span(s, fstart + 2, end, "|");
        } else {
            *why = "unknown field";
            return SD_LINE_BAD;
        }
        i = fend;
        more = (i < end && s[i] == '|');
    }
    out->nsamples++;
    *pos = i;
    return SD_LINE_OK;
}

/* Telegraf's name,k=v,k2=v2: the name cut at the first comma and the
 * pairs into out->tags, if every part after it is k=v with both sides
 * non-empty; else nothing changes (a comma may be part of a name). */
static sd_result_t
sd_telegraf(char *name, size_t len, sd_line_t *out, const char **why)
{
    char *comma = memchr(name, ',', len), *p, *end = name + len, *eq;
    size_t n = 0;

    if (comma == NULL)
        return SD_LINE_OK;
    for (p = comma + 1; p <= end; p++) {
        char *part = p;

        while (p < end && *p != ',')
            p++;
        eq = memchr(part, '=', (size_t) (p - part));
        if (eq == NULL || eq == part || eq + 1 == p)
            return SD_LINE_OK;
        n++;
    }
    if (comma == name) {
        *why = "empty metric name";
        return SD_LINE_BAD;
    }
    if (n > SD_MAX_TAGS) {
        *why = "more than 64 tags";
        return SD_LINE_BAD;
    }
    *comma = '\0';
    out->telegraf = 1;
    out->name_len = (size_t) (comma - name);
    /* The tags as written key a gauge's deltas, as DogStatsD's do. */
    out->tags_raw = comma + 1;
    out->tags_raw_len = (size_t) (end - comma - 1);
    for (p = comma + 1; p < end;) {
        char *part = p;

        while (p < end && *p != ',')
            p++;
        *p++ = '\0';
        eq = strchr(part, '=');
        *eq = '\0';
        out->tags[out->ntags].name = part;
        out->tags[out->ntags].value = eq + 1;
        out->ntags++;
    }
    return SD_LINE_OK;
}

sd_result_t
sd_parse_line(char *line, size_t len, sd_line_t *out, const char **why)
{
    const char *dummy;
    size_t start = 0, end = len, colon, pos;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    out->name = NULL;
    out->name_len = 0;
    out->tags_raw = "";
    out->tags_raw_len = 0;
    out->has_ts = 0;
    out->ts = 0;
    out->nsamples = 0;
    out->ntags = 0;
    out->telegraf = 0;

    while (end > start && sd_is_space(line[end - 1]))
        end--;
    while (start < end && sd_is_space(line[start]))
        start++;
    line[end] = '\0';
    if (start == end)
        return SD_LINE_EMPTY;
    /* DogStatsD's events (_e{title,text}:...) and service checks
     * (_sc|name|status...) are not metrics. */
    if ((end - start > 3 && memcmp(line + start, "_e{", 3) == 0) ||
        (end - start > 4 && memcmp(line + start, "_sc|", 4) == 0))
        return SD_LINE_DOGSTATSD;

    colon = sd_span(line, start, end, ":|");
    if (colon == end || line[colon] != ':') {
        *why = "missing ':' after the metric name";
        return SD_LINE_BAD;
    }
    if (colon == start) {
        *why = "empty metric name";
        return SD_LINE_BAD;
    }
    if (colon - start > SD_MAX_NAME) {
        *why = "metric name longer than 255 bytes";
        return SD_LINE_BAD;
    }
    line[colon] = '\0';
    out->name = line + start;
    out->name_len = colon - start;
    if (sd_telegraf(line + start, colon - start, out, why) != SD_LINE_OK)
        return SD_LINE_BAD;

    pos = colon + 1;
    for (;;) {
        sd_result_t rc = sd_entry(line, &pos, end, out, why);

        if (rc != SD_LINE_OK)
            return rc;
        if (pos >= end)
            break;
        if (line[pos] != ':') {
            *why = "unexpected character after a value";
            return SD_LINE_BAD;
        }
        if (out->ntags != 0 || out->tags_raw_len != 0) {
            *why = "a value after the tags";
            return SD_LINE_BAD;
        }
        pos++;
    }
    return SD_LINE_OK;
}
