"""The example plugins inside the real daemon (run by test_examples.sh).

    python3 examples_daemon.py CSV_DIR PIPE_DIR ABI_DIR VERSION_H

CSV_DIR and PIPE_DIR hold storage_csv.so and transport_pipe.so built out of
tree against an installed SDK; ABI_DIR holds storage_abinext.so, built the
same way but claiming the next major plugin ABI; VERSION_H is the installed
<gottwall/version.h>. The daemon is the build's `gottwall`, with
GOTTWALL_PLUGIN_PATH = CSV_DIR:PIPE_DIR:ABI_DIR:$GW_BUILDDIR/.libs.

Events go in through the pipe transport and the http transport; the exact
counts come back through the read API, /metrics, a restart (the CSV file is
the storage) and a restart after a torn write. The ABI test asserts the
loader's exact message.
"""

import errno
import os
import re
import subprocess
import sys
import time

from gwtest import Daemon, GOTTWALL, BUILDDIR, run_tests, wait_for

CSV_DIR, PIPE_DIR, ABI_DIR, VERSION_H = sys.argv[1:5]
os.environ["GOTTWALL_PLUGIN_PATH"] = ":".join(
    [CSV_DIR, PIPE_DIR, ABI_DIR, os.path.join(BUILDDIR, ".libs")])

PROJECT = "test_project"
MAX_LINE = 1024


def abi_version():
    text = open(VERSION_H).read()
    major = int(re.search(r"#define GW_PLUGIN_ABI_MAJOR (\d+)", text).group(1))
    minor = int(re.search(r"#define GW_PLUGIN_ABI_MINOR (\d+)", text).group(1))
    return major, minor


def make_daemon(tmp=None):
    d = Daemon(backends={"http": {}}, storage="csv", tmp=tmp)
    d.storage_settings = {"PATH": os.path.join(d.tmp, "counts.csv")}
    # The pipe takes no HOST or PORT (Daemon adds them to every backend).
    d.backends["pipe"] = {"PATH": os.path.join(d.tmp, "events.fifo"),
                          "PROJECT": PROJECT, "MAX_LINE": MAX_LINE}
    return d


def open_writer(path, timeout=10.0):
    """Opens the FIFO for writing once the daemon reads it (ENXIO before)."""
    deadline = time.time() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno not in (errno.ENXIO, errno.ENOENT) or time.time() > deadline:
                raise
            time.sleep(0.02)


def write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
            data = data[n:]
        except BlockingIOError:
            time.sleep(0.01)


