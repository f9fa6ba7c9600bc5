/*
 * base/conf.c: reads the daemon's libconfig file (SPEC §9) into a
 * gw__config_t, checking every key, type and value; serves the plugins'
 * declarative key tables (host->config_apply); writes a new config with
 * random keys for `gottwall init`.
 *
 * Every refusal reads "file:line: what is wrong and how to fix it". The
 * strings of the struct are copies (freed by gw__config_free); plugin
 * STRING settings point into libconfig's storage, which lives as long as
 * the config.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include <gottwall/event.h>

#include "conf.h"
#include "conf_int.h"

#ifndef GW_WEBDIR
#define GW_WEBDIR "/usr/local/share/gottwall/web"
#endif

/* ---- Messages ---- */

static const char *
cf_file(const config_setting_t *s, const char *path)
{
    const char *f = s != NULL ? config_setting_source_file(s) : NULL;

    return f != NULL ? f : path;
}

static int
cf_line(const config_setting_t *s)
{
    return s != NULL ? (int) config_setting_source_line(s) : 0;
}

/* "file:line: message" into err; returns GW_ERR. */
GW_PRINTF(4, 5) int
gw__cf_fail(gw_error_t *err, const config_setting_t *s, const char *path,
        const char *fmt, ...)
{
    char msg[GW_ERROR_MAX];
    va_list ap;

    const char *file = cf_file(s, path), *slash;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* An @include'd file is named as written: relative to the main file. */
    if (path != NULL && file[0] != '/' && strcmp(file, path) != 0 &&
        (slash = strrchr(path, '/')) != NULL)
        return gw_error_set(err, "%.*s/%s:%d: %s", (int) (slash - path), path,
                            file, cf_line(s), msg);
    return gw_error_set(err, "%s:%d: %s", file, cf_line(s), msg);
}

const char *
gw__cf_type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "true or false";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    }
    return "nothing";
}

/* Edit distance, for "did you mean" hints on short names. */
static size_t
cf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[64], prev, tmp;

    if (la >= 63 || lb >= 63)
        return 99;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t cost = toupper((unsigned char) a[i - 1]) ==
                                  toupper((unsigned char) b[j - 1])
                              ? 0
                              : 1;
            tmp = row[j];
            row[j] = prev + cost;
            if (row[j - 1] + 1 < row[j])
                row[j] = row[j - 1] + 1;
            if (tmp + 1 < row[j])
                row[j] = tmp + 1;
            prev = tmp;
        }
    }
    return row[lb];
}

