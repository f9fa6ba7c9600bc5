/*
 * server/api_int.h: what the files of the server role share (api.c: routing,
 * pages, assets, /health and /metrics; api_login.c: login and access;
 * api_session.c: sessions and logout; api_stats.c: the read API;
 * api_embed.c: embedded charts; api_embed_js.c: their .js form;
 * api_shared.c: their list and delete;
 * api_dash.c: saved dashboards; api_host.c: the Host
 * and Origin checks, TLS behind a proxy). Not a contract: only these files
 * include it.
 *
 * A request that needs the storage becomes a "pending" call: it is linked
 * into the api's list, its job runs on the storage thread, and its finish
 * runs on the loop and answers. When the api stops first, the pending calls
 * are orphaned (req and api set to NULL) and only freed when their job
 * comes back, so nothing answers a request the HTTP server already closed.
 */
#ifndef GW_SERVER_API_INT_H
#define GW_SERVER_API_INT_H

/* autoconf's config.h from the build directory (not base/conf.h): it
 * defines _GNU_SOURCE (strdup, strndup) and PACKAGE_VERSION, so it must come
 * before any system header: include this file first. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <jansson.h>

#include <gottwall/common.h>
#include <gottwall/event.h>
#include <gottwall/http.h>

#include "server.h"
#include "throttle.h"

#define GW__API_SESSION_COOKIE "gw_session"
/* Entries of each login throttle table (per address, per account). */
#define GW__API_THROTTLE_SLOTS 2048

/* The pages' Content-Security-Policy: scripts and styles only from files
 * of this origin (uPlot styles its elements through the DOM, which the
 * policy allows, and injects no style sheet), fetches and forms to this
 * origin, no plugins, frames or inline code. The dashboard and the login
 * page add frame-ancestors 'none' and X-Frame-Options: DENY (api.c); the
 * embedded chart pages, made to be framed by any site, do not. Every
 * answer of the server role carries X-Content-Type-Options: nosniff (set
 * on its listener). */
#define GW__API_CSP                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; "            \
    "img-src 'self'; connect-src 'self'; form-action 'self'; "             \
    "base-uri 'self'"
#define GW__API_EMBED_PAGE_HEADERS                                          \
    "Cache-Control: no-store\r\n"                                          \
    "Content-Security-Policy: " GW__API_CSP "\r\n"

/* The server role's state: one per process running it. */
typedef struct gw__api_s gw__api_t;
typedef struct gw__api_pending_s gw__api_pending_t;

struct gw__api_pending_s {
    gw__api_t *api;     /* NULL once orphaned */
    gw_http_req_t *req; /* NULL once orphaned */
    gw__api_pending_t *prev, *next;
    /* Loop thread: answers p->req from what the job left in p. */
    void (*finish)(gw__api_pending_t *p, int rc, const gw_error_t *err);
    /* Frees p (whether or not it was answered). */
    void (*release)(gw__api_pending_t *p);
};

/* A failed login waiting for its delay before the answer. */
typedef struct gw__api_delay_s {
    ev_timer timer;
    gw__api_t *api;
    gw_http_req_t *req;
    char *email;
    char *next;
    struct gw__api_delay_s *prev, *nextd;
} gw__api_delay_t;

/* A password being checked on its own thread (api_login.c). */
typedef struct gw__api_check_s gw__api_check_t;
/* A user's session generation, as last read (api_session.c). */
typedef struct gw__api_gen_s gw__api_gen_t;
/* Goes on with a request once what it waited for is there. */
typedef void (*gw__api_resume_fn)(gw__api_t *api, gw_http_req_t *req);

struct gw__api_s {
    gw__server_env_t env; /* the process, as core/ filled it in */
    gw_http_server_t *srv;
    gw__api_pending_t *pending;
    size_t npending; /* at most API_MAX_PENDING */
    gw__api_delay_t *delays;
    gw__throttle_t by_address; /* failed logins per address (/64 in IPv6) */
    gw__throttle_t by_account; /* failed logins per e-mail */
    unsigned char session_key[32]; /* used when cookie_secret is unset */
    int have_session_key;
    char *dummy_hash;        /* verified for unknown e-mails */
    gw__api_check_t *checks; /* password checks in flight */
    unsigned nchecks;
    gw__api_check_t *queue, *queue_tail; /* logins waiting for a check */
    unsigned nqueued;
    pthread_mutex_t login_mu; /* guards each check's done flag */
    ev_async login_async;     /* a check thread is done */
    json_t *kinds;            /* "project\nmetric" -> kind (a cache) */
    double kinds_since;       /* when the cache was started */
    char *listen_host;        /* as a Host names it; NULL: every address */
    gw__api_gen_t *gens;      /* session generations, one per user seen */
    int gens_down;            /* the last read or write of one failed */
};

