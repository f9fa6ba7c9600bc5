/*
 * tests/core/test_journal.c: core/journal.c without a daemon.
 *
 * Appends records, rotates, records batches in the manifest and marks
 * segments stored, then reopens the journal and checks what replay hands
 * back: every record of every segment left, grouped by the manifest's
 * batch ids, in order; a manifest grown past its compaction threshold is
 * rewritten without the lines of deleted segments and keeps the others
 * (journal.c is included with a 4 KiB threshold). Timing and set events
 * (a structured timing event, JSON set and timing events) replayed into
 * a real ingest come back as the same sketches and members.
 * Exits 0 on success, 1 with a message on the first failure.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The journal itself, with a small manifest threshold so that a few
 * hundred batches reach the compaction. */
#define JN_MANIFEST_MAX 4096
#include "core/journal.c"
#include <gottwall/host.h> /* GW_SUBMIT_BATCH */
#include <math.h>

#include "ingest/ingest.h"

#define FAIL(...)                                                          \
    do {                                                                   \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
        fprintf(stderr, __VA_ARGS__);                                      \
        fprintf(stderr, "\n");                                             \
        exit(1);                                                           \
    } while (0)

typedef struct seen_s {
    unsigned records, events, groups;
    char last_json[64];
    char groups_text[4096];
} seen_t;

static void
on_json(void *arg, double now, const char *project, gw_action_t action,
        unsigned flags, const char *json, size_t len)
{
    seen_t *s = arg;

    if (now != 1392454739.25 || strcmp(project, "p") != 0 ||
        action != GW_ACTION_AVG || flags != 1)
        FAIL("record fields changed: %f %s %d %u", now, project, action,
             flags);
    snprintf(s->last_json, sizeof(s->last_json), "%.*s", (int) len, json);
    s->records++;
}

static void
on_event(void *arg, double now, const char *project, const gw_event_t *ev)
{
    seen_t *s = arg;

    (void) now;
    if (strcmp(project, "p") != 0 || strcmp(ev->name, "ev") != 0 ||
        ev->nfilters != 2 || strcmp(ev->filters[1].value, "b") != 0 ||
        !ev->has_ts || ev->ts != 5.5 || ev->value != -2)
        FAIL("event fields changed");
    s->events++;
}

static void
on_group(void *arg, uint64_t first, uint64_t last, const char *id)
{
    seen_t *s = arg;
    size_t n = strlen(s->groups_text);

    snprintf(s->groups_text + n, sizeof(s->groups_text) - n,
             "%" PRIu64 "-%" PRIu64 ":%s ", first, last, id ? id : "new");
    s->groups++;
}

static void
durable(void *arg, int ok)
{
    *(int *) arg = ok ? 1 : -1;
}

static size_t
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (size_t) st.st_size : 0;
}

static void
append(gw__journal_t *j, int i)
{
    char json[32];
    gw_filter_t f[2] = {{"a", "x"}, {"a", "b"}};
    gw_event_t ev = {NULL, "ev", GW_ACTION_DECR, 1, 5.5, -2, f, 2};

    snprintf(json, sizeof(json), "{\"n\":\"m%d\"}", i);
    gw__journal_append_json(j, 1392454739.25, "p", GW_ACTION_AVG, 1, json,
                            strlen(json));
    gw__journal_append_event(j, 1.0, "p", &ev);
}

/* ---- timing and set events through a replay ---- */

static void
kinds_json(void *arg, double now, const char *project, gw_action_t action,
           unsigned flags, const char *json, size_t len)
{
    gw_error_t err;

    if (gw__ingest_json_at(arg, now, project, action, json, len,
                           (flags & GW_SUBMIT_BATCH) != 0, NULL, NULL,
                           &err) != GW_OK)
        FAIL("replayed JSON refused: %s", err.msg);
}

static void
kinds_event(void *arg, double now, const char *project, const gw_event_t *ev)
{
    gw_error_t err;

    if (ev->action != GW_ACTION_TIMING)
        FAIL("the event's action came back as %d", (int) ev->action);
    if (gw__ingest_event_at(arg, now, project, ev, NULL, &err) != GW_OK)
        FAIL("replayed event refused: %s", err.msg);
}

static void
kinds_group(void *arg, uint64_t first, uint64_t last, const char *id)
{
    (void) arg;
    (void) first;
    (void) last;
    (void) id;
}

