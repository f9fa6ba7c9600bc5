/*
 * tools/gwload-src/sign.c: the signatures (SPEC section 4), computed with
 * libcrypto rather than GottWall's own code: S1 (http) and S2 (tcpip, udp)
 * headers, S3 per request (http), and the Basic credentials (http and the
 * read-back).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gwload.h"

/* The legacy sign: hex(HMAC-MD5(private, public + decimal(solt))). */
static void
sign_legacy(long ts, int base, char out[33])
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    long solt = (ts / base) * base;

    snprintf(msg, sizeof(msg), "%s%ld", opt.public_key, solt);
    HMAC(EVP_md5(), opt.private_key, (int)strlen(opt.private_key),
         (const unsigned char *)msg, strlen(msg), mac, &maclen);
    hex(mac, maclen, out);
}

/* Sets s_header: the S1 (http) or S2 (tcpip, udp) value, signed at ts. */
void
make_s_header(long ts)
{
    char sign[33];

    sign_legacy(ts, opt.base, sign);
    if (opt.proto == GL_HTTP)
        snprintf(s_header, sizeof(s_header), "GottWallS1 %ld %s %d", ts, sign, opt.base);
    else
        snprintf(s_header, sizeof(s_header), "GottWallS2 %ld %s %d %s", ts, sign, opt.base,
                 opt.project);
}

/* The S3 header value for one request body. */
void
sign_s3(long ts, const char *nonce, const char *sha_hex, char *out, size_t outsz)
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char sig[2 * EVP_MAX_MD_SIZE + 1];

    snprintf(msg, sizeof(msg), "GottWallS3\n%s\n%ld\n%s\n%s", opt.project, ts, nonce, sha_hex);
    HMAC(EVP_sha256(), opt.private_key, (int)strlen(opt.private_key),
         (const unsigned char *)msg, strlen(msg), mac, &maclen);
    hex(mac, maclen, sig);
    snprintf(out, outsz, "GottWallS3 %ld %s %s %s", ts, nonce, sig, opt.project);
}

void
make_basic(void)
{
    char plain[300];
    int n = snprintf(plain, sizeof(plain), "%s:%s", opt.public_key, opt.private_key);

    if (n < 0 || (size_t)n >= sizeof(plain))
        die("keys too long");
    EVP_EncodeBlock((unsigned char *)basic_value, (const unsigned char *)plain, n);
}
