/*
 * net/password.c: password hashes for USERS (`gottwall passwd`, the login
 * page): PBKDF2-HMAC-SHA256 with a 16-byte random salt and 200000
 * iterations, written "pbkdf2-sha256$ITER$SALT_B64$HASH_B64". Verification
 * compares in constant time.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "password.h"
#include "base/buf.h"

#define PW_ITERATIONS 200000
#define PW_SALT 16
#define PW_HASH 32
#define PW_MAX_ITERATIONS 10000000L

char *
gw__password_hash(const char *password)
{
    unsigned char salt[PW_SALT], hash[PW_HASH];
    char salt_b64[32], hash_b64[64];
    char *out;
    size_t n;

    if (password == NULL || RAND_bytes(salt, sizeof(salt)) != 1)
        return NULL;
    if (PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt,
                          sizeof(salt), PW_ITERATIONS, EVP_sha256(),
                          sizeof(hash), hash) != 1)
        return NULL;
    EVP_EncodeBlock((unsigned char *) salt_b64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *) hash_b64, hash, sizeof(hash));
    n = strlen("pbkdf2-sha256$") + 12 + strlen(salt_b64) + strlen(hash_b64) +
        4;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "pbkdf2-sha256$%d$%s$%s", PW_ITERATIONS, salt_b64,
                 hash_b64);
    OPENSSL_cleanse(hash, sizeof(hash));
    return out;
}

/* Decodes standard base64 (with padding) into out; returns the length or
 * -1. */
static int
pw_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    return (int) gw__b64_decode(in, len, out, cap);
}

int
gw__password_verify(const char *password, const char *hash)
{
    unsigned char salt[64], want[64], got[64];
    const char *p, *s, *h;
    char *end;
    long iter;
    int nsalt, nwant, ok;

    if (password == NULL || hash == NULL ||
        strncmp(hash, "pbkdf2-sha256$", 14) != 0)
        return 0;
    p = hash + 14;
    iter = strtol(p, &end, 10);
    if (end == p || *end != '$' || iter < 1 || iter > PW_MAX_ITERATIONS)
        return 0;
    s = end + 1;
    h = strchr(s, '$');
    if (h == NULL)
        return 0;
    nsalt = pw_b64_decode(s, (size_t) (h - s), salt, sizeof(salt));
    h++;
    nwant = pw_b64_decode(h, strlen(h), want, sizeof(want));
    if (nsalt <= 0 || nwant < 16)
        return 0;
    if (PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, nsalt,
                          (int) iter, EVP_sha256(), nwant, got) != 1)
        return 0;
    ok = CRYPTO_memcmp(got, want, (size_t) nwant) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