/* Who a request is, as decided by gw__api_access. */
typedef struct gw__api_who_s {
    int ok;                      /* 1: let in */
    int via_cookie;              /* 1: a session cookie let it in */
    int anonymous;               /* 1: ANONYMOUS_LOGIN let it in */
    char user[256];              /* e-mail, "anonymous", or "" for keys */
    const char *key_project;     /* the project whose keys let it in */
    char csrf[33];               /* via_cookie: the logout form's token */
    char why[GW_ERROR_MAX + 64]; /* when !ok: what failed */
} gw__api_who_t;

/* ---- api.c ---- */

/* The daemon's current config (SIGHUP may replace it between requests). */
const gw__config_t *gw__api_cfg(const gw__api_t *api);
/* The directory the dashboard's files are served from. */
const char *gw__api_webdir(const gw__api_t *api);

/* Links p into the api and runs job on the storage thread; p->finish and
 * p->release run afterwards on the loop. Answers 503 itself (and releases
 * p) when there is no storage. */
void gw__api_submit(gw__api_t *api, gw__api_pending_t *p,
                    gw__server_job_fn job);

/* Answers a JSON value (stolen) with status. */
void gw__api_json(gw_http_req_t *req, int status, json_t *v);
/* Answers 400/404/... {"error": formatted}. */
void gw__api_errorf(gw_http_req_t *req, int status, const char *fmt, ...)
    GW_PRINTF(3, 4);
/* Answers a 302 to location, with extra header lines (may be NULL). */
void gw__api_redirect(gw_http_req_t *req, const char *location,
                      const char *headers);
/* Serves a template from the web directory: every {{key}} is replaced by
 * the value of that key in vars (NULL-terminated key, value pairs),
 * HTML-escaped unless the key starts with '!'; what is between {{#key}}
 * and {{/key}} is left out when key has no value or an empty one. */
void gw__api_page(gw__api_t *api, gw_http_req_t *req, int status,
                  const char *file, const char *const *vars,
                  const char *headers);

/* The styled error page (error.html: an h1 of title, message, a link to
 * the dashboard) with status; headers as for gw__api_page (NULL: the
 * pages' own, which forbid framing). */
void gw__api_error_page(gw__api_t *api, gw_http_req_t *req, int status,
                        const char *title, const char *message,
                        const char *headers);

/* What the .js form of an embedded chart writes (api_embed_js.c). */
typedef struct gw__api_embed_frame_s {
    const char *base_url, *id;
    const char *name;          /* the chart's, or NULL */
    const char *width, *height; /* digits, or NULL for the defaults */
    /* The script's from_date, to_date, period, renderer and name, each
     * NULL when absent: passed on to the page. */
    const char *query[5];
} gw__api_embed_frame_t;

/* Answers the script that writes f's iframe where it runs. */
void gw__api_embed_js(gw_http_req_t *req, const gw__api_embed_frame_t *f);

/* A JSON number, integer when the value is whole. */
json_t *gw__api_number(double v);
/* Percent-encodes s for a query string; the caller frees. */
char *gw__api_urlencode(const char *s);
/* A copy of s with "&<>\"'" escaped for HTML; the caller frees. */
char *gw__api_html_escape(const char *s);

/* Routes req (api_handle once the Host and Origin are checked and the
 * session's generation is at hand). */
void gw__api_route(gw__api_t *api, gw_http_req_t *req);

/* ---- api_login.c ---- */

/* Decides whether req may go on; project is the project named by the URL
 * (NULL if none). */
void gw__api_access(gw__api_t *api, gw_http_req_t *req, const char *project,
                    gw__api_who_t *who);
/* The login page, POST /login. */
void gw__api_login_page(gw__api_t *api, gw_http_req_t *req);
void gw__api_login_post(gw__api_t *api, gw_http_req_t *req);
/* A field of an application/x-www-form-urlencoded body, decoded, or
 * NULL; the caller frees. */
char *gw__api_form_field(const char *body, size_t len, const char *name);
/* 1 when a login's next may be followed: a path under prefix that a
 * browser resolves to itself (else the login goes to {prefix}/). */
int gw__api_next_ok(const char *prefix, const char *next);
/* The cookie's Path attribute: the prefix, or "/". */
const char *gw__api_cookie_path(const gw__api_t *api);
/* Starts the login machinery (the password-check wake-up). */
void gw__api_auth_start(gw__api_t *api);
/* Joins the password checks, answers them and the delayed logins 503, and
 * frees them (at stop). */
