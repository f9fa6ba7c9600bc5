/*
 * base/conf_retention.c: RETENTION, how long each period's buckets are
 * kept (base/conf.h).
 *
 *   RETENTION = { minute = "7d"; hour = "90d"; day = "5y"; };
 *
 * A duration is a whole number and a unit: s, m (minutes), h, d, w, y (365
 * days); a bare integer is seconds. A period not named is kept for ever.
 * Refused with file:line: an unknown period, "all" (its one bucket cannot
 * expire), a period not in PERIODS, a duration shorter than one bucket of
 * its period, and a finer period kept longer than a coarser one (its data
 * would outlive the coarser buckets it adds up to).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"

/* The shortest bucket of each period, in seconds (a month: February). */
static const int64_t rt_bucket[GW_PERIOD_COUNT] = {
    60, 3600, 86400, 7 * 86400, 28 * 86400, 365 * 86400, 0,
};

/* The shortest bucket, written as RETENTION takes it, for messages. */
static const char *const rt_bucket_text[GW_PERIOD_COUNT] = {
    "1m", "1h", "1d", "1w", "28d", "1y", "",
};

int
gw__retention_parse(const char *s, int64_t *out)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'s', 1},       {'m', 60},         {'h', 3600},
                 {'d', 86400},   {'w', 7 * 86400},  {'y', 365 * 86400}};
    char *end;
    long long n;
    size_t i;

    if (s[0] < '0' || s[0] > '9')
        return GW_ERR;
    n = strtoll(s, &end, 10);
    if (n <= 0 || n > 1000000000LL)
        return GW_ERR;
    if (*end == '\0') {
        *out = n;
        return GW_OK;
    }
    if (end[1] != '\0')
        return GW_ERR;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (*end == units[i].unit) {
            *out = n * units[i].secs;
            return GW_OK;
        }
    }
    return GW_ERR;
}

void
gw__retention_format(int64_t secs, char *buf, size_t size)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'y', 365 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}};
    size_t i;

    if (secs == 0) {
        snprintf(buf, size, "for ever");
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (secs % units[i].secs == 0) {
            snprintf(buf, size, "%lld%c", (long long) (secs / units[i].secs),
                     units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%llds", (long long) secs);
}

/* One member of RETENTION into cfg->retention. */
static int
rt_read_one(gw__config_t *cfg, const config_setting_t *e, gw_error_t *err)
{
    const char *name = config_setting_name(e);
    int p, t = config_setting_type(e);
    int64_t secs;

    for (p = 0; p < GW_PERIOD_COUNT; p++)
        if (strcmp(name, gw_period_name((gw_period_t) p)) == 0)
            break;
    if (p == GW_PERIOD_COUNT)
        return gw__cf_fail(err, e, cfg->path, "RETENTION.%s: unknown period "
                           "(known: minute, hour, day, week, month, year)",
                           name);
    if (p == GW_PERIOD_ALL)
        return gw__cf_fail(err, e, cfg->path, "RETENTION.all: the all-time "
                           "bucket is one cell per series and cannot expire; "
                           "remove it");
    if (!(cfg->periods & (1u << p)))
        return gw__cf_fail(err, e, cfg->path, "RETENTION.%s: %s is not in "
                           "PERIODS, so nothing of it is kept; remove it or "
                           "add \"%s\" to PERIODS", name, name, name);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        secs = config_setting_get_int64(e);
        if (secs <= 0)
            return gw__cf_fail(err, e, cfg->path, "RETENTION.%s must be a "
                               "duration like \"7d\", not %lld", name,
                               (long long) secs);
    } else if (t != CONFIG_TYPE_STRING ||
               gw__retention_parse(config_setting_get_string(e), &secs) !=
                   GW_OK) {
        return gw__cf_fail(err, e, cfg->path, "RETENTION.%s must be a "
                           "duration: a whole number and a unit s, m, h, d, "
                           "w or y, like \"7d\" or \"90d\"%s%s%s", name,
                           t == CONFIG_TYPE_STRING ? ", not \"" : "",
                           t == CONFIG_TYPE_STRING
                               ? config_setting_get_string(e)
                               : "",
                           t == CONFIG_TYPE_STRING ? "\"" : "");
    }
    if (secs < rt_bucket[p])
        return gw__cf_fail(err, e, cfg->path, "RETENTION.%s is shorter than "
                           "one %s bucket: keep at least \"%s\", or remove it "
                           "to keep %s buckets for ever", name, name,
                           rt_bucket_text[p], name);
    cfg->retention[p] = secs;
    return GW_OK;
}

/* A finer period kept longer than a coarser one (0: for ever). */
static int
rt_check_order(gw__config_t *cfg, const config_setting_t *s, gw_error_t *err)
{
    char a[32], b[32];
    int p, q;

    for (p = 0; p < GW_PERIOD_ALL; p++) {
        if (!(cfg->periods & (1u << p)))
            continue;
        for (q = p + 1; q < GW_PERIOD_ALL; q++) {
            if (!(cfg->periods & (1u << q)) || cfg->retention[q] == 0 ||
                (cfg->retention[p] != 0 &&
                 cfg->retention[p] <= cfg->retention[q]))
                continue;
            gw__retention_format(cfg->retention[p], a, sizeof(a));
            gw__retention_format(cfg->retention[q], b, sizeof(b));
            if (cfg->retention[p] == 0)
                return gw__cf_fail(err, s, cfg->path, "RETENTION: %s is not "
                                   "named, so it is kept for ever, longer "
                                   "than %s (%s): a finer period cannot be "
                                   "kept longer than a coarser one; add %s = "
                                   "\"%s\"; (or less)",
                                   gw_period_name((gw_period_t) p),
                                   gw_period_name((gw_period_t) q), b,
                                   gw_period_name((gw_period_t) p), b);
            return gw__cf_fail(err,
                               config_setting_get_member(
                                   s, gw_period_name((gw_period_t) p)),
                               cfg->path, "RETENTION.%s (%s) is longer than "
                               "RETENTION.%s (%s): a finer period cannot be "
                               "kept longer than a coarser one; keep %s at "
                               "most \"%s\"", gw_period_name((gw_period_t) p),
                               a, gw_period_name((gw_period_t) q), b,
                               gw_period_name((gw_period_t) p), b);
        }
    }
    return GW_OK;
}

int
gw__cf_read_retention(gw__config_t *cfg, const config_setting_t *s,
                      gw_error_t *err)
{
    int i, n;

    if (s == NULL)
        return GW_OK;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return gw__cf_fail(err, s, cfg->path, "RETENTION must be a group "
                           "{ minute = \"7d\"; hour = \"90d\"; }, not %s",
                           gw__cf_type_name(config_setting_type(s)));
    cfg->retention_set = 1;
    n = config_setting_length(s);
    for (i = 0; i < n; i++)
        if (rt_read_one(cfg, config_setting_get_elem(s, i), err) != GW_OK)
            return GW_ERR;
    return rt_check_order(cfg, s, err);
}
