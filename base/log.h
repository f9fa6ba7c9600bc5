/*
 * base/log.h: logging to stderr with levels. Thread-safe; one write per
 * line. Format: "2026-11-27T20:27:47Z <level> [prefix] message".
 */
#ifndef GW_BASE_LOG_H
#define GW_BASE_LOG_H

#include <stdarg.h>

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

#define gw__log_error(...) gw__log(GW_LOG_ERR, NULL, __VA_ARGS__)
#define gw__log_warning(...) gw__log(GW_LOG_WARNING, NULL, __VA_ARGS__)
#define gw__log_notice(...) gw__log(GW_LOG_NOTICE, NULL, __VA_ARGS__)
#define gw__log_info(...) gw__log(GW_LOG_INFO, NULL, __VA_ARGS__)
#define gw__log_debug(...) gw__log(GW_LOG_DEBUG, NULL, __VA_ARGS__)

#endif /* GW_BASE_LOG_H */
