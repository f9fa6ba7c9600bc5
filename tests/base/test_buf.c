/*
 * tests/base/test_buf.c: base/buf.c and base/buf.h. The buffer's exact
 * growth, NUL termination and out-of-memory flag, formatted appends, hex
 * digits, URL decoding (%XX, '+', truncated and invalid escapes, %00),
 * strict base64 (padded, unpadded, invalid, the output bound) and the
 * keyed hash: SipHash's reference values, pieces, pairs, a random key.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

/* ---- the buffer ---- */

START_TEST(test_buf_growth)
{
    gw__buf_t b = {0};
    char big[200];

    ck_assert_ptr_null(b.p);
    /* An empty append still makes an empty string. */
    ck_assert_int_eq(gw__buf_add(&b, "", 0), 0);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_str_eq(b.p, "");
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 64);
    /* 63 bytes and the NUL fit in 64. */
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(gw__buf_add(&b, big, 63), 0);
    ck_assert_uint_eq(b.len, 63);
    ck_assert_uint_eq(b.cap, 64);
    ck_assert_int_eq(b.p[63], '\0');
    /* One more doubles. */
    ck_assert_int_eq(gw__buf_add(&b, "y", 1), 0);
    ck_assert_uint_eq(b.len, 64);
    ck_assert_uint_eq(b.cap, 128);
    ck_assert_int_eq(b.p[63], 'y');
    ck_assert_int_eq(b.p[64], '\0');
    /* Doubles as often as it takes: 64 + 200 + 1 needs 512. */
    ck_assert_int_eq(gw__buf_add(&b, big, sizeof(big)), 0);
    ck_assert_uint_eq(b.len, 264);
    ck_assert_uint_eq(b.cap, 512);
    ck_assert_int_eq(b.p[263], 'x');
    ck_assert_int_eq(b.p[264], '\0');
    ck_assert_int_eq(b.oom, 0);
    gw__buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_buf_reserve)
{
    gw__buf_t b = {0};

    ck_assert_int_eq(gw__buf_reserve(&b, 100), 0);
    ck_assert_uint_eq(b.cap, 128);
    ck_assert_uint_eq(b.len, 0);
    /* Enough room already: nothing moves. */
    ck_assert_int_eq(gw__buf_reserve(&b, 127), 0);
    ck_assert_uint_eq(b.cap, 128);
    ck_assert_int_eq(gw__buf_reserve(&b, 128), 0);
    ck_assert_uint_eq(b.cap, 256);
    gw__buf_free(&b);
}
END_TEST

START_TEST(test_buf_oom)
{
    gw__buf_t b = {0};

    ck_assert_int_eq(gw__buf_puts(&b, "abc"), 0);
    /* 2^63 bytes: refused as out of memory; the content stays as it was. */
    ck_assert_int_eq(gw__buf_reserve(&b, SIZE_MAX / 2 - 3), -1);
    ck_assert_int_eq(b.oom, 1);
    ck_assert_str_eq(b.p, "abc");
    ck_assert_uint_eq(b.len, 3);
    ck_assert_uint_eq(b.cap, 64);
    /* Later appends are still tried, and the flag stays. */
    ck_assert_int_eq(gw__buf_add(&b, "d", 1), 0);
    ck_assert_str_eq(b.p, "abcd");
    ck_assert_int_eq(b.oom, 1);
    gw__buf_free(&b);
    ck_assert_int_eq(b.oom, 0);
}
END_TEST

