#!/usr/bin/env bash
# A throw-away PostgreSQL 15 primary with a streaming standby on 127.0.0.1, for the failover tests.
#
#   scripts/postgres-replica.sh start       # start (or verify) the pair; prints the multi-host URL on stdout
#   scripts/postgres-replica.sh stop        # stop both servers, remove the state dir
#   scripts/postgres-replica.sh status      # role and replication state of each node; exit 1 unless healthy
#   scripts/postgres-replica.sh url         # print the URL only
#   scripts/postgres-replica.sh primary     # print the URL of the node that accepts writes now
#   scripts/postgres-replica.sh failover    # SIGKILL the primary and promote the standby
#   scripts/postgres-replica.sh kill-primary  # SIGKILL the primary only (a crash; nothing is promoted)
#   scripts/postgres-replica.sh promote     # promote the standby (after kill-primary)
#   scripts/postgres-replica.sh restore     # a fresh standby of the current primary where the dead node was;
#                                           # synchronous replication back on (unless POSTGRES_REPLICA_SYNC=off)
#   scripts/postgres-replica.sh sync on|off # synchronous replication on the primary, or asynchronous
#
# Two nodes, each a datadir of its own made by initdb (node 1) and pg_basebackup (node 2), on free
# loopback ports: 5442 and 5443 unless taken (POSTGRES_REPLICA_PORTS="P1 P2" forces them). The
# URL names both, with libpq's meaning: the client uses the one that accepts writes,
#   postgres://postgres@127.0.0.1:5442,127.0.0.1:5443/test?target_session_attrs=read-write
# Which node is the primary changes with failover; the URL does not.
#
# Synchronous replication is on by default (synchronous_standby_names = '*', synchronous_commit =
# on): a commit is acknowledged once the standby has flushed it, so promoting the standby loses
# no acknowledged write. POSTGRES_REPLICA_SYNC=off at start (or `sync off`) makes it asynchronous.
# A promoted standby has no standby of its own yet: it runs without a synchronous standby (else
# every commit would wait forever) until `restore` gives it one.
#
# It never touches the machine's own PostgreSQL on 5432: both servers run from their own datadirs
# under ${POSTGRES_REPLICA_DIR:-/tmp/smart-session-store-postgres-replica}, as user postgres.
# stdout carries only URLs (`URL=$(scripts/postgres-replica.sh start)`); progress goes to stderr.
set -euo pipefail

STATE_DIR="${POSTGRES_REPLICA_DIR:-/tmp/smart-session-store-postgres-replica}"
HOST=127.0.0.1
DEFAULT_PORTS=(5442 5443)
DB=test
DB_USER=postgres
RUN_AS=postgres
NODES=(1 2)
TIMEOUT="${POSTGRES_REPLICA_TIMEOUT:-60}"
# A marker file proves the state dir was made by this script, so `stop` never removes another one.
MARKER=.smart-session-store-postgres-replica

log() { printf '[postgres-replica] %s\n' "$*" >&2; }
die() { printf '[postgres-replica] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

case $STATE_DIR in
"" | / | /tmp | /tmp/) die "refusing to use '$STATE_DIR' as the state dir" ;;
esac

# --- packages ---------------------------------------------------------------------------------

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/pg_basebackup" ]] && { echo "$dir"; return 0; }
    done
    return 0
}

