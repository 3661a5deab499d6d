/**
 * What is particular to Redis and Redis Cluster: values byte-exact, expiry
 * by the key's own TTL, one command per read, throttled touches, sessions
 * in one slot and iteration over every master, log out everywhere racing
 * saves on a cluster, the four client kinds handed over, a server cut off
 * and back (nothing acknowledged lost, no crash), and a server with
 * `appendfsync always` killed with SIGKILL under load.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
// Its CommonJS exports object: ioredis 5.0 offers no named exports to ESM (5.x later and 6 do).
import ioredis from 'ioredis';
import { createClient, createCluster } from 'redis';
import { hashSessionId, type JsonObject } from '../src/index.js';
import { SessionStoreCore } from '../src/core/session-store.js';
import { resolveOptions, type SessionStoreOptions } from '../src/options.js';
import { RedisSessionBackend } from '../src/backends/redis/redis-backend.js';
import { openRedisClient, type RedisDriverName } from '../src/backends/redis/redis-client.js';
import { describeRedisTarget } from '../src/backends/redis/redis-url.js';
import { backendsForThisFile, CookieStore, delay, dropTable, isStoreError, LOCKING_MODES } from './support/backends.js';
import { clusterSeeds, connectRaw, scanKeys, type RawRedis } from './support/connectors/redis.js';
import { random } from './support/random.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const { default: IoRedis, Cluster: IoCluster } = ioredis;

const backends = await backendsForThisFile(['redis', 'redis-cluster']);

const cookie = (ms = 3_600_000): JsonObject => ({ originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), path: '/' });

/** A store whose own client is the one `driver` names (the store picks node-redis when both are installed). */
function storeWithDriver(driver: RedisDriverName, options: SessionStoreOptions): SessionStoreCore {
  const resolved = resolveOptions({ autopurge: false, ...options });
  return new SessionStoreCore({
    options: resolved,
    backend: {
      name: 'redis',
      storageName: 'session keys',
      open: async () => new RedisSessionBackend(await openRedisClient(resolved.target, resolved, driver), resolved.table, describeRedisTarget(resolved.target)),
    },
  });
}

