/*
 * tests/server/test_embed.c: embedded charts and saved dashboards
 * (server/api_embed.c, server/api_dash.c) through their entry points, with exact answers: the
 * checks and clean form of POST embedded/ (every bad field's text), the id
 * format, the .json series (periods, ranges, renderer and name fallbacks,
 * filters), the .html page and .js iframe, dashboards (size limit, who owns
 * them) and storage failures. The requests are real (net/http.c on
 * loopback, driven from this thread); the process around the server role is
 * a fake gw__server_env_t whose storage is an in-memory table run at once.
 * tests/integration/test_api.py covers the routes against the daemon.
 */
#include "server/api_int.h"

#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/http.h"

#define ALL_PERIODS 0x7fu
#define D14 1392336000 /* 2014-02-14 */
#define D15 1392422400
#define D16 1392508800
#define ID "0a1b2c3d-0000-4000-8000-00000000000a"
#define NO_ID "00000000-0000-4000-8000-000000000000"

/* ---- The fake process: config and storage ---- */

static struct ev_loop *loop;
static gw_http_server_t *srv;
static int port;
static gw__config_t cfg;
static gw__api_t api;
static char webdir[64];

static json_t *docs;     /* "ns/id" -> the stored text */
static int storage_up;   /* what storage_stats answers */
static const char *fail; /* the op that fails: "put", "get", "meta", ... */
static int fail_rc;      /* ... with this code and message */
static const char *fail_msg;
static int nqueries;      /* series read */
static int ngets;         /* documents read */
static gw_query_t last_q; /* the last one (strings not kept) */

static const struct {
    const char *metric, *fname, *fvalue;
    gw_period_t period;
    int64_t bucket;
    double sum;
    int64_t count;
} points[] = {
    {"orders", NULL, NULL, GW_PERIOD_DAY, D14, 2, 2},
    {"orders", NULL, NULL, GW_PERIOD_DAY, D15, 3, 3},
    {"orders", NULL, NULL, GW_PERIOD_DAY, D16, 9, 9},
    {"orders", "status", "paid", GW_PERIOD_DAY, D15, 1, 1},
    {"orders", NULL, NULL, GW_PERIOD_HOUR, D15 + 8 * 3600, 3, 3},
    {"latency", NULL, NULL, GW_PERIOD_DAY, D15, 30, 4},
};

static int
fake_fails(const char *op, gw_error_t *err)
{
    if (fail == NULL || strcmp(fail, op) != 0)
        return GW_OK;
    if (fail_msg != NULL)
        gw_error_set(err, "%s", fail_msg);
    else if (err != NULL)
        err->msg[0] = '\0';
    return fail_rc;
}

static int
fake_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
           gw_error_t *err)
{
    size_t i;

    (void)state;
    nqueries++;
    last_q = *q;
    if (fake_fails("query", err) != GW_OK)
        return fail_rc;
    for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        gw_point_t pt = {points[i].bucket, points[i].sum, points[i].count, 0};

        if (strcmp(points[i].metric, q->metric) != 0 ||
            points[i].period != q->period || pt.bucket < q->from ||
            pt.bucket > q->to ||
            (points[i].fname == NULL) != (q->filter_name == NULL))
            continue;
        if (q->filter_name != NULL &&
            (strcmp(points[i].fname, q->filter_name) != 0 ||
             strcmp(points[i].fvalue, q->filter_value) != 0))
            continue;
        emit(arg, &pt);
    }
    return GW_OK;
}

static int
fake_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
              gw_error_t *err)
{
    gw_meta_t m[] = {{"orders", GW_KIND_COUNTER, NULL, NULL},
                     {"orders", GW_KIND_COUNTER, "status", "paid"},
                     {"latency", GW_KIND_AVG, NULL, NULL}};
    size_t i;

    (void)state;
    if (fake_fails("meta", err) != GW_OK)
        return fail_rc;
    if (strcmp(project, "shop") == 0)
        for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
            emit(arg, &m[i]);
    return GW_OK;
}

static int
fake_doc_put(void *state, const char *ns, const char *id, const char *data,
             size_t len, gw_error_t *err)
{
    char key[512];

    (void)state;
    if (fake_fails("put", err) != GW_OK ||
        (strcmp(ns, "embedded") == 0 && fake_fails("put-chart", err) != GW_OK))
        return fail_rc;
    snprintf(key, sizeof(key), "%s/%s", ns, id);
    json_object_set_new(docs, key, json_stringn(data, len));
    return GW_OK;
}

static int
fake_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
             void *arg, gw_error_t *err)
{
    char key[512];
    json_t *v;

    (void)state;
    ngets++;
    if (fake_fails("get", err) != GW_OK)
        return fail_rc;
    snprintf(key, sizeof(key), "%s/%s", ns, id);
    v = json_object_get(docs, key);
    if (v != NULL)
        emit(arg, json_string_value(v), json_string_length(v));
    return GW_OK;
}

static const gw_storage_ops_t fake_ops = {sizeof(gw_storage_ops_t),
                                          NULL,
                                          NULL,
                                          NULL,
                                          fake_query,
                                          fake_metadata,
                                          fake_doc_put,
                                          fake_doc_get,
                                          NULL};

static const gw__config_t *
env_config(void *ctx)
{
    return ctx;
}

static int
env_storage_call(void *ctx, gw__server_job_fn job, gw__server_done_fn done,
                 void *arg)
{
    gw_error_t err;
    int rc;

    (void)ctx;
    memset(&err, 0, sizeof(err));
    rc = job(&fake_ops, NULL, arg, &err);
    done(arg, rc, &err);
    return GW_OK;
}

static int
env_storage_stats(void *ctx, gw__server_storage_t *out)
{
    (void)ctx;
    (void)out;
    return storage_up;
}

/* What the stored document (ns/id) holds, or NULL. */
static const char *
stored(const char *ns, const char *id)
{
    char key[512];

    snprintf(key, sizeof(key), "%s/%s", ns, id);
    return json_string_value(json_object_get(docs, key));
}

static void
store(const char *ns, const char *id, const char *text)
{
    char key[512];

    snprintf(key, sizeof(key), "%s/%s", ns, id);
    json_object_set_new(docs, key, json_string(text));
}

/* ---- The server side: the routes of api.c, without access checks ---- */

