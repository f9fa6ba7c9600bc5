/*
 * gottwall/transport.h: what a transport plugin implements.
 *
 * A transport receives events from the network (or anywhere) and submits
 * them with host->submit_json or host->submit. Everything runs on the loop
 * thread; a transport never blocks.
 */
#ifndef GOTTWALL_TRANSPORT_H
#define GOTTWALL_TRANSPORT_H

#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/host.h>

typedef struct gw_transport_ops_s {
    uint32_t struct_size; /* sizeof(gw_transport_ops_t) as compiled */

    /* Reads config, allocates *state; opens nothing yet. Required. */
    int (*create)(const gw_ctx_t *ctx, void **state, gw_error_t *err);

    /* Opens sockets and starts watchers. GW_OK or GW_ERR (for example
     * "bind 127.0.0.1:8890: Address already in use"). Required. */
    int (*start)(void *state, gw_error_t *err);

    /* Stops accepting; no submit after it returns. Never fails. Required. */
    void (*stop)(void *state);

    /* Frees everything. Never fails. Required. */
    void (*destroy)(void *state);
} gw_transport_ops_t;

#endif /* GOTTWALL_TRANSPORT_H */
