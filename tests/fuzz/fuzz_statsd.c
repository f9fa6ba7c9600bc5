/*
 * tests/fuzz/fuzz_statsd.c: a libFuzzer target for the statsd line parser
 * (plugins/transport/statsd/statsd_parse.c).
 *
 * Each input is one line (a copy: the parser writes into it). Invariants
 * on SD_LINE_OK: 1..SD_MAX_SAMPLES samples, a name of 1..255 bytes that is
 * NUL-terminated inside the buffer, finite values, rates in (0, 1], tags
 * inside the buffer; on SD_LINE_BAD and SD_LINE_RANGE a reason.
 *
 * Fuzz:   make fuzz; Replay: tests/fuzz/replay_statsd (make check).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd_parse.h"

#include "fuzz_check.h"

static int
inside(const char *p, const char *buf, size_t size)
{
    return p >= buf && p <= buf + size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sd_line_t line;
    const char *why = NULL;
    sd_result_t r;
    char *buf;
    size_t i;

    if (size > 65536)
        return 0;
    buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    r = sd_parse_line(buf, size, &line, &why);
    FZ_CHECK(r == SD_LINE_OK || r == SD_LINE_EMPTY || r == SD_LINE_BAD ||
             r == SD_LINE_RANGE);
    if (r == SD_LINE_BAD || r == SD_LINE_RANGE)
        FZ_CHECK(why != NULL && why[0] != '\0');
    if (r == SD_LINE_OK) {
        FZ_CHECK(line.nsamples >= 1 && line.nsamples <= SD_MAX_SAMPLES);
        FZ_CHECK(line.name_len >= 1 && line.name_len <= 255);
        FZ_CHECK(inside(line.name, buf, size));
        FZ_CHECK(line.name[line.name_len] == '\0');
        FZ_CHECK(strlen(line.name) == line.name_len);
        FZ_CHECK(line.ntags <= SD_MAX_TAGS);
        for (i = 0; i < line.nsamples; i++) {
            FZ_CHECK(isfinite(line.samples[i].value));
            FZ_CHECK(line.samples[i].rate > 0 && line.samples[i].rate <= 1);
        }
        for (i = 0; i < line.ntags; i++) {
            FZ_CHECK(line.tags[i].name != NULL && line.tags[i].value != NULL);
            FZ_CHECK(inside(line.tags[i].name, buf, size) ||
                  strcmp(line.tags[i].name, "true") == 0);
        }
    }
    free(buf);
    return 0;
}