START_TEST(test_buf_printf)
{
    gw__buf_t b = {0};
    char want[300];

    ck_assert_int_eq(gw__buf_puts(&b, "HTTP/1.1 "), 0);
    ck_assert_int_eq(gw__buf_printf(&b, "%d %s\r\n", 404, "Not Found"), 0);
    ck_assert_str_eq(b.p, "HTTP/1.1 404 Not Found\r\n");
    ck_assert_uint_eq(b.len, 24);
    ck_assert_int_eq(gw__buf_printf(&b, "Content-Length: %zu\r\n",
                                    (size_t) 12),
                     0);
    ck_assert_str_eq(b.p, "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n");
    ck_assert_uint_eq(b.cap, 64);
    /* Text that does not fit grows the buffer to take it whole. */
    memset(want, 'z', 250);
    want[250] = '\0';
    ck_assert_int_eq(gw__buf_printf(&b, "[%s]", want), 0);
    ck_assert_uint_eq(b.len, 44 + 252);
    ck_assert_uint_eq(b.cap, 512);
    ck_assert_int_eq(b.p[44], '[');
    ck_assert_int_eq(b.p[45 + 250], ']');
    ck_assert_int_eq(b.p[b.len], '\0');
    /* An empty format still makes an empty string. */
    gw__buf_free(&b);
    ck_assert_int_eq(gw__buf_printf(&b, "%s", ""), 0);
    ck_assert_str_eq(b.p, "");
    ck_assert_int_eq(gw__buf_printf(&b, "\\u%04x", 0x1f), 0);
    ck_assert_str_eq(b.p, "\\u001f");
    gw__buf_free(&b);
}
END_TEST

/* ---- hex ---- */

START_TEST(test_hex_val)
{
    int c;

    for (c = 0; c < 256; c++) {
        int want = -1;

        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            want = c - 'A' + 10;
        ck_assert_int_eq(gw__hex_val(c), want);
    }
    ck_assert_int_eq(gw__hex_val('0'), 0);
    ck_assert_int_eq(gw__hex_val('9'), 9);
    ck_assert_int_eq(gw__hex_val('a'), 10);
    ck_assert_int_eq(gw__hex_val('F'), 15);
    ck_assert_int_eq(gw__hex_val('g'), -1);
    ck_assert_int_eq(gw__hex_val('G'), -1);
    ck_assert_int_eq(gw__hex_val('/'), -1);
    ck_assert_int_eq(gw__hex_val(':'), -1);
    ck_assert_int_eq(gw__hex_val('@'), -1);
    ck_assert_int_eq(gw__hex_val('`'), -1);
    ck_assert_int_eq(gw__hex_val(-1), -1);
}
END_TEST

