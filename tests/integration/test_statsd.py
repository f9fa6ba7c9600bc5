"""The statsd transport against the real daemon (SPEC §5 statsd).

Each metric type is sent over UDP (and TCP) as any statsd client would, and
the exact values are read back through the read API. Malformed lines are
counted on GET /metrics by reason while the good lines of the same datagram
are kept.
"""

import os
import re
import socket
import subprocess
import sys
import time

from gwtest import Daemon, free_port, run_tests, wait_for, wait_port

PROJECT = "test_project"


def statsd_daemon(**settings):
    s = {"PROJECT": PROJECT}
    s.update(settings)
    return Daemon(backends={"statsd": s})


def send_udp(d, payload):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(payload.encode() if isinstance(payload, str) else payload,
                ("127.0.0.1", d.port("statsd")))
    sock.close()


def wait_total(d, name, expect, **params):
    """Waits until the all-time value of a series is expect; returns it."""
    return wait_for(lambda: d.total(PROJECT, name, **params) == expect
                    and expect, timeout=10,
                    what="%s%s == %r (last %r)" % (
                        name, params, expect, d.total(PROJECT, name, **params)))


def metrics_text(d):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, status
    return body.decode()


def counter(d, name, reason=None):
    """One of the statsd instance's counters from GET /metrics (0 if absent)."""
    label = 'transport="statsd"' + (',reason="%s"' % reason if reason else "")
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(label)),
                  metrics_text(d), re.M)
    return int(m.group(1)) if m else 0


def test_counter_with_rate():
    with statsd_daemon() as d:
        send_udp(d, "orders:3|c")
        send_udp(d, "orders:1|c|@0.1")   # sampled: counts 10
        send_udp(d, "orders:2|c:5|c")    # two values on one line
        wait_total(d, "orders", 20)
        time.sleep(0.3)
        assert d.total(PROJECT, "orders") == 20


def test_timer_average_is_exact():
    """A timer is a timing: its value is the mean, as an avg's was."""
    with statsd_daemon() as d:
        send_udp(d, "req:10|ms\nreq:20|ms")
        send_udp(d, "req:60|h|@0.5")     # the rate does not change an average
        wait_total(d, "req", 30)
        r = d.stats(PROJECT, "req", period="all")
        assert r["range"][0][1] == 30, r
        # ... nor the count: the values received.
        assert d.stats(PROJECT, "req", period="all", stat="count")["range"][0][1] == 3
        assert d.stats(PROJECT, "req", period="all", stat="max")["range"][0][1] == 60
        assert d.get_json("/api/v1/%s/kinds" % PROJECT) == {"req": "timing"}


def test_gauge_last_value_and_deltas():
    with statsd_daemon() as d:
        send_udp(d, "temp:20|g")
        wait_total(d, "temp", 20)
        send_udp(d, "temp:+5|g\ntemp:-2|g")
        wait_total(d, "temp", 23)
        send_udp(d, "temp:7|g")           # an absolute value resets it
        wait_total(d, "temp", 7)
        send_udp(d, "temp:-10|g")
        wait_total(d, "temp", -3)
        send_udp(d, "fresh:+4|g")         # a first delta starts from 0
        wait_total(d, "fresh", 4)


def test_tags_become_filters():
    with statsd_daemon() as d:
        send_udp(d, "api:1|c|#env:prod,host:a")
        send_udp(d, "api:1|c|#env:prod,host:a")
        send_udp(d, "api:1|c|#env:dev,canary")
        wait_total(d, "api", 3)
        wait_total(d, "api", 2, filter_name="env", filter_value="prod")
        assert d.total(PROJECT, "api", filter_name="env", filter_value="dev") == 1
        assert d.total(PROJECT, "api", filter_name="host", filter_value="a") == 2
        assert d.total(PROJECT, "api", filter_name="canary", filter_value="true") == 1
        meta = d.get_json("/api/v1/%s/metrics" % PROJECT)
        assert sorted(meta["api"]["env"]) == ["dev", "prod"], meta
        assert meta["api"]["canary"] == ["true"], meta