/* The closest of names (NULL-terminated by count) to name, or NULL. */
static const char *
cf_closest(const char *name, const char *const *names, size_t count)
{
    const char *best = NULL;
    size_t best_d = 3, d, i;

    for (i = 0; i < count; i++) {
        d = cf_distance(name, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

/* ---- Top-level scalar settings ---- */

enum cf_kind { CF_STR, CF_INT, CF_SIZE, CF_BOOL, CF_SECS };

typedef struct cf_scalar_s {
    const char *name;
    enum cf_kind kind;
    size_t offset;
    double min, max;
} cf_scalar_t;

#define CF_OFF(field) offsetof(gw__config_t, field)

static const cf_scalar_t cf_scalars[] = {
    {"SECRET_KEY", CF_STR, CF_OFF(secret_key), 0, 0},
    {"PREFIX", CF_STR, CF_OFF(prefix), 0, 0},
    {"STORAGE", CF_STR, CF_OFF(storage.instance), 0, 0},
    {"ANONYMOUS_LOGIN", CF_BOOL, CF_OFF(anonymous_login), 0, 0},
    {"cookie_secret", CF_STR, CF_OFF(cookie_secret), 0, 0},
    {"LOGIN_MAX_DELAY", CF_SECS, CF_OFF(login_max_delay), 1, 86400},
    {"RETENTION_INTERVAL", CF_SECS, CF_OFF(retention_interval), 1, 86400},
    {"LOGIN_ACCOUNT_MAX_DELAY", CF_SECS, CF_OFF(login_account_max_delay), 1,
     86400},
    {"SESSION_MAX_AGE", CF_SECS, CF_OFF(session_max_age), 60, 31622400},
    {"SESSION_IDLE_TIMEOUT", CF_SECS, CF_OFF(session_idle_timeout), 0,
     31622400},
    {"FLUSH_INTERVAL", CF_INT, CF_OFF(flush_interval_ms), 10, 3600000},
    {"INGEST_LOOPS", CF_INT, CF_OFF(ingest_loops), 0, 64},
    {"SHUTDOWN_TIMEOUT", CF_INT, CF_OFF(shutdown_timeout_ms), 0, 3600000},
    {"AUTH_MAX_SKEW", CF_INT, CF_OFF(auth_max_skew), 1, 31622400},
    {"AUTH_MAX_BASE", CF_INT, CF_OFF(auth_max_base), 1, 3600},
    {"AUTH_S3_WINDOW", CF_INT, CF_OFF(auth_s3_window), 1, 86400},
    {"MAX_POINTS", CF_SIZE, CF_OFF(max_points), 1, 10000000},
    {"MAX_EMBEDS_PER_PROJECT", CF_SIZE, CF_OFF(max_embeds_per_project), 0,
     1e9},
    {"MAX_EMBEDS_PER_USER", CF_SIZE, CF_OFF(max_embeds_per_user), 0, 1e9},
    {"MAX_DOCUMENT_SIZE", CF_SIZE, CF_OFF(max_document_bytes), 1024,
     64 * 1024 * 1024},
    {"WEB_DIR", CF_STR, CF_OFF(webdir), 0, 0},
    {"JOURNAL", CF_STR, CF_OFF(journal), 0, 0},
    {"JOURNAL_SYNC", CF_STR, CF_OFF(journal_sync_name), 0, 0},
    {"JOURNAL_RETAIN", CF_INT, CF_OFF(journal_retain), 0, 31622400},
    {"MAX_EVENT_SIZE", CF_SIZE, CF_OFF(limits.max_event_bytes), 64,
     64 * 1024 * 1024},
    {"MAX_FILTERS", CF_SIZE, CF_OFF(limits.max_filters), 0, 4096},
    {"MAX_FILTER_VALUES", CF_SIZE, CF_OFF(limits.max_filter_values), 1,
     65536},
    {"MAX_NAME_LENGTH", CF_SIZE, CF_OFF(limits.max_name_bytes), 1, 65535},
    {"MAX_BATCH_EVENTS", CF_SIZE, CF_OFF(limits.max_batch_events), 1,
     100000000},
    {"MAX_SERIES", CF_SIZE, CF_OFF(limits.max_series), 1, 1e9},
    {"MAX_SERIES_PER_METRIC", CF_SIZE, CF_OFF(limits.max_series_per_metric),
     0, 1e9},
    {"MAX_VALUES_PER_FILTER", CF_SIZE, CF_OFF(limits.max_values_per_filter),
     0, 1e9},
    {"MAX_FILTERS_PER_METRIC", CF_SIZE,
     CF_OFF(limits.max_filters_per_metric), 0, 1e6},
    {"MAX_PENDING_SERIES", CF_SIZE, CF_OFF(limits.max_pending_series), 1,
     1e9},
    {"MAX_BODY", CF_SIZE, CF_OFF(http.max_body), 1, 1024.0 * 1024 * 1024},
    {"HTTP_MAX_HEADER_SIZE", CF_SIZE, CF_OFF(http.max_header_bytes), 256,
     1024 * 1024},
    {"HTTP_MAX_HEADERS", CF_SIZE, CF_OFF(http.max_headers), 1, 10000},
    {"HTTP_HEADER_TIMEOUT", CF_SECS, CF_OFF(http.header_timeout), 0.001,
     3600},
    {"HTTP_IDLE_TIMEOUT", CF_SECS, CF_OFF(http.idle_timeout), 0.001, 86400},
    {"HTTP_REQUEST_TIMEOUT", CF_SECS, CF_OFF(http.request_timeout), 0.001,
     86400},
    {"HTTP_MIN_BODY_RATE", CF_SIZE, CF_OFF(http.min_body_rate), 0, 1e9},
    {"MAX_CONNECTIONS", CF_SIZE, CF_OFF(http.max_connections), 1, 1000000},
    {"MAX_CONNECTIONS_PER_ADDRESS", CF_SIZE, CF_OFF(http.max_per_address), 1,
     1000000},
    {"RESERVED_CONNECTIONS", CF_SIZE, CF_OFF(http.reserved_connections), 0,
     1000000},
};

#define CF_NSCALARS (sizeof(cf_scalars) / sizeof(cf_scalars[0]))

/* Settings read by their own functions below. */
static const char *const cf_groups[] = {
    "PROJECTS", "PERIODS", "STORAGE_SETTINGS", "BACKENDS",
    "SERVER",   "USERS",   "PLUGIN_PATH",      "ALLOWED_HOSTS",
    "TRUSTED_PROXIES", "RETENTION",
};

#define CF_NGROUPS (sizeof(cf_groups) / sizeof(cf_groups[0]))

int
gw__cf_is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);

    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static int
cf_read_scalar(gw__config_t *cfg, const cf_scalar_t *k,
               const config_setting_t *s, gw_error_t *err)
{
    char *p = (char *) cfg + k->offset;
    double v;

    switch (k->kind) {
    case CF_STR:
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, s, cfg->path, "%s must be a string in quotes, "
                           "not %s", k->name,
                           gw__cf_type_name(config_setting_type(s)));
        free(*(char **) p);
        *(char **) p = strdup(config_setting_get_string(s));
        return GW_OK;
    case CF_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return gw__cf_fail(err, s, cfg->path,
                           "%s must be true or false, not %s", k->name,
                           gw__cf_type_name(config_setting_type(s)));
        *(int *) p = config_setting_get_bool(s) ? 1 : 0;
        return GW_OK;
    case CF_INT:
    case CF_SIZE:
        if (!gw__cf_is_int(s))
            return gw__cf_fail(err, s, cfg->path,
                           "%s must be an integer, not %s", k->name,
                           gw__cf_type_name(config_setting_type(s)));
        v = (double) config_setting_get_int64(s);
        break;
    case CF_SECS:
        if (!gw__cf_is_int(s) && config_setting_type(s) != CONFIG_TYPE_FLOAT)
            return gw__cf_fail(err, s, cfg->path,
                           "%s must be a number of seconds, not %s", k->name,
                           gw__cf_type_name(config_setting_type(s)));
        v = config_setting_type(s) == CONFIG_TYPE_FLOAT
                ? config_setting_get_float(s)
                : (double) config_setting_get_int64(s);
        break;
    default:
        return GW_ERR;
    }
    if (!(v >= k->min && v <= k->max))
        return gw__cf_fail(err, s, cfg->path, "%s must be between %.15g and "
                       "%.15g, not %.15g", k->name, k->min, k->max, v);
    if (k->kind == CF_INT)
        *(int *) p = (int) v;
    else if (k->kind == CF_SIZE)
        *(size_t *) p = (size_t) v;
    else
        *(double *) p = v;
    return GW_OK;
}

/* ---- Helpers ---- */

int
gw__cf_get_string(const gw__config_t *cfg, const config_setting_t *group,
              const char *what, const char *name, int required, char **out,
              gw_error_t *err)
{
    const config_setting_t *s = config_setting_get_member(group, name);
    const char *v;

    *out = NULL;
    if (s == NULL) {
        if (required)
            return gw__cf_fail(err, group, cfg->path, "%s needs %s = \"...\";",
                           what, name);
        return GW_OK;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return gw__cf_fail(err, s, cfg->path, "%s.%s must be a string in quotes, "
                       "not %s", what, name,
                       gw__cf_type_name(config_setting_type(s)));
    v = config_setting_get_string(s);
    if (required && v[0] == '\0')
        return gw__cf_fail(err, s, cfg->path, "%s.%s must not be empty", what,
                       name);
    *out = strdup(v);
    return GW_OK;
}

/* Refuses members of group other than names. */
int
gw__cf_only(const gw__config_t *cfg, const config_setting_t *group,
        const char *what, const char *const *names, size_t count,
        gw_error_t *err)
{
    int i, n = config_setting_length(group);
    size_t j;

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);
        char known[160] = "";

        for (j = 0; j < count; j++) {
            if (strcmp(name, names[j]) == 0)
                break;
        }
        if (j < count)
            continue;
        for (j = 0; j < count; j++) {
            strncat(known, names[j], sizeof(known) - strlen(known) - 1);
            if (j + 1 < count)
                strncat(known, ", ", sizeof(known) - strlen(known) - 1);
        }
        return gw__cf_fail(err, s, cfg->path, "%s.%s is not a known setting "
                       "(known: %s)", what, name, known);
    }
    return GW_OK;
}

