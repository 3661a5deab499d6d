/**
 * The SQL peer stores' tables, read directly with the database's own driver
 * on a small pool of their own: connect-pg-simple's, express-mysql-session's,
 * connect-session-knex's (on PostgreSQL, MySQL/MariaDB or SQLite) and
 * better-sqlite3-session-store's. Each keeps an id, the session's JSON and
 * an expiry, in columns and types of its own; the import only ever reads,
 * and a destroy through `migrateFrom` deletes one row by id.
 */
import { importDriver } from '../backends/driver.js';
import { SessionStoreError } from '../errors.js';
import { type PeerPage, type PeerRow, type PeerStore, sessionText } from './peer-store.js';

/** A database a peer's table is in. */
export type PeerDatabase = 'postgres' | 'mysql' | 'sqlite';

/** A connection to it: parameterised queries, and the quoting and placeholders of its SQL. */
interface PeerConnection {
  query(text: string, values: readonly unknown[]): Promise<Record<string, unknown>[]>;
  placeholder(index: number): string;
  quote(identifier: string): string;
  close(): Promise<void>;
}

/** Where a peer keeps its sessions, on one database. */
export interface SqlPeerShape {
  readonly table: string;
  readonly id: string;
  readonly dataColumn: string;
  /** The session's JSON as text, from the quoted data column. */
  readonly data: (column: string) => string;
  /** The expiry as the query reads it, from the quoted expiry column. */
  readonly expiry: (column: string) => string;
  readonly expiryColumn: string;
  /** That value as epoch ms; `null` when it holds none. */
  readonly expiryOf: (value: unknown) => number | null;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** `schema.table` or `table`, each part checked: names are quoted, never pasted in from elsewhere. */
export function tableParts(table: string): string[] {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new SessionStoreError('ERR_INVALID_OPTION', `source table ${JSON.stringify(table)} must be a name of letters, digits and _ (or schema.name)`);
  }
  return parts;
}

/** A number read from the database (drivers hand some as text). */
function numberOf(value: unknown): number | null {
  const number = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(number) ? number : null;
}

/** Epoch seconds (a float, as PostgreSQL's EXTRACT gives them) as ms. */
const fromSeconds = (value: unknown): number | null => {
  const seconds = numberOf(value);
  return seconds === null ? null : Math.round(seconds * 1000);
};

/** An ISO 8601 text (as the SQLite peers write their expiry) as ms. */
const fromIsoText = (value: unknown): number | null => {
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
};

/** A PostgreSQL timestamp column's epoch seconds: one without time zone was written in the session's, read back so. */
const postgresEpoch = (column: string) => `EXTRACT(EPOCH FROM ${column}::timestamptz)::float8`;

/** Each peer's table, by the database it is on: its default name, columns and their types, as the peer creates it. */
export const SQL_PEER_SHAPES = {
  'connect-pg-simple': {
    // session(sid varchar, sess json, expire timestamp(6)), expire written as to_timestamp(seconds).
    postgres: {
      table: 'session',
      id: 'sid',
      dataColumn: 'sess',
      data: (c) => `${c}::text`,
      expiryColumn: 'expire',
      expiry: postgresEpoch,
      expiryOf: fromSeconds,
    },
  },
  'express-mysql-session': {
    // sessions(session_id varchar(128), expires int unsigned (epoch seconds), data mediumtext).
    mysql: { table: 'sessions', id: 'session_id', dataColumn: 'data', data: (c) => c, expiryColumn: 'expires', expiry: (c) => c, expiryOf: fromSeconds },
  },
  'connect-session-knex': {
    // sessions(sid varchar, sess json (text where the database has no JSON), expired): knex's timestamp, which is a
    // timestamptz on PostgreSQL, a DATETIME holding UTC on MySQL/MariaDB, and ISO 8601 text on SQLite.
    postgres: {
      table: 'sessions',
      id: 'sid',
      dataColumn: 'sess',
      data: (c) => `${c}::text`,
      expiryColumn: 'expired',
      expiry: postgresEpoch,
      expiryOf: fromSeconds,
    },
    mysql: {
      table: 'sessions',
      id: 'sid',
      dataColumn: 'sess',
      data: (c) => c,
      expiryColumn: 'expired',
      expiry: (c) => `TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', ${c})`,
      expiryOf: fromSeconds,
    },
    sqlite: { table: 'sessions', id: 'sid', dataColumn: 'sess', data: (c) => c, expiryColumn: 'expired', expiry: (c) => c, expiryOf: fromIsoText },
  },
  'better-sqlite3-session-store': {
    // sessions(sid TEXT, sess JSON, expire TEXT (ISO 8601)).
    sqlite: { table: 'sessions', id: 'sid', dataColumn: 'sess', data: (c) => c, expiryColumn: 'expire', expiry: (c) => c, expiryOf: fromIsoText },
  },
} as const satisfies Record<string, Partial<Record<PeerDatabase, SqlPeerShape>>>;

/** Text from a driver's value: a Buffer where a column's collation is binary, JSON parsed already where mysql2 sees a JSON column. */
function textOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return value === null || value === undefined ? null : JSON.stringify(value);
}

