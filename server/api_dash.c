/*
 * server/api_dash.c: the users' named dashboards (SPEC §8, docs/api.md),
 * saved with revisions so that a stale tab cannot overwrite a newer save.
 *
 *   GET    {PREFIX}/api/v1/dashboards         the user's list and default
 *   PUT    {PREFIX}/api/v1/dashboards         {"default": name}
 *   GET    {PREFIX}/api/v1/dashboards/{name}  {"name", "revision", "doc"}
 *   PUT    {PREFIX}/api/v1/dashboards/{name}  {"revision", "doc"}: 200, or
 *          409 with the stored revision and doc when revision is stale
 *   DELETE {PREFIX}/api/v1/dashboards/{name}
 *   GET/PUT {PREFIX}/api/v1/dashboard         the default's doc (the page
 *          before named dashboards; a PUT there always wins)
 *
 * Storage documents (ns "dashboards"): id "<user>" holds the user's index
 * {"default": name or null, "names": [...]}; id "<user>\n<name>" (or "#"
 * and its SHA-256 when longer than 255 bytes) holds {"revision": N,
 * "doc": {...}}, or {"revision": N, "deleted": true} once deleted, so a
 * revision is never given twice. A user's first request moves the
 * document of the single dashboard of before (doc("dashboard", user))
 * into one named "Main".
 *
 * Every read, compare and write of a request runs in one job on the
 * storage thread, and every write is a compare-and-set (doc_cas, ABI 1.6)
 * against the bytes that job read: when another process sharing the
 * storage wrote in between, the job starts over from its reads (at most
 * DASH_ATTEMPTS times), so a stale save is answered 409 and no write of
 * another process is lost, whichever server each tab talks to. A storage
 * built before 1.6 has no doc_cas: the job then compares and writes with
 * doc_get and doc_put, which is safe within one process only (the calls
 * into an instance are serialised).
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/http.h"

#define DASH_NS "dashboards"
#define DASH_LEGACY_NS "dashboard"
#define DASH_MAX_PER_USER 100
#define DASH_NAME_MAX 64
#define DASH_FIRST "Main"
#define DASH_ATTEMPTS 8

/* What a job read of the documents it may write, to compare-and-set them
 * against. */
typedef struct dash_seen_s {
    struct dash_seen_s *next;
    char *id;
    char *data; /* NULL: there was none */
    size_t len;
} dash_seen_t;

typedef struct dash_ctx_s {
    const gw_storage_ops_t *ops;
    void *state;
    dash_seen_t *seen;
} dash_ctx_t;

enum { D_LIST, D_DEFAULT, D_GET, D_PUT, D_DELETE, D_LEGACY_GET, D_LEGACY_PUT };

typedef struct dash_s {
    gw__api_pending_t base;
    int op;
    char *user;
    char *name;        /* D_GET, D_PUT, D_DELETE, D_DEFAULT */
    json_t *doc;       /* D_PUT, D_LEGACY_PUT: what to store */
    json_int_t rev;    /* D_PUT: the revision the client read */
    size_t max_bytes;  /* MAX_DOCUMENT_SIZE */
    int status;        /* the answer's, decided on the storage thread */
    json_t *out;       /* its body */
} dash_t;

static void
dash_release(gw__api_pending_t *p)
{
    dash_t *d = (dash_t *)p;

    free(d->user);
    free(d->name);
    json_decref(d->doc);
    json_decref(d->out);
    free(d);
}

/* ---- Storage-thread helpers ---- */

typedef struct dash_found_s {
    json_t **out;
    dash_seen_t *seen; /* NULL: not to be written */
} dash_found_t;

static void
dash_found(void *arg, const char *data, size_t len)
{
    dash_found_t *f = arg;

    json_decref(*f->out);
    *f->out = json_loadb(data, len, 0, NULL);
    if (f->seen != NULL && (f->seen->data = malloc(len + 1)) != NULL) {
        memcpy(f->seen->data, data, len);
        f->seen->len = len;
    }
}

