/*
 * tools/gwload-src/tcp.c: the tcpip protocol: each connection signs in with the
 * S2 header and --stream-auth--, waits for OK, then writes {json}--chunk--
 * events. statsd over TCP (statsd.c, --tcp) is sent here too, without the
 * sign-in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gwload.h"

/* One write: events first .. first+P-1, each followed by --chunk--. */
size_t
tcpip_body(char *buf, size_t room, uint64_t first, long ts)
{
    size_t len = 0;
    int k;

    for (k = 0; k < opt.per_packet; k++) {
        len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
        len += (size_t)snprintf(buf + len, room - len, "--chunk--");
    }
    return len;
}

static int
tcp_connect_auth(gl_thread_t *t)
{
    int fd = open_socket(SOCK_STREAM);
    char buf[512], ans[8];
    ssize_t r;
    size_t got = 0;

    if (fd < 0) {
        snprintf(t->fatal, sizeof(t->fatal), "connect tcp %s:%d: %s", opt.host, opt.port,
                 strerror(errno));
        return -1;
    }
    if (opt.proto != GL_TCPIP)
        return fd;
    snprintf(buf, sizeof(buf), "%s--stream-auth--", s_header);
    if (write_all(fd, buf, strlen(buf)) < 0) {
        snprintf(t->fatal, sizeof(t->fatal), "tcpip auth write: %s", strerror(errno));
        close(fd);
        return -1;
    }
    {
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    while (got < 2) {
        r = recv(fd, ans + got, 2 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != 2 || memcmp(ans, "OK", 2) != 0) {
        snprintf(t->fatal, sizeof(t->fatal),
                 "tcpip auth refused (answer %.*s): check --project and the keys", (int)got, ans);
        close(fd);
        return -1;
    }
    return fd;
}

void
run_tcp(gl_thread_t *t)
{
    int fds[GL_MAX_CONNS];
    size_t next = t->first_unit;
    int i, c = 0;

    for (i = 0; i < t->nconns; i++) {
        fds[i] = tcp_connect_auth(t);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            return;
        }
    }
    while (!time_up(t)) {
        uint64_t n = pace(t, 16), k;

        if (n == 0)
            break;
        for (k = 0; k < n; k++) {
            gl_unit_t *u = &ring[next];

            if (write_all(fds[c], u->body, u->body_len) < 0) {
                snprintf(t->fatal, sizeof(t->fatal), "tcp write: %s (the server closed?)",
                         strerror(errno));
                goto out;
            }
            next = (next + 1) % ring_units;
            t->st.units++;
            t->st.events += (uint64_t)opt.per_packet;
            c = (c + 1) % t->nconns;
        }
    }
out:
    for (i = 0; i < t->nconns; i++) {
        shutdown(fds[i], SHUT_WR);
        close(fds[i]);
    }
}
