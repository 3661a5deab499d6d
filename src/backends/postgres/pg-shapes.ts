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

/** A named statement as `pg` takes it: prepared under `name` on the connection the first time, then only bound. */
export interface PgNamedQuery {
  readonly name: string;
  readonly text: string;
  readonly values: unknown[];
}

/** The part of a `pg` client the store uses: a statement's text and values, or a {@link PgNamedQuery}. */
export interface PgQueryable {
  query(statement: string | PgNamedQuery, values?: unknown[]): Promise<PgQueryResultLike>;
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
