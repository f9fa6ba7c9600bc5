/*
 * base/log.c: the daemon's log. One line per call on stderr, written with a
 * single write(2) so lines from different threads never interleave:
 *   "2026-11-27T20:27:47.123Z info [transport:http:http] message"
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

void
gw__logv(int level, const char *prefix, const char *fmt, va_list ap)
{
    char line[4096];
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
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (w > 0)
        n += (size_t) w < sizeof(line) - n ? (size_t) w : sizeof(line) - n - 1;
    /* Keep the line one line: newlines inside a message become spaces. */
    for (off = 0; off < n; off++) {
        if (line[off] == '\n' || line[off] == '\r')
            line[off] = ' ';
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
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
