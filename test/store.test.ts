/**
 * The shared suite: every promise of docs/guarantees.md against each
 * backend and each locking mode, on real databases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashSessionId, type SessionStore, type JsonObject, type LockingMode } from '../src/index.js';
import { random } from './support/random.js';
import { backendsForThisFile, isStoreError as isError, delay, dropTable, LOCKING_MODES, CookieStore } from './support/backends.js';

const backends = await backendsForThisFile();

/** A cookie as express-session stores it, expiring in `ms`. */
function cookie(ms = 3_600_000): JsonObject {
  return { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), httpOnly: true, path: '/' };
}

/**
 * The ways a table can hold sessions: each locking mode on a table the store
 * created (atomic saves append to its pending changes), and atomic saves
 * merged inside the database, on a table without a `changes` column (one
 * made by hand, or by an earlier version).
 */
const VARIANTS: readonly { readonly locking: LockingMode; readonly merged: boolean }[] = [
  ...LOCKING_MODES.map((locking) => ({ locking, merged: false })),
  { locking: 'atomic', merged: true },
];

/** Drops the pending-changes column of a table the store created (PostgreSQL: and holds jsonb, as earlier versions made it). */
async function withoutChangesColumn(backend: (typeof backends)[number], table: string): Promise<void> {
  await backend.query(`ALTER TABLE ${table} DROP COLUMN changes`);
  if (backend.dialect === 'postgres') await backend.query(`ALTER TABLE ${table} ALTER COLUMN data TYPE jsonb USING data::jsonb`);
}

