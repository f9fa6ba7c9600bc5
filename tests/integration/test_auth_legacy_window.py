"""How long a legacy S1/S2 signature lives (issue 16, item 7), against the
real daemon over loopback.

S1 and S2 sign only the solt (ts floored, or rounded, to a multiple of
base), never ts itself: a captured header can be sent again with ts
rewritten to now, for as long as the server still derives the same solt.
The server accepts a solt only when now - base - AUTH_MAX_SKEW <= solt <=
now + AUTH_MAX_SKEW, and a base only up to AUTH_MAX_BASE (default 3600).

- AUTH_MAX_BASE = 1000: a header signed 3,170 s ago with base 3600 and its
  ts rewritten to now is refused over HTTP (403, the message naming
  AUTH_MAX_BASE) and TCP (FAIL), each counted in /metrics as
  gottwall_auth_failures_total{reason="base_too_large"}; the same replay
  with base 1000 fails its signature; a fresh base-1000 header still works.
- AUTH_MAX_SKEW = 60: a round-to-nearest solt more than AUTH_MAX_SKEW ahead
  of the server's clock is refused as stale, counted; the floor solt of
  the same request is accepted.
"""

import hashlib
import hmac
import json
import re
import socket
import sys
import time

from gwtest import Daemon, run_tests, s1_header, sign_legacy, wait_for

PUB, PRIV = "my_public_key", "secret_key"  # test_project
D = None


def post(headers):
    """One signed incr of "legacy" on the http backend."""
    return D.request("POST", "/api/v1/test_project/incr",
                     body=json.dumps({"n": "legacy", "v": 1}),
                     headers=headers, port=D.port("http"))


def refused(header, message):
    """POSTs with an X-GottWall-Auth header: 403 with exactly message."""
    st, _, data = post({"X-GottWall-Auth": header})
    assert st == 403, (st, data)
    got = json.loads(data)["error"]
    assert got == "authentication failed: " + message, got
    return got


def tcp(header):
    """The tcpip handshake with header; the bytes the server answers
    before it closes."""
    with socket.create_connection(("127.0.0.1", D.port("tcpip")),
                                  timeout=10) as s:
        s.sendall(header.encode() + b"--stream-auth--")
        return s.makefile("rb").read()


def hmac_md5(solt):
    return hmac.new(PRIV.encode(), (PUB + str(solt)).encode(),
                    hashlib.md5).hexdigest()


def replay(base, message, reason):
    """A header signed 3,170 s ago with base, its ts rewritten to now:
    refused over HTTP with message, counted once with reason. Returns the
    rewritten ts and the captured sign."""
    now = int(time.time())
    captured = sign_legacy(PUB, PRIV, now - 3170, base=base)
    refused("GottWallS1 %d %s %d" % (now, captured, base), message)
    assert D.metric("gottwall_auth_failures_total", transport="http",
                    reason=reason) == 1
    return now, captured


def test_old_base_3600_signature_refused():
    now, captured = replay(
        3600, "GottWallS1 base 3600 is more than AUTH_MAX_BASE (1000) "
        "allows; sign with a base from 1 to 1000 or raise AUTH_MAX_BASE",
        "base_too_large")
    # Over TCP (S2), the same.
    assert tcp("GottWallS2 %d %s 3600 test_project" % (now, captured)) == \
        b"FAIL"
    wait_for(lambda: D.metric("gottwall_auth_failures_total",
                              transport="tcpip",
                              reason="base_too_large") == 1,
             what="the TCP refusal counted")


def test_old_base_1000_signature_refused():
    # With an allowed base the replayed sign no longer matches the solt
    # the server derives from now: 3,170 s is more than base + skew.
    replay(1000, "GottWallS1 signature does not match project "
           "\"test_project\"'s keys", "bad_signature")


def test_fresh_signature_accepted():
    st, _, data = post({"X-GottWall-Auth": s1_header(PUB, PRIV, base=1000)})
    assert (st, data) == (200, b"OK"), (st, data)
    wait_for(lambda: D.total("test_project", "legacy") == 1,
             what="the fresh event stored")
    assert D.total("test_project", "legacy") == 1


def pick_base(now, skew, margin=30):
    """A base whose round-to-nearest solt for ts = now is more than
    skew + margin ahead of now (and whose floor solt is not)."""
    for b in range(3600, 1, -1):
        r = now % b
        if 2 * r >= b and b - r > skew + margin:
            return b
    raise AssertionError("no base found")


def test_future_round_solt_refused():
    skew = 60
    now = int(time.time())
    base = pick_base(now, skew)
    future = (now // base + 1) * base
    st, _, data = post({"X-GottWall-Auth": "GottWallS1 %d %s %d"
                        % (now, hmac_md5(future), base)})
    assert st == 403, (st, data)
    err = json.loads(data)["error"]
    m = re.match(r"authentication failed: GottWallS1 signature's solt (\d+) "
                 r"is (\d+) s ahead of the server's clock, more than "
                 r"AUTH_MAX_SKEW \(60 s\) allows; check the client's clock$",
                 err)
    assert m, err
    assert int(m.group(1)) == future, err
    # Measured by the server a moment after `now`: at most that much less.
    ahead = int(m.group(2))
    assert future - now - 30 <= ahead <= future - now, (ahead, future - now)
    assert D.metric("gottwall_auth_failures_total", transport="http",
                    reason="stale") == 1
    # The floor solt of the same ts is inside the window: accepted.
    st, _, data = post({"X-GottWall-Auth": "GottWallS1 %d %s %d"
                        % (now, hmac_md5((now // base) * base), base)})
    assert (st, data) == (200, b"OK"), (st, data)


def run(extra, tests):
    global D
    D = Daemon(backends={"http": {}, "tcpip": {}}, extra=extra)
    code = 0
    try:
        D.start()
    except RuntimeError as e:
        print("FAIL: the daemon did not start with %r: %s\n%s"
              % (extra, e, D.log()[-2000:]))
        D.cleanup()
        return 1
    try:
        run_tests(tests)
    except SystemExit as e:
        code = e.code
    finally:
        try:
            rc = D.stop()
        except AssertionError as e:
            print("FAIL: %s" % e)
            rc = 1
        if code or rc:
            sys.stderr.write("---- daemon log ----\n" + D.log()[-6000:] + "\n")
        D.cleanup()
    return code or (1 if rc else 0)


def main():
    code = run({"AUTH_MAX_BASE": 1000},
               [test_old_base_3600_signature_refused,
                test_old_base_1000_signature_refused,
                test_fresh_signature_accepted])
    code = run({"AUTH_MAX_SKEW": 60}, [test_future_round_solt_refused]) or code
    sys.exit(code)


if __name__ == "__main__":
    main()
