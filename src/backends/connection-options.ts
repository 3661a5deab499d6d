/**
 * Where and how the store connects, as every backend shares it: a URL,
 * parameters one by one, or a connection the application hands over; the
 * table; the pool. Declared in two tables, {@link addressOptionTable} and
 * {@link CONNECTION_OPTION_TABLE}, next to the store's own options; an option
 * only one backend reads is declared in that backend's folder instead.
 *
 * The list of backends (to resolve a `dialect`, a URL scheme or a connection
 * handed over) is handed in by the composition root, never imported: the
 * backends import this file's types, and an import of the list would lead
 * back to them.
 */
import { invalidOption, parseNumber, parseString, rule, seconds, type OptionTable, type ResolvedTable } from '../core/option-table.js';
import type { AnyBackendDescriptor, BackendRegistry } from './backend-descriptor.js';
import type { ConnectionSettings, ConnectionTarget, SessionConnection, TableName } from './connection-settings.js';

/** Options saying where the sessions live and how the store connects, as every backend takes them. */
export interface SharedConnectionOptions {
  /**
   * Where the sessions live: `postgres://user@host:5432/db` (several hosts
   * with libpq's `target_session_attrs=read-write` for a primary and its
   * standbys), `mysql://user:pass@host:3306/db` (also `mariadb://`; several
   * hosts for a Galera cluster), `sqlite:./sessions.db` or `sqlite::memory:`,
   * `redis://user:pass@host:6379/0` (also `rediss://`; several hosts for a
   * Redis Cluster; `redis+sentinel://s1:26379,s2:26379/mymaster` for
   * Sentinel). Alternatively give `dialect` with `database` (and `host`,
   * `port`, `user`, `password`), or a `connection`.
   */
  url?: string;
  /**
   * `postgres`, `mysql`, `sqlite` or `redis` (the seeds' driver names such
   * as `Pg`, `mysql2`, `postgresql`, `SQLite` are accepted too). Taken from
   * the URL when one is given.
   * @default from the URL
   */
  dialect?: string;
  /** Database name; for SQLite the file (or `:memory:`), for Redis the number. Required without `url` or `connection`. */
  database?: string;
  /** Database user. @default the driver's default */
  user?: string;
  /** Database password. @default none */
  password?: string;
  /** Database host. @default the driver's default (localhost) */
  host?: string;
  /** Database port. @default the driver's default (5432, 3306) */
  port?: number;
  /**
   * The nodes of a cluster, as `host` or `host:port`. MySQL/MariaDB
   * (Galera): in the order they are used: the store works on the first that
   * answers and is synced, moves to the next when it is down or not synced,
   * and goes back to an earlier one once it is again. Redis: the seed nodes
   * of a Redis Cluster. Instead of `host` and `port`; with a URL, write them
   * in it: `mysql://user@db1:3306,db2:3306,db3:3306/sessions`. A
   * comma-separated string is accepted too.
   * @default the one `host`
   */
  hosts?: readonly string[] | string;
  /**
   * Character set of the connection. `utf8` means `utf8mb4` on MySQL, so 4-byte
   * characters (emoji) round-trip.
   * @default 'utf8'
   */
  charset?: string;
  /**
   * A pool, connection or client of the application's to use instead of the
   * store's own: a `pg` Pool or Client, a `mysql2` pool or connection, a
   * `better-sqlite3` Database, a node-redis client, pool or cluster, an
   * ioredis Redis or Cluster. The store never closes it.
   */
  connection?: SessionConnection;
  /**
   * Table name, optionally `schema.table` (for Redis: the key prefix).
   * Letters, digits and `_` only.
   * @default 'sessions'
   */
  table?: string;
  /**
   * Connections in the store's own pool (PostgreSQL, MySQL/MariaDB).
   * @default 10
   */
  poolSize?: number;
  /**
   * A pooled connection idle for longer than this many seconds is checked
   * (a cheap ping) before use and replaced if dead. `0` checks every time.
   * @default 30
   */
  connectionCheckThreshold?: number;
  /**
   * Seconds to wait for a new database connection before a call fails with
   * `ERR_UNAVAILABLE` (for Redis also every command's deadline).
   * @default 5
   */
  connectTimeout?: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Parses `table` or `schema.table`, refusing anything but plain identifiers:
 * table names are the one piece of configuration that ends up in SQL text.
 */
export function parseTableName(value: string, name = 'table'): TableName {
  const parts = value.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw invalidOption(name, `must be "table" or "schema.table" made of letters, digits and _ (at most 63 each), got ${JSON.stringify(value)}`);
  }
  return parts.length === 2 ? { schema: parts[0], name: parts[1] as string } : { schema: undefined, name: parts[0] as string };
}

