#!/bin/bash
# check-examples.sh - meta-test: every examples/X.c is built (by make, as
# $(BUILD)/examples/X, public header and shared library only) and runs to a
# zero exit status, each in its own fresh scratch directory, with no
# arguments and stdin from /dev/null, within EXAMPLE_TIMEOUT seconds
# (default 120).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${BUILD:-build}
limit=${EXAMPLE_TIMEOUT:-120}
shopt -s nullglob
srcs=(examples/*.c)
if [ ${#srcs[@]} -eq 0 ]; then
    echo "check-examples: no examples/*.c yet; nothing to run"
    exit 0
fi

fail=0
for src in "${srcs[@]}"; do
    name=$(basename "$src" .c)
    bin=$root/$build/examples/$name
    if [ ! -x "$bin" ]; then
        echo "check-examples: FAIL: $src is not built as $bin (make examples)" >&2
        fail=1; continue
    fi
    dir=$root/$build/example-run/$name
    rm -rf "$dir" && mkdir -p "$dir"
    echo "check-examples: running $name (in $dir)"
    (cd "$dir" && timeout -k 5 "$limit" "$bin" < /dev/null)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && rc="$rc (timed out after ${limit}s)"
        echo "check-examples: FAIL: $name exited with status $rc" >&2
        fail=1
    fi
done
[ "$fail" -eq 0 ] || exit 1
echo "check-examples: ${#srcs[@]} example(s) built and ran"
