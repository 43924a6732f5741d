# shellcheck shell=bash disable=SC2034
# Shared by the bench scripts: source it after `set -euo pipefail`.
#   PHOENIX_BIN  from $1, else $PHOENIX_BIN, else ../build/phoenix
#   BENCH_TMP    a fresh temp dir, removed at exit with every process started via track_pid
#   AS_SERVICE   how proxies and phoenix start (PROXY_SESSION=own|shared, default own):
#                `setsid`, each in a session of its own, as systemd starts every service;
#                "shared" leaves them in this script's session, beside the load generator.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS_DIR="$BENCH_DIR/results"
LIB="$BENCH_DIR/lib"
mkdir -p "$RESULTS_DIR"

PHOENIX_BIN="${1:-${PHOENIX_BIN:-$BENCH_DIR/../build/phoenix}}"
if [[ ! -x "$PHOENIX_BIN" ]]; then
  echo "phoenix binary not found: $PHOENIX_BIN (build it: cmake --build build --target phoenix)" >&2
  exit 2
fi
PHOENIX_BIN="$(cd "$(dirname "$PHOENIX_BIN")" && pwd)/$(basename "$PHOENIX_BIN")"
command -v node >/dev/null || { echo "node is required" >&2; exit 2; }

# With the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) a session is
# a scheduling group: a proxy left in the script's session shares one group's CPU with wrk,
# which no deployment does (the clients are elsewhere, the proxy is a service of its own).
PROXY_SESSION=${PROXY_SESSION:-own}
case $PROXY_SESSION in
  own) AS_SERVICE=(setsid) ;;
  shared) AS_SERVICE=() ;;
  *) echo "PROXY_SESSION must be own or shared, not '$PROXY_SESSION'" >&2; exit 2 ;;
esac

BENCH_TMP="$(mktemp -d /tmp/phoenix-bench.XXXXXX)"
BENCH_PIDS=()
BENCH_CLEANUPS=()

track_pid() { BENCH_PIDS+=("$1"); }
# Forget a PID once it has been waited for, so a reused PID is never signalled.
untrack_pid() {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}
on_cleanup() { BENCH_CLEANUPS+=("$1"); }

# run CMD...: runs a step in the background and waits for it, so that a SIGTERM/SIGINT to
# this script runs the cleanup at once (and stops the step too) instead of after the step.
run() {
  local pid rc=0
  "$@" &
  pid=$!
  track_pid "$pid"
  wait "$pid" || rc=$?
  untrack_pid "$pid"
  return "$rc"
}

# Sends SIGTERM to PID and waits up to $2 seconds (default 40) for it, then SIGKILL.
stop_pid() {
  local pid=$1 secs=${2:-40} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: pid $pid ignored SIGTERM for ${secs}s; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  untrack_pid "$pid"
}

bench_cleanup() {
  local rc=$? c pid
  set +e
  for c in "${BENCH_CLEANUPS[@]}"; do eval "$c"; done
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  # Overlay mounts live in the instances' own namespaces, so nothing is mounted here; still,
  # never recurse into a mount point by accident.
  if grep -q " $BENCH_TMP" /proc/self/mountinfo; then
    echo "warning: mounts left under $BENCH_TMP; not removing it" >&2
  else
    rm -rf "$BENCH_TMP"
  fi
  exit $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback TCP port.
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_phoenix APP_DIR EVENTS_FILE LOG_FILE [up args...]  -> sets PHX_PID
# Each call gets its own PHOENIX_STATE_DIR under BENCH_TMP (exported for later commands).
start_phoenix() {
  local app=$1 events=$2 log=$3
  shift 3
  export PHOENIX_STATE_DIR
  PHOENIX_STATE_DIR="$(mktemp -d "$BENCH_TMP/state.XXXXXX")"
  : >"$events"
  (cd "$app" && exec "${AS_SERVICE[@]}" "$PHOENIX_BIN" up . --events "$events" "$@") >"$log" 2>&1 &
  PHX_PID=$!
  track_pid "$PHX_PID"
}

# stop_phoenix PID: SIGTERM, which stops every instance; sets PHX_RC to phoenix's exit code.
# (Not for $(...): only this shell can wait for its child.)
stop_phoenix() {
  local pid=$1 rc=0 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: phoenix $pid still running 60 s after SIGTERM; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  untrack_pid "$pid"
  PHX_RC=$rc
}

# JS one-off over a JSON file: js_stats FILE 'expression using d (data), median, pct, fmt'
js() { node -e "const {median,pct,fmt}=require('$LIB/stats.js');const fs=require('fs');$1" "${@:2}"; }

# Prints to the terminal and to the results file.
emit() { tee -a "$RESULT_FILE"; }
result_header() {
  RESULT_FILE="$RESULTS_DIR/$1.txt"
  : >"$RESULT_FILE"
  {
    echo "# $1 — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(uname -r), $(nproc) cores, node $(node --version), phoenix $PHOENIX_BIN"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
    echo "# proxies and phoenix: PROXY_SESSION=$PROXY_SESSION ($([[ $PROXY_SESSION == own ]] && echo 'each in a session of its own, as systemd starts a service' || echo "in the bench's session, beside wrk")); autogroup scheduling $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo '?')"
  } | emit
}

# utime + stime in clock ticks of a whole process (all its threads; fields 14 and 15,
# counted after the command name, which may hold spaces). 0 when it is gone.
cpu_ticks() {
  local s
  s=$(<"/proc/$1/stat") 2>/dev/null || { echo 0; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $((${12} + ${13}))
}
children_of() {
  local parent=$1 f s
  for f in /proc/[0-9]*/stat; do
    s=$(<"$f") 2>/dev/null || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    if [[ $2 == "$parent" ]]; then f=${f#/proc/}; echo "${f%/stat}"; fi
  done
}
