/*
 * base/conf_server.c: the settings of the server role in the config file:
 * SERVER, USERS, ALLOWED_HOSTS and TRUSTED_PROXIES, and the check of the
 * example's placeholder secrets (base/conf.h).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_int.h"

int
gw__cf_read_server(gw__config_t *cfg, const config_setting_t *g, gw_error_t *err)
{
    static const char *const keys[] = {"HOST", "PORT"};
    const config_setting_t *s;
    char *host = NULL;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return gw__cf_fail(err, g, cfg->path, "SERVER must be a group { HOST = "
                       "\"127.0.0.1\"; PORT = 8889; }, not %s",
                       gw__cf_type_name(config_setting_type(g)));
    if (gw__cf_only(cfg, g, "SERVER", keys, 2, err) != GW_OK ||
        gw__cf_get_string(cfg, g, "SERVER", "HOST", 0, &host, err) != GW_OK)
        return GW_ERR;
    if (host != NULL) {
        free(cfg->server_host);
        cfg->server_host = host;
    }
    if ((s = config_setting_get_member(g, "PORT")) != NULL) {
        if (!gw__cf_is_int(s))
            return gw__cf_fail(err, s, cfg->path, "SERVER.PORT must be an "
                           "integer, not %s",
                           gw__cf_type_name(config_setting_type(s)));
        if (config_setting_get_int64(s) < 0 ||
            config_setting_get_int64(s) > 65535)
            return gw__cf_fail(err, s, cfg->path, "SERVER.PORT must be between "
                           "0 and 65535, not %lld",
                           (long long) config_setting_get_int64(s));
        cfg->server_port = (int) config_setting_get_int64(s);
    }
    return GW_OK;
}

/* USERS[i].projects = [ "shop", ... ]: the projects the user may see, each
 * one of PROJECTS (read before USERS), so a typo is refused here with its
 * line instead of silently hiding a project. */
static int
cf_read_user_projects(gw__config_t *cfg, const config_setting_t *l,
                      const char *what, gw__user_t *us, gw_error_t *err)
{
    int i, n, t = config_setting_type(l);
    size_t k;

    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return gw__cf_fail(err, l, cfg->path, "%s.projects must be a list of "
                       "project names [ \"shop\", \"blog\" ], not %s", what,
                       gw__cf_type_name(t));
    n = config_setting_length(l);
    us->restricted = 1;
    us->projects = calloc(n > 0 ? (size_t) n : 1, sizeof(char *));
    if (us->projects == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, i);
        const char *v;

        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, e, cfg->path, "%s.projects[%d] must be a "
                           "project name in quotes, not %s", what, i,
                           gw__cf_type_name(config_setting_type(e)));
        v = config_setting_get_string(e);
        if (gw__config_project(cfg, v) == NULL) {
            char names[512] = "";

            for (k = 0; k < cfg->nprojects && strlen(names) < 400; k++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names),
                         "%s%s", k ? ", " : "", cfg->projects[k].name);
            return gw__cf_fail(err, e, cfg->path, "%s.projects[%d]: \"%s\" is "
                           "not one of PROJECTS (%s)", what, i, v,
                           cfg->nprojects ? names : "none configured");
        }
        if ((us->projects[us->nprojects] = strdup(v)) == NULL)
            return gw_error_set(err, "out of memory");
        us->nprojects++;
    }
    return GW_OK;
}

