/*
 * core/loader.c: finds, opens and checks plugins (DESIGN §4, the loader
 * algorithm of plugin-style-anchors §E). The only user of <dlfcn.h>.
 *
 * Every check reads the plugin's descriptor in place, formats its message
 * and only then dlcloses; a plugin that passes is copied into zero-filled
 * core-owned structs of the size the core knows, so nothing later reads
 * plugin memory through the core's sizeof.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

#ifndef GW_PLUGINDIR
#define GW_PLUGINDIR "/usr/local/lib/gottwall"
#endif

/* The size of the 1.0 descriptor: everything up to the transport ops. */
#define LD_DESC_MIN (offsetof(gw_plugin_t, transport) + sizeof(void *))

const char *
gw__loader_kind_name(uint32_t kind)
{
    switch (kind) {
    case GW_PLUGIN_STORAGE:
        return "storage";
    case GW_PLUGIN_TRANSPORT:
        return "transport";
    }
    return "unknown";
}

void
gw__loader_init(gw__loader_t *l, char *const *dirs, size_t ndirs)
{
    size_t i;

    memset(l, 0, sizeof(*l));
    l->dirs = calloc(ndirs + 1, sizeof(char *));
    for (i = 0; i < ndirs; i++) {
        if (dirs[i] != NULL && dirs[i][0] != '\0')
            l->dirs[l->ndirs++] = strdup(dirs[i]);
    }
    l->dirs[l->ndirs++] = strdup(GW_PLUGINDIR);
}

static void
ld_plugin_free(gw__plugin_t *p)
{
    if (p == NULL)
        return;
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p->path);
    free(p->name);
    free(p->version);
    free(p->description);
    free(p);
}

void
gw__loader_free(gw__loader_t *l)
{
    size_t i;

    for (i = 0; i < l->nplugins; i++)
        ld_plugin_free(l->plugins[i]);
    free(l->plugins);
    for (i = 0; i < l->ndirs; i++)
        free(l->dirs[i]);
    free(l->dirs);
    memset(l, 0, sizeof(*l));
}

static void *
ld_copy(void *dst, size_t dst_size, const void *src, uint32_t src_size)
{
    memset(dst, 0, dst_size);
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
    return dst;
}

/* Checks the descriptor d found in path. GW_OK or GW_ERR with the
 * message. Reads plugin memory: call before dlclose. */
