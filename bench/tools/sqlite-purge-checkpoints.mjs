#!/usr/bin/env node
/**
 * How SQLite's WAL checkpoints weigh on a purge: fills a file database with
 * expired sessions, purges them with the store's defaults and prints how
 * long it took, how far apart its batches were, how long the event loop was
 * held and how large the WAL file grew.
 *
 *   node bench/tools/sqlite-purge-checkpoints.mjs [checkpoints=background] [rows=300000]
 *
 * checkpoints: `background` (`backgroundCheckpoints: true`, the default on a file the
 * store opens: a worker thread copies the log), `inline` (`backgroundCheckpoints: false`: the committing statement
 * checkpoints every 1000 pages, SQLite's default), or a number of pages for
 * `wal_autocheckpoint` without the worker (0: no checkpoint at all, which
 * shows what they cost). better-sqlite3 runs every statement on the event
 * loop, inline checkpoints included.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SessionStore } from 'smart-session-store';

const checkpoints = process.argv[2] ?? 'background';
const rows = Number(process.argv[3] ?? 300_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-checkpoints-'));
const db = new Database(path.join(dir, 'purge.db'));
db.pragma('journal_mode = WAL');
const background = checkpoints === 'background';
if (!background && checkpoints !== 'inline') db.pragma(`wal_autocheckpoint = ${Number(checkpoints)}`);
const store = new SessionStore({ connection: db, table: 'bench_purge', createTable: true, autopurge: false, backgroundCheckpoints: background });
try {
  await store.ready();
  db.exec(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
     INSERT INTO bench_purge (id, data, expires_at) SELECT hex(randomblob(16)), '{"a":"${'x'.repeat(150)}"}', 1000 FROM n`,
  );
  db.pragma('wal_checkpoint(TRUNCATE)');
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const gaps = [];
  let walBytes = 0;
  let last = performance.now();
  const started = last;
  const removed = await store.purge({
    onProgress: () => {
      const now = performance.now();
      gaps.push(now - last);
      walBytes = Math.max(walBytes, statSync(path.join(dir, 'purge.db-wal'), { throwIfNoEntry: false })?.size ?? 0);
      last = now;
    },
  });
  delay.disable();
  gaps.sort((a, b) => a - b);
  console.log(
    `checkpoints ${checkpoints}: ${removed} rows removed in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `from one batch to the next: median ${gaps[gaps.length >> 1].toFixed(1)} ms, longest ${gaps.at(-1).toFixed(1)} ms, ${gaps.filter((gap) => gap > 50).length} over 50 ms; ` +
      `event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, longest ${(delay.max / 1e6).toFixed(1)} ms; ` +
      `WAL file up to ${(walBytes / 2 ** 20).toFixed(1)} MiB`,
  );
} finally {
  await store.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
