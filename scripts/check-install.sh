#!/bin/bash
# check-install.sh - meta-test: make install / make uninstall.
#
# 1. make install DESTDIR=<tmp>/dest PREFIX=/opt/js-install-test (twice: a
#    second install over the first must work) installs exactly the expected
#    files: the shared library with its two symlinks, the static library,
#    the header, jetstream.pc and every man/man3/*.3 and man/man7/*.7.
# 2. jetstream.pc names PREFIX (never DESTDIR), the version from the header,
#    Requires.private zlib libsodium and Libs.private -pthread.
# 3. tests/meta/install-smoke.c, an out-of-tree program, is compiled with
#    nothing but `pkg-config --cflags --libs jetstream` (PKG_CONFIG_PATH into
#    the staged tree, PKG_CONFIG_SYSROOT_DIR=DESTDIR so the paths point into
#    it), linked against the shared library and run with LD_LIBRARY_PATH;
#    then compiled with `-static` and `pkg-config --static` (which must bring
#    in zlib, libsodium and -pthread) and run. Both print the version and
#    open and close a store in a scratch directory.
# 4. make uninstall with the same variables leaves no file or symlink behind
#    (directories may stay, as with any GNU-style uninstall).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
make=${MAKE:-make}
cc=${CC:-cc}
build=${BUILD:-build}
version=${VERSION:-$(sed -n 's/^#define JS_VERSION_STRING "\(.*\)"/\1/p' include/jetstream.h)}
major=${MAJOR:-$(sed -n 's/^#define JS_VERSION_MAJOR \([0-9]*\)/\1/p' include/jetstream.h)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
prefix=/opt/js-install-test
stage=$dest$prefix
fail=0
die() { echo "check-install: FAIL: $*" >&2; exit 1; }
err() { echo "check-install: FAIL: $*" >&2; fail=1; }

for tool in pkg-config "$cc"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not installed (run scripts/deps.sh)"
done

vars=(NODEPS=1 BUILD="$build" DESTDIR="$dest" PREFIX="$prefix")
for pass in 1 2; do
    $make --no-print-directory "${vars[@]}" install > "$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log" >&2; die "make install (pass $pass) failed"; }
done

# 1. The manifest ("path" or "path -> link target").
{
    echo "lib/libjetstream.so.$version"
    echo "lib/libjetstream.so.$major -> libjetstream.so.$version"
    echo "lib/libjetstream.so -> libjetstream.so.$major"
    echo "lib/libjetstream.a"
    echo "lib/pkgconfig/jetstream.pc"
    echo "include/jetstream.h"
    for m in man/man3/*.3 man/man7/*.7; do
        [ -e "$m" ] && echo "share/$m"
    done
} | sort > "$tmp/expected"
(cd "$stage" 2>/dev/null && find . ! -type d | sed 's|^\./||' | sort |
    while read -r f; do
        if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f"; fi
    done) > "$tmp/installed"
if ! diff -u "$tmp/expected" "$tmp/installed" > "$tmp/manifest.diff"; then
    err "make install did not install exactly the expected files under $prefix (- expected, + installed):"
    sed 's/^/    /' "$tmp/manifest.diff" >&2
fi
[ -n "$(find "$dest" ! -type d ! -path "$stage/*")" ] &&
    err "make install wrote outside PREFIX: $(find "$dest" ! -type d ! -path "$stage/*")"
[ -x "$stage/lib/libjetstream.so.$version" ] || err "the installed shared library is not executable (mode 0755)"

# 2. The pkg-config file.
pc=$stage/lib/pkgconfig/jetstream.pc
if [ -f "$pc" ]; then
    grep -qx "prefix=$prefix" "$pc" || err "jetstream.pc: no line prefix=$prefix"
    grep -qx "Version: $version" "$pc" || err "jetstream.pc: no line Version: $version"
    grep -q "$dest" "$pc" && err "jetstream.pc mentions DESTDIR ($dest)"
    grep -q '@[A-Z]*@' "$pc" && err "jetstream.pc has unsubstituted @VARS@: $(grep '@[A-Z]*@' "$pc")"
    grep -Eq '^Requires\.private:.*zlib' "$pc" && grep -Eq '^Requires\.private:.*libsodium' "$pc" ||
        err "jetstream.pc: Requires.private must name zlib and libsodium"
    grep -Eq '^Libs\.private:.*-pthread' "$pc" || err "jetstream.pc: Libs.private must have -pthread"
fi
[ "$fail" -eq 0 ] || die "installation is wrong; not building against it"

# 3. Out-of-tree programs, built with pkg-config only.
export PKG_CONFIG_PATH=$stage/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
pkg-config --exists --print-errors jetstream || die "pkg-config cannot use the installed jetstream.pc"
[ "$(pkg-config --modversion jetstream)" = "$version" ] || die "pkg-config --modversion jetstream is not $version"
shared_flags=$(pkg-config --cflags --libs jetstream) || die "pkg-config --cflags --libs jetstream failed"
static_flags=$(pkg-config --static --cflags --libs jetstream) || die "pkg-config --static --cflags --libs jetstream failed"
for want in -lz -lsodium -pthread; do
    case " $static_flags " in *" $want "*) ;; *) err "pkg-config --static --libs jetstream lacks $want: $static_flags" ;; esac
done
src=tests/meta/install-smoke.c
cflags="-std=c99 -Wall -Wextra -Werror"

echo "check-install: $cc $cflags $src $shared_flags"
# shellcheck disable=SC2086 # flag lists
if $cc $cflags -o "$tmp/smoke-shared" "$src" $shared_flags 2> "$tmp/cc.log"; then
    needed=$(readelf -d "$tmp/smoke-shared" | sed -n 's/.*(NEEDED).*\[\(libjetstream[^]]*\)\].*/\1/p')
    [ "$needed" = "libjetstream.so.$major" ] || err "the shared smoke test needs '$needed', expected libjetstream.so.$major"
    resolved=$(LD_LIBRARY_PATH=$stage/lib ldd "$tmp/smoke-shared" | awk '/libjetstream/ { print $3 }')
    [ "$resolved" = "$stage/lib/libjetstream.so.$major" ] || err "the shared smoke test loads '$resolved', not the installed library"
    if LD_LIBRARY_PATH=$stage/lib "$tmp/smoke-shared" "$tmp/store-shared"; then :; else
        err "the program linked against the installed shared library failed (exit $?)"
    fi
else
    sed 's/^/    /' "$tmp/cc.log" >&2
    err "cannot build an out-of-tree program against the installed shared library"
fi

echo "check-install: $cc -static $cflags $src $static_flags"
# shellcheck disable=SC2086
if $cc -static $cflags -o "$tmp/smoke-static" "$src" $static_flags 2> "$tmp/cc.log"; then
    readelf -d "$tmp/smoke-static" 2>/dev/null | grep -q NEEDED &&
        err "the -static smoke test still has dynamic dependencies"
    if env -u LD_LIBRARY_PATH "$tmp/smoke-static" "$tmp/store-static"; then :; else
        err "the program linked against the installed static library failed (exit $?)"
    fi
else
    grep -v 'warning: Using .* in statically linked' "$tmp/cc.log" | sed 's/^/    /' >&2
    err "cannot build a static out-of-tree program with pkg-config --static"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# 4. Uninstall.
$make --no-print-directory "${vars[@]}" uninstall > "$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log" >&2; die "make uninstall failed"; }
left=$(find "$dest" ! -type d)
[ -z "$left" ] || err "make uninstall left behind: $(echo $left)"

[ "$fail" -eq 0 ] || exit 1
echo "check-install: install, pkg-config (shared and static) and uninstall all work"
