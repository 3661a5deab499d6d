#!/usr/bin/env bash
# A throw-away 3-node MariaDB Galera cluster on 127.0.0.1, for the tests.
#
#   scripts/galera.sh start          # start (or verify) all 3 nodes; prints the URL on stdout
#   scripts/galera.sh stop           # clean shutdown of all nodes, removes the state dir
#   scripts/galera.sh status         # per-node wsrep state; exit 1 unless all 3 are Synced
#   scripts/galera.sh stop-node N    # clean shutdown of node N (1..3), the others stay up
#   scripts/galera.sh kill-node N    # SIGKILL node N (crash simulation)
#   scripts/galera.sh start-node N   # (re)start node N; it rejoins via IST (or SST)
#   scripts/galera.sh force-primary  # after losing quorum: make the most advanced node Primary
#   scripts/galera.sh url            # print the URL only
#
# Node N listens on:  SQL 331N, group communication 45N7 (4567/4577/4587),
#                     IST 45N8 (4568/4578/4588), rsync SST 45N9 (4569/4579/4589).
# State (config, datadir, socket, logs) lives in ${GALERA_DIR:-/tmp/smart-session-store-galera}.
# It never touches the machine's own MariaDB on 3306: every mariadbd here is started with
# --defaults-file, so /etc/mysql is not read at all.
#
# stdout carries only the URL (so `URL=$(scripts/galera.sh start)` works); progress goes to stderr.
set -euo pipefail

STATE_DIR="${GALERA_DIR:-/tmp/smart-session-store-galera}"
HOST=127.0.0.1
NODES=(1 2 3)
CLUSTER_NAME=smart-session-store
START_TIMEOUT="${GALERA_START_TIMEOUT:-240}" # seconds per node (SST of a fresh datadir takes a few)
STOP_TIMEOUT="${GALERA_STOP_TIMEOUT:-120}"
URL="mysql://root@${HOST}:3311,${HOST}:3312,${HOST}:3313/test"

