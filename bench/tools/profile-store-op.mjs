#!/usr/bin/env node
/**
 * Runs ONE store-level operation of the benchmark alone, for a CPU profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/tools/profile-store-op.mjs postgres "set (changed)" 5
 *   node bench/tools/cpuprofile-summary.mjs /tmp/prof/*.cpuprofile
 *
 * backend: postgres | mysql | sqlite; op: get | "set (changed)" | "set (unchanged)" | touch | "floor SELECT" | "floor UPDATE".
 * Uses the bench_smart_atomic table (dropped at the end), 50 callers, pool of 10, like the store section.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../lib/config.mjs';
import { dropBenchObjects, probeServers } from '../lib/admin.mjs';
import { STORE_OPS, prepareStoreOps } from '../lib/sections/store.mjs';
import { runFor } from '../lib/util.mjs';

const [backend = 'postgres', op = 'get', secondsArg = '5'] = process.argv.slice(2);
if (!['postgres', 'mysql', 'sqlite'].includes(backend) || !STORE_OPS.includes(op)) {
  console.error(`usage: profile-store-op.mjs <postgres|mysql|sqlite> <${STORE_OPS.join('|')}> [seconds]`);
  process.exit(2);
}
const config = loadConfig();
const { reachable } = await probeServers(config);
const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-profile-'));
const ctx = { config, reachable, sqliteDir };
const callers = config.store.callers;
const { ops, close } = await prepareStoreOps(ctx, backend, callers);
try {
  await runFor(1, callers, ops[op]);
  const result = await runFor(Number(secondsArg), callers, ops[op]);
  console.log(
    `${backend} ${op}: ${Math.round(result.opsPerSec)} ops/s over ${result.seconds.toFixed(1)} s, ${Math.round(result.cpuMicrosPerOp)} µs CPU per op in this process (${result.errors} errors)`,
  );
} finally {
  await close();
  await dropBenchObjects(config, reachable);
  rmSync(sqliteDir, { recursive: true, force: true });
}
