/*
 * core/seed.c: at start-up, what the storage already holds of each project
 * (its metadata): the metrics' kinds, so that the kind rule holds across
 * restarts, and the live series, so that the series limits count them
 * (core/seed.h).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "base/log.h"
#include "seed.h"

/* What seeding shares: its caller's, for the callbacks. */
typedef struct sd_run_s {
    gw__ingest_t *ingest;
    const gw__config_t *cfg;
    int seeding;
    int failed; /* out of memory */
} sd_run_t;

typedef struct sd_seed_s {
    sd_run_t *d;
    char *project;
    char **metrics;
    gw_kind_t *kinds;
    size_t n, cap;
    char **series; /* metric, filter, value for each filter series */
    size_t nseries, capseries;
    int oom;
} sd_seed_t;

/* Appends a copy of s to *list (of *n, room *cap); 1 if memory ran out. */
static int
sd_seed_push(char ***list, size_t *n, size_t *cap, const char *s)
{
    char **l;

    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;

        if ((l = realloc(*list, c * sizeof(char *))) == NULL)
            return 1;
        *list = l;
        *cap = c;
    }
    if (((*list)[*n] = strdup(s)) == NULL)
        return 1;
    (*n)++;
    return 0;
}

/* Runs on the storage thread: keeps one metric's kind, or one series. */
static void
sd_seed_emit(void *arg, const gw_meta_t *m)
{
    sd_seed_t *s = arg;
    gw_kind_t *kinds;

    if (m->metric == NULL || s->oom)
        return;
    if (m->filter_name != NULL) {
        if (m->filter_value != NULL)
            s->oom = sd_seed_push(&s->series, &s->nseries, &s->capseries,
                                  m->metric) ||
                     sd_seed_push(&s->series, &s->nseries, &s->capseries,
                                  m->filter_name) ||
                     sd_seed_push(&s->series, &s->nseries, &s->capseries,
                                  m->filter_value);
        return;
    }
    if (s->n == s->cap) {
        kinds = realloc(s->kinds, (s->cap ? 2 * s->cap : 64) *
                                      sizeof(gw_kind_t));
        if (kinds == NULL) {
            s->oom = 1;
            return;
        }
        s->kinds = kinds;
    }
    s->kinds[s->n] = m->kind;
    s->oom = sd_seed_push(&s->metrics, &s->n, &s->cap, m->metric);
}

static int
sd_seed_job(const gw_storage_ops_t *ops, void *state, void *arg,
            gw_error_t *err)
{
    sd_seed_t *s = arg;

    return ops->metadata(state, s->project, sd_seed_emit, s, err);
}

/* The live series of the project, which count towards its limits from
 * the start; says so when they are over a limit already. */
static void
sd_seed_series(sd_seed_t *s)
{
    gw__ingest_t *ing = s->d->ingest;
    const gw__limits_t *lim = &s->d->cfg->limits;
    size_t i, n;

    for (i = 0; i < s->n && !s->oom; i++)
        s->oom = gw__ingest_seed_series(ing, s->project, s->metrics[i],
                                        NULL, NULL) != GW_OK;
    for (i = 0; i + 2 < s->nseries && !s->oom; i += 3)
        s->oom = gw__ingest_seed_series(ing, s->project, s->series[i],
                                        s->series[i + 1],
                                        s->series[i + 2]) != GW_OK;
    n = gw__ingest_series(ing, s->project);
    if (n >= lim->max_series)
        gw__log_warning("project \"%s\" has %zu series in the storage, "
                        "MAX_SERIES is %zu: events of new series are refused "
                        "(raise MAX_SERIES to accept them)", s->project, n,
                        lim->max_series);
}

static void
sd_seed_done(void *arg, int rc, const gw_error_t *err)
{
    sd_seed_t *s = arg;
    size_t i;

    if (rc == GW_OK && !s->oom && s->d->ingest != NULL)
        sd_seed_series(s);
    if (s->oom) {
        /* Learning the kinds afresh could break the kind rule: stop. */
        gw__log_error("out of memory reading the metrics of project \"%s\" "
                      "from the storage", s->project);
        s->d->failed = 1;
    } else if (rc != GW_OK) {
        gw__log_warning("could not read the metrics of project \"%s\" from "
                        "the storage (%s); their kinds and series are learnt "
                        "afresh", s->project, err != NULL ? err->msg : "");
    }
    for (i = 0; i < s->n; i++) {
        if (rc == GW_OK && !s->oom && s->d->ingest != NULL &&
            gw_kind_name(s->kinds[i]) != NULL)
            gw__ingest_set_kind(s->d->ingest, s->project, s->metrics[i],
                                s->kinds[i]);
        free(s->metrics[i]);
    }
    for (i = 0; i < s->nseries; i++)
        free(s->series[i]);
    s->d->seeding--;
    free(s->series);
    free(s->metrics);
    free(s->kinds);
    free(s->project);
    free(s);
}

int
gw__seed_run(struct ev_loop *loop, gw__store_t *store, gw__ingest_t *ingest,
             const gw__config_t *cfg, const int *stopping)
{
    sd_run_t run = {ingest, cfg, 0, 0}, *d = &run;
    size_t i;

    for (i = 0; i < d->cfg->nprojects; i++) {
        sd_seed_t *s = calloc(1, sizeof(*s));

        if (s != NULL) {
            s->d = d;
            s->project = strdup(d->cfg->projects[i].name);
        }
        if (s == NULL || s->project == NULL ||
            gw__store_call(store, sd_seed_job, sd_seed_done, s) != GW_OK) {
            if (s != NULL)
                free(s->project);
            free(s);
            gw__log_error("out of memory reading the metrics' kinds");
            d->failed = 1;
            break;
        }
        d->seeding++;
    }
    /* The callbacks run on this loop; nothing else may start before. */
    while (d->seeding > 0 && !*stopping)
        ev_run(loop, EVRUN_ONCE);
    return d->failed ? GW_ERR : GW_OK;
}
