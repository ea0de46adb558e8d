#!/bin/bash
# coverage.sh - line and branch coverage of the library by the test
# programs, per source file, with gcc's gcov.
#
#   coverage.sh BUILD_DIR [FILE...]
#
# BUILD_DIR holds a build made with --coverage whose test programs have
# been run (make coverage does both). Prints, for each libjs/*.c (or each
# FILE given), the share of lines executed and of branches taken at least
# once, then the totals over the files listed. gcov's own output files go
# to a temporary directory.
set -eu -o pipefail

build=$1
shift
root=$(pwd)
if [ $# -eq 0 ]; then
    set -- libjs/*.c
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-cov.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

printf '%-28s %8s %8s %8s %8s\n' file lines "line%" branches "taken%"
tl=0; tle=0; tb=0; tbt=0
for src in "$@"; do
    obj="$root/$build/obj/$(basename "${src%.c}").o"
    if [ ! -f "${obj%.o}.gcda" ]; then
        printf '%-28s   (never run)\n' "$src"
        continue
    fi
    out=$(cd "$tmp" && gcov -b -n -o "$obj" "$root/$src" 2>/dev/null |
          awk -v f="$(basename "$src")" '
              /^File / { mine = index($0, "/" f "\x27") > 0 }
              mine && /^Lines executed:/ { split($2, a, ":"); l = a[2]; n = $4 }
              mine && /^Taken at least once:/ { split($4, b, ":"); t = b[2]; m = $6 }
              END { print l+0, n+0, t+0, m+0 }')
    read -r lp ln bp bn <<<"$out"
    printf '%-28s %8d %7.1f%% %8d %7.1f%%\n' "$src" "$ln" "$lp" "$bn" "$bp"
    tl=$(awk -v a="$tl" -v b="$ln" 'BEGIN { print a + b }')
    tle=$(awk -v a="$tle" -v b="$ln" -v p="$lp" 'BEGIN { print a + b * p / 100 }')
    tb=$(awk -v a="$tb" -v b="$bn" 'BEGIN { print a + b }')
    tbt=$(awk -v a="$tbt" -v b="$bn" -v p="$bp" 'BEGIN { print a + b * p / 100 }')
done
awk -v tl="$tl" -v tle="$tle" -v tb="$tb" -v tbt="$tbt" 'BEGIN {
    printf "%-28s %8d %7.1f%% %8d %7.1f%%\n", "total", tl,
        tl ? 100 * tle / tl : 0, tb, tb ? 100 * tbt / tb : 0 }'
