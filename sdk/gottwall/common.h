/*
 * gottwall/common.h: return codes, errors and log levels shared by every
 * part of the plugin ABI.
 *
 * Every fallible call returns an int: GW_OK, GW_ERR (with a message in a
 * caller-owned gw_error_t) or GW_AGAIN ("not now, call again later").
 * Never a positive value, never an errno in disguise.
 */
#ifndef GOTTWALL_COMMON_H
#define GOTTWALL_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GW_OK 0
#define GW_ERR (-1)
#define GW_AGAIN (-2)
/* ABI 1.6: a compare-and-set found the stored value changed (doc_cas,
 * doc_del); nothing was written. Returned only by the ops that say so. */
#define GW_CONFLICT (-3)

/* Log levels: syslog(3) numbers, as collectd uses them. */
#define GW_LOG_ERR 3
#define GW_LOG_WARNING 4
#define GW_LOG_NOTICE 5
#define GW_LOG_INFO 6
#define GW_LOG_DEBUG 7

#if defined(__GNUC__) || defined(__clang__)
#define GW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define GW_EXPORT __attribute__((visibility("default")))
#define GW_UNUSED __attribute__((unused))
#else
#define GW_PRINTF(fmt, args)
#define GW_EXPORT
#define GW_UNUSED
#endif

#define GW_ERROR_MAX 256

/*
 * An error message. Always owned by the caller (usually a stack variable);
 * the callee fills msg on failure only. A NULL gw_error_t * is allowed
 * wherever one is taken: the message is then discarded.
 */
typedef struct gw_error_s {
    char msg[GW_ERROR_MAX];
} gw_error_t;

/*
 * Formats a message into err (which may be NULL) and returns GW_ERR, so that
 * a failure reads `return gw_error_set(err, "connect %s: %s", host, why);`.
 */
static inline GW_PRINTF(2, 3) int
gw_error_set(gw_error_t *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return GW_ERR;
}

#endif /* GOTTWALL_COMMON_H */