log() { printf '[galera] %s\n' "$*" >&2; }
die() { printf '[galera] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

# --- ports and paths ------------------------------------------------------------------------

sql_port()   { echo $((3310 + $1)); }
gcomm_port() { echo $((4557 + 10 * $1)); }   # 4567, 4577, 4587
ist_port()   { echo $((4558 + 10 * $1)); }   # 4568, 4578, 4588
sst_port()   { echo $((4559 + 10 * $1)); }   # 4569, 4579, 4589 (rsync daemon of a joiner)

node_dir()  { echo "$STATE_DIR/node$1"; }
node_cnf()  { echo "$STATE_DIR/node$1/my.cnf"; }
node_data() { echo "$STATE_DIR/node$1/data"; }
node_sock() { echo "$STATE_DIR/node$1/mariadbd.sock"; }
node_pidf() { echo "$STATE_DIR/node$1/mariadbd.pid"; }     # written by us at launch
node_log()  { echo "$STATE_DIR/node$1/error.log"; }

check_node_arg() {
    [[ "${1:-}" =~ ^[123]$ ]] || die "node number must be 1, 2 or 3 (got '${1:-}')"
}

# --- packages ---------------------------------------------------------------------------------

# Everything the nodes need: the server, the client (for our checks), the Galera provider,
# rsync (SST method) and ss/ps, which wsrep_sst_rsync uses to watch its rsync daemon.
ensure_packages() {
    local missing=()
    command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
    dpkg -s galera-4 >/dev/null 2>&1 || missing+=(galera-4)
    command -v rsync >/dev/null 2>&1 || missing+=(rsync)
    command -v ss >/dev/null 2>&1 || command -v lsof >/dev/null 2>&1 || missing+=(iproute2)
    command -v ps >/dev/null 2>&1 || missing+=(procps)
    ((${#missing[@]} == 0)) && return 0

    apt_install_quietly "${missing[@]}"
}

# The provider path differs between packagings; find it instead of assuming.
find_provider() {
    local p
    for p in /usr/lib/galera/libgalera_smm.so /usr/lib/libgalera_smm.so \
        /usr/lib/galera-4/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so \
        /usr/lib64/galera/libgalera_smm.so; do
        [[ -f "$p" ]] && { echo "$p"; return 0; }
    done
    p=$(dpkg -L galera-4 2>/dev/null | grep -m1 '/libgalera_smm\.so$' || true)
    [[ -n "$p" && -f "$p" ]] && { echo "$p"; return 0; }
    die "libgalera_smm.so not found (is galera-4 installed?)"
}

mysql_client() { command -v mariadb || command -v mysql; }

# Admin queries go over the node's own unix socket as root (works before the TCP root
# accounts exist and does not depend on them). --no-defaults: ignore /etc/mysql client config.
node_sql() {
    local n=$1
    shift
    "$(mysql_client)" --no-defaults --protocol=socket --socket="$(node_sock "$n")" \
        -uroot --connect-timeout=3 -N -B "$@"
}

# The way the tests connect: TCP to 127.0.0.1, user root, empty password.
node_sql_tcp() {
    local n=$1
    shift
    "$(mysql_client)" --no-defaults --protocol=tcp -h "$HOST" -P "$(sql_port "$n")" \
        -uroot --connect-timeout=3 -N -B "$@"
}

wsrep_status() { # node name  -> value of a SHOW STATUS variable (empty if unreachable)
    node_sql "$1" -e "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{print $2}' || true
}

# --- process handling --------------------------------------------------------------------------

# PID of node N's mariadbd, or empty. We trust the pid file only if that process really is a
# mariadbd started with this node's config (pids get reused; the state dir may be stale).
node_pid() {
    local n=$1 pid cmd
    [[ -f "$(node_pidf "$n")" ]] || return 0
    pid=$(cat "$(node_pidf "$n")" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ "$cmd" == *mariadbd*"--defaults-file=$(node_cnf "$n")"* ]] && echo "$pid"
    return 0
}
node_alive() { [[ -n "$(node_pid "$1")" ]]; }

others_alive() { # is any node other than $1 running?
    local m
    for m in "${NODES[@]}"; do
        [[ $m != "$1" ]] && node_alive "$m" && return 0
    done
    return 1
}

# Healthy = running, answers on its socket, Primary component, Synced, wsrep_ready=ON.
node_synced() {
    local n=$1 out
    out=$(node_sql "$n" -e "SHOW GLOBAL STATUS WHERE Variable_name IN
          ('wsrep_local_state_comment','wsrep_cluster_status','wsrep_ready')" 2>/dev/null) || return 1
    grep -qP '^wsrep_local_state_comment\tSynced$' <<<"$out" &&
        grep -qP '^wsrep_cluster_status\tPrimary$' <<<"$out" &&
        grep -qP '^wsrep_ready\tON$' <<<"$out"
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }

# --- configuration -----------------------------------------------------------------------------

write_config() {
    local n=$1 provider dir
    provider=$(find_provider)
    dir=$(node_dir "$n")
    local user_line=""
    # mariadbd started as root switches to this user itself. All node files are owned by
    # mysql, and the joiner's SST script (a child of mariadbd) then runs as mysql too: a
    # root-owned datadir is what makes rsync SST fail with "permission denied".
    [[ $EUID -eq 0 ]] && user_line="user = mysql"

    cat >"$(node_cnf "$n")" <<EOF
# Generated by scripts/galera.sh - node $n of the test cluster. Do not edit; rewritten on start.
[mysqld]
$user_line
datadir = $(node_data "$n")
socket = $(node_sock "$n")
pid-file = $dir/mariadbd.server.pid
log-error = $(node_log "$n")
tmpdir = $dir/tmp
bind-address = $HOST
port = $(sql_port "$n")
# Accounts are matched by IP (root@127.0.0.1), and no DNS lookups slow down connects.
skip-name-resolve

character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
max_allowed_packet = 64M
max_connections = 300

# Galera requirements.
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2

# Small footprint: three of these share a 2-core CI box with other servers.
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_log_buffer_size = 8M
# Durability comes from the other nodes; no fsync per commit keeps the tests fast.
innodb_flush_log_at_trx_commit = 2
# Native AIO needs fs.aio-max-nr slots that shared CI runners sometimes run out of.
innodb_use_native_aio = OFF
performance_schema = OFF
key_buffer_size = 8M
table_open_cache = 400
thread_cache_size = 16

wsrep_on = ON
wsrep_provider = $provider
wsrep_cluster_name = $CLUSTER_NAME
wsrep_cluster_address = gcomm://$HOST:$(gcomm_port 1),$HOST:$(gcomm_port 2),$HOST:$(gcomm_port 3)
wsrep_node_name = node$n
wsrep_node_address = $HOST:$(gcomm_port "$n")
wsrep_node_incoming_address = $HOST:$(sql_port "$n")
wsrep_sst_method = rsync
# Each joiner's rsync daemon needs its own port (the default 4444 would clash).
wsrep_sst_receive_address = $HOST:$(sst_port "$n")
wsrep_slave_threads = 2
# gcache holds the write-sets a restarted node gets by IST instead of a full SST.
wsrep_provider_options = "gmcast.listen_addr=tcp://$HOST:$(gcomm_port "$n");ist.recv_addr=$HOST:$(ist_port "$n");gcache.size=128M;gcache.page_size=32M"
EOF
}

prepare_node_dir() {
    local n=$1 dir
    dir=$(node_dir "$n")
    mkdir -p "$dir/tmp" "$(node_data "$n")"
    write_config "$n"
    touch "$(node_log "$n")"
    if [[ $EUID -eq 0 ]]; then
        chown mysql:mysql "$STATE_DIR"
        chown -R mysql:mysql "$dir"
    fi
}

# A fresh datadir for the bootstrap node. Joiners keep an empty datadir: SST fills it.
init_datadir() {
    local n=$1
    log "node$n: initialising datadir"
    # normal = root@localhost with an empty password (instead of unix_socket only), so our
    # socket checks work; the TCP accounts root@127.0.0.1 / root@::1 are added by setup_sql.
    local args=(--defaults-file="$(node_cnf "$n")" --skip-test-db --skip-name-resolve
        --auth-root-authentication-method=normal)
    [[ $EUID -eq 0 ]] && args+=(--user=mysql)
    mariadb-install-db "${args[@]}" >"$(node_dir "$n")/install-db.log" 2>&1 ||
        { tail -n 30 "$(node_dir "$n")/install-db.log" >&2; die "mariadb-install-db failed for node$n"; }
}

grastate() { echo "$(node_data "$1")/grastate.dat"; }
safe_to_bootstrap() { grep -q '^safe_to_bootstrap: *1' "$(grastate "$1")" 2>/dev/null; }

# With nothing running, bootstrap from the node that left last (Galera marks it
# safe_to_bootstrap: 1); node 1 if there is none (fresh state dir, or all crashed).
pick_bootstrap_node() {
    local m
    for m in "${NODES[@]}"; do
        safe_to_bootstrap "$m" && { echo "$m"; return 0; }
    done
    echo 1
}

launch_node() { # n, extra mariadbd args...
    local n=$1
    shift
    # setsid: the server must outlive this script and not get the caller's Ctrl-C/SIGHUP.
    # All three std fds are redirected so `$(galera.sh start)` does not wait for mariadbd.
    setsid mariadbd --defaults-file="$(node_cnf "$n")" "$@" \
        </dev/null >>"$(node_dir "$n")/console.log" 2>&1 &
    echo $! >"$(node_pidf "$n")"
    # $! is the forked shell until setsid has exec'd mariadbd; wait for that so the
    # liveness check (which looks at /proc/PID/cmdline) does not see a false "exited".
    local tries=50
    while ((tries-- > 0)); do
        node_alive "$n" && return 0
        sleep 0.1
    done
}

primary_exists() {
    local m
    for m in "${NODES[@]}"; do
        node_alive "$m" && [[ "$(wsrep_status "$m" wsrep_cluster_status)" == Primary ]] && return 0
    done
    return 1
}

# After a crash of a majority (e.g. kill-node 2 and 3) the survivor is "non-Primary" and
# refuses queries (ERROR 1047); a new joiner cannot join it either. Galera needs a human to
# say which node holds the truth: we pick the running node with the highest seqno and set
# pc.bootstrap=YES on it. Fine for a test cluster, never do this blindly in production.
force_primary() {
    local best="" best_seq=-2 m seq
    for m in "${NODES[@]}"; do
        node_alive "$m" || continue
        seq=$(wsrep_status "$m" wsrep_last_committed)
        [[ "$seq" =~ ^-?[0-9]+$ ]] || continue
        if ((seq > best_seq)); then best=$m best_seq=$seq; fi
    done
    [[ -n "$best" ]] || { log "force-primary: no running node answers"; return 1; }
    log "no Primary component: forcing node$best (seqno $best_seq) to form one (pc.bootstrap=YES)"
    node_sql "$best" -e "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'"
}

wait_synced() {
    local n=$1 deadline=$((SECONDS + START_TIMEOUT)) state no_primary_since="" stuck=0 retried=0
    while ((SECONDS < deadline)); do
        if ! node_alive "$n"; then
            tail -n 40 "$(node_log "$n")" >&2 || true
            die "node$n exited during startup (log: $(node_log "$n"))"
        fi
        node_synced "$n" && return 0
        # A joiner whose IST/SST failed ("node restart required") stays up, answers SQL and
        # reports cluster_status=Disconnected forever. Retry once from scratch (full SST).
        if [[ "$(wsrep_status "$n" wsrep_cluster_status)" == Disconnected ]] && primary_exists; then
            if ((++stuck >= 3)); then
                ((retried)) && { tail -n 40 "$(node_log "$n")" >&2; die "node$n: state transfer failed twice"; }
                log "node$n: state transfer failed; restarting it with a full SST"
                stop_node "$n" KILL
                rm -f "$(grastate "$n")"
                launch_node "$n"
                retried=1 stuck=0
            fi
        else
            stuck=0
        fi
        # A joiner waits forever if the running nodes lost quorum; 10 s without any Primary
        # node (longer than Galera's 5 s suspect timeout) means nobody will fix it but us.
        if primary_exists; then
            no_primary_since=""
        elif [[ -z "$no_primary_since" ]]; then
            no_primary_since=$SECONDS
        elif ((SECONDS - no_primary_since >= 10)); then
            force_primary || true
            no_primary_since=""
        fi
        state=$(wsrep_status "$n" wsrep_local_state_comment)
        [[ -n "$state" ]] && log "node$n: ${state}..."
        sleep 1
    done
    tail -n 40 "$(node_log "$n")" >&2 || true
    die "node$n not Synced after ${START_TIMEOUT}s (log: $(node_log "$n"))"
}

# Start node N. With no other node running it bootstraps a new cluster (initialising the
# datadir if empty); otherwise it joins, getting IST if the donor's gcache still has what
# it missed, full rsync SST otherwise.
start_node() {
    local n=$1
    if node_alive "$n"; then
        log "node$n: already running (pid $(node_pid "$n"))"
        # A node cut off on purpose (the tests set gmcast.isolate) stays non-Primary until told
        # otherwise; on a node that is not isolated this is a no-op.
        if [[ "$(wsrep_status "$n" wsrep_cluster_status)" != Primary ]]; then
            node_sql "$n" -e "SET GLOBAL wsrep_provider_options='gmcast.isolate=0'" 2>/dev/null || true
        fi
        wait_synced "$n"
        return 0
    fi
    local p
    for p in "$(sql_port "$n")" "$(gcomm_port "$n")" "$(ist_port "$n")" "$(sst_port "$n")"; do
        port_in_use "$p" && die "node$n: port $p is already in use by another process"
    done
    prepare_node_dir "$n"
    rm -f "$(node_sock "$n")"
    if others_alive "$n"; then
        log "node$n: joining the cluster on port $(sql_port "$n")"
        launch_node "$n"
    else
        [[ -d "$(node_data "$n")/mysql" ]] || init_datadir "$n"
        if [[ -f "$(grastate "$n")" ]] && ! safe_to_bootstrap "$n"; then
            # Galera refuses to bootstrap from a node that was not the last one to leave
            # (safe_to_bootstrap: 0): another node may have seen later seqnos. For a test
            # cluster this node's data becomes the truth, but then the other nodes' positions
            # no longer belong to this history (same UUID, different seqnos: an IST between
            # them fails with "Unsupported WS version"). Forget their positions so they
            # take a full SST when they join.
            log "node$n: was not the last node to leave; bootstrapping from it anyway" \
                "(the other nodes will get a full SST)"
            sed -i 's/^safe_to_bootstrap: *0/safe_to_bootstrap: 1/' "$(grastate "$n")"
            local m
            for m in "${NODES[@]}"; do
                [[ $m != "$n" ]] && rm -f "$(grastate "$m")"
            done
        fi
        log "node$n: bootstrapping a new cluster on port $(sql_port "$n")"
        launch_node "$n" --wsrep-new-cluster
    fi
    wait_synced "$n"
    log "node$n: Synced"
}

stop_node() { # n, signal (TERM = clean shutdown, KILL = crash)
    local n=$1 sig=${2:-TERM} pid
    pid=$(node_pid "$n")
    if [[ -z "$pid" ]]; then
        log "node$n: not running"
        return 0
    fi
    log "node$n: stopping (SIG$sig, pid $pid)"
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "node$n: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        sleep 0.2
    done
    rm -f "$(node_pidf "$n")"
    log "node$n: stopped"
}

# Accounts and database the tests rely on. Run on a Synced node; Galera replicates DDL and
# account statements (TOI) to the others, and joiners get them by SST anyway.
setup_sql() {
    local n=$1
    node_sql "$n" <<'SQL'
-- install-db creates an anonymous ''@localhost; drop it so it can never shadow root.
DROP USER IF EXISTS ''@'localhost';
CREATE DATABASE IF NOT EXISTS test;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
SQL
    # install-db also made root@<hostname>; with skip-name-resolve it only causes warnings.
    node_sql "$n" -e "DROP USER IF EXISTS 'root'@'$(uname -n)'" 2>/dev/null || true
}

cluster_healthy() {
    local n
    for n in "${NODES[@]}"; do
        node_synced "$n" || return 1
        [[ "$(wsrep_status "$n" wsrep_cluster_size)" == 3 ]] || return 1
        node_sql_tcp "$n" -e 'SELECT 1' >/dev/null 2>&1 || return 1
    done
}

wait_cluster_size() {
    local deadline=$((SECONDS + 60)) n ok
    while ((SECONDS < deadline)); do
        ok=1
        for n in "${NODES[@]}"; do
            [[ "$(wsrep_status "$n" wsrep_cluster_size)" == 3 ]] && node_synced "$n" || ok=0
        done
        ((ok)) && return 0
        sleep 0.5
    done
    die "cluster did not reach wsrep_cluster_size=3 with all nodes Synced"
}

# --- commands ----------------------------------------------------------------------------------

cmd_start() {
    local t0=$SECONDS n
    ensure_packages
    if cluster_healthy 2>/dev/null; then
        log "already running and healthy"
        echo "$URL"
        return 0
    fi
    mkdir -p "$STATE_DIR"
    # The bootstrap node first (if nothing runs), then the joiners one at a time: a donor
    # serves one SST at a time, and sequential joins keep the 2-core box responsive.
    local order=(1 2 3) first
    if ! node_alive 1 && ! node_alive 2 && ! node_alive 3; then
        first=$(pick_bootstrap_node)
        order=("$first")
        for n in "${NODES[@]}"; do [[ $n != "$first" ]] && order+=("$n"); done
    fi
    for n in "${order[@]}"; do
        start_node "$n"
        [[ $n == "${order[0]}" ]] && setup_sql "$n"
    done
    wait_cluster_size
    for n in "${NODES[@]}"; do
        node_sql_tcp "$n" -e 'SELECT 1' >/dev/null ||
            die "node$n: root@127.0.0.1 cannot connect over TCP"
    done
    log "cluster up: 3 nodes Synced in $((SECONDS - t0))s"
    echo "$URL"
}

cmd_stop() {
    local n
    # Reverse order: node 1 leaves last, so its grastate.dat is the safe one to bootstrap from.
    for n in 3 2 1; do
        [[ -d "$(node_dir "$n")" ]] && stop_node "$n" TERM
    done
    rm -rf "$STATE_DIR"
    log "stopped; removed $STATE_DIR"
}

cmd_status() {
    local n healthy=1 pid size state ready cstatus
    for n in "${NODES[@]}"; do
        pid=$(node_pid "$n")
        if [[ -z "$pid" ]]; then
            printf 'node%s port=%s down\n' "$n" "$(sql_port "$n")"
            healthy=0
            continue
        fi
        size=$(wsrep_status "$n" wsrep_cluster_size)
        state=$(wsrep_status "$n" wsrep_local_state_comment)
        cstatus=$(wsrep_status "$n" wsrep_cluster_status)
        ready=$(wsrep_status "$n" wsrep_ready)
        printf 'node%s port=%s pid=%s cluster_size=%s state=%s cluster_status=%s ready=%s\n' \
            "$n" "$(sql_port "$n")" "$pid" "${size:-?}" "${state:-?}" "${cstatus:-?}" "${ready:-?}"
        [[ "$size" == 3 && "$state" == Synced && "$cstatus" == Primary && "$ready" == ON ]] || healthy=0
    done
    if ((healthy)); then
        echo "healthy: $URL"
    else
        echo "NOT healthy"
        return 1
    fi
}

main() {
    local cmd=${1:-}
    case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) echo "$URL" ;;
    start-node)
        check_node_arg "${2:-}"
        ensure_packages
        mkdir -p "$STATE_DIR"
        start_node "$2"
        ;;
    stop-node)
        check_node_arg "${2:-}"
        stop_node "$2" TERM
        ;;
    kill-node)
        check_node_arg "${2:-}"
        stop_node "$2" KILL
        ;;
    force-primary) force_primary ;;
    *)
        echo "usage: $0 start|stop|status|url|start-node N|stop-node N|kill-node N|force-primary" >&2
        exit 2
        ;;
    esac
}

main "$@"
