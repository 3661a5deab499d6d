/**
 * The parts of `pg`'s pools, clients and results the store uses, as
 * structural types: the library has no hard dependency on the driver, and
 * both the driver (postgres-driver.ts) and the host list (postgres-hosts.ts)
 * read them without importing each other.
 */
import type { Row } from '../sql/sql-dialect.js';

/** What the store reads from a `pg` query result. */
export interface PgQueryResultLike {
  rows: Row[];
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