interface PgPool {
  query(text: string, values: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface MysqlPool {
  query(text: string, values: readonly unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
}

interface SqliteDatabase {
  prepare(text: string): { all(...values: unknown[]): Record<string, unknown>[]; run(...values: unknown[]): unknown; reader: boolean };
  close(): void;
}

/** The file a `sqlite:` URL (or a plain path) names. */
export function sqliteFile(url: string): string {
  const file = url.replace(/^sqlite:(\/\/)?/, '').replace(/^file:(\/\/)?/, '');
  if (file === '' || file === ':memory:') throw new SessionStoreError('ERR_INVALID_OPTION', `source ${url} names no database file`);
  return file;
}

/** Opens the database a peer's table is in, with a pool of at most `poolSize` connections. */
async function connect(database: PeerDatabase, url: string, poolSize: number): Promise<PeerConnection> {
  switch (database) {
    case 'postgres': {
      const pg = (await importDriver('pg')) as { Pool: new (config: object) => PgPool };
      const pool = new pg.Pool({ connectionString: url, max: poolSize });
      // An idle connection that breaks (a restart) is reported here, and would end the process unheard; the next
      // query on the pool opens another.
      pool.on('error', () => undefined);
      return {
        query: async (text, values) => (await pool.query(text, values)).rows,
        placeholder: (index) => `$${index}`,
        quote: (identifier) => `"${identifier}"`,
        close: () => pool.end(),
      };
    }
    case 'mysql': {
      const mysql = (await importDriver('mysql2/promise')) as { createPool(config: object): MysqlPool };
      const pool = mysql.createPool({ uri: url, connectionLimit: poolSize, supportBigNumbers: true });
      return {
        query: async (text, values) => (await pool.query(text, values))[0] as Record<string, unknown>[],
        placeholder: () => '?',
        quote: (identifier) => `\`${identifier}\``,
        close: () => pool.end(),
      };
    }
    case 'sqlite': {
      const Database = (await importDriver('better-sqlite3')) as new (file: string, options: object) => SqliteDatabase;
      const db = new Database(sqliteFile(url), { fileMustExist: true });
      return {
        query: async (text, values) => {
          const statement = db.prepare(text);
          if (statement.reader) return statement.all(...values);
          statement.run(...values);
          return [];
        },
        placeholder: () => '?',
        quote: (identifier) => `"${identifier}"`,
        close: async () => db.close(),
      };
    }
  }
}

/** A peer's table, open. */
class SqlPeerTable implements PeerStore {
  readonly description: string;
  readonly #connection: PeerConnection;
  readonly #shape: SqlPeerShape;
  readonly #byId: string;
  readonly #page: string;
  readonly #remove: string;
  readonly #count: string;

  constructor(store: string, connection: PeerConnection, shape: SqlPeerShape, table: string) {
    this.description = `${store}, table ${table}`;
    this.#connection = connection;
    this.#shape = shape;
    const q = connection.quote;
    const name = tableParts(table).map(q).join('.');
    const id = q(shape.id);
    const columns = `${id} AS sid, ${shape.data(q(shape.dataColumn))} AS data, ${shape.expiry(q(shape.expiryColumn))} AS expiry`;
    const p = connection.placeholder;
    this.#byId = `SELECT ${columns} FROM ${name} WHERE ${id} = ${p(1)}`;
    // Keyset pages in id order: a page never depends on what earlier pages copied, so a run killed and started again
    // reads the same sessions (and finds those it copied already present).
    this.#page = `SELECT ${columns} FROM ${name} WHERE ${id} > ${p(1)} ORDER BY ${id} LIMIT ${p(2)}`;
    this.#remove = `DELETE FROM ${name} WHERE ${id} = ${p(1)}`;
    this.#count = `SELECT COUNT(*) AS n FROM ${name}`;
  }

  #row(row: Record<string, unknown>): PeerRow {
    return { sid: String(row['sid']), text: textOf(row['data']), expiresAt: this.#shape.expiryOf(row['expiry']) };
  }

  async read(sid: string, now: number): Promise<{ text: string; expiresAt: number } | null> {
    const [row] = await this.#connection.query(this.#byId, [sid]);
    if (row === undefined) return null;
    const { text, expiresAt } = this.#row(row);
    const session = sessionText(text);
    return session === null || expiresAt === null || expiresAt <= now ? null : { text: session, expiresAt };
  }

  async page(cursor: string | undefined, limit: number): Promise<PeerPage> {
    const rows = (await this.#connection.query(this.#page, [cursor ?? '', limit])).map((row) => this.#row(row));
    return { rows, next: rows.length < limit ? undefined : rows[rows.length - 1]?.sid };
  }

  async count(): Promise<number> {
    const [row] = await this.#connection.query(this.#count, []);
    return numberOf(row?.['n']) ?? 0;
  }

  async remove(sid: string): Promise<void> {
    await this.#connection.query(this.#remove, [sid]);
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}

/** Opens a peer's table on `database`. */
export async function openSqlPeer(
  store: string,
  shape: SqlPeerShape,
  database: PeerDatabase,
  url: string,
  table: string | undefined,
  poolSize: number,
): Promise<PeerStore> {
  const name = table ?? shape.table;
  tableParts(name);
  return new SqlPeerTable(store, await connect(database, url, poolSize), shape, name);
}
