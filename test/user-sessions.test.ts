/**
 * A user's sessions and their lifecycle, on every backend and locking mode:
 * the list of a user's sessions (handle, times, current, client), revoking
 * one by its handle or all but the current one (a revoked session stays
 * revoked against its requests in flight), and the absolute timeout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashSessionId, SessionStore, type SessionStoreOptions } from '../src/index.js';
import { random } from './support/random.js';
import { backendsForThisFile, delay, dropTable, isStoreError, LOCKING_MODES } from './support/backends.js';

const backends = await backendsForThisFile();

let sidCounter = 0;
const newSid = (label: string): string => `${label}-${process.pid}-${++sidCounter}-${random().toString(36).slice(2)}`;

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`${backend.name} / ${locking}: a user's sessions`, () => {
      const table = `ssn_user_sessions_${locking}`;
      let store: SessionStore;
      const open = (options: Partial<SessionStoreOptions> = {}): SessionStore =>
        new SessionStore({ url: backend.url, table, locking, userIdKey: 'user', createTable: true, autopurge: false, ...options } as SessionStoreOptions);

      before(async () => {
        await dropTable(backend, table);
        store = open({ recordClient: true });
        await store.ready();
      });
      after(async () => {
        await store.close();
        await dropTable(backend, table);
      });

      test('listByUser: a stable handle that is neither the id nor its hash, times, expiry, data, current', async () => {
        const user = newSid('u');
        const phone = newSid('phone');
        const laptop = newSid('laptop');
        const started = Date.now();
        await store.save(phone, { user, device: 'phone' });
        await store.save(laptop, { user, device: 'laptop' });
        await store.save(newSid('other'), { user: `${user}-other` });
        const listed = await store.listByUser(user, { current: laptop });
        assert.deepStrictEqual(listed.map(({ session }) => session['device']).sort(), ['laptop', 'phone']);
        for (const entry of listed) {
          assert.match(entry.handle, /^[\w-]{22}$/);
          assert.ok(![phone, laptop, hashSessionId(phone), hashSessionId(laptop)].some((secret) => secret.includes(entry.handle)));
          assert.ok(entry.createdAt instanceof Date && entry.lastSeenAt instanceof Date);
          // The database's clock and this process's may differ a little: only a generous window is checked.
          assert.ok(Math.abs(entry.createdAt.getTime() - started) < 60_000, `createdAt ${entry.createdAt.toISOString()}`);
          assert.ok(entry.lastSeenAt.getTime() >= entry.createdAt.getTime());
          assert.ok(entry.expiresAt.getTime() > Date.now());
          assert.equal(entry.current, entry.session['device'] === 'laptop');
          assert.equal(entry.client, undefined, 'no client given at creation');
        }
        const again = await store.listByUser(user);
        assert.deepStrictEqual(again.map(({ handle }) => handle).sort(), listed.map(({ handle }) => handle).sort(), 'handles are stable');
        assert.ok(again.every(({ current }) => !current));
      });

      test('lastSeenAt: read-only requests within touchAfter write nothing; a change moves it', async () => {
        const user = newSid('u');
        const sid = newSid('seen');
        await store.save(sid, { user, n: 0 });
        const [first] = await store.listByUser(user);
        assert.ok(first?.lastSeenAt);
        for (let request = 0; request < 3; request++) {
          const loaded = await store.load(sid);
          assert.ok(loaded);
          await store.save(sid, loaded.session, loaded.state);
          await store.touch(sid, loaded.session, loaded.state);
        }
        const [unchanged] = await store.listByUser(user);
        assert.equal(unchanged?.lastSeenAt?.getTime(), first.lastSeenAt.getTime(), 'read-only requests left it as it was');
        await delay(20);
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await store.save(sid, { ...loaded.session, n: 1 }, loaded.state);
        const [changed] = await store.listByUser(user);
        assert.ok((changed?.lastSeenAt?.getTime() ?? 0) > first.lastSeenAt.getTime(), 'a change moved it');
        assert.equal(changed?.createdAt?.getTime(), first.createdAt?.getTime(), 'creation stays');
      });

      test('recordClient: the client given at creation is listed; later saves keep it', async () => {
        const user = newSid('u');
        const sid = newSid('client');
        await store.save(sid, { user }, undefined, { client: { userAgent: 'Mozilla/5.0 (Test)', ip: '203.0.113.7' } });
        const loaded = await store.load(sid);
        assert.ok(loaded);
        await store.save(sid, { ...loaded.session, more: 1 }, loaded.state, { client: { userAgent: 'ignored', ip: '198.51.100.1' } });
        const [listed] = await store.listByUser(user);
        assert.deepStrictEqual(listed?.client, { userAgent: 'Mozilla/5.0 (Test)', ip: '203.0.113.7' });
        assert.equal(listed?.session['more'], 1);
      });

      test('destroyByHandle revokes that session only, and only among the user’s own', async () => {
        const user = newSid('u');
        const keep = newSid('keep');
        const revoke = newSid('revoke');
        const stranger = newSid('stranger');
        await store.save(keep, { user, which: 'keep' });
        await store.save(revoke, { user, which: 'revoke' });
        await store.save(stranger, { user: `${user}-2`, which: 'stranger' });
        const handle = (await store.listByUser(user)).find(({ session }) => session['which'] === 'revoke')?.handle;
        const strangerHandle = (await store.listByUser(`${user}-2`))[0]?.handle;
        assert.ok(handle && strangerHandle);
        assert.equal(await store.destroyByHandle(user, strangerHandle), false, "another user's handle names nothing");
        assert.ok(await store.load(stranger));
        assert.equal(await store.destroyByHandle(user, 'no-such-handle'), false);
        assert.equal(await store.destroyByHandle(user, handle), true);
        assert.equal(await store.load(revoke), null);
        assert.ok(await store.load(keep));
        assert.equal(await store.destroyByHandle(user, handle), false, 'gone already');
      });

      test('a session revoked by its handle stays revoked against its requests in flight', async () => {
        for (let round = 0; round < 3; round++) {
          const user = newSid('u');
          const sid = newSid('inflight');
          await store.save(sid, { user, n: 0 });
          const loads = await Promise.all(Array.from({ length: 8 }, () => store.load(sid)));
          const handle = (await store.listByUser(user))[0]?.handle;
          assert.ok(handle);
          const saves = loads.map(async (loaded, index) => {
            assert.ok(loaded);
            await delay(random() * 10);
            await store.save(sid, { ...loaded.session, [`late${index}`]: index }, loaded.state);
            await store.touch(sid, loaded.session, loaded.state);
          });
          const [revoked] = await Promise.all([store.destroyByHandle(user, handle), ...saves]);
          assert.equal(revoked, true);
          assert.equal(await store.load(sid), null);
          assert.deepStrictEqual(await store.listByUser(user), []);
        }
      });

      test('destroyByUser with except logs out every other session, even against their requests in flight', async () => {
        const user = newSid('u');
        const current = newSid('current');
        const others = [newSid('o1'), newSid('o2'), newSid('o3')];
        for (const sid of [current, ...others]) await store.save(sid, { user, n: 0 });
        const loads = await Promise.all(others.map((sid) => store.load(sid)));
        const saves = loads.map(async (loaded, index) => {
          assert.ok(loaded);
          await delay(random() * 10);
          await store.save(others[index] as string, { ...loaded.session, n: index + 1 }, loaded.state);
        });
        const [destroyed] = await Promise.all([store.destroyByUser(user, { except: current }), ...saves]);
        assert.equal(destroyed, 3);
        for (const sid of others) assert.equal(await store.load(sid), null, sid);
        const left = await store.listByUser(user, { current });
        assert.deepStrictEqual(
          left.map(({ current: isCurrent }) => isCurrent),
          [true],
        );
        assert.equal(await store.destroyByUser(user), 1);
        await assert.rejects(store.destroyByUser(user, { except: '' }), isStoreError('ERR_INVALID_SESSION_ID'));
      });

      test('absoluteTimeout: a session in constant use ends that long after its creation, is never returned, and purge removes it', async () => {
        const bounded = open({ absoluteTimeout: 0.8, ttl: 3600, touchAfter: 0 });
        try {
          const user = newSid('u');
          const sid = newSid('absolute');
          const created = Date.now();
          await bounded.save(sid, { user, n: 0 });
          const first = await bounded.load(sid);
          assert.ok(first);
          assert.ok(first.state.expiresAt <= created + 800 + 50, 'the expiry is never set past the absolute timeout');
          // In use all along: changes and reads, each moving the idle expiry an hour on.
          let n = 0;
          while (Date.now() - created < 500) {
            const loaded = await bounded.load(sid);
            assert.ok(loaded, 'alive before the absolute timeout');
            await bounded.save(sid, { ...loaded.session, n: ++n }, loaded.state);
            await bounded.touch(sid, loaded.session, loaded.state);
            assert.ok(loaded.state.expiresAt <= created + 800 + 50);
            await delay(50);
          }
          const late = await bounded.load(sid);
          assert.ok(late);
          await delay(created + 900 - Date.now());
          assert.equal(await bounded.load(sid), null, 'past the absolute timeout');
          assert.deepStrictEqual(await bounded.listByUser(user), []);
          // A request loaded before the timeout saves after it: nothing comes back.
          await bounded.save(sid, { ...late.session, after: true }, late.state);
          assert.equal(await bounded.load(sid), null);
          await bounded.purge();
          if (backend.sql) assert.equal(await backend.rows(table).read(hashSessionId(sid)), undefined, 'purged');
          // The same store without the option: still gone (its stored expiry was capped).
          assert.equal(await store.load(sid), null);
        } finally {
          await bounded.close();
        }
      });

      test('absoluteTimeout applies to sessions stored before it was set, by their creation time', async () => {
        const user = newSid('u');
        const sid = newSid('older');
        await store.save(sid, { user });
        await delay(250);
        const bounded = open({ absoluteTimeout: 0.2 });
        try {
          assert.equal(await bounded.load(sid), null);
          assert.deepStrictEqual(await bounded.listByUser(user), []);
          assert.ok(await store.load(sid), 'without the option it lives on');
        } finally {
          await bounded.close();
        }
      });
    });
  }

  if (backend.sql)
    describe(`${backend.name}: tables without what an option needs`, () => {
      const table = 'ssn_user_sessions_shape';
      before(() => dropTable(backend, table));
      after(() => dropTable(backend, table));

      test('recordClient on a table without a client column, and absoluteTimeout without created_at, are clear schema errors', async () => {
        const creator = new SessionStore({ url: backend.url, table, createTable: true, userIdKey: 'user', autopurge: false });
        await creator.ready();
        await creator.close();
        const recording = new SessionStore({ url: backend.url, table, userIdKey: 'user', recordClient: true, autopurge: false });
        await assert.rejects(recording.ready(), isStoreError('ERR_SCHEMA', 'ADD COLUMN client'));
        await recording.close();
        await backend.query(`ALTER TABLE ${table} DROP COLUMN created_at`);
        const bounded = new SessionStore({ url: backend.url, table, absoluteTimeout: 60, autopurge: false });
        await assert.rejects(bounded.ready(), isStoreError('ERR_SCHEMA', 'created_at'));
        await bounded.close();
        // The list still works, without creation times.
        const plain = new SessionStore({ url: backend.url, table, userIdKey: 'user', autopurge: false });
        try {
          await plain.save('shape-1', { user: 'shape' });
          const [listed] = await plain.listByUser('shape');
          assert.equal(listed?.createdAt, undefined);
          assert.equal(listed?.session['user'], 'shape');
        } finally {
          await plain.close();
        }
      });
    });
}

test('bad options are refused by name', () => {
  assert.throws(() => new SessionStore({ url: 'sqlite::memory:', absoluteTimeout: -1 }), isStoreError('ERR_INVALID_OPTION', 'absoluteTimeout'));
  assert.throws(
    () => new SessionStore({ url: 'sqlite::memory:', recordClient: 'yes' as unknown as boolean }),
    isStoreError('ERR_INVALID_OPTION', 'recordClient'),
  );
});
