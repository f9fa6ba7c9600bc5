/*
 * tests/fuzz/fuzz_event.c: a libFuzzer target for the ingestion path.
 *
 * Each input goes through gw__ingest_json as a request body (batches
 * allowed), and its lines through gw__ingest_event as a structured event
 * (line 1 the metric name, then "name=value" filters), so that the
 * parsers, the kind map with its undo, the table and the batch expansion
 * see arbitrary bytes. Every 16 inputs the table is swapped out and merged
 * into a batch. Any broken invariant aborts.
 *
 * The JSON also goes through a second ingest with the fast path off: both
 * must give the same result, message and batch, byte for byte.
 *
 * Fuzz:   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk -iquote . \
 *           tests/fuzz/fuzz_event.c ingest/alloc.c ingest/bucket.c \
 *           ingest/event*.c ingest/ingest.c ingest/table.c base/log.c \
 *           -ljansson -lm -o fuzz_event
 *         ./fuzz_event tests/fuzz/corpus/event
 * Replay: tests/fuzz/replay_event (built and run by make check) runs every
 *         file of the corpus through the same function.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#include "fuzz_check.h"

static double
fake_now(void)
{
    return 1392454739.5;
}

static gw__ingest_t *ing, *slow;
static gw__batch_t *batch, *slow_batch;
static unsigned calls;

static void
check_result(int rc, gw__reject_t r, const gw_error_t *err)
{
    FZ_CHECK(rc == GW_OK || rc == GW_ERR);
    if (rc == GW_OK) {
        FZ_CHECK(r == GW__REJECT_NONE);
    } else {
        FZ_CHECK(r != GW__REJECT_NONE);
        FZ_CHECK(err->msg[0] != '\0');
        FZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    }
}

/* Line 1: metric name; further lines: "name=value" filters. */
static void
structured(gw__ingest_t *to, const uint8_t *data, size_t size)
{
    gw_filter_t f[16];
    gw_error_t err = {{0}};
    gw__reject_t r = GW__REJECT_LIMIT;
    gw_event_t ev;
    char *buf, *line, *next, *eq;
    size_t nf = 0;
    int rc;

    if (size > 2048)
        return;
    buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    memset(&ev, 0, sizeof(ev));
    ev.value = (double) (size % 7) - 3;
    ev.action = (gw_action_t) (size % 5);
    ev.has_ts = size % 2;
    ev.ts = 1392454739.0 + (double) size;
    line = buf;
    next = strchr(line, '\n');
    if (next != NULL)
        *next++ = '\0';
    ev.name = line;
    while (next != NULL && nf < 16) {
        line = next;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        eq = strchr(line, '=');
        f[nf].name = line;
        f[nf].value = NULL;
        if (eq != NULL) {
            *eq = '\0';
            f[nf].value = eq + 1;
        }
        nf++;
    }
    ev.filters = f;
    ev.nfilters = nf;
    rc = gw__ingest_event(to, "test_project", &ev, &r, &err);
    check_result(rc, r, &err);
    free(buf);
}

static int
same_str(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* The fast and the jansson path must have built the same batch. */
static void
compare_batches(const gw_batch_t *a, const gw_batch_t *b)
{
    size_t i;

    FZ_CHECK(a->ndeltas == b->ndeltas);
    for (i = 0; i < a->ndeltas; i++) {
        const gw_delta_t *x = &a->deltas[i], *y = &b->deltas[i];

        FZ_CHECK(same_str(x->project, y->project));
        FZ_CHECK(same_str(x->metric, y->metric));
        FZ_CHECK(same_str(x->filter_name, y->filter_name));
        FZ_CHECK(same_str(x->filter_value, y->filter_value));
        FZ_CHECK(x->kind == y->kind && x->period == y->period);
        FZ_CHECK(x->bucket == y->bucket && x->count == y->count);
        FZ_CHECK(memcmp(&x->sum, &y->sum, sizeof(x->sum)) == 0);
        FZ_CHECK(memcmp(&x->ts, &y->ts, sizeof(x->ts)) == 0);
    }
}

static void
flush(void)
{
    gw__table_t *t = gw__ingest_swap(ing);
    gw__table_t *st = gw__ingest_swap(slow);
    const gw_batch_t *v;
    uint64_t dropped = 0, before = gw__batch_events(batch);
    size_t i;

    if (st != NULL) {
        gw__batch_add_table(slow_batch, st, 0x7f, NULL);
        gw__table_free(st);
    }
    if (t == NULL) {
        FZ_CHECK(gw__ingest_pending(ing) == 0);
        return;
    }
    gw__batch_add_table(batch, t, 0x7f, &dropped);
    FZ_CHECK(gw__batch_events(batch) + dropped ==
             before + gw__table_events(t));
    gw__table_free(t);
    v = gw__batch_view(batch);
    FZ_CHECK(v->ndeltas == gw__batch_size(batch) && v->ndeltas <= 512);
    for (i = 0; i < v->ndeltas; i++) {
        FZ_CHECK(strcmp(v->deltas[i].project, "test_project") == 0);
        FZ_CHECK(v->deltas[i].metric[0] != '\0');
        FZ_CHECK((v->deltas[i].filter_name == NULL) ==
              (v->deltas[i].filter_value == NULL));
        FZ_CHECK(v->deltas[i].count > 0);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_error_t err = {{0}};
    gw__reject_t r = GW__REJECT_LIMIT;
    size_t n = 0;
    int rc;

    if (ing == NULL) {
        gw__limits_t l;

        l.max_event_bytes = 4096;
        l.max_filters = 8;
        l.max_filter_values = 8;
        l.max_name_bytes = 64;
        l.max_batch_events = 64;
        l.max_series = 64;
        l.max_pending_series = 512;
        ing = gw__ingest_new(&l, fake_now);
        batch = gw__batch_new("fuzz");
        slow = gw__ingest_new(&l, fake_now);
        gw__ingest_set_fast(slow, 0);
        slow_batch = gw__batch_new("fuzz");
    }
    rc = gw__ingest_json(ing, "test_project", GW_ACTION_DEFAULT,
                         (const char *) data, size, 1, &n, &r, &err);
    check_result(rc, r, &err);
    {
        gw_error_t err2 = {{0}};
        gw__reject_t r2 = GW__REJECT_LIMIT;
        size_t n2 = 0;
        int rc2;

        rc2 = gw__ingest_json(slow, "test_project", GW_ACTION_DEFAULT,
                              (const char *) data, size, 1, &n2, &r2, &err2);
        FZ_CHECK(rc == rc2 && r == r2 && n == n2);
        FZ_CHECK(rc == GW_OK || strcmp(err.msg, err2.msg) == 0);
        FZ_CHECK(gw__ingest_pending(ing) == gw__ingest_pending(slow));
    }
    structured(ing, data, size);
    structured(slow, data, size);
    if (++calls % 16 == 0) {
        flush();
        compare_batches(gw__batch_view(batch), gw__batch_view(slow_batch));
        gw__batch_free(batch);
        batch = gw__batch_new("fuzz");
        gw__batch_free(slow_batch);
        slow_batch = gw__batch_new("fuzz");
    }
    return 0;
}
