/*
 * server/api_embed.c: embedded (shared) charts (SPEC §7,
 * §8), both kept as storage documents.
 *
 * POST {PREFIX}/api/v1/{project}/embedded/ validates a chart definition and
 * stores it as doc("embedded", uuid); the public {uuid}.json answers its
 * series, {uuid}.html is a standalone uPlot page reading that JSON, and
 * {uuid}.js writes an iframe of the page (api_embed_js.c). (Saved
 * dashboards: api_dash.c.)
 *
 * Bounds (issue 16): a chart or a dashboard is at most MAX_DOCUMENT_SIZE
 * bytes as stored (413); a project has at most MAX_EMBEDS_PER_PROJECT
 * charts and a user (anonymous access is one user) creates at most
 * MAX_EMBEDS_PER_USER (409). The counts are documents of their own
 * (doc("count", "embedded:project:NAME" / "embedded:user:EMAIL"), a
 * decimal number), read and written on the storage thread around the
 * chart's doc_put, so they survive a restart and one process never counts
 * two charts as one (its storage calls run one at a time). A chart records
 * who created it ("created_by") and is served only while that user may
 * still see its project (gw__api_user_may_see); charts made anonymously or
 * with a project's keys have no such user.
 */
#include "api_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ingest/bucket.h"
#include "net/http.h"
#include "base/log.h"
#include "base/metrics.h"

#define EMBED_MAX_METRICS 20
#define EMBED_COUNT_NS "count"

static const char *const embed_renderers[] = {"line", "area", "bar", "stacked",
                                              NULL};

/* ---- Helpers ---- */

static int
embed_renderer_ok(const char *r)
{
    size_t i;

    for (i = 0; embed_renderers[i] != NULL; i++)
        if (strcmp(r, embed_renderers[i]) == 0)
            return 1;
    return 0;
}

static void
embed_uuid(char out[37])
{
    unsigned char b[16];
    size_t i;
    int o = 0;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        for (i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)rand();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (i = 0; i < 16; i++) {
        o += sprintf(out + o, "%02x", b[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            out[o++] = '-';
    }
    out[o] = '\0';
}

int
gw__api_embed_id_ok(const char *id, size_t len)
{
    size_t i;

    if (len != 36)
        return 0;
    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (id[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)id[i])) {
            return 0;
        }
    }
    return 1;
}

/* "http://host{prefix}" from the request, or GW_ERR for a Host header that
 * cannot be put into a link. */
int
gw__api_embed_base(gw__api_t *api, gw_http_req_t *req, char *out, size_t size)
{
    const char *host = gw__http_header(req, "Host");
    /* X-Forwarded-Proto only from TRUSTED_PROXIES. */
    const char *proto = gw__api_https(api, req) ? "https" : "http";
    const char *c;

    if (host == NULL || host[0] == '\0' || strlen(host) > 255)
        return GW_ERR;
    for (c = host; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr(".-:[]_", *c)))
            return GW_ERR;
    snprintf(out, size, "%s://%s%s", proto, host, gw__api_cfg(api)->prefix);
    return GW_OK;
}

/* A JSON string member that may be absent; GW_ERR if present and not a
 * string of 1..255 bytes. */
static int
embed_str(json_t *o, const char *key, const char **out, int required)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return required ? GW_ERR : GW_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > 255)
        return GW_ERR;
    *out = json_string_value(v);
    return GW_OK;
}

/* ---- Documents: put and get ---- */

typedef struct embed_doc_s {
    gw__api_pending_t base;
    const char *ns;
    char *id;
    char *data; /* put: what to store; get: what was found */
    size_t len;
    int found;
    int mode;      /* what finish answers */
    json_t *reply; /* create: the links */
    char base_url[600];
    /* .json: parameters and results */
    unsigned periods;
    size_t max_points;
    int64_t retention[GW_PERIOD_COUNT]; /* RETENTION, s per period */
    int64_t now;
    char *q_period, *q_from, *q_to, *q_name, *q_renderer;
    int status; /* 400/404 decided on the storage thread */
    char msg[GW_ERROR_MAX];
    json_t *out;
    /* .js: the iframe's size */
    char *width, *height;
    /* create: the count documents (count_user NULL for a project's keys)
     * and their caps */
    char *count_project, *count_user;
    uint64_t max_project, max_user;
    char *project, *user; /* for the messages (user NULL for keys) */
    char *key;  /* create: gw__api_embed_key of data */
    int reused; /* create: an identical chart was there */
    /* .json, .html, .js: the stored chart's creator and project */
    char *creator, *doc_project;
} embed_doc_t;

enum { EMBED_CREATE, EMBED_JSON, EMBED_HTML, EMBED_JS };

