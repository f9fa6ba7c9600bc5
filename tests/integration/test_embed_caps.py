"""Caps on embedded charts and saved dashboards (issue 16, item 9), against
the real gottwall binary.

The attack: with ANONYMOUS_LOGIN, 10,000 charts of 16.8 KB each were
created in 5.1 s (+162 MiB of RSS), with no bound. Now a project holds at
most MAX_EMBEDS_PER_PROJECT charts (default 1000), a user (anonymous
access is one user) creates at most MAX_EMBEDS_PER_USER (default 1000), and
a chart or a dashboard is at most MAX_DOCUMENT_SIZE bytes as stored
(default 65536). Over a count: 409 with a message naming the setting and
the numbers; over the size: 413. Each refusal is counted in /metrics as
gottwall_events_dropped_total{transport="server",reason=...}. The counts
are kept in the storage, so a restart does not reset them.
"""

import http.client
import json
import os
import subprocess

from gwtest import GOTTWALL, Daemon, basic_header, run_tests

CSRF = {"Content-Type": "application/json", "X-Requested-With": "gottwall"}
DROPPED = "gottwall_events_dropped_total"


SANITIZED = bool(os.environ.get("GW_SANITIZED"))

def big_chart(i, project_tag="x"):
    """A chart of 20 metrics with long names: about 16.8 KB as stored,
    like the charts of the attack."""
    metrics = [{"metric_name": ("m%d-%02d-" % (i, k)).ljust(255, "n"),
                "filter_name": ("f%02d-" % k).ljust(255, "f"),
                "filter_value": ("v%s%02d-" % (project_tag, k)).ljust(255, "v")}
               for k in range(20)]
    return json.dumps({"name": "chart %d" % i, "period": "day", "metrics": metrics})


def small_chart(i):
    return json.dumps({"name": "c%d" % i, "period": "day",
                       "metrics": [{"metric_name": "orders"}]})


def rss_kib(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def post_many(d, path, bodies, headers=None):
    """POSTs every body on one keep-alive connection; returns the
    (status, body) of each."""
    c = http.client.HTTPConnection("127.0.0.1", d.server_port, timeout=30)
    out = []
    try:
        for b in bodies:
            c.request("POST", path, body=b, headers=headers or {"Content-Type": "application/json"})
            r = c.getresponse()
            out.append((r.status, r.read()))
    finally:
        c.close()
    return out


def dropped(d, reason):
    return d.metric(DROPPED, transport="server", reason=reason)


def test_flood_capped_per_project():
    """The anonymous flood: 1,001 charts of 16.8 KB; the 1,001st (and every
    one after) is refused with 409, counted, RSS bounded, and the count
    survives a restart."""
    d = Daemon(extra={"ANONYMOUS_LOGIN": True}).start()
    try:
        assert len(big_chart(0)) > 16000, len(big_chart(0))
        rss0 = rss_kib(d)
        got = post_many(d, "/api/v1/test_project/embedded/",
                        (big_chart(i) for i in range(1001)))
        statuses = [s for s, _ in got]
        assert statuses[:1000] == [200] * 1000, sorted(set(statuses[:1000]))
        refusal = {"error": 'project "test_project" has 1000 embedded charts, as many '
                            "as MAX_EMBEDS_PER_PROJECT (1000) allows"}
        assert got[1000] == (409, json.dumps(refusal, separators=(",", ":")).encode()), got[1000]
        assert dropped(d, "max_embeds_per_project") == 1
        # Stored charts are 1000 x 16.8 KB; the daemon grows by about that,
        # not without bound (10,000 charts added 162 MiB before).
        grown = (rss_kib(d) - rss0) / 1024.0
        # (AddressSanitizer's quarantine keeps freed memory: checked only
        # in the plain build.)
        assert grown < 64 or SANITIZED, "RSS grew by %.1f MiB" % grown
        # More attempts: each refused and counted; RSS does not move.
        rss1 = rss_kib(d)
        more = post_many(d, "/api/v1/test_project/embedded/",
                         (big_chart(i) for i in range(1001, 1201)))
        assert [s for s, _ in more] == [409] * 200
        assert dropped(d, "max_embeds_per_project") == 201
        assert rss_kib(d) - rss1 < 8 * 1024 or SANITIZED, rss_kib(d) - rss1
        # Another project: anonymous access is one user, which has created
        # MAX_EMBEDS_PER_USER (1000) charts too.
        s, _, body = d.request("POST", "/api/v1/shop/embedded/", body=small_chart(0),
                               headers={"Content-Type": "application/json"})
        assert (s, json.loads(body)) == (409, {
            "error": "anonymous has created 1000 embedded charts, as many as "
                     "MAX_EMBEDS_PER_USER (1000) allows"}), (s, body)
        assert dropped(d, "max_embeds_per_user") == 1
        # The count is kept in the storage: after a restart the cap holds.
        assert d.stop() == 0
        d.start()
        s, _, body = d.request("POST", "/api/v1/test_project/embedded/", body=small_chart(1),
                               headers={"Content-Type": "application/json"})
        assert (s, json.loads(body)) == (409, refusal), (s, body)
        assert dropped(d, "max_embeds_per_project") == 1  # counters restart at 0
        # The charts made before the restart are still served.
        uid = json.loads(got[999][1])["id"]
        s, _, body = d.request("GET", "/api/v1/embedded/%s.json" % uid)
        assert s == 200 and json.loads(body)["name"] == "chart 999", (s, body[:200])
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_cap_per_user():
    """Anonymous access is one user: MAX_EMBEDS_PER_USER counts its charts
    over every project. A project's keys count for the project only."""
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "MAX_EMBEDS_PER_USER": 5,
                       "MAX_EMBEDS_PER_PROJECT": 7}) as d:
        got = post_many(d, "/api/v1/test_project/embedded/", (small_chart(i) for i in range(3)))
        got += post_many(d, "/api/v1/shop/embedded/", (small_chart(i) for i in range(3)))
        assert [s for s, _ in got] == [200] * 5 + [409], got
        assert json.loads(got[5][1]) == {
            "error": "anonymous has created 5 embedded charts, as many as "
                     "MAX_EMBEDS_PER_USER (5) allows"}
        assert dropped(d, "max_embeds_per_user") == 1
        assert dropped(d, "max_embeds_per_project") == 0


