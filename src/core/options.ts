import { SessionStoreError } from '../errors.js';
import type { DialectName, TableName } from '../dialects/dialect.js';

/** How a changed session is written. See the README's "Locking modes". */
export type LockingMode = 'atomic' | 'optimistic' | 'pessimistic';

/** Automatic removal of expired rows. */
export interface AutopurgeOptions {
  /**
   * Share of store calls that start a purge in the background (0 to 1).
   * @default 0.1
   */
  probability?: number;
  /**
   * Purge every this many seconds instead of by chance (the timer does not
   * keep the process alive). `0`: by chance only.
   * @default 0
   */
  interval?: number;
  /**
   * Rows deleted per statement, so a purge never holds locks for long.
   * @default 1000
   */
  batchSize?: number;
  /**
   * A process starts a purge at most this often, in seconds, however many
   * calls draw it.
   * @default 60
   */
  minInterval?: number;
}

/**
 * A connection the application hands over instead of letting the store open
 * its own: a `pg` Pool or Client, a `mysql2` pool or connection (promise or
 * callback flavour), or a `better-sqlite3` Database. The store never closes it.
 */
export type SessionConnection = object;

/** Options of the store, shared by every adapter. */
export interface SessionStoreOptions {
  /**
   * Where the sessions live: `postgres://user@host:5432/db`,
   * `mysql://user:pass@host:3306/db` (also `mariadb://`), `sqlite:./sessions.db`
   * or `sqlite::memory:`. Alternatively give `dialect` with `database` (and
   * `host`, `port`, `user`, `password`), or a `connection`.
   */
  url?: string;
  /**
   * `postgres`, `mysql` or `sqlite` (the seeds' driver names such as `Pg`,
   * `mysql2`, `postgresql`, `SQLite` are accepted too). Taken from the URL when
   * one is given.
   */
  dialect?: string;
  /** Database name; for SQLite the file (or `:memory:`). Required without `url` or `connection`. */
  database?: string;
  /** Database user. @default the driver's default */
  user?: string;
  /** Database password. @default none */
  password?: string;
  /** Database host. @default the driver's default (localhost) */
  host?: string;
  /** Database port. @default the driver's default (5432, 3306) */
  port?: number;
  /**
   * Character set of the connection. `utf8` means `utf8mb4` on MySQL, so 4-byte
   * characters (emoji) round-trip.
   * @default 'utf8'
   */
  charset?: string;
  /** A pool or connection of the application's to use instead of the store's own. */
  connection?: SessionConnection;
  /**
   * Table name, optionally `schema.table`. Letters, digits and `_` only.
   * @default 'sessions'
   */
  table?: string;
  /**
   * How a changed session is saved: `atomic` (one statement applies the delta
   * inside the database), `optimistic` (compare-and-swap on `lock_version`,
   * reload and merge on a miss) or `pessimistic` (lock the row, reload, merge,
   * write). Left out: `optimistic` when the table has a `lock_version` column,
   * else `atomic`.
   * @default 'atomic'
   */
  locking?: LockingMode;
  /**
   * Lifetime in seconds of a session whose cookie sets no expiry.
   * @default 1800
   */
  ttl?: number;
  /**
   * A request that changed nothing moves the stored expiry only when it would
   * move by more than this many seconds, so read-only traffic writes nothing.
   * `0` writes the expiry on every request.
   * @default 60
   */
  touchAfter?: number;
  /**
   * Largest session accepted, in bytes of JSON text. A bigger one is refused
   * with `ERR_SESSION_TOO_LARGE` and the stored session stays as it was.
   * @default 1048576
   */
  maxSize?: number;
  /**
   * Connections in the store's own pool (PostgreSQL, MySQL/MariaDB).
   * @default 10
   */
  poolSize?: number;
  /**
   * A pooled connection idle for longer than this many seconds is checked
   * (a cheap ping) before use and replaced if dead. `0` checks every time.
   * @default 30
   */
  connectionCheckThreshold?: number;
  /**
   * Seconds to wait for a new database connection before a call fails with
   * `ERR_UNAVAILABLE`.
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Removal of expired rows (expired sessions are never returned either way):
   * `true` (about 10 % of store calls start a batched purge in the background,
   * single-flight across processes), a probability, an options object, or
   * `false`/`0` to leave it to `store.purge()` or the command line.
   * @default true
   */
  autopurge?: boolean | number | AutopurgeOptions;
  /**
   * Create the table (and its indexes) at start-up when it is missing.
   * @default false
   */
  createTable?: boolean;
  /**
   * Store the SHA-256 of each session id instead of the id itself, so a dump
   * of the table holds no usable cookie value. Turn off only for a table
   * shared with readers that look rows up by the raw id.
   * @default true
   */
  hashSessionIds?: boolean;
  /**
   * Session key holding the user id, as a dotted path (`'userId'`,
   * `'passport.user'`). When set, the table gets an indexed `user_id` column
   * filled from it on every save, and `destroyByUser` / `listByUser` log a
   * user out everywhere or list their sessions.
   * @default undefined (no user-id column)
   */
  userIdKey?: string;
}