void gw__api_auth_stop(gw__api_t *api);

/* ---- api_session.c ---- */

/* A session cookie's value "email|issued|seen|mac", taken apart. */
typedef struct gw__api_session_s {
    char email[256];
    int64_t issued, seen; /* epoch seconds: the login, the last use */
    char mac[65];
} gw__api_session_t;

/* Makes a value (the caller frees) and takes one apart (1 if well
 * formed); valid: 1 when the MAC holds for the user's generation and
 * password hash and the session is neither older than SESSION_MAX_AGE
 * nor idle for longer than SESSION_IDLE_TIMEOUT at now. */
char *gw__api_session_make(gw__api_t *api, const char *email, int64_t issued,
                           int64_t seen, uint64_t gen, const char *pwhash);
int gw__api_session_parse(const char *value, gw__api_session_t *s);
int gw__api_session_valid(gw__api_t *api, const gw__api_session_t *s,
                          uint64_t gen, const char *pwhash, int64_t now);
/* The USERS entry of email (without case), or NULL. */
const gw__user_t *gw__api_user(const gw__config_t *cfg, const char *email);
/* 1 when req carries a valid session: its e-mail into email, the logout
 * form's token into csrf (may be NULL); with refresh, an answer with a
 * moved last-seen stamp is added to req's answer when it is due. */
int gw__api_session_user(gw__api_t *api, gw_http_req_t *req, int refresh,
                         char *email, size_t size, char csrf[33]);
/* A new session of user (the caller frees), or NULL with why set when its
 * generation could not be read. */
char *gw__api_session_new(gw__api_t *api, const gw__user_t *user, char *why,
                          size_t size);
/* "Set-Cookie: gw_session=value; ...; Max-Age=max_age; ...[; Secure]\r\n"
 * (Secure when the request came over TLS). */
void gw__api_cookie_header(gw__api_t *api, gw_http_req_t *req,
                           const char *value, long max_age, char *out,
                           size_t size);
/* 1 when req may be routed now; 0 when the generation of the user its
 * cookie (or, for POST /login, its form) names is read first: resume
 * runs then, or req is answered 503. rel: the path under PREFIX. */
int gw__api_session_ready(gw__api_t *api, gw_http_req_t *req, const char *rel,
                          gw__api_resume_fn resume);
/* POST /logout, and its answer once the new generation is stored (or
 * not: 503, the cookie kept). */
void gw__api_logout(gw__api_t *api, gw_http_req_t *req);
void gw__api_logout_done(gw__api_t *api, gw_http_req_t *req, int ok,
                         const char *why);
/* Frees the cached generations (at stop). */
void gw__api_sessions_free(gw__api_t *api);

/* ---- api_embed.c ---- */

/* A document id: prefix + name, or prefix + "#" + the SHA-256 of name in
 * hex when that would pass the 255 bytes an id may have (fold: name
 * without case). The caller frees; NULL when out of memory. */
char *gw__api_doc_id(const char *prefix, const char *name, int fold);

/* ---- api_dash.c ---- */

/* GET/PUT {PREFIX}/api/v1/dashboards[/{name}], DELETE .../{name}: rel is
 * what follows "dashboards" ("" or "/name", still percent-encoded). */
void gw__api_dashboards(gw__api_t *api, gw_http_req_t *req,
                        const gw__api_who_t *who, const char *rel);

/* ---- api_stats.c ---- */

/* Parses from_date/to_date for period p into aligned bounds and the number
 * of buckets. GW_OK, or GW_ERR with a message for a 400: a reversed range,
 * a range reaching before p's retention (retention: RETENTION's seconds
 * per period, NULL: none; the message names the oldest bucket kept and the
 * coarser period of periods that holds from_date), then one of more than
 * max_points buckets. Without from_date the range starts no earlier than
 * the oldest bucket kept (and a to_date before it is refused). */
int gw__api_range(const char *from_s, const char *to_s, gw_period_t p,
                  int64_t now, size_t max_points, unsigned periods,
                  const int64_t *retention, int64_t *from, int64_t *to,
                  size_t *npoints, gw_error_t *err);
/* Parses a period name and checks it against PERIODS. */
int gw__api_period(const char *name, unsigned periods, gw_period_t *p,
                   gw_error_t *err);
