#!/bin/sh
# Makes a fetched copy of koajs/session v7.0.2's suite (with its dependencies installed)
# run on smart-session-store/koa's own middleware: puts smart-session.ts beside the tests,
# points every test's import of '../src/index.js' (koa-session itself) at it, and puts
# store.ts in place of the suite's in-memory store:
#   sh install.sh <the suite's folder>
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${1:?the folder of the fetched koajs/session suite}
cp "$HERE/smart-session.ts" "$SUITE/test/smart-session.ts"
[ -f "$SUITE/test/store.ts.orig" ] || cp "$SUITE/test/store.ts" "$SUITE/test/store.ts.orig"
cp "$HERE/store.ts" "$SUITE/test/store.ts"
for f in "$SUITE"/test/*.test.ts; do
  [ -f "$f.orig" ] || cp "$f" "$f.orig"
  sed -e "s#from '../src/index.js'#from './smart-session.js'#" "$f.orig" > "$f"
done
echo "koa-session suite now runs on smartSession: $SUITE"
