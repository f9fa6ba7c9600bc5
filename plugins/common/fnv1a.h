/*
 * plugins/common/fnv1a.h: the FNV-1a hash of a byte string, for the in-tree
 * plugins' in-memory hash tables. Static inline, so each plugin compiles
 * its own copy and still exports only gw_plugin_descriptor. Nothing hashed
 * with it is ever stored, so its values may change between versions.
 */
#ifndef GW_PLUGINS_COMMON_FNV1A_H
#define GW_PLUGINS_COMMON_FNV1A_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t
pc_fnv1a(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = UINT64_C(14695981039346656037);
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#endif /* GW_PLUGINS_COMMON_FNV1A_H */
