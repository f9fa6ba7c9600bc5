/*
 * server/api_shared.c: the list of a project's shared (embedded) charts
 * (docs/api.md), so that Share reuses an identical chart rather than
 * storing one more at every click, and a user sees and deletes what was
 * shared.
 *
 *   GET    {PREFIX}/api/v1/{project}/embedded/      {"charts": [...]},
 *          newest first, each with its links
 *   DELETE {PREFIX}/api/v1/{project}/embedded/{id}  {"deleted": id}
 *
 * Storage: doc("embedded-index", "project:NAME") is a JSON array of
 * {"id", "name", "created", "created_by", "key"}, oldest first; key is the
 * SHA-256 of the chart's definition and creator (gw__api_embed_key), so
 * that creating a chart whose key is listed answers the listed one. The
 * index is read and written on the storage thread in the same job as the
 * chart and its counts (api_embed.c), one job at a time per process.
 * Charts made before the index existed are not listed but are still
 * served, and can be deleted by id. A deleted chart's document is removed
 * (doc_del, ABI 1.6, compared with what was read, so that of two
 * processes deleting it at once only one gives its places back; with an
 * older storage it becomes {"deleted": true, "project": ...}): its links
 * answer 404, and its place under MAX_EMBEDS_PER_PROJECT and
 * MAX_EMBEDS_PER_USER is given back.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "base/log.h"
#include "net/http.h"

#define INDEX_NS "embedded-index"
#define CHART_NS "embedded"

/* ---- The index (storage thread) ---- */

static void
index_found(void *arg, const char *data, size_t len)
{
    json_t **out = arg;

    json_decref(*out);
    *out = json_loadb(data, len, 0, NULL);
    if (*out == NULL)
        *out = json_null(); /* damaged: told apart from "none" */
}

int
gw__api_embed_index_get(const gw_storage_ops_t *ops, void *state,
                        const char *project, json_t **index, gw_error_t *err)
{
    char *id = gw__api_doc_id("project:", project, 0);
    json_t *doc = NULL;
    int rc;

    *index = NULL;
    if (id == NULL)
        return gw_error_set(err, "out of memory");
    rc = ops->doc_get(state, INDEX_NS, id, index_found, &doc, err);
    if (rc == GW_OK && doc == NULL)
        doc = json_array();
    if (rc == GW_OK && !json_is_array(doc))
        rc = gw_error_set(err, "the list of shared charts %s/%s is damaged: "
                          "repair or remove it in the storage", INDEX_NS, id);
    free(id);
    if (rc != GW_OK) {
        json_decref(doc);
        return rc;
    }
    *index = doc;
    return GW_OK;
}

int
gw__api_embed_index_put(const gw_storage_ops_t *ops, void *state,
                        const char *project, json_t *index, gw_error_t *err)
{
    char *id = gw__api_doc_id("project:", project, 0);
    char *text = json_dumps(index, JSON_COMPACT);
    int rc;

    rc = id && text ? ops->doc_put(state, INDEX_NS, id, text, strlen(text),
                                   err)
                    : gw_error_set(err, "out of memory");
    free(id);
    free(text);
    return rc;
}

/* The position in index of the entry whose field is value, or -1. */
long
gw__api_embed_index_find(json_t *index, const char *field, const char *value)
{
    size_t i;
    json_t *v;

    json_array_foreach(index, i, v) {
        const char *s = json_string_value(json_object_get(v, field));

        if (s != NULL && strcmp(s, value) == 0)
            return (long)i;
    }
    return -1;
}

/* The SHA-256 in hex of the stored chart text without "created": what
 * makes two charts the same (their project, name, renderer, period,
 * metrics and creator). NULL when out of memory or not a chart. */
char *
gw__api_embed_key(const char *doc_text)
{
    json_t *doc = json_loads(doc_text, 0, NULL);
    unsigned char md[SHA256_DIGEST_LENGTH];
    char *canon, *hex = NULL;
    size_t i;

    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    json_object_del(doc, "created");
    canon = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (canon != NULL && (hex = malloc(2 * sizeof(md) + 1)) != NULL) {
        SHA256((const unsigned char *)canon, strlen(canon), md);
        for (i = 0; i < sizeof(md); i++)
            sprintf(hex + 2 * i, "%02x", md[i]);
    }
    free(canon);
    return hex;
}

/* ---- List and delete ---- */

typedef struct shared_s {
    gw__api_pending_t base;
    char *project;
    char id[37];       /* DELETE */
    char base_url[600];
    int status;        /* 0: answer out */
    json_t *out;
} shared_t;

static void
shared_release(gw__api_pending_t *p)
{
    shared_t *s = (shared_t *)p;

    free(s->project);
    json_decref(s->out);
    free(s);
}

static int
shared_list_job(const gw_storage_ops_t *ops, void *state, void *arg,
                gw_error_t *err)
{
    shared_t *s = arg;
    json_t *index, *charts = json_array(), *v, *links;
    size_t i;
    int rc = gw__api_embed_index_get(ops, state, s->project, &index, err);

    if (rc != GW_OK) {
        json_decref(charts);
        return rc;
    }
    for (i = json_array_size(index); i-- > 0;) {
        const char *id;

        v = json_array_get(index, i);
        id = json_string_value(json_object_get(v, "id"));
        if (id == NULL)
            continue;
        v = json_deep_copy(v);
        json_object_del(v, "key");
        links = gw__api_embed_links(s->base_url, id,
                                    json_string_value(json_object_get(v, "name")));
        json_object_update(v, links);
        json_decref(links);
        json_array_append_new(charts, v);
    }
    json_decref(index);
    s->out = json_pack("{s:o}", "charts", charts);
    return GW_OK;
}

