/*
 * base/conf_int.h: what the config readers of base/ share (base/conf.c,
 * base/conf_server.c). Not for other layers.
 */
#ifndef GW_BASE_CONF_INT_H
#define GW_BASE_CONF_INT_H

#include <libconfig.h>

#include "conf.h"

/* "file:line: message" into err (the line of s, or 0); returns GW_ERR. */
GW_PRINTF(4, 5) int gw__cf_fail(gw_error_t *err, const config_setting_t *s,
                                const char *path, const char *fmt, ...);
/* "an integer", "a string", ... for a libconfig type. */
const char *gw__cf_type_name(int type);
/* Whether s is an int or int64 setting. */
int gw__cf_is_int(const config_setting_t *s);
/* group.name as a copy in *out (NULL if absent and not required). */
int gw__cf_get_string(const gw__config_t *cfg, const config_setting_t *group,
                      const char *what, const char *name, int required,
                      char **out, gw_error_t *err);
/* Refuses members of group other than names[0..count). */
int gw__cf_only(const gw__config_t *cfg, const config_setting_t *group,
                const char *what, const char *const *names, size_t count,
                gw_error_t *err);

/* SERVER, USERS and ALLOWED_HOSTS (base/conf_server.c). */
int gw__cf_read_server(gw__config_t *cfg, const config_setting_t *g,
                       gw_error_t *err);
int gw__cf_read_users(gw__config_t *cfg, const config_setting_t *l,
                      gw_error_t *err);
/* RETENTION (base/conf_retention.c); s may be NULL (absent). PERIODS
 * must be read before. */
int gw__cf_read_retention(gw__config_t *cfg, const config_setting_t *s,
                          gw_error_t *err);
int gw__cf_read_allowed_hosts(gw__config_t *cfg, const config_setting_t *s,
                              gw_error_t *err);
/* TRUSTED_PROXIES (base/conf_server.c); the default when s is NULL. */
int gw__cf_read_trusted_proxies(gw__config_t *cfg, const config_setting_t *s,
                                gw_error_t *err);

#endif
