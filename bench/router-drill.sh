#!/usr/bin/env bash
# A drill under load: every instance SIGKILLed at the same moment; the requests that fail
# meanwhile, and the time until every slot is ready again, against the app's own boot time.
#   phoenix, 2 instances of apps/router-node (plain: no SIGTERM handling), router threads =
#   cores, no access log. DRILLS rounds (5); each round: wrk -t2 -c32 --timeout 2s for
#   ROUND_S s (5) and a fresh-connection probe every 10 ms (2 s deadline, lib/router-probe.js);
#   at 1.5 s `phoenix drill web --all` (when this build has it, else `phoenix kill web.1 --now`
#   and `kill web.2 --now` started together).
#   recovery: from the command's start (this script's clock) to the last of the successors'
#   "ready" events; also the first "died" -> last "ready" from the events alone, and phoenix's
#   own figure (the "drill" event's recovery_ms and failed_requests, when it drills).
#   boot alone: `node server.js` outside phoenix, spawn -> TCP connect (1 ms poll), 5 runs
#   idle before the rounds, and one run in each round after the recovery, under the same load.
# usage: bench/router-drill.sh [PHOENIX_BIN]       (DRILLS=5 ROUND_S=5 DRILL_HOW=drill|kill)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$LIB/router-common.sh"
DRILLS=${DRILLS:-5}
ROUND_S=${ROUND_S:-5}
CONNS=${CONNS:-32}
APP="$BENCH_DIR/apps/router-node"

router_need_tools wrk
router_private_bin
if [[ -z ${DRILL_HOW:-} ]]; then
  if phoenix_has drill; then DRILL_HOW="drill"; else DRILL_HOW="kill"; fi
fi
result_header router-drill
router_binary_note "$PHOENIX_SRC_BIN" | emit

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%[.,]*} * 1000 + 10#${t#*[.,]} / 1000 )); }
sleep_until() {
  local d=$(( $1 - $(now_ms) ))
  ((d > 0)) && sleep "$(awk -v d="$d" 'BEGIN {printf "%.3f", d / 1000}')"
  return 0
}

# The app alone, idle (first run is a warm-up).
run node "$LIB/boot-time.js" "$APP" 5 1 >"$BENCH_TMP/boot-idle.json"

EVENTS="$BENCH_TMP/events.jsonl"
printf '[router]\naccess_log = false\n[process.web]\ninstances = 2\n' >"$BENCH_TMP/phoenix.toml"
echo GRACEFUL=0 >"$BENCH_TMP/env"
PORT=$(free_port)
start_phoenix "$APP" "$EVENTS" "$BENCH_TMP/phoenix.log" --port "$PORT" --config "$BENCH_TMP/phoenix.toml" --env "$BENCH_TMP/env"
run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count 2 --timeout-s 30
wait_http "$PORT" 10

