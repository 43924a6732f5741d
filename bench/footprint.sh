#!/usr/bin/env bash
# Phoenix's own footprint: a few MB of memory with dozens of instances, no CPU when idle.
#   - VmRSS of the phoenix process only (not its children) with 1 and with 32 instances of
#     the hello app (started with --scale web=1, then `phoenix scale web=32`, all ready);
#   - for reference, the per-instance `phoenix __sandbox-init` processes (VmRSS and Pss sums);
#   - CPU time (utime+stime from /proc/PID/stat) over IDLE_S seconds (60) with 32 instances.
# The same for PM2 (npm install pm2 into a temp dir; cluster mode, `-i 1` then `pm2 scale 32`):
# the PM2 daemon's VmRSS and its CPU over the same IDLE_S seconds (both measured at once).
# If PM2 cannot be installed, the output says so and shows phoenix alone.
# usage: bench/footprint.sh [PHOENIX_BIN]          (N=32, IDLE_S=60 by default)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
N=${N:-32}
IDLE_S=${IDLE_S:-60}
APP="$BENCH_DIR/apps/hello"
TCK=$(getconf CLK_TCK)

result_header footprint

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum_over() { local fn=$1 t=0 p v; shift; for p in "$@"; do v=$($fn "$p" 2>/dev/null || echo 0); t=$((t + v)); done; echo "$t"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }

# ------------------------------------------------------------------ phoenix
EVENTS="$BENCH_TMP/events.jsonl"
start_phoenix "$APP" "$EVENTS" "$BENCH_TMP/phoenix.log" --port "$(free_port)" --scale web=1
run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count 1 --timeout-s 30
sleep 2
PHX_RSS1=$(rss_kb "$PHX_PID")
(cd "$APP" && exec "$PHOENIX_BIN" scale "web=$N" >/dev/null)
run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count "$N" --timeout-s 120
sleep 3
PHX_RSSN=$(rss_kb "$PHX_PID")
mapfile -t INITS < <(children_of "$PHX_PID")
INIT_RSS=$(sum_over rss_kb "${INITS[@]}")
INIT_PSS=$(sum_over pss_kb "${INITS[@]}")

