/**
 * Every store the benchmark compares, each built the way its README tells a
 * user to, with background pruning switched off (purge is measured on its own,
 * later) and pools of 10 connections where the store takes a pool.
 */
import path from 'node:path';
import session from 'express-session';
import connectPgSimple from 'connect-pg-simple';
import expressMysqlSession from 'express-mysql-session';
import betterSqlite3SessionStore from 'better-sqlite3-session-store';
import { ConnectSessionKnexStore } from 'connect-session-knex';
import knexFactory from 'knex';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { SmartSessionStore } from 'smart-session-store/express';
import { SessionStore } from 'smart-session-store';
import { countRedisClient, counts } from './counters.mjs';
import { drivers } from './drivers.mjs';

export const MODES = ['atomic', 'optimistic', 'pessimistic'];
export const SMART_BACKENDS = ['postgres', 'mysql', 'sqlite'];
/** Redis is compared in the lost-update, HTTP and statements sections only (the other sections are about SQL tables). */
export const SMART_REDIS_MODES = MODES;
export const POOL_SIZE = 10;

/** Tables this benchmark creates; all start with bench_ (the test suite uses ssn_*). */
export const SMART_TABLE = (mode) => `bench_smart_${mode}`;
export const PEER_TABLES = { postgres: ['bench_pgsimple', 'bench_knex'], mysql: ['bench_mysqlsession'] };
/** The purge section's table (a million expired rows, dropped once purged), created by smart-session-store itself. */
export const PURGE_TABLE = 'bench_purge';
export const REDIS_PREFIX = 'bench:sess:';
/**
 * The frameworks section's tables: smart-session-store's own layer (`ours`), a framework's session layer with
 * smart-session-store's Store (`compat`), and the peers'. Created afresh for every framework and size, dropped after.
 */
export const FRAMEWORK_TABLES = { ours: 'bench_fw_ours', compat: 'bench_fw_compat', postgres: 'bench_fw_pgsimple', mysql: 'bench_fw_mysqlsession' };

/** Which statement counter a backend's statements land in. */
export const COUNTER = { postgres: 'pg', mysql: 'mysql', sqlite: 'sqlite', redis: 'redis', memory: null };

export const BACKEND_LABEL = { postgres: 'PostgreSQL', mysql: 'MariaDB', sqlite: 'SQLite', redis: 'Redis', memory: 'memory' };

function smart(backend, mode) {
  return { id: `smart-${backend}-${mode}`, name: 'smart-session-store', backend, mode, smart: true };
}

/** Every store definition, smart ones first. */
export const STORE_DEFS = [
  ...SMART_BACKENDS.flatMap((backend) => MODES.map((mode) => smart(backend, mode))),
  ...SMART_REDIS_MODES.map((mode) => smart('redis', mode)),
  { id: 'connect-pg-simple', name: 'connect-pg-simple', backend: 'postgres', smart: false },
  { id: 'express-mysql-session', name: 'express-mysql-session', backend: 'mysql', smart: false },
  { id: 'better-sqlite3-session-store', name: 'better-sqlite3-session-store', backend: 'sqlite', smart: false },
  { id: 'connect-session-knex', name: 'connect-session-knex (knex + pg)', backend: 'postgres', smart: false },
  { id: 'connect-redis', name: 'connect-redis', backend: 'redis', smart: false },
  { id: 'memory', name: 'express-session MemoryStore', backend: 'memory', smart: false },
];

/** The peer each smart backend is compared with in the throughput section. */
/**
 * connect-pg-simple's table (its table.sql), made here when missing: its own
 * SQL names the key "session_pkey" and the index "IDX_session_expire" whatever
 * the table, so it cannot be made while another connect-pg-simple table
 * (another program's, a test's) sits in the database. Same columns, own names.
 */
export async function createPgSimpleTable(pool, table) {
  await pool.query(`CREATE TABLE IF NOT EXISTS "${table}" (
    "sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL, "expire" timestamp(6) NOT NULL,
    CONSTRAINT "${table}_pkey" PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE)`);
  await pool.query(`CREATE INDEX IF NOT EXISTS "${table}_expire" ON "${table}" ("expire")`);
}

export const PEER_OF = { postgres: 'connect-pg-simple', mysql: 'express-mysql-session', sqlite: 'better-sqlite3-session-store', redis: 'connect-redis' };

export function storeDef(id) {
  const def = STORE_DEFS.find((d) => d.id === id);
  if (def === undefined) throw new Error(`unknown store ${id}`);
  return def;
}

export function storeLabel(def) {
  return def.smart ? `smart-session-store (${def.mode})` : def.name;
}

export function smartUrl(ctx, backend) {
  return backend === 'sqlite' ? `sqlite:${path.join(ctx.sqliteDir, 'smart.db')}` : ctx.config.urls[backend];
}

function mysqlOptions(url) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.replace(/^\//, ''),
  };
}

/**
 * Options every smart-session-store of the benchmark gets: its pool size and,
 * where the build has it, autopurge off (the peers' pruning is off too;
 * purge is measured on its own).
 */
