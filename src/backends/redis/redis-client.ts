/**
 * One thin interface over the Redis clients the store accepts: node-redis
 * (`redis` 5 or 6: a client, a pool, a cluster, or a Sentinel client) and
 * ioredis (a `Redis`, Sentinel-backed or not, or a `Cluster`), recognised by
 * their shape, never by class, so neither package needs to be installed for
 * the other to work.
 *
 * Commands go as arrays of strings; replies come back as strings, numbers,
 * nils and arrays of those (commands whose RESP2 and RESP3 shapes differ,
 * such as HGETALL, are not used). Every command has a deadline of the
 * store's own, since neither client bounds the time a command waits for a
 * server that stopped answering.
 */
import type { ConnectionSettings, ConnectionTarget } from '../connection-settings.js';
import { invalidOption } from '../../core/option-table.js';
import { SessionStoreError } from '../../errors.js';
import { importDriver } from '../driver.js';
import { RedisNotReplicatedError, RedisUnreachableError } from './redis-errors.js';
import { parseRedisTarget, type RedisAddress, type RedisEndpoint } from './redis-url.js';

/** Which client a link drives. */
export type RedisClientKind = 'node-redis' | 'node-redis-cluster' | 'node-redis-sentinel' | 'ioredis' | 'ioredis-cluster';

/** One server: the only one, or a master of a cluster. */
export interface RedisNode {
  /** `host:port`, for messages. */
  readonly address: string;
  /** Sends one command to this very server. */
  send(args: readonly string[]): Promise<unknown>;
}

/** What the backend asks of a client. */
export interface RedisLink {
  readonly kind: RedisClientKind;
  /** True for a Redis Cluster. */
  readonly cluster: boolean;
  /** True when the store opened the client (and closes it). */
  readonly owned: boolean;
  /** Sends one command. On a cluster, `key` is a key of the command: its slot picks the node (`undefined`: any node). */
  send(key: string | undefined, args: readonly string[]): Promise<unknown>;
  /** Every master (the one server when not a cluster). */
  masters(): Promise<readonly RedisNode[]>;
  /** Ends the client if the store opened it; stops listening to it otherwise. */
  close(): Promise<void>;
}

/* ------------------------------------------------------------------------------------------------
 * The clients' shapes, as far as the store uses them.
 * --------------------------------------------------------------------------------------------- */

type Listener = (...args: unknown[]) => void;

/** What both clients inherit from EventEmitter. */
interface Emitter {
  on?(event: string, listener: Listener): unknown;
  off?(event: string, listener: Listener): unknown;
  removeListener?(event: string, listener: Listener): unknown;
}

/** A node-redis client or pool. */
interface NodeRedisClientLike extends Emitter {
  sendCommand(args: readonly string[], options?: object): Promise<unknown>;
  readonly isReady?: boolean;
  readonly isOpen?: boolean;
  connect?(): Promise<unknown>;
  close?(): Promise<unknown>;
  destroy?(): unknown;
}

/** A node of a node-redis cluster's `masters` list. */
interface NodeRedisShard {
  readonly host?: string;
  readonly port?: number;
}

/** A node-redis cluster. */
interface NodeRedisClusterLike extends Emitter {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: readonly string[], options?: object): Promise<unknown>;
  readonly masters: readonly NodeRedisShard[];
  nodeClient(node: NodeRedisShard): NodeRedisClientLike | Promise<NodeRedisClientLike>;
  connect?(): Promise<unknown>;
  close?(): Promise<unknown>;
  destroy?(): unknown;
}

/** A node-redis Sentinel client (`createSentinel`): commands go to the master Sentinel names. */
interface NodeRedisSentinelLike extends Emitter {
  sendCommand(isReadonly: boolean | undefined, args: readonly string[], options?: object): Promise<unknown>;
  getMasterNode(): { readonly host: string; readonly port: number } | undefined;
  readonly isReady?: boolean;
  readonly isOpen?: boolean;
  connect?(): Promise<unknown>;
  close?(): Promise<unknown>;
  destroy?(): unknown;
}

