/*
 * plugins/transport/udp/udp.c: the signed datagram transport (SPEC §5).
 *
 * One datagram is
 *     {S2, S3 or S4 header}{AUTH_DELIMITER}{json}({CHUNK_DELIMITER}{json})*
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
 * With INGEST_LOOPS = N (ABI 1.2, host->loops) there are N readers, one
 * on each ingest loop, each with a socket of its own in one SO_REUSEPORT
 * group that gives each datagram to a random one (tl_open_spread), so the
 * work spreads over N cores whatever the senders' addresses and a
 * datagram wakes one loop. Where the kernel refuses the group, the one
 * socket is read by all N.
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
/* Bytes of S3/S4 datagrams that may wait for the shared replay cache's
 * answer; more are dropped (counted as claim_queue_full). */
#define UDP_WAIT_MAX (16u << 20)

typedef struct ud_state_s ud_state_t;

/* One reader of the socket, on one ingest loop, with its own buffers. */
typedef struct ud_reader_s {
    ud_state_t *st;
    struct ev_loop *loop;
    int fd; /* its socket (the group's, or the one all readers share) */
    ev_io rio;
    int started;
    char *bufs; /* UDP_BATCH buffers of UDP_DGRAM_MAX + 1 */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iovs[UDP_BATCH];
} ud_reader_t;

struct ud_state_s {
    tl_framed_t tl; /* first: ctx, host, HOST, PORT, the delimiters, fd */
    struct ev_loop *loop;

    /* The rest of the config (filled by config_apply). */
    int64_t rcvbuf;

    int stopped;
    size_t waiting; /* bytes of datagrams waiting for a claim (atomic) */

    ud_reader_t *readers; /* one per ingest loop */
    int nreaders;
    int nfds; /* sockets: nreaders (a group), or 1 that all read */
};

static const gw_config_key_t ud_keys[] = {
    TL_FRAMED_KEYS(ud_state_t, "--chunk-auth--",
                   "ends the auth header of a datagram (\"--stream-auth--\" "
                   "is always accepted too)",
                   "separates the JSON events of a datagram"),
    GW_CONFIG_KEY_RANGE("RCVBUF", GW_CONFIG_INT, "8388608", ud_state_t,
                        rcvbuf,
                        "receive buffer of each socket (one per ingest "
                        "loop), in bytes (SO_RCVBUF)",
                        4096,
                        1073741824),
    GW_CONFIG_END};

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
    const char *a = memmem(d, len, st->tl.auth_delim, st->tl.auth_dlen);
    const char *b = NULL;
    size_t altlen = sizeof(UDP_ALT_DELIM) - 1;

    if (strcmp(st->tl.auth_delim, UDP_ALT_DELIM) != 0)
        b = memmem(d, a != NULL ? (size_t) (a - d) + st->tl.auth_dlen : len,
                   UDP_ALT_DELIM, altlen);
    if (b != NULL && (a == NULL || b < a)) {
        *dlen = altlen;
        return (long) (b - d);
    }
    if (a != NULL) {
        *dlen = st->tl.auth_dlen;
        return (long) (a - d);
    }
    return -1;
}

/* Submits the chunks of an authenticated datagram's payload. */
static void
ud_chunks(ud_state_t *st, const char *project, const char *p,
          const char *end)
{
    gw_error_t err;

    while (p < end) {
        const char *q = ud_find(p, (size_t) (end - p), st->tl.chunk_delim,
                                st->tl.chunk_dlen);
        size_t n = q != NULL ? (size_t) (q - p) : (size_t) (end - p);

        if (n > 0 && !tl_blank(p, n)
            && st->tl.host->submit_json(st->tl.ctx, project,
                                        GW_ACTION_DEFAULT, p, n, 0, &err)
                   != GW_OK)
            gw_log_debug(st->tl.ctx, "chunk dropped: %s", err.msg);
        if (q == NULL)
            break;
        p = q + st->tl.chunk_dlen;
    }
}

/* A datagram waiting for the shared replay cache to answer the claim of
 * its nonce (ABI 1.3): a copy of its payload. */
typedef struct ud_wait_s {
    ud_state_t *st;
    size_t len;
    char project[256];
    char payload[];
} ud_wait_t;

static void
ud_claimed(void *arg, int ok)
{
    ud_wait_t *w = arg;
    ud_state_t *st = w->st;

    __atomic_sub_fetch(&st->waiting, w->len, __ATOMIC_RELAXED);
    if (!ok)
        gw_log_debug(st->tl.ctx, "datagram dropped: its nonce was already "
                                 "used (a replay)");
    else if (st->stopped)
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "shutting_down",
                           1);
    else
        ud_chunks(st, w->project, w->payload, w->payload + w->len);
    free(w);
}

/* Claims an S3/S4 datagram's nonce, its payload waiting in a bounded
 * queue (UDP_WAIT_MAX bytes in all); over the bound it is dropped. */
static void
ud_claim(ud_state_t *st, const char *project, const char *p, size_t n)
{
    ud_wait_t *w;

    if (__atomic_add_fetch(&st->waiting, n, __ATOMIC_RELAXED) > UDP_WAIT_MAX
        || (w = malloc(sizeof(*w) + n)) == NULL) {
        __atomic_sub_fetch(&st->waiting, n, __ATOMIC_RELAXED);
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "claim_queue_full",
                           1);
        return;
    }
    w->st = st;
    w->len = n;
    snprintf(w->project, sizeof(w->project), "%s", project);
    memcpy(w->payload, p, n);
    if (st->tl.host->auth_claim(st->tl.ctx, ud_claimed, w) != GW_OK) {
        __atomic_sub_fetch(&st->waiting, n, __ATOMIC_RELAXED);
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "out_of_memory",
                           1);
        free(w);
    }
}

