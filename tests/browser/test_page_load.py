"""How long the dashboard takes to load a 3-day page (issue 17), in a real
browser: 15,000 events over the last 3 days in 6 metrics (4 counters, an
average and a gauge), shown by 4 graphs of 2 series each: 8 series of
4,321 minute buckets. tests/browser/page_load.mjs opens the page three
times, checks every point of every series against what was sent (counter
buckets summed, averages' means, gauges' last value, gaps as gaps), and
reports the time from navigation to all charts drawn, and of a redraw of
every chart, in $GW_BUILDDIR/test-output/browser-load/page-load.txt. The
times are reported, not asserted (this machine is shared): the figures
of record are in docs/performance.md.
"""

import json
import os
import time

from gwtest import (BUILDDIR, SRCDIR, Daemon, basic_header, s1_header, wait_for)
from test_dashboard import browser_main, run_script

SCRIPT = os.path.join(SRCDIR, "tests", "browser", "page_load.mjs")
OUT = os.path.join(BUILDDIR, "test-output", "browser-load")
SPAN = 3 * 86400
PER_METRIC = 2500

# (metric, action, filter name, the filter's values); the 8 series are the
# total of each and one value of the two filtered ones.
METRICS = [("orders", "incr", "status", ["paid", "new"]),
           ("signups", "incr", None, None),
           ("revenue", "incr", None, None),
           ("errors", "incr", "code", ["500", "503"]),
           ("response_ms", "avg", None, None),
           ("queue_depth", "gauge", None, None)]
GRAPHS = [[("orders", None, None), ("orders", "status", "paid")],
          [("signups", None, None), ("revenue", None, None)],
          [("errors", None, None), ("errors", "code", "500")],
          [("response_ms", None, None), ("queue_depth", None, None)]]


def events_of(now):
    """Each metric's events, evenly over the 3 days (inside the range the
    page will ask for a few seconds later)."""
    out = {}
    step = (SPAN - 120) / PER_METRIC
    for m, (name, action, fname, fvalues) in enumerate(METRICS):
        evs = []
        for k in range(PER_METRIC):
            ev = {"n": name, "ts": int(now - SPAN + 60 + k * step), "v": (k * 7 + m) % 13 + 1}
            if fname:
                ev["f"] = {fname: fvalues[k % 2]}
            evs.append(ev)
        out[name] = (action, evs)
    return out


def expected(events, metric, fname, fvalue):
    """Bucket start -> value, as the read API must answer it."""
    action, evs = events[metric]
    if fname:
        evs = [e for e in evs if e["f"][fname] == fvalue]
    buckets = {}
    for e in evs:
        buckets.setdefault(e["ts"] - e["ts"] % 60, []).append(e)
    if action == "incr":
        return {b: sum(e["v"] for e in es) for b, es in buckets.items()}
    if action == "avg":
        return {b: sum(e["v"] for e in es) / len(es) for b, es in buckets.items()}
    return {b: max(es, key=lambda e: e["ts"])["v"] for b, es in buckets.items()}


def test_three_day_page():
    with Daemon() as d:
        pub, priv = d.projects["test_project"]
        now = int(time.time())
        events = events_of(now)
        for name, (action, evs) in events.items():
            for i in range(0, len(evs), 500):
                status, _, body = d.request(
                    "POST", "/api/v1/test_project/%s" % action, body=evs[i:i + 500],
                    headers={"Content-Type": "application/json",
                             "X-GottWall-Auth": s1_header(pub, priv)},
                    port=d.port("http"))
                assert (status, body) == (200, b"OK"), (status, body)
        auth = {"Authorization": basic_header("my_public_key", "secret_key")}
        wait_for(lambda: d.get_json("/api/v1/test_project/stats?name=queue_depth&period=all",
                                    headers=auth).get("range") not in (None, [])
                 and d.get_json("/api/v1/test_project/stats?name=signups&period=all",
                                headers=auth)["range"][0][1]
                 == sum(e["v"] for e in events["signups"][1]), what="events stored")
        widgets = [{"id": "g%d" % i, "type": "graph", "title": "graph %d" % i,
                    "renderer": "line", "cols": 6,
                    "series": [{"metric": m, "filter_name": f, "filter_value": v}
                               for m, f, v in g]} for i, g in enumerate(GRAPHS)]
        status, _, body = d.request(
            "PUT", "/api/v1/dashboards/Main", body={"revision": 0, "doc": {
                "version": 1, "projects": {"test_project": {"widgets": widgets}}}},
            headers={"Content-Type": "application/json", "X-Requested-With": "gottwall"})
        assert status == 200, (status, body)
        want = [[{str(k): v for k, v in expected(events, m, f, fv).items()} for m, f, fv in g]
                for g in GRAPHS]
        kinds = [[next(a for n, a, _, _ in METRICS if n == m) for m, _, _ in g] for g in GRAPHS]
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "expected.json"), "w") as f:
            json.dump({"series": want, "kinds": kinds, "events": sum(len(e) for _, e in events.values())}, f)
        run_script(SCRIPT, OUT, GW_URL="http://127.0.0.1:%d/" % d.server_port)


def main():
    browser_main([test_three_day_page])

if __name__ == "__main__":
    main()
