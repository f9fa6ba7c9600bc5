"""The redis transport's trust boundary (issue 16, item 8), against a real
redis-server and the real daemon.

pubsub mode is the original client's protocol: anyone who can write to the
Redis and knows a project's public key can SADD events that the sweep
counts, and MONITOR shows the private key in every channel name. So it is
for a Redis only trusted producers can reach, and the daemon says so at
start when pubsub mode listens on a Redis without a password:

- no requirepass, no PASSWORD: the warning line is in the log, once;
- requirepass and PASSWORD configured: no warning, events still counted;
- stream mode without a password: no warning (every entry is signed).
"""

import re

from gwtest import Daemon, run_tests, s3_header, wait_for
from services import RedisServer

PROJECT = "test_project"
PUB, PRIV = "my_public_key", "secret_key"
CHANNEL = "gottwall:%s:%s:%s" % (PROJECT, PUB, PRIV)

WARNING = (r"^\S+Z warning \[transport:redis:redis\] pubsub mode on redis "
           r"127\.0\.0\.1:%d without PASSWORD: anyone who can write to this "
           r"Redis can add events to a project whose public key they know, "
           r"and MONITOR shows the private keys in the channel names; use "
           r"pubsub mode only on a Redis that only trusted producers can "
           r"reach and set PASSWORD \(requirepass\), or use MODE = \"stream\", "
           r"which signs every entry$")


def daemon(r, **settings):
    s = {"PLUGIN": "redis", "PORT": r.port, "PERIODIC_PROCESSOR_TIME": 600000}
    s.update(settings)
    return Daemon(backends={"redis": s})


def warnings(d):
    return [l for l in d.log().splitlines()
            if re.match(r"^\S+Z warning \[transport:redis:redis\]", l)]


def counted_inline(r, d, name):
    """An event published on the verified channel is counted."""
    wait_for(lambda: r.command("PUBSUB", "NUMPAT") >= 1, what="PSUBSCRIBE")
    r.command("PUBLISH", CHANNEL, '{"a": "incr", "name": "%s", "value": 3}'
              % name)
    wait_for(lambda: d.total(PROJECT, name) == 3, what="%s == 3" % name)


def test_pubsub_without_password_warns():
    with RedisServer(persist=False) as r, daemon(r) as d:
        wait_for(lambda: "pubsub mode on redis" in d.log(), what="started")
        counted_inline(r, d, "open")
        got = warnings(d)
        assert len(got) == 1, got
        assert re.match(WARNING % r.port, got[0]), got[0]


def test_pubsub_with_password_does_not_warn():
    with RedisServer(persist=False, password="redis pass 1") as r, \
            daemon(r, PASSWORD="redis pass 1") as d:
        wait_for(lambda: "pubsub mode on redis" in d.log(), what="started")
        counted_inline(r, d, "closed")
        assert warnings(d) == [], warnings(d)
        assert "without PASSWORD" not in d.log()


def test_stream_without_password_does_not_warn():
    with RedisServer(persist=False) as r, \
            daemon(r, MODE="stream", PERIODIC_PROCESSOR_TIME=200) as d:
        wait_for(lambda: "reading stream" in d.log(), what="group ready")
        body = '{"n": "streamed", "v": 2}'
        r.command("XADD", "gottwall:events", "*", "project", PROJECT,
                  "auth", s3_header(PROJECT, PRIV, body), "event", body)
        wait_for(lambda: d.total(PROJECT, "streamed") == 2, what="stored")
        assert warnings(d) == [], warnings(d)
        assert "without PASSWORD" not in d.log()


if __name__ == "__main__":
    run_tests([
        test_pubsub_without_password_warns,
        test_pubsub_with_password_does_not_warn,
        test_stream_without_password_does_not_warn,
    ])
