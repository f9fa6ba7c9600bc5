"""Real storage servers for tests: redis-server and PostgreSQL.

Each runs on a free loopback port in its own temp directory and is removed
afterwards:

    with RedisServer() as r:          # r.port, r.host, r.command("GET", "k")
        ...
        r.stop(); ...; r.start()      # an outage; the data survives (AOF)
    with PostgresServer() as pg:      # pg.port, pg.dsn, pg.sql("select 1")
        ...

A missing server binary calls gwtest.skip() (exit 77, or a failure when
GW_REQUIRE_SERVICES is set). As root, PostgreSQL runs as the `postgres` user
through `runuser` (initdb refuses root), in a directory that user owns.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Self-contained on purpose (no gwtest import), so the storage tests run
# whatever state the daemon's helpers are in.
BUILDDIR = os.environ.get("GW_BUILDDIR", os.getcwd())
SKIP = 77


def skip(why):
    """Skip the test (exit 77), or fail when services are required."""
    if os.environ.get("GW_REQUIRE_SERVICES"):
        print("FAIL: required service missing: " + why)
        sys.exit(1)
    print("SKIP: " + why)
    sys.exit(SKIP)


def free_port():
    """A TCP port free on every address right now (gwtest.free_port)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gwtest import free_port as gw_free_port
    return gw_free_port()


def wait_port(port, timeout=10.0, proc=None):
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


def _which(name, extra_dirs=()):
    for d in list(extra_dirs) + os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


class RedisServer:
    """A redis-server on 127.0.0.1:port in a temp dir.

    persist=True (the default) keeps an append-only file fsynced on every
    write, so stop()/start() (even kill=True) loses nothing: outage tests
    need the data to survive. persist=False runs with --save "" and
    --appendonly no.
    """

    def __init__(self, port=None, persist=True, password=None):
        self.binary = _which("redis-server", ["/usr/bin", "/usr/local/bin"])
        if self.binary is None:
            skip("redis-server not found (Debian: apt-get install redis-server)")
        self.host = "127.0.0.1"
        self.port = port or free_port()
        # A port free_port chose may be taken by a test running at the
        # same time before redis-server binds it: the first start then
        # picks another (a restart keeps its port: clients know it).
        self._may_move = port is None
        self.persist = persist
        self.password = password
        self.tmp = tempfile.mkdtemp(prefix="gwredis-")
        self.proc = None
        self.log_path = os.path.join(self.tmp, "redis.log")

    def start(self, timeout=10.0):
        for attempt in range(3):
            try:
                r = self._start_once(timeout)
                self._may_move = False
                return r
            except RuntimeError:
                try:
                    with open(self.log_path) as f:
                        log = f.read()
                except OSError:
                    log = ""
                if not self._may_move or attempt == 2 or \
                        "Address already in use" not in log:
                    raise
                if self.proc is not None and self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None
                self.port = free_port()

    def _start_once(self, timeout):
        args = [self.binary, "--port", str(self.port), "--bind", self.host,
                "--dir", self.tmp, "--save", "", "--logfile", self.log_path,
                "--daemonize", "no"]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=timeout, proc=self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:  # loading the AOF answers -LOADING
            try:
                if self.command("PING") == "PONG":
                    return self
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server on port %d does not answer PING" % self.port)

    def stop(self, kill=False, timeout=10.0):
        """Stops the server (SIGTERM, or SIGKILL with kill=True)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self):
        """SIGSTOP: the server accepts connections but never answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def settings(self):
        """STORAGE_SETTINGS for the redis storage."""
        s = {"HOST": self.host, "PORT": self.port}
        if self.password:
            s["PASSWORD"] = self.password
        return s

    # A minimal RESP client, so tests need neither redis-cli nor redis-py.
    def command(self, *args, timeout=5.0):
        """Sends one command; returns str, int, None, list, or raises
        RuntimeError for an error reply."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_resp_encode(("AUTH", self.password)))
                _resp_read(f)
            s.sendall(_resp_encode(args))
            return _resp_read(f)

    def pipeline(self, commands, timeout=120.0):
        """Sends many commands on one connection, written at once; returns
        their replies (an error reply raises RuntimeError)."""
        commands = list(commands)
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_resp_encode(("AUTH", self.password)))
                _resp_read(f)
            s.sendall(b"".join(_resp_encode(c) for c in commands))
            return [_resp_read(f) for _ in commands]

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("utf-8")
        elif not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode("utf-8", "replace")
    if kind == b"-":
        raise RuntimeError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("bad reply %r" % line)


def postgres_bindir():
    """The directory with initdb and pg_ctl, or None. pg_config may name
    the client's bindir, so the server's versioned dirs are searched too."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(x) if x.isdigit() else 0
                                 for x in d.split("/")[-2].split(".")],
                  reverse=True)
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if out:
            dirs.insert(0, out)
    except (OSError, subprocess.SubprocessError):
        pass
    for d in dirs:
        if os.path.exists(os.path.join(d, "initdb")) and \
                os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


