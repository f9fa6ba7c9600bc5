/*
 * tools/gwload.c: GottWall's load generator.
 *
 * Sends metric events to a GottWall daemon (or to a peer that speaks the same
 * wire format: a statsd server, an HTTP server) as fast as it can or at a
 * fixed rate, over http (keep-alive, single events or batches, S1/S3/Basic),
 * tcpip (S2 auth, then a --chunk-- stream), udp (S2 header and N events per
 * datagram, sent with sendmmsg) or statsd (UDP or TCP lines). Every payload is
 * built before the clock starts, so the generator spends its time in send
 * calls. With --read-back it then reads the totals of every metric name it
 * used from the read API and reports how many events were stored and lost.
 *
 * It prints one summary line that scripts can parse, for example
 *   proto=udp sent=2000000 seconds=1.02 rate=1960784/s stored=2000000 loss=0.000%
 *
 * It links no GottWall code: the signatures (SPEC section 4) are computed here
 * with libcrypto, so a mistake in the daemon's auth code cannot hide behind
 * the same mistake in the tool.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define GL_MAX_THREADS 64
#define GL_MAX_CONNS 4096
#define GL_RING_BYTES_MAX (512u * 1024 * 1024)
#define GL_MAX_UNITS (4u * 1024 * 1024)
#define GL_UDP_BATCH 64
#define GL_MAX_DGRAM 65507

typedef enum gl_proto_e { GL_HTTP, GL_TCPIP, GL_UDP, GL_STATSD } gl_proto_t;
typedef enum gl_auth_e { GL_AUTH_S1, GL_AUTH_S3, GL_AUTH_BASIC, GL_AUTH_NONE } gl_auth_t;

/* The command line. */
typedef struct gl_opts_s {
    gl_proto_t proto;
    const char *proto_name;
    const char *host;
    int port;
    const char *project;
    const char *public_key;
    const char *private_key;
    gl_auth_t auth;
    int base;
    const char *prefix;
    const char *action;
    double rate;
    double duration;
    uint64_t events;
    int connections;
    int per_packet;
    int metrics;
    int filter_values;
    int threads;
    int pipeline;
    int statsd_tcp;
    int with_ts;
    int allow_remote;
    int sndbuf;
    const char *read_back;
    int server_pids[8];
    int nserver_pids;
    double read_back_timeout;
    double settle;
    char run_id[64];
    int verbose;
} gl_opts_t;

/* One prebuilt payload: a datagram, a TCP write or an HTTP request. */
typedef struct gl_unit_s {
    char *head;      /* HTTP: request line and headers (NULL when built per send) */
    size_t head_len;
    char *body;      /* the payload (HTTP: the request body) */
    size_t body_len;
    char sha_hex[65]; /* HTTP with S3: hex(SHA256(body)) */
} gl_unit_t;

/* Per-thread counters, summed at the end. */
typedef struct gl_stats_s {
    uint64_t events;     /* events handed to the kernel */
    uint64_t units;      /* datagrams, requests or writes */
    uint64_t send_errors;
    uint64_t responses;  /* HTTP responses read */
    uint64_t ok;         /* HTTP 2xx responses */
    uint64_t bad_status; /* HTTP other statuses */
    uint64_t unanswered; /* HTTP requests without a response at the end */
    uint64_t reconnects;
    int last_bad_status;
} gl_stats_t;

typedef struct gl_thread_s {
    int id;
    pthread_t tid;
    double rate;      /* events/s for this thread, 0 = unlimited */
    uint64_t quota;   /* events to send, 0 = until the deadline */
    int nconns;
    size_t first_unit;
    gl_stats_t st;
    char fatal[256];
} gl_thread_t;

static gl_opts_t opt;
static gl_unit_t *ring;
static size_t ring_units;
static double t_start, t_end_deadline;
static struct sockaddr_in target;
static char s_header[256];   /* S1/S2 header value */
static char basic_value[512];

/* ---- small helpers ---- */

static double
now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("gwload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void
sleep_until(double t)
{
    double d = t - now_mono();
    struct timespec ts;

    if (d <= 0)
        return;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

/* CPU seconds (user + system, all threads) of the --server-pid processes. */
static double
server_cpu(void)
{
    double total = 0;
    long hz = sysconf(_SC_CLK_TCK);
    int i;

    for (i = 0; i < opt.nserver_pids; i++) {
        char path[64], buf[1024];
        unsigned long ut = 0, st = 0;
        const char *p;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", opt.server_pids[i]);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* the name may hold spaces */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            total += (double)(ut + st) / (double)hz;
    }
    return total;
}

static void
hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- signatures (SPEC section 4) ---- */

/* The legacy sign: hex(HMAC-MD5(private, public + decimal(solt))). */
static void
sign_legacy(long ts, int base, char out[33])
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    long solt = (ts / base) * base;

    snprintf(msg, sizeof(msg), "%s%ld", opt.public_key, solt);
    HMAC(EVP_md5(), opt.private_key, (int)strlen(opt.private_key),
         (const unsigned char *)msg, strlen(msg), mac, &maclen);
    hex(mac, maclen, out);
}

/* The S3 header value for one request body. */
static void
sign_s3(long ts, const char *nonce, const char *sha_hex, char *out, size_t outsz)
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char sig[2 * EVP_MAX_MD_SIZE + 1];

    snprintf(msg, sizeof(msg), "GottWallS3\n%s\n%ld\n%s\n%s", opt.project, ts, nonce, sha_hex);
    HMAC(EVP_sha256(), opt.private_key, (int)strlen(opt.private_key),
         (const unsigned char *)msg, strlen(msg), mac, &maclen);
    hex(mac, maclen, sig);
    snprintf(out, outsz, "GottWallS3 %ld %s %s %s", ts, nonce, sig, opt.project);
}