/** `postgres:`, `mysql:`, ... as a list for messages. */
function schemeList(registry: BackendRegistry): string {
  const schemes = registry.backends.flatMap((backend) => backend.schemes).map((scheme) => `${scheme}:`);
  return `${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1) ?? ''}`;
}

/** The target a connection URL names, by its scheme, among the backends `registry` lists. */
export function targetOfUrl(url: string, registry: BackendRegistry): ConnectionTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1];
  if (scheme === undefined) throw invalidOption('url', `is not a URL (expected ${schemeList(registry)})`);
  const backend = registry.forScheme(scheme);
  if (backend === undefined) throw invalidOption('url', `has the unsupported scheme "${scheme}:" (expected ${schemeList(registry)})`);
  return backend.fromUrl(url, scheme.toLowerCase());
}

/**
 * A dialect from any name the seeds or users write: `postgres`, `Pg`,
 * `postgresql`, `Prancer::Session::Store::Database::Driver::Pg`, `mysql2`,
 * `:mysql2`, `mariadb`, `SQLite`, `sqlite3`; among the backends `registry` lists.
 */
export function parseDialect(value: unknown, name: string, registry: BackendRegistry): string {
  const backend = typeof value === 'string' ? registry.named(value) : undefined;
  if (backend === undefined) throw invalidOption(name, `must be ${registry.backends.map((known) => known.name).join(', ')}, got ${JSON.stringify(value)}`);
  return backend.name;
}

function parsePort(value: unknown, name: string): number {
  return parseNumber(typeof value === 'string' ? Number(value) : value, name, { integer: true, max: 65535 });
}

/** `host`, `host:port` or `[v6 address]:port`. */
const HOST_ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/;

/** A list of `host[:port]`, from an array or a comma-separated string (a configuration file, an environment variable). */
function parseHosts(value: unknown, name: string): readonly string[] {
  const list = typeof value === 'string' ? value.split(',').map((host) => host.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) throw invalidOption(name, `must be a non-empty list of "host" or "host:port", got ${JSON.stringify(value)}`);
  for (const host of list) {
    const port = typeof host === 'string' ? /:(\d+)$/.exec(host)?.[1] : undefined;
    if (typeof host !== 'string' || !HOST_ADDRESS.test(host) || (port !== undefined && (Number(port) === 0 || Number(port) > 65535))) {
      throw invalidOption(name, `must be a list of "host" or "host:port", got ${JSON.stringify(host)}`);
    }
  }
  return list as string[];
}

function parseCharset(value: unknown, name: string): string {
  const charset = parseString(value, name);
  if (!/^[A-Za-z0-9_]+$/.test(charset)) throw invalidOption(name, `must be a character set name such as utf8, got ${JSON.stringify(charset)}`);
  return charset;
}

function parseConnection(value: unknown, name: string): SessionConnection {
  if (typeof value !== 'object' || value === null) throw invalidOption(name, 'must be a pool, client or database object of pg, mysql2 or better-sqlite3');
  return value;
}

/** A connection setting given one by one instead of a URL: a string, the driver's default when left out. */
function connectionSetting(summary: string, aliases: readonly string[] = []) {
  return rule<string | undefined>({ aliases, parse: parseString, fallback: undefined, defaultText: 'driver default', summary });
}

