/*
 * base/conf_server.c: the settings of the server role in the config file:
 * SERVER, USERS and ALLOWED_HOSTS (base/conf.h).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

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