static dash_seen_t *
dash_seen(dash_ctx_t *c, const char *id)
{
    dash_seen_t *e;

    for (e = c->seen; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static void
dash_seen_clear(dash_ctx_t *c)
{
    while (c->seen != NULL) {
        dash_seen_t *e = c->seen;

        c->seen = e->next;
        free(e->id);
        free(e->data);
        free(e);
    }
}

/* The document ns/id as JSON into *out (NULL: none, or not JSON); what a
 * document of DASH_NS held is remembered for dash_write. */
static int
dash_read(dash_ctx_t *c, const char *ns, const char *id, json_t **out,
          gw_error_t *err)
{
    dash_found_t f = {out, NULL};
    int rc;

    *out = NULL;
    if (strcmp(ns, DASH_NS) == 0 && dash_seen(c, id) == NULL) {
        if ((f.seen = calloc(1, sizeof(*f.seen))) == NULL ||
            (f.seen->id = strdup(id)) == NULL) {
            free(f.seen);
            return gw_error_set(err, "out of memory");
        }
        f.seen->next = c->seen;
        c->seen = f.seen;
    }
    rc = c->ops->doc_get(c->state, ns, id, dash_found, &f, err);
    if (rc == GW_OK && f.seen != NULL && *out != NULL && f.seen->data == NULL)
        rc = gw_error_set(err, "out of memory");
    return rc;
}

/* doc_cas, or for a storage before ABI 1.6 doc_get, compare and doc_put. */
static int
dash_cas(dash_ctx_t *c, const char *id, const dash_seen_t *was,
         const char *text, size_t len, gw_error_t *err)
{
    dash_seen_t now = {NULL, NULL, NULL, 0};
    json_t *ignored = NULL;
    dash_found_t f = {&ignored, &now};
    int rc, same;
    static int logged;

    if (c->ops->doc_cas != NULL)
        return c->ops->doc_cas(c->state, DASH_NS, id, was->data, was->len,
                               text, len, err);
    if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
        gw__log_warning("server: the storage has no doc_cas (plugin ABI 1.6): "
                        "a dashboard saved through two servers at once may "
                        "lose one of the saves; within this process none is");
    rc = c->ops->doc_get(c->state, DASH_NS, id, dash_found, &f, err);
    json_decref(ignored);
    same = (now.data == NULL) == (was->data == NULL) &&
           (was->data == NULL ||
            (now.len == was->len && memcmp(now.data, was->data, now.len) == 0));
    free(now.data);
    if (rc != GW_OK)
        return rc;
    if (!same)
        return GW_CONFLICT;
    return c->ops->doc_put(c->state, DASH_NS, id, text, len, err);
}

/* Writes v as id if id still holds what this job read of it. GW_CONFLICT:
 * it does not (another process wrote it); the job then starts over. */
static int
dash_write(dash_ctx_t *c, const char *id, json_t *v, gw_error_t *err)
{
    char *text = json_dumps(v, JSON_COMPACT);
    dash_seen_t *was = dash_seen(c, id);
    int rc;

    if (text == NULL)
        return gw_error_set(err, "out of memory");
    if (was == NULL) { /* never read (the move of the dashboard of before
                        * into "Main"): written only where there is none */
        dash_seen_t none = {NULL, NULL, NULL, 0};

        rc = dash_cas(c, id, &none, text, strlen(text), err);
    } else {
        rc = dash_cas(c, id, was, text, strlen(text), err);
    }
    if (rc == GW_OK && was != NULL) {
        free(was->data);
        was->data = text; /* what id holds now */
        was->len = strlen(text);
        return GW_OK;
    }
    free(text);
    return rc;
}

static char *
dash_id(const char *user, const char *name)
{
    size_t n = strlen(user) + 1 + strlen(name) + 1;
    char *key = malloc(n), *id;

    if (key == NULL)
        return NULL;
    snprintf(key, n, "%s\n%s", user, name);
    id = gw__api_doc_id("", key, 0);
    free(key);
    return id;
}

/* The user's index, made (and the dashboard of before moved into "Main")
 * when there is none. *index is a new reference. */
static int
dash_index(dash_ctx_t *c, const char *user,
           json_t **index, gw_error_t *err)
{
    json_t *legacy = NULL, *rec;
    char *id;
    int rc = dash_read(c, DASH_NS, user, index, err);

    if (rc != GW_OK)
        return rc;
    if (json_is_object(*index) && json_is_array(json_object_get(*index, "names")))
        return GW_OK;
    json_decref(*index);
    *index = json_pack("{s:n, s:[]}", "default", "names");
    if ((rc = dash_read(c, DASH_LEGACY_NS, user, &legacy, err)) != GW_OK)
        return rc;
    if (!json_is_object(legacy) || json_object_size(legacy) == 0) {
        json_decref(legacy);
        return GW_OK;
    }
    rec = json_pack("{s:i, s:o}", "revision", 1, "doc", legacy);
    id = dash_id(user, DASH_FIRST);
    rc = id ? dash_write(c, id, rec, err) : gw_error_set(err, "out of memory");
    free(id);
    json_decref(rec);
    if (rc != GW_OK)
        return rc;
    json_object_set_new(*index, "default", json_string(DASH_FIRST));
    json_array_append_new(json_object_get(*index, "names"), json_string(DASH_FIRST));
    gw__log_info("server: the dashboard of %s is now the named dashboard \"%s\"",
                 user, DASH_FIRST);
    return dash_write(c, user, *index, err);
}

static int
dash_listed(json_t *index, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(index, "names"), i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return (int)i;
    return -1;
}

/* The stored record of name: *rec (NULL: never stored) and its revision. */
static int
dash_record(dash_ctx_t *c, const char *user,
            const char *name, json_t **rec, json_int_t *rev, gw_error_t *err)
{
    char *id = dash_id(user, name);
    int rc;

    if (id == NULL)
        return gw_error_set(err, "out of memory");
    rc = dash_read(c, DASH_NS, id, rec, err);
    free(id);
    *rev = json_integer_value(json_object_get(*rec, "revision"));
    return rc;
}

static void
dash_answer(dash_t *d, int status, json_t *out)
{
    d->status = status;
    json_decref(d->out);
    d->out = out;
}

/* ---- The jobs ---- */

static void
dash_listed_record(void *arg, const char *id, const char *data, size_t len)
{
    json_t *rec = json_loadb(data, len, 0, NULL);

    if (json_is_integer(json_object_get(rec, "revision")))
        json_object_set(arg, id, json_object_get(rec, "revision"));
    json_decref(rec);
}

/* The list with each dashboard's revision: the user's records in one
 * doc_list where the storage has it (one round trip, not one per name). */
static int
dash_list(dash_ctx_t *c, dash_t *d, json_t *index, gw_error_t *err)
{
    json_t *list = json_array(), *v, *rec, *revs = json_object();
    json_int_t rev;
    size_t i;
    int rc = GW_OK;
    char *prefix = malloc(strlen(d->user) + 2);

    if (prefix == NULL || list == NULL || revs == NULL)
        rc = gw_error_set(err, "out of memory");
    else if (c->ops->doc_list != NULL) {
        sprintf(prefix, "%s\n", d->user);
        rc = c->ops->doc_list(c->state, DASH_NS, prefix, dash_listed_record,
                              revs, err);
    }
    free(prefix);
    json_array_foreach(json_object_get(index, "names"), i, v) {
        char *id = rc == GW_OK ? dash_id(d->user, json_string_value(v)) : NULL;
        json_t *known = id ? json_object_get(revs, id) : NULL;

        free(id);
        if (rc == GW_OK && known != NULL) {
            rev = json_integer_value(known);
        } else if (rc == GW_OK) {
            rc = dash_record(c, d->user, json_string_value(v), &rec, &rev, err);
            json_decref(rec);
        }
        if (rc != GW_OK)
            break;
        json_array_append_new(list, json_pack("{s:O, s:I}", "name", v, "revision", rev));
    }
    json_decref(revs);
    if (rc != GW_OK) {
        json_decref(list);
        return rc;
    }
    dash_answer(d, 200, json_pack("{s:O, s:o}", "default",
                                  json_object_get(index, "default"),
                                  "dashboards", list));
    return GW_OK;
}

/* Stores d->doc as name's next revision (after *rev) and lists it. */
static int
dash_store(dash_ctx_t *c, dash_t *d, json_t *index,
           const char *name, json_int_t rev, gw_error_t *err)
{
    json_t *rec = json_pack("{s:I, s:O}", "revision", rev + 1, "doc", d->doc);
    char *id = dash_id(d->user, name), *text = json_dumps(rec, JSON_COMPACT);
    char *doc = json_dumps(d->doc, JSON_COMPACT);
    int rc;

    if (id == NULL || text == NULL || doc == NULL) {
        rc = gw_error_set(err, "out of memory");
    } else if (strlen(doc) > d->max_bytes) {
        char msg[160];

        snprintf(msg, sizeof(msg), "the dashboard is %zu bytes as stored, more "
                 "than MAX_DOCUMENT_SIZE (%zu) allows", strlen(doc),
                 d->max_bytes);
        dash_answer(d, 413, json_pack("{s:s}", "error", msg));
        rc = GW_OK;
    } else {
        /* The index first: a record is never left unlisted, and when the
         * record's write then conflicts the job starts over from both. */
        rc = GW_OK;
        if (dash_listed(index, name) < 0) {
            json_array_append_new(json_object_get(index, "names"), json_string(name));
            if (!json_is_string(json_object_get(index, "default")))
                json_object_set_new(index, "default", json_string(name));
            rc = dash_write(c, d->user, index, err);
        }
        if (rc == GW_OK && (rc = dash_write(c, id, rec, err)) == GW_OK)
            dash_answer(d, 200, json_pack("{s:s, s:I}", "name", name, "revision", rev + 1));
    }
    free(id);
    free(text);
    free(doc);
    json_decref(rec);
    return rc;
}

static int
dash_put(dash_ctx_t *c, dash_t *d, json_t *index,
         gw_error_t *err)
{
    json_t *rec = NULL;
    json_int_t rev;
    int rc = dash_record(c, d->user, d->name, &rec, &rev, err);
    int live = rec != NULL && json_object_get(rec, "doc") != NULL;

    if (rc == GW_OK && d->rev != rev && !(d->rev == 0 && !live)) {
        char msg[256];

        snprintf(msg, sizeof(msg), "the dashboard \"%s\" was %s elsewhere "
                 "(revision %lld, yours %lld)", d->name,
                 live ? "saved" : "deleted", (long long)rev, (long long)d->rev);
        dash_answer(d, 409, json_pack("{s:s, s:I, s:O?, s:b}", "error", msg,
                                      "revision", rev, "doc",
                                      json_object_get(rec, "doc"),
                                      "deleted", !live));
    } else if (rc == GW_OK && dash_listed(index, d->name) < 0 &&
               json_array_size(json_object_get(index, "names")) >= DASH_MAX_PER_USER) {
        dash_answer(d, 409, json_pack("{s:s}", "error", "a user has at most 100 "
                                      "dashboards: delete one first"));
    } else if (rc == GW_OK) {
        rc = dash_store(c, d, index, d->name, rev, err);
    }
    json_decref(rec);
    return rc;
}

static int
dash_delete(dash_ctx_t *c, dash_t *d, json_t *index,
            gw_error_t *err)
{
    json_t *rec = NULL, *names = json_object_get(index, "names");
    json_int_t rev;
    char *id;
    int at = dash_listed(index, d->name);
    int rc = dash_record(c, d->user, d->name, &rec, &rev, err);

    json_decref(rec);
    if (rc != GW_OK)
        return rc;
    if (at < 0) {
        dash_answer(d, 404, json_pack("{s:s+}", "error", "no dashboard ", d->name));
        return GW_OK;
    }
    rec = json_pack("{s:I, s:b}", "revision", rev + 1, "deleted", 1);
    id = dash_id(d->user, d->name);
    rc = id ? dash_write(c, id, rec, err) : gw_error_set(err, "out of memory");
    free(id);
    json_decref(rec);
    if (rc != GW_OK)
        return rc;
    json_array_remove(names, (size_t)at);
    if (strcmp(json_string_value(json_object_get(index, "default")) ?: "", d->name) == 0)
        json_object_set(index, "default", json_array_size(names)
                                              ? json_array_get(names, 0)
                                              : json_null());
    dash_answer(d, 200, json_pack("{s:s}", "deleted", d->name));
    return dash_write(c, d->user, index, err);
}

static int
dash_get(dash_ctx_t *c, dash_t *d, json_t *index,
         gw_error_t *err)
{
    json_t *rec = NULL;
    json_int_t rev;
    const char *name = d->name;
    int rc;

    if (d->op == D_LEGACY_GET) {
        name = json_string_value(json_object_get(index, "default"));
        if (name == NULL) {
            dash_answer(d, 200, json_object());
            return GW_OK;
        }
    }
    if ((rc = dash_record(c, d->user, name, &rec, &rev, err)) != GW_OK)
        return rc;
    if (dash_listed(index, name) < 0 || json_object_get(rec, "doc") == NULL)
        dash_answer(d, 404, json_pack("{s:s+}", "error", "no dashboard ", name));
    else if (d->op == D_LEGACY_GET)
        dash_answer(d, 200, json_incref(json_object_get(rec, "doc")));
    else
        dash_answer(d, 200, json_pack("{s:s, s:I, s:O}", "name", name,
                                      "revision", rev, "doc",
                                      json_object_get(rec, "doc")));
    json_decref(rec);
    return GW_OK;
}

static int
dash_attempt(dash_ctx_t *c, dash_t *d, gw_error_t *err)
{
    json_t *index = NULL, *rec = NULL;
    json_int_t rev;
    int rc = dash_index(c, d->user, &index, err);

    if (rc != GW_OK) {
        json_decref(index);
        return rc;
    }
    switch (d->op) {
    case D_LIST:
        rc = dash_list(c, d, index, err);
        break;
    case D_DEFAULT:
        if (dash_listed(index, d->name) < 0) {
            dash_answer(d, 404, json_pack("{s:s+}", "error", "no dashboard ", d->name));
            break;
        }
        json_object_set_new(index, "default", json_string(d->name));
        dash_answer(d, 200, json_pack("{s:s}", "default", d->name));
        rc = dash_write(c, d->user, index, err);
        break;
    case D_PUT:
        rc = dash_put(c, d, index, err);
        break;
    case D_LEGACY_PUT: /* into the default, whatever its revision */
        free(d->name);
        d->name = strdup(json_string_value(json_object_get(index, "default")) ?: DASH_FIRST);
        if (d->name == NULL) {
            rc = gw_error_set(err, "out of memory");
            break;
        }
        rc = dash_record(c, d->user, d->name, &rec, &rev, err);
        json_decref(rec);
        if (rc == GW_OK)
            rc = dash_store(c, d, index, d->name, rev, err);
        if (d->status == 200)
            dash_answer(d, 200, json_pack("{s:b}", "saved", 1));
        break;
    case D_DELETE:
        rc = dash_delete(c, d, index, err);
        break;
    default:
        rc = dash_get(c, d, index, err);
    }
    json_decref(index);
    return rc;
}

/* One request's reads and writes, started over when a write finds that
 * another process changed what the job read (GW_CONFLICT). */
static int
dash_job(const gw_storage_ops_t *ops, void *state, void *arg, gw_error_t *err)
{
    dash_ctx_t c = {ops, state, NULL};
    dash_t *d = arg;
    int attempt, rc = GW_CONFLICT;

    for (attempt = 0; attempt < DASH_ATTEMPTS && rc == GW_CONFLICT; attempt++) {
        dash_seen_clear(&c);
        dash_answer(d, 0, NULL);
        rc = dash_attempt(&c, d, err);
    }
    dash_seen_clear(&c);
    if (rc == GW_CONFLICT) {
        gw__log_warning("server: the dashboards of %s changed %d times during "
                        "one request; it was refused", d->user, DASH_ATTEMPTS);
        dash_answer(d, 503, json_pack("{s:s}", "error", "the dashboards changed "
                                      "elsewhere during this request, again and "
                                      "again: try again"));
        rc = GW_OK;
    }
    return rc;
}

static void
dash_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    dash_t *d = (dash_t *)p;

    if (rc != GW_OK) {
        gw__api_errorf(p->req, rc == GW_AGAIN ? 503 : 500, "the storage %s: %s",
                       rc == GW_AGAIN ? "is unreachable" : "failed",
                       err && err->msg[0] ? err->msg : "unknown error");
        return;
    }
    if (d->status == 413)
        gw__metrics_count("server", GW_COUNTER_DROPPED, "max_document_size", 1);
    gw__api_json(p->req, d->status, json_incref(d->out));
}

/* ---- The loop side ---- */

/* The name from the path, decoded, or NULL after answering 400. */
static char *
dash_name(gw_http_req_t *req, const char *enc)
{
    char *name = gw__url_decode(enc, strlen(enc), 0);
    const unsigned char *c;
    size_t n;

    if (name == NULL) {
        gw__http_error(req, 500, "out of memory");
        return NULL;
    }
    for (c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/')
            break;
    n = strlen(name);
    if (n == 0 || n > DASH_NAME_MAX || *c != '\0') {
        gw__api_errorf(req, 400, "a dashboard name is 1 to %d bytes without "
                       "control characters or \"/\"", DASH_NAME_MAX);
        free(name);
        return NULL;
    }
    return name;
}

/* The JSON body, or NULL after answering 400. */
static json_t *
dash_body(gw_http_req_t *req)
{
    size_t len = 0;
    const char *body = gw__http_body(req, &len);
    json_error_t jerr;
    json_t *v = json_loadb(body ? body : "", len, 0, &jerr);

    if (!json_is_object(v)) {
        gw__api_errorf(req, 400, "the dashboard must be a JSON object: %s",
                       v ? "got another JSON value" : jerr.text);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Checks the body of PUT dashboards/{name}: {"revision": n >= 0, "doc": {}}. */
static int
dash_put_body(gw_http_req_t *req, dash_t *d)
{
    json_t *in = dash_body(req), *rev;

    if (in == NULL)
        return GW_ERR;
    rev = json_object_get(in, "revision");
    d->doc = json_incref(json_object_get(in, "doc"));
    d->rev = json_is_integer(rev) ? json_integer_value(rev) : -1;
    json_decref(in);
    if (d->rev < 0 || !json_is_object(d->doc)) {
        gw__api_errorf(req, 400, "a dashboard is saved as {\"revision\": the "
                       "revision last read (0 for a new one), \"doc\": {...}}");
        return GW_ERR;
    }
    return GW_OK;
}

static int
dash_parse(gw_http_req_t *req, dash_t *d, const char *method, const char *rel)
{
    int put = strcmp(method, "PUT") == 0;

    if (strcmp(rel, "legacy") == 0) {
        d->op = put ? D_LEGACY_PUT : D_LEGACY_GET;
        return put ? ((d->doc = dash_body(req)) ? GW_OK : GW_ERR) : GW_OK;
    }
    if (rel[0] == '\0') {
        json_t *in;

        d->op = put ? D_DEFAULT : D_LIST;
        if (!put)
            return GW_OK;
        if ((in = dash_body(req)) == NULL)
            return GW_ERR;
        if (json_is_string(json_object_get(in, "default")))
            d->name = strdup(json_string_value(json_object_get(in, "default")));
        json_decref(in);
        if (d->name == NULL)
            gw__api_errorf(req, 400, "set the default as {\"default\": name}");
        return d->name ? GW_OK : GW_ERR;
    }
    if ((d->name = dash_name(req, rel + 1)) == NULL)
        return GW_ERR;
    d->op = put ? D_PUT : strcmp(method, "DELETE") == 0 ? D_DELETE : D_GET;
    return put ? dash_put_body(req, d) : GW_OK;
}

void
gw__api_dashboards(gw__api_t *api, gw_http_req_t *req, const gw__api_who_t *who,
                   const char *rel)
{
    dash_t *d;

    if (who->key_project != NULL) {
        gw__http_error(req, 403, "dashboards belong to users: log in to the "
                                 "dashboard (project keys have none)");
        return;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->user = strdup(who->user[0] ? who->user : "anonymous")) == NULL) {
        free(d);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    d->base.req = req;
    d->base.finish = dash_finish;
    d->base.release = dash_release;
    d->max_bytes = gw__api_cfg(api)->max_document_bytes;
    if (dash_parse(req, d, gw__http_method(req), rel) != GW_OK) {
        dash_release(&d->base);
        return;
    }
    gw__api_submit(api, &d->base, dash_job);
}
