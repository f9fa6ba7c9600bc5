"""Named dashboards with revisions (issue 17, docs/api.md "Dashboards"),
against the real gottwall binary: create, list, read, a stale save refused
with theirs (409) and nothing lost, delete, the default, bad names, the
page of before (GET/PUT /api/v1/dashboard) and the move of its document
into a dashboard named "Main", in the memory storage and in a real Redis.
"""

import json
import threading
import urllib.parse

from gwtest import Daemon, run_tests
from services import PostgresServer, RedisServer, plugin_built, skip

XRW = {"X-Requested-With": "gottwall"}


def call(d, method, path, body=None, expect=200):
    status, _, data = d.request(method, path, body=body, headers=XRW)
    out = json.loads(data) if data else None
    assert status == expect, (method, path, status, out)
    return out


def doc(*titles):
    return {"version": 2, "project": "test_project",
            "widgets": [{"id": t.lower(), "type": "graph", "title": t} for t in titles]}


def check_revisions(d):
    assert call(d, "GET", "/api/v1/dashboards") == {"default": None, "dashboards": []}
    assert call(d, "GET", "/api/v1/dashboards/Ops", expect=404) == {"error": 'no dashboard Ops'}
    # Created at revision 0 -> 1; the first one is the default.
    assert call(d, "PUT", "/api/v1/dashboards/Ops", {"revision": 0, "doc": doc("A")}) == \
        {"name": "Ops", "revision": 1}
    assert call(d, "GET", "/api/v1/dashboards/Ops") == {"name": "Ops", "revision": 1, "doc": doc("A")}
    # Two tabs read revision 1; the first saves (2), the second is stale.
    assert call(d, "PUT", "/api/v1/dashboards/Ops", {"revision": 1, "doc": doc("A", "B")})["revision"] == 2
    stale = call(d, "PUT", "/api/v1/dashboards/Ops", {"revision": 1, "doc": doc("A", "C")}, expect=409)
    assert stale == {"error": 'the dashboard "Ops" was saved elsewhere (revision 2, yours 1)',
                     "revision": 2, "doc": doc("A", "B"), "deleted": False}, stale
    # Nothing lost: theirs is stored, and mine lands once sent on theirs.
    assert call(d, "GET", "/api/v1/dashboards/Ops")["doc"] == doc("A", "B")
    assert call(d, "PUT", "/api/v1/dashboards/Ops", {"revision": 2, "doc": doc("A", "B", "C")})["revision"] == 3
    # Creating a name that exists is a stale save too.
    assert call(d, "PUT", "/api/v1/dashboards/Ops", {"revision": 0, "doc": doc()}, expect=409)["revision"] == 3
    # Names: any UTF-8 but control characters and "/", percent-encoded.
    name = "Büro · 24 h"
    path = "/api/v1/dashboards/" + urllib.parse.quote(name)
    assert call(d, "PUT", path, {"revision": 0, "doc": doc("X")}) == {"name": name, "revision": 1}
    assert call(d, "GET", "/api/v1/dashboards") == {
        "default": "Ops", "dashboards": [{"name": "Ops", "revision": 3}, {"name": name, "revision": 1}]}
    for bad in ("a%2Fb", "a%0Ab", "x" * 65):
        assert call(d, "PUT", "/api/v1/dashboards/" + bad, {"revision": 0, "doc": doc()}, expect=400) == {
            "error": 'a dashboard name is 1 to 64 bytes without control characters or "/"'}
    assert call(d, "PUT", path, {"doc": doc()}, expect=400)["error"].startswith("a dashboard is saved as")
    # The default, and the page of before reads and writes it.
    assert call(d, "PUT", "/api/v1/dashboards", {"default": name}) == {"default": name}
    assert call(d, "PUT", "/api/v1/dashboards", {"default": "nope"}, expect=404) == {"error": "no dashboard nope"}
    assert call(d, "GET", "/api/v1/dashboard") == doc("X")
    assert call(d, "PUT", "/api/v1/dashboard", {"version": 1, "old": True}) == {"saved": True}
    assert call(d, "GET", path) == {"name": name, "revision": 2, "doc": {"version": 1, "old": True}}
    # Deleting: gone from the list, the default moves on, a stale tab's
    # save is refused as deleted, a new one (revision 0) starts it again.
    assert call(d, "DELETE", path) == {"deleted": name}
    assert call(d, "DELETE", path, expect=404) == {"error": "no dashboard " + name}
    assert call(d, "GET", path, expect=404) == {"error": "no dashboard " + name}
    assert call(d, "GET", "/api/v1/dashboards") == {"default": "Ops", "dashboards": [{"name": "Ops", "revision": 3}]}
    gone = call(d, "PUT", path, {"revision": 2, "doc": doc("Y")}, expect=409)
    assert gone == {"error": 'the dashboard "%s" was deleted elsewhere (revision 3, yours 2)' % name,
                    "revision": 3, "doc": None, "deleted": True}, gone
    assert call(d, "PUT", path, {"revision": 0, "doc": doc("Y")}) == {"name": name, "revision": 4}


