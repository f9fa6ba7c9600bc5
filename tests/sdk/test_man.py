"""The manual pages: they render without warnings, and they say what the
program does.

- man/gottwall.8 and man/gottwall.conf.5 go through groff (-man -Tutf8 -ww)
  and, when man-db is installed, `man --warnings -l`, with no message at all.
- Every command and option of `gottwall --help`, and the usage line of
  every `gottwall COMMAND --help`, appears in gottwall.8; the extra spellings
  gottwall.8 documents (-h, -V, help COMMAND) do what it says; its version is
  the binary's.
- Every top-level setting base/conf.c accepts is an entry of
  gottwall.conf.5 and the page lists no other; every setting each built-in
  plugin declares (GW_CONFIG_KEY, directly or through a macro of its
  headers such as TL_FRAMED_KEYS) appears in that plugin's entry.

Needs groff (Debian: groff-base, installed with man-db).
"""

import os
import re
import shutil
import subprocess
import sys

from gwtest import GOTTWALL, SRCDIR, run_tests, skip

MAN8 = os.path.join(SRCDIR, "man", "gottwall.8")
MAN5 = os.path.join(SRCDIR, "man", "gottwall.conf.5")

if shutil.which("groff") is None:
    skip("groff is not installed (Debian: apt-get install groff-base)")

ENV = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")


def render(page, width=200):
    """The page as plain text: long lines, no hyphenation, no emphasis,
    every kind of dash as '-'."""
    out = subprocess.run(["groff", "-man", "-Tutf8", "-rLL=%dn" % width,
                          "-rHY=0", "-P", "-cbou", page],
                         capture_output=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode("utf-8")
    for dash in ("\u2010", "\u2011", "\u2212", "\u2013"):
        text = text.replace(dash, "-")
    return re.sub(r"(?<=\S)[ \t]+", " ", text)  # keep the indentation


def run(*args):
    out = subprocess.run([GOTTWALL] + list(args), capture_output=True,
                         text=True, timeout=30)
    return out.returncode, out.stdout, out.stderr


def test_render_without_warnings():
    for page in (MAN8, MAN5):
        out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page],
                             capture_output=True, env=ENV, timeout=60)
        assert out.returncode == 0 and out.stderr == b"", \
            "groff on %s:\n%s" % (page, out.stderr.decode())
        if shutil.which("man"):
            out = subprocess.run(["man", "--warnings", "-l", page],
                                 capture_output=True, env=ENV, timeout=60)
            assert out.returncode == 0 and out.stderr == b"", \
                "man -l on %s:\n%s" % (page, out.stderr.decode())
            assert len(out.stdout) > 2000, out.stdout


def help_commands(text):
    """The commands of `gottwall --help`, as written ("server start [-h
    HOST] [-p PORT]")."""
    section = text.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = []
    for line in section.splitlines():
        m = re.match(r"^  (\S.*?)(?:  +.*)?$", line)
        if m:
            cmds.append(m.group(1).strip())
    return cmds


def help_options(text):
    section = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    opts = []
    for line in section.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[a-z-]+)", line)
        if m:
            opts += [o for o in m.groups() if o]
    return opts


def test_help_matches_man8():
    man = render(MAN8)
    rc, out, _ = run("--help")
    assert rc == 0, out
    cmds = help_commands(out)
    assert len(cmds) == 7, cmds
    for cmd in cmds:
        assert "gottwall " + cmd in man, \
            "`gottwall --help` lists %r; gottwall.8's SYNOPSIS does not" % cmd
    opts = help_options(out)
    assert len(opts) >= 7, opts
    for opt in opts:
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), man), \
            "`gottwall --help` lists %s; gottwall.8 does not" % opt
    for level in ("error", "warning", "notice", "info", "debug"):
        assert level in out and level in man.split("--logging=LEVEL", 2)[2][:400], level
    for sig in ("SIGTERM", "SIGINT", "SIGHUP"):
        assert sig in out and sig in man, sig
    # COMMAND --help: its usage line, without the global options, is in
    # the SYNOPSIS.
    names = sorted(set(c.split()[0] for c in cmds))
    for name in names:
        rc, text, err = run(name, "--help")
        assert rc == 0, (name, text, err)
        usage = text.splitlines()[0]
        m = re.match(r"usage: gottwall (?:\[-c FILE\] |\[--plugin-path=DIR\] )?(.*)$", usage)
        assert m, usage
        assert "gottwall " + m.group(1) in man, \
            "`gottwall %s --help` says %r; gottwall.8 does not" % (name, usage)
        # The COMMANDS section has an entry for it.
        assert re.search(r"\n {7}%s\b" % re.escape(m.group(1).split(" [")[0]), man), name


