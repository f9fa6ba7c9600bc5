/*
 * core/host.h: plugin instances and the host table (gottwall/host.h) the
 * core hands to each of them (core/host.c). Every member of the table
 * finds its instance through ctx->inst, and the process through the
 * instance's daemon (NULL for an instance made outside one, as the unit
 * suites do: then the members that need the process must not be called).
 */
#ifndef GW_CORE_HOST_H
#define GW_CORE_HOST_H

#include <libconfig.h>

#include <gottwall/plugin.h>

#include "loader.h"

struct gw__daemon_s;

/* One plugin instance. ctx.inst points back here. */
struct gw_instance_s {
    gw_ctx_t ctx;
    struct gw__daemon_s *daemon; /* may be NULL (see above) */
    gw__plugin_t *plugin;
    char *name;                  /* instance name */
    char *prefix;                /* log prefix: "transport:http:http" */
    config_setting_t *section;   /* may be NULL */
    void *state;                 /* the plugin's */
    int started;
};
typedef struct gw_instance_s gw__instance_t;

/* A new instance of plugin named name (not created: state is NULL), or
 * NULL when out of memory. */
gw__instance_t *gw__instance_new(struct gw__daemon_s *d, gw__plugin_t *plugin,
                                 const char *name, config_setting_t *section);
/* Destroys the plugin's state (if any) and frees inst (NULL: no-op). */
void gw__instance_free(gw__instance_t *inst);

/* The single host table handed to every plugin instance. */
extern const gw_host_t gw__host;

/* Adds what the calling thread's submits accepted since the last call to
 * the received and accepted counters. Each ingest loop calls it once per
 * iteration; call it before reading those counters on the thread that
 * submitted, and before freeing an instance. */
void gw__host_flush_counts(void);

/* gw__host_flush_counts as the ev_prepare callback every ingest loop runs
 * before each wait for events. */
struct ev_loop;
struct ev_prepare;
void gw__host_counts_cb(struct ev_loop *loop, struct ev_prepare *w,
                        int revents);

#endif /* GW_CORE_HOST_H */