static void
ud_datagram(ud_state_t *st, const char *d, size_t len)
{
    gw_auth_req_t ar;
    const char *project, *h;
    char project_copy[256];
    size_t dlen = 0, plen;
    long at;
    gw_error_t err;

    at = ud_find_auth(st, d, len, &dlen);
    if (at < 0) {
        st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED, "bad_format", 1);
        gw_log_debug(st->tl.ctx, "datagram of %zu bytes dropped: no auth "
                                 "delimiter", len);
        return;
    }
    memset(&ar, 0, sizeof(ar));
    ar.schemes = GW_AUTH_S2 | GW_AUTH_S3 | GW_AUTH_S4;
    ar.scope = "udp";
    ar.scope_len = 3;
    ar.header = d;
    ar.header_len = (size_t) at;
    ar.body = d + at + dlen;
    ar.body_len = len - (size_t) at - dlen;
    if (st->tl.host->auth_check(st->tl.ctx, &ar, &project, &err) != GW_OK) {
        gw_log_debug(st->tl.ctx, "datagram dropped: %s", err.msg);
        return;
    }
    plen = strlen(project);
    if (plen >= sizeof(project_copy))
        return;
    /* An S3/S4 header has a nonce to claim: its datagram waits (S2 has
     * none and goes on at once). */
    for (h = d; h < d + at && (*h == ' ' || *h == '\t' || *h == '\r'
                               || *h == '\n'); h++)
        ;
    if (st->tl.host->abi_minor >= 3 && st->tl.host->auth_claim != NULL
        && d + at - h > 10 && memcmp(h, "GottWallS", 9) == 0
        && (h[9] == '3' || h[9] == '4')) {
        ud_claim(st, project, d + at + dlen, ar.body_len);
        return;
    }
    memcpy(project_copy, project, plen + 1);
    ud_chunks(st, project_copy, d + at + dlen, d + len);
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
        int n = tl_recv_batch(st->tl.ctx, r->fd, r->msgs, r->iovs,
                              r->bufs, UDP_BATCH, UDP_DGRAM_MAX);

        if (n < 0)
            return;
        for (i = 0; i < n; i++) {
            const char *d = r->iovs[i].iov_base;
            size_t len = r->msgs[i].msg_len;

            if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED,
                                   "oversize", 1);
                continue;
            }
            if (len == 0) {
                st->tl.host->count(st->tl.ctx, GW_COUNTER_DROPPED,
                                   "bad_format", 1);
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
    return tl_framed_create(ctx, ud_keys, sizeof(ud_state_t), state, err);
}

static void
ud_set_rcvbuf(ud_state_t *st, int fd)
{
    int want = (int) st->rcvbuf, got = 0;
    socklen_t sl = sizeof(got);

    /* SO_RCVBUFFORCE passes net.core.rmem_max when the daemon may
     * (CAP_NET_ADMIN); otherwise the kernel caps SO_RCVBUF there. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want))
        != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    /* Linux reports twice what it grants (bookkeeping included). */
    if (fd == st->tl.fd
        && getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &sl) == 0
        && got / 2 < want)
        gw_log_warning(st->tl.ctx,
                       "RCVBUF: asked for %d bytes, the kernel gave %d; "
                       "raise net.core.rmem_max to avoid drops under bursts",
                       want, got / 2);
}

static int
ud_start(void *state, gw_error_t *err)
{
    ud_state_t *st = state;
    int i, n = 1, got, fds[64];

    st->loop = st->tl.host->loop(st->tl.ctx);
    if (st->tl.host->abi_minor >= 2 && st->tl.host->loops != NULL)
        n = st->tl.host->loops(st->tl.ctx);
    st->readers = calloc((size_t) n, sizeof(*st->readers));
    if (st->readers == NULL)
        return gw_error_set(err, "out of memory");
    for (i = 0; i < n; i++) {
        ud_reader_t *r = &st->readers[i];

        r->st = st;
        r->loop = i == 0 ? st->loop : st->tl.host->loop_at(st->tl.ctx, i);
        r->bufs = malloc((size_t) UDP_BATCH * (UDP_DGRAM_MAX + 1));
        st->nreaders++; /* destroy frees its buffers */
        if (r->bufs == NULL)
            return gw_error_set(err, "out of memory");
        if (r->loop == NULL)
            return gw_error_set(err, "the core has no ingest loop %d", i);
    }
    if (tl_framed_listen_spread(&st->tl, n < 64 ? n : 64, fds, &got, err)
        != GW_OK)
        return GW_ERR;
    st->nfds = got;
    for (i = 0; i < st->nreaders; i++) {
        ud_reader_t *r = &st->readers[i];

        r->fd = i < got ? fds[i] : fds[0];
        if (i < got)
            ud_set_rcvbuf(st, r->fd);
        ev_io_init(&r->rio, ud_read_cb, r->fd, EV_READ);
        r->rio.data = r;
        ev_io_start(r->loop, &r->rio);
        r->started = 1;
    }
    tl_framed_listening(&st->tl, "UDP datagrams", st->nreaders);
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
    if (st->tl.fd >= 0) {
        /* What already arrived is taken, then the sockets close. The
         * other loops no longer run (host.h), so this thread takes it
         * all. */
        for (i = 0; i < st->nfds; i++)
            if (st->readers[i].started)
                ud_read_cb(st->loop, &st->readers[i].rio, EV_READ);
        for (i = 0; i < st->nreaders; i++)
            if (st->readers[i].started) {
                ev_io_stop(st->readers[i].loop, &st->readers[i].rio);
                st->readers[i].started = 0;
            }
        for (i = 1; i < st->nfds; i++)
            close(st->readers[i].fd);
        close(st->tl.fd);
        st->tl.fd = -1;
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
