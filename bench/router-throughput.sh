#!/usr/bin/env bash
# Router throughput: small keep-alive requests through phoenix's router, HAProxy and nginx
# (each with 1, then 2 threads/workers) in front of the same fast backend, and direct to it.
#   backend: nginx `return 200 "ok"`, 1 worker, no access log (lib/router-common.sh). For
#     phoenix it is the app's `web` process (Procfile, the conf generated per incarnation with
#     its $PORT); for the others the same conf started directly on one fixed port.
#   phoenix: [router] threads = 1 / 2, access_log = false, 1 instance.
#   HAProxy: nbthread 1 / 2, mode http, option http-keep-alive, option forwardfor, no log.
#   nginx:   worker_processes 1 / 2, upstream keepalive 64, proxy_http_version 1.1,
#            X-Forwarded-For, access_log off.
#   load:    wrk -t$T -c32 -d${DURATION}s --latency, for each T in WRK_THREADS ("2 1").
# Runs are interleaved (round 1: every configuration, round 2: every configuration again, ...),
# each round in its own random order (SEED=N repeats one): with a fixed cycle, every run of
# one configuration would follow the same other one, and what that one leaves behind would
# always count against the same configuration. Each cell is the median of RUNS runs. Everything is unpinned on
# loopback, so wrk, the proxy and the backend share the cores: the ratios matter more than the
# absolute rates. "proxy CPU" is the proxy process's utime+stime (nginx: master + workers)
# per 1,000 requests; "backend CPU" the same for the backend nginx that run used (phoenix's own
# instance, or the shared one), and "idle" the machine's idle CPU time per 1,000 requests: wrk,
# proxy and backend share two cores, so a proxy that makes the backend work harder, or leaves a
# core idle while it waits, loses requests/s even at a lower CPU cost of its own.
# Before each run the script waits (up to QUIET_WAIT s, 30) until the machine is under 20 % busy
# with other work, since other sessions compile on it.
# usage: bench/router-throughput.sh [PHOENIX_BIN]
#        (RUNS=3 DURATION=10 WRK_THREADS="2 1" CONNS=32 QUIET_WAIT=30)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$LIB/router-common.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2 1}
CONNS=${CONNS:-32}
QUIET_WAIT=${QUIET_WAIT:-30}
TCK=$(getconf CLK_TCK)
NOISY=0

router_need_tools haproxy nginx wrk
router_private_bin
result_header router-throughput
router_binary_note "$PHOENIX_SRC_BIN" | emit

# ------------------------------------------------------------------ the backend, direct
nginx_backend_template "$BENCH_TMP/backend.conf.in"
DIRECT_PORT=$(free_port)
mkdir -p "$BENCH_TMP/direct"
sed -e "s/@PORT@/$DIRECT_PORT/g" -e "s|@DIR@|$BENCH_TMP/direct|g" "$BENCH_TMP/backend.conf.in" >"$BENCH_TMP/direct/nginx.conf"
start_backend_nginx "$BENCH_TMP/direct/nginx.conf"
declare -A PORT PID KIND
NAMES=()
add() { NAMES+=("$1"); PORT[$1]=$2; PID[$1]=$3; KIND[$1]=$4; }
add direct "$DIRECT_PORT" "$NGINX_PID" direct

# ------------------------------------------------------------------ phoenix, threads 1 and 2
APP="$BENCH_TMP/nginx-app"
nginx_backend_app "$APP" "$BENCH_TMP/backend.conf.in"
PHX_PIDS=()
for t in 1 2; do
  printf '[router]\nthreads = %d\naccess_log = false\n[process.web]\ninstances = 1\n' "$t" >"$BENCH_TMP/phoenix-t$t.toml"
  p=$(free_port)
  start_phoenix "$APP" "$BENCH_TMP/events-t$t.jsonl" "$BENCH_TMP/phoenix-t$t.log" --port "$p" --config "$BENCH_TMP/phoenix-t$t.toml"
  PHX_PIDS+=("$PHX_PID")
  add "phoenix-t$t" "$p" "$PHX_PID" phoenix
done
# shellcheck disable=SC2016  # expanded when the cleanup runs
on_cleanup 'for p in "${PHX_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && stop_phoenix "$p"; done'

# ------------------------------------------------------------------ HAProxy, nbthread 1 and 2
for t in 1 2; do
  p=$(free_port)
  haproxy_http_config "$BENCH_TMP/haproxy-t$t.cfg" "$p" "$t" "$DIRECT_PORT"
  start_haproxy "$BENCH_TMP/haproxy-t$t.cfg"
  add "haproxy-t$t" "$p" "$HAPROXY_PID" haproxy
