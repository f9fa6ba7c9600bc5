#!/usr/bin/env python3
"""check-layers: GottWall's architecture check.

Usage: tools/check-layers.py [TOP_SRCDIR]   (default: this script's ../)

The core's sources live in layered folders at the top of the tree, bottom
to top:

    base/ < ingest/ < net/ < server/ < core/

with sdk/ (the public plugin headers, <gottwall/x.h>) below all of them.
The check fails (exit 1, one line per violation on stdout) when:

  1. a file in a layer folder (or sdk/) includes a header of a layer above
     it, or anything outside the layers below it and sdk/; or a quoted
     include of a layer, sdk or plugin file cannot be resolved to a file in
     the tree;
  2. two folders include each other (the layer folders, sdk/ and each
     plugin folder plugins/<kind>/<name>/ or plugins/common/), reported
     once per pair;
  3. a plugin includes a layer header, or anything other than its own
     folder, plugins/common/ and plugins/transport/common/;
  4. a source file (.c .h .js .py .sh .mjs .css .html) is over 1200
     lines (tests/ is excepted);
  5. a C function (in a .c file outside tests/) is over 120 lines.

Includes: only quoted ones are checked. "name.h" is looked up in the
including file's folder; a path with a slash in the including file's
folder, then from the top of the tree (-I$(top_srcdir)), then under sdk/.
Angle-bracket includes (<stdio.h>, <config.h>, <gottwall/x.h>) are system,
library or sdk headers and are not checked.

Functions: a function body starts at a line that begins with '{' or at a
definition line at column 0 that ends in '{', and ends at the next line
that begins with '}' (comments, string literals and preprocessor lines are
skipped first). Its length counts the lines from the opening brace to the
closing one. Blocks at column 0 that are not function bodies (struct,
enum, initializers) are skipped.

On success it prints one summary line and exits 0.
"""

import os
import re
import sys

LAYERS = ("base", "ingest", "net", "server", "core")
LAYER_ORDER = " < ".join(LAYERS)
MAX_FILE_LINES = 1200
MAX_FUNC_LINES = 120
SOURCE_EXTS = (".c", ".h", ".js", ".py", ".sh", ".mjs", ".css", ".html")
C_EXTS = (".c", ".h")
PLUGIN_SHARED = ("plugins/common", "plugins/transport/common")

# Directories never walked: VCS and build state, generated or vendored
# trees. Directories whose name starts with '.' are skipped as well, as are
# build directories (build*/ at the top, any folder holding config.status).
PRUNE = {"node_modules", "web-dist", "autom4te.cache"}
PRUNE_PATHS = {"tests/fuzz/corpus"}

# Comments, string literals and character literals, in one pass so that a
# "/*" inside a string or a quote inside a comment is not misread.
TOKEN_RE = re.compile(
    r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
    re.S)
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)
# Words before a '(' in a declaration that are not the function's name.
NOT_NAMES = {"__attribute__", "__attribute", "__declspec", "__extension__",
             "void", "char", "short", "int", "long", "float", "double",
             "signed", "unsigned", "const", "volatile", "restrict", "static",
             "inline", "extern", "struct", "union", "enum", "_Bool"}


def walk(top):
    """Every file of the tree as a path relative to top, with '/'."""
    files = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
        rel = "" if rel == "." else rel + "/"
        keep = []
        for d in dirnames:
            path = rel + d
            if d.startswith(".") or d in PRUNE or path in PRUNE_PATHS:
                continue
            if not rel and d.startswith("build"):
                continue
            if os.path.exists(os.path.join(dirpath, d, "config.status")):
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for f in filenames:
            files.append(rel + f)
    return files


