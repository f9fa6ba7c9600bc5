/*
 * server/api_login.c: who may use the dashboard and the read API (SPEC §7).
 *
 * Three ways in: ANONYMOUS_LOGIN = true; a session cookie (api_session.c)
 * set by POST /login after gw__password_verify against USERS; or a
 * project's keys (Basic, GottWallS1, GottWallS3) on API requests of that
 * project.
 *
 * Password guessing is throttled before any check, per address (an IPv6
 * address by its /64) and per account: after a failure no check of that
 * address or e-mail starts for 1 s, doubling per failure up to
 * LOGIN_MAX_DELAY (address, 8 s) and LOGIN_ACCOUNT_MAX_DELAY (account,
 * 60 s); an attempt inside that time is answered 429 with Retry-After and
 * never checked. One check per address and per account runs at a time (a
 * few more wait in line), and the failure is answered only when its delay
 * is over, so a client that waits for its answers never meets a 429. At
 * most 8 run at once; more wait in a queue, where a flood from
 * one address holds at most one place that can run, so other users still
 * get in. A failure is logged with the e-mail escaped, never the password.
 * After login, next is followed only when it is a path under PREFIX that
 * a browser resolves to itself.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "net/auth.h"
#include "net/password.h"
#include "net/http.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"

/* Password checks running at once (each ~0.1 s of one core). */
#define LOGIN_CHECKS 8
/* Logins waiting for a check, in all and per address or account. */
#define LOGIN_QUEUE 256
#define LOGIN_PENDING_MAX 8

const char *
gw__api_cookie_path(const gw__api_t *api)
{
    const gw__config_t *cfg = gw__api_cfg(api);

    return cfg->prefix[0] ? cfg->prefix : "/";
}

/* ---- Access ---- */

void
gw__api_access(gw__api_t *api, gw_http_req_t *req, const char *project,
               gw__api_who_t *who)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    gw__auth_t *auth = api->env.auth(api->env.ctx);
    const char *header = gw__http_header(req, "X-GottWall-Auth");
    gw_auth_req_t ar;
    gw_error_t err;
    const char *authed = NULL, *reason = NULL;
    char scope[2048];
    size_t blen = 0;
    int rc;

    memset(who, 0, sizeof(*who));
    if (gw__api_session_user(api, req, 1, who->user, sizeof(who->user),
                             who->csrf)) {
        who->ok = 1;
        who->via_cookie = 1;
        return;
    }
    if (cfg->anonymous_login) {
        who->ok = 1;
        who->anonymous = 1;
        snprintf(who->user, sizeof(who->user), "anonymous");
        return;
    }
    if (header == NULL)
        header = gw__http_header(req, "Authorization");
    if (header == NULL || header[0] == '\0') {
        snprintf(who->why, sizeof(who->why),
                 "login required: log in at %s/login, or send the "
                 "project's keys (Authorization: Basic public:private, or a "
                 "GottWallS1/GottWallS3/GottWallS4 X-GottWall-Auth header)",
                 cfg->prefix);
        return;
    }
    memset(&ar, 0, sizeof(ar));
    ar.schemes = GW_AUTH_S1 | GW_AUTH_S2 | GW_AUTH_S3 | GW_AUTH_S4 | GW_AUTH_BASIC;
    /* S4's scope: "GET /api/v1/shop/metrics", the path without the query
     * (a header signed for the ingest route is refused here). */
    snprintf(scope, sizeof(scope), "%s %s", gw__http_method(req),
             gw__http_path(req));
    ar.scope = scope;
    ar.scope_len = strlen(scope);
    ar.header = header;
    ar.header_len = strlen(header);
    ar.project = project;
    ar.body = gw__http_body(req, &blen);
    ar.body_len = blen;
    err.msg[0] = '\0';
    rc = GW_ERR;
    if (auth != NULL)
        rc = gw__auth_check(auth, &ar, &authed, &reason, &err);
    if (rc != GW_OK && auth != NULL && project == NULL) {
        /* A route without a project (/api/v1/projects): Basic names none,
         * so find the project whose keys these are. */
        size_t i;

        for (i = 0; i < cfg->nprojects && rc != GW_OK; i++) {
            ar.project = cfg->projects[i].name;
            rc = gw__auth_check(auth, &ar, &authed, NULL, NULL);
        }
        if (rc != GW_OK) {
            reason = "bad_credentials";
            snprintf(err.msg, sizeof(err.msg),
                     "these credentials are no project's keys");
        }
    }
    if (rc != GW_OK || authed == NULL) {
        gw__metrics_count("server", GW_COUNTER_AUTH_FAILED,
                          reason ? reason : "bad_credentials", 1);
        snprintf(who->why, sizeof(who->why), "authentication failed: %s",
                 err.msg[0] ? err.msg : "bad credentials");
        return;
    }
    who->ok = 1;
    who->key_project = authed;
}

