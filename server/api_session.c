/*
 * server/api_session.c: login sessions that the server can end (issue 16).
 *
 * The cookie is "gw_session=email|issued|seen|mac": the login's time, the
 * time the session was last used (moved at most every
 * min(SESSION_IDLE_TIMEOUT / 4, 5 min)), and the hex HMAC-SHA256, keyed by
 * cookie_secret, of
 *     "gw2|" email "|" issued "|" seen "|" generation "|" hex(SHA256(hash))
 * where hash is the user's password hash in USERS and generation the
 * user's session generation: 16 hex digits kept in the storage as the
 * document ("session", lower-case e-mail) = {"generation": "..."}, absent
 * (all zeros) until the user's first logout. So nothing is stored per
 * session, and yet:
 * - a logout writes a new random generation, which ends every session of
 *   the user, on every server process of the storage and across restarts
 *   (random, not counted up: two processes writing at once can never bring
 *   an old value back);
 * - a new password in USERS (and SIGHUP) ends every session made with the
 *   old one;
 * - a session ends SESSION_MAX_AGE after its login and SESSION_IDLE_TIMEOUT
 *   after its last use, whatever the cookie says.
 * The generations are cached per user and read again when 5 s old
 * (GEN_TTL), before the request is routed: a logout on one process is
 * seen by the others within 5 s, at once by its own. While the storage
 * does not answer, the last generation read is used (a logout elsewhere
 * meanwhile is not seen); a user whose generation was never read is
 * answered 503 (never let in on a guess), and a logout answers 503 and
 * keeps the cookie, since it could not end the session.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "net/http.h"
#include "base/buf.h"
#include "base/log.h"

#define GEN_NS "session"
#define GEN_TTL 5.0   /* s a generation read is used without reading again */
#define GEN_RETRY 1.0 /* s after a failed read before the next one */
#define SKEW 60       /* s a time in a cookie may be ahead of this clock */

struct gw__api_gen_s {
    char *key;     /* the e-mail in lower case: the document's id */
    uint64_t gen;
    int known;     /* gen was read (or written) once */
    double fetched; /* monotonic time gen was last read or written */
    double failed;  /* ... a read last failed */
    char why[GW_ERROR_MAX];
    gw__api_gen_t *next;
};

static double
ses_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- The cookie value ---- */

static void
ses_key(gw__api_t *api, const unsigned char **key, size_t *len)
{
    const gw__config_t *cfg = gw__api_cfg(api);

    if (cfg->cookie_secret != NULL && cfg->cookie_secret[0] != '\0') {
        *key = (const unsigned char *)cfg->cookie_secret;
        *len = strlen(cfg->cookie_secret);
        return;
    }
    if (!api->have_session_key) {
        if (RAND_bytes(api->session_key, sizeof(api->session_key)) != 1)
            memset(api->session_key, 0x5a, sizeof(api->session_key));
        api->have_session_key = 1;
    }
    *key = api->session_key;
    *len = sizeof(api->session_key);
}

static void
ses_hmac(gw__api_t *api, const char *msg, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const unsigned char *key;
    size_t klen;

    ses_key(api, &key, &klen);
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, len, md,
         &mdlen);
    gw__hex_encode(md, mdlen < 32 ? mdlen : 32, out);
}

static void
ses_mac(gw__api_t *api, const char *email, int64_t issued, int64_t seen,
        uint64_t gen, const char *pwhash, char out[65])
{
    unsigned char pw[SHA256_DIGEST_LENGTH];
    char pwhex[65];
    char *msg;
    size_t n = strlen(email) + 160;
    int len;

    SHA256((const unsigned char *)pwhash, strlen(pwhash), pw);
    gw__hex_encode(pw, sizeof(pw), pwhex);
    msg = malloc(n);
    if (msg == NULL) {
        memset(out, 'x', 64); /* matches no cookie */
        out[64] = '\0';
        return;
    }
    len = snprintf(msg, n, "gw2|%s|%lld|%lld|%016llx|%s", email,
                   (long long)issued, (long long)seen, (unsigned long long)gen,
                   pwhex);
    ses_hmac(api, msg, (size_t)len, out);
    OPENSSL_cleanse(msg, n);
    free(msg);
}

