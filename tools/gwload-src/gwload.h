/*
 * tools/gwload-src/gwload.h: the load generator's private header.
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
 *
 * The files (tools/gwload-src/):
 *   main.c      main: the target, the threads, the pacing and its clock
 *   options.c   the command line (--help) and its checks
 *   common.c    helpers: the clock, errors, memory, sockets, HTTP headers
 *   sign.c      the S1/S2/S3 signatures and Basic credentials
 *   ring.c      the prebuilt payloads (the ring) and the JSON events
 *   udp.c       udp: S2 datagrams with sendmmsg (statsd over UDP too)
 *   tcp.c       tcpip: S2 auth and a --chunk-- stream (statsd over TCP too)
 *   statsd.c    statsd: the name:1|c lines
 *   http.c      http: keep-alive, pipelined POSTs over epoll
 *   readback.c  --read-back: the totals from the read API
 *   report.c    the summary line
 */
#ifndef GWLOAD_H
#define GWLOAD_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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
    int timers; /* statsd: name:V|ms timers instead of name:1|c */
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

/* ---- shared state (main.c; the ring in ring.c) ---- */

extern gl_opts_t opt;
extern gl_unit_t *ring;
extern size_t ring_units;
extern double t_start, t_end_deadline;
extern struct sockaddr_in target;
extern char s_header[256];   /* S1/S2 header value */
extern char basic_value[512];

/* ---- main.c: pacing ---- */

uint64_t pace(gl_thread_t *t, uint64_t max_units);
int time_up(gl_thread_t *t);

/* ---- options.c ---- */

void parse_args(int argc, char **argv, int *print_payload);

/* ---- common.c ---- */

double now_mono(void);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *xmalloc(size_t n);
void hex(const unsigned char *in, size_t n, char *out);
int open_socket(int type);
int write_all(int fd, const char *p, size_t n);
long header_value(const char *h, const char *end, const char *name, const char **val);

/* ---- sign.c ---- */

void make_s_header(long ts);
void sign_s3(long ts, const char *nonce, const char *sha_hex, char *out, size_t outsz);
void make_basic(void);

/* ---- ring.c ---- */

size_t fmt_event(char *p, size_t room, uint64_t i, long ts);
void build_ring(void);

/* ---- the protocols: bodies and senders ---- */

size_t udp_body(char *buf, size_t room, uint64_t first, long ts);
void run_udp(gl_thread_t *t);

size_t tcpip_body(char *buf, size_t room, uint64_t first, long ts);
void run_tcp(gl_thread_t *t);

int statsd_event(char *p, size_t room, unsigned m, unsigned v, uint64_t i);
size_t statsd_body(char *buf, size_t room, uint64_t first, long ts);
void run_statsd(gl_thread_t *t);

size_t http_body(char *buf, size_t room, uint64_t first, long ts);
size_t http_prepare(gl_unit_t *un);
void http_print_s3_head(long ts);
void run_http(gl_thread_t *t);

/* ---- readback.c ---- */

void read_back(const unsigned char *used, uint64_t sent);

/* ---- report.c ---- */

void sum_stats(const gl_thread_t *th, gl_stats_t *sum, char *fatal, size_t fatalsz);
void print_summary(const gl_stats_t *sum, double seconds, double server_cpu_s);
unsigned char *used_metrics(const gl_thread_t *th);
void print_tail(const gl_stats_t *sum, const unsigned char *used);

#endif