static void
handler(void *arg, gw_http_req_t *req)
{
    const char *path = gw__http_path(req);
    gw__api_who_t who;

    (void)arg;
    if (strncmp(path, "/api/v1/embedded/", 17) == 0) {
        gw__api_embedded_get(&api, req, path + 17);
    } else if (strncmp(path, "/api/v1/dashboard", 17) == 0) {
        const char *user = gw__http_header(req, "X-User");

        memset(&who, 0, sizeof(who));
        who.ok = 1;
        snprintf(who.user, sizeof(who.user), "%s", user ? user : "");
        who.key_project = gw__http_header(req, "X-Key");
        gw__api_dashboards(&api, req, &who,
                           path[17] == '\0' ? "legacy" : path + 18);
    } else if (strcmp(path, "/api/v1/shop/embedded/") == 0) {
        const char *user = gw__http_header(req, "X-User");

        memset(&who, 0, sizeof(who));
        who.ok = 1;
        snprintf(who.user, sizeof(who.user), "%s", user ? user : "");
        gw__api_embedded_create(&api, req, "shop", &who);
    } else {
        gw__http_error(req, 404, "no route in the test");
    }
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
setup(void)
{
    /* The requests come from 127.0.0.1, a proxy whose X-Forwarded-Proto
     * the links believe (TRUSTED_PROXIES' default). */
    static const gw__cidr_t proxies[] = {{AF_INET, {127, 0, 0, 1}, 32}};
    gw_http_listen_t lo = {"127.0.0.1", 0, 0};
    char path[128];
    gw_error_t err;

    memset(&cfg, 0, sizeof(cfg));
    cfg.trusted_proxies = (gw__cidr_t *)proxies;
    cfg.ntrusted_proxies = 1;
    cfg.prefix = "";
    cfg.periods = ALL_PERIODS;
    cfg.max_points = 10000;
    cfg.max_embeds_per_project = 1000;
    cfg.max_embeds_per_user = 1000;
    cfg.max_document_bytes = 512 * 1024;
    cfg.http.max_body = 2 * 1024 * 1024;
    cfg.http.max_header_bytes = 16384;
    cfg.http.max_headers = 64;
    cfg.http.header_timeout = 10;
    cfg.http.idle_timeout = 60;
    cfg.http.max_connections = 16;
    snprintf(webdir, sizeof(webdir), "/tmp/gw-test-embed-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(webdir));
    snprintf(path, sizeof(path), "%s/embed.html", webdir);
    write_file(path, "[{{title}}|{{id}}|{{width}}x{{height}}|{{prefix}}]\n");
    snprintf(path, sizeof(path), "%s/error.html", webdir);
    write_file(path, "<{{status}}|{{title}}|{{message}}|{{prefix}}>\n");
    setenv("GOTTWALL_WEBDIR", webdir, 1);
    docs = json_object();
    storage_up = 1;
    fail = NULL;
    nqueries = ngets = 0;
    loop = ev_loop_new(EVFLAG_AUTO);
    memset(&api, 0, sizeof(api));
    api.env.ctx = &cfg;
    api.env.loop = loop;
    api.env.config = env_config;
    api.env.storage_call = env_storage_call;
    api.env.storage_stats = env_storage_stats;
    ck_assert_int_eq(gw__http_listen(loop, "server", &lo, &cfg.http, handler,
                                     NULL, &srv, &err),
                     GW_OK);
    /* What the server role's listener adds to every answer (api.c). */
    gw__http_set_headers(srv, "X-Content-Type-Options: nosniff\r\n");
    port = gw__http_port(srv);
}

static void
teardown(void)
{
    char path[128];

    gw__http_close(srv);
    ev_loop_destroy(loop);
    json_decref(docs);
    snprintf(path, sizeof(path), "%s/embed.html", webdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/error.html", webdir);
    unlink(path);
    rmdir(webdir);
}

/* ---- The client side: one request per connection, the loop run here ---- */

static int status;
static char *resp;       /* the whole answer */
static char *resp_head;  /* its header lines (in resp) */
static const char *body; /* its body (in resp) */

/* Sends a request (headers: whole lines, may be ""), runs the loop until
 * the server closed, and sets status, resp_head and body. */
static void
request(const char *method, const char *path, const char *headers,
        const char *content)
{
    size_t clen = content ? strlen(content) : 0, sent = 0, got = 0, cap = 4096;
    size_t hlen = strlen(method) + strlen(path) + strlen(headers) + 128;
    char *out = malloc(hlen + clen);
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    time_t deadline = time(NULL) + 10;
    size_t olen;
    char *end;

    free(resp);
    resp = malloc(cap);
    ck_assert_ptr_nonnull(out);
    olen = (size_t)snprintf(
        out, hlen,
        "%s %s HTTP/1.1\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
        method, path, headers, clen);
    memcpy(out + olen, content ? content : "", clen);
    olen += clen;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        struct pollfd pfd = {fd, POLLIN | (sent < olen ? POLLOUT : 0), 0};
        ssize_t n;

        ck_assert_msg(time(NULL) < deadline, "no answer to %s", path);
        ev_run(loop, EVRUN_NOWAIT);
        poll(&pfd, 1, 5);
        if (sent < olen && (pfd.revents & POLLOUT)) {
            n = send(fd, out + sent, olen - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (got + 1024 > cap)
            resp = realloc(resp, cap *= 2);
        n = recv(fd, resp + got, cap - got - 1, 0);
        if (n == 0)
            break;
        if (n > 0)
            got += (size_t)n;
    }
    close(fd);
    free(out);
    resp[got] = '\0';
    end = strstr(resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    end[2] = '\0';
    body = end + 4;
    resp_head = strstr(resp, "\r\n") + 2;
    status = atoi(resp + 9);
}

/* The value of a header of the answer, or NULL. */
static const char *
header(const char *name)
{
    static char value[1024];
    const char *line = resp_head;
    size_t n = strlen(name);

    while (line != NULL && *line != '\0') {
        const char *eol = strstr(line, "\r\n");

        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            snprintf(value, sizeof(value), "%.*s", (int)(eol - line - n - 2),
                     line + n + 2);
            return value;
        }
        line = eol + 2;
    }
    return NULL;
}

static void
post(const char *headers, const char *content)
{
    request("POST", "/api/v1/shop/embedded/", headers, content);
}

static void
get(const char *path)
{
    request("GET", path, "Host: h.example\r\n", NULL);
}

/* The answers of gw__api_errorf (compact JSON, no-store) and of
 * gw__http_error (a space after the colon, no Cache-Control). */
#define ck_assert_api_error(st, text)                                          \
    do {                                                                       \
        ck_assert_int_eq(status, st);                                          \
        ck_assert_str_eq(body, "{\"error\":\"" text "\"}");                    \
        ck_assert_str_eq(header("Content-Type"), "application/json");          \
        ck_assert_str_eq(header("Cache-Control"), "no-store");                 \
    } while (0)
#define ck_assert_http_error(st, text)                                         \
    do {                                                                       \
        ck_assert_int_eq(status, st);                                          \
        ck_assert_str_eq(body, "{\"error\": \"" text "\"}");                   \
        ck_assert_str_eq(header("Content-Type"), "application/json");          \
        ck_assert_ptr_null(header("Cache-Control"));                           \
    } while (0)

/* The texts of the 400s of POST embedded/. */
#define E_NAME "\\\"name\\\" must be a string of 1..255 bytes"
#define E_RENDERER "\\\"renderer\\\" must be one of line, area, bar, stacked"
#define E_PERIOD                                                               \
    "\\\"period\\\" is required (minute, hour, day, week, month, year or all)"
#define E_METRICS                                                              \
    "\\\"metrics\\\" must be a list of 1..20 objects {\\\"metric_name\\\", "   \
    "\\\"filter_name\\\", \\\"filter_value\\\"}"
#define E_METRIC(i)                                                            \
    "metrics[" #i                                                              \
    "]: \\\"metric_name\\\" is required (a string of 1..255 bytes)"
#define E_FILTERS(i)                                                           \
    "metrics[" #i                                                              \
    "]: \\\"filter_name\\\" and \\\"filter_value\\\" must be strings"
#define E_BOTH(i)                                                              \
    "metrics[" #i                                                              \
    "]: give both \\\"filter_name\\\" and \\\"filter_value\\\", or neither"
#define E_HOST                                                                 \
    "the Host header is missing or not a host name: links cannot be built"

/* 8-4-4-4-12 lower-case hex, version 4, variant 10xx. */
static int
uuid4_ok(const char *s)
{
    size_t i;

    if (strlen(s) != 36 || s[14] != '4' || strchr("89ab", s[19]) == NULL)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i]) ||
                   isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- POST {project}/embedded/ ---- */

START_TEST(test_create_links)
{
    json_t *r, *doc;
    char id[37], expect[1024];
    const char *text;
    time_t t0 = time(NULL);

    post("Host: stats.example.com:8889\r\nX-Forwarded-Proto: https\r\n",
         "{\"name\": \"Orders\", \"renderer\": \"bar\", \"period\": \"week\", "
         "\"metrics\": [{\"metric_name\": \"orders\", \"id\": \"m1\"}, "
         "{\"metric_name\": \"orders\", \"filter_name\": \"status\", "
         "\"filter_value\": \"paid\"}], \"type\": \"chart\"}");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(header("Content-Type"), "application/json");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    r = json_loads(body, 0, NULL);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")));
    ck_assert_msg(uuid4_ok(id), "bad id %s", id);
    snprintf(
        expect, sizeof(expect),
        "{\"id\":\"%s\",\"html_link\":\"https://stats.example.com:8889/api/v1/"
        "embedded/%s.html\",\"js_link\":\"https://stats.example.com:8889/api/"
        "v1/embedded/%s.js\",\"json_link\":\"https://stats.example.com:8889/"
        "api/v1/embedded/%s.json\",\"iframe\":\"<iframe "
        "src=\\\"https://stats.example.com:8889/api/v1/embedded/%s.html\\\" "
        "title=\\\"Orders\\\" width=\\\"800\\\" height=\\\"400\\\" "
        "frameborder=\\\"0\\\"></iframe>\",\"reused\":false}",
        id, id, id, id, id);
    ck_assert_str_eq(body, expect);
    json_decref(r);
    /* What is stored: the clean chart and when it was made. */
    text = stored("embedded", id);
    ck_assert_ptr_nonnull(text);
    doc = json_loads(text, 0, NULL);
    ck_assert_int_ge(json_integer_value(json_object_get(doc, "created")), t0);
    ck_assert_int_le(json_integer_value(json_object_get(doc, "created")),
                     time(NULL));
    json_object_del(doc, "created");
    text = json_dumps(doc, JSON_COMPACT);
    ck_assert_str_eq(
        text,
        "{\"project\":\"shop\",\"name\":\"Orders\",\"renderer\":\"bar\","
        "\"period\":\"week\",\"metrics\":[{\"metric_name\":\"orders\",\"filter_"
        "name\":null,\"filter_value\":null},{\"metric_name\":\"orders\","
        "\"filter_name\":\"status\",\"filter_value\":\"paid\"}]}");
    free((char *)text);
    json_decref(doc);
    /* Another chart, another id; any other proto is http, and the prefix
     * is in the links. */
    cfg.prefix = "/gw";
    post("Host: [::1]:80\r\nX-Forwarded-Proto: ftp\r\n",
         "{\"period\": \"day\", \"metrics\": [{\"metric_name\": \"a\"}]}");
    ck_assert_int_eq(status, 200);
    r = json_loads(body, 0, NULL);
    ck_assert_str_ne(json_string_value(json_object_get(r, "id")), id);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")));
    snprintf(expect, sizeof(expect), "http://[::1]:80/gw/api/v1/embedded/%s.js",
             id);
    ck_assert_str_eq(json_string_value(json_object_get(r, "js_link")), expect);
    json_decref(r);
    /* Two charts, the project's count (keys or no user: no user's) and
     * its list of shared charts. */
    ck_assert_uint_eq(json_object_size(docs), 4);
    ck_assert_str_eq(stored("count", "embedded:project:shop"), "2");
}
END_TEST

/* The stored form of one chart posted with metrics (and the rest fixed). */
static const char *
created(const char *chart)
{
    static char out[4096];
    json_t *r, *doc;
    char *text;

    post("Host: h\r\n", chart);
    ck_assert_msg(status == 200, "%d %s", status, body);
    r = json_loads(body, 0, NULL);
    doc = json_loads(
        stored("embedded", json_string_value(json_object_get(r, "id"))), 0,
        NULL);
    json_object_del(doc, "created");
    json_object_del(doc, "project");
    text = json_dumps(doc, JSON_COMPACT);
    snprintf(out, sizeof(out), "%s", text);
    free(text);
    json_decref(doc);
    json_decref(r);
    return out;
}

START_TEST(test_create_normalises)
{
    /* No name: ""; no renderer: line; "stack" is stacked; null is absent. */
    ck_assert_str_eq(
        created(
            "{\"period\": \"day\", \"metrics\": [{\"metric_name\": \"a\"}]}"),
        "{\"name\":\"\",\"renderer\":\"line\",\"period\":\"day\",\"metrics\":[{"
        "\"metric_name\":\"a\",\"filter_name\":null,\"filter_value\":null}]}");
    ck_assert_str_eq(
        created("{\"name\": null, \"renderer\": \"stack\", \"period\": "
                "\"all\", \"metrics\": [{\"metric_name\": \"a\"}]}"),
        "{\"name\":\"\",\"renderer\":\"stacked\",\"period\":\"all\","
        "\"metrics\":[{\"metric_name\":\"a\",\"filter_name\":null,\"filter_"
        "value\":null}]}");
    ck_assert_str_eq(created("{\"renderer\": null, \"period\": \"minute\", "
                             "\"metrics\": [{\"metric_name\": \"a\"}]}"),
                     "{\"name\":\"\",\"renderer\":\"line\",\"period\":"
                     "\"minute\",\"metrics\":[{\"metric_name\":\"a\",\"filter_"
                     "name\":null,\"filter_value\":null}]}");
    /* The original UI's "no filter": "" with "", null or no value; null
     * filters are none. */
    ck_assert_str_eq(
        created(
            "{\"renderer\": \"area\", \"period\": \"day\", \"metrics\": "
            "[{\"metric_name\": \"a\", \"filter_name\": \"\", "
            "\"filter_value\": \"\"},{\"metric_name\": \"b\", \"filter_name\": "
            "\"\", \"filter_value\": null},{\"metric_name\": \"c\", "
            "\"filter_name\": \"\"},{\"metric_name\": \"d\", \"filter_name\": "
            "null, \"filter_value\": null}]}"),
        "{\"name\":\"\",\"renderer\":\"area\",\"period\":\"day\",\"metrics\":[{"
        "\"metric_name\":\"a\",\"filter_name\":null,\"filter_value\":null},{"
        "\"metric_name\":\"b\",\"filter_name\":null,\"filter_value\":null},{"
        "\"metric_name\":\"c\",\"filter_name\":null,\"filter_value\":null},{"
        "\"metric_name\":\"d\",\"filter_name\":null,\"filter_value\":null}]}");
    /* An empty filter value with a filter name is a value. */
    ck_assert_str_eq(
        created("{\"name\": \"n\", \"period\": \"day\", \"metrics\": "
                "[{\"metric_name\": \"a\", \"filter_name\": \"s\", "
                "\"filter_value\": \"\"}]}"),
        "{\"name\":\"n\",\"renderer\":\"line\",\"period\":\"day\",\"metrics\":["
        "{\"metric_name\":\"a\",\"filter_name\":\"s\",\"filter_value\":\"\"}]"
        "}");
}
END_TEST

/* A chart body with one field replaced (JSON text). */
static void
post_chart(const char *name, const char *renderer, const char *period,
           const char *metrics)
{
    char b[8192];

    snprintf(
        b, sizeof(b),
        "{\"name\": %s, \"renderer\": %s, \"period\": %s, \"metrics\": %s}",
        name, renderer, period, metrics);
    post("Host: h\r\n", b);
}

#define OK_M "[{\"metric_name\": \"orders\"}]"

START_TEST(test_create_chart_errors)
{
    /* The chart's own fields, checked in this order (the first bad one is
     * told): name, renderer, period. */
    static const struct {
        const char *name, *renderer, *period, *metrics, *error;
    } bad[] = {
        {"\"\"", "\"line\"", "\"day\"", OK_M, E_NAME},
        {"7", "\"line\"", "\"day\"", OK_M, E_NAME},
        {"\"x\"", "\"pie\"", "\"decade\"", "[]", E_RENDERER},
        {"\"x\"", "\"\"", "\"day\"", OK_M, E_RENDERER},
        {"\"x\"", "[\"line\"]", "\"day\"", OK_M, E_RENDERER},
        {"\"x\"", "\"line\"", "null", OK_M, E_PERIOD},
        {"\"x\"", "\"line\"", "\"\"", OK_M, E_PERIOD},
        {"\"x\"", "\"line\"", "1", OK_M, E_PERIOD},
        {"\"x\"", "\"line\"", "\"Day\"", OK_M,
         "unknown period \\\"Day\\\": use one of minute, hour, day, week, "
         "month, year, all"},
    };
    char big[300], many[2048], want[512];
    size_t i;

    post("Host: h\r\n", "not json");
    ck_assert_api_error(
        400, "the body must be a JSON object: '[' or '{' expected near 'not'");
    post("Host: h\r\n", "");
    ck_assert_api_error(
        400,
        "the body must be a JSON object: '[' or '{' expected near end of file");
    post("Host: h\r\n", "[1, 2]");
    ck_assert_api_error(
        400, "the body must be a JSON object: got another JSON value");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post_chart(bad[i].name, bad[i].renderer, bad[i].period, bad[i].metrics);
        snprintf(want, sizeof(want), "{\"error\": \"%s\"}", bad[i].error);
        ck_assert_int_eq(status, 400);
        ck_assert_str_eq(body, want);
        ck_assert_ptr_null(header("Cache-Control"));
    }
    /* name: at most 255 bytes. */
    snprintf(big, sizeof(big), "\"%0256d\"", 0);
    post_chart(big, "\"line\"", "\"day\"", OK_M);
    ck_assert_http_error(400, E_NAME);
    snprintf(big, sizeof(big), "\"%0255d\"", 0);
    post_chart(big, "\"line\"", "\"day\"", OK_M);
    ck_assert_int_eq(status, 200);
    /* period: one that PERIODS keeps. */
    cfg.periods = ALL_PERIODS & ~(1u << GW_PERIOD_MINUTE);
    post_chart("\"x\"", "\"line\"", "\"minute\"", OK_M);
    ck_assert_http_error(
        400, "period \\\"minute\\\" is not kept by this server (PERIODS): use "
             "one of hour, day, week, month, year, all");
    /* metrics: a list of 1..20. */
    post_chart("\"x\"", "\"line\"", "\"day\"", "[]");
    ck_assert_api_error(400, E_METRICS);
    post_chart("\"x\"", "\"line\"", "\"day\"", "{\"metric_name\": \"a\"}");
    ck_assert_api_error(400, E_METRICS);
    strcpy(many, "[");
    for (i = 0; i < 20; i++)
        strcat(many,
               i ? ", {\"metric_name\": \"m\"}" : "{\"metric_name\": \"m\"}");
    strcat(many, "]");
    post_chart("\"x\"", "\"line\"", "\"day\"", many);
    ck_assert_int_eq(status, 200);
    many[strlen(many) - 1] = '\0';
    strcat(many, ", {\"metric_name\": \"m\"}]");
    post_chart("\"x\"", "\"line\"", "\"day\"", many);
    ck_assert_api_error(400, E_METRICS);
    /* Only the two good charts were stored (and counted, and listed). */
    ck_assert_uint_eq(json_object_size(docs), 4);
    ck_assert_str_eq(stored("count", "embedded:project:shop"), "2");
}
END_TEST

START_TEST(test_create_metric_errors)
{
    /* Each bad list and its answer; filters are strings (a name of 1..255
     * bytes), both or neither. */
    static const struct {
        const char *metrics, *error;
    } bad[] = {
        {"[{\"metric_name\": \"a\"}, \"b\"]", E_METRIC(1)},
        {"[{\"metric_name\": \"\"}]", E_METRIC(0)},
        {"[{\"metric_name\": 3}]", E_METRIC(0)},
        {"[{\"metric_name\": \"a\", \"filter_name\": 1, \"filter_value\": "
         "\"v\"}]",
         E_FILTERS(0)},
        {"[{\"metric_name\": \"a\", \"filter_name\": \"s\", \"filter_value\": "
         "1}]",
         E_FILTERS(0)},
        {"[{\"metric_name\": \"a\", \"filter_name\": \"\", \"filter_value\": "
         "\"v\"}]",
         E_FILTERS(0)},
        {"[{\"metric_name\": \"a\"}, {\"metric_name\": \"a\", "
         "\"filter_value\": \"v\"}]",
         E_BOTH(1)},
        {"[{\"metric_name\": \"a\", \"filter_name\": \"s\", \"filter_value\": "
         "null}]",
         E_BOTH(0)},
    };
    char big[512], want[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post_chart("\"x\"", "\"line\"", "\"day\"", bad[i].metrics);
        snprintf(want, sizeof(want), "{\"error\":\"%s\"}", bad[i].error);
        ck_assert_int_eq(status, 400);
        ck_assert_str_eq(body, want);
        ck_assert_str_eq(header("Cache-Control"), "no-store");
    }
    snprintf(big, sizeof(big), "[{\"metric_name\": \"%0256d\"}]", 0);
    post_chart("\"x\"", "\"line\"", "\"day\"", big);
    ck_assert_api_error(400, E_METRIC(0));
    ck_assert_uint_eq(json_object_size(docs), 0);
}
END_TEST

START_TEST(test_create_host_and_storage)
{
    const char *chart =
        "{\"period\": \"day\", \"metrics\": [{\"metric_name\": \"a\"}]}";
    char host[300];

    post("", chart);
    ck_assert_http_error(400, E_HOST);
    post("Host: a b\r\n", chart);
    ck_assert_http_error(400, E_HOST);
    post("Host: h/x\r\n", chart);
    ck_assert_http_error(400, E_HOST);
    memset(host, 'h', sizeof(host));
    memcpy(host, "Host: ", 6);
    strcpy(host + 6 + 256, "\r\n");
    post(host, chart);
    ck_assert_http_error(400, E_HOST);
    strcpy(host + 6 + 255, "\r\n");
    post(host, chart);
    ck_assert_int_eq(status, 200);
    /* The storage's failures (for a chart not shared before: an identical
     * one is answered without a put). */
    store("embedded-index", "project:shop", "[]");
    fail = "put";
    fail_rc = GW_AGAIN;
    fail_msg = "connection refused";
    post("Host: h\r\n", chart);
    ck_assert_api_error(503, "the storage is unreachable: connection refused");
    fail_rc = GW_ERR;
    fail_msg = NULL;
    post("Host: h\r\n", chart);
    ck_assert_api_error(500, "the storage failed: unknown error");
    storage_up = 0;
    post("Host: h\r\n", chart);
    ck_assert_http_error(503, "no storage is running");
    /* One chart, its count and its project's list: a failed put changed
     * no count. */
    ck_assert_uint_eq(json_object_size(docs), 3);
    ck_assert_str_eq(stored("count", "embedded:project:shop"), "1");
}
END_TEST

/* ---- GET embedded/{id}.json ---- */

#define CHART                                                                  \
    "{\"project\":\"shop\",\"name\":\"Orders\",\"renderer\":\"bar\","          \
    "\"period\":\"day\",\"metrics\":[{\"metric_name\":\"orders\","             \
    "\"filter_name\":null,\"filter_value\":null},{\"metric_name\":\"orders\"," \
    "\"filter_name\":\"status\",\"filter_value\":\"paid\"},"                   \
    "{\"metric_name\":\"latency\",\"filter_name\":null,"                       \
    "\"filter_value\":null}],\"created\":1392454739}"

START_TEST(test_json_series)
{
    store("embedded", ID, CHART);
    get("/api/v1/embedded/" ID ".json?from_date=2014-02-14&to_date=2014-02-15");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(header("Content-Type"), "application/json");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    ck_assert_str_eq(header("Access-Control-Allow-Origin"), "*");
    ck_assert_str_eq(
        body,
        "{\"project\":\"shop\",\"renderer\":\"bar\",\"period\":\"day\",\"from_"
        "date\":\"2014-02-14\",\"to_date\":\"2014-02-15\",\"metrics\":[{"
        "\"name\":\"orders\",\"filter_name\":null,\"filter_value\":null,"
        "\"range\":[[1392336000,2],[1392422400,3]],\"avg\":2.5,\"min\":2,"
        "\"max\":3},{\"name\":\"orders\",\"filter_name\":\"status\",\"filter_"
        "value\":\"paid\",\"range\":[[1392336000,0],[1392422400,1]],\"avg\":0."
        "5,\"min\":0,\"max\":1},{\"name\":\"latency\",\"filter_name\":null,"
        "\"filter_value\":null,\"range\":[[1392336000,null],[1392422400,7.5]],"
        "\"avg\":7.5,\"min\":7.5,\"max\":7.5}],\"name\":\"Orders\","
        "\"generator\":\"GottWall\"}");
    ck_assert_int_eq(nqueries, 3);
    ck_assert_int_eq(last_q.kind, GW_KIND_AVG);
    ck_assert_int_eq(last_q.period, GW_PERIOD_DAY);
    ck_assert_int_eq(last_q.from, D14);
    ck_assert_int_eq(last_q.to, D15);
    /* The query's period: times in the dates below a day. */
    get("/api/v1/embedded/" ID ".json?period=hour&from_date=2014-02-15T08:10:"
        "00&to_date=2014-02-15T09:00:00");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(
        body,
        "{\"project\":\"shop\",\"renderer\":\"bar\",\"period\":\"hour\",\"from_"
        "date\":\"2014-02-15T08:00:00\",\"to_date\":\"2014-02-15T09:00:00\","
        "\"metrics\":[{\"name\":\"orders\",\"filter_name\":null,\"filter_"
        "value\":null,\"range\":[[1392451200,3],[1392454800,0]],\"avg\":1.5,"
        "\"min\":0,\"max\":3},{\"name\":\"orders\",\"filter_name\":\"status\","
        "\"filter_value\":\"paid\",\"range\":[[1392451200,0],[1392454800,0]],"
        "\"avg\":0,\"min\":0,\"max\":0},{\"name\":\"latency\",\"filter_name\":"
        "null,\"filter_value\":null,\"range\":[[1392451200,null],[1392454800,null]],"
        "\"avg\":null,\"min\":null,\"max\":null}],\"name\":\"Orders\",\"generator\":"
        "\"GottWall\"}");
    get("/api/v1/embedded/" ID ".json?period=all");
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(
        strstr(body, "\"period\":\"all\",\"from_date\":\"1970-01-01\",\"to_"
                     "date\":\"1970-01-01\""));
}
END_TEST

START_TEST(test_json_defaults)
{
    char today[16], later[16];
    time_t now = time(NULL);
    json_t *j;

    /* No dates: the 30 days up to today. */
    store("embedded", ID, CHART);
    strftime(today, sizeof(today), "%Y-%m-%d", gmtime(&now));
    get("/api/v1/embedded/" ID ".json?period=&from_date=&to_date=");
    now = time(NULL);
    strftime(later, sizeof(later), "%Y-%m-%d", gmtime(&now));
    ck_assert_int_eq(status, 200);
    j = json_loads(body, 0, NULL);
    ck_assert_uint_eq(
        json_array_size(json_object_get(
            json_array_get(json_object_get(j, "metrics"), 0), "range")),
        30);
    ck_assert_msg(
        strcmp(json_string_value(json_object_get(j, "to_date")), today) == 0 ||
            strcmp(json_string_value(json_object_get(j, "to_date")), later) ==
                0,
        "to_date %s", json_string_value(json_object_get(j, "to_date")));
    json_decref(j);
    /* A chart without period, renderer or name: month, line, the metrics'
     * names; entries without a metric are skipped, half filters are none,
     * unknown metrics are zeros (and not read). */
    store("embedded", ID,
          "{\"project\":\"shop\",\"metrics\":[{\"metric_name\":\"orders\","
          "\"filter_name\":\"status\"},{\"filter_name\":\"x\"},{\"metric_"
          "name\":\"nosuch\"}]}");
    nqueries = 0;
    get("/api/v1/embedded/" ID ".json?from_date=2014-01-01&to_date=2014-02-01");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(
        body,
        "{\"project\":\"shop\",\"renderer\":\"line\",\"period\":\"month\","
        "\"from_date\":\"2014-01-01\",\"to_date\":\"2014-02-01\",\"metrics\":[{"
        "\"name\":\"orders\",\"filter_name\":null,\"filter_value\":null,"
        "\"range\":[[1388534400,0],[1391212800,0]],\"avg\":0,\"min\":0,\"max\":"
        "0},{\"name\":\"nosuch\",\"filter_name\":null,\"filter_value\":null,"
        "\"range\":[[1388534400,0],[1391212800,0]],\"avg\":0,\"min\":0,\"max\":"
        "0}],\"name\":\"orders | nosuch\",\"generator\":\"GottWall\"}");
    ck_assert_int_eq(nqueries, 1);
    ck_assert_ptr_null(last_q.filter_name);
}
END_TEST

/* The "renderer" and "name" of a .json answer for query q. */
static void
json_fields(const char *q, const char *renderer, const char *name)
{
    char path[256];
    json_t *j;

    snprintf(path, sizeof(path),
             "/api/v1/embedded/" ID
             ".json?from_date=2014-02-15&to_date=2014-02-15%s",
             q);
    get(path);
    ck_assert_int_eq(status, 200);
    j = json_loads(body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "renderer")),
                     renderer);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), name);
    json_decref(j);
}

