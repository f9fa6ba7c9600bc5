/*
 * tests/fuzz/fuzz_auth.c: a libFuzzer target for gw__auth_check.
 *
 * Input: byte 0 picks the schemes allowed (its low 5 bits) and whether the
 * request names a project (bit 5: "test_project", bit 6: "shop"); the rest
 * up to the first '\n' is the header, what follows is the signed body.
 * Bit 7 puts a valid S2 or S3 prefix for the fixed clock in front, so the
 * fuzzer also reaches the checks after a good signature. The check goes
 * through the real host table (fuzz_host.h). Invariants: the result is
 * GW_OK or GW_ERR, a failure always has a message and counts one auth
 * failure, and no message or log line holds a private key.
 *
 * Fuzz:   make fuzz (tests/fuzz/local.mk) or see tests/fuzz/build.sh
 * Replay: tests/fuzz/replay_auth (make check) replays corpus/auth.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "fuzz_host.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hdr[4096], sign[65];
    const char *nl, *project = NULL, *who = NULL;
    const uint8_t *rest;
    size_t hlen = 0, rlen, n;
    gw_auth_req_t req;
    gw_error_t err;
    unsigned flags;
    uint64_t failed;
    int rc;

    fz_init();
    fz_set_input(data, size);
    if (size < 1 || size > 8192)
        return 0;
    flags = data[0];
    rest = data + 1;
    rlen = size - 1;
    nl = memchr(rest, '\n', rlen);
    n = nl != NULL ? (size_t) ((const uint8_t *) nl - rest) : rlen;
    if (flags & 0x80) {
        if (flags & 0x04) {
            gw__auth_sign_s3(FZ_SECRET, "test_project", (int64_t) FZ_NOW,
                             "nonce_fuzz_01", NULL, 0, sign);
            hlen = (size_t) snprintf(hdr, sizeof(hdr),
                                     "GottWallS3 %lld nonce_fuzz_01 %s ",
                                     (long long) FZ_NOW, sign);
        } else {
            gw__auth_sign_legacy("my_public_key", FZ_SECRET,
                                 (int64_t) FZ_NOW, 1000, sign);
            hlen = (size_t) snprintf(hdr, sizeof(hdr),
                                     "GottWallS2 %lld %s 1000 ",
                                     (long long) FZ_NOW, sign);
        }
    }
    if (n > sizeof(hdr) - hlen)
        n = sizeof(hdr) - hlen;
    memcpy(hdr + hlen, rest, n);
    hlen += n;
    if (flags & 0x20)
        project = "test_project";
    else if (flags & 0x40)
        project = "shop";
    memset(&req, 0, sizeof(req));
    req.schemes = flags & 0x1f;
    req.header = hdr;
    req.header_len = hlen;
    req.project = project;
    if (nl != NULL) {
        req.body = nl + 1;
        req.body_len = rlen - n - 1;
    }
    err.msg[0] = '\0';
    failed = fz_counts().auth_failed;
    rc = fz_ctx->host->auth_check(fz_ctx, &req, &who, &err);
    FZ_CHECK(rc == GW_OK || rc == GW_ERR);
    FZ_CHECK(fz_counts().auth_failed == failed + (rc != GW_OK));
    if (rc == GW_OK) {
        FZ_CHECK(who != NULL);
        FZ_CHECK(gw__config_project(&fz_cfg, who) != NULL);
        FZ_CHECK(project == NULL || strcmp(project, who) == 0);
    } else {
        FZ_CHECK(err.msg[0] != '\0');
        fz_check_no_secret(err.msg);
    }
    return 0;
}
