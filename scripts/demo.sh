#!/usr/bin/env bash
# `make demo`: photos-stateful (uploads on disk, sessions in files, cache on global) under
# phoenix with a short max_age and a little traffic, so that within a minute you see instances
# born, replaced (surge first) and the uploads/ and sessions/ files that died with them.
set -euo pipefail
phoenix=$(realpath "${1:-build/phoenix}")
here=$(cd "$(dirname "$0")/.." && pwd)
app="$here/examples/photos-stateful"
work=$(mktemp -d /tmp/phoenix-demo.XXXXXX)
export PHOENIX_STATE_DIR="$work/state"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$work/phoenix.toml" <<TOML
[process.web]
instances = 2
max_age = "15s"          # the demo's "almost every day"
max_age_jitter = "5s"
stop_timeout = "5s"
[filesystem]
writable = ["tmp/"]
TOML

echo "== phoenix up $app (max_age 15s; events in $work/events.jsonl)"
(cd "$app" && exec "$phoenix" up --port "$port" --config "$work/phoenix.toml" --events "$work/events.jsonl") &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for() {  # wait_for SECONDS JQ-LIKE-GREP-PATTERN COUNT
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    [ "$(grep -c "$2" "$work/events.jsonl" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.2
  done
  echo "demo: timed out waiting for $2" >&2; return 1
}
wait_for 30 '"event":"ready"' 2
ports=$(cd "$app" && "$phoenix" ps --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).map(i=>i.port).join(" ")))')
node "$here/scripts/demo-traffic.mjs" $ports
echo "== phoenix ps"
(cd "$app" && "$phoenix" ps)
echo "== waiting for both first incarnations to reach max_age and be replaced"
wait_for 45 '"event":"died".*"reason":"max-age".*uploads/' 2
echo "== phoenix ps"
(cd "$app" && "$phoenix" ps)
admin=$(cd "$app" && "$phoenix" ps | sed -n 's/^admin: \([^ ]*\).*/\1/p')
if [ -n "$admin" ]; then
  echo "== $admin/metrics (what Prometheus would scrape; the non-zero counters)"
  node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>console.log(t.split("\n").filter(l=>/^phoenix_(deaths_total|lost_(files|bytes)_total|instance_requests_total|router_requests_total)/.test(l)&&!/ 0$/.test(l)).join("\n")))' "$admin/metrics"
fi
echo "== phoenix stop"
(cd "$app" && "$phoenix" stop)
wait "$pid" || true
trap - EXIT
rm -rf "$work"
