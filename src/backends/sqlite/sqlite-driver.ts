/**
 * SQLite over `better-sqlite3` (a file or `:memory:`): a structural subset of
 * its Database, so the library has no hard dependency on the driver.
 *
 * better-sqlite3 is synchronous: a statement runs to completion before the
 * event loop moves on, and SQLite's write lock (WAL, busy timeout)
 * serialises the processes that share one file. Within a process, a
 * transaction holds the one connection: other statements wait for it.
 */
import { applyDelta, deltaFromJson } from '../../core/delta.js';
import { parseStoredSession, type JsonObject } from '../../core/json.js';
import { SessionStoreError } from '../../errors.js';
import { importDriver } from '../driver.js';
import type { ConnectionSettings } from '../connection-settings.js';
import type { SqliteSettings } from './sqlite-options.js';
import type { ConnectionFailure } from '../../core/backend.js';
import type { Row, SqlDriver, SqlRunner } from '../sql/sql-dialect.js';
import { startBackgroundCheckpoints, type BackgroundCheckpoints } from './sqlite-checkpointer.js';

/** The part of a better-sqlite3 statement the store uses. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 Database the store uses. */
export interface SqliteDatabaseLike {
  prepare(sql: string): SqliteStatementLike;
  pragma(source: string): unknown;
  function(name: string, options: { deterministic: boolean }, implementation: (...args: unknown[]) => unknown): unknown;
  close(): unknown;
  readonly memory: boolean;
  /** Whether the application opened it read-only. */
  readonly readonly?: unknown;
}

type SqliteDatabaseConstructor = new (filename: string) => SqliteDatabaseLike;

/** The SQL function through which one UPDATE applies a delta with the store's own merge rule. */
export const APPLY_DELTA_FUNCTION = 'smart_session_apply_delta';
/** How long a writer waits for another process's write lock before failing, in ms. */
const BUSY_TIMEOUT_MS = 5000;
/** Prepared statements kept: the store's statements come in a few shapes each. */
const STATEMENT_CACHE_SIZE = 200;

