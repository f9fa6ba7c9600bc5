"""The redis transport against a real redis-server and the real daemon.

pubsub mode: events in the original stati-redis client's exact format
(SADD to gottwall:{project}:{public_key}, PUBLISH {"a": "notification"} on
gottwall:{project}:{public_key}:{private_key}) are counted exactly; a
channel with wrong keys is ignored and counted; a Redis restart loses
nothing that was in the set.

stream mode: entries signed with GottWallS3, two aggregators in one
consumer group, one killed with SIGKILL while it holds delivered entries:
the survivor takes them over and every event is stored exactly once.
"""

import json
import os
import re
import signal
import socket
import time

from gwtest import Daemon, run_tests, s3_header, wait_for
from services import RedisServer, _resp_encode, _resp_read, plugin_built

PROJECT = "test_project"
PUB, PRIV = "my_public_key", "secret_key"
SET_KEY = "gottwall:%s:%s" % (PROJECT, PUB)
CHANNEL = "gottwall:%s:%s:%s" % (PROJECT, PUB, PRIV)
DAY_2014_02_15 = 1392422400


def bucket(name, value, filters=None, random="x", ts="2014-02-15T08:58:59",
           action_key="a"):
    """One event as stati-redis-python's RedisClient.incr SADDs it."""
    return json.dumps({action_key: "incr", "name": name, "timestamp": ts,
                       "filters": filters or {}, "value": value,
                       "random": random}, separators=(",", ":"))


def redis_daemon(r, command=("start",), tmp=None, **settings):
    s = {"PLUGIN": "redis", "PORT": r.port}
    s.update(settings)
    return Daemon(command=command, backends={"redis": s}, tmp=tmp,
                  server=command[0] in ("start", "server"))


def wait_subscribed(r):
    wait_for(lambda: r.command("PUBSUB", "NUMPAT") >= 1, what="PSUBSCRIBE")


def metric(d, name, reason=None):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, status
    total = 0
    for m in re.finditer(r'^%s\{transport="redis"(?:,reason="([^"]*)")?\} (\d+)$'
                         % re.escape(name), body.decode(), re.M):
        if reason is None or m.group(1) == reason:
            total += int(m.group(2))
    return total


def test_original_client_format():
    with RedisServer(persist=False) as r, \
            redis_daemon(r, PERIODIC_PROCESSOR_TIME=600000) as d:
        wait_subscribed(r)
        r.command("SADD", SET_KEY, bucket("orders", 2, {"status": "paid"}, "a1"))
        r.command("SADD", SET_KEY, bucket("orders", 1, {"status": "new"}, "a2"))
        # An older client: "action" instead of "a".
        r.command("SADD", SET_KEY, bucket("orders", 3, {"status": "paid"}, "a3",
                                          action_key="action"))
        assert r.command("PUBLISH", CHANNEL, '{"a":"notification"}') == 1
        wait_for(lambda: d.total(PROJECT, "orders") == 6, what="orders == 6")
        day = d.stats(PROJECT, "orders", period="day", from_date="2014-02-15",
                      to_date="2014-02-15")
        assert day["range"] == [[DAY_2014_02_15, 6]], day
        assert d.total(PROJECT, "orders", filter_name="status",
                       filter_value="paid") == 5
        assert d.total(PROJECT, "orders", filter_name="status",
                       filter_value="new") == 1
        assert r.command("SCARD", SET_KEY) == 0
        # Before May 2013 the notification was {"type": "notification"}.
        r.command("SADD", SET_KEY, bucket("orders", 4, random="b1"))
        r.command("PUBLISH", CHANNEL, '{"type":"notification"}')
        wait_for(lambda: d.total(PROJECT, "orders") == 10, what="orders == 10")


def test_notification_drains_more_than_max_loading():
    with RedisServer(persist=False) as r, \
            redis_daemon(r, PERIODIC_PROCESSOR_TIME=600000, MAX_LOADING=100) as d:
        wait_subscribed(r)
        for i in range(250):
            r.command("SADD", SET_KEY, bucket("many", 1, random="m%d" % i))
        r.command("PUBLISH", CHANNEL, '{"a":"notification"}')
        wait_for(lambda: d.total(PROJECT, "many") == 250, what="many == 250")
        assert r.command("SCARD", SET_KEY) == 0


