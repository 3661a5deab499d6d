/**
 * 5. Contention: 50 concurrent writers on ONE session, through the
 * framework-neutral API: each loads the session, sets its own key and saves
 * its delta. Per backend and locking mode: writes per second, keys kept, and
 * statements per write (optimistic retries show up there).
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { since, snapshot } from '../counters.mjs';
import { COUNTER, MODES, SMART_BACKENDS, openCoreStore } from '../stores.mjs';
import { log, range, round } from '../util.mjs';

const DAY_MS = 24 * 3600 * 1000;

export async function contention(ctx) {
  const { writers, rounds } = ctx.config.contention;
  const rows = [];
  for (const backend of SMART_BACKENDS.filter((b) => ctx.reachable[b])) {
    for (const mode of MODES) {
      const key = COUNTER[backend];
      const store = await openCoreStore(ctx, backend, mode);
      let seconds = 0;
      let kept = 0;
      let errors = 0;
      let firstError;
      let statements = 0;
      try {
        for (let r = 0; r < rounds; r++) {
          const sid = `contention-${randomBytes(6).toString('hex')}`;
          await store.save(sid, {
            cookie: { originalMaxAge: DAY_MS, expires: new Date(Date.now() + DAY_MS).toISOString(), httpOnly: true, path: '/' },
            init: 1,
          });
          const before = snapshot();
          const started = performance.now();
          await Promise.all(
            range(writers).map(async (w) => {
              try {
                const loaded = await store.load(sid);
                loaded.session[`w${w}`] = w;
                await store.save(sid, loaded.session, loaded.state);
              } catch (error) {
                errors++;
                firstError ??= String(error?.message ?? error);
              }
            }),
          );
          seconds += (performance.now() - started) / 1000;
          statements += since(before, key);
          const final = await store.load(sid);
          kept += range(writers).filter((w) => final?.session[`w${w}`] === w).length;
          await store.destroy(sid);
        }
      } finally {
        await store.close();
      }
      const total = writers * rounds;
      const row = {
        backend,
        mode,
        writesPerSec: round(total / seconds),
        keptPercent: round((kept / total) * 100, 1),
        kept,
        total,
        statementsPerWrite: round(statements / total, 2),
        errors,
        firstError,
      };
      rows.push(row);
      log(
        `  contention    ${backend.padEnd(9)} ${mode.padEnd(11)} ${row.writesPerSec} writes/s  ${row.keptPercent}% kept  ${row.statementsPerWrite} statements/write${errors ? `  errors ${errors}: ${firstError}` : ''}`,
      );
    }
  }
  return { writers, rounds, rows };
}
