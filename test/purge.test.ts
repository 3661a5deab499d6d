/**
 * Removal of expired rows: store.purge() in batches, single-flight within a
 * process and across processes (the database lock), and autopurge by chance
 * or by interval, off the response path.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { SessionStore, JsonObject } from '../src/index.js';
import { backendsForThisFile, dropTable, type Backend, type CountedConnection, CookieStore, LOCAL_SQL } from './support/backends.js';
import { countedSqlConnection } from './support/counted.js';

const backends = await backendsForThisFile(LOCAL_SQL);

const live = (): JsonObject => ({ cookie: { expires: new Date(Date.now() + 3_600_000).toISOString() }, live: true });
const dead = (): JsonObject => ({ cookie: { expires: new Date(Date.now() - 60_000).toISOString() }, live: false });

/** Holds the purge lock of `table` the way another process would, until the returned function is called. */
async function holdPurgeLock(backend: Backend, table: string): Promise<() => Promise<void>> {
  const name = `smart-session-store:purge:${table}`;
  if (backend.dialect === 'postgres') {
    const client = new pg.Client({ connectionString: backend.url });
    await client.connect();
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    return async () => {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
      await client.end();
    };
  }
  if (backend.dialect === 'mysql') {
    // A lease row, as the store keeps it on MySQL/MariaDB (GET_LOCK would be node-local on a Galera cluster).
    const connection = await mysql.createConnection({ uri: backend.url });
    await connection.query(
      'CREATE TABLE IF NOT EXISTS smart_session_store_locks (name VARCHAR(255) CHARACTER SET ascii NOT NULL PRIMARY KEY, holder VARCHAR(64) NOT NULL, `until` BIGINT NOT NULL) ENGINE=InnoDB',
    );
    await connection.query('INSERT INTO smart_session_store_locks (name, holder, `until`) VALUES (?, ?, ?)', [name, 'other process', Date.now() + 60_000]);
    return async () => {
      await connection.query('DELETE FROM smart_session_store_locks WHERE name = ?', [name]);
      await connection.end();
    };
  }
  const db = new Database(backend.url.slice('sqlite:'.length));
  db.exec('CREATE TABLE IF NOT EXISTS smart_session_store_locks (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL)');
  db.prepare('INSERT INTO smart_session_store_locks (name, holder, until) VALUES (?, ?, ?)').run(name, 'other process', Date.now() + 60_000);
  return async () => {
    db.prepare('DELETE FROM smart_session_store_locks WHERE name = ?').run(name);
    db.close();
  };
}

