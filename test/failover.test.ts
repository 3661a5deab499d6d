/**
 * A failover under load: a PostgreSQL primary with a streaming standby
 * (scripts/postgres-replica.sh) and a Redis master with a replica under three
 * Sentinels (scripts/redis-sentinel.sh). 20 writers save their sessions
 * without pause; the primary is killed with SIGKILL and the standby
 * promoted. Then:
 *
 * - no save the store acknowledged is lost, with synchronous replication
 *   (PostgreSQL) or with `waitReplicas` (Redis);
 * - saves fail (with `ERR_UNAVAILABLE`) only for a while, and then succeed
 *   again without anyone touching the store;
 * - a session destroyed before the failover stays destroyed, even when a
 *   request that loaded it before saves after.
 *
 * PostgreSQL runs it in each locking mode; Redis with its two clients
 * (node-redis's Sentinel client and ioredis with `sentinels`).
 *
 * With asynchronous replication the saves acknowledged just before the kill
 * may be gone: that test reports how many were, and asserts nothing about it.
 *
 * Beside: the URL and option checks; a URL naming only the standby, a pool
 * of your own on it, and a primary turned read-only without a restart
 * (SQLSTATE 25006); more replicas asked for than exist; Sentinel clients of
 * your own.
 *
 * Each test restores its setup first (a fresh standby in place of the killed
 * node), so the tests do not depend on each other or on their order.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import ioredis from 'ioredis';
import pg from 'pg';
import { createSentinel } from 'redis';
import { RedisSessionBackend } from '../src/backends/redis/redis-backend.js';
import { openRedisClient, type RedisDriverName } from '../src/backends/redis/redis-client.js';
import { describeRedisTarget } from '../src/backends/redis/redis-url.js';
import { SessionStoreCore } from '../src/core/session-store.js';
import { SessionStoreError, type JsonObject, type SessionStoreOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { backendsForThisFile, CookieStore, delay, isStoreError } from './support/backends.js';
import { postgresHostUrls, postgresPrimaryUrl, sentinelsOf } from './support/connectors/failover.js';

// Its CommonJS exports object: ioredis 5.0 offers no named exports to ESM (5.x later and 6 do).
const { default: IoRedis } = ioredis;

const run = promisify(execFile);
const script = (name: string): string => new URL(`../scripts/${name}`, import.meta.url).pathname;

const backends = await backendsForThisFile(['postgres-failover', 'redis-sentinel']);

const WRITERS = 20;
/** Saves each writer must see succeed after the failover before it stops. */
const SAVES_AFTER = 3;
/** A writer that has not recovered by then fails the test (the store must recover by itself, well before). */
const RECOVERY_LIMIT_MS = 60_000;

/** A store the way a test needs it: the store's own client, or the one `driver` names (Redis). */
type StoreMaker = (options: SessionStoreOptions) => SessionStoreCore;

/** A store whose own Redis client is the one `driver` names (the store picks node-redis when both are installed). */
function redisStoreWith(driver: RedisDriverName): StoreMaker {
  return (options) => {
    const resolved = resolveOptions({ autopurge: false, ...options });
    return new SessionStoreCore({
      options: resolved,
      backend: {
        name: 'redis',
        storageName: 'session keys',
        open: async () => {
          const { waitingForReplicas } = await import('../src/backends/redis/redis-client.js');
          const opened = await openRedisClient(resolved.target, resolved, driver);
          const link = resolved.waitReplicas > 0 ? waitingForReplicas(opened, resolved.waitReplicas, resolved.waitTimeoutMs) : opened;
          return new RedisSessionBackend(link, resolved.table, describeRedisTarget(resolved.target));
        },
      },
    });
  };
}

/** How a setup is driven: its script, and the store options that make acknowledged writes survive. */
interface Setup {
  readonly script: string;
  /** The stores to try: by label. */
  readonly stores: Readonly<Record<string, StoreMaker>>;
  /** Options of the store under test with no acknowledged write lost. */
  readonly safe: Partial<SessionStoreOptions>;
  /** The same with asynchronous replication, and the script's command that switches the server to it (if any). */
  readonly unsafe: { readonly options: Partial<SessionStoreOptions>; readonly command: readonly string[] | undefined };
}

