/**
 * PgBouncer in transaction mode (scripts/pgbouncer.sh): a server connection
 * goes back to the pool after every transaction, so nothing may be left on a
 * session. Two purges at once remove every expired row once and leave no
 * advisory lock on the server (read in pg_locks past PgBouncer); nothing the
 * store sends would follow a client from one server connection to the next
 * (SET, session advisory locks, PREPARE, LISTEN, temporary tables). The
 * shared suite runs through it too (`DATABASE=pgbouncer`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { backendsForThisFile, CookieStore, dropTable } from './support/backends.js';
import { PGBOUNCER_URL } from './support/connectors/scale-out.js';

const [bouncer] = await backendsForThisFile(['pgbouncer']);

/** The PostgreSQL server and database behind PgBouncer, as its admin console tells them. */
async function upstreamUrl(): Promise<string> {
  const admin = new URL(PGBOUNCER_URL);
  const database = admin.pathname.slice(1);
  admin.pathname = '/pgbouncer';
  // The admin console speaks the simple query protocol only.
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rows } = await client.query('SHOW DATABASES');
    const row = (rows as Record<string, unknown>[]).find((each) => each['name'] === database);
    if (row === undefined) throw new Error(`PgBouncer serves no database ${database}`);
    const upstream = new URL(PGBOUNCER_URL);
    upstream.hostname = String(row['host']);
    upstream.port = String(row['port']);
    upstream.pathname = `/${String(row['database'])}`;
    return upstream.toString();
  } finally {
    await client.end();
  }
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
}
