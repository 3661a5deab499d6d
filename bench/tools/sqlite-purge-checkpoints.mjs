#!/usr/bin/env node
/**
 * How SQLite's WAL checkpoints weigh on a purge: fills a file database with
 * expired sessions, sets `wal_autocheckpoint` (pages of WAL after which the
 * committing statement checkpoints; SQLite's default is 1000), purges with
 * the store's defaults and prints how long it took, how far apart its
 * batches were and how long the event loop was held.
 *
 *   node bench/tools/sqlite-purge-checkpoints.mjs [autocheckpoint pages=1000] [rows=300000]
 *
 * better-sqlite3 runs every statement on the event loop, checkpoints
 * included: with 0 (no automatic checkpoint) the difference is what they
 * cost.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SessionStore } from 'smart-session-store';

const autocheckpoint = Number(process.argv[2] ?? 1000);
const rows = Number(process.argv[3] ?? 300_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-checkpoints-'));
const db = new Database(path.join(dir, 'purge.db'));
db.pragma('journal_mode = WAL');
const store = new SessionStore({ connection: db, table: 'bench_purge', createTable: true, autopurge: false });
try {
  await store.ready();
  db.exec(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
     INSERT INTO bench_purge (id, data, expires_at) SELECT hex(randomblob(16)), '{"a":"${'x'.repeat(150)}"}', 1000 FROM n`,
  );
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const gaps = [];
  let last = performance.now();
  const started = last;
  const removed = await store.purge({
    onProgress: () => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    },
  });
  delay.disable();
  gaps.sort((a, b) => a - b);
  console.log(
    `wal_autocheckpoint ${autocheckpoint}: ${removed} rows removed in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `from one batch to the next: median ${gaps[gaps.length >> 1].toFixed(1)} ms, longest ${gaps.at(-1).toFixed(1)} ms, ${gaps.filter((gap) => gap > 50).length} over 50 ms; ` +
      `event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, longest ${(delay.max / 1e6).toFixed(1)} ms`,
  );
} finally {
  await store.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