/* What the storage would be handed for the replayed events (minute). */
static void
kinds_check(gw__ingest_t *ing)
{
    gw__table_t *t = gw__ingest_swap(ing);
    gw__batch_t *b = gw__batch_new("replayed");
    const gw_batch_t *v;
    int timing = 0, set = 0;
    size_t i;

    if (t == NULL || b == NULL)
        FAIL("nothing replayed");
    gw__batch_add_table(b, t, 1u << GW_PERIOD_MINUTE, NULL);
    v = gw__batch_view(b);
    if (v->data == NULL)
        FAIL("no sketches in the batch");
    for (i = 0; i < v->ndeltas; i++) {
        const gw_delta_t *d = &v->deltas[i];

        if (d->filter_name != NULL)
            continue;
        if (strcmp(d->metric, "lat") == 0) {
            const gw_timing_t *tm = v->data[i].timing;

            if (d->kind != GW_KIND_TIMING || d->count != 3 ||
                d->sum != 35 + 5 + 1000 || tm == NULL || tm->min != 5 ||
                tm->max != 1000 || gw_timing_total(tm) != 3 ||
                fabs(gw_timing_quantile(tm, 0.5) - 35) > 0.35)
                FAIL("timing after replay: kind %d count %lld sum %g",
                     (int) d->kind, (long long) d->count, d->sum);
            timing++;
        } else if (strcmp(d->metric, "users") == 0) {
            if (d->kind != GW_KIND_SET || d->count != 3 ||
                v->data[i].set == NULL || gw_set_count(v->data[i].set) != 2)
                FAIL("set after replay: kind %d count %lld", (int) d->kind,
                     (long long) d->count);
            set++;
        }
    }
    if (timing != 1 || set != 1)
        FAIL("replayed deltas: %d timing, %d set", timing, set);
    gw__table_free(t);
    gw__batch_free(b);
}

static void
kinds_replay(struct ev_loop *loop, const char *dir)
{
    static const char sets[] =
        "[{\"n\": \"users\", \"a\": \"set\", \"v\": \"bob\"}, "
        "{\"n\": \"users\", \"a\": \"set\", \"v\": \"a\\\"b\", \"f\": "
        "{\"env\": \"prod\"}}, {\"n\": \"users\", \"a\": \"set\", "
        "\"v\": \"bob\"}]";
    static const char lat[] = "{\"n\": \"lat\", \"a\": \"timing\", "
                              "\"v\": 1000}";
    gw_filter_t f[1] = {{"host", "a"}};
    gw_event_t ev = {NULL, "lat", GW_ACTION_TIMING, 0, 0, 35, f, 1};
    gw__limits_t lim;
    gw__journal_replay_t cb = {NULL, kinds_json, kinds_event, kinds_group};
    gw__journal_t *j;
    gw__ingest_t *ing;
    gw_error_t err;
    char base[300];

    snprintf(base, sizeof(base), "%s/k", dir);
    if (gw__journal_open(loop, base, 1, 3600, &j, &err) != GW_OK)
        FAIL("open k: %s", err.msg);
    cb.arg = NULL;
    if (gw__journal_replay(j, &cb) != 0) /* opens its first segment */
        FAIL("a new journal replayed something");
    gw__journal_append_event(j, 1392454739.25, "p", &ev);
    ev.value = 5;
    gw__journal_append_event(j, 1392454739.25, "p", &ev);
    gw__journal_append_json(j, 1392454739.25, "p", GW_ACTION_DEFAULT,
                            GW_SUBMIT_BATCH, sets, strlen(sets));
    gw__journal_append_json(j, 1392454739.25, "p", GW_ACTION_DEFAULT, 0, lat,
                            strlen(lat));
    gw__journal_commit(j);
    gw__journal_close(j); /* as a kill -9 after the commit leaves it */

    memset(&lim, 0, sizeof(lim));
    lim.max_event_bytes = 65536;
    lim.max_filters = 32;
    lim.max_filter_values = 64;
    lim.max_name_bytes = 255;
    lim.max_batch_events = 100;
    lim.max_series = 1000;
    ing = gw__ingest_new(&lim, NULL);
    gw__ingest_set_storage_kinds(
        ing, GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET), "s");
    cb.arg = ing;
    if (gw__journal_open(loop, base, 1, 0, &j, &err) != GW_OK)
        FAIL("reopen k: %s", err.msg);
    if (gw__journal_replay(j, &cb) != 4)
        FAIL("replayed other than 4 records");
    kinds_check(ing);
    gw__journal_close(j);
    gw__ingest_free(ing);
}