static void
make_basic(void)
{
    char plain[300];
    int n = snprintf(plain, sizeof(plain), "%s:%s", opt.public_key, opt.private_key);

    if (n < 0 || (size_t)n >= sizeof(plain))
        die("keys too long");
    EVP_EncodeBlock((unsigned char *)basic_value, (const unsigned char *)plain, n);
}

/* ---- payloads ---- */

/* Appends event number i (metric i % K, filter value (i / K) % V). */
static size_t
fmt_event(char *p, size_t room, uint64_t i, long ts)
{
    unsigned m = (unsigned)(i % (uint64_t)opt.metrics);
    unsigned v = opt.filter_values ? (unsigned)((i / (uint64_t)opt.metrics) % (uint64_t)opt.filter_values) : 0;
    int n;

    if (opt.proto == GL_STATSD) {
        if (opt.filter_values)
            n = snprintf(p, room, "%s.m%u:1|c|#status:v%u", opt.run_id, m, v);
        else
            n = snprintf(p, room, "%s.m%u:1|c", opt.run_id, m);
    } else {
        char tsbuf[40] = "";
        char fbuf[64] = "";

        if (opt.with_ts)
            snprintf(tsbuf, sizeof(tsbuf), ",\"ts\":%ld", ts);
        if (opt.filter_values)
            snprintf(fbuf, sizeof(fbuf), ",\"f\":{\"status\":\"v%u\"}", v);
        n = snprintf(p, room, "{\"a\":\"%s\",\"n\":\"%s.m%u\"%s,\"v\":1%s}", opt.action,
                     opt.run_id, m, tsbuf, fbuf);
    }
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
    int k;

    switch (opt.proto) {
    case GL_UDP:
        len = (size_t)snprintf(buf, room, "%s--chunk-auth--", s_header);
        for (k = 0; k < opt.per_packet; k++) {
            if (k)
                len += (size_t)snprintf(buf + len, room - len, "--chunk--");
            len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
        }
        break;
    case GL_TCPIP:
        for (k = 0; k < opt.per_packet; k++) {
            len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
            len += (size_t)snprintf(buf + len, room - len, "--chunk--");
        }
        break;
    case GL_STATSD:
        for (k = 0; k < opt.per_packet; k++) {
            if (k && !opt.statsd_tcp)
                buf[len++] = '\n';
            len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
            if (opt.statsd_tcp)
                buf[len++] = '\n';
        }
        break;
    case GL_HTTP:
        if (opt.per_packet > 1)
            buf[len++] = '[';
        for (k = 0; k < opt.per_packet; k++) {
            if (k)
                buf[len++] = ',';
            len += fmt_event(buf + len, room - len, first + (uint64_t)k, ts);
        }
        if (opt.per_packet > 1)
            buf[len++] = ']';
        break;
    }
    if (len >= room)
        die("a payload does not fit: lower --per-packet");
    return len;
}

