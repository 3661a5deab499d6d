#!/usr/bin/env node
/**
 * One framework variant under load, for a CPU profile of the server: starts
 * the app in this process (run it with `node --cpu-prof`), creates sessions,
 * drives POST /write (or GET /read) with autocannon from a child process and
 * prints req/s and this process's CPU per request.
 *
 *   node --cpu-prof bench/tools/profile-framework.mjs fastify ours sqlite 1024 [write|read] [seconds=8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeServers } from '../lib/admin.mjs';
import { loadConfig } from '../lib/config.mjs';
import { createFrameworkSessions, startFrameworkVariant } from '../lib/framework-apps.mjs';

const [framework, variant, backendArg, bytesArg = '1024', route = 'write', secondsArg = '8'] = process.argv.slice(2);
const backend = variant === 'none' ? null : backendArg;
const config = loadConfig();
const { reachable } = await probeServers(config);
const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-profile-'));
const ctx = { config, reachable, sqliteDir };
const app = await startFrameworkVariant(ctx, { framework, variant, backend, bytes: Number(bytesArg) });
const cookies = await createFrameworkSessions(app.origin, 50);
const autocannon = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url));
const args = ['-c', '50', '-d', secondsArg, '-j', '-m', route === 'write' ? 'POST' : 'GET', '-H', `cookie=${cookies[0]}`, `${app.origin}/${route}`];
const started = process.cpuUsage();
const output = await new Promise((resolve, reject) => {
  let text = '';
  const child = spawn(process.execPath, [autocannon, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (chunk) => (text += chunk));
  child.on('error', reject);
  child.on('close', () => resolve(text));
});
const cpu = process.cpuUsage(started);
const result = JSON.parse(output);
const requests = result.requests.total;
console.log(
  `${framework} ${variant} ${backend ?? '-'} ${bytesArg}B ${route}: ${result.requests.average.toFixed(0)} req/s, ` +
    `${((cpu.user + cpu.system) / requests).toFixed(0)} µs CPU/request, non-2xx ${result.non2xx}, missing ${app.stats.missing}`,
);
await app.close();
rmSync(sqliteDir, { recursive: true, force: true });
process.exit(0);
