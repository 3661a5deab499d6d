#!/usr/bin/env bash
# A throwaway 3-master Redis Cluster on loopback, for the Redis Cluster tests.
#
#   scripts/redis-cluster.sh start    # prints the seed URL list on stdout, e.g.
#                                     #   redis://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102
#   scripts/redis-cluster.sh status   # same output; exits non-zero unless healthy
#   scripts/redis-cluster.sh stop     # shuts the nodes down and removes the state dir
#
# Environment:
#   REDIS_CLUSTER_PORTS    ports of the masters        (default "7100 7101 7102")
#   REDIS_CLUSTER_DIR      state dir (one dir per node) (default /tmp/smart-session-store-redis-cluster)
#   REDIS_CLUSTER_TIMEOUT  seconds to wait for health   (default 30)
#
# Only the seed URL list goes to stdout so callers can write
#   REDIS_CLUSTER_URL=$(scripts/redis-cluster.sh start)
# everything else (progress, redis-cli chatter, errors) goes to stderr.

set -euo pipefail

HOST=127.0.0.1
read -r -a PORTS <<<"${REDIS_CLUSTER_PORTS:-7100 7101 7102}"
STATE_DIR=${REDIS_CLUSTER_DIR:-/tmp/smart-session-store-redis-cluster}
TIMEOUT=${REDIS_CLUSTER_TIMEOUT:-30}
# A marker file proves a directory was created by this script, so `stop`
# never removes a directory someone pointed REDIS_CLUSTER_DIR at by mistake.
MARKER=.smart-session-store-redis-cluster

log() { printf '%s\n' "redis-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v redis-server >/dev/null || die "redis-server not found on PATH"
command -v redis-cli >/dev/null || die "redis-cli not found on PATH"
[ "${#PORTS[@]}" -ge 3 ] || die "a cluster needs at least 3 masters; REDIS_CLUSTER_PORTS='${PORTS[*]}'"
for port in "${PORTS[@]}"; do
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 55535 ] ||
    # Redis also binds port+10000 for the cluster bus, hence the upper bound.
    die "invalid port '$port' in REDIS_CLUSTER_PORTS"
done
case $STATE_DIR in
  "" | / | /tmp | /tmp/) die "refusing to use '$STATE_DIR' as the state dir" ;;
esac

# redis-cli with a hard time limit: a non-Redis service on the port would
# otherwise leave it waiting for a reply forever.
rcli() { # rcli PORT ARGS...
  local port=$1
  shift
  timeout 3 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null
}

# True if anything accepts TCP connections on the port (bash's /dev/tcp, so
# no dependency on nc/ss; the subshell closes the socket again).
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

node_dir() { printf '%s/%s' "$STATE_DIR" "$1"; }

# A process on the port is "ours" only if it is a Redis whose process id is
# the one in the pid file our own start wrote. This tells our nodes apart from
# any other Redis (e.g. a developer's own cluster on the same ports), which we
# must neither reuse nor shut down.
is_ours() { # is_ours PORT
  local pidfile pid info
  pidfile="$(node_dir "$1")/redis.pid"
  [ -s "$pidfile" ] || return 1
  pid=$(<"$pidfile")
  info=$(rcli "$1" INFO server | tr -d '\r') || return 1
  grep -qx "process_id:${pid}" <<<"$info"
}

# A named field of `CLUSTER INFO` (CRLF-terminated lines), empty if unreachable.
cluster_field() { # cluster_field PORT FIELD
  rcli "$1" CLUSTER INFO | tr -d '\r' | sed -n "s/^$2://p"
}

# Healthy: every node is ours, reports cluster_state:ok, knows all the other
# masters and sees all 16384 slots served. Checking known_nodes as well as
# the state catches the moment after `--cluster create` when a node has its
# slots but has not yet learned about every peer, which would make a client's
# first topology discovery see a partial cluster.
node_healthy() { # node_healthy PORT
  is_ours "$1" &&
    [ "$(cluster_field "$1" cluster_state)" = ok ] &&
    [ "$(cluster_field "$1" cluster_known_nodes)" = "${#PORTS[@]}" ] &&
    [ "$(cluster_field "$1" cluster_slots_ok)" = 16384 ]
}

all_healthy() {
  local port
  for port in "${PORTS[@]}"; do node_healthy "$port" || return 1; done
}

seed_url() {
  local IFS=,
  local seeds=()
  local port
  for port in "${PORTS[@]}"; do seeds+=("$HOST:$port"); done
  printf 'redis://%s\n' "${seeds[*]}"
}