static void
embed_doc_release(gw__api_pending_t *p)
{
    embed_doc_t *e = (embed_doc_t *)p;

    free(e->id);
    free(e->data);
    json_decref(e->reply);
    json_decref(e->out);
    free(e->q_period);
    free(e->q_from);
    free(e->q_to);
    free(e->q_name);
    free(e->q_renderer);
    free(e->width);
    free(e->height);
    free(e->count_project);
    free(e->count_user);
    free(e->project);
    free(e->user);
    free(e->key);
    free(e->creator);
    free(e->doc_project);
    free(e);
}

static void
embed_doc_found(void *arg, const char *data, size_t len)
{
    embed_doc_t *e = arg;

    free(e->data);
    e->data = malloc(len + 1);
    if (e->data == NULL)
        return;
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->len = len;
    e->found = 1;
}

/* The id and the links to the chart's .html, .js and .json, and an iframe
 * of the page. */
json_t *
gw__api_embed_links(const char *base_url, const char *id, const char *title)
{
    char link[1024];
    char html[1100], js[1100], jsn[1100];
    char *t = gw__api_html_escape(title ? title : "GottWall chart");
    char *iframe = NULL;
    json_t *out = NULL;

    snprintf(link, sizeof(link), "%s/api/v1/embedded/%s", base_url, id);
    snprintf(html, sizeof(html), "%s.html", link);
    snprintf(js, sizeof(js), "%s.js", link);
    snprintf(jsn, sizeof(jsn), "%s.json", link);
    /* A frame's title is what a screen reader announces for it. */
    if (t != NULL &&
        asprintf(&iframe, "<iframe src=\"%s\" title=\"%s\" width=\"800\" "
                 "height=\"400\" frameborder=\"0\"></iframe>", html, t) >= 0)
        out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "html_link",
                        html, "js_link", js, "json_link", jsn, "iframe", iframe);
    free(t);
    free(iframe);
    return out;
}

/* e->reply: the links of chart id (titled name), and whether it was there
 * before. */
static void
embed_links(embed_doc_t *e, const char *id, const char *name, int reused)
{
    json_decref(e->reply);
    e->reply = gw__api_embed_links(e->base_url, id, name);
    if (e->reply != NULL)
        json_object_set_new(e->reply, "reused", json_boolean(reused));
}

/* ---- Counts of embedded charts ---- */

/* The id of a count document: prefix + name, or prefix + "#" + the
 * SHA-256 of name in hex when that would pass the 255 bytes an id may
 * have. Names of users are counted without case (as USERS compares
 * them). */
char *
gw__api_doc_id(const char *prefix, const char *name, int fold)
{
    size_t plen = strlen(prefix), n = strlen(name), i;
    char *id;

    if (plen + n <= 255) {
        if ((id = malloc(plen + n + 1)) == NULL)
            return NULL;
        memcpy(id, prefix, plen);
        for (i = 0; i <= n; i++)
            id[plen + i] =
                fold ? (char)tolower((unsigned char)name[i]) : name[i];
        return id;
    }
    {
        unsigned char md[SHA256_DIGEST_LENGTH];
        char *low = strdup(name);

        if (low == NULL || (id = malloc(plen + 2 + 64)) == NULL) {
            free(low);
            return NULL;
        }
        for (i = 0; fold && i < n; i++)
            low[i] = (char)tolower((unsigned char)low[i]);
        SHA256((const unsigned char *)low, n, md);
        free(low);
        memcpy(id, prefix, plen);
        id[plen] = '#';
        for (i = 0; i < sizeof(md); i++)
            sprintf(id + plen + 1 + 2 * i, "%02x", md[i]);
        return id;
    }
}

typedef struct embed_num_s {
    uint64_t n;
    int bad;
} embed_num_t;

static void
embed_count_found(void *arg, const char *data, size_t len)
{
    embed_num_t *r = arg;
    size_t i;

    r->n = 0;
    r->bad = len == 0 || len > 19;
    for (i = 0; i < len && !r->bad; i++) {
        if (data[i] < '0' || data[i] > '9')
            r->bad = 1;
        else
            r->n = r->n * 10 + (uint64_t)(data[i] - '0');
    }
}

/* The count in doc("count", id) into *n; 0 when there is none. */
int
gw__api_count_get(const gw_storage_ops_t *ops, void *state, const char *id,
                uint64_t *n, gw_error_t *err)
{
    embed_num_t r = {0, 0};
    int rc = ops->doc_get(state, EMBED_COUNT_NS, id, embed_count_found, &r,
                          err);

    if (rc != GW_OK)
        return rc;
    if (r.bad)
        return gw_error_set(err, "the count %s/%s is not a number: repair or "
                            "remove it in the storage", EMBED_COUNT_NS, id);
    *n = r.n;
    return GW_OK;
}