/* The bucket starts from..to (npoints of them) into a new array. */
int64_t *gw__api_buckets(gw_period_t p, int64_t from, size_t npoints);
/* Runs on the storage thread: the kind of metric (0 if unknown) and, when
 * filter_name is given, its values (a new json array) into *values. */
int gw__api_metric_info(const gw_storage_ops_t *ops, void *state,
                        const char *project, const char *metric,
                        const char *filter_name, gw_kind_t *kind,
                        json_t **values, gw_error_t *err);
/* Runs on the storage thread: every metric's kind of project into kinds
 * (an object metric -> integer kind). */
int gw__api_kinds(const gw_storage_ops_t *ops, void *state, const char *project,
                  json_t *kinds, gw_error_t *err);
/* The loop's cache of kinds (a metric's kind never changes): the cached
 * kind or 0; and learning from a gw__api_kinds result (may be NULL). The
 * cache is dropped every 5 minutes and when it grows past 100000. */
gw_kind_t gw__api_kind_cached(gw__api_t *api, const char *project,
                              const char *metric);
void gw__api_kinds_learn(gw__api_t *api, const char *project, json_t *kinds);
struct gw__api_stat_s;

/* Runs on the storage thread: reads one series' stat (NULL: value) into
 * vals (npoints, zeroed by the caller) by bucket. */
int gw__api_series(const gw_storage_ops_t *ops, void *state,
                   const gw_query_t *q, const struct gw__api_stat_s *st,
                   const int64_t *buckets, size_t npoints, double *vals,
                   gw_error_t *err);
/* ---- api_stat.c: stat= and /kinds ---- */

typedef enum gw__api_stat_what_e {
    GW__STAT_VALUE = 0, /* the kind's own value */
    GW__STAT_COUNT,
    GW__STAT_SUM,
    GW__STAT_MIN,
    GW__STAT_MAX,
    GW__STAT_MEAN,
    GW__STAT_QUANTILE /* q */
} gw__api_stat_what_t;

typedef struct gw__api_stat_s {
    gw__api_stat_what_t what;
    double q;      /* GW__STAT_QUANTILE: 0..1 */
    char name[16]; /* as asked */
} gw__api_stat_t;

/* Parses stat= (NULL: value). GW_ERR: unknown, err says the names. */
int gw__api_stat_parse(const char *s, gw__api_stat_t *st, gw_error_t *err);
/* GW_OK if the stat exists for kind; else GW_ERR with the 400 message
 * (naming metric and its stats) in msg. */
int gw__api_stat_check(const gw__api_stat_t *st, gw_kind_t kind,
                       const char *metric, char *msg, size_t size);
/* A bucket's value for the stat from its point (st NULL: value); NaN
 * for the stats only a sketch answers. */
double gw__api_stat_value(const gw__api_stat_t *st, gw_kind_t kind,
                          const gw_point_t *pt);
/* Whether a bucket without events has no value for the stat (null, not
 * 0): a timing's value, mean, min, max and percentiles. */
int gw__api_stat_null_fill(const gw__api_stat_t *st, gw_kind_t kind);
/* min, max or a percentile of a timing series into vals, from the
 * storage's query_timing. Storage thread. */
int gw__api_series_timing(const gw_storage_ops_t *ops, void *state,
                          const gw_query_t *q, const gw__api_stat_t *st,
                          const int64_t *buckets, size_t npoints,
                          double *vals, gw_error_t *err);
/* GET {PREFIX}/api/v1/{project}/kinds. */
void gw__api_kinds_route(gw__api_t *api, gw_http_req_t *req,
                         const char *project);
/* 503 (GW_AGAIN) or 500 for a storage job that failed. */
void gw__api_storage_error(gw_http_req_t *req, int rc, const gw_error_t *err);
/* A copy of obj with its keys (and arrays of strings) sorted. */
json_t *gw__api_sorted(json_t *obj);

/* Sets "range", "avg", "min", "max" of obj from a series. */
void gw__api_series_json(json_t *obj, const int64_t *buckets,
                         const double *vals, size_t npoints);

/* Whether the configured user of that e-mail (NULL: anonymous access or
 * project keys, not a user) may see project: every project without a
 * projects list, else only those. An e-mail not in USERS sees none. */
int gw__api_user_may_see(const gw__config_t *cfg, const char *email,
                         const char *project);
/* Whether who may see project: a project's keys their own project only,
 * anonymous access every project, a user as gw__api_user_may_see says.
 * The routes answer a project who may not see exactly as an unknown one
 * (404), so answers do not tell which projects exist. */
int gw__api_may_see(const gw__api_t *api, const gw__api_who_t *who,
                    const char *project);