/** An ioredis `Redis` or `Cluster`. */
interface IoRedisLike extends Emitter {
  call(command: string, ...args: string[]): Promise<unknown>;
  callBuffer(command: string, ...args: string[]): Promise<unknown>;
  readonly status?: string;
  readonly isCluster?: boolean;
  readonly options?: { readonly keyPrefix?: string; readonly host?: string; readonly port?: number; readonly redisOptions?: { readonly keyPrefix?: string } };
  nodes?(role: 'master'): IoRedisLike[];
  connect?(): Promise<unknown>;
  quit?(): Promise<unknown>;
  disconnect?(): unknown;
}

/** The kind of a handed-over client, or `undefined` when it is none of them. */
export function redisClientKind(connection: object): RedisClientKind | undefined {
  const candidate = connection as Partial<IoRedisLike & NodeRedisClusterLike & NodeRedisClientLike>;
  // ioredis first: it has a sendCommand too, of another signature.
  if (typeof candidate.call === 'function' && typeof candidate.callBuffer === 'function') {
    return candidate.isCluster === true && typeof candidate.nodes === 'function' ? 'ioredis-cluster' : 'ioredis';
  }
  if (typeof candidate.nodeClient === 'function' && Array.isArray(candidate.masters)) return 'node-redis-cluster';
  // A Sentinel client has a sendCommand too, whose first argument says whether the command only reads.
  if (typeof (connection as Partial<NodeRedisSentinelLike>).getMasterNode === 'function' && typeof candidate.sendCommand === 'function')
    return 'node-redis-sentinel';
  if (typeof candidate.sendCommand === 'function') return 'node-redis';
  return undefined;
}

/* ------------------------------------------------------------------------------------------------
 * Deadlines and the commands themselves.
 * --------------------------------------------------------------------------------------------- */

/** Rejects with {@link RedisUnreachableError} when `promise` takes longer than `ms` (waiting for a connection, closing). */
function withDeadline<T>(promise: Promise<T>, ms: number, what: string, lastError: () => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RedisUnreachableError(`${what}: no answer from Redis in ${ms} ms`, lastError())), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        // After the deadline, a late rejection of the command itself is nobody's concern any more.
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Buffers (a client set to hand them back) are read as UTF-8, like strings. */
function normalise(reply: unknown): unknown {
  if (typeof reply !== 'object' || reply === null) return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  // Arrays are copied only when something in them needs reading (replies of strings and integers are most of them).
  if (Array.isArray(reply) && reply.some((item) => typeof item === 'object' && item !== null)) return reply.map(normalise);
  return reply;
}

/** Sends one command through a client; on a cluster, `key` (a key of the command) picks the node. */
type Sender = (key: string | undefined, args: readonly string[]) => Promise<unknown>;

/** A command waiting for its reply, in its link's queue of pending commands. */
interface PendingCommand {
  /** The command's name, for the error. */
  readonly what: string;
  /** `performance.now()` at which it fails. */
  readonly deadline: number;
  readonly reject: (error: unknown) => void;
  previous: PendingCommand | undefined;
  next: PendingCommand | undefined;
  /** False once it was answered or timed out. */
  queued: boolean;
}

/**
 * The deadline of every command of a link, kept by one timer. Every command
 * has the same allowance, so commands queued in the order they were sent
 * are also in the order their deadlines fall: the timer only ever waits for
 * the oldest. A command is one small record and two callbacks, with no
 * timer of its own to arm and clear on every request.
 */
