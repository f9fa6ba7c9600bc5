/*
 * plugins/transport/udp/udp.c: the signed datagram transport (SPEC §5).
 *
 * One datagram is
 *     {S2 or S3 header}{AUTH_DELIMITER}{json}({CHUNK_DELIMITER}{json})*
 * optionally ending with a CHUNK_DELIMITER. AUTH_DELIMITER defaults to
 * "--chunk-auth--"; "--stream-auth--" is accepted too, because clients of
 * the original disagree. A datagram whose auth fails (malformed, unknown
 * project, wrong key: the original let these through) is dropped whole;
 * S3 signs the bytes after the auth delimiter. Each chunk is then
 * submitted on its own: a bad one is dropped and counted, the others kept.
 *
 * Datagrams are read whole (up to 65507 bytes; a truncated one is
 * dropped and counted) with recvmmsg, UDP_BATCH at a time, until the
 * socket is empty or UDP_ROUNDS batches were read, so one busy socket
 * cannot starve the loop.
 *
 * With INGEST_LOOPS = N (ABI 1.2, host->loops) the one socket is read by
 * N readers, one on each ingest loop: the kernel hands each datagram to
 * one of them, so the work spreads over N cores whatever the senders'
 * addresses (SO_REUSEPORT would spread by the sender's address and port,
 * leaving one busy client on one core; docs/scaling.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/plugin.h>

#include "../common/listen.h"

#define UDP_BATCH 32         /* datagrams per recvmmsg */
#define UDP_ROUNDS 8         /* recvmmsg calls per wakeup */
#define UDP_DGRAM_MAX 65536  /* bytes per buffer: any UDP payload fits */
#define UDP_ALT_DELIM "--stream-auth--"

typedef struct ud_state_s ud_state_t;

/* One reader of the socket, on one ingest loop, with its own buffers. */
typedef struct ud_reader_s {
    ud_state_t *st;
    struct ev_loop *loop;
    ev_io rio;
    int started;
    char *bufs; /* UDP_BATCH buffers of UDP_DGRAM_MAX + 1 */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iovs[UDP_BATCH];
} ud_reader_t;

struct ud_state_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;
    struct ev_loop *loop;

    /* Config (filled by config_apply). */
    const char *bind_host;
    int64_t port;
    const char *auth_delim;
    const char *chunk_delim;
    int64_t rcvbuf;

    size_t auth_dlen, chunk_dlen;
    int fd;
    int stopped;

    ud_reader_t *readers; /* one per ingest loop */
    int nreaders;
};

static const gw_config_key_t ud_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", ud_state_t,
                  bind_host, "address to listen on"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "8897", ud_state_t, port,
                        "port to listen on", 1, 65535),
    GW_CONFIG_KEY("AUTH_DELIMITER", GW_CONFIG_STRING, "--chunk-auth--",
                  ud_state_t, auth_delim,
                  "ends the auth header of a datagram (\"--stream-auth--\" "
                  "is always accepted too)"),
    GW_CONFIG_KEY("CHUNK_DELIMITER", GW_CONFIG_STRING, "--chunk--",
                  ud_state_t, chunk_delim,
                  "separates the JSON events of a datagram"),
    GW_CONFIG_KEY_RANGE("RCVBUF", GW_CONFIG_INT, "8388608", ud_state_t,
                        rcvbuf,
                        "socket receive buffer in bytes (SO_RCVBUF)", 4096,
                        1073741824),
    GW_CONFIG_END};

static int
ud_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* The first d[0..len) occurrence of the delimiter m[0..mlen) (mlen > 0),
 * or NULL: memchr for its first byte, then memcmp, which beats memmem's
 * set-up cost on the short chunks of a datagram. */
