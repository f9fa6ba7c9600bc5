/*
 * tests/core/test_journal.c: core/journal.c without a daemon.
 *
 * Appends records, rotates, records batches in the manifest and marks
 * segments stored, then reopens the journal and checks what replay hands
 * back: every record of every segment left, grouped by the manifest's
 * batch ids, in order; a manifest grown past its compaction threshold is
 * rewritten without the lines of deleted segments and keeps the others
 * (journal.c is included with a 4 KiB threshold).
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
    ev_loop_destroy(loop);
    {
        char cmd[400];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            FAIL("cleanup");
    }
    printf("journal: replay, groups, durability and manifest compaction "
           "ok\n");
    return 0;
}