/** Saves, concurrent deltas, log out everywhere, all/length/clear: what every client kind must carry. */
async function exercise(store: SessionStoreCore, label: string): Promise<void> {
  await store.clear();
  await store.save('a', { cookie: cookie(), passport: { user: 'ann' }, list: [] });
  const loads = await Promise.all(Array.from({ length: 6 }, () => store.load('a')));
  await Promise.all(
    loads.map(async (loaded, i) => {
      assert.ok(loaded, label);
      await store.save('a', { ...loaded.session, [`k${i}`]: i }, loaded.state);
    }),
  );
  const merged = (await store.load('a'))?.session;
  assert.deepStrictEqual(
    Object.keys(merged ?? {})
      .filter((key) => key.startsWith('k'))
      .sort(),
    ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'],
    label,
  );
  assert.deepStrictEqual(merged?.['list'], [], label);
  await store.save('b', { cookie: cookie(), passport: { user: 'ann' } });
  await store.save('c', { cookie: cookie() });
  assert.equal(await store.length(), 3, label);
  assert.equal((await store.listByUser('ann')).length, 2, label);
  assert.equal(await store.destroyByUser('ann'), 2, label);
  assert.equal(await store.load('a'), null, label);
  assert.equal((await store.all()).length, 1, label);
  await store.clear();
  assert.equal(await store.length(), 0, label);
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

for (const backend of backends) {
  const url = backend.url;
  const cluster = backend.name === 'redis-cluster';
  let raw: RawRedis;
  before(async () => {
    raw = await connectRaw(url, cluster);
  });
  after(async () => {
    await raw.close();
  });

  describe(`${backend.name}: values round-trip exactly`, () => {
    const table = 'ssn_redis_values';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    for (const locking of LOCKING_MODES) {
      test(`${locking}: empty arrays and objects, large and tiny numbers, unicode`, async () => {
        const store = new CookieStore({ url, table, locking, autopurge: false });
        try {
          const sid = `values-${locking}`;
          const value: JsonObject = {
            cookie: cookie(),
            empty: [],
            emptyObject: {},
            nested: { list: [[], [{}], [null]] },
            // biome-ignore lint/correctness/noPrecisionLoss: the test is that such a number round-trips as JavaScript reads it
            big: 12345678901234567,
            max: Number.MAX_VALUE,
            tiny: 5e-324,
            negative: -0.000001234,
            unicode: 'Zoë 😀 中文 \u2028 \u0301e',
            escapes: '"quoted" \\ / \n \t',
            'key with "quotes" and 😀': true,
          };
          await store.save(sid, value);
          const stored = await backend.rows(table).read(hashSessionId(sid));
          assert.equal(stored?.text, JSON.stringify(value));
          const loaded = await store.load(sid);
          assert.ok(loaded);
          assert.deepStrictEqual(loaded.session, value);
          // biome-ignore lint/correctness/noPrecisionLoss: as above
          assert.equal(loaded.session['big'], 12345678901234567);
          // A delta over the same values (the merge runs in TypeScript, never in Lua's cjson).
          // biome-ignore lint/correctness/noPrecisionLoss: as above
          const changed = { ...loaded.session, more: [], big: -12345678901234567, unicode: '😀'.repeat(3), nested: { list: [[], []] } };
          await store.save(sid, changed, loaded.state);
          assert.deepStrictEqual((await store.load(sid))?.session, changed);
          assert.equal((await backend.rows(table).read(hashSessionId(sid)))?.text, JSON.stringify(changed));
        } finally {
          await store.close();
        }
      });
    }
  });

  describe(`${backend.name}: expiry is the key's own TTL`, () => {
    const table = 'ssn_redis_expiry';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    test('the key expires when the session does; expired sessions are never returned; purge has nothing to do', async () => {
      const store = new CookieStore({ url, table, ttl: 1, autopurge: false });
      try {
        const key = `${table}:${hashSessionId('lives')}`;
        await store.save('lives', { cookie: cookie(3_600_000), a: 1 });
        const pttl = Number(await raw.send(key, ['PTTL', key]));
        assert.ok(pttl > 3_500_000 && pttl <= 3_600_000, `PTTL ${pttl}`);
        const expiry = Number(await raw.send(key, ['HGET', key, 'e']));
        assert.equal(Number(await raw.send(key, ['PEXPIRETIME', key])), expiry);
        assert.equal((await store.load('lives'))?.state.expiresAt, expiry);

        // No expiry in the cookie: ttl (1 s). Redis removes it by itself.
        const short = `${table}:${hashSessionId('short')}`;
        await store.save('short', { cookie: { originalMaxAge: null, expires: null }, a: 1 });
        assert.ok(Number(await raw.send(short, ['PTTL', short])) > 0);
        await delay(1100);
        assert.equal(await store.load('short'), null);
        assert.equal(Number(await raw.send(short, ['EXISTS', short])), 0);

        // Expired by the application's clock a moment before Redis' clock removes the key: gone all the same.
        const early = `${table}:${hashSessionId('early')}`;
        await raw.send(early, ['HSET', early, 'data', '{"a":1}', 'v', '1', 'e', String(Date.now() - 1000)]);
        await raw.send(early, ['PEXPIRE', early, '60000']);
        assert.equal(await store.load('early'), null);
        const loaded = await store.load('lives');
        assert.ok(loaded);
        assert.equal((await store.all()).length, 1);
        assert.deepStrictEqual(await store.stats(), { live: 1, expired: 1 });
        await store.save('early', { a: 2 }, { ...loaded.state });
        assert.equal(await raw.send(early, ['HGET', early, 'data']), '{"a":1}', 'a save never revives an expired session');
        assert.equal(await store.purge(), 0);
        assert.equal(Number(await raw.send(early, ['EXISTS', early])), 1, 'purge deletes nothing: Redis does');
      } finally {
        await store.close();
      }
    });
  });

  describe(`${backend.name}: what a request sends`, () => {
    const table = 'ssn_redis_commands';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    for (const locking of LOCKING_MODES) {
      test(`${locking}: a read is one HMGET; a touch within touchAfter sends nothing, past it one command; a save one more`, async () => {
        const counted = await backend.counted();
        const store = new CookieStore({ connection: counted.connection, table, locking, autopurge: false });
        try {
          await store.save('s', { cookie: cookie(3_600_000), a: 1 });
          counted.statements.length = 0;
          const loaded = await store.load('s');
          assert.ok(loaded);
          assert.deepStrictEqual(
            counted.statements.map((statement) => statement.split(' ')[0]),
            ['HMGET'],
          );

          counted.statements.length = 0;
          await store.touch('s', { ...loaded.session, cookie: cookie(3_630_000) }, loaded.state);
          assert.equal(counted.statements.length, 0, 'a touch under touchAfter (60 s) writes nothing');
          const touched = await store.touch('s', { ...loaded.session, cookie: cookie(7_200_000) }, loaded.state);
          assert.deepStrictEqual(
            counted.statements.map((statement) => statement.split(' ')[0]),
            ['EVALSHA'],
          );
          const key = `${table}:${hashSessionId('s')}`;
          assert.ok(Number(await raw.send(key, ['PTTL', key])) > 7_100_000);
          assert.equal((await store.load('s'))?.state.expiresAt, touched?.expiresAt);

          const fresh = await store.load('s');
          assert.ok(fresh);
          counted.statements.length = 0;
          await store.save('s', { ...fresh.session, b: 2 }, fresh.state);
          // optimistic and atomic: the compare-and-set (atomic starts from the state the load saw); pessimistic: lock + write.
          assert.equal(counted.statements.length, locking === 'pessimistic' ? 2 : 1, counted.statements.join(' | '));
        } finally {
          await store.close();
          await counted.close();
        }
      });
    }
  });

  describe(`${backend.name}: atomic saves start from the state last seen`, () => {
    const table = 'ssn_redis_recent';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    /** Store `a` (commands counted) and store `b` (another process, in effect), both `atomic` on the same keys. */
    async function twoStores(
      options: Partial<SessionStoreOptions> = {},
    ): Promise<{ a: CookieStore; b: CookieStore; statements: string[]; close: () => Promise<void> }> {
      const counted = await backend.counted();
      const a = new CookieStore({ connection: counted.connection, table, locking: 'atomic', autopurge: false, ...options });
      const b = new CookieStore({ url, table, locking: 'atomic', autopurge: false, ...options });
      return {
        a,
        b,
        statements: counted.statements,
        close: async () => {
          await a.close();
          await b.close();
          await counted.close();
        },
      };
    }

    test('a save merges into what another store wrote since the load (one more command), and a later save needs no read', async () => {
      const { a, b, statements, close } = await twoStores();
      try {
        await a.save('s', { cookie: cookie(), first: 1 });
        const loadedByA = await a.load('s');
        const loadedByB = await b.load('s');
        assert.ok(loadedByA && loadedByB);
        await b.save('s', { ...loadedByB.session, byB: 'b' }, loadedByB.state);
        statements.length = 0;
        await a.save('s', { ...loadedByA.session, byA: 'a' }, loadedByA.state);
        // The first compare-and-set fails (b moved the version on); its reply carries b's session, merged into at once.
        assert.deepStrictEqual(
          statements.map((statement) => statement.split(' ')[0]),
          ['EVALSHA', 'EVALSHA'],
        );
        assert.deepStrictEqual((await b.load('s'))?.session, { cookie: loadedByA.session['cookie'], first: 1, byB: 'b', byA: 'a' });

        // a knows what it wrote: its next request's save is one command after its read.
        const again = await a.load('s');
        assert.ok(again);
        statements.length = 0;
        await a.save('s', { ...again.session, next: true }, again.state);
        assert.deepStrictEqual(
          statements.map((statement) => statement.split(' ')[0]),
          ['EVALSHA'],
        );
        assert.equal((await b.load('s'))?.session['next'], true);
      } finally {
        await close();
      }
    });

    test('a session destroyed, or destroyed and created again, by another store after the load: never brought back, never written from the old one', async () => {
      const { a, b, close } = await twoStores();
      try {
        await a.save('gone', { cookie: cookie(), v: 1 });
        const loaded = await a.load('gone');
        assert.ok(loaded);
        await b.destroy('gone');
        await a.save('gone', { ...loaded.session, late: true }, loaded.state);
        assert.equal(await b.load('gone'), null, 'a logout sticks');
        assert.equal((await backend.rows(table).read(hashSessionId('gone')))?.text, undefined);

        await a.save('again', { cookie: cookie(), old: true });
        const before = await a.load('again');
        assert.ok(before);
        await b.destroy('again');
        await b.save('again', { cookie: cookie(), fresh: true });
        await a.save('again', { ...before.session, late: true }, before.state);
        // The delta lands on the session stored now, as a save that read first would put it (the old keys stay gone).
        const now = (await b.load('again'))?.session;
        assert.equal(now?.['fresh'], true);
        assert.equal(now?.['late'], true);
        assert.equal(now?.['old'], undefined);
      } finally {
        await close();
      }
    });

    test('an expiry another store moved on since the load counts, not the one the load saw', async () => {
      const { a, b, close } = await twoStores();
      try {
        await a.save('moved', { cookie: cookie(1500), n: 0 });
        const loaded = await a.load('moved');
        assert.ok(loaded);
        const byB = await b.load('moved');
        assert.ok(byB);
        await b.touch('moved', { ...byB.session, cookie: cookie(3_600_000) }, byB.state);
        // Past the expiry a saw (and its cookie's), not past the stored one.
        await delay(1600);
        await a.save('moved', { ...loaded.session, n: 1 }, { ...loaded.state }, { expiresAt: Date.now() + 3_600_000 });
        assert.equal((await b.load('moved'))?.session['n'], 1);
      } finally {
        await close();
      }
    });

    test('with userIdKey: a user changed by another store after the load is indexed before the save leaves the session with it', async () => {
      const { a, b, close } = await twoStores({ userIdKey: 'passport.user' });
      try {
        await a.save('u', { cookie: cookie(), passport: { user: 'ann' } });
        const loaded = await a.load('u');
        const byB = await b.load('u');
        assert.ok(loaded && byB);
        await b.save('u', { ...byB.session, passport: { user: 'bob' } }, byB.state);
        await a.save('u', { ...loaded.session, cart: 1 }, loaded.state);
        const stored = (await b.load('u'))?.session;
        assert.deepStrictEqual(stored?.['passport'], { user: 'bob' });
        assert.equal(stored?.['cart'], 1);
        assert.equal(await a.destroyByUser('bob'), 1);
        assert.equal(await b.load('u'), null);
      } finally {
        await close();
      }
    });
  });

  describe(`${backend.name}: clients handed over`, () => {
    const table = 'ssn_redis_handed';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    const makers: [string, () => Promise<{ client: object; close: () => Promise<void> }>][] = cluster
      ? [
          [
            'node-redis cluster',
            async () => {
              const client = createCluster({ rootNodes: clusterSeeds(url).map((socket) => ({ socket })) });
              client.on('error', () => undefined);
              await client.connect();
              return { client, close: async () => void (await client.close()) };
            },
          ],
          [
            'ioredis Cluster',
            async () => {
              const client = new IoCluster(clusterSeeds(url));
              client.on('error', () => undefined);
              await client.ping();
              return { client, close: async () => void (await client.quit()) };
            },
          ],
        ]
      : [
          [
            'node-redis client',
            async () => {
              const client = createClient({ url });
              client.on('error', () => undefined);
              await client.connect();
              return { client, close: async () => void (await client.close()) };
            },
          ],
          [
            'ioredis Redis',
            async () => {
              const client = new IoRedis(url);
              client.on('error', () => undefined);
              await client.ping();
              return { client, close: async () => void (await client.quit()) };
            },
          ],
        ];

    for (const [name, make] of makers) {
      for (const locking of LOCKING_MODES) {
        test(`${name} / ${locking}`, async () => {
          const { client, close } = await make();
          const store = new CookieStore({ connection: client, table, locking, userIdKey: 'passport.user', autopurge: false });
          try {
            assert.equal(store.dialect, 'redis');
            await exercise(store, `${name} / ${locking}`);
          } finally {
            await store.close();
          }
          // The store leaves the application's client open.
          assert.ok((await (client as { ping?: () => Promise<unknown> }).ping?.()) ?? true);
          await close();
        });
      }
    }

    test('an ioredis client with keyPrefix is refused: the prefix is the table', async () => {
      const client = cluster
        ? new IoCluster(clusterSeeds(url), { keyPrefix: 'p:', lazyConnect: true })
        : new IoRedis(url, { keyPrefix: 'p:', lazyConnect: true });
      const store = new CookieStore({ connection: client, table });
      await assert.rejects(store.ready(), isStoreError('ERR_INVALID_OPTION', 'keyPrefix'));
      await store.close();
      client.disconnect();
    });

    test("ioredis as the store's own client (when node-redis is not installed)", async () => {
      const store = storeWithDriver('ioredis', { url, table, userIdKey: 'passport.user' });
      try {
        await exercise(store, 'ioredis (own)');
      } finally {
        await store.close();
      }
    });
  });

  if (cluster)
    describe('redis-cluster: slots and masters', () => {
      const table = 'ssn_redis_slots';
      before(() => dropTable(backend, table));
      after(() => dropTable(backend, table));

      test("each session is one key (one slot); a user index lives in its user's slot; all, length and clear cover every master", async () => {
        const store = new CookieStore({ url, table, userIdKey: 'user', autopurge: false });
        try {
          const count = 60;
          for (let i = 0; i < count; i++) await store.save(`slot-${i}`, { cookie: cookie(), user: `user-${i % 3}`, i });
          const sessionKeys = await scanKeys(raw, `${table}:*`);
          assert.equal(sessionKeys.length, count, 'one key per session');
          const indexKeys = await scanKeys(raw, `${table}#*`);
          assert.equal(indexKeys.length, 3, 'one index per user');
          for (const key of indexKeys) {
            const tag = /\{([^}]+)\}/.exec(key)?.[1] as string;
            assert.equal(await raw.send(undefined, ['CLUSTER', 'KEYSLOT', key]), await raw.send(undefined, ['CLUSTER', 'KEYSLOT', tag]));
          }
          const perMaster: number[] = [];
          for (const send of await raw.masters()) {
            let cursor = '0';
            let found = 0;
            do {
              const [next, keys] = (await send(['SCAN', cursor, 'MATCH', `${table}:*`, 'COUNT', '1000'])) as [string, string[]];
              cursor = next;
              found += keys.length;
            } while (cursor !== '0');
            perMaster.push(found);
          }
          assert.equal(perMaster.length, 3);
          assert.ok(
            perMaster.every((found) => found > 0),
            `sessions on every master: ${perMaster.join(', ')}`,
          );
          assert.equal(await store.length(), count);
          assert.deepStrictEqual(
            (await store.all()).map((session) => session['i']).sort((a, b) => Number(a) - Number(b)),
            Array.from({ length: count }, (_, i) => i),
          );
          assert.deepStrictEqual(await store.stats(), { live: count, expired: 0 });
          await store.clear();
          assert.deepStrictEqual(await scanKeys(raw, `${table}*`), []);
          assert.equal(await store.length(), 0);
        } finally {
          await store.close();
        }
      });
    });

  describe(`${backend.name}: log out everywhere racing saves`, () => {
    const table = 'ssn_redis_logout';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    for (const locking of LOCKING_MODES) {
      test(`${locking}: no session of the user survives, and the index misses none`, async (t) => {
        const store = new CookieStore({ url, table, locking, userIdKey: 'passport.user', autopurge: false });
        try {
          for (let round = 0; round < 4; round++) {
            await store.clear();
            const user = `racer-${round}`;
            const mine = Array.from({ length: 16 }, (_, i) => `mine-${round}-${i}`);
            const anonymous = Array.from({ length: 8 }, (_, i) => `anon-${round}-${i}`);
            for (const sid of mine) await store.save(sid, { cookie: cookie(), passport: { user }, n: 0 });
            for (const sid of anonymous) await store.save(sid, { cookie: cookie(), n: 0 });
            const loaded = new Map(await Promise.all([...mine, ...anonymous].map(async (sid) => [sid, await store.load(sid)] as const)));
            const saves = [...loaded].map(async ([sid, session], i) => {
              assert.ok(session);
              await delay(random() * 8);
              // The user's own sessions save deltas; anonymous ones log in as the user, racing the logout.
              const change = sid.startsWith('mine') ? { n: i } : { passport: { user } };
              await store.save(sid, { ...session.session, ...change }, session.state);
              await store.save(sid, { ...session.session, ...change, again: true }, session.state);
            });
            const [destroyed] = await Promise.all([delay(random() * 8).then(() => store.destroyByUser(user)), ...saves]);
            assert.ok(destroyed >= mine.length, `destroyed ${destroyed}`);
            for (const sid of mine) assert.equal(await store.load(sid), null, `${sid} was the user's before the logout`);
            // Whatever logins won the race, the index lists every session that belongs to the user.
            const owned: string[] = [];
            for (const key of await scanKeys(raw, `${table}:*`)) {
              if ((await raw.send(key, ['HGET', key, 'u'])) === user) owned.push(key);
            }
            assert.equal((await store.listByUser(user)).length, owned.length);
            t.diagnostic(`round ${round}: ${destroyed} destroyed, ${owned.length} logins won the race`);
            assert.equal(await store.destroyByUser(user), owned.length);
            for (const key of await scanKeys(raw, `${table}:*`)) assert.notEqual(await raw.send(key, ['HGET', key, 'u']), user);
          }
        } finally {
          await store.close();
        }
      });
    }
  });
}

