"""The dashboard in a real browser (SPEC §8): starts gottwall with a user
whose hash comes from `gottwall passwd` and ANONYMOUS_LOGIN = false, sends
events over HTTP, and runs tests/browser/dashboard.mjs (playwright-core
driving Debian's Chromium). Screenshots go to $GW_BUILDDIR/test-output/.
Skips (77) without chromium, node or node_modules, unless
GW_REQUIRE_SERVICES is set; always skips when GW_SKIP_BROWSER is set (the
sanitizer run).
"""

import os
import shutil
import subprocess
import sys
import time

from gwtest import (BUILDDIR, GOTTWALL, SRCDIR, Daemon, basic_header,
                    run_tests, s1_header, skip, wait_for)

USER = "ann@example.com"
PASSWORD = "browser test password"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
SCRIPT = os.path.join(SRCDIR, "tests", "browser", "dashboard.mjs")
OUT = os.path.join(BUILDDIR, "test-output", "browser")


def run_script(script, out, **env):
    """Runs a browser test script with node, env added to ours (GW_OUT is
    out, CHROMIUM ours); prints what it said and fails when it failed."""
    r = subprocess.run([NODE, script], env=dict(os.environ, GW_OUT=out, CHROMIUM=CHROMIUM, **env),
                       timeout=240, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(r.stdout)
    assert r.returncode == 0, "%s failed (screenshots in %s)" % (os.path.basename(script), out)


def browser_main(tests):
    """Runs tests, or skips (exit 77) without Chromium, node or playwright-core."""
    if os.environ.get("GW_SKIP_BROWSER"):
        print("SKIP: GW_SKIP_BROWSER is set")
        sys.exit(77)
    if not os.access(CHROMIUM, os.X_OK):
        skip("chromium not found at %s (apt-get install chromium)" % CHROMIUM)
    if NODE is None:
        skip("node not found (apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(SRCDIR, "node_modules", "playwright-core")):
        skip("node_modules/playwright-core missing (run npm ci in %s)" % SRCDIR)
    run_tests(tests)


def send(d, action, events, prefix=""):
    pub, priv = d.projects["test_project"]
    status, _, body = d.request(
        "POST", "%s/api/v1/test_project/%s" % (prefix, action), body=events,
        headers={"Content-Type": "application/json",
                 "X-GottWall-Auth": s1_header(pub, priv)},
        port=d.port("http"))
    assert (status, body) == (200, b"OK"), (status, body)


def run_dashboard(prefix, out):
    hash_ = subprocess.run([GOTTWALL, "passwd"], input=PASSWORD + "\n", text=True,
                           capture_output=True, timeout=60, check=True).stdout.strip()
    with Daemon(extra={"ANONYMOUS_LOGIN": False, "PREFIX": prefix,
                       "USERS": [{"email": USER, "password": hash_}]}) as d:
        now = int(time.time())
        day, hour = 86400, 3600
        events = []
        # 30 days of orders, a shape worth looking at; this hour too.
        for i in range(30):
            for j, status in enumerate(("paid", "new", "refunded")):
                v = (i * 7 + j * 5) % 11 + (3 - j) * 2
                events.append({"n": "orders", "ts": now - i * day - j * 60, "v": v,
                               "f": {"status": status}})
        for i in range(30):
            events.append({"n": "orders", "ts": now - i * hour, "v": i % 4 + 1,
                           "f": {"status": "paid"}})
        send(d, "incr", events, prefix)
        # An average with an event every other minute of the last 20: the
        # minutes between are gaps (null), not zeros.
        minute = now - now % 60
        send(d, "avg", [{"n": "response_ms", "ts": minute - k * 60 + 5, "v": 30 + k}
                        for k in range(1, 21, 2)], prefix)
        send(d, "avg", [{"n": "latency_ms", "ts": now - i * day, "v": 20 + i % 9}
                        for i in range(30)], prefix)
        # A timing: 100 latencies today, 1..100 ms, so p50 and p95 differ.
        # Split by route (odd values /a, even /b) for the table's stats.
        send(d, "timing", [{"n": "api_ms", "ts": now, "v": v,
                            "f": {"route": "/a" if v % 2 else "/b"}} for v in range(1, 101)],
             prefix)
        wait_for(lambda: d.get_json(
            prefix + "/api/v1/test_project/metrics",
            headers={"Authorization": basic_header("my_public_key", "secret_key")}
        ).keys() >= {"latency_ms", "api_ms", "response_ms"},
            what="events stored")
        run_script(SCRIPT, out, GW_URL="http://127.0.0.1:%d%s/" % (d.server_port, prefix),
                   GW_USER=USER, GW_PASSWORD=PASSWORD, GW_PROJECT="test_project",
                   GW_INGEST="http://127.0.0.1:%d%s/api/v1/test_project/incr"
                   % (d.port("http"), prefix),
                   GW_BASIC="my_public_key:secret_key", GW_MINUTE=str(minute))


def test_dashboard_in_chromium():
    run_dashboard("", OUT)


def test_dashboard_under_prefix():
    """The same under PREFIX = "/gw": every URL of the UI is relative."""
    run_dashboard("/gw", OUT + "-prefix")


def main():
    browser_main([test_dashboard_in_chromium, test_dashboard_under_prefix])

if __name__ == "__main__":
    main()