int
gw__api_count_put(const gw_storage_ops_t *ops, void *state, const char *id,
                uint64_t n, gw_error_t *err)
{
    char b[24];

    snprintf(b, sizeof(b), "%llu", (unsigned long long)n);
    return ops->doc_put(state, EMBED_COUNT_NS, id, b, strlen(b), err);
}

/* Refuses the chart over a cap (409, counted by reason). */
static int
embed_refuse(embed_doc_t *e, const char *reason, const char *fmt, ...)
    GW_PRINTF(3, 4);

static int
embed_refuse(embed_doc_t *e, const char *reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->status = 409;
    gw__metrics_count("server", GW_COUNTER_DROPPED, reason, 1);
    return GW_OK;
}

static void
embed_alive(void *arg, const char *data, size_t len)
{
    json_t *doc = json_loadb(data, len, 0, NULL);

    *(int *)arg = json_is_object(doc) &&
                  !json_is_true(json_object_get(doc, "deleted"));
    json_decref(doc);
}

/* When the project's list of shared charts holds one with e's key that is
 * still there, e becomes that chart (e->reused). An entry whose chart is
 * gone is dropped from index (stored with the next chart). */
static int
embed_reuse(const gw_storage_ops_t *ops, void *state, embed_doc_t *e,
            json_t *index, gw_error_t *err)
{
    long at = gw__api_embed_index_find(index, "key", e->key);
    const char *id;
    char *copy;
    int alive = 0, rc;

    if (at < 0)
        return GW_OK;
    id = json_string_value(json_object_get(json_array_get(index, (size_t)at),
                                           "id"));
    if (id == NULL || !gw__api_embed_id_ok(id, strlen(id))) {
        json_array_remove(index, (size_t)at);
        return GW_OK;
    }
    rc = ops->doc_get(state, e->ns, id, embed_alive, &alive, err);
    if (rc != GW_OK || !alive) {
        if (rc == GW_OK)
            json_array_remove(index, (size_t)at);
        return rc;
    }
    if ((copy = strdup(id)) == NULL)
        return gw_error_set(err, "out of memory");
    free(e->id);
    e->id = copy;
    embed_links(e, copy, json_string_value(json_object_get(
                             json_array_get(index, (size_t)at), "name")), 1);
    e->reused = 1;
    return GW_OK;
}

/* The entry of e's chart in its project's list. */
static json_t *
embed_entry(const embed_doc_t *e)
{
    json_t *doc = json_loadb(e->data, e->len, 0, NULL);
    json_t *entry = json_pack("{s:s, s:O?, s:O?, s:O?, s:s}", "id", e->id,
                              "name", json_object_get(doc, "name"), "created",
                              json_object_get(doc, "created"), "created_by",
                              json_object_get(doc, "created_by"), "key",
                              e->key);

    json_decref(doc);
    return entry;
}

/* Stores a new chart within the caps, and lists it (on the storage
 * thread). The counts are raised before the chart is stored and put back
 * if storing it or its entry in the list fails, so a failure leaves at
 * worst a count one too high (a cap never lets a chart more through) or an
 * unlisted chart whose id no one was given, never a chart that is not
 * counted. */
static int
embed_store(const gw_storage_ops_t *ops, void *state, embed_doc_t *e,
            json_t *index, gw_error_t *err)
{
    uint64_t np = 0, nu = 0;
    gw_error_t undo;
    int rc;

    rc = gw__api_count_get(ops, state, e->count_project, &np, err);
    if (rc == GW_OK && e->count_user != NULL)
        rc = gw__api_count_get(ops, state, e->count_user, &nu, err);
    if (rc != GW_OK)
        return rc;
    if (np >= e->max_project)
        return embed_refuse(e, "max_embeds_per_project",
                            "project \"%s\" has %llu embedded charts, as many "
                            "as MAX_EMBEDS_PER_PROJECT (%llu) allows",
                            e->project, (unsigned long long)np,
                            (unsigned long long)e->max_project);
    if (e->count_user != NULL && nu >= e->max_user)
        return embed_refuse(e, "max_embeds_per_user",
                            "%s has created %llu embedded charts, as many as "
                            "MAX_EMBEDS_PER_USER (%llu) allows",
                            e->user, (unsigned long long)nu,
                            (unsigned long long)e->max_user);
    rc = gw__api_count_put(ops, state, e->count_project, np + 1, err);
    if (rc == GW_OK && e->count_user != NULL) {
        rc = gw__api_count_put(ops, state, e->count_user, nu + 1, err);
        if (rc != GW_OK)
            gw__api_count_put(ops, state, e->count_project, np, &undo);
    }
    if (rc != GW_OK)
        return rc;
    rc = ops->doc_put(state, e->ns, e->id, e->data, e->len, err);
    if (rc == GW_OK) {
        rc = json_array_append_new(index, embed_entry(e)) == 0
                 ? gw__api_embed_index_put(ops, state, e->project, index, err)
                 : gw_error_set(err, "out of memory");
    }
    if (rc != GW_OK) {
        gw__api_count_put(ops, state, e->count_project, np, &undo);
        if (e->count_user != NULL)
            gw__api_count_put(ops, state, e->count_user, nu, &undo);
    }
    return rc;
}

