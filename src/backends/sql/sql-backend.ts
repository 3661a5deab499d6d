/**
 * A SQL database as a session backend: what PostgreSQL, MySQL/MariaDB and
 * SQLite do alike. Each gives a driver (its connections) and a dialect (what
 * differs); this file inspects the table and checks it can serve the store.
 */
import { SessionStoreError } from '../../errors.js';
import type { ConnectionFailure, ReadyBackend, SessionBackend, StorageNeeds } from '../../core/backend.js';
import type { TableName } from '../connection-settings.js';
import type { SqlDialect, SqlDriver } from './sql-dialect.js';
import { SqlTable } from './sql-table.js';
import { raw } from './statement.js';
import type { CreateTableOptions } from './table-shape.js';

/** Columns every sessions table must have (besides an expiry column). */
const REQUIRED_COLUMNS = ['id', 'data'] as const;

/** `schema.table` or `table`, as the user wrote it. */
export function displayName(table: TableName): string {
  return table.schema === undefined ? table.name : `${table.schema}.${table.name}`;
}

/** A sessions table on a SQL database, before it has been inspected. */
export class SqlSessionBackend implements SessionBackend {
  readonly #dialect: SqlDialect;
  readonly #driver: SqlDriver;
  readonly #table: TableName;

  constructor(dialect: SqlDialect, driver: SqlDriver, table: TableName) {
    this.#dialect = dialect;
    this.#driver = driver;
    this.#table = table;
  }

  get connectionAttempts(): number {
    return this.#driver.connectionAttempts;
  }

  get conflictAttempts(): number | undefined {
    return this.#driver.conflictAttempts;
  }

  #createOptions(needs: StorageNeeds): CreateTableOptions {
    return { lockVersion: needs.locking === 'optimistic', userId: needs.userId, client: needs.client === true };
  }

  async create(needs: StorageNeeds): Promise<void> {
    await this.#dialect.create(this.#driver, this.#table, this.#createOptions(needs));
  }

  /** Inspects the table once, refusing one the store cannot use with a message that says how to fix it. */
  async prepare(needs: StorageNeeds): Promise<ReadyBackend> {
    let info = await this.#dialect.inspect(this.#driver, this.#table);
    if (info === null && needs.createIfMissing) {
      await this.create(needs);
      info = await this.#dialect.inspect(this.#driver, this.#table);
    }
    const name = displayName(this.#table);
    if (info === null) {
      const tableFlag = this.#table.name === 'sessions' && this.#table.schema === undefined ? '' : ` --table ${name}`;
      throw new SessionStoreError(
        'ERR_TABLE_MISSING',
        `table ${name} does not exist: create it with store.createTable(), "npx smart-session-store create-table --url <url>${tableFlag}", or the option createTable: true`,
      );
    }
    const missing = REQUIRED_COLUMNS.filter((column) => !info.columns.has(column));
    if (missing.length > 0) throw new SessionStoreError('ERR_SCHEMA', `table ${name} lacks the column(s) ${missing.join(', ')}`);
    if (info.expiry === undefined) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `table ${name} has no expiry column the store understands: expires_at (a timestamp, or epoch milliseconds) or timeout (epoch seconds)`,
      );
    }
    if (needs.userId && !info.columns.has('user_id')) {
      throw new SessionStoreError('ERR_SCHEMA', `userIdKey needs a user_id column: ALTER TABLE ${name} ADD COLUMN user_id VARCHAR(255), then index it`);
    }
    const createdType = info.columnTypes?.get('created_at');
    if (needs.createdAt === true && (createdType === undefined || this.#dialect.instantMs(raw('created_at'), createdType) === undefined)) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `absoluteTimeout needs a created_at column (a timestamp, or epoch milliseconds) filled in when a row is inserted: table ${name} has ${createdType === undefined ? 'none' : `one of type ${createdType}`}`,
      );
    }
    if (needs.client === true && !info.columns.has('client')) {
      throw new SessionStoreError('ERR_SCHEMA', `recordClient needs a client column: ALTER TABLE ${name} ADD COLUMN client TEXT`);
    }
    const locking = needs.locking ?? (info.hasLockVersion ? 'optimistic' : 'atomic');
    if (locking === 'optimistic' && !info.hasLockVersion) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `locking "optimistic" needs an integer lock_version column: ALTER TABLE ${name} ADD COLUMN lock_version INTEGER NOT NULL DEFAULT 0`,
      );
    }
    return new SqlTable({
      dialect: this.#dialect,
      driver: this.#driver,
      table: this.#table,
      info,
      expiry: info.expiry,
      locking,
      readCreatedAt: needs.createdAt === true,
    });
  }

  ping(): Promise<void> {
    return this.#driver.ping();
  }

  isConnectionError(error: unknown): boolean {
    return this.#driver.isConnectionError(error);
  }

  isConnectFailure(error: unknown): boolean {
    return this.#driver.isConnectFailure(error);
  }

  isTransientConflict(error: unknown): boolean {
    return this.#driver.isTransientConflict(error);
  }

  describeConnectionFailure(error: unknown): ConnectionFailure | undefined {
    return this.#driver.describeConnectionFailure(error);
  }

  close(): Promise<void> {
    return this.#driver.close();
  }
}