/* ---- Login throttling ---- */

static double
login_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The throttle's key of a peer address: IPv4 as it is (also when mapped
 * into IPv6), IPv6 by its /64, which one client usually holds whole. */
static void
login_address_key(const char *peer, char *out, size_t size)
{
    struct in6_addr a;

    if (strchr(peer, ':') == NULL || inet_pton(AF_INET6, peer, &a) != 1) {
        snprintf(out, size, "%s", peer);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        inet_ntop(AF_INET, &a.s6_addr[12], out, (socklen_t)size);
        return;
    }
    memset(&a.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &a, out, (socklen_t)size);
    snprintf(out + strlen(out), size - strlen(out), "/64");
}

/* The throttle's key of an account: the e-mail without case, as USERS
 * compares it. */
static void
login_account_key(const char *email, char *out, size_t size)
{
    size_t i;

    for (i = 0; email[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)email[i]);
    out[i] = '\0';
}

/* ---- Pages ---- */

/* One segment of next's path (len bytes, then end): not empty unless it
 * is the last, not "." or ".." (also spelled %2e), and only well-formed
 * %XX that spell no '/', '\\' or control byte. */
static int
login_segment_ok(const char *s, size_t len, char end)
{
    size_t i, dots = 0, other = 0;

    if (len == 0)
        return end != '/';
    for (i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            char hex[3] = {0, 0, 0};

            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return 0;
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            c = (int)strtol(hex, NULL, 16);
            i += 2;
            if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
                return 0;
        }
        if (c == '.')
            dots++;
        else
            other++;
    }
    return other > 0 || dots > 2;
}

int
gw__api_next_ok(const char *prefix, const char *next)
{
    size_t plen = strlen(prefix);
    const char *p;

    if (next == NULL || strncmp(next, prefix, plen) != 0 || next[plen] != '/')
        return 0;
    /* Printable ASCII only: a browser drops tabs and newlines, reads '\\'
     * as '/', and may fold other bytes. */
    for (p = next; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
            *p == '\\')
            return 0;
    /* The path up to the query or fragment, segment by segment: a
     * leading "//" would name another host, and "." or ".." leave the
     * prefix. */
    for (p = next + 1;;) {
        size_t len = strcspn(p, "/?#");

        if (!login_segment_ok(p, len, p[len]))
            return 0;
        if (p[len] != '/')
            return 1;
        p += len + 1;
    }
}

/* next if it may be followed, else {prefix}/ (in buf). */
static const char *
login_safe_next(const gw__api_t *api, const char *next, char *buf, size_t size)
{
    const gw__config_t *cfg = gw__api_cfg(api);

    if (gw__api_next_ok(cfg->prefix, next) && strlen(next) < size)
        return next;
    snprintf(buf, size, "%s/", cfg->prefix);
    return buf;
}

/* The login page: error in its alert, notice ("You have logged out.") in
 * its status line, and the way to add users only while USERS is empty
 * (nobody can log in then; once there are users, visitors are not told
 * how the server is set up). */
