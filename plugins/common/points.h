/*
 * plugins/common/points.h: a growing array of gw_point_t filled by a
 * gw_point_fn, for the storages that read a series' points first and then
 * the kinds' cells (sketches, sets) of the same buckets. Static inline, so
 * each plugin compiles its own copy and still exports only
 * gw_plugin_descriptor.
 */
#ifndef GW_PLUGINS_COMMON_POINTS_H
#define GW_PLUGINS_COMMON_POINTS_H

#include <stdlib.h>

#include <gottwall/storage.h>

typedef struct pc_points_s {
    gw_point_t *p;
    size_t n, cap;
    int oom; /* a realloc failed: the points are incomplete */
} pc_points_t;

/* A gw_point_fn: arg is a pc_points_t (zeroed before the first call). */
static inline void
pc_points_add(void *arg, const gw_point_t *p)
{
    pc_points_t *a = arg;
    gw_point_t *np;

    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;

        if ((np = realloc(a->p, cap * sizeof(*np))) == NULL) {
            a->oom = 1;
            return;
        }
        a->p = np;
        a->cap = cap;
    }
    a->p[a->n++] = *p;
}

#endif /* GW_PLUGINS_COMMON_POINTS_H */