/** Connection settings given one by one instead of a URL. */
export interface ConnectionParameters {
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string;
}

/** Where the store connects to. */
export type ConnectionTarget =
  | { readonly dialect: 'postgres' | 'mysql'; readonly url: string }
  | { readonly dialect: 'postgres' | 'mysql'; readonly parameters: ConnectionParameters }
  | { readonly dialect: 'sqlite'; readonly filename: string }
  | { readonly dialect: DialectName; readonly connection: SessionConnection };

/** Autopurge after validation: `undefined` when off. */
export interface ResolvedAutopurge {
  readonly probability: number;
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly minIntervalMs: number;
}

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  readonly target: ConnectionTarget;
  readonly table: TableName;
  /** `undefined`: decided from the table at start-up. */
  readonly locking: LockingMode | undefined;
  readonly ttlSeconds: number;
  readonly touchAfterMs: number;
  readonly maxSize: number;
  readonly poolSize: number;
  readonly charset: string;
  readonly connectionCheckMs: number;
  readonly connectTimeoutMs: number;
  readonly autopurge: ResolvedAutopurge | undefined;
  readonly createTable: boolean;
  readonly hashSessionIds: boolean;
  /** Path of the user id in the session, from `userIdKey`. */
  readonly userIdPath: readonly string[] | undefined;
}

/** Every option, camelCase, as the store knows it. */
const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'url', 'dialect', 'database', 'user', 'password', 'host', 'port', 'charset', 'connection',
  'table', 'locking', 'ttl', 'touchAfter', 'maxSize', 'poolSize', 'connectionCheckThreshold', 'connectTimeout',
  'autopurge', 'createTable', 'hashSessionIds', 'userIdKey',
]);

/** The seeds' names (SmartSessionStore, Prancer) and snake_case spellings, mapped to ours. */
const OPTION_ALIASES: Readonly<Record<string, string>> = {
  driver: 'dialect',
  session_class: 'dialect',
  username: 'user',
  hostname: 'host',
  connection_check_threshold: 'connectionCheckThreshold',
  connect_timeout: 'connectTimeout',
  expiration_timeout: 'ttl',
  timeout: 'ttl',
  touch_after: 'touchAfter',
  max_size: 'maxSize',
  pool_size: 'poolSize',
  create_table: 'createTable',
  hash_session_ids: 'hashSessionIds',
  user_id_key: 'userIdKey',
  autopurge_probability: 'autopurgeProbability',
  autopurgeProbability: 'autopurgeProbability',
};

const LOCKING_MODES: readonly LockingMode[] = ['atomic', 'optimistic', 'pessimistic'];
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function invalid(name: string, why: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
}

/** Parses a connection URL into a target. */
export function parseConnectionUrl(url: string): ConnectionTarget {
  if (url.startsWith('sqlite:')) {
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename.length === 0) throw invalid('url', 'names no SQLite file (use sqlite:./sessions.db or sqlite::memory:)');
    return { dialect: 'sqlite', filename };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('url', 'is not a URL (expected postgres://, mysql://, mariadb:// or sqlite:)');
  }
  const scheme = parsed.protocol.slice(0, -1);
  const dialect = scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : undefined;
  if (dialect === undefined) throw invalid('url', `has the unsupported scheme "${scheme}:" (expected postgres:, mysql:, mariadb: or sqlite:)`);
  if (dialect === 'mysql' && scheme === 'mariadb') return { dialect, url: `mysql:${url.slice('mariadb:'.length)}` };
  return { dialect, url };
}

/**
 * A dialect from any name the seeds or users write: `postgres`, `Pg`,
 * `postgresql`, `Prancer::Session::Store::Database::Driver::Pg`, `mysql2`,
 * `:mysql2`, `mariadb`, `SQLite`, `sqlite3`.
 */