const SETUPS: Readonly<Record<string, Setup>> = {
  'postgres-failover': {
    script: script('postgres-replica.sh'),
    // Each locking mode: a failover can cut a pessimistic save's transaction between its SELECT ... FOR UPDATE and its COMMIT.
    stores: {
      atomic: (options) => new CookieStore({ autopurge: false, ...options }),
      optimistic: (options) => new CookieStore({ autopurge: false, locking: 'optimistic', ...options }),
      pessimistic: (options) => new CookieStore({ autopurge: false, locking: 'pessimistic', ...options }),
    },
    safe: {},
    unsafe: { options: {}, command: ['sync', 'off'] },
  },
  'redis-sentinel': {
    script: script('redis-sentinel.sh'),
    stores: { 'node-redis createSentinel': redisStoreWith('redis'), 'ioredis sentinels': redisStoreWith('ioredis') },
    safe: { waitReplicas: 1 },
    unsafe: { options: {}, command: undefined },
  },
};

function cookie(ms = 3_600_000): JsonObject {
  return { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), httpOnly: true, path: '/' };
}

/** What the load saw. */
interface LoadResult {
  /** Per writer: its session id and every key whose save was acknowledged. */
  readonly acknowledged: readonly { readonly sid: string; readonly keys: readonly string[] }[];
  /** Error codes of the failed calls, with their counts. */
  readonly failures: ReadonlyMap<string, number>;
  /** From the first failed call to the last, in ms (0 when none failed). */
  readonly failingMs: number;
  /** Writers that saw no save succeed after the failover within the limit. */
  readonly stuck: number;
}

/**
 * 20 writers, each saving its own session again and again (load, add a key,
 * save the delta), while `failover` runs; each stops once it has seen
 * {@link SAVES_AFTER} saves succeed after the failover.
 */
async function underLoad(store: SessionStoreCore, prefix: string, failover: () => Promise<void>): Promise<LoadResult> {
  const failures = new Map<string, number>();
  let firstFailure: number | undefined;
  let lastFailure: number | undefined;
  let failedOver = false;
  let stuck = 0;
  const fail = (error: unknown): void => {
    const code = error instanceof SessionStoreError ? error.code : `not a SessionStoreError: ${String(error)}`;
    failures.set(code, (failures.get(code) ?? 0) + 1);
    firstFailure ??= Date.now();
    lastFailure = Date.now();
  };
  const writer = async (index: number): Promise<{ sid: string; keys: string[] }> => {
    const sid = `${prefix}-${index}`;
    const keys: string[] = [];
    await store.save(sid, { cookie: cookie(), writer: index });
    let after = 0;
    const limit = Date.now() + RECOVERY_LIMIT_MS;
    for (let n = 0; !(failedOver && after >= SAVES_AFTER); n++) {
      if (Date.now() > limit) {
        stuck++;
        break;
      }
      const key = `k${n}`;
      const wasFailedOver = failedOver;
      try {
        const loaded = await store.load(sid);
        assert.ok(loaded, `writer ${index}'s session is gone`);
        await store.save(sid, { ...loaded.session, [key]: n }, loaded.state);
        keys.push(key);
        if (wasFailedOver) after++;
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        fail(error);
        // The store fails fast while the database is away: no point in spinning.
        await delay(20);
      }
    }
    return { sid, keys };
  };
  const writers = Array.from({ length: WRITERS }, (_, index) => writer(index));
  // Let the load run, then fail over under it.
  await delay(500);
  await failover();
  failedOver = true;
  const acknowledged = await Promise.all(writers);
  return {
    acknowledged,
    failures,
    failingMs: firstFailure === undefined || lastFailure === undefined ? 0 : lastFailure - firstFailure,
    stuck,
  };
}

/** Every acknowledged key that a fresh store cannot read back. */
async function lostKeys(url: string, table: string, result: LoadResult): Promise<string[]> {
  const reader = new CookieStore({ url, table, autopurge: false });
  try {
    const lost: string[] = [];
    for (const { sid, keys } of result.acknowledged) {
      const loaded = await reader.load(sid);
      for (const key of keys) if (loaded?.session[key] === undefined) lost.push(`${sid}.${key}`);
    }
    return lost;
  } finally {
    await reader.close();
  }
}

