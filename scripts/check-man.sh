#!/bin/bash
# check-man.sh - meta-test: every public function has a man page.
#
#   check-man.sh                 the meta-test
#   check-man.sh --list-missing  print the undocumented functions, one a line
#                                (scripts/man-missing.sh runs this)
#
# Policy (how pages map to functions):
# - A page is a "full page" unless its first request is `.so`, which makes it
#   a link page (man-db follows `.so man3/other.3`). Names come from the
#   full page's NAME section: for man(7) pages the text before `\-`, e.g.
#       .SH NAME
#       js_msg_get, js_msg_get_last, js_msg_get_next \- fetch a message
#   for mdoc pages every `.Nm` in the Sh NAME section.
# - A function F is documented when
#     (a) man/man3/F.3 is a full page, or a link page whose target exists;
#     or (b) F is named in the NAME section of some full man/man3/*.3 page.
#   So related functions may share one page (list them all in NAME); each
#   extra name then *should* get a link page man/man3/F.3 holding the single
#   line `.so man3/<shared page>.3`, so that `man F` finds it. A name covered
#   only by (b) passes with a warning saying which link page to add.
# - Errors besides missing functions: a link page whose target is missing
#   (dangling), a link page whose target's NAME does not name F, a full page
#   man/man3/F.3 for a public function F whose NAME section does not name F,
#   a full page with no NAME section.
# - Warnings only: a page naming a js_* function the header does not declare
#   (stale, or documenting a macro: macros are fine, so this is a note).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
mode=check
[ "${1:-}" = "--list-missing" ] && mode=list

tmp=$(mktemp -d "${TMPDIR:-/tmp}/js-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
bash scripts/api-names.sh header > "$tmp/api" || { echo "check-man: FAIL: cannot read the header" >&2; exit 1; }

# The target of a link page ("man3/x.3"), or nothing for a full page. The
# first line that is not a comment (.\" or '\") decides.
so_target() {
    awk '/^[.\047][ \t]*\\"/ { next } /^[ \t]*$/ { next }
         { if ($1 == ".so") print $2; exit }' "$1"
}

# The names in a full page's NAME section, one a line; "NONAME" if the page
# has no NAME section.
name_section() {
    awk '
    function flush() {
        t = text
        sub(/\\-.*/, "", t)                       # man(7): names end at \-
        gsub(/\\f(\[[^]]*\]|\(..|.)/, "", t)      # font changes \fB \f[B] \f(CW
        gsub(/\\&|\\c|\\%/, "", t)
        gsub(/[,\t]/, " ", t)
        n = split(t, w, " ")
        for (i = 1; i <= n; i++)
            if (w[i] ~ /^[A-Za-z_][A-Za-z0-9_]*(\(3\))?$/) { sub(/\(3\)$/, "", w[i]); print w[i] }
    }
    /^[.\047][ \t]*(SH|Sh)([ \t]|$)/ {
        sec = $0
        sub(/^[.\047][ \t]*(SH|Sh)[ \t]*/, "", sec); gsub(/"/, "", sec)
        if (inname) { flush(); inname = 0; done = 1 }
        if (toupper(sec) == "NAME" && !done) { inname = 1; seen = 1; text = "" }
        next
    }
    !inname { next }
    /^[.\047][ \t]*\\"/ { next }
    /^[.\047][ \t]*Nd([ \t]|$)/ { flush(); inname = 0; done = 1; next }   # mdoc
    /^[.\047][ \t]*Nm([ \t]|$)/ { l = $0; sub(/^[.\047][ \t]*Nm[ \t]*/, "", l); text = text " " l; next }
    /^[.\047]/ { l = $0; sub(/^[.\047][ \t]*[A-Za-z]+[ \t]*/, "", l); text = text " " l; next }
    { text = text " " $0 }
    END { if (inname) flush(); if (!seen) print "NONAME" }' "$1"
}

errors=0 warnings=0
err() { [ "$mode" = check ] && echo "check-man: FAIL: $*" >&2; errors=$((errors + 1)); }
warn() { [ "$mode" = check ] && echo "check-man: warning: $*" >&2; warnings=$((warnings + 1)); }

: > "$tmp/named"     # "name page" for every name in a full page's NAME
: > "$tmp/links"     # "name target" for every link page
shopt -s nullglob
for page in man/man3/*.3; do
    base=$(basename "$page" .3)
    target=$(so_target "$page")
    if [ -n "$target" ]; then
        echo "$base $target" >> "$tmp/links"
        continue
    fi
    name_section "$page" > "$tmp/names.1"
    if grep -qx NONAME "$tmp/names.1"; then
        err "$page has no NAME section"
        continue
    fi
    sed "s|\$| $page|" "$tmp/names.1" >> "$tmp/named"
    if grep -qxF "$base" "$tmp/api" && ! grep -qxF "$base" "$tmp/names.1"; then
        err "$page documents public function $base but its NAME section does not name it"
    fi
done

: > "$tmp/missing"
while read -r f; do
    page=man/man3/$f.3
    if [ -e "$page" ]; then
        target=$(awk -v f="$f" '$1 == f { print $2 }' "$tmp/links")
        if [ -n "$target" ]; then
            if [ ! -f "man/$target" ]; then
                err "$page is a link (.so $target) to a page that does not exist (man/$target)"
            elif ! awk -v p="man/$target" -v f="$f" '$1 == f && $2 == p { found = 1 } END { exit !found }' "$tmp/named"; then
                err "$page links to man/$target, whose NAME section does not name $f"
            fi
        fi
        continue
    fi
    shared=$(awk -v f="$f" '$1 == f { print $2; exit }' "$tmp/named")
    if [ -n "$shared" ]; then
        warn "$f is documented in $shared but has no link page; add man/man3/$f.3 containing '.so man3/$(basename "$shared")'"
        continue
    fi
    echo "$f" >> "$tmp/missing"
done < "$tmp/api"

# Dangling link pages for names that are not functions (macros, say).
while read -r name target; do
    grep -qxF "$name" "$tmp/api" && continue
    [ -f "man/$target" ] || err "man/man3/$name.3 is a link (.so $target) to a page that does not exist"
done < "$tmp/links"

# Stale names.
awk '$1 ~ /^js_[a-z0-9_]*$/ { print $1 }' "$tmp/named" | sort -u | comm -23 - "$tmp/api" > "$tmp/stale"
while read -r name; do
    warn "a man page names $name, which the header does not declare as a function (a macro? stale?)"
done < "$tmp/stale"

if [ "$mode" = list ]; then
    cat "$tmp/missing"
    [ ! -s "$tmp/missing" ]
    exit
fi

nmissing=$(wc -l < "$tmp/missing")
total=$(wc -l < "$tmp/api")
if [ "$nmissing" -ne 0 ]; then
    echo "check-man: FAIL: $nmissing of $total public functions have no man page (no man/man3/<function>.3 and not named in the NAME section of any man/man3/*.3):" >&2
    sed 's/^/    /' "$tmp/missing" >&2
    errors=$((errors + nmissing))
fi
if [ "$errors" -ne 0 ]; then
    echo "check-man: FAIL: $errors problem(s); scripts/man-missing.sh lists the undocumented functions" >&2
    exit 1
fi
echo "check-man: all $total public functions have a man page ($warnings warning(s))"