START_TEST(test_hex_encode)
{
    const unsigned char in[] = {0x00, 0x7f, 0xab, 0xff, 0x10};
    char out[11];

    memset(out, '#', sizeof(out));
    gw__hex_encode(in, sizeof(in), out);
    ck_assert_str_eq(out, "007fabff10");
    gw__hex_encode(in, 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- URL decoding ---- */

static void
expect_url(const char *in, int flags, const char *want)
{
    char *got = gw__url_decode(in, strlen(in), flags);

    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_url_decode)
{
    char *got;

    expect_url("", GW__URL_PLUS, "");
    expect_url("plain", GW__URL_PLUS, "plain");
    expect_url("a%20b", 0, "a b");
    expect_url("%41%42%43", 0, "ABC");
    expect_url("%e9%C3", 0, "\xe9\xc3");
    expect_url("%2B", GW__URL_PLUS, "+");
    /* '+' is a space only in forms and query strings. */
    expect_url("a+b", GW__URL_PLUS, "a b");
    expect_url("a+b", 0, "a+b");
    expect_url("a+b", GW__URL_NO_NUL, "a+b");
    /* Escapes that are cut short or not hex stay as they are. */
    expect_url("%", GW__URL_PLUS, "%");
    expect_url("%4", GW__URL_PLUS, "%4");
    expect_url("ab%4", 0, "ab%4");
    expect_url("%4g", 0, "%4g");
    expect_url("%g4", 0, "%g4");
    expect_url("%zz%41", 0, "%zzA");
    expect_url("%%41", 0, "%A");
    expect_url("100%", GW__URL_PLUS, "100%");
    /* Only s[0..len) is read: "%41" cut to two bytes is not an escape. */
    got = gw__url_decode("%41", 2, 0);
    ck_assert_str_eq(got, "%4");
    free(got);
    got = gw__url_decode("a%41", 4, 0);
    ck_assert_str_eq(got, "aA");
    free(got);
    /* %00 decodes to a NUL, unless that is refused. */
    got = gw__url_decode("a%00b", 5, GW__URL_PLUS);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(got[0], 'a');
    ck_assert_int_eq(got[1], '\0');
    ck_assert_int_eq(got[2], 'b');
    ck_assert_int_eq(got[3], '\0');
    free(got);
    ck_assert_ptr_null(gw__url_decode("a%00b", 5, GW__URL_NO_NUL));
    ck_assert_ptr_null(gw__url_decode("%00", 3, GW__URL_NO_NUL));
    expect_url("%0", GW__URL_NO_NUL, "%0");
    expect_url("/a%2Fb%01", GW__URL_NO_NUL, "/a/b\x01");
}
END_TEST

/* ---- base64 ---- */

/* An input, the room given for its bytes, and the decoded length (-1:
 * refused) and bytes expected. */
static const struct {
    const char *in;
    size_t cap;
    long want;
    const char *bytes;
} b64_cases[] = {
    /* Padded. */
    {"YWJj", 64, 3, "abc"},
    {"YWI=", 64, 2, "ab"},
    {"YQ==", 64, 1, "a"},
    {"cHVibGljX2tleTpwcml2YXRlX2tleQ==", 64, 22, "public_key:private_key"},
    {"MDEyMzQ1Njc4OWFiY2RlZg==", 64, 16, "0123456789abcdef"},
    {"+/+/", 64, 3, "\xfb\xff\xbf"},
    {"AAAA", 64, 3, "\0\0\0"},
    {"", 64, 0, ""},
    /* Unpadded. */
    {"YWI", 64, 2, "ab"},
    {"YQ", 64, 1, "a"},
    {"cHVibGljX2tleTpwcml2YXRlX2tleQ", 64, 22, "public_key:private_key"},
    /* The unused low bits of the last digit are not checked. */
    {"YR==", 64, 1, "a"},
    {"YR", 64, 1, "a"},
    /* A lone digit in the last group. */
    {"Y", 64, -1, NULL},
    {"YWJjZ", 64, -1, NULL},
    {"Y===", 64, -1, NULL},
    /* Padding that does not complete a group of four. */
    {"YQ=", 64, -1, NULL},
    {"YWJj=", 64, -1, NULL},
    {"YWJj==", 64, -1, NULL},
    {"YQ===", 64, -1, NULL},
    /* '=' inside, and bytes outside the standard alphabet. */
    {"YW=j", 64, -1, NULL},
    {"Y=Q=", 64, -1, NULL},
    {"=", 64, -1, NULL},
    {"!!!notbase64", 64, -1, NULL},
    {"YW j", 64, -1, NULL},
    {" YWJj", 64, -1, NULL},
    {"YWJj\n", 64, -1, NULL},
    {"-_-_", 64, -1, NULL},
    {"YW\x80j", 64, -1, NULL},
    /* The room for the output: exactly enough, or one byte short. */
    {"YWJj", 3, 3, "abc"},
    {"YWJj", 2, -1, NULL},
    {"YWI=", 2, 2, "ab"},
    {"YWI=", 1, -1, NULL},
    {"YWI", 2, 2, "ab"},
    {"YWI", 1, -1, NULL},
    {"YWJjZA==", 4, 4, "abcd"},
    {"YWJjZA==", 3, -1, NULL},
    {"", 0, 0, ""},
};

START_TEST(test_b64_decode)
{
    size_t i;

    for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        unsigned char out[65]; /* room for 64, and a guard byte */
        const char *in = b64_cases[i].in;
        size_t cap = b64_cases[i].cap;
        long got;

        memset(out, 0xee, sizeof(out));
        got = gw__b64_decode(in, strlen(in), out, cap);
        ck_assert_msg(got == b64_cases[i].want, "\"%s\" (room %zu): %ld",
                      in, cap, got);
        if (got > 0)
            ck_assert_mem_eq(out, b64_cases[i].bytes, (size_t) got);
        /* Never a byte past the room given. */
        ck_assert_uint_eq(out[cap], 0xee);
    }
}
END_TEST

/* ---- hashing ---- */

START_TEST(test_hash)
{
    static const gw_hash_key_t zero = {0, 0};
    static const gw_hash_key_t ref = {UINT64_C(0x0706050403020100),
                                      UINT64_C(0x0f0e0d0c0b0a0908)};
    static const char whole[] = "0123456789abcdefXYZ";
    unsigned char msg[15];
    gw_hash_t h;
    size_t i, cut;

    /* SipHash-2-4's reference values (the paper's appendix: key 00..0f,
     * the message 00..0e, and the empty one): the rounds and the
     * finalization are SipHash's. */
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char) i;
    gw_hash_begin(&h, &ref);
    gw_hash_add_c(&h, msg, sizeof(msg), 2);
    ck_assert_uint_eq(gw_hash_end_cd(&h, 2, 4), UINT64_C(0xa129ca6149be45e5));
    gw_hash_begin(&h, &ref);
    ck_assert_uint_eq(gw_hash_end_cd(&h, 2, 4), UINT64_C(0x726fdb47dd0e0e31));
    /* SipHash-1-3 as CPython 3.11 computes hash(b"...") with
     * PYTHONHASHSEED=0 (a zero key). */
    ck_assert_uint_eq(gw_hash_bytes(&zero, "abc", 3),
                      UINT64_C(0xc03bc3a0042630f2));
    ck_assert_uint_eq(gw_hash_bytes(&zero, "test_project", 12),
                      UINT64_C(0xe20b857e2a51ee19));
    ck_assert_uint_eq(gw_hash_bytes(&zero, whole, strlen(whole)),
                      UINT64_C(0x283e7687cd67183b));
    /* Hashing in pieces, cut anywhere, is hashing the whole. */
    for (cut = 0; cut <= strlen(whole); cut++) {
        gw_hash_begin(&h, &zero);
        gw_hash_add(&h, whole, cut);
        gw_hash_add(&h, whole + cut, strlen(whole) - cut);
        ck_assert_uint_eq(gw_hash_end(&h), UINT64_C(0x283e7687cd67183b));
    }
    /* A pair's first length tells ("ab", "c") from ("a", "bc"). */
    ck_assert_uint_ne(gw__hash_pair("ab", 2, "c", 1),
                      gw__hash_pair("a", 1, "bc", 2));
    /* The process's key is drawn at random: not the zero key. */
    ck_assert(gw__hash_key.k0 != 0 || gw__hash_key.k1 != 0);
    ck_assert_uint_ne(gw__hash_str("abc", 3), UINT64_C(0xc03bc3a0042630f2));
    ck_assert_uint_eq(gw__hash_mix(0), 0);
    ck_assert_uint_eq(gw__hash_mix(1), UINT64_C(0xb456bcfc34c2cb2c));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("buf");
    TCase *tb = tcase_create("buffer");
    TCase *tc = tcase_create("codecs");
    SRunner *sr;
    int failed;

    tcase_add_test(tb, test_buf_growth);
    tcase_add_test(tb, test_buf_reserve);
    tcase_add_test(tb, test_buf_oom);
    tcase_add_test(tb, test_buf_printf);
    tcase_add_test(tc, test_hex_val);
    tcase_add_test(tc, test_hex_encode);
    tcase_add_test(tc, test_url_decode);
    tcase_add_test(tc, test_b64_decode);
    tcase_add_test(tc, test_hash);
    suite_add_tcase(s, tb);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