/** Writers that each add keys to their own session as fast as they can, remembering which saves were acknowledged. */
function writers(store: SessionStoreCore, count: number): { acknowledged: Map<string, number[]>; stop(): Promise<void> } {
  const acknowledged = new Map<string, number[]>();
  let running = true;
  const loops = Array.from({ length: count }, async (_, w) => {
    const sid = `writer-${w}`;
    const done: number[] = [];
    acknowledged.set(sid, done);
    for (let n = 0; running; n++) {
      try {
        const loaded = (await store.load(sid)) ?? null;
        const session = loaded?.session ?? { cookie: cookie() };
        await store.save(sid, { ...session, [`n${n}`]: n }, loaded?.state);
        done.push(n);
      } catch (error) {
        if (!isStoreError('ERR_UNAVAILABLE')(error)) throw error;
        await delay(20);
      }
    }
  });
  return {
    acknowledged,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Every acknowledged save is in its session. */
async function assertAllKept(store: SessionStoreCore, acknowledged: Map<string, number[]>): Promise<number> {
  let total = 0;
  for (const [sid, done] of acknowledged) {
    const session = (await store.load(sid))?.session ?? {};
    const missing = done.filter((n) => session[`n${n}`] !== n);
    assert.deepStrictEqual(missing, [], `${sid}: acknowledged saves lost`);
    total += done.length;
  }
  return total;
}

const [clustered] = backends.filter((backend) => backend.name === 'redis-cluster');
const clusterDirectory = process.env['REDIS_CLUSTER_DIR'] ?? '/tmp/smart-session-store-redis-cluster';
const clusterScript = new URL('../scripts/redis-cluster.sh', import.meta.url).pathname;
// Only the cluster of scripts/redis-cluster.sh: the test kills one of its masters and has the script restart it.
if (clustered !== undefined && spawnSync(clusterScript, ['status'], { stdio: 'ignore' }).status === 0) {
  describe('redis-cluster: a master killed, then back', () => {
    const table = 'ssn_redis_master_down';
    before(() => dropTable(clustered, table));
    after(() => dropTable(clustered, table));

    for (const driver of ['redis', 'ioredis'] as const) {
      test(`${driver} (own client): sessions on the dead master fail fast with ERR_UNAVAILABLE, the others too until it is back, then all recover`, async () => {
        const store = storeWithDriver(driver, { url: clustered.url, table, connectTimeout: 1 });
        const events: string[] = [];
        store.on('disconnect', (error) => events.push(`disconnect ${error.code}`));
        store.on('connect', () => events.push('connect'));
        try {
          for (let i = 0; i < 30; i++) await store.save(`m${i}`, { i });
          const [port] = clusterSeeds(clustered.url)
            .map((seed) => seed.port)
            .slice(1);
          const pid = Number(spawnSync('cat', [join(clusterDirectory, String(port), 'redis.pid')], { encoding: 'utf8' }).stdout.trim());
          assert.ok(pid > 0);
          process.kill(pid, 'SIGKILL');
          const outcomes = new Set<string>();
          for (let i = 0; i < 30; i++) {
            outcomes.add(
              await store.load(`m${i}`).then(
                () => 'ok',
                (error: unknown) => (isStoreError('ERR_UNAVAILABLE')(error) ? 'ERR_UNAVAILABLE' : String(error)),
              ),
            );
          }
          assert.ok(
            outcomes.has('ERR_UNAVAILABLE') && [...outcomes].every((outcome) => outcome === 'ok' || outcome === 'ERR_UNAVAILABLE'),
            [...outcomes].join(', '),
          );
          const reconnected = once(store, 'connect');
          assert.equal(spawnSync(clusterScript, ['start'], { stdio: 'ignore' }).status, 0);
          await reconnected;
          // The restarted master kept nothing (the cluster runs without persistence); the others kept theirs.
          await store.save('after', { ok: true });
          assert.equal((await store.load('after'))?.session['ok'], true);
          assert.deepStrictEqual(events, ['disconnect ERR_UNAVAILABLE', 'connect']);
        } finally {
          await store.close();
        }
      });
    }
  });
}

const [single] = backends.filter((backend) => backend.name === 'redis');
if (single !== undefined) {
  describe('redis: the server cut off and back (TCP proxy)', () => {
    const table = 'ssn_redis_outage';
    before(() => dropTable(single, table));
    after(() => dropTable(single, table));
    const serverPort = Number(new URL(single.url).port || 6379);
    const database = new URL(single.url).pathname;

    for (const driver of ['redis', 'ioredis'] as const) {
      test(`${driver} (own client): calls fail fast with ERR_UNAVAILABLE, disconnect/connect fire, no acknowledged write lost`, async (t) => {
        const proxy = await startTcpProxy(serverPort);
        const store = storeWithDriver(driver, { url: `redis://127.0.0.1:${proxy.port}${database}`, table, connectTimeout: 1, locking: 'optimistic' });
        const events: string[] = [];
        store.on('disconnect', (error) => events.push(`disconnect ${error.code}`));
        store.on('connect', () => events.push('connect'));
        try {
          await store.clear();
          const load = writers(store, 6);
          await delay(300);
          const disconnected = once(store, 'disconnect');
          await proxy.cut();
          await disconnected;
          // While it is down, calls fail at once, from the store's unavailable state ("since ..."), without waiting on the network.
          await assert.rejects(store.load('writer-0'), isStoreError('ERR_UNAVAILABLE', ' since '));
          await delay(300);
          const reconnected = once(store, 'connect');
          await proxy.restore();
          await reconnected;
          await delay(300);
          await load.stop();
          const total = await assertAllKept(store, load.acknowledged);
          assert.ok(total > 0);
          t.diagnostic(`${total} acknowledged saves kept`);
          assert.deepStrictEqual(events, ['disconnect ERR_UNAVAILABLE', 'connect']);
        } finally {
          await store.close();
          await proxy.close();
        }
      });
    }

    test('a handed-over node-redis client with no error listener: the cut does not crash the process', async () => {
      const proxy = await startTcpProxy(serverPort);
      const client = createClient({
        url: `redis://127.0.0.1:${proxy.port}${database}`,
        disableOfflineQueue: true,
        socket: { reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500) },
      });
      // Connected with a listener, which is then removed: only the store's listener is left.
      client.on('error', () => undefined);
      await client.connect();
      client.removeAllListeners('error');
      const store = new CookieStore({ connection: client, table, connectTimeout: 1, autopurge: false });
      try {
        await store.save('handed', { cookie: cookie(), a: 1 });
        await proxy.cut();
        await assert.rejects(store.load('handed'), isStoreError('ERR_UNAVAILABLE'));
        const reconnected = once(store, 'connect');
        await proxy.restore();
        await reconnected;
        assert.equal((await store.load('handed'))?.session['a'], 1);
      } finally {
        client.on('error', () => undefined);
        await store.close();
        await proxy.close();
        client.destroy();
      }
    });
  });

  describe('redis: durability with appendfsync always, killed under load', () => {
    const directory = mkdtempSync(join(tmpdir(), 'sss-redis-aof-'));
    let port: number;
    let server: ReturnType<typeof spawn> | undefined;

    async function startServer(): Promise<void> {
      server = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', directory],
        { stdio: 'ignore' },
      );
      for (let attempt = 0; attempt < 100; attempt++) {
        if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return;
        await delay(50);
      }
      throw new Error(`redis-server on port ${port} did not start`);
    }

    before(async () => {
      port = await freePort();
      await startServer();
    });
    after(async () => {
      if (server?.exitCode === null) {
        server.kill('SIGKILL');
        await once(server, 'exit');
      }
      rmSync(directory, { recursive: true, force: true });
    });

    for (const locking of LOCKING_MODES) {
      test(`${locking}: kill -9 and restart under load: every acknowledged save is there`, async (t) => {
        const store = new CookieStore({ url: `redis://127.0.0.1:${port}/0`, table: `ssn_aof_${locking}`, locking, connectTimeout: 1, autopurge: false });
        try {
          const load = writers(store, 8);
          await delay(400);
          const running = server as ReturnType<typeof spawn>;
          running.kill('SIGKILL');
          await once(running, 'exit');
          await delay(200);
          await startServer();
          await delay(1500);
          await load.stop();
          const total = await assertAllKept(store, load.acknowledged);
          assert.ok(total > 0);
          t.diagnostic(`${total} acknowledged saves kept`);
        } finally {
          await store.close();
        }
      });
    }
  });
}

describe('the command line on Redis', { skip: single === undefined ? 'redis is not reachable' : false }, () => {
  test('create-table and purge say there is nothing to do; stats and check name the key prefix', async () => {
    const { runCli } = await import('./support/cli.js');
    const url = (single as { url: string }).url;
    const created = await runCli('create-table', '--url', url, '--table', 'ssn_cli');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^nothing to create on redis: sessions are keys under "ssn_cli:", which redis expires itself/);
    const purged = await runCli('purge', '--url', url, '--table', 'ssn_cli');
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stdout, /^nothing to purge in keys under "ssn_cli:": redis removes expired sessions itself/);
    const stats = await runCli('stats', '--url', url, '--table', 'ssn_cli');
    assert.match(stats.stdout, /^keys under "ssn_cli:": 0 live, 0 expired/);
    const checked = await runCli('check', '--url', url, '--table', 'ssn_cli');
    assert.equal(checked.code, 0, checked.stdout);
    assert.match(checked.stdout, /^ok: redis reachable, keys under "ssn_cli:" usable/);
  });
});
