/*
 * tests/core/test_loader.c: core/loader.c against real plugins: the fixture
 * plugins in tests/fixtures/plugins (deliberately broken ones and two good
 * ones), each refusal with its exact message.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loader.h"

static char fixdir[PATH_MAX];

static void
find_fixtures(void)
{
    const char *b = getenv("GW_BUILDDIR");

    snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/plugins/.libs",
             b != NULL ? b : ".");
}

/* The fixture's path; four rotating buffers, so that one call may use
 * several. */
static char *
fixture(const char *name)
{
    static char p[4][PATH_MAX + 64];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s.so", fixdir, name);
    return p[i];
}

/* Opens name's fixture; expects GW_ERR and "{path}: {msg}". */
static void
expect_refused(const char *name, const char *msg)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL;
    gw_error_t err;
    char want[PATH_MAX + 300];

    gw__loader_init(&l, NULL, 0);
    ck_assert_int_eq(gw__loader_open(&l, fixture(name), &p, &err), GW_ERR);
    snprintf(want, sizeof(want), "%s: %s", fixture(name), msg);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(p);
    ck_assert_uint_eq(l.nplugins, 0);
    gw__loader_free(&l);
}

START_TEST(test_bad_magic)
{
    expect_refused("bad_magic", "bad magic 0xdeadbeef");
}
END_TEST

START_TEST(test_abi_major_next)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "built for plugin ABI %d.0, this daemon has "
             "%d.%d", GW_PLUGIN_ABI_MAJOR + 1, GW_PLUGIN_ABI_MAJOR,
             GW_PLUGIN_ABI_MINOR);
    expect_refused("abi_major_next", msg);
}
END_TEST

START_TEST(test_abi_minor_newer)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "built for plugin ABI %d.%d, this daemon has "
             "%d.%d", GW_PLUGIN_ABI_MAJOR, GW_PLUGIN_ABI_MINOR + 1,
             GW_PLUGIN_ABI_MAJOR, GW_PLUGIN_ABI_MINOR);
    expect_refused("abi_minor_newer", msg);
}
END_TEST

START_TEST(test_no_descriptor)
{
    expect_refused("no_descriptor",
                   "not a gottwall plugin (no gw_plugin_descriptor)");
}
END_TEST

START_TEST(test_small_descriptor)
{
    expect_refused("small_descriptor", "descriptor too small");
}
END_TEST

START_TEST(test_incomplete_ops)
{
    expect_refused("incomplete_ops",
                   "descriptor is incomplete: storage ops without store");
}
END_TEST

START_TEST(test_dlopen_failure)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL;
    gw_error_t err;
    char path[] = "/tmp/gwldrXXXXXX";
    char want[512];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    gw__loader_init(&l, NULL, 0);
    ck_assert_int_eq(gw__loader_open(&l, path, &p, &err), GW_ERR);
    snprintf(want, sizeof(want), "%s: dlopen failed: %s: file too short "
             "(a missing library? try ldd)", path, path);
    ck_assert_str_eq(err.msg, want);
    gw__loader_free(&l);
    unlink(path);
}
END_TEST

START_TEST(test_good_storage)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL, *again = NULL;
    gw_error_t err;
    char *dirs[] = {fixdir};

    gw__loader_init(&l, dirs, 1);
    ck_assert_int_eq(gw__loader_load(&l, GW_PLUGIN_STORAGE, "fixture", &p,
                                     &err),
                     GW_OK);
    ck_assert_str_eq(p->path, fixture("storage_fixture"));
    ck_assert_str_eq(p->name, "fixture");
    ck_assert_str_eq(p->version, "0.0.1");
    ck_assert_str_eq(p->description,
                     "test fixture: in-memory storage that can fail on "
                     "demand");
    ck_assert_uint_eq(p->desc.kind, GW_PLUGIN_STORAGE);
    ck_assert_uint_eq(p->desc.abi_major, GW_PLUGIN_ABI_MAJOR);
    ck_assert_ptr_nonnull(p->storage.create);
    ck_assert_ptr_nonnull(p->storage.store);
    ck_assert_ptr_nonnull(p->storage.ping);
    /* The core keeps its own copies, never pointers into the plugin. */
    ck_assert_ptr_null(p->desc.storage);
    ck_assert_ptr_eq(p->desc.name, p->name);
    /* Loading again returns the same plugin. */
    ck_assert_int_eq(gw__loader_load(&l, GW_PLUGIN_STORAGE, "fixture",
                                     &again, &err),
                     GW_OK);
    ck_assert_ptr_eq(p, again);
    ck_assert_uint_eq(l.nplugins, 1);
    /* The transport of the same name is another plugin. */
    ck_assert_int_eq(gw__loader_load(&l, GW_PLUGIN_TRANSPORT, "fixture",
                                     &again, &err),
                     GW_OK);
    ck_assert_ptr_ne(p, again);
    ck_assert_ptr_nonnull(again->transport.start);
    ck_assert_uint_eq(l.nplugins, 2);
    gw__loader_free(&l);
}
END_TEST

START_TEST(test_duplicate_name)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL;
    gw_error_t err;
    char want[PATH_MAX * 3 + 100];

    gw__loader_init(&l, NULL, 0);
    ck_assert_int_eq(gw__loader_open(&l, fixture("storage_fixture"), &p,
                                     &err),
                     GW_OK);
    ck_assert_int_eq(gw__loader_open(&l, fixture("duplicate_name"), &p,
                                     &err),
                     GW_ERR);
    snprintf(want, sizeof(want), "%s: storage plugin \"fixture\" is already "
             "loaded from %s", fixture("duplicate_name"),
             fixture("storage_fixture"));
    ck_assert_str_eq(err.msg, want);
    ck_assert_uint_eq(l.nplugins, 1);
    gw__loader_free(&l);
}
END_TEST

