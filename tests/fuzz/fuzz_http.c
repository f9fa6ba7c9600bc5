/*
 * tests/fuzz/fuzz_http.c: a libFuzzer target for the core's HTTP/1.1
 * server (net/http.c): request heads, bodies (Content-Length and
 * chunked), pipelining, limits and the close paths, over a real loopback
 * connection driven by the same libev loop.
 *
 * Each input is sent as the bytes of one connection, then the client
 * half-closes and reads until the server closes (or a bounded number of
 * loop turns pass). The handler reads every accessor (method, path,
 * query, two headers, body) and answers 200 with the body length; one
 * request in four whose path holds "hold" is answered on a later turn.
 * Invariants: whatever the server sends starts with "HTTP/1.1 "; ASan and
 * UBSan do the rest. Limits are small (2 KiB head, 16 headers, 4 KiB
 * body) so the fuzzer reaches them.
 *
 * Fuzz:   make fuzz; Replay: tests/fuzz/replay_http (make check).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "net/http.h"

#include "fuzz_check.h"

static struct ev_loop *loop;
static gw_http_server_t *srv;
static int port;
static gw_http_req_t *held[8];
static size_t nheld;

static void
answer(gw_http_req_t *req)
{
    size_t blen = 0;
    char out[64];
    int n;

    (void) gw__http_method(req);
    (void) gw__http_path(req);
    (void) gw__http_query(req);
    (void) gw__http_header(req, "Content-Type");
    (void) gw__http_header(req, "X-GottWall-Auth");
    (void) gw__http_body(req, &blen);
    n = snprintf(out, sizeof(out), "%zu", blen);
    gw__http_respond(req, 200, "text/plain", NULL, out, (size_t) n);
}

static void
handler(void *arg, gw_http_req_t *req)
{
    static unsigned calls;
    const char *path = gw__http_path(req);

    (void) arg;
    FZ_CHECK(path != NULL);
    if (strstr(path, "hold") != NULL && (++calls % 4) == 0 &&
        nheld < sizeof(held) / sizeof(held[0])) {
        held[nheld++] = req;
        return;
    }
    answer(req);
}

static void
setup(void)
{
    gw_http_listen_t lo;
    gw__http_limits_t lim;
    gw_error_t err;

    loop = ev_loop_new(EVFLAG_AUTO);
    memset(&lo, 0, sizeof(lo));
    lo.host = "127.0.0.1";
    lo.port = 0;
    lo.max_body = 4096;
    memset(&lim, 0, sizeof(lim));
    lim.max_body = 4096;
    lim.max_header_bytes = 2048;
    lim.max_headers = 16;
    lim.header_timeout = 5;
    lim.idle_timeout = 5;
    lim.max_connections = 64;
    FZ_CHECK(gw__http_listen(loop, "fuzz", &lo, &lim, handler, NULL, &srv,
                          &err) == GW_OK);
    port = gw__http_port(srv);
    FZ_CHECK(port > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in sa;
    char buf[65536];
    size_t sent = 0, got = 0;
    int fd, turns, closed = 0;
    char first[16];

    if (loop == NULL)
        setup();
    if (size > 32768)
        return 0;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FZ_CHECK(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
        FZ_CHECK(errno == EINPROGRESS);
    for (turns = 0; turns < 400 && !closed; turns++) {
        ssize_t n;

        if (sent < size) {
            n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t) n;
            else if (n < 0 && errno != EAGAIN && errno != ENOTCONN)
                sent = size; /* the server closed: stop sending */
            if (sent == size)
                shutdown(fd, SHUT_WR);
        }
        ev_run(loop, EVRUN_NOWAIT);
        if (nheld > 0 && turns % 3 == 2)
            answer(held[--nheld]);
        for (;;) {
            n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0) {
                if (got < 9) {
                    size_t k = (size_t) n;

                    if (k > 9 - got)
                        k = 9 - got;
                    memcpy(first + got, buf, k);
                }
                got += (size_t) n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                closed = 1;
            break;
        }
        if (!closed && turns > 20)
            usleep(50);
    }
    if (got >= 9)
        FZ_CHECK(memcmp(first, "HTTP/1.1 ", 9) == 0);
    close(fd);
    while (nheld > 0)
        answer(held[--nheld]);
    for (turns = 0; turns < 5; turns++)
        ev_run(loop, EVRUN_NOWAIT);
    return 0;
}
