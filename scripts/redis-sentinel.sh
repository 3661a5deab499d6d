#!/usr/bin/env bash
# A throw-away Redis master, its two replicas and three Sentinels on 127.0.0.1, for the failover tests.
#
#   scripts/redis-sentinel.sh start        # start (or verify) them; prints the Sentinel URL on stdout
#   scripts/redis-sentinel.sh stop         # stop every process, remove the state dir
#   scripts/redis-sentinel.sh status       # roles and what the Sentinels think; exit 1 unless healthy
#   scripts/redis-sentinel.sh url          # print the URL only
#   scripts/redis-sentinel.sh master       # print redis://host:port of the current master
#   scripts/redis-sentinel.sh failover     # SIGKILL the master and wait until the Sentinels promoted a replica
#   scripts/redis-sentinel.sh kill-master  # SIGKILL the master only
#   scripts/redis-sentinel.sh restore      # restart dead nodes as replicas of the current master
#
# The URL names the Sentinels and the master's name (`sessions`):
#   redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/sessions
# Data nodes on 6390-6392, Sentinels on 26390-26392, each the next free port when taken
# (REDIS_SENTINEL_PORTS="D1 D2 D3 S1 S2 S3" forces them). The Sentinels consider the master down
# after 2 s without an answer (down-after-milliseconds) and need 2 of 3 to agree (quorum). With
# 1 s, a busy 2-core machine sometimes let a just-promoted master miss its first PINGs: the
# Sentinels failed over a second time, from a master that was alive.
# Two replicas, not one: a store that waits for one replica to confirm each write (WAIT 1) can
# still write once a replica has been promoted, since the other follows the new master.
# No persistence: test data is throw-away; a restarted node resyncs from the current master.
# Pids, configs and logs live in ${REDIS_SENTINEL_DIR:-/tmp/smart-session-store-redis-sentinel}.
# stdout carries only URLs (`URL=$(scripts/redis-sentinel.sh start)`); progress goes to stderr.
set -euo pipefail

STATE_DIR="${REDIS_SENTINEL_DIR:-/tmp/smart-session-store-redis-sentinel}"
HOST=127.0.0.1
MASTER_NAME=sessions
DEFAULT_PORTS=(6390 6391 6392 26390 26391 26392)
DATA_NODES=(1 2 3)
SENTINELS=(1 2 3)
QUORUM=2
DOWN_AFTER_MS=2000
TIMEOUT="${REDIS_SENTINEL_TIMEOUT:-30}"
MARKER=.smart-session-store-redis-sentinel

log() { printf '[redis-sentinel] %s\n' "$*" >&2; }
die() { printf '[redis-sentinel] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

case $STATE_DIR in
"" | / | /tmp | /tmp/) die "refusing to use '$STATE_DIR' as the state dir" ;;
esac

