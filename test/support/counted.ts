/** Connections of the SQL drivers that write down every statement the store sends through them. */
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { CountedConnection } from './backends.js';

/** The same wrapper for the same underlying client, so the store can tell how long each has been idle. */
function memo<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) cache.set(key, (value = make(key)));
    return value;
  };
}

/**
 * What the server answers a named statement it refuses for its name, before
 * running anything (PgBouncer in transaction mode, until the store switches
 * to unnamed statements): 26000 does not exist, 42P05 already exists.
 */
const REFUSED_FOR_ITS_NAME: ReadonlySet<unknown> = new Set(['26000', '42P05']);

/** A real driver connection of a SQL backend whose statements are written down as they go by. */
export async function countedSqlConnection(name: 'postgres' | 'mysql' | 'sqlite', url: string): Promise<CountedConnection> {
  const statements: string[] = [];
  if (name === 'postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
    // A statement goes as its text and values, or as pg's query object when the store names it ({ name, text, values }).
    // One refused for its name ran nothing and is not counted: the store runs it again, unnamed, and that one is.
    const count = <Result>(statement: string | pg.QueryConfig, run: () => Promise<Result>): Promise<Result> => {
      const text = typeof statement === 'string' ? statement : statement.text;
      statements.push(text);
      return run().catch((error: unknown) => {
        if (typeof statement !== 'string' && REFUSED_FOR_ITS_NAME.has((error as { code?: unknown }).code)) {
          const at = statements.lastIndexOf(text);
          if (at >= 0) statements.splice(at, 1);
        }
        throw error;
      });
    };
    const wrap = memo((client: pg.PoolClient) => ({
      query: (statement: string | pg.QueryConfig, values?: unknown[]) => count(statement, () => client.query(statement, values)),
      release: (error?: boolean | Error) => client.release(error),
      on: (event: 'error', listener: (error: Error) => void) => client.on(event, listener),
    }));
    return {
      connection: {
        get totalCount() {
          return pool.totalCount;
        },
        query: (statement: string | pg.QueryConfig, values?: unknown[]) => count(statement, () => pool.query(statement, values)),
        connect: async () => wrap(await pool.connect()),
        end: () => pool.end(),
        on: (event: 'error', listener: (error: Error) => void) => pool.on(event, listener),
      },
      statements,
      close: () => pool.end(),
    };
  }
  if (name === 'mysql') {
    const pool = mysql.createPool({ uri: url, connectionLimit: 4, charset: 'utf8mb4_unicode_ci' });
    const wrapCore = memo((core: object) => (connection: mysql.PoolConnection) => ({
      query: (sql: string, values?: unknown[]) => {
        statements.push(sql);
        return connection.query(sql, values);
      },
      ping: () => {
        statements.push('PING');
        return connection.ping();
      },
      beginTransaction: () => connection.beginTransaction(),
      commit: () => connection.commit(),
      rollback: () => connection.rollback(),
      release: () => connection.release(),
      destroy: () => connection.destroy(),
      connection: core,
    }));
    // mysql2 hands out a new promise wrapper around the same connection each time: its core identifies it.
    const wrap = (connection: mysql.PoolConnection) => wrapCore((connection as unknown as { connection: object }).connection)(connection);
    return {
      connection: {
        query: (sql: string, values?: unknown[]) => {
          statements.push(sql);
          return pool.query(sql, values);
        },
        getConnection: async () => wrap(await pool.getConnection()),
        end: () => pool.end(),
      },
      statements,
      close: () => pool.end(),
    };
  }
  const db = new Database(url.slice('sqlite:'.length));
  const count = <T extends (...args: never[]) => unknown>(sql: string, run: T): T =>
    ((...args: Parameters<T>) => {
      statements.push(sql);
      return run(...args);
    }) as T;
  return {
    connection: {
      prepare: (sql: string) => {
        const statement = db.prepare(sql);
        return {
          run: count(sql, (...params: unknown[]) => statement.run(...params)),
          get: count(sql, (...params: unknown[]) => statement.get(...params)),
          all: count(sql, (...params: unknown[]) => statement.all(...params)),
        };
      },
      exec: (sql: string) => db.exec(sql),
      pragma: (source: string) => db.pragma(source),
      function: (name: string, options: Database.RegistrationOptions, fn: (...args: unknown[]) => unknown) => db.function(name, options, fn),
      transaction: <T>(fn: () => T) => db.transaction(fn),
      close: () => db.close(),
      memory: false,
    },
    statements,
    close: async () => {
      db.close();
    },
  };
}
