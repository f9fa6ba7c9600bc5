"""TCP stream framing is independent of how the bytes arrive (property).

One stream (auth header, delimiter, then chunks: plain events, an event
with a filter, a chunk with bad JSON, a blank chunk, an event whose JSON
holds the text "--chunk" without the trailing "--", and a last event
without a trailing delimiter) is sent once per split point k, as two
writes stream[:k] and stream[k:] with a pause between them so the daemon
reads them separately, on a new connection each time. Whatever k is, the
daemon must see the same events: the stored totals and the /metrics
counters must be exactly (len(stream) + 1) times those of one stream. The
same is then checked with the stream cut into 1-byte writes.
"""

import re
import socket
import time

from gwtest import Daemon, run_tests, s2_header, wait_for

PUB, PRIV = "my_public_key", "secret_key"


def metric(text, name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(lab)), text, re.M)
    return int(m.group(1)) if m else 0


def stream():
    chunks = ['{"n":"frame"}', '{"n":"frame","f":{"k":"v"}}', '{"n":',
              '   ', '{"n":"frame","x":"a--chunk b"}', '{"n":"frame","v":2}']
    return (s2_header("test_project", PUB, PRIV) + "--stream-auth--"
            + "--chunk--".join(chunks)).encode()
    # 4 valid events of total value 5 (the last without a delimiter is
    # processed when the connection closes), 1 bad chunk, 1 blank chunk.


def send(port, parts):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i, p in enumerate(parts):
        if p:
            s.sendall(p)
        if i + 1 < len(parts):
            time.sleep(0.002)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        r = s.recv(16)
        if not r:
            break
        reply += r
    s.close()
    return reply


def test_every_split_point():
    d = Daemon(backends={"tcpip": {}})
    with d:
        port = d.port("tcpip")
        data = stream()
        assert send(port, [data]) == b"OK"
        time.sleep(0.3)
        one = d.request("GET", "/metrics")[2].decode()
        per = {k: metric(one, "gottwall_events_%s_total" % k, transport="tcpip")
               for k in ("received", "accepted")}
        per_bad = metric(one, "gottwall_events_dropped_total", transport="tcpip",
                         reason="bad_json")
        r = d.get_json("/api/v1/test_project/stats?name=frame&period=all")
        per_total = r["range"][0][1]
        assert per["accepted"] >= 3 and per_bad == 1, (per, per_bad, one)
        n = 1
        for k in range(len(data) + 1):
            assert send(port, [data[:k], data[k:]]) == b"OK", k
            n += 1
        assert send(port, [data[i:i + 1] for i in range(len(data))]) == b"OK"
        n += 1

        def counters():
            t = d.request("GET", "/metrics")[2].decode()
            return ({k: metric(t, "gottwall_events_%s_total" % k, transport="tcpip")
                     for k in ("received", "accepted")},
                    metric(t, "gottwall_events_dropped_total", transport="tcpip",
                           reason="bad_json"))
        want = ({k: v * n for k, v in per.items()}, per_bad * n)
        wait_for(lambda: counters() == want, timeout=10,
                 what="counters %r" % (want,))
        wait_for(lambda: d.get_json("/api/v1/test_project/stats?name=frame&period=all")
                 ["range"][0][1] == per_total * n, timeout=10,
                 what="total %d" % (per_total * n))
        r = d.get_json("/api/v1/test_project/stats?name=frame&period=all"
                       "&filter_name=k&filter_value=v")
        assert r["range"][0][1] == n, r
        print("  %d connections, %d bytes each: identical events" % (n, len(data)))


if __name__ == "__main__":
    run_tests([test_every_split_point])