static int
embed_create_job(const gw_storage_ops_t *ops, void *state, void *arg,
                 gw_error_t *err)
{
    embed_doc_t *e = arg;
    json_t *index = NULL;
    int rc = gw__api_embed_index_get(ops, state, e->project, &index, err);

    if (rc == GW_OK)
        rc = embed_reuse(ops, state, e, index, err);
    if (rc == GW_OK && !e->reused)
        rc = embed_store(ops, state, e, index, err);
    json_decref(index);
    return rc;
}

/* The range a .json asks for: the period (the query's or the chart's) and
 * its buckets. */
typedef struct embed_range_s {
    gw_period_t period;
    int64_t from, to;
    size_t npoints;
} embed_range_t;

/* Decides the range; GW_ERR with e->status and e->msg set for the answer
 * (500 for a damaged chart, 400 for a bad period or range). */
static int
embed_series_range(embed_doc_t *e, json_t *doc, const char *project,
                   json_t *metrics, embed_range_t *r)
{
    const char *period_s =
        e->q_period ? e->q_period
                    : json_string_value(json_object_get(doc, "period"));
    gw_error_t perr;

    if (project == NULL || !json_is_array(metrics)) {
        e->status = 500;
        snprintf(e->msg, sizeof(e->msg), "embedded chart %s is damaged", e->id);
        return GW_ERR;
    }
    if (gw__api_period(period_s, e->periods, &r->period, &perr) != GW_OK ||
        gw__api_range(e->q_from, e->q_to, r->period, e->now, e->max_points,
                      e->periods, e->retention, &r->from, &r->to,
                      &r->npoints, &perr) != GW_OK) {
        e->status = 400;
        snprintf(e->msg, sizeof(e->msg), "%s", perr.msg);
        return GW_ERR;
    }
    return GW_OK;
}

/* Reads one metric of the chart into list (and its name into names);
 * entries without a metric_name are skipped. */
static int
embed_series_one(const gw_storage_ops_t *ops, void *state, const char *project,
                 json_t *m, json_t *kinds, const embed_range_t *r,
                 const int64_t *buckets, double *vals, json_t *list,
                 json_t *names, gw_error_t *err)
{
    gw_query_t q;
    gw_kind_t kind = 0;
    json_t *one;
    int rc;

    memset(&q, 0, sizeof(q));
    q.project = project;
    q.metric = json_string_value(json_object_get(m, "metric_name"));
    q.filter_name = json_string_value(json_object_get(m, "filter_name"));
    q.filter_value = json_string_value(json_object_get(m, "filter_value"));
    if (q.metric == NULL)
        return GW_OK;
    if (q.filter_name == NULL || q.filter_value == NULL)
        q.filter_name = q.filter_value = NULL;
    memset(vals, 0, r->npoints * sizeof(double));
    kind = (gw_kind_t)json_integer_value(json_object_get(kinds, q.metric));
    rc = GW_OK;
    if (kind != 0) {
        q.kind = kind;
        q.period = r->period;
        q.from = r->from;
        q.to = r->to;
        rc = gw__api_series(ops, state, &q, NULL, buckets, r->npoints, vals,
                            err);
    }
    if (rc != GW_OK)
        return rc;
    one = json_pack("{s:s, s:o, s:o}", "name", q.metric, "filter_name",
                    q.filter_name ? json_string(q.filter_name) : json_null(),
                    "filter_value",
                    q.filter_value ? json_string(q.filter_value) : json_null());
    gw__api_series_json(one, buckets, vals, r->npoints);
    json_array_append_new(list, one);
    json_array_append_new(names, json_string(q.metric));
    return GW_OK;
}

/* Sets e->out, the .json answer, from the series read (list, stolen). */
static void
embed_series_out(embed_doc_t *e, json_t *doc, const char *project,
                 const char *renderer, const embed_range_t *r, json_t *list,
                 json_t *names)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    char joined[1024] = "";
    char fd[32], td[32];
    size_t k;
    json_t *n;

    if (name == NULL || name[0] == '\0')
        name = e->q_name;
    if (name == NULL || name[0] == '\0') {
        json_array_foreach(names, k, n)
            snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined),
                     "%s%s", k ? " | " : "", json_string_value(n));
        name = joined;
    }
    fd[0] = td[0] = '\0';
    {
        time_t a = (time_t)r->from, b = (time_t)r->to;
        struct tm ta, tb;
        const char *fmt =
            r->period <= GW_PERIOD_HOUR ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d";

        gmtime_r(&a, &ta);
        gmtime_r(&b, &tb);
        strftime(fd, sizeof(fd), fmt, &ta);
        strftime(td, sizeof(td), fmt, &tb);
    }
    e->out =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "project",
                  project, "renderer", renderer, "period",
                  gw_period_name(r->period), "from_date", fd, "to_date", td,
                  "metrics", list, "name", name, "generator", "GottWall");
}

