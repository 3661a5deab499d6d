/**
 * What the store learns about a sessions table when it starts: which columns
 * it has and how they hold time, so it can work with tables it did not
 * create (the Prancer seed's `timeout` in epoch seconds, TEXT data).
 */

/**
 * How an expiry column holds time: a timestamp with time zone (`timestamptz`)
 * or without (`timestamp`, read as UTC), or an integer of epoch milliseconds
 * or seconds.
 */
export type ExpiryUnit = 'timestamptz' | 'timestamp' | 'ms' | 's';

/** The expiry column: the store's own `expires_at`, or `timeout` in epoch seconds as in the Prancer seed's table. */
export interface ExpiryColumn {
  readonly name: 'expires_at' | 'timeout';
  readonly unit: ExpiryUnit;
}

/** What the store learns about its table at start-up. */
export interface TableInfo {
  /** Column names, lower case. */
  readonly columns: ReadonlySet<string>;
  /** Declared type of each column, by its lower-case name, lower case (for `created_at` and `updated_at`). */
  readonly columnTypes?: ReadonlyMap<string, string> | undefined;
  /** The table has an integer `lock_version` column (optimistic locking becomes the default). */
  readonly hasLockVersion: boolean;
  /**
   * The table has a `changes` column of a text type: saves in `atomic` mode
   * append their deltas to it instead of merging them into `data`
   * (`core/pending-changes.ts`).
   */
  readonly hasChanges?: boolean;
  /**
   * The column the table keeps its rows in order of, where a purge can walk
   * it: `id` (an InnoDB primary key, an SQLite table without rowid) or
   * `rowid` (an SQLite rowid table). `undefined`: no order pays.
   */
  readonly storageOrder?: 'id' | 'rowid' | undefined;
  /** Declared type of the `data` column, lower case (`jsonb`, `text`, `longtext`, ...). */
  readonly dataType: string;
  /** The expiry column, `undefined` when the table has none the store understands. */
  readonly expiry: ExpiryColumn | undefined;
  /**
   * Largest session text the table takes, when something caps it (a MySQL
   * `TEXT` column, MySQL's `max_allowed_packet`), and what that is.
   */
  readonly dataCapacity?: { readonly bytes: number; readonly limitedBy: string } | undefined;
}

/** What to create besides the standard columns. */
export interface CreateTableOptions {
  /** Add an integer `lock_version` column (optimistic locking). */
  readonly lockVersion: boolean;
  /** Add an indexed `user_id` column (`userIdKey`). */
  readonly userId: boolean;
  /** Add a `client` column (`recordClient`). */
  readonly client?: boolean | undefined;
}

/** True for a column type that holds the pending changes: text of any length the database calls text. */
export function isTextType(type: string | undefined): boolean {
  return type !== undefined && /^(text|mediumtext|longtext|character varying|varchar|clob)$/.test(type);
}

/**
 * Finds the expiry column among the table's columns (name to lower-case
 * type): `expires_at` (integers are epoch ms) or else `timeout` (integers are
 * epoch seconds, the Prancer table). `timestampUnit` tells the timestamp
 * types of the database apart (`undefined`: not a timestamp).
 */
export function findExpiryColumn(
  types: ReadonlyMap<string, string>,
  timestampUnit: (type: string) => 'timestamptz' | 'timestamp' | undefined,
  isInteger: (type: string) => boolean,
): ExpiryColumn | undefined {
  for (const [name, integerUnit] of [
    ['expires_at', 'ms'],
    ['timeout', 's'],
  ] as const) {
    const type = types.get(name);
    if (type === undefined) continue;
    const timestamp = timestampUnit(type);
    if (timestamp !== undefined) return { name, unit: timestamp };
    if (isInteger(type)) return { name, unit: integerUnit };
  }
  return undefined;
}

/** True for the units that SQL converts to and from epoch milliseconds (the dialect's `timestampExpiry`). */
export function isTimestampUnit(unit: ExpiryUnit): unit is 'timestamptz' | 'timestamp' {
  return unit === 'timestamptz' || unit === 'timestamp';
}

/**
 * An epoch-ms instant as the statement's parameter for the expiry column: a
 * number in every unit (a timestamp column takes it through the dialect's
 * conversion, which costs the driver less than a date written out as text).
 */
export function expiryToDatabase(ms: number, unit: ExpiryUnit): number {
  return unit === 's' ? Math.floor(ms / 1000) : Math.round(ms);
}

/** An expiry as read (a timestamp column through the dialect's conversion to epoch ms) as epoch ms. */
export function expiryFromDatabase(value: unknown, unit: ExpiryUnit): number {
  if (value instanceof Date) return value.getTime();
  const number = Number(value);
  // Epoch seconds with microseconds, times 1000, can land a hair off the millisecond it was written as.
  return unit === 's' ? number * 1000 : isTimestampUnit(unit) ? Math.round(number) : number;
}
