/**
 * PostgreSQL connections over `pg`: a structural subset of its Pool, so the
 * library has no hard dependency on the driver.
 *
 * The statements of a table's fixed set arrive with a name drawn from their
 * text (`sql/statement.ts`); they go as named statements, which the server
 * parses and plans once per connection, until one fails for its name (a
 * pooler that keeps no named statements per client): from then on this
 * store sends every statement unnamed, as it sends the others all along.
 */
import type { ConnectionFailure } from '../../core/backend.js';
import {
  connectionFailure,
  describeTarget,
  importDriver,
  isConnectFailure,
  isNetworkError,
  markConnectFailure,
  type ConnectionFailureReason,
  type TargetDescription,
} from '../driver.js';
import type { ConnectionSettings } from '../connection-settings.js';
import type { PostgresSettings } from './postgres-options.js';
import { isReadOnlyError, NoWritableHostError, PostgresHosts, postgresHostList } from './postgres-hosts.js';
import { ConnectionLender, Serial } from '../sql/pool.js';
import type { Row, SqlDriver, SqlRunner } from '../sql/sql-dialect.js';
import type { PgPoolClientLike, PgPoolLike, PgQueryable, PgQueryResultLike } from './pg-shapes.js';

export type { PgNamedQuery, PgPoolClientLike, PgPoolLike, PgQueryable, PgQueryResultLike } from './pg-shapes.js';

interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPoolLike;
}

/** pg's own default: a pooled connection idle this long is closed. */
const IDLE_TIMEOUT_MS = 10_000;

/** SQLSTATE classes and messages that mean the connection, not the statement, failed. */
const CONNECTION_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/** True when a `pg` error means the connection was lost or could not be made. */
export function isPostgresConnectionError(error: unknown): boolean {
  if (isNetworkError(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_SQLSTATES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|terminating connection|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended/i.test(
    message,
  );
}

/**
 * True when the connection is of no use for the store's writes: lost, or its
 * server is (now) a standby or read-only (SQLSTATE 25006, what a demoted
 * primary answers), or no host takes writes. The operation runs again on
 * another connection, of the host that accepts writes when several are given.
 */
function isPostgresFailoverError(error: unknown): boolean {
  return isPostgresConnectionError(error) || isReadOnlyError(error) || error instanceof NoWritableHostError;
}

/**
 * What a named statement fails with, before any of it ran, where the server
 * connection does not hold what `pg` believes this client prepared on it.
 * Behind PgBouncer in transaction mode (1.18 passes Parse and Bind through
 * to whichever server connection the client has at the moment):
 * 26000 (invalid_sql_statement_name, `prepared statement "sss_..." does not
 * exist`: prepared on another server connection) and 42P05
 * (duplicate_prepared_statement, `... already exists`: another client
 * prepared it on this one).
 */
const NAMED_STATEMENT_SQLSTATES: ReadonlySet<string> = new Set(['26000', '42P05']);

/**
 * True when a statement sent named failed for being named, before anything
 * ran: the codes above, and 0A000 `cached plan must not change result type`
 * (the table was altered under statements prepared before, which then fail
 * on every connection that holds them; an unnamed statement is planned anew).
 */
function isNamedStatementFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NAMED_STATEMENT_SQLSTATES.has(code)) return true;
  return code === '0A000' && error instanceof Error && /cached plan must not change result type/i.test(error.message);
}

/** One statement on a `pg` pool or client: under `name` when given (prepared the first time on each connection). */
function ask(on: PgQueryable, text: string, values: readonly unknown[], name: string | undefined): Promise<PgQueryResultLike> {
  return name === undefined ? on.query(text, values as unknown[]) : on.query({ name, text, values: values as unknown[] });
}

/** Errors that pg raises while opening a connection, as opposed to losing one. */
function isOpeningError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN') return true;
  const message = error instanceof Error ? error.message : '';
  return /timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i.test(message);
}

/** Why pg could not connect, from its error; `undefined` for any other error. */
function connectionFailureReason(error: unknown): ConnectionFailureReason | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  // invalid_password, invalid_authorization_specification; invalid_catalog_name (no such database)
  if (code === '28P01' || code === '28000') return 'credentials';
  if (code === '3D000') return 'database';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host';
  const message = error instanceof Error ? error.message : '';
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || /timeout exceeded when trying to connect|connection timeout/i.test(message)) return 'timeout';
  return undefined;
}

