/*
 * tools/gwload-src/report.c: the summary line: the threads' counters summed,
 * the fields that scripts parse (see --help), and which metric names the
 * run used (for --read-back).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwload.h"

/* Sums the threads' counters into sum; the first thread's error into fatal. */
void
sum_stats(const gl_thread_t *th, gl_stats_t *sum, char *fatal, size_t fatalsz)
{
    int i;

    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < opt.threads; i++) {
        sum->events += th[i].st.events;
        sum->units += th[i].st.units;
        sum->send_errors += th[i].st.send_errors;
        sum->responses += th[i].st.responses;
        sum->ok += th[i].st.ok;
        sum->bad_status += th[i].st.bad_status;
        sum->unanswered += th[i].st.unanswered;
        sum->reconnects += th[i].st.reconnects;
        if (th[i].st.last_bad_status)
            sum->last_bad_status = th[i].st.last_bad_status;
        if (th[i].fatal[0] && !fatal[0])
            snprintf(fatal, fatalsz, "%s", th[i].fatal);
    }
}

/* The summary line up to what the read-back adds (no newline yet). */
void
print_summary(const gl_stats_t *sum, double seconds, double server_cpu_s)
{
    double rate;

    rate = seconds > 0 ? (double)sum->events / seconds : 0;
    printf("proto=%s%s%s sent=%" PRIu64 " seconds=%.2f rate=%.0f/s packets=%" PRIu64,
           opt.proto_name, opt.statsd_tcp ? "-tcp" : "", opt.timers ? "-timers" : "",
           sum->events, seconds, rate, sum->units);
    if (sum->send_errors)
        printf(" send_errors=%" PRIu64, sum->send_errors);
    if (opt.proto == GL_HTTP) {
        printf(" acked=%" PRIu64 " http_errors=%" PRIu64 " unanswered=%" PRIu64,
               sum->ok * (uint64_t)opt.per_packet, sum->bad_status, sum->unanswered);
        if (sum->bad_status)
            printf(" last_status=%d", sum->last_bad_status);
        if (sum->reconnects)
            printf(" reconnects=%" PRIu64, sum->reconnects);
    }
    if (opt.nserver_pids)
        printf(" server_cpu=%.2f", server_cpu_s);
    fflush(stdout);
}

/* Which metric names were used: used[m] is 1 when a unit sent holds m. */
unsigned char *
used_metrics(const gl_thread_t *th)
{
    unsigned char *used;
    uint64_t u;
    int i;

    used = calloc((size_t)opt.metrics, 1);
    if (used == NULL)
        die("out of memory");
    for (i = 0; i < opt.threads; i++) {
        uint64_t n = th[i].st.units < ring_units ? th[i].st.units : ring_units;
        int k;

        for (u = 0; u < n; u++) {
            uint64_t unit = (th[i].first_unit + u) % ring_units;
            for (k = 0; k < opt.per_packet; k++)
                used[(unit * (uint64_t)opt.per_packet + (uint64_t)k) % (uint64_t)opt.metrics] = 1;
        }
    }
    return used;
}

/* The rest of the summary line: --read-back's stored= and loss=, or http's
 * loss= from the answers, then run_id=. */
void
print_tail(const gl_stats_t *sum, const unsigned char *used)
{
    if (opt.read_back && sum->events > 0)
        read_back(used, sum->events);
    else if (opt.proto == GL_HTTP && sum->events > 0) {
        uint64_t acked = sum->ok * (uint64_t)opt.per_packet;
        printf(" loss=%.3f%%", 100.0 * (double)(sum->events - acked) / (double)sum->events);
    }
    printf(" run_id=%s\n", opt.run_id);
    fflush(stdout);
}
