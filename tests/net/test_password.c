/*
 * tests/net/test_password.c: net/password.c. The hash format, a known
 * vector computed independently (Python's hashlib.pbkdf2_hmac), random
 * salts, and refusals of wrong passwords and malformed hashes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "net/password.h"

START_TEST(test_format)
{
    char *h = gw__password_hash("hunter2");
    char *p;

    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(strncmp(h, "pbkdf2-sha256$200000$", 21), 0);
    p = strchr(h + 21, '$');
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq((int) (p - (h + 21)), 24); /* base64 of 16 bytes */
    ck_assert_uint_eq(strlen(p + 1), 44);       /* base64 of 32 bytes */
    ck_assert_int_eq(gw__password_verify("hunter2", h), 1);
    ck_assert_int_eq(gw__password_verify("hunter3", h), 0);
    ck_assert_int_eq(gw__password_verify("", h), 0);
    free(h);
}
END_TEST

START_TEST(test_random_salt)
{
    char *a = gw__password_hash("same");
    char *b = gw__password_hash("same");

    ck_assert_str_ne(a, b);
    ck_assert_int_eq(gw__password_verify("same", a), 1);
    ck_assert_int_eq(gw__password_verify("same", b), 1);
    free(a);
    free(b);
}
END_TEST

/* hashlib.pbkdf2_hmac("sha256", b"secret", b"0123456789abcdef", 1000):
 * base64 "tiKWHy4FAGCWE8gn6GtKhaxD2OeeAUUWXFT/p1aaNl8=". */
START_TEST(test_known_vector)
{
    const char *h = "pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                    "tiKWHy4FAGCWE8gn6GtKhaxD2OeeAUUWXFT/p1aaNl8=";

    ck_assert_int_eq(gw__password_verify("secret", h), 1);
    ck_assert_int_eq(gw__password_verify("Secret", h), 0);
}
END_TEST

START_TEST(test_malformed)
{
    ck_assert_int_eq(gw__password_verify("x", NULL), 0);
    ck_assert_int_eq(gw__password_verify("x", ""), 0);
    ck_assert_int_eq(gw__password_verify("x", "x"), 0);
    ck_assert_int_eq(gw__password_verify("x", "pbkdf2-sha256$"), 0);
    ck_assert_int_eq(gw__password_verify("x", "pbkdf2-sha256$0$AAAA$AAAA"), 0);
    ck_assert_int_eq(gw__password_verify("x", "pbkdf2-sha256$10$AAAA"), 0);
    ck_assert_int_eq(gw__password_verify("x", "pbkdf2-sha256$10$!!!!$AAAA"),
                     0);
    ck_assert_int_eq(gw__password_verify(
                         "x", "pbkdf2-sha1$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                              "tiKWHy4FAGCWE8gn6GtKhaxD2OeeAUUWXFT/p1aaNl8="),
                     0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("password");
    TCase *tc = tcase_create("pbkdf2");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_random_salt);
    tcase_add_test(tc, test_known_vector);
    tcase_add_test(tc, test_malformed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