class CommandDeadlines {
  readonly #ms: number;
  readonly #lastError: () => unknown;
  #oldest: PendingCommand | undefined;
  #newest: PendingCommand | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number, lastError: () => unknown) {
    this.#ms = ms;
    this.#lastError = lastError;
  }

  /**
   * Sends a command (`send(args)`) and resolves to its reply as the store
   * reads it (see {@link normalise}); rejects with {@link RedisUnreachableError}
   * when it takes longer than the allowance.
   */
  send(sender: Sender, key: string | undefined, args: readonly string[]): Promise<unknown> {
    let reply: Promise<unknown>;
    try {
      reply = sender(key, args);
    } catch (error) {
      // A client that throws instead of rejecting (an argument it refuses) fails the call the same way.
      return Promise.reject(error);
    }
    return new Promise<unknown>((resolve, reject) => {
      const pending: PendingCommand = {
        what: args[0] as string,
        deadline: performance.now() + this.#ms,
        reject,
        previous: this.#newest,
        next: undefined,
        queued: true,
      };
      if (this.#newest === undefined) this.#oldest = pending;
      else this.#newest.next = pending;
      this.#newest = pending;
      this.#timer ??= setTimeout(this.#expire, this.#ms);
      reply.then(
        (value) => {
          if (this.#unqueue(pending)) resolve(normalise(value));
        },
        (error: unknown) => {
          // After the deadline, a late answer of the command itself is nobody's concern any more.
          if (this.#unqueue(pending)) reject(error);
        },
      );
    });
  }

  /** Takes a command out of the queue; false when it was out already (timed out). */
  #unqueue(pending: PendingCommand): boolean {
    if (!pending.queued) return false;
    pending.queued = false;
    const { previous, next } = pending;
    if (previous === undefined) this.#oldest = next;
    else previous.next = next;
    if (next === undefined) this.#newest = previous;
    else next.previous = previous;
    if (this.#oldest === undefined && this.#timer !== undefined) {
      // Nothing left to watch: no timer keeps the process alive.
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return true;
  }

  /** Fails the commands whose deadline passed, then waits for the next oldest. */
  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (let oldest = this.#oldest; oldest !== undefined && oldest.deadline <= now; oldest = this.#oldest) {
      this.#unqueue(oldest);
      oldest.reject(new RedisUnreachableError(`${oldest.what}: no answer from Redis in ${this.#ms} ms`, this.#lastError()));
    }
    if (this.#oldest !== undefined) this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(this.#oldest.deadline - now)));
  };
}

/** A server's own `send`, as a {@link Sender}. */
function nodeSender(node: RedisNode): Sender {
  return (_key, args) => node.send(args);
}

interface LinkParts {
  readonly kind: RedisClientKind;
  readonly send: Sender;
  readonly masters: () => Promise<readonly RedisNode[]>;
  readonly emitters: readonly Emitter[];
}

function ioCall(client: IoRedisLike, args: readonly string[]): Promise<unknown> {
  // call(command, ...args): the array as it is, with no copy of it split into a head and a rest.
  return Reflect.apply(client.call, client, args) as Promise<unknown>;
}

function ioAddress(client: IoRedisLike): string {
  return `${client.options?.host ?? 'localhost'}:${client.options?.port ?? 6379}`;
}

/** How to send commands through a client of each kind. */
function partsOf(kind: RedisClientKind, client: object): LinkParts {
  switch (kind) {
    case 'node-redis': {
      const single = client as NodeRedisClientLike;
      const send = (_key: string | undefined, args: readonly string[]): Promise<unknown> => single.sendCommand(args);
      return { kind, send, masters: async () => [{ address: 'the server', send: (args) => send(undefined, args) }], emitters: [single] };
    }
    case 'node-redis-cluster': {
      const cluster = client as NodeRedisClusterLike;
      return {
        kind,
        send: (key, args) => cluster.sendCommand(key, false, args),
        masters: async () =>
          cluster.masters.map((master) => ({
            address: `${master.host ?? '?'}:${master.port ?? '?'}`,
            send: async (args: readonly string[]) => (await cluster.nodeClient(master)).sendCommand(args),
          })),
        emitters: [cluster],
      };
    }
    case 'node-redis-sentinel': {
      const sentinel = client as NodeRedisSentinelLike;
      const send = (_key: string | undefined, args: readonly string[]): Promise<unknown> => sentinel.sendCommand(false, args);
      const address = (): string => {
        const master = sentinel.getMasterNode();
        return master === undefined ? 'the master' : `${master.host}:${master.port}`;
      };
      return { kind, send, masters: async () => [{ address: address(), send: (args) => send(undefined, args) }], emitters: [sentinel] };
    }
    case 'ioredis': {
      const single = client as IoRedisLike;
      const send = (_key: string | undefined, args: readonly string[]): Promise<unknown> => ioCall(single, args);
      return { kind, send, masters: async () => [{ address: ioAddress(single), send: (args) => send(undefined, args) }], emitters: [single] };
    }
    case 'ioredis-cluster': {
      const cluster = client as IoRedisLike;
      return {
        kind,
        // ioredis finds the keys of a command (EVALSHA's too) and routes it by them.
        send: (_key, args) => ioCall(cluster, args),
        masters: async () =>
          (cluster.nodes?.('master') ?? []).map((node) => ({ address: ioAddress(node), send: (args: readonly string[]) => ioCall(node, args) })),
        emitters: [cluster],
      };
    }
  }
}

/** Listens for 'error' events (an unheard one would crash the process) and remembers the last. */
class ErrorListener {
  last: unknown;
  readonly #listener: Listener = (error) => {
    this.last = error;
  };
  readonly #emitters: Emitter[] = [];

  listen(emitter: Emitter): void {
    if (typeof emitter.on !== 'function') return;
    // node-redis clusters report a failing node as 'node-error', and the cluster as 'error'.
    for (const event of ['error', 'node-error']) emitter.on(event, this.#listener);
    this.#emitters.push(emitter);
  }

  stop(): void {
    for (const emitter of this.#emitters) {
      for (const event of ['error', 'node-error']) (emitter.off ?? emitter.removeListener)?.call(emitter, event, this.#listener);
    }
  }
}

/** A client handed over by the application: used as it is, never connected or closed by the store. */
class AdoptedLink implements RedisLink {
  readonly kind: RedisClientKind;
  readonly cluster: boolean;
  readonly owned = false;
  readonly #parts: LinkParts;
  readonly #errors = new ErrorListener();
  readonly #deadlines: CommandDeadlines;

  constructor(kind: RedisClientKind, client: object, deadlineMs: number) {
    this.kind = kind;
    this.cluster = kind.endsWith('-cluster');
    this.#parts = partsOf(kind, client);
    this.#deadlines = new CommandDeadlines(deadlineMs, () => this.#errors.last);
    for (const emitter of this.#parts.emitters) this.#errors.listen(emitter);
  }

  send(key: string | undefined, args: readonly string[]): Promise<unknown> {
    return this.#deadlines.send(this.#parts.send, key, args);
  }

  async masters(): Promise<readonly RedisNode[]> {
    return (await this.#parts.masters()).map((node) => ({
      address: node.address,
      send: (args) => this.#deadlines.send(nodeSender(node), undefined, args),
    }));
  }

  async close(): Promise<void> {
    this.#errors.stop();
  }
}

/** Adopts a client the application hands over. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
export function adoptRedisClient(connection: object, deadlineMs: number): RedisLink {
  const kind = redisClientKind(connection);
  if (kind === undefined) throw invalidOption('connection', 'is not a node-redis client, pool or cluster, nor an ioredis Redis or Cluster');
  if (kind.startsWith('ioredis')) {
    const options = (connection as IoRedisLike).options;
    const prefix = options?.keyPrefix ?? options?.redisOptions?.keyPrefix;
    // SCAN patterns and the keys it returns are not prefixed by ioredis: clear() and all() would miss or double-prefix.
    if (prefix !== undefined && prefix !== '') {
      throw invalidOption(
        'connection',
        `is an ioredis client with keyPrefix ${JSON.stringify(prefix)}: give the store a client without one, and the prefix as "table"`,
      );
    }
  }
  return new AdoptedLink(kind, connection, deadlineMs);
}

/* ------------------------------------------------------------------------------------------------
 * Clients the store opens itself, from a URL or parameters.
 * --------------------------------------------------------------------------------------------- */

/** The retry pause after `attempt` failed connection attempts: short, so a server that is back is used soon. */
const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** attempt, 1000);

interface NodeRedisModule {
  createClient(options: object): NodeRedisClientLike;
  createCluster(options: object): NodeRedisClusterLike;
  /** node-redis 5 and 6. */
  createSentinel?(options: object): NodeRedisSentinelLike;
}

interface IoRedisModule {
  new (options: object): IoRedisLike;
  Cluster: new (nodes: readonly object[], options: object) => IoRedisLike;
}

/** How a client of the store's own connects, fails fast while the server is away, and ends. */
interface OwnClient {
  readonly kind: RedisClientKind;
  readonly client: object;
  /** True once a connection is up. */
  ready(): boolean;
  /** Starts connecting (again); resolves when connected. */
  connect(): Promise<unknown>;
  end(): Promise<void>;
}

function socketOf(address: RedisAddress, endpoint: RedisEndpoint, connectTimeoutMs: number): object {
  return {
    host: address.host,
    port: address.port,
    connectTimeout: connectTimeoutMs,
    reconnectStrategy: reconnectDelay,
    ...(endpoint.tls ? { tls: true, servername: address.host } : {}),
  };
}

function nodeRedisClient(redis: NodeRedisModule, endpoint: RedisEndpoint, connectTimeoutMs: number): OwnClient {
  const credentials = {
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
  };
  if (endpoint.cluster) {
    const cluster = redis.createCluster({
      rootNodes: endpoint.addresses.map((address) => ({ socket: socketOf(address, endpoint, connectTimeoutMs) })),
      // Commands for a node that is away fail at once instead of queueing until it is back.
      defaults: {
        ...credentials,
        disableOfflineQueue: true,
        socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: reconnectDelay, ...(endpoint.tls ? { tls: true } : {}) },
      },
    });
    let connected = false;
    return {
      kind: 'node-redis-cluster',
      client: cluster,
      ready: () => connected,
      connect: async () => {
        await cluster.connect?.();
        connected = true;
      },
      end: async () => {
        await (connected ? cluster.close?.() : cluster.destroy?.());
      },
    };
  }
  if (endpoint.sentinel !== undefined) {
    if (redis.createSentinel === undefined)
      throw invalidOption('url', 'names Sentinels, which this version of node-redis cannot use: install redis 5 or later, or ioredis');
    const sentinel = redis.createSentinel({
      name: endpoint.sentinel,
      sentinelRootNodes: endpoint.addresses.map(({ host, port }) => ({ host, port })),
      // One connection to the master: a WAIT after a write then covers that write (see waitingForReplicas).
      masterPoolSize: 1,
      nodeClientOptions: {
        ...credentials,
        database: endpoint.database,
        disableOfflineQueue: true,
        socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: reconnectDelay, ...(endpoint.tls ? { tls: true } : {}) },
      },
      sentinelClientOptions: { socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: reconnectDelay } },
    });
    return {
      kind: 'node-redis-sentinel',
      client: sentinel,
      ready: () => sentinel.isReady === true,
      connect: () => (sentinel.isOpen === true ? Promise.resolve() : (sentinel.connect?.() ?? Promise.resolve())),
      end: async () => {
        await (sentinel.isReady === true ? sentinel.close?.() : sentinel.destroy?.());
      },
    };
  }
  const [address] = endpoint.addresses as [RedisAddress];
  const client = redis.createClient({
    socket: socketOf(address, endpoint, connectTimeoutMs),
    ...credentials,
    database: endpoint.database,
    disableOfflineQueue: true,
  });
  return {
    kind: 'node-redis',
    client,
    ready: () => client.isReady === true,
    connect: () => (client.isOpen === true ? Promise.resolve() : (client.connect?.() ?? Promise.resolve())),
    end: async () => {
      await (client.isReady === true ? client.close?.() : client.destroy?.());
    },
  };
}