def metric(text, name, **labels):
    """The value of one sample of /metrics, or 0 if it is absent."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'(\w+)\{([^}]*)\} (\S+)$', line)
        if m and m.group(1) == name:
            got = ",".join(sorted(m.group(2).split(",")))
            if got == want:
                return float(m.group(3))
    return 0


# What the pipe and HTTP send, and what must come back.
EXPECT = {
    ("orders", None, None): 1 + 1 + 1 + 2 + 10 + 10,
    ("orders", "status", "paid"): 1 + 1 + 10,
    ("orders", "status", "new"): 1 + 10,
    ("pipe_hits", None, None): 40,
    ("http_hits", None, None): 3,
}


def expected_counts(d):
    for (name, fname, fvalue), want in EXPECT.items():
        params = {"filter_name": fname, "filter_value": fvalue} if fname else {}
        got = d.total(PROJECT, name, **params)
        assert got == want, "%s %s=%s: %r, expected %r" % (
            name, fname, fvalue, got, want)


def send_events(d):
    fifo = d.backends["pipe"]["PATH"]
    wait_for(lambda: os.path.exists(fifo), what="the FIFO at " + fifo)

    # Writer 1: good lines, a blank line, bad JSON, another project's event,
    # a line over MAX_LINE, and a last line without '\n' (it counts at EOF).
    fd = open_writer(fifo)
    write_all(fd, b'{"n": "orders", "f": {"status": "paid"}}\n'
                  b'\n'
                  b'{"n": "orders", "v": 1, "f": {"status": "new"}}\r\n'
                  b'{"n": "orders", "p": "shop"}\n'
                  b'{"n": \n'
                  + b'{"n": "long", "pad": "' + b"x" * (MAX_LINE * 3) + b'"}\n'
                  b'{"project": "test_project", "name": "orders", "f": {"status": "paid"}}\n'
                  b'{"n": "orders", "v": 2}')
    os.close(fd)
    # The last line counts only once the plugin saw EOF; a writer that came
    # sooner would continue that line. Wait for it: 5 orders from the pipe.
    wait_for(lambda: d.total(PROJECT, "orders") == 5, timeout=15,
             what="the pipe's first 5 orders (the last at EOF)")
    # Writer 2, after the plugin reopened the pipe: 40 events in small writes.
    fd = open_writer(fifo)
    for i in range(40):
        write_all(fd, b'{"n": "pipe_hits"}\n')
    os.close(fd)

    status, body = d.send_http(PROJECT, [
        {"n": "orders", "v": 10, "f": {"status": "paid"}},
        {"n": "orders", "v": 10, "f": {"status": "new"}}])
    assert (status, body) == (200, b"OK"), (status, body)
    for _ in range(3):
        status, body = d.send_http(PROJECT, {"n": "http_hits"})
        assert (status, body) == (200, b"OK"), (status, body)


def wait_counts(d):
    def ok():
        try:
            expected_counts(d)
            return True
        except AssertionError as e:
            return str(e)
    last = None
    try:
        wait_for(lambda: ok() is True, timeout=15, what="exact counts")
    except AssertionError:
        last = ok()
        raise AssertionError("counts never matched: %s" % last)


def test_pipe_and_http_into_csv():
    d = make_daemon()
    try:
        d.start()
        send_events(d)
        wait_counts(d)
        expected_counts(d)

        m = d.request("GET", "/metrics")[2].decode()
        # Pipe: 1 + 1 + 1 + 1 (bad JSON) + 1 (shop) + 1 + 40 lines reached
        # submit_json; the too-long line never did.
        assert metric(m, "gottwall_events_accepted_total", transport="pipe") == 44, m
        assert metric(m, "gottwall_events_received_total", transport="pipe") == 46, m
        assert metric(m, "gottwall_events_dropped_total", transport="pipe",
                      reason="line_too_long") == 1, m
        assert metric(m, "gottwall_events_accepted_total", transport="http") == 5, m
        meta = d.get_json("/api/v1/%s/metrics" % PROJECT)
        assert sorted(meta) == ["http_hits", "orders", "pipe_hits"], meta
        assert sorted(meta["orders"]["status"]) == ["new", "paid"], meta
        log = d.log()
        assert "[transport:pipe:pipe]" in log and "line dropped" in log, log[-3000:]
        rc = d.stop()
        assert rc == 0, "daemon exited %r:\n%s" % (rc, d.log()[-3000:])

        # The file is the storage: a restart reads the same counts back.
        csv = open(d.storage_settings["PATH"], "rb").read()
        assert csv.startswith(b"gottwall-csv,1\n"), csv[:100]
        assert csv.count(b"\ncommit,") >= 1, csv[-500:]
        d.start()
        expected_counts(d)
        assert d.stop() == 0

        # A torn write (a crash inside a batch): the unfinished batch is cut
        # off at the next start and the counts stay exact.
        with open(d.storage_settings["PATH"], "ab") as f:
            f.write(b"delta,test_project,orders,counter,all,0,1000,1,0\n"
                    b"delta,test_project,orders,cou")
        d.start()
        expected_counts(d)
        assert "an unfinished batch" in d.log(), d.log()[-3000:]
        assert d.stop() == 0
        assert open(d.storage_settings["PATH"], "rb").read() == csv
    finally:
        if d.alive():
            sys.stderr.write(d.log()[-6000:])
        d.cleanup()


def test_plugins_lists_examples():
    out = subprocess.run([GOTTWALL, "plugins"], capture_output=True, text=True,
                         timeout=30, cwd=CSV_DIR)
    assert out.returncode == 0, out
    major, minor = abi_version()
    assert re.search(r"^storage +csv +1\.0\.0 +ABI %d\.%d +%s/storage_csv\.so$"
                     % (major, minor, re.escape(CSV_DIR)), out.stdout, re.M), out.stdout
    assert re.search(r"^transport +pipe +1\.0\.0 +ABI %d\.%d +%s/transport_pipe\.so$"
                     % (major, minor, re.escape(PIPE_DIR)), out.stdout, re.M), out.stdout


def test_next_major_abi_refused():
    major, minor = abi_version()
    want = ("%s/storage_abinext.so: built for plugin ABI %d.0, this daemon has %d.%d"
            % (ABI_DIR, major + 1, major, minor))
    d = Daemon(backends={}, storage="abinext")
    try:
        d.write_config()
        out = subprocess.run([GOTTWALL, "-c", d.conf_path, "check"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out
        assert want in out.stderr, "expected %r in:\n%s" % (want, out.stderr)
        out = subprocess.run([GOTTWALL, "-c", d.conf_path, "start"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out
        assert re.search(r"^\S+ error " + re.escape(want) + "$", out.stderr, re.M), \
            "expected the error line %r in:\n%s" % (want, out.stderr)
    finally:
        d.cleanup()


run_tests([test_pipe_and_http_into_csv, test_plugins_lists_examples,
           test_next_major_abi_refused])
