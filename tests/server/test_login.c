/*
 * tests/server/test_login.c: the pure parts of the login's defences. The
 * backoff table (server/throttle.c): delays 1, 2, 4 s up to the cap,
 * waits, a success forgetting, failures forgotten after their lockout,
 * reuse of slots (free first, then no failures, not pinned, oldest; never
 * one with pending attempts); and which next values api_login.c follows
 * (gw__api_next_ok), with and without a prefix. The attacks themselves run
 * against the daemon in tests/integration/test_login_attacks.py.
 */
#include "server/api_int.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/throttle.h"

START_TEST(test_backoff)
{
    gw__throttle_t t;
    gw__throttle_entry_t *e;

    ck_assert_int_eq(gw__throttle_init(&t, 4), GW_OK);
    ck_assert_ptr_null(gw__throttle_find(&t, "127.0.0.1", 100, 0, 0));
    e = gw__throttle_find(&t, "127.0.0.1", 100, 1, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->key, "127.0.0.1");
    ck_assert_uint_eq(e->failures, 0);
    ck_assert(gw__throttle_wait(e, 100) == 0);
    /* 1, 2, 4, 8, then the cap. */
    ck_assert(gw__throttle_fail(e, 100, 8) == 1);
    ck_assert(gw__throttle_wait(e, 100) == 1);
    ck_assert(gw__throttle_wait(e, 100.5) == 0.5);
    ck_assert(gw__throttle_wait(e, 101) == 0);
    ck_assert(gw__throttle_fail(e, 101, 8) == 2);
    ck_assert(gw__throttle_fail(e, 103, 8) == 4);
    ck_assert(gw__throttle_fail(e, 107, 8) == 8);
    ck_assert(gw__throttle_fail(e, 115, 8) == 8);
    ck_assert_uint_eq(e->failures, 5);
    ck_assert(gw__throttle_wait(e, 115) == 8);
    /* A cap below the start, and one that is not a power of two. */
    ck_assert(gw__throttle_fail(e, 123, 1) == 1);
    ck_assert(gw__throttle_wait(e, 123) == 1);
    ck_assert(gw__throttle_fail(e, 124, 60) == 60);
    /* A failure never shortens a lockout that is longer. */
    ck_assert(gw__throttle_fail(e, 125, 1) == 1);
    ck_assert(gw__throttle_wait(e, 125) == 59);
    /* The same entry again. */
    ck_assert_ptr_eq(gw__throttle_find(&t, "127.0.0.1", 126, 1, 0), e);
    /* A success forgets. */
    gw__throttle_reset(e);
    ck_assert_uint_eq(e->failures, 0);
    ck_assert(gw__throttle_wait(e, 126) == 0);
    ck_assert(gw__throttle_fail(e, 126, 8) == 1);
    /* So does time: GW__THROTTLE_FORGET after the lockout ended. */
    ck_assert_ptr_eq(gw__throttle_find(&t, "127.0.0.1", 127 + 900, 0, 0), e);
    ck_assert_uint_eq(e->failures, 1);
    ck_assert_ptr_eq(gw__throttle_find(&t, "127.0.0.1", 127.5 + 900, 0, 0), e);
    ck_assert_uint_eq(e->failures, 0);
    gw__throttle_free(&t);
}
END_TEST