static void
login_render(gw__api_t *api, gw_http_req_t *req, int status,
             const char *error, const char *notice, const char *email,
             const char *next, const char *headers)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    char buf[1024];
    const char *vars[] = {
        "prefix",      cfg->prefix,
        "error",       error ? error : "",
        "error_class", error ? "error" : "error hidden",
        "notice",      notice ? notice : "",
        "no_users",    cfg->nusers == 0 ? "1" : "",
        "email",       email ? email : "",
        "next",        login_safe_next(api, next, buf, sizeof(buf)),
        NULL,          NULL};

    gw__api_page(api, req, status, "login.html", vars, headers);
}

static void
login_render_login(gw__api_t *api, gw_http_req_t *req, int status,
                   const char *error, const char *email, const char *next,
                   const char *headers)
{
    login_render(api, req, status, error, NULL, email, next, headers);
}

void
gw__api_login_page(gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    char *next = gw__http_query_param(gw__http_query(req), "next");
    char *out = gw__http_query_param(gw__http_query(req), "logged_out");
    char email[256];
    char buf[1024];

    if (cfg->anonymous_login ||
        gw__api_session_user(api, req, 1, email, sizeof(email), NULL)) {
        gw__api_redirect(req, login_safe_next(api, next, buf, sizeof(buf)),
                         NULL);
    } else {
        /* ?logged_out=1: where POST /logout sends the browser. */
        login_render(api, req, 200, NULL,
                     out != NULL && strcmp(out, "1") == 0
                         ? "You have logged out."
                         : NULL,
                     NULL, next, NULL);
    }
    free(out);
    free(next);
}

/* '+' is a space. */
char *
gw__api_form_field(const char *body, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fend = amp ? amp : end;

        if ((size_t)(fend - p) >= nlen + 1 && memcmp(p, name, nlen) == 0 &&
            p[nlen] == '=') {
            const char *s = p + nlen + 1;

            return gw__url_decode(s, (size_t)(fend - s), GW__URL_PLUS);
        }
        p = fend + 1;
    }
    return NULL;
}

static void
login_delay_unlink(gw__api_delay_t *dl)
{
    if (dl->prev != NULL)
        dl->prev->nextd = dl->nextd;
    else
        dl->api->delays = dl->nextd;
    if (dl->nextd != NULL)
        dl->nextd->prev = dl->prev;
}

static void
login_delay_free(gw__api_delay_t *dl)
{
    free(dl->email);
    free(dl->next);
    free(dl);
}

static void
login_delay_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    gw__api_delay_t *dl = w->data;

    (void)loop;
    (void)revents;
    login_delay_unlink(dl);
    login_render_login(dl->api, dl->req, 401, "Wrong e-mail or password.",
                       dl->email, dl->next, NULL);
    login_delay_free(dl);
}

/* ---- Password checks, off the loop ----
 *
 * PBKDF2 takes ~0.1 s by design; on the loop it would stall every
 * transport. A login that its throttles let through waits in api->queue
 * until neither its address nor its account has a check running and
 * fewer than LOGIN_CHECKS run; then it runs on a short-lived thread, which
 * marks itself done and wakes the loop through api->login_async; the loop
 * joins it and answers. A waiting login whose address or account got a
 * lockout meanwhile is answered 429 unchecked. At stop the threads are
 * joined (they end within one hash) and every login is answered 503. */

struct gw__api_check_s {
    gw__api_t *api;
    gw_http_req_t *req;
    pthread_t thread;
    char *email, *password, *next, *hash;
    char peer[64];
    /* Its throttles; each counts this login in its pending. */
    gw__throttle_entry_t *by_address, *by_account;
    int known; /* the e-mail is in USERS */
    int ok;    /* set by the thread */
    int done;  /* under api->login_mu */
    struct gw__api_check_s *nextc;
};

static void *
login_check_thread(void *arg)
{
    gw__api_check_t *c = arg;
    int ok = c->hash != NULL && c->password != NULL &&
             gw__password_verify(c->password, c->hash);

    pthread_mutex_lock(&c->api->login_mu);
    c->ok = ok && c->known;
    c->done = 1;
    pthread_mutex_unlock(&c->api->login_mu);
    ev_async_send(c->api->env.loop, &c->api->login_async);
    return NULL;
}

