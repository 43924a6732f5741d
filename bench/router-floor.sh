#!/usr/bin/env bash
# Router floor: how fast could any proxy in front of the backend be on this machine, and how
# does phoenix compare with a proxy that does nothing but its CPU cost? Side by side, one thread
# each, the same nginx `return 200` backend as router-throughput.sh:
#   phoenix:     [router] threads = 1, access_log = false (its `web` process is the backend)
#   HAProxy:     nbthread 1, mode http, as in router-throughput.sh
#   floor:       lib/floor-proxy.cc, a TCP pass-through on one edge-triggered epoll loop: no
#                HTTP at all, each ready socket read once and sent on at once; "batched": sent
#                after every ready socket of the poll was read (HAProxy's order)
#   floor+work:  the floor burning WORK_NS (2200) of CPU after each read (two a request), about
#                what phoenix spends a request above the floor
# For each: req/s, p99, the proxy's own CPU a request (utime+stime), the whole machine's CPU a
# request and its idle share. On 2 cores shared by wrk, the proxy and nginx, req/s is the busy
# cores over the machine's CPU a request, so both matter: a proxy that costs less but leaves the
# cores idle more (everyone waiting on a wake-up) gains less than its CPU says.
# Each round runs every configuration in a random order (SEED=N repeats one); medians of RUNS.
# usage: bench/router-floor.sh [PHOENIX_BIN]
#        (RUNS=5 DURATION=5 WRK_THREADS="2 1" CONNS=32 WORK_NS=2200 QUIET_WAIT=30)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$LIB/router-common.sh"
RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
WRK_THREADS=${WRK_THREADS:-2 1}
CONNS=${CONNS:-32}
WORK_NS=${WORK_NS:-2200}
QUIET_WAIT=${QUIET_WAIT:-30}
NOISY=0

router_need_tools haproxy nginx wrk g++
router_private_bin
result_header router-floor
router_binary_note "$PHOENIX_SRC_BIN" | emit
g++ -std=c++20 -O2 -o "$BENCH_TMP/floor-proxy" "$LIB/floor-proxy.cc"

declare -A PORT PID
NAMES=()
add() { NAMES+=("$1"); PORT[$1]=$2; PID[$1]=$3; }

nginx_backend_template "$BENCH_TMP/backend.conf.in"
DIRECT_PORT=$(free_port)
mkdir -p "$BENCH_TMP/direct"
sed -e "s/@PORT@/$DIRECT_PORT/g" -e "s|@DIR@|$BENCH_TMP/direct|g" "$BENCH_TMP/backend.conf.in" >"$BENCH_TMP/direct/nginx.conf"
start_backend_nginx "$BENCH_TMP/direct/nginx.conf"

APP="$BENCH_TMP/nginx-app"
nginx_backend_app "$APP" "$BENCH_TMP/backend.conf.in"
printf '[router]\nthreads = 1\naccess_log = false\n[process.web]\ninstances = 1\n' >"$BENCH_TMP/phoenix.toml"
p=$(free_port)
start_phoenix "$APP" "$BENCH_TMP/events.jsonl" "$BENCH_TMP/phoenix.log" --port "$p" --config "$BENCH_TMP/phoenix.toml"
PHX=$PHX_PID
# shellcheck disable=SC2016  # expanded when the cleanup runs
on_cleanup 'kill -0 "$PHX" 2>/dev/null && stop_phoenix "$PHX"'
add phoenix "$p" "$PHX"

p=$(free_port)
haproxy_http_config "$BENCH_TMP/haproxy.cfg" "$p" 1 "$DIRECT_PORT"
start_haproxy "$BENCH_TMP/haproxy.cfg"
add haproxy "$p" "$HAPROXY_PID"

for spec in "floor 0 0" "floor-batched 1 0" "floor-work 0 $WORK_NS"; do
  read -r name batch work <<<"$spec"
  p=$(free_port)
  "$BENCH_TMP/floor-proxy" "$p" "$DIRECT_PORT" "$batch" "$work" >>"$BENCH_TMP/floor.log" 2>&1 &
  track_pid $!
  add "$name" "$p" $!
done

