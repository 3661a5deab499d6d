#!/usr/bin/env node
/**
 * Runs ONE store of the HTTP section alone (server here, autocannon in a child
 * process), for a CPU profile of the server side:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/tools/profile-http.mjs smart-postgres-atomic write 8 [session bytes]
 *   node bench/tools/cpuprofile-summary.mjs /tmp/prof/*.cpuprofile
 *
 * store: an id from bench/lib/stores.mjs (smart-postgres-atomic, connect-pg-simple, ...); kind: read | write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../lib/config.mjs';
import { dropBenchObjects, probeServers } from '../lib/admin.mjs';
import { createSessions, startApp } from '../lib/app.mjs';
import { openStore, storeDef } from '../lib/stores.mjs';
import { startWorker } from '../lib/sections/http.mjs';

const [id = 'smart-postgres-atomic', kind = 'write', secondsArg = '8', bytesArg = '1024'] = process.argv.slice(2);
if (!['read', 'write'].includes(kind)) {
  console.error('usage: profile-http.mjs <store id> <read|write> [seconds] [session bytes]');
  process.exit(2);
}
const config = loadConfig();
const { reachable } = await probeServers(config);
const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-profile-'));
const ctx = { config, reachable, sqliteDir };
const { store, close } = await openStore(ctx, storeDef(id));
const app = await startApp(store, { sessionBytes: Number(bytesArg) });
const worker = startWorker();
try {
  await worker.ready;
  const cookies = await createSessions(app, config.http.connections);
  const job = { origin: app.origin, path: `/${kind}`, cookies, connections: config.http.connections };
  await worker.run({ ...job, seconds: 1 });
  const cpuBefore = process.cpuUsage();
  const result = await worker.run({ ...job, seconds: Number(secondsArg) });
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    `${id} ${kind}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ` +
      `server CPU ${Math.round((cpu.user + cpu.system) / result.total)} µs/request (non-2xx ${result.non2xx}, errors ${result.errors})`,
  );
} finally {
  worker.stop();
  await app.close();
  await close();
  await dropBenchObjects(config, reachable);
  rmSync(sqliteDir, { recursive: true, force: true });
}
process.exit(0);