typedef struct shared_chart_s {
    json_t *doc;
    char *data; /* the bytes read, for doc_del */
    size_t len;
} shared_chart_t;

static void
shared_chart_found(void *arg, const char *data, size_t len)
{
    shared_chart_t *c = arg;

    json_decref(c->doc);
    c->doc = json_loadb(data, len, 0, NULL);
    free(c->data);
    if ((c->data = malloc(len + 1)) != NULL)
        memcpy(c->data, data, len);
    c->len = len;
}

/* Gives back the chart's place in a count document (never below 0). */
static int
shared_uncount(const gw_storage_ops_t *ops, void *state, const char *prefix,
               const char *name, int fold, gw_error_t *err)
{
    char *id = gw__api_doc_id(prefix, name, fold);
    uint64_t n = 0;
    int rc;

    if (id == NULL)
        return gw_error_set(err, "out of memory");
    rc = gw__api_count_get(ops, state, id, &n, err);
    if (rc == GW_OK && n > 0)
        rc = gw__api_count_put(ops, state, id, n - 1, err);
    free(id);
    return rc;
}

/* The chart's document becomes a tombstone first: once that is stored,
 * its links answer 404 whatever happens after. A failure after it leaves
 * at worst a count one too high or a listed chart that answers 404, which
 * a second DELETE removes. */
static int
shared_delete_job(const gw_storage_ops_t *ops, void *state, void *arg,
                  gw_error_t *err)
{
    shared_t *s = arg;
    shared_chart_t c = {NULL, NULL, 0};
    json_t *index = NULL, *tomb;
    const char *project, *by;
    char *text;
    long at;
    int rc;

    rc = ops->doc_get(state, CHART_NS, s->id, shared_chart_found, &c, err);
    if (rc != GW_OK)
        return rc;
    project = json_string_value(json_object_get(c.doc, "project"));
    if (project == NULL || strcmp(project, s->project) != 0 ||
        json_is_true(json_object_get(c.doc, "deleted"))) {
        json_decref(c.doc);
        free(c.data);
        s->status = 404;
        return GW_OK;
    }
    if (ops->doc_del != NULL) {
        /* Only what was read: of two processes deleting it at once, one
         * gives its places back. */
        rc = c.data ? ops->doc_del(state, CHART_NS, s->id, c.data, c.len, err)
                    : gw_error_set(err, "out of memory");
        if (rc == GW_CONFLICT) {
            json_decref(c.doc);
            free(c.data);
            s->status = 404;
            return GW_OK;
        }
    } else { /* a storage before ABI 1.6: a tombstone */
        tomb = json_pack("{s:b, s:s}", "deleted", 1, "project", s->project);
        text = tomb ? json_dumps(tomb, JSON_COMPACT) : NULL;
        json_decref(tomb);
        rc = text ? ops->doc_put(state, CHART_NS, s->id, text, strlen(text), err)
                  : gw_error_set(err, "out of memory");
        free(text);
    }
    by = json_string_value(json_object_get(c.doc, "created_by"));
    if (rc == GW_OK)
        rc = shared_uncount(ops, state, "embedded:project:", s->project, 0,
                            err);
    if (rc == GW_OK && by != NULL)
        rc = shared_uncount(ops, state, "embedded:user:", by, 1, err);
    json_decref(c.doc);
    free(c.data);
    if (rc == GW_OK)
        rc = gw__api_embed_index_get(ops, state, s->project, &index, err);
    if (rc == GW_OK &&
        (at = gw__api_embed_index_find(index, "id", s->id)) >= 0) {
        json_array_remove(index, (size_t)at);
        rc = gw__api_embed_index_put(ops, state, s->project, index, err);
    }
    json_decref(index);
    if (rc == GW_OK)
        s->out = json_pack("{s:s}", "deleted", s->id);
    return rc;
}

static void
shared_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    shared_t *s = (shared_t *)p;

    if (rc != GW_OK) {
        gw__api_errorf(p->req, rc == GW_AGAIN ? 503 : 500, "the storage %s: %s",
                       rc == GW_AGAIN ? "is unreachable" : "failed",
                       err && err->msg[0] ? err->msg : "unknown error");
    } else if (s->status == 404) {
        gw__api_errorf(p->req, 404, "no embedded chart \"%s\" in project \"%s\"",
                       s->id, s->project);
    } else if (s->out == NULL) {
        gw__http_error(p->req, 500, "out of memory");
    } else {
        if (s->id[0] != '\0')
            gw__log_info("server: embedded chart %s deleted", s->id);
        gw__api_json(p->req, 200, json_incref(s->out));
    }
}

/* GET (id NULL) or DELETE {project}/embedded/{id}, for a request already
 * let in and allowed to see project. */
void
gw__api_embedded_shared(gw__api_t *api, gw_http_req_t *req,
                        const char *project, const char *id)
{
    shared_t *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->project = strdup(project)) == NULL) {
        free(s);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    s->base.req = req;
    s->base.finish = shared_finish;
    s->base.release = shared_release;
    if (id != NULL) {
        snprintf(s->id, sizeof(s->id), "%s", id);
        gw__api_submit(api, &s->base, shared_delete_job);
        return;
    }
    if (gw__api_embed_base(api, req, s->base_url, sizeof(s->base_url)) !=
        GW_OK) {
        shared_release(&s->base);
        gw__http_error(req, 400,
                       "the Host header is missing or not a host name: "
                       "links cannot be built");
        return;
    }
    gw__api_submit(api, &s->base, shared_list_job);
}
