"""Event values are bounded (issue 16, item 14: hidden overflow).

Before: two incr of 1.7e308 stored +inf and the read API showed 0. Now,
against the real daemon:

- every transport refuses, at admission, a value that is not finite or
  has |v| > 1e300 (HTTP 400 with the rule, tcpip and statsd count it),
  all as gottwall_events_dropped_total{reason="value_out_of_range"};
  that includes 1e400 in JSON (it does not fit a double), statsd's nan,
  inf and 1e999, a sample rate that scales a value past the bound and a
  gauge delta that would;
- values up to the bound add up exactly (1e300 + 1e300 reads 2e300);
- a stored sum that would overflow saturates at DBL_MAX, counted in
  gottwall_values_saturated_total{where="storage"} (a real redis-server,
  its cell seeded near DBL_MAX as a long-running deployment would have it);
- a non-finite number an old storage holds is shown as null with a log
  line, never as 0.
"""

import json
import re
import socket
import sys
import time

from gwtest import Daemon, finish, run_tests, s1_header, s2_header, wait_for
from services import RedisServer, plugin_built

P = "test_project"
DBL_MAX = sys.float_info.max
RULE = "|v| must be at most 1e300"
D = None


def metrics_lines(d, prefix):
    """The /metrics lines that start with prefix, in order."""
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, status
    return [l for l in body.decode().splitlines() if l.startswith(prefix)]


def dropped(d, transport):
    """transport's gottwall_events_dropped_total lines (value_out_of_range
    and any other reason)."""
    return metrics_lines(d, 'gottwall_events_dropped_total{transport="%s"'
                         % transport)


def settle(d, name, want):
    wait_for(lambda: d.total(P, name) == want, timeout=10,
             what="%s == %r (last %r)" % (name, want, d.total(P, name)))


def post(d, events, action="incr"):
    """POSTs events (a str is sent as it is) signed with S1."""
    if not isinstance(events, str):
        return d.send_http(P, events, action=action)
    pub, priv = d.projects[P]
    status, _, data = d.request(
        "POST", "/api/v1/%s/%s" % (P, action), body=events,
        headers={"Content-Type": "application/json",
                 "X-GottWall-Auth": s1_header(pub, priv)},
        port=d.port("http"))
    return status, data


def error(msg):
    return b'{"error": "' + msg.encode() + b'"}'


def test_http():
    cases = [
        ({"n": "h", "v": 1.7e308},
         '\\"v\\" 1.7e308 is out of range: ' + RULE),
        ({"n": "h", "value": -1e301},
         '\\"value\\" -1e301 is out of range: ' + RULE),
        ('{"n": "h", "v": 1e400}',
         "number 1e400 is out of range: %s (line 1 column 21)" % RULE),
        ([{"n": "h", "v": 1}, {"n": "hg", "v": 2e300, "a": "gauge"}],
         'event 2: \\"v\\" 2e300 is out of range: ' + RULE),
        ('[{"n": "h"}, {"n": "h", "v": -1e999}]',
         "number -1e999 is out of range: %s (line 1 column 35)" % RULE),
        ({"n": "h_avg", "v": 1.0000000000000002e300, "a": "avg"},
         '\\"v\\" 1.0000000000000002e300 is out of range: ' + RULE),
    ]
    for body, msg in cases:
        st, data = post(D, body)
        assert (st, data) == (400, error(msg)), (body, st, data)
    # Nothing of them was stored; the bound itself is accepted.
    assert post(D, {"n": "h", "v": 1e300}) == (200, b"OK")
    assert post(D, {"n": "h", "v": -1e300}) == (200, b"OK")
    assert post(D, [{"n": "two", "v": 1e300}, {"n": "two", "v": 1e300}]) == \
        (200, b"OK")
    settle(D, "two", 2e300)
    assert D.total(P, "h") == 0
    assert dropped(D, "http") == [
        'gottwall_events_dropped_total{transport="http",'
        'reason="value_out_of_range"} 7']


def test_tcpip():
    pub, priv = D.projects[P]
    s = socket.create_connection(("127.0.0.1", D.port("tcpip")), timeout=10)
    s.sendall(s2_header(P, pub, priv).encode() + b"--stream-auth--")
    assert s.recv(2) == b"OK"
    chunks = ['{"n": "t", "v": 5}', '{"n": "t", "v": 1e301}',
              '{"n": "t", "v": 1e400}', '{"n": "t", "v": -1.7976931348623157e308}',
              '{"n": "t", "v": 7}']
    s.sendall("".join(c + "--chunk--" for c in chunks).encode())
    settle(D, "t", 12)
    s.close()
    assert dropped(D, "tcpip") == [
        'gottwall_events_dropped_total{transport="tcpip",'
        'reason="value_out_of_range"} 3']


