#!/usr/bin/env bash
# Sandbox set-up cost: a birth must cost milliseconds whatever the size of the app (no copying).
# App roots of 10 MB (1,000 files of 10 KB) and 500 MB (5,000 files of 100 KB), in nested
# folders; the Procfile has one `worker` type (no port: ready as soon as the sandbox is set up
# and the command started). For each size and filesystem mode (ephemeral, strict, and none =
# plain processes, the baseline), `phoenix kill worker.1 --now` RUNS times and, per rebirth:
#   born->ready     the "ready" event's age_ms: phoenix's own spawn -> sandbox set up, started
#   died->ready     event time stamps: also counts the spawn itself (clone, layer folders)
#   died->1st instr the command's first instruction: bash prints $EPOCHREALTIME (µs; includes
#                   sh + bash start-up, the same in every mode), minus the "died" time stamp
# usage: bench/sandbox-setup.sh [PHOENIX_BIN]      (RUNS=20 by default)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
RUNS=${RUNS:-20}
MODES=(ephemeral strict none)

result_header sandbox-setup

declare -A SIZE_FILES=([10MB]=1000 [500MB]=5000) SIZE_BYTES=([10MB]=10240 [500MB]=102400)
for size in 10MB 500MB; do
  app="$BENCH_TMP/app-$size"
  mkdir -p "$app"
  run node "$LIB/make-tree.js" "$app" "${SIZE_FILES[$size]}" "${SIZE_BYTES[$size]}"
  # The variable is expanded by bash inside the sandbox, not here.
  # shellcheck disable=SC2016
  echo 'worker: exec bash -c '\''echo "first-instruction $PHOENIX_INCARNATION $EPOCHREALTIME"; exec sleep 1000'\' >"$app/Procfile"
  echo "app root $size: $(du -sh --apparent-size "$app" | cut -f1), $(find "$app" -type f | wc -l) files" | emit
done
sync

for size in 10MB 500MB; do
  app="$BENCH_TMP/app-$size"
  for mode in "${MODES[@]}"; do
    cfg="$BENCH_TMP/phoenix-$mode.toml"
    printf '[process.worker]\ninstances = 1\n\n[filesystem]\nmode = "%s"\n' "$mode" >"$cfg"
    events="$BENCH_TMP/events-$size-$mode.jsonl" log="$BENCH_TMP/phoenix-$size-$mode.log"
    start_phoenix "$app" "$events" "$log" --port "$(free_port)" --config "$cfg"
    run node "$LIB/phx.js" wait-ready --bin "$PHOENIX_BIN" --app "$app" --type worker --count 1 --timeout-s 30
    run node "$LIB/phx.js" rebirths --bin "$PHOENIX_BIN" --app "$app" --events "$events" --log "$log" \
      --instance worker.1 --count "$RUNS" --pause-ms 150 --timeout-s 15 >"$BENCH_TMP/r-$size-$mode.json"
    stop_phoenix "$PHX_PID"
    [[ $PHX_RC == 0 ]] || echo "warning: phoenix ($size, $mode) exited with $PHX_RC" >&2
    # What phoenix says it ran with, so a mode silently ignored would show.
    echo "$size $mode: $(grep -m1 -o 'up in .*' "$log" | sed "s|$BENCH_TMP/||")" | emit
  done
done

# shellcheck disable=SC2016  # JavaScript, not shell
js '
const dir = process.argv[1], runs = process.argv[2];
const modes = ["ephemeral", "strict", "none"], sizes = ["10MB", "500MB"];
const data = {};
for (const s of sizes) for (const m of modes) data[s + m] = JSON.parse(fs.readFileSync(`${dir}/r-${s}-${m}.json`));
const col = (s, m, f) => data[s + m].map((r) => r[f]).filter((x) => x !== null && x !== undefined);
const metrics = [["born->ready", "age_ms"], ["died->ready", "died_to_ready"], ["died->1st instr", "died_to_first"]];
const cell = (x) => fmt(x).padStart(7);
console.log(`\nsandbox set-up, worker type, ${runs} rebirths per row (kill --now), ms`);
console.log("size   mode       " + metrics.map(([n]) => n.padStart(16)).join(" ") + "  (median / p90)");
for (const s of sizes) for (const m of modes) {
  console.log(s.padEnd(7) + m.padEnd(11) + metrics.map(([, f]) => {
    const xs = col(s, m, f);
    return (cell(median(xs)) + " /" + cell(pct(xs, 90))).padStart(16);
  }).join(" "));
}
console.log("\n500MB vs 10MB, medians (ratio; difference)");
for (const m of modes) {
  console.log("  " + m.padEnd(11) + metrics.map(([n, f]) => {
    const a = median(col("10MB", m, f)), b = median(col("500MB", m, f));
    return `${n} ${fmt(b / a, 2)}x; ${b - a >= 0 ? "+" : ""}${fmt(b - a)} ms`;
  }).join("   "));
}
console.log("\nsandbox cost = mode - none, medians in ms");
for (const s of sizes) for (const m of ["ephemeral", "strict"]) {
  console.log("  " + s.padEnd(7) + m.padEnd(11) + metrics.map(([n, f]) => {
    const d = median(col(s, m, f)) - median(col(s, "none", f));
    return `${n} ${d >= 0 ? "+" : ""}${fmt(d)}`;
  }).join("   "));
}
console.log("\n(event time stamps and age_ms have 1 ms resolution; $EPOCHREALTIME has 1 µs)");
' "$BENCH_TMP" "$RUNS" | emit
echo "(results: $RESULT_FILE)"
