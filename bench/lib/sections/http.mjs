/**
 * 2. HTTP throughput and latency through express 5 + express-session. The
 * server runs in this process; autocannon runs in a child process with 50
 * keep-alive connections, each on its own pre-created ~1 KB session.
 * Read-only requests (/read) and writing requests (/write, one key changed).
 *
 * All stores are opened at once and the runs interleaved (store after store,
 * then again), so background load spreads over every store alike; the best
 * of the repeats is reported, every run is kept in the JSON.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createSessions, startApp } from '../app.mjs';
import { since, snapshot } from '../counters.mjs';
import { COUNTER, openStore, storeDef, storeLabel } from '../stores.mjs';
import { log, round } from '../util.mjs';

/** The stores compared here: smart-session-store (its default mode) next to the peer on its backend, and a reference without storage. */
export const HTTP_STORES = [
  'smart-postgres-atomic',
  'connect-pg-simple',
  'smart-mysql-atomic',
  'express-mysql-session',
  'smart-sqlite-atomic',
  'better-sqlite3-session-store',
  // On Redis, optimistic is the default mode (one command per write after the read).
  'smart-redis-optimistic',
  'connect-redis',
  // A reference, not a peer: express-session's MemoryStore keeps sessions as JSON text in this process, so a request
  // parses and writes the same JSON as the peers' and touches no storage: how much of a request storage takes at all.
  'memory',
];

export function startWorker() {
  const child = fork(fileURLToPath(new URL('../load-worker.mjs', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve, reject) => {
    child.once('message', (message) => (message?.ready ? resolve() : reject(new Error('load worker did not start'))));
    child.once('error', reject);
  });
  let pending = Promise.resolve();
  const run = (job) => {
    const result = pending.then(
      () =>
        new Promise((resolve, reject) => {
          const onExit = (code) => reject(new Error(`load worker exited (${code})`));
          child.once('exit', onExit);
          child.once('message', (message) => {
            child.off('exit', onExit);
            if (message.ok) resolve(message.result);
            else reject(new Error(message.error));
          });
          child.send(job);
        }),
    );
    pending = result.catch(() => undefined);
    return result;
  };
  // `control` reaches the job in progress (a paced run's `{ stop: true, windows }`); its answer still comes through `run`.
  return { ready, run, control: (message) => child.send(message), stop: () => child.kill() };
}

export async function httpThroughput(ctx) {
  const { connections, warmupSeconds, seconds, repeats } = ctx.config.http;
  const ids = HTTP_STORES.filter((id) => ctx.defs.some((d) => d.id === id));
  const worker = startWorker();
  await worker.ready;
  const opened = [];
  try {
    for (const id of ids) {
      const def = storeDef(id);
      const { store, close } = await openStore(ctx, def);
      const app = await startApp(store, { sessionBytes: ctx.config.http.sessionBytes });
      const cookies = await createSessions(app, connections);
      opened.push({ def, app, close, cookies, runs: { read: [], write: [] } });
    }
    const kinds = [
      ['read', '/read'],
      ['write', '/write'],
    ];
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const [kind, path] of kinds) {
        // Alternate the order between repeats so no store always runs first.
        const order = repeat % 2 === 0 ? opened : [...opened].reverse();
        for (const entry of order) {
          const job = { origin: entry.app.origin, path, cookies: entry.cookies, connections };
          if (repeat === 0) await worker.run({ ...job, seconds: warmupSeconds });
          const key = COUNTER[entry.def.backend];
          entry.app.stats.sessionIds.clear();
          entry.app.stats.trackIds = true;
          const missingBefore = entry.app.stats.missing;
          const before = snapshot();
          const cpuBefore = process.cpuUsage();
          const result = await worker.run({ ...job, seconds });
          const cpu = process.cpuUsage(cpuBefore);
          // CPU of the server process (user + system) per request: the load generator runs elsewhere.
          result.serverCpuMicrosPerRequest = round((cpu.user + cpu.system) / Math.max(1, result.total));
          entry.app.stats.trackIds = false;
          result.statementsPerRequest = key === null ? null : round(since(before, key) / Math.max(1, result.total), 2);
          result.distinctSessions = entry.app.stats.sessionIds.size;
          result.missingSessions = entry.app.stats.missing - missingBefore;
          entry.runs[kind].push(result);
          log(
            `  http ${kind.padEnd(5)}    ${storeLabel(entry.def).padEnd(38)} ${entry.def.backend.padEnd(9)} ${round(result.reqPerSec)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms  server CPU ${result.serverCpuMicrosPerRequest} µs/req` +
              (result.non2xx || result.errors ? `  (non-2xx ${result.non2xx}, errors ${result.errors})` : ''),
          );
        }
      }
    }
  } finally {
    worker.stop();
    for (const entry of opened) {
      await entry.app.close();
      await entry.close();
    }
  }
  const best = (runs) => runs.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
  const rows = opened.map(({ def, runs }) => {
    const summarize = (list) => {
      const b = best(list);
      return {
        reqPerSec: round(b.reqPerSec),
        p50: b.latency.p50,
        p99: b.latency.p99,
        statementsPerRequest: b.statementsPerRequest,
        serverCpuMicrosPerRequest: b.serverCpuMicrosPerRequest,
        non2xx: list.reduce((s, r) => s + r.non2xx, 0),
        errors: list.reduce((s, r) => s + r.errors, 0),
        distinctSessions: b.distinctSessions,
        runs: list,
      };
    };
    return { id: def.id, store: storeLabel(def), backend: def.backend, mode: def.mode ?? null, read: summarize(runs.read), write: summarize(runs.write) };
  });
  return { connections, seconds, warmupSeconds, repeats, sessionBytes: ctx.config.http.sessionBytes, rows };
}
