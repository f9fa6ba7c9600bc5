/*
 * plugins/transport/common/listen.h: the socket code the tcpip, udp and
 * statsd transports share: opening a bound (and listening) socket, and
 * reading a batch of datagrams with recvmmsg.
 *
 * The functions are static inline, so each plugin that includes this
 * header gets its own private copy: nothing is exported beside the
 * plugin's gw_plugin_descriptor, no extra source joins a plugin's build,
 * and targets that compile a plugin's .c file alone (tests/fuzz/fuzz_udp.c
 * includes udp.c) keep working. Each caller words its own error messages
 * from the codes these return.
 *
 * Needs _GNU_SOURCE before the first system header (recvmmsg).
 */
#ifndef GW_TRANSPORT_COMMON_LISTEN_H
#define GW_TRANSPORT_COMMON_LISTEN_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gottwall/plugin.h>

/*
 * Opens a non-blocking, close-on-exec socket of type (SOCK_STREAM or
 * SOCK_DGRAM) bound to host:port, with SO_REUSEADDR; with v6only, IPv6
 * addresses get IPV6_V6ONLY; with backlog > 0 it also listens. The
 * addresses getaddrinfo gives are tried in order and the first that works
 * is kept. Returns the fd, or -1 with *gai set to getaddrinfo's error
 * code (0 when the lookup worked) and *sys to the errno of the last step
 * that failed (0 if none did).
 */
static inline int
tl_open(const char *host, int port, int type, int backlog, int v6only,
        int *gai, int *sys)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, one = 1;

    *gai = 0;
    *sys = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    *gai = getaddrinfo(host, portstr, &hints, &res);
    if (*gai != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            *sys = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (v6only && ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
            && (backlog <= 0 || listen(fd, backlog) == 0))
            break;
        *sys = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/*
 * One recvmmsg of up to n datagrams into bufs, which holds n buffers of
 * size + 1 bytes (the extra byte lets a caller end a datagram with '\0');
 * msgs and iovs have n entries. A datagram longer than size is cut and
 * has MSG_TRUNC in msgs[i].msg_hdr.msg_flags. Returns how many were read,
 * or -1 when there is nothing to read now (an unexpected error is logged
 * as a warning first).
 */
static inline int
tl_recv_batch(const gw_ctx_t *ctx, int fd, struct mmsghdr *msgs,
              struct iovec *iovs, char *bufs, unsigned n, size_t size)
{
    unsigned i;
    int got;

    for (i = 0; i < n; i++) {
        iovs[i].iov_base = bufs + (size_t) i * (size + 1);
        iovs[i].iov_len = size;
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_len = 0;
    }
    got = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        gw_log_warning(ctx, "recvmmsg: %s", strerror(errno));
    return got < 0 ? -1 : got;
}

#endif /* GW_TRANSPORT_COMMON_LISTEN_H */
