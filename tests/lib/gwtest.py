"""Shared helpers for GottWall's integration tests.

Every test starts the real `gottwall` binary (and, where needed, a real
redis-server or PostgreSQL) on free loopback ports in a temp directory, talks
to it over sockets as a client would, and stops everything at the end.

Environment (set by `make check`): GW_BUILDDIR, GW_SRCDIR,
GOTTWALL_PLUGIN_PATH. GW_REQUIRE_SERVICES=1 turns a missing server binary
into a failure instead of a skip (exit 77).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ.get("GW_BUILDDIR", os.getcwd())
SRCDIR = os.environ.get("GW_SRCDIR", os.getcwd())
GOTTWALL = os.path.join(BUILDDIR, "gottwall")
SKIP = 77

# Lines in a daemon's log that fail any test.
BAD_LOG = re.compile(r"(ERROR: AddressSanitizer|runtime error:|LeakSanitizer|"
                     r"Segmentation fault|core dumped|Assertion .* failed)")


def skip(why):
    """Skip the test (exit 77), or fail when services are required."""
    if os.environ.get("GW_REQUIRE_SERVICES"):
        print("FAIL: required service missing: " + why)
        sys.exit(1)
    print("SKIP: " + why)
    sys.exit(SKIP)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def loop_cpu(pid):
    """{loop: cpu ticks} of a daemon's ingest loops, from /proc: the main
    thread is loop 0, the thread gw-ingest-N loop N."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if int(tid) == pid:
            out[0] = ticks
        elif comm.startswith("gw-ingest-"):
            out[int(comm[len("gw-ingest-"):])] = ticks
    return out


# The Fetch standard's "bad ports" at or above 10000 (where free_port
# draws): fetch() in Node and Chromium refuse them.
FETCH_BAD_PORTS = frozenset([10080])


def free_port(kind=socket.SOCK_STREAM):
    """A port free for both TCP and UDP on every address right now, taken
    at random below the kernel's ephemeral range: a port the kernel hands
    out for bind(0) can be taken, between this check and the daemon's
    bind, by any test's outgoing connection (whose local port comes from
    that range too); and a daemon listening on 0.0.0.0 collides with a
    socket on any address, so the check binds 0.0.0.0. (One CI run failed
    on both: "bind 0.0.0.0:49023: Address already in use".) kind is kept
    for the callers; both kinds are checked. The ports that the Fetch
    standard and Chromium refuse to connect to are never chosen (a CI run
    drew 10080 for the HTTP transport and the browser test's fetch()
    failed with "bad port")."""
    rng = random.SystemRandom()
    high = min(_ephemeral_low(), 65536) - 1
    for _ in range(200):
        port = rng.randint(10000, high)
        if port in FETCH_BAD_PORTS:
            continue
        socks = []
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, k)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


# Polls return as soon as their condition holds; these bounds only matter
# when something is wrong. They are generous because make check runs two
# tests at once on two cores, and the sanitizer run is several times slower.
WAIT = 30.0


