"""The dashboard and RETENTION in a real browser (issue 14): with
RETENTION = { minute = "1d"; } and a saved dashboard whose range starts 2
days back on minutes, tests/browser/retention.mjs (playwright-core driving
Debian's Chromium) finds each widget saying how long minute buckets are
kept instead of a chart of zeros, the minute period button greyed, no
stats request the server would refuse, and an offer of the hour, which
keeps that time; a click on it switches the dashboard to hours and draws
the event of 2 days ago. Skips as tests/browser/test_dashboard.py does.
"""

import os
import time

from gwtest import BUILDDIR, SRCDIR, Daemon, wait_for
from test_dashboard import browser_main, run_script, send

SCRIPT = os.path.join(SRCDIR, "tests", "browser", "retention.mjs")
OUT = os.path.join(BUILDDIR, "test-output", "browser-retention")
DAY = 86400


def test_range_before_retention():
    with Daemon(extra={"RETENTION": {"minute": "1d"}}) as d:
        now = int(time.time())
        old = now - 2 * DAY
        # 2 days back: its minute is past retention (not stored), its hour
        # and day are kept; and one event now.
        send(d, "incr", [{"n": "orders", "ts": old, "v": 7, "f": {"status": "paid"}},
                         {"n": "orders", "ts": now, "v": 1, "f": {"status": "new"}}])
        wait_for(lambda: d.stats("test_project", "orders", period="hour",
                                 from_date=old - old % 3600,
                                 to_date=old - old % 3600)["range"] == [
            [old - old % 3600, 7]], what="events stored")
        from_day = time.strftime("%Y-%m-%d", time.gmtime(old))
        doc = {"version": 1, "project": "test_project", "period": "minute",
               "from": from_day, "to": "", "autorefresh": True,
               "projects": {"test_project": {"widgets": [
                   {"id": "g1", "type": "graph", "title": "Orders", "renderer": "line",
                    "series": [{"metric": "orders", "filter_name": None,
                                "filter_value": None}]},
                   {"id": "t1", "type": "table", "title": "by status",
                    "metric": "orders", "filter_name": "status"}]}}}
        status, _, body = d.request("PUT", "/api/v1/dashboard", body=doc,
                                    headers={"Content-Type": "application/json"})
        assert status == 200, (status, body)
        run_script(SCRIPT, OUT, GW_URL="http://127.0.0.1:%d/" % d.server_port,
                   GW_OLD=str(old), GW_FROM=from_day)


def main():
    browser_main([test_range_before_retention])

if __name__ == "__main__":
    main()
