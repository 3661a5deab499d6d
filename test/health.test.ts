/**
 * The database goes away: connections killed by the server
 * (pg_terminate_backend, MariaDB KILL), and the whole server unreachable
 * (a TCP proxy cut) and back. Calls fail fast with ERR_UNAVAILABLE, the
 * process keeps running, nothing is half-written, express-session's
 * disconnect/connect events fire, and the store recovers by itself.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { SmartSessionStore } from '../src/adapters/express.js';
import type { JsonObject } from '../src/index.js';
import { backendsForThisFile, isStoreError as isError, dropTable, LOCKING_MODES, type Backend, CookieStore, LOCAL_SQL } from './support/backends.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const backends = (await backendsForThisFile(LOCAL_SQL)).filter((backend) => backend.dialect !== 'sqlite');

const cookie = (): JsonObject => ({ expires: new Date(Date.now() + 3_600_000).toISOString() });

/** A URL for the same server and database under another port, user or application name. */
function variant(backend: Backend, change: { port?: number; user?: string; applicationName?: string }): string {
  const url = new URL(backend.url);
  if (change.port !== undefined) url.port = String(change.port);
  if (change.user !== undefined) url.username = change.user;
  if (change.applicationName !== undefined) url.searchParams.set('application_name', change.applicationName);
  return url.toString();
}

/** Kills every server connection of the store's (by application name on PostgreSQL, by user on MariaDB). */
async function killStoreConnections(backend: Backend, marker: string): Promise<number> {
  if (backend.dialect === 'postgres') {
    const rows = await backend.query('SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1', [marker]);
    return rows.length;
  }
  const rows = await backend.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [marker]);
  for (const row of rows) await backend.query(`KILL ${Number(row['id'])}`);
  return rows.length;
}

for (const backend of backends) {
  describe(`${backend.name}: connections killed by the server`, () => {
    const table = 'ssn_health';
    const marker = `ssn_health_${process.pid}`;
    let url: string;

    test('setup: a store of its own, recognisable on the server', async () => {
      await dropTable(backend, table);
      if (backend.dialect === 'postgres') {
        url = variant(backend, { applicationName: marker });
      } else {
        for (const host of ['localhost', '127.0.0.1', '%']) {
          await backend.query(`CREATE USER IF NOT EXISTS '${marker}'@'${host}'`);
          await backend.query(`GRANT ALL ON test.* TO '${marker}'@'${host}'`);
        }
        url = variant(backend, { user: marker });
      }
      const creator = new CookieStore({ url, table, locking: 'optimistic', createTable: true });
      await creator.ready();
      await creator.close();
    });

    for (const locking of LOCKING_MODES) {
      test(`${locking}: after the server kills every connection, the next calls succeed without an error`, async () => {
        const store = new CookieStore({ url, table, locking, poolSize: 4, autopurge: false });
        const events: string[] = [];
        store.on('disconnect', () => events.push('disconnect'));
        try {
          await store.save(`killed-${locking}`, { cookie: cookie(), n: 0 });
          // Several connections in the pool, all of them killed.
          await Promise.all(Array.from({ length: 4 }, () => store.load(`killed-${locking}`)));
          assert.ok((await killStoreConnections(backend, marker)) > 0);
          const loaded = await store.load(`killed-${locking}`);
          assert.ok(loaded);
          await store.save(`killed-${locking}`, { ...loaded.session, n: 1 }, loaded.state);
          assert.ok((await killStoreConnections(backend, marker)) > 0);
          const again = await store.load(`killed-${locking}`);
          assert.equal(again?.session['n'], 1);
          assert.deepStrictEqual(events, []);
        } finally {
          await store.close();
        }
      });
    }

    test('cleanup', async () => {
      await dropTable(backend, table);
      if (backend.dialect === 'mysql') {
        for (const host of ['localhost', '127.0.0.1', '%']) await backend.query(`DROP USER IF EXISTS '${marker}'@'${host}'`);
      }
    });
  });

  describe(`${backend.name}: the database unreachable, then back`, () => {
    test('calls fail fast with ERR_UNAVAILABLE, disconnect/connect fire, nothing half-written, recovery by itself', async () => {
      const table = 'ssn_outage';
      await dropTable(backend, table);
      const proxy = await startTcpProxy(Number(new URL(backend.url).port));
      const store = new SmartSessionStore({ url: variant(backend, { port: proxy.port }), table, createTable: true, connectTimeout: 2, autopurge: false });
      const core = store.store;
      try {
        await core.save('outage', { cookie: cookie(), before: 1 });
        const loaded = await core.load('outage');
        assert.ok(loaded);

        const disconnected = once(store, 'disconnect');
        await proxy.cut();
        await assert.rejects(core.save('outage', { ...loaded.session, during: 1 }, loaded.state), isError('ERR_UNAVAILABLE'));
        const [reported] = await disconnected;
        assert.ok(isError('ERR_UNAVAILABLE')(reported));
        // While it is down, calls fail at once instead of waiting on the network.
        await assert.rejects(core.load('outage'), isError('ERR_UNAVAILABLE'));
        await new Promise<void>((resolve, reject) =>
          store.get('outage', (error) => (isError('ERR_UNAVAILABLE')(error) ? resolve() : reject(new Error(`expected ERR_UNAVAILABLE, got ${String(error)}`)))),
        );

        const reconnected = once(store, 'connect');
        await proxy.restore();
        await reconnected;
        const after = await core.load('outage');
        assert.deepStrictEqual({ ...after?.session, cookie: null }, { cookie: null, before: 1 });
        await core.save('outage', { ...after?.session, after: 1 }, after?.state);
        assert.equal((await core.load('outage'))?.session['after'], 1);
      } finally {
        await store.close();
        await proxy.close();
        await dropTable(backend, table);
      }
    });

    test('a store that starts while the database is unreachable recovers once it is there', async () => {
      const table = 'ssn_late_start';
      await dropTable(backend, table);
      const proxy = await startTcpProxy(Number(new URL(backend.url).port));
      await proxy.cut();
      const store = new CookieStore({ url: variant(backend, { port: proxy.port }), table, createTable: true, connectTimeout: 2, autopurge: false });
      try {
        await assert.rejects(store.load('late'), isError('ERR_UNAVAILABLE'));
        const reconnected = once(store, 'connect');
        await proxy.restore();
        await reconnected;
        await store.save('late', { cookie: cookie(), ok: true });
        assert.equal((await store.load('late'))?.session['ok'], true);
      } finally {
        await store.close();
        await proxy.close();
        await dropTable(backend, table);
      }
    });
  });
}
