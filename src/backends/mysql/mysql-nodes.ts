/**
 * The store's own MySQL/MariaDB connections, over one server or the nodes of
 * a Galera cluster: a `mysql2` pool per node, used in the order the nodes
 * were given. A node that refuses connections, or answers but is not synced
 * (`wsrep_ready` OFF: joining, donor to a state transfer, or cut off from the
 * cluster's majority, where every statement fails with error 1047), is left
 * for the next one, and probed in the background until it is back; then it
 * is used again.
 *
 * Each new connection is checked before its first use: on Galera, whether its
 * node is ready, and with `syncWait` its reads are made causal
 * (`wsrep_sync_wait`). On a server without Galera the check finds so in one
 * round trip, once per connection. A connection idle longer than
 * `connectionCheckThreshold` is pinged before use and replaced if dead.
 *
 * The pools are `mysql2`'s callback pools, promised here: its promise layer
 * captures a stack trace on every statement and wraps every checkout in a new
 * object, which costs more CPU than the statement itself on a busy server. A
 * single statement takes one promise from checkout to release when the
 * first node is up and its connection is known and fresh.
 */
import { acquireOrMark, isNetworkError, withTimeout } from '../driver.js';
import { PING_TIMEOUT_MS } from '../sql/pool.js';
import type { MysqlPoolConnectionLike, MysqlQueryResult } from './mysql2-promise.js';

/** How `mysql2`'s callback API answers a statement: the error, or rows (a SELECT) or a result header, and the fields. */
export type Mysql2Callback = (error: Error | null, answer?: unknown, fields?: unknown) => void;

/** A connection checked out of a callback-style `mysql2` pool. */
export interface Mysql2PoolConnection {
  query(sql: string, values: readonly unknown[] | undefined, callback: Mysql2Callback): unknown;
  ping(callback: (error: Error | null) => void): unknown;
  release(): void;
  destroy(): void;
}

/** The part of a callback-style `mysql2` pool the store uses. */
export interface Mysql2Pool {
  getConnection(callback: (error: Error | null, connection: Mysql2PoolConnection) => void): void;
  end(callback: (error?: Error | null) => void): void;
}

/** What the store asks `mysql2` (its callback API) for. */
export interface Mysql2Module {
  createPool(config: Record<string, unknown>): Mysql2Pool;
}

/** One node: where it is, and how to reach it. */
export interface MysqlNodeAddress {
  /** `host:port`, for messages. */
  readonly address: string;
  /** The `mysql2` pool settings that reach it (a `uri`, or host and port). */
  readonly config: Readonly<Record<string, unknown>>;
}

/** How often, in ms, a node left for another is tried again. */
const NODE_PROBE_MS = 1000;

/** MySQL's and MariaDB's numbers for errors that mean the node, not the statement, is unusable. */
const NODE_ERRNOS: ReadonlySet<number> = new Set([
  // WSREP has not yet prepared node for application use (joining, donor, non-primary component)
  1047,
  // Server shutdown in progress
  1053,
]);

/** A login the server refused: every node has the same accounts, so no other node will take it. */
const LOGIN_CODES: ReadonlySet<string> = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_NOT_SUPPORTED_AUTH_MODE',
  'ER_BAD_DB_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
]);

/** mysql2 error codes that mean the connection, not the statement, failed. */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_NET_READ_ERROR',
]);

/** A connection whose node answered but is not synced with its cluster. */
export class NodeNotReadyError extends Error {
  /** As MariaDB numbers the same condition when a statement runs there. */
  readonly errno = 1047;
  readonly code = 'ER_WSREP_NOT_READY';
}

/** True when `error` says the node a connection reached cannot serve it (not synced, shutting down). */
export function isNodeFailure(error: unknown): boolean {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return error instanceof NodeNotReadyError || (typeof errno === 'number' && NODE_ERRNOS.has(errno));
}

