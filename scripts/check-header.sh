#!/bin/bash
# check-header.sh - meta-test: include/jetstream.h compiles alone, warning-
# free, as C99 and as C++11 (and C11, C++17), with -Wall -Wextra -pedantic
# -Werror, under gcc/g++ and, when present, clang/clang++ (required under
# CI=true). Each translation unit includes only the header, twice (the
# include guard must hold), and the C++ one also checks that the API has C
# linkage.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-header.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
flags="-Wall -Wextra -pedantic -Werror -I$root/include"

cat > "$tmp/alone.c" <<'EOF'
#include <jetstream.h>
#include <jetstream.h>
int main(void) { return js_version() == 0; }
EOF
cat > "$tmp/alone.cc" <<'EOF'
#include <jetstream.h>
#include <jetstream.h>
/* With extern "C" in force, these are the C functions, not overloads. */
extern "C" const char *js_version(void);
int main() { return js_version() == nullptr; }
EOF

failed=0 ran=0
try() { # compiler std file
    local cc=$1 std=$2 src=$3
    if ! command -v "$cc" >/dev/null 2>&1; then
        return 1
    fi
    ran=$((ran + 1))
    if "$cc" -std="$std" $flags -fsyntax-only "$src" 2> "$tmp/err"; then
        echo "check-header: ok: $cc -std=$std $flags"
    else
        echo "check-header: FAIL: include/jetstream.h does not compile alone with $cc -std=$std $flags:" >&2
        sed 's/^/    /' "$tmp/err" >&2
        failed=1
    fi
    return 0
}

for cc in gcc clang; do
    for std in c99 c11; do
        try "$cc" "$std" "$tmp/alone.c" || true
    done
done
for cxx in g++ clang++; do
    for std in c++11 c++17; do
        try "$cxx" "$std" "$tmp/alone.cc" || true
    done
done

missing=
for tool in gcc g++ clang clang++; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
case " $missing " in
*" gcc "*|*" g++ "*)
    echo "check-header: FAIL: gcc and g++ are required (missing:$missing); run scripts/deps.sh" >&2
    exit 1 ;;
esac
if [ -n "$missing" ]; then
    if [ -n "${CI:-}" ]; then
        echo "check-header: FAIL: under CI every compiler must be present (missing:$missing)" >&2
        exit 1
    fi
    echo "check-header: note: not tried with:$missing (not installed)"
fi
if [ "$failed" -ne 0 ]; then
    echo "check-header: FAIL: the public header must compile alone as C and C++ without warnings" >&2
    exit 1
fi
echo "check-header: the header compiles alone in all $ran configurations"
