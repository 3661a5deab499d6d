/**
 * Pools: the application's own pool or connection handed over (and left open
 * by close()), the statements a request costs, counted at the driver, and the
 * idle-connection check.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import express from 'express';
import session from 'express-session';
import mysql from 'mysql2/promise';
import mysqlCallback from 'mysql2';
import pg from 'pg';
import { SmartSessionStore } from '../src/adapters/express.js';
import type { JsonObject } from '../src/index.js';
import { backendsForThisFile, dropTable, type Backend, CookieStore } from './support/backends.js';

const backends = await backendsForThisFile();

const cookie = (): JsonObject => ({ originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() });

/** A real driver connection whose statements are written down as they go by. */
interface Counted {
  readonly connection: object;
  readonly statements: string[];
  close(): Promise<void>;
}

/** The same wrapper for the same underlying client, so the store can tell how long each has been idle. */
function memo<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) cache.set(key, (value = make(key)));
    return value;
  };
}

async function countedConnection(backend: Backend): Promise<Counted> {
  const statements: string[] = [];
  if (backend.name === 'postgres') {
    const pool = new pg.Pool({ connectionString: backend.url, max: 4 });
    pool.on('error', () => undefined);
    const wrap = memo((client: pg.PoolClient) => ({
      query: (text: string, values?: unknown[]) => {
        statements.push(text);
        return client.query(text, values);
      },
      release: (error?: boolean | Error) => client.release(error),
      on: (event: 'error', listener: (error: Error) => void) => client.on(event, listener),
    }));
    return {
      connection: {
        get totalCount() {
          return pool.totalCount;
        },
        query: (text: string, values?: unknown[]) => {
          statements.push(text);
          return pool.query(text, values);
        },
        connect: async () => wrap(await pool.connect()),
        end: () => pool.end(),
        on: (event: 'error', listener: (error: Error) => void) => pool.on(event, listener),
      },
      statements,
      close: () => pool.end(),
    };
  }
  if (backend.name === 'mysql') {
    const pool = mysql.createPool({ uri: backend.url, connectionLimit: 4, charset: 'utf8mb4_unicode_ci' });
    const wrapCore = memo((core: object) => (connection: mysql.PoolConnection) => ({
      query: (sql: string, values?: unknown[]) => {
        statements.push(sql);
        return connection.query(sql, values);
      },
      ping: () => {
        statements.push('PING');
        return connection.ping();
      },
      beginTransaction: () => connection.beginTransaction(),
      commit: () => connection.commit(),
      rollback: () => connection.rollback(),
      release: () => connection.release(),
      destroy: () => connection.destroy(),
      connection: core,
    }));
    // mysql2 hands out a new promise wrapper around the same connection each time: its core identifies it.
    const wrap = (connection: mysql.PoolConnection) => wrapCore((connection as unknown as { connection: object }).connection)(connection);
    return {
      connection: {
        query: (sql: string, values?: unknown[]) => {
          statements.push(sql);
          return pool.query(sql, values);
        },
        getConnection: async () => wrap(await pool.getConnection()),
        end: () => pool.end(),
      },
      statements,
      close: () => pool.end(),
    };
  }
  const db = new Database(backend.url.slice('sqlite:'.length));
  const count = <T extends (...args: never[]) => unknown>(sql: string, run: T): T =>
    ((...args: Parameters<T>) => {
      statements.push(sql);
      return run(...args);
    }) as T;
  return {
    connection: {
      prepare: (sql: string) => {
        const statement = db.prepare(sql);
        return {
          run: count(sql, (...params: unknown[]) => statement.run(...params)),
          get: count(sql, (...params: unknown[]) => statement.get(...params)),
          all: count(sql, (...params: unknown[]) => statement.all(...params)),
        };
      },
      exec: (sql: string) => db.exec(sql),
      pragma: (source: string) => db.pragma(source),
      function: (name: string, options: Database.RegistrationOptions, fn: (...args: unknown[]) => unknown) => db.function(name, options, fn),
      transaction: <T>(fn: () => T) => db.transaction(fn),
      close: () => db.close(),
      memory: false,
    },
    statements,
    close: async () => {
      db.close();
    },
  };
}

