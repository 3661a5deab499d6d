/**
 * What the store learns about a sessions table when it starts: which columns
 * it has and how they hold time, so it can work with tables it did not
 * create (the Prancer seed's `timeout` in epoch seconds, TEXT data).
 */

/** How an expiry column holds time: a timestamp type, or an integer of epoch milliseconds or seconds. */
export type ExpiryUnit = 'timestamp' | 'ms' | 's';

/** The expiry column: the store's own `expires_at`, or `timeout` in epoch seconds as in the Prancer seed's table. */
export interface ExpiryColumn {
  readonly name: 'expires_at' | 'timeout';
  readonly unit: ExpiryUnit;
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