/* ---- PROJECTS ---- */

static int
cf_read_projects(gw__config_t *cfg, const config_setting_t *g,
                 gw_error_t *err)
{
    static const char *const keys[] = {"public_key", "private_key"};
    int i, n;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return gw__cf_fail(err, g, cfg->path, "PROJECTS must be a group "
                       "{ name = \"public_key\"; ... }, not %s",
                       gw__cf_type_name(config_setting_type(g)));
    n = config_setting_length(g);
    cfg->projects = calloc(n > 0 ? (size_t) n : 1, sizeof(gw__project_t));
    for (i = 0; i < n; i++) {
        const config_setting_t *p = config_setting_get_elem(g, i);
        gw__project_t *pr = &cfg->projects[cfg->nprojects];
        char what[300];

        pr->name = strdup(config_setting_name(p));
        cfg->nprojects++;
        snprintf(what, sizeof(what), "PROJECTS.%s", pr->name);
        if (config_setting_type(p) == CONFIG_TYPE_STRING) {
            if (config_setting_get_string(p)[0] == '\0')
                return gw__cf_fail(err, p, cfg->path, "%s: the public key must "
                               "not be empty", what);
            if (cfg->secret_key == NULL)
                return gw__cf_fail(err, p, cfg->path, "project \"%s\" uses the "
                               "legacy form (name = \"public_key\"), which "
                               "needs SECRET_KEY; set SECRET_KEY = \"...\"; "
                               "or write %s = { public_key = \"...\"; "
                               "private_key = \"...\"; };", pr->name,
                               pr->name);
            pr->public_key = strdup(config_setting_get_string(p));
            pr->private_key = strdup(cfg->secret_key);
        } else if (config_setting_type(p) == CONFIG_TYPE_GROUP) {
            if (gw__cf_only(cfg, p, what, keys, 2, err) != GW_OK ||
                gw__cf_get_string(cfg, p, what, "public_key", 1, &pr->public_key,
                              err) != GW_OK ||
                gw__cf_get_string(cfg, p, what, "private_key", 1,
                              &pr->private_key, err) != GW_OK)
                return GW_ERR;
        } else {
            return gw__cf_fail(err, p, cfg->path, "%s must be a public key "
                           "string or a group { public_key = \"...\"; "
                           "private_key = \"...\"; }, not %s", what,
                           gw__cf_type_name(config_setting_type(p)));
        }
    }
    return GW_OK;
}

