#!/bin/sh
# tests/fuzz/build.sh SRCDIR BUILDDIR TARGET...: builds the libFuzzer
# binaries with clang (-fsanitize=fuzzer,address,undefined) in
# BUILDDIR/fuzz-bin and, when FUZZ_SECONDS > 0, runs each target that long
# on a scratch copy of its corpus, then merges (minimises) what it found
# back into SRCDIR/tests/fuzz/corpus/TARGET. A crash stops with its input
# saved as BUILDDIR/fuzz-bin/TARGET-crash-* and exit 1.
set -eu
src=$1; build=$2; shift 2
CC_FUZZ=${CC_FUZZ:-clang}
secs=${FUZZ_SECONDS:-60}
out=$build/fuzz-bin
mkdir -p "$out/obj"
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -DHAVE_CONFIG_H -I$build -I$src/sdk -iquote $src -I/usr/include/libev"
libs="-ljansson -lcrypto -lconfig -lev -lhttp_parser -lpthread -lm"

# The core, once, as an archive.
objs=
for c in "$src"/base/*.c "$src"/ingest/*.c "$src"/net/*.c "$src"/server/*.c "$src"/core/*.c; do
    case $(basename "$c") in main.c) continue ;; esac
    o=$out/obj/$(basename "$c" .c).o
    if [ ! -f "$o" ] || [ "$c" -nt "$o" ]; then
        $CC_FUZZ $flags -c "$c" -o "$o"
    fi
    objs="$objs $o"
done
rm -f "$out/libcore.a"
ar rcs "$out/libcore.a" $objs

for t in "$@"; do
    extra=
    case $t in
    statsd) extra="$src/plugins/transport/statsd/statsd_parse.c -I$src/plugins/transport/statsd" ;;
    esac
    $CC_FUZZ $flags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" $extra \
        "$out/libcore.a" $libs -o "$out/fuzz_$t"
    echo "built $out/fuzz_$t"
done

[ "$secs" -gt 0 ] || exit 0
status=0
for t in "$@"; do
    corpus=$src/tests/fuzz/corpus/$t
    scratch=$out/run-$t
    rm -rf "$scratch"; mkdir -p "$scratch" "$corpus"
    for f in "$corpus"/*; do [ -f "$f" ] && cp "$f" "$scratch"/; done
    echo "fuzzing $t for $secs s (log: $out/$t.log)"
    if (cd "$out" && LSAN_OPTIONS=suppressions=$src/tests/fuzz/lsan.supp \
        ./fuzz_$t -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/$t-" -print_final_stats=1 "$scratch" \
        > "$out/$t.log" 2>&1); then
        grep -E '^Done|new_units_added' "$out/$t.log" || true
    else
        tail -n 40 "$out/$t.log"
        echo "fuzz_$t found a problem: input saved as $out/$t-*"
        status=1
    fi
    (cd "$out" && ./fuzz_$t -merge=1 "$corpus" "$scratch" > "$out/$t.merge.log" 2>&1) || true
    grep 'MERGE-OUTER: [0-9]* new' "$out/$t.merge.log" || true
done
exit $status