START_TEST(test_json_overrides)
{
    store("embedded", ID, CHART);
    json_fields("", "bar", "Orders");
    json_fields("&renderer=area&name=Q", "area", "Orders");
    json_fields("&renderer=stacked", "stacked", "Orders");
    json_fields("&renderer=stack", "bar", "Orders");
    json_fields("&renderer=pie", "bar", "Orders");
    store("embedded", ID,
          "{\"project\":\"shop\",\"name\":\"\",\"period\":\"day\",\"metrics\":["
          "{\"metric_name\":\"orders\"},{\"metric_name\":\"latency\"}]}");
    json_fields("&renderer=pie&name=Q", "line", "Q");
    json_fields("&name=", "line", "orders | latency");
}
END_TEST

START_TEST(test_json_errors)
{
    static const char *const damaged[] = {
        "{not json", "[1]", "{\"metrics\":[]}",
        "{\"project\":\"shop\",\"metrics\":{}}"};
    size_t i;

    /* Range and period errors are the read API's (400). */
    store("embedded", ID, CHART);
    get("/api/v1/embedded/" ID ".json?from_date=2014-02-15&to_date=2014-02-14");
    ck_assert_api_error(400, "reversed date range: from_date 2014-02-15 is "
                             "after to_date 2014-02-14");
    get("/api/v1/embedded/" ID ".json?period=decade");
    ck_assert_api_error(400, "unknown period \\\"decade\\\": use one of "
                             "minute, hour, day, week, month, year, all");
    cfg.max_points = 5;
    get("/api/v1/embedded/" ID ".json?from_date=2014-02-01&to_date=2014-02-06");
    ck_assert_api_error(
        400, "the range asks for 6 day buckets, more than MAX_POINTS (5): "
             "shorten the range or use a longer period");
    cfg.max_points = 10000;
    /* Damaged charts (500) and a missing one (404). */
    for (i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
        store("embedded", ID, damaged[i]);
        get("/api/v1/embedded/" ID ".json");
        ck_assert_api_error(500, "embedded chart " ID " is damaged");
    }
    get("/api/v1/embedded/" NO_ID ".json");
    ck_assert_api_error(404, "no embedded chart \\\"" NO_ID "\\\"");
    /* The storage's failures, reading the chart or its series. */
    store("embedded", ID, CHART);
    fail = "meta";
    fail_rc = GW_AGAIN;
    fail_msg = "timeout";
    get("/api/v1/embedded/" ID ".json");
    ck_assert_api_error(503, "the storage is unreachable: timeout");
    fail = "query";
    fail_rc = GW_ERR;
    fail_msg = "bad reply";
    get("/api/v1/embedded/" ID ".json");
    ck_assert_api_error(500, "the storage failed: bad reply");
    ck_assert_int_eq(nqueries, 1);
    fail = "get";
    get("/api/v1/embedded/" ID ".html");
    ck_assert_api_error(500, "the storage failed: bad reply");
}
END_TEST