/* Reads the chart's series (on the storage thread). */
static int
embed_series(const gw_storage_ops_t *ops, void *state, embed_doc_t *e,
             json_t *doc, gw_error_t *err)
{
    const char *project = json_string_value(json_object_get(doc, "project"));
    const char *renderer = e->q_renderer;
    json_t *metrics = json_object_get(doc, "metrics"), *m, *list, *names;
    json_t *kinds = NULL;
    embed_range_t r;
    int64_t *buckets;
    size_t i;
    double *vals;
    int rc;

    if (embed_series_range(e, doc, project, metrics, &r) != GW_OK)
        return GW_OK;
    if (renderer == NULL || !embed_renderer_ok(renderer))
        renderer = json_string_value(json_object_get(doc, "renderer"));
    if (renderer == NULL)
        renderer = "line";
    buckets = gw__api_buckets(r.period, r.from, r.npoints);
    vals = calloc(r.npoints ? r.npoints : 1, sizeof(double));
    list = json_array();
    names = json_array();
    if (buckets == NULL || vals == NULL) {
        rc = gw_error_set(err, "out of memory");
        goto fail;
    }
    kinds = json_object();
    rc = gw__api_kinds(ops, state, project, kinds, err);
    if (rc != GW_OK)
        goto fail;
    json_array_foreach(metrics, i, m)
    {
        rc = embed_series_one(ops, state, project, m, kinds, &r, buckets, vals,
                              list, names, err);
        if (rc != GW_OK)
            goto fail;
    }
    embed_series_out(e, doc, project, renderer, &r, list, names);
    json_decref(kinds);
    json_decref(names);
    free(buckets);
    free(vals);
    return GW_OK;

fail:
    json_decref(kinds);
    json_decref(names);
    json_decref(list);
    free(buckets);
    free(vals);
    return rc;
}

static int
embed_get_job(const gw_storage_ops_t *ops, void *state, void *arg,
              gw_error_t *err)
{
    embed_doc_t *e = arg;
    json_t *doc;
    int rc;

    rc = ops->doc_get(state, e->ns, e->id, embed_doc_found, e, err);
    if (rc != GW_OK || !e->found)
        return rc;
    doc = json_loadb(e->data, e->len, 0, NULL);
    if (json_is_true(json_object_get(doc, "deleted"))) { /* api_shared.c */
        json_decref(doc);
        e->found = 0;
        return GW_OK;
    }
    if (json_is_string(json_object_get(doc, "created_by")))
        e->creator = strdup(
            json_string_value(json_object_get(doc, "created_by")));
    if (json_is_string(json_object_get(doc, "project")))
        e->doc_project =
            strdup(json_string_value(json_object_get(doc, "project")));
    if (e->mode != EMBED_JSON) {
        json_decref(doc);
        return GW_OK;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        e->status = 500;
        snprintf(e->msg, sizeof(e->msg), "embedded chart %s is damaged", e->id);
        return GW_OK;
    }
    rc = embed_series(ops, state, e, doc, err);
    json_decref(doc);
    return rc;
}

static void
embed_storage_error(gw_http_req_t *req, int rc, const gw_error_t *err)
{
    gw__api_errorf(req, rc == GW_AGAIN ? 503 : 500, "the storage %s: %s",
                   rc == GW_AGAIN ? "is unreachable" : "failed",
                   err && err->msg[0] ? err->msg : "unknown error");
}

/* The error page, framable as the chart's page is: it shows in the
 * frame of the site that embeds the chart. */
static void
embed_html_404(gw__api_t *api, gw_http_req_t *req, const char *id)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "There is no embedded chart %.200s: the link "
             "is wrong, or the chart is no longer shared.", id);
    gw__api_error_page(api, req, 404, "Chart not found", msg,
                       GW__API_EMBED_PAGE_HEADERS);
}

/* Whether a stored chart may still be served: its creator, when a user
 * made it, must still be in USERS and may see its project. Charts made
 * anonymously, with a project's keys, or before charts recorded their
 * creator have none. */
static int
embed_creator_ok(gw__api_t *api, const embed_doc_t *e)
{
    if (e->creator == NULL || strcmp(e->creator, "anonymous") == 0)
        return 1;
    return gw__api_user_may_see(gw__api_cfg(api), e->creator,
                                e->doc_project ? e->doc_project : "");
}