def test_telegraf_tags_and_dogstatsd_events():
    """Telegraf's tags (name,k=v:1|c, as hot-shots sends with telegraf:
    true) become filters exactly as DogStatsD's do, not a metric named
    "hs.telegraf,env=prod"; DogStatsD events and service checks are counted
    as ignored, not as bad lines, and nothing is logged per line."""
    with statsd_daemon() as d:
        send_udp(d, "hs.telegraf,env=prod,host=a:1|c")
        send_udp(d, "hs.telegraf,env=prod:2|c")
        send_udp(d, "hs.telegraf,env=dev:4|c|@0.5")
        send_udp(d, "_e{5,11}:title|hello world|#env:prod\n"
                    "_sc|db.up|0|#env:prod|m:fine\n_e{1,1}:a|b")
        wait_total(d, "hs.telegraf", 11)
        assert d.total(PROJECT, "hs.telegraf", filter_name="env",
                       filter_value="prod") == 3
        assert d.total(PROJECT, "hs.telegraf", filter_name="env",
                       filter_value="dev") == 8
        assert d.total(PROJECT, "hs.telegraf", filter_name="host",
                       filter_value="a") == 1
        meta = d.get_json("/api/v1/%s/metrics" % PROJECT)
        assert sorted(meta) == ["hs.telegraf"], meta
        assert sorted(meta["hs.telegraf"]) == ["env", "host"], meta
        ignored = re.search(r'^gottwall_events_ignored_total\{transport="statsd",'
                            r'reason="dogstatsd_event"\} (\d+)$',
                            metrics_text(d), re.M)
        assert ignored and int(ignored.group(1)) == 3, metrics_text(d)
        assert counter(d, "gottwall_events_dropped_total", "bad_line") == 0
        assert counter(d, "gottwall_events_received_total") == 6
        assert "_e{" not in d.log() and "_sc|" not in d.log()


def test_forty_lines_in_one_datagram():
    with statsd_daemon() as d:
        send_udp(d, "\n".join("batch:1|c" for _ in range(40)) + "\n")
        wait_total(d, "batch", 40)
        assert counter(d, "gottwall_events_accepted_total") == 40


def test_malformed_lines_counted_others_kept():
    with statsd_daemon() as d:
        send_udp(d, "good:1|c\nbad line\nx:1|q\n\ngood:2|c\nusers:bob|s\n"
                    "y:1|c|@7\ngood:4|c")
        wait_total(d, "good", 7)
        wait_for(lambda: counter(d, "gottwall_events_dropped_total", "bad_line") == 3,
                 what="3 bad lines counted")
        # A set (|s) is a metric since issue 15: bob is one member.
        assert counter(d, "gottwall_events_dropped_total", "unsupported_type") == 0
        wait_total(d, "users", 1)
        assert counter(d, "gottwall_events_accepted_total") == 4
        assert counter(d, "gottwall_events_received_total") == 7
        assert "dropped a statsd line: missing ':' after the metric name" in d.log()


def test_tcp_lines_split_across_writes():
    with statsd_daemon(MAX_LINE=100) as d:
        wait_port(d.port("statsd"), proc=d.proc)
        c = socket.create_connection(("127.0.0.1", d.port("statsd")))
        c.sendall(b"tcpc:2|c\ntcpc:3|c\ntcp")
        time.sleep(0.2)
        c.sendall(b"c:5|c\n")
        c.sendall(b"long:" + b"9" * 200 + b"|c\ntcpc:1|c\n")
        c.sendall(b"tail:1|c")            # no '\n': handled at EOF
        c.close()
        wait_total(d, "tcpc", 11)
        wait_total(d, "tail", 1)
        assert counter(d, "gottwall_events_dropped_total", "line_too_long") == 1
        assert d.total(PROJECT, "long") == 0


def test_tcp_can_be_turned_off():
    with statsd_daemon(TCP=False) as d:
        send_udp(d, "udponly:1|c")
        wait_total(d, "udponly", 1)
        try:
            socket.create_connection(("127.0.0.1", d.port("statsd")), timeout=1).close()
            raise AssertionError("TCP accepted with TCP = false")
        except ConnectionRefusedError:
            pass


def test_unknown_project_refused_at_start():
    d = statsd_daemon(PROJECT="nope")
    try:
        d.start(wait=False)
        rc = d.proc.wait(15)
        assert rc != 0, rc
        assert 'PROJECT "nope" is not in PROJECTS' in d.log(), d.log()
    finally:
        d.proc = None
        d.cleanup()


def test_missing_project_refused():
    d = Daemon(backends={"statsd": {}})
    try:
        d.start(wait=False)
        rc = d.proc.wait(15)
        assert rc != 0, rc
        assert "PROJECT is required" in d.log(), d.log()
    finally:
        d.proc = None
        d.cleanup()


if __name__ == "__main__":
    run_tests([
        test_counter_with_rate,
        test_timer_average_is_exact,
        test_gauge_last_value_and_deltas,
        test_tags_become_filters,
        test_telegraf_tags_and_dogstatsd_events,
        test_forty_lines_in_one_datagram,
        test_malformed_lines_counted_others_kept,
        test_tcp_lines_split_across_writes,
        test_tcp_can_be_turned_off,
        test_unknown_project_refused_at_start,
        test_missing_project_refused,
    ])
