/**
 * The machine's own SQL servers: PostgreSQL and MariaDB on loopback, SQLite
 * in a temporary file.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Backend, BackendConnector } from '../backends.js';
import { storedRow } from '../stored-row.js';
import { countedSqlConnection } from '../counted.js';

/** A SQL backend from its raw query function: rows, drop and counting are SQL alike. */
export function sqlBackend(name: string, dialect: 'postgres' | 'mysql' | 'sqlite', url: string, query: Backend['query'], close: () => Promise<void>): Backend {
  const p = (index: number): string => (dialect === 'postgres' ? `$${index}` : '?');
  return {
    name,
    dialect,
    url,
    sql: true,
    query,
    close,
    rows: (table) => ({
      read: async (key) => {
        const [row] = await query(`SELECT * FROM ${table} WHERE id = ${p(1)}`, [key]);
        if (row === undefined) return undefined;
        const raw = row['data'];
        // MySQL's JSON type and PostgreSQL's json and jsonb arrive parsed; text columns as text.
        const text =
          raw === null || raw === undefined ? null : typeof raw === 'string' ? raw : Buffer.isBuffer(raw) ? raw.toString('utf8') : JSON.stringify(raw);
        const changes = row['changes'];
        return storedRow(text, changes === null || changes === undefined ? null : String(changes));
      },
      rewrite: async (key, text) => {
        const [columns] = await query(`SELECT * FROM ${table} WHERE id = ${p(1)}`, [key]);
        // As every writer of the whole session must: bump lock_version, and drop the pending changes the text replaces.
        const bump = columns !== undefined && 'lock_version' in columns ? ', lock_version = lock_version + 1' : '';
        const clear = columns !== undefined && 'changes' in columns ? ', changes = NULL' : '';
        await query(`UPDATE ${table} SET data = ${p(1)}${bump}${clear} WHERE id = ${p(2)}`, [text, key]);
      },
    }),
    counted: () => countedSqlConnection(dialect, url),
    drop: async (table) => {
      await query(`DROP TABLE IF EXISTS ${table}`);
    },
  };
}

/** Connects to PostgreSQL through `pg`. */
export async function connectPostgres(name: string, url: string): Promise<Backend> {
  {
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3000 });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    return sqlBackend(
      name,
      'postgres',
      url,
      async (sql, params) => (await pool.query(sql, params)).rows,
      () => pool.end(),
    );
  }
}

/** Connects to MySQL or MariaDB through `mysql2`. */
export async function connectMysql(name: string, url: string): Promise<Backend> {
  {
    const pool = mysql.createPool({ uri: url, connectionLimit: 2, connectTimeout: 3000, charset: 'utf8mb4_unicode_ci' });
    await pool.query('SELECT 1');
    const query: Backend['query'] = async (sql, params) => {
      const [rows] = await pool.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    };
    return sqlBackend(name, 'mysql', url, query, () => pool.end());
  }
}

let sqliteDirectory: string | undefined;

/** Opens a SQLite file in a temporary folder of the run. */
export async function connectSqlite(name: string): Promise<Backend> {
  sqliteDirectory ??= mkdtempSync(join(tmpdir(), 'smart-session-store-'));
  const filename = join(sqliteDirectory, 'sessions.db');
  const db = new Database(filename);
  db.pragma('busy_timeout = 5000');
  const query: Backend['query'] = async (sql, params = []) => {
    const statement = db.prepare(sql);
    if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
    statement.run(...params);
    return [];
  };
  return sqlBackend(name, 'sqlite', `sqlite:${filename}`, query, async () => {
    db.close();
  });
}

export const connectors: readonly BackendConnector[] = [
  {
    name: 'postgres',
    aliases: ['postgresql', 'pg'],
    order: 1,
    connect: () => connectPostgres('postgres', process.env['POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'),
  },
  {
    name: 'mysql',
    aliases: ['mariadb', 'mysql2'],
    order: 2,
    connect: () => connectMysql('mysql', process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test'),
  },
  { name: 'sqlite', aliases: ['sqlite3'], order: 3, connect: () => connectSqlite('sqlite') },
];