/* ---- PERIODS ---- */

static int
cf_read_periods(gw__config_t *cfg, const config_setting_t *s,
                gw_error_t *err)
{
    int i, n, t = config_setting_type(s);

    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return gw__cf_fail(err, s, cfg->path, "PERIODS must be a list of period "
                       "names like [ \"minute\", \"hour\", \"day\" ], not %s",
                       gw__cf_type_name(t));
    n = config_setting_length(s);
    if (n == 0)
        return gw__cf_fail(err, s, cfg->path, "PERIODS is empty: name at least "
                       "one of minute, hour, day, week, month, year, all");
    cfg->periods = 0;
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        const char *name;
        int p;

        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, e, cfg->path, "PERIODS[%d] must be a string "
                           "(a period name), not %s", i,
                           gw__cf_type_name(config_setting_type(e)));
        name = config_setting_get_string(e);
        for (p = 0; p < GW_PERIOD_COUNT; p++) {
            if (strcmp(name, gw_period_name((gw_period_t) p)) == 0)
                break;
        }
        if (p == GW_PERIOD_COUNT)
            return gw__cf_fail(err, e, cfg->path, "PERIODS: unknown period "
                           "\"%s\" (known: minute, hour, day, week, month, "
                           "year, all)", name);
        cfg->periods |= 1u << p;
    }
    return GW_OK;
}

/* ---- BACKENDS and STORAGE ---- */

static int
cf_plugin_name(gw__config_t *cfg, gw__plugin_conf_t *pc, const char *what,
               gw_error_t *err)
{
    const config_setting_t *s;

    pc->plugin = NULL;
    if (pc->section != NULL &&
        (s = config_setting_get_member(pc->section, "PLUGIN")) != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING ||
            config_setting_get_string(s)[0] == '\0')
            return gw__cf_fail(err, s, cfg->path, "%s.PLUGIN must be a plugin "
                           "name or a path to a .so in quotes", what);
        pc->plugin = strdup(config_setting_get_string(s));
    } else {
        pc->plugin = strdup(pc->instance);
    }
    return GW_OK;
}

