/*
 * plugins/common/keyhash.h: the keyed hash (gottwall/hash.h, SipHash-1-3)
 * of a byte string, for the in-tree plugins' in-memory hash tables, whose
 * keys (metric names, filter values, statsd keys) come from the network:
 * with the FNV-1a these tables used before, anyone able to send names
 * could pick ones that all fall into one run of slots. Static, so each
 * plugin (each file that includes this) draws its own key when it is
 * loaded and still exports only gw_plugin_descriptor. Nothing hashed with
 * it is ever stored: its values differ between processes.
 */
#ifndef GW_PLUGINS_COMMON_KEYHASH_H
#define GW_PLUGINS_COMMON_KEYHASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include <gottwall/hash.h>

static gw_hash_key_t pc_hash_key;

/* When the plugin is loaded: getrandom(2), else /dev/urandom, else the
 * clock and an address (a broken sandbox; they still differ per load). */
__attribute__((constructor)) static void
pc_hash_key_draw(void)
{
    FILE *f;
    struct timespec ts;

    if (getrandom(&pc_hash_key, sizeof(pc_hash_key), 0) ==
        (ssize_t) sizeof(pc_hash_key))
        return;
    f = fopen("/dev/urandom", "rbe");
    if (f != NULL) {
        size_t got = fread(&pc_hash_key, 1, sizeof(pc_hash_key), f);

        fclose(f);
        if (got == sizeof(pc_hash_key))
            return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pc_hash_key.k0 = (uint64_t) ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15);
    pc_hash_key.k1 = (uint64_t) (uintptr_t) &ts ^ (uint64_t) ts.tv_sec;
}

static inline uint64_t
pc_hash(const void *key, size_t len)
{
    return gw_hash_bytes(&pc_hash_key, key, len);
}

#endif /* GW_PLUGINS_COMMON_KEYHASH_H */
