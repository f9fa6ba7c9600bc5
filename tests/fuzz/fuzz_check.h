/*
 * tests/fuzz/fuzz_check.h: what every fuzz target shares: libFuzzer's entry
 * point and FZ_CHECK, which aborts with the file, line and condition when
 * an invariant of the code under test is broken (libFuzzer then keeps the
 * input, and the corpus replay in make check fails on it).
 */
#ifndef GW_FUZZ_CHECK_H
#define GW_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                     \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

#endif /* GW_FUZZ_CHECK_H */
