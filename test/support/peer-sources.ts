/**
 * The five session stores a team may switch from, each run by its own
 * package under express-session, on the test databases: connect-pg-simple
 * (PostgreSQL), express-mysql-session (MariaDB), connect-session-knex
 * (PostgreSQL, MariaDB, SQLite through knex), better-sqlite3-session-store
 * (SQLite) and connect-redis (Redis). Each can also spoil its own storage
 * (rows an import must count and skip) and age a session past its expiry,
 * written past the peer as another program would.
 */
import Database from 'better-sqlite3';
import betterSqlite3SessionStore from 'better-sqlite3-session-store';
import connectPgSimple from 'connect-pg-simple';
import { RedisStore } from 'connect-redis';
import { ConnectSessionKnexStore } from 'connect-session-knex';
import session from 'express-session';
import expressMysqlSession from 'express-mysql-session';
import knex, { type Knex } from 'knex';
import mysql from 'mysql2/promise';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import type { PeerStoreName } from '../../src/index.js';

export const POSTGRES_URL = process.env['POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379/15';

/** A peer store opened as its users open it: an express-session Store. */
export interface OpenedPeer {
  readonly store: session.Store;
  close(): Promise<void>;
}

/** One peer store on one database, as the tests fill and spoil it. */
export interface PeerSource {
  /** `connect-session-knex on mysql`. */
  readonly label: string;
  readonly from: PeerStoreName;
  readonly url: string;
  readonly table?: string;
  readonly prefix?: string;
  /** Empties its storage (creating it where the peer does so on first use). */
  reset(): Promise<void>;
  /** The peer package's own Store. */
  open(): Promise<OpenedPeer>;
  /** Moves the session `sid` an hour into the past, as the peer stores expiries; `false` where its storage drops it instead (Redis: the key is deleted). */
  age(sid: string): Promise<boolean>;
  /** Writes sessions no import can take (truncated JSON, no expiry, not an object), as many as it returns. */
  spoil(): Promise<number>;
  close(): Promise<void>;
}

const HOUR = 3_600_000;

function pgPool(): pg.Pool {
  return new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
}

function mysqlPool(): mysql.Pool {
  return mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
}

let sqliteDirectory: string | undefined;
function sqliteFile(name: string): string {
  sqliteDirectory ??= mkdtempSync(join(tmpdir(), 'smart-session-store-peers-'));
  return join(sqliteDirectory, name);
}

/** connect-pg-simple: `session(sid varchar, sess json, expire timestamp(6))`. */
function connectPgSimpleSource(): PeerSource {
  const table = 'peer27_pg_simple';
  const pool = pgPool();
  const PgStore = connectPgSimple(session);
  return {
    label: 'connect-pg-simple on postgres',
    from: 'connect-pg-simple',
    url: POSTGRES_URL,
    table,
    async reset() {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    },
    async open() {
      const store = new PgStore({ pool, tableName: table, createTableIfMissing: true, pruneSessionInterval: false });
      return { store, close: async () => undefined };
    },
    async age(sid) {
      await pool.query(`UPDATE ${table} SET expire = now() - interval '1 hour' WHERE sid = $1`, [sid]);
      return true;
    },
    async spoil() {
      // The column is json: truncated JSON cannot be stored there, JSON that is no session can.
      const expire = new Date(Date.now() + HOUR).toISOString();
      await pool.query(`INSERT INTO ${table} (sid, sess, expire) VALUES ('bad-array', '[1,2]', $1), ('bad-string', '"x"', $1)`, [expire]);
      return 2;
    },
    async close() {
      // connect-pg-simple names its key "session_pkey" whatever the table: left behind, it stops any other
      // connect-pg-simple table being created in this database (the benchmark's, say).
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

/** express-mysql-session: `sessions(session_id varchar(128), expires int unsigned, data mediumtext)`. */
function expressMysqlSessionSource(): PeerSource {
  const table = 'peer27_mysql_session';
  const pool = mysqlPool();
  const MySQLStore = expressMysqlSession(session);
  const { hostname, port, username, password, pathname } = new URL(MYSQL_URL);
  return {
    label: 'express-mysql-session on mysql',
    from: 'express-mysql-session',
    url: MYSQL_URL,
    table,
    async reset() {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    },
    async open() {
      const store = new MySQLStore({
        host: hostname,
        port: Number(port || 3306),
        user: decodeURIComponent(username),
        password: decodeURIComponent(password),
        database: pathname.slice(1),
        createDatabaseTable: true,
        clearExpired: false,
        schema: { tableName: table },
      });
      await store.onReady();
      return { store, close: () => store.close() };
    },
    async age(sid) {
      await pool.query(`UPDATE ${table} SET expires = UNIX_TIMESTAMP() - 3600 WHERE session_id = ?`, [sid]);
      return true;
    },
    async spoil() {
      const expires = Math.round((Date.now() + HOUR) / 1000);
      await pool.query(`INSERT INTO ${table} (session_id, expires, data) VALUES ('bad-truncated', ?, '{"cookie":{"originalMaxAge":'), ('bad-null', ?, NULL)`, [
        expires,
        expires,
      ]);
      return 2;
    },
    close: () => pool.end(),
  };
}

/** connect-session-knex: `sessions(sid, sess, expired)`, through knex on the database given. */
function connectSessionKnexSource(database: 'postgres' | 'mysql' | 'sqlite'): PeerSource {
  const table = 'peer27_knex';
  const file = database === 'sqlite' ? sqliteFile('knex.db') : undefined;
  const config: Knex.Config =
    database === 'postgres'
      ? { client: 'pg', connection: POSTGRES_URL, pool: { min: 0, max: 2 } }
      : database === 'mysql'
        ? { client: 'mysql2', connection: MYSQL_URL, pool: { min: 0, max: 2 } }
        : { client: 'better-sqlite3', connection: { filename: file as string }, useNullAsDefault: true };
  const db = knex(config);
  const inAnHour = new Date(Date.now() + HOUR);
  // As connect-session-knex writes its instants: ISO text, and on MySQL a UTC DATETIME text.
  const instant = (date: Date) => (database === 'mysql' ? date.toISOString().slice(0, 19).replace('T', ' ') : date.toISOString());
  return {
    label: `connect-session-knex on ${database}`,
    from: 'connect-session-knex',
    url: database === 'postgres' ? POSTGRES_URL : database === 'mysql' ? MYSQL_URL : `sqlite:${file}`,
    table,
    async reset() {
      await db.schema.dropTableIfExists(table);
    },
    async open() {
      const store = new ConnectSessionKnexStore({ knex: db, tableName: table, cleanupInterval: 0 });
      await store.ready;
      return { store, close: async () => undefined };
    },
    async age(sid) {
      await db(table)
        .where('sid', sid)
        .update({ expired: instant(new Date(Date.now() - HOUR)) });
      return true;
    },
    async spoil() {
      // sess is json on PostgreSQL (and MariaDB checks JSON_VALID): there, JSON that is no session; SQLite takes anything.
      const rows =
        database === 'sqlite'
          ? [
              { sid: 'bad-truncated', sess: '{"cookie":', expired: instant(inAnHour) },
              { sid: 'bad-expiry', sess: '{"cookie":{}}', expired: 'never' },
            ]
          : [
              { sid: 'bad-array', sess: '[1,2]', expired: instant(inAnHour) },
              { sid: 'bad-number', sess: '42', expired: instant(inAnHour) },
            ];
      await db(table).insert(rows);
      return rows.length;
    },
    close: () => db.destroy(),
  };
}

/** better-sqlite3-session-store: `sessions(sid TEXT, sess JSON, expire TEXT)` in a file of its own (the table name is fixed). */
function betterSqlite3Source(): PeerSource {
  const file = sqliteFile('better-sqlite3-session-store.db');
  const db = new Database(file);
  // Its cleanup interval is started by the constructor, never stopped and never unref'd: left out here.
  const SqliteStore = betterSqlite3SessionStore(session);
  SqliteStore.prototype.startInterval = () => undefined;
  return {
    label: 'better-sqlite3-session-store on sqlite',
    from: 'better-sqlite3-session-store',
    url: `sqlite:${file}`,
    async reset() {
      db.exec('DROP TABLE IF EXISTS sessions');
    },
    async open() {
      return { store: new SqliteStore({ client: db }), close: async () => undefined };
    },
    async age(sid) {
      db.prepare('UPDATE sessions SET expire = ? WHERE sid = ?').run(new Date(Date.now() - HOUR).toISOString(), sid);
      return true;
    },
    async spoil() {
      const insert = db.prepare('INSERT INTO sessions (sid, sess, expire) VALUES (?, ?, ?)');
      insert.run('bad-truncated', '{"cookie":{"originalMaxAge"', new Date(Date.now() + HOUR).toISOString());
      insert.run('bad-expiry', '{"cookie":{}}', 'tomorrow');
      return 2;
    },
    close: async () => {
      db.close();
    },
  };
}

/** connect-redis: keys `<prefix><sid>` holding the session's JSON, the TTL its expiry. */
function connectRedisSource(): PeerSource {
  const prefix = 'peer27:';
  const client = createClient({ url: REDIS_URL });
  let connected: Promise<unknown> | undefined;
  const ready = async () => {
    connected ??= client.connect();
    await connected;
    return client;
  };
  return {
    label: 'connect-redis on redis',
    from: 'connect-redis',
    url: REDIS_URL,
    prefix,
    async reset() {
      const redis = await ready();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(keys);
    },
    async open() {
      return { store: new RedisStore({ client: await ready(), prefix }), close: async () => undefined };
    },
    async age(sid) {
      // Redis drops an expired key itself: what an expired session leaves is no key.
      await (await ready()).del(`${prefix}${sid}`);
      return false;
    },
    async spoil() {
      const redis = await ready();
      await redis.set(`${prefix}bad-truncated`, '{"cookie":{"originalMax', { expiration: { type: 'PX', value: HOUR } });
      // No TTL: a session with no expiry.
      await redis.set(`${prefix}bad-no-ttl`, '{"cookie":{}}');
      return 2;
    },
    close: async () => {
      if (connected !== undefined) await client.close();
    },
  };
}

/** Every peer source, on the databases the tests use. */
export function peerSources(): PeerSource[] {
  return [
    connectPgSimpleSource(),
    expressMysqlSessionSource(),
    connectSessionKnexSource('postgres'),
    connectSessionKnexSource('mysql'),
    connectSessionKnexSource('sqlite'),
    betterSqlite3Source(),
    connectRedisSource(),
  ];
}