char *
gw__api_session_make(gw__api_t *api, const char *email, int64_t issued,
                     int64_t seen, uint64_t gen, const char *pwhash)
{
    size_t n = strlen(email) + 120;
    char *v = malloc(n);
    char mac[65];

    if (v == NULL)
        return NULL;
    ses_mac(api, email, issued, seen, gen, pwhash, mac);
    snprintf(v, n, "%s|%lld|%lld|%s", email, (long long)issued,
             (long long)seen, mac);
    return v;
}

/* A decimal number of s..end, or -1. */
static int64_t
ses_number(const char *s, const char *end)
{
    int64_t v = 0;

    if (s == end || end - s > 18)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

int
gw__api_session_parse(const char *value, gw__api_session_t *s)
{
    const char *bar[3], *p = value + strlen(value);
    int i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < 3; i++) {
        while (p > value && p[-1] != '|')
            p--;
        if (p == value)
            return 0;
        bar[i] = --p; /* the bar before the mac, seen, issued */
    }
    if (strlen(bar[0] + 1) != 64 || (size_t)(bar[2] - value) >= sizeof(s->email) ||
        bar[2] == value)
        return 0;
    s->issued = ses_number(bar[2] + 1, bar[1]);
    s->seen = ses_number(bar[1] + 1, bar[0]);
    if (s->issued < 0 || s->seen < 0)
        return 0;
    memcpy(s->email, value, (size_t)(bar[2] - value));
    s->email[bar[2] - value] = '\0';
    memcpy(s->mac, bar[0] + 1, 65);
    return 1;
}

int
gw__api_session_valid(gw__api_t *api, const gw__api_session_t *s,
                      uint64_t gen, const char *pwhash, int64_t now)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    char mac[65];

    ses_mac(api, s->email, s->issued, s->seen, gen, pwhash, mac);
    if (CRYPTO_memcmp(mac, s->mac, 64) != 0)
        return 0;
    if (s->issued > now + SKEW || s->seen > now + SKEW || s->seen < s->issued)
        return 0;
    if ((double)(now - s->issued) > cfg->session_max_age)
        return 0;
    return cfg->session_idle_timeout <= 0 ||
           (double)(now - s->seen) <= cfg->session_idle_timeout;
}

/* ---- Generations ---- */