# Polls a condition until it holds or TIMEOUT seconds have passed.
wait_for() { # wait_for COMMAND...
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

start_node() { # start_node PORT
  local port=$1 dir
  dir=$(node_dir "$port")
  mkdir -p "$dir"
  # No persistence (--save '' --appendonly no): test data is throwaway, and a
  # restart after `stop` must come up empty. nodes-<port>.conf (cluster
  # membership) lives in the node's own dir, so nodes never share the file.
  redis-server --port "$port" \
    --cluster-enabled yes \
    --cluster-config-file "nodes-$port.conf" \
    --save '' --appendonly no \
    --bind "$HOST" \
    --dir "$dir" \
    --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" \
    --daemonize yes >&2
}

cmd_start() {
  local port missing=() fresh=() formed=0
  # Claim the state dir only if it is new or empty (or already ours), so a
  # REDIS_CLUSTER_DIR pointing at real data can never be removed by `stop`.
  if [ -d "$STATE_DIR" ] && [ ! -e "$STATE_DIR/$MARKER" ] &&
    [ -n "$(ls -A "$STATE_DIR")" ]; then
    die "$STATE_DIR exists, is not empty and was not created by this script; choose another REDIS_CLUSTER_DIR"
  fi
  mkdir -p "$STATE_DIR"
  touch "$STATE_DIR/$MARKER"

  # Refuse before starting anything, so a port clash leaves nothing half-up.
  # The cluster bus port (port+10000) must be free too, or redis-server exits.
  for port in "${PORTS[@]}"; do
    if is_ours "$port"; then continue; fi
    if port_open "$port"; then
      die "port $port on $HOST is taken by something that is not this cluster (state dir $STATE_DIR); free it or choose other ports with REDIS_CLUSTER_PORTS"
    fi
    if port_open $((port + 10000)); then
      die "cluster bus port $((port + 10000)) on $HOST (port $port + 10000) is taken; free it or choose other ports with REDIS_CLUSTER_PORTS"
    fi
    missing+=("$port")
  done

  for port in "${missing[@]}"; do
    log "starting node on $HOST:$port"
    start_node "$port"
  done
  for port in "${missing[@]}"; do
    wait_for is_ours "$port" ||
      die "node on port $port did not come up within ${TIMEOUT}s; see $(node_dir "$port")/redis.log"
  done

  if all_healthy; then
    seed_url
    return 0
  fi

  # Create the cluster only if no node has joined one yet: re-running
  # `--cluster create` on nodes that already hold slots fails, and a node
  # restarted on its own nodes-<port>.conf rejoins its cluster by itself.
  for port in "${PORTS[@]}"; do
    if [ "$(cluster_field "$port" cluster_known_nodes)" = 1 ] &&
      [ "$(cluster_field "$port" cluster_slots_assigned)" = 0 ]; then
      fresh+=("$port")
    else
      formed=1
    fi
  done
  if [ "$formed" = 0 ]; then
    local addrs=()
    for port in "${PORTS[@]}"; do addrs+=("$HOST:$port"); done
    log "creating the cluster from ${addrs[*]}"
    # --cluster-yes answers the "accept this slot layout?" prompt.
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >&2 ||
      die "redis-cli --cluster create failed"
  elif [ "${#fresh[@]}" -gt 0 ]; then
    die "nodes ${fresh[*]} are empty while the others already form a cluster; run '$0 stop' then '$0 start'"
  fi

  wait_for all_healthy || {
    for port in "${PORTS[@]}"; do
      log "node $port: state=$(cluster_field "$port" cluster_state) known_nodes=$(cluster_field "$port" cluster_known_nodes) slots_ok=$(cluster_field "$port" cluster_slots_ok)"
    done
    die "cluster not healthy within ${TIMEOUT}s; run '$0 stop' then '$0 start'"
  }
  seed_url
}

# True once the process has exited. A zombie counts as exited: its sockets
# are closed already, and in containers whose PID 1 reaps orphans lazily a
# daemonized redis-server can stay a zombie for a second or more, which
# `kill -0` would report as still alive.
pid_gone() { # pid_gone PID
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ -z $stat || $stat == Z* ]]
}

cmd_stop() {
  local port pid pidfile
  for port in "${PORTS[@]}"; do
    pidfile="$(node_dir "$port")/redis.pid"
    if is_ours "$port"; then
      pid=$(<"$pidfile")
      log "stopping node on $HOST:$port (pid $pid)"
      # NOSAVE: nothing is worth keeping, and it skips any RDB write.
      rcli "$port" SHUTDOWN NOSAVE >/dev/null || true
      # SHUTDOWN replies by closing the connection, possibly before the
      # process has exited; wait for the exact pid we started (never a name
      # match) so an immediate `start` does not find the port still bound.
      wait_for pid_gone "$pid" || {
        log "node $port (pid $pid) ignored SHUTDOWN; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
      }
    elif port_open "$port"; then
      log "leaving port $port alone: it is not served by this cluster"
    fi
  done
  # Remove the state dir only if this script created it (marker file).
  if [ -d "$STATE_DIR" ]; then
    if [ -e "$STATE_DIR/$MARKER" ]; then
      rm -rf -- "$STATE_DIR"
    else
      die "not removing $STATE_DIR: it lacks the $MARKER marker, so this script did not create it"
    fi
  fi
}

cmd_status() {
  local port ok=0
  for port in "${PORTS[@]}"; do
    if ! is_ours "$port"; then
      log "node $port: not running (as part of this cluster)"
      ok=1
    elif node_healthy "$port"; then
      log "node $port: ok"
    else
      log "node $port: state=$(cluster_field "$port" cluster_state) known_nodes=$(cluster_field "$port" cluster_known_nodes) slots_ok=$(cluster_field "$port" cluster_slots_ok)"
      ok=1
    fi
  done
  [ "$ok" = 0 ] || return 1
  seed_url
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
