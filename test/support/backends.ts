/**
 * Which databases the suite runs against, narrowed by `DATABASE`
 * (postgres|mysql|sqlite, comma-separated), as the SmartSessionStore seed's
 * `rake test DATABASE=postgresql`.
 *
 * A server that cannot be reached is a skip on a developer machine and a
 * failure when `CI=true`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { countedSqlConnection } from './counted.js';
import { SessionStore, SessionStoreError, type JsonObject, type LockingMode, type SessionStoreOptions } from '../../src/index.js';
import { EXPRESS_SESSION_FORMAT } from '../../src/adapters/express.js';

export type BackendName = 'postgres' | 'mysql' | 'sqlite';
export const LOCKING_MODES: readonly LockingMode[] = ['atomic', 'optimistic', 'pessimistic'];

/** A stored session, read past the store. */
export interface StoredRow {
  /** The stored JSON text (`null` for NULL data). */
  readonly text: string | null;
  /** The same, parsed, when it is JSON. */
  readonly data: JsonObject | undefined;
}

/** The sessions of one table (or key prefix), read and written past the store, as another program would. */
export interface SessionRows {
  read(key: string): Promise<StoredRow | undefined>;
  /** Rewrites a session's data, bumping `lock_version` where the table has one (as every writer must). */
  rewrite(key: string, text: string): Promise<void>;
}

/** A connection of the backend's driver whose statements (or commands) are written down as they go by. */
export interface CountedConnection {
  readonly connection: object;
  readonly statements: string[];
  close(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  readonly url: string;
  /** True for the SQL databases: `query` works, tables can be created by hand. */
  readonly sql: boolean;
  /** Runs raw SQL against the backend, bypassing the store (to inspect or tamper with rows). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The stored sessions of `table`, past the store. */
  rows(table: string): SessionRows;
  /** A handed-over connection that counts what the store sends. */
  counted(): Promise<CountedConnection>;
  /** Removes a table (or the keys under a prefix) and nothing else. */
  drop(table: string): Promise<void>;
  close(): Promise<void>;
}

const ALIASES: Record<string, BackendName> = {
  postgres: 'postgres', postgresql: 'postgres', pg: 'postgres',
  mysql: 'mysql', mariadb: 'mysql', mysql2: 'mysql',
  sqlite: 'sqlite', sqlite3: 'sqlite',
};

function selectedNames(): BackendName[] {
  const wanted = process.env['DATABASE'];
  if (wanted === undefined || wanted.trim() === '') return ['postgres', 'mysql', 'sqlite'];
  return wanted.split(',').map((name) => {
    const backend = ALIASES[name.trim().toLowerCase()];
    if (backend === undefined) throw new Error(`DATABASE=${wanted}: unknown backend "${name}" (postgres, mysql, sqlite)`);
    return backend;
  });
}

let sqliteDirectory: string | undefined;

/** A SQL backend from its raw query function: rows, drop and counting are SQL alike. */
function sqlBackend(name: BackendName, url: string, query: Backend['query'], close: () => Promise<void>): Backend {
  const p = (index: number): string => (name === 'postgres' ? `$${index}` : '?');
  return {
    name, url, sql: true, query, close,
    rows: (table) => ({
      read: async (key) => {
        const [row] = await query(`SELECT data FROM ${table} WHERE id = ${p(1)}`, [key]);
        if (row === undefined) return undefined;
        const raw = row['data'];
        // MySQL's JSON type and PostgreSQL's jsonb arrive parsed; text columns as text.
        const text = raw === null || raw === undefined ? null : typeof raw === 'string' ? raw : Buffer.isBuffer(raw) ? raw.toString('utf8') : JSON.stringify(raw);
        let data: JsonObject | undefined;
        try {
          data = text === null ? undefined : (JSON.parse(text) as JsonObject);
        } catch {
          data = undefined;
        }
        return { text, data };
      },
      rewrite: async (key, text) => {
        const [columns] = await query(`SELECT * FROM ${table} WHERE id = ${p(1)}`, [key]);
        const bump = columns !== undefined && 'lock_version' in columns ? ', lock_version = lock_version + 1' : '';
        await query(`UPDATE ${table} SET data = ${p(1)}${bump} WHERE id = ${p(2)}`, [text, key]);
      },
    }),
    counted: () => countedSqlConnection(name, url),
    drop: async (table) => {
      await query(`DROP TABLE IF EXISTS ${table}`);
    },
  };
}

async function connect(name: BackendName): Promise<Backend> {
  if (name === 'postgres') {
    const url = process.env['POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3000 });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    return sqlBackend(name, url, async (sql, params) => (await pool.query(sql, params)).rows, () => pool.end());
  }
  if (name === 'mysql') {
    const url = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';
    const pool = mysql.createPool({ uri: url, connectionLimit: 2, connectTimeout: 3000, charset: 'utf8mb4_unicode_ci' });
    await pool.query('SELECT 1');
    const query: Backend['query'] = async (sql, params) => {
      const [rows] = await pool.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    };
    return sqlBackend(name, url, query, () => pool.end());
  }
  sqliteDirectory ??= mkdtempSync(join(tmpdir(), 'smart-session-store-'));
  const filename = join(sqliteDirectory, 'sessions.db');
  const db = new Database(filename);
  db.pragma('busy_timeout = 5000');
  const query: Backend['query'] = async (sql, params = []) => {
    const statement = db.prepare(sql);
    return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
  };
  return sqlBackend(name, `sqlite:${filename}`, query, async () => {
    db.close();
  });
}

/**
 * The backends to test, connected. Each unreachable one registers a test that
 * is skipped, or fails under `CI=true`.
 */
export async function availableBackends(): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (const name of selectedNames()) {
    try {
      backends.push(await connect(name));
    } catch (error) {
      const reason = `${name} is not reachable: ${error instanceof Error ? error.message : String(error)}`;
      if (process.env['CI'] === 'true') {
        test(`${name} backend`, () => { throw new Error(`${reason} (CI requires every backend)`); });
      } else {
        test(`${name} backend`, { skip: reason }, () => undefined);
      }
    }
  }
  return backends;
}

/** Drops a test table (and nothing else). */
export async function dropTable(backend: Backend, table: string): Promise<void> {
  await backend.drop(table);
}

/** A pause of `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The backends of a test file, closed when the file's tests are done. */
export async function backendsForThisFile(): Promise<Backend[]> {
  const backends = await availableBackends();
  after(async () => {
    for (const backend of backends) await backend.close();
  });
  return backends;
}

/** For `assert.rejects`/`throws`: a SessionStoreError with this code (and, if given, this text in its message). */
export function isStoreError(code: string, mentioning?: string): (error: unknown) => boolean {
  return (error) => error instanceof SessionStoreError && error.code === code && (mentioning === undefined || error.message.includes(mentioning));
}

/** SQL written with `?` placeholders, numbered for PostgreSQL. */
export function sql(backend: Backend, text: string): string {
  if (backend.name !== 'postgres') return text;
  let index = 0;
  return text.replace(/\?/g, () => `$${++index}`);
}

/**
 * A store whose sessions are express-session's (a `cookie` whose `expires`
 * is the session's expiry and whose rolling alone is no change), as most
 * tests write them.
 */
export class CookieStore extends SessionStore {
  constructor(options: SessionStoreOptions) {
    super(options, { format: EXPRESS_SESSION_FORMAT });
  }
}