static void
embed_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    embed_doc_t *e = (embed_doc_t *)p;
    gw__api_t *api = p->api;
    char buf[2048];

    if (rc != GW_OK) {
        embed_storage_error(p->req, rc, err);
        return;
    }
    if (e->mode != EMBED_CREATE && e->found && !embed_creator_ok(api, e))
        e->found = 0; /* answered as a chart that does not exist */
    switch (e->mode) {
    case EMBED_CREATE:
        if (e->status != 0) {
            gw__api_errorf(p->req, e->status, "%s", e->msg);
            return;
        }
        gw__log_info("server: embedded chart %s %s", e->id,
                     e->reused ? "shared again (an identical one)" : "created");
        gw__api_json(p->req, 200, json_incref(e->reply));
        return;
    default:
        break;
    }
    if (!e->found) {
        if (e->mode == EMBED_HTML) {
            embed_html_404(api, p->req, e->id);
        } else if (e->mode == EMBED_JS) {
            snprintf(buf, sizeof(buf), "/* GottWall: no embedded chart %s */\n",
                     e->id);
            gw__http_respond(p->req, 404,
                             "application/javascript; charset=utf-8", NULL, buf,
                             strlen(buf));
        } else {
            gw__api_errorf(p->req, 404, "no embedded chart \"%s\"", e->id);
        }
        return;
    }
    if (e->mode == EMBED_JSON) {
        if (e->status != 0) {
            gw__api_errorf(p->req, e->status, "%s", e->msg);
            return;
        }
        {
            char *text = json_dumps(e->out, JSON_COMPACT | JSON_ENSURE_ASCII);

            if (text == NULL) {
                gw__http_error(p->req, 500, "out of memory");
                return;
            }
            gw__http_respond(p->req, 200, "application/json",
                             "Cache-Control: no-store\r\n"
                             "Access-Control-Allow-Origin: *\r\n",
                             text, strlen(text));
            free(text);
        }
        return;
    }
    if (e->mode == EMBED_HTML) {
        /* The page fills its frame (or window): embed.js sizes the chart. */
        json_t *doc = json_loadb(e->data, e->len, 0, NULL);
        const char *title = json_string_value(json_object_get(doc, "name"));
        const char *vars[] = {"prefix", gw__api_cfg(api)->prefix,
                              "id",     e->id,
                              "title",  title ? title : "GottWall chart",
                              NULL,     NULL};

        gw__api_page(api, p->req, 200, "embed.html", vars,
                     GW__API_EMBED_PAGE_HEADERS);
        json_decref(doc);
        return;
    }
    {
        json_t *doc = json_loadb(e->data, e->len, 0, NULL);
        gw__api_embed_frame_t f = {
            .base_url = e->base_url, .id = e->id,
            .name = json_string_value(json_object_get(doc, "name")),
            .width = e->width, .height = e->height,
            .query = {e->q_from, e->q_to, e->q_period, e->q_renderer,
                      e->q_name}};

        gw__api_embed_js(p->req, &f);
        json_decref(doc);
    }
}

/* ---- POST {project}/embedded/ ---- */

/* The chart's own fields: name (NULL if absent), renderer ("stack" read as
 * "stacked", "line" if absent) and period. Answers 400 and returns GW_ERR
 * when one is wrong. */
static int
embed_check_chart(gw_http_req_t *req, json_t *in, unsigned periods,
                  const char **name, const char **renderer, gw_period_t *period)
{
    const char *period_s;
    gw_error_t err;

    if (embed_str(in, "name", name, 0) != GW_OK) {
        gw__http_error(req, 400, "\"name\" must be a string of 1..255 bytes");
        return GW_ERR;
    }
    if (embed_str(in, "renderer", renderer, 0) != GW_OK ||
        (*renderer != NULL && strcmp(*renderer, "stack") != 0 &&
         !embed_renderer_ok(*renderer))) {
        gw__http_error(req, 400,
                       "\"renderer\" must be one of line, area, "
                       "bar, stacked");
        return GW_ERR;
    }
    if (*renderer == NULL)
        *renderer = "line";
    else if (strcmp(*renderer, "stack") == 0)
        *renderer = "stacked";
    if (embed_str(in, "period", &period_s, 1) != GW_OK) {
        gw__http_error(req, 400,
                       "\"period\" is required (minute, hour, "
                       "day, week, month, year or all)");
        return GW_ERR;
    }
    if (gw__api_period(period_s, periods, period, &err) != GW_OK) {
        gw__http_error(req, 400, err.msg);
        return GW_ERR;
    }
    return GW_OK;
}

/* Checks metrics[i] and appends its clean form {metric_name, filter_name,
 * filter_value} (null filters when none) to clean; answers 400 and returns
 * GW_ERR when it is wrong. */
