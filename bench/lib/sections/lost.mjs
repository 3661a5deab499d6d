/**
 * 1. Lost updates: N parallel requests on one session through express 5 +
 * express-session, each setting its own key after a random 0-20 ms handler
 * delay; then one more request reads which keys the session kept.
 */
import { performance } from 'node:perf_hooks';
import { createSessions, get, startApp } from '../app.mjs';
import { openStore, storeLabel } from '../stores.mjs';
import { log, median, range, round } from '../util.mjs';

export async function lostUpdates(ctx) {
  const { rounds, parallel, maxDelayMs } = ctx.config.lost;
  const rows = [];
  for (const def of ctx.defs) {
    const { store, close } = await openStore(ctx, def);
    const app = await startApp(store);
    const row = { id: def.id, store: storeLabel(def), backend: def.backend, mode: def.mode ?? null, byParallel: {} };
    try {
      for (const n of parallel) {
        let kept = 0;
        let errors = 0;
        const roundMs = [];
        for (let r = 0; r < rounds; r++) {
          const [cookie] = await createSessions(app, 1);
          const started = performance.now();
          const responses = await Promise.all(range(n).map((k) => get(`${app.origin}/set?k=${k}&maxDelay=${maxDelayMs}`, cookie)));
          roundMs.push(performance.now() - started);
          errors += responses.filter((response) => response.status !== 200).length;
          const keys = new Set(JSON.parse((await get(`${app.origin}/keys`, cookie)).body));
          kept += range(n).filter((k) => keys.has(`k${k}`)).length;
        }
        const total = n * rounds;
        row.byParallel[n] = { keptPercent: round((kept / total) * 100, 1), kept, total, rounds, errors, medianRoundMs: round(median(roundMs), 1) };
      }
    } finally {
      await app.close();
      await close();
    }
    log(`  lost updates  ${row.store.padEnd(38)} ${row.backend.padEnd(9)} ${parallel.map((n) => `N=${n}: ${row.byParallel[n].keptPercent}% kept`).join('  ')}`);
    rows.push(row);
  }
  return { rounds, parallel, maxDelayMs, rows };
}
