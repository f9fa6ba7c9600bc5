"""DNS rebinding (issue 16, item 12), against the real gottwall binary.

A page on attacker.example whose name the attacker re-points at 127.0.0.1
reads the server role of an anonymous instance with the browser's
`Host: attacker.example`. The server role answers only the Host names of
ALLOWED_HOSTS (default: the listen address, localhost, 127.0.0.1 and [::1]),
any port, and 421 Misdirected Request with a JSON error naming
ALLOWED_HOSTS otherwise, counted in /metrics as
gottwall_events_dropped_total{transport="server",reason="host_not_allowed"}.
Each Host value below is sent over a raw loopback socket and its status is
checked exactly.
"""

import json
import re
import subprocess

from gwtest import GOTTWALL, Daemon, raw_http, run_tests, wait_for

COUNTER = 'gottwall_events_dropped_total{transport="server",reason="host_not_allowed"}'


def raw_get(port, path, host, addr="127.0.0.1"):
    """GET path with that Host line (None: no Host line at all);
    returns (status, headers list, body)."""
    head = "GET %s HTTP/1.1\r\n" % path
    if host is not None:
        head += "Host: %s\r\n" % host
    return raw_http(port, (head + "Connection: close\r\n\r\n").encode("latin-1"),
                    addr=addr)


def refused_count(d, addr="127.0.0.1"):
    text = raw_get(d.server_port, "/metrics", addr, addr=addr)[2].decode()
    m = re.search("^%s (\\d+)$" % re.escape(COUNTER), text, re.M)
    return int(m.group(1)) if m else 0


def refusal(host):
    return {"error": 'Host "%s" is not one of ALLOWED_HOSTS: this server answers '
                     "only the names it is configured for (a guard against DNS "
                     "rebinding); if clients reach it by that name, add it to "
                     "ALLOWED_HOSTS in the config" % host}


def check_hosts(d, cases, path="/api/v1/test_project/metrics", addr="127.0.0.1"):
    """cases: [(Host value, expected status)]; also checks each 421's
    JSON error and the counter."""
    before = refused_count(d, addr)
    got = []
    for host, _ in cases:
        status, hdrs, body = raw_get(d.server_port, path, host, addr=addr)
        got.append((host, status))
        if status == 421:
            assert ("Content-Type", "application/json") in hdrs, hdrs
            assert json.loads(body) == refusal(host), (host, body)
    assert got == list(cases), "\n".join(
        "%r: got %d, expected %d" % (h, g, w)
        for (h, g), (_, w) in zip(got, cases) if g != w)
    want = sum(1 for _, s in cases if s == 421)
    after = refused_count(d, addr)
    assert after == before + want, (after, before, want)


def test_default_allows_loopback_names_only():
    with Daemon(extra={"ANONYMOUS_LOGIN": True}) as d:
        p = d.server_port
        check_hosts(d, [
            (None, 200),                       # HTTP/1.0 style: no Host at all
            ("127.0.0.1", 200),
            ("127.0.0.1:%d" % p, 200),
            ("127.0.0.1:1", 200),              # any port
            ("localhost", 200),
            ("localhost:%d" % p, 200),
            ("LocalHost:%d" % p, 200),         # names are case-insensitive
            ("localhost.", 200),               # the root's trailing dot
            ("[::1]", 200),
            ("[::1]:%d" % p, 200),
            ("attacker.example", 421),         # the rebinding attack
            ("attacker.example:%d" % p, 421),
            ("localhost.attacker.example", 421),
            ("127.0.0.1.attacker.example", 421),
            ("attacker.example:80@127.0.0.1", 421),
            ("127.0.0.2", 421),
            ("0.0.0.0", 421),
            ("::1", 421),                      # IPv6 must be in brackets
            ("[::1", 421),
            ("127.0.0.1:", 421),
            ("127.0.0.1:abc", 421),
            ("127.0.0.1:80:80", 421),
            ("127.0.0.1 ", 200),               # the parser trims the value
            ("", 421),
        ])
        # Every route of the server role, not only the API.
        for path in ("/", "/login", "/health", "/metrics", "/static/app.js",
                     "/api/v1/projects", "/api/v1/embedded/x.json", "/nowhere"):
            check_hosts(d, [("attacker.example", 421), ("localhost", raw_get(
                d.server_port, path, "localhost")[0])], path=path)
        # The transports are not the server role: they check signatures.
        st, _, body = raw_get(d.port("http"), "/api/v1/test_project/incr", "attacker.example")
        assert st == 405, (st, body)


