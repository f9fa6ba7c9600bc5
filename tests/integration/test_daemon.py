"""The daemon's life cycle (SPEC §10), against the real `gottwall` binary.

Start, events in, stored, SIGTERM/SIGINT exit 0 with the summary; a
transport that cannot start stops start-up (exit 1, named); SIGHUP reloads
project keys (old key refused, new accepted, through the http transport when
it is built) and an invalid reload keeps the daemon running on the old
config; an unreachable storage at shutdown loses exactly what it held, and
says so. The fixture plugins (tests/fixtures/plugins) stand in for storages
and transports where the real ones are not the point.
"""

import json
import os
import re
import signal
import time

from gwtest import BUILDDIR, Daemon, run_tests, wait_for

FIXTURES = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs")
PLUGINS = os.environ.get("GOTTWALL_PLUGIN_PATH", os.path.join(BUILDDIR, ".libs"))
FX_ARGS = ["--plugin-path=" + FIXTURES]


def fixture_daemon(json_events=None, storage_settings=None, extra=None, fail_start=False,
                   backends=None):
    fx = {"PLUGIN": "fixture"}
    if json_events is not None:
        fx["JSON"] = json.dumps(json_events)
    if fail_start:
        fx["FAIL_START"] = True
    return Daemon(storage="fixture", storage_settings=storage_settings or {},
                  backends=backends if backends is not None else {"fx": fx}, extra=extra)


def wait_log(d, text, timeout=10):
    return wait_for(lambda: text in d.log(), timeout=timeout, what=repr(text))


def test_start_store_stop():
    d = fixture_daemon([{"n": "orders", "v": 2}, {"n": "orders"}, {"n": "visits"}])
    try:
        d.start(args=FX_ARGS)
        wait_log(d, "[transport:fixture:fx] submitted: OK")
        # The read API answers from the fixture storage once the flush ran.
        wait_for(lambda: d.total("test_project", "orders") == 3, what="orders == 3")
        assert d.total("test_project", "visits") == 1
        log = d.log()
        assert re.search(r'info storage "fixture": plugin fixture 0\.0\.1 \(ABI 1\.7\) from '
                         r'\S+/storage_fixture\.so; periods: minute, hour, day, week, month, '
                         r'year, all; flush every 100 ms\n', log), log
        assert 'info transport "fx": plugin fixture 0.0.1 (ABI 1.7) from ' in log
        assert re.search(r"starting as aggregator and server with \S+ \(process id [0-9a-f]{16}\)",
                         log), log
        rc = d.stop()
        assert rc == 0, rc
        log = d.log()
        assert "info SIGTERM: stopping\n" in log
        assert "info stopped: 3 events accepted, 3 stored in 1 batches, 0 dropped, " \
               "0 not stored\n" in log, log[-2000:]
    finally:
        d.cleanup()


def test_sigint_flushes_last_events():
    # A long flush interval: only the final flush at SIGINT stores them.
    d = fixture_daemon([{"n": "orders"}] * 4, extra={"FLUSH_INTERVAL": 3600000})
    try:
        d.start(args=FX_ARGS)
        wait_log(d, "submitted: OK")
        assert d.total("test_project", "orders") == 0
        rc = d.stop(sig=signal.SIGINT)
        assert rc == 0
        assert "info SIGINT: stopping\n" in d.log()
        assert "stopped: 4 events accepted, 4 stored in 1 batches" in d.log(), d.log()[-2000:]
    finally:
        d.cleanup()


def test_transport_fails_to_start():
    d = fixture_daemon(fail_start=True)
    try:
        d.start(wait=False, args=FX_ARGS)
        d.proc.wait(20)
        assert d.proc.returncode == 1, d.proc.returncode
        log = d.log()
        assert 'error transport "fx" could not start: bind 127.0.0.1:1: ' \
               'Address already in use\n' in log, log
        assert "info ready\n" not in log
        d.proc = None
        d.check_log()
    finally:
        d.cleanup()


def test_unknown_storage():
    d = Daemon(storage="nosuch", backends={})
    try:
        d.start(wait=False)
        d.proc.wait(20)
        assert d.proc.returncode == 1
        assert 'error storage plugin "nosuch" not found in ' in d.log(), d.log()
        d.proc = None
    finally:
        d.cleanup()


def test_http_port_in_use():
    if not os.path.exists(os.path.join(PLUGINS, "transport_http.so")):
        print("  (skipped: transport_http.so not built yet)")
        return
    import socket
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    d = fixture_daemon(backends={"http": {"PORT": port}})
    try:
        d.start(wait=False, args=FX_ARGS)
        d.proc.wait(20)
        assert d.proc.returncode == 1, d.log()
        assert re.search(r'error transport "http" could not start: .*%d.*Address already in use'
                         % port, d.log()), d.log()
        d.proc = None
    finally:
        busy.close()
        d.cleanup()


