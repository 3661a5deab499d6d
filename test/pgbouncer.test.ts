/**
 * PgBouncer in transaction mode (scripts/pgbouncer.sh): a server connection
 * goes back to the pool after every transaction, so nothing may be left on a
 * session. Two purges at once remove every expired row once and leave no
 * advisory lock on the server (read in pg_locks past PgBouncer); nothing the
 * store sends would follow a client from one server connection to the next
 * (SET, session advisory locks, PREPARE, LISTEN, temporary tables). Named
 * statements, which PgBouncer 1.18 cannot keep per client, fail with 26000
 * or 42P05: each store runs the statement again unnamed and sends names no
 * more, with 20 overlapping changes kept (seen on the wire, through a proxy
 * reading the protocol). The shared suite runs through it too
 * (`DATABASE=pgbouncer`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { backendsForThisFile, CookieStore, dropTable, LOCKING_MODES } from './support/backends.js';
import { PGBOUNCER_URL } from './support/connectors/scale-out.js';
import { startPgWireTap, type PgWireTap, type WireEvent } from './support/pg-wire.js';

const [bouncer] = await backendsForThisFile(['pgbouncer']);

/** The database clients ask PgBouncer for. */
const BOUNCED_DATABASE = new URL(PGBOUNCER_URL).pathname.slice(1);

