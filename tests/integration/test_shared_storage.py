"""Several aggregators and one server sharing one storage (SPEC §1, §6).

Two `gottwall aggregator start` processes and one `gottwall server start`
run against one real redis-server (then one PostgreSQL). Events go to both
aggregators at once; the server reads the exact sum of both for counters,
the exact average over both for avg, and the newest value for gauges. For
Redis, data written by the original Python GottWall (its key layout,
including the `None` field of the all period) reads back through the API.
"""

import threading
import time

from gwtest import Daemon, run_tests, wait_for
from services import PostgresServer, RedisServer, plugin_built, skip

PROJECT = "test_project"
TS = 1392454739  # 2014-02-15 08:58:59 UTC
DAY = 1392422400


def send_many(d, n, tag, out):
    """n counter events in batches of 50, alternating two filter values."""
    sent = 0
    while sent < n:
        k = min(50, n - sent)
        events = [{"n": "orders", "v": 1,
                   "f": {"from": tag, "status": ["paid", "new"][(sent + i) % 2]}}
                  for i in range(k)]
        status, body = d.send_http(PROJECT, events)
        assert status == 200, (status, body)
        sent += k
    out[tag] = sent


def shared(storage, settings):
    aggs = [Daemon(command=("aggregator", "start"), storage=storage,
                   storage_settings=settings, server=False) for _ in range(2)]
    srv = Daemon(command=("server", "start"), storage=storage,
                 storage_settings=settings, backends={})
    try:
        for d in aggs + [srv]:
            d.start()
        out = {}
        threads = [threading.Thread(target=send_many, args=(d, 1000 + 500 * i,
                                                             "agg%d" % i, out))
                   for i, d in enumerate(aggs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert out == {"agg0": 1000, "agg1": 1500}, out

        # avg over both: (10 + 20) on one, 60 on the other: 30 exactly.
        assert aggs[0].send_http(PROJECT, [{"n": "latency", "v": 10, "ts": TS},
                                           {"n": "latency", "v": 20, "ts": TS}],
                                 action="avg")[0] == 200
        assert aggs[1].send_http(PROJECT, {"n": "latency", "v": 60, "ts": TS},
                                 action="avg")[0] == 200
        # gauge: the newest ts wins whichever aggregator had it.
        assert aggs[1].send_http(PROJECT, {"n": "temp", "v": 21.5, "ts": TS + 30},
                                 action="gauge")[0] == 200
        time.sleep(0.5)
        assert aggs[0].send_http(PROJECT, {"n": "temp", "v": -4, "ts": TS},
                                 action="gauge")[0] == 200

        wait_for(lambda: srv.total(PROJECT, "orders") == 2500, timeout=30,
                 step=0.2, what="the server reads 2500 orders")
        assert srv.total(PROJECT, "orders", filter_name="from",
                         filter_value="agg0") == 1000
        assert srv.total(PROJECT, "orders", filter_name="from",
                         filter_value="agg1") == 1500
        assert srv.total(PROJECT, "orders", filter_name="status",
                         filter_value="paid") == 500 + 750
        wait_for(lambda: srv.total(PROJECT, "latency") == 30, timeout=10,
                 what="the average over both aggregators")
        day = srv.stats(PROJECT, "latency", period="day", from_date=DAY,
                        to_date=DAY)
        assert day["range"] == [[DAY, 30]], day
        wait_for(lambda: srv.total(PROJECT, "temp") == 21.5, timeout=10,
                 what="the newest gauge value")
        time.sleep(0.5)  # the older gauge flushed too: still the newer value
        assert srv.total(PROJECT, "temp") == 21.5
        metrics = srv.get_json("/api/v1/%s/metrics" % PROJECT)
        assert sorted(metrics) == ["latency", "orders", "temp"], metrics
        assert sorted(metrics["orders"]["from"]) == ["agg0", "agg1"], metrics
        assert sorted(metrics["orders"]["status"]) == ["new", "paid"], metrics
        print("%s: two aggregators stored 1000 + 1500 orders; the server reads "
              "%d" % (storage, srv.total(PROJECT, "orders")))
        for d in aggs + [srv]:
            assert d.stop() == 0, d.log()[-3000:]
    finally:
        for d in aggs + [srv]:
            d.cleanup()


def test_shared_redis():
    if not plugin_built("redis"):
        skip("the redis storage was not built")
    with RedisServer(persist=False) as r:
        shared("redis", r.settings())


def test_shared_postgres():
    if not plugin_built("postgres"):
        skip("the postgres storage was not built")
    with PostgresServer() as pg:
        shared("postgres", pg.settings())


def test_redis_reads_original_data():
    """Keys as the original Python GottWall wrote them read back."""
    if not plugin_built("redis"):
        skip("the redis storage was not built")
    with RedisServer(persist=False) as r:
        r.command("HINCRBY", "shop;visits;all", "None", 5)
        r.command("HINCRBY", "shop;visits;day", str(DAY), 7)
        r.command("HINCRBY", "shop;visits;day;device|ios", str(DAY), 3)
        r.command("SADD", "shop-metrics", "visits")
        r.command("SADD", "shop-metrics-filters:visits", "device")
        r.command("SADD", "shop-metrics-filter-values:visits:device", "ios")
        with Daemon(command=("start",), storage="redis",
                    storage_settings=r.settings()) as d:
            assert d.get_json("/api/v1/shop/metrics") == {"visits": {"device": ["ios"]}}
            assert d.total("shop", "visits") == 5
            day = d.stats("shop", "visits", period="day", from_date=DAY, to_date=DAY)
            assert day["range"] == [[DAY, 7]], day
            dev = d.stats("shop", "visits", period="day", from_date=DAY,
                          to_date=DAY, filter_name="device", filter_value="ios")
            assert dev["range"] == [[DAY, 3]], dev
            # New counts add to the old ones, in the same keys.
            status, _ = d.send_http("shop", {"n": "visits", "ts": TS + 60,
                                             "f": {"device": "ios"}})
            assert status == 200
            wait_for(lambda: d.total("shop", "visits") == 6, timeout=10,
                     what="old + new in the all bucket")
            assert r.command("HGET", "shop;visits;day", str(DAY)) == "8"
            assert r.command("HGET", "shop;visits;day;device|ios", str(DAY)) == "4"


if __name__ == "__main__":
    run_tests([test_shared_redis, test_shared_postgres,
               test_redis_reads_original_data])