done

# ------------------------------------------------------------------ nginx proxy, 1 and 2 workers
for t in 1 2; do
  p=$(free_port)
  d="$BENCH_TMP/nginx-proxy-w$t"
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<EOF
worker_processes $t;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path $d/client_body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  upstream backend {
    server 127.0.0.1:$DIRECT_PORT;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$p;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
  start_nginx "$d/nginx.conf"
  add "nginx-w$t" "$p" "$NGINX_PID" nginx
done

for n in "${NAMES[@]}"; do
  wait_http "${PORT[$n]}" 30 || { echo "$n (port ${PORT[$n]}) does not answer" >&2; exit 1; }
done

# Proxy CPU: the process (all threads); nginx: master + workers. Not the backend's.
proxy_ticks() {
  case ${KIND[$1]} in
    nginx) tree_ticks "${PID[$1]}" ;;
    *) cpu_ticks "${PID[$1]}" ;;
  esac
}
# The backend nginx (master + worker) a run of $1 sends its requests to.
backend_ticks() {
  case ${KIND[$1]} in
    phoenix) descendant_ticks "${PID[$1]}" ;;
    *) tree_ticks "${PID[direct]}" ;;
  esac
}

# ------------------------------------------------------------------ warm-up, then the rounds
for n in "${NAMES[@]}"; do
  run_wrk "$BENCH_TMP/warm-$n.json" -t2 -c"$CONNS" -d2s "http://127.0.0.1:${PORT[$n]}/"
done

ORDER=(direct phoenix-t1 haproxy-t1 nginx-w1 phoenix-t2 haproxy-t2 nginx-w2)
RUNS_JSON="$BENCH_TMP/runs.jsonl"
SEED=${SEED:-$RANDOM}
echo "# order of each round: random, SEED=$SEED" | emit
: >"$RUNS_JSON"
measure() {
  local n=$1 wt=$2 r=$3
  c0=$(proxy_ticks "$n") b0=$(backend_ticks "$n") i0=$(idle_ticks)
  run_wrk "$BENCH_TMP/run.json" -t"$wt" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$n]}/"
  c1=$(proxy_ticks "$n") b1=$(backend_ticks "$n") i1=$(idle_ticks)
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const [, , , , , ticks, tck, busy, backend, idle] = process.argv.map(Number);
    Object.assign(r, { name: process.argv[2], wrk_threads: +process.argv[3], round: +process.argv[4],
                       cpu_ms: ticks * 1000 / tck, backend_ms: backend * 1000 / tck,
                       idle_ms: idle * 1000 / tck, busy_before: busy });
    console.log(JSON.stringify(r));' "$BENCH_TMP/run.json" "$n" "$wt" "$r" "$((c1 - c0))" "$TCK" "$QUIET_BUSY" \
    "$((b1 - b0))" "$((i1 - i0))" >>"$RUNS_JSON"
}
for_each_run measure "${ORDER[@]}"

if ((NOISY)); then
  echo "note: before $NOISY of $TOTAL runs the machine stayed over 20 % busy with other work for ${QUIET_WAIT} s" | emit
fi
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | emit
# Everything still up? (A proxy that died would show as errors above, too.)
for n in "${NAMES[@]}"; do
  kill -0 "${PID[$n]}" 2>/dev/null || echo "warning: $n (pid ${PID[$n]}) is gone" | emit
done

for p in "${PHX_PIDS[@]}"; do
  stop_phoenix "$p"
  [[ $PHX_RC == 0 ]] || echo "warning: phoenix $p exited with $PHX_RC" | emit
done
PHX_PIDS=()

{
  echo
  echo "router throughput: GET / -> nginx 'return 200', keep-alive, wrk -c$CONNS -d${DURATION}s, median of $RUNS interleaved runs"
  echo "versions: $(haproxy -v | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
}  | emit
# shellcheck disable=SC2016  # JavaScript
js '
const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const label = { direct: "direct to the backend", "phoenix-t1": "phoenix router, 1 thread",
  "haproxy-t1": "HAProxy, nbthread 1", "nginx-w1": "nginx proxy, 1 worker",
  "phoenix-t2": "phoenix router, 2 threads", "haproxy-t2": "HAProxy, nbthread 2",
  "nginx-w2": "nginx proxy, 2 workers" };
