/**
 * The narrow backend port: a storage that supplies only the required members
 * (load, upsert, compare-and-swap, expiry, destroy, listing) still keeps
 * every concurrent change, logs a user out everywhere and counts its
 * sessions, with the core deriving the rest and owning the retries. Shown on
 * real storages (each backend's own required members, its optional ones
 * hidden), since every backend we ship brings faster paths of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReadyBackend, SessionBackend } from '../src/core/backend.js';
import { SessionStoreCore } from '../src/core/session-store.js';
import { backendNamed } from '../src/backends/registry.js';
import { resolveOptions } from '../src/options.js';
import type { SessionStoreOptions } from '../src/index.js';
import { backendsForThisFile, dropTable, isStoreError } from './support/backends.js';

const backends = await backendsForThisFile(['sqlite', 'redis']);

/** The members a key-value storage must supply, and nothing else. */
function requiredOnly(storage: ReadyBackend, locking: ReadyBackend['locking']): ReadyBackend {
  return {
    locking,
    load: (key, now) => storage.load(key, now),
    upsert: (write) => storage.upsert(write),
    compareAndSwap: (write) => storage.compareAndSwap(write),
    extendExpiry: (move) => storage.extendExpiry(move),
    destroy: (key) => storage.destroy(key),
    listByUser: (userId, now) => storage.listByUser(userId, now),
    all: (now) => storage.all(now),
    clear: () => storage.clear(),
  };
}

/** A store over the named backend seen through the required members alone, in `locking` mode. */
function narrowStore(dialect: string, options: SessionStoreOptions, locking: ReadyBackend['locking']): SessionStoreCore {
  // The storage is prepared for compare-and-swap (SQL: a lock_version column); the store is told `locking`.
  const resolved = resolveOptions({ autopurge: false, createTable: true, userIdKey: 'user', ...options, locking: 'optimistic' });
  const backend = backendNamed(dialect);
  assert.ok(backend);
  return new SessionStoreCore({
    options: resolved,
    backend: {
      name: backend.name,
      storageName: backend.storage,
      open: async () => {
        const opened = await backend.open(resolved);
        const narrow: SessionBackend = {
          prepare: async (needs) => requiredOnly(await opened.prepare(needs), locking),
          ping: () => opened.ping(),
          isConnectionError: (error) => opened.isConnectionError(error),
          close: () => opened.close(),
        };
        return narrow;
      },
    },
  });
}

for (const backend of backends) {
  describe(`${backend.name} through the required members of the port alone`, () => {
    const table = 'ssn_narrow_port';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    for (const locking of ['atomic', 'optimistic'] as const) {
      test(`${locking}: 20 overlapping requests each change their own key of one session: every change is kept`, async () => {
        const store = narrowStore(backend.dialect, { url: backend.url, table }, locking);
        try {
          const sid = `parallel-${locking}`;
          await store.save(sid, { user: 'u1', visits: 0 });
          const loads = await Promise.all(Array.from({ length: 20 }, () => store.load(sid)));
          await Promise.all(
            loads.map((loaded, index) => {
              assert.ok(loaded);
              return store.save(sid, { ...loaded.session, [`k${index}`]: index }, loaded.state);
            }),
          );
          const stored = await store.load(sid);
          for (let index = 0; index < 20; index++) assert.equal(stored?.session[`k${index}`], index, `k${index}`);
        } finally {
          await store.clear();
          await store.close();
        }
      });
    }

    test('log out everywhere, counts and purge are derived; a save loaded before the logout writes nothing', async () => {
      const store = narrowStore(backend.dialect, { url: backend.url, table }, 'atomic');
      try {
        await store.save('a1', { user: 'alice', n: 1 });
        await store.save('a2', { user: 'alice', n: 2 });
        await store.save('b1', { user: 'bob', n: 3 });
        const before = await store.load('a1');
        assert.ok(before);
        assert.equal(await store.length(), 3);
        assert.deepStrictEqual(await store.stats(), { live: 3, expired: 0 });
        assert.deepStrictEqual((await store.listByUser('alice')).map(({ session }) => session['n']).sort(), [1, 2]);

        assert.equal(await store.destroyByUser('alice'), 2);
        await store.save('a1', { ...before.session, late: true }, before.state);
        assert.equal(await store.load('a1'), null, 'a logout sticks');
        assert.equal(await store.length(), 1);
        assert.equal(await store.purge(), 0, 'nothing to purge where the storage has no purge');
      } finally {
        await store.clear();
        await store.close();
      }
    });

    test("a user's sessions through the port's defaults: revoke by handle, all but one, rotate (a copy), the per-user limit", async () => {
      const store = narrowStore(backend.dialect, { url: backend.url, table, maxSessionsPerUser: 3 }, 'optimistic');
      try {
        for (const sid of ['u1', 'u2', 'u3']) await store.save(sid, { user: 'uma', sid });
        const listed = await store.listByUser('uma', { current: 'u1' });
        assert.deepStrictEqual(listed.map(({ session, current }) => [session['sid'], current]).sort(), [
          ['u1', true],
          ['u2', false],
          ['u3', false],
        ]);
        const u2 = listed.find(({ session }) => session['sid'] === 'u2');
        assert.ok(u2);
        assert.equal(await store.destroyByHandle('uma', u2.handle), true);
        assert.equal(await store.load('u2'), null);
        const before = await store.load('u1');
        assert.ok(before);
        const moved = await store.rotate('u1', 'u1-rotated', before.state);
        assert.ok(moved);
        assert.equal(await store.load('u1'), null);
        assert.deepStrictEqual((await store.load('u1-rotated'))?.session, { user: 'uma', sid: 'u1' });
        await store.save('u1-rotated', { ...before.session, more: 1 }, moved);
        assert.equal((await store.load('u1-rotated'))?.session['more'], 1);
        assert.equal(await store.destroyByUser('uma', { except: 'u1-rotated' }), 1);
        assert.deepStrictEqual(
          (await store.listByUser('uma')).map(({ session }) => session['sid']),
          ['u1'],
        );
        for (const sid of ['l1', 'l2', 'l3', 'l4', 'l5']) await store.save(sid, { user: 'lee' });
        assert.equal((await store.listByUser('lee')).length, 3);
      } finally {
        await store.clear();
        await store.close();
      }
    });

    test('pessimistic needs a lock the storage does not have: refused, saying why', async () => {
      const store = narrowStore(backend.dialect, { url: backend.url, table }, 'pessimistic');
      try {
        await assert.rejects(store.load('x'), isStoreError('ERR_INVALID_OPTION', 'pessimistic'));
      } finally {
        await store.close();
      }
    });
  });
}
