#!/bin/bash
# check-symbols.sh - meta-test: the header's JS_API function declarations and
# the version script's global list (libjs/jetstream.map, all nodes) are the
# same set.
#
# The header's set is read twice: from the text (declarations starting with
# JS_API) and from the compiler (gcc -aux-info lists every function the header
# declares). Those must agree too, which catches a public function declared
# without JS_API (it would be hidden) and anything the text parser misses.
# The version script may not use wildcards in a global list: each exported
# name is listed explicitly, as curl and zstd do.
set -u

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-symbols.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
names=$here/api-names.sh
fail=0

bash "$names" header > "$tmp/header" || { echo "check-symbols: FAIL: cannot read include/jetstream.h" >&2; exit 1; }
bash "$names" map > "$tmp/map" || { echo "check-symbols: FAIL: cannot read libjs/jetstream.map" >&2; exit 1; }

# Print the differences between two lists under a heading; fail if any.
compare() { # file-a label-a file-b label-b
    local only_a only_b
    only_a=$(comm -23 "$1" "$3")
    only_b=$(comm -13 "$1" "$3")
    if [ -n "$only_a" ]; then
        echo "check-symbols: FAIL: in $2 but not in $4:" >&2
        printf '%s\n' "$only_a" | sed 's/^/    /' >&2
        fail=1
    fi
    if [ -n "$only_b" ]; then
        echo "check-symbols: FAIL: in $4 but not in $2:" >&2
        printf '%s\n' "$only_b" | sed 's/^/    /' >&2
        fail=1
    fi
}

if [ ! -s "$tmp/header" ]; then
    echo "check-symbols: FAIL: no JS_API declarations found in include/jetstream.h" >&2
    exit 1
fi

if bash "$names" declared > "$tmp/declared" 2> "$tmp/err"; then
    compare "$tmp/declared" "the functions include/jetstream.h declares (gcc -aux-info)" \
            "$tmp/header" "the header's JS_API declarations (as parsed)"
else
    echo "check-symbols: FAIL: gcc cannot compile include/jetstream.h:" >&2
    sed 's/^/    /' "$tmp/err" >&2
    fail=1
fi

bad=$(grep -v '^js_[a-z0-9_]*$' "$tmp/header" || true)
if [ -n "$bad" ]; then
    echo "check-symbols: FAIL: JS_API names must be js_* (lower case):" >&2
    printf '%s\n' "$bad" | sed 's/^/    /' >&2
    fail=1
fi
wild=$(grep '[][*?]' "$tmp/map" || true)
if [ -n "$wild" ]; then
    echo "check-symbols: FAIL: wildcards in the version script's global list:" >&2
    printf '%s\n' "$wild" | sed 's/^/    /' >&2
    fail=1
fi

compare "$tmp/header" "include/jetstream.h (JS_API)" "$tmp/map" "libjs/jetstream.map (global)"

if [ "$fail" -ne 0 ]; then
    echo "check-symbols: FAIL: header and version script disagree; every JS_API function needs a line in libjs/jetstream.map (in a new version node for a new release) and nothing else may be global" >&2
    exit 1
fi
echo "check-symbols: header and version script list the same $(wc -l < "$tmp/header") functions"
