/**
 * What the store asks of a database: a handful of row operations. Each dialect
 * folder implements them over a structural subset of its driver; the core
 * never sees SQL.
 */
import type { SessionDelta } from '../core/delta.js';

/** The dialects the store speaks. */
export type DialectName = 'postgres' | 'mysql' | 'sqlite';

/** A session row as read back from the table. */
export interface StoredSessionRow {
  /** The stored JSON text, or `null` when the data column is NULL (a corrupt row). */
  readonly text: string | null;
  /** Expiry, epoch milliseconds. */
  readonly expiresAt: number;
  /** `lock_version`, or `null` when the table has none. */
  readonly version: number | null;
}

/** What the store learns about its table at start-up. */
export interface TableInfo {
  /** Column names, lower case. */
  readonly columns: ReadonlySet<string>;
  /** The table has an integer `lock_version` column (optimistic locking becomes the default). */
  readonly hasLockVersion: boolean;
  /** Declared type of the `data` column, lower case (`jsonb`, `text`, `longtext`, ...). */
  readonly dataType: string;
  /** The expiry column, `undefined` when the table has none the store understands. */
  readonly expiry: ExpiryColumn | undefined;
  /**
   * Largest session text the table takes, when something smaller than the
   * store's own limit caps it (a MySQL `TEXT` column, MySQL's
   * `max_allowed_packet`), and what that is.
   */
  readonly dataCapacity?: { readonly bytes: number; readonly limitedBy: string };
}

/** How an expiry column holds time: a timestamp type, or an integer of epoch milliseconds or seconds. */
export type ExpiryUnit = 'timestamp' | 'ms' | 's';

/**
 * The expiry column: the store's own `expires_at`, or `timeout` in epoch
 * seconds as in the Prancer seed's table.
 */
export interface ExpiryColumn {
  readonly name: 'expires_at' | 'timeout';
  readonly unit: ExpiryUnit;
}

/**
 * Finds the expiry column among the table's columns (name to lower-case
 * type): `expires_at` (integers are epoch ms) or else `timeout` (integers are
 * epoch seconds, the Prancer table).
 */
export function findExpiryColumn(types: ReadonlyMap<string, string>, isTimestamp: (type: string) => boolean, isInteger: (type: string) => boolean): ExpiryColumn | undefined {
  for (const [name, integerUnit] of [['expires_at', 'ms'], ['timeout', 's']] as const) {
    const type = types.get(name);
    if (type === undefined) continue;
    if (isTimestamp(type)) return { name, unit: 'timestamp' };
    if (isInteger(type)) return { name, unit: integerUnit };
  }
  return undefined;
}

/** An epoch-ms instant as the expiry column takes it (a timestamp as ISO text: cheaper for drivers than a Date). */
export function expiryToDatabase(ms: number, unit: ExpiryUnit): string | number {
  if (unit === 'timestamp') return new Date(ms).toISOString();
  return unit === 's' ? Math.floor(ms / 1000) : Math.round(ms);
}

/** An expiry column value as epoch ms. */
export function expiryFromDatabase(value: unknown, unit: ExpiryUnit): number {
  if (value instanceof Date) return value.getTime();
  const number = Number(value);
  return unit === 's' ? number * 1000 : number;
}

/** A schema-qualified table name, already validated. */
export interface TableName {
  readonly schema: string | undefined;
  readonly name: string;
}

/** A new value for the `user_id` column; `undefined` leaves it as it is. */
export type UserIdWrite = string | null | undefined;

/** What to create besides the standard columns. */
export interface CreateTableOptions {
  /** Add an integer `lock_version` column (optimistic locking). */
  readonly lockVersion: boolean;
  /** Add an indexed `user_id` column (`userIdKey`). */
  readonly userId: boolean;
}

/** What a locked merge writes. */
export interface LockedWrite {
  readonly text: string;
  readonly userId: UserIdWrite;
}

