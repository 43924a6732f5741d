#!/usr/bin/env bash
# phoenix audit's time against the app's own boot time: a 10-step scenario of the
# photos-stateful example (log in, upload, list, fetch, ...), audited RUNS times. Each audit
# boots the app 4 times (baseline, baseline-2, spread with 2 instances at once, reborn) and
# reborns it after each of the reborn run's 9 first steps: 13 sequential boots. The app's boot
# is taken from the same audits' JSON reports (a run's start until its instances are ready),
# and from a plain `node server.js` start to its first answer, beside it.
# usage: bench/audit-time.sh [PHOENIX_BIN]   (RUNS=5)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
RUNS=${RUNS:-5}
APP="$BENCH_DIR/../examples/photos-stateful"
[[ -d "$APP/node_modules" ]] || (cd "$APP" && npm ci --no-audit --no-fund --loglevel=error)
result_header audit-time
SC="$BENCH_TMP/scenario.json"
cp "$APP/audit/cat.png" "$BENCH_TMP/cat.png"
cat >"$SC" <<'JSON'
{ "app": "photos", "steps": [
  { "name": "home", "path": "/" },
  { "name": "log in", "method": "POST", "path": "/login", "form": { "user": "ana" }, "expect": { "status": 200 } },
  { "name": "who am I", "path": "/me", "expect": { "status": 200 } },
  { "name": "upload", "method": "POST", "path": "/photos", "multipart": { "photo": "@cat.png;type=image/png" },
    "expect": { "status": 201 }, "extract": { "id": { "json": ".id" } } },
  { "name": "list", "path": "/photos" },
  { "name": "fetch", "path": "/photos/{{id}}" },
  { "name": "home again", "path": "/" },
  { "name": "health", "path": "/healthz", "expect": { "status": 200 } },
  { "name": "who am I again", "path": "/me" },
  { "name": "list again", "path": "/photos" }
] }
JSON
# The app alone: spawn to first answer, RUNS times (the boot an audit cannot avoid).
boot_ms=()
for i in $(seq "$RUNS"); do
  port=$(free_port)
  dir="$BENCH_TMP/plain-$i"
  cp -r "$APP" "$dir"
  t0=$(date +%s%N)
  (cd "$dir" && PORT=$port exec node server.js >/dev/null 2>&1) &
  pid=$!
  track_pid "$pid"
  until curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.005; done
  boot_ms+=($((($(date +%s%N) - t0) / 1000000)))
  kill "$pid"; wait "$pid" 2>/dev/null || true; untrack_pid "$pid"
done
audit_s=()
for i in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  rc=0
  run timeout 300 "$PHOENIX_BIN" audit "$APP" --scenario "$SC" --json "$BENCH_TMP/r$i.json" >/dev/null 2>&1 || rc=$?
  [[ $rc == 1 ]] || { echo "audit run $i: exit $rc (expected 1: state found)" >&2; exit 1; }
  audit_s+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
b=$(median "${boot_ms[@]}")
a=$(median "${audit_s[@]}")
{
  echo "10-step scenario, photos-stateful, $RUNS runs each (medians):"
  printf '  %-44s %8s ms\n' "app boot alone (spawn to first answer)" "$b"
  printf '  %-44s %8s ms\n' "phoenix audit, whole (4 runs, 13 boots)" "$a"
  printf '  %-44s %8s ms\n' "13 boots of the app" "$((13 * b))"
  printf '  %-44s %8.2fx\n' "audit / (13 boots)" "$(echo "$a / (13 * $b)" | bc -l)"
  echo "  kinds found: $(node -e "const r=require('$BENCH_TMP/r1.json');console.log([...new Set(r.findings.map(f=>f.kind))].sort().join(', '))")"
} | emit
