#!/bin/sh
# A user's own test of the Express corpus' items.
set -eu
curl -sf -m 10 -H 'Content-Type: application/json' -d '{"name":"milk"}' "$BASE_URL/items" >/dev/null
curl -sf -m 10 "$BASE_URL/items" | grep -q milk
curl -sf -m 10 "$BASE_URL/items" | grep -q milk
