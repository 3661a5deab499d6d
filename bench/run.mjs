#!/usr/bin/env node
/**
 * smart-session-store benchmark: one entry, every section, one results file.
 *
 *   node bench/run.mjs                      full run (about 15 minutes on 2 cores, 6 of them purging)
 *   BENCH_QUICK=1 node bench/run.mjs        smoke run (about ten minutes with every section)
 *   BENCH_ONLY=lost,store node bench/run.mjs  some sections only
 *
 * Sections: lost, http, statements, store, contention, purge, scaleout, sizes, frameworks. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from './lib/config.mjs';
import { BENCH_DIR, LIBRARY_DIR, patchAllDrivers } from './lib/drivers.mjs';
import { SHARED_BUSY_PERCENT, libraryInfo, machine, packageVersions, sampleForeignLoad, serverVersions, startForeignLoadMonitor } from './lib/environment.mjs';
import { log } from './lib/util.mjs';

/**
 * The library must be built (dist/). A build running at the same time (the test script builds first)
 * empties dist/ for a moment: wait for it; build only if it stays missing.
 */
async function ensureLibraryBuilt() {
  const built = () => ['esm/index.js', 'esm/adapters/express.js'].every((f) => existsSync(path.join(LIBRARY_DIR, 'dist', f)));
  for (let waited = 0; !built() && waited < 60_000; waited += 1000) {
    if (waited === 0) log('smart-session-store is not built (dist/ missing): waiting a minute for a build in progress');
    await sleep(1000);
  }
  if (!built()) {
    log('building smart-session-store (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: LIBRARY_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

// Count statements from the very first one: patch the drivers before any store module opens a connection.
const patchedDrivers = patchAllDrivers();
await ensureLibraryBuilt();

const { dropBenchObjects, probeServers } = await import('./lib/admin.mjs');
const { STORE_DEFS, preloadDialects } = await import('./lib/stores.mjs');
const { lostUpdates } = await import('./lib/sections/lost.mjs');
const { httpThroughput } = await import('./lib/sections/http.mjs');
const { statementsPerRequest } = await import('./lib/sections/statements.mjs');
const { storeLevel } = await import('./lib/sections/store.mjs');
const { contention } = await import('./lib/sections/contention.mjs');
const { purge } = await import('./lib/sections/purge.mjs');
const { scaleOut } = await import('./lib/sections/scale-out.mjs');
const { sessionSizes } = await import('./lib/sections/sizes.mjs');
const { frameworks } = await import('./lib/sections/frameworks.mjs');
const { writeReports } = await import('./lib/report.mjs');

async function main() {
  const config = loadConfig();
  const startedAt = new Date();
  log(`smart-session-store benchmark${config.quick ? ' (BENCH_QUICK)' : ''}: sections ${config.only.join(', ')}`);

  const { reachable, problems } = await probeServers(config);
  for (const [server, problem] of Object.entries(problems)) log(`  ${server} unreachable (its stores are skipped): ${problem}`);

  const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'smart-session-store-bench-'));
  const ctx = {
    config,
    reachable,
    sqliteDir,
    defs: STORE_DEFS.filter((d) => reachable[d.backend]),
  };

  const loadSamples = [];
  const sampleLoad = async (when) => {
    const sample = { when, ...(await sampleForeignLoad(config.quick ? 300 : 1000)) };
    loadSamples.push(sample);
    return sample;
  };
  const first = await sampleLoad('before start');
  const monitor = startForeignLoadMonitor();
  log(`  machine load before start: ${first.busyPercent}% CPU busy, loadavg ${first.loadavg.join(' ')}`);

  const results = {
    schema: 1,
    date: startedAt.toISOString().slice(0, 10),
    startedAt: startedAt.toISOString(),
    quick: config.quick,
    sections: config.only,
    environment: {
      machine: machine(),
      node: process.version,
      servers: await serverVersions(config, reachable),
      unreachable: problems,
      packages: packageVersions(),
      library: libraryInfo(),
      countingPatches: patchedDrivers,
    },
  };

  const cleanup = async () => {
    await dropBenchObjects(config, reachable).catch((error) => log(`  cleanup failed: ${error.message}`));
    rmSync(sqliteDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    log('interrupted: dropping the bench_* tables');
    cleanup().finally(() => process.exit(130));
  });

  // Leftovers of an interrupted run would skew row counts and table sizes.
  await dropBenchObjects(config, reachable);
  // Load every dialect module of the library now (it imports them lazily), so a rebuild of dist/
  // by someone else during the run cannot pull a file from under a later section.
  await preloadDialects(ctx);
  try {
    const sections = {
      lost: () => lostUpdates(ctx),
      statements: () => statementsPerRequest(ctx),
      http: () => httpThroughput(ctx),
      store: () => storeLevel(ctx),
      contention: () => contention(ctx),
      purge: () => purge(ctx),
      scaleout: () => scaleOut(ctx),
      sizes: () => sessionSizes(ctx),
      frameworks: () => frameworks(ctx),
    };
    // Statements before HTTP: its counts are exact (one request at a time), HTTP's are a cross-check.
    const order = ['lost', 'statements', 'http', 'sizes', 'frameworks', 'store', 'contention', 'purge', 'scaleout'].filter((s) => config.only.includes(s));
    results.results = {};
    for (const name of order) {
      await sampleLoad(`before ${name}`);
      log(`[${name}]`);
      const started = Date.now();
      results.results[name] = await sections[name]();
      results.results[name].elapsedSeconds = Math.round((Date.now() - started) / 1000);
    }
    await sampleLoad('after the last section');
  } finally {
    await cleanup();
  }

  results.finishedAt = new Date().toISOString();
  const during = monitor.stop();
  const busiest = Math.max(...loadSamples.map((s) => s.busyPercent ?? 0));
  const shared = busiest > SHARED_BUSY_PERCENT || during.meanPercent > SHARED_BUSY_PERCENT / 2 || during.maxPercent > 50;
  const others = during.busiestOtherProcesses.map((p) => `${p.process} ${p.cpuSeconds} s`).join(', ');
  results.environment.load = {
    idleSamples: loadSamples,
    otherProcessesDuringRun: during,
    sharedMachine: shared,
    note: shared
      ? `the machine was shared: other processes used on average ${during.meanPercent}% (at most ${during.maxPercent}%) of the CPUs during the run` +
        `${others ? ` (busiest: ${others})` : ''}, and up to ${busiest}% while the benchmark was idle between sections; numbers may be noisy`
      : `no other load detected (other processes: ${during.meanPercent}% of the CPUs on average during the run, at most ${busiest}% busy between sections)`,
  };

  // Only a full run (every section, not BENCH_QUICK) replaces the published results and the charts in docs/;
  // smoke and partial runs write beside them, under bench/results/quick/ (ignored by git).
  const published = !config.quick && !config.partial;
  const resultsDir = published ? path.join(BENCH_DIR, 'results') : path.join(BENCH_DIR, 'results', 'quick');
  const chartsDir = published ? path.resolve(BENCH_DIR, '..', 'docs') : resultsDir;
  mkdirSync(resultsDir, { recursive: true });
  mkdirSync(chartsDir, { recursive: true });
  const written = writeReports(results, { resultsDir, chartsDir, published });
  for (const file of written) log(`wrote ${path.relative(process.cwd(), file) || file}`);
}

main().then(
  // Some peer stores leave timers running (better-sqlite3-session-store's clear-expired interval): exit explicitly.
  () => process.exit(0),
  (error) => {
    log(error?.stack ?? String(error));
    process.exit(1);
  },
);
