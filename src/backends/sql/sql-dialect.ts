/**
 * What the shared SQL layer needs of each SQL database: a driver that runs
 * statements (pools, transactions, error classification) and a dialect that
 * says what really differs (quoting and placeholders, the JSON merge
 * expression, upsert, the purge lock, introspection, DDL). Everything else,
 * the statements themselves and the checks of a table's shape, is shared.
 */
import type { ConnectionFailure } from '../../core/backend.js';
import type { SessionDelta } from '../../core/delta.js';
import type { TableName } from '../connection-settings.js';
import type { Placeholders, Slot, Sql } from './statement.js';
import type { CreateTableOptions, TableInfo } from './table-shape.js';

/** A row as the driver returns it. */
export type Row = Record<string, unknown>;

/**
 * Runs statements, on the pool or on one connection. `name`, given for the
 * statements of a table's fixed set (`statement.ts`'s `named`), comes from
 * the text: a driver that keeps statements prepared on a connection may send
 * the statement under it (PostgreSQL); the others ignore it.
 */
export interface SqlRunner {
  /** The rows a statement returns. */
  query(text: string, values: readonly unknown[], name?: string): Promise<Row[]>;
  /** The number of rows a statement changed. */
  execute(text: string, values: readonly unknown[], name?: string): Promise<number>;
}

/** A database's connections, as the shared layer uses them. */
export interface SqlDriver extends SqlRunner {
  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (transaction: SqlRunner) => Promise<T>): Promise<T>;
  /** One cheap round trip. */
  ping(): Promise<void>;
  /** How many lost connections in a row mean the database is gone: a pool's worth. */
  readonly connectionAttempts: number;
  /** How many runs an operation rolled back for a conflict gets; `undefined`: the store's default. */
  readonly conflictAttempts?: number | undefined;
  isConnectionError(error: unknown): boolean;
  isConnectFailure(error: unknown): boolean;
  /** What a failure to connect means, or `undefined` when `error` is not one. */
  describeConnectionFailure(error: unknown): ConnectionFailure | undefined;
  isTransientConflict(error: unknown): boolean;
  /** Ends what the store opened (never the application's pool or connection). */
  close(): Promise<void>;
}

/** How statements read, write and merge the data column of one table. */
export interface DataColumn {
  /** The select-list expression that reads the data as text (aliased `data` by the caller). */
  readonly read: Sql;
  /** The row value of {@link read} as text, `null` for NULL. */
  text(value: unknown): string | null;
  /** A JSON text as the column takes it: the text, or the slot of a statement compiled once that it is bound to. */
  write(text: string | Slot): Sql;
  /**
   * The column with `delta` merged into it, in one expression; `null` when
   * this delta cannot be written that way (the shared layer then merges under
   * the row lock, with the same result).
   */
  merge(delta: SessionDelta): Sql | null;
}

/** What a purge works on. */
export interface PurgeTarget {
  /** The table's name, for locks kept beside it. */
  readonly tableName: TableName;
  /** The quoted, qualified table. */
  readonly table: Sql;
  /** The quoted expiry column. */
  readonly expires: Sql;
  /** The instant before which sessions are expired, as an expression of the expiry column's type. */
  readonly cutoff: Sql;
  /** The name of the lock that lets one process purge this table at a time. */
  readonly lockName: string;
  /**
   * The quoted column the table keeps its rows in order of (`id` on InnoDB,
   * `rowid` on an SQLite rowid table), where a purge can walk the table in
   * that order; `undefined` elsewhere.
   */
  readonly storageOrder?: Sql | undefined;
}

/** What one purge batch did. */
export interface PurgeBatch {
  /** Sessions it removed. */
  readonly removed: number;
  /**
   * How far it got: the expired sessions it found (for a window of a walk in
   * storage order, the rows it examined). A batch that got as far as it may
   * leaves more for the next one.
   */
  readonly found: number;
  /** Called once the batch has committed (never for a batch run again after a conflict): moves a walk on. */
  readonly advance?: () => void;
}

/** What one window of a walk in storage order did ({@link SqlDialect.deleteExpiredInStorageOrder}). */
export interface StorageOrderWindow {
  /** Sessions the window held (fewer than asked: the walk reached the end of the table). */
  readonly examined: number;
  /** Of those, the expired ones. */
  readonly expired: number;
  /** Sessions removed (an expired one renewed meanwhile stays). */
  readonly removed: number;
  /** The storage-order value of the window's last row: the next window starts after it. */
  readonly last: unknown;
}

/** How a database pads pending changes ({@link SqlDialect.changesPadding}). */
export interface ChangesPadding {
  /** The unit, in bytes, the changes of a document this long are padded to a multiple of; `0`: no padding. */
  unitFor(documentLength: number): number;
  /** `text` followed by spaces up to the next multiple of `unit` bytes beyond its length (at least one space). */
  pad(text: Sql, unit: Sql): Sql;
  /** The stored changes without their padding. */
  readonly unpadded: Sql;
}

/**
 * Runs one batch's statements where the purge lock covers them. Resolves to
 * what `work` returned, or `null` when the lock has gone to another process
 * since the previous batch (that process carries the purge on).
 */
