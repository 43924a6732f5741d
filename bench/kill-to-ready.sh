#!/usr/bin/env bash
# Kill-to-ready time: phoenix must get a killed instance back within the app's own boot time
# plus a few milliseconds.
#   (a) the app alone: spawn `node server.js` with $PORT, time until a TCP connect succeeds
#       (polled every 1 ms); 1 warm-up run, then RUNS runs, each just before a kill of (b),
#       so that both see the same machine load.
#   (b) under phoenix, 1 instance: `phoenix kill web.1 --now`, time from just before the
#       command to the next incarnation's "ready" event (its time stamp); RUNS times.
#   (c) the "ready" event's age_ms: phoenix's own spawn -> ready.
#   (d) while (b) runs, the bench also connects to each new incarnation's port every 1 ms (the
#       port is in its "born" event): "born" -> the app accepts, i.e. the boot inside the
#       sandbox, apart from how soon phoenix's own probe notices.
# usage: bench/kill-to-ready.sh [PHOENIX_BIN]      (RUNS=20 by default)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
RUNS=${RUNS:-20}
APP="$BENCH_DIR/apps/hello"

result_header kill-to-ready

# (a) warm-up of the app alone (page cache); (a)..(d) measured below, interleaved.
run node "$LIB/boot-time.js" "$APP" 0 1 >/dev/null

EVENTS="$BENCH_TMP/events.jsonl"
start_phoenix "$APP" "$EVENTS" "$BENCH_TMP/phoenix.log" --port "$(free_port)" --scale web=1
run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$APP" --type web --count 1 --timeout-s 30
run node "$LIB/phx.js" rebirths --bin "$PHOENIX_BIN" --app "$APP" --events "$EVENTS" \
  --instance web.1 --count "$RUNS" --pause-ms 300 --timeout-s 15 --probe-port 1 --interleave-boot "$APP" >"$BENCH_TMP/kills.json"
stop_phoenix "$PHX_PID"
[[ $PHX_RC == 0 ]] || echo "warning: phoenix exited with $PHX_RC" >&2

# shellcheck disable=SC2016  # JavaScript, not shell
js '
const k = JSON.parse(fs.readFileSync(process.argv[1]));
const col = (f) => k.map((r) => r[f]).filter((x) => x !== null && x !== undefined);
const boot = col("alone_boot");
const rows = [
  ["(a) app boot alone: spawn -> TCP connect (1 ms poll)", boot],
  ["(b) phoenix: kill --now -> next \"ready\" event", col("kill_to_ready")],
  ["(c) phoenix: \"ready\" age_ms (spawn -> ready)", col("age_ms")],
  ["(d) \"born\" -> port accepts (bench polls every 1 ms)", col("born_to_accepts")],
];
const w = 54;
const line = (a, b, c) => console.log(a.padEnd(w) + String(b).padStart(9) + String(c).padStart(9));
console.log(`\nkill-to-ready, hello app (node ${process.version}), ${boot.length} runs each, ms`);
line("", "median", "p90");
for (const [name, xs] of rows) line(name, fmt(median(xs)), fmt(pct(xs, 90)));
const a = median(boot), b = median(col("kill_to_ready")), c = median(col("age_ms"));
console.log("");
line("(b) / (a)  ratio of medians", fmt(b / a, 2) + "x", "");
line("(b) - (a)  difference of medians", (b - a >= 0 ? "+" : "") + fmt(b - a) + " ms", "");
line("(c) / (a)  ratio of medians", fmt(c / a, 2) + "x", "");
line("(c) - (a)  difference of medians", (c - a >= 0 ? "+" : "") + fmt(c - a) + " ms", "");
const d = median(col("born_to_accepts"));
line("(d) - (a)  boot in sandbox vs alone", (d - a >= 0 ? "+" : "") + fmt(d - a) + " ms", "");
console.log("\nwhere (b) goes, medians in ms (event time stamps have 1 ms resolution):");
line("  kill command start -> \"died\" event", fmt(median(col("kill_to_died"))), "");
line("  \"died\" -> \"born\" (successor spawned)", fmt(median(col("died_to_born"))), "");
line("  \"born\" -> \"ready\"", fmt(median(col("born_to_ready"))), "");
line("    of which: port accepts -> \"ready\" (probe latency)", fmt(median(col("accepts_to_ready"))), "");
line("  `phoenix kill --now` command round trip", fmt(median(col("kill_cmd_ms"))), "");
console.log("\nraw (a): " + boot.map((x) => fmt(x)).join(" "));
console.log("raw (b): " + col("kill_to_ready").map((x) => fmt(x)).join(" "));
console.log("raw (c): " + col("age_ms").join(" "));
console.log("raw (d): " + col("born_to_accepts").map((x) => fmt(x)).join(" "));
' "$BENCH_TMP/kills.json" | emit
echo "(results: $RESULT_FILE)"
