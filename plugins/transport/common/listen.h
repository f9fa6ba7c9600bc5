/*
 * plugins/transport/common/listen.h: the socket code the tcpip, udp and
 * statsd transports share: opening a bound (and listening) socket, and
 * reading a batch of datagrams with recvmmsg; and what tcpip and udp, the
 * two transports of signed {auth}{AUTH_DELIMITER}{json}{CHUNK_DELIMITER}
 * frames, share beyond that: the head of their state (tl_framed_t) and its
 * config keys, their create, their listening socket and the line logged
 * for it, and the blank-chunk test.
 *
 * The functions are static inline, so each plugin that includes this
 * header gets its own private copy: nothing is exported beside the
 * plugin's gw_plugin_descriptor, no extra source joins a plugin's build,
 * and targets that compile a plugin's .c file alone (tests/fuzz/fuzz_udp.c
 * includes udp.c) keep working. tl_open and tl_recv_batch leave the
 * wording of a failure to their caller (statsd words its own); the
 * tl_framed_ functions word the messages of tcpip and udp.
 *
 * Needs _GNU_SOURCE before the first system header (recvmmsg).
 */
#ifndef GW_TRANSPORT_COMMON_LISTEN_H
#define GW_TRANSPORT_COMMON_LISTEN_H

#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gottwall/plugin.h>

/*
 * Opens a non-blocking, close-on-exec socket of type (SOCK_STREAM or
 * SOCK_DGRAM) bound to host:port, with SO_REUSEADDR for TCP (with
 * SO_REUSEPORT too when reuseport is set); with v6only, IPv6
 * addresses get IPV6_V6ONLY; with backlog > 0 it also listens. The
 * addresses getaddrinfo gives are tried in order and the first that works
 * is kept. Returns the fd, or -1 with *gai set to getaddrinfo's error
 * code (0 when the lookup worked) and *sys to the errno of the last step
 * that failed (0 if none did).
 */
static inline int
tl_open_opt(const char *host, int port, int type, int backlog, int v6only,
            int reuseport, int *gai, int *sys)
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
        /* SO_REUSEADDR only for TCP (a restart next to TIME_WAIT): for
         * UDP it would let a second daemon bind the same port too. */
        if (type == SOCK_STREAM)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
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

static inline int
tl_open(const char *host, int port, int type, int backlog, int v6only,
        int *gai, int *sys)
{
    return tl_open_opt(host, port, type, backlog, v6only, 0, gai, sys);
}

/*
 * n UDP sockets on host:port, one per ingest loop, in one SO_REUSEPORT
 * group whose classic BPF program gives each datagram to one of them at
 * random (the kernel's random number mod n). Each loop then reads its own
 * socket, so a datagram wakes one loop: one socket watched by every loop
 * woke them all, each wake-up paid by the sender and by the loops that
 * found nothing (with one line per datagram, half the CPU). One busy
 * sender is still spread over every loop, which the group's default
 * (a hash of the sender's address and port) would not do. A plain bind
 * first checks that the port is free, so a second daemon on the same port
 * still fails with "address in use" instead of joining the group (and
 * the program picks only among the first n sockets anyway).
 *
 * Returns how many sockets fds[] got: n, or 1 (one socket, to be read by
 * every loop) when n is 1 or the kernel refuses the group or the program;
 * -1 when even that failed (*gai, *sys as tl_open).
 */
static inline int
tl_open_spread(const char *host, int port, int v6only, int n, int *fds,
               int *gai, int *sys)
{
    struct sock_filter code[3];
    struct sock_fprog prog;
    int i, probe;

    probe = tl_open(host, port, SOCK_DGRAM, 0, v6only, gai, sys);
    if (probe < 0 || n <= 1) {
        fds[0] = probe;
        return probe < 0 ? -1 : 1;
    }
    close(probe);
    code[0] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                            (uint32_t) (SKF_AD_OFF
                                                        + SKF_AD_RANDOM));
    code[1] = (struct sock_filter) BPF_STMT(BPF_ALU | BPF_MOD | BPF_K,
                                            (uint32_t) n);
    code[2] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_A, 0);
    prog.len = 3;
    prog.filter = code;
    for (i = 0; i < n; i++) {
        fds[i] = tl_open_opt(host, port, SOCK_DGRAM, 0, v6only, 1, gai, sys);
        if (fds[i] < 0)
            break;
    }
    if (i == n && setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
                             &prog, sizeof(prog)) == 0)
        return n;
    while (i-- > 0)
        close(fds[i]);
    fds[0] = tl_open(host, port, SOCK_DGRAM, 0, v6only, gai, sys);
    return fds[0] < 0 ? -1 : 1;
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

