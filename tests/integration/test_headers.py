"""Security headers of the server role (issue 16, item 15), on the wire of
the real gottwall binary.

- Every answer of the server role (pages, JSON, errors of the routes and of
  the HTTP layer itself, redirects, assets, /health, /metrics, embedded
  charts, 421) carries exactly one `X-Content-Type-Options: nosniff`.
- The dashboard and login pages carry a Content-Security-Policy without
  inline script or style and with `frame-ancestors 'none'`, and
  `X-Frame-Options: DENY`: no other site may frame them (clickjacking).
- The embedded chart pages, made to be framed by other sites, carry the
  same policy without `frame-ancestors`, and no X-Frame-Options.
- The pages' templates hold no inline script, style or event handler, so
  the policy does not break them (tests/browser/test_dashboard.py runs the
  dashboard itself under it).

Headers are read as they are on the wire (gwtest.raw_http), so a header
sent twice is seen twice.
"""

import base64
import glob
import json
import os
import re
import subprocess
import urllib.parse

from gwtest import GOTTWALL, SRCDIR, Daemon, raw_http, run_tests

USER = "ann@example.com"
PASSWORD = "header test password"
CSP_BASE = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'self'")
CSP_PAGE = CSP_BASE + "; frame-ancestors 'none'"
CSP_EMBED = CSP_BASE
BASIC = "Basic " + base64.b64encode(b"my_public_key:secret_key").decode()


def req(port, method, path, headers=(), body=b""):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (
        method, path, port)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    return raw_http(port, head.encode() + b"\r\n" + body)


def values(hdrs, name):
    return [v for k, v in hdrs if k.lower() == name.lower()]


def check(what, answer, status, csp=None, frame=None, referrer=None):
    """The exact security headers of one answer."""
    got_status, hdrs, _ = answer
    got = (got_status, values(hdrs, "X-Content-Type-Options"),
           values(hdrs, "Content-Security-Policy"), values(hdrs, "X-Frame-Options"),
           values(hdrs, "Referrer-Policy"))
    want = (status, ["nosniff"], [csp] if csp else [], [frame] if frame else [],
            [referrer] if referrer else [])
    assert got == want, "%s:\n  got      %r\n  expected %r\n  headers  %r" % (
        what, got, want, hdrs)
    return answer


def password_hash(pw):
    return subprocess.run([GOTTWALL, "passwd"], input=pw + "\n", capture_output=True,
                          text=True, timeout=60, check=True).stdout.strip()