/** The row operations of one dialect. Keys are the stored ids (hashes by default). */
export interface SessionTable {
  readonly dialect: DialectName;
  /** Reads the table's columns; `null` when the table does not exist. */
  inspect(): Promise<TableInfo | null>;
  /** Creates the table and its expiry index if missing. */
  create(options: CreateTableOptions): Promise<void>;
  /** Fixes the statements to the table's shape, once, after {@link inspect}. */
  use(info: TableInfo): void;
  /** One statement: the live row, or `null` when missing or expired. */
  load(key: string, now: number): Promise<StoredSessionRow | null>;
  /** Stores the whole session as given, replacing any row with that key. */
  upsert(key: string, text: string, expiresAt: number, userId: UserIdWrite): Promise<void>;
  /**
   * One statement applies the delta to the latest stored data inside the
   * database. Resolves `false` when the row is gone (destroyed or expired):
   * a save must never bring a destroyed session back.
   */
  applyDelta(key: string, delta: SessionDelta, expiresAt: number, now: number, userId: UserIdWrite): Promise<boolean>;
  /** Writes `text` only if the row still has `version`; `false` on a miss or when the row is gone. */
  compareAndSwap(key: string, text: string, expiresAt: number, version: number, now: number, userId: UserIdWrite): Promise<boolean>;
  /**
   * In one transaction: locks the live row, hands it to `merge`, writes what
   * `merge` returns. Resolves `false` (and writes nothing) when the row is
   * gone. When `merge` throws, nothing is written and the error propagates.
   */
  updateLocked(key: string, now: number, merge: (row: StoredSessionRow) => LockedWrite, expiresAt: number): Promise<boolean>;
  /** Moves the expiry of a live row to `expiresAt` if it is currently before `movedBefore`. */
  extendExpiry(key: string, expiresAt: number, movedBefore: number, now: number): Promise<void>;
  /** Deletes the row. */
  destroy(key: string): Promise<void>;
  /** Deletes every session of a user; resolves to how many. */
  destroyByUser(userId: string): Promise<number>;
  /** The live rows of a user. */
  listByUser(userId: string, now: number): Promise<StoredSessionRow[]>;
  /** Data of every live row. */
  all(now: number): Promise<(string | null)[]>;
  /** Number of live rows. */
  count(now: number): Promise<number>;
  /** Deletes every row. */
  clear(): Promise<void>;
  /**
   * Deletes expired rows, `batchSize` per statement, yielding between
   * batches, under a lock that lets one process purge at a time. Resolves to
   * the number removed, or `null` when another process holds the lock.
   */
  purge(now: number, batchSize: number, onProgress?: (removed: number) => void): Promise<number | null>;
  /** Live and expired rows. */
  stats(now: number): Promise<{ live: number; expired: number }>;
  /** One cheap round trip: resolves when the database answers. */
  ping(): Promise<void>;
  /** True when `error` means the connection was lost or could not be made (the statement itself was fine). */
  isConnectionError(error: unknown): boolean;
  /** True when `error` came from opening a connection: the database is unreachable. */
  isConnectFailure(error: unknown): boolean;
  /**
   * True when `error` is a lock conflict the database resolved by rolling the
   * statement or transaction back (a deadlock, a lock wait timeout, a busy
   * file): running it again is the documented remedy.
   */
  isTransientConflict(error: unknown): boolean;
  /** Ends what the store opened (never a connection the application handed over). */
  close(): Promise<void>;
}

/** The name under which purges of one table take their cross-process lock. */
export function purgeLockName(table: TableName): string {
  return `smart-session-store:purge:${table.schema === undefined ? '' : `${table.schema}.`}${table.name}`;
}

/** A row read by `SELECT data, <expiry> AS expires_at, lock_version`, with its data already as text. */
export function storedRow(row: Record<string, unknown>, text: string | null, unit: ExpiryUnit): StoredSessionRow {
  const version = row['lock_version'];
  return {
    text,
    expiresAt: expiryFromDatabase(row['expires_at'], unit),
    version: version === null || version === undefined ? null : Number(version),
  };
}
