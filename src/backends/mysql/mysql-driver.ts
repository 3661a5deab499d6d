/**
 * MySQL and MariaDB connections over `mysql2/promise`: a structural subset of
 * its pool, so the library has no hard dependency on the driver.
 */
import type { ConnectionFailure } from '../../core/backend.js';
import { connectionFailure, describeTarget, importDriver, isConnectFailure, isNetworkError, parseHostAddress, splitHostList, type ConnectionFailureReason, type TargetDescription } from '../driver.js';
import type { ConnectionSettings, ConnectionTarget } from '../connection-options.js';
import { isNodeFailure, MysqlNodes, type Mysql2PromiseModule, type MysqlNodeAddress } from './mysql-nodes.js';
import { ConnectionLender, Serial } from '../sql/pool.js';
import type { Row, SqlDriver, SqlRunner } from '../sql/sql-dialect.js';

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

/** Runs an operation rolled back for a conflict gets on a Galera cluster, where certification conflicts are routine. */
const GALERA_CONFLICT_ATTEMPTS = 30;

/** MySQL's port when none is given. */
const DEFAULT_PORT = 3306;

/** mysql2 error codes that mean the connection, not the statement, failed. */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CONNECTION_KILLED', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_NET_READ_ERROR',
]);

/** True when a mysql2 error means the connection was lost or could not be made, or its node cannot serve it. */
export function isMysqlConnectionError(error: unknown): boolean {
  if (isNetworkError(error) || isNodeFailure(error)) return true;
  const { code, fatal } = (error ?? {}) as { code?: unknown; fatal?: unknown };
  if (fatal === true) return true;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /closed state|Connection lost|connect ETIMEDOUT|Pool is closed/i.test(message);
}

/** Why mysql2 could not connect, from its error; `undefined` for any other error. */
function connectionFailureReason(error: unknown): ConnectionFailureReason | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR' || code === 'ER_NOT_SUPPORTED_AUTH_MODE') return 'credentials';
  if (code === 'ER_BAD_DB_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR') return 'database';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host';
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') return 'timeout';
  return undefined;
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

function rowsOf(result: MysqlQueryResult): Row[] {
  return Array.isArray(result[0]) ? (result[0] as Row[]) : [];
}

function affectedRows(result: MysqlQueryResult): number {
  const header = result[0] as { affectedRows?: unknown };
  return typeof header.affectedRows === 'number' ? header.affectedRows : 0;
}

function runnerOf(connection: MysqlQueryable): SqlRunner {
  return {
    query: async (text, values) => rowsOf(await connection.query(text, values as unknown[])),
    execute: async (text, values) => affectedRows(await connection.query(text, values as unknown[])),
  };
}

/** The server, or each node of a cluster, that a URL or parameters name, with the `mysql2` settings that reach it. */
function nodesOf(target: ConnectionTarget): MysqlNodeAddress[] {
  const where = describeTarget(target, DEFAULT_PORT);
  if ('url' in target) {
    const split = splitHostList(target.url);
    if (split === undefined || split.hosts.length < 2) return [{ address: where?.address ?? 'the server', config: { uri: target.url } }];
    return split.hosts.map((host) => ({ address: describeTarget({ dialect: 'mysql', url: split.urlFor(host) }, DEFAULT_PORT)?.address ?? host, config: { uri: split.urlFor(host) } }));
  }
  if ('parameters' in target) {
    const { hosts, ...one } = target.parameters;
    if (hosts === undefined) return [{ address: where?.address ?? 'the server', config: one }];
    return hosts.map((address) => {
      const { host, port } = parseHostAddress(address);
      return { address, config: { ...one, host, port: port ?? DEFAULT_PORT } };
    });
  }
  throw new Error('a MySQL store needs a URL, connection parameters or a connection');
}

