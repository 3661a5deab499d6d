/**
 * 8. Session size: the HTTP section's read-only and writing runs with
 * sessions of about 1 KB, 10 KB and 40 KB (a cart of growing length), for
 * smart-session-store next to the peer on each backend. A writing request
 * changes one small key: the peer writes the whole session back, this store
 * only the change, so the cost of a save should follow the size of the
 * change, not of the session.
 */
import { createSessions, startApp } from '../app.mjs';
import { openStore, storeDef, storeLabel } from '../stores.mjs';
import { log, round } from '../util.mjs';
import { HTTP_STORES, startWorker } from './http.mjs';

export async function sessionSizes(ctx) {
  const { connections, warmupSeconds, seconds, repeats, sizes } = ctx.config.sizes;
  // The HTTP section's stores: this store in its default mode next to the peer, per backend.
  const ids = HTTP_STORES.filter((id) => ctx.defs.some((d) => d.id === id));
  const worker = startWorker();
  await worker.ready;
  const rows = [];
  try {
    for (const bytes of sizes) {
      const opened = [];
      try {
        for (const id of ids) {
          const def = storeDef(id);
          const { store, close } = await openStore(ctx, def);
          const app = await startApp(store, { sessionBytes: bytes });
          opened.push({ def, app, close, cookies: await createSessions(app, connections), runs: { read: [], write: [] } });
        }
        for (let repeat = 0; repeat < repeats; repeat++) {
          for (const [kind, path] of [
            ['read', '/read'],
            ['write', '/write'],
          ]) {
            // Alternate the order between repeats so no store always runs first.
            for (const entry of repeat % 2 === 0 ? opened : [...opened].reverse()) {
              const job = { origin: entry.app.origin, path, cookies: entry.cookies, connections };
              if (repeat === 0) await worker.run({ ...job, seconds: warmupSeconds });
              const cpuBefore = process.cpuUsage();
              const result = await worker.run({ ...job, seconds });
              const cpu = process.cpuUsage(cpuBefore);
              result.serverCpuMicrosPerRequest = round((cpu.user + cpu.system) / Math.max(1, result.total));
              entry.runs[kind].push(result);
              log(
                `  size ${String(bytes).padStart(6)} B ${kind.padEnd(5)} ${storeLabel(entry.def).padEnd(38)} ${entry.def.backend.padEnd(9)} ` +
                  `${round(result.reqPerSec)} req/s  p99 ${result.latency.p99} ms  server CPU ${result.serverCpuMicrosPerRequest} µs/req` +
                  (result.non2xx || result.errors ? `  (non-2xx ${result.non2xx}, errors ${result.errors})` : ''),
              );
            }
          }
        }
      } finally {
        for (const entry of opened) {
          await entry.app.close();
          await entry.close();
        }
      }
      const best = (list) => list.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
      for (const { def, runs } of opened) {
        const summarize = (list) => {
          const b = best(list);
          return {
            reqPerSec: round(b.reqPerSec),
            p50: b.latency.p50,
            p99: b.latency.p99,
            serverCpuMicrosPerRequest: b.serverCpuMicrosPerRequest,
            non2xx: list.reduce((s, r) => s + r.non2xx, 0),
            runs: list,
          };
        };
        rows.push({ bytes, id: def.id, store: storeLabel(def), backend: def.backend, read: summarize(runs.read), write: summarize(runs.write) });
      }
    }
  } finally {
    worker.stop();
  }
  return { connections, seconds, warmupSeconds, repeats, sizes, rows };
}