/** The options that name where the sessions live: a URL, or the settings one by one. */
type AddressOptions = Pick<SharedConnectionOptions, 'url' | 'dialect' | 'database' | 'user' | 'password' | 'host' | 'port' | 'hosts'>;

/**
 * Every option of {@link AddressOptions}: names, seed aliases, checks,
 * defaults. A function of the registry, because `dialect` is checked against
 * the backends it lists. Each backend's own options are listed after these,
 * before {@link CONNECTION_OPTION_TABLE}'s.
 */
export function addressOptionTable(registry: BackendRegistry) {
  return {
    url: rule<string | undefined>({
      parse: parseString,
      fallback: undefined,
      defaultText: 'none',
      summary:
        'where the sessions live: `postgres://`, `mysql://`, `sqlite:`, `redis://`, `redis+sentinel://` (see "Connection URLs"); or `dialect` with `database` and the settings after it, or `connection`',
    }),
    dialect: rule<string | undefined>({
      aliases: ['driver', 'session_class'],
      parse: (value, name) => parseDialect(value, name, registry),
      fallback: undefined,
      defaultText: 'from the URL',
      summary: "`postgres`, `mysql`, `sqlite` or `redis` (the seeds' names `Pg`, `mysql2`, `postgresql`, `SQLite`, `Prancer::...::Driver::Pg` work too)",
    }),
    database: connectionSetting('database name, without `url` (SQLite: the file, or `:memory:`; Redis: the number)'),
    user: connectionSetting('database user, without `url`', ['username']),
    // An empty password in a configuration file means none.
    password: {
      ...connectionSetting('database password, without `url`'),
      defaultText: 'none',
      parse: (value: unknown, name: string) => (value === '' ? undefined : parseString(value, name)),
    },
    host: connectionSetting('database host, without `url`', ['hostname']),
    port: rule<number | undefined>({ parse: parsePort, fallback: undefined, defaultText: 'driver default', summary: 'database port, without `url`' }),
    hosts: rule<readonly string[] | undefined>({
      parse: parseHosts,
      fallback: undefined,
      defaultText: 'the one `host`',
      summary:
        'cluster nodes, `host:port` each, instead of `host` and `port`: MySQL/MariaDB (Galera) nodes used in order with failover, or Redis Cluster seeds; in a URL: `mysql://user@db1,db2,db3/db`',
    }),
  } as const satisfies OptionTable<AddressOptions>;
}

/** Every other option of {@link SharedConnectionOptions}: how the store connects, and to which table. */
export const CONNECTION_OPTION_TABLE = {
  // Shared, not MySQL's alone: PostgreSQL's driver reads it too (client_encoding), and the Prancer seed's
  // configuration files carry `charset: utf8` for every driver, SQLite's included, where it must stay accepted.
  charset: rule({
    parse: parseCharset,
    fallback: 'utf8',
    defaultText: "`'utf8'`",
    summary: 'connection character set; `utf8` is `utf8mb4` on MySQL, so emoji round-trip',
  }),
  connection: rule<SessionConnection | undefined>({
    parse: parseConnection,
    fallback: undefined,
    defaultText: 'none',
    summary: 'a pool, connection or client of the application\'s to use instead of the store\'s own (see "Pools")',
  }),
  table: rule<TableName>({
    parse: (value, name) => parseTableName(typeof value === 'string' ? value : JSON.stringify(value), name),
    fallback: { schema: undefined, name: 'sessions' },
    defaultText: "`'sessions'`",
    summary: 'table name, optionally `schema.table` (Redis: the key prefix); letters, digits and `_` only',
  }),
  poolSize: rule({
    aliases: ['pool_size'],
    parse: (value, name) => parseNumber(value, name, { integer: true }),
    fallback: 10,
    defaultText: '`10`',
    summary: "connections in the store's own pool (PostgreSQL, MySQL)",
  }),
  connectionCheckThreshold: rule({
    aliases: ['connection_check_threshold'],
    as: 'connectionCheckMs',
    parse: seconds({ zero: true }),
    fallback: 30_000,
    defaultText: '`30`',
    summary: 'seconds: a pooled connection idle longer than this is pinged before use and replaced if dead',
  }),
  connectTimeout: rule({
    aliases: ['connect_timeout'],
    as: 'connectTimeoutMs',
    parse: seconds(),
    fallback: 5000,
    defaultText: '`5`',
    summary: "seconds to wait for a new connection before failing with `ERR_UNAVAILABLE` (Redis: also every command's deadline)",
  }),
} as const satisfies OptionTable<Omit<SharedConnectionOptions, keyof AddressOptions>>;

