"""S3/S4 replays across restarts and across processes (issue 16, item 6),
against the real daemon over loopback, on memory (with its snapshot), a
real redis-server and a real PostgreSQL.

- restart: a request accepted once, and refused as a replay, is still
  refused after a clean restart: HTTP 403 with the exact message, a TCP
  stream FAIL, a UDP datagram dropped, each counted once as
  gottwall_auth_failures_total{reason="replay"}; the read API counts the
  event once.
- two aggregators on one Redis (and one PostgreSQL) refuse each other's
  replays, and a server process refuses a header an aggregator already
  used (S3 across roles: refused once both share a storage).
- Redis down: a replay this process saw is still refused at once; the
  log says once that protection is per process, and once that the cache
  answers again when Redis is back.
"""

import json
import socket
import sys
import time

from gwtest import (Daemon, basic_header, run_tests, s3_header, s4_header,
                    wait_for)
from services import PostgresServer, RedisServer, plugin_built, skip

PROJECT, PRIV = "test_project", "secret_key"
INGEST = "/api/v1/test_project/incr"
LOCAL_REPLAY = ("authentication failed: %s nonce was already used (a "
                "replayed request? use a new random nonce per request)")
SHARED_REPLAY = ("authentication failed: the nonce was already used (a "
                 "replayed request? use a new random nonce per request)")
BACKENDS = {"http": {}, "tcpip": {}, "udp": {}}


def post(d, hdr, body):
    st, _, data = d.request("POST", INGEST, body=body,
                            headers={"X-GottWall-Auth": hdr},
                            port=d.port("http"))
    return st, data


def tcp(d, hdr):
    with socket.create_connection(("127.0.0.1", d.port("tcpip")),
                                  timeout=10) as s:
        s.sendall(hdr.encode() + b"--stream-auth--")
        got = b""
        while got not in (b"OK", b"FAIL"):
            b = s.recv(4 - len(got))
            if not b:
                break
            got += b
        if got == b"OK":
            s.sendall(b'{"n": "tcp_events"}--chunk--')
        return got


def udp(d, payload, hdr):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(hdr.encode() + b"--chunk-auth--" + payload,
                 ("127.0.0.1", d.port("udp")))


def replays(d):
    return {t: d.metric("gottwall_auth_failures_total", transport=t,
                        reason="replay") for t in ("http", "tcpip", "udp")}


def restart_case(storage, settings):
    """A request, its replay, a restart, the replay again: every transport,
    S3 and S4."""
    d = Daemon(backends=BACKENDS, storage=storage, storage_settings=settings)
    try:
        d.start()
        body = json.dumps({"n": "orders", "v": 1})
        h3 = s3_header(PROJECT, PRIV, body)
        h4 = s4_header(PROJECT, PRIV, body, "POST " + INGEST)
        ht = s4_header(PROJECT, PRIV, b"", "tcp")
        dgram = b'{"n": "udp_events"}'
        hu = s4_header(PROJECT, PRIV, dgram, "udp")
        assert post(d, h3, body) == (200, b"OK")
        assert post(d, h4, body) == (200, b"OK")
        assert tcp(d, ht) == b"OK"
        udp(d, dgram, hu)
        wait_for(lambda: d.total(PROJECT, "udp_events") == 1,
                 what="the udp event stored")
        # Seen by this process: refused at once.
        st, data = post(d, h3, body)
        assert (st, json.loads(data)) == (403, {"error": LOCAL_REPLAY
                                                % "GottWallS3"}), (st, data)
        wait_for(lambda: d.total(PROJECT, "orders") == 2,
                 what="two orders stored")
        wait_for(lambda: d.total(PROJECT, "tcp_events") == 1,
                 what="the tcp event stored")
        assert d.stop() == 0
        assert "refuses only the S3/S4 replays" not in d.log(), d.log()

        d.start()
        for h in (h3, h4):
            st, data = post(d, h, body)
            assert (st, json.loads(data)) == (403, {"error": SHARED_REPLAY}), \
                (storage, st, data)
        assert tcp(d, ht) == b"FAIL"
        udp(d, dgram, hu)
        wait_for(lambda: replays(d) == {"http": 2, "tcpip": 1, "udp": 1},
                 what="the replays after the restart counted: %r"
                 % (replays(d),))
        # Nothing of them was counted in.
        time.sleep(0.3)
        assert d.total(PROJECT, "orders") == 2
        assert d.total(PROJECT, "tcp_events") == 1
        assert d.total(PROJECT, "udp_events") == 1
        # A fresh header still works.
        assert post(d, s4_header(PROJECT, PRIV, body, "POST " + INGEST),
                    body) == (200, b"OK")
        wait_for(lambda: d.total(PROJECT, "orders") == 3, what="3 orders")
        assert d.stop() == 0
    finally:
        if d.alive():
            sys.stderr.write(d.log()[-4000:])
        d.cleanup()