class PostgresServer:
    """A PostgreSQL cluster (initdb + pg_ctl) on 127.0.0.1:port in a temp
    dir; the data survives stop()/start(). .dsn is a libpq conninfo."""

    USER = "gottwall"
    DB = "gottwall"

    def __init__(self, port=None, options=None):
        self.options = dict(options or {})  # extra -c name=value settings
        self.bindir = postgres_bindir()
        if self.bindir is None:
            skip("PostgreSQL server binaries (initdb, pg_ctl) not found "
                 "(Debian: apt-get install postgresql)")
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tmp = tempfile.mkdtemp(prefix="gwpg-")
        self.data = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "postgres.log")
        self.runas = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                skip("running as root and there is no postgres user to run "
                     "PostgreSQL as")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.runas = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.tmp, 0o700)
        self.initialised = False
        self.running = False

    @property
    def dsn(self):
        return ("host=%s port=%d user=%s dbname=%s connect_timeout=5"
                % (self.host, self.port, self.USER, self.DB))

    def settings(self):
        """STORAGE_SETTINGS for the postgres storage."""
        return {"DSN": self.dsn}

    def _run(self, args, timeout=120):
        r = subprocess.run(self.runas + args, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def start(self, timeout=60):
        if not self.initialised:
            self._run([self._bin("initdb"), "-D", self.data, "-A", "trust",
                       "-U", self.USER, "-E", "UTF8", "--locale=C",
                       "--no-sync"])
            self.initialised = True
            created = False
        else:
            created = True
        opts = ("-p %d -k %s -c listen_addresses=%s -c fsync=off "
                "-c full_page_writes=off"
                % (self.port, self.tmp, self.host))
        for k, v in self.options.items():
            opts += " -c %s=%s" % (k, v)
        self._run([self._bin("pg_ctl"), "-D", self.data, "-l", self.log_path,
                   "-o", opts, "-w", "-t", str(timeout), "start"],
                  timeout=timeout + 10)
        self.running = True
        wait_port(self.port, timeout=timeout)
        if not created:
            self._run([self._bin("createdb"), "-h", self.host, "-p",
                       str(self.port), "-U", self.USER, self.DB])
        return self

    def stop(self, mode="fast"):
        """Stops the cluster (mode: smart, fast or immediate)."""
        if self.running:
            self._run([self._bin("pg_ctl"), "-D", self.data, "-m", mode, "-w",
                       "stop"])
            self.running = False

    def sql(self, query):
        """Runs SQL with psql; returns its unaligned, tuples-only output."""
        return subprocess.run(
            [self._bin("psql") if os.path.exists(self._bin("psql")) else "psql",
             "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.dsn,
             "-c", query],
            capture_output=True, text=True, check=True, timeout=60).stdout

    def cleanup(self):
        try:
            self.stop(mode="immediate")
        except (RuntimeError, OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def storage_test_binary():
    return os.path.join(BUILDDIR, "gottwall-storage-test")


def plugin_built(name):
    """1 if the storage plugin was built (configure may have left it out)."""
    d = os.environ.get("GOTTWALL_PLUGIN_PATH", os.path.join(BUILDDIR, ".libs"))
    return any(os.path.exists(os.path.join(p, "storage_%s.so" % name))
               for p in d.split(":"))


def run_conformance(plugin, settings, unreachable=None, timeout=900):
    """Runs gottwall-storage-test against plugin with settings (a dict);
    unreachable: settings that point at a dead server. Returns the exit
    code."""
    args = [storage_test_binary(), plugin]
    args += ["%s=%s" % (k, v) for k, v in settings.items()]
    env = dict(os.environ)
    if unreachable:
        env["GW_STORAGE_TEST_UNREACHABLE"] = "\n".join(
            "%s=%s" % (k, v) for k, v in unreachable.items())
    print("+ " + " ".join(args), flush=True)
    return subprocess.call(args, env=env, timeout=timeout)
