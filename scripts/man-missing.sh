#!/bin/sh
# man-missing.sh - print the public functions (JS_API in include/jetstream.h)
# that have no man page, one a line; exit 1 if there are any. The rules for
# what counts as a man page are in scripts/check-man.sh.
exec bash "$(dirname "$0")/check-man.sh" --list-missing
