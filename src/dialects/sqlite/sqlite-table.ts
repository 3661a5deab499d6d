/**
 * SQLite over `better-sqlite3` (a file or `:memory:`): a structural subset of
 * its Database, so the library has no hard dependency on the driver.
 *
 * better-sqlite3 is synchronous: a statement runs to completion before the
 * event loop moves on, and SQLite's write lock (WAL, busy timeout)
 * serialises the processes that share one file.
 */
import { applyDelta, deltaFromJson, deltaToJson, type SessionDelta } from '../../core/delta.js';
import { parseStoredSession, type JsonObject } from '../../core/json.js';
import type { ConnectionTarget, ResolvedOptions } from '../../core/options.js';
import {
  expiryToDatabase,
  findExpiryColumn,
  purgeLockName,
  storedRow,
  type CreateTableOptions,
  type ExpiryUnit,
  type LockedWrite,
  type SessionTable,
  type StoredSessionRow,
  type TableInfo,
  type TableName,
  type UserIdWrite,
} from '../dialect.js';
import { assignUserId, deleteInBatches, importDriver, quoteIdentifier } from '../driver.js';
import { planMergePatch } from '../merge-patch.js';

/** The part of a better-sqlite3 statement the store uses. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 Database the store uses. */
export interface SqliteDatabaseLike {
  prepare(sql: string): SqliteStatementLike;
  exec(sql: string): unknown;
  pragma(source: string): unknown;
  function(name: string, options: { deterministic: boolean }, implementation: (...args: unknown[]) => unknown): unknown;
  transaction<T>(fn: () => T): { immediate(): T };
  close(): unknown;
  readonly memory: boolean;
}

type SqliteDatabaseConstructor = new (filename: string) => SqliteDatabaseLike;

/** The SQL function through which one UPDATE applies a delta with the store's own merge rule. */
const APPLY_DELTA_FUNCTION = 'smart_session_apply_delta';
/** The current time in epoch milliseconds, computed by SQLite. */
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
/** About how long one purge batch may hold the event loop (better-sqlite3 is synchronous). */
const SQLITE_PURGE_BATCH_MS = 5;
/** How long a writer waits for another process's write lock before failing, in ms. */
const BUSY_TIMEOUT_MS = 5000;