def test_keys_count_for_the_project_only():
    """Charts made with a project's keys have no user: only the project's
    cap applies."""
    with Daemon(extra={"ANONYMOUS_LOGIN": False, "MAX_EMBEDS_PER_USER": 1,
                       "MAX_EMBEDS_PER_PROJECT": 3}) as d:
        keys = {"Content-Type": "application/json",
                "Authorization": basic_header("shop_public", "shop_private")}
        got = post_many(d, "/api/v1/shop/embedded/", (small_chart(i) for i in range(4)), keys)
        assert [s for s, _ in got] == [200] * 3 + [409], got
        assert json.loads(got[3][1]) == {
            "error": 'project "shop" has 3 embedded charts, as many as '
                     "MAX_EMBEDS_PER_PROJECT (3) allows"}
        assert dropped(d, "max_embeds_per_project") == 1
        assert dropped(d, "max_embeds_per_user") == 0


def test_document_size():
    """A chart or a dashboard over MAX_DOCUMENT_SIZE gets 413; one at the
    size is stored."""
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "MAX_DOCUMENT_SIZE": 16384}) as d:
        body = big_chart(1)
        s, _, data = d.request("POST", "/api/v1/test_project/embedded/", body=body,
                               headers={"Content-Type": "application/json"})
        assert s == 413, (s, data)
        err = json.loads(data)["error"]
        size = int(err.split(" ")[4])
        assert 16384 < size < 17500, err
        assert err == ("the embedded chart is %d bytes as stored, more than "
                       "MAX_DOCUMENT_SIZE (16384) allows" % size), err
        assert dropped(d, "max_document_size") == 1
        # Dashboards: the stored (compact) form counts.
        fits = json.dumps({"t": "x" * (16384 - 8)}, separators=(",", ":"))
        assert len(fits) == 16384
        s, _, data = d.request("PUT", "/api/v1/dashboard", body=fits.replace(":", ": "),
                               headers={"Content-Type": "application/json"})
        assert (s, data) == (200, b'{"saved":true}'), (s, data)
        over = json.dumps({"t": "x" * (16384 - 7)}, separators=(",", ":"))
        s, _, data = d.request("PUT", "/api/v1/dashboard", body=over,
                               headers={"Content-Type": "application/json"})
        assert (s, json.loads(data)) == (413, {
            "error": "the dashboard is 16385 bytes as stored, more than "
                     "MAX_DOCUMENT_SIZE (16384) allows"}), (s, data)
        assert dropped(d, "max_document_size") == 2
        assert d.get_json("/api/v1/dashboard") == json.loads(fits)


def test_default_size_fits_the_attack_charts():
    """With the default MAX_DOCUMENT_SIZE (65536) the largest chart the API
    accepts (20 metrics of 255-byte names) is stored."""
    with Daemon(extra={"ANONYMOUS_LOGIN": True}) as d:
        s, _, data = d.request("POST", "/api/v1/test_project/embedded/", body=big_chart(0),
                               headers={"Content-Type": "application/json"})
        assert s == 200, (s, data)


def test_check_refuses_bad_values():
    d = Daemon(extra={"MAX_DOCUMENT_SIZE": 100})
    try:
        d.write_config()
        r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"], capture_output=True,
                           text=True, timeout=30)
        line = [i for i, l in enumerate(open(d.conf_path), 1) if "MAX_DOCUMENT_SIZE" in l][0]
        assert r.returncode != 0
        assert "%s:%d: MAX_DOCUMENT_SIZE must be between 1024 and 67108864, not 100" % (
            d.conf_path, line) in r.stderr + r.stdout, (r.stdout, r.stderr)
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_flood_capped_per_project, test_cap_per_user,
               test_keys_count_for_the_project_only, test_document_size,
               test_default_size_fits_the_attack_charts, test_check_refuses_bad_values])