const order = Object.keys(label);
const threads = [...new Set(rows.map((r) => r.wrk_threads))];
for (const wt of threads) {
  const cell = {};
  for (const n of order) {
    const rs = rows.filter((r) => r.name === n && r.wrk_threads === wt);
    if (!rs.length) continue;
    const col = (f) => rs.map((r) => r[f]);
    const reqs = col("requests").reduce((a, b) => a + b, 0);
    cell[n] = { rps: median(col("rps")), p50: median(col("p50_ms")), p99: median(col("p99_ms")),
      min: Math.min(...col("rps")), max: Math.max(...col("rps")), errors: col("errors").reduce((a, b) => a + b, 0),
      bad: rs.filter((r) => !r.ok).length,
      cpu: reqs ? col("cpu_ms").reduce((a, b) => a + b, 0) * 1000 / reqs : NaN,
      backend: reqs ? col("backend_ms").reduce((a, b) => a + b, 0) * 1000 / reqs : NaN,
      idle: reqs ? col("idle_ms").reduce((a, b) => a + b, 0) * 1000 / reqs : NaN };
  }
  const ha = (n) => cell[n.replace(/^(phoenix|nginx)-[tw]/, "haproxy-t")];
  console.log(`\nwrk -t${wt}:`);
  const h = ["", "req/s", "(min-max)", "p50 ms", "p99 ms", "vs HAProxy", "vs direct", "p99 vs HAProxy",
    "proxy CPU", "backend", "idle", "errors"];
  const w = [28, 9, 17, 8, 8, 11, 10, 15, 10, 9, 7, 7];
  const line = (a) => console.log(a.map((x, i) => (i ? String(x).padStart(w[i]) : String(x).padEnd(w[i]))).join(""));
  line(h);
  for (const n of order) {
    const c = cell[n];
    if (!c) continue;
    const hx = n === "direct" ? null : ha(n);
    line([label[n], fmt(c.rps, 0), `${fmt(c.min, 0)}-${fmt(c.max, 0)}`, fmt(c.p50, 2), fmt(c.p99, 2),
      hx ? fmt(c.rps / hx.rps, 2) + "x" : "", fmt(c.rps / cell.direct.rps, 2) + "x",
      hx ? fmt(c.p99 / hx.p99, 2) + "x" : "", n === "direct" ? "" : fmt(c.cpu, 1), fmt(c.backend, 1),
      fmt(c.idle, 1), c.errors + (c.bad ? ` (${c.bad} runs failed)` : "")]);
  }
}
// Paired by round: each run against the HAProxy run of the same round (seconds apart, so both
// saw the same machine). The medians above mix rounds; on a shared machine whose speed drifts
// by 10 % or more over minutes, the ratio of each pair and how many rounds were won say more.
console.log("\npaired by round (median of the ratios to HAProxy in each round; rounds won):");
for (const wt of threads) for (const n of order) {
  if (!/^(phoenix|nginx)-/.test(n)) continue;
  const h = n.replace(/^(phoenix|nginx)-[tw]/, "haproxy-t");
  const pairs = [];
  for (const r of rows.filter((x) => x.name === n && x.wrk_threads === wt && x.ok)) {
    const o = rows.find((x) => x.name === h && x.wrk_threads === wt && x.round === r.round && x.ok);
    if (o) pairs.push([r.rps / o.rps, r.p99_ms / o.p99_ms]);
  }
  if (!pairs.length) continue;
  const rw = pairs.filter((p) => p[0] >= 1).length, pw = pairs.filter((p) => p[1] <= 1).length;
  console.log(`  -t${wt} ${label[n].padEnd(27)} req/s ${fmt(median(pairs.map((p) => p[0])), 2)}x ` +
    `(${rw} of ${pairs.length})   p99 ${fmt(median(pairs.map((p) => p[1])), 2)}x (${pw} of ${pairs.length})`);
}
console.log("\nraw req/s per run (round order):");
for (const wt of threads) for (const n of order) {
  const rs = rows.filter((r) => r.name === n && r.wrk_threads === wt);
  if (rs.length) console.log(`  -t${wt} ${n.padEnd(11)} ` + rs.map((r) => fmt(r.rps, 0)).join(" ") +
    "   p99 ms: " + rs.map((r) => fmt(r.p99_ms, 2)).join(" "));
}
' "$RUNS_JSON" | emit
{
  echo
  echo "vs HAProxy: req/s ratio to HAProxy with the same thread count (goal >= 1.0x, aim 1.1x);"
  echo "proxy CPU, backend, idle: ms of CPU time per 1,000 requests (the proxy's, the backend nginx's,"
  echo "the machine's idle time);"
  echo "p99 vs HAProxy: p99 ratio (goal <= 1.0x). phoenix also adds X-Forwarded-Proto/-Port and"
  echo "X-Request-Id to each request; HAProxy and nginx add X-Forwarded-For only."
} | emit
echo "(results: $RESULT_FILE)"
