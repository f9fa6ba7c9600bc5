/*
 * ingest/bucket.c: calendar buckets in UTC (SPEC §3).
 *
 * Everything here is pure arithmetic on epoch seconds: days since
 * 1970-01-01 and the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil / civil_from_days), never timegm or the local timezone.
 * Divisions floor, so negative times fall into the bucket that starts at
 * or before them. Results that would not fit an int64_t saturate.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdint.h>
#include <string.h>

#include <gottwall/common.h>

#include "bucket.h"

#define MINUTE_S 60
#define HOUR_S 3600
#define DAY_S 86400
#define WEEK_S (7 * DAY_S)

/* a / b rounded towards minus infinity (b > 0). */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

/* a * b for b > 0, saturating at the int64_t limits. */
static int64_t
mul_sat(int64_t a, int64_t b)
{
    if (a < INT64_MIN / b)
        return INT64_MIN;
    if (a > INT64_MAX / b)
        return INT64_MAX;
    return a * b;
}

/* a + b for b >= 0, saturating at INT64_MAX. */
static int64_t
add_sat(int64_t a, int64_t b)
{
    if (a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;                                  /* [0, 399] */
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The civil date of day z (days since 1970-01-01). */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;                                      /* [0, 146096] */
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t
gw__bucket_start(gw_period_t p, int64_t ts)
{
    int64_t days, y;
    int m, d;

    switch (p) {
    case GW_PERIOD_MINUTE:
        return mul_sat(floor_div(ts, MINUTE_S), MINUTE_S);
    case GW_PERIOD_HOUR:
        return mul_sat(floor_div(ts, HOUR_S), HOUR_S);
    case GW_PERIOD_DAY:
        return mul_sat(floor_div(ts, DAY_S), DAY_S);
    case GW_PERIOD_WEEK:
        /* Day 0 (1970-01-01) was a Thursday: Monday is 3 days before. */
        days = floor_div(ts, DAY_S);
        days -= (days + 3) - floor_div(days + 3, 7) * 7;
        return mul_sat(days, DAY_S);
    case GW_PERIOD_MONTH:
        civil_from_days(floor_div(ts, DAY_S), &y, &m, &d);
        return mul_sat(days_from_civil(y, m, 1), DAY_S);
    case GW_PERIOD_YEAR:
        civil_from_days(floor_div(ts, DAY_S), &y, &m, &d);
        return mul_sat(days_from_civil(y, 1, 1), DAY_S);
    case GW_PERIOD_ALL:
        return 0;
    }
    return 0;
}

int64_t
gw__bucket_next(gw_period_t p, int64_t start)
{
    int64_t y;
    int m, d;

    switch (p) {
    case GW_PERIOD_MINUTE:
        return add_sat(start, MINUTE_S);
    case GW_PERIOD_HOUR:
        return add_sat(start, HOUR_S);
    case GW_PERIOD_DAY:
        return add_sat(start, DAY_S);
    case GW_PERIOD_WEEK:
        return add_sat(start, WEEK_S);
    case GW_PERIOD_MONTH:
        if (start > INT64_MAX - 31 * (int64_t) DAY_S)
            return INT64_MAX;
        civil_from_days(floor_div(start, DAY_S), &y, &m, &d);
        if (m == 12)
            return mul_sat(days_from_civil(y + 1, 1, 1), DAY_S);
        return mul_sat(days_from_civil(y, m + 1, 1), DAY_S);
    case GW_PERIOD_YEAR:
        if (start > INT64_MAX - 366 * (int64_t) DAY_S)
            return INT64_MAX;
        civil_from_days(floor_div(start, DAY_S), &y, &m, &d);
        return mul_sat(days_from_civil(y + 1, 1, 1), DAY_S);
    case GW_PERIOD_ALL:
        return INT64_MAX;
    }
    return INT64_MAX;
}

int
gw__period_parse(const char *name, gw_period_t *p)
{
    int i;

    if (name == NULL)
        return GW_ERR;
    for (i = 0; i < GW_PERIOD_COUNT; i++) {
        if (strcmp(name, gw_period_name((gw_period_t) i)) == 0) {
            *p = (gw_period_t) i;
            return GW_OK;
        }
    }
    return GW_ERR;
}

/* Reads exactly n ASCII digits at s into *out. */
static int
read_digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GW_ERR;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return GW_OK;
}

static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Parses "YYYY-MM-DD" at s (exactly 10 characters) into days. */
static int
parse_date_part(const char *s, int64_t *days)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int y, m, d, max;

    if (read_digits(s, 4, &y) != GW_OK || s[4] != '-' ||
        read_digits(s + 5, 2, &m) != GW_OK || s[7] != '-' ||
        read_digits(s + 8, 2, &d) != GW_OK)
        return GW_ERR;
    if (m < 1 || m > 12)
        return GW_ERR;
    max = mdays[m - 1] + (m == 2 && is_leap(y));
    if (d < 1 || d > max)
        return GW_ERR;
    *days = days_from_civil(y, m, d);
    return GW_OK;
}

int
gw__time_parse_iso(const char *s, int64_t *out)
{
    int64_t days;
    int h, mi, se;

    if (s == NULL || strlen(s) != 19 || parse_date_part(s, &days) != GW_OK)
        return GW_ERR;
    if (s[10] != 'T' || read_digits(s + 11, 2, &h) != GW_OK ||
        s[13] != ':' || read_digits(s + 14, 2, &mi) != GW_OK ||
        s[16] != ':' || read_digits(s + 17, 2, &se) != GW_OK)
        return GW_ERR;
    if (h > 23 || mi > 59 || se > 59)
        return GW_ERR;
    *out = days * DAY_S + h * HOUR_S + mi * MINUTE_S + se;
    return GW_OK;
}

int
gw__date_parse(const char *s, int64_t *out)
{
    int64_t days;

    if (s == NULL || strlen(s) != 10 || parse_date_part(s, &days) != GW_OK)
        return GW_ERR;
    *out = days * DAY_S;
    return GW_OK;
}

void
gw__retention_cuts(const int64_t *retention, int64_t now, int64_t *cuts)
{
    int p;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        cuts[p] = p != GW_PERIOD_ALL && retention[p] > 0
                      ? gw__bucket_start((gw_period_t) p, now - retention[p])
                      : INT64_MIN;
}
