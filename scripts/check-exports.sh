#!/bin/bash
# check-exports.sh - meta-test: what the libraries export.
#
# 1. nm -D --defined-only of $(BUILD)/libjetstream.so lists only functions
#    (type T) named js_*, plus the version script's node names (type A), and
#    the js_* set is exactly the header's JS_API set.
# 2. Every export carries a version from the script (readelf: no unversioned
#    or default-version-less exports).
# 3. The SONAME is libjetstream.so.$MAJOR.
# 4. The static library, which hidden visibility does not protect, defines no
#    global symbol outside the js_* / jsi_* namespaces (STYLE.md: shared
#    internals are jsi_<layer>_*, everything else static).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${BUILD:-build}
so=$build/libjetstream.so
ar=$build/libjetstream.a
major=${MAJOR:-$(sed -n 's/^#define JS_VERSION_MAJOR \([0-9]*\)/\1/p' include/jetstream.h)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
err() { echo "check-exports: FAIL: $*" >&2; fail=1; }

for f in "$so" "$ar"; do
    [ -e "$f" ] || { echo "check-exports: FAIL: $f not built (run make)" >&2; exit 1; }
done

bash scripts/api-names.sh exports "$so" > "$tmp/exports" || exit 1
bash scripts/api-names.sh header > "$tmp/header" || exit 1
bash scripts/api-names.sh nodes > "$tmp/nodes" || exit 1

# 1. Kinds and names.
while read -r type name; do
    case $type in
    A) grep -qxF "$name" "$tmp/nodes" || err "absolute symbol $name is not a version node of libjs/jetstream.map" ;;
    T|i) case $name in js_*) ;; *) err "exported function $name is not js_*" ;; esac ;;
    *) err "exported $name has type $type: only functions (T, or i for an ifunc) may be exported" ;;
    esac
done < "$tmp/exports"
awk '$1 == "T" || $1 == "i" { print $2 }' "$tmp/exports" | sort -u > "$tmp/funcs"
missing=$(comm -23 "$tmp/header" "$tmp/funcs")
extra=$(comm -13 "$tmp/header" "$tmp/funcs")
[ -z "$missing" ] || err "declared JS_API in the header but not exported (not defined, or not in the version script?): $(printf "%s " $missing)"
[ -z "$extra" ] || err "exported but not JS_API in the header: $(printf "%s " $extra)"

# 2. Versions: every defined dynamic symbol has @@NODE (readelf shows it as
#    name@@NODE or name@NODE).
readelf --dyn-syms -W "$so" | awk '$7 != "UND" && $8 ~ /^js_/ && $8 !~ /@/ { print $8 }' > "$tmp/unversioned"
[ ! -s "$tmp/unversioned" ] || err "exports without a symbol version: $(tr '\n' ' ' < "$tmp/unversioned")"

# 3. SONAME.
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libjetstream.so.$major" ] || err "SONAME is '$soname', expected libjetstream.so.$major"

# 4. Static library namespace.
nm -g --defined-only "$ar" 2>/dev/null | awk 'NF == 3 { print $3 }' |
    grep -v -e '^js_' -e '^jsi_' | sort -u > "$tmp/static_bad"
if [ -s "$tmp/static_bad" ]; then
    err "$ar defines global symbols outside js_*/jsi_* (make them static or rename them jsi_<layer>_*): $(tr '\n' ' ' < "$tmp/static_bad")"
fi

if [ "$fail" -ne 0 ]; then
    echo "check-exports: FAIL: see above; nm -D --defined-only $so shows the exports" >&2
    exit 1
fi
echo "check-exports: $so exports exactly the header's $(wc -l < "$tmp/header") js_* functions; SONAME $soname; $ar stays in js_*/jsi_*"