function ioRedisClient(IoRedis: IoRedisModule, endpoint: RedisEndpoint, connectTimeoutMs: number): OwnClient {
  const failFast = {
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
    ...(endpoint.tls ? { tls: {} } : {}),
    connectTimeout: connectTimeoutMs,
    // No queue while disconnected, no re-sending of a command whose answer was lost: the store decides what to run again.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
  };
  const client =
    endpoint.sentinel !== undefined
      ? // ioredis asks the Sentinels for the master, and again after it lost the connection.
        new IoRedis({
          ...failFast,
          sentinels: endpoint.addresses.map(({ host, port }) => ({ host, port })),
          name: endpoint.sentinel,
          role: 'master',
          db: endpoint.database,
          lazyConnect: true,
        })
      : endpoint.cluster
        ? new IoRedis.Cluster(
            endpoint.addresses.map(({ host, port }) => ({ host, port })),
            {
              lazyConnect: true,
              enableOfflineQueue: false,
              retryDelayOnFailover: 50,
              retryDelayOnClusterDown: 50,
              clusterRetryStrategy: reconnectDelay,
              redisOptions: failFast,
            },
          )
        : new IoRedis({ ...failFast, host: endpoint.addresses[0]?.host, port: endpoint.addresses[0]?.port, db: endpoint.database, lazyConnect: true });
  let started: Promise<unknown> | undefined;
  return {
    kind: endpoint.cluster ? 'ioredis-cluster' : 'ioredis',
    client,
    ready: () => client.status === 'ready',
    connect: () => {
      // Once started, ioredis reconnects by itself (even after a first attempt that failed): start it only when idle.
      if (started === undefined || client.status === 'end' || client.status === 'wait') started = client.connect?.() ?? Promise.resolve();
      return started;
    },
    end: async () => {
      if (client.status === 'ready') await client.quit?.();
      else client.disconnect?.();
    },
  };
}

