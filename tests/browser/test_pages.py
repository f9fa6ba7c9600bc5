"""The smaller pages in a real browser (issue 17, part 5): the login page
with and without USERS, the notice after a logout, the styled 404 pages,
and embedded charts sized by their frame. Starts two gottwall daemons
(ANONYMOUS_LOGIN = false, one without USERS, one with a user whose hash
comes from `gottwall passwd` and a shared chart of 30 days of orders) and
runs tests/browser/pages.mjs (playwright-core driving Debian's Chromium),
which also serves the pages of "another site" that embed the chart.
Screenshots go to $GW_BUILDDIR/test-output/browser-pages/. Skips as
tests/browser/test_dashboard.py does.
"""

import json
import os
import subprocess
import time

from gwtest import (BUILDDIR, GOTTWALL, SRCDIR, Daemon, basic_header, wait_for)
from test_dashboard import browser_main, run_script, send

USER = "ann@example.com"
PASSWORD = "pages test password"
SCRIPT = os.path.join(SRCDIR, "tests", "browser", "pages.mjs")
OUT = os.path.join(BUILDDIR, "test-output", "browser-pages")
BASIC = {"Authorization": basic_header("my_public_key", "secret_key")}
DAY = 86400


def share_chart(d):
    """A chart of orders and paid orders per day, shared with the keys."""
    status, _, body = d.request(
        "POST", "/api/v1/test_project/embedded/",
        body={"name": "Orders per day", "renderer": "line", "period": "day",
              "metrics": [{"metric_name": "orders"},
                          {"metric_name": "orders", "filter_name": "status",
                           "filter_value": "paid"}]},
        headers=dict(BASIC, **{"Content-Type": "application/json"}))
    assert status == 200, (status, body)
    return json.loads(body)["id"]


def test_pages_in_chromium():
    hash_ = subprocess.run([GOTTWALL, "passwd"], input=PASSWORD + "\n", text=True,
                           capture_output=True, timeout=60, check=True).stdout.strip()
    with Daemon(extra={"ANONYMOUS_LOGIN": False}) as bare, \
            Daemon(extra={"ANONYMOUS_LOGIN": False,
                          "USERS": [{"email": USER, "password": hash_}]}) as d:
        now = int(time.time())
        send(d, "incr", [{"n": "orders", "ts": now - i * DAY, "v": (i * 7) % 11 + 1,
                          "f": {"status": "paid" if i % 3 else "new"}} for i in range(30)])
        wait_for(lambda: "orders" in d.get_json("/api/v1/test_project/metrics",
                                                headers=BASIC), what="events stored")
        run_script(SCRIPT, OUT, GW_URL="http://127.0.0.1:%d/" % d.server_port,
                   GW_URL_NO_USERS="http://127.0.0.1:%d/" % bare.server_port,
                   GW_USER=USER, GW_PASSWORD=PASSWORD, GW_CHART=share_chart(d))


def main():
    browser_main([test_pages_in_chromium])

if __name__ == "__main__":
    main()
