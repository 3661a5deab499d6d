#!/usr/bin/env node
/**
 * The CPU one express-session writing request costs a store, without HTTP:
 * the cycle express-session runs (`get`, `createSession`, change one key,
 * `set`) on ~1 KB sessions, `concurrency` cycles at a time, for each store
 * given, alternating between them twice. Prints wall time and the process's
 * user and system CPU per cycle.
 *
 *   node bench/tools/write-cycle.mjs smart-postgres-atomic,connect-pg-simple [concurrency=1] [cycles=10000]
 *
 * Store ids as in bench/lib/stores.mjs (`memory` is express-session's
 * MemoryStore). One cycle at a time, the CPU per cycle is the store's own
 * cost, free of the contention a loaded server adds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import session from 'express-session';
import { loadConfig } from '../lib/config.mjs';
import { dropBenchObjects, probeServers } from '../lib/admin.mjs';
import { openStore, storeDef } from '../lib/stores.mjs';

const [idsArg, concurrencyArg = '1', cyclesArg = '10000'] = process.argv.slice(2);
if (idsArg === undefined) {
  console.error('usage: write-cycle.mjs <store id,store id,...> [concurrency] [cycles]');
  process.exit(2);
}
const concurrency = Number(concurrencyArg);
const cycles = Number(cyclesArg);
const SESSIONS = 50;
const config = loadConfig();
const { reachable } = await probeServers(config);
const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-cycle-'));
const ctx = { config, reachable, sqliteDir };

const viaCallback = (fn) => new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));
const sessionData = (i) => ({
  cookie: new session.Cookie({ maxAge: 86_400_000 }),
  user: { id: i, name: `user ${i}` },
  cart: Array.from({ length: 14 }, (_, k) => ({ sku: `item-${k}`, quantity: k, title: 'x'.repeat(20) })),
  hits: 0,
});

async function cycle(store, sid) {
  const data = await viaCallback((cb) => store.get(sid, cb));
  // As express-session does: the loaded data becomes the request's session object, which `set` is handed.
  const request = { sessionID: sid, sessionStore: store };
  const live = store.createSession(request, data);
  live.hits = (live.hits ?? 0) + 1;
  await viaCallback((cb) => store.set(sid, live, cb));
}

async function run(store, count) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await cycle(store, `cycle-${next++ % SESSIONS}`);
    }),
  );
}

const opened = [];
try {
  for (const id of idsArg.split(',')) {
    const { store, close } = await openStore(ctx, storeDef(id));
    opened.push({ id, store, close });
    for (let i = 0; i < SESSIONS; i++) await viaCallback((cb) => store.set(`cycle-${i}`, sessionData(i), cb));
    await run(store, Math.min(2000, cycles));
  }
  for (let round = 0; round < 2; round++) {
    for (const { id, store } of opened) {
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await run(store, cycles);
      const wall = Number(process.hrtime.bigint() - started) / 1000 / cycles;
      const cpu = process.cpuUsage(cpuBefore);
      console.log(
        `${id.padEnd(30)} concurrency ${concurrency}: ${wall.toFixed(1)} µs wall, ${(cpu.user / cycles).toFixed(1)} µs user + ${(cpu.system / cycles).toFixed(1)} µs system CPU per cycle`,
      );
    }
  }
} finally {
  for (const { close } of opened) await close();
  await dropBenchObjects(config, reachable);
  rmSync(sqliteDir, { recursive: true, force: true });
}
// better-sqlite3-session-store keeps a timer of its own that nothing clears.
process.exit(0);
