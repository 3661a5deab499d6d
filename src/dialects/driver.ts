import { SessionStoreError } from '../errors.js';

/**
 * Loads an optional peer dependency. Drivers are imported only when a store
 * of that dialect is opened, so a user installs just the one they use.
 */
export async function importDriver(name: 'pg' | 'mysql2/promise' | 'better-sqlite3'): Promise<unknown> {
  let loaded: { default?: unknown };
  try {
    loaded = (await import(name)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      const pkg = name.split('/')[0] as string;
      throw new SessionStoreError('ERR_DRIVER_MISSING', `the driver "${pkg}" is not installed: npm install ${pkg}`, { cause: error });
    }
    throw error;
  }
  // CommonJS drivers arrive as the default export under ESM, and as the module itself under require.
  return loaded.default ?? loaded;
}

/** Double-quotes an identifier that has already been validated (PostgreSQL, SQLite). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * `, user_id = <placeholder>` with its parameter appended, or nothing when
 * the user id is left alone. `placeholder` gets the parameter's 1-based index.
 */
export function assignUserId(params: unknown[], userId: string | null | undefined, placeholder: (index: number) => string): string {
  if (userId === undefined) return '';
  params.push(userId);
  return `, user_id = ${placeholder(params.length)}`;
}

/** Rejects when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One at a time: serialises use of a single connection the application
 * handed over, so a transaction never interleaves with another call.
 */
export class Serial {
  #tail: Promise<void> = Promise.resolve();

  /** Waits for the connection; call the returned function to hand it on. */
  lock(): Promise<() => void> {
    let unlock!: () => void;
    const released = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    const acquired = this.#tail.then(() => unlock);
    this.#tail = this.#tail.then(() => released);
    return acquired;
  }

  /** Runs `fn` holding the connection. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const unlock = await this.lock();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }
}

/** How long a liveness ping may take before the connection is given up. */
export const PING_TIMEOUT_MS = 2000;

/** The driver side of a pool, as {@link ConnectionLender} needs it. */
export interface PooledConnections<Connection extends object> {
  /** Checks a connection out. */
  acquire(): Promise<Connection>;
  /** One cheap round trip on it. */
  ping(connection: Connection): Promise<unknown>;
  /** Gives it back, or destroys it when `broken`. */
  release(connection: Connection, broken: Error | undefined): void;
  /** What stays the same for one physical connection (mysql2 hands out a new promise wrapper each time). */
  identity?(connection: Connection): object;
  /** True when an error means the connection itself failed. */
  isConnectionError(error: unknown): boolean;
}

/**
 * Lends pooled connections for one piece of work at a time. A connection idle
 * longer than `checkMs` is pinged first and replaced if dead (the seeds'
 * `connection_check_threshold`), so one the server or a firewall dropped while
 * idle never reaches a request; one that fails during the work is destroyed
 * instead of pooled again.
 */
export class ConnectionLender<Connection extends object> {
  readonly #lastUsed = new WeakMap<object, number>();

  constructor(
    private readonly pool: PooledConnections<Connection>,
    private readonly checkMs: number,
    /** How many dead connections to skip before giving up: a whole pool's worth. */
    private readonly attempts: number,
  ) {}

  #identity(connection: Connection): object {
    return this.pool.identity?.(connection) ?? connection;
  }

  async #acquire(): Promise<Connection> {
    for (let attempt = 1; ; attempt++) {
      const connection = await acquireOrMark(() => this.pool.acquire());
      const lastUsed = this.#lastUsed.get(this.#identity(connection));
      if (lastUsed === undefined || Date.now() - lastUsed <= this.checkMs) return connection;
      try {
        await withTimeout(this.pool.ping(connection), PING_TIMEOUT_MS, 'connection check');
        return connection;
      } catch (error) {
        this.pool.release(connection, error instanceof Error ? error : new Error(String(error)));
        if (attempt >= this.attempts) throw error;
      }
    }
  }

  /**
   * Runs `work` on a live connection. `work` may call `broken` when it leaves
   * the connection unusable (a failed rollback); a connection error does so
   * by itself.
   */
  async use<T>(work: (connection: Connection, broken: (error: Error) => void) => Promise<T>): Promise<T> {
    const connection = await this.#acquire();
    let brokenBy: Error | undefined;
    try {
      return await work(connection, (error) => {
        brokenBy = error;
      });
    } catch (error) {
      if (this.pool.isConnectionError(error)) brokenBy ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.#lastUsed.set(this.#identity(connection), Date.now());
      this.pool.release(connection, brokenBy);
    }
  }
}

/**
 * Deletes in batches until a batch comes back short, reporting progress and
 * yielding to other work between batches, so a large purge never holds locks
 * for long nor starves requests. `between` runs before each further batch.
 *
 * With `budgetMs` the batch size adapts so that one batch takes about that
 * long: for a synchronous driver (better-sqlite3) a batch blocks the event
 * loop, and every request waiting behind it.
 */
export async function deleteInBatches(
  deleteBatch: (size: number) => Promise<number>,
  batchSize: number,
  onProgress: ((removed: number) => void) | undefined,
  options: { readonly between?: () => void; readonly budgetMs?: number } = {},
): Promise<number> {
  const { between, budgetMs } = options;
  let size = budgetMs === undefined ? batchSize : Math.min(batchSize, 100);
  let removed = 0;
  for (;;) {
    const started = performance.now();
    const count = await deleteBatch(size);
    const took = performance.now() - started;
    removed += count;
    onProgress?.(removed);
    if (count < size) return removed;
    if (budgetMs !== undefined) {
      if (took > budgetMs) size = Math.max(10, Math.floor(size / 2));
      else if (took < budgetMs / 4) size = Math.min(batchSize, size * 2);
    }
    between?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Network-level failures every driver reports with Node's own codes. */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED',
]);

/** True for an error that says the connection, not the statement, failed. */
export function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_ERROR_CODES.has(code);
}

/** Errors raised while opening a connection (as opposed to losing one that worked). */
const connectFailures = new WeakSet<object>();

/** Marks an error as raised while opening a connection: the database is unreachable, another connection will not help. */
export function markConnectFailure(error: unknown): void {
  if (typeof error === 'object' && error !== null) connectFailures.add(error);
}

/** Runs `acquire`, marking its errors as connect failures. */
export async function acquireOrMark<T>(acquire: () => Promise<T>): Promise<T> {
  try {
    return await acquire();
  } catch (error) {
    markConnectFailure(error);
    throw error;
  }
}

/** True for an error from opening a connection. */
export function isConnectFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && connectFailures.has(error);
}
