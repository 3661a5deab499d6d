import { SessionStoreError } from '../errors.js';
import type { DialectName, TableName } from '../dialects/dialect.js';

/** How a changed session is written. See the README's "Locking modes". */
export type LockingMode = 'atomic' | 'optimistic' | 'pessimistic';

/** Options of the store, shared by every adapter. */
export interface SessionStoreOptions {
  /**
   * Where the sessions live: `postgres://user@host:5432/db`,
   * `mysql://user:pass@host:3306/db` (also `mariadb://`), `sqlite:./sessions.db`
   * or `sqlite::memory:`.
   */
  url: string;
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
   * Create the table (and its expiry index) at start-up when it is missing.
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

/** Where the store connects to. */
export type ConnectionTarget =
  | { readonly dialect: 'postgres'; readonly url: string }
  | { readonly dialect: 'mysql'; readonly url: string }
  | { readonly dialect: 'sqlite'; readonly filename: string };

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
  readonly createTable: boolean;
  readonly hashSessionIds: boolean;
  /** Path of the user id in the session, from `userIdKey`. */
  readonly userIdPath: readonly string[] | undefined;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'url', 'table', 'locking', 'ttl', 'touchAfter', 'maxSize', 'poolSize', 'createTable', 'hashSessionIds', 'userIdKey',
]);
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
  const dialect: DialectName | undefined =
    scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : undefined;
  if (dialect === undefined) throw invalid('url', `has the unsupported scheme "${scheme}:" (expected postgres:, mysql:, mariadb: or sqlite:)`);
  if (dialect === 'mysql' && scheme === 'mariadb') return { dialect, url: `mysql:${url.slice('mariadb:'.length)}` };
  return { dialect, url };
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

function positiveNumber(options: Record<string, unknown>, name: string, fallback: number, { integer = false, zero = false } = {}): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0) || (integer && !Number.isInteger(value))) {
    throw invalid(name, `must be a ${zero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function booleanOption(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name];
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
 * Validates options and fills in defaults. Every problem is refused here, at
 * construction, with an error that names the option.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`
 */
export function resolveOptions(input: SessionStoreOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new SessionStoreError('ERR_INVALID_OPTION', 'options must be an object with at least "url"');
  const options = input as unknown as Record<string, unknown>;
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw invalid(name, `is not an option of smart-session-store (known: ${[...KNOWN_OPTIONS].join(', ')})`);
  }
  if (typeof options['url'] !== 'string' || options['url'].length === 0) {
    throw invalid('url', 'is required: postgres://..., mysql://..., sqlite:./sessions.db or sqlite::memory:');
  }
  const table = options['table'] === undefined ? 'sessions' : options['table'];
  if (typeof table !== 'string') throw invalid('table', `must be a string, got ${JSON.stringify(table)}`);
  const locking = options['locking'];
  if (locking !== undefined && !LOCKING_MODES.includes(locking as LockingMode)) {
    throw invalid('locking', `must be one of ${LOCKING_MODES.join(', ')}, got ${JSON.stringify(locking)}`);
  }
  return {
    target: parseConnectionUrl(options['url']),
    table: parseTableName(table),
    locking: locking as LockingMode | undefined,
    ttlSeconds: positiveNumber(options, 'ttl', 1800),
    touchAfterMs: positiveNumber(options, 'touchAfter', 60, { zero: true }) * 1000,
    maxSize: positiveNumber(options, 'maxSize', 1024 * 1024, { integer: true }),
    poolSize: positiveNumber(options, 'poolSize', 10, { integer: true }),
    createTable: booleanOption(options, 'createTable', false),
    hashSessionIds: booleanOption(options, 'hashSessionIds', true),
    userIdPath: userIdPath(options['userIdKey']),
  };
}