def test_revisions_memory():
    with Daemon() as d:
        check_revisions(d)


def test_revisions_redis_and_old_document():
    """In Redis; and a user's document of before named dashboards (as the
    previous version stored it) becomes the dashboard "Main"."""
    if not plugin_built("redis"):
        skip("the redis storage was not built")
    with RedisServer(persist=False) as r:
        old = {"version": 1, "project": "test_project",
               "projects": {"test_project": {"widgets": [{"id": "w1", "type": "graph"}]}}}
        r.command("SET", "gottwall:doc:dashboard:anonymous", json.dumps(old))
        with Daemon(storage="redis", storage_settings=r.settings()) as d:
            assert call(d, "GET", "/api/v1/dashboards") == {
                "default": "Main", "dashboards": [{"name": "Main", "revision": 1}]}
            assert call(d, "GET", "/api/v1/dashboards/Main")["doc"] == old
            assert "now the named dashboard \"Main\"" in d.log()
            call(d, "DELETE", "/api/v1/dashboards/Main")
            check_revisions(d)
        # Kept across a restart.
        with Daemon(storage="redis", storage_settings=r.settings()) as d:
            assert [x["name"] for x in call(d, "GET", "/api/v1/dashboards")["dashboards"]] == \
                ["Ops", "Büro · 24 h"]


def race(servers, writers=6, saves=5):
    """writers tabs, spread over the servers, each add saves widgets of its
    own to one dashboard the way the page merges: read, append, save; on a
    409 take theirs and add again. Every widget must be there at the end,
    and every 200 must have had a revision of its own."""
    call(servers[0], "PUT", "/api/v1/dashboards/Shared", {"revision": 0, "doc": doc()})
    given, errors, lock = [], [], threading.Lock()

    def tab(k):
        d = servers[k % len(servers)]
        try:
            for n in range(saves):
                cur = call(d, "GET", "/api/v1/dashboards/Shared")
                for _ in range(200):
                    mine = dict(cur["doc"])
                    mine["widgets"] = cur["doc"]["widgets"] + [{"id": "w%d-%d" % (k, n)}]
                    status, _, data = d.request("PUT", "/api/v1/dashboards/Shared", headers=XRW,
                                                body={"revision": cur["revision"], "doc": mine})
                    out = json.loads(data)
                    if status == 200:
                        with lock:
                            given.append(out["revision"])
                        break
                    assert status == 409, (status, out)
                    cur = out
                else:
                    raise AssertionError("tab %d never saved" % k)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=tab, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], errors
    final = call(servers[1], "GET", "/api/v1/dashboards/Shared")
    ids = sorted(w["id"] for w in final["doc"]["widgets"])
    assert ids == sorted("w%d-%d" % (k, n) for k in range(writers) for n in range(saves)), ids
    assert sorted(given) == list(range(2, 2 + writers * saves)), sorted(given)
    assert final["revision"] == 1 + writers * saves


def test_two_servers_one_storage():
    """Two server processes on one Redis, and on one PostgreSQL: a stale save
    through either is refused, so concurrent tabs lose nothing (the
    storage's doc_cas, ABI 1.6)."""
    for name, server in (("redis", RedisServer), ("postgres", PostgresServer)):
        if not plugin_built(name):
            print("  %s: the plugin was not built, skipped" % name)
            continue
        with server() as s:
            with Daemon(storage=name, storage_settings=s.settings()) as a, \
                    Daemon(storage=name, storage_settings=s.settings()) as b:
                race([a, b])


def test_limits():
    with Daemon(extra={"MAX_DOCUMENT_SIZE": 2048}) as d:
        big = {"version": 2, "pad": "x" * 2100}
        r = call(d, "PUT", "/api/v1/dashboards/Big", {"revision": 0, "doc": big}, expect=413)
        assert r == {"error": "the dashboard is %d bytes as stored, more than MAX_DOCUMENT_SIZE "
                     "(2048) allows" % len(json.dumps(big, separators=(",", ":")))}, r
        for i in range(100):
            call(d, "PUT", "/api/v1/dashboards/d%03d" % i, {"revision": 0, "doc": doc()})
        assert call(d, "PUT", "/api/v1/dashboards/one-more", {"revision": 0, "doc": doc()}, expect=409) == {
            "error": "a user has at most 100 dashboards: delete one first"}
        call(d, "PUT", "/api/v1/dashboards/d000", {"revision": 1, "doc": doc("still")})


if __name__ == "__main__":
    run_tests([test_revisions_memory, test_revisions_redis_and_old_document, test_limits,
               test_two_servers_one_storage])
