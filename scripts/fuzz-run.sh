#!/bin/bash
# fuzz-run.sh - run libFuzzer targets for a bounded time, FUZZ_JOBS at once.
#
#   fuzz-run.sh BUILD_DIR TARGET...        (make fuzz)
#
# Each target runs $BUILD_DIR/fuzz/fuzz_TARGET for FUZZ_TIME seconds
# (default 45) on $BUILD_DIR/run/TARGET/corpus, a fresh copy of
# fuzz/corpus/TARGET and fuzz/regress/TARGET (FUZZ_KEEP=1 keeps the corpus a
# previous run grew), so the repository is never written. Its log is
# $BUILD_DIR/run/TARGET/log and a crashing input lands in
# $BUILD_DIR/run/TARGET/ (crash-*, leak-*, timeout-*, oom-*). At the end a
# table gives each target's executions, coverage (libFuzzer's cov: edges
# and ft: features) and corpus size. Exit status 1 if any target failed.
set -u -o pipefail

build=$1
shift
time=${FUZZ_TIME:-45}
failed=()
table=()

# One target: its fuzzer's exit status goes to $run/rc.
run_one() {
    local t=$1 bin=$build/fuzz/fuzz_$1 run=$build/run/$1
    if [ "${FUZZ_KEEP:-}" != 1 ]; then
        rm -rf "$run"
    fi
    mkdir -p "$run/corpus"
    for d in fuzz/corpus/$t fuzz/regress/$t; do
        if [ -d "$d" ]; then
            cp -n "$d"/* "$run/corpus/" 2>/dev/null || true
        fi
    done
    local opts=(-max_total_time="$time" -print_final_stats=1 -timeout=20
                -rss_limit_mb=2048 -artifact_prefix="$run/")
    if [ -f "fuzz/dict/$t.dict" ]; then
        opts+=(-dict="fuzz/dict/$t.dict")
    fi
    echo "== fuzz_$t: ${time}s"
    "$bin" "${opts[@]}" "$run/corpus" >"$run/log" 2>&1
    echo $? >"$run/rc"
}

# FUZZ_JOBS (default 2, the CI machine's cores) targets at a time: each
# still gets its full FUZZ_TIME.
jobs_max=${FUZZ_JOBS:-2}
for t in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n
    done
    run_one "$t" &
done
wait

for t in "$@"; do
    run=$build/run/$t
    rc=$(cat "$run/rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$run/log" | tail -1)
    files=$(ls "$run/corpus" | wc -l)
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$run/log" | head -20
        echo "fuzz_$t: FAILED (exit $rc); log $run/log"
    fi
    table+=("$(printf '%-18s %12s  %-22s %7s  %s' "$t" "${execs:-?}" \
        "${cov:-?}" "$files" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)")")
done

printf '\n%-18s %12s  %-22s %7s  %s\n' target execs coverage corpus result
printf '%s\n' "${table[@]}"
# The summary line scripts/check-all.sh sums: one check per target.
echo "$(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
