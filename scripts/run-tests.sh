#!/bin/bash
# run-tests.sh - run check-framework test programs and sum their results.
#
#   run-tests.sh build/tests/test_a build/tests/test_b ...
#
# TEST_JOBS programs run at once, each one's output shown whole when it
# ends. check prints, per runner, a line
#   100%: Checks: 12, Failures: 0, Errors: 0
# and those lines are summed over every program. A program that exits
# non-zero without a check line reporting a failure (a crash, a sanitizer or
# valgrind report at exit, a timeout) counts as one more failed check, and so
# does a program that prints no check line at all. The last line printed is
# always exactly
#   N passed, N failed
# and the exit status is non-zero if anything failed.
#
# Environment:
#   TEST_WRAPPER  command prefix for each program (valgrind ..., setarch -R)
#   TEST_TIMEOUT  seconds per program (default 1800; 0 means no limit)
#   TEST_JOBS     programs run at once (default: the number of CPUs)
set -u -o pipefail

timeout_s=${TEST_TIMEOUT:-1800}
wrapper=${TEST_WRAPPER:-}
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
# Tests that set no timeout of their own get check's default of 4 s, too
# tight for a machine running two programs at once.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}
passed=0
failed=0
bad_programs=()
times=() # seconds per program, shown at the end (the stage budgets)

out=$(mktemp -d "${TMPDIR:-/tmp}/js-run-tests.XXXXXX")
trap 'rm -rf "$out"' EXIT

if [ $# -eq 0 ]; then
    echo "run-tests.sh: warning: no test programs (no tests/test_*.c yet)" >&2
fi

# Run program number $1 ($2) with its output in $out/$1.log and its
# seconds in $out/$1.secs; exits with the program's status.
run_one() {
    local i=$1 t=$2 cmd=() start rc
    # --foreground: stay in the terminal's process group, so Ctrl-C (or
    # killing make's group) reaches the test; check's own SIGINT/SIGTERM
    # handler then kills its forked test children.
    if [ "$timeout_s" != 0 ]; then cmd+=(timeout --foreground -k 10 "$timeout_s"); fi
    # shellcheck disable=SC2206 # the wrapper is a word list on purpose
    if [ -n "$wrapper" ]; then cmd+=($wrapper); fi
    cmd+=("$t")
    start=$(date +%s)
    "${cmd[@]}" >"$out/$i.log" 2>&1 </dev/null
    rc=$?
    echo $(( $(date +%s) - start )) >"$out/$i.secs"
    return "$rc"
}

# Sum the check lines of program number $1 ($2), which exited with
# status $3, into the totals.
tally() {
    local i=$1 t=$2 rc=$3 p_checks p_fail p_lines why=
    echo "== $t"
    cat "$out/$i.log"
    times+=("$(printf '%5d s  %s' "$(cat "$out/$i.secs")" "${t##*/}")")
    read -r p_checks p_fail p_lines < <(sed -n \
        's/^[0-9]*%: Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' \
        "$out/$i.log" | awk '{c += $1; f += $2 + $3; n++} END {print c+0, f+0, n+0}')
    passed=$((passed + p_checks - p_fail))
    failed=$((failed + p_fail))
    if [ "$p_lines" -eq 0 ]; then
        why="printed no check summary line (exit status $rc)"
        failed=$((failed + 1))
    elif [ "$rc" -ne 0 ] && [ "$p_fail" -eq 0 ]; then
        case $rc in
        124) why="timed out after ${timeout_s}s" ;;
        *) why="exited with status $rc although check reported no failure (crash, sanitizer or valgrind error?)" ;;
        esac
        failed=$((failed + 1))
    elif [ "$rc" -eq 0 ] && [ "$p_fail" -ne 0 ]; then
        why="check reported $p_fail failure(s) but the program exited 0 (main should return srunner_ntests_failed() != 0)"
    elif [ "$p_fail" -ne 0 ]; then
        why="$p_fail check(s) failed"
    fi
    if [ -n "$why" ]; then
        echo "run-tests.sh: FAIL: $t: $why" >&2
        bad_programs+=("$t")
    fi
}

# Up to $jobs programs at once, each program's output shown whole when it
# ends, in the order they end.
declare -A running=() # pid -> program number
progs=("$@")
finish_one() {
    local pid rc
    wait -n -p pid "${!running[@]}"
    rc=$?
    local i=${running[$pid]}
    unset "running[$pid]"
    tally "$i" "${progs[$i]}" "$rc"
}
for i in "${!progs[@]}"; do
    t=${progs[$i]}
    if [ ! -x "$t" ]; then
        echo "run-tests.sh: FAIL: $t: not built" >&2
        failed=$((failed + 1)); bad_programs+=("$t"); continue
    fi
    while [ ${#running[@]} -ge "$jobs" ]; do finish_one; done
    run_one "$i" "$t" &
    running[$!]=$i
done
while [ ${#running[@]} -gt 0 ]; do finish_one; done

if [ ${#times[@]} -ne 0 ]; then
    echo "-- seconds per program"
    printf '%s\n' "${times[@]}"
fi
if [ ${#bad_programs[@]} -ne 0 ]; then
    echo "run-tests.sh: failing programs: ${bad_programs[*]}" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#bad_programs[@]} -eq 0 ]
