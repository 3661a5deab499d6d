/**
 * PostgreSQL over `pg`: a structural subset of its Pool, so the library has no
 * hard dependency on the driver.
 */
import type { ConnectionTarget, ResolvedOptions } from '../../core/options.js';
import type { SessionDelta } from '../../core/delta.js';
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
import {
  assignUserId,
  ConnectionLender,
  deleteInBatches,
  importDriver,
  isConnectFailure,
  isNetworkError,
  markConnectFailure,
  quoteIdentifier,
  Serial,
} from '../driver.js';
import { deltaExpression } from './delta-sql.js';

/** What the store reads from a `pg` query result. */
export interface PgQueryResultLike {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

/** The part of a `pg` client the store uses. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
}

/** A client checked out of a `pg` pool. */
export interface PgPoolClientLike extends PgQueryable {
  release(destroy?: boolean | Error): void;
  on?(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of a `pg` Pool the store uses. */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgPoolClientLike>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPoolLike;
}

/** pg's own default: a pooled connection idle this long is closed. */
const IDLE_TIMEOUT_MS = 10_000;

/** SQLSTATE classes and messages that mean the connection, not the statement, failed. */
const CONNECTION_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/** True when a `pg` error means the connection was lost or could not be made. */
export function isPostgresConnectionError(error: unknown): boolean {
  if (isNetworkError(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_SQLSTATES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|terminating connection|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended/i.test(message);
}

/**
 * A single `pg` Client the application handed over, shaped as a pool: calls
 * take turns, so a transaction never interleaves with another call.
 */
function clientAsPool(client: PgQueryable): PgPoolLike {
  const serial = new Serial();
  return {
    query: (text, values) => serial.run(() => client.query(text, values)),
    connect: async () => {
      const unlock = await serial.lock();
      return { query: (text, values) => client.query(text, values), release: () => unlock() };
    },
    end: async () => undefined,
    on: () => undefined,
  };
}

/** Opens a pool of the store's own, or adopts the application's pool or client. */
export async function openPostgresTable(target: ConnectionTarget, options: ResolvedOptions): Promise<SessionTable> {
  if ('connection' in target) {
    const given = target.connection as PgPoolLike;
    const isPool = 'totalCount' in given && typeof given.connect === 'function';
    return new PostgresSessionTable(isPool ? given : clientAsPool(given), options, false);
  }
  const pg = (await importDriver('pg')) as PgModule;
  const where = 'url' in target ? { connectionString: target.url } : 'parameters' in target ? { ...target.parameters } : undefined;
  if (where === undefined) throw new Error('a PostgreSQL store needs a URL, connection parameters or a connection');
  const pool = new pg.Pool({
    ...where,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // The pool closes a connection before it has idled past connectionCheckThreshold, so none needs a check
    // before use and single statements can take pg's own path (see PostgresSessionTable#query).
    idleTimeoutMillis: Math.min(options.connectionCheckMs || IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS),
    ...(options.charset.toLowerCase().startsWith('utf8') ? {} : { client_encoding: options.charset }),
  });
  // A pooled connection that dies while idle is reported here; without a listener it would crash the process.
  pool.on('error', () => undefined);
  return new PostgresSessionTable(pool, options, true);
}

function qualified(table: TableName): string {
  return table.schema === undefined ? quoteIdentifier(table.name) : `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
}

/** Statements fixed once the table's shape is known. */
interface Statements {
  /** The quoted expiry column and how it holds time. */
  readonly expires: string;
  readonly unit: ExpiryUnit;
  readonly load: string;
  readonly lockRow: string;
  readonly version: string;
  readonly cast: string;
  /** How the data column is read as jsonb, and how a jsonb expression is written back to it. */
  readonly dataAsJsonb: string;
  readonly jsonbAsData: (expression: string) => string;
  readonly bumpVersion: string;
  /** `, updated_at = now()` when the table has that column. */
  readonly touchUpdatedAt: string;
  /** The same inside ON CONFLICT, where the existing row goes by its alias. */
  readonly bumpVersionOnConflict: string;
}

/** The session table on PostgreSQL. */
export class PostgresSessionTable implements SessionTable {
  readonly dialect = 'postgres' as const;
  readonly #pool: PgPoolLike;
  readonly #table: string;
  readonly #name: TableName;
  readonly #ownsPool: boolean;
  readonly #lender: ConnectionLender<PgPoolClientLike>;
  /** Single statements go straight to the pool: it is ours, and closes connections before they need a check. */
  readonly #direct: boolean;
  #statements: Statements | undefined;

  constructor(pool: PgPoolLike, options: ResolvedOptions, ownsPool: boolean) {
    this.#pool = pool;
    this.#direct = ownsPool && options.connectionCheckMs > 0;
    this.#name = options.table;
    this.#table = qualified(options.table);
    this.#ownsPool = ownsPool;
    // Clients that already carry our error listener: pooled clients are handed out many times.
    const listening = new WeakSet<PgPoolClientLike>();
    this.#lender = new ConnectionLender<PgPoolClientLike>(
      {
        acquire: async () => {
          const client = await pool.connect();
          if (!listening.has(client)) {
            // A checked-out client whose connection drops emits 'error'; unheard, that would crash the process.
            // The failure reaches the caller through its query, and the client is destroyed when given back.
            client.on?.('error', () => undefined);
            listening.add(client);
          }
          return client;
        },
        ping: (client) => client.query('SELECT 1'),
        release: (client, broken) => client.release(broken),
        isConnectionError: isPostgresConnectionError,
      },
      options.connectionCheckMs,
      options.poolSize + 1,
    );
  }

  /** One statement on a live client. */
  #query(text: string, values?: unknown[]): Promise<PgQueryResultLike> {
    if (this.#direct) return queryOrMark(() => this.#pool.query(text, values));
    return this.#lender.use((client) => client.query(text, values));
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async purge(now: number, batchSize: number, onProgress?: (removed: number) => void): Promise<number | null> {
    const lock = purgeLockName(this.#name);
    return this.#lender.use(async (client) => {
      // A session-level advisory lock: one purge of this table at a time, across every process.
      const locked = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [lock]);
      if (locked.rows[0]?.['locked'] !== true) return null;
      try {
        const { expires } = this.#sql;
        // SKIP LOCKED: rows a save holds are left for the next batch instead of waited for.
        const batch = `DELETE FROM ${this.#table} WHERE id IN
           (SELECT id FROM ${this.#table} WHERE ${expires} <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) AND ${expires} <= $1`;
        return await deleteInBatches(async (size) => (await client.query(batch, [this.#at(now), size])).rowCount ?? 0, batchSize, onProgress);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]);
      }
    });
  }

  async stats(now: number): Promise<{ live: number; expired: number }> {
    const { expires } = this.#sql;
    const result = await this.#query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE ${expires} > $1)::int AS live FROM ${this.#table}`,
      [this.#at(now)],
    );
    const total = Number(result.rows[0]?.['total'] ?? 0);
    const live = Number(result.rows[0]?.['live'] ?? 0);
    return { live, expired: total - live };
  }

  isTransientConflict(error: unknown): boolean {
    // deadlock_detected, serialization_failure, lock_not_available
    const code = (error as { code?: unknown } | null)?.code;
    return code === '40P01' || code === '40001' || code === '55P03';
  }

  isConnectFailure(error: unknown): boolean {
    return isConnectFailure(error);
  }

  isConnectionError(error: unknown): boolean {
    return isPostgresConnectionError(error);
  }

  get #sql(): Statements {
    if (this.#statements === undefined) throw new Error('the table was not inspected');
    return this.#statements;
  }

  async inspect(): Promise<TableInfo | null> {
    const result = await this.#query(
      `SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2`,
      [this.#name.schema ?? null, this.#name.name],
    );
    if (result.rows.length === 0) return null;
    const types = new Map(result.rows.map((row) => [String(row['column_name']).toLowerCase(), String(row['data_type'])]));
    return {
      columns: new Set(types.keys()),
      hasLockVersion: ['integer', 'bigint', 'smallint'].includes(types.get('lock_version') ?? ''),
      dataType: types.get('data') ?? 'jsonb',
      expiry: findExpiryColumn(types, (type) => type.startsWith('timestamp'), (type) => ['integer', 'bigint', 'smallint', 'numeric'].includes(type)),
    };
  }

  async create(options: CreateTableOptions): Promise<void> {
    await this.#query(`CREATE TABLE IF NOT EXISTS ${this.#table} (
      id text PRIMARY KEY,
      data jsonb NOT NULL,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()${options.lockVersion ? ',\n      lock_version integer NOT NULL DEFAULT 0' : ''}${options.userId ? ',\n      user_id text' : ''}
    )`);
    await this.#query(`CREATE INDEX IF NOT EXISTS ${quoteIdentifier(`${this.#name.name}_expires_at_idx`)} ON ${this.#table} (expires_at)`);
    if (options.userId) {
      await this.#query(`CREATE INDEX IF NOT EXISTS ${quoteIdentifier(`${this.#name.name}_user_id_idx`)} ON ${this.#table} (user_id)`);
    }
  }

  use(info: TableInfo): void {
    const { dataType } = info;
    const t = this.#table;
    if (info.expiry === undefined) throw new Error('the table has no expiry column');
    const expires = quoteIdentifier(info.expiry.name);
    const version = info.hasLockVersion ? 'lock_version' : 'NULL::integer AS lock_version';
    const bumpVersion = info.hasLockVersion ? ', lock_version = lock_version + 1' : '';
    // Tables shared with other programs may lack updated_at; it is kept only where it exists.
    const touchUpdatedAt = info.columns.has('updated_at') ? ', updated_at = now()' : '';
    // jsonb is the native shape; json and text columns (tables shared with other readers) are converted on the way.
    const cast = dataType === 'jsonb' ? '' : dataType === 'json' ? '::json' : '::text';
    const dataAsJsonb = dataType === 'jsonb' ? 'data' : 'data::jsonb';
    this.#statements = {
      expires,
      unit: info.expiry.unit,
      load: `SELECT data::text AS data, ${expires} AS expires_at, ${version} FROM ${t} WHERE id = $1 AND ${expires} > $2`,
      lockRow: `SELECT data::text AS data, ${expires} AS expires_at, ${version} FROM ${t} WHERE id = $1 AND ${expires} > $2 FOR UPDATE`,
      version,
      cast,
      dataAsJsonb,
      jsonbAsData: (expression) => (cast === '' ? expression : `(${expression})${cast}`),
      bumpVersion,
      touchUpdatedAt,
      bumpVersionOnConflict: info.hasLockVersion ? ', lock_version = s.lock_version + 1' : '',
    };
  }

  async load(key: string, now: number): Promise<StoredSessionRow | null> {
    const result = await this.#query(this.#sql.load, [key, this.#at(now)]);
    const row = result.rows[0];
    return row === undefined ? null : this.#row(row);
  }

  async upsert(key: string, text: string, expiresAt: number, userId: UserIdWrite): Promise<void> {
    const { cast, bumpVersionOnConflict, touchUpdatedAt } = this.#sql;
    const params: unknown[] = [key, text, this.#at(expiresAt)];
    const withUser = userId !== undefined;
    if (withUser) params.push(userId);
    await this.#query(
      `INSERT INTO ${this.#table} AS s (id, data, ${this.#sql.expires}${withUser ? ', user_id' : ''}) VALUES ($1, $2::jsonb${cast}, $3${withUser ? ', $4' : ''})
       ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, ${this.#sql.expires} = EXCLUDED.${this.#sql.expires}${touchUpdatedAt}` +
        `${withUser ? ', user_id = EXCLUDED.user_id' : ''}${bumpVersionOnConflict}`,
      params,
    );
  }

  async applyDelta(key: string, delta: SessionDelta, expiresAt: number, now: number, userId: UserIdWrite): Promise<boolean> {
    const sql = this.#sql;
    const params: unknown[] = [key, this.#at(expiresAt), this.#at(now)];
    const setUser = assignUserId(params, userId, placeholder);
    const merged = sql.jsonbAsData(deltaExpression(delta, sql.dataAsJsonb, params));
    const result = await this.#query(
      `UPDATE ${this.#table} SET data = ${merged}, ${sql.expires} = $2${sql.touchUpdatedAt}${setUser}${sql.bumpVersion} WHERE id = $1 AND ${sql.expires} > $3`,
      params,
    );
    return (result.rowCount ?? 0) > 0;
  }

  async compareAndSwap(key: string, text: string, expiresAt: number, version: number, now: number, userId: UserIdWrite): Promise<boolean> {
    const params: unknown[] = [key, text, this.#at(expiresAt), version, this.#at(now)];
    const setUser = assignUserId(params, userId, placeholder);
    const result = await this.#query(
      `UPDATE ${this.#table} SET data = $2::jsonb${this.#sql.cast}, ${this.#sql.expires} = $3${this.#sql.touchUpdatedAt}${setUser}, lock_version = lock_version + 1
        WHERE id = $1 AND lock_version = $4 AND ${this.#sql.expires} > $5`,
      params,
    );
    return (result.rowCount ?? 0) > 0;
  }

  async updateLocked(key: string, now: number, merge: (row: StoredSessionRow) => LockedWrite, expiresAt: number): Promise<boolean> {
    return this.#lender.use(async (client, broken) => {
      await client.query('BEGIN');
      try {
        const locked = await client.query(this.#sql.lockRow, [key, this.#at(now)]);
        const row = locked.rows[0];
        if (row === undefined) {
          await client.query('ROLLBACK');
          return false;
        }
        const write = merge(this.#row(row));
        const params: unknown[] = [key, write.text, this.#at(expiresAt)];
        const setUser = assignUserId(params, write.userId, placeholder);
        await client.query(
          `UPDATE ${this.#table} SET data = $2::jsonb${this.#sql.cast}, ${this.#sql.expires} = $3${this.#sql.touchUpdatedAt}${setUser}${this.#sql.bumpVersion} WHERE id = $1`,
          params,
        );
        await client.query('COMMIT');
        return true;
      } catch (error) {
        // A connection that cannot roll back is not returned to the pool.
        await client.query('ROLLBACK').catch((rollbackError: unknown) => broken(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))));
        throw error;
      }
    });
  }

  async destroyByUser(userId: string): Promise<number> {
    const result = await this.#query(`DELETE FROM ${this.#table} WHERE user_id = $1`, [userId]);
    return result.rowCount ?? 0;
  }

  async listByUser(userId: string, now: number): Promise<StoredSessionRow[]> {
    const result = await this.#query(
      `SELECT data::text AS data, ${this.#sql.expires} AS expires_at, ${this.#sql.version} FROM ${this.#table} WHERE user_id = $1 AND ${this.#sql.expires} > $2`,
      [userId, this.#at(now)],
    );
    return result.rows.map((row) => this.#row(row));
  }

  async extendExpiry(key: string, expiresAt: number, movedBefore: number, now: number): Promise<void> {
    await this.#query(`UPDATE ${this.#table} SET ${this.#sql.expires} = $2 WHERE id = $1 AND ${this.#sql.expires} > $3 AND ${this.#sql.expires} < $4`, [
      key,
      this.#at(expiresAt),
      this.#at(now),
      this.#at(movedBefore),
    ]);
  }

  async destroy(key: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table} WHERE id = $1`, [key]);
  }

  async all(now: number): Promise<(string | null)[]> {
    const result = await this.#query(`SELECT data::text AS data FROM ${this.#table} WHERE ${this.#sql.expires} > $1`, [this.#at(now)]);
    return result.rows.map((row) => (typeof row['data'] === 'string' ? row['data'] : null));
  }

  async count(now: number): Promise<number> {
    const result = await this.#query(`SELECT count(*)::int AS n FROM ${this.#table} WHERE ${this.#sql.expires} > $1`, [this.#at(now)]);
    return Number(result.rows[0]?.['n'] ?? 0);
  }

  async clear(): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table}`);
  }

  /** An epoch-ms instant as the expiry column takes it. */
  #at(ms: number): string | number {
    return expiryToDatabase(ms, this.#sql.unit);
  }

  #row(row: Record<string, unknown>): StoredSessionRow {
    return storedRow(row, typeof row['data'] === 'string' ? row['data'] : null, this.#sql.unit);
  }


  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}

/**
 * A statement through pg's `pool.query`, which opens a connection when none
 * is idle: an error from that opening is marked as a connect failure (the
 * database is unreachable), like the lender does for its own checkouts.
 */
async function queryOrMark(run: () => Promise<PgQueryResultLike>): Promise<PgQueryResultLike> {
  try {
    return await run();
  } catch (error) {
    if (isOpeningError(error)) markConnectFailure(error);
    throw error;
  }
}

/** Errors that pg raises while opening a connection, as opposed to losing one. */
function isOpeningError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN') return true;
  const message = error instanceof Error ? error.message : '';
  return /timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i.test(message);
}

/** How this dialect writes the n-th parameter. */
const placeholder = (index: number): string => `$${index}`;

