#!/bin/sh
# A user's own test of the Express corpus' JWT login.
set -eu
token=$(curl -sf -m 10 -H 'Content-Type: application/json' -d '{"user":"ana"}' "$BASE_URL/login" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
test -n "$token"
curl -sf -m 10 -H "Authorization: Bearer $token" "$BASE_URL/me" | grep -q ana
curl -sf -m 10 -H "Authorization: Bearer $token" "$BASE_URL/me" | grep -q ana