int
gw__cf_read_users(gw__config_t *cfg, const config_setting_t *l, gw_error_t *err)
{
    static const char *const keys[] = {"email", "password", "projects"};
    const config_setting_t *pl;
    int i, n, t = config_setting_type(l);

    if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY &&
                                   config_setting_length(l) == 0))
        return gw__cf_fail(err, l, cfg->path, "USERS must be a list ( { email = "
                       "\"...\"; password = \"...\"; }, ... ), not %s",
                       gw__cf_type_name(t));
    n = config_setting_length(l);
    cfg->users = calloc(n > 0 ? (size_t) n : 1, sizeof(gw__user_t));
    for (i = 0; i < n; i++) {
        const config_setting_t *u = config_setting_get_elem(l, i);
        gw__user_t *us = &cfg->users[cfg->nusers];
        char what[32];
        size_t j;

        snprintf(what, sizeof(what), "USERS[%d]", i);
        if (config_setting_type(u) != CONFIG_TYPE_GROUP)
            return gw__cf_fail(err, u, cfg->path, "%s must be a group { email = "
                           "\"...\"; password = \"...\"; }, not %s", what,
                           gw__cf_type_name(config_setting_type(u)));
        cfg->nusers++;
        if (gw__cf_only(cfg, u, what, keys, 3, err) != GW_OK ||
            gw__cf_get_string(cfg, u, what, "email", 1, &us->email, err) !=
                GW_OK ||
            gw__cf_get_string(cfg, u, what, "password", 1, &us->password_hash,
                          err) != GW_OK)
            return GW_ERR;
        if (strncmp(us->password_hash, "pbkdf2-sha256$", 14) != 0)
            return gw__cf_fail(err, config_setting_get_member(u, "password"),
                           cfg->path, "%s.password must be a hash printed "
                           "by `gottwall passwd` (pbkdf2-sha256$...), not a "
                           "plain password", what);
        if ((pl = config_setting_get_member(u, "projects")) != NULL &&
            cf_read_user_projects(cfg, pl, what, us, err) != GW_OK)
            return GW_ERR;
        for (j = 0; j + 1 < cfg->nusers; j++) {
            if (strcasecmp(cfg->users[j].email, us->email) == 0)
                return gw__cf_fail(err, u, cfg->path, "%s: the e-mail \"%s\" is "
                               "already used by USERS[%zu]", what, us->email,
                               j);
        }
    }
    return GW_OK;
}


/* ---- ALLOWED_HOSTS ---- */

/* Whether s (len bytes) holds only bytes of accept. */
static int
cf_only_chars(const char *s, size_t len, const char *accept)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(accept, tolower((unsigned char) s[i])) == NULL)
            return 0;
    return 1;
}

/* Adds ALLOWED_HOSTS[i], e, as the Host check compares it: lower case, an
 * IPv6 address in brackets, no trailing dot. */
static int
cf_add_allowed_host(gw__config_t *cfg, const config_setting_t *e, int i,
                    gw_error_t *err)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_";
    static const char ip6_chars[] = "0123456789abcdef:.";
    const char *v, *colon;
    size_t n, k;
    char *out;

    if (config_setting_type(e) != CONFIG_TYPE_STRING)
        return gw__cf_fail(err, e, cfg->path, "ALLOWED_HOSTS[%d] must be a host "
                       "name in quotes, not %s", i,
                       gw__cf_type_name(config_setting_type(e)));
    v = config_setting_get_string(e);
    colon = strchr(v, ':');
    n = strlen(v);
    if (n == 0)
        return gw__cf_fail(err, e, cfg->path, "ALLOWED_HOSTS[%d] must not be "
                       "empty", i);
    if (colon != NULL && strchr(colon + 1, ':') == NULL && colon[1] != '\0' &&
        cf_only_chars(colon + 1, strlen(colon + 1), "0123456789"))
        return gw__cf_fail(err, e, cfg->path, "ALLOWED_HOSTS[%d]: \"%s\": give "
                       "the name without a port (every port is allowed)", i,
                       v);
    out = malloc(n + 3);
    if (out == NULL)
        return gw_error_set(err, "out of memory");
    if (strcmp(v, "*") == 0) {
        strcpy(out, v);
    } else if (v[0] == '[' && n > 2 && v[n - 1] == ']' &&
               cf_only_chars(v + 1, n - 2, ip6_chars)) {
        strcpy(out, v);
    } else if (colon != NULL && v[0] != '[' && cf_only_chars(v, n, ip6_chars)) {
        snprintf(out, n + 3, "[%s]", v);
    } else if (cf_only_chars(v, n, name_chars) && strcmp(v, ".") != 0 &&
               strstr(v, "..") == NULL) {
        strcpy(out, v);
        if (n > 1 && out[n - 1] == '.')
            out[n - 1] = '\0';
    } else {
        free(out);
        return gw__cf_fail(err, e, cfg->path, "ALLOWED_HOSTS[%d]: \"%s\" is not "
                       "a host name: give only the name "
                       "(\"stats.example.com\"), an address, \".domain\" for "
                       "it and its subdomains, or \"*\" for any", i, v);
    }
    for (k = 0; out[k] != '\0'; k++)
        out[k] = (char) tolower((unsigned char) out[k]);
    cfg->allowed_hosts[cfg->nallowed_hosts++] = out;
    return GW_OK;
}