/* ---- The id format and the .html / .js forms ---- */

START_TEST(test_id_format)
{
    /* Any hex digit in the 8-4-4-4-12 shape is asked for (upper case too);
     * the rest is 404 without asking the storage. */
    store("embedded", "ABCDEF01-2345-6789-abcd-ef0123456789", CHART);
    get("/api/v1/embedded/"
        "ABCDEF01-2345-6789-abcd-ef0123456789.json?from_date=2014-02-15&to_"
        "date=2014-02-15");
    ck_assert_int_eq(status, 200);
    get("/api/v1/embedded/" NO_ID "0.json");
    ck_assert_api_error(404, "no embedded chart \\\"" NO_ID "0\\\"");
    get("/api/v1/embedded/0000000-0000-4000-8000-000000000000.json");
    ck_assert_api_error(
        404, "no embedded chart \\\"0000000-0000-4000-8000-000000000000\\\"");
    get("/api/v1/embedded/000000000-000-4000-8000-000000000000.json");
    ck_assert_api_error(
        404, "no embedded chart \\\"000000000-000-4000-8000-000000000000\\\"");
    get("/api/v1/embedded/00000000-0000-4000-8000-00000000000g.js");
    ck_assert_api_error(
        404, "no embedded chart \\\"00000000-0000-4000-8000-00000000000g\\\"");
    get("/api/v1/embedded/00000000-0000-4000-8000_000000000000.json");
    ck_assert_api_error(
        404, "no embedded chart \\\"00000000-0000-4000-8000_000000000000\\\"");
    ck_assert_int_eq(ngets, 1);
    /* .html: the error page (error.html), naming the id (escaped) also
     * when it is malformed, framable as the chart's page is. */
    get("/api/v1/embedded/a&b'c.html");
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(header("Content-Type"), "text/html; charset=utf-8");
    ck_assert_str_eq(body, "<404|Chart not found|There is no embedded chart "
                           "a&amp;b&#39;c: the link is wrong, or the chart "
                           "is no longer shared.|>\n");
    ck_assert_ptr_null(strstr(resp_head, "X-Frame-Options"));
    ck_assert_ptr_null(strstr(resp_head, "frame-ancestors"));
    ck_assert_ptr_nonnull(strstr(resp_head, "Content-Security-Policy: "));
    ck_assert_int_eq(ngets, 1);
    cfg.prefix = "/gw";
    get("/api/v1/embedded/" NO_ID ".html");
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(body, "<404|Chart not found|There is no embedded chart "
                           NO_ID ": the link is wrong, or the chart is no "
                           "longer shared.|/gw>\n");
    cfg.prefix = "";
    /* .js: a comment when the chart is missing. */
    get("/api/v1/embedded/" NO_ID ".js");
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(header("Content-Type"),
                     "application/javascript; charset=utf-8");
    ck_assert_str_eq(body, "/* GottWall: no embedded chart " NO_ID " */\n");
}
END_TEST

