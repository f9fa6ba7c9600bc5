"""The read API, login and the server role's pages (SPEC §7, §8), against
the real gottwall binary: events go in over the HTTP transport, and every
route, parameter and error of the read API is checked with its exact JSON.
"""

import calendar
import json
import os
import re
import subprocess
import time
import urllib.parse

from gwtest import (BUILDDIR, Daemon, GOTTWALL, basic_header, run_tests, s1_header,
                    s3_header, wait_for)

TS = 1392454739            # 2014-02-15 08:58:59 UTC
DAY_0214 = 1392336000      # 2014-02-14
DAY_0215 = 1392422400
DAY_0216 = 1392508800
DAY_0217 = 1392595200
JAN = 1388534400           # 2014-01-01
FEB = 1391212800
MAR = 1393632000           # 2014-03-01
USER = "ann@example.com"
PASSWORD = "correct horse battery"


def send(d, events, action="incr", project="test_project", prefix=""):
    pub, priv = d.projects[project]
    status, _, body = d.request(
        "POST", "%s/api/v1/%s/%s" % (prefix, project, action),
        body=json.dumps(events),
        headers={"Content-Type": "application/json",
                 "X-GottWall-Auth": s1_header(pub, priv)},
        port=d.port("http"))
    assert (status, body) == (200, b"OK"), (status, body)


def load_data(d, prefix=""):
    """orders (counter), latency (avg), temp (gauge); waits until stored."""
    send(d, [{"n": "orders", "ts": TS, "v": 2, "f": {"status": "paid"}},
             {"n": "orders", "ts": TS + 61, "v": 1, "f": {"status": "new"}},
             {"n": "orders", "ts": MAR + 5, "v": 5, "f": {"status": "paid"}}],
         prefix=prefix)
    send(d, [{"n": "latency", "ts": TS, "v": 10},
             {"n": "latency", "ts": TS + 1, "v": 20},
             {"n": "latency", "ts": DAY_0216 + 3600, "v": 30}],
         action="avg", prefix=prefix)
    send(d, [{"n": "temp", "ts": TS, "v": 5},
             {"n": "temp", "ts": TS - 100, "v": 7}],
         action="gauge", prefix=prefix)

    def stored():
        r = d.get_json(prefix + "/api/v1/test_project/stats?name=orders&period=all",
                       headers=HEADERS.get(id(d), {}))
        t = d.get_json(prefix + "/api/v1/test_project/stats?name=temp&period=all",
                       headers=HEADERS.get(id(d), {}))
        return r["range"] == [[0, 8]] and t["range"] == [[0, 5]]
    wait_for(stored, what="events stored")


HEADERS = {}  # per-daemon headers for load_data's read-back


def get(d, path, headers=None):
    status, hdrs, body = d.request("GET", path, headers=headers)
    return status, hdrs, body


def get_json(d, path, expect, headers=None):
    status, _, body = d.request("GET", path, headers=headers)
    assert status == expect, "GET %s: %d %r" % (path, status, body[:300])
    return json.loads(body)


def stats(d, query, expect=200):
    return get_json(d, "/api/v1/test_project/stats?" + query, expect)


# ---- One daemon, anonymous access ----

D = None


def test_stats_counter_day_zero_filled():
    r = stats(D, "name=orders&period=day&from_date=2014-02-14&to_date=2014-02-17")
    assert r == {"range": [[DAY_0214, 0], [DAY_0215, 3], [DAY_0216, 0], [DAY_0217, 0]],
                 "project": "test_project", "period": "day", "name": "orders",
                 "filter_name": None, "filter_value": None,
                 "avg": 0.75, "min": 0, "max": 3}, r
    # Exact bytes: integers stay integers, keys in SPEC §7's order.
    _, _, body = get(D, "/api/v1/test_project/stats?name=orders&period=day"
                        "&from_date=2014-02-15&to_date=2014-02-15")
    assert body == (b'{"range":[[1392422400,3]],"project":"test_project",'
                    b'"period":"day","name":"orders","filter_name":null,'
                    b'"filter_value":null,"avg":3,"min":3,"max":3}'), body


def test_stats_month_and_filter():
    r = stats(D, "name=orders&period=month&from_date=2014-01-01&to_date=2014-03-31")
    assert r["range"] == [[JAN, 0], [FEB, 3], [MAR, 5]], r
    assert (r["min"], r["max"]) == (0, 5)
    assert abs(r["avg"] - 8 / 3) < 1e-9, r["avg"]
    r = stats(D, "name=orders&period=month&from_date=2014-01-01&to_date=2014-03-31"
                 "&filter_name=status&filter_value=paid")
    assert r["range"] == [[JAN, 0], [FEB, 2], [MAR, 5]], r
    assert (r["filter_name"], r["filter_value"]) == ("status", "paid")
    r = stats(D, "name=orders&period=month&from_date=2014-02-01&to_date=2014-02-01"
                 "&filter_name=status&filter_value=nope")
    assert r["range"] == [[FEB, 0]], r