START_TEST(test_slots)
{
    gw__throttle_t t;
    gw__throttle_entry_t *a, *b, *c, *d, *e;
    char longkey[400];

    ck_assert_int_eq(gw__throttle_init(&t, 3), GW_OK);
    a = gw__throttle_find(&t, "a", 1, 1, 0);
    b = gw__throttle_find(&t, "b", 2, 1, 1);
    c = gw__throttle_find(&t, "c", 3, 1, 0);
    gw__throttle_fail(a, 1, 8);
    gw__throttle_fail(b, 2, 8);
    /* Full: c has no failures, so it goes first although newest. */
    d = gw__throttle_find(&t, "d", 4, 1, 0);
    ck_assert_ptr_eq(d, c);
    ck_assert_str_eq(d->key, "d");
    ck_assert_uint_eq(d->failures, 0);
    ck_assert_int_eq(d->pinned, 0);
    /* Then the unpinned one with failures (a), not the pinned b. */
    gw__throttle_fail(d, 4, 8);
    e = gw__throttle_find(&t, "e", 5, 1, 0);
    ck_assert_ptr_eq(e, a);
    ck_assert_str_eq(a->key, "e");
    /* Then the oldest; never one with pending attempts. */
    gw__throttle_fail(e, 5, 8);
    d->pending = 1;
    e->pending = 1;
    ck_assert_ptr_eq(gw__throttle_find(&t, "f", 6, 1, 0), b);
    b->pending = 1;
    ck_assert_ptr_null(gw__throttle_find(&t, "g", 7, 1, 0));
    /* A key longer than the slot is cut, and found again the same way. */
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    b->pending = 0;
    a = gw__throttle_find(&t, longkey, 8, 1, 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(strlen(a->key), GW__THROTTLE_KEY - 1);
    ck_assert_int_eq(a->pinned, 1);
    ck_assert_ptr_eq(gw__throttle_find(&t, longkey, 9, 0, 0), a);
    gw__throttle_free(&t);
    /* Out of memory (or zero slots): nothing is found. */
    ck_assert_int_eq(gw__throttle_init(&t, 0), GW_OK);
    ck_assert_ptr_null(gw__throttle_find(&t, "a", 1, 1, 0));
    gw__throttle_free(&t);
}
END_TEST

static const char *const hostile[] = {
    "/\t/127.0.0.1:29999/phish", "//evil.example/", "///evil.example/",
    "/\\evil.example/", "\\\\evil.example/", "/\\/evil.example",
    "http://evil.example/", "https:evil.example", "javascript:alert(1)",
    "evil.example", "", " /", "/ /evil", "/\r\nX: y", "/\x7f/evil", "/a//b",
    "/./", "/.", "/a/./b", "/a/../b", "/..", "/%2e%2e/x", "/.%2E/x",
    "/%2E", "/%2f/evil.example", "/%2F", "/%5cevil.example", "/%09/evil",
    "/%00", "/%7f", "/%zz", "/%2", "/a%", "/caf\xc3\xa9", "/\xff",
    "/x/..", "/x/../?a", "/x//#a"};

static const char *const good[] = {
    "/", "/?x=1", "/#projects", "/?next=//x", "/#//x", "/api/v1/projects",
    "/a/b.c/d%20e", "/.../x", "/a.b", "/.x", "/x./", "/a/", "/%41"};

START_TEST(test_next)
{
    size_t i;
    char buf[64];

    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
        ck_assert_msg(!gw__api_next_ok("", hostile[i]), "accepted %s",
                      hostile[i]);
    ck_assert(!gw__api_next_ok("", NULL));
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(gw__api_next_ok("", good[i]), "refused %s", good[i]);
    /* A '\\' is refused anywhere, the query included. */
    ck_assert(!gw__api_next_ok("", "/a?b\\c"));
    /* Under a prefix: only its own paths. */
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(buf, sizeof(buf), "/gw%s", good[i]);
        ck_assert_msg(gw__api_next_ok("/gw", buf), "refused %s", buf);
        ck_assert_msg(!gw__api_next_ok("/gw", good[i]), "accepted %s",
                      good[i]);
    }
    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        snprintf(buf, sizeof(buf), "/gw%s", hostile[i]);
        ck_assert_msg(!gw__api_next_ok("/gw", buf), "accepted %s", buf);
    }
    ck_assert(!gw__api_next_ok("/gw", "/gw"));
    ck_assert(!gw__api_next_ok("/gw", "/gwx/"));
    ck_assert(!gw__api_next_ok("/gw", "/gw?x"));
    ck_assert(gw__api_next_ok("/gw", "/gw/"));
}
END_TEST

static Suite *
login_suite(void)
{
    Suite *s = suite_create("login");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_backoff);
    tcase_add_test(tc, test_slots);
    tcase_add_test(tc, test_next);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(login_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
