/*
 * tools/gwload-src/statsd.c: the statsd protocol: name:1|c lines (with a
 * |#status:v tag when --filter-values; --timers: name:V|ms, V a latency
 * from 0.01 to 1000.00 ms that varies by event), --per-packet lines per datagram
 * joined by newlines, or with --tcp a stream of newline-ended lines. The
 * datagrams go out through udp.c's sender, the stream through tcp.c's.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "gwload.h"

/* Event i (metric m, filter value v) as a statsd line, without the newline. */
int
statsd_event(char *p, size_t room, unsigned m, unsigned v, uint64_t i)
{
    if (opt.timers) {
        /* A multiplicative hash of i: values spread over 1..100000 (in
         * hundredths of a ms), so a timing's sketch gets many buckets. */
        unsigned h = (unsigned)((i * 2654435761u) >> 7) % 100000u + 1u;

        if (opt.filter_values)
            return snprintf(p, room, "%s.m%u:%u.%02u|ms|#status:v%u", opt.run_id, m, h / 100,
                            h % 100, v);
        return snprintf(p, room, "%s.m%u:%u.%02u|ms", opt.run_id, m, h / 100, h % 100);
    }
    if (opt.filter_values)
        return snprintf(p, room, "%s.m%u:1|c|#status:v%u", opt.run_id, m, v);
    return snprintf(p, room, "%s.m%u:1|c", opt.run_id, m);
}

/* The datagram or write of events first .. first+P-1. */
size_t
statsd_body(char *buf, size_t room, uint64_t first, long ts)
{
    size_t len = 0;
    int k;

    for (k = 0; k < opt.per_packet; k++) {
        if (k && !opt.statsd_tcp)
            buf[len++] = '\n';
        len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
        if (opt.statsd_tcp)
            buf[len++] = '\n';
    }
    return len;
}

void
run_statsd(gl_thread_t *t)
{
    if (opt.statsd_tcp)
        run_tcp(t);
    else
        run_udp(t);
}
