"""Which projects a logged-in user may see (issue 16, "also decide and
document"), against the real gottwall binary.

USERS entries take an optional `projects = [ "shop" ]`; without it a user
sees every project, as before. A project the user may not see answers
exactly as an unknown project does (404 `unknown project "..."`), on every
/api/v1/{project}/... route, so answers do not tell which projects exist;
the project list and the dashboard page's config (with the public keys)
hold only the user's projects; an embedded chart can be created only of
them, and a chart made by a user is served only while that user may still
see its project (SIGHUP re-reads the lists). `gottwall check` refuses a
name that is not one of PROJECTS, with file:line. Anonymous access sees
every project.
"""

import json
import re
import signal
import subprocess
import time
import urllib.parse

from gwtest import GOTTWALL, Daemon, run_tests, wait_for

ANN, ANN_PW = "ann@example.com", "ann's password"
BOB, BOB_PW = "bob@example.com", "bob's password"
CSRF = {"Content-Type": "application/json", "X-Requested-With": "gottwall"}
CHART = json.dumps({"name": "orders", "period": "day", "metrics": [{"metric_name": "orders"}]})
HASHES = {}


def password_hash(pw):
    if pw not in HASHES:
        out = subprocess.run([GOTTWALL, "passwd"], input=pw + "\n", capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
        assert out.startswith("pbkdf2-sha256$"), out
        HASHES[pw] = out
    return HASHES[pw]


def users(ann_projects):
    ann = {"email": ANN, "password": password_hash(ANN_PW)}
    if ann_projects is not None:
        ann["projects"] = ann_projects
    return [ann, {"email": BOB, "password": password_hash(BOB_PW)}]


def login(d, email, password):
    """Logs in; returns the headers that carry the session."""
    status, hdrs, body = d.request(
        "POST", "/login", body=urllib.parse.urlencode({"email": email, "password": password}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302, (status, body)
    cookie = hdrs["set-cookie"].split(";")[0]
    return {"Cookie": cookie}


def page_config(html):
    m = re.search(rb'<script id="gw-config" type="application/json">(.*?)</script>', html, re.S)
    assert m, html[:2000]
    return json.loads(m.group(1))


def unknown(name):
    return {"error": 'unknown project "%s"' % name}


def test_user_limited_to_one_project():
    with Daemon(extra={"ANONYMOUS_LOGIN": False, "USERS": users(["shop"])}) as d:
        assert d.send_http("shop", {"n": "orders", "v": 2})[0] == 200
        assert d.send_http("test_project", {"n": "orders", "v": 5})[0] == 200
        ann = login(d, ANN, ANN_PW)
        bob = login(d, BOB, BOB_PW)
        wait_for(lambda: d.get_json("/api/v1/shop/metrics", headers=bob) != {})
        wait_for(lambda: d.get_json("/api/v1/test_project/metrics", headers=bob) != {})
        # The list.
        assert d.get_json("/api/v1/projects", headers=ann) == ["shop"]
        assert d.get_json("/api/v1/projects", headers=bob) == ["test_project", "shop"]
        # Her project answers; the other one answers exactly as a project
        # that does not exist, on every route.
        r = d.get_json("/api/v1/shop/stats?name=orders&period=all", headers=ann)
        assert r["range"][0][1] == 2, r
        for route in ("stats?name=orders&period=all", "stats_dataset?name=orders&filter_name=x",
                      "metrics"):
            s1, h1, b1 = d.request("GET", "/api/v1/test_project/" + route, headers=ann)
            s2, h2, b2 = d.request("GET", "/api/v1/no_such/" + route, headers=ann)
            assert (s1, json.loads(b1)) == (404, unknown("test_project")), (route, s1, b1)
            assert (s2, json.loads(b2)) == (404, unknown("no_such")), (route, s2, b2)
            assert h1["content-type"] == h2["content-type"] == "application/json"
        # Bob (no list) still sees both.
        r = d.get_json("/api/v1/test_project/stats?name=orders&period=all", headers=bob)
        assert r["range"][0][1] == 5, r
        # The page's config: her project and its public key only.
        status, _, html = d.request("GET", "/", headers=ann)
        assert status == 200, status
        conf = page_config(html)
        assert conf["projects"] == [{"name": "shop", "public_key": "shop_public"}], conf
        assert b"my_public_key" not in html and b"test_project" not in html
        status, _, html = d.request("GET", "/", headers=bob)
        assert [p["name"] for p in page_config(html)["projects"]] == ["test_project", "shop"]
        # Embedded charts: only of her projects.
        s, _, b = d.request("POST", "/api/v1/test_project/embedded/", body=CHART,
                            headers=dict(ann, **CSRF))
        assert (s, json.loads(b)) == (404, unknown("test_project")), (s, b)
        s, _, b = d.request("POST", "/api/v1/shop/embedded/", body=CHART,
                            headers=dict(ann, **CSRF))
        assert s == 200, (s, b)
        uid = json.loads(b)["id"]
        assert d.get_json("/api/v1/embedded/%s.json" % uid)["metrics"][0]["range"][-1][1] in (0, 2)
        # Her access to shop is removed (SIGHUP): the chart she made is no
        # longer served, as if it did not exist; shop answers 404 to her.
        d.extra["USERS"] = users(["test_project"])
        d.write_config()
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.get_json("/api/v1/projects", headers=ann) == ["test_project"])
        assert d.get_json("/api/v1/embedded/%s.json" % uid, 404) == {
            "error": 'no embedded chart "%s"' % uid}
        assert d.request("GET", "/api/v1/embedded/%s.html" % uid)[0] == 404
        s, _, b = d.request("GET", "/api/v1/shop/metrics", headers=ann)
        assert (s, json.loads(b)) == (404, unknown("shop"))
        # Given back: served again.
        d.extra["USERS"] = users(None)
        d.write_config()
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.get_json("/api/v1/projects", headers=ann) == ["test_project", "shop"])
        assert d.request("GET", "/api/v1/embedded/%s.json" % uid)[0] == 200


def test_empty_list_sees_nothing():
    with Daemon(extra={"ANONYMOUS_LOGIN": False, "USERS": users([])}) as d:
        ann = login(d, ANN, ANN_PW)
        assert d.get_json("/api/v1/projects", headers=ann) == []
        status, _, html = d.request("GET", "/", headers=ann)
        assert page_config(html)["projects"] == []
        s, _, b = d.request("GET", "/api/v1/shop/metrics", headers=ann)
        assert (s, json.loads(b)) == (404, unknown("shop"))


def test_anonymous_sees_all():
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "USERS": users(["shop"])}) as d:
        assert d.get_json("/api/v1/projects") == ["test_project", "shop"]
        assert d.get_json("/api/v1/test_project/metrics") == {}


def test_check_refuses_unknown_project():
    d = Daemon(extra={"USERS": users(["shop", "blgo"])})
    try:
        d.write_config()
        lines = open(d.conf_path).read().splitlines()
        line = [i for i, l in enumerate(lines, 1) if "blgo" in l][0]
        r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        assert ('%s:%d: USERS[0].projects[1]: "blgo" is not one of PROJECTS '
                "(test_project, shop)" % (d.conf_path, line)) in r.stderr, r.stderr
        d.extra["USERS"] = [{"email": ANN, "password": password_hash(ANN_PW),
                             "projects": "shop"}]
        d.write_config()
        r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"], capture_output=True,
                           text=True, timeout=30)
        assert 'USERS[0].projects must be a list of project names [ "shop", "blog" ], ' \
               "not a string" in r.stderr, r.stderr
        d.extra["USERS"] = users(["shop"])
        d.write_config()
        r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, (r.stdout, r.stderr)
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_user_limited_to_one_project, test_empty_list_sees_nothing,
               test_anonymous_sees_all, test_check_refuses_unknown_project])
