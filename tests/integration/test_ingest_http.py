"""HTTP ingestion against the real daemon (SPEC §4, §5 http).

Every status code the transport answers, in the original's order of checks;
S1 (the SPEC §4 vectors, live), S2 as the original Go client sends it,
Basic in both key orders, S3 (accepted, replayed, tampered, stale); batches (all or nothing); actions from the URL;
PREFIX; keep-alive. Counts are read back through the read API and must be
exact: nothing from a refused request is stored.
"""

import http.client
import json
import socket
import sys
import time

from gwtest import (Daemon, basic_header, finish, run_tests, s1_header,
                    s3_header, sign_legacy, wait_for)

PUB, PRIV = "my_public_key", "secret_key"   # test_project (legacy SECRET_KEY)
SPUB, SPRIV = "shop_public", "shop_private"  # shop (own private key)

D = None


def post(path, body, headers=None, port=None, method="POST"):
    """One request on a fresh connection; (status, headers, body)."""
    return D.request(method, path, body=body, headers=headers or {},
                     port=port or D.port("http"))


def err(data):
    return json.loads(data)["error"]


def settle(project, name, want, **params):
    """Waits for the flush, then asserts the exact all-time total."""
    wait_for(lambda: D.total(project, name, **params) == want, timeout=5,
             what="%s/%s == %r" % (project, name, want))
    time.sleep(0.25)  # one more flush: nothing else may arrive
    got = D.total(project, name, **params)
    assert got == want, "%s/%s: %r, want %r" % (project, name, got, want)


def s1(project="test_project"):
    pub, priv = D.projects[project]
    return {"X-GottWall-Auth": s1_header(pub, priv)}


