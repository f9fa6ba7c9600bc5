#!/bin/sh
# Runs GottWall's whole test suite from a clean checkout: installs the
# packages it needs, builds, runs `make check` (unit suites, loader
# fixtures, storage conformance against memory, Redis and PostgreSQL,
# integration tests against the real daemon, fuzz corpus replays, the
# browser test), then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs the suites once more (without the
# browser). Real redis-server and PostgreSQL instances are started by the
# tests themselves on free loopback ports. Exit 0 only if everything passed.
#
#   tools/test.sh            # as root or with sudo available
#   GW_SKIP_SANITIZERS=1 tools/test.sh
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/tools/deps.sh"
if [ -f package-lock.json ] && { [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; }; then
    npm ci --no-audit --no-fund --loglevel=error
fi

# A missing server is a failure here, not a skip.
GW_REQUIRE_SERVICES=1
export GW_REQUIRE_SERVICES

./autogen.sh >/dev/null 2>&1 || ./autogen.sh
jobs=$(nproc 2>/dev/null || echo 2)

summary() {
    # $1: build dir. Prints the harness's totals from test-suite.log.
    sed -n 's/^# \(TOTAL\|PASS\|SKIP\|XFAIL\|FAIL\|XPASS\|ERROR\):/\1:/p' "$1/test-suite.log" 2>/dev/null | tr '\n' ' '
    echo
}

status=0
rm -rf build-test && mkdir build-test
(cd build-test && ../configure -q --enable-redis=yes --enable-postgres=yes \
    && make -j"$jobs" >/dev/null && make -j"$jobs" check) || status=1
echo "make check: $(summary build-test)"
if [ $status -ne 0 ]; then
    for f in $(grep -l '^:test-result: \(FAIL\|ERROR\)' $(find build-test -name '*.trs') 2>/dev/null); do
        echo "==== ${f%.trs}.log"; tail -n 60 "${f%.trs}.log"
    done
fi

if [ -z "${GW_SKIP_SANITIZERS:-}" ]; then
    san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
    rm -rf build-asan && mkdir build-asan
    (cd build-asan && ../configure -q --enable-redis=yes --enable-postgres=yes \
        CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
        && make -j"$jobs" >/dev/null \
        && GW_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           GW_SKIP_BROWSER=1 make -j"$jobs" check) || status=1
    echo "make check (ASan+UBSan): $(summary build-asan)"
    if [ $status -ne 0 ]; then
        for f in $(grep -l '^:test-result: \(FAIL\|ERROR\)' $(find build-asan -name '*.trs') 2>/dev/null); do
            echo "==== ${f%.trs}.log"; tail -n 60 "${f%.trs}.log"
        done
    fi
fi

# One plain closing line: N passed, N failed.
passed=0; failed=0
for d in build-test build-asan; do
    [ -f "$d/test-suite.log" ] || continue
    p=$(sed -n 's/^# PASS: *//p' "$d/test-suite.log"); passed=$((passed + ${p:-0}))
    f=$(sed -n 's/^# FAIL: *//p' "$d/test-suite.log"); failed=$((failed + ${f:-0}))
    e=$(sed -n 's/^# ERROR: *//p' "$d/test-suite.log"); failed=$((failed + ${e:-0}))
done
[ $status -eq 0 ] || [ $failed -gt 0 ] || failed=1
echo "$passed passed, $failed failed"
exit $status