static void
login_check_free(gw__api_check_t *c)
{
    if (c->by_address != NULL)
        c->by_address->pending--;
    if (c->by_account != NULL)
        c->by_account->pending--;
    if (c->password != NULL) {
        OPENSSL_cleanse(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->email);
    free(c->next);
    free(c->hash);
    free(c);
}

/* 429: the login page saying when to try again, unchecked. */
static void
login_throttled(gw__api_t *api, gw__api_check_t *c, double wait,
                const char *reason)
{
    int secs = wait > 1 ? (int)ceil(wait) : 1;
    char msg[96];
    char hdr[48];

    snprintf(msg, sizeof(msg), "Too many login attempts: try again in %d s.",
             secs);
    snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", secs);
    gw__metrics_count("server", GW_COUNTER_AUTH_FAILED, reason, 1);
    login_render_login(api, c->req, 429, msg, c->email, c->next, hdr);
}

/* The answer of a successful check: a cookie and the way back to next. */
static void
login_check_ok(gw__api_t *api, gw__api_check_t *c)
{
    const gw__user_t *user = gw__api_user(gw__api_cfg(api), c->email);
    char why[GW_ERROR_MAX] = "the user is gone";
    char *value = user ? gw__api_session_new(api, user, why, sizeof(why))
                       : NULL;
    char hdr[1400];
    char buf[1024];
    char q[512];

    gw__throttle_reset(c->by_address);
    gw__throttle_reset(c->by_account);
    if (value == NULL) {
        /* The generation is read before the login is routed; only a
         * storage that stopped answering meanwhile gets here. */
        gw__api_errorf(c->req, 503, "cannot log in now: the storage did "
                       "not answer (%s); try again", why);
        return;
    }
    gw__api_cookie_header(api, c->req, value,
                          (long)gw__api_cfg(api)->session_max_age, hdr,
                          sizeof(hdr));
    free(value);
    gw__log_info("server: %s logged in from %s",
                 gw__log_escape(user->email, q, sizeof(q)), c->peer);
    gw__api_redirect(c->req, login_safe_next(api, c->next, buf, sizeof(buf)),
                     hdr);
}

/* The answer once the password is checked: a cookie, or a 401 held until
 * the lockout this failure sets is over. */
static void
login_check_answer(gw__api_t *api, gw__api_check_t *c)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    double now = login_now(), delay, d2;
    gw__api_delay_t *dl;
    char q[512];

    if (c->ok) {
        login_check_ok(api, c);
        return;
    }
    delay = gw__throttle_fail(c->by_address, now, cfg->login_max_delay);
    d2 = gw__throttle_fail(c->by_account, now, cfg->login_account_max_delay);
    if (d2 > delay)
        delay = d2;
    gw__log_warning("server: failed login for \"%s\" from %s (%s; failure %u "
                    "from this address, %u for this account, answering in "
                    "%.0f s)",
                    gw__log_escape(c->email, q, sizeof(q)), c->peer,
                    c->known ? "wrong password" : "unknown user",
                    c->by_address->failures, c->by_account->failures, delay);
    gw__metrics_count("server", GW_COUNTER_AUTH_FAILED, "login", 1);
    dl = calloc(1, sizeof(*dl));
    if (dl == NULL) {
        gw__http_error(c->req, 500, "out of memory");
        return;
    }
    dl->api = api;
    dl->req = c->req;
    dl->email = c->email;
    dl->next = c->next;
    c->email = c->next = NULL;
    ev_timer_init(&dl->timer, login_delay_fire, delay, 0.);
    dl->timer.data = dl;
    dl->nextd = api->delays;
    if (api->delays != NULL)
        api->delays->prev = dl;
    api->delays = dl;
    /* From the loop's time now, not from the start of this iteration: the
     * answer must not come before the lockout (from login_now) is over. */
    ev_now_update(api->env.loop);
    ev_timer_start(api->env.loop, &dl->timer);
}

