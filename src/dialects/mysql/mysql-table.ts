/**
 * MySQL and MariaDB over `mysql2/promise`: a structural subset of its pool, so
 * the library has no hard dependency on the driver.
 */
import { applyDelta, type SessionDelta } from '../../core/delta.js';
import { parseStoredSession } from '../../core/json.js';
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
import { createHash } from 'node:crypto';
import { assignUserId, ConnectionLender, deleteInBatches, importDriver, isConnectFailure, isNetworkError, Serial } from '../driver.js';
import { planMergePatch } from '../merge-patch.js';

/** What `query` resolves to in `mysql2/promise`: rows for a SELECT, a header with `affectedRows` otherwise. */
export type MysqlQueryResult = [unknown, unknown];

/** The part of a `mysql2/promise` connection or pool the store uses. */
export interface MysqlQueryable {
  query(sql: string, values?: unknown[]): Promise<MysqlQueryResult>;
}

/** A connection checked out of a `mysql2/promise` pool. */
export interface MysqlPoolConnectionLike extends MysqlQueryable {
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  ping(): Promise<void>;
  release(): void;
  destroy(): void;
}

/** The part of a `mysql2/promise` pool the store uses. */
export interface MysqlPoolLike extends MysqlQueryable {
  getConnection(): Promise<MysqlPoolConnectionLike>;
  end(): Promise<void>;
}

interface Mysql2PromiseModule {
  createPool(config: Record<string, unknown>): MysqlPoolLike;
}

/** mysql2 error codes that mean the connection, not the statement, failed. */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CONNECTION_KILLED', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_NET_READ_ERROR',
]);

/** True when a mysql2 error means the connection was lost or could not be made. */
export function isMysqlConnectionError(error: unknown): boolean {
  if (isNetworkError(error)) return true;
  const { code, fatal } = (error ?? {}) as { code?: unknown; fatal?: unknown };
  if (fatal === true) return true;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /closed state|Connection lost|connect ETIMEDOUT|Pool is closed/i.test(message);
}

/** A single connection the application handed over, shaped as a pool whose callers take turns. */
function connectionAsPool(connection: MysqlPoolConnectionLike): MysqlPoolLike {
  const serial = new Serial();
  return {
    query: (sql, values) => serial.run(() => connection.query(sql, values)),
    getConnection: async () => {
      const unlock = await serial.lock();
      return {
        query: (sql, values) => connection.query(sql, values),
        beginTransaction: () => connection.beginTransaction(),
        commit: () => connection.commit(),
        rollback: () => connection.rollback(),
        ping: () => connection.ping(),
        release: unlock,
        destroy: unlock,
      };
    },
    end: async () => undefined,
  };
}

/** Opens a pool of the store's own, in utf8mb4 so 4-byte characters round-trip; or adopts the application's pool or connection. */
export async function openMysqlTable(target: ConnectionTarget, options: ResolvedOptions): Promise<SessionTable> {
  if ('connection' in target) {
    // A callback-style pool or connection carries its promise twin.
    const given = target.connection as { promise?: () => unknown };
    const promised = (typeof given.promise === 'function' ? given.promise() : given) as MysqlPoolLike | MysqlPoolConnectionLike;
    return new MysqlSessionTable('getConnection' in promised ? promised : connectionAsPool(promised), options, false);
  }
  const mysql = (await importDriver('mysql2/promise')) as Mysql2PromiseModule;
  const where = 'url' in target ? { uri: target.url } : 'parameters' in target ? { ...target.parameters } : undefined;
  if (where === undefined) throw new Error('a MySQL store needs a URL, connection parameters or a connection');
  const pool = mysql.createPool({
    ...where,
    connectionLimit: options.poolSize,
    connectTimeout: options.connectTimeoutMs,
    charset: /^utf8(mb4)?$/i.test(options.charset) ? 'utf8mb4_unicode_ci' : options.charset,
    supportBigNumbers: true,
    enableKeepAlive: true,
  });
  return new MysqlSessionTable(pool, options, true);
}

function quote(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

function affectedRows(result: MysqlQueryResult): number {
  const header = result[0] as { affectedRows?: unknown };
  return typeof header.affectedRows === 'number' ? header.affectedRows : 0;
}

function rowsOf(result: MysqlQueryResult): Record<string, unknown>[] {
  return Array.isArray(result[0]) ? (result[0] as Record<string, unknown>[]) : [];
}

/** The data column as text, whatever the driver made of it (MySQL's JSON type arrives parsed). */
function dataText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return JSON.stringify(value);
}