/** A client of the store's own: it waits (up to the deadline) for a connection before sending, then fails fast. */
class OwnedLink implements RedisLink {
  readonly kind: RedisClientKind;
  readonly cluster: boolean;
  readonly owned = true;
  readonly #own: OwnClient;
  readonly #parts: LinkParts;
  readonly #deadlineMs: number;
  readonly #errors = new ErrorListener();
  readonly #deadlines: CommandDeadlines;
  #connecting: Promise<unknown> | undefined;
  #waiting: Promise<void> | undefined;
  /** Ends {@link #waiting}. */
  #connected: (() => void) | undefined;

  constructor(own: OwnClient, deadlineMs: number) {
    this.kind = own.kind;
    this.cluster = own.kind.endsWith('-cluster');
    this.#own = own;
    this.#parts = partsOf(own.kind, own.client);
    this.#deadlineMs = deadlineMs;
    this.#deadlines = new CommandDeadlines(deadlineMs, () => this.#errors.last);
    for (const emitter of this.#parts.emitters) this.#errors.listen(emitter);
    this.#connect().catch(() => undefined);
  }

  #connect(): Promise<unknown> {
    this.#connecting ??= this.#own.connect().catch((error: unknown) => {
      // Try again on the next call: the server may only be away for a moment.
      this.#connecting = undefined;
      this.#errors.last ??= error;
      throw error;
    });
    return this.#connecting;
  }

  /** Resolves once connected; rejects with {@link RedisUnreachableError} after the deadline. */
  async #ready(): Promise<void> {
    if (this.#own.ready()) return;
    await withDeadline(this.#whenConnected(), this.#deadlineMs, 'connecting', () => this.#errors.last);
  }

  /**
   * Resolves when the client is connected: its first connection, or its own
   * reconnection after a loss. One waiter for every caller, so an outage
   * does not pile up listeners. Never rejects: the caller's deadline ends
   * the wait, and a failed first attempt is started again by the next one.
   */
  #whenConnected(): Promise<void> {
    const waiting = (this.#waiting ??= new Promise<void>((resolve) => {
      const emitter = this.#parts.emitters[0] as Emitter;
      const done = (): void => {
        emitter.off?.('ready', done);
        this.#waiting = undefined;
        this.#connected = undefined;
        resolve();
      };
      this.#connected = done;
      emitter.on?.('ready', done);
    }));
    const settle = (): void => {
      if (this.#own.ready()) this.#connected?.();
    };
    settle();
    this.#connect().then(settle, () => undefined);
    return waiting;
  }

  send(key: string | undefined, args: readonly string[]): Promise<unknown> {
    // Connected (nearly always): the command goes at once, with no wait in between.
    if (this.#own.ready()) return this.#deadlines.send(this.#parts.send, key, args);
    return this.#ready().then(() => this.#deadlines.send(this.#parts.send, key, args));
  }

  async masters(): Promise<readonly RedisNode[]> {
    await this.#ready();
    return (await this.#parts.masters()).map((node) => ({
      address: node.address,
      send: (args) => this.#deadlines.send(nodeSender(node), undefined, args),
    }));
  }

  async close(): Promise<void> {
    try {
      await withDeadline(this.#own.end(), this.#deadlineMs, 'closing', () => this.#errors.last);
    } catch {
      // A client that cannot say goodbye is dropped all the same.
    }
  }
}

