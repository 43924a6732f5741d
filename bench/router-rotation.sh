#!/usr/bin/env bash
# Failed requests while every instance is replaced every second, under saturating load.
# The same small Node app (apps/router-node, 2 instances) behind:
#   phoenix   `phoenix rotate web` every second (it returns when both are replaced; the next
#             starts a second after the last one started, or at once if it took longer);
#   phoenix-kill  `phoenix kill web.1` / `web.2` alternating every 0.5 s (planned
#             replacement: successor ready, old one drained, SIGTERM);
#   PM2       cluster mode (-i 2), `pm2 reload app` every second (each reload replaces both);
#   HAProxy   health checks (option httpchk, check inter 200ms, default fall 3 rise 2) in
#             front of 2 `node server.js`, restarted one at a time every 0.5 s (SIGTERM, wait
#             for the exit, start again on the same port, wait until it accepts); with
#             HAProxy's defaults otherwise ("checks"); also with retries on the other server
#             ("checks+retries": retries 3, option redispatch 1, retry-on conn-failure
#             empty-response response-timeout); and, as a careful deploy script would, each
#             restart drained first over the runtime API ("drain+restart": state drain, wait
#             until it has no session, restart, wait until it accepts, state ready, wait
#             until HAProxy's checks say UP).
# Each for DURATION s (30) under `wrk -t2 -c32 --timeout 2s` (failed = socket errors, which
# include wrk's timeouts, + non-2xx), with a probe beside it (lib/router-probe.js): a GET on a
# fresh connection every 10 ms, 2 s deadline, so a request that hangs counts too.
# APP_MODES: "plain" (the app ignores SIGTERM's chance to finish: dies at once, as most apps)
# and "graceful" (GRACEFUL=1: stops accepting, finishes in-flight requests, then exits).
# Each scenario starts when the machine is under 20 % busy with other work (at most QUIET_WAIT s),
# and first runs the same wrk for STEADY_S s (10) with no replacement, for the rate without churn.
# usage: bench/router-rotation.sh [PHOENIX_BIN]
#        (DURATION=30 STEADY_S=10 APP_MODES="plain graceful" SYSTEMS="phoenix phoenix-kill pm2 haproxy haproxy-retry haproxy-drain")
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$LIB/router-common.sh"
DURATION=${DURATION:-30}
STEADY_S=${STEADY_S:-10}
APP_MODES=${APP_MODES:-plain graceful}
SYSTEMS=${SYSTEMS:-phoenix phoenix-kill pm2 haproxy haproxy-retry haproxy-drain}
CONNS=${CONNS:-32}
QUIET_WAIT=${QUIET_WAIT:-30}
APP="$BENCH_DIR/apps/router-node"

router_need_tools haproxy wrk
router_private_bin
result_header router-rotation
router_binary_note "$PHOENIX_SRC_BIN" | emit
ROWS="$BENCH_TMP/rows.jsonl"
: >"$ROWS"

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%[.,]*} * 1000 + 10#${t#*[.,]} / 1000 )); }
# sleep_until EPOCH_MS
sleep_until() {
  local d=$(( $1 - $(now_ms) ))
  ((d > 0)) && sleep "$(awk -v d="$d" 'BEGIN {printf "%.3f", d / 1000}')"
  return 0
}

