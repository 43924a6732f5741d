#!/bin/sh
# A user's own test of the Express corpus' sessions (BASE_URL from phoenix audit).
set -eu
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
curl -sf -m 10 -c "$jar" -b "$jar" -d user=ana "$BASE_URL/login" >/dev/null
curl -sf -m 10 -c "$jar" -b "$jar" "$BASE_URL/me" | grep -q ana
curl -sf -m 10 -c "$jar" -b "$jar" "$BASE_URL/me" | grep -q ana