let autopurgeOption;
export function smartOptions(options) {
  if (autopurgeOption === undefined) {
    try {
      new SessionStore({ url: 'sqlite::memory:', autopurge: false });
      autopurgeOption = { autopurge: false };
    } catch {
      autopurgeOption = {};
    }
  }
  // BENCH_SQLITE_BACKGROUND_CHECKPOINTS=0 measures SQLite without its checkpoint worker (on by default), =1 with it.
  const checkpointsSetting = process.env.BENCH_SQLITE_BACKGROUND_CHECKPOINTS;
  const sqliteExtra =
    (checkpointsSetting === '0' || checkpointsSetting === '1') && String(options.url).startsWith('sqlite:')
      ? { backgroundCheckpoints: checkpointsSetting === '1' }
      : {};
  // BENCH_PG_PREPARED_STATEMENTS=0 measures PostgreSQL with every statement unnamed (named by default), =1 named.
  const preparedSetting = process.env.BENCH_PG_PREPARED_STATEMENTS;
  const postgresExtra =
    (preparedSetting === '0' || preparedSetting === '1') && /^postgres(ql)?:/.test(String(options.url)) ? { preparedStatements: preparedSetting === '1' } : {};
  return { ...options, poolSize: POOL_SIZE, ...autopurgeOption, ...sqliteExtra, ...postgresExtra };
}

const callback = (fn) => new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));

/**
 * Builds the express-session store of `def`, ready to use.
 * Resolves to { store, close }.
 */
export async function openStore(ctx, def) {
  const { urls } = ctx.config;
  if (def.smart && def.backend === 'redis') return openSmartRedis(ctx, def);
  if (def.smart) {
    const store = new SmartSessionStore(smartOptions({ url: smartUrl(ctx, def.backend), table: SMART_TABLE(def.mode), locking: def.mode }));
    await store.createTable();
    return { store, close: () => store.close() };
  }
  switch (def.id) {
    case 'connect-pg-simple': {
      const PGStore = connectPgSimple(session);
      const pool = new drivers.bench.pg.Pool({ connectionString: urls.postgres, max: POOL_SIZE });
      pool.on('error', () => undefined);
      await createPgSimpleTable(pool, 'bench_pgsimple');
      const store = new PGStore({ pool, tableName: 'bench_pgsimple', createTableIfMissing: true, pruneSessionInterval: false });
      await callback((cb) => store.get('bench-warm-up', cb)); // creates the table
      return {
        store,
        close: async () => {
          await store.close();
          await pool.end();
        },
      };
    }
    case 'express-mysql-session': {
      const MySQLStore = expressMysqlSession(session);
      const store = new MySQLStore({
        ...mysqlOptions(urls.mysql),
        connectionLimit: POOL_SIZE,
        clearExpired: false,
        createDatabaseTable: true,
        schema: { tableName: 'bench_mysqlsession' },
      });
      await store.onReady();
      return { store, close: () => store.close() };
    }
    case 'better-sqlite3-session-store': {
      const SqliteStore = betterSqlite3SessionStore(session);
      const db = new drivers.bench.Database(path.join(ctx.sqliteDir, 'peer.db'));
      // Same settings as smart-session-store's own connection, so the file system costs the same.
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      // It always starts a clear-expired timer (never cleared): make it practically never fire.
      const store = new SqliteStore({ client: db, expired: { clear: true, intervalMs: 2 ** 31 - 1 } });
      return { store, close: async () => db.close() };
    }
    case 'connect-session-knex': {
      const knex = knexFactory({ client: 'pg', connection: urls.postgres, pool: { min: 0, max: POOL_SIZE } });
      const store = new ConnectSessionKnexStore({ knex, tableName: 'bench_knex', cleanupInterval: 0, createTable: true });
      await store.ready;
      return { store, close: () => knex.destroy() };
    }
    case 'connect-redis': {
      const client = createClient({ url: urls.redis });
      client.on('error', () => undefined);
      await client.connect();
      countRedisClient(client);
      const store = new RedisStore({ client, prefix: REDIS_PREFIX });
      return { store, close: () => (typeof client.close === 'function' ? client.close() : client.quit()) };
    }
    case 'memory':
      return { store: new session.MemoryStore(), close: async () => undefined };
    default:
      throw new Error(`no factory for ${def.id}`);
  }
}

/**
 * smart-session-store on Redis, given the same node-redis client as
 * connect-redis (the bench's copy, default options), whose commands are
 * counted as they are sent. Its keys (`bench_smart_<mode>:*`) are cleared
 * before and after.
 */
async function openSmartRedis(ctx, def) {
  const client = createClient({ url: ctx.config.urls.redis });
  client.on('error', () => undefined);
  await client.connect();
  const send = client.sendCommand.bind(client);
  client.sendCommand = (...args) => {
    counts.redis++;
    return send(...args);
  };
  const store = new SmartSessionStore(smartOptions({ connection: client, table: SMART_TABLE(def.mode), locking: def.mode }));
  // The promise-based store underneath: express-session's clear() takes a callback.
  await store.store.clear();
  return {
    store,
    close: async () => {
      await store.store.clear();
      await store.close();
      await client.close();
    },
  };
}

/** The framework-neutral store (load/save), for the contention section. */
export async function openCoreStore(ctx, backend, mode) {
  const store = new SessionStore(smartOptions({ url: smartUrl(ctx, backend), table: SMART_TABLE(mode), locking: mode }));
  await store.createTable();
  return store;
}

/** Opens (and closes) one store per reachable backend, so the library has imported its dialect modules and drivers. */
export async function preloadDialects(ctx) {
  for (const backend of SMART_BACKENDS.filter((b) => ctx.reachable[b])) {
    const store = await openCoreStore(ctx, backend, 'atomic');
    await store.close();
  }
}
