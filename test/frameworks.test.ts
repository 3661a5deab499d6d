/**
 * One suite for every framework adapter, through real HTTP on every backend
 * and locking mode: the lost-update scenario that every classic store fails,
 * regenerate, logout racing writes, and what a request costs the database.
 * `FRAMEWORK=express,fastify` narrows it, as `DATABASE=` does the backends.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, LOCKING_MODES } from './support/backends.js';
import type { FrameworkHarness } from './support/frameworks/harness.js';
import { Client } from './support/http.js';

/** The framework harnesses: every file in support/frameworks/ but the contract itself. */
async function frameworks(): Promise<FrameworkHarness[]> {
  const directory = new URL('./support/frameworks/', import.meta.url);
  const files = readdirSync(directory)
    .filter((file) => file.endsWith('.ts') && file !== 'harness.ts')
    .sort();
  const all = await Promise.all(files.map(async (file) => ((await import(new URL(file, directory).href)) as { harness: FrameworkHarness }).harness));
  const wanted = process.env['FRAMEWORK']
    ?.split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (wanted === undefined || wanted.length === 0) return all;
  const unknown = wanted.filter((name) => !all.some((harness) => harness.name === name));
  if (unknown.length > 0)
    throw new Error(`FRAMEWORK=${process.env['FRAMEWORK']}: unknown ${unknown.join(', ')} (${all.map((harness) => harness.name).join(', ')})`);
  return all.filter((harness) => wanted.includes(harness.name));
}

// Every await of the file comes before this one: see backendsForThisFile.
const harnesses = await frameworks();
const backends = await backendsForThisFile();

const PARALLEL = 20;
const ROUNDS = 20;

for (const framework of harnesses) {
  // Table names are identifiers: react-router becomes react_router.
  const tableTag = framework.name.replace(/[^A-Za-z0-9_]/g, '_');
  for (const backend of backends) {
    const rows = (table: string) => backend.rows(table);

    for (const locking of LOCKING_MODES) {
      describe(`${framework.name} on ${backend.name} / ${locking}`, () => {
        const table = `ssn_fw_${tableTag}_${locking}`;
        let app: Awaited<ReturnType<FrameworkHarness['start']>>;

        before(async () => {
          await dropTable(backend, table);
          app = await framework.start({ url: backend.url, table, locking, createTable: true, autopurge: false });
        });
        after(async () => {
          await app.close();
          await dropTable(backend, table);
        });

        test(`${PARALLEL} parallel requests on one session each set a key: all kept, ${ROUNDS} rounds`, async () => {
          for (let round = 0; round < ROUNDS; round++) {
            const client = new Client(app.base);
            await client.request('POST', '/start');
            const keys = Array.from({ length: PARALLEL }, (_, i) => `r${round}_${i}`);
            await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
            const { keys: kept } = await client.request('GET', '/keys');
            assert.deepStrictEqual(kept, keys.map((key) => `k_${key}`).sort(), `round ${round}`);
          }
        });

        test('regenerate keeps nothing of the old session, and requests still carrying its id cannot bring it back', async () => {
          const client = new Client(app.base);
          const { id: oldId } = await client.request('POST', '/start');
          await client.request('POST', '/set/before');
          const stale = new Client(app.base);
          stale.cookie = client.cookie;
          const { id: newId } = await client.request('POST', '/login');
          assert.notEqual(newId, oldId);
          assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], []);
          assert.equal(await rows(table).read(hashSessionId(String(oldId))), undefined);
          await Promise.all(Array.from({ length: 5 }, (_, i) => stale.request('POST', `/set/stale${i}`)));
          assert.equal(await rows(table).read(hashSessionId(String(oldId))), undefined);
          const renewed = await rows(table).read(hashSessionId(String(newId)));
          assert.equal(renewed?.data?.['user'], 'ann');
          assert.equal(renewed?.data?.['k_before'], undefined);
        });

        test('a logout racing writes of the same session stays logged out', async () => {
          const client = new Client(app.base);
          const { id } = await client.request('POST', '/start');
          const loggedInCookie = client.cookie;
          const writes = Array.from({ length: 10 }, (_, i) => client.request('POST', `/set/late${i}`));
          await delay(5);
          const logout = new Client(app.base);
          logout.cookie = loggedInCookie;
          await logout.request('POST', '/logout');
          await Promise.all(writes);
          assert.equal(await rows(table).read(hashSessionId(String(id))), undefined);
          // A late write may have been given a fresh session (and cookie); the old cookie finds nothing.
          const later = new Client(app.base);
          later.cookie = loggedInCookie;
          assert.deepStrictEqual((await later.request('GET', '/keys'))['keys'], []);
        });
      });
    }

    describe(`${framework.name} on ${backend.name}: what a request costs`, () => {
      const table = `ssn_fw_${tableTag}_cost`;

      test('a read-only request sends one statement (the lookup); a writing one, one more', async () => {
        await dropTable(backend, table);
        const counted = await backend.counted();
        const app = await framework.start({ connection: counted.connection, table, createTable: true, autopurge: false });
        try {
          const client = new Client(app.base);
          await client.request('POST', '/start');
          counted.statements.length = 0;
          assert.deepStrictEqual(await client.request('GET', '/read'), { started: true });
          assert.equal(counted.statements.length, 1, `read-only request: ${counted.statements.join(' | ')}`);
          if (backend.sql) assert.match(counted.statements[0] as string, /^SELECT/);
          counted.statements.length = 0;
          await client.request('POST', '/set/one');
          assert.equal(counted.statements.length, 2, `writing request: ${counted.statements.join(' | ')}`);
        } finally {
          await app.close();
          await counted.close();
          await dropTable(backend, table);
        }
      });
    });
  }
}