def test_statsd():
    lines = [
        "sd:1e999|c",          # overflows a double
        "sd:nan|g",            # not a number
        "sd:inf|ms",
        "sd:-Infinity|c",
        "sd:1e300|c|@0.001",   # 1e303 once scaled by the sample rate
        "sd:2e300|c",
        "sd:4|c",
        "g:1e300|g",
        "g:+1e300|g",          # the gauge would become 2e300: refused
        "g:-1e300|g",          # 1e300 - 1e300: the refused value is not kept
        "g:+7|g",
        "sd:1e300|c|@0.5",     # 2e300
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto("\n".join(lines).encode(), ("127.0.0.1", D.port("statsd")))
    sock.close()
    settle(D, "sd", 4)
    settle(D, "g", 7)
    assert dropped(D, "statsd") == [
        'gottwall_events_dropped_total{transport="statsd",'
        'reason="value_out_of_range"} 8']


def test_saturation_counters_start_at_zero():
    assert metrics_lines(D, "gottwall_values_saturated_total") == [
        'gottwall_values_saturated_total{where="aggregator"} 0',
        'gottwall_values_saturated_total{where="storage"} 0']


def redis_key(metric, period="all"):
    return "%s;%s;%s" % (P, metric, period)


def test_storage_saturates_and_old_inf_is_null():
    if not plugin_built("redis"):
        print("SKIP: the redis storage was not built")
        return
    with RedisServer(persist=False) as r:
        d = Daemon(backends={"http": {}}, storage="redis",
                   storage_settings=r.settings())
        d.start()
        code = 1
        try:
            # A deployment's cell already near DBL_MAX (beyond what 1e300
            # events can reach in a test) and one holding a number a double
            # cannot hold, as an older GottWall could leave it.
            assert d.send_http(P, {"n": "old", "v": 1}) == (200, b"OK")
            assert d.send_http(P, {"n": "big", "v": 1}) == (200, b"OK")
            wait_for(lambda: d.total(P, "old") == 1 and d.total(P, "big") == 1,
                     timeout=10, what="both stored")
            r.command("HSET", redis_key("big"), "0", "1.7976931348623157e308")
            r.command("HSET", redis_key("old"), "0", "1e400")
            assert d.send_http(P, {"n": "big", "v": 1e300}) == (200, b"OK")
            sat = 'gottwall_values_saturated_total{where="storage"} 1'
            wait_for(lambda: sat in metrics_lines(d, "gottwall_values_sat"),
                     timeout=10, what=sat)
            assert d.total(P, "big") == DBL_MAX
            assert r.command("HGET", redis_key("big"), "0") == \
                "1.7976931348623157e+308"
            # The other periods' cells were far from the bound.
            assert d.stats(P, "big", period="year")["range"][-1][1] == 1e300
            assert metrics_lines(d, "gottwall_values_saturated_total") == [
                'gottwall_values_saturated_total{where="aggregator"} 0',
                'gottwall_values_saturated_total{where="storage"} 1']
            # The storage goes on: later batches are applied.
            assert d.send_http(P, {"n": "after", "v": 5}) == (200, b"OK")
            wait_for(lambda: d.total(P, "after") == 5, timeout=10,
                     what="after == 5")

            st, _, body = d.request("GET", "/api/v1/%s/stats?name=old&period=all"
                                    % P)
            assert st == 200, (st, body)
            got = json.loads(body)
            assert got["range"] == [[0, None]], got
            assert (got["avg"], got["min"], got["max"]) == (None, None, None), got
            assert b"null" in body and b"Infinity" not in body, body
            want = ('storage returned a non-finite value (inf) for project '
                    '"test_project" metric "old" period all bucket 0 '
                    '(1 of 1 in the range): shown as null')
            wait_for(lambda: want in d.log(), timeout=5, what="the log line")
            code = 0
        finally:
            code = finish(d, code)
        assert code == 0, "daemon on redis failed"


def main():
    global D
    D = Daemon(backends={"http": {}, "tcpip": {},
                         "statsd": {"PROJECT": P, "TCP": False}})
    D.start()
    code = 1
    try:
        run_tests([test_saturation_counters_start_at_zero, test_http,
                   test_tcpip, test_statsd])
    except SystemExit as e:
        code = e.code
    code = finish(D, code)
    if code == 0:
        try:
            run_tests([test_storage_saturates_and_old_inf_is_null])
        except SystemExit as e:
            code = e.code
    sys.exit(code)


if __name__ == "__main__":
    main()
