/*
 * base/buf.c: the growable buffer, hex digits, URL decoding and strict
 * base64 decoding of base/buf.h. A buffer doubles from 64 bytes; nothing
 * here logs or aborts: running out of memory is returned (and recorded in
 * the buffer) for the caller to answer as it must.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

/* ---- the hash key ------------------------------------------------------ */

gw_hash_key_t gw__hash_key;

/* Before main (and before any table is made): from getrandom(2), else
 * /dev/urandom, else (neither works only in a broken sandbox) the clock,
 * the process id and an address, which at least differ per process. */
__attribute__((constructor)) static void
gw__hash_key_init(void)
{
    gw_hash_key_t k;
    struct timespec ts;
    ssize_t n = getrandom(&k, sizeof(k), 0);
    int fd;

    if (n == (ssize_t) sizeof(k)) {
        gw__hash_key = k;
        return;
    }
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, &k, sizeof(k));
        close(fd);
        if (n == (ssize_t) sizeof(k)) {
            gw__hash_key = k;
            return;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gw__hash_key.k0 = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30) ^
                      (uint64_t) getpid();
    gw__hash_key.k1 = (uint64_t) (uintptr_t) &k ^ gw__hash_mix(gw__hash_key.k0);
}

/* ---- Buffers ---- */

int
gw__buf_reserve(gw__buf_t *b, size_t extra)
{
    size_t need, cap;
    char *p;

    /* Past a quarter of the address space no allocator can answer (and
     * the doubling below would overflow): out of memory, without asking. */
    if (extra > SIZE_MAX / 4 - b->len) {
        b->oom = 1;
        return -1;
    }
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int
gw__buf_add(gw__buf_t *b, const void *data, size_t len)
{
    if (gw__buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int
gw__buf_puts(gw__buf_t *b, const char *s)
{
    return gw__buf_add(b, s, strlen(s));
}

int
gw__buf_printf(gw__buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || gw__buf_reserve(b, (size_t) n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
    return 0;
}

void
gw__buf_free(gw__buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* ---- Hex and URLs ---- */

int
gw__hex_val(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

void
gw__hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

char *
gw__url_decode(const char *s, size_t len, int flags)
{
    char *out = malloc(len + 1);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '+' && (flags & GW__URL_PLUS)) {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len
                   && gw__hex_val((unsigned char) s[i + 1]) >= 0
                   && gw__hex_val((unsigned char) s[i + 2]) >= 0) {
            out[o] = (char) (gw__hex_val((unsigned char) s[i + 1]) * 16
                             + gw__hex_val((unsigned char) s[i + 2]));
            if (out[o] == '\0' && (flags & GW__URL_NO_NUL)) {
                free(out);
                return NULL;
            }
            o++;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- Base64 ---- */

static int
buf_b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long
gw__b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t i, o = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0)
        return -1;
    if (len % 4 == 1)
        return -1;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return -1;
    for (i = 0; i < len; i++) {
        int v = buf_b64val((unsigned char) in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits);
        }
    }
    return (long) o;
}
