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
 * round trip, once per connection.
 */
import { isNetworkError } from '../driver.js';
import type { MysqlPoolConnectionLike, MysqlPoolLike, MysqlQueryResult } from './mysql-driver.js';

/** What the store asks `mysql2/promise` for. */
export interface Mysql2PromiseModule {
  createPool(config: Record<string, unknown>): MysqlPoolLike;
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
  'ER_ACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE', 'ER_BAD_DB_ERROR', 'ER_DBACCESS_DENIED_ERROR',
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

function isLoginRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && LOGIN_CODES.has(code);
}

/** A row's first column of a `mysql2` result. */
function firstValue(result: MysqlQueryResult, column: string): unknown {
  const rows = result[0];
  return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined)?.[column] : undefined;
}

interface NodeState extends MysqlNodeAddress {
  pool: MysqlPoolLike | undefined;
  /** Set while the node is left for the others: the next try at it. */
  down: { probe: NodeJS.Timeout } | undefined;
}

/** The options of a node set. */
export interface MysqlNodesOptions {
  /** `SET SESSION wsrep_sync_wait = 1` on every new connection to a Galera node. */
  readonly syncWait: boolean;
  /** Settings every node's pool gets (limits, timeouts, charset). */
  readonly common: Readonly<Record<string, unknown>>;
}

/** The nodes of one database (or the one server), shaped as one `mysql2` pool. */
export class MysqlNodes implements MysqlPoolLike {
  readonly #mysql: Mysql2PromiseModule;
  readonly #nodes: NodeState[];
  readonly #options: MysqlNodesOptions;
  /** Physical connections already checked (mysql2 hands out a new promise wrapper on every checkout). */
  readonly #checked = new WeakSet<object>();
  #ended = false;
  /** Set once a node said it runs Galera. */
  #galera = false;

  constructor(mysql: Mysql2PromiseModule, nodes: readonly MysqlNodeAddress[], options: MysqlNodesOptions) {
    this.#mysql = mysql;
    this.#nodes = nodes.map((node) => ({ ...node, pool: undefined, down: undefined }));
    this.#options = options;
  }

  /** True once a node was found to be part of a Galera cluster. */
  get galera(): boolean {
    return this.#galera;
  }

  #pool(node: NodeState): MysqlPoolLike {
    node.pool ??= this.#mysql.createPool({ ...this.#options.common, ...node.config });
    return node.pool;
  }

  /**
   * A ready connection of the first node that gives one: the nodes in use
   * first, in their order; then those left for the others, in case one came
   * back before its probe saw it. Throws the last node's failure when none
   * does.
   */
  async getConnection(): Promise<MysqlPoolConnectionLike> {
    if (this.#ended) throw new Error('Pool is closed.');
    const order = [...this.#nodes.filter((node) => node.down === undefined), ...this.#nodes.filter((node) => node.down !== undefined)];
    let failure: unknown;
    for (const node of order) {
      try {
        const connection = await this.#connect(node);
        if (node.down !== undefined) this.#up(node);
        return connection;
      } catch (error) {
        if (isLoginRefusal(error)) throw error;
        this.#leave(node);
        failure = error;
      }
    }
    throw failure;
  }

  /** A connection of `node`, checked when it is new, reporting the node's failures as it is used. */
  async #connect(node: NodeState): Promise<MysqlPoolConnectionLike> {
    const connection = await this.#pool(node).getConnection();
    const physical = (connection as { connection?: object }).connection ?? connection;
    if (!this.#checked.has(physical)) {
      try {
        await this.#check(node, connection);
      } catch (error) {
        connection.destroy();
        throw error;
      }
      this.#checked.add(physical);
    }
    return this.#watched(node, connection, physical);
  }

  /**
   * Checks a new connection: is its node a Galera node, and a synced one?
   * With `syncWait`, makes its reads wait for the cluster's earlier writes.
   */
  async #check(node: NodeState, connection: MysqlPoolConnectionLike): Promise<void> {
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

  /** The connection, reporting a failure of its node when a statement meets one. */
  #watched(node: NodeState, connection: MysqlPoolConnectionLike, physical: object): MysqlPoolConnectionLike {
    const watch = <T>(promise: Promise<T>): Promise<T> =>
      promise.catch((error: unknown) => {
        if (isNodeFailure(error)) this.#leave(node);
        throw error;
      });
    return {
      query: (text, values) => watch(connection.query(text, values)),
      beginTransaction: () => watch(connection.beginTransaction()),
      commit: () => watch(connection.commit()),
      rollback: () => connection.rollback(),
      ping: () => watch(connection.ping()),
      release: () => connection.release(),
      destroy: () => connection.destroy(),
      // What stays the same for one physical connection: the lender keeps its idle time by it.
      connection: physical,
    } as MysqlPoolConnectionLike;
  }

  /** Leaves a node for the others, and probes it until it is back. */
  #leave(node: NodeState): void {
    if (node.down !== undefined || this.#ended) return;
    // Its idle connections reach a node that is gone or not synced: a new pool is opened when it is back.
    const stale = node.pool;
    node.pool = undefined;
    stale?.end().catch(() => undefined);
    const down = { probe: setTimeout(() => this.#probe(node, down), NODE_PROBE_MS).unref() };
    node.down = down;
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
  }

  /** One statement on a connection of the first ready node. */
  async query(text: string, values?: unknown[]): Promise<MysqlQueryResult> {
    const connection = await this.getConnection();
    let failed = false;
    try {
      return await connection.query(text, values);
    } catch (error) {
      failed = isNetworkError(error) || isNodeFailure(error) || (error as { fatal?: unknown }).fatal === true;
      throw error;
    } finally {
      if (failed) connection.destroy();
      else connection.release();
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    for (const node of this.#nodes) {
      if (node.down !== undefined) clearTimeout(node.down.probe);
      node.down = undefined;
    }
    await Promise.all(this.#nodes.map(async (node) => node.pool?.end()));
  }
}
