/**
 * Where a Redis store connects, from a URL or from parameters:
 *
 *   redis://[user[:password]@]host[:port][/db]       one server (db 0 to 15, default 0)
 *   rediss://...                                      the same over TLS
 *   redis://[user[:password]@]host:port,host:port,... the seed nodes of a Redis Cluster
 *   redis+sentinel://[user[:password]@]host:port,.../name[/db]
 *                                                     the Sentinels watching the master `name`
 *                                                     (rediss+sentinel: the data nodes over TLS)
 *
 * Several hosts of a `redis://` URL always mean a cluster (which has database 0 only).
 */
import { invalidOption } from '../../core/option-table.js';
import type { ConnectionTarget } from '../connection-settings.js';
import type { TargetDescription } from '../driver.js';

/** One server address. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** Everything needed to open a client of the store's own. */
export interface RedisEndpoint {
  /** True for a Redis Cluster (several seed nodes). */
  readonly cluster: boolean;
  /** The master's name when `addresses` are the Sentinels watching it. */
  readonly sentinel?: string | undefined;
  readonly addresses: readonly RedisAddress[];
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** The database number (always 0 on a cluster). */
  readonly database: number;
  readonly tls: boolean;
}

export const DEFAULT_PORT = 6379;
/** Sentinel's own port. */
export const DEFAULT_SENTINEL_PORT = 26379;

const EXAMPLE =
  'redis://user:password@host:6379/0, rediss://... for TLS, redis://host1:7000,host2:7001,host3:7002 for a cluster, or redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster for Sentinel';

/** `host`, `host:port`, `[v6]` or `[v6]:port`. */
function parseAddress(text: string, option: string, defaultPort = DEFAULT_PORT): RedisAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(text);
  const port = Number(match?.[3] ?? defaultPort);
  if (match === null || port < 1 || port > 65535) throw invalidOption(option, `has an invalid host ${JSON.stringify(text)} (expected ${EXAMPLE})`);
  return { host: match[1] ?? (match[2] as string), port };
}

function parseDatabase(text: string, option: string): number {
  if (!/^\d{1,5}$/.test(text)) throw invalidOption(option, `names the database ${JSON.stringify(text)}: a Redis database is a number, such as 0 or 15`);
  return Number(text);
}

/** A Sentinel URL's path: the master's name, then optionally the database number. */
function parseSentinelPath(path: string | undefined): { readonly name: string; readonly database: string | undefined } {
  const [name, database, ...more] = (path ?? '').split('/');
  if (name === undefined || !/^[A-Za-z0-9._-]+$/.test(name) || more.length > 0) {
    throw invalidOption('url', `must name the master Sentinel watches, and optionally the database: redis+sentinel://s1:26379,s2:26379/mymaster/0`);
  }
  return { name, database };
}

/** Checks a `redis:`, `rediss:` or `redis+sentinel:` URL. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
export function parseRedisUrl(url: string): RedisEndpoint {
  const match = /^(rediss?)(\+sentinel)?:\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(\?[^#]*)?$/i.exec(url);
  if (match === null) throw invalidOption('url', `is not a Redis URL (expected ${EXAMPLE})`);
  const [, scheme, sentinelScheme, userinfo, hostList, rawPath, query] = match;
  if (query !== undefined && query !== '?') throw invalidOption('url', `takes no query parameters (${query}); give other settings as options`);
  const sentinel = sentinelScheme === undefined ? undefined : parseSentinelPath(rawPath);
  const path = sentinel === undefined ? rawPath : sentinel.database;
  const addresses = (hostList === '' || hostList === undefined ? ['localhost'] : hostList.split(',')).map((host) =>
    parseAddress(host.trim(), 'url', sentinel === undefined ? DEFAULT_PORT : DEFAULT_SENTINEL_PORT),
  );
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    username = user === '' ? undefined : user;
    password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  }
  const database = path === undefined || path === '' ? 0 : parseDatabase(path, 'url');
  const tls = scheme?.toLowerCase() === 'rediss';
  if (sentinel !== undefined) return { cluster: false, sentinel: sentinel.name, addresses, username, password, database, tls };
  const cluster = addresses.length > 1;
  if (cluster && database !== 0) throw invalidOption('url', `names database ${database}, but a Redis Cluster (several hosts) has database 0 only`);
  return { cluster, addresses, username, password, database, tls };
}

/** Where a target points. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
export function parseRedisTarget(target: ConnectionTarget): RedisEndpoint {
  if ('url' in target) return parseRedisUrl(target.url);
  if ('parameters' in target) {
    const { host, port, hosts, user, password, database } = target.parameters;
    const addresses =
      hosts === undefined ? [{ host: host ?? 'localhost', port: port ?? DEFAULT_PORT }] : hosts.map((address) => parseAddress(address, 'hosts'));
    const number = database === '' ? 0 : parseDatabase(database, 'database');
    const cluster = addresses.length > 1;
    if (cluster && number !== 0) throw invalidOption('database', `is ${number}, but a Redis Cluster (several hosts) has database 0 only`);
    return { cluster, addresses, username: user, password, database: number, tls: false };
  }
  throw new Error('a Redis store needs a URL, connection parameters or a connection');
}

/** Where a target points, for messages (never the password). */
export function describeRedisTarget(target: ConnectionTarget): TargetDescription | undefined {
  if ('connection' in target || 'filename' in target) return undefined;
  try {
    const endpoint = parseRedisTarget(target);
    const [first] = endpoint.addresses;
    const address = endpoint.addresses.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
    return {
      user: endpoint.username,
      address: first === undefined ? 'the server' : endpoint.sentinel === undefined ? address : `master "${endpoint.sentinel}" of the Sentinels at ${address}`,
      database: endpoint.cluster ? undefined : String(endpoint.database),
    };
  } catch {
    return undefined;
  }
}
