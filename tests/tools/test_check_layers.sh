#!/bin/sh
# tests/tools/test_check_layers.sh: tools/check-layers.py on a small fake
# tree.
#
# Builds a clean layered tree (sdk/ base/ ingest/ net/ server/ core/
# plugins/x/, the shared plugin folders, and what the check must ignore:
# tests/, node_modules/, web-dist/, a build directory), checks that it
# passes, then plants each violation in a copy of it and checks the exact
# lines reported and the exit status 1.
set -u

: "${GW_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
check=$GW_SRCDIR/tools/check-layers.py
python=${PYTHON:-python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gwlayers-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}

# lines N TEXT: N lines of TEXT.
lines() {
    awk -v n="$1" -v t="$2" 'BEGIN { for (i = 0; i < n; i++) print t }'
}

# func NAME N: a C function whose body (from '{' to '}') has N lines.
func() {
    printf 'static int\n%s(void)\n{\n' "$1"
    lines $(($2 - 3)) '    (void)0;'
    printf '    return 0;\n}\n'
}

# ---- The clean tree ----
t=$tmp/clean
mkdir -p "$t/sdk/gottwall" "$t/base" "$t/ingest" "$t/net" "$t/server" \
    "$t/core" "$t/plugins/x" "$t/plugins/common" \
    "$t/plugins/transport/common" "$t/web" "$t/tools" "$t/tests/core" \
    "$t/node_modules/pkg" "$t/web-dist" "$t/build/core" "$t/.git"

printf '#include <stddef.h>\n' >"$t/sdk/gottwall/plugin.h"
printf '#include <stdio.h>\nvoid gw_log(const char *m);\n' >"$t/base/log.h"
cat >"$t/base/log.c" <<'EOF'
#include <config.h>
#include <stdio.h>
#include "log.h"
/* #include "core/main.h" is only a comment. */
void
gw_log(const char *m)
{
    puts(m);
}
EOF
printf '#include "base/log.h"\n' >"$t/ingest/event.h"
printf '#include "event.h"\n#include <gottwall/plugin.h>\n' \
    >"$t/ingest/event.c"
printf '#include "base/log.h"\n' >"$t/net/http.h"
printf '#include "http.h"\n#include "ingest/event.h"\n' >"$t/net/http.c"
printf '#include "ingest/event.h"\n' >"$t/server/api.h"
printf '#include "api.h"\n#include "gottwall/plugin.h"\n' >"$t/server/api.c"
printf '#include "server/api.h"\n' >"$t/core/main.h"
{
    printf '#include "main.h"\n#include "net/http.h"\n'
    printf '#include "base/log.h"\n\n'
    printf 'static const char *const names[] = {\n    "a", "b"};\n\n'
    printf 'struct big {\n    int a;\n};\n\n'
    # Exactly at the limit.
    func at_limit 120
    printf '\nstatic struct big *\nbig_get(void) { return 0; }\n'
    printf '\nint\nmain(void)\n{\n    return at_limit();\n}\n'
} >"$t/core/main.c"
printf '#include "../common/fnv.h"\n#include "../transport/common/listen.h"\n' \
    >"$t/plugins/x/x.h"
{
    printf '#include <gottwall/plugin.h>\n#include "x.h"\n'
    func x_init 30
} >"$t/plugins/x/x.c"
printf '#include <stdint.h>\n' >"$t/plugins/common/fnv.h"
printf '#include <stdint.h>\n' >"$t/plugins/transport/common/listen.h"
lines 1200 'var a = 1;' >"$t/web/app.js"
func main 40 >"$t/tools/load.c"
# Outside the rules: tests/ may include anything and be as long as it
# likes; node_modules/, web-dist/, build directories and dot folders are
# not walked.
{
    printf '#include "core/nothere.h"\n#include "../../plugins/x/x.h"\n'
    func huge 300
    lines 1300 ''
} >"$t/tests/core/test_big.c"
lines 1300 'var b;' >"$t/node_modules/pkg/big.js"
lines 1300 'var b;' >"$t/web-dist/app.js"
touch "$t/build/config.status"
func huge 300 >"$t/build/core/gen.c"
func huge 300 >"$t/.git/hook.c"