/** The store's connection to a SQLite file: its own, or the application's Database. */
export class SqliteDriver implements SqlDriver {
  readonly #db: SqliteDatabaseLike;
  readonly #ownsDatabase: boolean;
  /** The worker that checkpoints the file's WAL off the event loop, when there is one. */
  readonly #checkpoints: BackgroundCheckpoints | undefined;
  readonly #statements = new Map<string, SqliteStatementLike>();
  /** Settles when the transaction holding the connection ends; `undefined` when none does. */
  #transaction: Promise<void> | undefined;
  /** Runs statements inside the transaction, past the wait that other callers go through. */
  readonly #inside: SqlRunner = {
    query: async (text, values) => this.#all(text, values),
    execute: async (text, values) => this.#run(text, values),
  };
  /** An embedded database has no connection to lose. */
  readonly connectionAttempts = 0;

  /** Opens the file (WAL, busy timeout) as the store's own connection, or adopts the application's Database. */
  static async open(settings: ConnectionSettings & SqliteSettings): Promise<SqliteDriver> {
    const { target } = settings;
    if ('connection' in target) return new SqliteDriver(target.connection as SqliteDatabaseLike, false, settings.backgroundCheckpoints);
    if (!('filename' in target)) throw new Error('a SQLite store needs a file name or a Database');
    const Database = (await importDriver('better-sqlite3')) as SqliteDatabaseConstructor;
    let db: SqliteDatabaseLike;
    try {
      db = new Database(target.filename);
    } catch (error) {
      throw new SessionStoreError(
        'ERR_LOGIN_FAILED',
        `the SQLite file ${target.filename} cannot be opened: ${(error as Error).message}. Check the path and its permissions`,
        { cause: error },
      );
    }
    // WAL lets readers in other processes proceed while one writes; the busy timeout makes writers queue instead of failing.
    if (!db.memory) db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    try {
      return new SqliteDriver(db, true, settings.backgroundCheckpoints);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  constructor(db: SqliteDatabaseLike, ownsDatabase: boolean, backgroundCheckpoints: boolean | undefined) {
    this.#db = db;
    this.#ownsDatabase = ownsDatabase;
    db.function(APPLY_DELTA_FUNCTION, { deterministic: true }, (stored, encodedDelta) => {
      const delta = deltaFromJson(JSON.parse(String(encodedDelta)) as JsonObject);
      return JSON.stringify(applyDelta(parseStoredSession(stored), delta));
    });
    // Last, so that nothing after it can fail and leave the worker running.
    // By default only on a file the store opened: a Database handed over keeps its settings unless asked.
    this.#checkpoints =
      (backgroundCheckpoints ?? ownsDatabase) ? startBackgroundCheckpoints(db, () => this.#now(() => db.pragma('main.wal_checkpoint(PASSIVE)'))) : undefined;
  }

  /** Prepares a statement once and keeps it. */
  #prepared(text: string): SqliteStatementLike {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.clear();
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  #all(text: string, values: readonly unknown[]): Row[] {
    return this.#prepared(text).all(...values) as Row[];
  }

  #run(text: string, values: readonly unknown[]): number {
    return this.#prepared(text).run(...values).changes;
  }

  // Not async functions: with no transaction open (nearly always), the statement runs at once and costs no extra promise.
  query(text: string, values: readonly unknown[]): Promise<Row[]> {
    return this.#now(() => this.#all(text, values));
  }

  execute(text: string, values: readonly unknown[]): Promise<number> {
    return this.#now(() => this.#run(text, values));
  }

  /**
   * Runs a statement now, or once the transaction holding the connection has
   * ended. The check and the statement run in one go: were there a tick in
   * between, another waiter could open its transaction there, and this
   * statement would become part of it (and be rolled back with it).
   */
  #now<T>(statement: () => T): Promise<T> {
    const holding = this.#transaction;
    if (holding !== undefined) return holding.then(() => this.#now(statement));
    try {
      return Promise.resolve(statement());
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** BEGIN IMMEDIATE takes the write lock up front, so nothing read in the transaction can change before it commits. */
  async transaction<T>(work: (transaction: SqlRunner) => Promise<T>): Promise<T> {
    // Every waiter wakes when the transaction ends; the first takes the connection with no tick between its check and
    // the taking, and the others see it taken and wait again.
    while (this.#transaction !== undefined) await this.#transaction;
    let end!: () => void;
    this.#transaction = new Promise((resolve) => (end = resolve));
    try {
      this.#run('BEGIN IMMEDIATE', []);
      try {
        const result = await work(this.#inside);
        this.#run('COMMIT', []);
        return result;
      } catch (error) {
        try {
          this.#run('ROLLBACK', []);
        } catch {
          // SQLite rolled back by itself already.
        }
        throw error;
      }
    } finally {
      this.#transaction = undefined;
      end();
    }
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').all();
  }

  isConnectionError(): boolean {
    return false;
  }

  isConnectFailure(): boolean {
    return false;
  }

  describeConnectionFailure(error: unknown): ConnectionFailure | undefined {
    // better-sqlite3 throws a TypeError "Cannot open database because the directory does not exist", or SQLITE_CANTOPEN.
    const code = (error as { code?: unknown } | null)?.code;
    const message = error instanceof Error ? error.message : String(error);
    if (code !== 'SQLITE_CANTOPEN' && code !== 'SQLITE_PERM' && !/cannot open database/i.test(message)) return undefined;
    return { kind: 'login', message: `the SQLite file cannot be opened: ${message}. Check the path and its permissions` };
  }

  isTransientConflict(error: unknown): boolean {
    // Another process held the write lock for longer than the busy timeout.
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
  }

  async close(): Promise<void> {
    await this.#checkpoints?.stop();
    if (this.#ownsDatabase) this.#db.close();
  }
}
