/**
 * Tables the store did not create: the Prancer seed's own table (expiry in
 * epoch seconds in `timeout`, data as TEXT), with lock_version added as the
 * SmartSessionStore seed does, schema-qualified names, and missing tables.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { hashSessionId, type JsonObject } from '../src/index.js';
import { backendsForThisFile, isStoreError as isError, sql, dropTable, LOCKING_MODES, type Backend, CookieStore, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);

/** The Prancer seed's table, as its documentation gives it, in each dialect. */
function prancerTable(backend: Backend, table: string, lockVersion: boolean): string {
  const version = lockVersion ? ', lock_version integer NOT NULL DEFAULT 0' : '';
  switch (backend.dialect) {
    case 'postgres':
      return `CREATE TABLE ${table} (id CHAR(72) PRIMARY KEY, data TEXT, timeout integer DEFAULT date_part('epoch'::text, now()) NOT NULL${version})`;
    case 'mysql':
      return `CREATE TABLE ${table} (id CHAR(72) PRIMARY KEY, data MEDIUMTEXT, timeout INT NOT NULL DEFAULT (UNIX_TIMESTAMP())${version}) DEFAULT CHARSET=utf8mb4`;
    case 'sqlite':
      return `CREATE TABLE ${table} (id CHAR(72) PRIMARY KEY, data TEXT, timeout INTEGER NOT NULL DEFAULT (strftime('%s','now'))${version})`;
    default:
      throw new Error(`${backend.name} has no tables`);
  }
}

