/**
 * Pools: the application's own pool or connection handed over (and left open
 * by close()), the statements a request costs, counted at the driver, and the
 * idle-connection check.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import mysqlCallback from 'mysql2';
import pg from 'pg';
import type { JsonObject } from '../src/index.js';
import { backendsForThisFile, dropTable, type Backend, CookieStore, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);

const cookie = (): JsonObject => ({ originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() });

for (const backend of backends) {
  describe(`${backend.name}: a connection handed over by the application`, () => {
    const table = 'ssn_given';

    test('the store uses it, and close() leaves it open', async () => {
      await dropTable(backend, table);
      const given = await backend.counted();
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

    if (backend.dialect !== 'sqlite') {
      test('connectionCheckThreshold: a connection idle longer than the threshold is checked before use', async () => {
        await dropTable(backend, table);
        const given = await backend.counted();
        const store = new CookieStore({ connection: given.connection, table, createTable: true, autopurge: false, connectionCheckThreshold: 0 });
        const patient = new CookieStore({ connection: given.connection, table, autopurge: false });
        try {
          await store.ready();
          await store.load('idle');
          await new Promise((resolve) => setTimeout(resolve, 20));
          given.statements.length = 0;
          await store.load('idle');
          assert.deepStrictEqual(
            given.statements.map((sql) => (/^(SELECT 1|PING)$/.test(sql) ? 'check' : 'work')),
            ['check', 'work'],
          );
          await patient.ready();
          await patient.load('idle');
          given.statements.length = 0;
          await patient.load('idle');
          assert.deepStrictEqual(
            given.statements.map((sql) => (/^(SELECT 1|PING)$/.test(sql) ? 'check' : 'work')),
            ['work'],
          );
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
  const postgres = backends.find((backend) => backend.dialect === 'postgres');
  const mariadb = backends.find((backend) => backend.dialect === 'mysql');

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
      assert.deepStrictEqual(
        [0, 1, 2, 3, 4].map((i) => final[`k${i}`]),
        [0, 1, 2, 3, 4],
      );
      await store.close();
      assert.equal((await client.query('SELECT 1 AS one')).rows[0]?.one, 1);
    } finally {
      await client.end();
      await dropTable(backend, 'ssn_client');
    }
  });

  test('a pg Pool shared by many stores: each client carries one error listener of ours, not one per store', { skip: postgres === undefined }, async () => {
    const backend = postgres as Backend;
    await dropTable(backend, 'ssn_shared_pool');
    const pool = new pg.Pool({ connectionString: backend.url, max: 1 });
    const listenersOfTheClient = async (): Promise<number> => {
      const client = await pool.connect();
      try {
        return client.listenerCount('error');
      } finally {
        client.release();
      }
    };
    const stores = Array.from({ length: 15 }, () => new CookieStore({ connection: pool, table: 'ssn_shared_pool', createTable: true, autopurge: false }));
    try {
      const before = await listenersOfTheClient();
      for (const [i, store] of stores.entries()) await store.save(`shared-${i}`, { cookie: cookie(), i });
      assert.equal(await listenersOfTheClient(), before + 1);
    } finally {
      for (const store of stores) await store.close();
      await pool.end();
      await dropTable(backend, 'ssn_shared_pool');
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