def test_inline_event_in_the_message():
    with RedisServer(persist=False) as r, redis_daemon(r) as d:
        wait_subscribed(r)
        r.command("PUBLISH", CHANNEL, json.dumps(
            {"a": "incr", "name": "inline", "value": 5,
             "timestamp": "2014-02-15T08:58:59"}))
        wait_for(lambda: d.total(PROJECT, "inline") == 5, what="inline == 5")


def test_wrong_keys_ignored_and_counted():
    with RedisServer(persist=False) as r, \
            redis_daemon(r, PERIODIC_PROCESSOR_TIME=200) as d:
        wait_subscribed(r)
        r.command("SADD", SET_KEY, bucket("secret", 1, random="w1"))
        r.command("PUBLISH", "gottwall:%s:%s:wrong_private" % (PROJECT, PUB),
                  '{"a":"notification"}')
        r.command("PUBLISH", "gottwall:%s:wrong_public:%s" % (PROJECT, PRIV),
                  json.dumps({"a": "incr", "name": "secret", "value": 9}))
        r.command("PUBLISH", "gottwall:nope:%s:%s" % (PUB, PRIV),
                  '{"a":"notification"}')
        r.command("PUBLISH", "gottwall:only:two", '{"a":"notification"}')
        wait_for(lambda: metric(d, "gottwall_auth_failures_total") == 3,
                 what="3 auth failures counted")
        wait_for(lambda: metric(d, "gottwall_events_dropped_total",
                                "bad_channel") == 1, what="bad channel counted")
        time.sleep(1.0)  # several sweeps: no verified pair, nothing swept
        assert r.command("SCARD", SET_KEY) == 1
        assert d.total(PROJECT, "secret") == 0
        assert metric(d, "gottwall_events_accepted_total") == 0


def test_redis_restart_loses_nothing_in_the_set():
    with RedisServer(persist=True) as r, \
            redis_daemon(r, PERIODIC_PROCESSOR_TIME=200) as d:
        wait_subscribed(r)
        for i in range(5):
            r.command("SADD", SET_KEY, bucket("restart", 1, random="r%d" % i))
        r.command("PUBLISH", CHANNEL, '{"a":"notification"}')
        wait_for(lambda: d.total(PROJECT, "restart") == 5, what="first 5")

        r.stop()
        wait_for(lambda: "is down" in d.log(), what="the daemon sees Redis down")
        r.start()
        # The daemon's connections are still down (backoff): these events
        # arrive with no subscriber to hear a notification.
        for i in range(7):
            r.command("SADD", SET_KEY, bucket("restart", 2, random="s%d" % i))
        r.command("PUBLISH", CHANNEL, '{"a":"notification"}')
        wait_for(lambda: d.total(PROJECT, "restart") == 19,
                 what="all 19 after the restart")
        assert r.command("SCARD", SET_KEY) == 0
        assert "is back" in d.log()
        assert d.log().count("(commands connection) is down") == 1


# ---- stream mode ----

def xadd_event(r, events, stream="gottwall:events", private=PRIV, nonce=None):
    body = json.dumps(events)
    return r.command("XADD", stream, "*", "project", PROJECT,
                     "auth", s3_header(PROJECT, private, body, nonce=nonce),
                     "event", body)


def xadd_atomic(r, events, stream="gottwall:events"):
    """XADDs one entry per event inside one MULTI/EXEC."""
    cmds = [("MULTI",)]
    for ev in events:
        body = json.dumps(ev)
        cmds.append(("XADD", stream, "*", "project", PROJECT,
                     "auth", s3_header(PROJECT, PRIV, body), "event", body))
    cmds.append(("EXEC",))
    with socket.create_connection((r.host, r.port), timeout=10) as c:
        c.sendall(b"".join(_resp_encode(x) for x in cmds))
        f = c.makefile("rb")
        replies = [_resp_read(f) for _ in cmds]
    assert len(replies[-1]) == len(events), replies[-1]


def pending(r, stream="gottwall:events", group="gottwall"):
    """{consumer: number of pending entries}."""
    rows = r.command("XPENDING", stream, group)
    return {c: int(n) for c, n in (rows[3] or [])} if rows else {}


def blocked_readers(r):
    """Clients blocked in XREADGROUP right now."""
    return sum(1 for line in r.command("CLIENT", "LIST").splitlines()
               if "cmd=xreadgroup" in line and re.search(r" flags=\w*b", line))


