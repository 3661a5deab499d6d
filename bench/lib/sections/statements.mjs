/**
 * 3. Statements per request, counted at the driver (see counters.mjs): for
 * each store, requests one after another on distinct ~1 KB sessions: creating
 * the session, a read-only request, a request that changes one key.
 */
import { createSessions, get, startApp } from '../app.mjs';
import { since, snapshot } from '../counters.mjs';
import { COUNTER, openStore, storeLabel } from '../stores.mjs';
import { log, round } from '../util.mjs';

export async function statementsPerRequest(ctx) {
  const { sessions } = ctx.config.statements;
  const rows = [];
  for (const def of ctx.defs) {
    const key = COUNTER[def.backend];
    const { store, close } = await openStore(ctx, def);
    const app = await startApp(store);
    try {
      // One throw-away request so lazy start-up statements (table inspection) are not counted.
      await createSessions(app, 1);
      const before = snapshot();
      const cookies = await createSessions(app, sessions);
      const create = since(before, key) / sessions;
      const measure = async (path) => {
        const start = snapshot();
        for (const cookie of cookies) {
          const response = await get(`${app.origin}${path}`, cookie);
          if (response.status !== 200) throw new Error(`${def.id} ${path}: ${response.status} ${response.body}`);
        }
        // Guards against a store calling back before its statement was sent (none should).
        await new Promise((resolve) => setTimeout(resolve, 50));
        return since(start, key) / cookies.length;
      };
      const read = await measure('/read');
      const write = await measure('/write');
      const row = {
        id: def.id,
        store: storeLabel(def),
        backend: def.backend,
        mode: def.mode ?? null,
        counted: key ?? 'n/a (in memory)',
        create: key === null ? null : round(create, 2),
        readOnly: key === null ? null : round(read, 2),
        write: key === null ? null : round(write, 2),
      };
      rows.push(row);
      log(`  statements    ${row.store.padEnd(38)} ${row.backend.padEnd(9)} create ${row.create}  read-only ${row.readOnly}  write ${row.write}`);
    } finally {
      await app.close();
      await close();
    }
  }
  return { sessionsPerStore: sessions, rows };
}