static int
cf_read_backends(gw__config_t *cfg, const config_setting_t *g,
                 gw_error_t *err)
{
    int i, n;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return gw__cf_fail(err, g, cfg->path, "BACKENDS must be a group "
                       "{ http = { PORT = 8890; }; ... }, not %s",
                       gw__cf_type_name(config_setting_type(g)));
    n = config_setting_length(g);
    cfg->backends = calloc(n > 0 ? (size_t) n : 1, sizeof(gw__plugin_conf_t));
    for (i = 0; i < n; i++) {
        config_setting_t *b = config_setting_get_elem(g, i);
        gw__plugin_conf_t *pc = &cfg->backends[cfg->nbackends];
        char what[300];

        pc->instance = strdup(config_setting_name(b));
        cfg->nbackends++;
        snprintf(what, sizeof(what), "BACKENDS.%s", pc->instance);
        if (config_setting_type(b) != CONFIG_TYPE_GROUP)
            return gw__cf_fail(err, b, cfg->path, "%s must be a group of "
                           "settings { ... } (may be empty), not %s", what,
                           gw__cf_type_name(config_setting_type(b)));
        pc->section = b;
        if (cf_plugin_name(cfg, pc, what, err) != GW_OK)
            return GW_ERR;
    }
    return GW_OK;
}

/* ---- PLUGIN_PATH ---- */

static void
cf_add_dirs(gw__config_t *cfg, const char *list)
{
    const char *p = list, *end;

    while (*p != '\0') {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if (end > p) {
            cfg->plugin_path = realloc(cfg->plugin_path,
                                       (cfg->nplugin_path + 1) *
                                           sizeof(char *));
            cfg->plugin_path[cfg->nplugin_path++] =
                strndup(p, (size_t) (end - p));
        }
        p = *end == ':' ? end + 1 : end;
    }
}

static int
cf_read_plugin_path(gw__config_t *cfg, const config_setting_t *s,
                    gw_error_t *err)
{
    int i, n, t = config_setting_type(s);

    if (t == CONFIG_TYPE_STRING) {
        cf_add_dirs(cfg, config_setting_get_string(s));
        return GW_OK;
    }
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return gw__cf_fail(err, s, cfg->path, "PLUGIN_PATH must be a directory "
                       "in quotes or a list of them [ \"/a\", \"/b\" ], not "
                       "%s", gw__cf_type_name(t));
    n = config_setting_length(s);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);

        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, e, cfg->path, "PLUGIN_PATH[%d] must be a "
                           "directory in quotes, not %s", i,
                           gw__cf_type_name(config_setting_type(e)));
        cf_add_dirs(cfg, config_setting_get_string(e));
    }
    return GW_OK;
}

/* ---- JOURNAL ---- */

static int
cf_check_journal(gw__config_t *cfg, config_setting_t *root, gw_error_t *err)
{
    const char *sync = cfg->journal_sync_name;

    if (cfg->journal != NULL && cfg->journal[0] == '\0') {
        free(cfg->journal);
        cfg->journal = NULL;
    }
    if (sync == NULL || strcmp(sync, "always") == 0)
        cfg->journal_sync_always = 1;
    else if (strcmp(sync, "interval") == 0)
        cfg->journal_sync_always = 0;
    else
        return gw__cf_fail(err, config_setting_get_member(root, "JOURNAL_SYNC"),
                       cfg->path, "JOURNAL_SYNC must be \"always\" (fsync "
                       "before every acknowledgement) or \"interval\" (fsync "
                       "once per FLUSH_INTERVAL), not \"%s\"", sync);
    if (cfg->journal != NULL && cfg->ingest_loops > 1)
        return gw__cf_fail(err, config_setting_get_member(root, "INGEST_LOOPS"),
                       cfg->path, "INGEST_LOOPS = %d cannot be used with "
                       "JOURNAL: the journal is written by one loop; set "
                       "INGEST_LOOPS = 1 or remove JOURNAL",
                       cfg->ingest_loops);
    return GW_OK;
}

/* ---- Loading ---- */