ensure_packages() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    command -v ss >/dev/null 2>&1 || missing+=(iproute2)
    ((${#missing[@]} == 0)) && return 0
    apt_install_quietly "${missing[@]}"
}

# --- ports, paths, processes ----------------------------------------------------------------------

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }

# Six free ports (the defaults when free), written once to $STATE_DIR/ports: 3 data nodes, 3 Sentinels.
pick_ports() {
    [[ -s "$STATE_DIR/ports" ]] && return 0
    local chosen=() i p
    if [[ -n "${REDIS_SENTINEL_PORTS:-}" ]]; then
        read -r -a chosen <<<"$REDIS_SENTINEL_PORTS"
        ((${#chosen[@]} == 6)) || die "REDIS_SENTINEL_PORTS must name 6 ports (3 data nodes, 3 sentinels)"
        for p in "${chosen[@]}"; do
            [[ $p =~ ^[0-9]+$ ]] || die "invalid port '$p' in REDIS_SENTINEL_PORTS"
            port_in_use "$p" && die "port $p (REDIS_SENTINEL_PORTS) is in use"
        done
    else
        for i in 0 1 2 3 4 5; do
            p=${DEFAULT_PORTS[$i]}
            while port_in_use "$p" || [[ " ${chosen[*]} " == *" $p "* ]]; do
                ((p++))
                ((p < DEFAULT_PORTS[i] + 100)) || die "no free port near ${DEFAULT_PORTS[$i]}"
            done
            chosen+=("$p")
        done
    fi
    printf '%s\n' "${chosen[@]}" >"$STATE_DIR/ports"
}

data_port() { sed -n "$1p" "$STATE_DIR/ports" 2>/dev/null; }
sentinel_port() { sed -n "$(($1 + ${#DATA_NODES[@]}))p" "$STATE_DIR/ports" 2>/dev/null; }

url() {
    [[ -s "$STATE_DIR/ports" ]] || die "not started (no $STATE_DIR/ports): run $0 start"
    local list=() s
    for s in "${SENTINELS[@]}"; do list+=("$HOST:$(sentinel_port "$s")"); done
    local IFS=,
    echo "redis+sentinel://${list[*]}/$MASTER_NAME"
}

# A redis-cli with a hard time limit (a non-Redis service on the port would never answer).
rcli() { # port, args...
    local port=$1
    shift
    # No port yet (never started): never fall back to redis-cli's default, the machine's own server.
    [[ -n "$port" ]] || return 1
    timeout 3 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null
}

proc_dir() { echo "$STATE_DIR/$1"; } # data1, data2, sentinel1..3

# The pid a process of ours wrote, if that process is still the Redis on that port.
proc_pid() { # name, port
    local pidfile="$(proc_dir "$1")/redis.pid" pid
    [[ -s "$pidfile" ]] || return 0
    pid=$(<"$pidfile")
    rcli "$2" INFO server | tr -d '\r' | grep -qx "process_id:${pid}" && echo "$pid"
    return 0
}

pid_gone() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ -z $stat || $stat == Z* ]]
}

wait_for() { # command...
    local deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

kill_pid() { # pid, signal
    kill "-$2" "$1" 2>/dev/null || true
    wait_for pid_gone "$1" || { kill -KILL "$1" 2>/dev/null || true; }
}

data_role() { rcli "$(data_port "$1")" ROLE 2>/dev/null | head -n 1 || true; }

# "host port" the Sentinel thinks is the master, or empty.
sentinel_master() { rcli "$(sentinel_port "$1")" SENTINEL get-master-addr-by-name "$MASTER_NAME" | tr '\n' ' ' | sed 's/ $//' || true; }

master_node() {
    local n
    for n in "${DATA_NODES[@]}"; do
        [[ -n "$(proc_pid "data$n" "$(data_port "$n")")" && "$(data_role "$n")" == master ]] && { echo "$n"; return 0; }
    done
    return 0
}

other_nodes() { # every data node but $1
    local n
    for n in "${DATA_NODES[@]}"; do [[ $n != "$1" ]] && echo "$n"; done
    return 0
}

# Healthy: one master, the other nodes its replicas with the link up, and every Sentinel naming
# that master and seeing the replicas and the two other Sentinels.
healthy() {
    local master replica s
    master=$(master_node)
    [[ -n "$master" ]] || return 1
    for replica in $(other_nodes "$master"); do
        [[ -n "$(proc_pid "data$replica" "$(data_port "$replica")")" ]] || return 1
        rcli "$(data_port "$replica")" INFO replication | tr -d '\r' | grep -qx "master_port:$(data_port "$master")" || return 1
        rcli "$(data_port "$replica")" INFO replication | tr -d '\r' | grep -qx 'master_link_status:up' || return 1
    done
    for s in "${SENTINELS[@]}"; do
        [[ -n "$(proc_pid "sentinel$s" "$(sentinel_port "$s")")" ]] || return 1
        [[ "$(sentinel_master "$s")" == "$HOST $(data_port "$master")" ]] || return 1
        local info
        info=$(rcli "$(sentinel_port "$s")" SENTINEL master "$MASTER_NAME" | tr -d '\r' | paste - - | tr '\t' '=')
        grep -qx "num-slaves=$((${#DATA_NODES[@]} - 1))" <<<"$info" || return 1
        grep -qx "num-other-sentinels=$((${#SENTINELS[@]} - 1))" <<<"$info" || return 1
        grep -qx 'flags=master' <<<"$info" || return 1
    done
}

# --- starting ---------------------------------------------------------------------------------------

start_data() { # node, [master node to replicate]
    local n=$1 of=${2:-} dir
    dir=$(proc_dir "data$n")
    [[ -n "$(proc_pid "data$n" "$(data_port "$n")")" ]] && return 0
    port_in_use "$(data_port "$n")" && die "port $(data_port "$n") is taken by something that is not ours"
    mkdir -p "$dir"
    local args=(--port "$(data_port "$n")" --bind "$HOST" --save '' --appendonly no --dir "$dir"
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize yes)
    [[ -n "$of" ]] && args+=(--replicaof "$HOST" "$(data_port "$of")")
    log "data node $n on port $(data_port "$n")${of:+ (replica of node $of)}"
    rm -f "$dir/redis.pid"
    redis-server "${args[@]}" >&2
    wait_for rcli "$(data_port "$n")" PING >/dev/null || die "data node $n did not come up (log: $dir/redis.log)"
}

start_sentinel() { # sentinel, master node
    local s=$1 master=$2 dir
    dir=$(proc_dir "sentinel$s")
    [[ -n "$(proc_pid "sentinel$s" "$(sentinel_port "$s")")" ]] && return 0
    port_in_use "$(sentinel_port "$s")" && die "port $(sentinel_port "$s") is taken by something that is not ours"
    mkdir -p "$dir"
    # A Sentinel rewrites its config file with what it learns (replicas, other Sentinels, epochs): one each.
    cat >"$dir/sentinel.conf" <<EOF
port $(sentinel_port "$s")
bind $HOST
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
daemonize yes
sentinel monitor $MASTER_NAME $HOST $(data_port "$master") $QUORUM
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
# A replica left out of a failover's reconfiguration is pointed at the new master after this long.
sentinel failover-timeout $MASTER_NAME 5000
sentinel parallel-syncs $MASTER_NAME 1
EOF
    log "sentinel $s on port $(sentinel_port "$s")"
    rm -f "$dir/redis.pid"
    redis-server "$dir/sentinel.conf" --sentinel >&2
    wait_for rcli "$(sentinel_port "$s")" PING >/dev/null || die "sentinel $s did not come up (log: $dir/redis.log)"
}

cmd_start() {
    local t0=$SECONDS master n s
    ensure_packages
    if [[ -d "$STATE_DIR" ]] && [[ ! -e "$STATE_DIR/$MARKER" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
        die "$STATE_DIR exists, is not empty and was not created by this script; choose another REDIS_SENTINEL_DIR"
    fi
    mkdir -p "$STATE_DIR"
    touch "$STATE_DIR/$MARKER"
    pick_ports
    if healthy; then
        log "already running and healthy"
        url
        return 0
    fi
    master=$(master_node)
    if [[ -z "$master" ]]; then
        # No master of ours: start over (a lone replica's data is throw-away like the rest).
        cmd_stop_processes
        master=1
        start_data 1
    fi
    for n in $(other_nodes "$master"); do start_data "$n" "$master"; done
    for s in "${SENTINELS[@]}"; do start_sentinel "$s" "$master"; done
    wait_for healthy || { cmd_status >&2 || true; die "not healthy within ${TIMEOUT}s"; }
    log "up in $((SECONDS - t0))s: master on port $(data_port "$master")"
    url
}

cmd_stop_processes() {
    local n s pid
    for s in "${SENTINELS[@]}"; do
        pid=$(proc_pid "sentinel$s" "$(sentinel_port "$s")")
        [[ -n "$pid" ]] && { log "stopping sentinel $s (pid $pid)"; kill_pid "$pid" TERM; }
    done
    for n in "${DATA_NODES[@]}"; do
        pid=$(proc_pid "data$n" "$(data_port "$n")")
        [[ -n "$pid" ]] && { log "stopping data node $n (pid $pid)"; kill_pid "$pid" TERM; }
    done
    for n in "${DATA_NODES[@]}"; do rm -rf "$(proc_dir "data$n")"; done
    for s in "${SENTINELS[@]}"; do rm -rf "$(proc_dir "sentinel$s")"; done
    return 0
}

cmd_stop() {
    [[ -s "$STATE_DIR/ports" ]] && cmd_stop_processes
    if [[ -d "$STATE_DIR" ]]; then
        [[ -e "$STATE_DIR/$MARKER" ]] || die "not removing $STATE_DIR: it lacks the $MARKER marker"
        rm -rf -- "$STATE_DIR"
    fi
    log "stopped; removed $STATE_DIR"
}

cmd_status() {
    local n s
    [[ -s "$STATE_DIR/ports" ]] || { echo "not started"; return 1; }
    for n in "${DATA_NODES[@]}"; do
        printf 'data%s port=%s pid=%s role=%s\n' "$n" "$(data_port "$n")" "$(proc_pid "data$n" "$(data_port "$n")")" "$(data_role "$n")"
    done
    for s in "${SENTINELS[@]}"; do
        printf 'sentinel%s port=%s master=%s\n' "$s" "$(sentinel_port "$s")" "$(sentinel_master "$s")"
    done
    if healthy; then echo "healthy: $(url)"; else echo "NOT healthy"; return 1; fi
}

cmd_kill_master() {
    local master pid
    master=$(master_node)
    [[ -n "$master" ]] || die "no master is running"
    pid=$(proc_pid "data$master" "$(data_port "$master")")
    log "data node $master: SIGKILL (pid $pid)"
    kill_pid "$pid" KILL
}

# Every Sentinel names one of the surviving nodes as master, and that node says it is one.
promoted() { # killed node
    local s n new=""
    for n in $(other_nodes "$1"); do
        [[ "$(data_role "$n")" == master ]] && new=$n
    done
    [[ -n "$new" ]] || return 1
    for s in "${SENTINELS[@]}"; do
        [[ "$(sentinel_master "$s")" == "$HOST $(data_port "$new")" ]] || return 1
    done
}

cmd_failover() {
    local master t0=$SECONDS
    master=$(master_node)
    [[ -n "$master" ]] || die "no master is running"
    cmd_kill_master
    wait_for promoted "$master" || { cmd_status >&2 || true; die "the Sentinels did not promote a replica"; }
    master=$(master_node)
    log "data node $master is the master now (port $(data_port "$master")), after $((SECONDS - t0))s"
}

cmd_restore() {
    ensure_packages
    [[ -s "$STATE_DIR/ports" ]] || { cmd_start; return 0; }
    local master n s
    master=$(master_node)
    [[ -n "$master" ]] || { log "no master: starting over"; cmd_stop; cmd_start; return 0; }
    for n in $(other_nodes "$master"); do
        if [[ -z "$(proc_pid "data$n" "$(data_port "$n")")" ]]; then
            rm -rf "$(proc_dir "data$n")"
            start_data "$n" "$master"
        fi
    done
    for s in "${SENTINELS[@]}"; do start_sentinel "$s" "$master"; done
    wait_for healthy || { cmd_status >&2 || true; die "not healthy within ${TIMEOUT}s"; }
    log "restored: master data node $master"
    url
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) url ;;
master)
    m=$(master_node)
    [[ -n "$m" ]] || die "no master is running"
    echo "redis://$HOST:$(data_port "$m")"
    ;;
kill-master) cmd_kill_master ;;
failover) cmd_failover ;;
restore) cmd_restore ;;
*)
    echo "usage: $0 start|stop|status|url|master|failover|kill-master|restore" >&2
    exit 2
    ;;
esac