/* Prebuilds the ring: enough units to use every (metric, filter value) pair. */
static void
build_ring(void)
{
    uint64_t combos = (uint64_t)opt.metrics * (uint64_t)(opt.filter_values ? opt.filter_values : 1);
    uint64_t want = (combos + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet;
    size_t room = (size_t)opt.per_packet * 400 + 1024;
    char *scratch = xmalloc(room);
    size_t total = 0, u;
    long ts = (long)time(NULL);

    if (want < 64)
        want = 64;
    if (want > GL_MAX_UNITS)
        want = GL_MAX_UNITS;
    if (opt.events) {
        uint64_t need = (opt.events + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet;
        if (need < want && need >= (combos + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet)
            want = need < 64 ? 64 : need;
    }
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
        if (opt.proto == GL_HTTP) {
            unsigned char md[SHA256_DIGEST_LENGTH];
            char head[1024];
            int hl;

            SHA256((const unsigned char *)un->body, n, md);
            hex(md, SHA256_DIGEST_LENGTH, un->sha_hex);
            if (opt.auth != GL_AUTH_S3) {
                char authline[600] = "";

                if (opt.auth == GL_AUTH_S1)
                    snprintf(authline, sizeof(authline), "X-GottWall-Auth: %s\r\n", s_header);
                else if (opt.auth == GL_AUTH_BASIC)
                    snprintf(authline, sizeof(authline), "Authorization: Basic %s\r\n", basic_value);
                hl = snprintf(head, sizeof(head),
                              "POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                              opt.prefix, opt.project, opt.action, opt.host, opt.port, n, authline);
                un->head = xmalloc((size_t)hl + 1);
                memcpy(un->head, head, (size_t)hl + 1);
                un->head_len = (size_t)hl;
                total += (size_t)hl;
            }
        }
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

/* ---- pacing ---- */

/* How many more units may go now; sleeps when ahead of the schedule. */
static uint64_t
pace(gl_thread_t *t, uint64_t max_units)
{
    uint64_t left_units = max_units;

    if (t->quota) {
        uint64_t left = t->quota > t->st.events ? t->quota - t->st.events : 0;
        uint64_t lu = (left + (uint64_t)opt.per_packet - 1) / (uint64_t)opt.per_packet;
        if (lu < left_units)
            left_units = lu;
    }
    if (t->rate > 0 && left_units > 0) {
        double due = t_start + (double)t->st.events / t->rate;
        double now = now_mono();
        double burst;
        uint64_t b;

        if (due > now + 0.0002)
            sleep_until(due);
        /* allow at most ~1 ms of events at once, at least one unit */
        burst = t->rate / 1000.0 / (double)opt.per_packet;
        b = burst < 1 ? 1 : (uint64_t)burst;
        if (b < left_units)
            left_units = b;
    }
    return left_units;
}

static int
time_up(gl_thread_t *t)
{
    if (t->quota && t->st.events >= t->quota)
        return 1;
    if (opt.duration > 0 && now_mono() >= t_end_deadline)
        return 1;
    return 0;
}

/* ---- sockets ---- */

static int
open_socket(int type)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (opt.sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opt.sndbuf, sizeof(opt.sndbuf));
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- udp and statsd over udp ---- */

static void
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

/* ---- tcpip and statsd over tcp ---- */

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

static void
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

/* ---- http ---- */

typedef struct gl_conn_s {
    int fd;
    int inflight; /* requests written (wholly or partly) and not yet answered */
    int wpending; /* the last request is partly written */
    struct iovec iov[2];
    int iovcnt;
    char head[1024];
    char *rbuf;
    size_t rlen;
} gl_conn_t;

#define GL_RBUF 16384

static int
http_connect(gl_conn_t *c, int ep)
{
    struct epoll_event ev;

    c->fd = open_socket(SOCK_STREAM);
    if (c->fd < 0)
        return -1;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->inflight = 0;
    c->wpending = 0;
    c->rlen = 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Drops a broken connection and opens a new one. */
static int
http_reconnect(gl_thread_t *t, gl_conn_t *c, int ep)
{
    t->st.unanswered += (uint64_t)c->inflight;
    close(c->fd);
    c->fd = -1;
    t->st.reconnects++;
    if (t->st.reconnects > 1000) {
        snprintf(t->fatal, sizeof(t->fatal), "http: over 1000 reconnects: the server closes connections");
        return -1;
    }
    if (http_connect(c, ep) < 0) {
        snprintf(t->fatal, sizeof(t->fatal), "http reconnect: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes what is left of the current request: 0 done or blocked, -1 error. */
static int
http_flush(gl_conn_t *c)
{
    while (c->wpending) {
        ssize_t w = writev(c->fd, c->iov, c->iovcnt);
        size_t left;
        int i;

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        left = (size_t)w;
        for (i = 0; i < c->iovcnt; i++) {
            size_t k = left < c->iov[i].iov_len ? left : c->iov[i].iov_len;
            c->iov[i].iov_base = (char *)c->iov[i].iov_base + k;
            c->iov[i].iov_len -= k;
            left -= k;
        }
        if (c->iov[c->iovcnt - 1].iov_len == 0)
            c->wpending = 0;
    }
    return 0;
}

static void
http_start(gl_thread_t *t, gl_conn_t *c, size_t unit, uint64_t seq)
{
    gl_unit_t *u = &ring[unit];

    if (u->head) {
        c->iov[0].iov_base = u->head;
        c->iov[0].iov_len = u->head_len;
    } else {
        char nonce[96], auth[300];
        int hl;

        snprintf(nonce, sizeof(nonce), "%s-%02d-%010" PRIu64, opt.run_id, t->id, seq);
        sign_s3((long)time(NULL), nonce, u->sha_hex, auth, sizeof(auth));
        hl = snprintf(c->head, sizeof(c->head),
                      "POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "X-GottWall-Auth: %s\r\n\r\n",
                      opt.prefix, opt.project, opt.action, opt.host, opt.port, u->body_len, auth);
        c->iov[0].iov_base = c->head;
        c->iov[0].iov_len = (size_t)hl;
    }
    c->iov[1].iov_base = u->body;
    c->iov[1].iov_len = u->body_len;
    c->iovcnt = 2;
    c->wpending = 1;
    c->inflight++;
    t->st.units++;
    t->st.events += (uint64_t)opt.per_packet;
}

/* Finds a header's value in [h, end); returns its length or -1. */
static long
header_value(const char *h, const char *end, const char *name, const char **val)
{
    size_t nl = strlen(name);
    const char *p = h;

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *val = v;
            return (long)(eol - v);
        }
        p = eol + 2;
    }
    return -1;
}

/* Reads and counts responses: 0 ok, -1 the connection is gone. */
static int
http_read(gl_thread_t *t, gl_conn_t *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->rbuf + c->rlen, GL_RBUF - c->rlen);
        int closing = 0, drained;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        if (r == 0)
            return -1;
        c->rlen += (size_t)r;
        /* a short read drained the socket: the next byte raises a new edge */
        drained = (size_t)r < GL_RBUF - (c->rlen - (size_t)r);
        for (;;) {
            char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            const char *v;
            long vl;
            size_t hlen, blen = 0;
            int status;

            if (end == NULL) {
                if (c->rlen == GL_RBUF)
                    return -1; /* headers too large */
                break;
            }
            hlen = (size_t)(end - c->rbuf) + 4;
            if (c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7) != 0)
                return -1;
            status = atoi(c->rbuf + 9);
            vl = header_value(c->rbuf, end, "content-length", &v);
            if (vl > 0)
                blen = (size_t)strtoul(v, NULL, 10);
            else if (header_value(c->rbuf, end, "transfer-encoding", &v) > 0) {
                snprintf(t->fatal, sizeof(t->fatal), "http: chunked responses are not supported");
                return -1;
            }
            vl = header_value(c->rbuf, end, "connection", &v);
            if (vl == 5 && strncasecmp(v, "close", 5) == 0)
                closing = 1;
            if (hlen + blen > GL_RBUF)
                return -1;
            if (c->rlen < hlen + blen)
                break;
            memmove(c->rbuf, c->rbuf + hlen + blen, c->rlen - hlen - blen);
            c->rlen -= hlen + blen;
            c->inflight--;
            t->st.responses++;
            if (status >= 200 && status < 300)
                t->st.ok++;
            else {
                t->st.bad_status++;
                t->st.last_bad_status = status;
            }
            if (closing)
                return -1;
        }
        if (drained)
            return 0;
    }
}

static void
run_http(gl_thread_t *t)
{
    gl_conn_t *conns = xmalloc(sizeof(*conns) * (size_t)t->nconns);
    struct epoll_event evs[64];
    size_t next = t->first_unit;
    uint64_t seq = 0;
    double drain_deadline = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int i, rr = 0;

    for (i = 0; i < t->nconns; i++) {
        conns[i].rbuf = xmalloc(GL_RBUF);
        if (http_connect(&conns[i], ep) < 0) {
            snprintf(t->fatal, sizeof(t->fatal), "connect http %s:%d: %s", opt.host, opt.port,
                     strerror(errno));
            t->nconns = i;
            goto out;
        }
    }
    for (;;) {
        int sending = !time_up(t), room = 0, inflight = 0, n, k;

        if (!sending) {
            for (i = 0; i < t->nconns; i++)
                inflight += conns[i].inflight;
            if (inflight == 0)
                break;
            if (drain_deadline == 0)
                drain_deadline = now_mono() + 5.0;
            else if (now_mono() > drain_deadline)
                break;
        }
        if (sending) {
            for (k = 0; k < t->nconns && !time_up(t); k++) {
                gl_conn_t *c = &conns[(rr + k) % t->nconns];

                if (c->wpending || c->inflight >= opt.pipeline)
                    continue;
                if (pace(t, 1) == 0)
                    break;
                http_start(t, c, next, seq++);
                next = (next + 1) % ring_units;
                if (http_flush(c) < 0 && http_reconnect(t, c, ep) < 0)
                    goto out;
                if (!c->wpending && c->inflight < opt.pipeline)
                    room = 1;
            }
            rr = (rr + 1) % t->nconns;
        }
        n = epoll_wait(ep, evs, 64, room ? 0 : 10);
        for (k = 0; k < n; k++) {
            gl_conn_t *c = evs[k].data.ptr;

            if ((evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && http_read(t, c) < 0) {
                if (t->fatal[0] || http_reconnect(t, c, ep) < 0)
                    goto out;
                continue;
            }
            if ((evs[k].events & EPOLLOUT) && http_flush(c) < 0 && http_reconnect(t, c, ep) < 0)
                goto out;
            /* refill this connection at once, so the server always has
             * requests waiting rather than getting them in bursts */
            while (!c->wpending && c->inflight < opt.pipeline && !time_up(t) && pace(t, 1) > 0) {
                http_start(t, c, next, seq++);
                next = (next + 1) % ring_units;
                if (http_flush(c) < 0) {
                    if (http_reconnect(t, c, ep) < 0)
                        goto out;
                    break;
                }
            }
        }
    }
out:
    for (i = 0; i < t->nconns; i++) {
        t->st.unanswered += (uint64_t)conns[i].inflight;
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].rbuf);
    }
    free(conns);
    close(ep);
}

/* ---- threads ---- */

static void *
thread_main(void *arg)
{
    gl_thread_t *t = arg;

    switch (opt.proto) {
    case GL_UDP:
        run_udp(t);
        break;
    case GL_STATSD:
        if (opt.statsd_tcp)
            run_tcp(t);
        else
            run_udp(t);
        break;
    case GL_TCPIP:
        run_tcp(t);
        break;
    case GL_HTTP:
        run_http(t);
        break;
    }
    return NULL;
}

/* ---- read-back through the read API ---- */

typedef struct rb_s {
    int fd;
    char host[256];
    int port;
    char prefix[256];
    struct sockaddr_in addr;
    char *buf;
    size_t len, cap;
} rb_t;

static void
rb_parse_url(rb_t *rb, const char *url)
{
    const char *p = url, *colon, *slash;
    size_t hl;

    if (strncmp(p, "http://", 7) != 0)
        die("--read-back wants http://HOST:PORT[/PREFIX], not '%s'", url);
    p += 7;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    hl = (size_t)((colon ? colon : slash) - p);
    if (hl == 0 || hl >= sizeof(rb->host))
        die("--read-back: bad host in '%s'", url);
    memcpy(rb->host, p, hl);
    rb->host[hl] = '\0';
    rb->port = colon ? atoi(colon + 1) : 80;
    snprintf(rb->prefix, sizeof(rb->prefix), "%s", slash);
    hl = strlen(rb->prefix);
    while (hl > 0 && rb->prefix[hl - 1] == '/')
        rb->prefix[--hl] = '\0';
    memset(&rb->addr, 0, sizeof(rb->addr));
    rb->addr.sin_family = AF_INET;
    rb->addr.sin_port = htons((uint16_t)rb->port);
    if (inet_pton(AF_INET, rb->host, &rb->addr.sin_addr) != 1)
        die("--read-back: '%s' is not an IPv4 address", rb->host);
    if (!opt.allow_remote && (ntohl(rb->addr.sin_addr.s_addr) >> 24) != 127)
        die("--read-back: %s is not a loopback address (--allow-remote to permit)", rb->host);
    rb->fd = -1;
    rb->cap = 65536;
    rb->buf = xmalloc(rb->cap);
}

/* Reads more bytes into rb->buf: >0 read, 0 EOF, -1 error. */
static ssize_t
rb_fill(rb_t *rb)
{
    ssize_t r;

    if (rb->len + 4096 > rb->cap) {
        rb->cap *= 2;
        rb->buf = realloc(rb->buf, rb->cap);
        if (rb->buf == NULL)
            die("out of memory");
    }
    do
        r = read(rb->fd, rb->buf + rb->len, rb->cap - rb->len - 1);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        rb->len += (size_t)r;
    return r;
}

/* One GET; the body is left NUL-terminated at *body. Returns status or -1. */
static int
rb_get_once(rb_t *rb, const char *path, char **body)
{
    char req[2048];
    char *end;
    const char *v;
    size_t hlen;
    long vl;
    int status, closing = 0;

    if (rb->fd < 0) {
        struct timeval tv = {10, 0};

        rb->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(rb->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(rb->fd, (struct sockaddr *)&rb->addr, sizeof(rb->addr)) < 0) {
            close(rb->fd);
            rb->fd = -1;
            return -1;
        }
    }
    snprintf(req, sizeof(req),
             "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Basic %s\r\n\r\n", rb->prefix,
             path, rb->host, rb->port, basic_value);
    rb->len = 0;
    if (write_all(rb->fd, req, strlen(req)) < 0)
        goto fail;
    while ((end = memmem(rb->buf, rb->len, "\r\n\r\n", 4)) == NULL)
        if (rb_fill(rb) <= 0)
            goto fail;
    hlen = (size_t)(end - rb->buf) + 4;
    if (strncmp(rb->buf, "HTTP/1.", 7) != 0)
        goto fail;
    status = atoi(rb->buf + 9);
    vl = header_value(rb->buf, end, "connection", &v);
    if (vl == 5 && strncasecmp(v, "close", 5) == 0)
        closing = 1;
    if ((vl = header_value(rb->buf, end, "content-length", &v)) > 0) {
        size_t blen = (size_t)strtoul(v, NULL, 10);
        while (rb->len < hlen + blen)
            if (rb_fill(rb) <= 0)
                goto fail;
        rb->buf[hlen + blen] = '\0';
        *body = rb->buf + hlen;
    } else if ((vl = header_value(rb->buf, end, "transfer-encoding", &v)) > 0) {
        /* chunked: decode in place */
        size_t in = hlen, out = hlen;
        for (;;) {
            char *eol;
            size_t csz;

            while ((eol = memmem(rb->buf + in, rb->len - in, "\r\n", 2)) == NULL)
                if (rb_fill(rb) <= 0)
                    goto fail;
            csz = (size_t)strtoul(rb->buf + in, NULL, 16);
            in = (size_t)(eol - rb->buf) + 2;
            while (rb->len < in + csz + 2)
                if (rb_fill(rb) <= 0)
                    goto fail;
            if (csz == 0)
                break;
            memmove(rb->buf + out, rb->buf + in, csz);
            out += csz;
            in += csz + 2;
        }
        rb->buf[out] = '\0';
        *body = rb->buf + hlen;
    } else {
        ssize_t r;
        while ((r = rb_fill(rb)) > 0)
            ;
        if (r < 0)
            goto fail;
        rb->buf[rb->len] = '\0';
        *body = rb->buf + hlen;
        closing = 1;
    }
    if (closing) {
        close(rb->fd);
        rb->fd = -1;
    }
    return status;
fail:
    close(rb->fd);
    rb->fd = -1;
    return -1;
}

static int
rb_get(rb_t *rb, const char *path, char **body)
{
    int st = rb_get_once(rb, path, body);

    if (st < 0) /* the server may have closed an idle keep-alive connection */
        st = rb_get_once(rb, path, body);
    return st;
}

/* Sums the values of "range": [[ts, value], ...] in a stats answer. */
static int
parse_range_sum(const char *body, double *sum)
{
    const char *p = strstr(body, "\"range\"");
    char *e;

    *sum = 0;
    if (p == NULL)
        return -1;
    p += 7;
    while (*p == ' ' || *p == ':')
        p++;
    if (*p++ != '[')
        return -1;
    for (;;) {
        double v;

        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p == ']')
            return 0;
        if (*p++ != '[')
            return -1;
        strtod(p, &e);
        if (e == p)
            return -1;
        p = e;
        while (*p == ' ' || *p == ',')
            p++;
        v = strtod(p, &e);
        if (e == p) {
            if (strncmp(p, "null", 4) != 0)
                return -1;
            e = (char *)p + 4;
            v = 0;
        }
        *sum += v;
        p = e;
        while (*p == ' ')
            p++;
        if (*p++ != ']')
            return -1;
    }
}

/* Sums the all-time totals of the metrics marked in used[]. */
static double
read_totals(rb_t *rb, const unsigned char *used, uint64_t *errors, char *errmsg, size_t errsz)
{
    double total = 0;
    char path[512];
    int m;

    *errors = 0;
    for (m = 0; m < opt.metrics; m++) {
        char *body = NULL;
        double v;
        int st;

        if (!used[m])
            continue;
        snprintf(path, sizeof(path), "/api/v1/%s/stats?name=%s.m%d&period=all", opt.project,
                 opt.run_id, m);
        st = rb_get(rb, path, &body);
        if (st != 200 || parse_range_sum(body, &v) < 0) {
            if (*errors == 0) {
                if (st < 0)
                    snprintf(errmsg, errsz, "GET %.100s%.300s: no answer", rb->prefix, path);
                else
                    snprintf(errmsg, errsz, "GET %.100s%.300s: %d %.80s", rb->prefix, path, st,
                             body ? body : "");
            }
            (*errors)++;
            continue;
        }
        total += v;
    }
    return total;
}

/* ---- command line ---- */

static void
usage(FILE *f)
{
    fprintf(f,
"Usage: gwload --proto PROTO [options]\n"
"Sends metric events to GottWall (or a peer speaking the same wire format) and\n"
"prints one summary line, e.g.\n"
"  proto=udp sent=2000000 seconds=1.02 rate=1960784/s stored=2000000 loss=0.000%%\n"
"\n"
"Protocols (--proto):\n"
"  http     POST {prefix}/api/v1/{project}/{action}, HTTP/1.1 keep-alive; one\n"
"           event per request, or a JSON array of --per-packet events\n"
"  tcpip    S2 auth + --stream-auth--, then {json}--chunk-- on each connection\n"
"  udp      S2 header + --chunk-auth-- + --per-packet events joined by --chunk--\n"
"  statsd   name:1|c lines, --per-packet lines per datagram (--tcp: a stream)\n"
"\n"
"Target:\n"
"  --host ADDR            IPv4 address (default 127.0.0.1; loopback only unless\n"
"                         --allow-remote)\n"
"  --port N               required\n"
"  --project NAME         default test_project\n"
"  --public-key KEY       default my_public_key\n"
"  --private-key KEY      default secret_key\n"
"  --auth s1|s3|basic|none  HTTP auth (default s1); tcpip and udp always sign S2\n"
"  --base N               signature base (default 1000)\n"
"  --prefix PATH          HTTP path prefix (default none)\n"
"  --action NAME          incr (default), decr, ...\n"
"\n"
"Load:\n"
"  --rate N               events per second over all threads (0 = as fast as\n"
"                         possible, the default)\n"
"  --duration SECONDS     how long to send (default 5 unless --events)\n"
"  --events N             how many events to send (stops at --duration too)\n"
"  --connections N        http/tcp connections over all threads (default 1 per\n"
"                         thread)\n"
"  --pipeline N           http requests in flight per connection (default 1)\n"
"  --per-packet N         events per request, datagram or write (default 1)\n"
"  --metrics K            distinct metric names (default 1)\n"
"  --filter-values V      one filter 'status' with V values (default 0 = none)\n"
"  --threads N            sending threads (default 1)\n"
"  --tcp                  statsd over TCP instead of UDP\n"
"  --no-ts                leave \"ts\" out of events (the server's clock is used)\n"
"  --sndbuf BYTES         SO_SNDBUF for the sending sockets\n"
"  --run-id ID            prefix of the metric names, [A-Za-z0-9_-] (default\n"
"                         unique per run); names are ID.m0 .. ID.m{K-1}\n"
"\n"
"Results:\n"
"  --read-back URL        after sending, poll GET URL/api/v1/{project}/stats?\n"
"                         name=...&period=all for every name used until the sum\n"
"                         reaches the events sent or stops growing; report stored\n"
"                         and loss (e.g. http://127.0.0.1:8889)\n"
"  --read-back-timeout S  give up waiting after S seconds (default 30)\n"
"  --settle S             a sum unchanged for S seconds is final (default 3)\n"
"  --server-pid PID[,PID] report the CPU seconds these processes used while\n"
"                         sending (and 0.1 s after): server_cpu, us_per_event\n"
"  --print-payload        print the first payload and exit\n"
"  -v, --verbose          progress on stderr\n"
"  -h, --help\n"
"\n"
"Fields of the summary line: proto, sent (events handed to the kernel),\n"
"seconds, rate, packets (datagrams/requests/writes); http: acked (events in 2xx\n"
"answers), http_errors, unanswered, loss (from acked when there is no\n"
"read-back); server_cpu with --server-pid; with --read-back: stored, loss;\n"
"run_id.\n");
}

static int
valid_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 40)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static long
num_arg(const char *name, const char *v, long lo, long hi)
{
    char *e;
    long n;

    errno = 0;
    n = strtol(v, &e, 10);
    if (errno || *e || e == v || n < lo || n > hi)
        die("%s wants an integer from %ld to %ld, not '%s'", name, lo, hi, v);
    return n;
}

static double
dbl_arg(const char *name, const char *v, double lo)
{
    char *e;
    double d = strtod(v, &e);

    if (*e || e == v || !(d >= lo) || !isfinite(d))
        die("%s wants a number >= %g, not '%s'", name, lo, v);
    return d;
}

static void
parse_args(int argc, char **argv, int *print_payload)
{
    enum {
        O_PROTO = 256, O_HOST, O_PORT, O_PROJECT, O_PUB, O_PRIV, O_AUTH, O_BASE, O_PREFIX,
        O_ACTION, O_RATE, O_DURATION, O_EVENTS, O_CONNS, O_PIPELINE, O_PER, O_METRICS, O_FV,
        O_THREADS, O_TCP, O_NOTS, O_SNDBUF, O_RUNID, O_RB, O_RBT, O_SETTLE, O_PRINT, O_REMOTE,
        O_SPID
    };
    static const struct option lo[] = {
        {"proto", 1, 0, O_PROTO}, {"host", 1, 0, O_HOST}, {"port", 1, 0, O_PORT},
        {"project", 1, 0, O_PROJECT}, {"public-key", 1, 0, O_PUB},
        {"private-key", 1, 0, O_PRIV}, {"auth", 1, 0, O_AUTH}, {"base", 1, 0, O_BASE},
        {"prefix", 1, 0, O_PREFIX}, {"action", 1, 0, O_ACTION}, {"rate", 1, 0, O_RATE},
        {"duration", 1, 0, O_DURATION}, {"events", 1, 0, O_EVENTS},
        {"connections", 1, 0, O_CONNS}, {"pipeline", 1, 0, O_PIPELINE},
        {"per-packet", 1, 0, O_PER}, {"metrics", 1, 0, O_METRICS},
        {"filter-values", 1, 0, O_FV}, {"threads", 1, 0, O_THREADS}, {"tcp", 0, 0, O_TCP},
        {"no-ts", 0, 0, O_NOTS}, {"sndbuf", 1, 0, O_SNDBUF}, {"run-id", 1, 0, O_RUNID},
        {"read-back", 1, 0, O_RB}, {"read-back-timeout", 1, 0, O_RBT},
        {"settle", 1, 0, O_SETTLE}, {"print-payload", 0, 0, O_PRINT},
        {"allow-remote", 0, 0, O_REMOTE}, {"server-pid", 1, 0, O_SPID}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    int duration_given = 0;

    opt.host = "127.0.0.1";
    opt.project = "test_project";
    opt.public_key = "my_public_key";
    opt.private_key = "secret_key";
    opt.auth = GL_AUTH_S1;
    opt.base = 1000;
    opt.prefix = "";
    opt.action = "incr";
    opt.per_packet = 1;
    opt.metrics = 1;
    opt.threads = 1;
    opt.pipeline = 1;
    opt.with_ts = 1;
    opt.read_back_timeout = 30;
    opt.settle = 3;
    opt.proto_name = NULL;
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (c) {
        case O_PROTO:
            opt.proto_name = optarg;
            if (!strcmp(optarg, "http"))
                opt.proto = GL_HTTP;
            else if (!strcmp(optarg, "tcpip") || !strcmp(optarg, "tcp"))
                opt.proto = GL_TCPIP;
            else if (!strcmp(optarg, "udp"))
                opt.proto = GL_UDP;
            else if (!strcmp(optarg, "statsd"))
                opt.proto = GL_STATSD;
            else
                die("--proto: '%s' is not one of http, tcpip, udp, statsd", optarg);
            break;
        case O_HOST: opt.host = optarg; break;
        case O_PORT: opt.port = (int)num_arg("--port", optarg, 1, 65535); break;
        case O_PROJECT: opt.project = optarg; break;
        case O_PUB: opt.public_key = optarg; break;
        case O_PRIV: opt.private_key = optarg; break;
        case O_AUTH:
            if (!strcmp(optarg, "s1"))
                opt.auth = GL_AUTH_S1;
            else if (!strcmp(optarg, "s3"))
                opt.auth = GL_AUTH_S3;
            else if (!strcmp(optarg, "basic"))
                opt.auth = GL_AUTH_BASIC;
            else if (!strcmp(optarg, "none"))
                opt.auth = GL_AUTH_NONE;
            else
                die("--auth: '%s' is not one of s1, s3, basic, none", optarg);
            break;
        case O_BASE: opt.base = (int)num_arg("--base", optarg, 1, 3600); break;
        case O_PREFIX: opt.prefix = optarg; break;
        case O_ACTION: opt.action = optarg; break;
        case O_RATE: opt.rate = dbl_arg("--rate", optarg, 0); break;
        case O_DURATION:
            opt.duration = dbl_arg("--duration", optarg, 0.001);
            duration_given = 1;
            break;
        case O_EVENTS: opt.events = (uint64_t)num_arg("--events", optarg, 1, 1L << 50); break;
        case O_CONNS: opt.connections = (int)num_arg("--connections", optarg, 1, GL_MAX_CONNS); break;
        case O_PIPELINE: opt.pipeline = (int)num_arg("--pipeline", optarg, 1, 1024); break;
        case O_PER: opt.per_packet = (int)num_arg("--per-packet", optarg, 1, 100000); break;
        case O_METRICS: opt.metrics = (int)num_arg("--metrics", optarg, 1, 10000000); break;
        case O_FV: opt.filter_values = (int)num_arg("--filter-values", optarg, 0, 10000000); break;
        case O_THREADS: opt.threads = (int)num_arg("--threads", optarg, 1, GL_MAX_THREADS); break;
        case O_TCP: opt.statsd_tcp = 1; break;
        case O_NOTS: opt.with_ts = 0; break;
        case O_SNDBUF: opt.sndbuf = (int)num_arg("--sndbuf", optarg, 1024, 1 << 30); break;
        case O_RUNID:
            if (!valid_id(optarg))
                die("--run-id: '%s' must be 1..40 characters of [A-Za-z0-9_-]", optarg);
            snprintf(opt.run_id, sizeof(opt.run_id), "%s", optarg);
            break;
        case O_RB: opt.read_back = optarg; break;
        case O_RBT: opt.read_back_timeout = dbl_arg("--read-back-timeout", optarg, 0); break;
        case O_SETTLE: opt.settle = dbl_arg("--settle", optarg, 0.1); break;
        case O_PRINT: *print_payload = 1; break;
        case O_REMOTE: opt.allow_remote = 1; break;
        case O_SPID: {
            char *copy = strdup(optarg), *tok, *save = NULL;

            for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (opt.nserver_pids == 8)
                    die("--server-pid: at most 8 pids");
                opt.server_pids[opt.nserver_pids++] = (int)num_arg("--server-pid", tok, 1, 1 << 30);
            }
            free(copy);
            break;
        }
        case 'v': opt.verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (opt.proto_name == NULL)
        die("--proto is required: http, tcpip, udp or statsd (see --help)");
    if (opt.port == 0)
        die("--port is required");
    if (!duration_given && opt.events == 0)
        opt.duration = 5;
    if (opt.statsd_tcp && opt.proto != GL_STATSD)
        die("--tcp is for --proto statsd (tcpip is already TCP)");
    if (opt.connections == 0)
        opt.connections = opt.threads;
    if ((opt.proto == GL_UDP || (opt.proto == GL_STATSD && !opt.statsd_tcp)) &&
        opt.connections != opt.threads)
        opt.connections = opt.threads; /* one socket per thread */
    if (opt.connections < opt.threads)
        die("--connections (%d) must be at least --threads (%d)", opt.connections, opt.threads);
    if (opt.run_id[0] == '\0') {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(opt.run_id, sizeof(opt.run_id), "r%lx%04lx", (long)ts.tv_sec & 0xffffff,
                 ((long)getpid() ^ (ts.tv_nsec >> 10)) & 0xffff);
    }
    if (strlen(opt.project) > 200 || strlen(opt.public_key) > 128 || strlen(opt.private_key) > 128)
        die("project or keys too long");
    if ((opt.proto == GL_UDP || opt.proto == GL_TCPIP || (opt.proto == GL_HTTP && opt.auth == GL_AUTH_S1)) &&
        opt.duration > 800)
        die("--duration over 800 s: the signature's ts would leave the server's 900 s skew");
}

int
main(int argc, char **argv)
{
    gl_thread_t th[GL_MAX_THREADS];
    gl_stats_t sum;
    int print_payload = 0;
    double seconds, rate, cpu0 = 0, cpu1 = 0;
    long ts;
    char sign[33];
    int i;
    char fatal[256] = "";
    unsigned char *used;
    uint64_t u;

    parse_args(argc, argv, &print_payload);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    memset(&target, 0, sizeof(target));
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &target.sin_addr) != 1)
        die("--host: '%s' is not an IPv4 address", opt.host);
    if (!opt.allow_remote && (ntohl(target.sin_addr.s_addr) >> 24) != 127)
        die("--host: %s is not a loopback address (--allow-remote to permit)", opt.host);

    ts = (long)time(NULL);
    sign_legacy(ts, opt.base, sign);
    if (opt.proto == GL_HTTP)
        snprintf(s_header, sizeof(s_header), "GottWallS1 %ld %s %d", ts, sign, opt.base);
    else
        snprintf(s_header, sizeof(s_header), "GottWallS2 %ld %s %d %s", ts, sign, opt.base,
                 opt.project);
    make_basic();
    build_ring();

    if (print_payload) {
        if (ring[0].head)
            fwrite(ring[0].head, 1, ring[0].head_len, stdout);
        else if (opt.proto == GL_HTTP) {
            char auth[300];
            char nonce[96];

            snprintf(nonce, sizeof(nonce), "%s-00-%010d", opt.run_id, 0);
            sign_s3(ts, nonce, ring[0].sha_hex, auth, sizeof(auth));
            printf("POST %s/api/v1/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                   "X-GottWall-Auth: %s\r\n\r\n",
                   opt.prefix, opt.project, opt.action, opt.host, opt.port, ring[0].body_len, auth);
        }
        fwrite(ring[0].body, 1, ring[0].body_len, stdout);
        putchar('\n');
        return 0;
    }

    memset(th, 0, sizeof(th));
    for (i = 0; i < opt.threads; i++) {
        th[i].id = i;
        th[i].rate = opt.rate / opt.threads;
        if (opt.events) {
            th[i].quota = opt.events / (uint64_t)opt.threads +
                          ((uint64_t)i < opt.events % (uint64_t)opt.threads ? 1 : 0);
            if (th[i].quota == 0)
                th[i].quota = 1; /* a thread with nothing to do still needs a limit */
        }
        th[i].nconns = opt.connections / opt.threads + (i < opt.connections % opt.threads ? 1 : 0);
        th[i].first_unit = ring_units * (size_t)i / (size_t)opt.threads;
    }
    cpu0 = server_cpu();
    t_start = now_mono();
    t_end_deadline = opt.duration > 0 ? t_start + opt.duration : 1e300;
    for (i = 0; i < opt.threads; i++)
        if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0)
            die("pthread_create failed");
    for (i = 0; i < opt.threads; i++)
        pthread_join(th[i].tid, NULL);
    seconds = now_mono() - t_start;
    if (opt.nserver_pids) {
        usleep(100000); /* let the server drain its socket buffers */
        cpu1 = server_cpu();
    }

    memset(&sum, 0, sizeof(sum));
    for (i = 0; i < opt.threads; i++) {
        sum.events += th[i].st.events;
        sum.units += th[i].st.units;
        sum.send_errors += th[i].st.send_errors;
        sum.responses += th[i].st.responses;
        sum.ok += th[i].st.ok;
        sum.bad_status += th[i].st.bad_status;
        sum.unanswered += th[i].st.unanswered;
        sum.reconnects += th[i].st.reconnects;
        if (th[i].st.last_bad_status)
            sum.last_bad_status = th[i].st.last_bad_status;
        if (th[i].fatal[0] && !fatal[0])
            snprintf(fatal, sizeof(fatal), "%s", th[i].fatal);
    }
    rate = seconds > 0 ? (double)sum.events / seconds : 0;
    printf("proto=%s%s sent=%" PRIu64 " seconds=%.2f rate=%.0f/s packets=%" PRIu64,
           opt.proto_name, opt.statsd_tcp ? "-tcp" : "", sum.events, seconds, rate, sum.units);
    if (sum.send_errors)
        printf(" send_errors=%" PRIu64, sum.send_errors);
    if (opt.proto == GL_HTTP) {
        printf(" acked=%" PRIu64 " http_errors=%" PRIu64 " unanswered=%" PRIu64,
               sum.ok * (uint64_t)opt.per_packet, sum.bad_status, sum.unanswered);
        if (sum.bad_status)
            printf(" last_status=%d", sum.last_bad_status);
        if (sum.reconnects)
            printf(" reconnects=%" PRIu64, sum.reconnects);
    }
    if (opt.nserver_pids)
        printf(" server_cpu=%.2f", cpu1 - cpu0);
    fflush(stdout);

    /* which metric names were used */
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

    if (opt.read_back && sum.events > 0) {
        rb_t rb;
        double stored = -1, last = -1, last_change = now_mono();
        double give_up = now_mono() + opt.read_back_timeout;
        uint64_t errors = 0;
        char errmsg[512] = "";

        rb_parse_url(&rb, opt.read_back);
        for (;;) {
            double now;

            stored = read_totals(&rb, used, &errors, errmsg, sizeof(errmsg));
            now = now_mono();
            if (opt.verbose)
                fprintf(stderr, "gwload: read back %.0f of %" PRIu64 "\n", stored, sum.events);
            if (stored != last) {
                last = stored;
                last_change = now;
            }
            if (stored >= (double)sum.events || now - last_change >= opt.settle || now >= give_up)
                break;
            usleep(200000);
        }
        if (rb.fd >= 0)
            close(rb.fd);
        printf(" stored=%.0f loss=%.3f%%", stored,
               100.0 * ((double)sum.events - stored) / (double)sum.events);
        if (errors) {
            printf(" readback_errors=%" PRIu64, errors);
            fprintf(stderr, "gwload: read-back: %s\n", errmsg);
        }
        free(rb.buf);
    } else if (opt.proto == GL_HTTP && sum.events > 0) {
        uint64_t acked = sum.ok * (uint64_t)opt.per_packet;
        printf(" loss=%.3f%%", 100.0 * (double)(sum.events - acked) / (double)sum.events);
    }
    printf(" run_id=%s\n", opt.run_id);
    fflush(stdout);
    free(used);
    if (fatal[0]) {
        fprintf(stderr, "gwload: %s\n", fatal);
        return 1;
    }
    return 0;
}
