"""RETENTION against the real daemon, memory storage (issue 14).

An event stamped 3 days ago with RETENTION = { minute = "1d"; } counts in
its hour and day buckets and not in its minute bucket, the skipped cells
are counted in /metrics, and a minute query for that time answers 400
naming the retention. A minute cell written 2 days ago, before the setting
was added, is gone after the first expiry while its hour and day cells
stay: the daemon is started without RETENTION, with it, and without it
again to look. check and start say what RETENTION does, and warn without
it.
"""

import re
import signal
import subprocess
import time

from gwtest import GOTTWALL, Daemon, run_tests, wait_for

PROJECT = "test_project"
DAY = 86400


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def bucket(t, size):
    return int(t) - int(t) % size


def value(d, name, period, t, **f):
    """The value of name's bucket of period holding t (0 if none)."""
    start = {"minute": 60, "hour": 3600, "day": DAY}[period]
    b = bucket(t, start)
    r = d.stats(PROJECT, name, period=period, from_date=iso(b),
                to_date=iso(b), **f)
    return r["range"][0][1] if r["range"] else 0


def stats_status(d, name, period, t):
    st, _, body = d.request("GET", "/api/v1/%s/stats?name=%s&period=%s"
                            "&from_date=%s" % (PROJECT, name, period, iso(t)))
    return st, body.decode()


def test_writes_outside_retention():
    """minute = "1d": an event 3 days old lands in its hour and day, not in
    its minute (counted as skipped); its minute is refused to reads."""
    now = time.time()
    old = int(now) - 3 * DAY
    d = Daemon(extra={"RETENTION": {"minute": "1d"}})
    with d:
        assert re.search(r"info RETENTION: minute buckets are kept 1d; the "
                         r"first expiry, in 1 s, removes those before "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", d.log()), d.log()
        st, body = d.send_http(PROJECT, [{"n": "late", "ts": old,
                                          "f": {"os": "linux"}},
                                         {"n": "late", "ts": int(now)}])
        assert st == 200, body
        wait_for(lambda: value(d, "late", "hour", old) == 1, what="stored")
        assert value(d, "late", "day", old) == 1
        assert value(d, "late", "hour", old, filter_name="os",
                     filter_value="linux") == 1
        assert value(d, "late", "minute", now) == 1
        assert d.total(PROJECT, "late") == 2
        # Its minute: not stored, and refused to reads, naming why.
        st, body = stats_status(d, "late", "minute", bucket(old, 60))
        cut = bucket(now - DAY, 60)
        assert st == 400, (st, body)
        m = re.search(r'"error": "(.*)"', body)
        assert m.group(1) == (
            "minute buckets are kept for 1d (RETENTION.minute): the oldest "
            "starts at %s; for %s ask period=hour (kept for ever)"
            % (iso(cut), iso(bucket(old, 60)))) or \
            m.group(1) == (
            "minute buckets are kept for 1d (RETENTION.minute): the oldest "
            "starts at %s; for %s ask period=hour (kept for ever)"
            % (iso(cut + 60), iso(bucket(old, 60)))), body
        # The total's and the filter's minute cells were skipped.
        assert d.metric("gottwall_retention_skipped_cells_total",
                        period="minute") == 2
        assert d.metric("gottwall_retention_skipped_cells_total",
                        period="hour") == 0
        wait_for(lambda: d.metric("gottwall_storage_expiry_passes_total")
                 >= 1, what="an expiry pass")


def test_expiry_removes_old_cells():
    """A minute cell written 2 days ago without RETENTION is gone after the
    first expiry with minute = "1d"; its hour and day cells stay."""
    now = time.time()
    old = int(now) - 2 * DAY
    d = Daemon()
    try:
        d.start()
        assert "warning RETENTION is not set: every bucket is kept for ever " \
               "and the storage grows without bound" in d.log()
        st, body = d.send_http(PROJECT, {"n": "aged", "ts": old})
        assert st == 200, body
        wait_for(lambda: value(d, "aged", "minute", old) == 1, what="stored")
        assert d.stop() == 0
        d.extra["RETENTION"] = {"minute": "1d"}
        d.extra["RETENTION_INTERVAL"] = 1
        d.start()
        wait_for(lambda: "retention: minute buckets before" in d.log(),
                 what="the first expiry")
        assert re.search(r"info \[storage:memory:memory\] retention: minute "
                         r"buckets before \S+ removed \(kept 1d\)", d.log())
        wait_for(lambda: d.metric("gottwall_storage_expiry_passes_total")
                 >= 2, what="a second pass, a second later")
        assert d.stop() == 0
        del d.extra["RETENTION"]
        del d.extra["RETENTION_INTERVAL"]
        d.start()
        # Without RETENTION the minute can be read again: it is empty.
        assert value(d, "aged", "minute", old) == 0
        assert value(d, "aged", "hour", old) == 1
        assert value(d, "aged", "day", old) == 1
        assert d.total(PROJECT, "aged") == 1
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_sighup_applies_retention():
    """RETENTION added by SIGHUP: reads refuse by it at once and the
    expiry runs without a restart."""
    now = time.time()
    old = int(now) - 2 * DAY
    d = Daemon()
    try:
        d.start()
        st, body = d.send_http(PROJECT, {"n": "hup", "ts": old})
        assert st == 200, body
        wait_for(lambda: value(d, "hup", "minute", old) == 1, what="stored")
        d.extra["RETENTION"] = {"minute": "1d"}
        d.extra["RETENTION_INTERVAL"] = 1
        d.write_config()
        d.signal(signal.SIGHUP)
        wait_for(lambda: "keys, users and RETENTION take effect now" in d.log(),
                 what="the reload")
        wait_for(lambda: stats_status(d, "hup", "minute", bucket(old, 60))[0]
                 == 400, what="minute reads refused")
        wait_for(lambda: "retention: minute buckets before" in d.log(),
                 what="the expiry, without a restart")
        assert value(d, "hup", "hour", old) == 1
        assert d.stop() == 0
        # Read back without RETENTION: the minute cell is gone.
        del d.extra["RETENTION"]
        del d.extra["RETENTION_INTERVAL"]
        d.start()
        assert value(d, "hup", "minute", old) == 0
        assert value(d, "hup", "hour", old) == 1
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_check_says_what_retention_does():
    d = Daemon(extra={"RETENTION": {"minute": "7d", "hour": "90d"}})
    d.write_config()
    r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "info RETENTION: minute buckets are kept 7d" in r.stderr, r.stderr
    assert "info RETENTION: hour buckets are kept 90d" in r.stderr, r.stderr
    d.extra["RETENTION"] = {"minute": "90d", "hour": "7d"}
    d.write_config()
    r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    line = [i + 1 for i, l in enumerate(open(d.conf_path))
            if l.startswith("RETENTION")][0]
    assert ("%s:%d: RETENTION.minute (90d) is longer than RETENTION.hour "
            "(7d): a finer period cannot be kept longer than a coarser one; "
            "keep minute at most \"7d\"" % (d.conf_path, line)) in r.stderr, \
        r.stderr
    del d.extra["RETENTION"]
    d.write_config()
    r = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "RETENTION is not set: every bucket is kept for ever" in r.stderr
    d.cleanup()


if __name__ == "__main__":
    run_tests([test_writes_outside_retention, test_expiry_removes_old_cells,
               test_sighup_applies_retention,
               test_check_says_what_retention_does])
