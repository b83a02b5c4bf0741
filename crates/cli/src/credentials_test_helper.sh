#!/bin/sh
# docker-credential-pier-test: a fake docker credential helper for pier's
# tests (credentials_tests.rs, crates/pier/tests/cli_registry.rs). It keeps
# one file per server in the helper-store directory beside the directory
# this script is in, as real helpers keep one keychain entry per server.
store="$(dirname "$0")/../helper-store"
mkdir -p "$store" || exit 1
read -r input || true
case "$1" in
store) key=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' | tr '/:' '__')
       printf '%s' "$input" > "$store/$key" ;;
get)   key=$(printf '%s' "$input" | tr '/:' '__')
       if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) key=$(printf '%s' "$input" | tr '/:' '__'); rm -f "$store/$key" ;;
*) echo "unknown action $1"; exit 1 ;;
esac
