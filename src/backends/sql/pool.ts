/**
 * Connections of a SQL pool lent for one piece of work at a time, checked
 * before use when they have idled, and single connections the application
 * handed over shaped as pools whose callers take turns.
 */
import { acquireOrMark, withTimeout } from '../driver.js';

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
