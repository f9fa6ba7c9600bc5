"""A storage outage while events keep arriving (SPEC §6, reliability #32).

`gottwall start` on a real redis-server (then PostgreSQL); a client keeps
POSTing signed event batches over HTTP; the storage is killed for
GW_OUTAGE_SECONDS (default 30) and restarted on the same port. Afterwards
the stored counts equal the accepted counts exactly (total and per filter
value), and the daemon's log shows the outage once and the recovery once.
"""

import os
import threading
import time

from gwtest import Daemon, run_tests, wait_for
from services import PostgresServer, RedisServer, plugin_built, skip

OUTAGE = float(os.environ.get("GW_OUTAGE_SECONDS", "30"))
PROJECT = "test_project"


class Sender(threading.Thread):
    """POSTs batches of 20 events until stopped; counts what was accepted."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.accepted = 0
        self.paid = 0
        self.refused = 0
        self.halt = threading.Event()
        self.errors = []

    def run(self):
        i = 0
        while not self.halt.is_set():
            events = [{"n": "orders", "v": 1,
                       "f": {"status": "paid" if (i + k) % 3 == 0 else "new"}}
                      for k in range(20)]
            try:
                status, body = self.d.send_http(PROJECT, events)
            except OSError as e:
                self.errors.append(repr(e))
                status = None
            if status == 200:
                self.accepted += 20
                self.paid += sum(1 for e in events if e["f"]["status"] == "paid")
            else:
                self.refused += 1
            i += 20
            time.sleep(0.005)


def outage(server, storage):
    """Runs the scenario against a started server object with .stop/.start."""
    with Daemon(command=("start",), storage=storage,
                storage_settings=server.settings()) as d:
        s = Sender(d)
        s.start()
        time.sleep(2)
        before = s.accepted
        if isinstance(server, RedisServer):
            server.stop(kill=True)
        else:
            server.stop(mode="immediate")
        time.sleep(OUTAGE)
        during = s.accepted - before
        server.start()
        time.sleep(2)
        s.halt.set()
        s.join(30)
        assert not s.errors, "client errors: %r" % s.errors[:5]
        assert s.refused == 0, "%d batches refused" % s.refused
        assert during > 0, "no event was accepted during the outage"

        def stored():
            try:
                return d.total(PROJECT, "orders") == s.accepted
            except AssertionError as e:
                # The read API answers 503 until the storage is back (a
                # restarted PostgreSQL recovers for a while on a busy
                # machine): not yet, ask again.
                if ": 503 " in str(e):
                    return False
                raise

        try:
            wait_for(stored, timeout=30, step=0.2,
                     what="stored == accepted (%d)" % s.accepted)
        except AssertionError:
            print("stored %r, accepted %d" % (d.total(PROJECT, "orders"), s.accepted))
            raise
        total = d.total(PROJECT, "orders")
        paid = d.total(PROJECT, "orders", filter_name="status", filter_value="paid")
        new = d.total(PROJECT, "orders", filter_name="status", filter_value="new")
        print("%s: accepted %d events (%d during a %.0f s outage); stored %d "
              "(paid %d, new %d)" % (storage, s.accepted, during, OUTAGE, total,
                                     paid, new))
        assert total == s.accepted, (total, s.accepted)
        assert paid == s.paid, (paid, s.paid)
        assert new == s.accepted - s.paid, (new, s.accepted - s.paid)
        log = d.log()
        assert log.count("storage unreachable") == 1, \
            "outage logged %d times:\n%s" % (log.count("storage unreachable"),
                                             log[-3000:])
        assert log.count("storage back after") == 1, \
            "recovery logged %d times:\n%s" % (log.count("storage back after"),
                                               log[-3000:])


def test_redis_outage():
    if not plugin_built("redis"):
        skip("the redis storage was not built")
    with RedisServer(persist=True) as r:
        outage(r, "redis")


def test_postgres_outage():
    if not plugin_built("postgres"):
        skip("the postgres storage was not built")
    with PostgresServer() as pg:
        outage(pg, "postgres")


if __name__ == "__main__":
    run_tests([test_redis_outage, test_postgres_outage])
