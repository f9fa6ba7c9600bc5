/*
 * plugins/storage/redis/keys.c: key names and bucket stepping for the redis
 * storage (see keys.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, memmem, timegm, O_DIRECTORY, mkdtemp */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"

static int
rs_buf_reserve(rs_buf_t *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    if ((p = realloc(b->p, cap)) == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void
rs_buf_put(rs_buf_t *b, const void *data, size_t len)
{
    if (rs_buf_reserve(b, len) < 0)
        return;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void
rs_buf_puts(rs_buf_t *b, const char *s)
{
    rs_buf_put(b, s, strlen(s));
}

void
rs_buf_printf(rs_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char tmp[128];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t) n < sizeof(tmp))
        rs_buf_put(b, tmp, (size_t) n);
    else
        b->oom = 1; /* only used for numbers */
}

void
rs_buf_escape(rs_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = s;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char) *s;
        char esc[3];

        if (c != ';' && c != '|' && c != '/' && c != ':' && c != '\\')
            continue;
        rs_buf_put(b, run, (size_t) (s - run));
        esc[0] = '\\';
        esc[1] = hex[c >> 4];
        esc[2] = hex[c & 15];
        rs_buf_put(b, esc, 3);
        run = s + 1;
    }
    rs_buf_put(b, run, (size_t) (s - run));
}

static int
rs_hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

int
rs_buf_unescape(rs_buf_t *b, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char c = s[i];

        if (c == '\\') {
            int hi, lo;

            if (i + 2 >= len)
                return -1;
            hi = rs_hex((unsigned char) s[i + 1]);
            lo = rs_hex((unsigned char) s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        rs_buf_put(b, &c, 1);
    }
    return b->oom ? -1 : 0;
}

void
rs_buf_free(rs_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void
rs_key_series(rs_buf_t *b, const char *project, const char *metric,
              gw_period_t period, const char *fname, const char *fvalue)
{
    rs_buf_escape(b, project);
    rs_buf_put(b, ";", 1);
    rs_buf_escape(b, metric);
    rs_buf_put(b, ";", 1);
    rs_buf_puts(b, gw_period_name(period));
    if (fname != NULL) {
        rs_buf_put(b, ";", 1);
        rs_buf_escape(b, fname);
        rs_buf_put(b, "|", 1);
        rs_buf_escape(b, fvalue);
    }
}

void
rs_key_metrics(rs_buf_t *b, const char *project)
{
    rs_buf_escape(b, project);
    rs_buf_puts(b, "-metrics");
}

void
rs_key_projects(rs_buf_t *b)
{
    rs_buf_puts(b, "gottwall:projects");
}

void
rs_key_kinds(rs_buf_t *b, const char *project)
{
    rs_buf_escape(b, project);
    rs_buf_puts(b, "-metrics-kinds");
}

void
rs_key_filters(rs_buf_t *b, const char *project, const char *metric)
{
    rs_buf_escape(b, project);
    rs_buf_puts(b, "-metrics-filters:");
    rs_buf_escape(b, metric);
}

void
rs_key_values(rs_buf_t *b, const char *project, const char *metric,
              const char *fname)
{
    rs_buf_escape(b, project);
    rs_buf_puts(b, "-metrics-filter-values:");
    rs_buf_escape(b, metric);
    rs_buf_put(b, ":", 1);
    rs_buf_escape(b, fname);
}

void
rs_key_doc(rs_buf_t *b, const char *ns, const char *id)
{
    rs_buf_puts(b, "gottwall:doc:");
    rs_buf_escape(b, ns);
    rs_buf_put(b, ":", 1);
    rs_buf_escape(b, id);
}

void
rs_key_docs(rs_buf_t *b, const char *ns)
{
    rs_buf_puts(b, "gottwall:docs:");
    rs_buf_escape(b, ns);
}

void
rs_key_batch(rs_buf_t *b, const char *id)
{
    rs_buf_puts(b, "gottwall:batch:");
    rs_buf_puts(b, id);
}

void
rs_key_nonce(rs_buf_t *b, const char *project, const char *nonce, size_t len)
{
    rs_buf_puts(b, "gottwall:nonce:");
    rs_buf_escape(b, project);
    rs_buf_put(b, ":", 1);
    rs_buf_put(b, nonce, len);
}

/* Weeks start on Monday; 1970-01-05 (epoch + 4 days) was one. */
#define RS_MONDAY 345600

static int64_t
rs_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
rs_align_fixed(int64_t t, int64_t step, int64_t origin)
{
    int64_t k = rs_floor_div(t - origin, step);
    int64_t start = origin + k * step;

    return start == t ? t : start + step;
}

int64_t
rs_bucket_align_up(gw_period_t period, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t) t;
    int64_t start;

    switch (period) {
    case GW_PERIOD_MINUTE:
        return rs_align_fixed(t, 60, 0);
    case GW_PERIOD_HOUR:
        return rs_align_fixed(t, 3600, 0);
    case GW_PERIOD_DAY:
        return rs_align_fixed(t, 86400, 0);
    case GW_PERIOD_WEEK:
        return rs_align_fixed(t, 604800, RS_MONDAY);
    case GW_PERIOD_MONTH:
    case GW_PERIOD_YEAR:
        gmtime_r(&tt, &tm);
        tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
        tm.tm_mday = 1;
        if (period == GW_PERIOD_YEAR)
            tm.tm_mon = 0;
        start = (int64_t) timegm(&tm);
        return start == t ? t : rs_bucket_next(period, start);
    case GW_PERIOD_ALL:
    default:
        return t <= 0 ? 0 : INT64_MAX;
    }
}

int64_t
rs_bucket_next(gw_period_t period, int64_t b)
{
    struct tm tm;
    time_t tt = (time_t) b;

    switch (period) {
    case GW_PERIOD_MINUTE:
        return b + 60;
    case GW_PERIOD_HOUR:
        return b + 3600;
    case GW_PERIOD_DAY:
        return b + 86400;
    case GW_PERIOD_WEEK:
        return b + 604800;
    case GW_PERIOD_MONTH:
    case GW_PERIOD_YEAR:
        gmtime_r(&tt, &tm);
        if (period == GW_PERIOD_MONTH)
            tm.tm_mon++;
        else
            tm.tm_year++;
        return (int64_t) timegm(&tm);
    case GW_PERIOD_ALL:
    default:
        return INT64_MAX;
    }
}
