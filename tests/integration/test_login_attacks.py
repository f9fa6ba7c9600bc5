"""Attacks on the login of the server role (issue 16, items 2, 3 and 13),
against the real gottwall binary over loopback sockets.

- Password guessing: 30 parallel workers from one address, and workers
  spread over several addresses against one account, get only the password
  checks the per-address and per-account backoff allow (1 s, doubling);
  every other attempt is answered 429 with Retry-After without a check; the
  right password sent while the throttle holds is refused, not accepted
  early; each answer is counted in /metrics by reason. Meanwhile another
  user logs in from 127.0.0.2 without a single 503.
- Open redirect: after login, `next` is followed only when it is a path
  under PREFIX that normalises to itself; every hostile value sends the
  browser to the dashboard's root (exact Location headers).
- Log injection: an e-mail with escape sequences, quotes and bytes that
  are not UTF-8 is logged escaped, so a line cannot forge another.
"""

import http.client
import re
import subprocess
import threading
import time
import urllib.parse

from gwtest import GOTTWALL, Daemon, run_tests, wait_for

ANN, ANN_PW = "ann@example.com", "correct horse battery"
BOB, BOB_PW = "bob@example.com", "bob's own password"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RETRY = re.compile(rb"Too many login attempts: try again in (\d+) s\.")
HASHES = {}