int
gw__cf_read_allowed_hosts(gw__config_t *cfg, const config_setting_t *s,
                      gw_error_t *err)
{
    int i, n, t = config_setting_type(s);

    if (t != CONFIG_TYPE_STRING && t != CONFIG_TYPE_ARRAY &&
        t != CONFIG_TYPE_LIST)
        return gw__cf_fail(err, s, cfg->path, "ALLOWED_HOSTS must be a host name "
                       "in quotes or a list of them [ \"stats.example.com\", "
                       "\".example.org\" ], not %s", gw__cf_type_name(t));
    n = t == CONFIG_TYPE_STRING ? 1 : config_setting_length(s);
    cfg->allowed_hosts = calloc(n > 0 ? (size_t) n : 1, sizeof(char *));
    if (cfg->allowed_hosts == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < n; i++)
        if (cf_add_allowed_host(cfg, t == CONFIG_TYPE_STRING
                                         ? s : config_setting_get_elem(s, i),
                                i, err) != GW_OK)
            return GW_ERR;
    return GW_OK;
}


/* ---- TRUSTED_PROXIES ---- */

/* Parses "addr" or "addr/bits" into c; 0 if it is neither. */
static int
cf_parse_cidr(const char *v, gw__cidr_t *c)
{
    char buf[64];
    const char *slash = strchr(v, '/');
    size_t n = slash != NULL ? (size_t) (slash - v) : strlen(v);
    int max;
    char *end;
    long bits;

    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, v, n);
    buf[n] = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET, max = 32;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6, max = 128;
    else
        return 0;
    c->bits = max;
    if (slash != NULL) {
        bits = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max ||
            !isdigit((unsigned char) slash[1]))
            return 0;
        c->bits = (int) bits;
    }
    return 1;
}

int
gw__cf_read_trusted_proxies(gw__config_t *cfg, const config_setting_t *s,
                            gw_error_t *err)
{
    static const char *const defaults[] = {"127.0.0.1", "::1"};
    int i, n, t = s != NULL ? config_setting_type(s) : CONFIG_TYPE_ARRAY;

    if (t != CONFIG_TYPE_STRING && t != CONFIG_TYPE_ARRAY &&
        t != CONFIG_TYPE_LIST)
        return gw__cf_fail(err, s, cfg->path, "TRUSTED_PROXIES must be a list "
                       "of addresses or networks [ \"127.0.0.1\", "
                       "\"10.0.0.0/8\" ], not %s", gw__cf_type_name(t));
    n = s == NULL ? 2 : t == CONFIG_TYPE_STRING ? 1 : config_setting_length(s);
    cfg->trusted_proxies = calloc(n > 0 ? (size_t) n : 1, sizeof(gw__cidr_t));
    if (cfg->trusted_proxies == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < n; i++) {
        const config_setting_t *e =
            s == NULL ? NULL
                      : t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, i);
        const char *v = s == NULL ? defaults[i] : NULL;

        if (e != NULL && config_setting_type(e) != CONFIG_TYPE_STRING)
            return gw__cf_fail(err, e, cfg->path, "TRUSTED_PROXIES[%d] must be "
                           "an address in quotes, not %s", i,
                           gw__cf_type_name(config_setting_type(e)));
        if (e != NULL)
            v = config_setting_get_string(e);
        if (!cf_parse_cidr(v, &cfg->trusted_proxies[i]))
            return gw__cf_fail(err, e, cfg->path, "TRUSTED_PROXIES[%d]: \"%s\" "
                           "is not an address or a network: give an IPv4 or "
                           "IPv6 address (\"10.0.0.5\", \"::1\"), or one with "
                           "a prefix length (\"10.0.0.0/8\", \"fd00::/8\"); "
                           "names are not looked up", i, v);
        cfg->ntrusted_proxies++;
    }
    return GW_OK;
}

int
gw__cidr_match(const gw__cidr_t *list, size_t n, const char *addr)
{
    unsigned char a[16];
    int family;
    size_t i;

    if (addr == NULL)
        return 0;
    if (inet_pton(AF_INET, addr, a) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, addr, a) == 1) {
        family = AF_INET6;
        if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a)) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    } else {
        return 0;
    }
    for (i = 0; i < n; i++) {
        const gw__cidr_t *c = &list[i];
        int whole = c->bits / 8, rest = c->bits % 8;

        if (c->family != family || memcmp(a, c->addr, (size_t) whole) != 0)
            continue;
        if (rest == 0 ||
            ((a[whole] ^ c->addr[whole]) & (0xff00 >> rest) & 0xff) == 0)
            return 1;
    }
    return 0;
}

