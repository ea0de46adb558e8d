#!/bin/bash
# check-warnings.sh - meta-test: the library, the test programs, the
# examples, the benchmarks and the fuzz targets (with their replay main and
# the seed generator) build warning-free (the Makefile's -Wall
# -Wextra ... plus -Werror) with gcc and with clang (clang required under
# CI=true). Each compiler gets its own build tree, build-meta/warn-<cc>, so
# the normal build is untouched.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
make=${MAKE:-make}
fail=0 ran=0
for cc in gcc clang; do
    if ! command -v "$cc" >/dev/null 2>&1; then
        if [ "$cc" = gcc ] || [ -n "${CI:-}" ]; then
            echo "check-warnings: FAIL: $cc not installed (run scripts/deps.sh)" >&2
            fail=1
        else
            echo "check-warnings: note: $cc not installed, not tried"
        fi
        continue
    fi
    ran=$((ran + 1))
    dir=build-meta/warn-$cc
    log=build-meta/warn-$cc.log
    mkdir -p build-meta
    echo "check-warnings: building with $cc -Werror into $dir"
    if ! $make --no-print-directory NODEPS=1 BUILD="$dir" CC="$cc" CFLAGS='-O2 -g -Werror' \
            all tests examples bench-build fuzz-bins "$dir/fuzz/make_seeds" > "$log" 2>&1; then
        echo "check-warnings: FAIL: the build is not warning-free under $cc (-Wall -Wextra ... -Werror); from $log:" >&2
        grep -E 'warning|error' "$log" | head -n 40 | sed 's/^/    /' >&2
        fail=1
    fi
done
[ "$fail" -eq 0 ] || exit 1
echo "check-warnings: warning-free under $ran compiler(s)"