def test_reload_invalid_keeps_running():
    d = fixture_daemon([{"n": "orders"}])
    try:
        d.start(args=FX_ARGS)
        wait_log(d, "submitted: OK")
        with open(d.conf_path, "a") as f:
            f.write("FLUSH_INTERVALL = 5;\n")
        d.signal(signal.SIGHUP)
        line = wait_log(d, "SIGHUP: ") and [l for l in d.log().splitlines() if "SIGHUP" in l][0]
        assert re.search(r"error SIGHUP: %s:\d+: FLUSH_INTERVALL is not a known setting; did you "
                         r"mean FLUSH_INTERVAL\?; keeping the config loaded before$"
                         % re.escape(d.conf_path), line), line
        time.sleep(0.2)
        assert d.alive()
        assert d.total("test_project", "orders") == 1
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_reload_project_keys():
    if not os.path.exists(os.path.join(PLUGINS, "transport_http.so")):
        print("  (skipped: transport_http.so not built yet)")
        return
    d = Daemon(storage="fixture", backends={"http": {}})
    try:
        d.start(args=FX_ARGS)
        old = ("shop_public", "shop_private")
        new = ("shop_public2", "shop_private2")
        status, body = d.send_http("shop", {"n": "orders"}, keys=old)
        assert status == 200, (status, body)
        d.projects = dict(d.projects)
        d.projects["shop"] = new
        d.write_config()
        d.signal(signal.SIGHUP)
        wait_log(d, "SIGHUP: reloaded %s: 2 projects, 0 users" % d.conf_path)
        status, body = d.send_http("shop", {"n": "orders"}, keys=old)
        assert status == 403, (status, body)
        status, body = d.send_http("shop", {"n": "orders"}, keys=new)
        assert status == 200, (status, body)
        wait_for(lambda: d.total("shop", "orders") == 2, what="shop orders == 2")
        assert d.stop() == 0
        assert "stopped: 2 events accepted, 2 stored" in d.log(), d.log()[-2000:]
    finally:
        d.cleanup()


def test_storage_down_at_shutdown():
    d = fixture_daemon([{"n": "orders"}, {"n": "orders"}, {"n": "visits"}],
                       extra={"SHUTDOWN_TIMEOUT": 300})
    down = os.path.join(d.tmp, "down")
    open(down, "w").close()
    d.storage_settings["DOWN_FILE"] = down
    try:
        d.start(args=FX_ARGS)
        wait_log(d, "storage unreachable: connection refused (fixture: %s exists); keeping "
                    "2 pending series, retrying" % down)
        t0 = time.time()
        assert d.stop() == 0
        assert time.time() - t0 < 10
        log = d.log()
        # Two metrics: 2 series (kept in 7 periods each).
        assert "error [storage:fixture:fixture] could not store 3 events in 2 series within " \
               "SHUTDOWN_TIMEOUT (300 ms); they are lost\n" in log, log[-2000:]
        assert "stopped: 3 events accepted, 0 stored in 0 batches, 0 dropped, 3 not stored\n" \
            in log, log[-2000:]
    finally:
        d.cleanup()


def test_roles():
    import socket
    from gwtest import free_port, wait_port
    # server start -p: the read API on that port, no transports.
    port = free_port()
    d = fixture_daemon([{"n": "orders"}])
    d.command = ["server", "start", "-p", str(port)]
    try:
        d.start(wait=False, args=FX_ARGS)
        wait_port(port, proc=d.proc)
        status, _, body = d.request("GET", "/health", port=port)
        assert status == 200, (status, body)
        log = d.log()
        assert "starting as server with" in log, log
        assert "[transport:" not in log and 'transport "fx"' not in log, log
        assert d.stop() == 0
        assert "info stopped\n" in d.log()
    finally:
        d.cleanup()
    # aggregator start: transports, no read API.
    d = fixture_daemon([{"n": "orders"}])
    d.command = ["aggregator", "start"]
    try:
        d.start(args=FX_ARGS)
        wait_log(d, "submitted: OK")
        try:
            socket.create_connection(("127.0.0.1", d.server_port), timeout=1).close()
            raise AssertionError("the aggregator listens on SERVER.PORT")
        except ConnectionRefusedError:
            pass
        assert d.stop() == 0
        assert "stopped: 1 events accepted, 1 stored in 1 batches" in d.log(), d.log()[-2000:]
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests([test_start_store_stop, test_sigint_flushes_last_events,
               test_transport_fails_to_start, test_unknown_storage, test_http_port_in_use,
               test_reload_invalid_keeps_running, test_reload_project_keys,
               test_storage_down_at_shutdown, test_roles])
