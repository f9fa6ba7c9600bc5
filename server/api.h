/*
 * server/api.h: the server role (SPEC §7, §8): the read API, the dashboard's
 * pages and assets, login and sessions, embedded charts, /health and
 * /metrics, served by the core's HTTP server. Every storage call goes
 * through the storage thread (gw__store_call); the loop never blocks.
 */
#ifndef GW_CORE_API_H
#define GW_CORE_API_H

#include <gottwall/common.h>

struct gw__daemon_s;
typedef struct gw__api_s gw__api_t;

/* Listens on host:port (the daemon's config supplies everything else). */
int gw__api_start(struct gw__daemon_s *d, const char *host, int port,
                  gw__api_t **out, gw_error_t *err);

/* Stops accepting, answers what is in flight, frees. */
void gw__api_stop(gw__api_t *api);

#endif /* GW_CORE_API_H */
