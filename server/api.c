/*
 * server/api.c: the server role's front door (SPEC §7, §8). Listens with the
 * core's HTTP server, routes every request under PREFIX (the dashboard and
 * its assets, login and logout, the read API, embedded charts, /health and
 * /metrics), decides access, and runs storage work through the storage
 * thread as "pending" calls (see api_int.h). Pages are small templates read
 * from the web directory (GOTTWALL_WEBDIR, else WEB_DIR, else GW_WEBDIR).
 */
#include "api_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/http.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"

#ifndef GW_WEBDIR
#define GW_WEBDIR "/usr/local/share/gottwall/web"
#endif

#ifdef PACKAGE_VERSION
#define PACKAGE_VERSION_STRING PACKAGE_VERSION
#else
#define PACKAGE_VERSION_STRING "0.1.0"
#endif

#define API_MAX_ASSET (4 * 1024 * 1024)
#define API_HEALTH_TIMEOUT 5.0
#define API_MAX_PENDING 512 /* storage calls in flight */

static const char api_json_headers[] = "Cache-Control: no-store\r\n";
static const char api_page_headers[] =
    "Cache-Control: no-store\r\n"
    "Content-Security-Policy: " GW__API_CSP "; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: same-origin\r\n";
/* On every answer of the server role, the HTTP layer's own included. */
static const char api_every_headers[] = "X-Content-Type-Options: nosniff\r\n";

const gw__config_t *
gw__api_cfg(const gw__api_t *api)
{
    return api->env.config(api->env.ctx);
}

const char *
gw__api_webdir(const gw__api_t *api)
{
    const char *env = getenv("GOTTWALL_WEBDIR");
    const gw__config_t *cfg = gw__api_cfg(api);

    if (env != NULL && env[0] != '\0')
        return env;
    if (cfg->webdir != NULL && cfg->webdir[0] != '\0')
        return cfg->webdir;
    return GW_WEBDIR;
}

/* ---- Answers ---- */

void
gw__api_json(gw_http_req_t *req, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);

    json_decref(v);
    if (text == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    gw__http_respond(req, status, "application/json", api_json_headers, text,
                     strlen(text));
    free(text);
}

void
gw__api_errorf(gw_http_req_t *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw__api_json(req, status, json_pack("{s:s}", "error", msg));
}