for n in "${NAMES[@]}"; do
  wait_http "${PORT[$n]}" 30 || { echo "$n (port ${PORT[$n]}) does not answer" >&2; exit 1; }
  run_wrk "$BENCH_TMP/warm-$n.json" -t2 -c"$CONNS" -d2s "http://127.0.0.1:${PORT[$n]}/"
done

SEED=${SEED:-$RANDOM}
echo "# order of each round: random, SEED=$SEED" | emit
RUNS_JSON="$BENCH_TMP/runs.jsonl"
: >"$RUNS_JSON"
measure() {
  local n=$1 wt=$2 r=$3
  read -r -a s0 < <(grep '^cpu ' /proc/stat)
  c0=$(cpu_ticks "${PID[$n]}")
  run_wrk "$BENCH_TMP/run.json" -t"$wt" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$n]}/"
  c1=$(cpu_ticks "${PID[$n]}")
  read -r -a s1 < <(grep '^cpu ' /proc/stat)
  busy=$((s1[1] + s1[2] + s1[3] + s1[6] + s1[7] + s1[8] - s0[1] - s0[2] - s0[3] - s0[6] - s0[7] - s0[8]))
  idle=$((s1[4] + s1[5] - s0[4] - s0[5]))
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    Object.assign(r, { name: process.argv[2], wrk_threads: +process.argv[3], round: +process.argv[4],
                       proxy_ticks: +process.argv[5], busy_ticks: +process.argv[6], idle_ticks: +process.argv[7] });
    console.log(JSON.stringify(r));' "$BENCH_TMP/run.json" "$n" "$wt" "$r" "$((c1 - c0))" "$busy" "$idle" >>"$RUNS_JSON"
}
for_each_run measure "${NAMES[@]}"
if ((NOISY)); then
  echo "note: before $NOISY of $TOTAL runs the machine stayed over 20 % busy with other work for ${QUIET_WAIT} s" | emit
fi
kill -0 "$PHX" 2>/dev/null || echo "warning: phoenix is gone" | emit
{
  echo
  echo "router floor: GET / -> nginx 'return 200', keep-alive, wrk -c$CONNS -d${DURATION}s, one proxy thread, median of $RUNS runs"
  echo "(proxy and machine CPU in µs a request; idle: share of both cores idle during the run)"
} | emit
# shellcheck disable=SC2016  # JavaScript
js '
const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const tck = +process.argv[2], work = +process.argv[3];
const label = { phoenix: "phoenix router, 1 thread", haproxy: "HAProxy, nbthread 1",
  floor: "floor: TCP pass-through", "floor-batched": "floor, sends after reads",
  "floor-work": `floor + ${fmt(work / 1000, 1)} µs work a read` };
for (const wt of [...new Set(rows.map((r) => r.wrk_threads))]) {
  console.log(`\nwrk -t${wt}:`);
  const w = [30, 9, 11, 8, 11, 13, 7];
  const line = (a) => console.log(a.map((x, i) => (i ? String(x).padStart(w[i]) : String(x).padEnd(w[i]))).join(""));
  line(["", "req/s", "vs HAProxy", "p99 ms", "proxy µs", "machine µs", "idle"]);
  const cell = {};
  for (const n of Object.keys(label)) {
    const rs = rows.filter((r) => r.name === n && r.wrk_threads === wt && r.ok && r.requests > 0);
    if (!rs.length) continue;
    const us = (f) => median(rs.map((r) => (r[f] * 1e6) / tck / r.requests));
    cell[n] = { rps: median(rs.map((r) => r.rps)), p99: median(rs.map((r) => r.p99_ms)),
      proxy: us("proxy_ticks"), machine: us("busy_ticks"),
      idle: median(rs.map((r) => (100 * r.idle_ticks) / (r.idle_ticks + r.busy_ticks))) };
  }
  for (const [n, c] of Object.entries(cell)) {
    line([label[n], fmt(c.rps, 0), cell.haproxy ? fmt(c.rps / cell.haproxy.rps, 2) + "x" : "",
      fmt(c.p99, 2), fmt(c.proxy, 1), fmt(c.machine, 1), fmt(c.idle, 1) + " %"]);
  }
}
' "$RUNS_JSON" "$(getconf CLK_TCK)" "$WORK_NS" | emit
echo "(results: $RESULT_FILE)"