static void
cf_defaults(gw__config_t *cfg)
{
    const char *env = getenv("GOTTWALL_WEBDIR");

    cfg->prefix = strdup("");
    cfg->periods = (1u << GW_PERIOD_COUNT) - 1;
    cfg->storage.instance = strdup("memory");
    cfg->server_host = strdup("127.0.0.1");
    cfg->server_port = 8889;
    cfg->anonymous_login = 0;
    cfg->login_max_delay = 8;
    cfg->login_account_max_delay = 60;
    cfg->session_max_age = 7 * 86400;
    cfg->session_idle_timeout = 86400;
    cfg->flush_interval_ms = 1000;
    cfg->retention_interval = 60;
    cfg->ingest_loops = 0; /* one per CPU (core/daemon.c) */
    cfg->shutdown_timeout_ms = 30000;
    cfg->auth_max_skew = 900;
    cfg->auth_max_base = 3600;
    cfg->auth_s3_window = 300;
    cfg->max_points = 10000;
    cfg->max_embeds_per_project = 1000;
    cfg->max_embeds_per_user = 1000;
    cfg->max_document_bytes = 65536;
    cfg->journal_sync_always = 1;
    cfg->journal_retain = 120;
    cfg->webdir = strdup(env != NULL && env[0] != '\0' ? env : GW_WEBDIR);
    cfg->limits.max_event_bytes = 65536;
    cfg->limits.max_filters = 32;
    cfg->limits.max_filter_values = 64;
    cfg->limits.max_name_bytes = 255;
    cfg->limits.max_batch_events = 10000;
    cfg->limits.max_series = 100000;
    cfg->limits.max_series_per_metric = 10000;
    cfg->limits.max_values_per_filter = 1000;
    cfg->limits.max_filters_per_metric = 64;
    cfg->limits.max_pending_series = 1000000;
    cfg->http.max_body = 1024 * 1024;
    cfg->http.max_header_bytes = 16384;
    cfg->http.max_headers = 64;
    cfg->http.header_timeout = 10;
    cfg->http.idle_timeout = 60;
    cfg->http.request_timeout = 60;
    cfg->http.min_body_rate = 1024;
    cfg->http.max_connections = 1024;
    cfg->http.max_per_address = 64;
    cfg->http.reserved_connections = 256;
}

/* "/x/" -> "/x", "x" -> "/x", "/" -> "". */
static void
cf_normalise_prefix(gw__config_t *cfg)
{
    const char *p = cfg->prefix;
    size_t n;
    char *out;

    while (*p == '/')
        p++;
    n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    out = malloc(n + 2);
    if (n == 0) {
        out[0] = '\0';
    } else {
        out[0] = '/';
        memcpy(out + 1, p, n);
        out[n + 1] = '\0';
    }
    free(cfg->prefix);
    cfg->prefix = out;
}

static int
cf_check_top(gw__config_t *cfg, config_setting_t *root, gw_error_t *err)
{
    const char *names[CF_NSCALARS + CF_NGROUPS];
    int i, n = config_setting_length(root);
    size_t j, k;

    for (j = 0; j < CF_NSCALARS; j++)
        names[j] = cf_scalars[j].name;
    for (k = 0; k < CF_NGROUPS; k++)
        names[j++] = cf_groups[k];
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, i);
        const char *name = config_setting_name(s), *hint;

        for (k = 0; k < j; k++) {
            if (strcmp(name, names[k]) == 0)
                break;
        }
        if (k < j)
            continue;
        hint = cf_closest(name, names, j);
        if (hint != NULL)
            return gw__cf_fail(err, s, cfg->path, "%s is not a known setting; "
                           "did you mean %s?", name, hint);
        return gw__cf_fail(err, s, cfg->path, "%s is not a known setting (see "
                       "gottwall.conf.example for the settings there are)",
                       name);
    }
    return GW_OK;
}

static int
cf_read(gw__config_t *cfg, gw_error_t *err)
{
    config_setting_t *root = config_root_setting(&cfg->lc), *s;
    size_t i;

    if (cf_check_top(cfg, root, err) != GW_OK)
        return GW_ERR;
    for (i = 0; i < CF_NSCALARS; i++) {
        s = config_setting_get_member(root, cf_scalars[i].name);
        if (s != NULL && cf_read_scalar(cfg, &cf_scalars[i], s, err) != GW_OK)
            return GW_ERR;
    }
    if (cfg->secret_key != NULL && cfg->secret_key[0] == '\0')
        return gw__cf_fail(err, config_setting_get_member(root, "SECRET_KEY"),
                       cfg->path, "SECRET_KEY must not be empty");
    if (cfg->storage.instance[0] == '\0')
        return gw__cf_fail(err, config_setting_get_member(root, "STORAGE"),
                       cfg->path, "STORAGE must name a storage plugin "
                       "(\"memory\", \"redis\", \"postgres\")");
    cf_normalise_prefix(cfg);
    if (cf_check_journal(cfg, root, err) != GW_OK)
        return GW_ERR;

    if ((s = config_setting_get_member(root, "PROJECTS")) != NULL &&
        cf_read_projects(cfg, s, err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "PERIODS")) != NULL &&
        cf_read_periods(cfg, s, err) != GW_OK)
        return GW_ERR;
    if (gw__cf_read_retention(cfg, config_setting_get_member(root,
                                                             "RETENTION"),
                              err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "STORAGE_SETTINGS")) != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
            return gw__cf_fail(err, s, cfg->path, "STORAGE_SETTINGS must be a "
                           "group { ... }, not %s",
                           gw__cf_type_name(config_setting_type(s)));
        cfg->storage.section = s;
    }
    if (cf_plugin_name(cfg, &cfg->storage, "STORAGE_SETTINGS", err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "BACKENDS")) != NULL &&
        cf_read_backends(cfg, s, err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "SERVER")) != NULL &&
        gw__cf_read_server(cfg, s, err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "USERS")) != NULL &&
        gw__cf_read_users(cfg, s, err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "PLUGIN_PATH")) != NULL &&
        cf_read_plugin_path(cfg, s, err) != GW_OK)
        return GW_ERR;
    if ((s = config_setting_get_member(root, "ALLOWED_HOSTS")) != NULL &&
        gw__cf_read_allowed_hosts(cfg, s, err) != GW_OK)
        return GW_ERR;
    return gw__cf_read_trusted_proxies(
        cfg, config_setting_get_member(root, "TRUSTED_PROXIES"), err);
}

