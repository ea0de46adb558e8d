#!/bin/bash
# meta-check.sh - run meta-tests: scripts/check-<name>.sh for each name.
#
#   meta-check.sh header symbols exports ...
#
# Every meta-test runs, even after one fails, so one `make meta-check` shows
# everything that is wrong. A script exits 0 to pass, 77 to skip (a message
# says why), anything else to fail. Under CI=true a skip caused by a missing
# tool is already turned into a failure by the script itself.
set -u

here=$(cd "$(dirname "$0")" && pwd)
pass=() fail=() skip=()
for name in "$@"; do
    script=$here/check-$name.sh
    echo "==== meta-test: $name ($script)"
    if [ ! -f "$script" ]; then
        echo "meta-check: FAIL: no script $script" >&2
        fail+=("$name"); continue
    fi
    bash "$script"
    rc=$?
    case $rc in
    0) echo "==== meta-test $name: PASS"; pass+=("$name") ;;
    77) echo "==== meta-test $name: SKIP"; skip+=("$name") ;;
    *) echo "==== meta-test $name: FAIL (exit $rc)" >&2; fail+=("$name") ;;
    esac
done

echo "meta-check: ${#pass[@]} meta-test(s) passed${pass[*]:+ (${pass[*]})}," \
     "${#skip[@]} skipped${skip[*]:+ (${skip[*]})}," \
     "${#fail[@]} failed${fail[*]:+ (${fail[*]})}"
if [ ${#fail[@]} -ne 0 ]; then
    echo "meta-check: FAILED: ${fail[*]}" >&2
    exit 1
fi