/* ---- connections spread over the ingest loops (tcpip, statsd) ---- */

/*
 * One ingest loop's share of a transport's TCP connections: loop 0
 * accepts and hands connection k to lane k mod n (ABI 1.7 host->post),
 * whose loop then runs it; the lane's list (conns, of the transport's
 * own connection type) is touched on that loop's thread only, and by
 * stop() once the loops no longer run.
 */
typedef struct tl_lane_s {
    struct ev_loop *loop;
    int index;
    void *conns;
} tl_lane_t;

typedef struct tl_lanes_s {
    tl_lane_t *v;
    int n;
    unsigned next;
} tl_lanes_t;

/* One lane per ingest loop (one only for a core before ABI 1.7, or
 * without more loops). Call from start(). */
static inline int
tl_lanes_init(const gw_ctx_t *ctx, tl_lanes_t *ls, gw_error_t *err)
{
    const gw_host_t *h = ctx->host;
    int i, n = 1;

    if (h->abi_minor >= 7 && h->post != NULL && h->loops != NULL)
        n = h->loops(ctx);
    ls->v = calloc((size_t) (n > 0 ? n : 1), sizeof(*ls->v));
    if (ls->v == NULL)
        return gw_error_set(err, "out of memory");
    ls->n = n > 0 ? n : 1;
    for (i = 0; i < ls->n; i++) {
        ls->v[i].index = i;
        ls->v[i].loop = i == 0 ? h->loop(ctx) : h->loop_at(ctx, i);
        if (ls->v[i].loop == NULL)
            return gw_error_set(err, "the core has no ingest loop %d", i);
    }
    return GW_OK;
}

/*
 * Hands a new connection to the next lane: *lane is set to it and fn(arg)
 * runs on its loop (now, on this thread, for lane 0 or when the hand-over
 * fails: then *lane is lane 0). fn sets up the connection's watchers on
 * (*lane)->loop.
 */
static inline void
tl_lanes_hand(const gw_ctx_t *ctx, tl_lanes_t *ls, tl_lane_t **lane,
              void (*fn)(void *arg), void *arg)
{
    tl_lane_t *l = &ls->v[ls->next++ % (unsigned) ls->n];

    *lane = l;
    if (l->index > 0 && ctx->host->post(ctx, l->index, fn, arg) == GW_OK)
        return;
    *lane = &ls->v[0];
    fn(arg);
}

/* ---- tcpip and udp ---- */

/*
 * The head of the tcpip and udp states: each starts with one (the member
 * tl), so the state's pointer is this one's and the offsets of their
 * config keys (tl.bind_host, ...) count from the state, as config_apply
 * wants.
 */
typedef struct tl_framed_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;

    /* Config (filled by config_apply): HOST, PORT, AUTH_DELIMITER and
     * CHUNK_DELIMITER. */
    const char *bind_host;
    int64_t port;
    const char *auth_delim;
    const char *chunk_delim;

    size_t auth_dlen, chunk_dlen;
    int fd; /* the listening socket, -1 when closed */
} tl_framed_t;

/*
 * The config keys of a tl_framed_t, first in the key table of a state type
 * st that starts with one: HOST and PORT, the same for tcpip and udp, and
 * the two delimiters, whose default and help each transport words.
 * (tests/sdk/test_man.py reads the key names here for each plugin that
 * uses it.)
 */
