/*
 * tools/gwload-src/udp.c: the udp protocol: the S2 header, --chunk-auth-- and
 * --per-packet events joined by --chunk-- in each datagram, sent in batches
 * with sendmmsg. statsd over UDP (statsd.c) is sent here too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gwload.h"

/* The datagram of events first .. first+P-1. */
size_t
udp_body(char *buf, size_t room, uint64_t first, long ts)
{
    size_t len;
    int k;

    len = (size_t)snprintf(buf, room, "%s--chunk-auth--", s_header);
    for (k = 0; k < opt.per_packet; k++) {
        if (k)
            len += (size_t)snprintf(buf + len, room - len, "--chunk--");
        len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
    }
    return len;
}

void
run_udp(gl_thread_t *t)
{
    struct mmsghdr msgs[GL_UDP_BATCH];
    struct iovec iov[GL_UDP_BATCH];
    size_t next = t->first_unit;
    int fd = open_socket(SOCK_DGRAM);

    if (fd < 0) {
        snprintf(t->fatal, sizeof(t->fatal), "connect udp: %s", strerror(errno));
        return;
    }
    while (!time_up(t)) {
        uint64_t n = pace(t, GL_UDP_BATCH);
        int i, sent;

        if (n == 0)
            break;
        for (i = 0; i < (int)n; i++) {
            gl_unit_t *u = &ring[(next + (size_t)i) % ring_units];
            iov[i].iov_base = u->body;
            iov[i].iov_len = u->body_len;
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        sent = sendmmsg(fd, msgs, (unsigned)n, 0);
        if (sent < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
                t->st.send_errors++;
            if (errno == ECONNREFUSED && t->st.send_errors > 1000) {
                snprintf(t->fatal, sizeof(t->fatal), "udp: nothing listens on port %d", opt.port);
                break;
            }
            continue;
        }
        next = (next + (size_t)sent) % ring_units;
        t->st.units += (uint64_t)sent;
        t->st.events += (uint64_t)sent * (uint64_t)opt.per_packet;
    }
    close(fd);
}
