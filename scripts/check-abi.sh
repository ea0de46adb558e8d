#!/bin/bash
# check-abi.sh - the ABI baseline and the ABI meta-test (abigail-tools).
#
#   check-abi.sh --baseline   write abi/libjetstream.abi   (make abi-baseline)
#   check-abi.sh              compare against it           (make abi-check,
#                                                           make meta-abi)
#
# Both describe $ABI_BUILD/libjetstream.so.$VERSION (built by the Makefile's
# abi-lib target with gcc -O2 -g) with
#   abidw --headers-dir include --drop-private-types ...
# so only the types declared in the public header count: internal structs
# may change freely. Paths and locations are left out so the baseline does
# not depend on where the tree was built.
#
# Policy. The SONAME is libjetstream.so.1 and stays so: what links against
# 1.0 must keep working with every later 1.x. abidiff's exit status is a bit
# set: 1 error, 2 usage error, 4 ABI change, 8 incompatible ABI change.
#   - 0: identical: pass.
#   - 4 where the only changes are added functions (abidiff --no-added-syms
#     then finds nothing): pass, and say so. New functions belong in a new
#     version node of libjs/jetstream.map (JETSTREAM_1.1 { ... } JETSTREAM_1.0;).
#   - anything else fails: a removed or changed function, a changed public
#     type (even a field appended to a versioned struct: that is compatible by
#     design here, but it must be a deliberate, reviewed change), a changed
#     SONAME, an abidiff error.
# After a deliberate compatible change, regenerate the baseline with
# `make abi-baseline` in the same commit, so the review shows abi/ changing.
# A deliberate incompatible change means a new SONAME major, not a new
# baseline alone.
#
# Until the lead commits abi/libjetstream.abi (when the 1.0 API is final)
# the check is skipped with a message.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
version=${VERSION:-$(sed -n 's/^#define JS_VERSION_STRING "\(.*\)"/\1/p' include/jetstream.h)}
abi_build=${ABI_BUILD:-build-abi}
lib=$abi_build/libjetstream.so.$version
baseline=abi/libjetstream.abi
make=${MAKE:-make}

for tool in abidw abidiff; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "check-abi: FAIL: $tool not found: install abigail-tools (scripts/deps.sh)" >&2
        exit 1
    fi
done

if [ "${1:-}" != "--baseline" ] && [ ! -f "$baseline" ]; then
    echo "check-abi: SKIP: no ABI baseline ($baseline is absent). Run 'make abi-baseline' and commit $baseline once the 1.0 API is final."
    exit 77
fi

# When run by meta-check (ABI_BUILD unset), the Makefile has not built the
# debug library: build it (make abi-lib) here.
if [ ! -f "$lib" ] || [ -z "${ABI_BUILD:-}" ]; then
    $make --no-print-directory NODEPS=1 abi-lib > /dev/null ||
        { echo "check-abi: FAIL: cannot build $lib" >&2; exit 1; }
fi

dump() { # output-file
    abidw --headers-dir include --drop-private-types --no-corpus-path \
        --no-comp-dir-path --no-show-locs --out-file "$1" "$lib"
}

if [ "${1:-}" = "--baseline" ]; then
    mkdir -p abi
    dump "$baseline" || { echo "check-abi: FAIL: abidw failed on $lib" >&2; exit 1; }
    echo "check-abi: wrote $baseline from $lib ($(grep -c '<elf-symbol ' "$baseline") symbols); commit it"
    exit 0
fi

current=$abi_build/libjetstream.abi
dump "$current" || { echo "check-abi: FAIL: abidw failed on $lib" >&2; exit 1; }

abidiff "$baseline" "$current" > "$abi_build/abidiff.txt" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
    echo "check-abi: the ABI matches $baseline"
    exit 0
fi
if [ $((rc & 3)) -ne 0 ]; then
    cat "$abi_build/abidiff.txt" >&2
    echo "check-abi: FAIL: abidiff itself failed (exit status $rc)" >&2
    exit 1
fi
if [ $((rc & 8)) -eq 0 ] && abidiff --no-added-syms "$baseline" "$current" > /dev/null 2>&1; then
    sed 's/^/    /' "$abi_build/abidiff.txt"
    echo "check-abi: only additions since $baseline: compatible (refresh it with make abi-baseline when you release)"
    exit 0
fi
sed 's/^/    /' "$abi_build/abidiff.txt" >&2
if [ $((rc & 8)) -ne 0 ]; then
    echo "check-abi: FAIL: INCOMPATIBLE ABI change against $baseline (abidiff exit $rc): programs linked against libjetstream.so.1 would break" >&2
else
    echo "check-abi: FAIL: ABI change against $baseline (abidiff exit $rc) that is not a pure addition of functions; if it is deliberate and compatible, run make abi-baseline and commit the new baseline with the change" >&2
fi
exit 1