function report(t: TestContext, result: LoadResult, lost: readonly string[]): void {
  const saves = result.acknowledged.reduce((sum, { keys }) => sum + keys.length, 0);
  t.diagnostic(
    `${saves} saves acknowledged; failed calls ${JSON.stringify(Object.fromEntries(result.failures))} over ${result.failingMs} ms; ${lost.length} acknowledged saves lost`,
  );
}

for (const backend of backends) {
  const setup = SETUPS[backend.name] as Setup;
  const restore = async (): Promise<void> => {
    await run(setup.script, ['restore'], { timeout: 120_000 });
  };

  // The asynchronous window is the server's, not the client's: measured with the first client only (each run costs a failover).
  const [firstLabel] = Object.keys(setup.stores);
  for (const [label, makeStore] of Object.entries(setup.stores))
    describe(`${backend.name} / failover under load, ${label}`, () => {
      const table = `ssn_failover_${label.replace(/[^a-z]+/g, '_')}`;
      after(restore);

      test(`the primary killed and the standby promoted: no acknowledged save lost, the store recovers by itself, a destroyed session stays destroyed`, async (t) => {
        await restore();
        const store = makeStore({ url: backend.url, table, ...setup.safe });
        try {
          if (backend.sql) await store.createTable();
          // A session destroyed before the failover, with a request that loaded it before the destroy and saves after.
          const destroyed = `destroyed-${Date.now()}`;
          await store.save(destroyed, { cookie: cookie(), kept: false });
          const stale = await store.load(destroyed);
          assert.ok(stale);
          await store.destroy(destroyed);

          const result = await underLoad(store, `safe-${Date.now()}`, async () => {
            await run(setup.script, ['failover'], { timeout: 120_000 });
          });
          const lost = await lostKeys(backend.url, table, result);
          report(t, result, lost);
          assert.equal(result.stuck, 0, `${result.stuck} writers saw no save succeed within ${RECOVERY_LIMIT_MS} ms of the failover`);
          assert.deepEqual(lost, [], 'acknowledged saves were lost');
          // While it lasted, the failover was said as such: the database is unavailable, and the store knows it will recover.
          assert.deepEqual(
            [...result.failures.keys()].filter((code) => code !== 'ERR_UNAVAILABLE'),
            [],
          );

          await store.save(destroyed, { ...stale.session, late: true }, stale.state);
          assert.equal(await store.load(destroyed), null, 'the destroyed session came back');
        } finally {
          await store.close();
        }
      });

      if (label === firstLabel)
        test('with asynchronous replication, the saves acknowledged just before the kill may be lost: measured, not asserted', async (t) => {
          await restore();
          if (setup.unsafe.command !== undefined) await run(setup.script, [...setup.unsafe.command], { timeout: 60_000 });
          const store = makeStore({ url: backend.url, table, ...setup.unsafe.options });
          try {
            if (backend.sql) await store.createTable();
            const result = await underLoad(store, `async-${Date.now()}`, async () => {
              await run(setup.script, ['failover'], { timeout: 120_000 });
            });
            const lost = await lostKeys(backend.url, table, result);
            report(t, result, lost);
            assert.equal(result.stuck, 0, `${result.stuck} writers saw no save succeed within ${RECOVERY_LIMIT_MS} ms of the failover`);
          } finally {
            await store.close();
          }
        });
    });
}

describe('failover options', () => {
  test("a PostgreSQL URL lists several hosts with libpq's target_session_attrs; a value asking for a server the store cannot write to is refused", () => {
    const url = 'postgres://app@db1:5432,db2:5433/sessions?target_session_attrs=read-write';
    assert.equal(new CookieStore({ url }).constructor, CookieStore);
    for (const attrs of ['read-only', 'standby', 'prefer-standby', 'nonsense']) {
      assert.throws(
        () => new CookieStore({ url: `postgres://app@db1,db2/sessions?target_session_attrs=${attrs}` }),
        isStoreError('ERR_INVALID_OPTION', `target_session_attrs=${attrs}`),
      );
    }
    assert.throws(() => new CookieStore({ url: 'postgres://app@db1:5432,db2:x/sessions' }), isStoreError('ERR_INVALID_OPTION', 'url'));
  });

  test('a Sentinel URL names the master; waitReplicas and waitTimeout are checked', () => {
    new CookieStore({ url: 'redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/2', waitReplicas: 1, waitTimeout: 0.5 });
    assert.throws(() => new CookieStore({ url: 'redis+sentinel://s1:26379,s2:26379' }), isStoreError('ERR_INVALID_OPTION', 'must name the master'));
    assert.throws(() => new CookieStore({ url: 'redis+sentinel://s1/mymaster/x' }), isStoreError('ERR_INVALID_OPTION', 'database'));
    assert.throws(() => new CookieStore({ url: 'redis://h:6379/0', waitReplicas: -1 }), isStoreError('ERR_INVALID_OPTION', 'waitReplicas'));
    assert.throws(() => new CookieStore({ url: 'redis://h:6379/0', waitTimeout: 0 }), isStoreError('ERR_INVALID_OPTION', 'waitTimeout'));
    assert.throws(() => new CookieStore({ url: 'postgres://h/db', waitReplicas: 1 }), isStoreError('ERR_INVALID_OPTION', 'waitReplicas'));
  });
});

