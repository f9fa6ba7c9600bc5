/*
 * base/log.c: the daemon's log. One line per call on stderr, written with a
 * single write(2) so lines from different threads never interleave:
 *   "2026-11-27T20:27:47.123Z info [transport:http:http] message"
 * Whatever a message holds, the line cannot move the terminal's cursor nor
 * start another line (control bytes are escaped), and gw__log_escape makes
 * a client's string safe to log between quotes.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static volatile int log_level = GW_LOG_INFO;
static void (*log_sink)(int level, const char *line);

static const char *
log_level_name(int level)
{
    switch (level) {
    case GW_LOG_ERR:
        return "error";
    case GW_LOG_WARNING:
        return "warning";
    case GW_LOG_NOTICE:
        return "notice";
    case GW_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void
gw__log_set_level(int level)
{
    log_level = level;
}

void
gw__log_set_sink(void (*fn)(int level, const char *line))
{
    log_sink = fn;
}

int
gw__log_parse_level(const char *name, int *level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"error", GW_LOG_ERR},     {"err", GW_LOG_ERR},
        {"critical", GW_LOG_ERR},  {"warning", GW_LOG_WARNING},
        {"warn", GW_LOG_WARNING},  {"notice", GW_LOG_NOTICE},
        {"info", GW_LOG_INFO},     {"debug", GW_LOG_DEBUG},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return GW_OK;
        }
    }
    return GW_ERR;
}

/* Appends msg to line (at n, size bytes): newlines as spaces, other C0
 * controls and DEL as \xNN. Returns the new length (< size). */
static size_t
log_append(char *line, size_t n, size_t size, const char *msg)
{
    const unsigned char *p = (const unsigned char *) msg;

    for (; *p != '\0' && n + 1 < size; p++) {
        if (*p == '\n' || *p == '\r') {
            line[n++] = ' ';
        } else if (*p < 0x20 || *p == 0x7f) {
            if (n + 5 > size)
                break;
            snprintf(line + n, 5, "\\x%02x", *p);
            n += 4;
        } else {
            line[n++] = (char) *p;
        }
    }
    line[n] = '\0';
    return n;
}

void
gw__logv(int level, const char *prefix, const char *fmt, va_list ap)
{
    char line[4096];
    char msg[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;
    ssize_t r;
    size_t off;

    if (level > log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
                 (long) (ts.tv_nsec / 1000000), log_level_name(level));
    n += (size_t) w;
    if (prefix != NULL && prefix[0] != '\0') {
        w = snprintf(line + n, sizeof(line) - n, "[%s] ", prefix);
        if (w > 0)
            n += (size_t) w < sizeof(line) - n ? (size_t) w
                                                : sizeof(line) - n - 1;
    }
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    /* Keep the line one line, and the terminal's cursor where it is
     * (leaving room for the newline). */
    n = log_append(line, n, sizeof(line) - 1, msg);
    if (log_sink != NULL) {
        line[n] = '\0';
        log_sink(level, line);
        return;
    }
    line[n++] = '\n';
    off = 0;
    while (off < n) {
        r = write(STDERR_FILENO, line + off, n - off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        off += (size_t) r;
    }
}

void
gw__log(int level, const char *prefix, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw__logv(level, prefix, fmt, ap);
    va_end(ap);
}

/* ---- Escaping a client's string ---- */

/* The length of the UTF-8 character at p that a log may show as it is:
 * valid (shortest form, no surrogate, at most U+10FFFF) and not a control
 * (C1 U+0080..U+009F, line and paragraph separators U+2028/U+2029, bidi
 * embeddings, overrides and isolates U+202A..U+202E, U+2066..U+2069).
 * 0 when the bytes must be escaped. */
static size_t
log_utf8_len(const unsigned char *p)
{
    unsigned long cp;
    size_t n, i;

    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    cp = p[0] & (0x7f >> n);
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f
        || (cp >= 0x2028 && cp <= 0x2029) || (cp >= 0x202a && cp <= 0x202e)
        || (cp >= 0x2066 && cp <= 0x2069))
        return 0;
    return n;
}

const char *
gw__log_escape(const char *s, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *) (s != NULL ? s : "");
    size_t o = 0, cut = 0;

    if (size < 4) {
        if (size > 0)
            out[0] = '\0';
        return out;
    }
    while (*p != '\0') {
        char piece[8];
        size_t n = 1, adv = 1;

        if (*p == '"' || *p == '\\') {
            piece[0] = '\\';
            piece[1] = (char) *p;
            n = 2;
        } else if (*p == '\t' || *p == '\n' || *p == '\r') {
            piece[0] = '\\';
            piece[1] = *p == '\t' ? 't' : *p == '\n' ? 'n' : 'r';
            n = 2;
        } else if (*p >= 0x20 && *p < 0x7f) {
            piece[0] = (char) *p;
        } else if ((adv = log_utf8_len(p)) > 0) {
            memcpy(piece, p, adv);
            n = adv;
        } else {
            snprintf(piece, sizeof(piece), "\\x%02x", *p);
            n = 4;
            adv = 1;
        }
        if (o + n >= size) {
            /* Does not fit: end at the last whole piece that leaves room
             * for the "...". */
            memcpy(out + cut, "...", 4);
            return out;
        }
        memcpy(out + o, piece, n);
        o += n;
        if (o + 4 <= size)
            cut = o;
        p += adv;
    }
    out[o] = '\0';
    return out;
}