def unit_of(path):
    """The folder a file belongs to for the include rules, or None when it
    is outside them (tests/, tools/, examples/, the top, ...)."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    if parts[0] in LAYERS or parts[0] == "sdk":
        return parts[0]
    if parts[0] == "plugins":
        if parts[1] == "common" or len(parts) < 4:
            return "plugins/" + parts[1]
        return "plugins/%s/%s" % (parts[1], parts[2])
    return None


def rank(unit):
    if unit == "sdk":
        return 0
    if unit in LAYERS:
        return 1 + LAYERS.index(unit)
    return len(LAYERS) + 1


def read(top, path):
    with open(os.path.join(top, path), encoding="utf-8",
              errors="replace", newline="") as f:
        return f.read()


def strip_comments(text):
    """Comments blanked (newlines kept), string literals kept."""
    def sub(m):
        s = m.group(0)
        if s[0] == "/":
            return " " + "\n" * s.count("\n")
        return s
    return TOKEN_RE.sub(sub, text)


def strip_literals(text):
    """Comments and string/char literals blanked (newlines kept)."""
    def sub(m):
        s = m.group(0)
        if s[0] == "/":
            return " " + "\n" * s.count("\n")
        return s[0] + s[0]
    return TOKEN_RE.sub(sub, text)


def resolve(path, inc, fileset):
    here = os.path.dirname(path)
    cands = [os.path.join(here, inc)]
    if "/" in inc:
        cands += [inc, os.path.join("sdk", inc)]
    for c in cands:
        c = os.path.normpath(c).replace(os.sep, "/")
        if not c.startswith("../") and c in fileset:
            return c
    return None


def layer_rule(unit, target_unit):
    """None when a file of layer `unit` may include from `target_unit`,
    else the rule it breaks."""
    if target_unit == "sdk":
        return None
    if unit == "sdk":
        return "sdk/ may include only sdk/ (it is below all layers: %s)" % (
            LAYER_ORDER)
    if target_unit in LAYERS and rank(target_unit) <= rank(unit):
        return None
    allowed = " ".join(l + "/" for l in LAYERS[:LAYERS.index(unit) + 1])
    return "%s/ may include only %s (layer order %s)" % (
        unit, allowed, LAYER_ORDER)


def plugin_rule(unit, target_unit):
    if target_unit in (unit, "sdk") or target_unit in PLUGIN_SHARED:
        return None
    allowed = ("<gottwall/...>, files of its own folder, plugins/common/ "
               "and plugins/transport/common/")
    if target_unit in LAYERS:
        return ("a plugin may not include a layer header (%s/); a plugin "
                "may include only %s" % (target_unit, allowed))
    return "%s/ may include only %s" % (unit, allowed)


MACRO_RE = re.compile(r"[A-Z][A-Z0-9_]*$")


def declared_name(decl):
    """The name of the function a definition declares, or None when it is
    not one (an initializer: an '=' outside parentheses). decl is the text from
    the end of the previous declaration to the parameter list's ')'."""
    # Identifiers right before each parenthesised group at depth 0: the
    # function's name, and attribute macros like GW_PRINTF(4, 5).
    names = []
    depth = 0
    for m in re.finditer(r"[A-Za-z_]\w*|[()=]", decl):
        t = m.group(0)
        if t == "(":
            if depth == 0:
                prev = decl[:m.start()].rstrip()
                n = re.search(r"[A-Za-z_]\w*$", prev)
                if n and n.group(0) not in NOT_NAMES:
                    names.append((n.group(0), n.start()))
            depth += 1
        elif t == ")":
            depth -= 1
        elif t == "=" and depth == 0:
            return None
    if not names:
        return None
    for name, at in names:
        if not MACRO_RE.match(name):
            return name, at
    return names[-1]


def function_lengths(text):
    """(name, line of the name, body lines) of each function of a C file."""
    lines = strip_literals(text).split("\n")
    # Preprocessor lines, with their continuations.
    pp = [False] * len(lines)
    cont = False
    for i, l in enumerate(lines):
        if cont or l.lstrip().startswith("#"):
            pp[i] = True
            cont = l.endswith("\\")
    out = []
    sig = []            # top-level lines since the last declaration
    start = None        # line of the opening brace of a function body
    func = None         # (name, name line) of that function
    depth = 0           # brace depth in a block that is not a body
    for i, l in enumerate(lines):
        if pp[i]:
            continue
        if start is not None:
            # A body ends at the next '}' at column 0, whatever the
            # braces in between (#if branches may open two).
            if l.startswith("}"):
                out.append((func[0], func[1] + 1, i - start + 1))
                start, func, sig = None, None, []
            continue
        if depth > 0:
            # struct, enum, initializer: ends when its braces balance.
            depth += l.count("{") - l.count("}")
            if depth <= 0 or l.startswith("}"):
                depth, sig = 0, []
            continue
        s = l.rstrip()
        if not s.strip():
            continue
        opens = s.startswith("{") or (not s[0].isspace() and s.endswith("{"))
        if opens:
            decl_lines = sig + ([] if s.startswith("{") else [(i, s[:-1])])
            decl = " ".join(t for _, t in decl_lines).rstrip()
            name = declared_name(decl) if decl.endswith(")") else None
            if name:
                # The line the name is on.
                n = 0
                for j, t in decl_lines:
                    n += len(t) + 1
                    if n > name[1]:
                        break
                start, func, sig = i, (name[0], j), []
                continue
        depth = s.count("{") - s.count("}")
        if depth > 0 or s.endswith((";", "}")):
            sig = []
        else:
            depth, sig = 0, sig + [(i, s)]
    return out


