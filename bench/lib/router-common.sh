# shellcheck shell=bash disable=SC2034
# Shared by bench/router-*.sh: source it after lib/common.sh.
#   router_need_tools CMD...   apt-get installs haproxy / nginx / wrk when missing
#   router_private_bin         runs a copy of PHOENIX_BIN (others may rebuild it meanwhile)
#   nginx_backend_template F   the fast backend's nginx.conf with @PORT@ and @DIR@
#   nginx_backend_app DIR T    an app (Procfile) whose web process is that backend
#   haproxy_http_config F PORT NBTHREAD BACKEND_PORT   the benches' HAProxy config
#   round_order SEED WT R NAME...  a round's configurations in a seeded random order
#   start_nginx CONF -> NGINX_PID (start_backend_nginx: the same in its own session);  start_haproxy CONF -> HAPROXY_PID
#   wait_http PORT [SECONDS]   until GET / on 127.0.0.1:PORT answers 200
#   run_wrk OUT_JSON ARGS...   wrk with a hard time bound; its output parsed to JSON
#   cpu_ticks PID, children_of PID, tree_ticks PID (PID and its direct children)
#   pm2_install -> PM2_BIN (or PM2_STATUS with the reason it failed)

# Installs the Debian packages of the given commands when a command is missing.
router_need_tools() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  ((${#missing[@]})) || return 0
  echo "installing ${missing[*]} with apt-get ..." >&2
  if ! run timeout 600 apt-get install -y -q "${missing[@]}" >"$BENCH_TMP/apt.log" 2>&1; then
    run timeout 300 apt-get update -q >>"$BENCH_TMP/apt.log" 2>&1 || true
    run timeout 600 apt-get install -y -q "${missing[@]}" >>"$BENCH_TMP/apt.log" 2>&1 || {
      tail -n 5 "$BENCH_TMP/apt.log" >&2
      echo "could not install ${missing[*]}" >&2
      exit 2
    }
  fi
}

# The phoenix binary is rebuilt by `make` at any time; a bench uses its own copy.
router_private_bin() {
  PHOENIX_SRC_BIN=$PHOENIX_BIN
  cp "$PHOENIX_BIN" "$BENCH_TMP/phoenix"
  PHOENIX_BIN="$BENCH_TMP/phoenix"
}

# phoenix subcommands that exist in this build (e.g. rotate, drill are newer).
phoenix_has() { "$PHOENIX_BIN" --help 2>/dev/null | grep -qE "^  $1( |$)"; }

# The fast backend: nginx answering `return 200 "ok"` with one worker, no access log,
# keep-alive connections that are never closed by request count.
nginx_backend_template() {
  cat >"$1" <<'EOF'
worker_processes 1;
pid @DIR@/nginx-@PORT@.pid;
error_log @DIR@/nginx-@PORT@.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path @DIR@/client_body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;
  server {
    listen 127.0.0.1:@PORT@;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
EOF
}

# nginx_backend_app DIR TEMPLATE: an app whose `web` process is the fast backend (the template's
# conf with the instance's $PORT), for phoenix to run.
nginx_backend_app() {
  mkdir -p "$1"
  cp "$2" "$1/backend.conf.in"
  # shellcheck disable=SC2016  # $PORT is the instance's, expanded by its shell
  printf '%s\n' 'web: sed -e "s/@PORT@/$PORT/g" -e "s|@DIR@|/tmp|g" backend.conf.in >/tmp/nginx.conf && exec nginx -e /tmp/nginx-error.log -c /tmp/nginx.conf -g "daemon off;"' >"$1/Procfile"
}

# haproxy_http_config FILE PORT NBTHREAD BACKEND_PORT: HAProxy as the benches run it (mode http,
# keep-alive both ways, X-Forwarded-For, no log) on 127.0.0.1:PORT in front of BACKEND_PORT.
haproxy_http_config() {
  cat >"$1" <<EOF
global
  nbthread $3
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:$2
  default_backend be
backend be
  server s1 127.0.0.1:$4
EOF
}

# round_order SEED WRK_THREADS ROUND NAME...: the names in this round's random order, one a line,
# the same for the same seed (shuf reads its randomness from a stream seeded by a hash of the
# three, so every round differs from its first byte on).
round_order() {
  local seed="$1.$2.$3"
  shift 3
  printf '%s\n' "$@" | shuf --random-source=<(yes "$(sha256sum <<<"$seed")")
}

# start_nginx CONF: nginx in the foreground (its master is our child), started as a service
# (AS_SERVICE, lib/common.sh); sets NGINX_PID.
start_nginx() {
  "${AS_SERVICE[@]}" nginx -e "$BENCH_TMP/nginx-startup.err" -c "$1" -g 'daemon off;' >>"$BENCH_TMP/nginx.out" 2>&1 &
  NGINX_PID=$!
  track_pid "$NGINX_PID"
}

# start_backend_nginx CONF: as start_nginx, in a session of its own. phoenix starts each instance
# in its own session (setsid), and with the kernel's autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled) a session is a scheduling group of its own: the
# backend then competes for the cores as one group against wrk and the proxy together. A
# backend started from this script would share their group, which measured 0.5 µs a request
# cheaper for nginx behind HAProxy here: the backend every proxy is measured against runs as
# phoenix's does (and as a service under systemd does, each in its own session).
start_backend_nginx() {
  setsid nginx -e "$BENCH_TMP/nginx-startup.err" -c "$1" -g 'daemon off;' >>"$BENCH_TMP/nginx.out" 2>&1 &
  NGINX_PID=$!
  track_pid "$NGINX_PID"
}

# start_haproxy CONF: haproxy -db (no fork), started as a service (AS_SERVICE); sets HAPROXY_PID.
start_haproxy() {
  "${AS_SERVICE[@]}" haproxy -db -f "$1" >>"$BENCH_TMP/haproxy.out" 2>&1 &
  HAPROXY_PID=$!
  track_pid "$HAPROXY_PID"
}

# wait_http PORT [SECONDS=30]: until GET / answers 200 (a fresh connection every 50 ms).
# shellcheck disable=SC2016  # JavaScript
wait_http() {
  run node -e '
    const http = require("http"), port = +process.argv[1], end = Date.now() + 1000 * +process.argv[2];
    const retry = () => {
      if (Date.now() > end) { console.error(`port ${port}: no 200 in time`); process.exit(1); }
      setTimeout(once, 50);
    };
    function once() {
      const r = http.get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: 1000 }, (res) => {
        res.resume();
        if (res.statusCode === 200) process.exit(0);
        retry();
      });
      r.on("error", retry);
      r.on("timeout", () => r.destroy());
    }
    once();' "$1" "${2:-30}"
}

# run_wrk OUT_JSON WRK_ARGS... : wrk bounded by its -d plus 15 s, output parsed to JSON.
run_wrk() {
  local out=$1 d=10 a
  shift
  for a in "$@"; do [[ $a =~ ^-d([0-9]+)s$ ]] && d=${BASH_REMATCH[1]}; done
  run timeout -k 5 $((d + 15)) wrk "$@" >"$out.txt" 2>&1 || true
  node "$LIB/router-wrk.js" <"$out.txt" >"$out"
}

tree_ticks() {
  local t p
  t=$(cpu_ticks "$1")
  for p in $(children_of "$1"); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

# CPU ticks of every process below $1 (not $1 itself): a phoenix's instances and theirs.
descendant_ticks() {
  local t=0 p
  for p in $(children_of "$1"); do t=$((t + $(cpu_ticks "$p") + $(descendant_ticks "$p"))); done
  echo "$t"
}

# Idle ticks of the whole machine (all CPUs), from /proc/stat.
idle_ticks() {
  local cpu user nice system idle rest
  read -r cpu user nice system idle rest </proc/stat
  echo "$idle"
}

# PM2 into a temp dir (as footprint.sh does). Sets PM2_BIN and PM2_VERSION, or PM2_STATUS.
pm2_install() {
  PM2_STATUS="" PM2_BIN="" PM2_VERSION=""
  local dir="$BENCH_TMP/pm2"
  mkdir -p "$dir"
  if ! run timeout 150 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
         --cache "$BENCH_TMP/npm-cache" pm2 >"$BENCH_TMP/npm.log" 2>&1; then
    PM2_STATUS="npm install pm2 failed: $(tail -n 3 "$BENCH_TMP/npm.log" | tr '\n' ' ')"
    return 1
  fi
  PM2_BIN="$dir/node_modules/.bin/pm2"
  PM2_VERSION=$(node -p "require('$dir/node_modules/pm2/package.json').version")
}

# Busy share of all cores over the last SECONDS (default 1), in percent, from /proc/stat.
cpu_busy_pct() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep "${1:-1}"
  read -r -a b < <(grep '^cpu ' /proc/stat)
  awk -v u=$((b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8])) \
      -v i=$((b[4] + b[5] - a[4] - a[5])) 'BEGIN {printf "%d", (u + i) ? 100 * u / (u + i) : 0}'
}
# router_wait_quiet MAX_SECONDS [PCT=20]: waits (1 s samples) until the machine is at most PCT %
# busy with other work, for at most MAX_SECONDS. Sets QUIET_BUSY to the last sample; returns 1
# when it gave up. Other sessions build and test on the same machine; this keeps their
# compiles out of most measurements, and the tables say when it could not.
router_wait_quiet() {
  local max=$1 pct=${2:-20} i
  for ((i = 0; i < max || i == 0; i++)); do
    QUIET_BUSY=$(cpu_busy_pct 1)
    ((QUIET_BUSY <= pct)) && return 0
  done
  return 1
}