/**
 * A single `pg` Client the application handed over, shaped as a pool: calls
 * take turns, so a transaction never interleaves with another call.
 */
function clientAsPool(client: PgQueryable): PgPoolLike {
  const serial = new Serial();
  return {
    query: (statement, values) => serial.run(() => client.query(statement, values)),
    connect: async () => {
      const unlock = await serial.lock();
      return { query: (statement, values) => client.query(statement, values), release: () => unlock() };
    },
    end: async () => undefined,
    on: () => undefined,
  };
}

/**
 * The runner of a transaction (BEGIN ... COMMIT on one pooled client): every
 * statement unnamed, whatever name it comes with. A named statement that
 * fails for its name aborts the transaction around it (`current transaction
 * is aborted`), so it could not simply run again unnamed: the whole
 * transaction would have to, after a ROLLBACK, `work` included, whose
 * JavaScript side (the merge computed from the locked row, a purge batch's
 * count) would run twice. And behind a transaction-mode pooler the server
 * connection a transaction holds is one `pg` knows nothing of, so named
 * statements there would fail at random for as long as the store had not
 * found out (a transaction may well be its first statement to fail). Unnamed,
 * nothing in a transaction fails for a name, on any pooler, before or after
 * the switch; little is lost, as the statements in transactions (the row
 * lock of pessimistic saves, purge batches, the merge fallback) are few and
 * mostly built per call.
 */
function runnerOf(client: PgQueryable): SqlRunner {
  return {
    query: async (text, values) => (await client.query(text, values as unknown[])).rows,
    execute: async (text, values) => (await client.query(text, values as unknown[])).rowCount ?? 0,
  };
}

/**
 * Pooled clients that already carry our error listener. Module-wide: a pool
 * handed to several stores lends each client to all of them, and one
 * listener per client is enough (one per store would soon trip Node's
 * MaxListenersExceededWarning).
 */
const LISTENING = new WeakSet<PgPoolClientLike>();

/** The store's connections to PostgreSQL: its own pool, or the application's pool or client. */
export class PostgresDriver implements SqlDriver {
  readonly #pool: PgPoolLike;
  readonly #ownsPool: boolean;
  readonly #lender: ConnectionLender<PgPoolClientLike>;
  /** Single statements go straight to the pool: it is ours, and closes connections before they need a check. */
  readonly #direct: boolean;
  readonly connectionAttempts: number;
  readonly #where: TargetDescription | undefined;
  /**
   * Statements of the fixed set go named: until one fails for its name, and
   * from then on never again (`preparedStatements: false`: never). Per store,
   * also on a pool handed over: the application's other statements are its own.
   */
  #named: boolean;

  /** Opens a pool of the store's own, or adopts the application's pool or client. */
  static async open(settings: ConnectionSettings & PostgresSettings): Promise<PostgresDriver> {
    const { target } = settings;
    if ('connection' in target) {
      const given = target.connection as PgPoolLike;
      const isPool = 'totalCount' in given && typeof given.connect === 'function';
      return new PostgresDriver(isPool ? given : clientAsPool(given), settings, false);
    }
    const pg = (await importDriver('pg')) as PgModule;
    const createPool = (where: Record<string, unknown>): PgPoolLike => {
      const pool = new pg.Pool({
        ...where,
        max: settings.poolSize,
        connectionTimeoutMillis: settings.connectTimeoutMs,
        // The pool closes a connection before it has idled past connectionCheckThreshold, so none needs a check
        // before use and single statements can take pg's own path.
        idleTimeoutMillis: Math.min(settings.connectionCheckMs || IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS),
        ...(settings.charset.toLowerCase().startsWith('utf8') ? {} : { client_encoding: settings.charset }),
      });
      // A pooled connection that dies while idle is reported here; without a listener it would crash the process.
      pool.on('error', () => undefined);
      return pool;
    };
    if ('url' in target) {
      const list = postgresHostList(target.url);
      // Several hosts, or a host that must accept writes: libpq's meaning, which pg does not read.
      if (list.hosts.length > 1 || list.attrs !== 'any') {
        const hosts = new PostgresHosts(list, (url) => createPool({ connectionString: url }), isPostgresFailoverError);
        return new PostgresDriver(hosts, settings, true, hosts);
      }
      return new PostgresDriver(createPool({ connectionString: list.hosts[0]?.url ?? target.url }), settings, true);
    }
    if (!('parameters' in target)) throw new Error('a PostgreSQL store needs a URL, connection parameters or a connection');
    return new PostgresDriver(createPool({ ...target.parameters }), settings, true);
  }