/* ---- The example's placeholder secrets ---- */

int
gw__config_host_loopback(const char *host)
{
    static const gw__cidr_t loop[] = {
        {AF_INET, {127}, 8},
        {AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128}};
    char buf[64];
    size_t n = host != NULL ? strlen(host) : 0;

    if (n > 2 && n < sizeof(buf) && host[0] == '[' && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    return host != NULL &&
           (strcasecmp(host, "localhost") == 0 || gw__cidr_match(loop, 2, host));
}

/* The first listener not on loopback, described into what/where. */
static int
cf_exposed(const gw__config_t *cfg, const char *server_host, int backends,
           char *what, size_t wsize, const char **where)
{
    size_t i;

    if (server_host != NULL && !gw__config_host_loopback(server_host)) {
        snprintf(what, wsize, "the server");
        *where = server_host[0] ? server_host : "every address";
        return 1;
    }
    for (i = 0; backends && i < cfg->nbackends; i++) {
        const char *host = NULL;

        /* Without HOST a shipped transport binds 127.0.0.1. */
        if (cfg->backends[i].section == NULL ||
            !config_setting_lookup_string(cfg->backends[i].section, "HOST",
                                          &host) ||
            gw__config_host_loopback(host))
            continue;
        snprintf(what, wsize, "BACKENDS.%s", cfg->backends[i].instance);
        *where = host[0] ? host : "every address";
        return 1;
    }
    return 0;
}

static const char *
cf_placeholder(const config_setting_t *s)
{
    static const char *const values[] = {"change me", "change me too"};
    const char *v;
    size_t i;

    if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
        return NULL;
    v = config_setting_get_string(s);
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        if (strcmp(v, values[i]) == 0)
            return values[i];
    return NULL;
}

int
gw__config_placeholders(const gw__config_t *cfg, const char *server_host,
                        int backends,
                        void (*emit)(void *arg, int fatal, const char *msg),
                        void *arg)
{
    const config_setting_t *root = config_root_setting(&cfg->lc);
    const config_setting_t *projects = config_setting_get_member(root, "PROJECTS");
    char what[300], name[320], harm[400], msg[2048];
    const char *where = NULL;
    int exposed = cf_exposed(cfg, server_host, backends, what, sizeof(what),
                             &where);
    int fatal = 0, i, n = projects != NULL ? config_setting_length(projects) : 0;

    for (i = -2; i < n; i++) {
        const config_setting_t *s, *p = i >= 0 ? config_setting_get_elem(projects, i) : NULL;
        const char *v;
        gw_error_t err;

        if (i < 0) {
            snprintf(name, sizeof(name), "%s", i == -2 ? "SECRET_KEY" : "cookie_secret");
            s = config_setting_get_member(root, name);
            snprintf(harm, sizeof(harm), "%s", i == -2
                     ? "anyone can sign events and read the data of every "
                       "project that uses it"
                     : "anyone can forge a login cookie for any user");
        } else {
            if (config_setting_type(p) != CONFIG_TYPE_GROUP)
                continue;
            s = config_setting_get_member(p, "private_key");
            snprintf(name, sizeof(name), "PROJECTS.%s.private_key",
                     config_setting_name(p));
            snprintf(harm, sizeof(harm), "anyone can sign events and read "
                     "the data of project %s", config_setting_name(p));
        }
        if ((v = cf_placeholder(s)) == NULL)
            continue;
        /* "file:line: " as every config message starts; the rest is
         * longer than a gw_error_t holds. */
        gw__cf_fail(&err, s, cfg->path, "%s", "");
        if (exposed)
            snprintf(msg, sizeof(msg), "%s%s is \"%s\", the placeholder of "
                     "gottwall.conf.example, and %s listens on %s, not on "
                     "loopback: %s; set %s to a random secret (`gottwall init "
                     "NEW.conf` writes a config with new keys; or use the "
                     "output of `openssl rand -base64 30`)", err.msg, name, v,
                     what, where, harm, name);
        else
            snprintf(msg, sizeof(msg), "%s%s is \"%s\", the placeholder of "
                     "gottwall.conf.example: accepted only because every "
                     "listener is on loopback; set %s to a random secret "
                     "before listening on another address (`gottwall init "
                     "NEW.conf` writes a config with new keys)", err.msg, name,
                     v, name);
        emit(arg, exposed, msg);
        fatal += exposed;
    }
    return fatal;
}
