/*
 * gottwall/plugin.h: the one header a plugin includes, and its descriptor.
 *
 * A plugin is a shared object exporting exactly one symbol,
 * gw_plugin_descriptor. Its first four members are frozen forever, so the
 * core can refuse an incompatible plugin safely:
 *
 *     GW_PLUGIN_DESCRIPTOR = {
 *         GW_PLUGIN_HEADER,
 *         .kind = GW_PLUGIN_STORAGE, .name = "null", .version = "0.1.0",
 *         .description = "drops everything", .storage = &null_ops,
 *     };
 *
 * The core copies the descriptor and the ops table into zero-filled structs
 * of the size it knows, so members added in later minors read as NULL for
 * plugins built before them.
 */
#ifndef GOTTWALL_PLUGIN_H
#define GOTTWALL_PLUGIN_H

#include <stdint.h>

#include <gottwall/common.h>
#include <gottwall/config.h>
#include <gottwall/event.h>
#include <gottwall/host.h>
#include <gottwall/http.h>
#include <gottwall/storage.h>
#include <gottwall/transport.h>
#include <gottwall/version.h>

#define GW_PLUGIN_STORAGE 1u
#define GW_PLUGIN_TRANSPORT 2u

typedef struct gw_plugin_s {
    /* Frozen forever. */
    uint32_t magic;       /* GW_PLUGIN_MAGIC */
    uint16_t abi_major;   /* GW_PLUGIN_ABI_MAJOR as compiled */
    uint16_t abi_minor;   /* GW_PLUGIN_ABI_MINOR as compiled */
    uint32_t struct_size; /* sizeof(gw_plugin_t) as compiled */

    uint32_t kind;           /* GW_PLUGIN_STORAGE or GW_PLUGIN_TRANSPORT */
    const char *name;        /* "redis": unique per kind */
    const char *version;     /* the plugin's own version, "1.2.0" */
    const char *description; /* one line */
    const gw_storage_ops_t *storage;     /* set iff kind is storage */
    const gw_transport_ops_t *transport; /* set iff kind is transport */
} gw_plugin_t;

#define GW_PLUGIN_HEADER                                                      \
    .magic = GW_PLUGIN_MAGIC, .abi_major = GW_PLUGIN_ABI_MAJOR,               \
    .abi_minor = GW_PLUGIN_ABI_MINOR, .struct_size = sizeof(gw_plugin_t)

#define GW_PLUGIN_DESCRIPTOR                                                  \
    GW_EXPORT extern const gw_plugin_t gw_plugin_descriptor;                  \
    const gw_plugin_t gw_plugin_descriptor

#endif /* GOTTWALL_PLUGIN_H */
