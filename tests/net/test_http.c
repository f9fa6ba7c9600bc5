/*
 * tests/net/test_http.c: net/http.c and net/http_parse.c with real sockets.
 * A gw__http server runs on its own loop in a thread; the test is the
 * client, speaking raw bytes: exact responses, keep-alive, pipelining
 * answered in order (with an answer that comes later), chunked bodies,
 * framing split over writes (RFC 9112 refusals included), HTTP/1.0, the
 * server's own 400/408/413/431, max_connections, close answering 503,
 * header lines added to every answer, and garbage.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "net/http.h"
#include "base/metrics.h"

static struct ev_loop *loop;
static gw_http_server_t *srv;
static int port;
static pthread_t thread;
static ev_async stop_async, close_async;
static ev_timer later_timer;
static gw_http_req_t *later_req;
static int closed_srv;

/* ---- The server side (loop thread) ---- */

static void
later_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void) l;
    (void) w;
    (void) revents;
    if (later_req != NULL) {
        gw__http_respond(later_req, 200, "text/plain", NULL, "later", 5);
        later_req = NULL;
    }
}

static void
handler(void *arg, gw_http_req_t *req)
{
    const char *path = gw__http_path(req);
    char buf[4096];
    size_t blen;
    const char *body = gw__http_body(req, &blen);
    int n;

    (void) arg;
    if (strcmp(path, "/later") == 0) {
        later_req = req;
        ev_timer_set(&later_timer, 0.2, 0.);
        ev_timer_start(loop, &later_timer);
        return;
    }
    if (strcmp(path, "/slow") == 0) {
        /* Answered after more than the idle timeout (1 s). */
        later_req = req;
        ev_timer_set(&later_timer, 1.3, 0.);
        ev_timer_start(loop, &later_timer);
        return;
    }
    if (strcmp(path, "/never") == 0) {
        later_req = req; /* answered only by the server's close */
        return;
    }
    if (strcmp(path, "/405") == 0) {
        gw__http_respond(req, 405, "application/json", "Allow: POST\r\n",
                         "{\"error\": \"use POST\"}", 21);
        return;
    }
    if (strcmp(path, "/400") == 0) {
        gw__http_error(req, 400, "bad \"thing\"");
        return;
    }
    if (strcmp(path, "/big") == 0) {
        size_t len = 4u * 1024u * 1024u;
        char *big = malloc(len);
        memset(big, 'x', len);
        gw__http_respond(req, 200, "text/plain", NULL, big, len);
        free(big);
        return;
    }
    n = snprintf(buf, sizeof(buf), "%s %s ?%s host=%s body=%.*s",
                 gw__http_method(req), path, gw__http_query(req),
                 gw__http_header(req, "host") ? gw__http_header(req, "HOST")
                                              : "-",
                 (int) blen, body);
    gw__http_respond(req, 200, "text/plain", NULL, buf, (size_t) n);
}

static void
stop_cb(struct ev_loop *l, ev_async *w, int revents)
{
    (void) w;
    (void) revents;
    if (!closed_srv)
        gw__http_close(srv);
    closed_srv = 1;
    /* A request still held is answered after the close: that is safe and
     * frees it. */
    if (later_req != NULL) {
        gw__http_respond(later_req, 200, "text/plain", NULL, "late", 4);
        later_req = NULL;
    }
    ev_timer_stop(l, &later_timer);
    ev_async_stop(l, &stop_async);
    ev_async_stop(l, &close_async);
    ev_break(l, EVBREAK_ALL);
}

static void
close_cb(struct ev_loop *l, ev_async *w, int revents)
{
    (void) l;
    (void) w;
    (void) revents;
    gw__http_close(srv);
    closed_srv = 1;
}

static void *
run_loop(void *arg)
{
    (void) arg;
    ev_run(loop, 0);
    return NULL;
}