/** The store's connections to MySQL or MariaDB: its own pool (over one server or a cluster's nodes), or the application's pool or connection. */
export class MysqlDriver implements SqlDriver {
  readonly #pool: MysqlPoolLike;
  readonly #ownsPool: boolean;
  readonly #lender: ConnectionLender<MysqlPoolConnectionLike>;
  readonly connectionAttempts: number;
  readonly #where: TargetDescription | undefined;

  /** Opens a pool of the store's own, in utf8mb4 so 4-byte characters round-trip; or adopts the application's pool or connection. */
  static async open(settings: ConnectionSettings): Promise<MysqlDriver> {
    const { target } = settings;
    if ('connection' in target) {
      // A callback-style pool or connection carries its promise twin.
      const given = target.connection as { promise?: () => unknown };
      const promised = (typeof given.promise === 'function' ? given.promise() : given) as MysqlPoolLike | MysqlPoolConnectionLike;
      return new MysqlDriver('getConnection' in promised ? promised : connectionAsPool(promised), settings, false);
    }
    const mysql = (await importDriver('mysql2/promise')) as Mysql2PromiseModule;
    const pool = new MysqlNodes(mysql, nodesOf(target), {
      syncWait: settings.syncWait,
      common: {
        connectionLimit: settings.poolSize,
        connectTimeout: settings.connectTimeoutMs,
        charset: /^utf8(mb4)?$/i.test(settings.charset) ? 'utf8mb4_unicode_ci' : settings.charset,
        supportBigNumbers: true,
        enableKeepAlive: true,
      },
    });
    return new MysqlDriver(pool, settings, true);
  }

  constructor(pool: MysqlPoolLike, settings: ConnectionSettings, ownsPool: boolean) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.connectionAttempts = settings.poolSize;
    this.#where = describeTarget(settings.target, DEFAULT_PORT);
    this.#lender = new ConnectionLender<MysqlPoolConnectionLike>(
      {
        acquire: () => pool.getConnection(),
        ping: (connection) => connection.ping(),
        release: (connection, broken) => (broken === undefined ? connection.release() : connection.destroy()),
        // mysql2 wraps the same pooled connection in a new promise object on every checkout.
        identity: (connection) => (connection as { connection?: object }).connection ?? connection,
        isConnectionError: isMysqlConnectionError,
      },
      settings.connectionCheckMs,
      settings.poolSize + 1,
    );
  }

  query(text: string, values: readonly unknown[]): Promise<Row[]> {
    return this.#lender.use((connection) => runnerOf(connection).query(text, values));
  }

  execute(text: string, values: readonly unknown[]): Promise<number> {
    return this.#lender.use((connection) => runnerOf(connection).execute(text, values));
  }

  transaction<T>(work: (transaction: SqlRunner) => Promise<T>): Promise<T> {
    return this.#lender.use(async (connection, broken) => {
      await connection.beginTransaction();
      try {
        const result = await work(runnerOf(connection));
        await connection.commit();
        return result;
      } catch (error) {
        // A connection that cannot roll back is not returned to the pool.
        await connection.rollback().catch((rollbackError: unknown) => broken(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))));
        throw error;
      }
    });
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1', []);
  }

  isConnectionError(error: unknown): boolean {
    return isMysqlConnectionError(error);
  }

  isConnectFailure(error: unknown): boolean {
    return isConnectFailure(error);
  }

  describeConnectionFailure(error: unknown): ConnectionFailure | undefined {
    const reason = connectionFailureReason(error);
    return reason === undefined ? undefined : connectionFailure(reason, this.#where, error);
  }

  /** A Galera cluster (seen on the store's own connections) gets more runs: its certification conflicts are routine. */
  get conflictAttempts(): number | undefined {
    return this.#pool instanceof MysqlNodes && this.#pool.galera ? GALERA_CONFLICT_ATTEMPTS : undefined;
  }

  isTransientConflict(error: unknown): boolean {
    // A deadlock, which on Galera is also how a certification conflict is reported (at any statement, COMMIT
    // included); a lock wait timeout.
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