/** The Redis clients the store can open itself, in the order it tries them. */
export type RedisDriverName = 'redis' | 'ioredis';

/**
 * Opens a client of the store's own for a URL or parameters: node-redis
 * (`redis`) when it is installed, else ioredis (`driver` picks one).
 */
export async function openRedisClient(
  target: ConnectionTarget,
  settings: Pick<ConnectionSettings, 'connectTimeoutMs'>,
  driver?: RedisDriverName,
): Promise<RedisLink> {
  const endpoint = parseRedisTarget(target);
  const deadlineMs = settings.connectTimeoutMs;
  if (driver !== undefined) {
    const own =
      driver === 'redis'
        ? nodeRedisClient((await importDriver('redis')) as NodeRedisModule, endpoint, deadlineMs)
        : ioRedisClient((await importDriver('ioredis')) as IoRedisModule, endpoint, deadlineMs);
    return new OwnedLink(own, deadlineMs);
  }
  let own: OwnClient;
  try {
    own = nodeRedisClient((await importDriver('redis')) as NodeRedisModule, endpoint, deadlineMs);
  } catch (error) {
    if (!(error instanceof SessionStoreError && error.code === 'ERR_DRIVER_MISSING')) throw error;
    try {
      own = ioRedisClient((await importDriver('ioredis')) as IoRedisModule, endpoint, deadlineMs);
    } catch (second) {
      if (!(second instanceof SessionStoreError && second.code === 'ERR_DRIVER_MISSING')) throw second;
      throw new SessionStoreError('ERR_DRIVER_MISSING', 'neither Redis client is installed: npm install redis (or ioredis)', { cause: second });
    }
  }
  return new OwnedLink(own, deadlineMs);
}