static int
embed_check_metric(gw_http_req_t *req, size_t i, json_t *m, json_t *clean)
{
    const char *mn, *fn, *fv;

    if (!json_is_object(m) || embed_str(m, "metric_name", &mn, 1) != GW_OK) {
        gw__api_errorf(req, 400,
                       "metrics[%zu]: \"metric_name\" is "
                       "required (a string of 1..255 bytes)",
                       i);
        return GW_ERR;
    }
    /* The original UI sends "" for "no filter". */
    if (json_is_string(json_object_get(m, "filter_name")) &&
        json_string_length(json_object_get(m, "filter_name")) == 0 &&
        (json_object_get(m, "filter_value") == NULL ||
         json_is_null(json_object_get(m, "filter_value")) ||
         (json_is_string(json_object_get(m, "filter_value")) &&
          json_string_length(json_object_get(m, "filter_value")) == 0))) {
        json_object_del(m, "filter_name");
        json_object_del(m, "filter_value");
    }
    if (embed_str(m, "filter_name", &fn, 0) != GW_OK ||
        (json_is_string(json_object_get(m, "filter_value")) == 0 &&
         json_object_get(m, "filter_value") != NULL &&
         !json_is_null(json_object_get(m, "filter_value")))) {
        gw__api_errorf(req, 400,
                       "metrics[%zu]: \"filter_name\" and "
                       "\"filter_value\" must be strings",
                       i);
        return GW_ERR;
    }
    fv = json_string_value(json_object_get(m, "filter_value"));
    if ((fn == NULL) != (fv == NULL)) {
        gw__api_errorf(req, 400,
                       "metrics[%zu]: give both "
                       "\"filter_name\" and \"filter_value\", "
                       "or neither",
                       i);
        return GW_ERR;
    }
    json_array_append_new(
        clean, json_pack("{s:s, s:o, s:o}", "metric_name", mn, "filter_name",
                         fn ? json_string(fn) : json_null(), "filter_value",
                         fv ? json_string(fv) : json_null()));
    return GW_OK;
}

/* The clean list of the body's metrics (1..EMBED_MAX_METRICS of them) into
 * *clean (the caller frees it); answers 400 and returns GW_ERR when one is
 * wrong. */
static int
embed_check_metrics(gw_http_req_t *req, json_t *in, json_t **clean)
{
    json_t *metrics = json_object_get(in, "metrics"), *m;
    size_t i;

    if (!json_is_array(metrics) || json_array_size(metrics) == 0 ||
        json_array_size(metrics) > EMBED_MAX_METRICS) {
        gw__api_errorf(req, 400,
                       "\"metrics\" must be a list of 1..%d "
                       "objects {\"metric_name\", \"filter_name\", "
                       "\"filter_value\"}",
                       EMBED_MAX_METRICS);
        return GW_ERR;
    }
    *clean = json_array();
    json_array_foreach(metrics, i, m)
    {
        if (embed_check_metric(req, i, m, *clean) != GW_OK)
            return GW_ERR;
    }
    return GW_OK;
}

/* The creator (NULL for a project's keys) as a chart records it. */
static const char *
embed_creator(const gw__api_who_t *who)
{
    if (who->key_project != NULL || who->user[0] == '\0')
        return NULL;
    return who->user;
}

/* e's counts and caps for a chart of project made by who; GW_ERR when out
 * of memory. */
static int
embed_create_counts(embed_doc_t *e, const gw__config_t *cfg,
                    const char *project, const gw__api_who_t *who)
{
    const char *user = embed_creator(who);

    e->max_project = cfg->max_embeds_per_project;
    e->max_user = cfg->max_embeds_per_user;
    e->project = strdup(project);
    e->count_project = gw__api_doc_id("embedded:project:", project, 0);
    if (e->project == NULL || e->count_project == NULL)
        return GW_ERR;
    if (user == NULL)
        return GW_OK;
    e->user = strdup(user);
    e->count_user = gw__api_doc_id("embedded:user:", user, 1);
    return e->user != NULL && e->count_user != NULL ? GW_OK : GW_ERR;
}

/* The chart as stored: the clean definition, when and by whom it was
 * made. */
static char *
embed_doc_text(const char *project, const char *name, const char *renderer,
               gw_period_t period, json_t *clean, const gw__api_who_t *who)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I}", "project",
                            project, "name", name ? name : "", "renderer",
                            renderer, "period", gw_period_name(period),
                            "metrics", clean, "created",
                            (json_int_t)time(NULL));
    char *text;

    if (doc != NULL && embed_creator(who) != NULL)
        json_object_set_new(doc, "created_by",
                            json_string(embed_creator(who)));
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

