"""The udp transport against the real daemon (SPEC §5 udp).

Both auth delimiters; several chunks per datagram (with and without a
trailing delimiter); a bad chunk dropped while the others are kept; S2
malformed, unknown project and wrong key store nothing (the original let
them through); S3 signs the payload (tampered and replayed datagrams are
refused); datagrams without a delimiter, empty, and the largest size. Counts
are read back exactly.
"""

import re
import socket
import sys
import time

from gwtest import Daemon, finish, run_tests, s2_header, s3_header, wait_for

D = None
CHUNK = b"--chunk--"


def send(data):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(data, ("127.0.0.1", D.port("udp")))
    s.close()


def good(project="test_project"):
    pub, priv = D.projects[project]
    return s2_header(project, pub, priv).encode()


def metric(name, **labels):
    _, _, data = D.request("GET", "/metrics")
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in data.decode().splitlines():
        m = re.match(r"(\w+)\{(.*)\} (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
            return float(m.group(3))
    return 0


def settle(project, name, want):
    wait_for(lambda: D.total(project, name) == want, timeout=5,
             what="%s/%s == %r" % (project, name, want))
    time.sleep(0.25)
    got = D.total(project, name)
    assert got == want, "%s/%s: %r, want %r" % (project, name, got, want)


def test_both_delimiters():
    send(good() + b"--chunk-auth--" + b'{"n": "delim", "v": 1}')
    send(good() + b"--stream-auth--" + b'{"n": "delim", "v": 10}' + CHUNK)
    settle("test_project", "delim", 11)


def test_several_chunks():
    send(good() + b"--chunk-auth--" +
         CHUNK.join(b'{"n": "multi", "v": %d}' % v for v in (1, 2, 3, 4)))
    send(good() + b"--chunk-auth--" +
         b'{"n": "multi", "v": 100}' + CHUNK +
         b'{broken' + CHUNK +                    # dropped alone
         b'{"n": "multi", "v": 1000}' + CHUNK +
         CHUNK + b" " + CHUNK +                  # empty pieces: skipped
         b'{"n": "multi", "p": "shop"}' + CHUNK)  # foreign project: dropped
    settle("test_project", "multi", 1110)
    assert metric("gottwall_events_dropped_total", transport="udp",
                  reason="bad_json") >= 1


def test_bad_auth_stores_nothing():
    before = metric("gottwall_auth_failures_total", transport="udp",
                    reason="bad_header")
    pub, priv = D.projects["test_project"]
    ev = b'{"n": "evil", "p": "test_project"}'
    for hdr in (b"GottWallS2 x",                              # the original's bypass
                b"",                                          # no header at all
                s2_header("ghost", pub, priv).encode(),        # unknown project
                s2_header("test_project", pub, "wrong").encode(),
                s2_header("test_project", pub, priv, ts=int(time.time()) - 5000).encode(),
                b"GottWallS1 %d %s 1000" % (time.time(), b"0" * 32)):
        send(hdr + b"--chunk-auth--" + ev)
    send(ev)  # no auth delimiter at all
    send(b"")  # empty datagram
    time.sleep(0.4)
    assert D.total("test_project", "evil") == 0
    wait_for(lambda: metric("gottwall_auth_failures_total", transport="udp",
                            reason="bad_header") - before >= 3,
             timeout=3, what="bad_header counted")
    assert metric("gottwall_auth_failures_total", transport="udp",
                  reason="unknown_project") >= 1
    assert metric("gottwall_auth_failures_total", transport="udp",
                  reason="bad_signature") >= 1
    assert metric("gottwall_auth_failures_total", transport="udp",
                  reason="stale") >= 1
    assert metric("gottwall_events_dropped_total", transport="udp",
                  reason="bad_format") >= 2


def test_s3_signs_payload():
    payload = b'{"n": "s3udp", "v": 5}' + CHUNK + b'{"n": "s3udp", "v": 6}'
    h = s3_header("shop", "shop_private", payload).encode()
    send(h + b"--chunk-auth--" + payload)
    send(h + b"--chunk-auth--" + payload)                      # replayed
    h2 = s3_header("shop", "shop_private", payload).encode()
    send(h2 + b"--chunk-auth--" + payload.replace(b"6", b"7"))  # tampered
    settle("shop", "s3udp", 11)
    assert metric("gottwall_auth_failures_total", transport="udp",
                  reason="replay") == 1


def test_large_datagram():
    # One datagram near the UDP maximum (65507 bytes), many events.
    ev = b'{"n": "large"}'
    body = CHUNK.join([ev] * 2000)
    data = good() + b"--chunk-auth--" + body
    data += b" " * (65507 - len(data))
    assert len(data) == 65507
    send(data)
    settle("test_project", "large", 2000)


def test_burst():
    # 2000 datagrams as fast as one socket sends them: all arrive.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    d = good() + b"--chunk-auth--" + b'{"n": "burst"}'
    for _ in range(2000):
        s.sendto(d, ("127.0.0.1", D.port("udp")))
    s.close()
    settle("test_project", "burst", 2000)


def main():
    global D
    # One loop here; test_ingest_loops.py runs these tests on three.
    D = Daemon(backends={"udp": {}}, extra={"INGEST_LOOPS": 1})
    D.start()
    code = 1
    try:
        run_tests([test_both_delimiters, test_several_chunks,
                   test_bad_auth_stores_nothing, test_s3_signs_payload,
                   test_large_datagram, test_burst])
    except SystemExit as e:
        code = e.code
    finally:
        code = finish(D, code)
    sys.exit(code)


if __name__ == "__main__":
    main()
