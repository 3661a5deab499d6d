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

/**
 * Hands out pooled connections, pinging one that sat idle longer than
 * `checkMs` first and discarding it if the ping fails (the seeds'
 * `connection_check_threshold`): a connection the server or a firewall
 * dropped while idle never reaches a request.
 */
export class IdleCheck<Connection extends object> {
  readonly #lastUsed = new WeakMap<object, number>();

  /**
   * @param identity What stays the same for one physical connection (mysql2
   *   hands out a new promise wrapper around the same connection each time).
   */
  constructor(
    private readonly checkMs: number,
    private readonly ping: (connection: Connection) => Promise<unknown>,
    private readonly discard: (connection: Connection, error: Error) => void,
    private readonly identity: (connection: Connection) => object = (connection) => connection,
  ) {}

  /** A connection from `acquire` that is alive, as far as a ping can tell. */
  async acquire(acquire: () => Promise<Connection>, attempts: number): Promise<Connection> {
    for (let attempt = 1; ; attempt++) {
      const connection = await acquireOrMark(acquire);
      const lastUsed = this.#lastUsed.get(this.identity(connection));
      if (lastUsed === undefined || Date.now() - lastUsed <= this.checkMs) return connection;
      try {
        await withTimeout(this.ping(connection), PING_TIMEOUT_MS, 'connection check');
        return connection;
      } catch (error) {
        this.discard(connection, error instanceof Error ? error : new Error(String(error)));
        if (attempt >= attempts) throw error;
      }
    }
  }

  /** Records that the connection was just used. */
  used(connection: Connection): void {
    this.#lastUsed.set(this.identity(connection), Date.now());
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

/** Runs `acquire`, marking its errors as connect failures: the database is unreachable, retrying on another connection will not help. */
export async function acquireOrMark<T>(acquire: () => Promise<T>): Promise<T> {
  try {
    return await acquire();
  } catch (error) {
    if (typeof error === 'object' && error !== null) connectFailures.add(error);
    throw error;
  }
}

/** True for an error from opening a connection. */
export function isConnectFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && connectFailures.has(error);
}