def stream_daemon(r, consumer, **settings):
    s = {"MODE": "stream", "CONSUMER": consumer, "CLAIM_IDLE_MS": 1500,
         "PERIODIC_PROCESSOR_TIME": 200, "BATCH": 10, "BLOCK_MS": 5000}
    s.update(settings)
    return redis_daemon(r, **s)


def test_stream_acknowledged_after_storage():
    with RedisServer(persist=False) as r, stream_daemon(r, "solo") as d:
        wait_for(lambda: "reading stream" in d.log(), what="group ready")
        for i in range(30):
            xadd_event(r, {"a": "incr", "n": "streamed", "v": 1})
        xadd_event(r, [{"n": "streamed", "v": 2}, {"n": "streamed", "v": 3}])
        xadd_event(r, {"n": "streamed", "v": 100}, private="wrong")  # refused
        r.command("XADD", "gottwall:events", "*", "project", PROJECT,
                  "event", "{}")                                      # no auth
        wait_for(lambda: d.total(PROJECT, "streamed") == 35, what="35 stored")
        wait_for(lambda: pending(r) == {}, what="everything acknowledged")
        assert metric(d, "gottwall_auth_failures_total") == 1
        assert metric(d, "gottwall_events_dropped_total", "bad_entry") == 1
        time.sleep(0.5)
        assert d.total(PROJECT, "streamed") == 35


def test_stream_clean_stop_leaves_nothing_pending():
    with RedisServer(persist=False) as r:
        d = stream_daemon(r, "first", BLOCK_MS=200)
        d.start()
        try:
            wait_for(lambda: "reading stream" in d.log(), what="group ready")
            for i in range(50):
                xadd_event(r, {"n": "clean", "v": 1})
            wait_for(lambda: d.total(PROJECT, "clean") == 50, what="50 stored")
            assert d.stop() == 0
            assert pending(r) == {}, pending(r)
        finally:
            d.cleanup()


def test_stream_survivor_takes_over_a_killed_aggregator():
    """A is stopped (SIGSTOP) while its XREADGROUP is blocked, so Redis
    delivers entries to it that it never processes; then it is killed with
    SIGKILL. B takes them over after CLAIM_IDLE_MS: every event is stored
    exactly once, all of them by B."""
    n = 200
    with RedisServer(persist=False) as r:
        a = stream_daemon(r, "agg-a")
        b = stream_daemon(r, "agg-b")
        a.start()
        b.start()
        try:
            for d in (a, b):
                wait_for(lambda: "reading stream" in d.log(), what="group ready")
            wait_for(lambda: blocked_readers(r) == 2,
                     what="both XREADGROUPs blocked")
            a.signal(signal.SIGSTOP)
            # In one MULTI, so that the blocked reads are served whole
            # batches: the stopped aggregator receives up to BATCH entries.
            xadd_atomic(r, [{"n": "exactly_once", "v": 1}] * n)
            wait_for(lambda: pending(r).get("agg-a", 0) > 0,
                     what="entries delivered to the stopped aggregator")
            held = pending(r)["agg-a"]
            a.signal(signal.SIGKILL)
            a.proc.wait(10)
            a.proc = None
            wait_for(lambda: b.total(PROJECT, "exactly_once") == n,
                     what="all %d stored by the survivor (A held %d)" % (n, held))
            wait_for(lambda: sum(pending(r).values()) == 0, what="all acked")
            assert "took over %d stream entries" % held in b.log(), \
                b.log()[-2000:]
            time.sleep(2.0)  # further claims change nothing
            assert b.total(PROJECT, "exactly_once") == n
        finally:
            a.cleanup()
            b_rc = b.stop()
            b.cleanup()
        assert b_rc == 0


