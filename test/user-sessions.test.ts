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
        // Wide margins: the loop below must stay well inside the timeout on a loaded machine.
        const timeoutMs = 2000;
        const bounded = open({ absoluteTimeout: timeoutMs / 1000, ttl: 3600, touchAfter: 0 });
        try {
          const user = newSid('u');
          const sid = newSid('absolute');
          const created = Date.now();
          await bounded.save(sid, { user, n: 0 });
          // The store's clock read at the save lies between these two.
          const savedBy = Date.now();
          const first = await bounded.load(sid);
          assert.ok(first);
          assert.ok(first.state.expiresAt <= savedBy + timeoutMs, 'the expiry is never set past the absolute timeout');
          // In use all along: changes and reads, each moving the idle expiry an hour on.
          let n = 0;
          while (Date.now() - created < 1000) {
            const loaded = await bounded.load(sid);
            assert.ok(loaded, 'alive before the absolute timeout');
            await bounded.save(sid, { ...loaded.session, n: ++n }, loaded.state);
            await bounded.touch(sid, loaded.session, loaded.state);
            assert.ok(loaded.state.expiresAt <= savedBy + timeoutMs);
            await delay(100);
          }
          const late = await bounded.load(sid);
          assert.ok(late);
          assert.ok(((await bounded.load(sid))?.state.expiresAt ?? 0) <= savedBy + timeoutMs, 'saves and touches kept it capped');
          await delay(savedBy + timeoutMs + 100 - Date.now());
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

      test('maxSessionsPerUser: 10 parallel logins with a limit of 3 leave exactly the 3 most recent, 7 evicted', async () => {
        const limited = open({ maxSessionsPerUser: 3 });
        try {
          for (let round = 0; round < 3; round++) {
            const user = newSid('u');
            const evicted: string[] = [];
            const onEvicted = ({ handle, userId }: { handle: string; userId: string | undefined }): void => {
              assert.equal(userId, user);
              evicted.push(handle);
            };
            limited.on('evicted', onEvicted);
            const sids = Array.from({ length: 10 }, () => newSid('login'));
            // Half log in on a new session, half on an anonymous one they had (the user id is set by a change).
            for (const sid of sids.slice(5)) await limited.save(sid, { visits: 1 });
            await Promise.all(
              sids.map(async (sid, index) => {
                await delay(random() * 10);
                if (index < 5) return limited.save(sid, { user, index });
                const loaded = await limited.load(sid);
                assert.ok(loaded);
                return limited.save(sid, { ...loaded.session, user, index }, loaded.state);
              }),
            );
            limited.off('evicted', onEvicted);
            const left = await limited.listByUser(user);
            assert.equal(left.length, 3, `round ${round}: ${left.length} left`);
            assert.equal(evicted.length, 7);
            assert.equal(new Set([...evicted, ...left.map(({ handle }) => handle)]).size, 10, 'each session evicted once or kept');
            const alive = (await Promise.all(sids.map((sid) => limited.load(sid)))).filter((loaded) => loaded !== null);
            assert.equal(alive.length, 3);
          }
        } finally {
          await limited.close();
        }
      });

      test('maxSessionsPerUser: a login past the limit logs out the least recently used session; other saves evict nothing', async () => {
        const limited = open({ maxSessionsPerUser: 2 });
        try {
          const user = newSid('u');
          const [first, second, third] = [newSid('first'), newSid('second'), newSid('third')];
          await limited.save(first, { user });
          await delay(20);
          await limited.save(second, { user });
          await delay(20);
          // The first is used again: now the second is the least recently used.
          const used = await limited.load(first);
          assert.ok(used);
          await limited.save(first, { ...used.session, clicks: 1 }, used.state);
          await delay(20);
          await limited.save(third, { user });
          assert.equal(await limited.load(second), null, 'the least recently used went');
          assert.ok(await limited.load(first));
          assert.ok(await limited.load(third));
          // A save that leaves the user as it was is no login: nothing is evicted, even over the limit.
          await store.save(newSid('fourth'), { user });
          const loaded = await limited.load(first);
          assert.ok(loaded);
          await limited.save(first, { ...loaded.session, clicks: 2 }, loaded.state);
          assert.equal((await limited.listByUser(user)).length, 3);
        } finally {
          await limited.close();
        }
      });

      test('rotate: a new id with the same data, changes committed before it included; the old id dead at once', async () => {
        const user = newSid('u');
        const sid = newSid('before-login');
        const rotated = newSid('after-login');
        await store.save(sid, { cart: ['apple'], user });
        const [created] = await store.listByUser(user);
        const mine = await store.load(sid);
        const other = await store.load(sid);
        const stale = await store.load(sid);
        assert.ok(mine && other && stale);
        await store.save(sid, { ...other.session, theme: 'dark' }, other.state);
        // The request logging in: its own change saved, then the id rotated.
        const state = await store.save(sid, { ...mine.session, step: 'login' }, mine.state);
        const moved = await store.rotate(sid, rotated, state);
        assert.ok(moved);
        assert.equal(await store.load(sid), null, 'the old id is dead');
        assert.deepStrictEqual((await store.load(rotated))?.session, { cart: ['apple'], user, theme: 'dark', step: 'login' });
        // A request still holding the old id saves afterwards: nothing written, anywhere.
        await store.save(sid, { ...stale.session, late: true }, stale.state);
        assert.equal(await store.load(sid), null);
        assert.equal((await store.load(rotated))?.session['late'], undefined);
        // The rotating request saves on under the new id with the state it got.
        await store.save(rotated, { ...mine.session, step: 'done', theme: 'dark' }, moved);
        const [listed] = await store.listByUser(user);
        assert.deepStrictEqual(listed?.session, { cart: ['apple'], user, theme: 'dark', step: 'done' });
        assert.notEqual(listed?.handle, created?.handle);
        assert.equal(listed?.createdAt?.getTime(), created?.createdAt?.getTime(), 'the session keeps its creation time');
        assert.equal(await store.rotate(sid, newSid('nothing'), stale.state), null, 'nothing to rotate under a dead id');
        await assert.rejects(store.rotate(rotated, rotated), isStoreError('ERR_INVALID_SESSION_ID'));
      });

      test('rotate racing saves of the session: every save is either in the rotated session or wrote nothing', async () => {
        for (let round = 0; round < 3; round++) {
          const sid = newSid('racing');
          const next = newSid('rotated');
          await store.save(sid, { n: 0 });
          const loads = await Promise.all(Array.from({ length: 8 }, () => store.load(sid)));
          const saves = loads.map(async (loaded, index) => {
            assert.ok(loaded);
            await delay(random() * 10);
            const after = await store.save(sid, { ...loaded.session, [`k${index}`]: index }, loaded.state);
            // A save that found the session gone hands back the state it was given: it wrote nothing.
            return after !== loaded.state;
          });
          const [moved, ...written] = await Promise.all([delay(random() * 8).then(() => store.rotate(sid, next)), ...saves]);
          assert.ok(moved);
          assert.equal(await store.load(sid), null);
          const session = (await store.load(next))?.session;
          assert.ok(session);
          for (const [index, wrote] of written.entries()) {
            assert.equal(session[`k${index}`] === index, wrote, `save ${index} ${wrote ? 'wrote' : 'found it gone'}`);
          }
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

  describe(`${backend.name}: lifecycle events`, () => {
    const table = 'ssn_user_sessions_events';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    test('created, destroyed (logout, by handle, by user), rotated, evicted and expired, each with its handle and user', async () => {
      const store = new SessionStore({ url: backend.url, table, userIdKey: 'user', createTable: true, autopurge: false, maxSessionsPerUser: 2 });
      const events: [string, unknown][] = [];
      for (const name of ['created', 'destroyed', 'rotated', 'evicted', 'expired'] as const) store.on(name, (event: unknown) => events.push([name, event]));
      try {
        await store.save('ev-a', { user: 'eve' });
        await store.save('ev-anon', { visits: 1 });
        const [a] = await store.listByUser('eve');
        assert.ok(a);
        assert.deepStrictEqual(events, [
          ['created', { handle: a.handle, userId: 'eve' }],
          ['created', { handle: events[1]?.[1] && (events[1][1] as { handle: string }).handle, userId: undefined }],
        ]);
        events.length = 0;
        const moved = await store.rotate('ev-a', 'ev-a2');
        assert.ok(moved);
        const [a2] = await store.listByUser('eve');
        assert.deepStrictEqual(events, [['rotated', { handle: a2?.handle, previous: a.handle, userId: 'eve' }]]);
        events.length = 0;
        await store.save('ev-b', { user: 'eve' });
        await delay(20);
        await store.save('ev-c', { user: 'eve' });
        const evicted = events.filter(([name]) => name === 'evicted');
        assert.deepStrictEqual(evicted, [['evicted', { handle: a2?.handle, userId: 'eve' }]]);
        events.length = 0;
        const [b, c] = await store.listByUser('eve');
        assert.ok(b && c);
        await store.destroyByHandle('eve', b.handle);
        await store.destroyByUser('eve');
        await store.destroy('ev-anon');
        assert.deepStrictEqual(events, [
          ['destroyed', { handle: b.handle, userId: 'eve', reason: 'handle' }],
          ['destroyed', { handle: c.handle, userId: 'eve', reason: 'user' }],
          ['destroyed', { handle: events[2]?.[1] && (events[2][1] as { handle: string }).handle, userId: undefined, reason: 'destroy' }],
        ]);
        events.length = 0;
        if (backend.sql) {
          const ttlStore = new SessionStore({ url: backend.url, table, ttl: 0.05, autopurge: false });
          await ttlStore.save('ev-short-1', {});
          await ttlStore.save('ev-short-2', {});
          await ttlStore.close();
          await delay(100);
          assert.equal(await store.purge(), 2);
          assert.deepStrictEqual(events, [['expired', { count: 2 }]]);
        }
      } finally {
        await store.close();
      }
    });
  });

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
  assert.throws(() => new SessionStore({ url: 'sqlite::memory:', maxSessionsPerUser: 3 }), isStoreError('ERR_INVALID_OPTION', 'needs userIdKey'));
  assert.throws(
    () => new SessionStore({ url: 'sqlite::memory:', userIdKey: 'u', maxSessionsPerUser: 1.5 }),
    isStoreError('ERR_INVALID_OPTION', 'maxSessionsPerUser'),
  );
  assert.throws(
    () => new SessionStore({ url: 'sqlite::memory:', recordClient: 'yes' as unknown as boolean }),
    isStoreError('ERR_INVALID_OPTION', 'recordClient'),
  );
});
