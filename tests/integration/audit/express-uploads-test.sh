#!/bin/sh
# A user's own test of the Express corpus' uploads.
set -eu
here=$(dirname "$0")
id=$(curl -sf -m 10 -F "file=@$here/cat.png;type=image/png" "$BASE_URL/files" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
test -n "$id"
curl -sf -m 10 -o /dev/null "$BASE_URL/files/$id"
curl -sf -m 10 -o /dev/null "$BASE_URL/files/$id"
