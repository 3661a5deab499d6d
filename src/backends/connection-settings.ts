/**
 * What a backend is told about where and how to connect, once the options
 * are checked. A leaf of the import graph: the shared options
 * (`connection-options.ts`), the backend descriptors and every driver read
 * these types, so this file imports nothing, and no import can come back
 * round to them.
 */

/**
 * A connection the application hands over instead of letting the store open
 * its own: a `pg` Pool or Client, a `mysql2` pool or connection (promise or
 * callback flavour), or a `better-sqlite3` Database. The store never closes it.
 */
export type SessionConnection = object;

/** A schema-qualified table name, already validated. */
export interface TableName {
  readonly schema: string | undefined;
  readonly name: string;
}

/** Connection settings given one by one instead of a URL. */
export interface ConnectionParameters {
  readonly host: string | undefined;
  readonly port: number | undefined;
  /** Several servers of one cluster (`host` or `host:port` each), instead of `host` and `port`. */
  readonly hosts?: readonly string[] | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string;
}

/** Where the store connects to: a URL, parameters, a SQLite file, or the application's connection. */
export type ConnectionTarget =
  | { readonly dialect: string; readonly url: string }
  | { readonly dialect: string; readonly parameters: ConnectionParameters }
  | { readonly dialect: string; readonly filename: string }
  | { readonly dialect: string; readonly connection: SessionConnection };

/**
 * The options every backend shares, after validation: where to connect, and
 * how. A backend's own options (declared in its folder) come beside these.
 */
export interface ConnectionSettings {
  readonly target: ConnectionTarget;
  readonly table: TableName;
  /** Connections in the store's own pool. */
  readonly poolSize: number;
  /** The connection's character set as given (`utf8` by default); each driver maps it to its own name. */
  readonly charset: string;
  /** A pooled connection idle longer than this is checked before use; `0` checks every time. */
  readonly connectionCheckMs: number;
  /** How long a new connection may take (for Redis also every command). */
  readonly connectTimeoutMs: number;
}
