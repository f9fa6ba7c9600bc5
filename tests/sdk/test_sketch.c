/*
 * tests/sdk/test_sketch.c: sdk/gottwall/sketch.h, the timing and set
 * cells. DDSketch: every quantile of three distributions (and of values
 * with negatives and zeros) within GW_SKETCH_ALPHA of the exact
 * nearest-rank one; merging equals sketching the union, in any order;
 * the bin bound; encode/decode round trips and refuses every truncation
 * and corruption. Sets: exact up to GW_SET_EXACT_MAX, then within 2 % up
 * to 1,000,000; unions; encodings.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/sketch.h>

/* A reproducible generator (splitmix64) and three distributions. */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double
rng_unit(void) /* (0, 1) */
{
    return ((double) (rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double
rng_normal(void)
{
    return sqrt(-2 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}

enum { UNIFORM, LOGNORMAL, BIMODAL, SIGNED };

static double
draw(int dist)
{
    switch (dist) {
    case UNIFORM:
        return 1 + 999 * rng_unit();
    case LOGNORMAL:
        return exp(3 + 1.2 * rng_normal());
    case BIMODAL: /* 99 % around 20 ms, 1 % slow tail around 2 s */
        return rng_unit() < 0.01 ? 2000 + 300 * rng_normal()
                                 : fabs(20 + 4 * rng_normal());
    default: /* negatives, zeros and positives */
        return rng_unit() < 0.1 ? 0 : 100 * rng_normal();
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

/* The exact nearest-rank quantile of sorted v[0..n). */
static double
exact_quantile(const double *v, size_t n, double q)
{
    size_t rank = (size_t) ceil(q * (double) n - 1e-9);

    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static const double QS[] = {0.001, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99,
                            0.999};

/* Every quantile of QS within alpha (relative; exact 0 must be 0). */
static void
check_quantiles(const gw_timing_t *t, double *v, size_t n, const char *what)
{
    size_t i;
    double want, got;

    qsort(v, n, sizeof(*v), cmp_double);
    for (i = 0; i < sizeof(QS) / sizeof(QS[0]); i++) {
        want = exact_quantile(v, n, QS[i]);
        got = gw_timing_quantile(t, QS[i]);
        if (want == 0)
            ck_assert_msg(fabs(got) < GW_SKETCH_MIN_VALUE,
                          "%s q %g: %g for 0", what, QS[i], got);
        else
            ck_assert_msg(fabs(got - want) <=
                              GW_SKETCH_ALPHA * fabs(want) * (1 + 1e-12),
                          "%s q %g: %.17g, exact %.17g", what, QS[i], got,
                          want);
    }
    ck_assert_double_eq(gw_timing_quantile(t, 0), v[0]);
    ck_assert_double_eq(gw_timing_quantile(t, 1), v[n - 1]);
}

START_TEST(test_quantiles_within_alpha)
{
    static const char *names[] = {"uniform", "lognormal", "bimodal",
                                  "signed"};
    const size_t n = 200000;
    double *v = malloc(n * sizeof(*v));
    gw_timing_t t;
    size_t i;

    rng_state = 42 + (uint64_t) _i;
    gw_timing_init(&t);
    for (i = 0; i < n; i++) {
        v[i] = draw(_i);
        ck_assert_int_eq(gw_timing_add(&t, v[i], 1), GW_OK);
    }
    ck_assert_uint_eq(gw_timing_total(&t), n);
    ck_assert_uint_le(t.npos + t.nneg, GW_SKETCH_MAX_BINS);
    check_quantiles(&t, v, n, names[_i]);
    gw_timing_free(&t);
    free(v);
}
END_TEST

/* Three parts merged, in two orders, give the sketch of all the values,
 * bin for bin. */
START_TEST(test_merge_is_the_union)
{
    const size_t n = 30000;
    double *v = malloc(n * sizeof(*v));
    gw_timing_t part[3], all, ab, ba;
    size_t i;

    rng_state = 7;
    gw_timing_init(&all);
    for (i = 0; i < 3; i++)
        gw_timing_init(&part[i]);
    for (i = 0; i < n; i++) {
        v[i] = draw(i % 3 == 2 ? SIGNED : LOGNORMAL);
        ck_assert_int_eq(gw_timing_add(&part[i % 3], v[i], 1), GW_OK);
        ck_assert_int_eq(gw_timing_add(&all, v[i], 1), GW_OK);
    }
    gw_timing_init(&ab);
    gw_timing_init(&ba);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(gw_timing_merge(&ab, &part[i]), GW_OK);
        ck_assert_int_eq(gw_timing_merge(&ba, &part[2 - i]), GW_OK);
    }
    ck_assert_uint_eq(ab.npos, all.npos);
    ck_assert_uint_eq(ab.nneg, all.nneg);
    ck_assert_uint_eq(ab.zero, all.zero);
    ck_assert_int_eq(memcmp(ab.pos, all.pos, all.npos * sizeof(gw_bin_t)), 0);
    ck_assert_int_eq(memcmp(ba.pos, all.pos, all.npos * sizeof(gw_bin_t)), 0);
    ck_assert_int_eq(memcmp(ab.neg, all.neg, all.nneg * sizeof(gw_bin_t)), 0);
    ck_assert_double_eq(ab.min, all.min);
    ck_assert_double_eq(ba.max, all.max);
    check_quantiles(&ab, v, n, "merged");
    for (i = 0; i < 3; i++)
        gw_timing_free(&part[i]);
    gw_timing_free(&all);
    gw_timing_free(&ab);
    gw_timing_free(&ba);
    free(v);
}
END_TEST

/* Values over 300 decades need ~35,000 bins: the cell keeps 2,048, the
 * lowest folded; the total, min, max and the high quantiles stay. */
START_TEST(test_bins_are_bounded)
{
    double *v = malloc(40000 * sizeof(*v));
    gw_timing_t t, copy;
    size_t i, n = 0;
    double x;

    gw_timing_init(&t);
    for (x = 1e-8; x < 1e299; x *= 1.02) {
        v[n++] = x;
        ck_assert_int_eq(gw_timing_add(&t, x, 1), GW_OK);
        ck_assert_uint_le(t.npos + t.nneg, GW_SKETCH_MAX_BINS);
    }
    for (i = 0; i < 50; i++) {
        v[n++] = -(double) (i + 1);
        ck_assert_int_eq(gw_timing_add(&t, v[n - 1], 1), GW_OK);
    }
    ck_assert_uint_eq(t.npos + t.nneg, GW_SKETCH_MAX_BINS);
    ck_assert_uint_eq(t.nneg, 1); /* the negatives went first */
    ck_assert_uint_eq(gw_timing_total(&t), n);
    ck_assert_double_eq(t.min, -50);
    ck_assert_double_eq(t.max, v[n - 51]);
    qsort(v, n, sizeof(*v), cmp_double);
    x = exact_quantile(v, n, 0.99);
    ck_assert(fabs(gw_timing_quantile(&t, 0.99) - x) <= 0.01 * x);
    /* A merge of two bounded cells is bounded too. */
    gw_timing_init(&copy);
    ck_assert_int_eq(gw_timing_copy(&copy, &t), GW_OK);
    ck_assert_int_eq(gw_timing_merge(&copy, &t), GW_OK);
    ck_assert_uint_le(copy.npos + copy.nneg, GW_SKETCH_MAX_BINS);
    ck_assert_uint_eq(gw_timing_total(&copy), 2 * n);
    gw_timing_free(&copy);
    gw_timing_free(&t);
    free(v);
}
END_TEST

START_TEST(test_small_and_signed)
{
    gw_timing_t t;

    gw_timing_init(&t);
    ck_assert(isnan(gw_timing_quantile(&t, 0.5)));
    ck_assert_int_eq(gw_timing_add(&t, -5, 1), GW_OK);
    ck_assert_int_eq(gw_timing_add(&t, 0, 2), GW_OK);
    ck_assert_int_eq(gw_timing_add(&t, 3, 1), GW_OK);
    ck_assert_uint_eq(gw_timing_total(&t), 4);
    /* ranks: 1 -> -5, 2 and 3 -> 0, 4 -> 3 */
    ck_assert_double_eq(gw_timing_quantile(&t, 0.25), -5);
    ck_assert_double_eq(gw_timing_quantile(&t, 0.5), 0);
    ck_assert_double_eq(gw_timing_quantile(&t, 0.75), 0);
    /* 3's bin stands for 2.974: within 1 %, and not clamped (max is 3). */
    ck_assert(fabs(gw_timing_quantile(&t, 0.99) - 3) <= 0.03);
    ck_assert_double_eq(gw_timing_quantile(&t, 0.76),
                        gw_timing_quantile(&t, 0.99));
    gw_timing_free(&t);
    /* One value: every quantile is it, exactly (clamped to min and max). */
    gw_timing_init(&t);
    ck_assert_int_eq(gw_timing_add(&t, 35.25, 1), GW_OK);
    ck_assert_double_eq(gw_timing_quantile(&t, 0.5), 35.25);
    ck_assert_double_eq(gw_timing_quantile(&t, 0.999), 35.25);
    gw_timing_free(&t);
}
END_TEST

START_TEST(test_timing_encoding)
{
    gw_timing_t t, u;
    unsigned char *buf, *bad;
    size_t i, n;

    rng_state = 99;
    gw_timing_init(&t);
    for (i = 0; i < 5000; i++)
        ck_assert_int_eq(gw_timing_add(&t, draw(SIGNED), 1), GW_OK);
    buf = malloc(gw_timing_encoded_max(&t));
    n = gw_timing_encode(&t, buf);
    ck_assert_uint_le(n, gw_timing_encoded_max(&t));
    ck_assert_int_eq(gw_timing_decode(buf, n, &u), GW_OK);
    ck_assert_uint_eq(u.npos, t.npos);
    ck_assert_uint_eq(u.nneg, t.nneg);
    ck_assert_uint_eq(u.zero, t.zero);
    ck_assert_double_eq(u.min, t.min);
    ck_assert_double_eq(u.max, t.max);
    ck_assert_int_eq(memcmp(u.pos, t.pos, t.npos * sizeof(gw_bin_t)), 0);
    ck_assert_int_eq(memcmp(u.neg, t.neg, t.nneg * sizeof(gw_bin_t)), 0);
    gw_timing_free(&u);
    /* Every truncation is refused, and leaves an empty cell. */
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(gw_timing_decode(buf, i, &u), GW_ERR);
        ck_assert_uint_eq(u.npos + u.nneg + u.zero, 0);
    }
    bad = malloc(n + 1);
    memcpy(bad, buf, n);
    bad[n] = 0;
    ck_assert_int_eq(gw_timing_decode(bad, n + 1, &u), GW_ERR); /* trailing */
    bad[0] = 'X';
    ck_assert_int_eq(gw_timing_decode(bad, n, &u), GW_ERR); /* magic */
    gw_timing_free(&t);
    free(buf);
    free(bad);
    /* An index that does not grow, a zero count. */
    {
        unsigned char b[64] = {'D'};
        size_t k = 17;

        b[k++] = 0; /* zero */
        b[k++] = 2; /* npos */
        b[k++] = 0; /* nneg */
        b[k++] = 10; /* +5 */
        b[k++] = 1;
        b[k++] = 0; /* +0: the same index again */
        b[k++] = 1;
        ck_assert_int_eq(gw_timing_decode(b, k, &u), GW_ERR);
        b[k - 2] = 2; /* +1 */
        ck_assert_int_eq(gw_timing_decode(b, k, &u), GW_OK);
        ck_assert_int_eq(u.pos[1].index, 6);
        gw_timing_free(&u);
        b[k - 1] = 0; /* count 0 */
        ck_assert_int_eq(gw_timing_decode(b, k, &u), GW_ERR);
    }
}
END_TEST

/* ---- sets ---- */

static uint64_t
member(size_t i)
{
    char m[32];
    int n = snprintf(m, sizeof(m), "user-%zu", i);

    return gw_set_hash(m, (size_t) n);
}

START_TEST(test_set_exact_then_hll)
{
    gw_set_t s;
    size_t i;
    double c;

    gw_set_init(&s);
    ck_assert_double_eq(gw_set_count(&s), 0);
    for (i = 0; i < GW_SET_EXACT_MAX; i++) {
        ck_assert_int_eq(gw_set_add(&s, member(i)), GW_OK);
        ck_assert_int_eq(gw_set_add(&s, member(i / 2)), GW_OK); /* again */
    }
    ck_assert_ptr_null(s.registers);
    ck_assert_double_eq(gw_set_count(&s), GW_SET_EXACT_MAX);
    for (; i < 1000000; i++) {
        ck_assert_int_eq(gw_set_add(&s, member(i)), GW_OK);
        if (i + 1 == 2000 || i + 1 == 20000 || i + 1 == 1000000) {
            c = gw_set_count(&s);
            ck_assert_msg(fabs(c - (double) (i + 1)) < 0.02 * (double) (i + 1),
                          "%zu members counted as %g", i + 1, c);
        }
    }
    ck_assert_ptr_nonnull(s.registers);
    gw_set_free(&s);
}
END_TEST

START_TEST(test_set_union)
{
    gw_set_t a, b, big, all;
    size_t i;
    double c;

    gw_set_init(&a);
    gw_set_init(&b);
    for (i = 0; i < 300; i++)
        ck_assert_int_eq(gw_set_add(&a, member(i)), GW_OK);
    for (i = 200; i < 500; i++)
        ck_assert_int_eq(gw_set_add(&b, member(i)), GW_OK);
    ck_assert_int_eq(gw_set_merge(&a, &b), GW_OK);
    ck_assert_double_eq(gw_set_count(&a), 500);
    /* exact + HLL, and HLL + HLL: the union of 0..60000. */
    gw_set_init(&big);
    gw_set_init(&all);
    for (i = 400; i < 60000; i++)
        ck_assert_int_eq(gw_set_add(&big, member(i)), GW_OK);
    ck_assert_int_eq(gw_set_merge(&all, &big), GW_OK);
    ck_assert_int_eq(gw_set_merge(&all, &a), GW_OK);
    ck_assert_int_eq(gw_set_merge(&a, &big), GW_OK);
    c = gw_set_count(&all);
    ck_assert_msg(fabs(c - 60000) < 0.02 * 60000, "%g", c);
    ck_assert_double_eq(gw_set_count(&a), c); /* the same registers */
    ck_assert_int_eq(memcmp(a.registers, all.registers, GW_HLL_REGISTERS), 0);
    gw_set_free(&a);
    gw_set_free(&b);
    gw_set_free(&big);
    gw_set_free(&all);
}
END_TEST

/* Each form (exact, sparse registers, raw registers) round trips, and
 * every truncation is refused. */
START_TEST(test_set_encoding)
{
    static const size_t sizes[] = {0, 1, 300, 5000, 200000};
    static const char forms[] = {'E', 'E', 'E', 'H', 'R'};
    gw_set_t s, u;
    unsigned char *buf;
    size_t i, j, n;

    for (j = 0; j < 5; j++) {
        gw_set_init(&s);
        for (i = 0; i < sizes[j]; i++)
            ck_assert_int_eq(gw_set_add(&s, member(i)), GW_OK);
        buf = malloc(gw_set_encoded_max(&s));
        n = gw_set_encode(&s, buf);
        ck_assert_uint_le(n, gw_set_encoded_max(&s));
        ck_assert_int_eq(buf[0], forms[j]);
        ck_assert_int_eq(gw_set_decode(buf, n, &u), GW_OK);
        ck_assert_double_eq(gw_set_count(&u), gw_set_count(&s));
        if (s.registers != NULL)
            ck_assert_int_eq(memcmp(u.registers, s.registers,
                                    GW_HLL_REGISTERS), 0);
        else if (s.nhashes > 0) /* (memcmp of NULL is undefined) */
            ck_assert_int_eq(memcmp(u.hashes, s.hashes,
                                    s.nhashes * sizeof(uint64_t)), 0);
        gw_set_free(&u);
        for (i = 0; i < n; i++)
            ck_assert_int_eq(gw_set_decode(buf, i, &u), GW_ERR);
        free(buf);
        gw_set_free(&s);
    }
}
END_TEST

static Suite *
sketch_suite(void)
{
    Suite *s = suite_create("sketch");
    TCase *tc = tcase_create("sketch");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_quantiles_within_alpha, UNIFORM, SIGNED + 1);
    tcase_add_test(tc, test_merge_is_the_union);
    tcase_add_test(tc, test_bins_are_bounded);
    tcase_add_test(tc, test_small_and_signed);
    tcase_add_test(tc, test_timing_encoding);
    tcase_add_test(tc, test_set_exact_then_hll);
    tcase_add_test(tc, test_set_union);
    tcase_add_test(tc, test_set_encoding);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(sketch_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