ROWS="$BENCH_TMP/rows.jsonl"
: >"$ROWS"
for ((d = 1; d <= DRILLS; d++)); do
  echo "[drill $d/$DRILLS] $DRILL_HOW under wrk -t2 -c$CONNS for ${ROUND_S} s ..." >&2
  timeout -k 5 $((ROUND_S + 20)) wrk -t2 -c"$CONNS" -d"${ROUND_S}s" --timeout 2s --latency \
    "http://127.0.0.1:$PORT/" >"$BENCH_TMP/wrk-$d.txt" 2>&1 &
  WRK_PID=$!
  track_pid "$WRK_PID"
  timeout -k 5 $((ROUND_S + 20)) node "$LIB/router-probe.js" --port "$PORT" --interval-ms 10 \
    --timeout-ms 2000 --duration-s "$ROUND_S" >"$BENCH_TMP/probe-$d.json" 2>"$BENCH_TMP/probe-$d.err" &
  PROBE_PID=$!
  track_pid "$PROBE_PID"
  t0=$(now_ms)
  sleep_until $((t0 + 1500))
  tk=$(now_ms)
  if [[ $DRILL_HOW == drill ]]; then
    (cd "$APP" && timeout 60 "$PHOENIX_BIN" drill web --all) >"$BENCH_TMP/drill-$d.out" 2>&1 || echo "(exit $?)" >>"$BENCH_TMP/drill-$d.out"
  else
    (cd "$APP" && timeout 20 "$PHOENIX_BIN" kill web.1 --now) >"$BENCH_TMP/drill-$d.out" 2>&1 &
    k1=$!
    (cd "$APP" && timeout 20 "$PHOENIX_BIN" kill web.2 --now) >>"$BENCH_TMP/drill-$d.out" 2>&1 &
    k2=$!
    wait "$k1" || echo "(kill web.1 exit $?)" >>"$BENCH_TMP/drill-$d.out"
    wait "$k2" || echo "(kill web.2 exit $?)" >>"$BENCH_TMP/drill-$d.out"
  fi
  tc=$(now_ms)
  run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count 2 --timeout-s 30
  # The app alone, once, under the same load (if the round still has a second left).
  if (($(now_ms) < t0 + 1000 * ROUND_S - 1000)); then
    run node -e 'require(process.argv[1]).bootOnce(process.argv[2]).then((ms) => console.log(JSON.stringify(ms)))' \
      "$LIB/boot-time.js" "$APP" >"$BENCH_TMP/boot-load-$d.json"
  else
    echo null >"$BENCH_TMP/boot-load-$d.json"
  fi
  wait "$WRK_PID" || true
  untrack_pid "$WRK_PID"
  wait "$PROBE_PID" || true
  untrack_pid "$PROBE_PID"
  node "$LIB/router-wrk.js" <"$BENCH_TMP/wrk-$d.txt" >"$BENCH_TMP/wrk-$d.json"
  # shellcheck disable=SC2016  # JavaScript
  node -e '
    const fs = require("fs"), [, ev, tk, tc, wrkF, probeF, bootF, outF, d] = process.argv;
    const events = fs.readFileSync(ev, "utf8").split("\n").filter(Boolean).map(JSON.parse)
      .map((e) => ({ ...e, t: Date.parse(e.time) })).filter((e) => e.t >= +tk - 5);
    const died = events.filter((e) => e.event === "died" && /drill|kill/.test(e.reason || ""));
    let lastReady = -Infinity, firstDied = Infinity, missing = [];
    for (const x of died) {
      firstDied = Math.min(firstDied, x.t);
      const r = events.find((e) => e.event === "ready" && e.instance === x.instance && e.incarnation > x.incarnation);
      if (r) lastReady = Math.max(lastReady, r.t); else missing.push(x.instance);
    }
    const report = events.find((e) => e.event === "drill");
    let probe = {};
    try { probe = JSON.parse(fs.readFileSync(probeF, "utf8")); } catch { probe = { broken: true }; }
    console.log(JSON.stringify({
      drill: +d, killed: died.length, missing,
      cmd_ms: +tc - +tk,
      recovery_cmd_ms: lastReady - +tk,
      recovery_events_ms: lastReady - firstDied,
      phoenix_recovery_ms: report ? report.recovery_ms : null,
      phoenix_failed: report ? report.failed_requests ?? null : null,
      boot_under_load_ms: JSON.parse(fs.readFileSync(bootF, "utf8")),
      out: fs.readFileSync(outF, "utf8").trim(),
      wrk: JSON.parse(fs.readFileSync(wrkF, "utf8")), probe }));
  ' "$EVENTS" "$tk" "$tc" "$BENCH_TMP/wrk-$d.json" "$BENCH_TMP/probe-$d.json" "$BENCH_TMP/boot-load-$d.json" \
    "$BENCH_TMP/drill-$d.out" "$d" >>"$ROWS"
  sleep 1
done

stop_phoenix "$PHX_PID"
[[ $PHX_RC == 0 ]] || echo "warning: phoenix exited with $PHX_RC" | emit

