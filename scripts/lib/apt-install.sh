# Sourced by the engine scripts (galera.sh, pgbouncer.sh, postgres-replica.sh, redis-sentinel.sh): installs Debian packages without
# starting the services they ship. Expects the sourcing script's log and die.

# apt_install_quietly PACKAGE...: apt-get update and install, as root. A fresh Debian would
# start a packaged server (mariadb on 3306, pgbouncer on 6432) right after install; a
# policy-rc.d that answers 101 stops that. It is only added (and removed) if none exists.
apt_install_quietly() {
    [[ $EUID -eq 0 ]] || die "missing packages ($*); run as root or install them"
    log "installing $* (apt-get)"
    local policy_added=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
    } >&2 || rc=$?
    ((policy_added)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install $* failed"
}