ensure_packages() {
    local missing=()
    [[ -n "$(pg_bindir)" ]] || missing+=(postgresql-15)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    command -v ss >/dev/null 2>&1 || missing+=(iproute2)
    command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
    ((${#missing[@]} == 0)) && return 0
    apt_install_quietly "${missing[@]}"
}

# --- paths and ports --------------------------------------------------------------------------

node_dir() { echo "$STATE_DIR/node$1"; }
node_data() { echo "$STATE_DIR/node$1/data"; }
node_log() { echo "$STATE_DIR/node$1/postgres.log"; }
node_port() { sed -n "$1p" "$STATE_DIR/ports" 2>/dev/null; }

url() {
    [[ -s "$STATE_DIR/ports" ]] || die "not started (no $STATE_DIR/ports): run $0 start"
    echo "postgres://${DB_USER}@${HOST}:$(node_port 1),${HOST}:$(node_port 2)/${DB}?target_session_attrs=read-write"
}
node_url() {
    [[ -s "$STATE_DIR/ports" ]] || die "not started (no $STATE_DIR/ports): run $0 start"
    echo "postgres://${DB_USER}@${HOST}:$(node_port "$1")/${DB}"
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }

# Two free ports (5442 and 5443 if free, else the next ones), written once to $STATE_DIR/ports.
pick_ports() {
    [[ -s "$STATE_DIR/ports" ]] && return 0
    local chosen=() p
    if [[ -n "${POSTGRES_REPLICA_PORTS:-}" ]]; then
        read -r -a chosen <<<"$POSTGRES_REPLICA_PORTS"
        ((${#chosen[@]} == 2)) || die "POSTGRES_REPLICA_PORTS must name two ports, got '$POSTGRES_REPLICA_PORTS'"
        for p in "${chosen[@]}"; do
            [[ $p =~ ^[0-9]+$ ]] || die "invalid port '$p' in POSTGRES_REPLICA_PORTS"
            port_in_use "$p" && die "port $p (POSTGRES_REPLICA_PORTS) is in use"
        done
    else
        for ((p = DEFAULT_PORTS[0]; p < DEFAULT_PORTS[0] + 100 && ${#chosen[@]} < 2; p++)); do
            port_in_use "$p" || chosen+=("$p")
        done
        ((${#chosen[@]} == 2)) || die "no two free ports in ${DEFAULT_PORTS[0]}..$((DEFAULT_PORTS[0] + 99))"
    fi
    printf '%s\n' "${chosen[@]}" >"$STATE_DIR/ports"
}

# --- running as postgres ----------------------------------------------------------------------

# The server refuses to run as root; every server-side command runs as user postgres.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups "$@"
    else
        "$@"
    fi
}

pg_tool() { local tool=$1; shift; as_pg "$(pg_bindir)/$tool" "$@"; }

# -X: ignore ~/.psqlrc; PGCONNECT_TIMEOUT: fail fast on a dead port.
psql_node() { # node, psql args...
    local n=$1
    shift
    # No port yet (never started): never fall back to psql's default, the machine's own server.
    [[ -n "$(node_port "$n")" ]] || return 1
    PGCONNECT_TIMEOUT=3 psql -X -q -w -h "$HOST" -p "$(node_port "$n")" -U "$DB_USER" -d postgres -tA "$@"
}

# PID of node N's postmaster, or empty: the first line of postmaster.pid, trusted only if that
# process is a postgres whose datadir is this node's (pids get reused).
node_pid() {
    local n=$1 pid cmd
    pid=$(head -n 1 "$(node_data "$n")/postmaster.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
    [[ "$cmd" == *postgres*"$(node_data "$n")"* ]] && echo "$pid"
    return 0
}
node_alive() { [[ -n "$(node_pid "$1")" ]]; }

# "primary", "standby", or empty when the node does not answer.
node_role() {
    local answer
    answer=$(psql_node "$1" -c 'SELECT pg_is_in_recovery()' 2>/dev/null) || return 0
    case $answer in
    f) echo primary ;;
    t) echo standby ;;
    esac
    return 0
}

# The node that is the primary. Two primaries happen when a killed primary is started again on
# its old datadir after its standby was promoted: the promoted one is on a later timeline (each
# promotion starts one), and the other's data is stale; `start` and `restore` rebuild it.
primary_node() {
    local n best="" best_timeline=-1 timeline
    for n in "${NODES[@]}"; do
        [[ "$(node_role "$n")" == primary ]] || continue
        timeline=$(psql_node "$n" -c 'SELECT timeline_id FROM pg_control_checkpoint()' 2>/dev/null || echo 0)
        [[ $timeline =~ ^[0-9]+$ ]] || timeline=0
        if ((timeline > best_timeline)); then best=$n best_timeline=$timeline; fi
    done
    echo "$best"
}

other_node() { (($1 == 1)) && echo 2 || echo 1; }

# The standby streams from the primary (and, with sync on, is its synchronous standby).
replication_state() { # primary node -> "streaming sync" / "streaming async" / empty
    psql_node "$1" -F ' ' -c "SELECT state, sync_state FROM pg_stat_replication LIMIT 1" 2>/dev/null || true
}

healthy() {
    local primary standby want=async
    primary=$(primary_node)
    [[ -n "$primary" ]] || return 1
    standby=$(other_node "$primary")
    [[ "$(node_role "$standby")" == standby ]] || return 1
    [[ "$(sync_names "$primary")" != "" ]] && want=sync
    [[ "$(replication_state "$primary")" == "streaming $want" ]]
}

sync_names() { psql_node "$1" -c 'SHOW synchronous_standby_names' 2>/dev/null || true; }

wait_for() { # description, command...
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# --- configuration ------------------------------------------------------------------------------

# Written on every start of a node, for its role: the settings that make the pair, nothing else.
write_config() { # node, role (primary|standby), synchronous (on|off; a primary's)
    local n=$1 role=$2 sync=${3:-off} data names="''"
    data=$(node_data "$n")
    if [[ $role == primary && $sync == on ]]; then names="'*'"; fi
    cat >"$data/postgresql.conf" <<EOF
# Generated by scripts/postgres-replica.sh - node $n ($role). Rewritten on every start.
listen_addresses = '$HOST'
port = $(node_port "$n")
unix_socket_directories = '$(node_dir "$n")'
max_connections = 100
shared_buffers = 32MB
# Replication: the standby streams the WAL and can be promoted.
wal_level = replica
max_wal_senders = 5
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
# A commit waits until the standby has flushed it ('*': whichever standby is connected).
synchronous_standby_names = $names
synchronous_commit = on
# Durable on each node (a killed primary's acknowledged commits are on its disk too).
fsync = on
logging_collector = off
log_min_messages = warning
EOF
    cat >"$data/pg_hba.conf" <<EOF
# Generated by scripts/postgres-replica.sh: trust on loopback only (test servers).
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
local replication all trust
EOF
    if [[ $role == standby ]]; then
        touch "$data/standby.signal"
        # The standby follows whichever node is the primary now; application_name names it in pg_stat_replication.
        echo "primary_conninfo = 'host=$HOST port=$(node_port "$(other_node "$n")") user=$DB_USER application_name=node$n'" \
            >"$data/postgresql.auto.conf"
    else
        rm -f "$data/standby.signal"
        : >"$data/postgresql.auto.conf"
    fi
    [[ $EUID -eq 0 ]] && chown "$RUN_AS:$RUN_AS" "$data/postgresql.conf" "$data/pg_hba.conf" "$data/postgresql.auto.conf"
    return 0
}

start_node() { # node
    local n=$1
    node_alive "$n" && return 0
    port_in_use "$(node_port "$n")" && die "node$n: port $(node_port "$n") is in use by another process"
    # A killed postmaster leaves its pid file and socket lock behind; while it is an unreaped zombie
    # (a container's PID 1 may reap lazily) the new server would take it for a live one and refuse.
    rm -f "$(node_data "$n")/postmaster.pid" "$(node_dir "$n")/.s.PGSQL.$(node_port "$n")" "$(node_dir "$n")/.s.PGSQL.$(node_port "$n").lock"
    # -w: wait until it accepts connections (a standby does once it reached consistency).
    # setsid via pg_ctl's own daemonizing; stdio redirected so `$(… start)` does not wait on it.
    pg_tool pg_ctl -D "$(node_data "$n")" -l "$(node_log "$n")" -w -t "$TIMEOUT" start </dev/null >/dev/null 2>&1 ||
        { tail -n 20 "$(node_log "$n")" >&2; die "node$n did not start (log: $(node_log "$n"))"; }
}

# True once the process has exited; a zombie counts as exited (its sockets are closed, and a
# container's PID 1 may reap orphans lazily).
pid_gone() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ -z $stat || $stat == Z* ]]
}

children_gone() { # pids...
    local pid
    for pid in "$@"; do pid_gone "$pid" || return 1; done
}

# SIGKILL to the postmaster and its children at once, as a crash of the machine: a backend of a
# killed postmaster would otherwise go on serving its client until it noticed.
kill_node() { # node
    local n=$1 pid children
    pid=$(node_pid "$n")
    [[ -n "$pid" ]] || { log "node$n: not running"; return 0; }
    # Children by parent pid, never by name.
    read -r -a children <<<"$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)"
    log "node$n: SIGKILL (pid $pid and its ${#children[@]} children)"
    kill -KILL "$pid" "${children[@]}" 2>/dev/null || true
    wait_for "node$n to exit" children_gone "$pid" "${children[@]}" || log "node$n: processes still there after ${TIMEOUT}s"
}

stop_node() { # node: fast shutdown
    local n=$1
    node_alive "$n" || return 0
    log "node$n: stopping"
    pg_tool pg_ctl -D "$(node_data "$n")" -m fast -w -t "$TIMEOUT" stop >/dev/null 2>&1 || kill_node "$n"
}

init_primary() { # node
    local n=$1
    log "node$n: initdb"
    mkdir -p "$(node_dir "$n")"
    [[ $EUID -eq 0 ]] && chown "$RUN_AS:$RUN_AS" "$(node_dir "$n")"
    pg_tool initdb -D "$(node_data "$n")" -U "$DB_USER" --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$(node_dir "$n")/initdb.log" 2>&1 || { tail -n 20 "$(node_dir "$n")/initdb.log" >&2; die "initdb failed"; }
    write_config "$n" primary off
    start_node "$n"
    psql_node "$n" -c "CREATE DATABASE $DB" >/dev/null
}

# A new standby of `primary` in node N's place: its datadir copied by pg_basebackup.
init_standby() { # node, primary node
    local n=$1 primary=$2
    log "node$n: pg_basebackup from node$primary"
    rm -rf "$(node_dir "$n")"
    mkdir -p "$(node_dir "$n")"
    [[ $EUID -eq 0 ]] && chown "$RUN_AS:$RUN_AS" "$(node_dir "$n")"
    # -X stream: the WAL written during the copy comes with it; -c fast: an immediate checkpoint.
    pg_tool pg_basebackup -h "$HOST" -p "$(node_port "$primary")" -U "$DB_USER" -D "$(node_data "$n")" \
        -X stream -c fast >"$(node_dir "$n")/basebackup.log" 2>&1 ||
        { tail -n 20 "$(node_dir "$n")/basebackup.log" >&2; die "pg_basebackup failed"; }
    write_config "$n" standby
    start_node "$n"
}

# Synchronous replication on the primary, on or off, without a restart.
set_sync() { # primary node, on|off
    local names="''"
    if [[ $2 == on ]]; then names="'*'"; fi
    psql_node "$1" -c "ALTER SYSTEM SET synchronous_standby_names = $names" -c 'SELECT pg_reload_conf()' >/dev/null
}

# --- commands -----------------------------------------------------------------------------------

cmd_start() {
    local t0=$SECONDS
    ensure_packages
    [[ -n "$(pg_bindir)" ]] || die "PostgreSQL's initdb/pg_ctl/pg_basebackup not found"
    if [[ -d "$STATE_DIR" ]] && [[ ! -e "$STATE_DIR/$MARKER" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
        die "$STATE_DIR exists, is not empty and was not created by this script; choose another POSTGRES_REPLICA_DIR"
    fi
    mkdir -p "$STATE_DIR"
    touch "$STATE_DIR/$MARKER"
    [[ $EUID -eq 0 ]] && chown "$RUN_AS:$RUN_AS" "$STATE_DIR"
    pick_ports
    if healthy; then
        log "already running and healthy"
        url
        return 0
    fi
    local n primary
    # Bring back whatever exists: a node with a datadir is started in the role it had.
    for n in "${NODES[@]}"; do
        [[ -f "$(node_data "$n")/PG_VERSION" ]] && start_node "$n"
    done
    primary=$(primary_node)
    if [[ -z "$primary" ]]; then
        # Nothing usable (fresh state dir, or only a standby left): start over.
        for n in "${NODES[@]}"; do stop_node "$n"; rm -rf "$(node_dir "$n")"; done
        init_primary 1
        primary=1
    fi
    if [[ "$(node_role "$(other_node "$primary")")" != standby ]]; then
        # Down, or a stale primary started on its old datadir (its standby was promoted meanwhile).
        kill_node "$(other_node "$primary")"
        init_standby "$(other_node "$primary")" "$primary"
    fi
    set_sync "$primary" "$([[ "${POSTGRES_REPLICA_SYNC:-on}" == off ]] && echo off || echo on)"
    wait_for "replication" healthy || { cmd_status >&2 || true; die "the standby does not stream from node$primary"; }
    log "up in $((SECONDS - t0))s: primary node$primary on port $(node_port "$primary"), standby on port $(node_port "$(other_node "$primary")")"
    url
}

cmd_stop() {
    local n
    for n in "${NODES[@]}"; do
        [[ -d "$(node_dir "$n")" ]] && stop_node "$n"
    done
    if [[ -d "$STATE_DIR" ]]; then
        [[ -e "$STATE_DIR/$MARKER" ]] || die "not removing $STATE_DIR: it lacks the $MARKER marker"
        rm -rf -- "$STATE_DIR"
    fi
    log "stopped; removed $STATE_DIR"
}

cmd_status() {
    local n role ok=1 primary
    [[ -s "$STATE_DIR/ports" ]] || { echo "not started"; return 1; }
    for n in "${NODES[@]}"; do
        role=$(node_role "$n")
        printf 'node%s port=%s pid=%s role=%s\n' "$n" "$(node_port "$n")" "$(node_pid "$n")" "${role:-down}"
    done
    primary=$(primary_node)
    if [[ -n "$primary" ]]; then
        printf 'replication from node%s: %s (synchronous_standby_names=%s)\n' "$primary" \
            "$(replication_state "$primary" | tr '\n' ' ')" "$(sync_names "$primary")"
    fi
    healthy || ok=0
    if ((ok)); then echo "healthy: $(url)"; else echo "NOT healthy"; return 1; fi
}

cmd_kill_primary() {
    local primary
    primary=$(primary_node)
    [[ -n "$primary" ]] || die "no primary is running"
    kill_node "$primary"
    echo "$primary"
}

cmd_promote() {
    local n standby=""
    for n in "${NODES[@]}"; do
        [[ "$(node_role "$n")" == standby ]] && standby=$n
    done
    [[ -n "$standby" ]] || die "no standby is running"
    # No standby behind the new primary yet: asynchronous until `restore`, or every commit would wait.
    # Written before the promotion, so no commit on the new primary ever waits for a standby.
    write_config "$standby" primary off
    touch "$(node_data "$standby")/standby.signal" # a standby until promoted
    pg_tool pg_ctl -D "$(node_data "$standby")" reload >/dev/null
    log "node$standby: promoting"
    pg_tool pg_ctl -D "$(node_data "$standby")" -w -t "$TIMEOUT" promote >/dev/null ||
        die "node$standby: promotion failed (log: $(node_log "$standby"))"
    set_sync "$standby" off
    wait_for "promotion" test "$(node_role "$standby")" = primary || die "node$standby did not become primary"
    log "node$standby is the primary now (port $(node_port "$standby"))"
}

cmd_restore() {
    ensure_packages
    [[ -s "$STATE_DIR/ports" ]] || { cmd_start; return 0; }
    local primary dead
    primary=$(primary_node)
    [[ -n "$primary" ]] || { log "no primary: starting over"; cmd_stop; cmd_start; return 0; }
    dead=$(other_node "$primary")
    if [[ "$(node_role "$dead")" != standby ]]; then
        kill_node "$dead"
        init_standby "$dead" "$primary"
    fi
    set_sync "$primary" "$([[ "${POSTGRES_REPLICA_SYNC:-on}" == off ]] && echo off || echo on)"
    wait_for "replication" healthy || { cmd_status >&2 || true; die "the standby does not stream from node$primary"; }
    log "restored: primary node$primary, standby node$dead"
    url
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) url ;;
primary)
    p=$(primary_node)
    [[ -n "$p" ]] || die "no primary is running"
    node_url "$p"
    ;;
kill-primary) cmd_kill_primary >/dev/null ;;
promote) cmd_promote ;;
failover)
    cmd_kill_primary >/dev/null
    cmd_promote
    ;;
restore) cmd_restore ;;
sync)
    [[ "${2:-}" == on || "${2:-}" == off ]] || die "usage: $0 sync on|off"
    p=$(primary_node)
    [[ -n "$p" ]] || die "no primary is running"
    set_sync "$p" "$2"
    log "synchronous replication $2 on node$p"
    ;;
*)
    echo "usage: $0 start|stop|status|url|primary|failover|kill-primary|promote|restore|sync on|off" >&2
    exit 2
    ;;
esac
