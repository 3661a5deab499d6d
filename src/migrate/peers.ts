/**
 * The session stores sessions can be brought over from, by their package
 * name, and how each is opened from a URL: the database a SQL peer's table
 * is in comes from the URL's scheme.
 */
import type { SessionSource } from '../core/session-source.js';
import { SessionStoreError, toStoreError } from '../errors.js';
import { type PeerStore, removeUserSessions } from './peer-store.js';
import { openRedisPeer } from './redis-peer.js';
import { openSqlPeer, type PeerDatabase, SQL_PEER_SHAPES, type SqlPeerShape, tableParts } from './sql-peer.js';

/** The stores sessions can be brought over from. */
export const PEER_STORES = ['connect-pg-simple', 'express-mysql-session', 'connect-session-knex', 'better-sqlite3-session-store', 'connect-redis'] as const;

/** A store sessions can be brought over from, by its npm package name. */
export type PeerStoreName = (typeof PEER_STORES)[number];

/** Where the sessions of another store are: `migrateFrom`, and the `import` command's `--from`/`--source-*`. */
export interface PeerStoreOptions {
  /** The store's npm package name: `connect-pg-simple`, `express-mysql-session`, `connect-session-knex`, `better-sqlite3-session-store` or `connect-redis`. */
  store: PeerStoreName;
  /** Its database: `postgres://`, `mysql://`, `sqlite:./file.db` or `redis://`, as that store uses it. */
  url: string;
  /** Its table (SQL stores). @default the store's own: `session` for connect-pg-simple, `sessions` for the others */
  table?: string | undefined;
  /** Its key prefix (connect-redis). @default 'sess:' */
  prefix?: string | undefined;
  /** Connections opened to it. @default 2 */
  poolSize?: number | undefined;
}

/** The database a URL names, by its scheme. */
function databaseOf(url: string): PeerDatabase | 'redis' | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  if (scheme === 'sqlite' || scheme === 'file' || scheme === undefined) return 'sqlite';
  if (scheme === 'redis' || scheme === 'rediss') return 'redis';
  return undefined;
}

function invalid(message: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', message);
}

/**
 * Checks where another store's sessions are, before anything connects.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`
 */
export function checkPeerOptions(given: unknown, name = 'migrateFrom'): PeerStoreOptions {
  if (typeof given !== 'object' || given === null) throw invalid(`option "${name}" must be an object: { store, url, table?, prefix? }`);
  const { store, url, table, prefix, poolSize, ...rest } = given as Record<string, unknown>;
  const [stranger] = Object.keys(rest);
  if (stranger !== undefined) throw invalid(`option "${name}.${stranger}" is not known (known: store, url, table, prefix, poolSize)`);
  if (typeof store !== 'string' || !(PEER_STORES as readonly string[]).includes(store)) {
    throw invalid(`option "${name}.store" must be one of ${PEER_STORES.join(', ')}, got ${JSON.stringify(store)}`);
  }
  if (typeof url !== 'string' || url === '') throw invalid(`option "${name}.url" must be the URL of ${store}'s database`);
  const database = databaseOf(url);
  const peer = store as PeerStoreName;
  if (peer === 'connect-redis') {
    if (database !== 'redis') throw invalid(`option "${name}.url" must be a redis:// URL for connect-redis`);
    if (table !== undefined) throw invalid(`option "${name}.table" is for SQL stores; connect-redis takes "prefix"`);
    if (prefix !== undefined && typeof prefix !== 'string') throw invalid(`option "${name}.prefix" must be a string`);
  } else {
    const databases = Object.keys(SQL_PEER_SHAPES[peer]);
    if (database === undefined || database === 'redis' || !databases.includes(database)) {
      throw invalid(`option "${name}.url" must name a database ${store} keeps sessions in (${databases.join(', ')}), got ${url.split(':')[0]}:`);
    }
    if (prefix !== undefined) throw invalid(`option "${name}.prefix" is for connect-redis; ${store} takes "table"`);
    if (table !== undefined && (typeof table !== 'string' || table === '')) throw invalid(`option "${name}.table" must be a table name`);
    if (table !== undefined) tableParts(table);
  }
  if (poolSize !== undefined && (typeof poolSize !== 'number' || !Number.isInteger(poolSize) || poolSize <= 0)) {
    throw invalid(`option "${name}.poolSize" must be a positive integer`);
  }
  return {
    store: peer,
    url,
    ...(table === undefined ? {} : { table: table as string }),
    ...(prefix === undefined ? {} : { prefix: prefix as string }),
    ...(poolSize === undefined ? {} : { poolSize: poolSize as number }),
  };
}

/** Connects to another store's sessions (checked by {@link checkPeerOptions}). */
export async function openPeer(options: PeerStoreOptions, name = 'migrateFrom'): Promise<PeerStore> {
  const { store, url, table, prefix, poolSize = 2 } = checkPeerOptions(options, name);
  if (store === 'connect-redis') return openRedisPeer(url, prefix);
  const database = databaseOf(url) as PeerDatabase;
  const shapes: Partial<Record<PeerDatabase, SqlPeerShape>> = SQL_PEER_SHAPES[store];
  const shape = shapes[database];
  if (shape === undefined) throw invalid(`${store} keeps no sessions in ${database}`);
  return openSqlPeer(store, shape, database, url, table, poolSize);
}

/**
 * Another store as `migrateFrom` reads it: connected on first use (a store
 * constructed is not yet connected anywhere), and closed only if it was.
 */
export function lazyPeer(options: PeerStoreOptions): SessionSource {
  let opened: Promise<PeerStore> | undefined;
  const peer = (): Promise<PeerStore> => {
    opened ??= openPeer(options).catch((error: unknown) => {
      // A failed connection is tried again by the next request, not remembered.
      opened = undefined;
      throw error;
    });
    return opened;
  };
  const description = `${options.store} at ${options.url.replace(/\/\/[^@/]*@/, '//')}`;
  // Its errors say which store failed: a request that cannot reach the old store fails as clearly as one that cannot reach ours.
  const said = (doing: string) => (error: unknown) => {
    throw toStoreError(error, `${doing} ${description}`);
  };
  return {
    description,
    read: async (sid, now) => (await peer()).read(sid, now).catch(said('reading the session from')),
    remove: async (sid) => (await peer()).remove(sid).catch(said('deleting the session from')),
    removeByUser: async (userIdPath, userId) => {
      await removeUserSessions(await peer(), userIdPath, userId).catch(said("deleting the user's sessions from"));
    },
    close: async () => {
      if (opened !== undefined) await (await opened.catch(() => undefined))?.close();
    },
  };
}