export function parseDialect(value: unknown): DialectName {
  const name = typeof value === 'string' ? (value.split('::').pop() ?? '').replace(/^:/, '').toLowerCase() : '';
  if (['postgres', 'postgresql', 'pg'].includes(name)) return 'postgres';
  if (['mysql', 'mysql2', 'mariadb'].includes(name)) return 'mysql';
  if (['sqlite', 'sqlite3'].includes(name)) return 'sqlite';
  throw invalid('dialect', `must be postgres, mysql or sqlite, got ${JSON.stringify(value)}`);
}

/**
 * Parses `table` or `schema.table`, refusing anything but plain identifiers:
 * table names are the one piece of configuration that ends up in SQL text.
 */
export function parseTableName(value: string): TableName {
  const parts = value.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw invalid('table', `must be "table" or "schema.table" made of letters, digits and _ (at most 63 each), got ${JSON.stringify(value)}`);
  }
  return parts.length === 2 ? { schema: parts[0], name: parts[1] as string } : { schema: undefined, name: parts[0] as string };
}

interface NumberRule {
  readonly integer?: boolean;
  readonly zero?: boolean;
  readonly max?: number;
}

function numberOption(value: unknown, name: string, fallback: number, { integer = false, zero = false, max = Number.POSITIVE_INFINITY }: NumberRule = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0) || value > max || (integer && !Number.isInteger(value))) {
    const range = `${zero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}${max < Number.POSITIVE_INFINITY ? ` up to ${max}` : ''}`;
    throw invalid(name, `must be a ${range}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function stringOption(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, `must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(name, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function userIdPath(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const path = typeof value === 'string' ? value.split('.') : [];
  if (path.length === 0 || path.some((segment) => segment === '' || ['__proto__', 'constructor', 'prototype'].includes(segment))) {
    throw invalid('userIdKey', `must be a session key or dotted path such as "userId" or "passport.user", got ${JSON.stringify(value)}`);
  }
  return path;
}

/**
 * `autopurge`: `true`/`false`, the seed's `1`/`0`, a probability, or an
 * options object; `autopurge_probability` (the Prancer driver's name) sets
 * the probability.
 */
function resolveAutopurge(value: unknown, probabilityOption: unknown): ResolvedAutopurge | undefined {
  const defaults = { probability: 0.1, intervalMs: 0, batchSize: 1000, minIntervalMs: 60_000 };
  const probability = numberOption(probabilityOption, 'autopurge_probability', defaults.probability, { zero: true, max: 1 });
  if (value === undefined || value === true || value === 1) return { ...defaults, probability };
  if (value === false || value === 0) return undefined;
  if (typeof value === 'number') {
    const chance = numberOption(value, 'autopurge', 0, { max: 1 });
    return { ...defaults, probability: chance };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('autopurge', `must be true, false, a probability between 0 and 1, or { probability, interval, batchSize, minInterval }, got ${JSON.stringify(value)}`);
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!['probability', 'interval', 'batchSize', 'minInterval'].includes(key)) throw invalid(`autopurge.${key}`, 'is not an autopurge setting (probability, interval, batchSize, minInterval)');
  }
  return {
    probability: numberOption(given['probability'], 'autopurge.probability', given['interval'] === undefined ? probability : 0, { zero: true, max: 1 }),
    intervalMs: numberOption(given['interval'], 'autopurge.interval', 0, { zero: true }) * 1000,
    batchSize: numberOption(given['batchSize'], 'autopurge.batchSize', defaults.batchSize, { integer: true }),
    minIntervalMs: numberOption(given['minInterval'], 'autopurge.minInterval', 60, { zero: true }) * 1000,
  };
}

/** Renames the seeds' and snake_case option names to ours, refusing unknown ones and duplicates. */
function canonicalNames(input: Record<string, unknown>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const spelledAs = new Map<string, string>();
  for (const [given, value] of Object.entries(input)) {
    const name = OPTION_ALIASES[given] ?? given;
    if (!KNOWN_OPTIONS.has(name) && name !== 'autopurgeProbability') {
      throw invalid(given, `is not an option of smart-session-store (known: ${[...KNOWN_OPTIONS].join(', ')}, or the seeds' snake_case names)`);
    }
    const earlier = spelledAs.get(name);
    if (earlier !== undefined && options[name] !== value) throw invalid(given, `is given twice, also as "${earlier}", with different values`);
    spelledAs.set(name, given);
    options[name] = value;
  }
  return options;
}

function resolveTarget(options: Record<string, unknown>): ConnectionTarget {
  const url = stringOption(options['url'], 'url');
  const dialect = options['dialect'] === undefined ? undefined : parseDialect(options['dialect']);
  const connection = options['connection'];
  if (connection !== undefined) {
    if (typeof connection !== 'object' || connection === null) throw invalid('connection', 'must be a pool, client or database object of pg, mysql2 or better-sqlite3');
    if (url !== undefined) throw invalid('connection', 'and "url" exclude each other');
    return { dialect: dialect ?? guessDialect(connection), connection };
  }
  if (url !== undefined) {
    const target = parseConnectionUrl(url);
    if (dialect !== undefined && dialect !== target.dialect) throw invalid('dialect', `is ${dialect} but the URL is for ${target.dialect}`);
    return target;
  }
  const database = stringOption(options['database'], 'database');
  if (dialect === undefined || database === undefined) {
    throw invalid('url', 'is required, or "dialect" with "database" (and host, port, user, password), or a "connection"');
  }
  if (dialect === 'sqlite') return { dialect, filename: database };
  return {
    dialect,
    parameters: {
      host: stringOption(options['host'], 'host'),
      port: options['port'] === undefined ? undefined : numberOption(typeof options['port'] === 'string' ? Number(options['port']) : options['port'], 'port', 0, { integer: true, max: 65535 }),
      user: stringOption(options['user'], 'user'),
      password: options['password'] === undefined || options['password'] === '' ? undefined : stringOption(options['password'], 'password'),
      database,
    },
  };
}

/** Tells a handed-over connection's driver from its shape. */
function guessDialect(connection: object): DialectName {
  if ('pragma' in connection && 'prepare' in connection) return 'sqlite';
  if ('getConnection' in connection || 'beginTransaction' in connection || 'promise' in connection) return 'mysql';
  if ('query' in connection) return 'postgres';
  throw invalid('connection', 'is not a pg, mysql2 or better-sqlite3 object; give "dialect" too');
}

/**
 * Validates options and fills in defaults. Every problem is refused here, at
 * construction, with an error that names the option. The seeds' snake_case
 * names (`expiration_timeout`, `connection_check_threshold`, `hostname`, ...)
 * are accepted beside ours.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`
 */
export function resolveOptions(input: SessionStoreOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new SessionStoreError('ERR_INVALID_OPTION', 'options must be an object with at least "url"');
  const options = canonicalNames(input as unknown as Record<string, unknown>);
  const table = options['table'] === undefined ? 'sessions' : options['table'];
  if (typeof table !== 'string') throw invalid('table', `must be a string, got ${JSON.stringify(table)}`);
  const locking = options['locking'];
  if (locking !== undefined && !LOCKING_MODES.includes(locking as LockingMode)) {
    throw invalid('locking', `must be one of ${LOCKING_MODES.join(', ')}, got ${JSON.stringify(locking)}`);
  }
  const charset = stringOption(options['charset'], 'charset') ?? 'utf8';
  if (!/^[A-Za-z0-9_]+$/.test(charset)) throw invalid('charset', `must be a character set name such as utf8, got ${JSON.stringify(charset)}`);
  return {
    target: resolveTarget(options),
    table: parseTableName(table),
    locking: locking as LockingMode | undefined,
    ttlSeconds: numberOption(options['ttl'], 'ttl', 1800),
    touchAfterMs: numberOption(options['touchAfter'], 'touchAfter', 60, { zero: true }) * 1000,
    maxSize: numberOption(options['maxSize'], 'maxSize', 1024 * 1024, { integer: true }),
    poolSize: numberOption(options['poolSize'], 'poolSize', 10, { integer: true }),
    charset,
    connectionCheckMs: numberOption(options['connectionCheckThreshold'], 'connectionCheckThreshold', 30, { zero: true }) * 1000,
    connectTimeoutMs: numberOption(options['connectTimeout'], 'connectTimeout', 5) * 1000,
    autopurge: resolveAutopurge(options['autopurge'], options['autopurgeProbability']),
    createTable: booleanOption(options['createTable'], 'createTable', false),
    hashSessionIds: booleanOption(options['hashSessionIds'], 'hashSessionIds', true),
    userIdPath: userIdPath(options['userIdKey']),
  };
}