const [replica] = backends.filter((backend) => backend.name === 'postgres-failover');
if (replica !== undefined) {
  describe('postgres-failover: a host that takes no writes', () => {
    const table = 'ssn_failover_standby';

    test('a URL naming only the standby: ERR_UNAVAILABLE saying no host accepts writes, never a write to it', async () => {
      await run(SETUPS['postgres-failover']?.script as string, ['restore'], { timeout: 120_000 });
      const primary = await postgresPrimaryUrl();
      const standby = postgresHostUrls().find((url) => url !== primary) as string;
      const creator = new CookieStore({ url: primary, table, autopurge: false });
      const store = new CookieStore({ url: `${standby}?target_session_attrs=read-write`, table, autopurge: false });
      try {
        await creator.createTable();
        await assert.rejects(store.save('s', { cookie: cookie() }), isStoreError('ERR_UNAVAILABLE', 'no host accepts writes'));
      } finally {
        await store.close();
        await creator.close();
      }
    });

    test("without target_session_attrs, a standby's refusal (25006, read-only transaction) is a lost connection: run again, then ERR_UNAVAILABLE", async () => {
      const primary = await postgresPrimaryUrl();
      const standby = postgresHostUrls().find((url) => url !== primary) as string;
      const creator = new CookieStore({ url: primary, table, autopurge: false });
      const store = new CookieStore({ url: standby, table, autopurge: false, poolSize: 2 });
      try {
        await creator.createTable();
        await assert.rejects(store.save('s', { cookie: cookie() }), isStoreError('ERR_UNAVAILABLE', 'read-only transaction'));
      } finally {
        await store.close();
        await creator.close();
      }
    });
  });
}

const [sentinel] = backends.filter((backend) => backend.name === 'redis-sentinel');
if (sentinel !== undefined) {
  describe('redis-sentinel: waitReplicas', () => {
    test('more replicas asked for than there are: the save fails with ERR_UNAVAILABLE saying how many confirmed', async () => {
      await run(SETUPS['redis-sentinel']?.script as string, ['restore'], { timeout: 120_000 });
      const store = new CookieStore({ url: sentinel.url, table: 'ssn_failover_wait', autopurge: false, waitReplicas: 3, waitTimeout: 0.2 });
      const enough = new CookieStore({ url: sentinel.url, table: 'ssn_failover_wait', autopurge: false, waitReplicas: 2 });
      try {
        await assert.rejects(store.save('w', { cookie: cookie() }), isStoreError('ERR_UNAVAILABLE', 'only 2 of the 3 replicas'));
        await enough.save('w2', { cookie: cookie(), ok: true });
        assert.equal((await enough.load('w2'))?.session['ok'], true);
      } finally {
        await store.close();
        await enough.close();
      }
    });
  });
}