/** Opens the file (WAL, busy timeout) as the store's own connection, or adopts the application's Database. */
export async function openSqliteTable(target: ConnectionTarget, options: ResolvedOptions): Promise<SessionTable> {
  if ('connection' in target) return new SqliteSessionTable(target.connection as SqliteDatabaseLike, options.table, false);
  if (!('filename' in target)) throw new Error('a SQLite store needs a file name or a Database');
  const Database = (await importDriver('better-sqlite3')) as SqliteDatabaseConstructor;
  const db = new Database(target.filename);
  // WAL lets readers in other processes proceed while one writes; the busy timeout makes writers queue instead of failing.
  if (!db.memory) db.pragma('journal_mode = WAL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return new SqliteSessionTable(db, options.table, true);
}

interface Statements {
  /** The quoted expiry column and how it holds time. */
  readonly expires: string;
  readonly unit: ExpiryUnit;
  readonly load: SqliteStatementLike;
  readonly version: string;
  readonly bump: string;
  /** `, updated_at = <now>` when the table has that column (tables shared with other programs may not). */
  readonly touchUpdatedAt: string;
  readonly extendExpiry: SqliteStatementLike;
  readonly destroy: SqliteStatementLike;
  readonly all: SqliteStatementLike;
  readonly count: SqliteStatementLike;
  readonly clear: SqliteStatementLike;
}

/** How this dialect writes the n-th parameter. */
const placeholder = (): string => '?';


/** The session table on SQLite. Times are epoch milliseconds (INTEGER). */
export class SqliteSessionTable implements SessionTable {
  readonly dialect = 'sqlite' as const;
  readonly #db: SqliteDatabaseLike;
  readonly #name: TableName;
  readonly #table: string;
  readonly #ownsDatabase: boolean;
  #statements: Statements | undefined;
  readonly #cache = new Map<string, SqliteStatementLike>();

  constructor(db: SqliteDatabaseLike, table: TableName, ownsDatabase: boolean) {
    this.#db = db;
    this.#name = table;
    this.#table = table.schema === undefined ? quoteIdentifier(table.name) : `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
    this.#ownsDatabase = ownsDatabase;
    db.function(APPLY_DELTA_FUNCTION, { deterministic: true }, (stored, encodedDelta) => {
      const delta = deltaFromJson(JSON.parse(String(encodedDelta)) as JsonObject);
      return JSON.stringify(applyDelta(parseStoredSession(stored), delta));
    });
  }

  get #sql(): Statements {
    if (this.#statements === undefined) throw new Error('the table was not inspected');
    return this.#statements;
  }

  async inspect(): Promise<TableInfo | null> {
    const rows = this.#db
      .prepare('SELECT name, type FROM pragma_table_info(?, ?)')
      .all(this.#name.name, this.#name.schema ?? 'main') as Record<string, unknown>[];
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['name']).toLowerCase(), String(row['type']).toLowerCase()]));
    return {
      columns: new Set(types.keys()),
      hasLockVersion: (types.get('lock_version') ?? '').includes('int'),
      dataType: types.get('data') ?? 'text',
      expiry: findExpiryColumn(types, () => false, (type) => type.includes('int')),
    };
  }

  async create(options: CreateTableOptions): Promise<void> {
    const indexName = (suffix: string): string =>
      this.#name.schema === undefined
        ? quoteIdentifier(`${this.#name.name}_${suffix}`)
        : `${quoteIdentifier(this.#name.schema)}.${quoteIdentifier(`${this.#name.name}_${suffix}`)}`;
    const bare = quoteIdentifier(this.#name.name);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS ${this.#table} (
      id TEXT NOT NULL PRIMARY KEY,
      data TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL DEFAULT (${NOW_MS}),
      updated_at INTEGER NOT NULL DEFAULT (${NOW_MS})${options.lockVersion ? ',\n      lock_version INTEGER NOT NULL DEFAULT 0' : ''}${options.userId ? ',\n      user_id TEXT' : ''}
    );
    CREATE INDEX IF NOT EXISTS ${indexName('expires_at_idx')} ON ${bare} (expires_at);
    ${options.userId ? `CREATE INDEX IF NOT EXISTS ${indexName('user_id_idx')} ON ${bare} (user_id);` : ''}`);
  }

  use(info: TableInfo): void {
    const t = this.#table;
    if (info.expiry === undefined) throw new Error('the table has no expiry column');
    const expires = quoteIdentifier(info.expiry.name);
    const version = info.hasLockVersion ? 'lock_version' : 'NULL AS lock_version';
    const bump = info.hasLockVersion ? ', lock_version = lock_version + 1' : '';
    const db = this.#db;
    this.#statements = {
      expires,
      unit: info.expiry.unit,
      load: db.prepare(`SELECT data, ${expires} AS expires_at, ${version} FROM ${t} WHERE id = ? AND ${expires} > ?`),
      version,
      bump,
      touchUpdatedAt: info.columns.has('updated_at') ? `, updated_at = ${NOW_MS}` : '',
      extendExpiry: db.prepare(`UPDATE ${t} SET ${expires} = ? WHERE id = ? AND ${expires} > ? AND ${expires} < ?`),
      destroy: db.prepare(`DELETE FROM ${t} WHERE id = ?`),
      all: db.prepare(`SELECT data FROM ${t} WHERE ${expires} > ?`),
      count: db.prepare(`SELECT COUNT(*) AS n FROM ${t} WHERE ${expires} > ?`),
      clear: db.prepare(`DELETE FROM ${t}`),
    };
  }

  async load(key: string, now: number): Promise<StoredSessionRow | null> {
    const row = this.#sql.load.get(key, this.#at(now)) as Record<string, unknown> | undefined;
    return row === undefined ? null : this.#row(row);
  }

  /** Prepares a statement once and keeps it: the variants (with or without user_id) are few. */
  #prepared(sql: string): SqliteStatementLike {
    let statement = this.#cache.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#cache.set(sql, statement);
    }
    return statement;
  }

  async upsert(key: string, text: string, expiresAt: number, userId: UserIdWrite): Promise<void> {
    const withUser = userId !== undefined;
    const expires = this.#sql.expires;
    const statement = this.#prepared(`INSERT INTO ${this.#table} (id, data, ${expires}${withUser ? ', user_id' : ''})
      VALUES (?, ?, ?${withUser ? ', ?' : ''})
      ON CONFLICT (id) DO UPDATE SET data = excluded.data, ${expires} = excluded.${expires}${this.#sql.touchUpdatedAt}${withUser ? ', user_id = excluded.user_id' : ''}${this.#sql.bump}`);
    if (withUser) statement.run(key, text, this.#at(expiresAt), userId);
    else statement.run(key, text, this.#at(expiresAt));
  }

  async applyDelta(key: string, delta: SessionDelta, expiresAt: number, now: number, userId: UserIdWrite): Promise<boolean> {
    // One UPDATE against the row as it is under the write lock: SQLite's own json_patch and json_set when the
    // delta fits them, else the store's merge registered as an SQL function (same result, more work in JS).
    const plan = planMergePatch(delta);
    let merged: string;
    const params: unknown[] = [];
    if (plan === null) {
      merged = `${APPLY_DELTA_FUNCTION}(data, ?)`;
      params.push(JSON.stringify(deltaToJson(delta)));
    } else {
      merged = 'json_patch(data, ?)';
      params.push(plan.mergePatch);
      if (plan.replacements.length > 0) {
        merged = `json_set(${merged}${', ?, json(?)'.repeat(plan.replacements.length)})`;
        for (const { path, json } of plan.replacements) params.push(path, json);
      }
    }
    params.push(this.#at(expiresAt));
    const setUser = assignUserId(params, userId, placeholder);
    params.push(key, this.#at(now));
    const { expires } = this.#sql;
    const statement = this.#prepared(`UPDATE ${this.#table} SET data = ${merged}, ${expires} = ?${this.#sql.touchUpdatedAt}${setUser}${this.#sql.bump}
      WHERE id = ? AND ${expires} > ?`);
    return statement.run(...params).changes > 0;
  }

  async compareAndSwap(key: string, text: string, expiresAt: number, version: number, now: number, userId: UserIdWrite): Promise<boolean> {
    const params: unknown[] = [text, this.#at(expiresAt)];
    const setUser = assignUserId(params, userId, placeholder);
    params.push(key, version, this.#at(now));
    const { expires } = this.#sql;
    const statement = this.#prepared(`UPDATE ${this.#table} SET data = ?, ${expires} = ?${this.#sql.touchUpdatedAt}${setUser}, lock_version = lock_version + 1
      WHERE id = ? AND lock_version = ? AND ${expires} > ?`);
    return statement.run(...params).changes > 0;
  }

  async updateLocked(key: string, now: number, merge: (row: StoredSessionRow) => LockedWrite, expiresAt: number): Promise<boolean> {
    const sql = this.#sql;
    // BEGIN IMMEDIATE takes the write lock up front, so the row cannot change between read and write.
    return this.#db
      .transaction(() => {
        const row = sql.load.get(key, this.#at(now)) as Record<string, unknown> | undefined;
        if (row === undefined) return false;
        const write = merge(this.#row(row));
        const params: unknown[] = [write.text, this.#at(expiresAt)];
        const setUser = assignUserId(params, write.userId, placeholder);
        params.push(key);
        this.#prepared(`UPDATE ${this.#table} SET data = ?, ${sql.expires} = ?${sql.touchUpdatedAt}${setUser}${sql.bump} WHERE id = ?`).run(...params);
        return true;
      })
      .immediate();
  }

  async destroyByUser(userId: string): Promise<number> {
    return this.#prepared(`DELETE FROM ${this.#table} WHERE user_id = ?`).run(userId).changes;
  }

  async listByUser(userId: string, now: number): Promise<StoredSessionRow[]> {
    const { expires, version } = this.#sql;
    const rows = this.#prepared(`SELECT data, ${expires} AS expires_at, ${version} FROM ${this.#table} WHERE user_id = ? AND ${expires} > ?`).all(userId, this.#at(now));
    return (rows as Record<string, unknown>[]).map((row) => this.#row(row));
  }

  async extendExpiry(key: string, expiresAt: number, movedBefore: number, now: number): Promise<void> {
    this.#sql.extendExpiry.run(this.#at(expiresAt), key, this.#at(now), this.#at(movedBefore));
  }

  async destroy(key: string): Promise<void> {
    this.#sql.destroy.run(key);
  }

  async all(now: number): Promise<(string | null)[]> {
    return (this.#sql.all.all(this.#at(now)) as Record<string, unknown>[]).map((row) => (typeof row['data'] === 'string' ? row['data'] : null));
  }

  async count(now: number): Promise<number> {
    const row = this.#sql.count.get(this.#at(now)) as Record<string, unknown> | undefined;
    return Number(row?.['n'] ?? 0);
  }

  async clear(): Promise<void> {
    this.#sql.clear.run();
  }

  /** An epoch-ms instant as the expiry column takes it. */
  #at(ms: number): string | number {
    return expiryToDatabase(ms, this.#sql.unit);
  }

  #row(row: Record<string, unknown>): StoredSessionRow {
    return storedRow(row, typeof row['data'] === 'string' ? row['data'] : null, this.#sql.unit);
  }


  async purge(now: number, batchSize: number, onProgress?: (removed: number) => void): Promise<number | null> {
    const lock = this.#purgeLock();
    if (!lock.acquire()) return null;
    try {
      const { expires } = this.#sql;
      const batch = this.#prepared(`DELETE FROM ${this.#table} WHERE id IN (SELECT id FROM ${this.#table} WHERE ${expires} <= ? LIMIT ?)`);
      // Each batch is its own short write transaction (other processes' writes slip in between), sized to block
      // this process's event loop for a few milliseconds at most.
      return await deleteInBatches(async (size) => batch.run(this.#at(now), size).changes, batchSize, onProgress, {
        between: () => lock.renew(),
        budgetMs: SQLITE_PURGE_BATCH_MS,
      });
    } finally {
      lock.release();
    }
  }

  /**
   * A lease row in a small lock table beside the sessions: SQLite has no
   * named locks, and holding its write lock for a whole purge would stall
   * every other writer. A lease left by a crashed process lapses by itself.
   */
  #purgeLock(): { acquire(): boolean; renew(): void; release(): void } {
    const schema = this.#name.schema === undefined ? '' : `${quoteIdentifier(this.#name.schema)}.`;
    const locks = `${schema}${quoteIdentifier('smart_session_store_locks')}`;
    this.#db.exec(`CREATE TABLE IF NOT EXISTS ${locks} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL)`);
    const name = purgeLockName(this.#name);
    const holder = `${process.pid}:${Math.random().toString(36).slice(2)}`;
    const leaseMs = 60_000;
    let renewed = Date.now();
    return {
      acquire: () =>
        this.#db
          .transaction(() => {
            this.#prepared(`DELETE FROM ${locks} WHERE name = ? AND until < ?`).run(name, Date.now());
            return this.#prepared(`INSERT OR IGNORE INTO ${locks} (name, holder, until) VALUES (?, ?, ?)`).run(name, holder, Date.now() + leaseMs).changes === 1;
          })
          .immediate(),
      renew: () => {
        // A write (and a sync to disk) of its own: only once half the lease has gone by.
        if (Date.now() - renewed < leaseMs / 2) return;
        renewed = Date.now();
        this.#prepared(`UPDATE ${locks} SET until = ? WHERE name = ? AND holder = ?`).run(renewed + leaseMs, name, holder);
      },
      release: () => {
        this.#prepared(`DELETE FROM ${locks} WHERE name = ? AND holder = ?`).run(name, holder);
      },
    };
  }

  async stats(now: number): Promise<{ live: number; expired: number }> {
    const { expires } = this.#sql;
    const row = this.#prepared(`SELECT COUNT(*) AS total, COALESCE(SUM(${expires} > ?), 0) AS live FROM ${this.#table}`).get(this.#at(now)) as
      | Record<string, unknown>
      | undefined;
    const total = Number(row?.['total'] ?? 0);
    const live = Number(row?.['live'] ?? 0);
    return { live, expired: total - live };
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  isConnectionError(): boolean {
    // An embedded database has no connection to lose.
    return false;
  }

  isConnectFailure(): boolean {
    return false;
  }

  isTransientConflict(error: unknown): boolean {
    // Another process held the write lock for longer than the busy timeout.
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
  }

  async close(): Promise<void> {
    if (this.#ownsDatabase) this.#db.close();
  }
}