static void
setup(void)
{
    gw_http_listen_t lo = {"127.0.0.1", 0, 0};
    gw__http_limits_t lim;
    gw_error_t err;

    memset(&lim, 0, sizeof(lim));
    lim.max_body = 1000;
    lim.max_header_bytes = 2048;
    lim.max_headers = 20;
    lim.header_timeout = 0.5;
    lim.idle_timeout = 1.0;
    lim.max_connections = 4;
    gw__metrics_reset();
    loop = ev_loop_new(EVFLAG_AUTO);
    closed_srv = 0;
    later_req = NULL;
    ck_assert_int_eq(gw__http_listen(loop, "web", &lo, &lim, handler, NULL,
                                     &srv, &err),
                     GW_OK);
    port = gw__http_port(srv);
    ck_assert_int_gt(port, 0);
    ev_init(&later_timer, later_cb);
    ev_async_init(&stop_async, stop_cb);
    ev_async_init(&close_async, close_cb);
    ev_async_start(loop, &stop_async);
    ev_async_start(loop, &close_async);
    pthread_create(&thread, NULL, run_loop, NULL);
}

static void
teardown(void)
{
    ev_async_send(loop, &stop_async);
    pthread_join(thread, NULL);
    ev_loop_destroy(loop);
}

/* ---- The client side (test thread) ---- */

static int
connect_srv(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void
send_str(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;

    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        ck_assert_int_gt(n, 0);
        off += (size_t) n;
    }
}

/* Reads one whole response (head + Content-Length body) into buf. */
static size_t
read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        char *end;
        ssize_t n;

        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t want;
            ck_assert_ptr_nonnull(cl);
            want = (size_t) (end + 4 - buf) + strtoul(cl + 16, NULL, 10);
            if (len >= want) {
                ck_assert_uint_eq(len, want); /* nothing extra yet */
                return len;
            }
        }
        ck_assert_uint_lt(len, cap - 1);
        n = recv(fd, buf + len, 1, 0); /* byte by byte: no overread */
        ck_assert_msg(n == 1, "connection ended after %zu bytes: %s", len,
                      buf);
        len += (size_t) n;
    }
}

/* Reads until the peer closes; returns the byte count. */
static size_t
read_to_close(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            ck_assert_msg(n == 0, "recv: %s", strerror(errno));
            break;
        }
        len += (size_t) n;
        ck_assert_uint_lt(len, cap - 1);
    }
    buf[len] = '\0';
    return len;
}

/* Replaces the Date header's value by "D" so responses compare exactly. */
static void
mask_date(char *buf)
{
    char *d = strstr(buf, "\r\nDate: ");
    char *e;
    struct tm tm;

    ck_assert_ptr_nonnull(d);
    d += 8;
    e = strstr(d, "\r\n");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq((int) (e - d), 29);
    memset(&tm, 0, sizeof(tm));
    ck_assert_ptr_nonnull(strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm));
    memmove(d + 1, e, strlen(e) + 1);
    d[0] = 'D';
}

static void
expect_response(int fd, const char *want)
{
    char buf[8192];

    read_response(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, want);
}

#define HEAD200(len)                                                          \
    "HTTP/1.1 200 OK\r\nServer: GottWall/0.1.0\r\nDate: D\r\n"                \
    "Content-Type: text/plain\r\nContent-Length: " len "\r\n\r\n"