{
  echo
  echo "drill under load: 2 instances of apps/router-node SIGKILLed at once ($([[ $DRILL_HOW == drill ]] && echo 'phoenix drill web --all' || echo 'phoenix kill web.1 --now & kill web.2 --now')),"
  echo "wrk -t2 -c$CONNS --timeout 2s for ${ROUND_S} s a drill (the drill at 1.5 s), probe: fresh-connection GET every 10 ms, 2 s deadline"
} | emit
# shellcheck disable=SC2016  # JavaScript
js '
const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const bootIdle = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const w = [7, 9, 11, 12, 11, 9, 9, 9, 10, 11, 11, 12];
const line = (a) => console.log(a.map((x, i) => (i ? String(x).padStart(w[i]) : String(x).padEnd(w[i]))).join(""));
console.log("");
line(["drill", "killed", "recovery", "died->ready", "by phoenix", "served", "failed", "non-2xx", "wrk max", "probe fail", "probe max", "boot alone"]);
line(["", "", "ms", "ms", "ms/failed", "", "", "", "ms", "", "ms", "(load) ms"]);
for (const r of rows) {
  const k = r.wrk, p = r.probe;
  line([r.drill, r.killed + (r.missing.length ? "!" : ""), fmt(r.recovery_cmd_ms, 0), fmt(r.recovery_events_ms, 0),
    r.phoenix_recovery_ms === null ? "-" : `${r.phoenix_recovery_ms}/${r.phoenix_failed}`,
    k.ok ? k.requests : "wrk failed", k.errors, k.non2xx, fmt(k.max_ms, 0), p.broken ? "broken" : `${p.failed}/${p.sent}`,
    fmt(p.max_ms, 0), r.boot_under_load_ms === null ? "-" : fmt(r.boot_under_load_ms, 0)]);
}
const col = (f) => rows.map(f).filter((x) => x !== null && Number.isFinite(x));
const failed = rows.reduce((a, r) => a + r.wrk.errors, 0), probeFailed = rows.reduce((a, r) => a + (r.probe.failed || 0), 0);
const rec = median(col((r) => r.recovery_cmd_ms)), bi = median(bootIdle), bl = median(col((r) => r.boot_under_load_ms));
console.log("");
console.log(`failed requests over ${rows.length} drills: wrk ${failed} (socket errors + non-2xx), probe ${probeFailed}`);
console.log(`recovery (command start -> both ready), median ${fmt(rec, 0)} ms, max ${fmt(Math.max(...col((r) => r.recovery_cmd_ms)), 0)} ms`);
console.log(`app boot alone: idle median ${fmt(bi, 0)} ms (${bootIdle.map((x) => fmt(x, 0)).join(" ")}), under the same load median ${fmt(bl, 0)} ms`);
console.log(`recovery / boot alone: ${fmt(rec / bi, 2)}x idle, ${fmt(rec / bl, 2)}x under load; recovery - boot under load: ${fmt(rec - bl, 0)} ms`);
const outs = [...new Set(rows.map((r) => r.out).filter(Boolean))];
if (outs.length) console.log("\ncommand output (first drill):\n  " + rows[0].out.split("\n").join("\n  "));
for (const r of rows) if (r.missing.length) console.log(`drill ${r.drill}: no ready successor seen for ${r.missing.join(", ")}`);
for (const r of rows) {
  const kinds = Object.entries(r.probe.kinds || {}).map(([a, b]) => `${a} ${b}`).join(", ");
  if (kinds || r.wrk.errors) console.log(`drill ${r.drill}: wrk connect ${r.wrk.connect} read ${r.wrk.read} write ${r.wrk.write} timeout ${r.wrk.timeout} non-2xx ${r.wrk.non2xx}; probe ${kinds || "ok"}`);
}
' "$ROWS" "$BENCH_TMP/boot-idle.json" | emit
echo "(results: $RESULT_FILE)"
