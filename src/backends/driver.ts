/**
 * What every backend does alike with its driver: load it only when used,
 * bound a wait, and tell a lost connection from a failed statement.
 */
import { SessionStoreError } from '../errors.js';

/**
 * Loads an optional peer dependency. Drivers are imported only when a store
 * of that dialect is opened, so a user installs just the one they use.
 */
export async function importDriver(name: string): Promise<unknown> {
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

/** Rejects when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
