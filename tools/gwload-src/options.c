/*
 * tools/gwload-src/options.c: the load generator's command line: --help, the
 * options into opt, and the checks that come after all of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gwload.h"

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
"  --timers               statsd timers name:V|ms (V varies, 0.01-1000 ms)\n"
"                         instead of counters; --read-back reads stat=count\n"
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

enum {
    O_PROTO = 256, O_HOST, O_PORT, O_PROJECT, O_PUB, O_PRIV, O_AUTH, O_BASE, O_PREFIX,
    O_ACTION, O_RATE, O_DURATION, O_EVENTS, O_CONNS, O_PIPELINE, O_PER, O_METRICS, O_FV,
    O_THREADS, O_TCP, O_NOTS, O_SNDBUF, O_RUNID, O_RB, O_RBT, O_SETTLE, O_PRINT, O_REMOTE,
    O_SPID, O_TIMERS
};

static const struct option longopts[] = {
    {"proto", 1, 0, O_PROTO}, {"host", 1, 0, O_HOST}, {"port", 1, 0, O_PORT},
    {"project", 1, 0, O_PROJECT}, {"public-key", 1, 0, O_PUB},
    {"private-key", 1, 0, O_PRIV}, {"auth", 1, 0, O_AUTH}, {"base", 1, 0, O_BASE},
    {"prefix", 1, 0, O_PREFIX}, {"action", 1, 0, O_ACTION}, {"rate", 1, 0, O_RATE},
    {"duration", 1, 0, O_DURATION}, {"events", 1, 0, O_EVENTS},
    {"connections", 1, 0, O_CONNS}, {"pipeline", 1, 0, O_PIPELINE},
    {"per-packet", 1, 0, O_PER}, {"metrics", 1, 0, O_METRICS},
    {"filter-values", 1, 0, O_FV}, {"threads", 1, 0, O_THREADS}, {"tcp", 0, 0, O_TCP},
    {"timers", 0, 0, O_TIMERS},
    {"no-ts", 0, 0, O_NOTS}, {"sndbuf", 1, 0, O_SNDBUF}, {"run-id", 1, 0, O_RUNID},
    {"read-back", 1, 0, O_RB}, {"read-back-timeout", 1, 0, O_RBT},
    {"settle", 1, 0, O_SETTLE}, {"print-payload", 0, 0, O_PRINT},
    {"allow-remote", 0, 0, O_REMOTE}, {"server-pid", 1, 0, O_SPID}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},
    {0, 0, 0, 0}};

/* The defaults of the options that have one. */
static void
set_defaults(void)
{
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
}

static void
parse_proto(const char *arg)
{
    opt.proto_name = arg;
    if (!strcmp(arg, "http"))
        opt.proto = GL_HTTP;
    else if (!strcmp(arg, "tcpip") || !strcmp(arg, "tcp"))
        opt.proto = GL_TCPIP;
    else if (!strcmp(arg, "udp"))
        opt.proto = GL_UDP;
    else if (!strcmp(arg, "statsd"))
        opt.proto = GL_STATSD;
    else
        die("--proto: '%s' is not one of http, tcpip, udp, statsd", arg);
}

static void
parse_auth(const char *arg)
{
    if (!strcmp(arg, "s1"))
        opt.auth = GL_AUTH_S1;
    else if (!strcmp(arg, "s3"))
        opt.auth = GL_AUTH_S3;
    else if (!strcmp(arg, "basic"))
        opt.auth = GL_AUTH_BASIC;
    else if (!strcmp(arg, "none"))
        opt.auth = GL_AUTH_NONE;
    else
        die("--auth: '%s' is not one of s1, s3, basic, none", arg);
}

/* --server-pid PID[,PID]: appends to opt.server_pids. */
static void
parse_server_pids(const char *arg)
{
    char *copy = strdup(arg), *tok, *save = NULL;

    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (opt.nserver_pids == 8)
            die("--server-pid: at most 8 pids");
        opt.server_pids[opt.nserver_pids++] = (int)num_arg("--server-pid", tok, 1, 1 << 30);
    }
    free(copy);
}

/* One option from getopt_long (c, with optarg). */
static void
parse_option(int c, int *duration_given, int *print_payload)
{
    switch (c) {
    case O_PROTO: parse_proto(optarg); break;
    case O_HOST: opt.host = optarg; break;
    case O_PORT: opt.port = (int)num_arg("--port", optarg, 1, 65535); break;
    case O_PROJECT: opt.project = optarg; break;
    case O_PUB: opt.public_key = optarg; break;
    case O_PRIV: opt.private_key = optarg; break;
    case O_AUTH: parse_auth(optarg); break;
    case O_BASE: opt.base = (int)num_arg("--base", optarg, 1, 3600); break;
    case O_PREFIX: opt.prefix = optarg; break;
    case O_ACTION: opt.action = optarg; break;
    case O_RATE: opt.rate = dbl_arg("--rate", optarg, 0); break;
    case O_DURATION:
        opt.duration = dbl_arg("--duration", optarg, 0.001);
        *duration_given = 1;
        break;
    case O_EVENTS: opt.events = (uint64_t)num_arg("--events", optarg, 1, 1L << 50); break;
    case O_CONNS: opt.connections = (int)num_arg("--connections", optarg, 1, GL_MAX_CONNS); break;
    case O_PIPELINE: opt.pipeline = (int)num_arg("--pipeline", optarg, 1, 1024); break;
    case O_PER: opt.per_packet = (int)num_arg("--per-packet", optarg, 1, 100000); break;
    case O_METRICS: opt.metrics = (int)num_arg("--metrics", optarg, 1, 10000000); break;
    case O_FV: opt.filter_values = (int)num_arg("--filter-values", optarg, 0, 10000000); break;
    case O_THREADS: opt.threads = (int)num_arg("--threads", optarg, 1, GL_MAX_THREADS); break;
    case O_TCP: opt.statsd_tcp = 1; break;
    case O_TIMERS: opt.timers = 1; break;
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
    case O_SPID: parse_server_pids(optarg); break;
    case 'v': opt.verbose = 1; break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
}

/* The checks and the derived values, once every option is read. */
static void
check_options(int duration_given)
{
    if (opt.proto_name == NULL)
        die("--proto is required: http, tcpip, udp or statsd (see --help)");
    if (opt.port == 0)
        die("--port is required");
    if (!duration_given && opt.events == 0)
        opt.duration = 5;
    if (opt.timers && opt.proto != GL_STATSD)
        die("--timers is for --proto statsd (JSON events take --action timing)");
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

void
parse_args(int argc, char **argv, int *print_payload)
{
    int c;
    int duration_given = 0;

    set_defaults();
    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1)
        parse_option(c, &duration_given, print_payload);
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    check_options(duration_given);
}
