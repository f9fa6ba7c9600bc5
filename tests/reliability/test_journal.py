"""The journal's life cycle against the real daemon (JOURNAL, docs/reliability.md).

- kill -9 after TCP events were read (nothing flushed yet: FLUSH_INTERVAL
  is an hour): the restart replays them, exactly, in both sync modes.
- SIGTERM while the storage is down: what could not be stored stays in the
  journal and the next start (storage up) stores it exactly once.
- JOURNAL_RETAIN = 0: stored segments are deleted at once, so the journal
  holds only the current segment and the manifest.
- A JOURNAL in a directory that does not exist stops start-up with a
  message naming it.
"""

import os
import signal
import socket
import time

from gwtest import BUILDDIR, Daemon, run_tests, s2_header, wait_for

PUB, PRIV = "my_public_key", "secret_key"


def total(d, name):
    r = d.get_json("/api/v1/test_project/stats?name=%s&period=all" % name)
    return r["range"][0][1] if r["range"] else 0


def send_tcp(d, name, n):
    s = socket.create_connection(("127.0.0.1", d.port("tcpip")), timeout=10)
    s.sendall(s2_header("test_project", PUB, PRIV).encode() + b"--stream-auth--")
    assert s.recv(2) == b"OK"
    s.sendall(('{"n":"%s"}--chunk--' % name).encode() * n)
    return s


def journal_files(d, base):
    return sorted(f for f in os.listdir(d.tmp) if f.startswith(base + "."))


def kill9_tcp(sync):
    d = Daemon(backends={"tcpip": {}},
               extra={"JOURNAL": "gw.journal", "JOURNAL_SYNC": sync,
                      "FLUSH_INTERVAL": 3600000})
    try:
        d.start()
        s = send_tcp(d, "k9tcp", 10000)
        wait_for(lambda: "gottwall_events_accepted_total{transport=\"tcpip\"} 10000"
                 in d.request("GET", "/metrics")[2].decode(), what="10000 accepted")
        time.sleep(0.05)  # a loop iteration: the group commit ran
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        s.close()
        d.stop()
        assert total_after_restart(d, "k9tcp", 10000) == 10000
        assert d.stop() == 0
    finally:
        d.cleanup()


def total_after_restart(d, name, want):
    d.start()
    wait_for(lambda: total(d, name) >= want, timeout=10, what="%s >= %d" % (name, want))
    time.sleep(0.3)
    return total(d, name)


def test_kill9_tcp_always():
    kill9_tcp("always")


def test_kill9_tcp_interval():
    kill9_tcp("interval")


def test_sigterm_with_storage_down_keeps_the_journal():
    so = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs",
                      "storage_fixture.so")
    assert os.path.exists(so), "%s is missing: make check builds it" % so
    d = Daemon(storage=so, backends={"tcpip": {}},
               extra={"JOURNAL": "gw.journal", "SHUTDOWN_TIMEOUT": 500,
                      "FLUSH_INTERVAL": 100})
    down = os.path.join(d.tmp, "down")
    d.storage_settings["DOWN_FILE"] = down
    try:
        open(down, "w").close()
        d.start()
        s = send_tcp(d, "down", 777)
        wait_for(lambda: "gottwall_events_accepted_total{transport=\"tcpip\"} 777"
                 in d.request("GET", "/metrics")[2].decode(), what="777 accepted")
        s.close()
        time.sleep(0.3)
        assert d.stop() == 0
        log = d.log()
        assert "journal: the 777 events not stored stay in gw.journal and are " \
               "replayed at the next start" in log, log[-3000:]
        # The fixture storage keeps nothing across restarts: everything it
        # holds after the next start came from the journal.
        os.unlink(down)
        assert total_after_restart(d, "down", 777) == 777
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_retain_zero_deletes_stored_segments():
    d = Daemon(backends={"tcpip": {}},
               extra={"JOURNAL": "gw.journal", "JOURNAL_RETAIN": 0,
                      "FLUSH_INTERVAL": 50})
    try:
        d.start()
        for i in range(10):
            send_tcp(d, "retain", 100).close()
            time.sleep(0.12)
        wait_for(lambda: total(d, "retain") == 1000, what="1000 stored")
        time.sleep(0.3)
        files = journal_files(d, "gw.journal")
        segs = [f for f in files if f[len("gw.journal."):].isdigit()]
        assert "gw.journal.batches" in files, files
        assert len(segs) <= 2, files  # the current one (and one being stored)
        assert d.stop() == 0
        d.start()
        time.sleep(0.3)
        assert total(d, "retain") == 1000
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_missing_directory_is_refused():
    d = Daemon(backends={"tcpip": {}}, extra={"JOURNAL": "no/such/dir/j"})
    try:
        d.start(wait=False)
        assert d.proc.wait(10) == 1
        d.proc = None
        assert ('JOURNAL "no/such/dir/j": cannot open the directory no/such/dir: '
                'No such file or directory') in d.log(), d.log()
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_missing_directory_is_refused, test_kill9_tcp_always,
               test_kill9_tcp_interval, test_sigterm_with_storage_down_keeps_the_journal,
               test_retain_zero_deletes_stored_segments])