for (const backend of backends) {
  for (const { locking, merged } of VARIANTS) {
    if (merged && !backend.sql) continue;
    describe(`${backend.name} / ${locking}${merged ? ', merged in the database' : ''}`, () => {
      const table = `ssn_store_${locking}${merged ? '_merged' : ''}`;
      let store: SessionStore;
      let sidCounter = 0;
      const newSid = (): string => `sid-${locking}-${process.pid}-${++sidCounter}-${Math.random().toString(36).slice(2)}`;

      const rows = backend.rows(table);
      /** The stored data, read past the store. */
      const rawData = async (sid: string): Promise<JsonObject | undefined> => (await rows.read(hashSessionId(sid)))?.data;
      /** Rewrites the stored data behind the store's back, as another writer would. */
      const rawWrite = (sid: string, data: JsonObject): Promise<void> => rows.rewrite(hashSessionId(sid), JSON.stringify(data));

      before(async () => {
        await dropTable(backend, table);
        store = new CookieStore({ url: backend.url, table, locking, poolSize: 10, autopurge: false });
        // Redis has no table: its keys appear as sessions are saved.
        if (backend.sql) await assert.rejects(store.ready(), isError('ERR_TABLE_MISSING'));
        await store.createTable();
        if (merged) {
          await withoutChangesColumn(backend, table);
          await store.close();
          store = new CookieStore({ url: backend.url, table, locking, poolSize: 10, autopurge: false });
        }
      });
      after(async () => {
        await store.close();
      });

      test('createTable makes a table the store uses in the requested mode', async () => {
        assert.equal(await store.lockingMode(), locking);
        await store.createTable(); // idempotent
      });

      test('a first save stores the session as given; load returns it', async () => {
        const sid = newSid();
        assert.equal(await store.load(sid), null);
        const data = { cookie: cookie(), user: { name: 'Zoë 😀', roles: ['admin'] }, n: 1.5, flag: false, none: null };
        await store.save(sid, data);
        const loaded = await store.load(sid);
        assert.deepStrictEqual(loaded?.session, data);
        assert.equal((await store.length()) >= 1, true);
      });

      test('a negative zero is stored and read back as 0 (JSON has no -0)', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), a: [{ '': -0 }] });
        const loaded = await store.load(sid);
        assert.ok(Object.is((loaded?.session['a'] as [{ '': number }] | undefined)?.[0][''], 0));
        assert.ok(loaded);
        await store.save(sid, { ...loaded.session, b: -0 }, loaded.state);
        assert.ok(Object.is((await store.load(sid))?.session['b'], 0));
      });

      test('ids are stored as their SHA-256, never as the cookie value', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), secret: 1 });
        assert.equal((await rows.read(hashSessionId(sid)))?.data?.['secret'], 1);
        assert.equal(await rows.read(sid), undefined);
      });

      test("a request writes only its delta: another writer's change at another path survives", async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), cart: { items: [1] }, user: 'ann', old: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await rawWrite(sid, { ...loaded.session, cart: { items: [1], coupon: 'X' }, other: 'kept' });
        const mine = structuredClone(loaded.session);
        (mine['cart'] as JsonObject)['items'] = [1, 2];
        mine['flash'] = 'added';
        delete mine['old'];
        await store.save(sid, mine, loaded.state);
        assert.deepStrictEqual(await rawData(sid), { ...mine, cart: { items: [1, 2], coupon: 'X' }, other: 'kept' });
      });

      test('a set of an unchanged session writes no data', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), a: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await rawWrite(sid, { ...loaded.session, b: 'written meanwhile' });
        // express-session rolls cookie.expires on every request: that alone is no change.
        const unchanged = {
          ...structuredClone(loaded.session),
          cookie: { ...(loaded.session['cookie'] as JsonObject), expires: new Date(Date.now() + 3_600_500).toISOString() },
        };
        await store.save(sid, unchanged, loaded.state);
        assert.deepStrictEqual(await rawData(sid), { ...loaded.session, b: 'written meanwhile' });
      });

      test('two loads, two saves: changes at different paths both survive, the later wins at a shared path', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), shared: 0, list: [1], obj: { keep: 1, drop: 2 } });
        const first = await store.load(sid);
        const second = await store.load(sid);
        assert.ok(first && second);
        const a = structuredClone(first.session);
        a['fromA'] = 'a';
        a['shared'] = 'A';
        (a['obj'] as JsonObject)['a'] = true;
        const b = structuredClone(second.session);
        b['fromB'] = { nested: ['b'] };
        b['shared'] = 'B';
        b['list'] = [1, 2];
        delete (b['obj'] as JsonObject)['drop'];
        await store.save(sid, a, first.state);
        await store.save(sid, b, second.state);
        const stored = (await store.load(sid))?.session;
        assert.deepStrictEqual(
          { ...stored, cookie: undefined },
          { cookie: undefined, shared: 'B', list: [1, 2], obj: { keep: 1, a: true }, fromA: 'a', fromB: { nested: ['b'] } },
        );
      });

      test('a second save of the same request writes only what changed since its first', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), a: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        const mine = structuredClone(loaded.session);
        mine['b'] = 2;
        const state = await store.save(sid, mine, loaded.state);
        await rawWrite(sid, { ...mine, c: 'other request' });
        mine['d'] = 4;
        await store.save(sid, mine, state);
        assert.deepStrictEqual(await rawData(sid), { ...mine, c: 'other request' });
      });

      test('destroy sticks: a later save of a loaded session does not bring it back', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), user: 'ann' });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await store.destroy(sid);
        const mine = { ...structuredClone(loaded.session), more: 1 };
        await store.save(sid, mine, loaded.state);
        await store.touch(sid, mine, loaded.state);
        assert.equal(await store.load(sid), null);
        assert.equal(await rows.read(hashSessionId(sid)), undefined);
      });

      test('expired sessions are never returned, purged or not', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: { originalMaxAge: 1, expires: new Date(Date.now() - 1000).toISOString() }, marker: sid });
        // A SQL row stays until purged; Redis deletes the key itself once its TTL has passed.
        if (backend.sql) assert.notEqual(await rows.read(hashSessionId(sid)), undefined);
        assert.equal(await store.load(sid), null);
        assert.equal(
          (await store.all()).some((session) => session['marker'] === sid),
          false,
        );
        const loaded = await store.load(sid);
        assert.equal(loaded, null);
      });

      test('a session whose cookie sets no expiry lives ttl seconds', async () => {
        const short = new CookieStore({ url: backend.url, table, locking, ttl: 1 });
        try {
          const sid = newSid();
          await short.save(sid, { cookie: { originalMaxAge: null, expires: null }, a: 1 });
          assert.ok(await short.load(sid));
          await delay(1100);
          assert.equal(await short.load(sid), null);
        } finally {
          await short.close();
        }
      });

      test('touch moves the expiry only past touchAfter, and never revives a session', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(3_600_000), a: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        const stored = loaded.state.expiresAt;
        // 30 s later than stored: under the 60 s default, no write.
        await store.touch(sid, { ...loaded.session, cookie: cookie(3_630_000) }, loaded.state);
        assert.equal((await store.load(sid))?.state.expiresAt, stored);
        // 2 h later: written.
        const state = await store.touch(sid, { ...loaded.session, cookie: cookie(7_200_000) }, loaded.state);
        const moved = (await store.load(sid))?.state.expiresAt ?? 0;
        assert.ok(moved > stored + 3_000_000);
        assert.equal(state?.expiresAt, moved);
        const gone = newSid();
        await store.touch(gone, { cookie: cookie() });
        assert.equal(await rows.read(hashSessionId(gone)), undefined);
      });

      test('values that cannot be stored are refused and the stored session stays intact', async () => {
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), a: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        const cyclic: Record<string, unknown> = { ...loaded.session };
        cyclic['self'] = cyclic;
        await assert.rejects(store.save(sid, cyclic, loaded.state), isError('ERR_VALUE_NOT_STORABLE'));
        await assert.rejects(store.save(sid, { ...loaded.session, n: 1n }, loaded.state), isError('ERR_VALUE_NOT_STORABLE'));
        await assert.rejects(store.save(sid, JSON.parse('{"__proto__":{"polluted":true}}') as object), isError('ERR_FORBIDDEN_KEY'));
        await assert.rejects(store.save(sid, { ...loaded.session, big: 'x'.repeat(1024 * 1024) }, loaded.state), isError('ERR_SESSION_TOO_LARGE'));
        assert.deepStrictEqual(await rawData(sid), loaded.session);
        assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      });

      test('malformed session ids are refused before any SQL runs', async () => {
        for (const sid of [undefined, null, 42, '', 'x'.repeat(257), 'a\u0000b', 'line\nbreak', { id: 1 }]) {
          await assert.rejects(store.load(sid as string), isError('ERR_INVALID_SESSION_ID'));
          await assert.rejects(store.save(sid as string, { a: 1 }), isError('ERR_INVALID_SESSION_ID'));
          await assert.rejects(store.destroy(sid as string), isError('ERR_INVALID_SESSION_ID'));
          await assert.rejects(store.touch(sid as string, {}), isError('ERR_INVALID_SESSION_ID'));
        }
      });

      test('a corrupt row is reported as ERR_CORRUPT_ROW and other sessions are still served', async () => {
        const sid = newSid();
        const healthy = newSid();
        await store.save(sid, { cookie: cookie(), a: 1 });
        await store.save(healthy, { cookie: cookie(), ok: true });
        // jsonb (PostgreSQL) cannot hold invalid JSON; a JSON array is corrupt for a session all the same.
        await rows.rewrite(hashSessionId(sid), backend.dialect === 'postgres' ? '[1,2]' : '{not json');
        await assert.rejects(store.load(sid), isError('ERR_CORRUPT_ROW'));
        assert.deepStrictEqual((await store.load(healthy))?.session, { cookie: (await store.load(healthy))?.session['cookie'], ok: true });
        await store.destroy(sid);
      });

      test('all, length and clear', async () => {
        const own = new CookieStore({ url: backend.url, table: `${table}_list`, locking, createTable: true });
        try {
          await own.clear();
          await own.save(newSid(), { cookie: cookie(), i: 1 });
          await own.save(newSid(), { cookie: cookie(), i: 2 });
          await own.save(newSid(), { cookie: { expires: new Date(Date.now() - 1).toISOString() }, i: 3 });
          assert.equal(await own.length(), 2);
          assert.deepStrictEqual((await own.all()).map((s) => s['i']).sort(), [1, 2]);
          await own.clear();
          assert.equal(await own.length(), 0);
        } finally {
          await own.close();
          await dropTable(backend, `${table}_list`);
        }
      });

      test('randomised concurrent deltas: disjoint paths kept, shared paths end with a written value, deletes stay deleted', async () => {
        for (let round = 0; round < 8; round++) {
          const sid = newSid();
          const workers = 10;
          const initial: JsonObject = { cookie: cookie(), shared: 'initial', nested: { common: 0 } };
          for (let w = 0; w < workers; w++) initial[`doomed${w}`] = w;
          await store.save(sid, initial);
          const written = new Set<unknown>(['initial']);
          const expectations = await Promise.all(
            Array.from({ length: workers }, async (_, w) => {
              await delay(random() * 10);
              const loaded = await store.load(sid);
              assert.ok(loaded);
              const mine = structuredClone(loaded.session);
              const own: JsonObject = {};
              for (let k = 0; k < 1 + Math.floor(random() * 3); k++) own[`k${k}`] = random() < 0.5 ? k : [w, k];
              mine[`worker${w}`] = own;
              (mine['nested'] as JsonObject)[`w${w}`] = w;
              if (random() < 0.5) {
                mine['shared'] = `from ${w}`;
                written.add(`from ${w}`);
              }
              delete mine[`doomed${w}`];
              await delay(random() * 20);
              await store.save(sid, mine, loaded.state);
              return { w, own };
            }),
          );
          const final = (await store.load(sid))?.session;
          assert.ok(final);
          for (const { w, own } of expectations) {
            assert.deepStrictEqual(final[`worker${w}`], own, `worker ${w}'s keys kept`);
            assert.equal((final['nested'] as JsonObject)[`w${w}`], w);
            assert.equal(Object.hasOwn(final, `doomed${w}`), false, `worker ${w}'s delete kept`);
          }
          assert.equal((final['nested'] as JsonObject)['common'], 0);
          assert.ok(written.has(final['shared']), `shared ends with a written value, got ${String(final['shared'])}`);
        }
      });

      test('a burst of saves and loads released at once on one session: every change kept, no call fails', async () => {
        // No pause between the calls: the writers queue for the same lock (or connection) at the same instant, and
        // plain statements arrive while a transaction holds it.
        const sid = newSid();
        await store.save(sid, { cookie: cookie(), n: 0 });
        const writers = 40;
        const loads = await Promise.all(Array.from({ length: writers }, () => store.load(sid)));
        const calls: Promise<unknown>[] = [];
        for (const [w, loaded] of loads.entries()) {
          assert.ok(loaded);
          calls.push(store.save(sid, { ...loaded.session, [`burst${w}`]: w }, loaded.state));
          calls.push(store.load(sid));
        }
        await Promise.all(calls);
        const final = (await store.load(sid))?.session;
        assert.ok(final);
        for (let w = 0; w < writers; w++) assert.equal(final[`burst${w}`], w, `writer ${w}'s key kept`);
      });

      test('destroy sticks against concurrent saves', async () => {
        for (let round = 0; round < 5; round++) {
          const sid = newSid();
          await store.save(sid, { cookie: cookie(), n: 0 });
          const loads = await Promise.all(Array.from({ length: 8 }, () => store.load(sid)));
          await store.destroy(sid);
          await Promise.all(
            loads.map(async (loaded, i) => {
              assert.ok(loaded);
              await delay(Math.random() * 10);
              await store.save(sid, { ...loaded.session, [`late${i}`]: i }, loaded.state);
            }),
          );
          assert.equal(await store.load(sid), null);
          assert.equal(await rows.read(hashSessionId(sid)), undefined);
        }
      });
    });
  }

  // Tables and their columns: the SQL databases only.
  if (backend.sql)
    describe(`${backend.name} / table shape`, () => {
      test('a table with lock_version switches optimistic locking on; atomic can be forced', async () => {
        const table = 'ssn_store_autodetect';
        await dropTable(backend, table);
        const creator = new CookieStore({ url: backend.url, table, locking: 'optimistic' });
        await creator.createTable();
        await creator.close();
        const detected = new CookieStore({ url: backend.url, table });
        const forced = new CookieStore({ url: backend.url, table, locking: 'atomic' });
        try {
          assert.equal(await detected.lockingMode(), 'optimistic');
          assert.equal(await forced.lockingMode(), 'atomic');
          // Both modes on one table stay correct: atomic writes bump lock_version too.
          await detected.save('mixed', { a: 0 });
          const viaOptimistic = await detected.load('mixed');
          const viaAtomic = await forced.load('mixed');
          assert.ok(viaOptimistic && viaAtomic);
          await forced.save('mixed', { ...viaAtomic.session, atomic: 1 }, viaAtomic.state);
          await detected.save('mixed', { ...viaOptimistic.session, optimistic: 1 }, viaOptimistic.state);
          assert.deepStrictEqual((await detected.load('mixed'))?.session, { a: 0, atomic: 1, optimistic: 1 });
        } finally {
          await detected.close();
          await forced.close();
          await dropTable(backend, table);
        }
      });

      test('optimistic locking on a table without lock_version is a clear schema error', async () => {
        const table = 'ssn_store_noversion';
        await dropTable(backend, table);
        const creator = new CookieStore({ url: backend.url, table, createTable: true });
        await creator.ready();
        await creator.close();
        const store = new CookieStore({ url: backend.url, table, locking: 'optimistic' as LockingMode });
        try {
          await assert.rejects(store.load('x'), (error: unknown) => isError('ERR_SCHEMA')(error) && /lock_version/.test((error as Error).message));
        } finally {
          await store.close();
          await dropTable(backend, table);
        }
      });

      test('a closed store refuses calls', async () => {
        const store = new CookieStore({ url: backend.url, table: 'ssn_store_closed', createTable: true });
        await store.ready();
        await store.close();
        await assert.rejects(store.load('x'), isError('ERR_STORE_CLOSED'));
        await dropTable(backend, 'ssn_store_closed');
      });
    });
}