def shared_case(storage, settings):
    """Two processes on one storage refuse each other's replays."""
    a = Daemon(backends=BACKENDS, storage=storage, storage_settings=settings,
               extra={"ANONYMOUS_LOGIN": False})
    b = Daemon(backends=BACKENDS, storage=storage, storage_settings=settings,
               extra={"ANONYMOUS_LOGIN": False})
    try:
        a.start()
        b.start()
        body = json.dumps({"n": "shared", "v": 1})
        for h in (s3_header(PROJECT, PRIV, body),
                  s4_header(PROJECT, PRIV, body, "POST " + INGEST)):
            assert post(a, h, body) == (200, b"OK")
            st, data = post(b, h, body)
            assert (st, json.loads(data)) == (403, {"error": SHARED_REPLAY}), \
                (storage, st, data)
        ht = s4_header(PROJECT, PRIV, b"", "tcp")
        assert tcp(b, ht) == b"OK"
        assert tcp(a, ht) == b"FAIL"
        # S3 across roles: a header a's stream used is spent for b's read
        # API too, once both share the storage.
        hx = s3_header(PROJECT, PRIV, b"")
        assert tcp(a, hx) == b"OK"
        st, _, data = b.request("GET", "/api/v1/test_project/metrics",
                                headers={"X-GottWall-Auth": hx})
        assert (st, json.loads(data)) == (401, {"error": SHARED_REPLAY}), \
            (st, data)
        assert b.metric("gottwall_auth_failures_total", transport="server",
                        reason="replay") == 1
        assert b.metric("gottwall_auth_failures_total", transport="http",
                        reason="replay") == 2
        assert a.metric("gottwall_auth_failures_total", transport="tcpip",
                        reason="replay") == 1
        # A fresh one on the read API: 200.
        st, _, data = b.request(
            "GET", "/api/v1/test_project/metrics",
            headers={"X-GottWall-Auth": s3_header(PROJECT, PRIV, b"")})
        assert st == 200, (st, data)
        basic = {"Authorization": basic_header("my_public_key", PRIV)}

        def total():
            r = b.get_json("/api/v1/test_project/stats?name=shared&period=all",
                           headers=basic)
            return r["range"][0][1] if r["range"] else 0
        wait_for(lambda: total() == 2, timeout=15,
                 what="both accepted events stored, once")
        assert a.stop() == 0
        assert b.stop() == 0
    finally:
        a.cleanup()
        b.cleanup()


def redis_down_case():
    with RedisServer() as r:
        d = Daemon(backends=BACKENDS, storage="redis",
                   storage_settings=r.settings())
        try:
            d.start()
            body = json.dumps({"n": "down", "v": 1})
            assert post(d, s3_header(PROJECT, PRIV, body), body) == \
                (200, b"OK")
            r.stop(kill=True)
            h = s4_header(PROJECT, PRIV, body, "POST " + INGEST)
            assert post(d, h, body) == (200, b"OK")
            st, data = post(d, h, body)
            assert (st, json.loads(data)) == (403, {"error": LOCAL_REPLAY
                                                    % "GottWallS4"}), \
                (st, data)
            ht = s4_header(PROJECT, PRIV, b"", "tcp")
            assert tcp(d, ht) == b"OK"
            assert tcp(d, ht) == b"FAIL"
            log = d.log()
            warn = ('warning the shared replay cache (storage "redis") does '
                    'not answer: ')
            assert log.count(warn) == 1, log[-3000:]
            assert ("until it does, each process refuses only the S3/S4 "
                    "replays it saw itself") in log
            r.start()
            wait_for(lambda: post(d, s3_header(PROJECT, PRIV, body),
                                  body) == (200, b"OK")
                     and "answers again" in d.log(),
                     timeout=30, step=0.5, what="redis answers again")
            assert d.log().count('notice the shared replay cache (storage '
                                 '"redis") answers again: S3/S4 replays are '
                                 'refused across processes and restarts '
                                 'again') == 1
            assert d.stop() == 0
        finally:
            d.cleanup()


def test_restart_memory():
    restart_case("memory", {})


def test_restart_redis():
    with RedisServer() as r:
        restart_case("redis", r.settings())


def test_restart_postgres():
    with PostgresServer() as pg:
        restart_case("postgres", pg.settings())


def test_shared_redis():
    with RedisServer() as r:
        shared_case("redis", r.settings())


def test_shared_postgres():
    with PostgresServer() as pg:
        shared_case("postgres", pg.settings())


def test_redis_down():
    redis_down_case()


def main():
    if not plugin_built("redis") or not plugin_built("postgres"):
        skip("the redis and postgres storages are not built")
    run_tests([test_restart_memory, test_restart_redis,
               test_restart_postgres, test_shared_redis,
               test_shared_postgres, test_redis_down])


if __name__ == "__main__":
    main()