  /**
   * `hosts`, when given, is `pool` itself: the pools of several hosts, of which it tells a connection's failure.
   * Named statements need nothing of them: `pg` keeps what it prepared per client, so the connections of a host
   * found after a failover prepare each statement anew the first time they run it.
   */
  constructor(pool: PgPoolLike, settings: ConnectionSettings & PostgresSettings, ownsPool: boolean, hosts?: PostgresHosts) {
    this.#pool = pool;
    this.#named = settings.preparedStatements;
    this.#ownsPool = ownsPool;
    // Several hosts: every statement takes a checked connection of the writable one.
    this.#direct = ownsPool && hosts === undefined && settings.connectionCheckMs > 0;
    this.#where = describeTarget(settings.target, 5432);
    this.connectionAttempts = settings.poolSize * (hosts?.addresses.length ?? 1);
    this.#lender = new ConnectionLender<PgPoolClientLike>(
      {
        acquire: async () => {
          const client = await pool.connect();
          if (!LISTENING.has(client)) {
            // A checked-out client whose connection drops emits 'error'; unheard, that would crash the process.
            // The failure reaches the caller through its query, and the client is destroyed when given back.
            client.on?.('error', () => undefined);
            LISTENING.add(client);
          }
          return client;
        },
        ping: (client) => client.query('SELECT 1'),
        release: (client, broken) => (hosts === undefined ? client.release(broken) : hosts.release(client, broken)),
        isConnectionError: isPostgresFailoverError,
      },
      settings.connectionCheckMs,
      settings.poolSize + 1,
    );
  }

  /** One statement on a live client, named when `name` is given. */
  async #send(text: string, values: readonly unknown[], name: string | undefined): Promise<PgQueryResultLike> {
    if (!this.#direct) return this.#lender.use((client) => ask(client, text, values, name));
    try {
      return await ask(this.#pool, text, values, name);
    } catch (error) {
      // pg's pool.query opens a connection when none is idle: a failure to open one means the database is unreachable.
      if (isOpeningError(error)) markConnectFailure(error);
      throw error;
    }
  }

  /**
   * One statement: named when it has a name and the store still sends names.
   * One that fails for its name (nothing of it ran: the error comes from
   * Parse or Bind, before Execute) switches the store to unnamed statements
   * for good and runs again, unnamed, as one statement outside a transaction
   * can: no error reaches the caller, and nothing is logged. Statements in
   * flight meanwhile do the same; the others go unnamed from now on.
   */
  async #query(text: string, values: readonly unknown[], name: string | undefined): Promise<PgQueryResultLike> {
    if (name === undefined || !this.#named) return this.#send(text, values, undefined);
    try {
      return await this.#send(text, values, name);
    } catch (error) {
      if (!isNamedStatementFailure(error)) throw error;
      this.#named = false;
      return this.#send(text, values, undefined);
    }
  }

  async query(text: string, values: readonly unknown[], name?: string): Promise<Row[]> {
    return (await this.#query(text, values, name)).rows;
  }

  async execute(text: string, values: readonly unknown[], name?: string): Promise<number> {
    return (await this.#query(text, values, name)).rowCount ?? 0;
  }

  transaction<T>(work: (transaction: SqlRunner) => Promise<T>): Promise<T> {
    return this.#lender.use(async (client, broken) => {
      await client.query('BEGIN');
      try {
        const result = await work(runnerOf(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        // A connection that cannot roll back is not returned to the pool.
        await client
          .query('ROLLBACK')
          .catch((rollbackError: unknown) => broken(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError))));
        throw error;
      }
    });
  }

  async ping(): Promise<void> {
    await this.#send('SELECT 1', [], undefined);
  }

  isConnectionError(error: unknown): boolean {
    return isPostgresFailoverError(error);
  }

  isConnectFailure(error: unknown): boolean {
    return isConnectFailure(error);
  }

  describeConnectionFailure(error: unknown): ConnectionFailure | undefined {
    if (error instanceof NoWritableHostError) return { kind: 'unreachable', message: `${error.message}; waiting for a primary` };
    const reason = connectionFailureReason(error);
    return reason === undefined ? undefined : connectionFailure(reason, this.#where, error);
  }

  isTransientConflict(error: unknown): boolean {
    // deadlock_detected, serialization_failure, lock_not_available
    const code = (error as { code?: unknown } | null)?.code;
    return code === '40P01' || code === '40001' || code === '55P03';
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