def test_configured_names():
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "ALLOWED_HOSTS": [
            "stats.example.com", ".corp.example", "2001:db8::1", "[2001:db8::2]"]}) as d:
        check_hosts(d, [
            ("stats.example.com", 200),
            ("STATS.example.com:443", 200),
            ("corp.example", 200),             # ".corp.example": it and below
            ("a.corp.example:8889", 200),
            ("b.a.corp.example", 200),
            ("xcorp.example", 421),
            ("example.com", 421),
            ("www.stats.example.com", 421),
            ("[2001:db8::1]:8889", 200),
            ("[2001:db8::2]", 200),
            ("[2001:db8::3]", 421),
            ("localhost", 200),                # the defaults stay
            ("127.0.0.1", 200),
            ("attacker.example", 421),
        ])


def test_any_host():
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "ALLOWED_HOSTS": ["*"]}) as d:
        check_hosts(d, [("attacker.example", 200), ("localhost", 200), ("", 200)])


def test_listen_address_is_allowed():
    d = Daemon(extra={"ANONYMOUS_LOGIN": True})
    d.config_text = (lambda orig: lambda: orig().replace(
        'SERVER = { HOST = "127.0.0.1";', 'SERVER = { HOST = "127.0.0.2";'))(d.config_text)
    d.write_config()
    try:
        d.start(wait=False)
        wait_for(lambda: "dashboard and read API on http://127.0.0.2:" in d.log(),
                 what="the server on 127.0.0.2")
        check_hosts(d, [("127.0.0.2", 200), ("127.0.0.2:%d" % d.server_port, 200),
                        ("localhost", 200), ("attacker.example", 421)],
                    addr="127.0.0.2")
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_bad_config():
    """Wrong ALLOWED_HOSTS entries are refused with file:line and the fix."""
    cases = [
        ("5", "ALLOWED_HOSTS must be a host name in quotes or a list of them "
         '[ "stats.example.com", ".example.org" ], not an integer'),
        ('[ "" ]', "ALLOWED_HOSTS[0] must not be empty"),
        ('( "a.example", 5 )', "ALLOWED_HOSTS[1] must be a host name in quotes, not an integer"),
        ('[ "stats.example.com:8889" ]', 'ALLOWED_HOSTS[0]: "stats.example.com:8889": give the '
         "name without a port (every port is allowed)"),
        ('[ "http://stats.example.com/" ]', 'ALLOWED_HOSTS[0]: "http://stats.example.com/" is '
         'not a host name: give only the name ("stats.example.com"), an address, ".domain" '
         'for it and its subdomains, or "*" for any'),
        ('[ "[::1" ]', 'ALLOWED_HOSTS[0]: "[::1" is not a host name: give only the name '
         '("stats.example.com"), an address, ".domain" for it and its subdomains, or "*" for any'),
    ]
    for value, msg in cases:
        d = Daemon()
        d.write_config()
        with open(d.conf_path, "a") as f:
            f.write("ALLOWED_HOSTS = %s;\n" % value)
        line = len(open(d.conf_path).read().splitlines())
        try:
            r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"], capture_output=True,
                               text=True, timeout=30)
            want = "gottwall: %s:%d: %s\n" % (d.conf_path, line, msg)
            assert (r.returncode, r.stderr) == (1, want), (value, r.returncode, r.stderr, want)
        finally:
            d.cleanup()
    # A single name in quotes is a list of one.
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "ALLOWED_HOSTS": "stats.example.com"}) as d:
        check_hosts(d, [("stats.example.com", 200), ("attacker.example", 421)])


if __name__ == "__main__":
    run_tests([test_default_allows_loopback_names_only, test_configured_names, test_any_host,
               test_listen_address_is_allowed, test_bad_config])