START_TEST(test_exact_response)
{
    int fd = connect_srv();

    send_str(fd, "GET /echo?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("33") "GET /echo ?x=1&y=%20 host=h body=");
    close(fd);
}
END_TEST

START_TEST(test_keep_alive)
{
    int fd = connect_srv();

    send_str(fd, "POST /a%20b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                 "\r\nabc");
    expect_response(fd, HEAD200("27") "POST /a b ? host=h body=abc");
    send_str(fd, "GET /again HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("25") "GET /again ? host=h body=");
    close(fd);
}
END_TEST

START_TEST(test_pipelining_in_order)
{
    int fd = connect_srv();
    char buf[8192];

    /* The first is answered 0.2 s later; the others at once: the answers
     * still leave in request order. */
    send_str(fd, "GET /later HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                 "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                 "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    expect_response(fd, HEAD200("5") "later");
    expect_response(fd, HEAD200("23") "GET /one ? host=h body=");
    expect_response(fd, HEAD200("26") "POST /two ? host=h body=hi");
    expect_response(fd, "HTTP/1.1 200 OK\r\nServer: GottWall/0.1.0\r\n"
                        "Date: D\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 25\r\nConnection: close\r\n\r\n"
                        "GET /three ? host=h body=");
    ck_assert_uint_eq(read_to_close(fd, buf, sizeof(buf)), 0);
    close(fd);
}
END_TEST

START_TEST(test_pipelining_split_bytes)
{
    int fd = connect_srv();
    const char *req = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                      "\r\nwxyzGET /y HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t i;

    /* One byte per write: the same requests come out. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    for (i = 0; req[i]; i++) {
        ck_assert_int_eq(send(fd, req + i, 1, 0), 1);
        if (i % 7 == 0)
            usleep(1000);
    }
    expect_response(fd, HEAD200("26") "POST /x ? host=h body=wxyz");
    expect_response(fd, HEAD200("21") "GET /y ? host=h body=");
    close(fd);
}
END_TEST

START_TEST(test_chunked_body)
{
    int fd = connect_srv();

    send_str(fd, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
    expect_response(fd, HEAD200("33") "POST /c ? host=h body=hello world");
    close(fd);
}
END_TEST

/* Sends s one byte per write, so the framing check sees every split. */
static void
send_bytewise(int fd, const char *s)
{
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    for (; *s; s++) {
        ck_assert_int_eq(send(fd, s, 1, MSG_NOSIGNAL), 1);
        usleep(200);
    }
}

START_TEST(test_framing_split_bytes)
{
    int fd = connect_srv();
    char buf[8192];

    /* Chunked, with an extension and a trailer, then a pipelined GET. */
    send_bytewise(fd, "\r\nPOST /c HTTP/1.1\r\nHost: h\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\n"
                      "GET /g HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("33") "POST /c ? host=h body=hello world");
    expect_response(fd, HEAD200("21") "GET /g ? host=h body=");
    close(fd);
    /* A bare LF ending the trailers: 400, and the request after it is
     * never read. */
    fd = connect_srv();
    send_bytewise(fd, "POST /c HTTP/1.1\r\nHost: h\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\nGET /g HTTP/1.1\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 400 Bad Request\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 91\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"malformed HTTP request: a line ends "
                          "in LF without CR; end every line with CRLF\"}");
    close(fd);
    /* An obs-fold split over writes. */
    fd = connect_srv();
    send_bytewise(fd, "GET /g HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 400 Bad Request\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "(obs-fold)"));
    close(fd);
    ck_assert_uint_eq(gw__metrics_get("web", GW_COUNTER_DROPPED, "bad_format"),
                      2);
}
END_TEST

START_TEST(test_http10_closes)
{
    int fd = connect_srv();
    char buf[8192];

    send_str(fd, "GET /old HTTP/1.0\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nServer: GottWall/0.1.0\r\n"
                          "Date: D\r\nContent-Type: text/plain\r\n"
                          "Content-Length: 23\r\nConnection: close\r\n\r\n"
                          "GET /old ? host=- body=");
    close(fd);
}
END_TEST

START_TEST(test_handler_errors)
{
    int fd = connect_srv();

    send_str(fd, "DELETE /405 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, "HTTP/1.1 405 Method Not Allowed\r\n"
                        "Server: GottWall/0.1.0\r\nDate: D\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 21\r\nAllow: POST\r\n\r\n"
                        "{\"error\": \"use POST\"}");
    /* The connection stays usable after a handler's error. */
    send_str(fd, "GET /400 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, "HTTP/1.1 400 Bad Request\r\n"
                        "Server: GottWall/0.1.0\r\nDate: D\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 26\r\n\r\n"
                        "{\"error\": \"bad \\\"thing\\\"\"}");
    close(fd);
}
END_TEST

START_TEST(test_server_headers)
{
    int fd;
    char buf[8192];

    /* Set before any request: the loop reads it only when answering. */
    gw__http_set_headers(srv, "X-Every: 1\r\n");
    fd = connect_srv();
    send_str(fd, "DELETE /405 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, "HTTP/1.1 405 Method Not Allowed\r\n"
                        "Server: GottWall/0.1.0\r\nDate: D\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 21\r\nAllow: POST\r\n"
                        "X-Every: 1\r\n\r\n"
                        "{\"error\": \"use POST\"}");
    /* The server's own error answers carry them too. */
    send_str(fd, "GET / HTTP/1.1\r\nX-Big: 1\r\nX-Big: 2\r\nX-Big: 3\r\n"
                 "X-Big: 4\r\nX-Big: 5\r\nX-Big: 6\r\nX-Big: 7\r\n"
                 "X-Big: 8\r\nX-Big: 9\r\nX-Big: 10\r\nX-Big: 11\r\n"
                 "X-Big: 12\r\nX-Big: 13\r\nX-Big: 14\r\nX-Big: 15\r\n"
                 "X-Big: 16\r\nX-Big: 17\r\nX-Big: 18\r\nX-Big: 19\r\n"
                 "X-Big: 20\r\nX-Big: 21\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 431 ", 13), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nConnection: close\r\n"
                                      "X-Every: 1\r\n\r\n{\"error\": "));
    close(fd);
}
END_TEST

START_TEST(test_malformed_400)
{
    int fd = connect_srv();
    char buf[8192];

    send_str(fd, "GARBAGE\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 400 Bad Request\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 56\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"malformed HTTP request: invalid "
                          "HTTP method\"}");
    close(fd);
    /* Conflicting lengths are refused, not guessed. */
    fd = connect_srv();
    send_str(fd, "POST /x HTTP/1.1\r\nContent-Length: 2\r\n"
                 "Content-Length: 3\r\n\r\nabc");
    read_to_close(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
    close(fd);
    ck_assert_uint_eq(gw__metrics_get("web", GW_COUNTER_DROPPED, "bad_format"),
                      2);
}
END_TEST

START_TEST(test_timeout_408)
{
    int fd = connect_srv();
    char buf[8192];
    struct timespec t0, t1;
    double dt;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    send_str(fd, "GET /echo HTTP/1.1\r\nHost: h\r\n");
    read_to_close(fd, buf, sizeof(buf));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(dt > 0.4 && dt < 2.0, "408 after %.2f s", dt);
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 408 Request Timeout\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 41\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"request not received in time\"}");
    close(fd);
    ck_assert_uint_eq(gw__metrics_get("web", GW_COUNTER_DROPPED, "timeout"),
                      1);
}
END_TEST

START_TEST(test_idle_closes_silently)
{
    int fd = connect_srv();
    char buf[8192];

    /* Nothing sent: closed at the header timeout without a word. */
    ck_assert_uint_eq(read_to_close(fd, buf, sizeof(buf)), 0);
    close(fd);
    /* After a request, kept alive until the idle timeout. */
    fd = connect_srv();
    send_str(fd, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("21") "GET /a ? host=h body=");
    ck_assert_uint_eq(read_to_close(fd, buf, sizeof(buf)), 0);
    close(fd);
}
END_TEST

START_TEST(test_idle_counts_from_answer)
{
    int fd = connect_srv();

    /* The handler takes longer than the idle timeout; the connection is
     * not idle while it waits, and stays usable after the answer. */
    send_str(fd, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("5") "later");
    usleep(200000);
    send_str(fd, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fd, HEAD200("21") "GET /a ? host=h body=");
    close(fd);
}
END_TEST

START_TEST(test_body_413)
{
    int fd = connect_srv();
    char buf[8192], *body;

    /* Refused from Content-Length, before the body is sent. */
    send_str(fd, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 413 Payload Too Large\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 64\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"request body is larger than the "
                          "limit of 1000 bytes\"}");
    close(fd);
    /* Exactly the limit passes. */
    fd = connect_srv();
    body = calloc(1, 1100);
    memset(body, 'b', 1000);
    send_str(fd, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
    send_str(fd, body);
    read_response(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    close(fd);
    /* Chunked: refused while reading, at the chunk that crosses it. */
    fd = connect_srv();
    send_str(fd, "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n3e8\r\n");
    send_str(fd, body);
    send_str(fd, "\r\n1\r\nx\r\n0\r\n\r\n");
    read_to_close(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 413 Payload Too Large\r\n", 32),
                     0);
    close(fd);
    free(body);
    ck_assert_uint_eq(gw__metrics_get("web", GW_COUNTER_DROPPED, "oversize"),
                      2);
}
END_TEST

START_TEST(test_headers_431)
{
    char req[8192], buf[8192];
    int fd, i;
    size_t len;

    /* 21 headers (limit 20). */
    len = (size_t) sprintf(req, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 21; i++)
        len += (size_t) sprintf(req + len, "X-H%d: v\r\n", i);
    strcpy(req + len, "\r\n");
    fd = connect_srv();
    send_str(fd, req);
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 41\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"more than 20 request headers\"}");
    close(fd);
    /* 20 headers pass. */
    len = (size_t) sprintf(req, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 20; i++)
        len += (size_t) sprintf(req + len, "X-H%d: v\r\n", i);
    strcpy(req + len, "\r\n");
    fd = connect_srv();
    send_str(fd, req);
    read_response(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    close(fd);
    /* One 3000-byte header line (limit 2048 bytes). */
    len = (size_t) sprintf(req, "GET / HTTP/1.1\r\nX-Long: ");
    memset(req + len, 'a', 3000);
    strcpy(req + len + 3000, "\r\n\r\n");
    fd = connect_srv();
    send_str(fd, req);
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 55\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"request headers are larger than "
                          "2048 bytes\"}");
    close(fd);
}
END_TEST

START_TEST(test_max_connections)
{
    int fds[4], extra, i;
    char buf[8192];

    for (i = 0; i < 4; i++) {
        fds[i] = connect_srv();
        send_str(fds[i], "GET /k HTTP/1.1\r\nHost: h\r\n\r\n");
        expect_response(fds[i], HEAD200("21") "GET /k ? host=h body=");
    }
    extra = connect_srv();
    /* Accepted and closed at once. */
    ck_assert_uint_eq(read_to_close(extra, buf, sizeof(buf)), 0);
    close(extra);
    ck_assert_uint_eq(
        gw__metrics_get("web", GW_COUNTER_DROPPED, "max_connections"), 1);
    /* The others still work; closing one makes room. */
    send_str(fds[0], "GET /k HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(fds[0], HEAD200("21") "GET /k ? host=h body=");
    close(fds[1]);
    usleep(100000);
    extra = connect_srv();
    send_str(extra, "GET /k HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_response(extra, HEAD200("21") "GET /k ? host=h body=");
    close(extra);
    close(fds[0]);
    close(fds[2]);
    close(fds[3]);
}
END_TEST

START_TEST(test_close_answers_503)
{
    int fd = connect_srv();
    char buf[8192];

    send_str(fd, "GET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(100000);
    ev_async_send(loop, &close_async);
    read_to_close(fd, buf, sizeof(buf));
    mask_date(buf);
    ck_assert_str_eq(buf, "HTTP/1.1 503 Service Unavailable\r\n"
                          "Server: GottWall/0.1.0\r\nDate: D\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 40\r\nConnection: close\r\n\r\n"
                          "{\"error\": \"the server is shutting down\"}");
    close(fd);
}
END_TEST

START_TEST(test_slow_reader_big_response)
{
    int fd = connect_srv();
    char *buf = malloc(5u * 1024u * 1024u);
    size_t len = 0, want;
    char *end;

    send_str(fd, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    usleep(300000); /* not reading: the server must wait, not fail */
    for (;;) {
        ssize_t n = recv(fd, buf + len, 65536, 0);
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            want = (size_t) (end + 4 - buf) + 4u * 1024u * 1024u;
            if (len >= want)
                break;
        }
    }
    ck_assert_uint_eq(len, want);
    ck_assert_int_eq(end[4], 'x');
    ck_assert_int_eq(buf[len - 1], 'x');
    free(buf);
    close(fd);
}
END_TEST

START_TEST(test_garbage_survives)
{
    unsigned seed = 7;
    char junk[3000], buf[8192];
    int i, j, fd;

    for (i = 0; i < 40; i++) {
        size_t n = (size_t) (rand_r(&seed) % sizeof(junk));
        fd = connect_srv();
        for (j = 0; j < (int) n; j++)
            junk[j] = (char) (rand_r(&seed) % 256);
        if (i % 2)
            memcpy(junk, "POST / HTTP/1.1\r\n", 17 < n ? 17 : n);
        send(fd, junk, n, MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
        {
            struct pollfd pfd = {fd, POLLIN, 0};
            poll(&pfd, 1, 2000);
        }
        close(fd);
    }
    fd = connect_srv();
    send_str(fd, "GET /alive HTTP/1.1\r\nHost: h\r\n\r\n");
    read_response(fd, buf, sizeof(buf));
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    close(fd);
}
END_TEST

START_TEST(test_query_param)
{
    char *v;

    v = gw__http_query_param("a=1&name=x%20y+z&b=", "name");
    ck_assert_str_eq(v, "x y z");
    free(v);
    v = gw__http_query_param("a=1&b=", "b");
    ck_assert_str_eq(v, "");
    free(v);
    v = gw__http_query_param("flag&a=%2", "flag");
    ck_assert_str_eq(v, "");
    free(v);
    v = gw__http_query_param("flag&a=%2", "a");
    ck_assert_str_eq(v, "%2");
    free(v);
    v = gw__http_query_param("n%61me=%C3%A9", "name");
    ck_assert_str_eq(v, "\xc3\xa9");
    free(v);
    ck_assert_ptr_null(gw__http_query_param("a=1", "b"));
    ck_assert_ptr_null(gw__http_query_param("", "a"));
    ck_assert_ptr_null(gw__http_query_param("ab=1", "a"));
}
END_TEST

static Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("server");
    TCase *tq = tcase_create("query");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_exact_response);
    tcase_add_test(tc, test_keep_alive);
    tcase_add_test(tc, test_pipelining_in_order);
    tcase_add_test(tc, test_pipelining_split_bytes);
    tcase_add_test(tc, test_chunked_body);
    tcase_add_test(tc, test_framing_split_bytes);
    tcase_add_test(tc, test_http10_closes);
    tcase_add_test(tc, test_handler_errors);
    tcase_add_test(tc, test_server_headers);
    tcase_add_test(tc, test_malformed_400);
    tcase_add_test(tc, test_timeout_408);
    tcase_add_test(tc, test_idle_closes_silently);
    tcase_add_test(tc, test_idle_counts_from_answer);
    tcase_add_test(tc, test_body_413);
    tcase_add_test(tc, test_headers_431);
    tcase_add_test(tc, test_max_connections);
    tcase_add_test(tc, test_close_answers_503);
    tcase_add_test(tc, test_slow_reader_big_response);
    tcase_add_test(tc, test_garbage_survives);
    suite_add_tcase(s, tc);
    tcase_add_test(tq, test_query_param);
    suite_add_tcase(s, tq);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