if (sentinel !== undefined) {
  describe('redis-sentinel: clients of your own', () => {
    const table = 'ssn_failover_own';
    const { name, sentinels } = sentinelsOf(sentinel.url);

    test('a node-redis Sentinel client (createSentinel), handed over, with waitReplicas', async () => {
      const client = createSentinel({ name, sentinelRootNodes: sentinels });
      client.on('error', () => undefined);
      await client.connect();
      const store = new CookieStore({ connection: client, table, autopurge: false, waitReplicas: 1 });
      try {
        await store.save('own-node-redis', { cookie: cookie(), a: 1 });
        const loaded = await store.load('own-node-redis');
        assert.ok(loaded);
        await store.save('own-node-redis', { ...loaded.session, b: 2 }, loaded.state);
        assert.deepEqual({ ...(await store.load('own-node-redis'))?.session, cookie: undefined }, { a: 1, b: 2, cookie: undefined });
        await store.destroy('own-node-redis');
        assert.equal(await store.load('own-node-redis'), null);
      } finally {
        await store.close();
        await client.close();
      }
    });

    test('an ioredis Redis made with sentinels, handed over, with waitReplicas', async () => {
      const client = new IoRedis({ sentinels, name, lazyConnect: true });
      client.on('error', () => undefined);
      await client.connect();
      const store = new CookieStore({ connection: client, table, autopurge: false, waitReplicas: 1 });
      try {
        await store.save('own-ioredis', { cookie: cookie(), a: 1 });
        assert.equal((await store.load('own-ioredis'))?.session['a'], 1);
        await store.destroy('own-ioredis');
        assert.equal(await store.load('own-ioredis'), null);
      } finally {
        await store.close();
        client.disconnect();
      }
    });
  });
}

if (replica !== undefined) {
  test('postgres-failover: a pg Pool of your own on the standby: its refusals (25006) end in ERR_UNAVAILABLE, nothing is written there', async () => {
    const primary = await postgresPrimaryUrl();
    const standby = postgresHostUrls().find((url) => url !== primary) as string;
    const table = 'ssn_failover_standby';
    const creator = new CookieStore({ url: primary, table, autopurge: false });
    const pool = new pg.Pool({ connectionString: standby, max: 2 });
    pool.on('error', () => undefined);
    const store = new CookieStore({ connection: pool, table, autopurge: false });
    try {
      await creator.createTable();
      await assert.rejects(store.save('handed', { cookie: cookie() }), isStoreError('ERR_UNAVAILABLE', 'read-only transaction'));
      assert.equal(await creator.load('handed'), null);
    } finally {
      await store.close();
      await creator.close();
      await pool.end();
    }
  });
}

if (replica !== undefined) {
  test('postgres-failover: the primary turned read-only without a restart (25006 on the pooled connections): ERR_UNAVAILABLE, then writes again by themselves once it takes them', async () => {
    await run(SETUPS['postgres-failover']?.script as string, ['restore'], { timeout: 120_000 });
    const primary = await postgresPrimaryUrl();
    // The administrator's own session stays writable whatever the server's default.
    const admin = new pg.Client({ connectionString: primary, options: '-c default_transaction_read_only=off' });
    await admin.connect();
    const setReadOnly = async (on: boolean): Promise<void> => {
      await admin.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
      await admin.query('SELECT pg_reload_conf()');
    };
    const table = 'ssn_failover_read_only';
    const store = new CookieStore({ url: replica.url, table, autopurge: false });
    try {
      await store.createTable();
      await store.save('before', { cookie: cookie(), n: 1 });
      await setReadOnly(true);
      // A reload reaches a server process at its next protocol message: the first message of a statement still runs
      // under the old setting, and a named statement already prepared starts its transaction with that first message
      // (Bind). So a pooled connection may take one more write before it refuses them: saves go on until one is
      // refused, which is the promise (ERR_UNAVAILABLE, never another error), within as many saves as the pool has
      // connections and then some.
      let refused = false;
      for (let attempt = 0; attempt < 30 && !refused; attempt++) {
        try {
          await store.save(`during-${attempt}`, { cookie: cookie() });
        } catch (error) {
          assert.ok(isStoreError('ERR_UNAVAILABLE')(error), String(error));
          refused = true;
        }
      }
      assert.ok(refused, 'a save was refused once the primary turned read-only');
      const reconnected = new Promise<void>((resolve) => store.once('connect', () => resolve()));
      await setReadOnly(false);
      await reconnected;
      await store.save('after', { cookie: cookie(), n: 2 });
      assert.equal((await store.load('after'))?.session['n'], 2);
      assert.equal((await store.load('before'))?.session['n'], 1);
    } finally {
      await setReadOnly(false).catch(() => undefined);
      await admin.end();
      await store.close();
    }
  });
}