/** A command of PgBouncer's admin console (which speaks the simple query protocol only). */
async function admin(command: string): Promise<Record<string, unknown>[]> {
  const url = new URL(PGBOUNCER_URL);
  url.pathname = '/pgbouncer';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query(command)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/**
 * PgBouncer closes every server connection of the database (`RECONNECT`, as
 * after a server restart or `server_lifetime`) and new ones are opened as
 * needed: statements prepared on the old ones are gone, while the clients,
 * connected to PgBouncer, notice nothing. Resolves once the old ones are closed.
 */
async function replaceServerConnections(): Promise<void> {
  const ours = async (): Promise<Set<unknown>> =>
    new Set((await admin('SHOW SERVERS')).filter((row) => row['database'] === BOUNCED_DATABASE).map((row) => row['remote_pid']));
  const old = await ours();
  await admin(`RECONNECT ${BOUNCED_DATABASE}`);
  for (const deadline = Date.now() + 10_000; ; ) {
    const now = await ours();
    if (![...old].some((pid) => now.has(pid))) return;
    if (Date.now() > deadline) throw new Error(`PgBouncer kept server connections ${[...old].join(', ')} after RECONNECT`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The PostgreSQL server and database behind PgBouncer, as its admin console tells them. */
async function upstreamUrl(): Promise<string> {
  const row = (await admin('SHOW DATABASES')).find((each) => each['name'] === BOUNCED_DATABASE);
  if (row === undefined) throw new Error(`PgBouncer serves no database ${BOUNCED_DATABASE}`);
  const upstream = new URL(PGBOUNCER_URL);
  upstream.hostname = String(row['host']);
  upstream.port = String(row['port']);
  upstream.pathname = `/${String(row['database'])}`;
  return upstream.toString();
}

/** The Parse and Bind messages that name a statement, among `events`. */
function namedOnes(events: readonly WireEvent[]): WireEvent[] {
  return events.filter((event) => (event.kind === 'parse' || event.kind === 'bind') && event.name !== '');
}

/** The SQLSTATEs the server answered with, among `events`. */
function errorCodes(events: readonly WireEvent[]): string[] {
  return events.flatMap((event) => (event.kind === 'error' ? [event.code] : []));
}

const cookie = (ms: number) => ({ cookie: { expires: new Date(Date.now() + ms).toISOString() } });

if (bouncer !== undefined) {
  describe('pgbouncer: two purges at once', () => {
    const table = 'ssn_pgbouncer_purge';
    const EXPIRED = 1200;
    const LIVE = 20;
    let server: pg.Pool;
    let stores: CookieStore[] = [];
    before(async () => {
      await dropTable(bouncer, table);
      server = new pg.Pool({ connectionString: await upstreamUrl(), max: 2 });
      server.on('error', () => undefined);
      // Two stores with pools of their own: to the database they are two processes.
      stores = [0, 1].map(() => new CookieStore({ url: bouncer.url, table, createTable: true, autopurge: false }));
      for (const store of stores) await store.ready();
    });
    after(async () => {
      for (const store of stores) await store.close();
      await server.end();
      await dropTable(bouncer, table);
    });

    /** Advisory locks held on the server in the database behind PgBouncer. */
    const advisoryLocks = async (): Promise<number> =>
      Number(
        (
          await server.query(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
          )
        ).rows[0]?.['n'],
      );

    test(`${EXPIRED} expired rows, two purges at once: removed once, counts sum to ${EXPIRED}, no advisory lock left on the server; 5 rounds`, async (t) => {
      const [first, second] = stores as [CookieStore, CookieStore];
      for (let round = 0; round < 5; round++) {
        await first.clear();
        await bouncer.query(
          `INSERT INTO ${table} (id, data, expires_at) SELECT 'expired-' || i, '{"dead":true}'::jsonb, now() - interval '1 minute' - i * interval '1 second' FROM generate_series(1, $1) AS i`,
          [EXPIRED],
        );
        for (let i = 0; i < LIVE; i++) await first.save(`live-${round}-${i}`, cookie(3_600_000));
        const batches = [0, 0];
        const removed = await Promise.all(
          [first, second].map((store, index) => store.purge({ batchSize: 50, onProgress: () => (batches[index] = (batches[index] ?? 0) + 1) })),
        );
        t.diagnostic(`round ${round}: ${removed.map((count, index) => `store ${index + 1} removed ${count} in ${batches[index]} batches`).join(', ')}`);
        assert.equal((removed[0] as number) + (removed[1] as number), EXPIRED, `round ${round}: ${removed.join(' + ')}`);
        assert.deepStrictEqual(await first.stats(), { live: LIVE, expired: 0 });
        assert.equal(await advisoryLocks(), 0, `round ${round}: an advisory lock is still held on the server`);
      }
    });

    test('a purge while another process holds the purge lock removes nothing, and the next one everything', async () => {
      const [store] = stores as [CookieStore];
      await store.clear();
      for (let i = 0; i < 5; i++) await store.save(`dead-${i}`, cookie(-60_000));
      // Another process, straight on the server, holding the lock a purge takes.
      const holder = await server.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`smart-session-store:purge:${table}`]);
        assert.equal(await store.purge(), 0);
        assert.equal((await store.stats()).expired, 5);
        await holder.query('COMMIT');
      } finally {
        holder.release();
      }
      assert.equal(await store.purge(), 5);
      assert.equal(await advisoryLocks(), 0);
    });
  });

  describe('pgbouncer: nothing the store sends is tied to a server connection', () => {
    const table = 'ssn_pgbouncer_statements';
    before(() => dropTable(bouncer, table));
    after(() => dropTable(bouncer, table));

    test('a day of a store (create, save, load, touch, lock, purge, destroy) sends no SET, session lock, PREPARE, LISTEN or temporary table', async () => {
      const counted = await bouncer.counted();
      try {
        for (const locking of ['atomic', 'optimistic', 'pessimistic'] as const) {
          const store = new CookieStore({ connection: counted.connection, table: `${table}_${locking}`, locking, createTable: true, autopurge: false });
          try {
            await store.save('a', { ...cookie(3_600_000), n: 0 });
            const loaded = await store.open('a');
            assert.ok(loaded);
            loaded.data['n'] = 1;
            await loaded.commit();
            await store.touch('a', cookie(7_200_000));
            await store.save('old', cookie(-60_000));
            assert.equal(await store.purge(), 1);
            await store.destroy('a');
          } finally {
            await store.close();
            await dropTable(bouncer, `${table}_${locking}`);
          }
        }
        const tied = counted.statements.filter((text) =>
          /^\s*(SET\s(?!LOCAL)|PREPARE|LISTEN|DECLARE|CREATE\s+TEMP)|pg_(try_)?advisory_lock|pg_advisory_unlock/i.test(text),
        );
        assert.deepStrictEqual(tied, []);
        assert.ok(
          counted.statements.some((text) => /pg_try_advisory_xact_lock/.test(text)),
          'the purge takes its lock inside a transaction',
        );
      } finally {
        await counted.close();
      }
    });
  });

  describe('pgbouncer: named statements, which PgBouncer 1.18 cannot keep per client', () => {
    let wire: PgWireTap;
    /** PgBouncer's address, through the tap. */
    let url: string;
    before(async () => {
      wire = await startPgWireTap(Number(new URL(PGBOUNCER_URL).port), new URL(PGBOUNCER_URL).hostname);
      url = wire.urlThrough(PGBOUNCER_URL);
    });
    after(() => wire.close());

    test('prepared by another client on the same server connection (42P05), or on a server connection since closed (26000): the statement runs again unnamed, and the store names no statement after', async () => {
      const table = 'ssn_pgbouncer_named';
      await dropTable(bouncer, table);
      // Two processes of one connection each.
      const first = new CookieStore({ url, table, createTable: true, autopurge: false, poolSize: 1 });
      const second = new CookieStore({ url, table, autopurge: false, poolSize: 1 });
      try {
        await first.ready();
        await second.ready();
        await first.save('s', { ...cookie(3_600_000), n: 0 });
        await replaceServerConnections();
        const from = wire.events.length;
        // The first prepares the load on the one server connection PgBouncer opens for it ...
        assert.equal((await first.load('s'))?.session['n'], 0);
        assert.deepStrictEqual(errorCodes(wire.events.slice(from)), []);
        assert.ok(namedOnes(wire.events.slice(from)).some((event) => event.kind === 'parse'));
        // ... where the second's Parse of the same name (the same text) finds it: 42P05.
        assert.equal((await second.load('s'))?.session['n'], 0);
        assert.deepStrictEqual(errorCodes(wire.events.slice(from)), ['42P05']);
        // PgBouncer replaces its server connections: the first's Bind finds the statement gone, 26000.
        await replaceServerConnections();
        assert.equal((await first.load('s'))?.session['n'], 0);
        assert.deepStrictEqual(errorCodes(wire.events.slice(from)), ['42P05', '26000']);
        const switched = wire.events.length;
        for (const [index, store] of [first, second].entries()) {
          for (let round = 0; round < 5; round++) {
            const loaded = await store.load('s');
            assert.ok(loaded);
            await store.save('s', { ...loaded.session, [`store${index}-${round}`]: round }, loaded.state);
          }
        }
        await replaceServerConnections();
        assert.equal((await second.load('s'))?.session['store0-4'], 4);
        assert.deepStrictEqual(namedOnes(wire.events.slice(switched)), [], 'both stores send every statement unnamed');
        assert.deepStrictEqual(errorCodes(wire.events.slice(switched)), []);
      } finally {
        await first.close();
        await second.close();
        await dropTable(bouncer, table);
      }
    });

    for (const locking of LOCKING_MODES) {
      test(`${locking}: 20 processes load one session, PgBouncer replaces its server connections, and each saves a change: every statement that failed for its name ran again unnamed, all 20 changes kept, no call failed, and no statement named after`, async (t) => {
        const table = `ssn_pgbouncer_named_${locking}`;
        const PROCESSES = 20;
        await dropTable(bouncer, table);
        const creator = new CookieStore({ url: bouncer.url, table, locking, createTable: true, autopurge: false });
        await creator.save('shared', { ...cookie(3_600_000), n: 0 });
        // 20 stores of one connection each, as 20 processes behind PgBouncer would be, each with one statement at a
        // time. One after the other, each prepares its load (and, atomic, its save of a change) on whichever server
        // connection PgBouncer hands it: where another prepared it already, 42P05, and that store goes unnamed.
        const stores = Array.from({ length: PROCESSES }, () => new CookieStore({ url, table, locking, autopurge: false, poolSize: 1 }));
        try {
          for (const store of stores) await store.ready();
          const from = wire.events.length;
          for (const [index, store] of stores.entries()) {
            const loaded = await store.load('shared');
            assert.ok(loaded);
            await store.save('shared', { ...loaded.session, [`warm${index}`]: index }, loaded.state);
          }
          assert.ok(namedOnes(wire.events.slice(from)).length > 0, 'the stores sent named statements');
          t.diagnostic(`before the overlapping requests: ${errorCodes(wire.events.slice(from)).join(', ') || 'no statement failed'}`);
          // Every statement prepared is gone from the server; the stores that still send names do not know it.
          await replaceServerConnections();
          // The 20 load the session at once, then save a change each at once: overlapping requests.
          const loads = await Promise.all(stores.map((store) => store.load('shared')));
          await Promise.all(
            loads.map((loaded, index) => {
              assert.ok(loaded);
              return (stores[index] as CookieStore).save('shared', { ...loaded.session, [`change${index}`]: index }, loaded.state);
            }),
          );
          const session = (await creator.load('shared'))?.session;
          for (let index = 0; index < PROCESSES; index++) {
            assert.equal(session?.[`change${index}`], index, `process ${index}'s change kept`);
            assert.equal(session?.[`warm${index}`], index);
          }
          // Each store fails for a name once, and only once: it has one statement in flight at a time, goes unnamed
          // after, and one that still sends names by now has prepared both its statements, so it sends Binds alone,
          // which fail on the new server connections (no one prepares anything named there).
          const codes = errorCodes(wire.events.slice(from));
          t.diagnostic(`in all: ${codes.join(', ')}`);
          assert.deepStrictEqual(
            codes.filter((code) => code !== '26000' && code !== '42P05'),
            [],
          );
          assert.equal(codes.length, PROCESSES, `each process failed for a name once (${codes.join(', ')})`);
          // For good: another round, on server connections replaced again, sends no name at all.
          const switched = wire.events.length;
          await replaceServerConnections();
          for (const [index, store] of stores.entries()) {
            const loaded = await store.load('shared');
            assert.ok(loaded);
            await store.save('shared', { ...loaded.session, [`after${index}`]: index }, loaded.state);
          }
          assert.deepStrictEqual(namedOnes(wire.events.slice(switched)), []);
          assert.deepStrictEqual(errorCodes(wire.events.slice(switched)), []);
          assert.equal((await creator.load('shared'))?.session[`after${PROCESSES - 1}`], PROCESSES - 1);
        } finally {
          for (const store of stores) await store.close();
          await creator.close();
          await dropTable(bouncer, table);
        }
      });
    }
  });
}
