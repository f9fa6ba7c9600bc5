/*
 * base/conf.h: the daemon's configuration (SPEC §9), read from a libconfig
 * file. Every wrong key, type or value is refused with "file:line: message".
 *
 * The struct is filled once by gw__config_load and then read-only; SIGHUP
 * loads a new one and swaps it in on the loop thread.
 */
#ifndef GW_BASE_CONF_H
#define GW_BASE_CONF_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/config.h>
#include <gottwall/event.h> /* gw_period_t, GW_PERIOD_COUNT */

typedef struct gw__project_s {
    char *name;
    char *public_key;
    char *private_key; /* SECRET_KEY for the legacy form */
} gw__project_t;

typedef struct gw__user_s {
    char *email;
    char *password_hash; /* as printed by `gottwall passwd` */
    int restricted;      /* 1: projects = [...] was given */
    char **projects;     /* the projects the user may see, when restricted
                          * (each one of PROJECTS); else every project */
    size_t nprojects;
} gw__user_t;

/* A TRUSTED_PROXIES entry: an address and how many leading bits of it
 * count (32 or 128 for a single address). */
typedef struct gw__cidr_s {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} gw__cidr_t;

/* One BACKENDS entry, or the storage. */
typedef struct gw__plugin_conf_s {
    char *instance;              /* key in BACKENDS, or the STORAGE value */
    char *plugin;                /* PLUGIN = "..." or the instance name */
    config_setting_t *section;   /* the group (may be NULL: no settings) */
} gw__plugin_conf_t;

/* Limits on events (SPEC §2) and series; all configurable. */
typedef struct gw__limits_s {
    size_t max_event_bytes;     /* MAX_EVENT_SIZE, 65536 */
    size_t max_filters;         /* MAX_FILTERS, 32 */
    size_t max_filter_values;   /* MAX_FILTER_VALUES, 64 */
    size_t max_name_bytes;      /* MAX_NAME_LENGTH, 255 (metric, filter name, value) */
    size_t max_batch_events;    /* MAX_BATCH_EVENTS, 10000 (HTTP arrays) */
    /* Live series (ingest/series.h); 0: no limit (MAX_SERIES: >= 1). */
    size_t max_series;          /* MAX_SERIES per project: every metric's
                                 * total series and filter series, 100000 */
    size_t max_series_per_metric;  /* MAX_SERIES_PER_METRIC, 10000 */
    size_t max_values_per_filter;  /* MAX_VALUES_PER_FILTER (of one
                                    * metric's filter), 1000 */
    size_t max_filters_per_metric; /* MAX_FILTERS_PER_METRIC, 64 */
    size_t max_pending_series;  /* MAX_PENDING_SERIES, 1000000 */
} gw__limits_t;

/* Limits of the core's HTTP server (ingest and read API). */
typedef struct gw__http_limits_s {
    size_t max_body;            /* MAX_BODY, 1 MiB (per listener override) */
    size_t max_header_bytes;    /* HTTP_MAX_HEADER_SIZE, 16384 */
    size_t max_headers;         /* HTTP_MAX_HEADERS, 64 */
    double header_timeout;      /* HTTP_HEADER_TIMEOUT s, 10 */
    double idle_timeout;        /* HTTP_IDLE_TIMEOUT s, 60 */
    double request_timeout;     /* HTTP_REQUEST_TIMEOUT s, 60: head + body */
    size_t min_body_rate;       /* HTTP_MIN_BODY_RATE bytes/s, 1024 (0: off),
                                 * after HTTP_HEADER_TIMEOUT of grace */
    size_t max_connections;     /* MAX_CONNECTIONS, 1024 (per listener) */
    size_t max_per_address;     /* MAX_CONNECTIONS_PER_ADDRESS, 64: an
                                 * address (IPv6: its /64) holding this
                                 * many gets no reserved slot */
    size_t reserved_connections; /* RESERVED_CONNECTIONS, 256: the last
                                  * free slots, kept for addresses under
                                  * MAX_CONNECTIONS_PER_ADDRESS */
} gw__http_limits_t;

