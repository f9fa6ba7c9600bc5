/*
 * tools/gwload-src/main.c: GottWall's load generator: main, in stages (the
 * command line, the target, the signatures and the prebuilt ring, the
 * sending threads, the summary), and the pacing that every sender uses.
 * See gwload.h for what it does and where the rest lives.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "gwload.h"

gl_opts_t opt;
double t_start, t_end_deadline;
struct sockaddr_in target;
char s_header[256];
char basic_value[512];

/* ---- the clock and pacing ---- */

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

/* How many more units may go now; sleeps when ahead of the schedule. */
uint64_t
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

int
time_up(gl_thread_t *t)
{
    if (t->quota && t->st.events >= t->quota)
        return 1;
    if (opt.duration > 0 && now_mono() >= t_end_deadline)
        return 1;
    return 0;
}

/* ---- the threads ---- */

static void *
thread_main(void *arg)
{
    gl_thread_t *t = arg;

    switch (opt.proto) {
    case GL_UDP:
        run_udp(t);
        break;
    case GL_STATSD:
        run_statsd(t);
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

/* Each thread's share of --rate, --events, --connections and the ring. */
static void
plan_threads(gl_thread_t *th)
{
    int i;

    memset(th, 0, sizeof(*th) * GL_MAX_THREADS);
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
}

/* Runs the threads to the end; returns the seconds they sent for and sets
 * *server_cpu_s to the CPU seconds the --server-pid processes used. */
static double
run_threads(gl_thread_t *th, double *server_cpu_s)
{
    double seconds, cpu0 = 0, cpu1 = 0;
    int i;

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
    *server_cpu_s = cpu1 - cpu0;
    return seconds;
}

/* ---- main ---- */

/* The target address: IPv4, loopback unless --allow-remote. */
static void
set_target(void)
{
    memset(&target, 0, sizeof(target));
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &target.sin_addr) != 1)
        die("--host: '%s' is not an IPv4 address", opt.host);
    if (!opt.allow_remote && (ntohl(target.sin_addr.s_addr) >> 24) != 127)
        die("--host: %s is not a loopback address (--allow-remote to permit)", opt.host);
}

/* --print-payload: the first unit (with its HTTP headers) and a newline. */
static int
print_first_payload(long ts)
{
    if (ring[0].head)
        fwrite(ring[0].head, 1, ring[0].head_len, stdout);
    else if (opt.proto == GL_HTTP)
        http_print_s3_head(ts);
    fwrite(ring[0].body, 1, ring[0].body_len, stdout);
    putchar('\n');
    return 0;
}

int
main(int argc, char **argv)
{
    gl_thread_t th[GL_MAX_THREADS];
    gl_stats_t sum;
    int print_payload = 0;
    double seconds, cpu;
    long ts;
    char fatal[256] = "";
    unsigned char *used;

    parse_args(argc, argv, &print_payload);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    set_target();

    ts = (long)time(NULL);
    make_s_header(ts);
    make_basic();
    build_ring();
    if (print_payload)
        return print_first_payload(ts);

    plan_threads(th);
    seconds = run_threads(th, &cpu);
    sum_stats(th, &sum, fatal, sizeof(fatal));
    print_summary(&sum, seconds, cpu);
    used = used_metrics(th);
    print_tail(&sum, used);
    free(used);
    if (fatal[0]) {
        fprintf(stderr, "gwload: %s\n", fatal);
        return 1;
    }
    return 0;
}
