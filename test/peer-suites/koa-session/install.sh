#!/bin/sh
# Makes a prepared copy of koajs/session's suite run on smart-session-store/koa's own
# middleware: puts smart-session.ts beside the tests and points every test's import of
# '../src/index.js' (koa-session itself) at it. Run after the shared prepare.sh:
#   sh install.sh <peer-suites folder>/suites/koa-session
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${1:?the prepared suite folder: <peer-suites>/suites/koa-session}
cp "$HERE/smart-session.ts" "$SUITE/test/smart-session.ts"
for f in "$SUITE"/test/*.test.ts; do
  [ -f "$f.orig" ] || cp "$f" "$f.orig"
  sed -e "s#from '../src/index.js'#from './smart-session.js'#" "$f.orig" > "$f"
done
echo "koa-session suite now runs on smartSession: $SUITE"
