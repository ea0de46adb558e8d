#!/bin/bash
# api-names.sh - list the public API's names, sorted, one per line, from one
# of several sources, so the meta-tests can compare the sets.
#
#   api-names.sh header [jetstream.h]   names declared with JS_API
#   api-names.sh declared [jetstream.h] every function the header declares
#                                       (from gcc -aux-info: independent of
#                                       how the text is laid out)
#   api-names.sh map [jetstream.map]    the version script's global names
#   api-names.sh nodes [jetstream.map]  the version script's node names
#   api-names.sh exports <lib.so>       nm -D --defined-only, as "TYPE NAME"
#                                       (the @VERSION suffix removed)
#
# Paths default to the repository's. Fails loudly if a source can't be read.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-}
die() { echo "api-names.sh: $*" >&2; exit 2; }

# Strip C comments (block and line), keeping string and character literals
# intact so a "/*" inside a string doesn't start a comment.
strip_c_comments() {
    awk '
    BEGIN { inc = 0 }
    {
        line = $0; out = ""; i = 1; n = length(line)
        while (i <= n) {
            c = substr(line, i, 1); c2 = substr(line, i, 2)
            if (inc) {
                if (c2 == "*/") { inc = 0; i += 2; out = out " " } else i++
                continue
            }
            if (c2 == "/*") { inc = 1; i += 2; continue }
            if (c2 == "//") break
            if (c == "\"" || c == "\047") {
                q = c; out = out c; i++
                while (i <= n) {
                    c = substr(line, i, 1); out = out c; i++
                    if (c == "\\") { out = out substr(line, i, 1); i++; continue }
                    if (c == q) break
                }
                continue
            }
            out = out c; i++
        }
        print out
    }' "$1"
}

# Declarations that start with JS_API: drop preprocessor lines (with their
# continuations), join everything, split at ; { }, keep the JS_API
# statements and take the identifier just before the first "(" (or, for a
# variable, the last identifier).
header_names() {
    strip_c_comments "$1" | awk '
        cont { cont = ($0 ~ /\\$/); next }
        /^[ \t]*#/ { cont = ($0 ~ /\\$/); next }
        { printf "%s ", $0 }' |
    tr ';{}' '\n\n\n' |
    sed -n 's/^[[:space:]]*JS_API[[:space:]]\{1,\}//p' |
    while IFS= read -r decl; do
        head=${decl%%(*}
        name=$(printf '%s\n' "$head" | grep -o '[A-Za-z_][A-Za-z0-9_]*' | tail -n 1 || true)
        [ -n "$name" ] || die "cannot find the name in: JS_API $decl"
        printf '%s\n' "$name"
    done | sort -u
}

# Every function declared in the header itself (not in what it includes),
# as the compiler sees it.
declared_names() {
    local tmp hdr
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-aux.XXXXXX")
    hdr=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    printf '#include "%s"\n' "$hdr" > "$tmp/t.c"
    if ! gcc -std=c99 -fsyntax-only -aux-info "$tmp/aux" "$tmp/t.c" >&2; then
        rm -rf "$tmp"; die "gcc cannot compile $1"
    fi
    grep -F "/* $hdr:" "$tmp/aux" |
        sed -n 's|^/\*[^*]*\*/ *extern [^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\) (.*|\1|p' |
        sort -u
    rm -rf "$tmp"
}

# Version script: names between "global:" and "local:"/"}" in every node.
map_awk='
    { gsub(/#.*/, ""); printf "%s ", $0 }
    END { printf "\n" }'
map_tokens() {
    strip_c_comments "$1" | awk "$map_awk" |
        sed -e 's/\([{};]\)/ \1 /g' -e 's/global[[:space:]]*:/ global: /g' \
            -e 's/local[[:space:]]*:/ local: /g' | tr -s ' \t' '\n\n'
}
map_names() {
    map_tokens "$1" | awk '
        $0 == "{" { depth++; mode = ""; next }
        $0 == "}" { depth--; mode = ""; next }
        $0 == "global:" { mode = "g"; next }
        $0 == "local:" { mode = "l"; next }
        $0 == ";" || $0 == "" { next }
        depth > 0 && mode == "g" { print }' | sort -u
}
map_nodes() {
    map_tokens "$1" | awk '
        $0 == "{" { if (depth == 0 && prev != "") print prev; depth++ }
        $0 == "}" { depth-- }
        { prev = (depth == 0 && $0 != "}" && $0 != ";") ? $0 : "" }' | sort -u
}

case $what in
header) header_names "${2:-$root/include/jetstream.h}" ;;
declared) declared_names "${2:-$root/include/jetstream.h}" ;;
map) map_names "${2:-$root/libjs/jetstream.map}" ;;
nodes) map_nodes "${2:-$root/libjs/jetstream.map}" ;;
exports)
    [ -n "${2:-}" ] || die "usage: api-names.sh exports <lib.so>"
    [ -f "$2" ] || die "$2: no such file (build it first)"
    nm -D --defined-only "$2" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $2, $3 }' | sort -k2 -u
    ;;
*) die "usage: api-names.sh header|declared|map|nodes|exports [file]" ;;
esac
