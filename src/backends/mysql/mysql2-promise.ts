/**
 * The parts of `mysql2/promise` connections and pools the store uses, as
 * structural types (the driver is an optional peer, never imported for its
 * types). Both the driver, for a pool the application hands over, and the
 * store's own nodes, which offer the same shape over `mysql2`'s callback
 * pools, read them; kept apart so neither imports the other for them.
 */

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