# load_start PORT TAG: wrk and the probe in the background for DURATION s.
load_start() {
  local port=$1 tag=$2
  timeout -k 5 $((DURATION + 20)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 2s --latency \
    "http://127.0.0.1:$port/" >"$BENCH_TMP/wrk-$tag.txt" 2>&1 &
  WRK_PID=$!
  track_pid "$WRK_PID"
  timeout -k 5 $((DURATION + 20)) node "$LIB/router-probe.js" --port "$port" --interval-ms 10 \
    --timeout-ms 2000 --duration-s "$DURATION" >"$BENCH_TMP/probe-$tag.json" 2>"$BENCH_TMP/probe-$tag.err" &
  PROBE_PID=$!
  track_pid "$PROBE_PID"
  LOAD_T0=$(now_ms)
}
load_wait() {
  wait "$WRK_PID" || true
  untrack_pid "$WRK_PID"
  wait "$PROBE_PID" || true
  untrack_pid "$PROBE_PID"
}
# steady PORT TAG: the same wrk for STEADY_S s with no replacement, just before the window.
steady() {
  if ((STEADY_S > 0)); then
    run_wrk "$BENCH_TMP/steady-$2.json" -t2 -c"$CONNS" -d"${STEADY_S}s" --timeout 2s --latency "http://127.0.0.1:$1/"
  else
    echo '{}' >"$BENCH_TMP/steady-$2.json"
  fi
}
# row SYSTEM MODE TAG REPLACEMENTS CMD_ERRORS NOTE
row() {
  node "$LIB/router-wrk.js" <"$BENCH_TMP/wrk-$3.txt" >"$BENCH_TMP/wrk-$3.json"
  node -e '
    const fs = require("fs"), a = process.argv;
    let probe = {};
    try { probe = JSON.parse(fs.readFileSync(a[1], "utf8")); } catch { probe = { broken: true }; }
    const wrk = JSON.parse(fs.readFileSync(a[2], "utf8"));
    const steady = JSON.parse(fs.readFileSync(a[8], "utf8"));
    console.log(JSON.stringify({ system: a[3], mode: a[4], replacements: +a[5], cmd_errors: +a[6], note: a[7], wrk, probe, steady }));
  ' "$BENCH_TMP/probe-$3.json" "$BENCH_TMP/wrk-$3.json" "$1" "$2" "$4" "$5" "$6" "$BENCH_TMP/steady-$3.json" >>"$ROWS"
}
envfile() {  # envfile MODE -> path of a .env with GRACEFUL for the app
  local f="$BENCH_TMP/env-$1"
  if [[ $1 == graceful ]]; then echo GRACEFUL=1 >"$f"; else echo GRACEFUL=0 >"$f"; fi
  echo "$f"
}

# ------------------------------------------------------------------ phoenix
bench_phoenix() {  # bench_phoenix MODE rotate|kill
  local mode=$1 how=$2 tag="phoenix-$2-$1" port i n=0 errs=0 t0 note
  port=$(free_port)
  printf '[router]\naccess_log = false\n[process.web]\ninstances = 2\n' >"$BENCH_TMP/phoenix.toml"
  start_phoenix "$APP" "$BENCH_TMP/events-$tag.jsonl" "$BENCH_TMP/phoenix-$tag.log" --port "$port" \
    --config "$BENCH_TMP/phoenix.toml" --env "$(envfile "$mode")"
  run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count 2 --timeout-s 30
  wait_http "$port" 10
  local before
  before=$(grep -c '"event":"died"' "$BENCH_TMP/events-$tag.jsonl" || true)
  if [[ $how == rotate ]] && ! phoenix_has rotate; then
    echo "phoenix rotate: not in this build; skipped (phoenix-kill replaces instances one by one)" | emit
    stop_phoenix "$PHX_PID"
    return 0
  fi
  steady "$port" "$tag"
  load_start "$port" "$tag"
  t0=$LOAD_T0
  if [[ $how == rotate ]]; then
    # `phoenix rotate web` once a second (the next one starts when the last returned).
    for ((i = 0; i < DURATION; i++)); do
      sleep_until $((t0 + 1000 * i + 250))
      (($(now_ms) < t0 + 1000 * DURATION - 500)) || break
      (cd "$APP" && timeout 60 "$PHOENIX_BIN" rotate web) >>"$BENCH_TMP/cmd-$tag.log" 2>&1 || errs=$((errs + 1))
      n=$((n + 1))
    done
    note="phoenix rotate web: $n rotations, one a second"
  else
    for ((i = 0; i < 2 * DURATION - 1; i++)); do
      sleep_until $((t0 + 500 * i + 250))
      (($(now_ms) < t0 + 1000 * DURATION - 250)) || break
      (cd "$APP" && timeout 20 "$PHOENIX_BIN" kill "web.$((i % 2 + 1))") >>"$BENCH_TMP/cmd-$tag.log" 2>&1 || errs=$((errs + 1))
      n=$((n + 1))
    done
    note="phoenix kill web.1 / web.2 alternating every 0.5 s: $n kills"
  fi
  load_wait
  sleep 1
  local died crashed
  died=$(($(grep -c '"event":"died"' "$BENCH_TMP/events-$tag.jsonl" || true) - before))
  crashed=$(grep '"event":"died"' "$BENCH_TMP/events-$tag.jsonl" | grep -vc '"reason":"killed"\|"reason":"rotate' || true)
  stop_phoenix "$PHX_PID"
  [[ $PHX_RC == 0 ]] || note="$note; phoenix exited with $PHX_RC"
  ((crashed == 0)) || note="$note; $crashed died events not planned (see events)"
  ((errs == 0)) || note="$note; $errs of $n commands failed: $(sort "$BENCH_TMP/cmd-$tag.log" | uniq -c | sort -rn | head -2 | tr -s ' \n' ' ')"
  row "phoenix $how" "$mode" "$tag" "$died" "$errs" "$note"
}

# ------------------------------------------------------------------ PM2
PM2_PID=""
pm2_stop() {
  [[ -n $PM2_PID ]] || return 0
  local workers p i
  workers=$(children_of "$PM2_PID")
  (cd "$APP" && timeout 60 "$PM2_BIN" kill) >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do kill -0 "$PM2_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PM2_PID" 2>/dev/null; then
    echo "warning: PM2 daemon $PM2_PID still up after pm2 kill; SIGKILL" >&2
    kill -KILL "$PM2_PID" 2>/dev/null || true
  fi
  for p in $workers; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  PM2_PID=""
}
on_cleanup pm2_stop
pm2_online() {
  (cd "$APP" && timeout 30 "$PM2_BIN" jlist) 2>/dev/null | node -e '
    let s = require("fs").readFileSync(0, "utf8"); s = s.slice(s.indexOf("["));
    try { console.log(JSON.parse(s).filter((p) => p.name === "app" && p.pm2_env.status === "online").length); }
    catch { console.log(0); }'
}
bench_pm2() {
  local mode=$1 tag="pm2-$1" port i n=0 errs=0 t0 t1 note
  if [[ -z ${PM2_BIN:-} && -z ${PM2_STATUS:-} ]]; then pm2_install || true; fi
  if [[ -n ${PM2_STATUS:-} ]]; then
    echo "PM2 skipped: $PM2_STATUS" | emit
    return 0
  fi
  port=$(free_port)
  export PM2_HOME="$BENCH_TMP/pm2-home-$mode"
  (cd "$APP" && PORT=$port GRACEFUL=$([[ $mode == graceful ]] && echo 1 || echo 0) \
    timeout 60 "$PM2_BIN" start server.js --name app -i 2) >"$BENCH_TMP/pm2-$tag.log" 2>&1 || true
  PM2_PID=$(cat "$PM2_HOME/pm2.pid" 2>/dev/null || true)
  for ((i = 0; i < 60; i++)); do [[ $(pm2_online) == 2 ]] && break; sleep 0.5; done
  if [[ -z $PM2_PID || $(pm2_online) != 2 ]] || ! wait_http "$port" 10; then
    echo "PM2 ($mode): the app did not come up; skipped (see $BENCH_TMP/pm2-$tag.log)" | emit
    pm2_stop
    return 0
  fi
  steady "$port" "$tag"
  load_start "$port" "$tag"
  t0=$LOAD_T0
  local durs=()
  for ((i = 0; i < DURATION; i++)); do
    sleep_until $((t0 + 1000 * i + 250))
    (($(now_ms) < t0 + 1000 * DURATION)) || break
    t1=$(now_ms)
    (cd "$APP" && timeout 30 "$PM2_BIN" reload app) >>"$BENCH_TMP/cmd-$tag.log" 2>&1 || errs=$((errs + 1))
    durs+=($(($(now_ms) - t1)))
    n=$((n + 1))
  done
  load_wait
  note="pm2 reload app: $n reloads (2 instances each), $(printf '%s\n' "${durs[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms each", a[int((NR+1)/2)]}')"
  ((errs == 0)) || note="$note; $errs reloads failed"
  pm2_stop
  unset PM2_HOME
  row PM2 "$mode" "$tag" $((2 * (n - errs))) "$errs" "$note"
}

# ------------------------------------------------------------------ HAProxy + 2 node instances
declare -A NODE_PID
start_node() {  # start_node SLOT PORT MODE
  (cd "$APP" && PORT=$2 GRACEFUL=$([[ $3 == graceful ]] && echo 1 || echo 0) exec node server.js) \
    >>"$BENCH_TMP/node-$1.log" 2>&1 &
  NODE_PID[$1]=$!
  track_pid "${NODE_PID[$1]}"
}
# wait_accept PORT [MS=5000]: until a TCP connect to 127.0.0.1:PORT succeeds (10 ms polls).
wait_accept() {
  local i
  for ((i = 0; i < ${2:-5000} / 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.01
  done
  return 1
}
# bench_haproxy MODE checks|retry|drain
bench_haproxy() {
  local mode=$1 how=$2 tag="haproxy-$2-$1" port pa pb i n=0 t0 note slot sp drained=() upw=()
  port=$(free_port)
  pa=$(free_port)
  pb=$(free_port)
  start_node a "$pa" "$mode"
  start_node b "$pb" "$mode"
  local extra="" sock="$BENCH_TMP/haproxy-$tag.sock"
  if [[ $how != checks ]]; then
    extra=$'  retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response response-timeout'
  fi
  cat >"$BENCH_TMP/haproxy-$tag.cfg" <<EOF
global
  maxconn 4096
  stats socket $sock mode 600 level admin
defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$port
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /
$extra
  server a 127.0.0.1:$pa check inter 200ms
  server b 127.0.0.1:$pb check inter 200ms
EOF
  start_haproxy "$BENCH_TMP/haproxy-$tag.cfg"
  wait_http "$pa" 20
  wait_http "$pb" 20
  wait_http "$port" 20
  sleep 1  # both servers UP in HAProxy's eyes
  steady "$port" "$tag"
  load_start "$port" "$tag"
  t0=$LOAD_T0
  for ((i = 0; i < 2 * DURATION - 1; i++)); do
    sleep_until $((t0 + 500 * i + 250))
    (($(now_ms) < t0 + 1000 * DURATION)) || break
    if ((i % 2 == 0)); then slot=a sp=$pa; else slot=b sp=$pb; fi
    if [[ $how == drain ]]; then
      node "$LIB/router-hactl.js" "$sock" cmd "set server be/$slot state drain" >/dev/null
      drained+=("$(node "$LIB/router-hactl.js" "$sock" wait-idle be "$slot" 2000)")
    fi
    stop_pid "${NODE_PID[$slot]}" 10
    start_node "$slot" "$sp" "$mode"
    wait_accept "$sp" 5000 || true  # one at a time: the next restart waits for this one
    if [[ $how == drain ]]; then
      node "$LIB/router-hactl.js" "$sock" cmd "set server be/$slot state ready" >/dev/null
      upw+=("$(node "$LIB/router-hactl.js" "$sock" wait-up be "$slot" 5000)")
    fi
    n=$((n + 1))
  done
  load_wait
  stop_pid "$HAPROXY_PID" 10
  stop_pid "${NODE_PID[a]}" 10
  stop_pid "${NODE_PID[b]}" 10
  local name
  case $how in
    checks)
      name=checks
      note="check inter 200ms (fall 3, rise 2), otherwise defaults; $n restarts" ;;
    retry)
      name=checks+retries
      note="check inter 200ms + retries 3, option redispatch 1, retry-on conn-failure empty-response response-timeout; $n restarts" ;;
    drain)
      name=drain+restart
      note="as checks+retries, and each restart drained first over the runtime API (state drain, wait for no session: median $(printf '%s\n' "${drained[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms; restart; state ready; wait until UP: median $(printf '%s\n' "${upw[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms); $n restarts" ;;
  esac
  row "HAProxy $name" "$mode" "$tag" "$n" 0 "$note"
}

total=0
for m in $APP_MODES; do for s in $SYSTEMS; do total=$((total + 1)); done; done
k=0
for m in $APP_MODES; do
  for s in $SYSTEMS; do
    k=$((k + 1))
    echo "[$k/$total] $s, $m app, ${DURATION} s ..." >&2
    router_wait_quiet "$QUIET_WAIT" || echo "note: $s ($m) started while the machine was $QUIET_BUSY % busy with other work" | emit
    case $s in
      phoenix) bench_phoenix "$m" rotate ;;
      phoenix-kill) bench_phoenix "$m" kill ;;
      pm2) bench_pm2 "$m" ;;
      haproxy) bench_haproxy "$m" checks ;;
      haproxy-retry) bench_haproxy "$m" retry ;;
      haproxy-drain) bench_haproxy "$m" drain ;;
      *) echo "unknown system $s" >&2; exit 2 ;;
    esac
    sleep 1
  done
