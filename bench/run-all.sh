#!/usr/bin/env bash
# Runs every phoenix bench in turn; each prints its table and writes bench/results/NAME.txt.
# usage: bench/run-all.sh PHOENIX_BIN        (e.g. bench/run-all.sh build/phoenix)
set -uo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
BIN="${1:-${PHOENIX_BIN:-$BENCH_DIR/../build/phoenix}}"
if [[ ! -x $BIN ]]; then
  echo "usage: $0 PHOENIX_BIN  (not executable: $BIN; build it: cmake --build build --target phoenix)" >&2
  exit 2
fi
failed=()
for b in kill-to-ready sandbox-setup footprint router-throughput router-floor router-rotation router-drill audit-time; do
  echo "=== $b"
  start=$SECONDS
  if "$BENCH_DIR/$b.sh" "$BIN"; then
    echo "=== $b done in $((SECONDS - start)) s"
  else
    echo "=== $b FAILED (exit $?) after $((SECONDS - start)) s"
    failed+=("$b")
  fi
  echo
done
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all benches done; results in $BENCH_DIR/results/"