void
gw__api_redirect(gw_http_req_t *req, const char *location, const char *headers)
{
    size_t n = strlen(location) + (headers ? strlen(headers) : 0) + 64;
    char *h = malloc(n);

    if (h == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    snprintf(h, n, "Location: %s\r\nCache-Control: no-store\r\n%s", location,
             headers ? headers : "");
    gw__http_respond(req, 302, "text/plain; charset=utf-8", h, "", 0);
    free(h);
}

/* A value of the read API. Not finite (an old storage's inf, see
 * stats_point): null, never 0, which would be a plausible count. */
json_t *
gw__api_number(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

char *
gw__api_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

char *
gw__api_html_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        const char *rep = NULL;

        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        }
        if (rep != NULL) {
            memcpy(o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* Reads a whole file into a new NUL-terminated buffer. */
static char *
api_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > API_MAX_ASSET) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static const char *
api_var(const char *const *vars, const char *key, size_t klen, int *raw)
{
    for (; vars != NULL && vars[0] != NULL; vars += 2) {
        const char *k = vars[0];

        *raw = (k[0] == '!');
        if (*raw)
            k++;
        if (strlen(k) == klen && memcmp(k, key, klen) == 0)
            return vars[1] ? vars[1] : "";
    }
    return NULL;
}

/* Where {{#key}}'s section ends: just after its {{/key}} (key is klen
 * bytes), or NULL when it has none. */
static const char *
api_section_end(const char *from, const char *key, size_t klen)
{
    const char *p;

    for (p = strstr(from, "{{/"); p != NULL; p = strstr(p + 3, "{{/"))
        if (strncmp(p + 3, key, klen) == 0 && strncmp(p + 3 + klen, "}}", 2) == 0)
            return p + 3 + klen + 2;
    return NULL;
}

void
gw__api_page(gw__api_t *api, gw_http_req_t *req, int status, const char *file,
             const char *const *vars, const char *headers)
{
    char path[4096];
    size_t len = 0;
    char *tpl, *s;
    gw__buf_t b = {0};

    snprintf(path, sizeof(path), "%s/%s", gw__api_webdir(api), file);
    tpl = api_read_file(path, &len);
    if (tpl == NULL) {
        gw__log_error("server: cannot read %s: %s (install the dashboard "
                      "or set WEB_DIR / GOTTWALL_WEBDIR)",
                      path, strerror(errno));
        gw__http_respond(req, 500, "text/plain; charset=utf-8", NULL,
                         "dashboard files are missing on the server\n", 42);
        return;
    }
    s = tpl;
    for (;;) {
        char *open = strstr(s, "{{"), *close;
        const char *val;
        int raw = 0;

        if (open == NULL || (close = strstr(open + 2, "}}")) == NULL) {
            gw__buf_add(&b, s, strlen(s));
            break;
        }
        gw__buf_add(&b, s, (size_t)(open - s));
        if (open[2] == '#' || open[2] == '/') {
            /* {{#key}}...{{/key}}: kept when key's value is not empty. */
            const char *end = NULL;

            val = api_var(vars, open + 3, (size_t)(close - open - 3), &raw);
            if (open[2] == '#' && (val == NULL || val[0] == '\0'))
                end = api_section_end(close + 2, open + 3,
                                      (size_t)(close - open - 3));
            s = end != NULL ? (char *)end : close + 2;
            continue;
        }
        val = api_var(vars, open + 2, (size_t)(close - open - 2), &raw);
        if (val == NULL) {
            gw__buf_add(&b, open, (size_t)(close + 2 - open));
        } else if (raw) {
            gw__buf_add(&b, val, strlen(val));
        } else {
            char *e = gw__api_html_escape(val);

            if (e == NULL)
                b.oom = 1;
            else
                gw__buf_add(&b, e, strlen(e));
            free(e);
        }
        s = close + 2;
    }
    free(tpl);
    if (b.oom) {
        free(b.p);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    gw__http_respond(req, status, "text/html; charset=utf-8",
                     headers ? headers : api_page_headers, b.p ? b.p : "",
                     b.len);
    free(b.p);
}

void
gw__api_error_page(gw__api_t *api, gw_http_req_t *req, int status,
                   const char *title, const char *message, const char *headers)
{
    char code[16];
    const char *vars[] = {"prefix",  gw__api_cfg(api)->prefix,
                          "status",  code,
                          "title",   title,
                          "message", message,
                          NULL,      NULL};

    snprintf(code, sizeof(code), "%d", status);
    gw__api_page(api, req, status, "error.html", vars, headers);
}

/* A page the browser asked for that is not there (JSON under /api/). */
static void
api_not_found(gw__api_t *api, gw_http_req_t *req, const char *path)
{
    char msg[512];

    if (strncmp(path + strlen(gw__api_cfg(api)->prefix), "/api/", 5) == 0) {
        gw__api_errorf(req, 404, "no such API route: %.400s (see docs/api.md)",
                       path);
        return;
    }
    snprintf(msg, sizeof(msg), "There is no page at %.400s.", path);
    gw__api_error_page(api, req, 404, "Page not found", msg, NULL);
}

/* ---- Pending storage calls ---- */

static void
api_unlink(gw__api_pending_t *p)
{
    if (p->api == NULL)
        return;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->api->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->api->npending--;
}

static void
api_done(void *arg, int rc, const gw_error_t *err)
{
    gw__api_pending_t *p = arg;

    api_unlink(p);
    if (p->req != NULL && p->finish != NULL)
        p->finish(p, rc, err);
    p->release(p);
}

void
gw__api_submit(gw__api_t *api, gw__api_pending_t *p,
               gw__server_job_fn job)
{
    p->api = api;
    if (!api->env.storage_stats(api->env.ctx, NULL)) {
        gw__http_error(p->req, 503, "no storage is running");
        p->release(p);
        return;
    }
    if (api->npending >= API_MAX_PENDING) {
        gw__http_respond(p->req, 503, "application/json", "Retry-After: 1\r\n",
                         "{\"error\":\"the server is busy: too many storage "
                         "requests in flight, try again\"}",
                         strlen("{\"error\":\"the server is busy: too many "
                                "storage requests in flight, try again\"}"));
        p->release(p);
        return;
    }
    p->prev = NULL;
    p->next = api->pending;
    if (api->pending != NULL)
        api->pending->prev = p;
    api->pending = p;
    api->npending++;
    if (api->env.storage_call(api->env.ctx, job, api_done, p) != GW_OK) {
        /* Out of memory (reads answer 500; nothing is lost). */
        api_unlink(p);
        gw__http_error(p->req, 500, "out of memory");
        p->release(p);
    }
}

/* ---- /health ---- */

typedef struct api_health_s {
    gw__api_pending_t base;
    struct ev_loop *loop;
    ev_timer timer;
} api_health_t;

static int
api_health_job(const gw_storage_ops_t *ops, void *state, void *arg,
               gw_error_t *err)
{
    (void)arg;
    if (ops->ping == NULL)
        return GW_OK;
    return ops->ping(state, err);
}

static void
api_health_answer(gw__api_t *api, gw_http_req_t *req, int up, const char *why)
{
    gw__server_storage_t st;
    json_t *roles = json_array();
    json_t *o;

    memset(&st, 0, sizeof(st));
    if (api != NULL)
        api->env.storage_stats(api->env.ctx, &st);
    if (api != NULL && api->env.aggregator)
        json_array_append_new(roles, json_string("aggregator"));
    json_array_append_new(roles, json_string("server"));
    o = json_pack("{s:s, s:s, s:o, s:I}", "status", up ? "ok" : "error",
                  "storage", up ? "up" : "down", "roles", roles,
                  "pending_series", (json_int_t)st.pending_series);
    if (!up && why != NULL)
        json_object_set_new(o, "error", json_string(why));
    gw__api_json(req, up ? 200 : 503, o);
}

static void
api_health_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    api_health_t *h = (api_health_t *)p;
    char why[GW_ERROR_MAX + 32];

    ev_timer_stop(h->loop, &h->timer);
    if (rc == GW_OK) {
        api_health_answer(p->api, p->req, 1, NULL);
        return;
    }
    snprintf(why, sizeof(why), "storage does not answer: %s",
             err && err->msg[0] ? err->msg : "unreachable");
    api_health_answer(p->api, p->req, 0, why);
}

static void
api_health_release(gw__api_pending_t *p)
{
    api_health_t *h = (api_health_t *)p;

    ev_timer_stop(h->loop, &h->timer);
    free(h);
}

static void
api_health_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    api_health_t *h = w->data;

    (void)loop;
    (void)revents;
    if (h->base.req == NULL)
        return;
    api_health_answer(h->base.api, h->base.req, 0,
                      "storage did not answer within 5 s");
    h->base.req = NULL; /* answered: the job's return only frees */
}

static void
api_health(gw__api_t *api, gw_http_req_t *req)
{
    api_health_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    h->base.req = req;
    h->base.finish = api_health_finish;
    h->base.release = api_health_release;
    h->loop = api->env.loop;
    ev_timer_init(&h->timer, api_health_timeout, API_HEALTH_TIMEOUT, 0.);
    h->timer.data = h;
    if (api->env.storage_stats(api->env.ctx, NULL))
        ev_timer_start(h->loop, &h->timer);
    gw__api_submit(api, &h->base, api_health_job);
}

/* ---- /metrics ---- */

/* RETENTION's lines, appended to extra. */
static void
api_metrics_retention(const gw__server_storage_t *st, char *extra,
                      size_t size)
{
    size_t n = strlen(extra);
    int p;

    n += (size_t) snprintf(extra + n, n < size ? size - n : 0,
                           "# HELP gottwall_retention_skipped_cells_total "
                           "Cells not written: their bucket was past its "
                           "period's RETENTION.\n"
                           "# TYPE gottwall_retention_skipped_cells_total "
                           "counter\n");
    for (p = 0; p < GW_PERIOD_ALL; p++)
        n += (size_t) snprintf(extra + n, n < size ? size - n : 0,
                               "gottwall_retention_skipped_cells_total"
                               "{period=\"%s\"} %llu\n",
                               gw_period_name((gw_period_t) p),
                               (unsigned long long) st->skipped[p]);
    if (!st->can_expire)
        return;
    snprintf(extra + n, n < size ? size - n : 0,
             "# HELP gottwall_storage_expiry_passes_total Expiries of "
             "every period with a RETENTION, done.\n"
             "# TYPE gottwall_storage_expiry_passes_total counter\n"
             "gottwall_storage_expiry_passes_total %llu\n"
             "# HELP gottwall_storage_expiry_errors_total Failed expire "
             "calls.\n"
             "# TYPE gottwall_storage_expiry_errors_total counter\n"
             "gottwall_storage_expiry_errors_total %llu\n"
             "# HELP gottwall_storage_expiry_seconds Duration of the last "
             "expiry.\n"
             "# TYPE gottwall_storage_expiry_seconds gauge\n"
             "gottwall_storage_expiry_seconds %.6f\n",
             (unsigned long long) st->expiry_passes,
             (unsigned long long) st->expiry_errors,
             st->last_expiry_seconds);
}

static void
api_metrics_text(gw__api_t *api, gw_http_req_t *req)
{
    gw__server_storage_t st;
    char extra[4096];
    char *text;
    int up;

    memset(&st, 0, sizeof(st));
    up = api->env.storage_stats(api->env.ctx, &st) && !st.down;
    snprintf(extra, sizeof(extra),
             "# HELP gottwall_storage_up 1 while the storage accepts writes.\n"
             "# TYPE gottwall_storage_up gauge\n"
             "gottwall_storage_up %d\n"
             "# HELP gottwall_storage_pending_series Series waiting "
             "to be stored.\n"
             "# TYPE gottwall_storage_pending_series gauge\n"
             "gottwall_storage_pending_series %zu\n"
             "# HELP gottwall_storage_flush_seconds Duration of the last "
             "successful store.\n"
             "# TYPE gottwall_storage_flush_seconds gauge\n"
             "gottwall_storage_flush_seconds %.6f\n"
             "# HELP gottwall_storage_batches_stored_total Batches written "
             "to the storage.\n"
             "# TYPE gottwall_storage_batches_stored_total counter\n"
             "gottwall_storage_batches_stored_total %llu\n"
             "# HELP gottwall_storage_events_stored_total Events in batches "
             "written to the storage.\n"
             "# TYPE gottwall_storage_events_stored_total counter\n"
             "gottwall_storage_events_stored_total %llu\n"
             "# HELP gottwall_storage_events_dropped_total Events lost "
             "(batches the storage refused, or out of memory).\n"
             "# TYPE gottwall_storage_events_dropped_total counter\n"
             "gottwall_storage_events_dropped_total %llu\n"
             "# HELP gottwall_storage_errors_total Failed store calls.\n"
             "# TYPE gottwall_storage_errors_total counter\n"
             "gottwall_storage_errors_total %llu\n",
             up, st.pending_series,
             st.last_flush_seconds, (unsigned long long)st.batches_stored,
             (unsigned long long)st.events_stored,
             (unsigned long long)st.events_dropped,
             (unsigned long long)st.store_errors);
    api_metrics_retention(&st, extra, sizeof(extra));
    api->env.flush_counts(api->env.ctx); /* this loop's, up to now */
    text = gw__metrics_render(extra);
    if (text == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    gw__http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                     api_json_headers, text, strlen(text));
    free(text);
}

/* ---- Static assets ---- */

static const char *
api_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".js", "application/javascript; charset=utf-8"},
        {".mjs", "application/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".html", "text/html; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    size_t i;

    for (i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static void
api_static(gw__api_t *api, gw_http_req_t *req, const char *name)
{
    char path[4096];
    const char *c;
    size_t len = 0;
    char *data;

    if (name[0] == '\0' || name[0] == '.')
        goto notfound;
    for (c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_'))
            goto notfound;
    snprintf(path, sizeof(path), "%s/%s", gw__api_webdir(api), name);
    data = api_read_file(path, &len);
    if (data == NULL)
        goto notfound;
    gw__http_respond(req, 200, api_content_type(name),
                     "Cache-Control: no-cache\r\n", data, len);
    free(data);
    return;
notfound:
    gw__http_respond(req, 404, "text/plain; charset=utf-8", NULL, "not found\n",
                     10);
}

/* ---- The dashboard page ---- */

/* The ingest URL the empty state's curl line shows: the first http
 * transport's HOST:PORT. */
static void
api_ingest_url(const gw__config_t *cfg, char *out, size_t size)
{
    size_t i;

    snprintf(out, size, "http://127.0.0.1:8890%s", cfg->prefix);
    for (i = 0; i < cfg->nbackends; i++) {
        const gw__plugin_conf_t *b = &cfg->backends[i];
        const char *host = "127.0.0.1";
        int port = 8890;

        if (b->plugin == NULL || strcmp(b->plugin, "http") != 0)
            continue;
        if (b->section != NULL) {
            config_setting_lookup_string(b->section, "HOST", &host);
            config_setting_lookup_int(b->section, "PORT", &port);
        }
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            host = "127.0.0.1";
        snprintf(out, size,
                 strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s",
                 host, port, cfg->prefix);
        return;
    }
}

static void
api_dashboard_page(gw__api_t *api, gw_http_req_t *req, const gw__api_who_t *who)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    json_t *conf, *projects = json_array();
    char ingest[512];
    char *text, *p;
    size_t i;
    const char *vars[12];

    api_ingest_url(cfg, ingest, sizeof(ingest));
    /* Only the projects (and public keys) this user may see. */
    for (i = 0; i < cfg->nprojects; i++)
        if (gw__api_may_see(api, who, cfg->projects[i].name))
            json_array_append_new(
                projects,
                json_pack("{s:s, s:s}", "name", cfg->projects[i].name,
                          "public_key", cfg->projects[i].public_key));
    conf = json_pack("{s:s, s:s, s:b, s:s, s:o, s:s}", "prefix", cfg->prefix,
                     "user", who->user, "anonymous", who->anonymous,
                     "ingest_url", ingest, "projects", projects, "version",
                     PACKAGE_VERSION_STRING);
    text = json_dumps(conf, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(conf);
    if (text == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    /* Keep "</script>" out of the inline JSON: '<' as \u003c. */
    {
        size_t nlt = 0;
        char *q, *esc;

        for (p = text; (p = strchr(p, '<')) != NULL; p++)
            nlt++;
        esc = malloc(strlen(text) + nlt * 5 + 1);
        if (esc == NULL) {
            free(text);
            gw__http_error(req, 500, "out of memory");
            return;
        }
        for (p = text, q = esc; *p; p++) {
            if (*p == '<') {
                memcpy(q, "\\u003c", 6);
                q += 6;
            } else {
                *q++ = *p;
            }
        }
        *q = '\0';
        free(text);
        text = esc;
    }
    vars[0] = "prefix";
    vars[1] = cfg->prefix;
    vars[2] = "user";
    vars[3] = who->user;
    vars[4] = "!config";
    vars[5] = text;
    vars[6] = "version";
    vars[7] = PACKAGE_VERSION_STRING;
    vars[8] = "csrf";
    vars[9] = who->csrf;
    vars[10] = NULL;
    vars[11] = NULL;
    gw__api_page(api, req, 200, "index.html", vars, NULL);
    free(text);
}

/* ---- Routing ---- */

static int
api_is(const char *method, const char *m)
{
    return strcmp(method, m) == 0;
}

static void
api_not_allowed(gw_http_req_t *req, const char *allow)
{
    char h[128];
    char msg[128];

    snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
    snprintf(msg, sizeof(msg), "{\"error\":\"method not allowed: use %s\"}",
             allow);
    gw__http_respond(req, 405, "application/json", h, msg, strlen(msg));
}

static int
api_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Refuses state-changing requests that a cookie let in without the custom
 * header (a cross-site form cannot send it). 1 if refused. */
static int
api_csrf_refused(gw_http_req_t *req, const gw__api_who_t *who)
{
    const char *xrw = gw__http_header(req, "X-Requested-With");

    if (!who->via_cookie)
        return 0;
    if (xrw != NULL && strcmp(xrw, "gottwall") == 0)
        return 0;
    gw__http_error(req, 403,
                   "missing header X-Requested-With: gottwall (requests "
                   "made with a session cookie must send it)");
    return 1;
}

static void api_route_api(gw__api_t *api, gw_http_req_t *req,
                          const char *method, const char *rel,
                          const gw__api_who_t *pre);

/* A request authenticated by an S3/S4 header, waiting for the replay
 * cache the storage shares to answer the claim of its nonce. Linked in
 * api->pending like a storage call, so a stop orphans it. */
typedef struct api_wait_s {
    gw__api_pending_t base;
    gw__api_who_t who;
    char rel[];
} api_wait_t;

static void
api_claimed(void *arg, int ok)
{
    api_wait_t *w = arg;
    gw__api_t *api = w->base.api;
    gw_http_req_t *req = w->base.req;

    api_unlink(&w->base);
    if (api != NULL && req != NULL) {
        if (!ok)
            gw__http_error(req, 401, "authentication failed: the nonce was "
                                     "already used (a replayed request? use "
                                     "a new random nonce per request)");
        else
            api_route_api(api, req, gw__http_method(req), w->rel, &w->who);
    }
    free(w);
}

/* 1: routing goes on now (nothing to claim); 0: the request resumes in
 * api_claimed, or was answered. */
static int
api_claim(gw__api_t *api, gw_http_req_t *req, const char *rel,
          const gw__api_who_t *who)
{
    gw__auth_t *auth = api->env.auth(api->env.ctx);
    api_wait_t *w;

    if (who->key_project == NULL || api->env.auth_claim == NULL
        || auth == NULL || !gw__auth_has_nonce(auth))
        return 1;
    w = calloc(1, sizeof(*w) + strlen(rel) + 1);
    if (w == NULL) {
        gw__http_error(req, 500, "out of memory");
        return 0;
    }
    w->base.api = api;
    w->base.req = req;
    w->who = *who;
    strcpy(w->rel, rel);
    w->base.next = api->pending;
    if (api->pending != NULL)
        api->pending->prev = &w->base;
    api->pending = &w->base;
    api->npending++;
    if (api->env.auth_claim(api->env.ctx, api_claimed, w) != GW_OK) {
        api_unlink(&w->base);
        free(w);
        gw__http_error(req, 500, "out of memory");
    }
    return 0;
}

/* {project}/embedded/: GET the list, POST a chart; {project}/embedded/{id}
 * (chart): DELETE it. */
static void
api_route_embedded(gw__api_t *api, gw_http_req_t *req, const char *method,
                   const char *project, const char *chart,
                   const gw__api_who_t *who)
{
    if (chart != NULL) {
        if (!api_is(method, "DELETE"))
            api_not_allowed(req, "DELETE");
        else if (!api_csrf_refused(req, who))
            gw__api_embedded_shared(api, req, project, chart);
    } else if (api_is(method, "GET")) {
        gw__api_embedded_shared(api, req, project, NULL);
    } else if (!api_is(method, "POST")) {
        api_not_allowed(req, "GET, POST");
    } else if (!api_csrf_refused(req, who)) {
        gw__api_embedded_create(api, req, project, who);
    }
}

static void
api_route_api(gw__api_t *api, gw_http_req_t *req, const char *method,
              const char *rel, const gw__api_who_t *pre)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    gw__api_who_t who;
    const char *slash;
    char *project;
    const char *action, *chart = NULL;
    size_t n;

    if (strncmp(rel, "embedded/", 9) == 0 && strchr(rel + 9, '/') == NULL &&
        (api_ends_with(rel, ".json") || api_ends_with(rel, ".html") ||
         api_ends_with(rel, ".js"))) {
        if (!api_is(method, "GET") && !api_is(method, "HEAD")) {
            api_not_allowed(req, "GET");
            return;
        }
        gw__api_embedded_get(api, req, rel + 9);
        return;
    }
    if (strcmp(rel, "projects") == 0 || strcmp(rel, "dashboard") == 0 ||
        strcmp(rel, "config") == 0 || strcmp(rel, "dashboards") == 0 ||
        (strncmp(rel, "dashboards/", 11) == 0 && rel[11] != '\0')) {
        if (pre != NULL)
            who = *pre;
        else
            gw__api_access(api, req, NULL, &who);
        if (!who.ok) {
            gw__http_error(req, 401, who.why);
            return;
        }
        if (pre == NULL && !api_claim(api, req, rel, &who))
            return;
        if (rel[0] == 'p' || rel[0] == 'c') {
            if (!api_is(method, "GET")) {
                api_not_allowed(req, "GET");
                return;
            }
            if (rel[0] == 'p')
                gw__api_projects(api, req, &who);
            else
                gw__api_config(api, req);
            return;
        }
        if (strncmp(rel, "dashboards/", 11) == 0) {
            if (!api_is(method, "GET") && !api_is(method, "PUT") &&
                !api_is(method, "DELETE")) {
                api_not_allowed(req, "GET, PUT, DELETE");
                return;
            }
        } else if (!api_is(method, "GET") && !api_is(method, "PUT")) {
            api_not_allowed(req, "GET, PUT");
            return;
        }
        if (!api_is(method, "GET") && api_csrf_refused(req, &who))
            return;
        gw__api_dashboards(api, req, &who,
                           rel[9] == '\0' ? "legacy" : rel + 10);
        return;
    }
    /* {project}/{action}, where the project may hold '/'. */
    n = strlen(rel);
    if (api_ends_with(rel, "/embedded/")) {
        slash = rel + n - strlen("/embedded/");
        action = "embedded";
    } else if (n > 46 && strncmp(rel + n - 46, "/embedded/", 10) == 0 &&
               gw__api_embed_id_ok(rel + n - 36, 36)) {
        slash = rel + n - 46; /* {project}/embedded/{id} */
        action = "embedded";
        chart = rel + n - 36;
    } else {
        slash = strrchr(rel, '/');
        action = slash ? slash + 1 : NULL;
    }
    if (slash == NULL || slash == rel ||
        !(strcmp(action, "metrics") == 0 || strcmp(action, "stats") == 0 ||
          strcmp(action, "kinds") == 0 ||
          strcmp(action, "stats_dataset") == 0 ||
          strcmp(action, "embedded") == 0)) {
        gw__api_errorf(req, 404,
                       "no such API route: %s/api/v1/%s (see docs/api.md)",
                       cfg->prefix, rel);
        return;
    }
    project = strndup(rel, (size_t)(slash - rel));
    if (project == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    if (pre != NULL)
        who = *pre;
    else
        gw__api_access(api, req, project, &who);
    if (!who.ok) {
        gw__http_error(req, 401, who.why);
    } else if (pre == NULL && !api_claim(api, req, rel, &who)) {
        /* resumes in api_claimed */
    } else if (gw__config_project(cfg, project) == NULL ||
               !gw__api_may_see(api, &who, project)) {
        /* A project this user may not see answers as an unknown one. */
        gw__api_errorf(req, 404, "unknown project \"%s\"", project);
    } else if (strcmp(action, "embedded") == 0) {
        api_route_embedded(api, req, method, project, chart, &who);
    } else if (!api_is(method, "GET")) {
        api_not_allowed(req, "GET");
    } else if (strcmp(action, "metrics") == 0) {
        gw__api_metrics(api, req, project);
    } else if (strcmp(action, "kinds") == 0) {
        gw__api_kinds_route(api, req, project);
    } else {
        gw__api_stats(api, req, project, strcmp(action, "stats_dataset") == 0);
    }
    free(project);
}

void
gw__api_route(gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    const char *path = gw__http_path(req);
    const char *method = gw__http_method(req);
    size_t plen = strlen(cfg->prefix);
    const char *rel = path + plen;
    gw__api_who_t who;
    char loc[1024];

    if (strncmp(path, cfg->prefix, plen) != 0 ||
        (path[plen] != '\0' && path[plen] != '/')) {
        char msg[512];

        snprintf(msg, sizeof(msg), "There is no page at %.400s: GottWall's "
                 "pages are under %s/.", path, cfg->prefix);
        gw__api_error_page(api, req, 404, "Page not found", msg, NULL);
        return;
    }
    if (rel[0] == '\0') {
        snprintf(loc, sizeof(loc), "%s/", cfg->prefix);
        gw__api_redirect(req, loc, NULL);
        return;
    }
    if (strncmp(rel, "/api/v1/", 8) == 0) {
        api_route_api(api, req, method, rel + 8, NULL);
        return;
    }
    if (strcmp(rel, "/health") == 0) {
        api_health(api, req);
    } else if (strcmp(rel, "/metrics") == 0) {
        api_metrics_text(api, req);
    } else if (strncmp(rel, "/static/", 8) == 0) {
        if (!api_is(method, "GET") && !api_is(method, "HEAD"))
            api_not_allowed(req, "GET");
        else
            api_static(api, req, rel + 8);
    } else if (strcmp(rel, "/login") == 0) {
        if (api_is(method, "POST"))
            gw__api_login_post(api, req);
        else if (api_is(method, "GET") || api_is(method, "HEAD"))
            gw__api_login_page(api, req);
        else
            api_not_allowed(req, "GET, POST");
    } else if (strcmp(rel, "/logout") == 0) {
        /* Not GET: an <img src=/logout> on any page would log out. */
        if (api_is(method, "POST"))
            gw__api_logout(api, req);
        else
            api_not_allowed(req, "POST");
    } else if (strcmp(rel, "/") == 0 || strcmp(rel, "/dashboard") == 0 ||
               strcmp(rel, "/index.html") == 0) {
        gw__api_access(api, req, NULL, &who);
        if (!who.ok || who.key_project != NULL) {
            char *next = gw__api_urlencode(path);

            snprintf(loc, sizeof(loc), "%s/login?next=%s", cfg->prefix,
                     next ? next : "");
            free(next);
            gw__api_redirect(req, loc, NULL);
            return;
        }
        api_dashboard_page(api, req, &who);
    } else {
        api_not_found(api, req, path);
    }
}

static void
api_handle(void *arg, gw_http_req_t *req)
{
    gw__api_t *api = arg;
    const gw__config_t *cfg = gw__api_cfg(api);
    const char *path = gw__http_path(req);
    size_t plen = strlen(cfg->prefix);

    if (!gw__api_host_check(api, req) || !gw__api_origin_check(api, req))
        return;
    /* A session's generation may have to be read first (outside the
     * prefix there is none to read: route answers 404). */
    if (strncmp(path, cfg->prefix, plen) != 0 ||
        gw__api_session_ready(api, req, path + plen, gw__api_route))
        gw__api_route(api, req);
}

/* ---- Start and stop ---- */

static int
api_start(const gw__server_env_t *env, const char *host, int port,
          void **out, gw_error_t *err)
{
    gw__api_t *api = calloc(1, sizeof(*api));
    gw_http_listen_t lo;
    const gw__config_t *cfg;

    if (api == NULL)
        return gw_error_set(err, "out of memory");
    api->env = *env;
    cfg = gw__api_cfg(api);
    memset(&lo, 0, sizeof(lo));
    lo.host = host;
    lo.port = port;
    if (gw__http_listen(env->loop, "server", &lo, &cfg->http, api_handle, api,
                        &api->srv, err) != GW_OK) {
        free(api);
        return GW_ERR;
    }
    gw__http_set_headers(api->srv, api_every_headers);
    gw__api_auth_start(api);
    gw__api_host_start(api, host);
    if (!cfg->anonymous_login &&
        (cfg->cookie_secret == NULL || cfg->cookie_secret[0] == '\0'))
        gw__log_warning("server: cookie_secret is not set: sessions are "
                        "signed with a random key and end when the server "
                        "restarts");
    if (!cfg->anonymous_login && cfg->nusers == 0)
        gw__log_warning("server: USERS is empty and ANONYMOUS_LOGIN is "
                        "false: nobody can log in to the dashboard (add a "
                        "user with a hash from `gottwall passwd`)");
    gw__log_info("server: dashboard and read API on http://%s:%d%s/", host,
                 gw__http_port(api->srv), cfg->prefix);
    *out = api;
    return GW_OK;
}

static void
api_stop(void *state)
{
    gw__api_t *api = state;
    gw__api_pending_t *p, *next;

    if (api == NULL)
        return;
    gw__http_stop_accepting(api->srv);
    /* Answer the storage calls in flight now and orphan them: their jobs
     * only free themselves when they come back. */
    for (p = api->pending; p != NULL; p = next) {
        next = p->next;
        p->prev = p->next = NULL;
        if (p->req != NULL)
            gw__http_error(p->req, 503, "the server is stopping");
        p->req = NULL;
        p->api = NULL;
    }
    api->pending = NULL;
    api->npending = 0;
    gw__api_auth_stop(api);
    gw__http_close(api->srv);
    gw__api_sessions_free(api);
    json_decref(api->kinds);
    free(api->dummy_hash);
    free(api->listen_host);
    free(api);
}

const gw__role_t gw__server_role = {
    .name = "server",
    .start = api_start,
    .stop = api_stop,
};
