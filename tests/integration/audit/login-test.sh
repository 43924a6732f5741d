#!/bin/sh
# A user's own end-to-end test, as the audit runs it: BASE_URL points at phoenix.
set -eu
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
curl -sf -m 10 -c "$jar" -b "$jar" -H 'Accept: application/json' -d user=ana "$BASE_URL/login" >/dev/null
curl -sf -m 10 -c "$jar" -b "$jar" "$BASE_URL/me" | grep -q '"user":"ana"'
curl -sf -m 10 -c "$jar" -b "$jar" "$BASE_URL/healthz" >/dev/null