/* How long c's throttles still hold it (address first), and which. */
static double
login_wait(const gw__api_check_t *c, double now, const char **reason)
{
    double w = gw__throttle_wait(c->by_address, now);

    *reason = "login_throttled_address";
    if (w > 0)
        return w;
    *reason = "login_throttled_account";
    return gw__throttle_wait(c->by_account, now);
}

static void
login_start(gw__api_t *api, gw__api_check_t *c)
{
    c->by_address->busy = c->by_account->busy = 1;
    if (pthread_create(&c->thread, NULL, login_check_thread, c) != 0) {
        c->by_address->busy = c->by_account->busy = 0;
        gw__http_error(c->req, 500, "cannot start the password check");
        login_check_free(c);
        return;
    }
    c->nextc = api->checks;
    api->checks = c;
    api->nchecks++;
}

/* Goes through the queue in order: answers 429 what a lockout now holds,
 * starts what may run, leaves the rest waiting. */
static void
login_schedule(gw__api_t *api)
{
    gw__api_check_t **pp = &api->queue, *prev = NULL;
    double now = login_now();

    while (*pp != NULL) {
        gw__api_check_t *c = *pp;
        const char *reason;
        double wait = login_wait(c, now, &reason);

        if (wait <= 0 && (c->by_address->busy || c->by_account->busy ||
                          api->nchecks >= LOGIN_CHECKS)) {
            prev = c;
            pp = &c->nextc;
            continue;
        }
        *pp = c->nextc;
        if (api->queue_tail == c)
            api->queue_tail = prev;
        api->nqueued--;
        if (wait > 0) {
            login_throttled(api, c, wait, reason);
            login_check_free(c);
        } else {
            login_start(api, c);
        }
    }
}

static void
login_checks_done(struct ev_loop *loop, ev_async *w, int revents)
{
    gw__api_t *api = w->data;
    gw__api_check_t **pp = &api->checks;

    (void)loop;
    (void)revents;
    while (*pp != NULL) {
        gw__api_check_t *c = *pp;
        int done;

        pthread_mutex_lock(&api->login_mu);
        done = c->done;
        pthread_mutex_unlock(&api->login_mu);
        if (!done) {
            pp = &c->nextc;
            continue;
        }
        *pp = c->nextc;
        api->nchecks--;
        pthread_join(c->thread, NULL);
        c->by_address->busy = c->by_account->busy = 0;
        login_check_answer(api, c);
        login_check_free(c);
    }
    login_schedule(api);
}

void
gw__api_auth_start(gw__api_t *api)
{
    if (gw__throttle_init(&api->by_address, GW__API_THROTTLE_SLOTS) != GW_OK ||
        gw__throttle_init(&api->by_account, GW__API_THROTTLE_SLOTS) != GW_OK)
        gw__log_error("server: out of memory for the login throttles: "
                      "every login will answer 503");
    pthread_mutex_init(&api->login_mu, NULL);
    ev_async_init(&api->login_async, login_checks_done);
    api->login_async.data = api;
    ev_async_start(api->env.loop, &api->login_async);
}

/* A login from the form in the body, its password hash found (a dummy one
 * for an unknown e-mail, which costs the same time); NULL if out of
 * memory. */
static gw__api_check_t *
login_check_new(gw__api_t *api, gw_http_req_t *req)
{
    const char *peer = gw__http_peer(req);
    size_t blen = 0;
    const char *body = gw__http_body(req, &blen);
    const gw__user_t *user;
    gw__api_check_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (body == NULL)
        body = "";
    c->api = api;
    c->req = req;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
    c->email = gw__api_form_field(body, blen, "email");
    c->password = gw__api_form_field(body, blen, "password");
    c->next = gw__api_form_field(body, blen, "next");
    user = gw__api_user(gw__api_cfg(api), c->email);
    c->known = user != NULL;
    if (user == NULL && api->dummy_hash == NULL)
        api->dummy_hash = gw__password_hash("not a password");
    c->hash = strdup(user              ? user->password_hash
                     : api->dummy_hash ? api->dummy_hash
                                       : "");
    if (c->hash == NULL) {
        login_check_free(c);
        return NULL;
    }
    return c;
}