START_TEST(test_not_found)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL;
    gw_error_t err;
    char *dirs[] = {"/nonexistent/a", fixdir};
    char want[PATH_MAX * 3 + 200];

    gw__loader_init(&l, dirs, 2);
    ck_assert_int_eq(gw__loader_load(&l, GW_PLUGIN_STORAGE, "nosuch", &p,
                                     &err),
                     GW_ERR);
    snprintf(want, sizeof(want), "storage plugin \"nosuch\" not found in "
             "/nonexistent/a, %s, %s", fixdir, l.dirs[2]);
    ck_assert_str_eq(err.msg, want);
    gw__loader_free(&l);
}
END_TEST

START_TEST(test_wrong_kind_by_path)
{
    gw__loader_t l;
    gw__plugin_t *p = NULL;
    gw_error_t err;
    char want[PATH_MAX * 2 + 100];

    gw__loader_init(&l, NULL, 0);
    ck_assert_int_eq(gw__loader_load(&l, GW_PLUGIN_STORAGE,
                                     fixture("transport_fixture"), &p, &err),
                     GW_ERR);
    snprintf(want, sizeof(want), "%s: is a transport plugin, not a storage "
             "plugin", fixture("transport_fixture"));
    ck_assert_str_eq(err.msg, want);
    gw__loader_free(&l);
}
END_TEST

typedef struct scan_s {
    int good, broken;
    char lines[16][PATH_MAX * 2 + 300];
} scan_t;

static void
scan_cb(void *arg, const char *path, const gw__plugin_t *p,
        const gw_error_t *err)
{
    scan_t *s = arg;
    int i = s->good + s->broken;

    if (p != NULL) {
        s->good++;
        snprintf(s->lines[i], sizeof(s->lines[i]), "%s ok %s", path, p->name);
    } else {
        s->broken++;
        snprintf(s->lines[i], sizeof(s->lines[i]), "%s", err->msg);
    }
}

START_TEST(test_scan)
{
    gw__loader_t l;
    scan_t s;
    char *dirs[] = {fixdir};
    char want[PATH_MAX * 3 + 300];

    memset(&s, 0, sizeof(s));
    gw__loader_init(&l, dirs, 1);
    /* The fixture directory alone: the installed directory, searched
     * after it, holds whatever `make install` put there. */
    gw__loader_scan_dir(&l, fixdir, scan_cb, &s);
    /* Sorted by file name: abi_major_next, abi_minor_newer, bad_magic,
     * duplicate_name (loaded first: the fixture storage comes later),
     * incomplete_ops, no_descriptor, small_descriptor, storage_fixture
     * (now a duplicate of duplicate_name's "fixture"), transport_fixture. */
    ck_assert_int_eq(s.good + s.broken, 9);
    ck_assert_int_eq(s.good, 2);
    snprintf(want, sizeof(want), "%s ok fixture", fixture("duplicate_name"));
    ck_assert_str_eq(s.lines[3], want);
    snprintf(want, sizeof(want), "%s: bad magic 0xdeadbeef",
             fixture("bad_magic"));
    ck_assert_str_eq(s.lines[2], want);
    snprintf(want, sizeof(want), "%s: storage plugin \"fixture\" is already "
             "loaded from %s", fixture("storage_fixture"),
             fixture("duplicate_name"));
    ck_assert_str_eq(s.lines[7], want);
    snprintf(want, sizeof(want), "%s ok fixture",
             fixture("transport_fixture"));
    ck_assert_str_eq(s.lines[8], want);
    gw__loader_free(&l);
}
END_TEST

typedef struct order_s {
    const char *first_dir; /* the directory every file must come from */
    size_t first_len;
    int first, later, out_of_order;
} order_t;

static void
order_cb(void *arg, const char *path, const gw__plugin_t *p,
         const gw_error_t *err)
{
    order_t *o = arg;
    int in_first = strncmp(path, o->first_dir, o->first_len) == 0 &&
                   path[o->first_len] == '/';

    (void) p;
    (void) err;
    if (in_first) {
        o->first++;
        if (o->later > 0)
            o->out_of_order++;
    } else {
        o->later++;
    }
}

/* gw__loader_scan lists the given directories first, then the installed
 * one (empty or missing before `make install`, full after). */
START_TEST(test_scan_search_dirs)
{
    gw__loader_t l;
    order_t o;
    char *dirs[] = {fixdir};

    memset(&o, 0, sizeof(o));
    gw__loader_init(&l, dirs, 1);
    ck_assert_uint_eq(l.ndirs, 2);
    ck_assert_str_eq(l.dirs[0], fixdir);
    ck_assert_str_eq(l.dirs[1], GW_PLUGINDIR);
    o.first_dir = fixdir;
    o.first_len = strlen(fixdir);
    gw__loader_scan(&l, order_cb, &o);
    ck_assert_int_eq(o.first, 9);
    ck_assert_int_eq(o.out_of_order, 0);
    gw__loader_free(&l);
}
END_TEST

static Suite *
loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("refusals");

    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_abi_major_next);
    tcase_add_test(tc, test_abi_minor_newer);
    tcase_add_test(tc, test_no_descriptor);
    tcase_add_test(tc, test_small_descriptor);
    tcase_add_test(tc, test_incomplete_ops);
    tcase_add_test(tc, test_dlopen_failure);
    tcase_add_test(tc, test_duplicate_name);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_wrong_kind_by_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("good");
    tcase_add_test(tc, test_good_storage);
    tcase_add_test(tc, test_scan);
    tcase_add_test(tc, test_scan_search_dirs);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    find_fixtures();
    sr = srunner_create(loader_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