def test_stats_default_period_is_month():
    r = stats(D, "name=orders&from_date=2014-02-10&to_date=2014-03-02")
    assert r["period"] == "month"
    assert r["range"] == [[FEB, 3], [MAR, 5]], r


def test_stats_period_all():
    r = stats(D, "name=orders&period=all")
    assert r == {"range": [[0, 8]], "project": "test_project", "period": "all",
                 "name": "orders", "filter_name": None, "filter_value": None,
                 "avg": 8, "min": 8, "max": 8}, r
    r = stats(D, "name=orders&period=all&from_date=2014-01-01&to_date=2014-01-02")
    assert r["range"] == [[0, 8]], r


def test_stats_avg_and_gauge():
    r = stats(D, "name=latency&period=day&from_date=2014-02-15&to_date=2014-02-16")
    assert r["range"] == [[DAY_0215, 15], [DAY_0216, 30]], r
    assert (r["avg"], r["min"], r["max"]) == (22.5, 15, 30), r
    r = stats(D, "name=latency&period=week&from_date=2014-02-15&to_date=2014-02-15")
    assert r["range"] == [[1391990400, 20]], r   # (10 + 20 + 30) / 3, not 22.5
    r = stats(D, "name=temp&period=day&from_date=2014-02-15&to_date=2014-02-15")
    assert r["range"] == [[DAY_0215, 5]], r