typedef struct gw__config_s {
    config_t lc;                /* keeps the parsed file (sections live here) */
    char *path;                 /* the file read */

    char *secret_key;           /* SECRET_KEY, may be NULL if every project has its own */
    gw__project_t *projects;
    size_t nprojects;
    char *prefix;               /* PREFIX: "" or "/something" without a trailing '/' */
    unsigned periods;           /* PERIODS as a bit set: 1u << gw_period_t */
    int64_t retention[GW_PERIOD_COUNT]; /* RETENTION, s per period; 0:
                                         * kept for ever (and always for
                                         * all) */
    int retention_set;          /* RETENTION is in the file */
    double retention_interval;  /* RETENTION_INTERVAL s, 60: between two
                                 * expiries of the storage */

    gw__plugin_conf_t storage;  /* STORAGE + STORAGE_SETTINGS */
    gw__plugin_conf_t *backends; /* BACKENDS, in file order */
    size_t nbackends;

    char *server_host;          /* SERVER.HOST, 127.0.0.1 */
    int server_port;            /* SERVER.PORT, 8889 */
    char **allowed_hosts;       /* ALLOWED_HOSTS: the Host names the server
                                 * role answers besides its listen address,
                                 * localhost, 127.0.0.1 and [::1]; lower
                                 * case, IPv6 in brackets, ".x" for x and
                                 * below it, "*" for any */
    size_t nallowed_hosts;

    gw__user_t *users;          /* USERS */
    size_t nusers;
    int anonymous_login;        /* ANONYMOUS_LOGIN, false */
    char *cookie_secret;        /* cookie_secret */
    double login_max_delay;     /* LOGIN_MAX_DELAY s, 8: cap of the backoff
                                 * of failed logins per address */
    double login_account_max_delay; /* LOGIN_ACCOUNT_MAX_DELAY s, 60: the
                                     * same per account (e-mail) */
    double session_max_age;     /* SESSION_MAX_AGE s, 604800: a session ends
                                 * this long after its login */
    double session_idle_timeout; /* SESSION_IDLE_TIMEOUT s, 86400 (0: off):
                                  * ... or this long after its last use */
    gw__cidr_t *trusted_proxies; /* TRUSTED_PROXIES: peers whose
                                  * X-Forwarded-Proto is believed;
                                  * default 127.0.0.1 and ::1 */
    size_t ntrusted_proxies;

    int flush_interval_ms;      /* FLUSH_INTERVAL, 1000 */
    int ingest_loops;           /* INGEST_LOOPS, 0: loops (threads) that
                                 * transports may read on, each with its
                                 * own aggregation table; 0: one per CPU
                                 * the daemon may run on, at most 8 (1
                                 * with a JOURNAL) */
    int shutdown_timeout_ms;    /* SHUTDOWN_TIMEOUT, 30000: how long stop waits for the storage */
    int auth_max_skew;          /* AUTH_MAX_SKEW s, 900 */
    int auth_max_base;          /* AUTH_MAX_BASE s, 3600: largest S1/S2 base */
    int auth_s3_window;         /* AUTH_S3_WINDOW s, 300 */
    size_t max_points;          /* MAX_POINTS, 10000 */
    size_t max_embeds_per_project; /* MAX_EMBEDS_PER_PROJECT, 1000 */
    size_t max_embeds_per_user; /* MAX_EMBEDS_PER_USER, 1000: embedded
                                 * charts one user (or anonymous access)
                                 * may create */
    size_t max_document_bytes;  /* MAX_DOCUMENT_SIZE, 65536: an embedded
                                 * chart or a saved dashboard as stored */
    char **plugin_path;         /* PLUGIN_PATH: directories searched first */
    size_t nplugin_path;
    char *webdir;               /* WEB_DIR: dashboard assets, default GW_WEBDIR */
    char *journal;              /* JOURNAL: base path of the journal, NULL: none */
    int journal_sync_always;    /* JOURNAL_SYNC: "always" 1 (default), "interval" 0 */
    int journal_retain;         /* JOURNAL_RETAIN s, 120: stored segments kept */
    char *journal_sync_name;    /* JOURNAL_SYNC as written */

    gw__limits_t limits;
    gw__http_limits_t http;
} gw__config_t;

/* Reads and checks path into *cfg (zeroed first). On GW_ERR err holds
 * "path:line: what is wrong and what to do" and *cfg is freed. */
int gw__config_load(const char *path, gw__config_t *cfg, gw_error_t *err);

/* Frees everything the config owns. Safe on a zeroed struct. */
void gw__config_free(gw__config_t *cfg);

/* Whether addr (text, as the HTTP layer gives a peer; IPv4 mapped into
 * IPv6 counts as IPv4) is in one of the n entries of list. */
int gw__cidr_match(const gw__cidr_t *list, size_t n, const char *addr);

/* Whether host (a HOST setting) names a loopback address: localhost,
 * 127.0.0.0/8, ::1. */
int gw__config_host_loopback(const char *host);

/* Calls emit for every secret of cfg that is a placeholder of
 * gottwall.conf.example ("change me", "change me too"): SECRET_KEY,
 * cookie_secret and each project's own private_key, with "file:line:
 * ..." saying what to change. fatal is 1 (and the message an error) when
 * a listener is not on loopback: the server at server_host (NULL: the
 * server role does not run) or, when backends is 1, a BACKENDS HOST.
 * Returns the number of fatal ones. */
int gw__config_placeholders(const gw__config_t *cfg, const char *server_host,
                            int backends,
                            void (*emit)(void *arg, int fatal, const char *msg),
                            void *arg);

/* A RETENTION duration ("7d", "90d", "36h", "5y"; y is 365 days; a bare
 * number is seconds) into seconds. GW_OK or GW_ERR. */
int gw__retention_parse(const char *s, int64_t *out);
/* Seconds as the largest unit that divides them ("7d", "90d", "1y"), or
 * "for ever" for 0. */
void gw__retention_format(int64_t secs, char *buf, size_t size);

/* The project of that name, or NULL. */
const gw__project_t *gw__config_project(const gw__config_t *cfg,
                                        const char *name);

/* Implements host->config_apply: fills state from section (which may be
 * NULL: every key takes its default) as keys describe. Unknown keys, wrong
 * types and out-of-range values fail with "file:line: ...". what names the
 * section in messages ("BACKENDS.http"). */
int gw__config_apply_keys(const config_setting_t *section, const char *file,
                          const char *what, const gw_config_key_t *keys,
                          void *state, gw_error_t *err);

#endif /* GW_BASE_CONF_H */