done

{
  echo
  echo "rotation under load: every instance replaced every second for ${DURATION} s; wrk -t2 -c$CONNS --timeout 2s,"
  echo "plus a probe: a GET on a fresh connection every 10 ms, 2 s deadline"
  echo "versions: ${PM2_VERSION:+PM2 $PM2_VERSION, }$(haproxy -v | head -1 | cut -d' ' -f1-3)"
} | emit
# shellcheck disable=SC2016  # JavaScript
js '
const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
const w = [24, 9, 13, 10, 9, 10, 10, 13, 9, 12, 20];
const line = (a) => console.log(a.map((x, i) => (i ? String(x).padStart(w[i]) : String(x).padEnd(w[i]))).join(""));
console.log("");
line(["", "app", "replacements", "2xx", "failed", "non-2xx", "sock err", "failed/repl", "probe", "probe fail", "req/s steady->rot."]);
for (const r of rows) {
  const k = r.wrk, p = r.probe;
  const sock = k.connect + k.read + k.write + k.timeout;
  line([r.system, r.mode, r.replacements, k.ok ? k.requests - k.non2xx : "wrk failed", k.errors, k.non2xx, sock,
    r.replacements ? fmt(k.errors / r.replacements, 1) : "n/a", p.sent ?? "?", p.broken ? "probe broken" : p.failed,
    r.steady && r.steady.rps ? `${fmt(r.steady.rps, 0)}->${fmt(k.rps, 0)}` : fmt(k.rps, 0)]);
}
console.log("\nsocket errors are connect/read/write/timeout (wrk counts a request that takes over 2 s as a timeout);");
console.log("failed = socket errors + non-2xx. A proxy that answers 503 at once while no server is up gets");
console.log("many more wrk requests (and failures) per second than one that waits: compare the probe, which");
console.log("sends at a fixed rate. probe = fresh-connection GETs sent, probe fail = errors, non-2xx, over 2 s.");
console.log("req/s steady->rot.: the wrk rate in the STEADY_S s just before the window (no replacement), then in it.");
console.log("\ndetails:");
for (const r of rows) {
  const k = r.wrk, p = r.probe;
  const kinds = Object.entries(p.kinds || {}).map(([a, b]) => `${a} ${b}`).join(", ") || "none";
  console.log(`  ${r.system} (${r.mode}): ${r.note}`);
  console.log(`    wrk: ${fmt(k.rps, 0)} req/s, p50 ${fmt(k.p50_ms, 2)} ms, p99 ${fmt(k.p99_ms, 2)} ms, max ${fmt(k.max_ms, 0)} ms;` +
    ` socket errors connect ${k.connect} read ${k.read} write ${k.write} timeout ${k.timeout}`);
  console.log(`    probe: ${p.ok}/${p.sent} ok, p99 ${fmt(p.p99_ms, 1)} ms, max ${fmt(p.max_ms, 0)} ms; failures: ${kinds}` +
    (p.late_ticks ? ` (${p.late_ticks} ticks late: busy machine)` : ""));
}
' "$ROWS" | emit
echo "(results: $RESULT_FILE)"
