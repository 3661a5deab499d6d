/**
 * Hostile input on every backend: ids at rest, malformed ids and values,
 * prototype-pollution payloads, corrupt rows, log out everywhere, and
 * property-based fuzzing of get/set/destroy/touch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import './support/random.js';
import { hashSessionId, type SessionStore, type SessionStoreError, toJsonValue, type JsonObject } from '../src/index.js';
import { backendsForThisFile, isStoreError as isError, sql, dropTable, LOCKING_MODES, CookieStore } from './support/backends.js';

const backends = await backendsForThisFile();

const cookie = (): JsonObject => ({ originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString(), path: '/' });

/** Payloads of published prototype-pollution advisories (lodash, jQuery, hoek, minimist, ...). */
const POLLUTION_PAYLOADS = [
  '{"__proto__":{"polluted":"yes"}}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '{"a":{"__proto__":{"polluted":"yes"}}}',
  '{"list":[{"__proto__":{"polluted":"yes"}}]}',
  '{"__proto__":{"isAdmin":true,"toString":"x"}}',
  '{"deep":{"deeper":{"constructor":{"prototype":{"polluted":"yes"}}}}}',
  '{"prototype":{"polluted":"yes"}}',
];

function assertNoPollution(): void {
  const probe = {} as Record<string, unknown>;
  assert.equal(probe['polluted'], undefined);
  assert.equal(probe['isAdmin'], undefined);
  assert.equal(typeof probe.toString, 'function');
  assert.deepStrictEqual(Object.getOwnPropertyNames(Object.prototype).sort(), BASELINE_PROTOTYPE);
}
const BASELINE_PROTOTYPE = Object.getOwnPropertyNames(Object.prototype).sort();

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`${backend.name} / ${locking}: log out everywhere`, () => {
      const table = `ssn_users_${locking}`;
      let store: SessionStore;
      before(async () => {
        await dropTable(backend, table);
        store = new CookieStore({ url: backend.url, table, locking, userIdKey: 'passport.user', createTable: true });
        await store.ready();
      });
      after(async () => {
        await store.close();
        await dropTable(backend, table);
      });

      test('the user-id column follows login and logout, whatever else changes', async () => {
        await store.save('u-s1', { cookie: cookie(), passport: { user: 'u1' } });
        await store.save('u-s2', { cookie: cookie(), passport: { user: 'u1' }, cart: [1] });
        await store.save('u-s3', { cookie: cookie(), passport: { user: 42 } });
        await store.save('u-s4', { cookie: cookie() });
        assert.equal((await store.listByUser('u1')).length, 2);
        assert.deepStrictEqual(
          (await store.listByUser(42)).map(({ session }) => session['passport']),
          [{ user: 42 }],
        );

        const anonymous = await store.load('u-s4');
        assert.ok(anonymous);
        await store.save('u-s4', { ...anonymous.session, passport: { user: 'u1' } }, anonymous.state);
        assert.equal((await store.listByUser('u1')).length, 3);

        const leaving = await store.load('u-s2');
        assert.ok(leaving);
        const { passport: _passport, ...loggedOut } = leaving.session;
        await store.save('u-s2', loggedOut, leaving.state);
        assert.equal((await store.listByUser('u1')).length, 2);

        const busy = await store.load('u-s1');
        assert.ok(busy);
        await store.save('u-s1', { ...busy.session, visits: 3 }, busy.state);
        const listed = await store.listByUser('u1');
        assert.equal(listed.length, 2);
        assert.ok(listed.every(({ expiresAt }) => expiresAt.getTime() > Date.now()));
      });

      test('destroyByUser removes every session of the user, and concurrent saves cannot bring one back', async () => {
        const sids = ['d-1', 'd-2', 'd-3', 'd-4'];
        for (const sid of sids) await store.save(sid, { cookie: cookie(), passport: { user: 'u9' }, n: 0 });
        await store.save('d-other', { cookie: cookie(), passport: { user: 'u10' } });
        const loaded = await Promise.all(sids.map((sid) => store.load(sid)));
        const saves = loaded.map(async (session, i) => {
          assert.ok(session);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
          await store.save(sids[i] as string, { ...session.session, n: i + 1 }, session.state);
          await store.save(sids[i] as string, { ...session.session, n: i + 2 }, session.state);
        });
        const [destroyed] = await Promise.all([store.destroyByUser('u9'), ...saves]);
        assert.equal(destroyed, 4);
        for (const sid of sids) assert.equal(await store.load(sid), null, sid);
        assert.deepStrictEqual(await store.listByUser('u9'), []);
        assert.equal((await store.listByUser('u10')).length, 1);
      });
    });
  }

  describe(`${backend.name}: hostile input`, () => {
    const table = 'ssn_hostile';
    let store: SessionStore;
    before(async () => {
      await dropTable(backend, table);
      store = new CookieStore({ url: backend.url, table, createTable: true });
      await store.ready();
    });
    after(async () => {
      await store.close();
      await dropTable(backend, table);
    });

    test('hashSessionIds: false stores the raw id (the documented legacy option)', async () => {
      const raw = new CookieStore({ url: backend.url, table, hashSessionIds: false });
      try {
        await raw.save('raw-id-1', { cookie: cookie(), a: 1 });
        assert.notEqual(await backend.rows(table).read('raw-id-1'), undefined);
        assert.deepStrictEqual((await raw.load('raw-id-1'))?.session['a'], 1);
        assert.equal(await store.load('raw-id-1'), null, 'a hashing store does not find raw rows');
      } finally {
        await raw.close();
      }
    });

    test('a failed first save writes no row', async () => {
      await assert.rejects(store.save('never-stored', { n: 10n }), isError('ERR_VALUE_NOT_STORABLE'));
      await assert.rejects(store.save('never-stored', { big: 'x'.repeat(1_100_000) }), isError('ERR_SESSION_TOO_LARGE'));
      assert.equal(await backend.rows(table).read(hashSessionId('never-stored')), undefined);
    });

    for (const payload of POLLUTION_PAYLOADS) {
      test(`prototype pollution ${payload}: refused in sessions and deltas, dropped from rows`, async () => {
        const sid = `pp-${payload.length}-${Math.random()}`;
        await assert.rejects(store.save(sid, JSON.parse(payload) as object), isError('ERR_FORBIDDEN_KEY'));
        await store.save(sid, { cookie: cookie(), safe: 1 });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await assert.rejects(store.save(sid, { ...loaded.session, prefs: JSON.parse(payload) as object }, loaded.state), isError('ERR_FORBIDDEN_KEY'));
        assert.deepStrictEqual((await store.load(sid))?.session, loaded.session);
        // A row written by someone else with the payload inside.
        const hostile = { ...(JSON.parse(payload) as object), cookie: cookie(), safe: 2 };
        const text = JSON.stringify(hostile).replace('{', `{"__proto__":{"polluted":"yes"},`);
        await backend.rows(table).rewrite(hashSessionId(sid), text);
        const tampered = await store.load(sid);
        assert.ok(tampered);
        assert.equal(tampered.session['safe'], 2);
        assert.equal(Object.getPrototypeOf(tampered.session), Object.prototype);
        await store.save(sid, { ...tampered.session, after: true }, tampered.state);
        assert.equal((await store.load(sid))?.session['after'], true);
        assertNoPollution();
      });
    }
  });

  // A table made by hand with a text data column: the SQL databases only.
  if (backend.sql)
    describe(`${backend.name}: corrupt rows in a text-data table`, () => {
      const table = 'ssn_corrupt';
      let store: SessionStore;
      const columns = {
        postgres: 'id text PRIMARY KEY, data text NULL, expires_at timestamptz NOT NULL',
        mysql: 'id VARCHAR(256) PRIMARY KEY, data LONGTEXT NULL, expires_at BIGINT NOT NULL',
        sqlite: 'id TEXT PRIMARY KEY, data TEXT NULL, expires_at INTEGER NOT NULL',
      }[backend.dialect as 'postgres' | 'mysql' | 'sqlite'];
      const later = (): unknown => (backend.dialect === 'postgres' ? new Date(Date.now() + 3_600_000) : Date.now() + 3_600_000);
      before(async () => {
        await dropTable(backend, table);
        await backend.query(`CREATE TABLE ${table} (${columns})`);
        store = new CookieStore({ url: backend.url, table });
      });
      after(async () => {
        await store.close();
        await dropTable(backend, table);
      });

      test('a text data column works in every locking mode', async () => {
        for (const locking of LOCKING_MODES.filter((mode) => mode !== 'optimistic')) {
          const modeStore = new CookieStore({ url: backend.url, table, locking });
          try {
            const sid = `text-${locking}`;
            await modeStore.save(sid, { cookie: cookie(), a: { b: 1 } });
            const first = await modeStore.load(sid);
            const second = await modeStore.load(sid);
            assert.ok(first && second);
            await modeStore.save(sid, { ...first.session, a: { b: 1, c: null } }, first.state);
            await modeStore.save(sid, { ...second.session, d: [1, 'two'] }, second.state);
            assert.deepStrictEqual({ ...(await modeStore.load(sid))?.session, cookie: null }, { cookie: null, a: { b: 1, c: null }, d: [1, 'two'] });
          } finally {
            await modeStore.close();
          }
        }
      });

      test('invalid JSON, wrong types, NULL and truncated text: ERR_CORRUPT_ROW, other sessions unaffected', async () => {
        const corrupt: (string | null)[] = [null, '', '{not json', '{"a":1', '[1,2]', '"text"', '42', 'null', 'true'];
        for (const [index, data] of corrupt.entries()) {
          await backend.query(sql(backend, `INSERT INTO ${table} (id, data, expires_at) VALUES (?, ?, ?)`), [hashSessionId(`bad-${index}`), data, later()]);
        }
        await store.save('healthy', { cookie: cookie(), ok: true });
        for (const index of corrupt.keys()) {
          await assert.rejects(store.load(`bad-${index}`), isError('ERR_CORRUPT_ROW'), `row ${JSON.stringify(corrupt[index])}`);
        }
        assert.equal((await store.load('healthy'))?.session['ok'], true);
        const all = await store.all();
        assert.ok(all.some((session) => session['ok'] === true));
        assert.ok(all.every((session) => typeof session === 'object' && session !== null && !Array.isArray(session)));
        // A corrupt row can still be destroyed, and then a fresh session takes its id.
        await store.destroy('bad-2');
        await store.save('bad-2', { cookie: cookie(), fresh: true });
        assert.equal((await store.load('bad-2'))?.session['fresh'], true);
      });
    });

  describe(`${backend.name}: fuzzing`, () => {
    const table = 'ssn_fuzz';
    let stores: Map<string, SessionStore>;
    before(async () => {
      await dropTable(backend, table);
      const creator = new CookieStore({ url: backend.url, table, locking: 'optimistic', createTable: true });
      await creator.ready();
      await creator.close();
      stores = new Map(LOCKING_MODES.map((locking) => [locking, new CookieStore({ url: backend.url, table, locking })]));
    });
    after(async () => {
      for (const store of stores.values()) await store.close();
      await dropTable(backend, table);
    });

    const validId = fc.constantFrom('alpha', 'beta', 'gamma', 'ümlaut-😀', 'x'.repeat(256));
    const anyId = fc.oneof(
      validId,
      fc.string({ maxLength: 300 }),
      fc.constantFrom('', 'x'.repeat(257), 'nul\u0000id', 'tab\tid', '\u007f'),
      fc.constantFrom(undefined, null, 7, { id: 'x' }, ['a']),
    );
    const key = fc.oneof(
      fc.constantFrom('a', 'b', 'cart', 'we"ird', 'back\\slash', 'dot.ted', '[0]', '$', '*', ' ', 'é😀', '__proto__', 'constructor'),
      fc.string({ maxLength: 5 }),
    );
    const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.constant(10n), fc.constant(undefined));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 3 }), tie('object')),
      object: fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
    }));
    const session = fc.dictionary(key, value, { maxKeys: 5, noNullPrototype: true });
    const command = fc.oneof(
      fc.record({ op: fc.constant('set' as const), id: anyId, data: session }),
      fc.record({ op: fc.constant('update' as const), id: validId, data: session }),
      fc.record({ op: fc.constant('get' as const), id: anyId }),
      fc.record({ op: fc.constant('destroy' as const), id: anyId }),
      fc.record({ op: fc.constant('touch' as const), id: anyId }),
    );

    /** What the store must accept, computed without it: the stored form, or the error code. */
    function expected(data: unknown): { stored: JsonObject } | { code: string } {
      try {
        const stored = toJsonValue(data) as JsonObject;
        if (Buffer.byteLength(JSON.stringify(stored)) > 1024 * 1024) return { code: 'ERR_SESSION_TOO_LARGE' };
        return { stored };
      } catch (error) {
        return { code: (error as SessionStoreError).code };
      }
    }

    test('get, set, update, destroy and touch with arbitrary ids and values: no crash, no stray row, the sentinel untouched', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...LOCKING_MODES), fc.array(command, { minLength: 1, maxLength: 12 }), async (locking, commands) => {
          const store = stores.get(locking) as SessionStore;
          await store.clear();
          const sentinel = { cookie: cookie(), mine: 'untouched' };
          await store.save('sentinel', sentinel);
          const model = new Map<string, JsonObject>();
          const valid = (id: unknown): id is string =>
            typeof id === 'string' && id.length > 0 && id.length <= 256 && !/[\u0000-\u001f\u007f]/.test(id) && id !== 'sentinel';
          for (const step of commands) {
            const id = step.id as string;
            if (!valid(id) && !(typeof id === 'string' && id === 'sentinel')) {
              const call =
                step.op === 'get'
                  ? store.load(id)
                  : step.op === 'destroy'
                    ? store.destroy(id)
                    : step.op === 'touch'
                      ? store.touch(id, { cookie: cookie() })
                      : store.save(id, { ...step.data, cookie: cookie() });
              await assert.rejects(call, isError('ERR_INVALID_SESSION_ID'));
              continue;
            }
            if (id === 'sentinel') continue;
            if (step.op === 'get') {
              assert.deepStrictEqual((await store.load(id))?.session ?? null, model.get(id) ?? null);
            } else if (step.op === 'destroy') {
              await store.destroy(id);
              model.delete(id);
            } else if (step.op === 'touch') {
              await store.touch(id, { cookie: cookie() });
            } else {
              const data = { ...step.data, cookie: cookie() };
              const outcome = expected(data);
              const loaded = step.op === 'update' ? await store.load(id) : null;
              const saving = store.save(id, data, loaded?.state);
              if ('code' in outcome) {
                await assert.rejects(saving, isError(outcome.code));
              } else {
                await saving;
                // An update with nothing loaded is a first save: stored as given.
                model.set(id, outcome.stored);
              }
            }
          }
          for (const [id, stored] of model) {
            const loaded = await store.load(id);
            assert.deepStrictEqual({ ...loaded?.session, cookie: null }, { ...stored, cookie: null }, `session ${JSON.stringify(id)}`);
          }
          assert.equal(await store.length(), model.size + 1);
          assert.deepStrictEqual((await store.load('sentinel'))?.session, sentinel);
          assertNoPollution();
        }),
        { numRuns: 30 },
      );
    });
  });
}
