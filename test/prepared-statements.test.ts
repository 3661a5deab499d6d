/**
 * Named (prepared) statements on PostgreSQL (`preparedStatements`, on by
 * default): the store's fixed statements go named, each name the hash of its
 * text, prepared once per connection and only bound after; seen on the wire
 * (a proxy reading the protocol, test/support/pg-wire.ts) and in the
 * server's own pg_prepared_statements. Two stores of different tables on one
 * connection never share a name, two of the same table share them all.
 * Statements in a transaction go unnamed. A statement that fails for its
 * name (the application deallocated it, the table changed under it; behind
 * PgBouncer: test/pgbouncer.test.ts) runs again unnamed, and the store
 * sends names no more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { JsonObject, LockingMode } from '../src/index.js';
import { statementName } from '../src/backends/sql/statement.js';
import { backendsForThisFile, CookieStore, dropTable, type Backend } from './support/backends.js';
import { startPgWireTap, type PgWireTap, type WireEvent } from './support/pg-wire.js';

const [backend] = await backendsForThisFile(['postgres']);

const cookie = (): JsonObject => ({ expires: new Date(Date.now() + 3_600_000).toISOString() });

/** The Parse and Bind messages that name a statement, among `events`. */
function namedOnes(events: readonly WireEvent[]): Extract<WireEvent, { kind: 'parse' | 'bind' }>[] {
  return events.filter(
    (event): event is Extract<WireEvent, { kind: 'parse' | 'bind' }> => (event.kind === 'parse' || event.kind === 'bind') && event.name !== '',
  );
}

/** `rounds` requests on one session, one after the other: load, one key changed, save. */
async function cycles(store: CookieStore, sid: string, rounds: number, prefix = 'k'): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const loaded = await store.load(sid);
    assert.ok(loaded, `${sid} loads`);
    await store.save(sid, { ...loaded.session, [`${prefix}${round}`]: round }, loaded.state);
  }
}

/** The port of a postgres:// URL. */
const portOf = (url: string): number => Number(new URL(url).port || 5432);