static int
ld_check(gw__loader_t *l, const char *path, const gw_plugin_t *d,
         gw_error_t *err)
{
    size_t i;

    if (d->magic != GW_PLUGIN_MAGIC)
        return gw_error_set(err, "%s: bad magic 0x%08x", path,
                            (unsigned) d->magic);
    if (d->abi_major != GW_PLUGIN_ABI_MAJOR ||
        d->abi_minor > GW_PLUGIN_ABI_MINOR)
        return gw_error_set(err, "%s: built for plugin ABI %u.%u, this daemon "
                            "has %u.%u", path, (unsigned) d->abi_major,
                            (unsigned) d->abi_minor,
                            (unsigned) GW_PLUGIN_ABI_MAJOR,
                            (unsigned) GW_PLUGIN_ABI_MINOR);
    if (d->struct_size < LD_DESC_MIN)
        return gw_error_set(err, "%s: descriptor too small", path);
    if (d->name == NULL || d->name[0] == '\0')
        return gw_error_set(err, "%s: descriptor is incomplete: no name",
                            path);
    if (d->kind == GW_PLUGIN_STORAGE) {
        const gw_storage_ops_t *o = d->storage;

        if (o == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "plugin without storage ops", path);
        if (o->struct_size < offsetof(gw_storage_ops_t, ping))
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops struct_size %u is too small", path,
                                (unsigned) o->struct_size);
        if (o->create == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without create", path);
        if (o->destroy == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without destroy", path);
        if (o->store == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without store", path);
        if (o->query == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without query", path);
        if (o->metadata == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without metadata", path);
        if (o->doc_put == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without doc_put", path);
        if (o->doc_get == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: storage "
                                "ops without doc_get", path);
        /* ABI 1.5: a storage keeping timing answers it with sketches;
         * kinds it cannot know are refused rather than ignored. */
        if (o->struct_size >= offsetof(gw_storage_ops_t, query_timing) +
                                  sizeof(o->query_timing)) {
            if (o->kinds & ~(GW_KIND_BIT(GW_KIND_TIMING) |
                             GW_KIND_BIT(GW_KIND_SET)))
                return gw_error_set(err, "%s: storage ops declare unknown "
                                    "kinds 0x%x", path, (unsigned) o->kinds);
            if ((o->kinds & GW_KIND_BIT(GW_KIND_TIMING)) &&
                o->query_timing == NULL)
                return gw_error_set(err, "%s: descriptor is incomplete: "
                                    "storage keeps timing metrics without "
                                    "query_timing", path);
        }
    } else if (d->kind == GW_PLUGIN_TRANSPORT) {
        const gw_transport_ops_t *o = d->transport;

        if (o == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "plugin without transport ops", path);
        if (o->struct_size < sizeof(gw_transport_ops_t))
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "ops struct_size %u is too small", path,
                                (unsigned) o->struct_size);
        if (o->create == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "ops without create", path);
        if (o->start == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "ops without start", path);
        if (o->stop == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "ops without stop", path);
        if (o->destroy == NULL)
            return gw_error_set(err, "%s: descriptor is incomplete: transport "
                                "ops without destroy", path);
    } else {
        return gw_error_set(err, "%s: descriptor is incomplete: unknown kind "
                            "%u", path, (unsigned) d->kind);
    }
    for (i = 0; i < l->nplugins; i++) {
        const gw__plugin_t *o = l->plugins[i];

        if (o->desc.kind == d->kind && strcmp(o->name, d->name) == 0)
            return gw_error_set(err, "%s: %s plugin \"%s\" is already loaded "
                                "from %s", path, gw__loader_kind_name(d->kind),
                                d->name, o->path);
    }
    return GW_OK;
}

/* Opens and checks path; the plugin is NOT registered in l. */
static int
ld_open(gw__loader_t *l, const char *path, gw__plugin_t **out,
        gw_error_t *err)
{
    const gw_plugin_t *d;
    gw__plugin_t *p;
    void *dl;

    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *e = dlerror();

        return gw_error_set(err, "%s: dlopen failed: %s (a missing library? "
                            "try ldd)", path, e != NULL ? e : "unknown error");
    }
    dlerror();
    d = dlsym(dl, "gw_plugin_descriptor");
    if (d == NULL) {
        gw_error_set(err, "%s: not a gottwall plugin (no "
                     "gw_plugin_descriptor)", path);
        dlclose(dl);
        return GW_ERR;
    }
    if (ld_check(l, path, d, err) != GW_OK) {
        dlclose(dl); /* the message is formatted already */
        return GW_ERR;
    }
    p = calloc(1, sizeof(*p));
    p->path = strdup(path);
    p->dl = dl;
    ld_copy(&p->desc, sizeof(p->desc), d, d->struct_size);
    if (d->kind == GW_PLUGIN_STORAGE)
        ld_copy(&p->storage, sizeof(p->storage), d->storage,
                d->storage->struct_size);
    else
        ld_copy(&p->transport, sizeof(p->transport), d->transport,
                d->transport->struct_size);
    p->name = strdup(d->name);
    p->version = strdup(d->version != NULL ? d->version : "");
    p->description = strdup(d->description != NULL ? d->description : "");
    /* From here on the core uses its own copies only. */
    p->desc.storage = NULL;
    p->desc.transport = NULL;
    p->desc.name = p->name;
    p->desc.version = p->version;
    p->desc.description = p->description;
    *out = p;
    return GW_OK;
}

static void
ld_register(gw__loader_t *l, gw__plugin_t *p)
{
    l->plugins = realloc(l->plugins, (l->nplugins + 1) * sizeof(*l->plugins));
    l->plugins[l->nplugins++] = p;
}

int
gw__loader_open(gw__loader_t *l, const char *path, gw__plugin_t **out,
                gw_error_t *err)
{
    gw__plugin_t *p = NULL;
    char real[PATH_MAX];
    size_t i;

    /* The same file twice is the same plugin, not a duplicate. */
    if (realpath(path, real) != NULL) {
        for (i = 0; i < l->nplugins; i++) {
            char other[PATH_MAX];

            if (realpath(l->plugins[i]->path, other) != NULL &&
                strcmp(real, other) == 0) {
                *out = l->plugins[i];
                return GW_OK;
            }
        }
    }
    if (ld_open(l, path, &p, err) != GW_OK)
        return GW_ERR;
    ld_register(l, p);
    *out = p;
    return GW_OK;
}

int
gw__loader_load(gw__loader_t *l, uint32_t kind, const char *name,
                gw__plugin_t **out, gw_error_t *err)
{
    char path[PATH_MAX], dirs[GW_ERROR_MAX];
    struct stat st;
    size_t i;

    if (strchr(name, '/') != NULL) {
        if (gw__loader_open(l, name, out, err) != GW_OK)
            return GW_ERR;
        if ((*out)->desc.kind != kind)
            return gw_error_set(err, "%s: is a %s plugin, not a %s plugin",
                                name, gw__loader_kind_name((*out)->desc.kind),
                                gw__loader_kind_name(kind));
        return GW_OK;
    }
    for (i = 0; i < l->nplugins; i++) {
        if (l->plugins[i]->desc.kind == kind &&
            strcmp(l->plugins[i]->name, name) == 0) {
            *out = l->plugins[i];
            return GW_OK;
        }
    }
    dirs[0] = '\0';
    for (i = 0; i < l->ndirs; i++) {
        snprintf(path, sizeof(path), "%s/%s_%s.so", l->dirs[i],
                 gw__loader_kind_name(kind), name);
        if (stat(path, &st) == 0) {
            if (gw__loader_open(l, path, out, err) != GW_OK)
                return GW_ERR;
            if ((*out)->desc.kind != kind || strcmp((*out)->name, name) != 0)
                return gw_error_set(err, "%s: holds %s plugin \"%s\", not %s "
                                    "plugin \"%s\"", path,
                                    gw__loader_kind_name((*out)->desc.kind),
                                    (*out)->name, gw__loader_kind_name(kind), name);
            return GW_OK;
        }
        if (i > 0)
            strncat(dirs, ", ", sizeof(dirs) - strlen(dirs) - 1);
        strncat(dirs, l->dirs[i], sizeof(dirs) - strlen(dirs) - 1);
    }
    return gw_error_set(err, "%s plugin \"%s\" not found in %s",
                        gw__loader_kind_name(kind), name, dirs);
}

static int
ld_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

void
gw__loader_scan_dir(gw__loader_t *l, const char *dirname,
                    void (*fn)(void *arg, const char *path,
                               const gw__plugin_t *plugin,
                               const gw_error_t *err),
                    void *arg)
{
    DIR *dir = opendir(dirname);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, j;

    if (dir == NULL)
        return;
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);

        if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) {
            char **grown = realloc(names, (n + 1) * sizeof(char *));

            if (grown == NULL)
                break; /* out of memory: list what was read */
            names = grown;
            if ((names[n] = strdup(e->d_name)) == NULL)
                break;
            n++;
        }
    }
    closedir(dir);
    if (n > 0)
        qsort(names, n, sizeof(char *), ld_cmp);
    for (j = 0; j < n; j++) {
        char path[PATH_MAX];
        gw__plugin_t *p = NULL;
        gw_error_t err;

        snprintf(path, sizeof(path), "%s/%s", dirname, names[j]);
        err.msg[0] = '\0';
        if (gw__loader_open(l, path, &p, &err) == GW_OK)
            fn(arg, path, p, NULL);
        else
            fn(arg, path, NULL, &err);
        free(names[j]);
    }
    free(names);
}

void
gw__loader_scan(gw__loader_t *l,
                void (*fn)(void *arg, const char *path,
                           const gw__plugin_t *plugin, const gw_error_t *err),
                void *arg)
{
    size_t i;

    for (i = 0; i < l->ndirs; i++)
        gw__loader_scan_dir(l, l->dirs[i], fn, arg);
}