static const char *
ud_find(const char *d, size_t len, const char *m, size_t mlen)
{
    const char *end = d + len, *p = d;

    while ((size_t) (end - p) >= mlen) {
        p = memchr(p, m[0], (size_t) (end - p) - mlen + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p + 1, m + 1, mlen - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* The first accepted auth delimiter in d[0..len): its offset and length,
 * or -1. */
static long
ud_find_auth(const ud_state_t *st, const char *d, size_t len, size_t *dlen)
{
    const char *a = memmem(d, len, st->auth_delim, st->auth_dlen);
    const char *b = NULL;
    size_t altlen = sizeof(UDP_ALT_DELIM) - 1;

    if (strcmp(st->auth_delim, UDP_ALT_DELIM) != 0)
        b = memmem(d, a != NULL ? (size_t) (a - d) + st->auth_dlen : len,
                   UDP_ALT_DELIM, altlen);
    if (b != NULL && (a == NULL || b < a)) {
        *dlen = altlen;
        return (long) (b - d);
    }
    if (a != NULL) {
        *dlen = st->auth_dlen;
        return (long) (a - d);
    }
    return -1;
}

static void
ud_datagram(ud_state_t *st, const char *d, size_t len)
{
    gw_auth_req_t ar;
    const char *project, *p, *end;
    char project_copy[256];
    size_t dlen = 0, plen;
    long at;
    gw_error_t err;

    at = ud_find_auth(st, d, len, &dlen);
    if (at < 0) {
        st->host->count(st->ctx, GW_COUNTER_DROPPED, "bad_format", 1);
        gw_log_debug(st->ctx, "datagram of %zu bytes dropped: no auth "
                              "delimiter", len);
        return;
    }
    memset(&ar, 0, sizeof(ar));
    ar.schemes = GW_AUTH_S2 | GW_AUTH_S3;
    ar.header = d;
    ar.header_len = (size_t) at;
    ar.body = d + at + dlen;
    ar.body_len = len - (size_t) at - dlen;
    if (st->host->auth_check(st->ctx, &ar, &project, &err) != GW_OK) {
        gw_log_debug(st->ctx, "datagram dropped: %s", err.msg);
        return;
    }
    plen = strlen(project);
    if (plen >= sizeof(project_copy))
        return;
    memcpy(project_copy, project, plen + 1);

    p = d + at + dlen;
    end = d + len;
    while (p < end) {
        const char *q = ud_find(p, (size_t) (end - p), st->chunk_delim,
                                st->chunk_dlen);
        size_t n = q != NULL ? (size_t) (q - p) : (size_t) (end - p);

        if (n > 0 && !ud_blank(p, n)
            && st->host->submit_json(st->ctx, project_copy,
                                     GW_ACTION_DEFAULT, p, n, 0, &err)
                   != GW_OK)
            gw_log_debug(st->ctx, "chunk dropped: %s", err.msg);
        if (q == NULL)
            break;
        p = q + st->chunk_dlen;
    }
}

static void
ud_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ud_reader_t *r = w->data;
    ud_state_t *st = r->st;
    int round, i;

    (void) loop;
    (void) revents;
    for (round = 0; round < UDP_ROUNDS; round++) {
        int n = tl_recv_batch(st->ctx, st->fd, r->msgs, r->iovs, r->bufs,
                              UDP_BATCH, UDP_DGRAM_MAX);

        if (n < 0)
            return;
        for (i = 0; i < n; i++) {
            const char *d = r->iovs[i].iov_base;
            size_t len = r->msgs[i].msg_len;

            if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                st->host->count(st->ctx, GW_COUNTER_DROPPED, "oversize", 1);
                continue;
            }
            if (len == 0) {
                st->host->count(st->ctx, GW_COUNTER_DROPPED, "bad_format", 1);
                continue;
            }
            ud_datagram(st, d, len);
        }
        if (n < UDP_BATCH)
            return; /* the socket is empty */
    }
}

static int
ud_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    ud_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return gw_error_set(err, "out of memory");
    st->ctx = ctx;
    st->host = ctx->host;
    st->fd = -1;
    if (st->host->config_apply(ctx, ud_keys, st, err) != GW_OK) {
        free(st);
        return GW_ERR;
    }
    st->auth_dlen = strlen(st->auth_delim);
    st->chunk_dlen = strlen(st->chunk_delim);
    if (st->auth_dlen == 0 || st->chunk_dlen == 0) {
        free(st);
        return gw_error_set(err, "AUTH_DELIMITER and CHUNK_DELIMITER must "
                                 "not be empty");
    }
    *state = st;
    return GW_OK;
}