# run TREE: runs the check; its stdout in $out, stderr in $err, status $rc.
run() {
    out=$("$python" "$check" "$1" 2>"$tmp/err")
    rc=$?
    err=$(cat "$tmp/err")
}

# expect CASE TEXT: the check of the tree $tmp/CASE reports exactly TEXT
# and exits 1.
expect() {
    run "$tmp/$1"
    if [ "$out" != "$2" ]; then
        fail "$1: reported:"
        printf '%s\n' "$out" | sed 's/^/    /'
        echo "  expected:"
        printf '%s\n' "$2" | sed 's/^/    /'
    fi
    [ "$rc" = 1 ] || fail "$1: exit status $rc, not 1"
    case $err in
    "check-layers: "*" violation"*) ;;
    *) fail "$1: no summary of the violations on stderr (\"$err\")" ;;
    esac
}

# plant CASE: a copy of the clean tree as $tmp/CASE, in $c.
plant() {
    c=$tmp/$1
    cp -R "$t" "$c"
}

# next FILE: the number of the line appended next to FILE.
next() {
    echo $(($(wc -l <"$1") + 1))
}

run "$t"
[ "$rc" = 0 ] || fail "clean tree: exit status $rc, not 0"
[ "$out" = "check-layers: 17 files, 5 layers, no violation" ] ||
    fail "clean tree: printed \"$out\""
[ -z "$err" ] || fail "clean tree: stderr \"$err\""

# 1. An include of a layer above, and one that names no file.
plant upward
n=$(next "$c/net/http.c")
echo '#include "server/api.h"' >>"$c/net/http.c"
expect upward "net/http.c:$n: includes \"server/api.h\": net/ may include only base/ ingest/ net/ (layer order base < ingest < net < server < core)"

plant unresolved
n=$(next "$c/net/http.c")
echo '#include "log.h"' >>"$c/net/http.c"
expect unresolved "net/http.c:$n: includes \"log.h\": not found in the tree (a quoted include is \"name.h\" in the including file's folder or \"layer/name.h\" from the top of the tree)"

# 2. Two folders that include each other: the shared plugin folders (each
# may include the other, but not both), and two layers (also an include of
# a layer above).
plant cycle
n=$(next "$c/plugins/common/fnv.h")
echo '#include "../transport/common/listen.h"' >>"$c/plugins/common/fnv.h"
m=$(next "$c/plugins/transport/common/listen.h")
echo '#include "../../common/fnv.h"' >>"$c/plugins/transport/common/listen.h"
expect cycle "plugins/common/fnv.h:$n: includes \"../transport/common/listen.h\": plugins/common/ and plugins/transport/common/ include each other (plugins/transport/common/listen.h:$m includes \"../../common/fnv.h\")"

plant layer_cycle
n=$(next "$c/base/log.h")
echo '#include "net/http.h"' >>"$c/base/log.h"
expect layer_cycle "base/log.h:$n: includes \"net/http.h\": base/ may include only base/ (layer order base < ingest < net < server < core)
base/log.h:$n: includes \"net/http.h\": base/ and net/ include each other (net/http.h:1 includes \"base/log.h\")"

# 3. A plugin that includes a layer header.
plant plugin
n=$(next "$c/plugins/x/x.c")
echo '#include "../../base/log.h"' >>"$c/plugins/x/x.c"
expect plugin "plugins/x/x.c:$n: includes \"../../base/log.h\": a plugin may not include a layer header (base/); a plugin may include only <gottwall/...>, files of its own folder, plugins/common/ and plugins/transport/common/"

# 4. A source file over 1200 lines.
plant long_file
echo 'var a = 2;' >>"$c/web/app.js"
expect long_file "web/app.js:1201: file has 1201 lines: a source file may have at most 1200 lines (tests/ excepted)"

# 5. A C function over 120 lines.
plant long_function
n=$(($(next "$c/core/main.c") + 2))
{ echo; func too_long 121; } >>"$c/core/main.c"
expect long_function "core/main.c:$n: function too_long() has 121 lines: a C function may have at most 120 lines"

[ "$failed" = 0 ] && echo "PASS: check-layers: clean tree and 7 planted violations"
exit "$failed"
