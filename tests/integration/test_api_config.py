"""GET {PREFIX}/api/v1/config against the real daemon (issue 14): what the
dashboard learns of PERIODS, RETENTION and MAX_POINTS, with exact bytes,
behind the same access rules as the other API routes; and a stats query
with only a to_date before the oldest bucket kept, refused like one with
a from_date instead of answered with a bucket that reads as 0.
"""

import json
import subprocess
import time
import urllib.parse

from gwtest import (GOTTWALL, Daemon, basic_header, raw_http, run_tests,
                    s3_header)

USER = "ann@example.com"
PASSWORD = "config test password"
DAY = 86400


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def config_bytes(d, path="/api/v1/config", headers=None):
    """(status, body, the clock before, the clock after)."""
    before = int(time.time())
    status, _, body = d.request("GET", path, headers=headers)
    return status, body, before, int(time.time())


def expect_config(d, want, path="/api/v1/config", headers=None):
    """The answer is want's bytes with "now" between the clocks around it."""
    status, body, before, after = config_bytes(d, path, headers)
    assert status == 200, (status, body)
    now = json.loads(body)["now"]
    assert before <= now <= after, (before, now, after)
    assert body == want % now, body


def test_config_with_retention():
    with Daemon(extra={"RETENTION": {"minute": "1d", "hour": "90d"},
                       "MAX_POINTS": 5000}) as d:
        expect_config(d, b'{"periods":["minute","hour","day","week","month",'
                         b'"year","all"],"retention":{"minute":86400,'
                         b'"hour":7776000,"day":null,"week":null,'
                         b'"month":null,"year":null,"all":null},'
                         b'"max_points":5000,"now":%d}')
        status, hdrs, body = d.request("POST", "/api/v1/config", body="{}")
        assert (status, hdrs.get("allow"), body) == (
            405, "GET", b'{"error":"method not allowed: use GET"}'), (status, hdrs, body)


def test_config_without_retention_and_fewer_periods():
    """Without RETENTION every period is kept for ever (null); only the
    periods of PERIODS are listed."""
    with Daemon(extra={"PERIODS": ["hour", "day", "all"]}) as d:
        expect_config(d, b'{"periods":["hour","day","all"],"retention":'
                         b'{"hour":null,"day":null,"all":null},'
                         b'"max_points":10000,"now":%d}')


def test_stats_to_date_before_retention():
    """Only to_date, 2 days back on minutes with minute = "1d": 400 naming
    the retention and the coarser period, as with a from_date."""
    with Daemon(extra={"RETENTION": {"minute": "1d"}}) as d:
        to = int(time.time()) - 2 * DAY
        to -= to % 60
        status, _, body = d.request(
            "GET", "/api/v1/test_project/stats?name=orders&period=minute"
                   "&to_date=%d" % to)
        err = json.loads(body)["error"]
        cut = json.loads(d.request("GET", "/api/v1/config")[2])["now"] - DAY
        cut -= cut % 60
        # The second may have turned between the two requests.
        assert status == 400 and err in [
            "minute buckets are kept for 1d (RETENTION.minute): the oldest "
            "starts at %s; for %s ask period=hour (kept for ever)"
            % (iso(c), iso(to)) for c in (cut - 60, cut)], (status, body)
        # A to_date inside the retention: its buckets, none before the cut.
        status, _, body = d.request(
            "GET", "/api/v1/test_project/stats?name=orders&period=minute"
                   "&to_date=%d" % (to + DAY + 600))
        r = json.loads(body)
        assert status == 200 and len(r["range"]) in (10, 11, 12), (status, body[:300])


def password_hash(pw):
    return subprocess.run([GOTTWALL, "passwd"], input=pw + "\n",
                          capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def test_config_access():
    """A session, a project's keys (Basic, S3 with its nonce spent once):
    as /api/v1/projects; nothing else gets in; Host and PREFIX apply."""
    with Daemon(extra={"ANONYMOUS_LOGIN": False, "PREFIX": "/gw",
                       "RETENTION": {"minute": "7d"},
                       "USERS": [{"email": USER,
                                  "password": password_hash(PASSWORD)}]}) as d:
        want = (b'{"periods":["minute","hour","day","week","month","year",'
                b'"all"],"retention":{"minute":604800,"hour":null,'
                b'"day":null,"week":null,"month":null,"year":null,'
                b'"all":null},"max_points":10000,"now":%d}')
        status, _, body = d.request("GET", "/gw/api/v1/config")
        assert (status, json.loads(body)) == (401, {"error": (
            "login required: log in at /gw/login, or send the project's keys "
            "(Authorization: Basic public:private, or a GottWallS1/"
            "GottWallS3/GottWallS4 X-GottWall-Auth header)")}), (status, body)
        assert d.request("GET", "/api/v1/config")[0] == 404  # outside PREFIX
        expect_config(d, want, "/gw/api/v1/config",
                      {"Authorization": basic_header("shop_public",
                                                     "shop_private")})
        wrong = {"Authorization": basic_header("shop_public", "nope")}
        status, _, body = d.request("GET", "/gw/api/v1/config", headers=wrong)
        assert status == 401 and json.loads(body)["error"].startswith(
            "authentication failed: "), body
        s3 = {"X-GottWall-Auth": s3_header("shop", "shop_private", b"")}
        expect_config(d, want, "/gw/api/v1/config", s3)
        # Replayed: refused, as /api/v1/projects refuses it.
        status, _, body = d.request("GET", "/gw/api/v1/config", headers=s3)
        assert (status, json.loads(body)) == (401, {"error": (
            "authentication failed: these credentials are no project's "
            "keys")}), (status, body)
        s3 = {"X-GottWall-Auth": s3_header("shop", "shop_private", b"")}
        assert d.request("GET", "/gw/api/v1/projects", headers=s3)[0] == 200
        assert d.request("GET", "/gw/api/v1/projects", headers=s3)[2] == body
        # A session of the dashboard.
        status, hdrs, _ = d.request(
            "POST", "/gw/login",
            body=urllib.parse.urlencode({"email": USER, "password": PASSWORD}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 302, (status, hdrs)
        cookie = {"Cookie": hdrs["set-cookie"].split(";")[0]}
        expect_config(d, want, "/gw/api/v1/config", cookie)
        # Another Host name: 421 before anything else.
        status, _, body = raw_http(
            d.server_port, b"GET /gw/api/v1/config HTTP/1.1\r\n"
            b"Host: attacker.example\r\nConnection: close\r\n\r\n")
        assert status == 421 and json.loads(body)["error"].startswith(
            'Host "attacker.example" is not one of ALLOWED_HOSTS'), (status, body)


if __name__ == "__main__":
    run_tests([test_config_with_retention,
               test_config_without_retention_and_fewer_periods,
               test_stats_to_date_before_retention, test_config_access])
