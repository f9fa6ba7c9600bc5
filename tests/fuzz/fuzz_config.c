/*
 * tests/fuzz/fuzz_config.c: a libFuzzer target for the config loader
 * (gw__config_load) on arbitrary file contents.
 *
 * Each input is written to a temp file and loaded. Invariants: GW_OK, or
 * GW_ERR with a message that names the file; on GW_OK the config is
 * usable (every project has both keys, FLUSH_INTERVAL in range) and frees
 * cleanly. Inputs with "@include" are skipped: an include of /dev/zero
 * would only measure the disk.
 *
 * Fuzz:   make fuzz; Replay: tests/fuzz/replay_config (make check).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/conf.h"

#include "fuzz_check.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    gw__config_t cfg;
    gw_error_t err;
    size_t i;
    FILE *f;

    if (size > 65536 || memmem(data, size, "@include", 8) != NULL)
        return 0;
    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/gw-fuzz-config-%ld.conf",
                 (long) getpid());
    f = fopen(path, "wb");
    FZ_CHECK(f != NULL);
    FZ_CHECK(fwrite(data, 1, size, f) == size);
    FZ_CHECK(fclose(f) == 0);
    err.msg[0] = '\0';
    if (gw__config_load(path, &cfg, &err) != GW_OK) {
        FZ_CHECK(strstr(err.msg, path) != NULL);
        return 0;
    }
    FZ_CHECK(cfg.flush_interval_ms >= 10);
    for (i = 0; i < cfg.nprojects; i++) {
        FZ_CHECK(cfg.projects[i].name != NULL);
        FZ_CHECK(cfg.projects[i].public_key != NULL);
        FZ_CHECK(cfg.projects[i].private_key != NULL);
        FZ_CHECK(gw__config_project(&cfg, cfg.projects[i].name) != NULL);
    }
    gw__config_free(&cfg);
    return 0;
}
