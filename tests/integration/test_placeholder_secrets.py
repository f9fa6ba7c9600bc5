"""The example's placeholder secrets (issue 16, item 4), against the real
gottwall binary.

The review: `gottwall check` said OK with `cookie_secret = "change me too"`,
and a cookie forged with it was accepted. gottwall.conf.example (and
README's quick start) must keep running on loopback, so: whenever a
listener (a transport's HOST, the server's HOST or -h) is not on loopback,
`check` and every start refuse SECRET_KEY, cookie_secret and any project's
private_key equal to "change me" or "change me too", naming the file, the
line and what to do; on loopback they only warn, naming the line.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

from gwtest import GOTTWALL, SRCDIR, free_port, run_tests, wait_port

EXAMPLE = os.path.join(SRCDIR, "gottwall.conf.example")


def example_copy(replace=()):
    """The example in a temp dir, its ports made free and replace applied
    line by line (line numbers stay)."""
    d = tempfile.mkdtemp(prefix="gwsecrets-")
    text = open(EXAMPLE).read()
    ports = {}
    for p in ("8889", "8890", "8897", "8898"):
        ports[p] = free_port()
        text = text.replace("PORT = %s;" % p, "PORT = %d;" % ports[p])
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = os.path.join(d, "gottwall.conf")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return d, path, ports


def line_of(path, start):
    for i, line in enumerate(open(path), 1):
        if line.startswith(start):
            return i
    raise AssertionError(start)


def run(args, cwd):
    p = subprocess.run([GOTTWALL] + args, cwd=cwd, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


NEW_KEYS = ("set %s to a random secret (`gottwall init NEW.conf` writes a config with new keys; "
            "or use the output of `openssl rand -base64 30`)")
WHAT = {"SECRET_KEY": "anyone can sign events and read the data of every project that uses it",
        "cookie_secret": "anyone can forge a login cookie for any user"}


def refusal(path, name, value, listener, host, what=None, line=None):
    return ('error %s:%d: %s is "%s", the placeholder of gottwall.conf.example, and %s listens '
            "on %s, not on loopback: %s; " % (path, line or line_of(path, name + " "), name,
                                              value, listener, host, what or WHAT[name])
            + NEW_KEYS % name + "\n")


def warning(path, name, value):
    return ('warning %s:%d: %s is "%s", the placeholder of gottwall.conf.example: accepted only '
            "because every listener is on loopback; set %s to a random secret before listening "
            "on another address (`gottwall init NEW.conf` writes a config with new keys)\n"
            % (path, line_of(path, name + " "), name, value, name))


def lines(err):
    """stderr without the timestamps."""
    return "".join(re.sub(r"^\S+ (?=(error|warning|info|notice|debug) )", "", l)
                   for l in err.splitlines(True))


def test_check_on_loopback_warns():
    d, path, _ = example_copy()
    rc, out, err = run(["-c", path, "check"], d)
    assert rc == 0, (rc, out, err)
    assert out == "%s: OK (2 projects, storage \"memory\", 3 transports)\n" % path, out
    got = lines(err)
    assert warning(path, "SECRET_KEY", "change me") in got, got
    assert warning(path, "cookie_secret", "change me too") in got, got
    shutil.rmtree(d)


def test_check_refuses_off_loopback():
    d, path, _ = example_copy([('SERVER = { HOST = "127.0.0.1";', 'SERVER = { HOST = "0.0.0.0";')])
    rc, out, err = run(["-c", path, "check"], d)
    assert (rc, out) == (1, ""), (rc, out, err)
    got = lines(err)
    assert refusal(path, "SECRET_KEY", "change me", "the server", "0.0.0.0") in got, got
    assert refusal(path, "cookie_secret", "change me too", "the server", "0.0.0.0") in got, got
    assert got.endswith("gottwall: %s: check failed\n" % path), got
    shutil.rmtree(d)
    # A transport elsewhere, and a project's own private key.
    d, path, _ = example_copy([
        ('http  = { HOST = "127.0.0.1";', 'http  = { HOST = "192.0.2.10";'),
        ('shop = { public_key = "shop_public"; private_key = "shop_private"; };',
         'shop = { public_key = "shop_public"; private_key = "change me"; };')])
    rc, out, err = run(["-c", path, "check"], d)
    got = lines(err)
    assert rc == 1, (rc, out, err)
    assert refusal(path, "SECRET_KEY", "change me", "BACKENDS.http", "192.0.2.10") in got, got
    assert refusal(path, "PROJECTS.shop.private_key", "change me", "BACKENDS.http",
                   "192.0.2.10", "anyone can sign events and read the data of project shop",
                   line_of(path, "    shop = ")) \
        in got, got
    shutil.rmtree(d)


def test_start_refuses_off_loopback():
    d, path, ports = example_copy()
    # server start -h 0.0.0.0: refused before anything listens.
    p = subprocess.run([GOTTWALL, "-c", path, "server", "start", "-h", "0.0.0.0"], cwd=d,
                       capture_output=True, text=True, timeout=60)
    got = lines(p.stderr)
    assert p.returncode == 1, (p.returncode, got)
    assert refusal(path, "cookie_secret", "change me too", "the server", "0.0.0.0") in got, got
    assert "ready" not in got, got
    # The quick start: the example as it is starts, with the warnings.
    proc = subprocess.Popen([GOTTWALL, "-c", path, "start"], cwd=d, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(ports["8889"], proc=proc)
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % ports["8889"], timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert warning(path, "SECRET_KEY", "change me") in lines(out), out
    shutil.rmtree(d)


def test_sighup_keeps_the_config():
    """A SIGHUP bringing a placeholder back while the server listens on
    every address keeps the config loaded before."""
    for attempt in range(3):
        d, path, ports = example_copy([('SECRET_KEY = "change me";', 'SECRET_KEY = "s3cr3t-1";'),
                                       ('cookie_secret = "change me too";',
                                        'cookie_secret = "s3cr3t-2";')])
        proc = subprocess.Popen([GOTTWALL, "-c", path, "server", "start", "-h", "0.0.0.0"],
                                cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_port(ports["8889"], proc=proc)
            break
        except RuntimeError:
            # Another test took the free port first (0.0.0.0 collides
            # with any address's): new ports, once or twice.
            out = proc.communicate(timeout=60)[0]
            if attempt == 2 or "Address already in use" not in out:
                raise AssertionError(out)
    try:
        text = open(path).read().replace('cookie_secret = "s3cr3t-2";',
                                         'cookie_secret = "change me too";')
        with open(path, "w") as f:
            f.write(text)
        proc.send_signal(1)
        time.sleep(1)
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % ports["8889"], timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        out = lines(proc.communicate(timeout=60)[0])
    assert proc.returncode == 0, out
    assert refusal(path, "cookie_secret", "change me too", "the server", "0.0.0.0") in out, out
    assert "error SIGHUP: a placeholder secret (above) with a listener off loopback; keeping " \
        "the config loaded before\n" in out, out
    assert "SIGHUP: reloaded" not in out, out
    shutil.rmtree(d)


def test_init_keys_pass_off_loopback():
    d = tempfile.mkdtemp(prefix="gwsecrets-")
    path = os.path.join(d, "new.conf")
    assert run(["init", path], d)[0] == 0
    text = open(path).read().replace('HOST = "127.0.0.1"', 'HOST = "0.0.0.0"')
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run(["-c", path, "check"], d)
    assert rc == 0 and "placeholder" not in err, (rc, out, err)
    shutil.rmtree(d)


if __name__ == "__main__":
    run_tests([test_check_on_loopback_warns, test_check_refuses_off_loopback,
               test_start_refuses_off_loopback, test_sighup_keeps_the_config,
               test_init_keys_pass_off_loopback])
