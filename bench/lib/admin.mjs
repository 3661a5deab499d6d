/**
 * Reaching the servers and cleaning up: only tables named bench_* and Redis
 * keys under bench:sess: are ever dropped (the test suite's tables are ssn_*).
 */
import { createClient } from 'redis';
import { drivers } from './drivers.mjs';
import { FRAMEWORK_TABLES, MODES, PEER_TABLES, PURGE_TABLE, REDIS_PREFIX, SMART_TABLE } from './stores.mjs';

const BENCH_TABLES = {
  postgres: [...MODES.map(SMART_TABLE), ...PEER_TABLES.postgres, PURGE_TABLE, FRAMEWORK_TABLES.ours, FRAMEWORK_TABLES.compat, FRAMEWORK_TABLES.postgres],
  mysql: [...MODES.map(SMART_TABLE), ...PEER_TABLES.mysql, PURGE_TABLE, FRAMEWORK_TABLES.ours, FRAMEWORK_TABLES.compat, FRAMEWORK_TABLES.mysql],
};

for (const tables of Object.values(BENCH_TABLES)) {
  for (const table of tables) if (!/^bench_[a-z0-9_]+$/.test(table)) throw new Error(`refusing a table name outside bench_*: ${table}`);
}

export async function withPostgres(config, fn) {
  const client = new drivers.bench.pg.Client({ connectionString: config.urls.postgres, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function withMysql(config, fn) {
  const connection = await drivers.bench.mysql2Promise.createConnection({ uri: config.urls.mysql, connectTimeout: 3000 });
  try {
    return await fn(connection);
  } finally {
    await connection.end();
  }
}

async function withRedis(config, fn) {
  const client = createClient({ url: config.urls.redis, socket: { connectTimeout: 3000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await (typeof client.close === 'function' ? client.close() : client.quit());
  }
}

/** Which servers answer; Redis answers with its version. */
export async function probeServers(config) {
  const reachable = { postgres: false, mysql: false, redis: false, sqlite: true, memory: true };
  const problems = {};
  await withPostgres(config, (c) => c.query('SELECT 1')).then(
    () => (reachable.postgres = true),
    (e) => (problems.postgres = String(e.message ?? e)),
  );
  await withMysql(config, (c) => c.query('SELECT 1')).then(
    () => (reachable.mysql = true),
    (e) => (problems.mysql = String(e.message ?? e)),
  );
  await withRedis(config, async (c) => {
    const info = await c.info('server');
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  }).then(
    (version) => (reachable.redis = version),
    (e) => (problems.redis = String(e.message ?? e)),
  );
  return { reachable, problems };
}

/** Drops one bench_* table on PostgreSQL or MySQL (a section's big table, as soon as it is done with it). */
export async function dropBenchTable(config, backend, table) {
  if (!BENCH_TABLES[backend]?.includes(table)) throw new Error(`refusing to drop ${backend} table ${table}: not one of the benchmark's`);
  if (backend === 'postgres') await withPostgres(config, (c) => c.query(`DROP TABLE IF EXISTS "${table}"`));
  else await withMysql(config, (c) => c.query(`DROP TABLE IF EXISTS \`${table}\``));
}

/** Drops every bench_* table this benchmark creates and deletes its Redis keys. */
export async function dropBenchObjects(config, reachable) {
  if (reachable.postgres) {
    await withPostgres(config, async (c) => {
      for (const table of BENCH_TABLES.postgres) await c.query(`DROP TABLE IF EXISTS "${table}"`);
    });
  }
  if (reachable.mysql) {
    await withMysql(config, async (c) => {
      for (const table of BENCH_TABLES.mysql) await c.query(`DROP TABLE IF EXISTS \`${table}\``);
    });
  }
  if (reachable.redis) {
    await withRedis(config, async (c) => {
      const keys = [];
      for await (const batch of c.scanIterator({ MATCH: `${REDIS_PREFIX}*`, COUNT: 500 })) keys.push(...(Array.isArray(batch) ? batch : [batch]));
      for (let i = 0; i < keys.length; i += 500) await c.del(keys.slice(i, i + 500));
    });
  }
}