# One line for the results: which phoenix binary ran (it is rebuilt often), and the tree's HEAD.
router_binary_note() {
  local src=$1 head dirty=""
  head=$(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo "?")
  [[ -n $(git -C "$BENCH_DIR" status --porcelain -- ../src 2>/dev/null) ]] && dirty=" + uncommitted src changes"
  echo "# phoenix binary: $src, built $(date -u -r "$src" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$src" | cut -c1-12); tree at $head$dirty"
}

# for_each_run MEASURE NAME...: RUNS rounds for each wrk thread count in WRK_THREADS, each round
# in its own seeded random order (round_order, SEED), each run after the machine is quiet
# (router_wait_quiet; NOISY counts those that never were); calls `MEASURE NAME WRK_THREADS
# ROUND` for each run. Sets TOTAL to the number of runs.
for_each_run() {
  local measure=$1
  shift
  local wt r n i=0
  TOTAL=0
  for wt in $WRK_THREADS; do TOTAL=$((TOTAL + RUNS * $#)); done
  for wt in $WRK_THREADS; do
    for ((r = 0; r < RUNS; r++)); do
      mapfile -t ROUND < <(round_order "$SEED" "$wt" "$r" "$@")
      for n in "${ROUND[@]}"; do
        i=$((i + 1))
        printf '\r[%d/%d] wrk -t%s -c%s -d%ss  %-14s' "$i" "$TOTAL" "$wt" "$CONNS" "$DURATION" "$n" >&2
        router_wait_quiet "$QUIET_WAIT" || NOISY=$((NOISY + 1))
        "$measure" "$n" "$wt" "$r"
      done
    done
  done
  echo >&2
}