int
gw__config_load(const char *path, gw__config_t *cfg, gw_error_t *err)
{
    memset(cfg, 0, sizeof(*cfg));
    config_init(&cfg->lc);
    cfg->path = strdup(path);
    cf_defaults(cfg);
    {
        /* @include "x.conf" is relative to this file's directory. */
        char *dir = strdup(path), *slash = strrchr(dir, '/');

        if (slash != NULL) {
            *slash = '\0';
            config_set_include_dir(&cfg->lc, dir[0] != '\0' ? dir : "/");
        }
        free(dir);
    }
    if (config_read_file(&cfg->lc, path) != CONFIG_TRUE) {
        if (config_error_type(&cfg->lc) == CONFIG_ERR_FILE_IO) {
            FILE *f = fopen(path, "r");
            int e = errno;

            if (f != NULL)
                fclose(f);
            gw_error_set(err, "%s: cannot read the config file: %s", path,
                         f != NULL ? "I/O error" : strerror(e));
        } else {
            const char *file = config_error_file(&cfg->lc);
            const char *slash = strrchr(path, '/');

            if (file == NULL)
                file = path;
            if (file[0] != '/' && strcmp(file, path) != 0 && slash != NULL)
                gw_error_set(err, "%.*s/%s:%d: %s", (int) (slash - path),
                             path, file, config_error_line(&cfg->lc),
                             config_error_text(&cfg->lc));
            else
                gw_error_set(err, "%s:%d: %s", file,
                             config_error_line(&cfg->lc),
                             config_error_text(&cfg->lc));
        }
        gw__config_free(cfg);
        return GW_ERR;
    }
    if (cf_read(cfg, err) != GW_OK) {
        gw__config_free(cfg);
        return GW_ERR;
    }
    return GW_OK;
}

static void
cf_free_plugin_conf(gw__plugin_conf_t *pc)
{
    free(pc->instance);
    free(pc->plugin);
}

void
gw__config_free(gw__config_t *cfg)
{
    size_t i, j;

    if (cfg == NULL)
        return;
    if (cfg->path != NULL)
        config_destroy(&cfg->lc);
    free(cfg->path);
    free(cfg->secret_key);
    for (i = 0; i < cfg->nprojects; i++) {
        free(cfg->projects[i].name);
        free(cfg->projects[i].public_key);
        free(cfg->projects[i].private_key);
    }
    free(cfg->projects);
    free(cfg->prefix);
    cf_free_plugin_conf(&cfg->storage);
    for (i = 0; i < cfg->nbackends; i++)
        cf_free_plugin_conf(&cfg->backends[i]);
    free(cfg->backends);
    free(cfg->server_host);
    for (i = 0; i < cfg->nallowed_hosts; i++)
        free(cfg->allowed_hosts[i]);
    free(cfg->allowed_hosts);
    free(cfg->trusted_proxies);
    for (i = 0; i < cfg->nusers; i++) {
        free(cfg->users[i].email);
        free(cfg->users[i].password_hash);
        for (j = 0; j < cfg->users[i].nprojects; j++)
            free(cfg->users[i].projects[j]);
        free(cfg->users[i].projects);
    }
    free(cfg->users);
    free(cfg->cookie_secret);
    free(cfg->journal);
    free(cfg->journal_sync_name);
    for (i = 0; i < cfg->nplugin_path; i++)
        free(cfg->plugin_path[i]);
    free(cfg->plugin_path);
    free(cfg->webdir);
    memset(cfg, 0, sizeof(*cfg));
}

const gw__project_t *
gw__config_project(const gw__config_t *cfg, const char *name)
{
    size_t i;

    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->nprojects; i++) {
        if (strcmp(cfg->projects[i].name, name) == 0)
            return &cfg->projects[i];
    }
    return NULL;
}