/* The page for query q of chart ID. */
static const char *
page(const char *q)
{
    char path[256];

    snprintf(path, sizeof(path), "/api/v1/embedded/" ID ".html%s", q);
    get(path);
    ck_assert_int_eq(status, 200);
    return body;
}

START_TEST(test_html)
{
    store("embedded", ID,
          "{\"project\":\"shop\",\"name\":\"<Orders> & co\",\"metrics\":[]}");
    cfg.prefix = "/gw";
    /* The page fills its frame: width and height are no template values
     * (the template's {{width}}x{{height}} stays as it is). */
    ck_assert_str_eq(page(""), "[&lt;Orders&gt; &amp; co|" ID
                               "|{{width}}x{{height}}|/gw]\n");
    ck_assert_str_eq(header("Content-Type"), "text/html; charset=utf-8");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    ck_assert_str_eq(header("X-Content-Type-Options"), "nosniff");
    ck_assert_str_eq(page("?width=600&height=300"),
                     "[&lt;Orders&gt; &amp; co|" ID "|{{width}}x{{height}}|/gw]\n");
    /* No name (or a damaged chart): a title of its own. */
    store("embedded", ID, "{\"project\":\"shop\",\"metrics\":[]}");
    ck_assert_str_eq(page(""),
                     "[GottWall chart|" ID "|{{width}}x{{height}}|/gw]\n");
    store("embedded", ID, "garbage");
    ck_assert_str_eq(page(""),
                     "[GottWall chart|" ID "|{{width}}x{{height}}|/gw]\n");
}
END_TEST