/** The shared connection options after each value is checked, before the target is resolved. */
export type CheckedConnectionOptions = ResolvedTable<ReturnType<typeof addressOptionTable>> & ResolvedTable<typeof CONNECTION_OPTION_TABLE>;

/** The target from a handed-over connection, a URL, or parameters, refusing settings that contradict each other. */
function resolveTarget(options: CheckedConnectionOptions, registry: BackendRegistry): ConnectionTarget {
  const { url, dialect, connection, database, hosts } = options;
  // One place says where to connect: settings that would be ignored are refused, as a second expiry is.
  const given = (['database', 'host', 'port', 'hosts', 'user', 'password'] as const).filter((name) => options[name] !== undefined);
  const [ignored] = given;
  if (connection !== undefined) {
    if (url !== undefined) throw invalidOption('connection', 'and "url" exclude each other');
    if (ignored !== undefined) throw invalidOption(ignored, 'cannot be given with "connection": the connection handed over decides where the store connects');
    const backend = dialect === undefined ? registry.recognising(connection) : registry.named(dialect);
    if (backend === undefined)
      throw invalidOption('connection', `is not a ${registry.backends.map((known) => known.name).join(', ')} driver object; give "dialect" too`);
    return { dialect: backend.name, connection };
  }
  if (url !== undefined) {
    if (ignored !== undefined) throw invalidOption(ignored, 'cannot be given with "url": put it in the URL, or give the settings one by one without "url"');
    const target = targetOfUrl(url, registry);
    if (dialect !== undefined && dialect !== target.dialect) throw invalidOption('dialect', `is ${dialect} but the URL is for ${target.dialect}`);
    return target;
  }
  if (dialect === undefined || database === undefined) {
    throw invalidOption('url', 'is required, or "dialect" with "database" (and host, port, user, password), or a "connection"');
  }
  if (hosts !== undefined) {
    const single = (['host', 'port'] as const).find((name) => options[name] !== undefined);
    if (single !== undefined) throw invalidOption(single, 'cannot be given with "hosts": list every node, as host:port, in "hosts"');
  }
  // `dialect` was checked against the same registry, so it names a backend.
  const backend = registry.named(dialect) as AnyBackendDescriptor;
  // Only a backend that reaches a cluster takes a list of nodes; anywhere else the list would be ignored.
  if (hosts !== undefined && backend.acceptsHosts !== true)
    throw invalidOption('hosts', `is for clusters (MySQL/MariaDB Galera, Redis Cluster); ${backend.name} is given one host`);
  return backend.fromParameters({
    host: options.host,
    port: options.port,
    ...(hosts === undefined ? {} : { hosts }),
    user: options.user,
    password: options.password,
    database,
  });
}

/**
 * Resolves the checked shared options into where and how to connect,
 * refusing settings that contradict each other.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the option.
 */
export function resolveConnection(options: CheckedConnectionOptions, registry: BackendRegistry): ConnectionSettings {
  const { table, poolSize, charset, connectionCheckMs, connectTimeoutMs } = options;
  return { target: resolveTarget(options, registry), table, poolSize, charset, connectionCheckMs, connectTimeoutMs };
}
