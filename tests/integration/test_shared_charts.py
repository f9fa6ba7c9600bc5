"""A project's shared (embedded) charts, against the real gottwall binary
(issue 17): Share reuses an identical chart instead of storing one more
at every click, the charts are listed (GET {project}/embedded/), and one
can be deleted (DELETE {project}/embedded/{id}), after which its links
answer 404 and its place under MAX_EMBEDS_PER_PROJECT is free again.
"""

import json

from gwtest import Daemon, run_tests

CSRF = {"Content-Type": "application/json", "X-Requested-With": "gottwall"}


def chart(name, metric="orders", period="day"):
    return {"name": name, "period": period, "metrics": [{"metric_name": metric}]}


def share(d, body, project="test_project"):
    s, _, out = d.request("POST", "/api/v1/%s/embedded/" % project, body=body, headers=CSRF)
    return s, json.loads(out)


def listed(d, project="test_project"):
    s, _, out = d.request("GET", "/api/v1/%s/embedded/" % project)
    assert s == 200, (s, out)
    return [(c["id"], c["name"]) for c in json.loads(out)["charts"]]


def delete(d, uid, project="test_project"):
    s, _, out = d.request("DELETE", "/api/v1/%s/embedded/%s" % (project, uid), headers=CSRF)
    return s, json.loads(out) if out else None


def test_identical_chart_is_reused():
    """The same definition shared twice is one chart: same id, same links,
    "reused": true, and it counts once under the cap."""
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "MAX_EMBEDS_PER_PROJECT": 2}) as d:
        s, a = share(d, chart("Orders"))
        assert s == 200 and a["reused"] is False, (s, a)
        for _ in range(3):
            s, again = share(d, chart("Orders"))
            assert s == 200, (s, again)
            assert again == dict(a, reused=True), (again, a)
        # Another name, period or metric is another chart.
        s, b = share(d, chart("Orders", period="hour"))
        assert s == 200 and b["reused"] is False and b["id"] != a["id"], (s, b)
        # Two charts stored: the cap of 2 is reached, a reuse still works.
        s, c = share(d, chart("Refunds", metric="refunds"))
        assert s == 409, (s, c)
        assert share(d, chart("Orders"))[1]["id"] == a["id"]


def test_list_and_delete():
    with Daemon(extra={"ANONYMOUS_LOGIN": True, "MAX_EMBEDS_PER_PROJECT": 2}) as d:
        assert listed(d) == []
        _, a = share(d, chart("Orders"))
        _, b = share(d, chart("Refunds", metric="refunds"))
        assert listed(d) == [(b["id"], "Refunds"), (a["id"], "Orders")]
        s, _, out = d.request("GET", "/api/v1/test_project/embedded/")
        one = json.loads(out)["charts"][1]
        assert one["html_link"] == a["html_link"] and one["json_link"] == a["json_link"], one
        assert one["created_by"] == "anonymous" and isinstance(one["created"], int), one
        # Another project lists none of them.
        assert listed(d, "shop") == []
        # Delete: the chart's links answer 404, the list drops it, the cap
        # has room again, and sharing it again makes a new chart.
        s, out = delete(d, a["id"])
        assert (s, out) == (200, {"deleted": a["id"]}), (s, out)
        for ext in ("json", "html", "js"):
            s, _, _ = d.request("GET", "/api/v1/embedded/%s.%s" % (a["id"], ext))
            assert s == 404, (ext, s)
        assert listed(d) == [(b["id"], "Refunds")]
        s, again = share(d, chart("Orders"))
        assert s == 200 and again["reused"] is False and again["id"] != a["id"], (s, again)
        # Deleted twice, unknown, or through another project: 404.
        s, out = delete(d, a["id"])
        assert (s, out) == (404, {"error": 'no embedded chart "%s" in project "test_project"' % a["id"]}), (s, out)
        s, out = delete(d, b["id"], project="shop")
        assert (s, out) == (404, {"error": 'no embedded chart "%s" in project "shop"' % b["id"]}), (s, out)
        s, _, _ = d.request("GET", "/api/v1/embedded/%s.json" % b["id"])
        assert s == 200
        # The list survives a restart (it is a storage document).
        assert d.stop() == 0
        d.start()
        assert listed(d) == [(again["id"], "Orders"), (b["id"], "Refunds")]


def test_needs_access():
    """Without a login, the list and delete are refused like the read API."""
    with Daemon(extra={"ANONYMOUS_LOGIN": False}) as d:
        s, _, _ = d.request("GET", "/api/v1/test_project/embedded/")
        assert s == 401, s
        s, _, _ = d.request("DELETE", "/api/v1/test_project/embedded/"
                            "00000000-0000-4000-8000-000000000000", headers=CSRF)
        assert s == 401, s


if __name__ == "__main__":
    run_tests([test_identical_chart_is_reused, test_list_and_delete, test_needs_access])
