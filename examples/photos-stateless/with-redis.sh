#!/usr/bin/env bash
# with-redis.sh CMD [ARG...]
#
# Starts a private, throw-away redis-server on a free loopback port (no persistence, in a temp
# dir), waits until it answers PING (at most 10 s), runs CMD with REDIS_URL pointing at it, then
# stops that redis (by its PID) and exits with CMD's status.
#
#   ./with-redis.sh env PORT=5001 node server.js
#   ./with-redis.sh bash -c 'PORT=5001 node server.js & ...'
#
# Exit status: CMD's, or 2 on usage error, or 1 if redis could not be started.
set -u

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARG...]   (runs CMD with REDIS_URL set to a private redis-server)" >&2
  exit 2
fi

REDIS_SERVER=${REDIS_SERVER:-redis-server}
if ! command -v "$REDIS_SERVER" >/dev/null 2>&1; then
  echo "with-redis: $REDIS_SERVER not found (install redis-server, or set REDIS_SERVER)" >&2
  exit 1
fi

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/with-redis.XXXXXX") || exit 1
redis_pid=

cleanup() {
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill -TERM "$redis_pid" 2>/dev/null
    # bounded wait for it to go (5 s), then SIGKILL
    local deadline=$((SECONDS + 5))
    while kill -0 "$redis_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
  fi
  rm -rf "$tmpdir"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# true when something accepts TCP connections on 127.0.0.1:$1
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# true when redis on 127.0.0.1:$1 answers PING with PONG
redis_pong() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 1 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
  else
    (
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf 'PING\r\n' >&3
      IFS= read -r -t 1 reply <&3 || exit 1
      [ "${reply%$'\r'}" = "+PONG" ]
    ) 2>/dev/null
  fi
}

port=
for attempt in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 40000))
  port_in_use "$candidate" && continue
  "$REDIS_SERVER" --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$tmpdir" --logfile "$tmpdir/redis.log" >/dev/null 2>&1 </dev/null &
  redis_pid=$!
  deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if redis_pong "$candidate"; then port=$candidate; break; fi
    kill -0 "$redis_pid" 2>/dev/null || break # exited (port taken meanwhile?): try another port
    sleep 0.05
  done
  [ -n "$port" ] && break
  if kill -0 "$redis_pid" 2>/dev/null; then
    echo "with-redis: redis-server (pid $redis_pid) did not answer PING on 127.0.0.1:$candidate within 10 s" >&2
    tail -n 20 "$tmpdir/redis.log" >&2 2>/dev/null
    exit 1
  fi
  wait "$redis_pid" 2>/dev/null
  redis_pid=
done
if [ -z "$port" ]; then
  echo "with-redis: could not start redis-server on a free port after 5 attempts" >&2
  tail -n 20 "$tmpdir/redis.log" >&2 2>/dev/null
  exit 1
fi

export REDIS_URL="redis://127.0.0.1:$port"
echo "with-redis: redis-server pid $redis_pid on $REDIS_URL" >&2

"$@"
status=$?
exit "$status"