for (const backend of backends) {
  describe(`${backend.name}: purge`, () => {
    const table = 'ssn_purge';
    let store: SessionStore;
    before(async () => {
      await dropTable(backend, table);
      store = new CookieStore({ url: backend.url, table, createTable: true, autopurge: false });
      await store.ready();
    });
    after(async () => {
      await store.close();
      await dropTable(backend, table);
    });

    async function fill(expired: number, alive: number): Promise<void> {
      await store.clear();
      for (let i = 0; i < expired; i++) await store.save(`dead-${i}`, dead());
      for (let i = 0; i < alive; i++) await store.save(`live-${i}`, live());
    }

    test('removes expired rows in batches and keeps live ones', async () => {
      await fill(23, 5);
      assert.deepStrictEqual(await store.stats(), { live: 5, expired: 23 });
      const progress: number[] = [];
      const removed = await store.purge({ batchSize: 7, onProgress: (count) => progress.push(count) });
      assert.equal(removed, 23);
      // Batches of at most 7 (a window of a walk in storage order may remove fewer: it holds live rows too).
      assert.equal(progress.at(-1), 23);
      for (const [index, count] of progress.entries())
        assert.ok(count - (progress[index - 1] ?? 0) <= 7, `batch ${index} removed ${count - (progress[index - 1] ?? 0)}`);
      if (backend.dialect === 'postgres') assert.deepStrictEqual(progress, [7, 14, 21, 23]);
      assert.deepStrictEqual(await store.stats(), { live: 5, expired: 0 });
      assert.equal(await store.purge(), 0);
    });

    // Statements of the two ways through a table: a window of the walk in storage order, a batch in expiry order.
    const isWalk = (text: string): boolean => /ORDER BY [`"]?(id|rowid)[`"]? LIMIT/.test(text);
    const isExpiryBatch = (text: string): boolean => /LIMIT/.test(text) && !isWalk(text) && /expires_at/.test(text);

    /** A store on a connection that writes its statements down, ids unhashed (stored in the order they sort in). */
    async function countedStore(): Promise<{ counted: CountedConnection; store: SessionStore }> {
      const counted = await countedSqlConnection(backend.dialect as 'postgres' | 'mysql' | 'sqlite', backend.url);
      return { counted, store: new CookieStore({ connection: counted.connection, table, autopurge: false, hashSessionIds: false }) };
    }

    test('a mostly expired table is walked in storage order (where rows are kept in an order), then by expiry', async () => {
      await store.clear();
      // In key order, which is also the insertion (rowid) order: 40 expired, 60 live, 5 expired.
      const { counted, store: counting } = await countedStore();
      try {
        for (let i = 0; i < 40; i++) await counting.save(`a-${String(i).padStart(3, '0')}`, dead());
        for (let i = 0; i < 60; i++) await counting.save(`m-${String(i).padStart(3, '0')}`, live());
        for (let i = 0; i < 5; i++) await counting.save(`z-${String(i).padStart(3, '0')}`, dead());
        counted.statements.length = 0;
        assert.equal(await counting.purge({ batchSize: 10 }), 45);
        assert.deepStrictEqual(await counting.stats(), { live: 60, expired: 0 });
        for (const key of ['m-000', 'm-059']) assert.equal((await counting.load(key))?.session['live'], true);
        const walk = counted.statements.filter(isWalk).length;
        const firstExpiryBatch = counted.statements.findIndex(isExpiryBatch);
        if (backend.dialect === 'postgres') {
          assert.equal(walk, 0, 'PostgreSQL keeps rows in no key order: the expiry order only');
        } else {
          // The walk removed the 40 (at least four windows of ten), met the live rows, and left the last five to the expiry order.
          assert.ok(walk >= 4, `${walk} windows`);
          assert.ok(firstExpiryBatch > counted.statements.findIndex(isWalk), 'the expiry order came after the walk');
          assert.equal(counted.statements.slice(firstExpiryBatch).filter(isWalk).length, 0, 'no window after the switch');
        }
      } finally {
        await counting.close();
        await counted.close();
      }
    });

    test('a walk that keeps finding expired rows reaches the end of the table and needs no expiry batch', async () => {
      await store.clear();
      const { counted, store: counting } = await countedStore();
      try {
        for (let i = 0; i < 30; i++) await counting.save(`k-${String(i).padStart(3, '0')}`, i % 10 === 5 ? live() : dead());
        counted.statements.length = 0;
        assert.equal(await counting.purge({ batchSize: 8 }), 27);
        assert.deepStrictEqual(await counting.stats(), { live: 3, expired: 0 });
        if (backend.dialect !== 'postgres') {
          assert.ok(counted.statements.filter(isWalk).length >= 4, counted.statements.join('\n'));
          assert.equal(counted.statements.filter(isExpiryBatch).length, 0, counted.statements.join('\n'));
        }
      } finally {
        await counting.close();
        await counted.close();
      }
    });

    test('a walk deletes only rows still expired: a session renewed after its window was read stays', {
      skip: backend.dialect === 'postgres' ? 'PostgreSQL does not walk' : false,
    }, async () => {
      await store.clear();
      const { counted, store: counting } = await countedStore();
      for (let i = 0; i < 12; i++) await counting.save(`r-${String(i).padStart(2, '0')}`, dead());
      const renewal = `UPDATE ${table} SET expires_at = ${Date.now() + 3_600_000} WHERE id = 'r-05'`;
      let renewed = false;
      const isWalkDelete = (text: string): boolean => /^DELETE/.test(text) && !/smart_session_store_locks/.test(text);
      // The renewal runs between the window's read and its delete, through a connection of its own.
      if (backend.dialect === 'sqlite') {
        const connection = counted.connection as { prepare(text: string): { run(...params: unknown[]): unknown } };
        const prepare = connection.prepare.bind(connection);
        connection.prepare = (text) => {
          const statement = prepare(text);
          if (!isWalkDelete(text)) return statement;
          return {
            ...statement,
            run: (...params: unknown[]) => {
              if (!renewed) {
                const other = new Database(backend.url.slice('sqlite:'.length));
                other.exec(renewal);
                other.close();
                renewed = true;
              }
              return statement.run(...params);
            },
          };
        };
      } else {
        type Queryable = { query(text: string, values?: unknown[]): Promise<unknown> };
        const beforeDelete = async (text: string): Promise<void> => {
          if (renewed || !isWalkDelete(text)) return;
          const other = await mysql.createConnection({ uri: backend.url });
          await other.query(renewal);
          await other.end();
          renewed = true;
        };
        // The store runs statements on connections it borrows from the pool: each one's query is hooked once.
        const hooked = new WeakSet<Queryable>();
        const pool = counted.connection as { getConnection(): Promise<Queryable> };
        const getConnection = pool.getConnection.bind(pool);
        pool.getConnection = async () => {
          const lent = await getConnection();
          if (!hooked.has(lent)) {
            hooked.add(lent);
            const query = lent.query.bind(lent);
            lent.query = async (text, values) => {
              await beforeDelete(text);
              return query(text, values);
            };
          }
          return lent;
        };
      }
      try {
        assert.equal(await counting.purge({ batchSize: 100 }), 11);
        assert.ok(renewed, 'the renewal ran between the window and its delete');
        assert.ok(counted.statements.some(isWalk), 'the purge walked');
        assert.ok(await counting.load('r-05'), 'the renewed session is still there');
        assert.deepStrictEqual(await counting.stats(), { live: 1, expired: 0 });
      } finally {
        await counting.close();
        await counted.close();
      }
    });

    test('single-flight within a process: concurrent calls share one run', async () => {
      await fill(10, 1);
      const [first, second] = await Promise.all([store.purge({ batchSize: 3 }), store.purge({ batchSize: 3 })]);
      assert.equal(first, 10);
      assert.equal(second, 10);
      assert.deepStrictEqual(await store.stats(), { live: 1, expired: 0 });
    });

    test('single-flight across processes: while another holds the lock, purge removes nothing', async () => {
      await fill(4, 1);
      const release = await holdPurgeLock(backend, table);
      try {
        assert.equal(await store.purge(), 0);
        assert.equal((await store.stats()).expired, 4);
      } finally {
        await release();
      }
      assert.equal(await store.purge(), 4);
    });

    test('autopurge by chance runs after the call that drew it, never inside it', async () => {
      await fill(6, 2);
      const eager = new CookieStore({ url: backend.url, table, autopurge: { probability: 1, minInterval: 0 } });
      try {
        const order: string[] = [];
        const purged = once(eager, 'purge').then(([removed]) => {
          order.push('purge');
          return removed as number;
        });
        await eager.load('live-0');
        order.push('load answered');
        assert.equal(await purged, 6);
        assert.deepStrictEqual(order, ['load answered', 'purge']);
        assert.deepStrictEqual(await store.stats(), { live: 2, expired: 0 });
      } finally {
        await eager.close();
      }
    });

    test('autopurge by interval needs no calls; autopurge: false never purges', async () => {
      await fill(3, 1);
      const off = new CookieStore({ url: backend.url, table, autopurge: false });
      const timed = new CookieStore({ url: backend.url, table, autopurge: { interval: 0.2 } });
      try {
        let offPurged = false;
        off.on('purge', () => {
          offPurged = true;
        });
        for (let i = 0; i < 20; i++) await off.load('live-0');
        assert.equal(offPurged, false);
        // The autopurge timer does not keep a process alive (an application must be able to exit); on SQLite alone no
        // connection does either, so this wait holds the test's process open.
        const alive = setInterval(() => undefined, 1000);
        const [removed] = await once(timed, 'purge', { signal: AbortSignal.timeout(10_000) }).finally(() => clearInterval(alive));
        assert.equal(removed, 3);
      } finally {
        await off.close();
        await timed.close();
      }
    });

    test('a table without rowid (SQLite) is walked in primary-key order', { skip: backend.dialect === 'sqlite' ? false : 'SQLite only' }, async () => {
      const bare = 'ssn_purge_without_rowid';
      await dropTable(backend, bare);
      const db = new Database(backend.url.slice('sqlite:'.length));
      db.exec(`CREATE TABLE ${bare} (id TEXT NOT NULL PRIMARY KEY, data TEXT NOT NULL, changes TEXT, expires_at INTEGER NOT NULL) WITHOUT ROWID`);
      db.exec(`CREATE INDEX ${bare}_expires_at_idx ON ${bare} (expires_at)`);
      db.close();
      const counted = await countedSqlConnection('sqlite', backend.url);
      const counting = new CookieStore({ connection: counted.connection, table: bare, autopurge: false, hashSessionIds: false });
      try {
        for (let i = 0; i < 20; i++) await counting.save(`w-${String(i).padStart(2, '0')}`, i === 7 ? live() : dead());
        counted.statements.length = 0;
        assert.equal(await counting.purge({ batchSize: 6 }), 19);
        assert.deepStrictEqual(await counting.stats(), { live: 1, expired: 0 });
        const walk = counted.statements.filter(isWalk);
        assert.ok(walk.length >= 3, counted.statements.join('\n'));
        assert.ok(
          walk.every((text) => /ORDER BY id LIMIT/.test(text)),
          walk.join('\n'),
        );
      } finally {
        await counting.close();
        await counted.close();
        await dropTable(backend, bare);
      }
    });
  });
}
