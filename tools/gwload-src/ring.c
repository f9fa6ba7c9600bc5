/*
 * tools/gwload-src/ring.c: the prebuilt payloads. Every unit (a datagram, a TCP
 * write or an HTTP request) is built before the clock starts; the senders go
 * round the ring. Event i is metric i % K with filter value (i / K) % V; each
 * protocol's file frames the events of one unit (udp_body, tcpip_body,
 * statsd_body, http_body).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gwload.h"

gl_unit_t *ring;
size_t ring_units;

/* An event as JSON (http, tcpip, udp). */
static int
json_event(char *p, size_t room, unsigned m, unsigned v, long ts)
{
    char tsbuf[40] = "";
    char fbuf[64] = "";

    if (opt.with_ts)
        snprintf(tsbuf, sizeof(tsbuf), ",\"ts\":%ld", ts);
    if (opt.filter_values)
        snprintf(fbuf, sizeof(fbuf), ",\"f\":{\"status\":\"v%u\"}", v);
    return snprintf(p, room, "{\"a\":\"%s\",\"n\":\"%s.m%u\"%s,\"v\":1%s}", opt.action,
                    opt.run_id, m, tsbuf, fbuf);
}

/* Appends event number i (metric i % K, filter value (i / K) % V). */
size_t
fmt_event(char *p, size_t room, uint64_t i, long ts)
{
    unsigned m = (unsigned)(i % (uint64_t)opt.metrics);
    unsigned v = opt.filter_values ? (unsigned)((i / (uint64_t)opt.metrics) % (uint64_t)opt.filter_values) : 0;
    int n;

    if (opt.proto == GL_STATSD)
        n = statsd_event(p, room, m, v, i);
    else
        n = json_event(p, room, m, v, ts);
    if (n < 0 || (size_t)n >= room)
        die("a payload does not fit: lower --per-packet");
    return (size_t)n;
}

/* Builds the body of unit u (events u*P .. u*P+P-1) into buf. */
static size_t
build_body(char *buf, size_t room, size_t u, long ts)
{
    uint64_t first = (uint64_t)u * (uint64_t)opt.per_packet;
    size_t len = 0;

    switch (opt.proto) {
    case GL_UDP:
        len = udp_body(buf, room, first, ts);
        break;
    case GL_TCPIP:
        len = tcpip_body(buf, room, first, ts);
        break;
    case GL_STATSD:
        len = statsd_body(buf, room, first, ts);
        break;
    case GL_HTTP:
        len = http_body(buf, room, first, ts);
        break;
    }
    if (len >= room)
        die("a payload does not fit: lower --per-packet");
    return len;
}

/* How many units the ring wants: every (metric, filter value) pair, at
 * least 64, at most GL_MAX_UNITS, fewer when --events needs fewer. */
static uint64_t
ring_want(void)
{
    uint64_t combos = (uint64_t)opt.metrics * (uint64_t)(opt.filter_values ? opt.filter_values : 1);
    uint64_t want = (combos + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet;

    if (want < 64)
        want = 64;
    if (want > GL_MAX_UNITS)
        want = GL_MAX_UNITS;
    if (opt.events) {
        uint64_t need = (opt.events + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet;
        if (need < want && need >= (combos + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet)
            want = need < 64 ? 64 : need;
    }
    return want;
}

/* Prebuilds the ring: enough units to use every (metric, filter value) pair. */
void
build_ring(void)
{
    uint64_t want = ring_want();
    size_t room = (size_t)opt.per_packet * 400 + 1024;
    char *scratch = xmalloc(room);
    size_t total = 0, u;
    long ts = (long)time(NULL);

    ring = xmalloc(sizeof(*ring) * (size_t)want);
    for (u = 0; u < (size_t)want; u++) {
        size_t n = build_body(scratch, room, u, ts);
        gl_unit_t *un = &ring[u];

        if (opt.proto == GL_UDP || opt.proto == GL_STATSD) {
            if (!opt.statsd_tcp && n > GL_MAX_DGRAM)
                die("a datagram of %d events is %zu bytes, over %d: lower --per-packet",
                    opt.per_packet, n, GL_MAX_DGRAM);
        }
        memset(un, 0, sizeof(*un));
        un->body = xmalloc(n + 1);
        memcpy(un->body, scratch, n);
        un->body[n] = '\0';
        un->body_len = n;
        total += n;
        if (opt.proto == GL_HTTP)
            total += http_prepare(un);
        if (total > GL_RING_BYTES_MAX) {
            u++;
            break;
        }
    }
    ring_units = u;
    free(scratch);
    if (opt.verbose)
        fprintf(stderr, "gwload: %zu payloads prebuilt (%zu bytes, %" PRIu64 " events)\n",
                ring_units, total, (uint64_t)ring_units * (uint64_t)opt.per_packet);
}
