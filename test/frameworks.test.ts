/**
 * One suite for every framework adapter, through real HTTP on every backend
 * and locking mode: the lost-update scenario that every classic store fails,
 * regenerate, logout racing writes, and what a request costs the database.
 * `FRAMEWORK=express,fastify` narrows it, as `DATABASE=` does the backends.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { hashSessionId, SessionStore } from '../src/index.js';
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

        test(`rotate${framework.rotates ? '' : " (not in this framework's own session package)"}: a new id with the data, the writes answered before it included; the old id dead at once`, {
          skip: !framework.rotates,
        }, async () => {
          const client = new Client(app.base);
          const { id: oldId } = await client.request('POST', '/start');
          for (const key of ['a', 'b', 'c']) await client.request('POST', `/set/${key}`);
          const oldCookie = client.cookie;
          const stale = new Client(app.base);
          stale.cookie = oldCookie;
          // Writes of the same session in flight while it rotates: each lands before the move, or finds the id dead.
          const racing = Array.from({ length: 5 }, (_, i) => stale.request('POST', `/set/racing${i}`));
          const { id: newId } = await client.request('POST', '/rotate');
          await Promise.all(racing);
          assert.notEqual(newId, oldId);
          const { id: seen, keys } = await client.request('GET', '/keys');
          assert.equal(seen, newId, 'the response set the new cookie');
          assert.deepStrictEqual(
            (keys as string[]).filter((key) => !key.startsWith('k_racing')),
            ['k_a', 'k_b', 'k_c'],
          );
          assert.equal(await rows(table).read(hashSessionId(String(oldId))), undefined, 'the old id is dead');
          await Promise.all(
            Array.from({ length: 3 }, (_, i) => {
              const late = new Client(app.base);
              late.cookie = oldCookie;
              return late.request('POST', `/set/late${i}`);
            }),
          );
          assert.equal(await rows(table).read(hashSessionId(String(oldId))), undefined, 'late writes of the old id bring nothing back');
          const rotated = await rows(table).read(hashSessionId(String(newId)));
          assert.equal(rotated?.data?.['user'], 'ann');
          assert.equal(rotated?.data?.['started'], true);
          for (let i = 0; i < 3; i++) assert.equal(rotated?.data?.[`k_late${i}`], undefined);
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

    describe(`${framework.name} on ${backend.name}: a user's sessions`, () => {
      const table = `ssn_fw_${tableTag}_users`;

      test(`listed with ${framework.rotates ? 'the client that created them' : "no client (the framework's session package gives the store no request)"}; revoked by handle, logged out; the least recently used logged out past maxSessionsPerUser`, async () => {
        await dropTable(backend, table);
        const app = await framework.start({
          url: backend.url,
          table,
          createTable: true,
          autopurge: false,
          userIdKey: 'user',
          recordClient: true,
          maxSessionsPerUser: 2,
        });
        const store = new SessionStore({ url: backend.url, table, userIdKey: 'user', autopurge: false });
        try {
          const phone = new Client(app.base);
          const laptop = new Client(app.base);
          await phone.request('POST', '/start');
          const { id: phoneId } = await phone.request('POST', '/login');
          await laptop.request('POST', '/start');
          const { id: laptopId } = await laptop.request('POST', '/login');
          for (const device of [phone, laptop]) await device.request('POST', '/set/mine');
          const sessions = await store.listByUser('ann', { current: String(laptopId) });
          assert.equal(sessions.length, 2);
          for (const listed of sessions) {
            if (framework.rotates) {
              assert.equal(typeof listed.client?.userAgent, 'string', 'the user agent is recorded');
              if (listed.client?.ip !== undefined) assert.match(listed.client.ip, /127\.0\.0\.1|::1/);
            } else assert.equal(listed.client, undefined);
          }
          const other = sessions.find(({ current }) => !current);
          assert.ok(other);
          assert.equal(await store.destroyByHandle('ann', other.handle), true);
          assert.equal(await rows(table).read(hashSessionId(String(phoneId))), undefined);
          assert.deepStrictEqual((await phone.request('GET', '/keys'))['keys'], [], 'the revoked device is logged out');
          assert.deepStrictEqual((await laptop.request('GET', '/keys'))['keys'], ['k_mine'], 'the other stays');
          // maxSessionsPerUser: 2. Two more logins: the laptop, used least recently, is logged out.
          await delay(20);
          for (const device of [new Client(app.base), new Client(app.base)]) {
            await device.request('POST', '/start');
            await device.request('POST', '/login');
          }
          assert.equal((await store.listByUser('ann')).length, 2);
          assert.deepStrictEqual((await laptop.request('GET', '/keys'))['keys'], [], 'the least recently used device is logged out');
        } finally {
          await store.close();
          await app.close();
          await dropTable(backend, table);
        }
      });
    });

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
