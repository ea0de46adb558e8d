#!/bin/bash
# check-all.sh - the test stages of `make check`, one after another, and
# one total at the end.
#
#   check-all.sh STAGE...     (each STAGE is a make target)
#
# Every stage is a make target that ends, as scripts/run-tests.sh does,
# with the line "N passed, N failed". All stages run even when one fails,
# so one run shows everything that is wrong. The last line printed is
#   N passed, N failed
# summed over the stages (a stage that fails without such a line counts as
# one failure), and the exit status is non-zero if anything failed.
#
# Environment: MAKE (the make to run), MAKEFLAGS passes through. Each
# stage's builds run as many jobs as there are CPUs unless make was
# already given -j.
set -u -o pipefail

make_cmd=${MAKE:-make}
jflag=
case " ${MAKEFLAGS:-} " in
*" -j"* | *" j"*) ;;
*) jflag=-j$(nproc 2>/dev/null || echo 2) ;;
esac
passed=0
failed=0
report=()
log=$(mktemp "${TMPDIR:-/tmp}/js-check-all.XXXXXX")
trap 'rm -f "$log"' EXIT

for stage in "$@"; do
    echo "=========== stage: $stage"
    start=$(date +%s)
    $make_cmd --no-print-directory $jflag NODEPS=1 "$stage" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=${line#*, }; f=${f%% failed}
    else
        p=0; f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # failed without saying what
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    report+=("$(printf '%-10s %6d passed, %3d failed, %5d s' "$stage" "$p" "$f" "$secs")")
done

echo "=========== stages"
printf '%s\n' "${report[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
