/*
 * tests/fuzz/fuzz_udp.c: a libFuzzer target for the udp transport's
 * datagram handling (plugins/transport/udp/udp.c, included here so that
 * its static ud_datagram is reachable), behind the real host table on
 * the daemon of fuzz_host.h: real auth, real ingest.
 *
 * Byte 0, bit 0: put a valid "GottWallS2 ... test_project--chunk-auth--"
 * in front (for the fixed clock), so the chunk splitting and the events
 * are fuzzed too; bit 1: the same with "--stream-auth--". The rest is the
 * datagram. Invariants: no secret in any log line (the plugin logs why
 * each datagram or chunk is dropped, with the host's message); ASan/UBSan
 * do the rest.
 *
 * Fuzz:   make fuzz; Replay: tests/fuzz/replay_udp (make check).
 */
/* udp.c defines _GNU_SOURCE itself: it comes first, before any header. */
#include "../../plugins/transport/udp/udp.c"

#include "fuzz_host.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ud_state_t *st;
    char sign[33], *buf;
    size_t hlen = 0;
    gw_error_t err;

    fz_init();
    fz_set_input(data, size);
    if (st == NULL) {
        void *state = NULL;

        FZ_CHECK(ud_create(fz_ctx, &state, &err) == GW_OK);
        st = state;
    }
    if (size < 1 || size > UDP_DGRAM_MAX - 200)
        return 0;
    buf = malloc(size + 200);
    if (data[0] & 0x03) {
        gw__auth_sign_legacy("my_public_key", FZ_SECRET, (int64_t) FZ_NOW,
                             1000, sign);
        hlen = (size_t) snprintf(buf, 200,
                                 "GottWallS2 %lld %s 1000 test_project%s",
                                 (long long) FZ_NOW, sign,
                                 (data[0] & 0x01) ? "--chunk-auth--"
                                                  : "--stream-auth--");
    }
    memcpy(buf + hlen, data + 1, size - 1);
    ud_datagram(st, buf, hlen + size - 1);
    free(buf);
    fz_recycle();
    return 0;
}