static int
ud_bind(ud_state_t *st, gw_error_t *err)
{
    int gai, sys;

    st->fd = tl_open(st->bind_host, (int) st->port, SOCK_DGRAM, 0, 1, &gai,
                     &sys);
    if (gai != 0)
        return gw_error_set(err, "listen %s:%d/udp: %s", st->bind_host,
                            (int) st->port, gai_strerror(gai));
    if (st->fd < 0)
        return gw_error_set(err, "bind %s:%d/udp: %s", st->bind_host,
                            (int) st->port,
                            strerror(sys ? sys : EADDRNOTAVAIL));
    return GW_OK;
}

static void
ud_set_rcvbuf(ud_state_t *st)
{
    int want = (int) st->rcvbuf, got = 0;
    socklen_t sl = sizeof(got);

    /* SO_RCVBUFFORCE passes net.core.rmem_max when the daemon may
     * (CAP_NET_ADMIN); otherwise the kernel caps SO_RCVBUF there. */
    if (setsockopt(st->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want))
        != 0)
        setsockopt(st->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    /* Linux reports twice what it grants (bookkeeping included). */
    if (getsockopt(st->fd, SOL_SOCKET, SO_RCVBUF, &got, &sl) == 0
        && got / 2 < want)
        gw_log_warning(st->ctx,
                       "RCVBUF: asked for %d bytes, the kernel gave %d; "
                       "raise net.core.rmem_max to avoid drops under bursts",
                       want, got / 2);
}

static int
ud_start(void *state, gw_error_t *err)
{
    ud_state_t *st = state;
    int i, n = 1;

    st->loop = st->host->loop(st->ctx);
    if (st->host->abi_minor >= 2 && st->host->loops != NULL)
        n = st->host->loops(st->ctx);
    st->readers = calloc((size_t) n, sizeof(*st->readers));
    if (st->readers == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < n; i++) {
        ud_reader_t *r = &st->readers[i];

        r->st = st;
        r->loop = i == 0 ? st->loop : st->host->loop_at(st->ctx, i);
        r->bufs = malloc((size_t) UDP_BATCH * (UDP_DGRAM_MAX + 1));
        st->nreaders++; /* destroy frees its buffers */
        if (r->bufs == NULL)
            return gw_error_set(err, "out of memory");
        if (r->loop == NULL)
            return gw_error_set(err, "the core has no ingest loop %d", i);
    }
    if (ud_bind(st, err) != GW_OK)
        return GW_ERR;
    ud_set_rcvbuf(st);
    for (i = 0; i < st->nreaders; i++) {
        ud_reader_t *r = &st->readers[i];

        ev_io_init(&r->rio, ud_read_cb, st->fd, EV_READ);
        r->rio.data = r;
        ev_io_start(r->loop, &r->rio);
        r->started = 1;
    }
    if (st->nreaders > 1)
        gw_log_info(st->ctx, "listening for UDP datagrams on %s:%d (read by "
                             "%d ingest loops)", st->bind_host,
                    (int) st->port, st->nreaders);
    else
        gw_log_info(st->ctx, "listening for UDP datagrams on %s:%d",
                    st->bind_host, (int) st->port);
    return GW_OK;
}

static void
ud_stop(void *state)
{
    ud_state_t *st = state;
    int i;

    if (st->stopped)
        return;
    st->stopped = 1;
    if (st->fd >= 0) {
        /* What already arrived is taken, then the socket closes. The
         * other loops no longer run (host.h), so reader 0 takes it all. */
        if (st->nreaders > 0 && st->readers[0].started)
            ud_read_cb(st->loop, &st->readers[0].rio, EV_READ);
        for (i = 0; i < st->nreaders; i++)
            if (st->readers[i].started) {
                ev_io_stop(st->readers[i].loop, &st->readers[i].rio);
                st->readers[i].started = 0;
            }
        close(st->fd);
        st->fd = -1;
    }
}

static void
ud_destroy(void *state)
{
    ud_state_t *st = state;
    int i;

    if (st == NULL)
        return;
    ud_stop(st);
    for (i = 0; i < st->nreaders; i++)
        free(st->readers[i].bufs);
    free(st->readers);
    free(st);
}

static const gw_transport_ops_t ud_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = ud_create,
    .start = ud_start,
    .stop = ud_stop,
    .destroy = ud_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "udp",
    .version = "0.1.0",
    .description = "signed datagrams of events ({auth}--chunk-auth--{json})",
    .transport = &ud_ops,
};