void gw__api_projects(gw__api_t *api, gw_http_req_t *req,
                      const gw__api_who_t *who);
/* GET /api/v1/config: PERIODS, RETENTION (s, null: for ever), MAX_POINTS
 * and the server's clock, for the dashboard (docs/api.md). */
void gw__api_config(gw__api_t *api, gw_http_req_t *req);
void gw__api_metrics(gw__api_t *api, gw_http_req_t *req, const char *project);
void gw__api_stats(gw__api_t *api, gw_http_req_t *req, const char *project,
                   int dataset);

/* ---- api_embed.c ---- */

/* Creates an embedded chart of project for who (who may see project),
 * within MAX_EMBEDS_PER_PROJECT, MAX_EMBEDS_PER_USER and MAX_DOCUMENT_SIZE. */
void gw__api_embedded_create(gw__api_t *api, gw_http_req_t *req,
                             const char *project, const gw__api_who_t *who);
/* id is "{uuid}.json", ".html" or ".js". */
void gw__api_embedded_get(gw__api_t *api, gw_http_req_t *req, const char *file);
/* Whether id (len bytes) is a chart id: a UUID in lower or upper hex. */
int gw__api_embed_id_ok(const char *id, size_t len);
/* "http(s)://host{prefix}" from req into out; GW_ERR for a Host header
 * that cannot be put into a link. */
int gw__api_embed_base(gw__api_t *api, gw_http_req_t *req, char *out,
                       size_t size);
/* {"id", "html_link", "js_link", "json_link", "iframe"} of chart id, the
 * iframe titled title (HTML-escaped; NULL: "GottWall chart"), as a new
 * reference; NULL when out of memory. */
json_t *gw__api_embed_links(const char *base_url, const char *id,
                            const char *title);
/* The decimal count in doc("count", id) (0 when none), and storing one;
 * on the storage thread. */
int gw__api_count_get(const gw_storage_ops_t *ops, void *state,
                      const char *id, uint64_t *n, gw_error_t *err);
int gw__api_count_put(const gw_storage_ops_t *ops, void *state,
                      const char *id, uint64_t n, gw_error_t *err);

/* ---- api_shared.c ---- */

/* GET (id NULL: the list) or DELETE (id: one chart) of project's shared
 * charts, for a request let in and allowed to see project. */
void gw__api_embedded_shared(gw__api_t *api, gw_http_req_t *req,
                             const char *project, const char *id);
/* The project's list of shared charts (*index: a new array, empty when
 * none), and storing it; on the storage thread. */
int gw__api_embed_index_get(const gw_storage_ops_t *ops, void *state,
                            const char *project, json_t **index,
                            gw_error_t *err);
int gw__api_embed_index_put(const gw_storage_ops_t *ops, void *state,
                            const char *project, json_t *index,
                            gw_error_t *err);
/* The position of index's entry whose field is value, or -1. */
long gw__api_embed_index_find(json_t *index, const char *field,
                              const char *value);
/* What makes two stored charts the same: a SHA-256 in hex of the chart
 * text without its "created"; the caller frees (NULL: not a chart). */
char *gw__api_embed_key(const char *doc_text);

/* ---- api_host.c ---- */

/* Whether a request with that Host value (NULL: none) may be answered by
 * a server listening on listen (from gw__api_host_listen; NULL: every
 * address) with ALLOWED_HOSTS names. */
int gw__api_host_allowed(const char *value, const char *listen,
                         char *const *names, size_t nnames);
/* The listen address as a Host would name it (lower case, IPv6 in
 * brackets), a new string; NULL for every address (0.0.0.0, ::). */
char *gw__api_host_listen(const char *host);
/* Sets api->listen_host and says at start what a server on every address
 * answers and what to set. */
void gw__api_host_start(gw__api_t *api, const char *host);
/* 1 when req may go on; else answers 421 (counted) and returns 0. */
int gw__api_host_check(gw__api_t *api, gw_http_req_t *req);
/* 1 when req came over TLS: a peer in TRUSTED_PROXIES said so with
 * X-Forwarded-Proto: https (the server itself speaks plain HTTP). */
int gw__api_https(const gw__api_t *api, gw_http_req_t *req);
/* For POST, PUT, DELETE and PATCH: 1 when neither Origin nor
 * Sec-Fetch-Site says the request comes from another site; else answers
 * 403 (counted as cross_origin) and returns 0. 1 for other methods. */
int gw__api_origin_check(gw__api_t *api, gw_http_req_t *req);

#endif /* GW_SERVER_API_INT_H */