def wait_port(port, timeout=WAIT, proc=None):
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s while waiting for port %d"
                               % (proc.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open in %.0f s" % (port, timeout))


def wait_for(pred, timeout=WAIT, step=0.05, what="condition"):
    """Polls pred() until it returns a true value; returns it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                         % (timeout, what, last))


# ---- Signatures (SPEC §4), written independently of the C code ----

def solt(ts, base=1000):
    return (int(ts) // base) * base


def sign_legacy(public_key, private_key, ts, base=1000):
    msg = (public_key + str(solt(ts, base))).encode()
    return hmac.new(private_key.encode(), msg, hashlib.md5).hexdigest()


def s1_header(public_key, private_key, ts=None, base=1000, project=None):
    ts = int(time.time()) if ts is None else ts
    h = "GottWallS1 %d %s %d" % (ts, sign_legacy(public_key, private_key, ts, base), base)
    return h + (" " + project if project else "")


def s2_header(project, public_key, private_key, ts=None, base=1000):
    ts = int(time.time()) if ts is None else ts
    return "GottWallS2 %d %s %d %s" % (
        ts, sign_legacy(public_key, private_key, ts, base), base, project)


def s3_header(project, private_key, body, ts=None, nonce=None, with_project=True):
    ts = int(time.time()) if ts is None else ts
    nonce = nonce or base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("=")
    if isinstance(body, str):
        body = body.encode()
    to_sign = "GottWallS3\n%s\n%d\n%s\n%s" % (
        project, ts, nonce, hashlib.sha256(body).hexdigest())
    sig = hmac.new(private_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    h = "GottWallS3 %d %s %s" % (ts, nonce, sig)
    return h + (" " + project if with_project else "")


def s4_header(project, private_key, body, scope, ts=None, nonce=None,
              with_project=True):
    """GottWallS4: S3 that also signs the scope, what the header is for:
    "POST /api/v1/{project}/incr", "GET /api/v1/{project}/metrics" (the
    path without the query), "tcp", "udp" or "redis-stream"."""
    ts = int(time.time()) if ts is None else ts
    nonce = nonce or base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("=")
    if isinstance(body, str):
        body = body.encode()
    to_sign = "GottWallS4\n%s\n%d\n%s\n%s\n%s" % (
        project, ts, nonce, scope, hashlib.sha256(body).hexdigest())
    sig = hmac.new(private_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    h = "GottWallS4 %d %s %s" % (ts, nonce, sig)
    return h + (" " + project if with_project else "")


def basic_header(public_key, private_key):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (public_key, private_key)).encode()).decode()


# ---- Raw HTTP ----

def raw_http(port, data, addr="127.0.0.1", timeout=10):
    """Sends data (a whole request, bytes) on a new connection and parses
    the one answer: (status, [(name, value)] as on the wire, duplicates
    kept, body). For what http.client would not send: any Host line or
    none, malformed heads."""
    sock = socket.create_connection((addr, port), timeout=timeout)
    try:
        sock.sendall(data)
        resp = http.client.HTTPResponse(
            sock, method=data.split(b" ", 1)[0].decode("latin-1"))
        resp.begin()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        sock.close()


# ---- The daemon ----

DEFAULT_PROJECTS = {
    "test_project": ("my_public_key", "secret_key"),
    "shop": ("shop_public", "shop_private"),
}


def conf_value(v):
    """A Python value as libconfig text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        if v and isinstance(v[0], dict):
            return "( " + ", ".join(conf_value(x) for x in v) + " )"
        return "[ " + ", ".join(conf_value(x) for x in v) + " ]"
    if isinstance(v, dict):
        return "{ " + " ".join("%s = %s;" % (k, conf_value(x)) for k, x in v.items()) + " }"
    raise TypeError(type(v))


class Daemon:
    """A real gottwall process with its own config, in a temp dir.

    d = Daemon(backends={"http": {}, "udp": {}}); d.start(); ...; d.stop()
    Backend ports not given are chosen free; d.port("http") tells them.
    """

    def __init__(self, command=("start",), backends=None, storage="memory",
                 storage_settings=None, extra=None, projects=None, tmp=None,
                 server=True):
        self.tmp = tmp or tempfile.mkdtemp(prefix="gwtest-")
        self.command = list(command)
        self.projects = projects or DEFAULT_PROJECTS
        self.backends = {}
        self._auto_ports = []  # backends whose PORT free_port chose
        for name, settings in (backends if backends is not None else {"http": {}}).items():
            s = dict(settings)
            s.setdefault("HOST", "127.0.0.1")
            if "PORT" not in s and s.get("PLUGIN", name) != "redis":
                s["PORT"] = free_port()
                self._auto_ports.append(name)
            self.backends[name] = s
        self.storage = storage
        self.storage_settings = dict(storage_settings or {})
        if storage == "memory":
            self.storage_settings.setdefault("PATH", os.path.join(self.tmp, "gottwall.snapshot"))
        self.server_port = free_port() if server else None
        self.extra = dict(extra or {})
        self.proc = None
        self.log_path = os.path.join(self.tmp, "gottwall.log")
        self.conf_path = os.path.join(self.tmp, "gottwall.conf")
        self._log = None

    def config_text(self):
        lines = ['SECRET_KEY = "secret_key";', "PROJECTS = {"]
        for name, (pub, priv) in self.projects.items():
            if priv == "secret_key":
                lines.append('    %s = %s;' % (name, json.dumps(pub)))
            else:
                lines.append('    %s = { public_key = %s; private_key = %s; };'
                             % (name, json.dumps(pub), json.dumps(priv)))
        lines.append("};")
        lines.append("STORAGE = %s;" % json.dumps(self.storage))
        lines.append("STORAGE_SETTINGS = %s;" % conf_value(self.storage_settings))
        lines.append("BACKENDS = %s;" % conf_value(self.backends))
        if self.server_port:
            lines.append('SERVER = { HOST = "127.0.0.1"; PORT = %d; };' % self.server_port)
        self.extra.setdefault("FLUSH_INTERVAL", 100)
        self.extra.setdefault("ANONYMOUS_LOGIN", True)
        self.extra.setdefault("cookie_secret", "test cookie secret")
        for k, v in self.extra.items():
            lines.append("%s = %s;" % (k, conf_value(v)))
        return "\n".join(lines) + "\n"

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        os.chmod(self.conf_path, 0o600)

    def port(self, backend):
        return self.backends[backend]["PORT"]

    def start(self, wait=True, args=()):
        # free_port's ports are free when chosen; a test running at the
        # same time may take one before the daemon binds it. Then the
        # daemon stops with "Address already in use": the ports this
        # harness chose are chosen again, up to three times.
        for attempt in range(3):
            offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            try:
                return self._start_once(wait, args)
            except RuntimeError as e:
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    text = f.read().decode("utf-8", "replace")
                if "Address already in use" not in text or attempt == 2 or \
                        not (self._auto_ports or self.server_port):
                    raise RuntimeError("%s; the daemon's log:\n%s" % (e, text[-3000:]))
                for name in self._auto_ports:
                    self.backends[name]["PORT"] = free_port()
                if self.server_port:
                    self.server_port = free_port()

    def _start_once(self, wait, args):
        self.write_config()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [GOTTWALL, "-c", self.conf_path, "-l", "debug"] + list(args) + self.command,
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.tmp)
        if wait:
            ports = [s["PORT"] for n, s in self.backends.items()
                     if s.get("PLUGIN", n) in ("http", "tcpip") and s.get("PORT")]
            if self.server_port and self.command[0] in ("start", "server"):
                ports.append(self.server_port)
            try:
                for p in ports:
                    wait_port(p, proc=self.proc)
            except RuntimeError:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
                self._log.close()
                self._log = None
                self.proc = None
                raise
            if self.command[0] in ("start", "aggregator"):
                time.sleep(0.1)  # UDP sockets open in the same loop iteration
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def check_log(self):
        """Fails if the log shows a sanitizer report or a crash."""
        text = self.log()
        m = BAD_LOG.search(text)
        if m:
            raise AssertionError("daemon log shows %r:\n%s" % (m.group(0), text[-4000:]))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the daemon; returns its exit code. Checks the log."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop within %d s" % timeout)
        rc = self.proc.returncode
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        self.check_log()
        return rc

    # Defined after stop(), whose default argument needs the signal module
    # that this method's name shadows inside the class body.
    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                rc = self.stop()
                assert rc == 0, "daemon exited with %r:\n%s" % (rc, self.log()[-4000:])
            elif os.environ.get("GW_TEST_VERBOSE") or True:
                sys.stderr.write("---- daemon log ----\n" + self.log()[-6000:] + "\n")
        finally:
            self.cleanup()

    # ---- Client helpers ----

    def request(self, method, path, body=None, headers=None, port=None):
        """One HTTP request; returns (status, headers dict, body bytes)."""
        port = port or self.server_port
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def get_json(self, path, expect=200, headers=None):
        status, _, data = self.request("GET", path, headers=headers)
        assert status == expect, "GET %s: %d %r" % (path, status, data[:500])
        return json.loads(data)

    def send_http(self, project, events, action="incr", backend="http", keys=None):
        """POSTs events (an object or a list) signed with S1; returns (status, body)."""
        pub, priv = keys or self.projects[project]
        body = json.dumps(events)
        status, _, data = self.request(
            "POST", "/api/v1/%s/%s" % (project, action), body=body,
            headers={"Content-Type": "application/json",
                     "X-GottWall-Auth": s1_header(pub, priv)},
            port=self.port(backend))
        return status, data

    def stats(self, project, name, period="all", **params):
        """GET stats through the read API; returns the JSON."""
        q = "name=%s&period=%s" % (name, period)
        for k, v in params.items():
            q += "&%s=%s" % (k, v)
        return self.get_json("/api/v1/%s/stats?%s" % (project, q))

    def total(self, project, name, **params):
        """The all-time value of a series (period=all), read back through the API."""
        r = self.stats(project, name, period="all", **params)
        return r["range"][0][1] if r["range"] else 0

    def metric(self, name, **labels):
        """The counter name with exactly these labels (none: a line
        without labels) from GET /metrics (0 if absent)."""
        _, _, data = self.request("GET", "/metrics")
        want = sorted('%s="%s"' % kv for kv in labels.items())
        for line in data.decode().splitlines():
            m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
            got = sorted(m.group(2).split(",")) if m and m.group(2) else []
            if m and m.group(1) == name and got == want:
                return float(m.group(3))
        return 0


def finish(d, code):
    """Stops d after a test run that ended with code: the daemon must exit
    0 with a clean log (the log's end is shown otherwise). Returns the
    code to exit with."""
    try:
        rc = d.stop()
        if rc != 0:
            print("FAIL: daemon exited with %r" % rc)
            code = 1
    except AssertionError as e:
        print("FAIL: %s" % e)
        code = 1
    if code:
        sys.stderr.write("---- daemon log ----\n" + d.log()[-6000:] + "\n")
    d.cleanup()
    return code


def run_tests_with(d, tests):
    """run_tests(tests) against d (started before, or by one of the
    tests), then finish(d, ...); exits with the result."""
    code = 1
    try:
        run_tests(tests)
    except SystemExit as e:
        code = e.code
    finally:
        code = finish(d, code)
    sys.exit(code)


def run_tests(tests):
    """Runs test functions in order; prints one line each and a summary."""
    failed = 0
    for t in tests:
        name = t.__name__
        start = time.time()
        try:
            t()
            print("PASS: %s (%.2f s)" % (name, time.time() - start))
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            import traceback
            print("FAIL: %s: %s" % (name, e))
            traceback.print_exc()
        sys.stdout.flush()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
