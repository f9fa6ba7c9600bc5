/*
 * server/api_host.c: the server role's guard against DNS rebinding (issue
 * 16). A page on attacker.example whose name is re-pointed at this
 * server's address reaches it with "Host: attacker.example": the server
 * role answers only the Host names it is meant to be reached by (its
 * listen address, localhost, 127.0.0.1, [::1] and ALLOWED_HOSTS; any port)
 * and 421 Misdirected Request otherwise, counted as a dropped request of
 * "server" with the reason host_not_allowed. A request without a Host line
 * (HTTP/1.0) passes: a browser always sends one.
 *
 * It is also the guard against cross-site writes (issue 16): a POST, PUT,
 * DELETE or PATCH whose Origin is not the server's own (the scheme of the
 * request, the host and port of its Host), or whose Sec-Fetch-Site is
 * cross-site (or same-site without a matching Origin), gets 403, counted
 * as cross_origin, in every mode, ANONYMOUS_LOGIN included: a form or a
 * text/plain fetch from another site is sent without a CORS preflight. A
 * request with neither header (curl, scripts) passes. The request's
 * scheme is https only when a peer in TRUSTED_PROXIES says so with
 * X-Forwarded-Proto (its last value: the one the nearest proxy set).
 */
#include "api_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/metrics.h"
#include "net/http.h"

#define HOST_MAX 256 /* a DNS name is at most 253 bytes */

static const char host_name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_";
static const char host_ip6_chars[] = "0123456789abcdef:.";

/* Whether s[0..len) is not empty and holds only bytes of accept (compared
 * in lower case). */
static int
host_only(const char *s, size_t len, const char *accept)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] == '\0' ||
            strchr(accept, tolower((unsigned char)s[i])) == NULL)
            return 0;
    return len > 0;
}

/* The host of a Host value without its port, lower case, without the
 * root's trailing dot, into out (HOST_MAX bytes). 0 when the value is no
 * "host", "host:port", "[v6]" or "[v6]:port". */
static int
host_parse(const char *v, char *out)
{
    const char *end, *port;
    size_t n, i;

    while (*v == ' ' || *v == '\t')
        v++;
    end = v + strlen(v);
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (*v == '[') {
        const char *close = memchr(v, ']', (size_t)(end - v));

        if (close == NULL ||
            !host_only(v + 1, (size_t)(close - v - 1), host_ip6_chars))
            return 0;
        port = close + 1;
    } else {
        port = memchr(v, ':', (size_t)(end - v));
        if (port == NULL)
            port = end;
        if (!host_only(v, (size_t)(port - v), host_name_chars) || v[0] == '.')
            return 0;
    }
    if (port < end &&
        (*port != ':' || end - port < 2 || end - port > 6 ||
         !host_only(port + 1, (size_t)(end - port - 1), "0123456789")))
        return 0;
    n = (size_t)(port - v);
    if (n >= HOST_MAX)
        return 0;
    for (i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)v[i]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return 1;
}

int
gw__api_host_allowed(const char *value, const char *listen, char *const *names,
                     size_t nnames)
{
    char host[HOST_MAX];
    size_t i, hl, el;

    for (i = 0; i < nnames; i++)
        if (strcmp(names[i], "*") == 0)
            return 1;
    if (value == NULL)
        return 1;
    if (!host_parse(value, host))
        return 0;
    if (strcmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0 ||
        strcmp(host, "[::1]") == 0 ||
        (listen != NULL && strcmp(host, listen) == 0))
        return 1;
    hl = strlen(host);
    for (i = 0; i < nnames; i++) {
        const char *e = names[i];

        el = strlen(e);
        if (strcmp(host, e) == 0)
            return 1;
        if (e[0] == '.' && (strcmp(host, e + 1) == 0 ||
                            (hl > el && strcmp(host + hl - el, e) == 0)))
            return 1;
    }
    return 0;
}

char *
gw__api_host_listen(const char *host)
{
    size_t n = host != NULL ? strlen(host) : 0, i;
    char *out;

    if (n == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
        strcmp(host, "[::]") == 0)
        return NULL;
    out = malloc(n + 3);
    if (out == NULL)
        return NULL;
    if (strchr(host, ':') != NULL && host[0] != '[')
        snprintf(out, n + 3, "[%s]", host);
    else
        memcpy(out, host, n + 1);
    for (i = 0; out[i] != '\0'; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return out;
}

void
gw__api_host_start(gw__api_t *api, const char *host)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    size_t i;

    api->listen_host = gw__api_host_listen(host);
    for (i = 0; i < cfg->nallowed_hosts; i++) {
        if (strcmp(cfg->allowed_hosts[i], "*") == 0) {
            gw__log_warning("server: ALLOWED_HOSTS holds \"*\": every Host "
                            "name is answered, so a web page can read this "
                            "server through DNS rebinding; list the names "
                            "clients use instead, unless a proxy in front "
                            "checks them");
            return;
        }
    }
    if (api->listen_host == NULL && cfg->nallowed_hosts == 0)
        gw__log_warning("server: listening on every address (%s), but "
                        "answering only Host localhost, 127.0.0.1 and [::1] "
                        "(421 for any other name, a guard against DNS "
                        "rebinding): set ALLOWED_HOSTS = [ "
                        "\"stats.example.com\", \"192.0.2.10\" ]; to the "
                        "names and addresses clients reach it by",
                        host != NULL && host[0] != '\0' ? host : "0.0.0.0");
}

