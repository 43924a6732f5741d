#!/bin/sh
# A user's own test of the Express corpus' socket.io chat, over engine.io's long polling.
set -eu
url="$BASE_URL/socket.io/?EIO=4&transport=polling"
sid=$(curl -sf -m 10 "$url" | sed -n 's/.*"sid":"\([^"]*\)".*/\1/p')
test -n "$sid"
curl -sf -m 10 -H 'Content-Type: text/plain;charset=UTF-8' --data-binary 40 "$url&sid=$sid" | grep -q ok
curl -sf -m 10 "$url&sid=$sid" | grep -q '^40'
