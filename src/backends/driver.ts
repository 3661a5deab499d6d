/**
 * What every backend does alike with its driver: load it only when used,
 * bound a wait, and tell a lost connection from a failed statement.
 */
import type { ConnectionFailure } from '../core/backend.js';
import { SessionStoreError } from '../errors.js';
import type { ConnectionTarget } from './connection-settings.js';

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
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
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

/** Where a backend connects, for messages: never the password. */
export interface TargetDescription {
  readonly user: string | undefined;
  /** `host:port`. */
  readonly address: string;
  readonly database: string | undefined;
}

/** A URL split around its host list: `scheme://user:pass@` + `h1:3306,h2:3306` + `/db?options`. */
export interface HostListUrl {
  /** The hosts as written: `host`, `host:port` or `[v6]:port`. */
  readonly hosts: readonly string[];
  /** The same URL naming only `host`. */
  urlFor(host: string): string;
}

/**
 * Splits a URL that names several hosts, as cluster drivers write them
 * (`mysql://user@db1:3306,db2:3306/sessions`), which no URL parser takes.
 * `undefined` when `url` has no `scheme://` authority.
 */
export function splitHostList(url: string): HostListUrl | undefined {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (match === null) return undefined;
  const [, scheme, authority, rest] = match as unknown as [string, string, string, string];
  // The user part ends at the last @ of the authority (one in a password must be percent-encoded anyway).
  const at = authority.lastIndexOf('@');
  const userInfo = authority.slice(0, at + 1);
  const hosts = authority.slice(at + 1).split(',');
  return { hosts, urlFor: (host) => `${scheme}${userInfo}${host}${rest}` };
}

/** `host` and `port` of `host`, `host:port` or `[v6]:port`; `port` undefined when not written. */
export function parseHostAddress(address: string): { readonly host: string; readonly port: number | undefined } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(address);
  const host = match?.[1] ?? match?.[2] ?? address;
  const port = match?.[3];
  return { host, port: port === undefined ? undefined : Number(port) };
}

/** `host:port`, with the driver's default port when none is written. */
function withPort(address: string, defaultPort: number): string {
  const { host, port } = parseHostAddress(address);
  return `${host.includes(':') ? `[${host}]` : host || 'localhost'}:${port ?? defaultPort}`;
}

/** Where a URL or parameters point, with the driver's default port; several hosts are listed. */
export function describeTarget(target: ConnectionTarget, defaultPort: number): TargetDescription | undefined {
  if ('url' in target) {
    const split = splitHostList(target.url);
    // Several hosts (a cluster) cannot be parsed as one URL: the first stands for them, then all are listed.
    const url = URL.parse(split === undefined ? target.url : split.urlFor(split.hosts[0] ?? ''));
    if (url === null) return undefined;
    const address =
      split !== undefined && split.hosts.length > 1
        ? split.hosts.map((host) => withPort(host, defaultPort)).join(', ')
        : `${url.hostname || 'localhost'}:${url.port || defaultPort}`;
    return {
      user: url.username === '' ? undefined : decodeURIComponent(url.username),
      address,
      database: url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined,
    };
  }
  if ('parameters' in target) {
    const { user, host, port, hosts, database } = target.parameters;
    const address = hosts === undefined ? `${host ?? 'localhost'}:${port ?? defaultPort}` : hosts.map((each) => withPort(each, defaultPort)).join(', ');
    return { user, address, database };
  }
  return undefined;
}

/** Why a connection failed, as the driver's codes tell it. */
export type ConnectionFailureReason = 'credentials' | 'database' | 'refused' | 'timeout' | 'host';

/** The failure said plainly: what failed, for which user, where, and what to look at. */
export function connectionFailure(reason: ConnectionFailureReason, where: TargetDescription | undefined, error: unknown): ConnectionFailure {
  const detail = error instanceof Error ? error.message : String(error);
  const user = where?.user === undefined ? '' : ` as user "${where.user}"`;
  const database = where?.database === undefined ? '' : ` (database "${where.database}")`;
  const address = where?.address ?? 'the server';
  switch (reason) {
    case 'credentials':
      return { kind: 'login', message: `the database at ${address} refused the login${user}${database}: ${detail}. Check the user and password` };
    case 'database': {
      const name = where?.database === undefined ? 'the database' : `database "${where.database}"`;
      const who = where?.user === undefined ? 'the user' : `user "${where.user}"`;
      return { kind: 'login', message: `${name} does not exist at ${address}, or ${who} may not use it: ${detail}` };
    }
    case 'refused':
      return { kind: 'unreachable', message: `nothing accepts connections at ${address} (${detail}): is the server running, and are the host and port right?` };
    case 'timeout':
      return { kind: 'unreachable', message: `no answer from ${address} in time${user}${database} (${detail})` };
    case 'host':
      return { kind: 'unreachable', message: `the host of ${address} cannot be found (${detail})` };
  }
}
