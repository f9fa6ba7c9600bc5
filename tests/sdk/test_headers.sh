#!/bin/sh
# tests/sdk/test_headers.sh: every installed SDK header stands alone.
#
# Installs the current build into a temporary DESTDIR and compiles, for each
# header under include/gottwall/, a file that includes it (twice: the include
# guard) and nothing else, with -std=c99 and -std=c11, -pedantic -Wall
# -Wextra -Werror, against the DESTDIR only. Also checks that exactly the
# headers of sdk/gottwall/ are installed, and that they include nothing but
# standard headers and each other (DESIGN §4).
set -eu

: "${GW_BUILDDIR:?run me through make check}"
: "${GW_SRCDIR:?run me through make check}"

. "$GW_SRCDIR/tests/sdk/lib.sh"

sdk_install headers
version_h=$(find "$dest" -path '*/include/gottwall/version.h' | head -1)
[ -n "$version_h" ] || fail "no include/gottwall/version.h under $dest"
incdir=$(dirname "$(dirname "$version_h")")

installed=$(cd "$incdir/gottwall" && ls *.h | sort | tr '\n' ' ')
source=$(cd "$GW_SRCDIR/sdk/gottwall" && ls *.h | sort | tr '\n' ' ')
[ "$installed" = "$source" ] ||
    fail "installed headers \"$installed\" differ from sdk/gottwall: \"$source\""

# Standard headers a plugin may rely on the SDK to include, and nothing else
# (sketch.h's static functions need math.h, stdlib.h and string.h; a plugin
# that includes event.h links with -lm, as gottwall-plugin.pc says).
allowed='stdarg.h stddef.h stdint.h stdio.h math.h stdlib.h string.h'

n=0
for h in $installed; do
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1/p' "$incdir/gottwall/$h"); do
        case "$inc" in
        gottwall/*) [ -f "$incdir/$inc" ] || fail "$h includes <$inc>, which is not installed" ;;
        *) case " $allowed " in
           *" $inc "*) ;;
           *) fail "$h includes <$inc>: SDK headers include only $allowed and each other" ;;
           esac ;;
        esac
    done
    if grep -q '#[[:space:]]*include[[:space:]]*"' "$incdir/gottwall/$h"; then
        fail "$h includes a header with quotes; use <gottwall/...>"
    fi
    printf '#include <gottwall/%s>\n#include <gottwall/%s>\ntypedef int gw_header_test_t;\n' \
        "$h" "$h" >"$tmp/t.c"
    for std in c99 c11; do
        if ! ${CC:-cc} -std=$std -pedantic -Wall -Wextra -Werror -I"$incdir" \
                -c -o "$tmp/t.o" "$tmp/t.c" 2>"$tmp/cc.log"; then
            cat "$tmp/cc.log"
            fail "<gottwall/$h> does not compile alone with -std=$std -pedantic -Werror"
        fi
        n=$((n + 1))
    done
done
echo "PASS: $n compilations of $(echo $installed | wc -w) installed headers (c99, c11)"