/** How this dialect writes the n-th parameter. */
const placeholder = (): string => '?';


interface Statements {
  /** The quoted expiry column and how it holds time. */
  readonly expires: string;
  readonly unit: ExpiryUnit;
  readonly load: string;
  readonly lockRow: string;
  readonly version: string;
  readonly bumpVersion: string;
}

/** The session table on MySQL or MariaDB. Expiry is stored as epoch milliseconds (BIGINT): no time zone to get wrong. */
export class MysqlSessionTable implements SessionTable {
  readonly dialect = 'mysql' as const;
  readonly #pool: MysqlPoolLike;
  readonly #name: TableName;
  readonly #table: string;
  readonly #ownsPool: boolean;
  readonly #lender: ConnectionLender<MysqlPoolConnectionLike>;
  #statements: Statements | undefined;

  constructor(pool: MysqlPoolLike, options: ResolvedOptions, ownsPool: boolean) {
    const table = options.table;
    this.#pool = pool;
    this.#name = table;
    this.#table = table.schema === undefined ? quote(table.name) : `${quote(table.schema)}.${quote(table.name)}`;
    this.#ownsPool = ownsPool;
    this.#lender = new ConnectionLender<MysqlPoolConnectionLike>(
      {
        acquire: () => pool.getConnection(),
        ping: (connection) => connection.ping(),
        release: (connection, broken) => (broken === undefined ? connection.release() : connection.destroy()),
        // mysql2 wraps the same pooled connection in a new promise object on every checkout.
        identity: (connection) => (connection as { connection?: object }).connection ?? connection,
        isConnectionError: isMysqlConnectionError,
      },
      options.connectionCheckMs,
      options.poolSize + 1,
    );
  }

  /** One statement on a live connection. */
  #query(sql: string, values?: unknown[]): Promise<MysqlQueryResult> {
    return this.#lender.use((connection) => connection.query(sql, values));
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async purge(now: number, batchSize: number, onProgress?: (removed: number) => void): Promise<number | null> {
    // GET_LOCK names are at most 64 characters: the table's name goes in as a digest.
    const lock = `sss-purge:${createHash('sha1').update(purgeLockName(this.#name)).digest('hex')}`;
    return this.#lender.use(async (connection) => {
      // A named lock, held by this connection: one purge of this table at a time, across every process.
      const locked = rowsOf(await connection.query('SELECT GET_LOCK(?, 0) AS locked', [lock]))[0];
      if (Number(locked?.['locked']) !== 1) return null;
      try {
        const { expires } = this.#sql;
        const cutoff = this.#at(now);
        // Expired ids first, read without locks; then a delete by primary key. A ranged DELETE ... LIMIT may scan
        // (and lock) live rows too, and deadlock with saves holding them.
        return await deleteInBatches(
          async (size) => {
            const ids = rowsOf(await connection.query(`SELECT id FROM ${this.#table} WHERE ${expires} <= ? LIMIT ?`, [cutoff, size])).map((row) => row['id']);
            if (ids.length === 0) return 0;
            await connection.query(`DELETE FROM ${this.#table} WHERE id IN (?) AND ${expires} <= ?`, [ids, cutoff]);
            return ids.length;
          },
          batchSize,
          onProgress,
        );
      } finally {
        await connection.query('SELECT RELEASE_LOCK(?)', [lock]);
      }
    });
  }

  async stats(now: number): Promise<{ live: number; expired: number }> {
    const row = rowsOf(
      await this.#query(`SELECT COUNT(*) AS total, COALESCE(SUM(${this.#sql.expires} > ?), 0) AS live FROM ${this.#table}`, [this.#at(now)]),
    )[0];
    const total = Number(row?.['total'] ?? 0);
    const live = Number(row?.['live'] ?? 0);
    return { live, expired: total - live };
  }

  isTransientConflict(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
  }

  isConnectFailure(error: unknown): boolean {
    return isConnectFailure(error);
  }

  isConnectionError(error: unknown): boolean {
    return isMysqlConnectionError(error);
  }

  get #sql(): Statements {
    if (this.#statements === undefined) throw new Error('the table was not inspected');
    return this.#statements;
  }

  async inspect(): Promise<TableInfo | null> {
    const rows = rowsOf(
      await this.#query(
        `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_OCTET_LENGTH AS capacity FROM information_schema.COLUMNS
          WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`,
        [this.#name.schema ?? null, this.#name.name],
      ),
    );
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['name']).toLowerCase(), String(row['type']).toLowerCase()]));
    const column = Number(rows.find((row) => String(row['name']).toLowerCase() === 'data')?.['capacity']);
    const packet = Number(rowsOf(await this.#query('SELECT @@max_allowed_packet AS packet'))[0]?.['packet']);
    // The whole statement travels in one packet, the text escaped (a quote becomes two bytes): half, less room for the rest.
    const perStatement = Number.isFinite(packet) && packet > 0 ? Math.floor((packet - 65_536) / 2) : Number.POSITIVE_INFINITY;
    const columnBytes = Number.isFinite(column) && column > 0 ? column : Number.POSITIVE_INFINITY;
    return {
      // A TEXT column holds 64 KiB: the store refuses larger sessions rather than let the server refuse or cut them.
      ...(columnBytes <= perStatement
        ? columnBytes < Number.POSITIVE_INFINITY ? { dataCapacity: { bytes: columnBytes, limitedBy: 'the data column' } } : {}
        : { dataCapacity: { bytes: perStatement, limitedBy: `the server's max_allowed_packet (${packet} bytes; raise it to store more)` } }),
      columns: new Set(types.keys()),
      hasLockVersion: ['int', 'bigint', 'smallint', 'mediumint', 'tinyint'].includes(types.get('lock_version') ?? ''),
      dataType: types.get('data') ?? 'longtext',
      // DATETIME and TIMESTAMP depend on the session time zone: only integer expiry columns are understood.
      expiry: findExpiryColumn(types, () => false, (type) => ['int', 'bigint', 'mediumint', 'decimal'].includes(type)),
    };
  }

  async create(options: CreateTableOptions): Promise<void> {
    // Binary collation on id: session ids (and their hashes) are case-sensitive.
    await this.#query(`CREATE TABLE IF NOT EXISTS ${this.#table} (
      id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      expires_at BIGINT NOT NULL,
      created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
      updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),${options.lockVersion ? '\n      lock_version INT NOT NULL DEFAULT 0,' : ''}${options.userId ? '\n      user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,' : ''}
      PRIMARY KEY (id),
      KEY ${quote(`${this.#name.name}_expires_at_idx`)} (expires_at)${options.userId ? `,\n      KEY ${quote(`${this.#name.name}_user_id_idx`)} (user_id)` : ''}
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
  }

  use(info: TableInfo): void {
    const t = this.#table;
    if (info.expiry === undefined) throw new Error('the table has no expiry column');
    const expires = quote(info.expiry.name);
    const version = info.hasLockVersion ? 'lock_version' : 'NULL AS lock_version';
    const bumpVersion = info.hasLockVersion ? ', lock_version = lock_version + 1' : '';
    this.#statements = {
      expires,
      unit: info.expiry.unit,
      load: `SELECT data, ${expires} AS expires_at, ${version} FROM ${t} WHERE id = ? AND ${expires} > ?`,
      lockRow: `SELECT data, ${expires} AS expires_at, ${version} FROM ${t} WHERE id = ? AND ${expires} > ? FOR UPDATE`,
      version,
      bumpVersion,
    };
  }

  async load(key: string, now: number): Promise<StoredSessionRow | null> {
    const row = rowsOf(await this.#query(this.#sql.load, [key, this.#at(now)]))[0];
    return row === undefined ? null : this.#row(row);
  }

  async upsert(key: string, text: string, expiresAt: number, userId: UserIdWrite): Promise<void> {
    const withUser = userId !== undefined;
    await this.#query(
      `INSERT INTO ${this.#table} (id, data, ${this.#sql.expires}${withUser ? ', user_id' : ''}) VALUES (?, ?, ?${withUser ? ', ?' : ''})
        ON DUPLICATE KEY UPDATE data = VALUES(data), ${this.#sql.expires} = VALUES(${this.#sql.expires})${withUser ? ', user_id = VALUES(user_id)' : ''}${this.#sql.bumpVersion}`,
      withUser ? [key, text, this.#at(expiresAt), userId] : [key, text, this.#at(expiresAt)],
    );
  }

  async applyDelta(key: string, delta: SessionDelta, expiresAt: number, now: number, userId: UserIdWrite): Promise<boolean> {
    const plan = planMergePatch(delta);
    if (plan === null) {
      // A key the path syntax cannot carry: same result, reached under the row lock instead.
      return this.updateLocked(key, now, (row) => ({ text: JSON.stringify(applyDelta(parseStoredSession(row.text), delta)), userId }), expiresAt);
    }
    const params: unknown[] = [plan.mergePatch];
    let merged = 'JSON_MERGE_PATCH(data, ?)';
    if (plan.replacements.length > 0) {
      merged = `JSON_SET(${merged}${plan.replacements.map(() => ", ?, JSON_EXTRACT(?, '$')").join('')})`;
      for (const { path, json } of plan.replacements) params.push(path, json);
    }
    params.push(this.#at(expiresAt));
    const setUser = assignUserId(params, userId, placeholder);
    params.push(key, this.#at(now));
    const result = await this.#query(
      `UPDATE ${this.#table} SET data = ${merged}, ${this.#sql.expires} = ?${setUser}${this.#sql.bumpVersion} WHERE id = ? AND ${this.#sql.expires} > ?`,
      params,
    );
    return affectedRows(result) > 0;
  }

  async compareAndSwap(key: string, text: string, expiresAt: number, version: number, now: number, userId: UserIdWrite): Promise<boolean> {
    const params: unknown[] = [text, this.#at(expiresAt)];
    const setUser = assignUserId(params, userId, placeholder);
    params.push(key, version, this.#at(now));
    const result = await this.#query(
      `UPDATE ${this.#table} SET data = ?, ${this.#sql.expires} = ?${setUser}, lock_version = lock_version + 1
        WHERE id = ? AND lock_version = ? AND ${this.#sql.expires} > ?`,
      params,
    );
    return affectedRows(result) > 0;
  }

  async updateLocked(key: string, now: number, merge: (row: StoredSessionRow) => LockedWrite, expiresAt: number): Promise<boolean> {
    return this.#lender.use(async (connection, broken) => {
      await connection.beginTransaction();
      try {
        const row = rowsOf(await connection.query(this.#sql.lockRow, [key, this.#at(now)]))[0];
        if (row === undefined) {
          await connection.rollback();
          return false;
        }
        const write = merge(this.#row(row));
        const params: unknown[] = [write.text, this.#at(expiresAt)];
        const setUser = assignUserId(params, write.userId, placeholder);
        params.push(key);
        await connection.query(`UPDATE ${this.#table} SET data = ?, ${this.#sql.expires} = ?${setUser}${this.#sql.bumpVersion} WHERE id = ?`, params);
        await connection.commit();
        return true;
      } catch (error) {
        // A connection that cannot roll back is not returned to the pool.
        await connection.rollback().catch((rollbackError: unknown) => broken(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))));
        throw error;
      }
    });
  }

  async destroyByUser(userId: string): Promise<number> {
    return affectedRows(await this.#query(`DELETE FROM ${this.#table} WHERE user_id = ?`, [userId]));
  }

  async listByUser(userId: string, now: number): Promise<StoredSessionRow[]> {
    const rows = rowsOf(
      await this.#query(
        `SELECT data, ${this.#sql.expires} AS expires_at, ${this.#sql.version} FROM ${this.#table} WHERE user_id = ? AND ${this.#sql.expires} > ?`,
        [userId, this.#at(now)],
      ),
    );
    return rows.map((row) => this.#row(row));
  }

  async extendExpiry(key: string, expiresAt: number, movedBefore: number, now: number): Promise<void> {
    const expires = this.#sql.expires;
    await this.#query(`UPDATE ${this.#table} SET ${expires} = ? WHERE id = ? AND ${expires} > ? AND ${expires} < ?`, [
      this.#at(expiresAt),
      key,
      this.#at(now),
      this.#at(movedBefore),
    ]);
  }

  async destroy(key: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table} WHERE id = ?`, [key]);
  }

  async all(now: number): Promise<(string | null)[]> {
    const rows = rowsOf(await this.#query(`SELECT data FROM ${this.#table} WHERE ${this.#sql.expires} > ?`, [this.#at(now)]));
    return rows.map((row) => dataText(row['data']));
  }

  async count(now: number): Promise<number> {
    const row = rowsOf(await this.#query(`SELECT COUNT(*) AS n FROM ${this.#table} WHERE ${this.#sql.expires} > ?`, [this.#at(now)]))[0];
    return Number(row?.['n'] ?? 0);
  }

  /** An epoch-ms instant as the expiry column takes it. */
  #at(ms: number): string | number {
    return expiryToDatabase(ms, this.#sql.unit);
  }

  #row(row: Record<string, unknown>): StoredSessionRow {
    return storedRow(row, dataText(row['data']), this.#sql.unit);
  }


  async clear(): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table}`);
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