const cookie = (ms = 3_600_000): JsonObject => ({ originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString() });

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`${backend.name} / ${locking}: the Prancer seed's table`, () => {
      const table = `ssn_prancer_${locking}`;
      after(() => dropTable(backend, table));

      test('works unchanged: expiry in epoch seconds, TEXT data, deltas merged, expired rows never returned', async () => {
        await dropTable(backend, table);
        await backend.query(prancerTable(backend, table, locking === 'optimistic'));
        const store = new CookieStore({ url: backend.url, table });
        try {
          assert.equal(await store.lockingMode(), locking === 'optimistic' ? 'optimistic' : 'atomic');
          const modeStore = locking === 'pessimistic' ? new CookieStore({ url: backend.url, table, locking }) : store;
          await modeStore.save('prancer-1', { cookie: cookie(), a: 1 });
          const [row] = await backend.query(sql(backend, `SELECT timeout FROM ${table} WHERE id = ?`), [hashSessionId('prancer-1')]);
          const expected = Math.floor((Date.now() + 3_600_000) / 1000);
          assert.ok(Math.abs(Number(row?.['timeout']) - expected) <= 2, `timeout ${String(row?.['timeout'])} is the expiry in epoch seconds`);

          const first = await modeStore.load('prancer-1');
          const second = await modeStore.load('prancer-1');
          assert.ok(first && second);
          await modeStore.save('prancer-1', { ...first.session, b: { c: 'ü😀' } }, first.state);
          await modeStore.save('prancer-1', { ...second.session, d: null }, second.state);
          assert.deepStrictEqual({ ...(await modeStore.load('prancer-1'))?.session, cookie: null }, { cookie: null, a: 1, b: { c: 'ü😀' }, d: null });

          await modeStore.save('prancer-old', { cookie: { expires: new Date(Date.now() - 2000).toISOString() }, old: true });
          assert.equal(await modeStore.load('prancer-old'), null);
          assert.equal(await modeStore.length(), 1);
          if (modeStore !== store) await modeStore.close();
        } finally {
          await store.close();
        }
      });
    });
  }

  describe(`${backend.name}: table names and shapes`, () => {
    test('schema.table', async () => {
      const schema = backend.dialect === 'postgres' ? 'ssn_schema' : backend.dialect === 'mysql' ? 'test' : 'main';
      if (backend.dialect === 'postgres') await backend.query('CREATE SCHEMA IF NOT EXISTS ssn_schema');
      await dropTable(backend, `${schema}.ssn_qualified`);
      const store = new CookieStore({ url: backend.url, table: `${schema}.ssn_qualified`, createTable: true });
      try {
        await store.save('qualified', { cookie: cookie(), in: schema });
        assert.equal((await store.load('qualified'))?.session['in'], schema);
        const rows = await backend.query(`SELECT id FROM ${schema}.ssn_qualified`);
        assert.equal(rows.length, 1);
      } finally {
        await store.close();
        await dropTable(backend, `${schema}.ssn_qualified`);
      }
    });

    test('a missing table is a clear error that says how to create it', async () => {
      const store = new CookieStore({ url: backend.url, table: 'ssn_missing_table' });
      try {
        await assert.rejects(
          store.load('x'),
          (error: unknown) =>
            isError('ERR_TABLE_MISSING')(error) && /create-table/.test((error as Error).message) && /createTable/.test((error as Error).message),
        );
      } finally {
        await store.close();
      }
    });

    test('extra columns are left alone', async () => {
      const table = 'ssn_extra_columns';
      await dropTable(backend, table);
      const store = new CookieStore({ url: backend.url, table, createTable: true });
      try {
        await store.ready();
        await backend.query(`ALTER TABLE ${table} ADD COLUMN note VARCHAR(20) DEFAULT 'kept'`);
        await store.save('extra', { cookie: cookie(), a: 1 });
        await backend.query(sql(backend, `UPDATE ${table} SET note = 'mine' WHERE id = ?`), [hashSessionId('extra')]);
        const loaded = await store.load('extra');
        assert.ok(loaded);
        await store.save('extra', { ...loaded.session, b: 2 }, loaded.state);
        const [row] = await backend.query(sql(backend, `SELECT note FROM ${table} WHERE id = ?`), [hashSessionId('extra')]);
        assert.equal(row?.['note'], 'mine');
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    if (backend.dialect === 'postgres')
      test('a timestamp expiry column without time zone holds UTC, whatever the time zone of the connection', async () => {
        const table = 'ssn_timestamp_utc';
        await dropTable(backend, table);
        await backend.query(`CREATE TABLE ${table} (id text PRIMARY KEY, data json NOT NULL, expires_at timestamp NOT NULL)`);
        // Another writer's connection in a zone far from UTC, and the store's own, through the URL, in another.
        const url = new URL(backend.url);
        url.searchParams.set('options', '-c TimeZone=Pacific/Kiritimati');
        const store = new CookieStore({ url: url.href, table });
        try {
          const expires = Date.now() + 3_600_000;
          await store.save('utc', { cookie: { originalMaxAge: 3_600_000, expires: new Date(expires).toISOString() }, a: 1 });
          const [row] = await backend.query(`SELECT to_char(expires_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS at FROM ${table}`);
          assert.equal(row?.['at'], new Date(expires).toISOString().slice(0, 23), 'the wall-clock time in UTC');
          const loaded = await store.load('utc');
          assert.equal(loaded?.state.expiresAt, expires);
          assert.deepStrictEqual(loaded?.session['a'], 1);
          // Expired by the UTC clock: never returned.
          await backend.query(`UPDATE ${table} SET expires_at = (now() AT TIME ZONE 'UTC') - interval '1 second'`);
          assert.equal(await store.load('utc'), null);
        } finally {
          await store.close();
          await dropTable(backend, table);
        }
      });

    test('a table without an expiry column the store understands is a schema error', async () => {
      const table = 'ssn_no_expiry';
      await dropTable(backend, table);
      await backend.query(`CREATE TABLE ${table} (id VARCHAR(100) PRIMARY KEY, data TEXT)`);
      const store = new CookieStore({ url: backend.url, table });
      try {
        await assert.rejects(store.load('x'), (error: unknown) => isError('ERR_SCHEMA')(error) && /expires_at/.test((error as Error).message));
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    test("the data column holds more than 16 MB: the store's own limit decides, never the column", async () => {
      const table = 'ssn_big';
      await dropTable(backend, table);
      const store = new CookieStore({ url: backend.url, table, createTable: true, maxSize: 24 * 1024 * 1024, autopurge: false });
      try {
        await store.ready();
        // 4-byte characters count double in UTF-16 and four times in UTF-8: both sizes cross 16 MiB.
        const big = { cookie: cookie(), blob: '😀'.repeat(1024 * 1024) + 'x'.repeat(13 * 1024 * 1024) };
        const packet = backend.dialect === 'mysql' ? Number((await backend.query('SELECT @@max_allowed_packet AS p'))[0]?.['p']) : Infinity;
        if (packet < 64 * 1024 * 1024) {
          // A server that takes smaller statements is reported, not left to fail mid-way (CI raises the limit).
          await assert.rejects(
            store.save('big', big),
            (error: unknown) => isError('ERR_SESSION_TOO_LARGE')(error) && /max_allowed_packet/.test((error as Error).message),
          );
          return;
        }
        await store.save('big', big);
        const loaded = await store.load('big');
        assert.equal((loaded?.session['blob'] as string | undefined)?.length, big.blob.length);
        assert.equal(loaded?.session['blob'], big.blob);
        await assert.rejects(store.save('big', { ...big, more: 'y'.repeat(8 * 1024 * 1024) }, loaded?.state), isError('ERR_SESSION_TOO_LARGE'));
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    if (backend.dialect === 'mysql') {
      test('a TEXT data column (64 KiB) refuses larger sessions instead of letting the server cut them', async () => {
        const table = 'ssn_small_text';
        await dropTable(backend, table);
        await backend.query(`CREATE TABLE ${table} (id CHAR(72) PRIMARY KEY, data TEXT, timeout INT NOT NULL) DEFAULT CHARSET=utf8mb4`);
        const store = new CookieStore({ url: backend.url, table });
        try {
          await store.save('small', { cookie: cookie(), v: 'x'.repeat(60_000) });
          await assert.rejects(store.save('small', { cookie: cookie(), v: 'x'.repeat(70_000) }), isError('ERR_SESSION_TOO_LARGE'));
          assert.equal(((await store.load('small'))?.session['v'] as string | undefined)?.length, 60_000);
        } finally {
          await store.close();
          await dropTable(backend, table);
        }
      });
    }
  });
}