START_TEST(test_js)
{
    store("embedded", ID, CHART);
    cfg.prefix = "/gw";
    request("GET", "/api/v1/embedded/" ID ".js",
            "Host: stats.example.com\r\nX-Forwarded-Proto: https\r\n", NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(header("Content-Type"),
                     "application/javascript; charset=utf-8");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    /* No width: as wide as the element it is in; 400 px high. */
    ck_assert_str_eq(
        body, "document.write(\"<iframe "
              "src=\\\"https://stats.example.com/gw/api/v1/embedded/" ID
              ".html\\\" title=\\\"Orders\\\" width=\\\"100%\\\" "
              "height=\\\"400\\\" frameborder=\\\"0\\\" "
              "style=\\\"border:0\\\"></iframe>\");\n");
    /* A width: never wider than that element; a wrong height: 400. */
    request("GET", "/api/v1/embedded/" ID ".js?width=1234&height=9",
            "Host: h:1\r\n", NULL);
    ck_assert_str_eq(
        body, "document.write(\"<iframe src=\\\"http://h:1/gw/api/v1/embedded/" ID
              ".html\\\" title=\\\"Orders\\\" width=\\\"1234\\\" "
              "height=\\\"400\\\" frameborder=\\\"0\\\" "
              "style=\\\"border:0;max-width:100%\\\"></iframe>\");\n");
    /* The range, renderer and name of the script's query go on to the
     * page (encoded, &amp; in the attribute); width and height do not. */
    request("GET",
            "/api/v1/embedded/" ID ".js?height=200&from_date=2014-02-15&"
            "to_date=2014-02-16&period=day&renderer=bar&name=a%20%22b%22",
            "Host: h:1\r\n", NULL);
    ck_assert_str_eq(
        body, "document.write(\"<iframe src=\\\"http://h:1/gw/api/v1/embedded/" ID
              ".html?from_date=2014-02-15&amp;to_date=2014-02-16&amp;period="
              "day&amp;renderer=bar&amp;name=a%20%22b%22\\\" "
              "title=\\\"Orders\\\" width=\\\"100%\\\" "
              "height=\\\"200\\\" frameborder=\\\"0\\\" "
              "style=\\\"border:0\\\"></iframe>\");\n");
    /* A name that would end the string, the attribute or the script: the
     * title is HTML-escaped, the whole a JSON (JavaScript) string. */
    store("embedded", ID,
          "{\"project\":\"shop\",\"name\":\"<\\/script>'x\\\"\\n\\\\\\u00e9\"}");
    request("GET", "/api/v1/embedded/" ID ".js", "Host: h:1\r\n", NULL);
    ck_assert_str_eq(
        body, "document.write(\"<iframe src=\\\"http://h:1/gw/api/v1/embedded/" ID
              ".html\\\" title=\\\"&lt;/script&gt;&#39;x&quot;\\n\\\\\\u00E9\\\" "
              "width=\\\"100%\\\" height=\\\"400\\\" frameborder=\\\"0\\\" "
              "style=\\\"border:0\\\"></iframe>\");\n");
    /* Without a name: a title of its own. */
    store("embedded", ID, "{\"project\":\"shop\"}");
    request("GET", "/api/v1/embedded/" ID ".js", "Host: h:1\r\n", NULL);
    ck_assert_ptr_nonnull(strstr(body, "title=\\\"GottWall chart\\\""));
    store("embedded", ID, CHART);
    /* The links need a host; the other forms do not. */
    request("GET", "/api/v1/embedded/" ID ".js", "", NULL);
    ck_assert_http_error(400, "the Host header is missing or not a host name");
    request("GET", "/api/v1/embedded/" ID ".js", "Host: a\"b\r\n", NULL);
    ck_assert_http_error(400, "the Host header is missing or not a host name");
    request("GET", "/api/v1/embedded/" ID ".html", "", NULL);
    ck_assert_int_eq(status, 200);
}
END_TEST

/* ---- GET/PUT dashboard ---- */

START_TEST(test_dashboard)
{
    char *big;
    size_t n;

    request("GET", "/api/v1/dashboard", "X-Key: shop\r\n", NULL);
    ck_assert_http_error(403, "dashboards belong to users: log in to the "
                              "dashboard (project keys have none)");
    request("GET", "/api/v1/dashboard", "X-User: ann@example.com\r\n", NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "{}");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    /* Saved compact, under the user (or "anonymous"), and read back as
     * saved. */
    request("PUT", "/api/v1/dashboard", "X-User: ann@example.com\r\n",
            "{\"version\": 1,  \"widgets\": [ ]}");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "{\"saved\":true}");
    ck_assert_str_eq(stored("dashboards", "ann@example.com\nMain"),
                     "{\"revision\":1,\"doc\":{\"version\":1,\"widgets\":[]}}");
    ck_assert_str_eq(stored("dashboards", "ann@example.com"),
                     "{\"default\":\"Main\",\"names\":[\"Main\"]}");
    request("GET", "/api/v1/dashboard", "X-User: ann@example.com\r\n", NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(header("Content-Type"), "application/json");
    ck_assert_str_eq(header("Cache-Control"), "no-store");
    ck_assert_str_eq(body, "{\"version\":1,\"widgets\":[]}");
    request("PUT", "/api/v1/dashboard", "", "{\"a\": \"\\u00e9\"}");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(stored("dashboards", "anonymous\nMain"),
                     "{\"revision\":1,\"doc\":{\"a\":\"\xc3\xa9\"}}");
    /* Objects only, of at most MAX_DOCUMENT_SIZE (here 512 KiB) as stored
     * (compact): spaces do not count. */
    request("PUT", "/api/v1/dashboard", "", "[1, 2]");
    ck_assert_api_error(
        400, "the dashboard must be a JSON object: got another JSON value");
    request("PUT", "/api/v1/dashboard", "", "{\"a\":");
    ck_assert_api_error(400, "the dashboard must be a JSON object: unexpected "
                             "token near end of file");
    n = 512 * 1024;
    big = malloc(n + 16);
    memset(big, ' ', n + 8);
    big[0] = '{';
    big[n + 6] = '}';
    big[n + 7] = '\0';
    request("PUT", "/api/v1/dashboard", "X-User: big\r\n", big);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(stored("dashboards", "big\nMain"),
                     "{\"revision\":1,\"doc\":{}}");
    /* {"a":"x...x"}: 8 bytes around the string */
    memcpy(big, "{\"a\":\"", 6);
    memset(big + 6, 'x', n - 8);
    memcpy(big + n - 2, "\"}", 3);
    ck_assert_uint_eq(strlen(big), n);
    request("PUT", "/api/v1/dashboard", "X-User: big\r\n", big);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(strlen(stored("dashboards", "big\nMain")),
                      n + strlen("{\"revision\":2,\"doc\":}"));
    memset(big + 6, 'x', n - 7);
    memcpy(big + n - 1, "\"}", 3);
    request("PUT", "/api/v1/dashboard", "X-User: big2\r\n", big);
    ck_assert_api_error(413, "the dashboard is 524289 bytes as stored, more "
                             "than MAX_DOCUMENT_SIZE (524288) allows");
    ck_assert_ptr_null(stored("dashboards", "big2\nMain"));
    free(big);
    /* The storage's failures. */
    fail = "put";
    fail_rc = GW_AGAIN;
    fail_msg = "down";
    request("PUT", "/api/v1/dashboard", "", "{}");
    ck_assert_api_error(503, "the storage is unreachable: down");
    fail = "get";
    request("GET", "/api/v1/dashboard", "", NULL);
    ck_assert_api_error(503, "the storage is unreachable: down");
}
END_TEST

/* ---- The caps and the creator ---- */

START_TEST(test_create_caps)
{
    const char *chart =
        "{\"period\": \"day\", \"metrics\": [{\"metric_name\": \"a\"}]}";
    char user[300], id[400];
    json_t *r, *doc;

    cfg.max_embeds_per_project = 3;
    cfg.max_embeds_per_user = 1;
    post("Host: h\r\nX-User: Ann@Example.com\r\n", chart);
    ck_assert_int_eq(status, 200);
    /* The chart records its creator; users count without case. */
    r = json_loads(body, 0, NULL);
    doc = json_loads(
        stored("embedded", json_string_value(json_object_get(r, "id"))), 0,
        NULL);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "created_by")),
                     "Ann@Example.com");
    json_decref(doc);
    json_decref(r);
    post("Host: h\r\nX-User: ann@example.com\r\n", chart);
    ck_assert_api_error(409, "ann@example.com has created 1 embedded charts, "
                             "as many as MAX_EMBEDS_PER_USER (1) allows");
    ck_assert_str_eq(stored("count", "embedded:user:ann@example.com"), "1");
    /* Storing the chart fails: both counts are put back. */
    fail = "put-chart";
    fail_rc = GW_AGAIN;
    fail_msg = "down";
    post("Host: h\r\nX-User: bob@example.com\r\n", chart);
    ck_assert_api_error(503, "the storage is unreachable: down");
    ck_assert_str_eq(stored("count", "embedded:project:shop"), "1");
    ck_assert_str_eq(stored("count", "embedded:user:bob@example.com"), "0");
    fail = NULL;
    post("Host: h\r\nX-User: bob@example.com\r\n", chart);
    ck_assert_int_eq(status, 200);
    post("Host: h\r\n", chart); /* keys: the project's count only */
    ck_assert_int_eq(status, 200);
    post("Host: h\r\nX-User: cy@example.com\r\n", chart);
    ck_assert_api_error(409, "project \\\"shop\\\" has 3 embedded charts, as "
                             "many as MAX_EMBEDS_PER_PROJECT (3) allows");
    ck_assert_ptr_null(stored("count", "embedded:user:cy@example.com"));
    /* A name too long for an id is counted by its SHA-256. */
    cfg.max_embeds_per_project = 10;
    memset(user, 'u', 255);
    user[255] = '\0';
    snprintf(id, sizeof(id), "Host: h\r\nX-User: %s\r\n", user);
    post(id, chart);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(stored("count", "embedded:user:#"
                                     "c86ac012f631fe949ed8dcecb6fba01cdbe08bf7"
                                     "315c1d03d8a5770b5827e0dc"), "1");
    /* A damaged count refuses (rather than starting again at 0). */
    store("count", "embedded:project:shop", "lots");
    store("embedded-index", "project:shop", "[]"); /* the chart is new */
    post("Host: h\r\n", chart);
    ck_assert_api_error(500, "the storage failed: the count "
                             "count/embedded:project:shop is not a number: "
                             "repair or remove it in the storage");
    /* Over MAX_DOCUMENT_SIZE: 413, nothing counted. */
    store("count", "embedded:project:shop", "4");
    cfg.max_document_bytes = 100;
    post("Host: h\r\n",
         "{\"period\": \"day\", \"name\": \"a long enough name for the chart "
         "to pass one hundred bytes\", \"metrics\": [{\"metric_name\": \"a\"}]}");
    ck_assert_api_error(413, "the embedded chart is 211 bytes as stored, more "
                             "than MAX_DOCUMENT_SIZE (100) allows");
    ck_assert_str_eq(stored("count", "embedded:project:shop"), "4");
}
END_TEST

