#!/bin/sh
# deps.sh - make sure the Debian packages the build and the tests need are
# installed. Idempotent: when everything is present it only says so. When
# something is missing it runs apt-get update and installs just the missing
# packages (as root), or, when not root, prints the command and fails.
#
#   make deps         (make check / make demo run it first; NODEPS=1 skips)
#   sh scripts/deps.sh
set -eu

# gcc/g++/clang: compilers (the header must compile under all of them);
# libc6-dev: gcc only Recommends it, and we install without recommends;
# make, pkg-config: the build; zlib1g-dev, libsodium-dev: the library's
# dependencies; check: the unit tests; abigail-tools: ABI baseline/check;
# valgrind: make valgrind; binutils: nm/readelf/ar for the meta-tests;
# libclang-rt-14-dev: libFuzzer and clang's sanitizer runtimes (make fuzz);
# llvm-14: llvm-profdata-14 and llvm-cov-14 (make fuzz-coverage).
PACKAGES="gcc g++ clang libc6-dev make pkg-config binutils zlib1g-dev
libsodium-dev check abigail-tools valgrind libclang-rt-14-dev llvm-14"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: dpkg-query not found: this script knows Debian only." >&2
    echo "deps.sh: install by hand: $(echo $PACKAGES)" >&2
    exit 1
fi

missing=
for p in $PACKAGES; do
    # "install ok installed"; a removed package may still be known to dpkg
    # (config-files state), so test the status, not just the exit code.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case $status in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "deps.sh: all build and test dependencies are installed."
    exit 0
fi

echo "deps.sh: missing packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: not root; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
    echo "deps.sh: (or run make with NODEPS=1 to skip this check)" >&2
    exit 1
fi

apt-get update
# shellcheck disable=SC2086 # $missing is a word list on purpose
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
echo "deps.sh: installed:$missing"
