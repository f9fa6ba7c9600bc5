/*
 * base/log.h: logging to stderr with levels. Thread-safe; one write per
 * line. Format: "2026-11-27T20:27:47Z <level> [prefix] message". A line
 * stays one line: newlines in a message become spaces and other control
 * bytes are written as \xNN. A string a client sent goes through
 * gw__log_escape, inside double quotes.
 */
#ifndef GW_BASE_LOG_H
#define GW_BASE_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include <gottwall/common.h>

/* Lines above level are discarded (default GW_LOG_INFO). */
void gw__log_set_level(int level);
/* Parses "error", "warning", "notice", "info", "debug". GW_OK or GW_ERR. */
int gw__log_parse_level(const char *name, int *level);
/* Tests only: every line that passes the level goes to fn (the formatted
 * line, without its newline) instead of stderr; NULL (the default):
 * stderr. Set it before any thread logs. */
void gw__log_set_sink(void (*fn)(int level, const char *line));

/* prefix may be NULL ("[storage:redis:main]" without brackets otherwise). */
void gw__log(int level, const char *prefix, const char *fmt, ...)
    GW_PRINTF(3, 4);
void gw__logv(int level, const char *prefix, const char *fmt, va_list ap);

/* Copies s (NULL: "") into out, escaped for a log line, to be written
 * inside double quotes: '"' and '\' get a backslash; tab, newline and
 * carriage return are written \t, \n, \r; every other byte that a
 * terminal could act on (C0 controls, DEL, C1 controls, Unicode line and
 * bidi controls) and every byte that is not part of valid UTF-8 as
 * \xNN. Printable ASCII and other valid UTF-8 stay as they are. When the
 * escaped text does not fit in size bytes (at least 4) it is cut after a
 * whole character and ends with "...". Returns out. */
const char *gw__log_escape(const char *s, char *out, size_t size);

#define gw__log_error(...) gw__log(GW_LOG_ERR, NULL, __VA_ARGS__)
#define gw__log_warning(...) gw__log(GW_LOG_WARNING, NULL, __VA_ARGS__)
#define gw__log_notice(...) gw__log(GW_LOG_NOTICE, NULL, __VA_ARGS__)
#define gw__log_info(...) gw__log(GW_LOG_INFO, NULL, __VA_ARGS__)
#define gw__log_debug(...) gw__log(GW_LOG_DEBUG, NULL, __VA_ARGS__)

#endif /* GW_BASE_LOG_H */
