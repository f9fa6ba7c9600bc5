"""The `gottwall` command line (SPEC §10), run as a user runs it.

--version, --help and COMMAND --help; usage errors (exit 2); `check` on
gottwall.conf.example, on the fixture plugins and on broken files (exit 1
naming the line); `plugins`; `init` (asks before overwriting); `passwd`.
"""

import base64
import hashlib
import os
import pty
import re
import select
import subprocess
import tempfile
import time

from gwtest import BUILDDIR, GOTTWALL, SRCDIR, run_tests

FIXTURES = os.path.join(BUILDDIR, "tests", "fixtures", "plugins", ".libs")
PLUGINS = os.environ.get("GOTTWALL_PLUGIN_PATH", os.path.join(BUILDDIR, ".libs"))
USAGE_START = "usage: gottwall [-c FILE | --config=FILE] [-l LEVEL | --logging=LEVEL]\n"


def run(args, cwd=None, stdin=b"", env_extra=None, plugin_path=True):
    env = dict(os.environ)
    if not plugin_path:
        env.pop("GOTTWALL_PLUGIN_PATH", None)
    env.update(env_extra or {})
    p = subprocess.run([GOTTWALL] + list(args), input=stdin, cwd=cwd or tempfile.gettempdir(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tmpdir():
    return tempfile.mkdtemp(prefix="gwcli-")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


FIXTURE_CONF = """SECRET_KEY = "secret_key";
PROJECTS = { test_project = "my_public_key"; };
STORAGE = "fixture";
STORAGE_SETTINGS = { %s };
BACKENDS = { fx = { PLUGIN = "fixture"; %s }; };
"""


# ---- --version, --help, usage ----

def test_version():
    rc, out, err = run(["--version"])
    assert rc == 0, (rc, err)
    assert out == "gottwall 0.1.0 (plugin ABI 1.7)\n", out
    assert err == ""


def test_help():
    rc, out, err = run(["--help"])
    assert rc == 0
    assert out.startswith("gottwall 0.1.0: a realtime metrics aggregation server.\n"), out
    for cmd in ("init PATH", "start", "server start [-h HOST] [-p PORT]", "aggregator start",
                "check", "plugins", "passwd", "--config=FILE", "--logging=LEVEL",
                "--plugin-path=DIR"):
        assert cmd in out, cmd
    rc, out, _ = run(["start", "--help"])
    assert rc == 0 and out.startswith("usage: gottwall [-c FILE] start\n"), out
    rc, out, _ = run(["server", "--help"])
    assert rc == 0 and out.startswith("usage: gottwall [-c FILE] server start [-h HOST] [-p PORT]\n")
    rc, out, _ = run(["help", "passwd"])
    assert rc == 0 and out.startswith("usage: gottwall passwd\n")


def test_usage_errors():
    cases = [
        ([], "gottwall: no command given\n"),
        (["frobnicate"], 'gottwall: unknown command "frobnicate"\n'),
        (["--frob", "start"], "gottwall: unknown option --frob\n"),
        (["-l", "loud", "start"],
         'gottwall: unknown logging level "loud" (use error, warning, notice, info or debug)\n'),
        (["server", "stop"], "gottwall: server: the only subcommand is `start`\n"),
        (["aggregator"], "gottwall: aggregator: the only subcommand is `start`\n"),
        (["init"], "gottwall: init needs one PATH: gottwall init gottwall.conf\n"),
        (["check", "extra"], "gottwall: check takes no arguments\n"),
        (["server", "start", "-p", "99999"], 'gottwall: bad port "99999" (1..65535)\n'),
        (["-c"], "gottwall: -c needs a file name\n"),
    ]
    for args, first in cases:
        rc, out, err = run(args)
        assert rc == 2, (args, rc, err)
        assert out == "", (args, out)
        assert err == first + USAGE_START + \
            "                [--plugin-path=DIR]... COMMAND\n" \
            "commands: init PATH, start, server start [-h HOST] [-p PORT],\n" \
            "          aggregator start, check, plugins, passwd\n" \
            "`gottwall --help` or `gottwall COMMAND --help` tells more.\n", (args, err)


# ---- check ----

def test_check_example():
    needed = ["storage_memory.so", "transport_http.so", "transport_tcpip.so", "transport_udp.so"]
    missing = [n for n in needed if not os.path.exists(os.path.join(PLUGINS, n))]
    if missing:
        print("  (skipped: %s not built yet)" % ", ".join(missing))
        return
    d = tmpdir()
    example = os.path.join(SRCDIR, "gottwall.conf.example")
    rc, out, err = run(["-c", example, "check"], cwd=d)
    assert rc == 0, (rc, out, err)
    assert out == "%s: OK (2 projects, storage \"memory\", 3 transports)\n" % example, out


def test_check_fixtures():
    d = tmpdir()
    conf = write(os.path.join(d, "gottwall.conf"), FIXTURE_CONF % ("", ""))
    rc, out, err = run(["--plugin-path=" + FIXTURES, "check"], cwd=d)
    assert rc == 0, (rc, out, err)
    assert out == 'gottwall.conf: OK (1 projects, storage "fixture", 1 transports)\n', out
    assert 'storage "fixture": answers' in err, err

    # The storage does not answer.
    down = write(os.path.join(d, "down"), "")
    write(conf, FIXTURE_CONF % ('DOWN_FILE = "%s";' % down, ""))
    rc, out, err = run(["-c", conf, "--plugin-path", FIXTURES, "check"], cwd=d)
    assert rc == 1, (rc, out, err)
    assert out == ""
    assert 'error storage "fixture" does not answer: connection refused (fixture)\n' in err, err
    assert err.endswith("gottwall: %s: check failed\n" % conf), err

    # A transport's unknown setting names the file and line.
    write(conf, FIXTURE_CONF % ("", "\n    PORTT = 1;"))
    rc, out, err = run(["-c", conf, "--plugin-path", FIXTURES, "check"], cwd=d)
    assert rc == 1, (rc, out, err)
    assert ('error transport "fx": %s:6: BACKENDS.fx.PORTT is not a setting of this plugin; '
            'known: PROJECT, JSON, FAIL_START, BATCH, HOST, PORT\n' % conf) in err, err

    # A plugin that is not there.
    write(conf, FIXTURE_CONF.replace('STORAGE = "fixture"', 'STORAGE = "nosuch"') % ("", ""))
    rc, out, err = run(["-c", conf, "--plugin-path", FIXTURES, "check"], cwd=d, plugin_path=False)
    assert rc == 1
    assert re.search(r'error storage plugin "nosuch" not found in %s, \S+\n' % re.escape(FIXTURES),
                     err), err


def test_check_broken_config():
    d = tmpdir()
    conf = write(os.path.join(d, "broken.conf"),
                 'SECRET_KEY = "x";\nPROJECTS = { a = "b"; };\nFLUSH_INTERVALL = 100;\n')
    rc, out, err = run(["-c", conf, "check"], cwd=d)
    assert rc == 1, (rc, err)
    assert err == ("gottwall: %s:3: FLUSH_INTERVALL is not a known setting; "
                   "did you mean FLUSH_INTERVAL?\n" % conf), err
    write(conf, 'PROJECTS = {\n  shop = "pub";\n};\n')
    rc, out, err = run(["-c", conf, "check"], cwd=d)
    assert rc == 1
    assert err.startswith('gottwall: %s:2: project "shop" uses the legacy form' % conf), err
    write(conf, 'SERVER = { PORT = 8889 };\nBACKENDS = {\n')
    rc, out, err = run(["-c", conf, "check"], cwd=d)
    assert rc == 1
    assert re.fullmatch(r"gottwall: %s:\d+: syntax error\n" % re.escape(conf), err), err


def test_missing_config():
    d = tmpdir()
    rc, out, err = run(["-c", os.path.join(d, "nope.conf"), "check"], cwd=d)
    assert rc == 1
    assert err == ("gottwall: the config file %s/nope.conf does not exist; create one with "
                   "`gottwall init %s/nope.conf`\n" % (d, d)), err
    rc, out, err = run(["check"], cwd=d)
    assert rc == 1
    if "exists; create one" in err:  # no system-wide config on this machine
        assert err.startswith("gottwall: no config file: neither ./gottwall.conf nor "), err
        assert "create one with `gottwall init gottwall.conf`, or name one with -c FILE\n" in err


# ---- plugins ----

def test_plugins():
    d = tmpdir()
    rc, out, err = run(["--plugin-path=" + FIXTURES, "plugins"], cwd=d, plugin_path=False)
    assert rc == 0, (rc, err)
    lines = out.splitlines()
    assert lines[0].startswith("plugin ABI 1.7; searching %s, " % FIXTURES), lines[0]
    p = os.path.join(FIXTURES, "transport_fixture.so")
    i = lines.index("transport  fixture     0.0.1     ABI 1.7  %s" % p)
    assert lines[i + 1] == "          test fixture: submits configured JSON at start"
    p = os.path.join(FIXTURES, "bad_magic.so")
    i = lines.index("broken     %s" % p)
    assert lines[i + 1] == "          %s: bad magic 0xdeadbeef" % p
    p = os.path.join(FIXTURES, "abi_major_next.so")
    i = lines.index("broken     %s" % p)
    assert lines[i + 1] == "          %s: built for plugin ABI 2.0, this daemon has 1.7" % p
    # duplicate_name.so sorts before storage_fixture.so and takes "fixture".
    p = os.path.join(FIXTURES, "duplicate_name.so")
    assert "storage    fixture     9.9.9     ABI 1.7  %s" % p in lines, out
    assert sum(1 for l in lines if l.startswith("broken ")) == 7, out


# ---- init ----

def test_init():
    d = tmpdir()
    path = os.path.join(d, "new.conf")
    rc, out, err = run(["init", path], cwd=d)
    assert rc == 0, (rc, err)
    assert out.startswith("wrote %s with new random keys" % path), out
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = open(path).read()
    keys = re.findall(r'SECRET_KEY = "([A-Za-z0-9+/=]{40})";', text)
    assert len(keys) == 1, text
    assert 'STORAGE = "memory";' in text and "ANONYMOUS_LOGIN = true;" in text

    # Not a terminal and no --force: refused, file untouched.
    rc, out, err = run(["init", path], cwd=d)
    assert rc == 1
    assert err == "gottwall: %s exists; not overwriting it (use `gottwall init %s --force`)\n" \
        % (path, path), err
    assert open(path).read() == text
    rc, out, err = run(["init", path, "--force"], cwd=d)
    assert rc == 0, err
    assert open(path).read() != text

    # The config it writes is valid: `plugins` reads its PLUGIN_PATH-less
    # settings without complaint, and check loads it (when the plugins exist).
    rc, out, err = run(["-c", path, "plugins"], cwd=d)
    assert rc == 0 and err == "", err


def pty_run(args, answers, cwd):
    """Runs gottwall with a terminal as stdin; writes each answer after its prompt."""
    master, slave = pty.openpty()
    p = subprocess.Popen([GOTTWALL] + args, stdin=slave, stdout=subprocess.PIPE,
                         stderr=slave, cwd=cwd)
    os.close(slave)
    seen = b""
    for prompt, answer in answers:
        deadline = time.time() + 10
        while prompt not in seen and time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    seen += os.read(master, 1024)
                except OSError:
                    break
        assert prompt in seen, (prompt, seen)
        seen = seen.split(prompt, 1)[1]
        os.write(master, answer)
    out, _ = p.communicate(timeout=30)
    os.close(master)
    return p.returncode, out.decode()


def test_init_asks():
    d = tmpdir()
    path = write(os.path.join(d, "gottwall.conf"), "# mine\n")
    rc, out = pty_run(["init", path], [(b"%s exists; overwrite? [y/N] " % path.encode(), b"n\n")], d)
    assert rc == 1, rc
    assert open(path).read() == "# mine\n"
    rc, out = pty_run(["init", path], [(b"overwrite? [y/N] ", b"y\n")], d)
    assert rc == 0, rc
    assert "SECRET_KEY" in open(path).read()


# ---- passwd ----

def check_hash(h, password):
    m = re.fullmatch(r"pbkdf2-sha256\$200000\$([A-Za-z0-9+/=]{24})\$([A-Za-z0-9+/=]{44})", h)
    assert m, h
    salt, want = base64.b64decode(m.group(1)), base64.b64decode(m.group(2))
    assert hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 200000) == want


def test_passwd_pipe():
    rc, out, err = run(["passwd"], stdin=b"correct horse\n")
    assert rc == 0, err
    assert out.endswith("\n") and out.count("\n") == 1
    check_hash(out.strip(), "correct horse")
    rc, out, err = run(["passwd"], stdin=b"")
    assert rc == 1 and out == ""
    assert err == "gottwall: no password given\n", err


def test_passwd_tty():
    d = tmpdir()
    rc, out = pty_run(["passwd"], [(b"Password: ", b"s3cret\n"), (b"Again: ", b"s3cret\n")], d)
    assert rc == 0, rc
    assert "s3cret" not in out
    check_hash(out.strip(), "s3cret")
    rc, out = pty_run(["passwd"], [(b"Password: ", b"one\n"), (b"Again: ", b"two\n")], d)
    assert rc == 1 and out == ""


if __name__ == "__main__":
    run_tests([test_version, test_help, test_usage_errors, test_check_example,
               test_check_fixtures, test_check_broken_config, test_missing_config,
               test_plugins, test_init, test_init_asks, test_passwd_pipe, test_passwd_tty])