def test_stream_two_aggregators_shared_redis_storage():
    """Two `gottwall aggregator start` processes and one `gottwall server
    start` share a Redis storage. Both count a first wave (stored and
    acknowledged); then A is stopped while blocked in XREADGROUP, receives
    a second wave it never processes, and is killed with SIGKILL. The
    server reads every event exactly once."""
    if not plugin_built("redis"):
        print("SKIP (this test): the redis storage plugin was not built")
        return
    with RedisServer(persist=False) as r:
        mk = lambda consumer: Daemon(
            command=("aggregator", "start"), storage="redis",
            storage_settings=r.settings(), server=False,
            backends={"redis": {"PLUGIN": "redis", "PORT": r.port,
                                "MODE": "stream", "CONSUMER": consumer,
                                "CLAIM_IDLE_MS": 1500, "BATCH": 10,
                                "PERIODIC_PROCESSOR_TIME": 200,
                                "BLOCK_MS": 5000}})
        a, b = mk("agg-a"), mk("agg-b")
        srv = Daemon(command=("server", "start"), storage="redis",
                     storage_settings=r.settings(), backends={})
        for d in (a, b, srv):
            d.start()
        try:
            for d in (a, b):
                wait_for(lambda: "reading stream" in d.log(), what="group ready")
            for i in range(100):
                xadd_event(r, {"n": "shared", "v": 1})
            wait_for(lambda: srv.total(PROJECT, "shared") == 100,
                     what="first wave stored")
            wait_for(lambda: sum(pending(r).values()) == 0, what="first wave acked")
            wait_for(lambda: blocked_readers(r) == 2,
                     what="both XREADGROUPs blocked")
            a.signal(signal.SIGSTOP)
            xadd_atomic(r, [{"n": "shared", "v": 1}] * 200)
            wait_for(lambda: pending(r).get("agg-a", 0) > 0,
                     what="entries delivered to the stopped aggregator")
            held = pending(r)["agg-a"]
            a.signal(signal.SIGKILL)
            a.proc.wait(10)
            a.proc = None
            wait_for(lambda: srv.total(PROJECT, "shared") == 300,
                     what="all 300 stored (A held %d)" % held)
            wait_for(lambda: sum(pending(r).values()) == 0, what="all acked")
            assert "took over %d stream entries" % held in b.log(), \
                b.log()[-2000:]
            time.sleep(2.0)
            assert srv.total(PROJECT, "shared") == 300
        finally:
            a.cleanup()
            rcs = [b.stop(), srv.stop()]
            b.cleanup()
            srv.cleanup()
        assert rcs == [0, 0], rcs


def test_stream_entries_over_max_pending_stay_pending():
    """Storage down, MAX_PENDING_SERIES = 5: of 10 entries of new metrics,
    the ones admission refuses (503 over HTTP) are not acknowledged: they
    wait in the aggregator, which reads nothing more meanwhile, are taken
    once the storage is back, and all 10 are stored exactly once."""
    so = os.path.join(os.environ.get("GW_BUILDDIR", "."), "tests", "fixtures",
                      "plugins", ".libs", "storage_fixture.so")
    with RedisServer(persist=False) as r:
        s = {"PLUGIN": "redis", "PORT": r.port, "MODE": "stream",
             "CONSUMER": "solo", "CLAIM_IDLE_MS": 1000,
             "PERIODIC_PROCESSOR_TIME": 200, "BATCH": 10, "BLOCK_MS": 200}
        d = Daemon(backends={"redis": s}, storage=so,
                   extra={"MAX_PENDING_SERIES": 5, "PERIODS": ["all"]})
        down = os.path.join(d.tmp, "down")
        d.storage_settings["DOWN_FILE"] = down
        open(down, "w").close()
        with d:
            wait_for(lambda: "reading stream" in d.log(), what="group ready")
            for i in range(10):
                xadd_event(r, {"n": "held%d" % i})
            wait_for(lambda: metric(d, "gottwall_events_dropped_total",
                                    "max_pending_series") >= 5,
                     what="5 refused at admission")
            # 5 taken, the 6th waits; what is behind it is not read.
            before = pending(r)
            assert 6 <= before.get("solo", 0) <= 10, before
            xadd_event(r, {"n": "later"})
            time.sleep(0.6)
            assert pending(r) == before, (before, pending(r))
            os.unlink(down)
            wait_for(lambda: pending(r) == {}, timeout=20,
                     what="every entry acknowledged")
            for i in range(10):
                assert d.total(PROJECT, "held%d" % i) == 1, i
            assert d.total(PROJECT, "later") == 1
            assert "waits, and reading stops until it is taken: the storage " \
                   "is behind: 5 series wait to be stored" in d.log()
            assert "the waiting stream entries are taken: reading again" \
                in d.log()


if __name__ == "__main__":
    run_tests([
        test_original_client_format,
        test_notification_drains_more_than_max_loading,
        test_inline_event_in_the_message,
        test_wrong_keys_ignored_and_counted,
        test_redis_restart_loses_nothing_in_the_set,
        test_stream_acknowledged_after_storage,
        test_stream_clean_stop_leaves_nothing_pending,
        test_stream_survivor_takes_over_a_killed_aggregator,
        test_stream_two_aggregators_shared_redis_storage,
        test_stream_entries_over_max_pending_stay_pending,
    ])