def password_hash(pw):
    if pw not in HASHES:
        out = subprocess.run([GOTTWALL, "passwd"], input=pw + "\n", capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
        assert out.startswith("pbkdf2-sha256$"), out
        HASHES[pw] = out
    return HASHES[pw]


def daemon(**extra):
    cfg = {"ANONYMOUS_LOGIN": False,
           "USERS": [{"email": ANN, "password": password_hash(ANN_PW)},
                     {"email": BOB, "password": password_hash(BOB_PW)}]}
    cfg.update(extra)
    return Daemon(extra=cfg)


def request(d, method, path, body=None, headers=None, source="127.0.0.1", timeout=30):
    """One request on a new connection from the loopback address source."""
    c = http.client.HTTPConnection("127.0.0.1", d.server_port, timeout=timeout,
                                   source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def login(d, email, password, source="127.0.0.1", next_=None, prefix=""):
    form = {"email": email, "password": password}
    if next_ is not None:
        form["next"] = next_
    return request(d, "POST", prefix + "/login", urllib.parse.urlencode(form), FORM,
                   source=source)


def auth_failures(d, reason):
    _, _, text = request(d, "GET", "/metrics")
    m = re.search(r'^gottwall_auth_failures_total\{transport="server",reason="%s"\} (\d+)$'
                  % reason, text.decode(), re.M)
    return int(m.group(1)) if m else 0


def checks_allowed(elapsed, cap):
    """The most password checks the backoff (1 s, doubling up to cap)
    lets start within elapsed seconds: check k waits for the delays of the
    k - 1 failures before it."""
    k, t, delay = 1, 0.0, 1.0
    while t + delay <= elapsed:
        t += delay
        k += 1
        delay = min(delay * 2, cap)
    return k


class Flood:
    """workers threads, each posting wrong passwords from its source address
    until the deadline; every answer is kept."""

    def __init__(self, d, sources, seconds, email=lambda i, n: ANN):
        self.d, self.sources, self.email = d, sources, email
        self.deadline = time.time() + seconds
        self.answers = []          # (status, headers, body)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.work, args=(i, s))
                        for i, s in enumerate(sources)]

    def work(self, i, source):
        n = 0
        while time.time() < self.deadline:
            n += 1
            a = login(self.d, self.email(i, n), "guess %d-%d" % (i, n), source=source)
            with self.lock:
                self.answers.append(a)
            if a[0] != 401:
                time.sleep(0.05)   # a flood, but one the shared test machine survives

    def start(self):
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(120)
            assert not t.is_alive(), "a flood worker hangs"
        self.elapsed = time.time() - self.started
        return [a[0] for a in self.answers]


def assert_throttled(answer, retry_max):
    status, hdrs, body = answer
    assert status == 429, (status, hdrs, body[:300])
    assert "set-cookie" not in hdrs, hdrs
    m = RETRY.search(body)
    assert m and hdrs.get("retry-after") == m.group(1).decode(), (hdrs, body[:1000])
    assert 1 <= int(m.group(1)) <= retry_max, m.group(1)


def fail_once_and_hold(d, email, source):
    """Sends one wrong password from source on a thread, waits until its
    check has failed (the counter of reason login moves), and returns the
    thread (whose answer comes only when the new throttle ends)."""
    before = auth_failures(d, "login")
    out = []

    def one():
        out.append(login(d, email, "one more guess", source=source))
    t = threading.Thread(target=one)
    t.start()
    wait_for(lambda: auth_failures(d, "login") == before + 1 or out, timeout=60,
             what="the wrong password checked")
    assert not out, out[0][:2]     # still held: the failure answer waits for the delay
    t.out = out
    return t


def wait_out(d, email, source):
    """Posts wrong passwords from source, sleeping Retry-After on each 429,
    until one is checked: its 401 comes when the delay it set is over."""
    for _ in range(40):
        status, hdrs, _ = login(d, email, "waiting it out", source=source)
        if status == 401:
            return
        assert status == 429, status
        time.sleep(int(hdrs["retry-after"]))
    raise AssertionError("the throttle never let a check through")


# ---- Item 2: password guessing ----

def test_flood_one_address():
    """30 workers from 127.0.0.1, half on ann, half on unknown e-mails that
    no account throttle holds: only the checks the per-address backoff
    allows, the rest 429 without a check; the right password is not
    accepted early."""
    with daemon() as d:
        flood = Flood(d, ["127.0.0.1"] * 30, seconds=10,
                      email=lambda i, n: ANN if i % 2 else "u%d-%d@example.com" % (i, n))
        flood.start()
        statuses = flood.join()
        checked = statuses.count(401)
        throttled = statuses.count(429)
        assert set(statuses) <= {401, 429}, sorted(set(statuses))
        assert 1 <= checked <= checks_allowed(flood.elapsed, 8), (checked, flood.elapsed)
        assert throttled >= 30, throttled
        for a in flood.answers:
            if a[0] == 429:
                assert_throttled(a, 8)
        wait_for(lambda: auth_failures(d, "login") == checked, what="failures counted")
        assert auth_failures(d, "login_throttled_address") == throttled
        assert auth_failures(d, "login_throttled_account") == 0

        # Wait out the throttle (a 401 comes when the delay it set is over),
        # fail once more (another e-mail), and send ann's right password
        # while that failure's delay holds: refused without a check.
        wait_out(d, "eve@example.com", "127.0.0.1")
        held = fail_once_and_hold(d, "eve@example.com", "127.0.0.1")
        before = auth_failures(d, "login_throttled_address")
        right = login(d, ANN, ANN_PW, source="127.0.0.1")
        assert_throttled(right, 8)
        assert auth_failures(d, "login_throttled_address") == before + 1
        held.join(60)
        assert held.out[0][0] == 401, held.out[0][:2]
        # After the delay the right password gets in.
        status, hdrs, _ = login(d, ANN, ANN_PW, source="127.0.0.1")
        assert (status, hdrs.get("location")) == (302, "/"), (status, hdrs)
        assert hdrs["set-cookie"].startswith("gw_session=ann@example.com|"), hdrs


def test_flood_one_account():
    """Workers on 8 addresses against one account: the per-account backoff
    bounds the checks whatever the number of addresses."""
    sources = ["127.0.0.%d" % (3 + i % 8) for i in range(24)]
    with daemon(LOGIN_ACCOUNT_MAX_DELAY=8) as d:   # 60 s by default
        flood = Flood(d, sources, seconds=10).start()
        statuses = flood.join()
        checked = statuses.count(401)
        throttled = statuses.count(429)
        assert set(statuses) <= {401, 429}, sorted(set(statuses))
        assert 1 <= checked <= checks_allowed(flood.elapsed, 8), (checked, flood.elapsed)
        wait_for(lambda: auth_failures(d, "login") == checked, what="failures counted")
        by_account = auth_failures(d, "login_throttled_account")
        assert by_account > 0, by_account
        assert auth_failures(d, "login_throttled_address") + by_account == throttled
        for a in flood.answers:
            if a[0] == 429:
                assert_throttled(a, 8)

        # From a fresh address, the right password of the throttled account
        # is refused while a failure's delay holds.
        wait_out(d, ANN, "127.0.0.21")
        held = fail_once_and_hold(d, ANN, "127.0.0.22")
        before = auth_failures(d, "login_throttled_account")
        assert_throttled(login(d, ANN, ANN_PW, source="127.0.0.20"), 8)
        assert auth_failures(d, "login_throttled_account") == before + 1
        held.join(120)
        assert held.out[0][0] == 401, held.out[0][:2]
        # Another account is not throttled by ann's.
        status, hdrs, _ = login(d, BOB, BOB_PW, source="127.0.0.23")
        assert (status, hdrs.get("location")) == (302, "/"), (status, hdrs)


def test_flood_other_user():
    """A flood from 127.0.0.1 on ann, and unknown e-mails from 12 more
    addresses (more than the 8 checks that run at once): bob's five logins
    from 127.0.0.2 all get in, none 503."""
    with daemon() as d:
        one = Flood(d, ["127.0.0.1"] * 30, seconds=30)
        many = Flood(d, ["127.0.1.%d" % (1 + i % 12) for i in range(24)], seconds=30,
                     email=lambda i, n: "user%d-%d@example.com" % (i, n))
        one.start()
        many.start()
        bobs = []
        try:
            time.sleep(1)
            for _ in range(5):
                status, hdrs, body = login(d, BOB, BOB_PW, source="127.0.0.2")
                bobs.append((status, hdrs.get("location"), body[:200]))
        finally:
            one.deadline = many.deadline = 0
            statuses = one.join() + many.join()
        assert bobs == [(302, "/", b"")] * 5, bobs
        assert set(statuses) <= {401, 429}, sorted(set(statuses))
        assert auth_failures(d, "login_busy") == 0


# ---- Item 3: open redirect ----

HOSTILE = [
    "/\t/127.0.0.1:29999/phish", "//evil.example/", "///evil.example/", "/\\evil.example/",
    "\\\\evil.example/", "/\\/evil.example", "http://evil.example/", "https:evil.example",
    "javascript:alert(1)", "evil.example", "", " /", "/ /evil.example", "/\r\nX: y",
    "/\x00/evil", "/\x7f/evil", "/a//b", "/./", "/a/./b", "/a/../b", "/..", "/%2e%2e/x",
    "/.%2E/x", "/%2f/evil.example", "/%5cevil.example", "/%09/evil", "/%zz", "/caf\xe9",
]
GOOD = ["/", "/?x=1", "/#projects", "/?next=//x", "/api/v1/projects", "/a/b.c/d%20e"]


def expect_redirects(d, prefix, hostile, good, cookie):
    """Every next value through GET /login with a session, and a few through
    POST /login: the exact Location."""
    root = prefix + "/"
    want = [(v, 302, root) for v in hostile] + [(v, 302, v) for v in good]
    seen = []
    for value, _, _ in want:
        q = urllib.parse.quote(value, safe="")
        status, hdrs, _ = request(d, "GET", "%s/login?next=%s" % (prefix, q),
                                  headers={"Cookie": cookie})
        seen.append((value, status, hdrs.get("location")))
    assert seen == want, [(s, w) for s, w in zip(seen, want) if s != w]
    for value, want in [(hostile[0], root), (hostile[1], root), (good[-1], good[-1])]:
        status, hdrs, _ = login(d, ANN, ANN_PW, next_=value, prefix=prefix)
        assert (status, hdrs.get("location")) == (302, want), (value, status, hdrs)


def session(d, prefix=""):
    status, hdrs, _ = login(d, ANN, ANN_PW, prefix=prefix)
    assert status == 302, (status, hdrs)
    return hdrs["set-cookie"].split(";")[0]


def test_next_redirect():
    with daemon() as d:
        # The reviewer's request, as it came.
        cookie = session(d)
        status, hdrs, _ = request(d, "GET", "/login?next=/%09/127.0.0.1:29999/phish",
                                  headers={"Cookie": cookie})
        assert (status, hdrs.get("location")) == (302, "/"), hdrs
        expect_redirects(d, "", HOSTILE, GOOD, cookie)
        # The login form carries only a safe next.
        status, _, body = request(d, "GET", "/login?next=%2F%09%2Fevil.example")
        assert status == 200 and b'name="next" value="/"' in body, body


def test_next_redirect_prefix():
    with daemon(PREFIX="/gw") as d:
        cookie = session(d, "/gw")
        hostile = [p for p in HOSTILE] + [
            "/", "/x", "/gwx/", "/gw", "/gw//evil.example", "/gw/\\evil.example",
            "/gw/../x", "/gw/%2e%2e/x", "/gw/\t/evil", "/gw/./"]
        good = ["/gw/", "/gw/?x=1", "/gw/#a", "/gw/api/v1/projects"]
        expect_redirects(d, "/gw", hostile, good, cookie)


# ---- Item 13: log injection ----

def test_login_log_injection():
    # Escape sequences that rewrite the terminal's line, a quote, a
    # backslash, two bytes that are not UTF-8, an e-acute and U+009B (CSI).
    forged = (b"x\x1b[2K\x1b[1G2026-01-01T00:00:00.000Z info server: admin@example.com "
              b"logged in from 10.0.0.1\" \\ \xff\xfe \xc3\xa9 \xc2\x9b")
    with daemon() as d:
        form = "password=x&email=" + urllib.parse.quote(forged, safe="")
        status, _, _ = request(d, "POST", "/login", form, FORM)
        assert status == 401
        status, _, _ = login(d, ANN, ANN_PW)
        assert status == 302
        with open(d.log_path, "rb") as f:
            raw = f.read()
        assert b"\x1b" not in raw and b"\xff" not in raw and b"\xc2\x9b" not in raw, raw[-2000:]
        want = (b'server: failed login for "x\\x1b[2K\\x1b[1G2026-01-01T00:00:00.000Z info '
                b'server: admin@example.com logged in from 10.0.0.1\\" \\\\ \\xff\\xfe '
                b'\xc3\xa9 \\xc2\\x9b" from 127.0.0.1 (unknown user; failure 1 from this '
                b'address, 1 for this account, answering in 1 s)\n')
        assert want in raw, raw[-2000:]
        lines = [l for l in raw.split(b"\n") if b"logged in from" in l]
        assert len(lines) == 2 and lines[1].endswith(
            b" info server: ann@example.com logged in from 127.0.0.1"), lines


if __name__ == "__main__":
    run_tests([test_flood_one_address, test_flood_one_account, test_flood_other_user,
               test_next_redirect, test_next_redirect_prefix, test_login_log_injection])
