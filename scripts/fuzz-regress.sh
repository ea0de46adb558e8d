#!/bin/bash
# fuzz-regress.sh - replay every seed and every regression input through
# each fuzz target once (make fuzz-regress).
#
#   fuzz-regress.sh BUILD_DIR TARGET...
#
# $BUILD_DIR/fuzz/fuzz_TARGET is built with fuzz/replay_main.c; it runs each
# file of fuzz/corpus/TARGET and fuzz/regress/TARGET and crashes (a
# sanitizer report, a broken invariant) on a regression. Exit status 1 if
# any target failed.
set -u -o pipefail

build=$1
shift
failed=()
for t in "$@"; do
    dirs=()
    for d in fuzz/corpus/$t fuzz/regress/$t; do
        [ -d "$d" ] && dirs+=("$d")
    done
    if ! "$build/fuzz/fuzz_$t" "${dirs[@]}"; then
        echo "fuzz-regress: FAIL: $t" >&2
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz-regress: failed: ${failed[*]}" >&2
fi
# The summary line scripts/check-all.sh sums: one check per target.
echo "$(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
