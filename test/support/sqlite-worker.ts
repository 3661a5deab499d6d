/**
 * One process of the multi-process SQLite test: loads the shared session,
 * adds its own keys one save at a time, with pauses, and exits.
 * Arguments: url, table, locking, session id, worker index, saves.
 */
import type { LockingMode } from '../../src/index.js';
import { CookieStore } from './backends.js';

const [url, table, locking, sid, worker, saves] = process.argv.slice(2) as [string, string, LockingMode, string, string, string];
const store = new CookieStore({ url, table, locking });
for (let i = 0; i < Number(saves); i++) {
  const loaded = await store.load(sid);
  if (loaded === null) throw new Error('the shared session vanished');
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
  await store.save(sid, { ...loaded.session, [`p${worker}_${i}`]: i }, loaded.state);
}
await store.close();
