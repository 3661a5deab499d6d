/**
 * MySQL and MariaDB connections over `mysql2`: the store's own (see
 * `mysql-nodes.ts`), or the application's pool or connection through
 * `mysql2/promise`, both as structural subsets, so the library has no hard
 * dependency on the driver.
 */
import type { ConnectionFailure } from '../../core/backend.js';
import {
  connectionFailure,
  describeTarget,
  importDriver,
  isConnectFailure,
  parseHostAddress,
  splitHostList,
  type ConnectionFailureReason,
  type TargetDescription,
} from '../driver.js';
import type { ConnectionSettings, ConnectionTarget } from '../connection-settings.js';
import type { MysqlSettings } from './mysql-options.js';
import { isMysqlConnectionError, MysqlNodes, type Mysql2Module, type MysqlNodeAddress } from './mysql-nodes.js';
import type { MysqlPoolConnectionLike, MysqlPoolLike, MysqlQueryable } from './mysql2-promise.js';
import { ConnectionLender, Serial } from '../sql/pool.js';
import type { Row, SqlDriver, SqlRunner } from '../sql/sql-dialect.js';

export { isMysqlConnectionError };

/** Runs an operation rolled back for a conflict gets on a Galera cluster, where certification conflicts are routine. */
const GALERA_CONFLICT_ATTEMPTS = 30;

/** MySQL's port when none is given. */
const DEFAULT_PORT = 3306;

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

/** The rows of a statement's answer (none for a statement that returns none). */
function rowsIn(answer: unknown): Row[] {
  return Array.isArray(answer) ? (answer as Row[]) : [];
}

/** The rows a statement changed, from its answer's header. */
function affectedIn(answer: unknown): number {
  const header = answer as { affectedRows?: unknown } | null | undefined;
  return typeof header?.affectedRows === 'number' ? header.affectedRows : 0;
}

function runnerOf(connection: MysqlQueryable): SqlRunner {
  return {
    query: async (text, values) => rowsIn((await connection.query(text, values as unknown[]))[0]),
    execute: async (text, values) => affectedIn((await connection.query(text, values as unknown[]))[0]),
  };
}

/** One transaction on `connection`: committed when `work` resolves, rolled back when it throws. */
async function transactionOn<T>(connection: MysqlPoolConnectionLike, broken: (error: Error) => void, work: (transaction: SqlRunner) => Promise<T>): Promise<T> {
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
}

/** The server, or each node of a cluster, that a URL or parameters name, with the `mysql2` settings that reach it. */
function nodesOf(target: ConnectionTarget): MysqlNodeAddress[] {
  const where = describeTarget(target, DEFAULT_PORT);
  if ('url' in target) {
    const split = splitHostList(target.url);
    if (split === undefined || split.hosts.length < 2) return [{ address: where?.address ?? 'the server', config: { uri: target.url } }];
    return split.hosts.map((host) => ({
      address: describeTarget({ dialect: 'mysql', url: split.urlFor(host) }, DEFAULT_PORT)?.address ?? host,
      config: { uri: split.urlFor(host) },
    }));
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
  /** The store's own connections (whose Galera nodes it tells apart); `undefined` for the application's. */
  readonly #nodes: MysqlNodes | undefined;
  /** One statement; `read` turns its answer (rows, or a result header) into what the caller wants. */
  readonly #statement: <T>(text: string, values: readonly unknown[], read: (answer: unknown) => T) => Promise<T>;
  /** Runs `work` on one live connection; `broken` keeps it out of the pool afterwards. */
  readonly #use: <T>(work: (connection: MysqlPoolConnectionLike, broken: (error: Error) => void) => Promise<T>) => Promise<T>;
  readonly connectionAttempts: number;
  readonly #where: TargetDescription | undefined;

  /** Opens a pool of the store's own, in utf8mb4 so 4-byte characters round-trip; or adopts the application's pool or connection. */
  static async open(settings: ConnectionSettings & MysqlSettings): Promise<MysqlDriver> {
    const { target } = settings;
    if ('connection' in target) {
      // A callback-style pool or connection carries its promise twin.
      const given = target.connection as { promise?: () => unknown };
      const promised = (typeof given.promise === 'function' ? given.promise() : given) as MysqlPoolLike | MysqlPoolConnectionLike;
      return new MysqlDriver('getConnection' in promised ? promised : connectionAsPool(promised), settings);
    }
    // The callback API: its promise twin captures a stack trace on every call and wraps every checkout anew.
    const mysql = (await importDriver('mysql2')) as Mysql2Module;
    const nodes = new MysqlNodes(mysql, nodesOf(target), {
      syncWait: settings.syncWait,
      common: {
        connectionLimit: settings.poolSize,
        connectTimeout: settings.connectTimeoutMs,
        charset: /^utf8(mb4)?$/i.test(settings.charset) ? 'utf8mb4_unicode_ci' : settings.charset,
        supportBigNumbers: true,
        enableKeepAlive: true,
      },
      checkMs: settings.connectionCheckMs,
      attempts: settings.poolSize + 1,
    });
    return new MysqlDriver(nodes, settings);
  }

  /** Over the store's own nodes, or the application's pool (a single connection shaped as one). */
  constructor(connections: MysqlNodes | MysqlPoolLike, settings: ConnectionSettings) {
    this.connectionAttempts = settings.poolSize;
    this.#where = describeTarget(settings.target, DEFAULT_PORT);
    if (connections instanceof MysqlNodes) {
      // The store's own: statements go straight to the nodes, which check idle connections themselves.
      this.#nodes = connections;
      this.#statement = (text, values, read) => connections.run(text, values, read);
      this.#use = (work) => connections.use(work);
      return;
    }
    const pool = connections;
    const lender = new ConnectionLender<MysqlPoolConnectionLike>(
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
    this.#statement = (text, values, read) => lender.use(async (connection) => read((await connection.query(text, values as unknown[]))[0]));
    this.#use = (work) => lender.use(work);
  }

  query(text: string, values: readonly unknown[]): Promise<Row[]> {
    return this.#statement(text, values, rowsIn);
  }

  execute(text: string, values: readonly unknown[]): Promise<number> {
    return this.#statement(text, values, affectedIn);
  }

  transaction<T>(work: (transaction: SqlRunner) => Promise<T>): Promise<T> {
    return this.#use((connection, broken) => transactionOn(connection, broken, work));
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
    return this.#nodes?.galera === true ? GALERA_CONFLICT_ATTEMPTS : undefined;
  }

  isTransientConflict(error: unknown): boolean {
    // A deadlock, which on Galera is also how a certification conflict is reported (at any statement, COMMIT
    // included); a lock wait timeout.
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
  }

  async close(): Promise<void> {
    // Never the application's pool or connection.
    await this.#nodes?.end();
  }
}