/* ------------------------------------------------------------------------------------------------
 * Writes confirmed by replicas.
 * --------------------------------------------------------------------------------------------- */

/** The commands the store writes with: a `WAIT` follows each. */
const WRITES: ReadonlySet<string> = new Set(['EVALSHA', 'EVAL', 'DEL', 'UNLINK', 'HSET', 'HDEL', 'SET', 'EXPIRE', 'PEXPIRE', 'PEXPIREAT', 'ZADD', 'ZREM']);

/**
 * `link`, whose writes are acknowledged only once `replicas` replicas have
 * them: each is followed by `WAIT replicas timeoutMs` through the same
 * client (on a cluster, to the node of the same key). `WAIT` counts the
 * replicas that have every write the connection sent before it, so the
 * client must send a store's commands over one connection: node-redis's
 * client or Sentinel client (the store opens it with one master
 * connection), ioredis's `Redis`, or a cluster's node of the key; not a
 * node-redis pool. Fewer replicas in time fail the call with
 * {@link RedisNotReplicatedError}: the write stays on the master, and the
 * store runs the operation again, then reports the database unavailable.
 */
export function waitingForReplicas(link: RedisLink, replicas: number, timeoutMs: number): RedisLink {
  const wait = ['WAIT', String(replicas), String(Math.max(1, Math.round(timeoutMs)))];
  const confirmed = async (key: string | undefined, reply: unknown, send: (key: string | undefined, args: readonly string[]) => Promise<unknown>) => {
    const acknowledged = Number(await send(key, wait));
    if (!(acknowledged >= replicas)) throw new RedisNotReplicatedError(acknowledged, replicas, timeoutMs);
    return reply;
  };
  return {
    kind: link.kind,
    cluster: link.cluster,
    owned: link.owned,
    send: async (key, args) => {
      const reply = await link.send(key, args);
      return WRITES.has((args[0] ?? '').toUpperCase()) ? confirmed(key, reply, (k, a) => link.send(k, a)) : reply;
    },
    masters: async () =>
      (await link.masters()).map((node) => ({
        address: node.address,
        send: async (args: readonly string[]) => {
          const reply = await node.send(args);
          return WRITES.has((args[0] ?? '').toUpperCase()) ? confirmed(undefined, reply, (_k, a) => node.send(a)) : reply;
        },
      })),
    close: () => link.close(),
  };
}