for (const backend of backends) {
  describe(`${backend.name}: a connection handed over by the application`, () => {
    const table = 'ssn_given';

    test('the store uses it, and close() leaves it open', async () => {
      await dropTable(backend, table);
      const given = await countedConnection(backend);
      const store = new CookieStore({ connection: given.connection, table, createTable: true, autopurge: false });
      try {
        assert.equal(store.dialect, backend.name);
        await store.save('given', { cookie: cookie(), a: 1 });
        const loaded = await store.load('given');
        assert.ok(loaded);
        await store.save('given', { ...loaded.session, b: 2 }, loaded.state);
        assert.ok(given.statements.length > 0);
        await store.close();
        // Still the application's to use.
        const again = new CookieStore({ connection: given.connection, table, autopurge: false });
        assert.equal((await again.load('given'))?.session['b'], 2);
        await again.close();
      } finally {
        await given.close();
        await dropTable(backend, table);
      }
    });

    test('a read-only request costs one statement; touch writes only past touchAfter; a change costs one more', async () => {
      await dropTable(backend, table);
      const given = await countedConnection(backend);
      const store = new SmartSessionStore({ connection: given.connection, table, createTable: true, autopurge: false });
      await store.createTable();
      const app = express();
      app.use(session({ secret: 's', resave: false, saveUninitialized: false, store, cookie: { maxAge: 3_600_000 } }));
      app.post('/start', (req, res) => {
        req.session['started'] = true;
        res.end();
      });
      app.get('/read', (req, res) => {
        res.json({ started: req.session['started'] ?? null });
      });
      app.post('/write', (req, res) => {
        req.session['written'] = Date.now();
        res.end();
      });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const started = await fetch(`${base}/start`, { method: 'POST' });
        const sessionCookie = started.headers.get('set-cookie')?.split(';')[0] ?? '';
        given.statements.length = 0;
        const read = await fetch(`${base}/read`, { headers: { cookie: sessionCookie } });
        assert.deepStrictEqual(await read.json(), { started: true });
        assert.equal(given.statements.length, 1, `read-only request: ${given.statements.join(' | ')}`);
        assert.match(given.statements[0] as string, /^SELECT/);
        given.statements.length = 0;
        await fetch(`${base}/write`, { method: 'POST', headers: { cookie: sessionCookie } });
        assert.equal(given.statements.length, 2, `writing request: ${given.statements.join(' | ')}`);
      } finally {
        await new Promise((resolve) => server.close(resolve));
        await store.close();
        await given.close();
        await dropTable(backend, table);
      }
    });

    if (backend.name !== 'sqlite') {
      test('connectionCheckThreshold: a connection idle longer than the threshold is checked before use', async () => {
        await dropTable(backend, table);
        const given = await countedConnection(backend);
        const store = new CookieStore({ connection: given.connection, table, createTable: true, autopurge: false, connectionCheckThreshold: 0 });
        const patient = new CookieStore({ connection: given.connection, table, autopurge: false });
        try {
          await store.ready();
          await store.load('idle');
          await new Promise((resolve) => setTimeout(resolve, 20));
          given.statements.length = 0;
          await store.load('idle');
          assert.deepStrictEqual(given.statements.map((sql) => (/^(SELECT 1|PING)$/.test(sql) ? 'check' : 'work')), ['check', 'work']);
          await patient.ready();
          await patient.load('idle');
          given.statements.length = 0;
          await patient.load('idle');
          assert.deepStrictEqual(given.statements.map((sql) => (/^(SELECT 1|PING)$/.test(sql) ? 'check' : 'work')), ['work']);
        } finally {
          await store.close();
          await patient.close();
          await given.close();
          await dropTable(backend, table);
        }
      });
    }
  });
}

describe('other connection flavours', () => {
  const postgres = backends.find((backend) => backend.name === 'postgres');
  const mariadb = backends.find((backend) => backend.name === 'mysql');

  test('a single pg Client: calls take turns, transactions included', { skip: postgres === undefined }, async () => {
    const backend = postgres as Backend;
    await dropTable(backend, 'ssn_client');
    const client = new pg.Client({ connectionString: backend.url });
    await client.connect();
    const store = new CookieStore({ connection: client, table: 'ssn_client', createTable: true, locking: 'pessimistic', autopurge: false });
    try {
      await store.save('one', { cookie: cookie(), n: 0 });
      const loads = await Promise.all(Array.from({ length: 5 }, () => store.load('one')));
      await Promise.all(loads.map((loaded, i) => store.save('one', { ...loaded?.session, [`k${i}`]: i }, loaded?.state)));
      const final = (await store.load('one'))?.session ?? {};
      assert.deepStrictEqual([0, 1, 2, 3, 4].map((i) => final[`k${i}`]), [0, 1, 2, 3, 4]);
      await store.close();
      assert.equal((await client.query('SELECT 1 AS one')).rows[0]?.one, 1);
    } finally {
      await client.end();
      await dropTable(backend, 'ssn_client');
    }
  });

  test('a mysql2 callback pool and a single promise connection', { skip: mariadb === undefined }, async () => {
    const backend = mariadb as Backend;
    await dropTable(backend, 'ssn_callback');
    const callbackPool = mysqlCallback.createPool({ uri: backend.url, connectionLimit: 2 });
    const connection = await mysql.createConnection({ uri: backend.url });
    const viaPool = new CookieStore({ connection: callbackPool, table: 'ssn_callback', createTable: true, autopurge: false });
    const viaConnection = new CookieStore({ connection, table: 'ssn_callback', autopurge: false });
    try {
      await viaPool.save('flavours', { cookie: cookie(), from: 'pool' });
      const loaded = await viaConnection.load('flavours');
      assert.equal(loaded?.session['from'], 'pool');
      await viaConnection.save('flavours', { ...loaded?.session, also: 'connection' }, loaded?.state);
      assert.equal((await viaPool.load('flavours'))?.session['also'], 'connection');
    } finally {
      await viaPool.close();
      await viaConnection.close();
      await connection.end();
      await new Promise((resolve) => callbackPool.end(resolve));
      await dropTable(backend, 'ssn_callback');
    }
  });
});
