#!/usr/bin/env node
/**
 * A steady stream of saves on a SQLite file, one load and one save of a
 * ~1 KB session at a time, for the syncs that checkpoints cost: run it
 * under strace to count them.
 *
 *   strace -f -c -e trace=fsync,fdatasync node bench/tools/sqlite-steady-writes.mjs [checkpoints=background] [seconds=10]
 *
 * checkpoints: `background` (`backgroundCheckpoints: true`: a worker thread
 * copies the log in passes, each of which syncs the log and the database
 * file) or `inline` (`backgroundCheckpoints: false`: the committing
 * statement checkpoints every 1000 pages). strace slows the process down;
 * compare the two at the save rates it prints.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionStore } from 'smart-session-store';

const checkpoints = process.argv[2] ?? 'background';
const seconds = Number(process.argv[3] ?? 10);
const dir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-steady-'));
const db = new Database(path.join(dir, 'steady.db'));
db.pragma('journal_mode = WAL');
const store = new SessionStore({
  connection: db,
  table: 'bench_steady',
  createTable: true,
  autopurge: false,
  backgroundCheckpoints: checkpoints === 'background',
});
try {
  const first = { user: { id: 1 }, cart: Array.from({ length: 14 }, (_, k) => ({ sku: `item-${k}`, quantity: k, title: 'x'.repeat(20) })), hits: 0 };
  for (let i = 0; i < 100; i++) await store.save(`steady-${i}`, first);
  const end = performance.now() + seconds * 1000;
  let saves = 0;
  while (performance.now() < end) {
    const sid = `steady-${saves % 100}`;
    const loaded = await store.load(sid);
    loaded.session.hits = saves;
    await store.save(sid, loaded.session, loaded.state);
    saves++;
  }
  console.log(`checkpoints ${checkpoints}: ${saves} saves in ${seconds} s (${Math.round(saves / seconds)} a second)`);
} finally {
  await store.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