int
gw__api_host_check(gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    const char *v = gw__http_header(req, "Host");
    char shown[HOST_MAX];
    size_t i;

    if (gw__api_host_allowed(v, api->listen_host, cfg->allowed_hosts,
                             cfg->nallowed_hosts))
        return 1;
    gw__metrics_count("server", GW_COUNTER_DROPPED, "host_not_allowed", 1);
    for (i = 0; v[i] != '\0' && i + 1 < sizeof(shown); i++)
        shown[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
    shown[i] = '\0';
    gw__api_errorf(req, 421,
                   "Host \"%s\" is not one of ALLOWED_HOSTS: this server "
                   "answers only the names it is configured for (a guard "
                   "against DNS rebinding); if clients reach it by that "
                   "name, add it to ALLOWED_HOSTS in the config",
                   shown);
    return 0;
}

/* ---- TLS behind a proxy, and the Origin check ---- */

int
gw__api_https(const gw__api_t *api, gw_http_req_t *req)
{
    const gw__config_t *cfg = gw__api_cfg(api);
    const char *v = gw__http_header(req, "X-Forwarded-Proto"), *last;
    size_t n;

    if (v == NULL || !gw__cidr_match(cfg->trusted_proxies,
                                     cfg->ntrusted_proxies, gw__http_peer(req)))
        return 0;
    last = strrchr(v, ',');
    last = last != NULL ? last + 1 : v;
    while (*last == ' ' || *last == '\t')
        last++;
    n = strlen(last);
    while (n > 0 && (last[n - 1] == ' ' || last[n - 1] == '\t'))
        n--;
    return n == 5 && strncasecmp(last, "https", 5) == 0;
}

/* The host (as host_parse) and port (-1: none) of "host[:port]". */
static int
host_split(const char *v, char *host, long *port)
{
    const char *p;

    if (!host_parse(v, host))
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    p = *v == '[' ? strchr(v, ']') + 1 : v + strcspn(v, ":");
    *port = *p == ':' ? strtol(p + 1, NULL, 10) : -1;
    return 1;
}

/* Whether origin is scheme://Host of req (ports by their defaults). */
static int
origin_is_ours(const char *origin, const char *scheme, const char *hostv)
{
    char oh[HOST_MAX], hh[HOST_MAX];
    long op, hp, def = strcmp(scheme, "https") == 0 ? 443 : 80;
    size_t sl = strlen(scheme);

    if (hostv == NULL || strncasecmp(origin, scheme, sl) != 0 ||
        strncmp(origin + sl, "://", 3) != 0 ||
        strpbrk(origin + sl + 3, "/?#@") != NULL ||
        !host_split(origin + sl + 3, oh, &op) || !host_split(hostv, hh, &hp))
        return 0;
    return strcmp(oh, hh) == 0 && (op < 0 ? def : op) == (hp < 0 ? def : hp);
}

int
gw__api_origin_check(gw__api_t *api, gw_http_req_t *req)
{
    const char *m = gw__http_method(req);
    const char *origin = gw__http_header(req, "Origin");
    const char *site = gw__http_header(req, "Sec-Fetch-Site");
    const char *hostv = gw__http_header(req, "Host");
    const char *scheme = gw__api_https(api, req) ? "https" : "http";
    char own[HOST_MAX + 16], shown[HOST_MAX], why[HOST_MAX * 2 + 64];
    int ours = 0;
    size_t i;

    if (strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 &&
        strcmp(m, "DELETE") != 0 && strcmp(m, "PATCH") != 0)
        return 1;
    if (origin != NULL)
        ours = origin_is_ours(origin, scheme, hostv);
    if (origin != NULL && !ours) {
        for (i = 0; origin[i] != '\0' && i + 1 < sizeof(shown); i++)
            shown[i] = (origin[i] >= 0x20 && origin[i] < 0x7f &&
                        origin[i] != '"' && origin[i] != '\\')
                           ? origin[i] : '?';
        shown[i] = '\0';
        snprintf(own, sizeof(own), "%s://%.*s", scheme, HOST_MAX - 1,
                 hostv != NULL ? hostv : "");
        snprintf(why, sizeof(why), "Origin \"%s\" is not this server's "
                 "origin \"%s\"", shown, own);
    } else if (site != NULL &&
               (strcasecmp(site, "cross-site") == 0 ||
                (strcasecmp(site, "same-site") == 0 && !ours))) {
        snprintf(why, sizeof(why), "Sec-Fetch-Site: %s",
                 strcasecmp(site, "cross-site") == 0 ? "cross-site"
                                                     : "same-site");
    } else {
        return 1;
    }
    gw__metrics_count("server", GW_COUNTER_DROPPED, "cross_origin", 1);
    gw__api_errorf(req, 403, "cross-origin request refused: %s; POST, PUT, "
                   "DELETE and PATCH are accepted only from the server's own "
                   "pages or from clients that send no Origin%s", why,
                   origin != NULL ? " (behind a TLS proxy, list it in "
                                    "TRUSTED_PROXIES so that its "
                                    "X-Forwarded-Proto: https is believed)"
                                  : "");
    return 0;
}