if (backend !== undefined) {
  describe('postgres: named statements', () => {
    const taps: PgWireTap[] = [];
    const tap = async (): Promise<PgWireTap> => {
      const started = await startPgWireTap(portOf(backend.url), new URL(backend.url).hostname);
      taps.push(started);
      return started;
    };
    after(async () => {
      for (const each of taps) await each.close();
    });

    /** A store on a table of its own, created afresh. */
    async function storeOn(
      table: string,
      options: { url?: string; connection?: object; locking?: LockingMode; preparedStatements?: boolean; poolSize?: number },
    ) {
      await dropTable(backend as Backend, table);
      const { url, connection, ...rest } = options;
      const store = new CookieStore({ table, createTable: true, autopurge: false, ...(connection === undefined ? { url } : { connection }), ...rest });
      await store.ready();
      return store;
    }

    test("the store's own pool: the fixed statements go named (sss_ and the hash of their text), each prepared once per connection and bound on every call", async () => {
      const table = 'ssn_prepared_own';
      const wire = await tap();
      const store = await storeOn(table, { url: wire.urlThrough(backend.url), poolSize: 2 });
      try {
        await store.save('s', { cookie: cookie(), n: 0 });
        const from = wire.events.length;
        await cycles(store, 's', 20);
        const session = (await store.load('s'))?.session;
        for (let round = 0; round < 20; round++) assert.equal(session?.[`k${round}`], round);

        const parses = wire.events.filter((event) => event.kind === 'parse');
        for (const parse of namedOnes(parses)) {
          assert.ok(parse.kind === 'parse');
          assert.equal(parse.name, statementName(parse.text), 'the name is the hash of the text');
          assert.match(parse.name, /^sss_[A-Za-z0-9_-]{22}$/);
        }
        const perConnection = new Map<string, number>();
        for (const parse of namedOnes(parses))
          perConnection.set(`${parse.connection}/${parse.name}`, (perConnection.get(`${parse.connection}/${parse.name}`) ?? 0) + 1);
        assert.deepStrictEqual(
          [...perConnection.values()].filter((count) => count > 1),
          [],
          'no connection prepares a statement twice',
        );

        const load = parses.find(
          (event) => event.kind === 'parse' && event.name !== '' && /^SELECT .* FROM "ssn_prepared_own" WHERE id = \$1/s.test(event.text),
        );
        assert.ok(load?.kind === 'parse', 'the load is prepared under a name');
        const since = wire.events.slice(from);
        const loadBinds = since.filter((event) => event.kind === 'bind' && event.name === load.name).length;
        const loadParses = since.filter((event) => event.kind === 'parse' && event.text === load.text).length;
        assert.ok(loadBinds >= 21, `the load is bound on every call (${loadBinds})`);
        assert.ok(loadParses <= 2, `and prepared at most once per connection of the pool of 2 (${loadParses})`);
        assert.ok(
          namedOnes(since).some((event) => event.kind === 'bind' && event.name !== load.name),
          'the save of a change goes named too',
        );
        assert.ok(
          namedOnes(parses).some((event) => event.kind === 'parse' && /^INSERT INTO "ssn_prepared_own"/.test(event.text)),
          "a new session's whole write goes named",
        );
        assert.deepStrictEqual(
          wire.events.filter((event) => event.kind === 'error'),
          [],
        );
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    test('optimistic locking: the compare-and-swap goes named, one statement for every save', async () => {
      const table = 'ssn_prepared_versioned';
      const wire = await tap();
      const store = await storeOn(table, { url: wire.urlThrough(backend.url), locking: 'optimistic', poolSize: 1 });
      try {
        await store.save('s', { cookie: cookie(), n: 0 });
        await cycles(store, 's', 5);
        assert.equal((await store.load('s'))?.session['k4'], 4);
        const swaps = wire.events.filter((event) => event.kind === 'parse' && /lock_version = \$\d+/.test(event.text));
        assert.equal(swaps.length, 1, 'prepared once');
        const [swap] = swaps;
        assert.ok(swap?.kind === 'parse' && swap.name === statementName(swap.text));
        assert.equal(wire.events.filter((event) => event.kind === 'bind' && event.name === swap.name).length, 5);
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    test('one client handed over, two stores of different tables and a third of the first table: pg_prepared_statements holds each name once, the hash of its text, every text of one table; the third store adds no name', async () => {
      const [first, second] = ['ssn_prepared_a', 'ssn_prepared_b'];
      const client = new pg.Client({ connectionString: backend.url });
      await client.connect();
      client.on('error', () => undefined);
      const stores: CookieStore[] = [];
      try {
        const a = await storeOn(first, { connection: client });
        const b = await storeOn(second, { connection: client });
        stores.push(a, b);
        await Promise.all([a.save('a', { cookie: cookie() }), b.save('b', { cookie: cookie() })]);
        // Interleaved on the one connection: the same statements of two tables, one after the other.
        await Promise.all([cycles(a, 'a', 10), cycles(b, 'b', 10), cycles(a, 'a', 10, 'again'), cycles(b, 'b', 10, 'again')]);
        const prepared = async (): Promise<{ name: string; statement: string }[]> =>
          (await client.query("SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'sss\\_%' ORDER BY name")).rows as {
            name: string;
            statement: string;
          }[];
        const rows = await prepared();
        const ofTable = (table: string) => rows.filter((row) => row.statement.includes(`"${table}"`));
        assert.ok(ofTable(first).length >= 2 && ofTable(second).length >= 2, JSON.stringify(rows.map((row) => row.statement)));
        for (const row of rows) {
          assert.equal(row.name, statementName(row.statement), `${row.name} is the hash of its text`);
          assert.notEqual(row.statement.includes(`"${first}"`), row.statement.includes(`"${second}"`), `${row.name} is one table's: ${row.statement}`);
        }
        assert.equal(new Set(rows.map((row) => row.statement)).size, rows.length, 'one name per text');
        const namesOf = (table: string) => new Set(ofTable(table).map((row) => row.name));
        assert.equal([...namesOf(first)].filter((name) => namesOf(second).has(name)).length, 0, 'the two tables share no name');

        const again = new CookieStore({ connection: client, table: first, autopurge: false });
        stores.push(again);
        await cycles(again, 'a', 5, 'third');
        assert.deepStrictEqual(await prepared(), rows, 'a store of the same table prepares nothing new: the names come from the text, not from a counter');

        const [sessionA, sessionB] = [(await a.load('a'))?.session, (await b.load('b'))?.session];
        for (let round = 0; round < 10; round++) {
          for (const prefix of ['k', 'again']) {
            assert.equal(sessionA?.[`${prefix}${round}`], round);
            assert.equal(sessionB?.[`${prefix}${round}`], round);
          }
        }
        assert.equal(sessionA?.['third4'], 4);
        assert.equal(sessionB?.['third4'], undefined);
      } finally {
        for (const store of stores) await store.close();
        await client.end();
        await dropTable(backend, first);
        await dropTable(backend, second);
      }
    });

    test('preparedStatements: false sends every statement unnamed', async () => {
      const table = 'ssn_prepared_off';
      const wire = await tap();
      const store = await storeOn(table, { url: wire.urlThrough(backend.url), preparedStatements: false });
      try {
        await store.save('s', { cookie: cookie() });
        await cycles(store, 's', 5);
        assert.ok(wire.events.some((event) => event.kind === 'bind'));
        assert.deepStrictEqual(namedOnes(wire.events), []);
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    test('pessimistic locking: the statements of a transaction go unnamed, the load outside it named', async () => {
      const table = 'ssn_prepared_locked';
      const wire = await tap();
      const store = await storeOn(table, { url: wire.urlThrough(backend.url), locking: 'pessimistic' });
      try {
        await store.save('s', { cookie: cookie() });
        await cycles(store, 's', 5);
        assert.equal((await store.load('s'))?.session['k4'], 4);
        const locks = wire.events.filter((event) => event.kind === 'parse' && /FOR UPDATE/.test(event.text));
        assert.ok(locks.length >= 5, 'the row is locked in each save');
        assert.deepStrictEqual(
          locks.filter((event) => event.kind === 'parse' && event.name !== ''),
          [],
          'no statement inside a transaction is named',
        );
        assert.ok(namedOnes(wire.events).length > 0, 'the loads are');
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });

    /** After `failed` (an error event), nothing named on that connection: the store switched for good. */
    function namedAfter(wire: PgWireTap, connection: number, failed: number): WireEvent[] {
      return namedOnes(wire.events.slice(failed)).filter((event) => event.connection === connection);
    }

    test('a client handed over whose statements the application deallocated (26000): the statement runs again unnamed, no error reaches the caller, and the store names no statement after', async () => {
      const table = 'ssn_prepared_deallocated';
      const wire = await tap();
      const client = new pg.Client({ connectionString: wire.urlThrough(backend.url) });
      await client.connect();
      client.on('error', () => undefined);
      const store = await storeOn(table, { connection: client });
      try {
        await store.save('s', { cookie: cookie(), n: 0 });
        await cycles(store, 's', 2);
        assert.ok(namedOnes(wire.events).length > 0);
        // pg still takes the statements for prepared on this connection; the server no longer has them.
        await client.query('DEALLOCATE ALL');
        await cycles(store, 's', 5, 'after');
        const session = (await store.load('s'))?.session;
        for (let round = 0; round < 5; round++) assert.equal(session?.[`after${round}`], round);
        const errors = wire.events.flatMap((event, index) => (event.kind === 'error' ? [{ event, index }] : []));
        assert.deepStrictEqual(
          errors.map(({ event }) => event.kind === 'error' && event.code),
          ['26000'],
          'one statement failed for its name, once',
        );
        const [failure] = errors as [{ event: WireEvent; index: number }];
        assert.deepStrictEqual(namedAfter(wire, failure.event.connection, failure.index), []);
      } finally {
        await store.close();
        await client.end();
        await dropTable(backend, table);
      }
    });

    test('a pool handed over, its table altered under the prepared statements (0A000 cached plan must not change result type): the load runs again unnamed, and the store names no statement after', async () => {
      const table = 'ssn_prepared_altered';
      const wire = await tap();
      // The application's pool keeps its connections through a failed statement (pg's pool.query, the store's own
      // path, would close the connection and the plan with it).
      const pool = new pg.Pool({ connectionString: wire.urlThrough(backend.url), max: 1 });
      pool.on('error', () => undefined);
      const store = await storeOn(table, { connection: pool });
      try {
        await store.save('s', { cookie: cookie(), n: 0 });
        await cycles(store, 's', 2);
        // What the load returns changes type: the plan prepared for the old one no longer fits.
        await backend.query(`ALTER TABLE ${table} ALTER COLUMN changes TYPE varchar`);
        await cycles(store, 's', 3, 'after');
        assert.equal((await store.load('s'))?.session['after2'], 2);
        const errors = wire.events.flatMap((event, index) => (event.kind === 'error' ? [{ event, index }] : []));
        assert.deepStrictEqual(
          errors.map(({ event }) => event.kind === 'error' && event.code),
          ['0A000'],
        );
        const [failure] = errors as [{ event: WireEvent; index: number }];
        assert.deepStrictEqual(namedAfter(wire, failure.event.connection, failure.index), []);
      } finally {
        await store.close();
        await pool.end();
        await dropTable(backend, table);
      }
    });

    describe('several hosts (target_session_attrs=read-write)', () => {
      const table = 'ssn_prepared_hosts';
      let first: PgWireTap;
      let second: PgWireTap;
      let store: CookieStore;
      before(async () => {
        first = await tap();
        second = await tap();
        const url = new URL(backend.url);
        const hosts = `${url.username}@127.0.0.1:${first.port},127.0.0.1:${second.port}`;
        const multi = `postgres://${hosts}${url.pathname}?target_session_attrs=read-write`;
        store = await storeOn(table, { url: multi, poolSize: 2 });
      });
      after(async () => {
        await store.close();
        await dropTable(backend, table);
      });

      test('the host found after the first is lost prepares the statements anew: nothing fails for a name', async () => {
        await store.save('s', { cookie: cookie(), n: 0 });
        await cycles(store, 's', 3);
        assert.ok(namedOnes(first.events).length > 0, 'named statements on the first host');
        assert.deepStrictEqual(second.events, []);
        // The first host goes away: its connections drop, and it refuses new ones.
        await first.close();
        let failures = 0;
        for (let round = 0; round < 3; round++) {
          try {
            await cycles(store, 's', 1, `after${round}-`);
          } catch {
            // A call that was on a dropped connection may fail with ERR_UNAVAILABLE, as without names.
            failures++;
          }
        }
        assert.ok(failures <= 1, `${failures} calls failed`);
        await cycles(store, 's', 3, 'later');
        assert.equal((await store.load('s'))?.session['later2'], 2);
        const parsedOnSecond = namedOnes(second.events).filter((event) => event.kind === 'parse');
        assert.ok(parsedOnSecond.length > 0, 'the second host prepares the statements');
        assert.deepStrictEqual(
          [...first.events, ...second.events].filter((event) => event.kind === 'error' && ['26000', '42P05'].includes(event.code)),
          [],
        );
        assert.ok(
          namedOnes(second.events).some((event) => event.kind === 'bind'),
          'and runs them named',
        );
      });
    });
  });
}