def test_headers_of_every_answer():
    with Daemon(extra={"ANONYMOUS_LOGIN": False,
                       "USERS": [{"email": USER, "password": password_hash(PASSWORD)}]}) as d:
        p = d.server_port
        page = dict(csp=CSP_PAGE, frame="DENY", referrer="same-origin")
        # Pages and redirects, logged out and in.
        check("login page", req(p, "GET", "/login"), 200, **page)
        check("HEAD login page", req(p, "HEAD", "/login"), 200, **page)
        check("dashboard redirect", req(p, "GET", "/"), 302)
        form = urllib.parse.urlencode({"email": USER, "password": "wrong"}).encode()
        ctype = [("Content-Type", "application/x-www-form-urlencoded")]
        check("failed login", req(p, "POST", "/login", ctype, form), 401, **page)
        form = urllib.parse.urlencode({"email": USER, "password": PASSWORD}).encode()
        st, hdrs, _ = check("login redirect", req(p, "POST", "/login", ctype, form), 302)
        cookie = [("Cookie", values(hdrs, "Set-Cookie")[0].split(";")[0])]
        check("dashboard", req(p, "GET", "/", cookie), 200, **page)
        check("dashboard", req(p, "GET", "/dashboard", cookie), 200, **page)
        # JSON and JSON errors.
        check("projects", req(p, "GET", "/api/v1/projects", cookie), 200)
        check("401", req(p, "GET", "/api/v1/projects"), 401)
        check("API 404", req(p, "GET", "/api/v1/test_project/bogus", cookie), 404)
        check("405", req(p, "DELETE", "/api/v1/projects", cookie), 405)
        check("stats 400", req(p, "GET", "/api/v1/test_project/stats", cookie), 400)
        check("CSRF 403", req(p, "PUT", "/api/v1/dashboard", cookie, b"{}"), 403)
        check("421", raw_http(p, b"GET /health HTTP/1.1\r\nHost: attacker.example\r\n"
                            b"Connection: close\r\n\r\n"), 421)
        # Not found, assets, /health, /metrics.
        check("404 page", req(p, "GET", "/nowhere"), 404, **page)
        check("API 404 outside v1", req(p, "GET", "/api/v2/projects"), 404)
        for name in ("app.js", "chart.js", "style.css", "uPlot.iife.min.js",
                     "uPlot.min.css", "favicon.svg"):
            check(name, req(p, "GET", "/static/" + name), 200)
        check("missing asset", req(p, "GET", "/static/none.js"), 404)
        check("/health", req(p, "GET", "/health"), 200)
        check("/metrics", req(p, "GET", "/metrics"), 200)
        # The HTTP layer's own answers on the server port.
        check("505", raw_http(p, b"GET / HTTP/9.9\r\n\r\n"), 505)
        check("400", raw_http(p, b"\x00\x01 / HTTP/1.1\r\n\r\n"), 400)
        check("431", raw_http(p, b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n"), 431)
        check("413", req(p, "PUT", "/api/v1/dashboard", [("Content-Length", "99999999")]), 413)

        # Embedded charts: framable by any site, still under the policy.
        chart = json.dumps({"name": "c", "period": "day",
                            "metrics": [{"metric_name": "orders"}]}).encode()
        st, _, body = check("embedded create", req(
            p, "POST", "/api/v1/test_project/embedded/",
            [("Authorization", BASIC), ("Content-Type", "application/json")], chart), 200)
        uid = json.loads(body)["id"]
        e = "/api/v1/embedded/" + uid
        check("embedded page", req(p, "GET", e + ".html"), 200, csp=CSP_EMBED)
        check("embedded page sized", req(p, "GET", e + ".html?width=300&height=200"), 200,
              csp=CSP_EMBED)
        check("embedded json", req(p, "GET", e + ".json"), 200)
        check("embedded js", req(p, "GET", e + ".js"), 200)
        missing = "/api/v1/embedded/00000000-0000-4000-8000-000000000000"
        check("embedded page 404", req(p, "GET", missing + ".html"), 404, csp=CSP_EMBED)
        check("embedded json 404", req(p, "GET", missing + ".json"), 404)
        check("embedded js 404", req(p, "GET", missing + ".js"), 404)


def test_anonymous_and_prefix():
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "PREFIX": "/gw"}) as d:
        p = d.server_port
        page = dict(csp=CSP_PAGE, frame="DENY", referrer="same-origin")
        check("prefix redirect", req(p, "GET", "/gw"), 302)
        check("dashboard", req(p, "GET", "/gw/"), 200, **page)
        check("login redirect", req(p, "GET", "/gw/login"), 302)
        check("outside the prefix", req(p, "GET", "/"), 404, **page)
        check("dashboard doc", req(p, "GET", "/gw/api/v1/dashboard"), 200)


def test_templates_need_no_inline_code():
    """What the policy would block is not in the pages: every <script> has
    a src (or is a JSON data block, which is never run), no <style>, no
    style="..." and no on...= handler attribute."""
    pages = sorted(glob.glob(os.path.join(SRCDIR, "web", "*.html")))
    assert len(pages) == 4, pages   # dashboard, login, embedded chart, error
    for path in pages:
        text = open(path, encoding="utf-8").read()
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"<style\b", text, re.I), path
        assert not re.search(r"\sstyle\s*=", text, re.I), path
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), path
        assert "javascript:" not in text, path


if __name__ == "__main__":
    run_tests([test_headers_of_every_answer, test_anonymous_and_prefix,
               test_templates_need_no_inline_code])