# ------------------------------------------------------------------ PM2
PM2_STATUS="" PM2_VERSION="" PM2_PID=""
PM2_DIR="$BENCH_TMP/pm2"
export PM2_HOME="$BENCH_TMP/pm2-home"
pm2() { (cd "$APP" && timeout 60 "$PM2_DIR/node_modules/.bin/pm2" "$@"); }
pm2_online() {  # number of online processes named hello
  pm2 jlist 2>/dev/null | node -e '
    let s = require("fs").readFileSync(0, "utf8"); s = s.slice(s.indexOf("["));
    try { console.log(JSON.parse(s).filter((p) => p.name === "hello" && p.pm2_env.status === "online").length); }
    catch { console.log(0); }'
}
pm2_wait() {  # pm2_wait N: until N online and the port accepts, 120 s at most
  local i
  for ((i = 0; i < 240; i++)); do
    if [[ $(pm2_online) == "$1" ]] && node -e '
      const c = require("net").connect(+process.argv[1], "127.0.0.1");
      c.on("connect", () => process.exit(0)); c.on("error", () => process.exit(1));' "$PM2_PORT"; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}
pm2_stop() {
  [[ -n $PM2_PID ]] || return 0
  pm2 kill >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$PM2_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PM2_PID" 2>/dev/null; then
    echo "warning: PM2 daemon $PM2_PID still up after pm2 kill; SIGKILL" >&2
    kill -KILL "$PM2_PID" 2>/dev/null || true
  fi
  for p in "${PM2_WORKERS[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  PM2_PID=""
}
PM2_WORKERS=()
on_cleanup pm2_stop

mkdir -p "$PM2_DIR"
if ! run timeout 150 npm install --prefix "$PM2_DIR" --no-audit --no-fund --loglevel=error \
        --cache "$BENCH_TMP/npm-cache" pm2 >"$BENCH_TMP/npm.log" 2>&1; then
  PM2_STATUS="npm install pm2 failed: $(tail -n 3 "$BENCH_TMP/npm.log" | tr '\n' ' ')"
else
  PM2_VERSION=$(node -p "require('$PM2_DIR/node_modules/pm2/package.json').version")
  PM2_PORT=$(free_port)
  export PORT=$PM2_PORT
  run pm2 start server.js --name hello -i 1 >/dev/null 2>&1 || true
  unset PORT
  PM2_PID=$(cat "$PM2_HOME/pm2.pid" 2>/dev/null || true)
  if [[ -z $PM2_PID ]] || ! pm2_wait 1; then
    PM2_STATUS="PM2 did not start the app (see pm2 logs); skipped"
  else
    sleep 2
    PM2_RSS1=$(rss_kb "$PM2_PID")
    run pm2 scale hello "$N" >/dev/null 2>&1 || true
    if ! pm2_wait "$N"; then
      PM2_STATUS="PM2 did not reach $N online instances; skipped"
    else
      sleep 3
      PM2_RSSN=$(rss_kb "$PM2_PID")
      mapfile -t PM2_WORKERS < <(children_of "$PM2_PID")
    fi
  fi
fi

# ------------------------------------------------------------------ idle CPU, both at once
P0=$(cpu_ticks "$PHX_PID")
I0=$(sum_over cpu_ticks "${INITS[@]}")
[[ -z $PM2_STATUS ]] && M0=$(cpu_ticks "$PM2_PID")
run sleep "$IDLE_S"
P1=$(cpu_ticks "$PHX_PID")
I1=$(sum_over cpu_ticks "${INITS[@]}")
[[ -z $PM2_STATUS ]] && M1=$(cpu_ticks "$PM2_PID")
# Every instance must still be the one measured (no rebirth during the window).
STILL=$(cd "$APP" && "$PHOENIX_BIN" ps --json | node -e '
  const a = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(a.filter((i) => i.state === "ready").length)')

pm2_stop
stop_phoenix "$PHX_PID"
[[ $PHX_RC == 0 ]] || echo "warning: phoenix exited with $PHX_RC" >&2

cpu_cell() {  # ticks -> "N ms (P% of a core)"
  awk -v t="$1" -v hz="$TCK" -v s="$IDLE_S" 'BEGIN {ms = t * 1000 / hz; printf "%d ms (%.3f%% of a core)", ms, ms / (s * 10)}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else printf "n/a"}'; }
{
  echo
  echo "footprint, hello app; RSS = VmRSS of the supervisor process only; CPU = utime+stime"
  if [[ -z $PM2_STATUS ]]; then
    printf '%-44s %-30s %-30s %s\n' "" "phoenix" "PM2 $PM2_VERSION daemon (cluster)" "phoenix/PM2"
    printf '%-44s %-30s %-30s %s\n' "RSS, 1 instance" "$(mb "$PHX_RSS1")" "$(mb "$PM2_RSS1")" "$(ratio "$PHX_RSS1" "$PM2_RSS1")"
    printf '%-44s %-30s %-30s %s\n' "RSS, $N instances" "$(mb "$PHX_RSSN")" "$(mb "$PM2_RSSN")" "$(ratio "$PHX_RSSN" "$PM2_RSSN")"
    printf '%-44s %-30s %-30s %s\n' "CPU over ${IDLE_S} s idle, $N instances" "$(cpu_cell $((P1 - P0)))" "$(cpu_cell $((M1 - M0)))" "$(ratio $((P1 - P0)) $((M1 - M0)))"
  else
    printf '%-44s %-30s\n' "" "phoenix"
    printf '%-44s %-30s\n' "RSS, 1 instance" "$(mb "$PHX_RSS1")"
    printf '%-44s %-30s\n' "RSS, $N instances" "$(mb "$PHX_RSSN")"
    printf '%-44s %-30s\n' "CPU over ${IDLE_S} s idle, $N instances" "$(cpu_cell $((P1 - P0)))"
    echo "PM2: $PM2_STATUS"
  fi
  echo
  echo "also, phoenix's ${#INITS[@]} per-instance sandbox inits (phoenix __sandbox-init), for reference:"
  echo "  VmRSS sum $(mb "$INIT_RSS") (avg $(mb $((INIT_RSS / (${#INITS[@]} > 0 ? ${#INITS[@]} : 1))))), Pss sum $(mb "$INIT_PSS"), CPU over the idle window $(cpu_cell $((I1 - I0)))"
  if [[ $STILL != "$N" ]]; then echo "warning: only $STILL of $N phoenix instances were ready at the end of the idle window"; fi
  if [[ -z $PM2_STATUS ]]; then echo "PM2 in cluster mode: the daemon is also the cluster master holding the port; $N workers are its children (not counted)."; fi
  echo "(CPU clock tick: $((1000 / TCK)) ms)"
} | emit
echo "(results: $RESULT_FILE)"