def test_man8_claims_hold():
    man = render(MAN8)
    rc, version, _ = run("--version")
    assert rc == 0
    assert run("-V") == (0, version, ""), "gottwall.8 documents -V as --version"
    assert run("-h") == run("--help"), "gottwall.8 documents -h as --help"
    assert run("help", "check") == run("check", "--help"), \
        "gottwall.8 documents `help COMMAND` as `COMMAND --help`"
    m = re.match(r"gottwall (\S+) \(plugin ABI (\d+\.\d+)\)$", version.strip())
    assert m, version
    head = open(MAN8).read()
    assert '"gottwall %s"' % m.group(1) in head, \
        "gottwall.8's .TH names another version than %s" % m.group(1)
    rc, out, err = run("bogus")
    assert rc == 2 and "unknown command" in err, (rc, out, err)
    assert re.search(r"^ {7}2\s+A usage error", man, re.M), \
        "gottwall.8's EXIT STATUS does not say 2 is a usage error"


def config_settings():
    src = open(os.path.join(SRCDIR, "base", "conf.c")).read()
    table = src.split("cf_scalars[] = {", 1)[1].split("};", 1)[0]
    names = re.findall(r'\{"([A-Za-z_]+)",', table)
    groups = src.split("cf_groups[] = {", 1)[1].split("};", 1)[0]
    names += re.findall(r'"([A-Z_]+)"', groups)
    assert len(names) > 20, names
    return set(names)


def man5_entries(text):
    """The names of the SETTINGS entries of gottwall.conf.5."""
    section = text.split("\nSETTINGS\n", 1)[1].split("\nSTORAGE SETTINGS\n", 1)[0]
    return set(re.findall(r"^ {7}([A-Za-z_]+) \(", section, re.M))


KEY_RE = r'GW_CONFIG_KEY(?:_RANGE)?\(\s*"([A-Z_]+)"'


def key_macros(base):
    """{MACRO: [KEY, ...]}: the macros of the plugins' headers that stand
    for config keys (TL_FRAMED_KEYS of plugins/transport/common/listen.h,
    the keys tcpip and udp share)."""
    out = {}
    for root, _, files in os.walk(base):
        for f in files:
            if f.endswith(".h"):
                src = open(os.path.join(root, f)).read()
                for name, body in re.findall(
                        r"^#define (\w+)\([^)]*\)((?:[^\n]*\\\n)*[^\n]*)",
                        src, re.M):
                    keys = re.findall(KEY_RE, body)
                    if keys:
                        out[name] = keys
    return out


def plugin_keys():
    """{(kind, plugin): [KEY, ...]} from the built-in plugins' sources."""
    out = {}
    base = os.path.join(SRCDIR, "plugins")
    macros = key_macros(base)
    for kind in ("storage", "transport"):
        for name in sorted(os.listdir(os.path.join(base, kind))):
            keys = []
            d = os.path.join(base, kind, name)
            for f in sorted(os.listdir(d)):
                if f.endswith(".c"):
                    src = open(os.path.join(d, f)).read()
                    keys += re.findall(KEY_RE, src)
                    for macro, mkeys in sorted(macros.items()):
                        keys += mkeys * len(re.findall(r"\b%s\(" % macro, src))
            if keys:
                out[(kind, name)] = keys
    return out


def test_man5_matches_config():
    text = render(MAN5)
    want = config_settings()
    have = man5_entries(text)
    assert want - have == set(), "settings missing from gottwall.conf.5: %s" % sorted(want - have)
    assert have - want == set(), "gottwall.conf.5 lists settings config.c refuses: %s" % sorted(have - want)
    sections = {
        "storage": text.split("\nSTORAGE SETTINGS\n", 1)[1].split("\nTRANSPORT SETTINGS\n", 1)[0],
        "transport": text.split("\nTRANSPORT SETTINGS\n", 1)[1].split("\nFILES\n", 1)[0],
    }
    checked = 0
    for (kind, name), keys in plugin_keys().items():
        entry = re.search(r"^ {7}%s\n?(.*?)(?=^ {7}\S|\Z)" % re.escape(name),
                          sections[kind], re.M | re.S)
        assert entry, "gottwall.conf.5 has no %s entry for %s" % (kind, name)
        words = set(re.findall(r"[A-Z_]{2,}", entry.group(0)))
        missing = [k for k in keys if k not in words]
        assert not missing, "%s %s: %s missing from gottwall.conf.5" % (kind, name, missing)
        checked += len(keys)
    assert checked > 40, checked


run_tests([test_render_without_warnings, test_help_matches_man8,
           test_man8_claims_hold, test_man5_matches_config])
