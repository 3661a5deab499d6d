// @ts-nocheck: compiled inside the fetched koajs/session suite, not in this project.
// Stands in for koajs/session's test/store.ts (its in-memory external store): the store every
// test of test/store.test.ts and test/externalkey.test.ts shares is smart-session-store's.
//   PROJECT_DIR         the smart-session-store checkout (built: dist/)
//   PEER_STORE_URL      default sqlite::memory:; postgres://, mysql://, redis://: a table (key
//                       prefix) peer_koa_<pid>_<n> per store
//   PEER_STORE_OPTIONS  JSON of more store options, e.g. '{"touchAfter":0}'
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { SmartSessionStore } = require(path.join(process.env.PROJECT_DIR!, 'dist/cjs/adapters/koa.js'));

let made = 0;

/** A new SmartSessionStore on PEER_STORE_URL, closed when the run ends. */
export function makeStore() {
  const url = process.env.PEER_STORE_URL ?? 'sqlite::memory:';
  const options: Record<string, unknown> = { url, createTable: true, ...JSON.parse(process.env.PEER_STORE_OPTIONS ?? '{}') };
  if (!url.startsWith('sqlite:')) options.table = `peer_koa_${process.pid}_${made}`;
  if (/^(postgres(ql)?|mysql|mariadb):/.test(url) && !('poolSize' in options)) options.poolSize = 2;
  made++;
  const store = new SmartSessionStore(options);
  process.once('beforeExit', () => {
    store.close().catch(() => {});
  });
  return store;
}

export default makeStore();
