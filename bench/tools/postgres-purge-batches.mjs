#!/usr/bin/env node
/**
 * Where a PostgreSQL purge spends its longest batches, with no requests
 * beside it: fills a table with expired sessions (ANALYZE, CHECKPOINT, as
 * the benchmark's purge section does), purges it with the store's defaults
 * and prints the WAL it wrote, the time from one batch to the next (median,
 * p99, longest) and every gap over 100 ms with the batch's number.
 *
 *   node bench/tools/postgres-purge-batches.mjs [rows=1000000]
 *
 * The server: BENCH_POSTGRES_URL or POSTGRES_URL, else the local test database.
 */
import pg from 'pg';
import { SessionStore } from 'smart-session-store';

const rows = Number(process.argv[2] ?? 1_000_000);
const url = process.env.BENCH_POSTGRES_URL ?? process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const table = 'bench_purge_batches';
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query(`DROP TABLE IF EXISTS ${table}`);
const store = new SessionStore({ url, table, createTable: true, autopurge: false });
try {
  await store.ready();
  await client.query(
    `INSERT INTO ${table} (id, data, expires_at) SELECT md5(i::text), ('{"a":"' || repeat('x', 150) || '"}')::json, now() - interval '1 day' FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await client.query(`ANALYZE ${table}`);
  await client.query('CHECKPOINT');
  const [{ lsn }] = (await client.query('SELECT pg_current_wal_lsn() AS lsn')).rows;
  const gaps = [];
  const long = [];
  const started = performance.now();
  let last = started;
  const removed = await store.purge({
    onProgress: (count) => {
      const now = performance.now();
      gaps.push(now - last);
      if (now - last > 100)
        long.push(`batch ${gaps.length} (${count} removed so far, at ${((now - started) / 1000).toFixed(1)} s): ${(now - last).toFixed(0)} ms`);
      last = now;
    },
  });
  const [{ wal }] = (await client.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS wal', [lsn])).rows;
  gaps.sort((a, b) => a - b);
  console.log(
    `${removed} rows removed in ${((performance.now() - started) / 1000).toFixed(1)} s, ${gaps.length} batches, ${Math.round(Number(wal) / 2 ** 20)} MiB of WAL; ` +
      `from one batch to the next: median ${gaps[gaps.length >> 1].toFixed(1)} ms, p99 ${gaps[Math.floor(gaps.length * 0.99)].toFixed(1)} ms, longest ${gaps.at(-1).toFixed(1)} ms`,
  );
  for (const line of long) console.log(`  over 100 ms: ${line}`);
} finally {
  await store.close();
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.end();
}