static void
ses_lower(const char *email, char *out, size_t size)
{
    size_t i;

    for (i = 0; email[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32
                                                          : email[i]);
    out[i] = '\0';
}

/* The cache entry of a user (created when create is 1), or NULL. Only
 * e-mails of USERS get one, so the cache is as small as USERS. */
static gw__api_gen_t *
ses_gen(gw__api_t *api, const char *email, int create)
{
    char key[256];
    gw__api_gen_t *g;

    ses_lower(email, key, sizeof(key));
    for (g = api->gens; g != NULL; g = g->next)
        if (strcmp(g->key, key) == 0)
            return g;
    if (!create || (g = calloc(1, sizeof(*g))) == NULL)
        return NULL;
    if ((g->key = strdup(key)) == NULL) {
        free(g);
        return NULL;
    }
    g->next = api->gens;
    api->gens = g;
    return g;
}

void
gw__api_sessions_free(gw__api_t *api)
{
    gw__api_gen_t *g, *next;

    for (g = api->gens; g != NULL; g = next) {
        next = g->next;
        free(g->key);
        free(g);
    }
    api->gens = NULL;
}

const gw__user_t *
gw__api_user(const gw__config_t *cfg, const char *email)
{
    size_t i;

    for (i = 0; email != NULL && i < cfg->nusers; i++)
        if (strcasecmp(cfg->users[i].email, email) == 0)
            return &cfg->users[i];
    return NULL;
}

/* The value of cookie name in the Cookie header, copied into out. */
static int
ses_cookie(gw_http_req_t *req, const char *name, char *out, size_t size)
{
    const char *h = gw__http_header(req, "Cookie");
    size_t nlen = strlen(name);

    while (h != NULL && *h) {
        const char *end;

        while (*h == ' ' || *h == ';')
            h++;
        end = strchr(h, ';');
        if (end == NULL)
            end = h + strlen(h);
        if ((size_t)(end - h) > nlen && strncmp(h, name, nlen) == 0 &&
            h[nlen] == '=') {
            size_t vlen = (size_t)(end - h) - nlen - 1;

            if (vlen >= size)
                return 0;
            memcpy(out, h + nlen + 1, vlen);
            out[vlen] = '\0';
            if (vlen >= 2 && out[0] == '"' && out[vlen - 1] == '"') {
                memmove(out, out + 1, vlen - 2);
                out[vlen - 2] = '\0';
            }
            return 1;
        }
        h = end;
    }
    return 0;
}

void
gw__api_cookie_header(gw__api_t *api, gw_http_req_t *req, const char *value,
                      long max_age, char *out, size_t size)
{
    snprintf(out, size,
             "Set-Cookie: %s=%s; Path=%s; Max-Age=%ld; HttpOnly; "
             "SameSite=Lax%s\r\n",
             GW__API_SESSION_COOKIE, value, gw__api_cookie_path(api), max_age,
             gw__api_https(api, req) ? "; Secure" : "");
}

/* The logout form's token: secret, stable while the session lasts (not
 * moved by the last-seen stamp), different for every login. */
static void
ses_csrf(gw__api_t *api, const gw__api_session_t *s, uint64_t gen,
         char out[33])
{
    char msg[400];
    char mac[65];
    int len = snprintf(msg, sizeof(msg), "logout|%s|%lld|%016llx", s->email,
                       (long long)s->issued, (unsigned long long)gen);

    ses_hmac(api, msg, (size_t)len, mac);
    memcpy(out, mac, 32);
    out[32] = '\0';
}

int
gw__api_session_user(gw__api_t *api, gw_http_req_t *req, int refresh,
                     char *email, size_t size, char csrf[33])
{
    const gw__config_t *cfg = gw__api_cfg(api);
    int64_t now = (int64_t)time(NULL);
    char value[1024];
    gw__api_session_t s;
    const gw__user_t *user;
    gw__api_gen_t *g;
    double every;

    if (!ses_cookie(req, GW__API_SESSION_COOKIE, value, sizeof(value)) ||
        !gw__api_session_parse(value, &s) ||
        (user = gw__api_user(cfg, s.email)) == NULL ||
        (g = ses_gen(api, user->email, 0)) == NULL || !g->known ||
        !gw__api_session_valid(api, &s, g->gen, user->password_hash, now) ||
        strlen(s.email) >= size)
        return 0;
    snprintf(email, size, "%s", s.email);
    if (csrf != NULL)
        ses_csrf(api, &s, g->gen, csrf);
    /* Move the last-seen stamp, not on every request. */
    every = cfg->session_idle_timeout / 4 < 300 ? cfg->session_idle_timeout / 4
                                                : 300;
    if (refresh && cfg->session_idle_timeout > 0 &&
        (double)(now - s.seen) >= (every > 1 ? every : 1)) {
        char *v = gw__api_session_make(api, s.email, s.issued, now, g->gen,
                                       user->password_hash);
        char hdr[1400];

        if (v != NULL) {
            gw__api_cookie_header(api, req, v,
                                  (long)(s.issued + cfg->session_max_age - now),
                                  hdr, sizeof(hdr));
            gw__http_add_header(req, hdr);
        }
        free(v);
    }
    return 1;
}

char *
gw__api_session_new(gw__api_t *api, const gw__user_t *user, char *why,
                    size_t size)
{
    gw__api_gen_t *g = ses_gen(api, user->email, 0);
    int64_t now = (int64_t)time(NULL);

    if (g == NULL || !g->known) {
        snprintf(why, size, "%s", g != NULL && g->why[0] ? g->why
                                                         : "not read yet");
        return NULL;
    }
    return gw__api_session_make(api, user->email, now, now, g->gen,
                                user->password_hash);
}

/* ---- Reading and writing generations on the storage thread ---- */

typedef struct ses_call_s {
    gw__api_pending_t base;
    char *key;
    char *data; /* read: the document found; write: what to store */
    size_t len;
    int write;
    uint64_t gen; /* write: the new generation */
    gw__api_resume_fn resume;
} ses_call_t;

static void
ses_found(void *arg, const char *data, size_t len)
{
    ses_call_t *c = arg;

    free(c->data);
    c->data = malloc(len + 1);
    if (c->data == NULL)
        return;
    memcpy(c->data, data, len);
    c->data[len] = '\0';
    c->len = len;
}

static int
ses_job(const gw_storage_ops_t *ops, void *state, void *arg, gw_error_t *err)
{
    ses_call_t *c = arg;

    if (c->write)
        return ops->doc_put(state, GEN_NS, c->key, c->data, c->len, err);
    return ops->doc_get(state, GEN_NS, c->key, ses_found, c, err);
}

static void
ses_release(gw__api_pending_t *p)
{
    ses_call_t *c = (ses_call_t *)p;

    free(c->key);
    free(c->data);
    free(c);
}

/* The generation in a document; a damaged one matches no cookie made
 * before (every session of the user ends; the next logout repairs it). */
static uint64_t
ses_parse_gen(const char *data, const char *key)
{
    json_t *doc = data != NULL ? json_loads(data, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(doc, "generation"));
    uint64_t gen = UINT64_MAX;
    char *end;

    if (data == NULL)
        gen = 0;
    else if (s != NULL && strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16)
        gen = strtoull(s, &end, 16);
    else
        gw__log_warning("server: the session document of %s is damaged: "
                        "its sessions end (a logout writes a new one)", key);
    json_decref(doc);
    return gen;
}

static void
ses_finish(gw__api_pending_t *p, int rc, const gw_error_t *err)
{
    ses_call_t *c = (ses_call_t *)p;
    gw__api_t *api = p->api;
    gw__api_gen_t *g = ses_gen(api, c->key, 1);
    const char *why = err != NULL && err->msg[0] ? err->msg : "no reason given";

    if (rc == GW_OK && g != NULL) {
        g->gen = c->write ? c->gen : ses_parse_gen(c->data, c->key);
        g->known = 1;
        g->fetched = ses_now();
        g->why[0] = '\0';
        if (api->gens_down)
            gw__log_notice("server: the storage answers again: sessions are "
                           "checked against the stored generations");
        api->gens_down = 0;
    } else if (g != NULL) {
        if (!c->write)
            g->failed = ses_now();
        snprintf(g->why, sizeof(g->why), "%s", why);
        if (!api->gens_down)
            gw__log_warning("server: the storage does not answer (%s): "
                            "sessions are checked against the last "
                            "generation read, so a logout on another "
                            "server process is not seen until it answers",
                            why);
        api->gens_down = 1;
    }
    if (c->write) {
        gw__api_logout_done(api, p->req, rc == GW_OK, why);
    } else if (g != NULL && g->known) {
        c->resume(api, p->req);
    } else {
        gw__api_errorf(p->req, 503, "cannot check the session: the storage "
                       "did not answer (%s); try again",
                       rc == GW_OK ? "out of memory" : why);
    }
}

static void
ses_submit(gw__api_t *api, gw_http_req_t *req, const char *key,
           uint64_t gen, int write, gw__api_resume_fn resume)
{
    ses_call_t *c = calloc(1, sizeof(*c));
    char buf[64];

    if (c == NULL || (c->key = strdup(key)) == NULL) {
        free(c);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    c->base.req = req;
    c->base.finish = ses_finish;
    c->base.release = ses_release;
    c->write = write;
    c->gen = gen;
    c->resume = resume;
    if (write) {
        snprintf(buf, sizeof(buf), "{\"generation\":\"%016llx\"}",
                 (unsigned long long)gen);
        c->data = strdup(buf);
        c->len = strlen(buf);
        if (c->data == NULL) {
            ses_release(&c->base);
            gw__http_error(req, 500, "out of memory");
            return;
        }
    }
    gw__api_submit(api, &c->base, ses_job);
}

int
gw__api_session_ready(gw__api_t *api, gw_http_req_t *req, const char *rel,
                      gw__api_resume_fn resume)
{
    const char *method = gw__http_method(req);
    char value[1024];
    char *form = NULL;
    gw__api_session_t s;
    const gw__user_t *user = NULL;
    gw__api_gen_t *g;
    double now = ses_now();

    /* The routes that never look at a session. */
    if (strncmp(rel, "/static/", 8) == 0 || strcmp(rel, "/health") == 0 ||
        strcmp(rel, "/metrics") == 0 ||
        strncmp(rel, "/api/v1/embedded/", 17) == 0)
        return 1;
    if (strcmp(method, "POST") == 0 && strcmp(rel, "/login") == 0) {
        /* A login makes a cookie of the generation: read it now. */
        size_t blen = 0;
        const char *body = gw__http_body(req, &blen);

        form = gw__api_form_field(body ? body : "", blen, "email");
        user = gw__api_user(gw__api_cfg(api), form);
        free(form);
    } else if (ses_cookie(req, GW__API_SESSION_COOKIE, value, sizeof(value)) &&
               gw__api_session_parse(value, &s)) {
        user = gw__api_user(gw__api_cfg(api), s.email);
    }
    if (user == NULL || (g = ses_gen(api, user->email, 1)) == NULL)
        return 1;
    if (g->known && (now - g->fetched < GEN_TTL || now - g->failed < GEN_RETRY))
        return 1;
    ses_submit(api, req, g->key, 0, 0, resume);
    return 0;
}

/* ---- Logout ---- */

static void
ses_clear(gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    char hdr[512];
    char loc[512];

    snprintf(hdr, sizeof(hdr),
             "Set-Cookie: %s=; Path=%s; Max-Age=0; HttpOnly; "
             "SameSite=Lax%s\r\n",
             GW__API_SESSION_COOKIE, gw__api_cookie_path(api),
             gw__api_https(api, req) ? "; Secure" : "");
    /* The login page then says so (login_render). */
    snprintf(loc, sizeof(loc), "%s/login?logged_out=1", cfg->prefix);
    gw__api_redirect(req, loc, hdr);
}

void
gw__api_logout_done(gw__api_t *api, gw_http_req_t *req, int ok,
                    const char *why)
{
    if (ok) {
        ses_clear(api, req);
        return;
    }
    gw__log_warning("server: a logout could not be stored (%s): the "
                    "session goes on; the user was asked to try again", why);
    gw__api_errorf(req, 503, "cannot log out now: the storage did not "
                   "answer (%s), so the session could not be ended on the "
                   "server; the cookie is kept: try again", why);
}

void
gw__api_logout(gw__api_t *api, gw_http_req_t *req)
{
    const char *xrw = gw__http_header(req, "X-Requested-With");
    char email[256], csrf[33], q[512];
    size_t blen = 0;
    const char *body;
    char *token;
    int ok;
    uint64_t gen = 0;
    gw__api_gen_t *g;

    if (!gw__api_session_user(api, req, 0, email, sizeof(email), csrf)) {
        ses_clear(api, req); /* no session: nothing to end on the server */
        return;
    }
    body = gw__http_body(req, &blen);
    token = gw__api_form_field(body ? body : "", blen, "csrf");
    ok = (xrw != NULL && strcmp(xrw, "gottwall") == 0) ||
         (token != NULL && strlen(token) == 32 &&
          CRYPTO_memcmp(token, csrf, 32) == 0);
    free(token);
    if (!ok) {
        gw__api_errorf(req, 403, "logout needs the csrf field of the "
                       "dashboard's logout form (or the header "
                       "X-Requested-With: gottwall)");
        return;
    }
    g = ses_gen(api, email, 0);
    while (gen == 0 || (g != NULL && gen == g->gen))
        if (RAND_bytes((unsigned char *)&gen, sizeof(gen)) != 1) {
            gw__http_error(req, 500, "cannot get random bytes");
            return;
        }
    gw__log_info("server: %s logged out (every session of the user ends)",
                 gw__log_escape(email, q, sizeof(q)));
    ses_submit(api, req, g != NULL ? g->key : email, gen, 1, NULL);
}