export type LockedBatch = <T>(work: (runner: SqlRunner) => Promise<T>) => Promise<T | null>;

/**
 * What keeps the purges of one table to one process at a time. Nothing of it
 * may outlive the purge on a connection (a pooler such as PgBouncer hands the
 * same server connection to someone else between transactions), so a lock is
 * either taken inside each batch's transaction or kept in a row.
 */
export interface PurgeLock {
  /**
   * Runs `purge` holding the lock: resolves to what it returned, or `null`
   * without running it (or after its first batch was refused) when another
   * process holds the lock.
   */
  run(driver: SqlDriver, target: PurgeTarget, purge: (batch: LockedBatch) => Promise<number>): Promise<number | null>;
}

/**
 * How a purge shares the database with the requests beside it. A batch
 * holds locks, fills the buffer pool with pages of expired rows and, for a
 * synchronous driver (better-sqlite3), blocks the event loop: requests that
 * arrive meanwhile wait. Batches are sized to take about `budgetMs`, and
 * after each the purge pauses `pauseShare` times as long as the batch took,
 * so requests always find the database free part of the time.
 */
export interface PurgePacing {
  readonly budgetMs: number;
  readonly pauseShare: number;
}

/** What differs between SQL databases. */
export interface SqlDialect extends Placeholders {
  /** Quotes an identifier that was validated already. */
  quote(identifier: string): string;
  /** The table's columns and their types; `null` when there is no such table. */
  inspect(runner: SqlRunner, table: TableName): Promise<TableInfo | null>;
  /** Creates the table and its indexes when missing. */
  create(runner: SqlRunner, table: TableName, options: CreateTableOptions): Promise<void>;
  /** The data column of a table of this shape. */
  dataColumn(info: TableInfo): DataColumn;
  /** How an INSERT names its table, for {@link existing}: `AS s` on PostgreSQL. */
  readonly insertAlias: string;
  /** The conflict clause that turns an INSERT into an upsert, setting `columns` from the inserted row. */
  upsertClause(columns: readonly string[]): string;
  /** The existing row's column inside the upsert clause. */
  existing(column: string): string;
  /** An INSERT that writes nothing, and counts no row, where the id is taken: its verb and its conflict clause. */
  readonly insertUnlessTaken: { readonly verb: string; readonly clause: string };
  /** The current time for `updated_at`; `undefined` where the column keeps itself current. */
  readonly updatedAtNow: string | undefined;
  /**
   * Where an expiry column can be a timestamp: an epoch-ms parameter as the
   * column's type, and the column as epoch ms. Numbers cross the wire both
   * ways, which costs the driver less than dates written out and parsed back.
   * `zoned`: the column holds a time zone (`timestamptz`); without, it holds UTC.
   */
  readonly timestampExpiry?: {
    fromMs(value: Sql, zoned: boolean): Sql;
    toMs(column: Sql, zoned: boolean): Sql;
  };
  /**
   * A column of the given declared type that holds an instant (`created_at`, `updated_at`), as epoch milliseconds;
   * `undefined` for a type the store does not read as one.
   */
  instantMs(column: Sql, type: string): Sql | undefined;
  /** `a` and `b` joined as text. */
  concat(a: Sql, b: Sql): Sql;
  /** The length of a text in characters (as `substr` counts them). */
  charLength(text: Sql): Sql;
  /**
   * Where a row whose size changes is written out whole (SQLite: a row over a
   * page long spills into overflow pages, all of them written again when it
   * grows, while an update that keeps its size writes only the pages that
   * differ), the pending changes of a large session are kept padded with
   * trailing spaces (JSON whitespace) to a multiple of a unit: most appends
   * then fill the padding and keep the row's size. Absent where the database
   * writes a changed column on its own (PostgreSQL's TOAST, InnoDB's
   * off-page columns).
   */
  readonly changesPadding?: ChangesPadding;
  /** What locks a selected row until the transaction ends (`FOR UPDATE`; nothing where the transaction locks everything). */
  readonly lockRowClause: string;
  /** What keeps purges of one table to one process at a time (never a lock a pooled connection would keep). */
  readonly purgeLock: PurgeLock;
  /** Deletes up to `size` expired sessions. */
  deleteExpired(runner: SqlRunner, target: PurgeTarget, size: number): Promise<PurgeBatch>;
  /**
   * Takes the next `size` sessions in the table's storage order (after
   * `after`; from the start when `undefined`) and deletes the expired among
   * them. Where the table keeps its rows in that order, a purge of a mostly
   * expired table this way reads and writes each page once, where the
   * expiry order visits a random page for every row. Absent where no order
   * pays (PostgreSQL's heap keeps rows in no key's order).
   */
  deleteExpiredInStorageOrder?(runner: SqlRunner, target: PurgeTarget, size: number, after: unknown): Promise<StorageOrderWindow>;
  /** The bytes a table and its indexes take; `undefined` where the database cannot say. */
  tableSize?(runner: SqlRunner, table: TableName): Promise<{ dataBytes: number; indexBytes: number } | undefined>;
  /** How a purge shares the database with requests (batch time budget, pause after each batch). @default DEFAULT_PURGE_PACING */
  readonly purgePacing?: PurgePacing;
}