#define TL_FRAMED_KEYS(st, auth_default, auth_help, chunk_help)               \
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", st, tl.bind_host,    \
                  "address to listen on"),                                    \
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8897", st, tl.port,           \
                        "port to listen on", 1, 65535),                       \
    GW_CONFIG_KEY("AUTH_DELIMITER", GW_CONFIG_STRING, auth_default, st,       \
                  tl.auth_delim, auth_help),                                  \
    GW_CONFIG_KEY("CHUNK_DELIMITER", GW_CONFIG_STRING, "--chunk--", st,       \
                  tl.chunk_delim, chunk_help)

/*
 * The create of tcpip and udp: a zeroed state of size bytes that starts
 * with a tl_framed_t, its config applied from keys, both delimiters
 * measured (neither may be empty), fd -1.
 */
static inline int
tl_framed_create(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                 size_t size, void **state, gw_error_t *err)
{
    tl_framed_t *f = calloc(1, size);

    if (f == NULL)
        return gw_error_set(err, "out of memory");
    f->ctx = ctx;
    f->host = ctx->host;
    f->fd = -1;
    if (f->host->config_apply(ctx, keys, f, err) != GW_OK) {
        free(f);
        return GW_ERR;
    }
    f->auth_dlen = strlen(f->auth_delim);
    f->chunk_dlen = strlen(f->chunk_delim);
    if (f->auth_dlen == 0 || f->chunk_dlen == 0) {
        free(f);
        return gw_error_set(err, "AUTH_DELIMITER and CHUNK_DELIMITER must "
                                 "not be empty");
    }
    *state = f;
    return GW_OK;
}

/* The message of a failed open of f->fd (GW_ERR), or GW_OK. */
static inline int
tl_framed_failed(tl_framed_t *f, const char *proto, int gai, int sys,
                 gw_error_t *err)
{
    if (gai != 0)
        return gw_error_set(err, "listen %s:%d%s: %s", f->bind_host,
                            (int) f->port, proto, gai_strerror(gai));
    if (f->fd < 0)
        return gw_error_set(err, "bind %s:%d%s: %s", f->bind_host,
                            (int) f->port, proto,
                            strerror(sys ? sys : EADDRNOTAVAIL));
    return GW_OK;
}

/*
 * Opens f->fd on HOST:PORT (tl_open, IPv6 addresses v6-only): type and
 * backlog as there. The messages name the address as "HOST:PORT" followed
 * by proto ("" for tcpip, "/udp" for udp).
 */
static inline int
tl_framed_listen(tl_framed_t *f, int type, int backlog, const char *proto,
                 gw_error_t *err)
{
    int gai, sys;

    f->fd = tl_open(f->bind_host, (int) f->port, type, backlog, 1, &gai, &sys);
    return tl_framed_failed(f, proto, gai, sys, err);
}

/* The same for a UDP group of n sockets (tl_open_spread): fds[0] is f->fd;
 * *got how many were opened (n, or 1 to be read by every loop). */
static inline int
tl_framed_listen_spread(tl_framed_t *f, int n, int *fds, int *got,
                        gw_error_t *err)
{
    int gai, sys;

    *got = tl_open_spread(f->bind_host, (int) f->port, 1, n, fds, &gai,
                          &sys);
    f->fd = fds[0];
    return tl_framed_failed(f, "/udp", gai, sys, err);
}

/*
 * The line tcpip and udp log once listening: "listening for WHAT on
 * HOST:PORT", and " (read by N ingest loops)" after it when more than one
 * ingest loop reads the socket.
 */
static inline void
tl_framed_listening(const tl_framed_t *f, const char *what, int loops)
{
    if (loops > 1)
        gw_log_info(f->ctx, "listening for %s on %s:%d (read by %d ingest "
                            "loops)",
                    what, f->bind_host, (int) f->port, loops);
    else
        gw_log_info(f->ctx, "listening for %s on %s:%d", what, f->bind_host,
                    (int) f->port);
}

/* Whether s[0..n) is only spaces, tabs and line ends: such a chunk is no
 * event and is skipped, not counted. */
static inline int
tl_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

#endif /* GW_TRANSPORT_COMMON_LISTEN_H */