def test_spec_vectors():
    # The independent signer reproduces SPEC §4's vectors...
    assert sign_legacy("public_key", "private_key", 1392454739) == \
        "5134790630290ed958e5413d526d1915"
    assert sign_legacy("public_key", "secret_key", 1392454739) == \
        "c3a5ea8f5ea4ea39c4be918fce4e6b41"
    # ...whose 2014 timestamp is far outside AUTH_MAX_SKEW: refused.
    st, _, data = post("/api/v1/test_project/incr", {"n": "vec"},
                       {"X-GottWall-Auth": "GottWallS1 1392454739 %s 1000"
                        % sign_legacy(PUB, PRIV, 1392454739)})
    assert st == 403, (st, data)
    assert "AUTH_MAX_SKEW" in err(data), data
    # The same scheme with the current time is accepted, floor or rounded.
    now = int(time.time())
    for ts in (now, now - 1):
        st, hdrs, data = post("/api/v1/test_project/incr", {"n": "vec"},
                              {"X-GottWall-Auth": s1_header(PUB, PRIV, ts=ts)})
        assert (st, data) == (200, b"OK"), (st, data)
        assert hdrs["content-type"] == "text/plain"
        assert hdrs["content-length"] == "2"
        assert hdrs["server"] == "GottWall/0.1.0"
    rounded = ((now + 500) // 1000) * 1000
    import hashlib
    import hmac
    sign = hmac.new(PRIV.encode(), (PUB + str(rounded)).encode(),
                    hashlib.md5).hexdigest()
    st, _, data = post("/api/v1/test_project/incr", {"n": "vec"},
                       {"X-GottWall-Auth": "GottWallS1 %d %s 1000" % (now, sign)})
    assert (st, data) == (200, b"OK"), (st, data)
    # The optional project token must match the URL.
    st, _, data = post("/api/v1/test_project/incr", {"n": "vec"},
                       {"X-GottWall-Auth": s1_header(PUB, PRIV, project="test_project")})
    assert (st, data) == (200, b"OK"), (st, data)
    st, _, data = post("/api/v1/test_project/incr", {"n": "vec"},
                       {"X-GottWall-Auth": s1_header(PUB, PRIV, project="shop")})
    assert st == 403 and "does not match" in err(data), (st, data)
    settle("test_project", "vec", 4)


def test_status_codes():
    good = s1()
    cases = [
        # unknown project first, even without auth
        ("POST", "/api/v1/nope/incr", {}, 404, 'unknown project "nope"'),
        # then unknown action
        ("POST", "/api/v1/test_project/multiply", good, 404,
         'unknown action "multiply": use incr, decr, avg, gauge, timing or set'),
        ("POST", "/api/v1/test_project/", good, 404, None),
        # then auth
        ("POST", "/api/v1/test_project/incr", {}, 403,
         "missing X-GottWall-Auth or Authorization header"),
        ("POST", "/api/v1/test_project/incr",
         {"X-GottWall-Auth": "GottWallS1 x y z"}, 403,
         "authentication failed: malformed GottWallS1 header: ts must be "
         "integer epoch seconds"),
        ("POST", "/api/v1/test_project/incr", s1("shop"), 403,
         "authentication failed: GottWallS1 signature does not match "
         "project \"test_project\"'s keys"),
        ("POST", "/api/v1/test_project/incr",
         {"X-GottWall-Auth": "GottWallS2 %d %s 1000 test_project"
          % (time.time(), "0" * 32)},
         403, "authentication failed: GottWallS2 signature does not match "
         "project \"test_project\"'s keys"),
        # X-GottWall-Auth decides alone: a good Basic does not rescue it
        ("POST", "/api/v1/test_project/incr",
         {"X-GottWall-Auth": "bogus", "Authorization": basic_header(PUB, PRIV)},
         403, None),
        # other methods and paths
        ("GET", "/api/v1/test_project/incr", good, 405,
         "method not allowed: send events with POST"),
        ("PUT", "/api/v1/test_project/incr", good, 405, None),
        ("POST", "/api/v2/test_project/incr", good, 404, None),
        ("POST", "/", good, 404, None),
    ]
    for method, path, headers, want, msg in cases:
        st, hdrs, data = post(path, json.dumps({"n": "never"}), headers,
                              method=method)
        assert st == want, (method, path, st, data)
        assert hdrs["content-type"] == "application/json", hdrs
        if msg is not None:
            assert err(data) == msg, (path, data)
        if want == 405:
            assert hdrs["allow"] == "POST", hdrs
    # bad bodies: 400 with what to fix
    for body in ("{not json", "", '{"v": 1}', '{"n": "x", "v": "a"}',
                 '{"n": "never", "p": "shop"}', "[" * 100):
        st, _, data = post("/api/v1/test_project/incr", body, s1())
        assert st == 400, (body, st, data)
        assert err(data), data
    st, _, data = post("/api/v1/test_project/incr", "{oops", s1())
    assert st == 400 and err(data), data
    # nothing of the above was stored
    time.sleep(0.3)
    assert D.total("test_project", "never") == 0
    assert D.get_json("/api/v1/test_project/metrics").get("never") is None


def test_413():
    body = json.dumps({"n": "big", "f": {"pad": "x" * 2000}})
    st, hdrs, data = post("/api/v1/test_project/incr", body, s1(),
                          port=D.port("small"))
    assert st == 413, (st, data)
    assert err(data) == "request body is larger than the limit of 1000 bytes"
    assert hdrs.get("connection") == "close"
    # a body within the limit on the same listener passes
    st, _, data = post("/api/v1/test_project/incr", {"n": "big"}, s1(),
                       port=D.port("small"))
    assert (st, data) == (200, b"OK"), (st, data)
    settle("test_project", "big", 1)


def test_basic_both_orders():
    for h in (basic_header(SPUB, SPRIV), basic_header(SPRIV, SPUB)):
        st, _, data = post("/api/v1/shop/incr", {"n": "basic"},
                           {"Authorization": h})
        assert (st, data) == (200, b"OK"), (st, data)
    for h in (basic_header(SPUB, SPUB), basic_header(SPUB, "wrong"),
              basic_header(PUB, PRIV), "Basic !!!", "Bearer x"):
        st, _, data = post("/api/v1/shop/incr", {"n": "basic"},
                           {"Authorization": h})
        assert st == 403, (h, st, data)
        assert SPRIV not in err(data)
    settle("shop", "basic", 2)


def test_s3():
    body = json.dumps({"n": "s3", "v": 5})
    h = s3_header("shop", SPRIV, body, nonce="nonce-abcdef-1")
    st, _, data = post("/api/v1/shop/incr", body, {"X-GottWall-Auth": h})
    assert (st, data) == (200, b"OK"), (st, data)
    # replayed: the same request again
    st, _, data = post("/api/v1/shop/incr", body, {"X-GottWall-Auth": h})
    assert st == 403, (st, data)
    assert err(data) == ("authentication failed: GottWallS3 nonce was already "
                         "used (a replayed request? use a new random nonce "
                         "per request)")
    # tampered body
    h = s3_header("shop", SPRIV, body)
    st, _, data = post("/api/v1/shop/incr", body.replace("5", "50"),
                       {"X-GottWall-Auth": h})
    assert st == 403 and "does not match" in err(data), (st, data)
    # stale ts (outside AUTH_S3_WINDOW, 300 s)
    h = s3_header("shop", SPRIV, body, ts=int(time.time()) - 400)
    st, _, data = post("/api/v1/shop/incr", body, {"X-GottWall-Auth": h})
    assert st == 403 and "AUTH_S3_WINDOW" in err(data), (st, data)
    # without the project token (the URL names it)
    h = s3_header("shop", SPRIV, body, with_project=False)
    st, _, data = post("/api/v1/shop/incr", body, {"X-GottWall-Auth": h})
    assert (st, data) == (200, b"OK"), (st, data)
    # signed for another project
    h = s3_header("test_project", PRIV, body)
    st, _, data = post("/api/v1/shop/incr", body, {"X-GottWall-Auth": h})
    assert st == 403, (st, data)
    settle("shop", "s3", 10)


def test_batch_and_actions():
    events = [{"n": "batch", "v": 2}, {"n": "batch", "f": {"k": "a"}},
              {"n": "batch", "v": 3, "f": {"k": ["a", "b"]}}]
    st, _, data = post("/api/v1/test_project/incr", events, s1())
    assert (st, data) == (200, b"OK"), (st, data)
    # one bad event refuses the whole batch
    st, _, data = post("/api/v1/test_project/incr",
                       [{"n": "batch"}, {"n": "batch", "v": "NaN"}], s1())
    assert st == 400, (st, data)
    st, _, data = post("/api/v1/test_project/decr", {"n": "batch", "v": 1},
                       s1())
    assert (st, data) == (200, b"OK"), (st, data)
    for v in (10, 20, 60):
        st, _, data = post("/api/v1/test_project/avg", {"n": "latency", "v": v},
                           s1())
        assert (st, data) == (200, b"OK"), (st, data)
    now = int(time.time())
    for ts, v in ((now, 7), (now - 10, 99)):
        st, _, data = post("/api/v1/test_project/gauge",
                           {"n": "temp", "v": v, "ts": ts}, s1())
        assert (st, data) == (200, b"OK"), (st, data)
    settle("test_project", "batch", 5)
    settle("test_project", "batch", 4, filter_name="k", filter_value="a")
    settle("test_project", "batch", 3, filter_name="k", filter_value="b")
    settle("test_project", "latency", 30)
    settle("test_project", "temp", 7)


def test_keep_alive_and_pipelining():
    c = http.client.HTTPConnection("127.0.0.1", D.port("http"), timeout=10)
    for i in range(20):
        c.request("POST", "/api/v1/test_project/incr",
                  body=json.dumps({"n": "ka"}),
                  headers=s1())
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"OK")
    c.close()
    # 10 pipelined requests in one write, one of them bad: answers in order
    s = socket.create_connection(("127.0.0.1", D.port("http")), timeout=10)
    reqs = b""
    for i in range(10):
        body = b'{"n": "pipe"}' if i != 4 else b"{bad"
        reqs += (b"POST /api/v1/test_project/incr HTTP/1.1\r\nHost: x\r\n"
                 b"X-GottWall-Auth: " + s1()["X-GottWall-Auth"].encode() +
                 b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    s.sendall(reqs)
    f = s.makefile("rb")
    statuses = []
    for i in range(10):
        line = f.readline()
        statuses.append(int(line.split()[1]))
        length = 0
        while True:
            h = f.readline()
            if h == b"\r\n":
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        f.read(length)
    s.close()
    assert statuses == [200] * 4 + [400] + [200] * 5, statuses
    settle("test_project", "ka", 20)
    settle("test_project", "pipe", 9)


def test_prefix():
    d = Daemon(backends={"http": {}}, extra={"PREFIX": "/gottwall"})
    with d:
        pub, priv = d.projects["test_project"]
        h = {"X-GottWall-Auth": s1_header(pub, priv)}
        st, _, data = d.request("POST", "/gottwall/api/v1/test_project/incr",
                                body={"n": "pre"}, headers=h, port=d.port("http"))
        assert (st, data) == (200, b"OK"), (st, data)
        st, _, data = d.request("POST", "/api/v1/test_project/incr",
                                body={"n": "pre"}, headers=h, port=d.port("http"))
        assert st == 404, (st, data)
        wait_for(lambda: d.get_json("/gottwall/api/v1/test_project/stats"
                                    "?name=pre&period=all")["range"][0][1] == 1,
                 timeout=5, what="prefixed total")


def test_s2_over_http_go_client():
    """The original Go client (stati-go-net) signs HTTP requests with the
    S2 form, `GottWallS2 {ts} {sign} {base} {project}`, and sends "f":
    null: counted exactly as S1. The project token must be the URL's."""
    ts = int(time.time())
    hdr = "GottWallS2 %d %s 1000 test_project" % (ts, sign_legacy(PUB, PRIV, ts))
    body = '{"name":"go_orders","value":1,"timestamp":%d,"filters":null}' % ts
    for _ in range(10):
        st, _, data = post("/api/v1/test_project/incr", body,
                           {"X-GottWall-Auth": hdr, "Content-Type": "application/json"})
        assert (st, data) == (200, b"OK"), (st, data)
    settle("test_project", "go_orders", 10)
    # Signed for test_project, sent to shop's URL: refused, nothing stored.
    st, _, data = post("/api/v1/shop/incr", '{"n": "go_orders"}',
                       {"X-GottWall-Auth": hdr})
    assert st == 403, (st, data)
    assert err(data).startswith("authentication failed: "), data
    settle("shop", "go_orders", 0)
    # The read API takes it as it takes S1.
    st, _, data = D.request("GET", "/api/v1/test_project/metrics",
                            headers={"X-GottWall-Auth": hdr})
    assert st == 200 and "go_orders" in json.loads(data), (st, data)


def main():
    global D
    D = Daemon(backends={"http": {}, "small": {"PLUGIN": "http", "MAX_BODY": 1000}})
    D.start()
    code = 1
    try:
        run_tests([test_spec_vectors, test_status_codes, test_413,
                   test_basic_both_orders, test_s3, test_batch_and_actions,
                   test_keep_alive_and_pipelining, test_prefix,
                   test_s2_over_http_go_client])
    except SystemExit as e:
        code = e.code
    finally:
        code = finish(D, code)
    sys.exit(code)


if __name__ == "__main__":
    main()