def test_stats_gaps_are_null_and_ranges_end_now():
    """An avg's or a gauge's bucket without events has no value (null), a
    counter's is 0; avg/min/max are over the buckets with data; no bucket
    after the current one is answered (issue 17)."""
    r = stats(D, "name=latency&period=day&from_date=2014-02-14&to_date=2014-02-17")
    assert r["range"] == [[DAY_0214, None], [DAY_0215, 15], [DAY_0216, 30], [DAY_0217, None]], r
    assert (r["avg"], r["min"], r["max"]) == (22.5, 15, 30), r
    r = stats(D, "name=latency&period=day&from_date=2014-02-14&to_date=2014-02-17&stat=count")
    assert r["range"] == [[DAY_0214, 0], [DAY_0215, 2], [DAY_0216, 1], [DAY_0217, 0]], r
    r = stats(D, "name=temp&period=hour&from_date=2014-02-15T08:00:00&to_date=2014-02-15T10:00:00")
    assert r["range"] == [[DAY_0215 + 8 * 3600, 5], [DAY_0215 + 9 * 3600, None],
                          [DAY_0215 + 10 * 3600, None]], r
    assert (r["avg"], r["min"], r["max"]) == (5, 5, 5), r
    r = stats(D, "name=temp&period=day&from_date=2014-02-17&to_date=2014-02-18")
    assert (r["range"], r["avg"], r["min"], r["max"]) == (
        [[DAY_0217, None], [DAY_0217 + 86400, None]], None, None, None), r
    r = stats(D, "name=orders&period=day&from_date=2014-02-16&to_date=2014-02-17")
    assert r["range"] == [[DAY_0216, 0], [DAY_0217, 0]], r
    # Up to the current bucket, not to the end of the to_date.
    year = time.gmtime().tm_year
    starts = [calendar.timegm((y, 1, 1, 0, 0, 0)) for y in (year - 1, year)]
    r = stats(D, "name=orders&period=year&from_date=%d-01-01&to_date=2100-01-01" % (year - 1))
    assert r["range"] == [[starts[0], 0], [starts[1], 0]], r
    now = time.time()
    r = stats(D, "name=latency&period=minute&from_date=%d&to_date=%d" % (now - 150, now + 3600))
    assert [p[0] for p in r["range"]] == [int(now - 150) // 60 * 60 + 60 * i for i in range(len(r["range"]))], r
    assert r["range"][-1][0] <= time.time() < r["range"][-1][0] + 60 + 1, r
    assert all(p[1] is None for p in r["range"]), r
    # A range that starts after now has no buckets.
    r = stats(D, "name=orders&period=day&from_date=2100-01-01&to_date=2100-02-01")
    assert (r["range"], r["avg"], r["min"], r["max"]) == ([], None, None, None), r
    r = get_json(D, "/api/v1/test_project/stats_dataset?name=orders&filter_name=status"
                    "&period=day&from_date=2014-02-15&to_date=2100-01-01", 200)
    assert r["data"]["paid"]["range"][0] == [DAY_0215, 2], r
    assert r["data"]["paid"]["range"][-1][0] <= time.time(), r


def test_stats_dates_normalised_and_epoch():
    # 08:30 belongs to the 08:00 hour; to_date 09:10 to the 09:00 hour.
    r = stats(D, "name=orders&period=hour&from_date=2014-02-15T08:30:00"
                 "&to_date=2014-02-15T09:10:00")
    assert r["range"] == [[1392451200, 2], [1392454800, 1]], r
    r = stats(D, "name=orders&period=minute&from_date=%d&to_date=%d" % (TS, TS + 61))
    assert r["range"] == [[1392454680, 2], [1392454740, 0], [1392454800, 1]], r


def test_stats_default_range_is_30_buckets():
    r = stats(D, "name=orders&period=day")
    assert len(r["range"]) == 30, len(r["range"])
    now = int(time.time())
    assert r["range"][-1][0] == now - now % 86400
    assert r["range"][0][0] == r["range"][-1][0] - 29 * 86400
    r = stats(D, "name=orders&period=month&to_date=2014-03-15")
    assert len(r["range"]) == 30 and r["range"][-1] == [MAR, 5], r["range"][-3:]
    assert r["range"][0][0] == 1317427200  # 2011-10-01


def test_stats_unknown_metric_is_zeros():
    r = stats(D, "name=nothing_here&period=day&from_date=2014-02-14&to_date=2014-02-15")
    assert r["range"] == [[DAY_0214, 0], [DAY_0215, 0]], r
    assert (r["avg"], r["min"], r["max"]) == (0, 0, 0)


def test_stats_errors():
    def err(query, status, msg, path="/api/v1/test_project/stats?"):
        r = get_json(D, path + query, status)
        assert r == {"error": msg}, r
    err("period=day", 400, "missing parameter: name (the metric)")
    err("name=&period=day", 400, "missing parameter: name (the metric)")
    err("name=orders&period=fortnight", 400,
        'unknown period "fortnight": use one of minute, hour, day, week, '
        'month, year, all')
    err("name=orders&period=day&from_date=2014-13-45", 400,
        'bad from_date "2014-13-45": use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC) '
        'or epoch seconds')
    err("name=orders&period=day&to_date=yesterday", 400,
        'bad to_date "yesterday": use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC) '
        'or epoch seconds')
    err("name=orders&period=day&from_date=2014-02-10&to_date=2014-02-01", 400,
        "reversed date range: from_date 2014-02-10 is after to_date 2014-02-01")
    err("name=orders&period=minute&from_date=2014-01-01&to_date=2014-12-31", 400,
        "the range asks for 524161 minute buckets, more than MAX_POINTS "
        "(10000): shorten the range or use a longer period")
    # 10000 buckets is the limit itself, and allowed.
    r = get_json(D, "/api/v1/test_project/stats?name=orders&period=minute"
                    "&from_date=%d&to_date=%d" % (TS, TS + 9999 * 60), 200)
    assert len(r["range"]) == 10000
    err("name=orders&filter_name=status", 400, "filter_name needs filter_value "
        "(for every value of a filter use stats_dataset)")
    err("name=orders", 404, 'unknown project "nope"', "/api/v1/nope/stats?")
    err("", 404, 'unknown project "nope"', "/api/v1/nope/metrics?")
    err("name=orders", 400, "missing parameter: filter_name (the filter whose "
        "values make the rows)", "/api/v1/test_project/stats_dataset?")
    err("", 404, "no such API route: /api/v1/test_project/bogus (see docs/api.md)",
        "/api/v1/test_project/bogus?")
    status, hdrs, body = D.request("POST", "/api/v1/test_project/stats?name=x")
    assert status == 405 and hdrs.get("allow") == "GET", (status, hdrs)


def test_names_with_spaces_and_utf8():
    send(D, {"n": "page views", "ts": TS, "v": 4, "f": {"city": "Z\u00fcrich"}})
    q = "name=page+views&period=day&from_date=2014-02-15&to_date=2014-02-15"
    wait_for(lambda: stats(D, q)["range"] == [[DAY_0215, 4]], what="page views stored")
    r = stats(D, q + "&filter_name=city&filter_value=Z%C3%BCrich")
    assert r["range"] == [[DAY_0215, 4]] and r["filter_value"] == "Z\u00fcrich", r
    assert get_json(D, "/api/v1/test_project/metrics", 200)["page views"] == {"city": ["Z\u00fcrich"]}


def test_stats_dataset():
    r = get_json(D, "/api/v1/test_project/stats_dataset?name=orders&period=month"
                    "&from_date=2014-02-01&to_date=2014-03-01&filter_name=status", 200)
    assert r == {"data": {"new": {"range": [[FEB, 1], [MAR, 0]], "avg": 0.5, "min": 0, "max": 1},
                          "paid": {"range": [[FEB, 2], [MAR, 5]], "avg": 3.5, "min": 2, "max": 5}},
                 "project": "test_project", "period": "month", "name": "orders",
                 "filter_name": "status"}, r
    r = get_json(D, "/api/v1/test_project/stats_dataset?name=orders&period=month"
                    "&filter_name=device", 200)
    assert r["data"] == {}, r


def test_metrics_and_projects():
    r = get_json(D, "/api/v1/test_project/metrics", 200)
    assert r == {"latency": {}, "orders": {"status": ["new", "paid"]},
                 "page views": {"city": ["Z\u00fcrich"]}, "temp": {}}, r
    assert get_json(D, "/api/v1/shop/metrics", 200) == {}
    assert get_json(D, "/api/v1/projects", 200) == ["test_project", "shop"]


def test_embedded():
    body = {"name": "Orders", "renderer": "bar", "period": "month",
            "metrics": [{"metric_name": "orders"},
                        {"metric_name": "orders", "filter_name": "status", "filter_value": "paid"}]}
    status, _, data = D.request("POST", "/api/v1/test_project/embedded/", body=body,
                                headers={"Host": "stats.example.com:8889"})
    assert status == 200, (status, data)
    r = json.loads(data)
    uid = r["id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uid), uid
    base = "http://stats.example.com:8889/api/v1/embedded/" + uid
    assert r == {"id": uid, "html_link": base + ".html", "js_link": base + ".js",
                 "json_link": base + ".json",
                 "iframe": '<iframe src="%s.html" title="Orders" width="800" height="400" '
                           'frameborder="0"></iframe>' % base,
                 "reused": False}, r
    # The iframe's title (what a screen reader announces) is the name, escaped.
    hostile = dict(body, name='<b a="1">&\'')
    status, _, data = D.request("POST", "/api/v1/test_project/embedded/", body=hostile,
                                headers={"Host": "stats.example.com:8889"})
    assert status == 200, (status, data)
    assert ' title="&lt;b a=&quot;1&quot;&gt;&amp;&#39;" ' in json.loads(data)["iframe"], data
    j = get_json(D, "/api/v1/embedded/%s.json?from_date=2014-01-01&to_date=2014-03-01" % uid, 200)
    assert j == {"project": "test_project", "renderer": "bar", "period": "month",
                 "from_date": "2014-01-01", "to_date": "2014-03-01",
                 "metrics": [
                     {"name": "orders", "filter_name": None, "filter_value": None,
                      "range": [[JAN, 0], [FEB, 3], [MAR, 5]], "avg": 8 / 3, "min": 0, "max": 5},
                     {"name": "orders", "filter_name": "status", "filter_value": "paid",
                      "range": [[JAN, 0], [FEB, 2], [MAR, 5]], "avg": 7 / 3, "min": 0, "max": 5}],
                 "name": "Orders", "generator": "GottWall"}, j
    j = get_json(D, "/api/v1/embedded/%s.json?period=day&from_date=2014-02-15&to_date=2014-02-15" % uid, 200)
    assert j["period"] == "day" and j["metrics"][0]["range"] == [[DAY_0215, 3]], j
    status, hdrs, html = get(D, "/api/v1/embedded/%s.html" % uid)
    assert status == 200 and hdrs["content-type"].startswith("text/html"), (status, hdrs)
    assert b"/api/v1/embedded/" + uid.encode() + b".json" in html
    assert b"<title>Orders" in html and b"/static/uPlot.iife.min.js" in html
    status, hdrs, js = get(D, "/api/v1/embedded/%s.js?width=600&height=300" % uid,
                           headers={"Host": "stats.example.com:8889"})
    assert status == 200 and hdrs["content-type"].startswith("application/javascript"), hdrs
    assert js == ('document.write(%s);\n' % json.dumps(
        '<iframe src="%s.html" title="Orders" width="600" height="300" frameborder="0" '
        'style="border:0;max-width:100%%"></iframe>' % base)).encode(), js
    # Unknown ids.
    missing = "00000000-0000-4000-8000-000000000000"
    assert get_json(D, "/api/v1/embedded/%s.json" % missing, 404) == {
        "error": 'no embedded chart "%s"' % missing}
    status, hdrs, body = get(D, "/api/v1/embedded/%s.html" % missing)
    assert (status, hdrs["content-type"]) == (404, "text/html; charset=utf-8"), hdrs
    assert b"<h1>Chart not found</h1>" in body and missing.encode() in body, body
    assert get(D, "/api/v1/embedded/not-an-id.js")[0] == 404


def test_embedded_validation():
    def bad(body, msg):
        status, _, data = D.request("POST", "/api/v1/test_project/embedded/", body=body)
        assert (status, json.loads(data)) == (400, {"error": msg}), (status, data)
    ok = {"name": "x", "renderer": "line", "period": "day", "metrics": [{"metric_name": "orders"}]}
    bad("not json", "the body must be a JSON object: '[' or '{' expected near 'not'")
    bad(dict(ok, renderer="pie"), '"renderer" must be one of line, area, bar, stacked')
    bad(dict(ok, period="decade"), 'unknown period "decade": use one of minute, hour, '
        'day, week, month, year, all')
    bad({k: v for k, v in ok.items() if k != "period"},
        '"period" is required (minute, hour, day, week, month, year or all)')
    bad(dict(ok, metrics=[]), '"metrics" must be a list of 1..20 objects {"metric_name", '
        '"filter_name", "filter_value"}')
    bad(dict(ok, metrics=[{"filter_name": "a"}]),
        'metrics[0]: "metric_name" is required (a string of 1..255 bytes)')
    bad(dict(ok, metrics=[{"metric_name": "a", "filter_name": "s"}]),
        'metrics[0]: give both "filter_name" and "filter_value", or neither')
    # The original UI's body: extra keys, "stack", empty filters.
    legacy = {"id": "c1", "type": "chart", "name": "API calls", "renderer": "stack",
              "period": "day", "metrics": [{"metric_name": "orders", "filter_name": "",
                                            "filter_value": "", "id": "m1"}]}
    status, _, data = D.request("POST", "/api/v1/test_project/embedded/", body=legacy)
    assert status == 200, data
    j = get_json(D, "/api/v1/embedded/%s.json?from_date=2014-02-15&to_date=2014-02-15"
                 % json.loads(data)["id"], 200)
    assert (j["renderer"], j["metrics"][0]["filter_name"], j["metrics"][0]["range"]) == (
        "stacked", None, [[DAY_0215, 3]]), j
    status, _, data = D.request("POST", "/api/v1/nope/embedded/", body=ok)
    assert status == 404, status


def test_dashboard_doc():
    assert get_json(D, "/api/v1/dashboard", 200) == {}
    doc = {"version": 1, "project": "test_project", "projects": {"test_project": {"widgets": [
        {"id": "a1", "type": "graph", "title": "Orders", "series": [{"metric": "orders"}]}]}}}
    status, _, data = D.request("PUT", "/api/v1/dashboard", body=doc)
    assert (status, json.loads(data)) == (200, {"saved": True}), data
    assert get_json(D, "/api/v1/dashboard", 200) == doc
    status, _, data = D.request("PUT", "/api/v1/dashboard", body="[1, 2]")
    assert (status, json.loads(data)) == (400, {"error": "the dashboard must be a JSON object: got another JSON value"})


def test_health_and_metrics():
    r = get_json(D, "/health", 200)
    assert (r["status"], r["storage"]) == ("ok", "up"), r
    assert r["roles"] == ["aggregator", "server"], r
    status, hdrs, text = get(D, "/metrics")
    assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    text = text.decode()
    for line in ("gottwall_storage_up 1", "gottwall_storage_pending_series ",
                 "gottwall_storage_errors_total 0", "gottwall_storage_events_dropped_total 0",
                 "# TYPE gottwall_storage_events_stored_total counter"):
        assert line in text, (line, text)
    m = re.search(r"^gottwall_storage_events_stored_total (\d+)$", text, re.M)
    assert m and int(m.group(1)) == 9, text   # 3 + 3 + 2 + 1 events sent


def test_pages_anonymous():
    status, hdrs, body = get(D, "/")
    assert status == 200 and b'<base href="/">' in body, (status, body[:200])
    assert b'"anonymous":true' in body
    status, hdrs, _ = get(D, "/login")
    assert (status, hdrs["location"]) == (302, "/"), hdrs
    status, hdrs, body = get(D, "/static/app.js")
    assert status == 200 and hdrs["content-type"].startswith("application/javascript"), hdrs
    status, _, body = get(D, "/static/uPlot.iife.min.js")
    assert status == 200 and b"uPlot" in body
    assert get(D, "/static/../gottwall.conf")[0] == 404
    assert get(D, "/static/.hidden")[0] == 404
    # A page that is not there: the styled error page; under /api/, JSON.
    status, hdrs, body = get(D, "/nowhere?x=1")
    assert (status, hdrs["content-type"]) == (404, "text/html; charset=utf-8"), hdrs
    assert b"<h1>Page not found</h1>" in body and b"There is no page at /nowhere." in body
    assert b'href="/static/style.css"' in body and b'<a href="/" target="_top">' in body
    assert get_json(D, "/api/v2/projects", 404) == {
        "error": "no such API route: /api/v2/projects (see docs/api.md)"}


def test_dataset_cell_limit():
    users = ["u%03d" % i for i in range(101)]
    send(D, [{"n": "clicks", "ts": TS, "f": {"user": users[:60]}},
             {"n": "clicks", "ts": TS, "f": {"user": users[60:]}}])
    wait_for(lambda: len(get_json(D, "/api/v1/test_project/metrics", 200)
                         .get("clicks", {}).get("user", [])) == 101, what="clicks stored")
    r = get_json(D, "/api/v1/test_project/stats_dataset?name=clicks&period=minute"
                    "&from_date=%d&to_date=%d&filter_name=user" % (TS, TS + 9999 * 60), 400)
    assert r == {"error": "the table would have 101 values x 10000 buckets, more than "
                          "1000000 cells: shorten the range or use a longer period"}, r
    r = get_json(D, "/api/v1/test_project/stats_dataset?name=clicks&period=day"
                    "&from_date=2014-02-15&to_date=2014-02-15&filter_name=user", 200)
    assert len(r["data"]) == 101 and r["data"]["u100"]["range"] == [[DAY_0215, 1]], r


# ---- Logins, keys and cookies (ANONYMOUS_LOGIN = false) ----

def password_hash(pw):
    out = subprocess.run([GOTTWALL, "passwd"], input=pw + "\n", capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out.startswith("pbkdf2-sha256$"), out
    return out


def login(d, email, password, prefix="", next_=None):
    form = {"email": email, "password": password}
    if next_:
        form["next"] = next_
    start = time.time()
    status, hdrs, body = d.request(
        "POST", prefix + "/login", body=urllib.parse.urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    return status, hdrs, body, time.time() - start


def test_access_control():
    with Daemon(extra={"ANONYMOUS_LOGIN": False,
                       "USERS": [{"email": USER, "password": password_hash(PASSWORD)}]}) as d:
        need = ("login required: log in at /login, or send the project's keys "
                "(Authorization: Basic public:private, or a GottWallS1/GottWallS3/GottWallS4 "
                "X-GottWall-Auth header)")
        assert get_json(d, "/api/v1/projects", 401) == {"error": need}
        assert get_json(d, "/api/v1/test_project/metrics", 401) == {"error": need}
        status, hdrs, _ = get(d, "/")
        assert (status, hdrs["location"]) == (302, "/login?next=%2F"), (status, hdrs)
        status, _, body = get(d, "/login?next=/")
        assert status == 200 and b'name="password"' in body and b'value="/"' in body
        # Public: health, assets and embedded charts.
        assert get(d, "/health")[0] == 200
        assert get(d, "/static/style.css")[0] == 200

        # The project's keys: Basic, S1 and S3, for that project only.
        basic = {"Authorization": basic_header("my_public_key", "secret_key")}
        assert get_json(d, "/api/v1/test_project/metrics", 200, basic) == {}
        assert get_json(d, "/api/v1/projects", 200, basic) == ["test_project"]
        r = get_json(d, "/api/v1/shop/metrics", 401, basic)
        assert r["error"].startswith("authentication failed: "), r
        s1 = {"X-GottWall-Auth": s1_header("shop_public", "shop_private")}
        assert get_json(d, "/api/v1/shop/metrics", 200, s1) == {}
        s3 = {"X-GottWall-Auth": s3_header("shop", "shop_private", b"")}
        assert get_json(d, "/api/v1/shop/stats?name=x&period=all", 200, s3)["range"] == [[0, 0]]
        assert get_json(d, "/api/v1/projects", 401, {"Authorization": basic_header("a", "b")}) == {
            "error": "authentication failed: these credentials are no project's keys"}
        wrong = {"Authorization": basic_header("my_public_key", "wrong")}
        assert get_json(d, "/api/v1/test_project/metrics", 401, wrong)["error"].startswith(
            "authentication failed: ")
        # Keys do not open the dashboard page.
        assert get(d, "/", basic)[0] == 302

        # A wrong password: refused, after the delay, logged without it.
        status, hdrs, body, took = login(d, USER, "not the password")
        assert status == 401 and "set-cookie" not in hdrs, (status, hdrs)
        assert b"Wrong e-mail or password." in body
        assert took >= 0.9, took
        status, _, _, took2 = login(d, "nobody@example.com", "x")
        assert status == 401 and took2 >= 1.9, took2     # second failure: 2 s
        log = d.log()
        assert 'failed login for "%s" from 127.0.0.1 (wrong password' % USER in log, log[-2000:]
        assert "not the password" not in log

        # The right one: a session cookie, back to next.
        status, hdrs, _, _ = login(d, USER.upper(), PASSWORD, next_="/?x=1")
        assert (status, hdrs["location"]) == (302, "/?x=1"), (status, hdrs)
        cookie = hdrs["set-cookie"]
        m = re.fullmatch(r"gw_session=([^;]+); Path=/; Max-Age=604800; HttpOnly; SameSite=Lax", cookie)
        assert m, cookie
        value = m.group(1)
        assert re.fullmatch(re.escape(USER) + r"\|\d+\|\d+\|[0-9a-f]{64}", value), value
        c = {"Cookie": "other=1; gw_session=" + value}
        status, _, body = get(d, "/", c)
        assert status == 200 and USER.encode() in body, status
        assert get_json(d, "/api/v1/projects", 200, c) == ["test_project", "shop"]
        # Next pointing elsewhere is ignored.
        status, hdrs, _, _ = login(d, USER, PASSWORD, next_="//evil.example.com/")
        assert hdrs["location"] == "/", hdrs
        # A tampered cookie is nobody.
        forged = value.replace(USER, "eve@example.com")
        assert get(d, "/api/v1/projects", {"Cookie": "gw_session=" + forged})[0] == 401
        # CSRF: state changes with a cookie need X-Requested-With.
        chart = {"name": "c", "period": "day", "metrics": [{"metric_name": "orders"}]}
        status, _, data = d.request("POST", "/api/v1/test_project/embedded/", body=chart, headers=c)
        assert status == 403 and json.loads(data) == {"error": "missing header X-Requested-With: gottwall (requests made with a session cookie must send it)"}
        status, _, data = d.request("POST", "/api/v1/test_project/embedded/", body=chart,
                                    headers=dict(c, **{"X-Requested-With": "gottwall"}))
        assert status == 200, data
        uid = json.loads(data)["id"]
        # Embedded charts are public.
        assert get_json(d, "/api/v1/embedded/%s.json" % uid, 200)["name"] == "c"
        assert get(d, "/api/v1/embedded/%s.html" % uid)[0] == 200
        # Dashboards belong to the user.
        xrw = dict(c, **{"X-Requested-With": "gottwall"})
        status, _, _ = d.request("PUT", "/api/v1/dashboard", body={"version": 1}, headers=xrw)
        assert status == 200
        assert get_json(d, "/api/v1/dashboard", 200, c) == {"version": 1}
        assert get_json(d, "/api/v1/dashboard", 403, basic) == {
            "error": "dashboards belong to users: log in to the dashboard (project keys have none)"}
        # A login form posted from another site is refused.
        status, _, _ = d.request("POST", "/login", body="email=a&password=b",
                                 headers={"Origin": "http://evil.example.com",
                                          "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403
        # Logout (a POST with the page's token) clears the cookie.
        status, hdrs, _ = get(d, "/logout", c)
        assert (status, hdrs["allow"]) == (405, "POST"), hdrs
        token = re.search(rb'name="csrf" value="([0-9a-f]{32})"', get(d, "/", c)[2]).group(1)
        status, hdrs, _ = d.request("POST", "/logout", body=b"csrf=" + token, headers=dict(
            c, **{"Content-Type": "application/x-www-form-urlencoded"}))
        assert (status, hdrs["location"]) == (302, "/login?logged_out=1"), hdrs
        assert hdrs["set-cookie"] == "gw_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        assert get(d, "/api/v1/projects", c)[0] == 401
        # The login page it goes to says so; only there.
        notice = b'role="status">You have logged out.</p>'
        assert notice in get(d, "/login?logged_out=1")[2]
        assert b'role="status"></p>' in get(d, "/login")[2]
        assert b'role="status"></p>' in get(d, "/login?logged_out=yes")[2]
        # USERS is set: the page does not tell visitors how to add users.
        assert b"gottwall passwd" not in get(d, "/login")[2]


def test_login_page_without_users():
    """Without USERS nobody can log in: the page says how to add users."""
    with Daemon(extra={"ANONYMOUS_LOGIN": False}) as d:
        status, _, body = get(d, "/login")
        assert status == 200, status
        assert (b'<p class="setup small" id="setup"><strong>No users yet.</strong> Users and '
                b'their password hashes are in <code>USERS</code> of gottwall.conf; make a '
                b'hash with <code>gottwall passwd</code>.</p>') in body, body
        assert b"{{" not in body, body


def test_prefix():
    with Daemon(extra={"PREFIX": "/gw", "ANONYMOUS_LOGIN": False, "ALLOWED_HOSTS": ["h.example"],
                       "USERS": [{"email": USER, "password": password_hash(PASSWORD)}]}) as d:
        basic = {"Authorization": basic_header("my_public_key", "secret_key")}
        HEADERS[id(d)] = basic
        load_data(d, prefix="/gw")
        r = get_json(d, "/gw/api/v1/test_project/stats?name=orders&period=day"
                        "&from_date=2014-02-15&to_date=2014-02-16", 200, basic)
        assert r["range"] == [[DAY_0215, 3], [DAY_0216, 0]], r
        assert get(d, "/api/v1/test_project/metrics", basic)[0] == 404
        status, _, body = get(d, "/elsewhere")
        assert status == 404 and b'href="/gw/static/style.css"' in body, body
        assert b"There is no page at /elsewhere: GottWall&#39;s pages are under /gw/." in body
        assert b'<a href="/gw/" target="_top">Go to the dashboard</a>' in body
        status, hdrs, _ = get(d, "/gw")
        assert (status, hdrs["location"]) == (302, "/gw/")
        status, hdrs, _ = get(d, "/gw/")
        assert (status, hdrs["location"]) == (302, "/gw/login?next=%2Fgw%2F"), hdrs
        status, _, body = get(d, "/gw/login?next=/gw/")
        assert status == 200 and b'action="/gw/login"' in body and b"/gw/static/style.css" in body
        status, hdrs, _, _ = login(d, USER, PASSWORD, prefix="/gw", next_="/gw/")
        assert (status, hdrs["location"]) == (302, "/gw/"), hdrs
        assert "; Path=/gw;" in hdrs["set-cookie"], hdrs
        c = {"Cookie": hdrs["set-cookie"].split(";")[0]}
        status, _, body = get(d, "/gw/", c)
        assert status == 200 and b'<base href="/gw/">' in body, body[:300]
        assert b'"prefix":"/gw"' in body
        assert get(d, "/gw/static/app.js")[0] == 200
        assert get_json(d, "/gw/health", 200)["status"] == "ok"
        assert b"gottwall_storage_up 1" in get(d, "/gw/metrics")[2]
        status, _, data = d.request(
            "POST", "/gw/api/v1/test_project/embedded/",
            body={"name": "p", "period": "day", "metrics": [{"metric_name": "orders"}]},
            headers=dict(basic, Host="h.example:1"))
        assert status == 200, data
        links = json.loads(data)
        assert links["json_link"].startswith("http://h.example:1/gw/api/v1/embedded/"), links
        path = urllib.parse.urlparse(links["json_link"]).path
        assert get_json(d, path + "?from_date=2014-02-15&to_date=2014-02-15", 200)[
            "metrics"][0]["range"] == [[DAY_0215, 3]]
        status, hdrs, _ = d.request("POST", "/gw/logout",
                                    headers=dict(c, **{"X-Requested-With": "gottwall"}))
        assert hdrs["location"] == "/gw/login?logged_out=1"
        assert hdrs["set-cookie"] == "gw_session=; Path=/gw; Max-Age=0; HttpOnly; SameSite=Lax"


def test_health_storage_down():
    """/health answers 503 while the storage does not answer (the fixture
    storage refuses while its DOWN_FILE exists), and 200 again after."""
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs",
                      "storage_fixture.so")
    if not os.path.exists(so):
        raise AssertionError("%s is missing: make check builds it" % so)
    d = Daemon(storage=so)
    down = os.path.join(d.tmp, "down")
    d.storage_settings["DOWN_FILE"] = down
    with d:
        assert get_json(d, "/health", 200)["storage"] == "up"
        open(down, "w").close()
        r = get_json(d, "/health", 503)
        assert (r["status"], r["storage"]) == ("error", "down"), r
        assert r["error"] == "storage does not answer: connection refused (fixture)", r
        send(d, {"n": "orders", "v": 1})
        text = wait_for(lambda: (lambda t: "gottwall_storage_up 0" in t and t)(
            get(d, "/metrics")[2].decode()), what="storage_up 0")
        assert re.search(r"^gottwall_storage_errors_total [1-9]", text, re.M), text
        assert get_json(d, "/api/v1/test_project/metrics", 503) == {
            "error": "the storage is unreachable: connection refused (fixture)"}
        os.unlink(down)
        assert get_json(d, "/health", 200)["storage"] == "up"
        wait_for(lambda: d.get_json("/api/v1/test_project/stats?name=orders&period=all")[
            "range"] == [[0, 1]], what="the event stored after the outage")


def main():
    global D
    # The embedded links are made for the Host the client named.
    D = Daemon(extra={"ANONYMOUS_LOGIN": True, "ALLOWED_HOSTS": ["stats.example.com"]})
    try:
        D.start()
        load_data(D)
        tests = [test_stats_counter_day_zero_filled, test_stats_month_and_filter,
                 test_stats_default_period_is_month, test_stats_period_all,
                 test_stats_avg_and_gauge, test_stats_gaps_are_null_and_ranges_end_now,
                 test_stats_dates_normalised_and_epoch,
                 test_stats_default_range_is_30_buckets, test_stats_unknown_metric_is_zeros,
                 test_stats_errors, test_names_with_spaces_and_utf8, test_stats_dataset, test_metrics_and_projects,
                 test_embedded, test_embedded_validation, test_dashboard_doc,
                 test_health_and_metrics, test_pages_anonymous, test_dataset_cell_limit,
                 test_access_control, test_login_page_without_users,
                 test_prefix, test_health_storage_down]
        run_tests(tests)
    finally:
        if D.alive():
            try:
                rc = D.stop()
                if rc != 0:
                    print("daemon exited with %r" % rc)
            except AssertionError as e:
                print(e)
        D.cleanup()


if __name__ == "__main__":
    main()