/* ---- Plugin key tables (host->config_apply) ---- */

static int
ak_parse_bool(const char *s)
{
    return s != NULL && (strcasecmp(s, "true") == 0 ||
                         strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0);
}

static void
ak_default(const gw_config_key_t *k, void *state)
{
    char *p = (char *) state + k->offset;

    switch (k->type) {
    case GW_CONFIG_STRING:
        *(const char **) p = k->def;
        break;
    case GW_CONFIG_INT:
        *(int64_t *) p = k->def != NULL ? strtoll(k->def, NULL, 0) : 0;
        break;
    case GW_CONFIG_BOOL:
        *(int *) p = ak_parse_bool(k->def);
        break;
    case GW_CONFIG_DOUBLE:
        *(double *) p = k->def != NULL ? strtod(k->def, NULL) : 0;
        break;
    }
}

static int
ak_set(const config_setting_t *s, const char *file, const char *what,
       const gw_config_key_t *k, void *state, gw_error_t *err)
{
    char *p = (char *) state + k->offset;
    int t = config_setting_type(s);
    double v = 0;

    switch (k->type) {
    case GW_CONFIG_STRING:
        if (t != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, s, file, "%s.%s must be a string in quotes, "
                           "not %s", what, k->name, gw__cf_type_name(t));
        *(const char **) p = config_setting_get_string(s);
        return GW_OK;
    case GW_CONFIG_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            return gw__cf_fail(err, s, file, "%s.%s must be true or false, not "
                           "%s", what, k->name, gw__cf_type_name(t));
        *(int *) p = config_setting_get_bool(s) ? 1 : 0;
        return GW_OK;
    case GW_CONFIG_INT:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            return gw__cf_fail(err, s, file, "%s.%s must be an integer, not %s",
                           what, k->name, gw__cf_type_name(t));
        v = (double) config_setting_get_int64(s);
        if (k->min < k->max && (v < k->min || v > k->max))
            return gw__cf_fail(err, s, file, "%s.%s must be between %.15g and "
                           "%.15g, not %lld", what, k->name, k->min, k->max,
                           (long long) config_setting_get_int64(s));
        *(int64_t *) p = config_setting_get_int64(s);
        return GW_OK;
    case GW_CONFIG_DOUBLE:
        if (t == CONFIG_TYPE_FLOAT)
            v = config_setting_get_float(s);
        else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            v = (double) config_setting_get_int64(s);
        else
            return gw__cf_fail(err, s, file, "%s.%s must be a number, not %s",
                           what, k->name, gw__cf_type_name(t));
        if (!isfinite(v) ||
            (k->min < k->max && (v < k->min || v > k->max)))
            return gw__cf_fail(err, s, file, "%s.%s must be between %.15g and "
                           "%.15g, not %.15g", what, k->name, k->min,
                           k->max, v);
        *(double *) p = v;
        return GW_OK;
    }
    return gw_error_set(err, "%s.%s: the plugin declares an unknown type %d",
                        what, k->name, (int) k->type);
}

int
gw__config_apply_keys(const config_setting_t *section, const char *file,
                      const char *what, const gw_config_key_t *keys,
                      void *state, gw_error_t *err)
{
    const gw_config_key_t *k;
    int i, n;

    for (k = keys; k->name != NULL; k++)
        ak_default(k, state);
    if (section == NULL)
        return GW_OK;
    n = config_setting_length(section);
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(section, i);
        const char *name = config_setting_name(s);

        if (name == NULL || strcmp(name, "PLUGIN") == 0)
            continue;
        for (k = keys; k->name != NULL; k++) {
            if (strcmp(k->name, name) == 0)
                break;
        }
        if (k->name == NULL) {
            char known[GW_ERROR_MAX] = "";
            const gw_config_key_t *q;

            for (q = keys; q->name != NULL; q++) {
                if (known[0] != '\0')
                    strncat(known, ", ", sizeof(known) - strlen(known) - 1);
                strncat(known, q->name, sizeof(known) - strlen(known) - 1);
            }
            if (keys[0].name == NULL)
                return gw__cf_fail(err, s, file, "%s.%s is not a setting of this "
                               "plugin; it takes no settings", what, name);
            return gw__cf_fail(err, s, file, "%s.%s is not a setting of this "
                           "plugin; known: %s", what, name, known);
        }
        if (ak_set(s, file, what, k, state, err) != GW_OK)
            return GW_ERR;
    }
    return GW_OK;
}