void
gw__api_embedded_create(gw__api_t *api, gw_http_req_t *req, const char *project,
                        const gw__api_who_t *who)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    size_t blen = 0;
    const char *body = gw__http_body(req, &blen);
    json_error_t jerr;
    json_t *in = json_loadb(body ? body : "", blen, 0, &jerr);
    json_t *clean = NULL;
    const char *name, *renderer;
    gw_period_t period;
    embed_doc_t *e;
    char id[37];

    if (!json_is_object(in)) {
        gw__api_errorf(req, 400, "the body must be a JSON object: %s",
                       in ? "got another JSON value" : jerr.text);
        goto out;
    }
    if (embed_check_chart(req, in, cfg->periods, &name, &renderer, &period) !=
            GW_OK ||
        embed_check_metrics(req, in, &clean) != GW_OK)
        goto out;
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        gw__http_error(req, 500, "out of memory");
        goto out;
    }
    if (gw__api_embed_base(api, req, e->base_url, sizeof(e->base_url)) != GW_OK) {
        free(e);
        gw__http_error(req, 400,
                       "the Host header is missing or not a "
                       "host name: links cannot be built");
        goto out;
    }
    embed_uuid(id);
    e->base.req = req;
    e->base.finish = embed_finish;
    e->base.release = embed_doc_release;
    e->mode = EMBED_CREATE;
    e->ns = "embedded";
    e->id = strdup(id);
    e->data = embed_doc_text(project, name, renderer, period, clean, who);
    e->len = e->data ? strlen(e->data) : 0;
    embed_links(e, id, name, 0);
    e->key = gw__api_embed_key(e->data ? e->data : "");
    if (e->id == NULL || e->data == NULL || e->reply == NULL || e->key == NULL ||
        embed_create_counts(e, cfg, project, who) != GW_OK) {
        embed_doc_release(&e->base);
        gw__http_error(req, 500, "out of memory");
        goto out;
    }
    if (e->len > cfg->max_document_bytes) {
        gw__metrics_count("server", GW_COUNTER_DROPPED, "max_document_size", 1);
        gw__api_errorf(req, 413,
                       "the embedded chart is %zu bytes as stored, more "
                       "than MAX_DOCUMENT_SIZE (%zu) allows",
                       e->len, cfg->max_document_bytes);
        embed_doc_release(&e->base);
        goto out;
    }
    gw__api_submit(api, &e->base, embed_create_job);
out:
    json_decref(clean);
    json_decref(in);
}

/* ---- GET embedded/{id}.json|.html|.js ---- */

static char *
embed_param(gw_http_req_t *req, const char *name)
{
    char *v = gw__http_query_param(gw__http_query(req), name);

    if (v != NULL && v[0] == '\0') {
        free(v);
        return NULL;
    }
    return v;
}

/* width and height: 50..4000 pixels, digits only. */
static char *
embed_dim(gw_http_req_t *req, const char *name)
{
    char *v = embed_param(req, name);

    if (v != NULL && (strspn(v, "0123456789") != strlen(v) || strlen(v) > 4 ||
                      atoi(v) < 50 || atoi(v) > 4000)) {
        free(v);
        return NULL;
    }
    return v;
}

void
gw__api_embedded_get(gw__api_t *api, gw_http_req_t *req, const char *file)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    const char *dot = strrchr(file, '.');
    embed_doc_t *e;
    int mode;

    mode = strcmp(dot, ".json") == 0   ? EMBED_JSON
           : strcmp(dot, ".html") == 0 ? EMBED_HTML
                                       : EMBED_JS;
    if (!gw__api_embed_id_ok(file, (size_t)(dot - file))) {
        char id[256];

        snprintf(id, sizeof(id), "%.*s", (int)(dot - file), file);
        if (mode == EMBED_HTML)
            embed_html_404(api, req, id);
        else
            gw__api_errorf(req, 404, "no embedded chart \"%.*s\"",
                           (int)(dot - file), file);
        return;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->id = strndup(file, (size_t)(dot - file))) == NULL) {
        free(e);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    e->base.req = req;
    e->base.finish = embed_finish;
    e->base.release = embed_doc_release;
    e->mode = mode;
    e->ns = "embedded";
    e->periods = cfg->periods;
    e->max_points = cfg->max_points;
    memcpy(e->retention, cfg->retention, sizeof(e->retention));
    e->now = (int64_t)time(NULL);
    e->q_period = embed_param(req, "period");
    e->q_from = embed_param(req, "from_date");
    e->q_to = embed_param(req, "to_date");
    e->q_name = embed_param(req, "name");
    e->q_renderer = embed_param(req, "renderer");
    e->width = embed_dim(req, "width");
    e->height = embed_dim(req, "height");
    if (mode == EMBED_JS &&
        gw__api_embed_base(api, req, e->base_url, sizeof(e->base_url)) != GW_OK) {
        embed_doc_release(&e->base);
        gw__http_error(req, 400,
                       "the Host header is missing or not a "
                       "host name");
        return;
    }
    gw__api_submit(api, &e->base, embed_get_job);
}
