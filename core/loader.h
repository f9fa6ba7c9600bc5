/*
 * core/loader.h: finds, opens and checks plugins (DESIGN §4). The only user
 * of <dlfcn.h>.
 *
 * A name without '/' is looked up as {kind}_{name}.so in the search
 * directories (PLUGIN_PATH, --plugin-path, GOTTWALL_PLUGIN_PATH, then the
 * installed GW_PLUGINDIR); a name with '/' is a path. Messages name the file
 * and the exact problem:
 *   "{path}: dlopen failed: {dlerror} (a missing library? try ldd)"
 *   "{path}: not a gottwall plugin (no gw_plugin_descriptor)"
 *   "{path}: bad magic 0x%08x"
 *   "{path}: built for plugin ABI {M}.{m}, this daemon has {M}.{m}"
 *   "{path}: descriptor too small"
 *   "{path}: descriptor is incomplete: {what}"
 *   "{path}: {kind} plugin \"{name}\" is already loaded from {other}"
 *   "{kind} plugin \"{name}\" not found in {dir}, {dir}, ..."
 */
#ifndef GW_CORE_LOADER_H
#define GW_CORE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/plugin.h>

typedef struct gw__plugin_s {
    char *path;
    void *dl;
    gw_plugin_t desc;              /* copied, zero-filled beyond its size */
    gw_storage_ops_t storage;      /* copied when kind is storage */
    gw_transport_ops_t transport;  /* copied when kind is transport */
    char *name;                    /* copies of the descriptor's strings */
    char *version;
    char *description;
} gw__plugin_t;

typedef struct gw__loader_s {
    char **dirs;
    size_t ndirs;
    gw__plugin_t **plugins;
    size_t nplugins;
} gw__loader_t;

/* Search order: dirs (in order), then GW_PLUGINDIR. Copies dirs. The
 * installed GW_PLUGINDIR is always searched, last: PLUGIN_PATH,
 * --plugin-path and GOTTWALL_PLUGIN_PATH add directories before it, they
 * do not replace it (SPEC §9). */
/* "storage", "transport" (GW_PLUGIN_*), else "unknown". */
const char *gw__loader_kind_name(uint32_t kind);

void gw__loader_init(gw__loader_t *l, char *const *dirs, size_t ndirs);
void gw__loader_free(gw__loader_t *l); /* dlcloses everything */

/* Loads (or returns the already loaded) plugin of kind and name. */
int gw__loader_load(gw__loader_t *l, uint32_t kind, const char *name,
                    gw__plugin_t **out, gw_error_t *err);

/* Opens a file as a plugin (no lookup), checking it fully. */
int gw__loader_open(gw__loader_t *l, const char *path, gw__plugin_t **out,
                    gw_error_t *err);

/* Calls fn for every *.so in the search directories: with the plugin, or
 * with plugin NULL and the error. For `gottwall plugins`. */
void gw__loader_scan(gw__loader_t *l,
                     void (*fn)(void *arg, const char *path,
                                const gw__plugin_t *plugin,
                                const gw_error_t *err),
                     void *arg);

/* The same for one directory, searched or not (its *.so files in name
 * order): gw__loader_scan calls it for each search directory; a unit
 * suite scans its fixture directory alone, whatever is installed. */
void gw__loader_scan_dir(gw__loader_t *l, const char *dir,
                         void (*fn)(void *arg, const char *path,
                                    const gw__plugin_t *plugin,
                                    const gw_error_t *err),
                         void *arg);

#endif /* GW_CORE_LOADER_H */
