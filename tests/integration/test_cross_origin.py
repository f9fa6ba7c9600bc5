"""Cross-site writes to the server role (issue 16, item 9, its Origin half),
against the real gottwall binary.

The review's attack: with ANONYMOUS_LOGIN = true, a page on
http://evil.example posted `Content-Type: text/plain` (a "simple" request,
sent without a CORS preflight) to /api/v1/test_project/embedded/ and created
an embedded chart. Every POST, PUT, DELETE and PATCH of the server role, in
every mode, is now refused with 403 when its Origin is not the server's own
(scheme, host and port of the request's Host), or when Sec-Fetch-Site says
cross-site (or same-site without a matching Origin); each refusal is
counted as gottwall_events_dropped_total{transport="server",
reason="cross_origin"}. A request with neither header (curl, a script with
keys) is let through, and so are reads.
"""

import http.client
import json
import re
import socket
import urllib.parse

from gwtest import Daemon, basic_header, raw_http, run_tests

COUNTER = 'gottwall_events_dropped_total{transport="server",reason="cross_origin"}'
CHART = json.dumps({"name": "c", "period": "day", "metrics": [{"metric_name": "orders"}]})


def send(d, method, path, headers, body=CHART, source="127.0.0.1"):
    """One request with exactly these headers (and Host: 127.0.0.1:port)."""
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (
        method, path, d.server_port)
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    data = body.encode()
    head += "Content-Length: %d\r\n\r\n" % len(data)
    sock = socket.create_connection(("127.0.0.1", d.server_port), timeout=10,
                                    source_address=(source, 0))
    try:
        sock.sendall(head.encode() + data)
        r = http.client.HTTPResponse(sock, method=method)
        r.begin()
        return r.status, r.read()
    finally:
        sock.close()


def refused(d):
    text = raw_http(d.server_port, ("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Connection: close\r\n\r\n").encode())[2].decode()
    m = re.search("^%s (\\d+)$" % re.escape(COUNTER), text, re.M)
    return int(m.group(1)) if m else 0


def origin_error(origin, own):
    return {"error": 'cross-origin request refused: Origin "%s" is not this server\'s origin '
                     '"%s"; POST, PUT, DELETE and PATCH are accepted only from the server\'s '
                     'own pages or from clients that send no Origin (behind a TLS proxy, list '
                     'it in TRUSTED_PROXIES so that its X-Forwarded-Proto: https is believed)'
                     % (origin, own)}


def site_error(value):
    return {"error": "cross-origin request refused: Sec-Fetch-Site: %s; POST, PUT, DELETE and "
                     "PATCH are accepted only from the server's own pages or from clients that "
                     "send no Origin" % value}


def test_anonymous_embedded_chart_from_another_site():
    with Daemon(extra={"ANONYMOUS_LOGIN": True}) as d:
        own = "http://127.0.0.1:%d" % d.server_port
        path = "/api/v1/test_project/embedded/"
        before = refused(d)
        # The review's request, byte for byte what the browser sends.
        st, body = send(d, "POST", path, {"Origin": "http://evil.example",
                                          "Content-Type": "text/plain"})
        assert (st, json.loads(body)) == (403, origin_error("http://evil.example", own)), \
            (st, body)
        assert refused(d) == before + 1
        cases = [
            ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403),
            ({"Sec-Fetch-Site": "cross-site"}, 403),            # Origin stripped by a proxy
            ({"Sec-Fetch-Site": "same-site"}, 403),             # a sibling subdomain
            ({"Origin": "null"}, 403),                          # sandboxed frames, data: URLs
            ({"Origin": "http://127.0.0.1:%d.evil.example" % d.server_port}, 403),
            ({"Origin": "http://127.0.0.1"}, 403),              # another port
            ({"Origin": "http://127.0.0.1:%d/" % d.server_port}, 403),  # not an origin
            ({"Origin": "https://127.0.0.1:%d" % d.server_port}, 403),  # not over TLS
            ({"Origin": own}, 200),
            ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, 200),
            ({"Origin": own, "Sec-Fetch-Site": "same-site"}, 200),
            ({"Sec-Fetch-Site": "same-origin"}, 200),
            ({"Sec-Fetch-Site": "none"}, 200),                  # typed in the address bar
            ({}, 200),                                          # curl
        ]
        got = [send(d, "POST", path, dict(h, **{"Content-Type": "text/plain"}))[0]
               for h, _ in cases]
        assert got == [s for _, s in cases], list(zip(got, cases))
        assert refused(d) == before + 1 + sum(1 for _, s in cases if s == 403)
        st, body = send(d, "POST", path, {"Sec-Fetch-Site": "cross-site"})
        assert json.loads(body) == site_error("cross-site"), body
        # Behind a TLS proxy it trusts (loopback by default), https is ours.
        st, body = send(d, "POST", path, {"Origin": "https://127.0.0.1:%d" % d.server_port,
                                          "X-Forwarded-Proto": "https"})
        assert st == 200, body
        st, body = send(d, "POST", path, {"Origin": "https://127.0.0.1:%d" % d.server_port,
                                          "X-Forwarded-Proto": "https"}, source="127.0.0.2")
        assert st == 403 and json.loads(body) == origin_error(
            "https://127.0.0.1:%d" % d.server_port, own), body
        # Every state-changing route, not only charts; reads stay open.
        n = refused(d)
        evil = {"Origin": "http://evil.example"}
        for method, p in (("PUT", "/api/v1/dashboard"), ("POST", "/login"),
                          ("POST", "/logout"), ("DELETE", "/api/v1/dashboard"),
                          ("PATCH", "/api/v1/dashboard"), ("POST", "/nowhere")):
            st, body = send(d, method, p, evil)
            assert (st, json.loads(body)) == (403, origin_error("http://evil.example", own)), \
                (method, p, st, body)
        assert refused(d) == n + 6
        assert send(d, "GET", "/api/v1/projects", evil, body="")[0] == 200
        assert send(d, "GET", "/api/v1/test_project/metrics", evil, body="")[0] == 200
        assert refused(d) == n + 6


def test_logged_in_and_with_keys():
    """The same guard with logins: a cookie is no way around it, and keys
    sent by a browser page are refused as well."""
    with Daemon(extra={"ANONYMOUS_LOGIN": False}) as d:
        keys = {"Authorization": basic_header("my_public_key", "secret_key")}
        evil = dict(keys, Origin="http://evil.example")
        st, body = send(d, "POST", "/api/v1/test_project/embedded/", evil)
        assert st == 403, body
        st, body = send(d, "POST", "/api/v1/test_project/embedded/", keys)
        assert st == 200, body
        form = urllib.parse.urlencode({"email": "a@example.com", "password": "x"})
        st, body = send(d, "POST", "/login", {"Origin": "http://evil.example",
                                              "Content-Type": "application/x-www-form-urlencoded"},
                        body=form)
        assert st == 403 and "cross-origin request refused" in json.loads(body)["error"], body


if __name__ == "__main__":
    run_tests([test_anonymous_embedded_chart_from_another_site, test_logged_in_and_with_keys])