START_TEST(test_creator_revoked)
{
    char *shop[] = {"shop"}, *blog[] = {"blog"};
    gw__user_t users[] = {{"ann@example.com", "x", 1, shop, 1},
                          {"bob@example.com", "x", 0, NULL, 0}};

    cfg.users = users;
    cfg.nusers = 2;
    store("embedded", ID,
          "{\"project\":\"shop\",\"period\":\"day\",\"metrics\":[],"
          "\"created_by\":\"ANN@example.com\"}");
    get("/api/v1/embedded/" ID ".json");
    ck_assert_int_eq(status, 200);
    /* ann may no longer see shop: the chart answers as one that does not
     * exist, on every form. */
    users[0].projects = blog;
    get("/api/v1/embedded/" ID ".json");
    ck_assert_api_error(404, "no embedded chart \\\"" ID "\\\"");
    get("/api/v1/embedded/" ID ".html");
    ck_assert_int_eq(status, 404);
    get("/api/v1/embedded/" ID ".js");
    ck_assert_int_eq(status, 404);
    /* Back in her list, or no list at all: served again. */
    users[0].restricted = 0;
    get("/api/v1/embedded/" ID ".html");
    ck_assert_int_eq(status, 200);
    /* A creator no longer in USERS: not served; anonymous: served. */
    cfg.nusers = 1;
    users[0].email = "cy@example.com";
    get("/api/v1/embedded/" ID ".json");
    ck_assert_int_eq(status, 404);
    store("embedded", ID,
          "{\"project\":\"shop\",\"period\":\"day\",\"metrics\":[],"
          "\"created_by\":\"anonymous\"}");
    get("/api/v1/embedded/" ID ".json");
    ck_assert_int_eq(status, 200);
    cfg.users = NULL;
    cfg.nusers = 0;
}
END_TEST

static Suite *
embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_create_links);
    tcase_add_test(tc, test_create_normalises);
    tcase_add_test(tc, test_create_chart_errors);
    tcase_add_test(tc, test_create_metric_errors);
    tcase_add_test(tc, test_create_host_and_storage);
    tcase_add_test(tc, test_json_series);
    tcase_add_test(tc, test_json_defaults);
    tcase_add_test(tc, test_json_overrides);
    tcase_add_test(tc, test_json_errors);
    tcase_add_test(tc, test_id_format);
    tcase_add_test(tc, test_html);
    tcase_add_test(tc, test_js);
    tcase_add_test(tc, test_dashboard);
    tcase_add_test(tc, test_create_caps);
    tcase_add_test(tc, test_creator_revoked);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(embed_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(resp);
    return failed == 0 ? 0 : 1;
}