/* Finds c's throttles and queues it, or answers it (429 while a lockout
 * holds its address or account or too many of its logins wait, 503 when
 * the queue is full). 1 when queued. */
static int
login_admit(gw__api_t *api, gw__api_check_t *c)
{
    double now = login_now();
    char key[GW__THROTTLE_KEY];
    gw__throttle_entry_t *t;

    login_address_key(c->peer, key, sizeof(key));
    t = gw__throttle_find(&api->by_address, key, now, 1, 0);
    if (t != NULL &&
        (gw__throttle_wait(t, now) > 0 || t->pending >= LOGIN_PENDING_MAX)) {
        login_throttled(api, c, gw__throttle_wait(t, now),
                        "login_throttled_address");
        return 0;
    }
    if (t != NULL) {
        c->by_address = t;
        t->pending++;
        login_account_key(c->email ? c->email : "", key, sizeof(key));
        t = gw__throttle_find(&api->by_account, key, now, 1, c->known);
    }
    if (t != NULL &&
        (gw__throttle_wait(t, now) > 0 || t->pending >= LOGIN_PENDING_MAX)) {
        login_throttled(api, c, gw__throttle_wait(t, now),
                        "login_throttled_account");
        return 0;
    }
    if (t == NULL || api->nqueued >= LOGIN_QUEUE) {
        gw__metrics_count("server", GW_COUNTER_AUTH_FAILED, "login_busy", 1);
        gw__http_respond(c->req, 503, "text/plain; charset=utf-8",
                         "Retry-After: 1\r\n",
                         "too many logins at once: try again\n", 35);
        return 0;
    }
    c->by_account = t;
    t->pending++;
    if (api->queue_tail != NULL)
        api->queue_tail->nextc = c;
    else
        api->queue = c;
    api->queue_tail = c;
    api->nqueued++;
    return 1;
}

void
gw__api_login_post(gw__api_t *api, gw_http_req_t *req)
{
    gw__api_check_t *c;

    /* A form from another site (login CSRF) was refused already: every
     * POST passes gw__api_origin_check. */
    c = login_check_new(api, req);
    if (c == NULL) {
        gw__http_error(req, 500, "out of memory");
        return;
    }
    if (!login_admit(api, c)) {
        login_check_free(c);
        return;
    }
    login_schedule(api);
}

void
gw__api_auth_stop(gw__api_t *api)
{
    gw__api_delay_t *dl, *next;
    gw__api_check_t *c, *cn;

    for (c = api->checks; c != NULL; c = cn) {
        cn = c->nextc;
        pthread_join(c->thread, NULL);
        gw__http_respond(c->req, 503, "text/plain; charset=utf-8", NULL,
                         "the server is stopping\n", 23);
        login_check_free(c);
    }
    api->checks = NULL;
    api->nchecks = 0;
    for (c = api->queue; c != NULL; c = cn) {
        cn = c->nextc;
        gw__http_respond(c->req, 503, "text/plain; charset=utf-8", NULL,
                         "the server is stopping\n", 23);
        login_check_free(c);
    }
    api->queue = api->queue_tail = NULL;
    api->nqueued = 0;
    ev_async_stop(api->env.loop, &api->login_async);
    pthread_mutex_destroy(&api->login_mu);

    for (dl = api->delays; dl != NULL; dl = next) {
        next = dl->nextd;
        ev_timer_stop(api->env.loop, &dl->timer);
        gw__http_respond(dl->req, 503, "text/plain; charset=utf-8", NULL,
                         "the server is stopping\n", 23);
        login_delay_free(dl);
    }
    api->delays = NULL;
    gw__throttle_free(&api->by_address);
    gw__throttle_free(&api->by_account);
}