/** True when a mysql2 error means the connection was lost or could not be made, or its node cannot serve it. */
export function isMysqlConnectionError(error: unknown): boolean {
  if (isNetworkError(error) || isNodeFailure(error)) return true;
  const { code, fatal } = (error ?? {}) as { code?: unknown; fatal?: unknown };
  if (fatal === true) return true;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /closed state|Connection lost|connect ETIMEDOUT|Pool is closed/i.test(message);
}

function isLoginRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && LOGIN_CODES.has(code);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A row's first column of a `mysql2` result. */
function firstValue(result: MysqlQueryResult, column: string): unknown {
  const rows = result[0];
  return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined)?.[column] : undefined;
}

interface NodeState extends MysqlNodeAddress {
  pool: Mysql2Pool | undefined;
  /** Set while the node is left for the others: the next try at it. */
  down: { probe: NodeJS.Timeout } | undefined;
}

/** What a node's pool answered to a checkout. */
interface Checkout {
  readonly node: NodeState;
  readonly error: Error | null;
  readonly raw: Mysql2PoolConnection | undefined;
}

/**
 * One physical connection of a node, promise-shaped for transactions: made
 * once, when the connection is first checked, and reused on every checkout.
 * A statement that finds its node unable to serve reports so.
 */
class NodeConnection implements MysqlPoolConnectionLike {
  /** When it was last given back to its pool (epoch ms): how long it has idled. */
  lastUsed = Date.now();

  constructor(
    readonly node: NodeState,
    readonly raw: Mysql2PoolConnection,
    private readonly nodeFailed: (node: NodeState) => void,
  ) {}

  query(text: string, values?: readonly unknown[]): Promise<MysqlQueryResult> {
    return new Promise((resolve, reject) => {
      this.raw.query(text, values, (error, answer, fields) => {
        if (error) {
          if (isNodeFailure(error)) this.nodeFailed(this.node);
          reject(error);
        } else {
          resolve([answer, fields]);
        }
      });
    });
  }

  async beginTransaction(): Promise<void> {
    await this.query('START TRANSACTION');
  }

  async commit(): Promise<void> {
    await this.query('COMMIT');
  }

  async rollback(): Promise<void> {
    await this.query('ROLLBACK');
  }

  ping(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.raw.ping((error) => {
        if (error) {
          if (isNodeFailure(error)) this.nodeFailed(this.node);
          reject(error);
        } else {
          resolve();
        }
      });
    });
  }

  release(): void {
    this.lastUsed = Date.now();
    this.raw.release();
  }

  destroy(): void {
    this.raw.destroy();
  }
}

/** The options of a node set. */
export interface MysqlNodesOptions {
  /** `SET SESSION wsrep_sync_wait = 1` on every new connection to a Galera node. */
  readonly syncWait: boolean;
  /** Settings every node's pool gets (limits, timeouts, charset). */
  readonly common: Readonly<Record<string, unknown>>;
  /** A connection idle longer than this (ms) is pinged before use; `0` pings every time. */
  readonly checkMs: number;
  /** How many dead idle connections to skip before giving up: a whole pool's worth. */
  readonly attempts: number;
}

/** The nodes of one database (or the one server): its connections, checked, on the first node that can serve. */
export class MysqlNodes {
  readonly #mysql: Mysql2Module;
  readonly #nodes: NodeState[];
  readonly #options: MysqlNodesOptions;
  /** The store's view of each physical connection already checked. */
  readonly #known = new WeakMap<Mysql2PoolConnection, NodeConnection>();
  /** The first node, in the given order, not left for the others: where a statement goes first. */
  #preferred: NodeState | undefined;
  readonly #nodeFailed = (node: NodeState): void => this.#leave(node);
  #ended = false;
  /** Set once a node said it runs Galera. */
  #galera = false;

  constructor(mysql: Mysql2Module, nodes: readonly MysqlNodeAddress[], options: MysqlNodesOptions) {
    this.#mysql = mysql;
    this.#nodes = nodes.map((node) => ({ ...node, pool: undefined, down: undefined }));
    this.#preferred = this.#nodes[0];
    this.#options = options;
  }