def check(top):
    files = walk(top)
    fileset = set(files)
    edges = {}          # (from unit, to unit) -> first (path, line, inc)
    checked = 0

    rule1, rule3, rule4, rule5 = [], [], [], []
    for path in files:
        ext = os.path.splitext(path)[1]
        top_dir = path.split("/", 1)[0]
        if ext not in SOURCE_EXTS or top_dir == "tests":
            continue
        # A configured in-tree build writes config.h at the top.
        if path == "config.h" and "config.h.in" in fileset:
            continue
        checked += 1
        text = read(top, path)
        nlines = len(text.splitlines())
        if nlines > MAX_FILE_LINES:
            rule4.append((path, MAX_FILE_LINES + 1,
                          "file has %d lines: a source file may have at "
                          "most %d lines (tests/ excepted)"
                          % (nlines, MAX_FILE_LINES)))
        if ext == ".c":
            for name, line, n in function_lengths(text):
                if n > MAX_FUNC_LINES:
                    rule5.append((path, line,
                                  "function %s() has %d lines: a C function "
                                  "may have at most %d lines"
                                  % (name, n, MAX_FUNC_LINES)))
        unit = unit_of(path)
        if unit is None or ext not in C_EXTS:
            continue
        clean = strip_comments(text)
        for m in INCLUDE_RE.finditer(clean):
            inc = m.group(1)
            line = clean.count("\n", 0, m.start()) + 1
            quoted = '"%s"' % inc
            target = resolve(path, inc, fileset)
            if target is None:
                rule1.append((path, line, quoted,
                              "not found in the tree (a quoted include is "
                              "\"name.h\" in the including file's folder or "
                              "\"layer/name.h\" from the top of the tree)"))
                continue
            tunit = unit_of(target)
            if tunit != unit and tunit is not None:
                edges.setdefault((unit, tunit), (path, line, quoted))
            if unit.startswith("plugins/"):
                why = plugin_rule(unit, tunit)
                if why:
                    rule3.append((path, line, quoted, why))
            else:
                why = layer_rule(unit, tunit)
                if why:
                    rule1.append((path, line, quoted, why))

    rule2 = []
    for (a, b), (path, line, quoted) in sorted(edges.items()):
        back = edges.get((b, a))
        if back is None:
            continue
        # Once per pair, from the lower folder's include of the upper one
        # (plugin folders: in name order).
        if (rank(a), a) > (rank(b), b):
            continue
        bpath, bline, bquoted = back
        rule2.append((path, line, quoted,
                      "%s/ and %s/ include each other (%s:%d includes %s)"
                      % (a, b, bpath, bline, bquoted)))

    out = []
    for path, line, quoted, why in sorted(rule1) + rule2 + sorted(rule3):
        out.append("%s:%d: includes %s: %s" % (path, line, quoted, why))
    for path, line, msg in sorted(rule4) + sorted(rule5):
        out.append("%s:%d: %s" % (path, line, msg))
    layers = sum(1 for l in LAYERS if os.path.isdir(os.path.join(top, l)))
    return out, checked, layers


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        sys.stderr.write("usage: check-layers.py [TOP_SRCDIR]\n")
        return 2
    if len(argv) == 2:
        top = argv[1]
    else:
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(top):
        sys.stderr.write("check-layers: %s: not a directory\n" % top)
        return 2
    if not any(os.path.isdir(os.path.join(top, l)) for l in LAYERS):
        sys.stderr.write("check-layers: %s: no layer folder (%s): not the "
                         "top of GottWall's tree\n" % (top, LAYER_ORDER))
        return 2
    out, checked, layers = check(top)
    if out:
        sys.stdout.write("".join(l + "\n" for l in out))
        sys.stderr.write("check-layers: %d violation%s in %d files\n"
                         % (len(out), "" if len(out) == 1 else "s", checked))
        return 1
    print("check-layers: %d files, %d layers, no violation" % (checked,
                                                             layers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