int
main(void)
{
    char dir[] = "/tmp/gw-journal-test-XXXXXX", base[256], mpath[300];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    gw__journal_replay_t cb = {NULL, on_json, on_event, on_group};
    gw__journal_t *j;
    gw_error_t err;
    seen_t seen;
    uint64_t seq, first = 0;
    int i, ok = 0;
    char id[32];

    if (mkdtemp(dir) == NULL)
        FAIL("mkdtemp");
    snprintf(base, sizeof(base), "%s/j", dir);
    snprintf(mpath, sizeof(mpath), "%s/j.batches", dir);

    /* Run 1: three segments; 1-2 in batch "b1", 3 never tried. */
    if (gw__journal_open(loop, base, 1, 3600, &j, &err) != GW_OK)
        FAIL("open: %s", err.msg);
    memset(&seen, 0, sizeof(seen));
    cb.arg = &seen;
    if (gw__journal_replay(j, &cb) != 0 || seen.groups != 0)
        FAIL("a new journal replayed something");
    append(j, 1);
    gw__journal_when_durable(j, durable, &ok);
    if (ok != 0)
        FAIL("durable before the commit");
    gw__journal_commit(j);
    if (ok != 1)
        FAIL("not durable after the commit");
    if ((seq = gw__journal_rotate(j)) != 1)
        FAIL("first segment %" PRIu64, seq);
    if (gw__journal_rotate(j) != 0)
        FAIL("an empty segment was rotated");
    append(j, 2);
    if (gw__journal_rotate(j) != 2)
        FAIL("second segment");
    gw__journal_batch_begin(j, "b1", 1, 2);
    append(j, 3);
    if (gw__journal_rotate(j) != 3)
        FAIL("third segment");
    append(j, 4); /* the current segment, left at close */
    gw__journal_close(j);

    if (gw__journal_open(loop, base, 1, 0, &j, &err) != GW_OK)
        FAIL("reopen: %s", err.msg);
    memset(&seen, 0, sizeof(seen));
    cb.arg = &seen;
    if (gw__journal_replay(j, &cb) != 8)
        FAIL("replayed %u records", seen.records + seen.events);
    if (seen.records != 4 || seen.events != 4 ||
        strcmp(seen.last_json, "{\"n\":\"m4\"}") != 0)
        FAIL("replay: %u json, %u events, last %s", seen.records,
             seen.events, seen.last_json);
    if (strcmp(seen.groups_text, "1-2:b1 3-4:new ") != 0)
        FAIL("groups: %s", seen.groups_text);

    /* Segments 1..4 stored; with JOURNAL_RETAIN 0 they go at once. Then
     * enough batches to pass the manifest's compaction threshold. */
    gw__journal_stored(j, 4);
    for (i = 0; i < 400; i++) {
        append(j, i);
        seq = gw__journal_rotate(j);
        if (first == 0)
            first = seq;
        snprintf(id, sizeof(id), "batch-%d", i);
        gw__journal_batch_begin(j, id, seq, seq);
        if (i < 390)
            gw__journal_stored(j, seq);
    }
    gw__journal_rotate(j);
    if (file_size(mpath) > JN_MANIFEST_MAX + 64)
        FAIL("manifest not compacted: %zu bytes", file_size(mpath));
    gw__journal_close(j);

    /* The 10 batches not stored are all that is left, each with its id. */
    if (gw__journal_open(loop, base, 1, 0, &j, &err) != GW_OK)
        FAIL("reopen 2: %s", err.msg);
    memset(&seen, 0, sizeof(seen));
    cb.arg = &seen;
    gw__journal_replay(j, &cb);
    if (seen.groups != 10 || seen.records != 10)
        FAIL("after compaction: %u groups, %u records: %.200s", seen.groups,
             seen.records, seen.groups_text);
    if (strstr(seen.groups_text, ":batch-390 ") == NULL ||
        strstr(seen.groups_text, ":batch-399 ") == NULL ||
        strstr(seen.groups_text, ":new") != NULL)
        FAIL("after compaction: %s", seen.groups_text);
    gw__journal_close(j);
    kinds_replay(loop, dir);
    ev_loop_destroy(loop);
    {
        char cmd[400];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            FAIL("cleanup");
    }
    printf("journal: replay, groups, durability, manifest compaction and "
           "timing and set events ok\n");
    return 0;
}