  /** True once a node was found to be part of a Galera cluster. */
  get galera(): boolean {
    return this.#galera;
  }

  #pool(node: NodeState): Mysql2Pool {
    node.pool ??= this.#mysql.createPool({ ...this.#options.common, ...node.config });
    return node.pool;
  }

  #idle(connection: NodeConnection): boolean {
    return Date.now() - connection.lastUsed > this.#options.checkMs;
  }

  /**
   * One statement; `read` turns its answer (rows, or a result header) into
   * what the caller wants. A connection the statement finds broken is
   * destroyed instead of pooled again.
   */
  run<T>(text: string, values: readonly unknown[], read: (answer: unknown) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      const send = (connection: NodeConnection): void => {
        connection.raw.query(text, values, (error, answer) => {
          if (!error) {
            connection.release();
            resolve(read(answer));
            return;
          }
          if (isNodeFailure(error)) this.#leave(connection.node);
          if (isMysqlConnectionError(error)) connection.destroy();
          else connection.release();
          reject(error);
        });
      };
      const node = this.#preferred;
      if (node === undefined || this.#ended) {
        this.#acquire(undefined).then(send, reject);
        return;
      }
      this.#pool(node).getConnection((error, raw) => {
        // The common case: a connection of the first node, checked before and used lately.
        const known = error ? undefined : this.#known.get(raw);
        if (known !== undefined && !this.#idle(known)) send(known);
        else this.#acquire({ node, error: error ?? null, raw: error ? undefined : raw }).then(send, reject);
      });
    });
  }

  /**
   * Runs `work` on a live connection (for a transaction). `work` may call
   * `broken` when it leaves the connection unusable (a failed rollback); a
   * connection error does so by itself.
   */
  async use<T>(work: (connection: MysqlPoolConnectionLike, broken: (error: Error) => void) => Promise<T>): Promise<T> {
    const connection = await this.#acquire(undefined);
    let brokenBy: Error | undefined;
    try {
      return await work(connection, (error) => {
        brokenBy = error;
      });
    } catch (error) {
      if (isMysqlConnectionError(error)) brokenBy ??= asError(error);
      throw error;
    } finally {
      if (brokenBy === undefined) connection.release();
      else connection.destroy();
    }
  }

  /**
   * A live connection: one `first` gave or another of the first node that
   * gives one; pinged first when it has idled longer than the threshold,
   * and replaced when dead. A failure to get any is marked as a failure to
   * connect.
   */
  async #acquire(first: Checkout | undefined): Promise<NodeConnection> {
    for (let attempt = 1; ; attempt++) {
      const connection = await acquireOrMark(() => this.#connectAny(first));
      first = undefined;
      if (!this.#idle(connection)) return connection;
      try {
        await withTimeout(connection.ping(), PING_TIMEOUT_MS, 'connection check');
        return connection;
      } catch (error) {
        connection.destroy();
        if (attempt >= this.#options.attempts) throw error;
      }
    }
  }

  /**
   * A ready connection of the first node that gives one, starting with the
   * answer `first` already has: the nodes in use first, in their order; then
   * those left for the others, in case one came back before its probe saw
   * it. Throws the last node's failure when none does.
   */
  async #connectAny(first: Checkout | undefined): Promise<NodeConnection> {
    let failure: unknown;
    if (first !== undefined) {
      try {
        return this.#upAgain(first.node, await this.#ready(first));
      } catch (error) {
        if (isLoginRefusal(error)) throw error;
        this.#leave(first.node);
        failure = error;
      }
    }
    if (this.#ended) throw new Error('Pool is closed.');
    const order = [...this.#nodes.filter((node) => node.down === undefined), ...this.#nodes.filter((node) => node.down !== undefined)];
    for (const node of order) {
      if (node === first?.node) continue;
      try {
        return this.#upAgain(node, await this.#connect(node));
      } catch (error) {
        if (isLoginRefusal(error)) throw error;
        this.#leave(node);
        failure = error;
      }
    }
    throw failure;
  }

  #upAgain(node: NodeState, connection: NodeConnection): NodeConnection {
    if (node.down !== undefined) this.#up(node);
    return connection;
  }

  /** A ready connection of `node`, checked when it is new. */
  #connect(node: NodeState): Promise<NodeConnection> {
    return new Promise<Checkout>((resolve) => {
      this.#pool(node).getConnection((error, raw) => resolve({ node, error: error ?? null, raw: error ? undefined : raw }));
    }).then((checkout) => this.#ready(checkout));
  }

  /** The connection a checkout gave, checked when it is new; its failure otherwise. */
  async #ready({ node, error, raw }: Checkout): Promise<NodeConnection> {
    if (error !== null || raw === undefined) throw error ?? new Error('the pool gave no connection');
    const known = this.#known.get(raw);
    if (known !== undefined) return known;
    const connection = new NodeConnection(node, raw, this.#nodeFailed);
    try {
      await this.#check(node, connection);
    } catch (checkError) {
      raw.destroy();
      throw checkError;
    }
    connection.lastUsed = Date.now();
    this.#known.set(raw, connection);
    return connection;
  }

  /**
   * Checks a new connection: is its node a Galera node, and a synced one?
   * With `syncWait`, makes its reads wait for the cluster's earlier writes.
   */
  async #check(node: NodeState, connection: NodeConnection): Promise<void> {
    let galera: boolean;
    try {
      galera = Number(firstValue(await connection.query('SELECT @@wsrep_on AS galera'), 'galera')) === 1;
    } catch (error) {
      // ER_UNKNOWN_SYSTEM_VARIABLE: MySQL, which has no Galera in it.
      if ((error as { errno?: unknown }).errno === 1193) return;
      throw error;
    }
    if (!galera) return;
    this.#galera = true;
    // SHOW STATUS answers on a node that is not ready, where a SELECT on a table fails with 1047.
    const [status] = await connection.query("SHOW GLOBAL STATUS LIKE 'wsrep_ready'");
    const ready = Array.isArray(status) && String((status[0] as Record<string, unknown> | undefined)?.['Value']).toUpperCase() === 'ON';
    if (!ready) throw new NodeNotReadyError(`the Galera node at ${node.address} is not synced with its cluster (wsrep_ready is OFF)`);
    if (this.#options.syncWait) await connection.query('SET SESSION wsrep_sync_wait = 1');
  }

  /** Leaves a node for the others, and probes it until it is back. */
  #leave(node: NodeState): void {
    if (node.down !== undefined || this.#ended) return;
    // Its idle connections reach a node that is gone or not synced: a new pool is opened when it is back.
    const stale = node.pool;
    node.pool = undefined;
    stale?.end(() => undefined);
    const down = { probe: setTimeout(() => this.#probe(node, down), NODE_PROBE_MS).unref() };
    node.down = down;
    this.#preferred = this.#nodes.find((each) => each.down === undefined);
  }

  /** One try at a node left for the others; the next is scheduled once this one is over, so tries never pile up. */
  #probe(node: NodeState, down: NonNullable<NodeState['down']>): void {
    this.#connect(node).then(
      (connection) => {
        connection.release();
        this.#up(node);
      },
      () => {
        if (node.down === down && !this.#ended) down.probe = setTimeout(() => this.#probe(node, down), NODE_PROBE_MS).unref();
      },
    );
  }

  #up(node: NodeState): void {
    if (node.down === undefined) return;
    clearTimeout(node.down.probe);
    node.down = undefined;
    this.#preferred = this.#nodes.find((each) => each.down === undefined);
  }

  async end(): Promise<void> {
    this.#ended = true;
    for (const node of this.#nodes) {
      if (node.down !== undefined) clearTimeout(node.down.probe);
      node.down = undefined;
    }
    await Promise.all(
      this.#nodes.map(
        (node) =>
          new Promise<void>((resolve, reject) => {
            if (node.pool === undefined) resolve();
            else node.pool.end((error) => (error ? reject(error) : resolve()));
          }),
      ),
    );
  }
}
