/**
 * The setups that survive the loss of their primary, started by the
 * project's own scripts: a PostgreSQL primary with a streaming standby
 * (`scripts/postgres-replica.sh start`) and a Redis master with a replica
 * and three Sentinels (`scripts/redis-sentinel.sh start`). Their URLs come
 * from `POSTGRES_FAILOVER_URL` and `REDIS_SENTINEL_URL`, what the scripts
 * print; unset, the setup is not reachable (skipped, unless required), so a
 * machine where they are not started runs everything else.
 * `DATABASE=postgres-failover,redis-sentinel` narrows the suite to them:
 *
 *   POSTGRES_FAILOVER_URL=$(scripts/postgres-replica.sh start) REDIS_SENTINEL_URL=$(scripts/redis-sentinel.sh start) \
 *     DATABASE=postgres-failover,redis-sentinel node --import tsx --test test/store.test.ts test/failover.test.ts
 *
 * The store under test gets the multi-host (or Sentinel) URL; what the tests
 * read and write past the store goes to whichever node is the primary now.
 */
import pg from 'pg';
// A namespace, not named imports: node-redis 5.0 (test:oldest-peers) must load this file even if it lacks createSentinel.
import * as nodeRedis from 'redis';
import type { Backend, BackendConnector } from '../backends.js';
import { countedSqlConnection } from '../counted.js';
import { connectRedis, counted as countedRedis, type RawRedis } from './redis.js';
import { sqlBackend } from './sql.js';

/** What `scripts/postgres-replica.sh start` prints, e.g. postgres://postgres@127.0.0.1:5442,127.0.0.1:5443/test?target_session_attrs=read-write */
export const POSTGRES_FAILOVER_URL = process.env['POSTGRES_FAILOVER_URL'] ?? '';
/** What `scripts/redis-sentinel.sh start` prints, e.g. redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/sessions */
export const REDIS_SENTINEL_URL = process.env['REDIS_SENTINEL_URL'] ?? '';

/** The variable's URL; throws (the setup is not reachable) when it is unset. */
function required(name: string, value: string, script: string): string {
  if (value === '') throw new Error(`${name} is not set: start the setup with ${name}=$(scripts/${script} start)`);
  return value;
}

/** The URL of each host of a multi-host PostgreSQL URL, alone and without libpq's `target_session_attrs`. */
export function postgresHostUrls(url = POSTGRES_FAILOVER_URL): string[] {
  const match = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]+)([^?#]*)/.exec(url);
  if (match === null) throw new Error(`POSTGRES_FAILOVER_URL is not a postgres:// URL: ${url}`);
  const [, head, hosts, path] = match as unknown as [string, string, string, string];
  return hosts.split(',').map((host) => `${head}${host}${path}`);
}

/** The URL of the host that accepts writes now; throws when none does. */
export async function postgresPrimaryUrl(url = POSTGRES_FAILOVER_URL): Promise<string> {
  const answers: string[] = [];
  for (const hostUrl of postgresHostUrls(url)) {
    const client = new pg.Client({ connectionString: hostUrl, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      if (rows[0]?.standby === false) return hostUrl;
      answers.push(`${hostUrl}: standby`);
    } catch (error) {
      answers.push(`${hostUrl}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw new Error(`no primary among ${answers.join('; ')}; run scripts/postgres-replica.sh start`);
}

/** A query function on the current primary: after a failover, the next query finds the new one. */
function primaryQuery(url: string): { query: Backend['query']; close(): Promise<void> } {
  let pool: { readonly url: string; readonly pool: pg.Pool } | undefined;
  const open = async (): Promise<pg.Pool> => {
    if (pool !== undefined) return pool.pool;
    const primary = await postgresPrimaryUrl(url);
    const created = new pg.Pool({ connectionString: primary, max: 2, connectionTimeoutMillis: 3000 });
    created.on('error', () => undefined);
    pool = { url: primary, pool: created };
    return created;
  };
  const drop = async (): Promise<void> => {
    const old = pool;
    pool = undefined;
    await old?.pool.end().catch(() => undefined);
  };
  return {
    query: async (sql, params) => {
      try {
        return (await (await open()).query(sql, params)).rows;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // The node was lost, or is a standby now: once more, on the node that is the primary now.
        if (code !== '25006' && !(error instanceof Error && /ECONNREFUSED|terminat|Connection|ECONNRESET/i.test(`${error.message} ${String(code)}`)))
          throw error;
        await drop();
        return (await (await open()).query(sql, params)).rows;
      }
    },
    close: drop,
  };
}

/** Connects to the primary/standby pair: raw statements on the primary, the store on both hosts. */
async function connectPostgresFailover(): Promise<Backend> {
  required('POSTGRES_FAILOVER_URL', POSTGRES_FAILOVER_URL, 'postgres-replica.sh');
  const { query, close } = primaryQuery(POSTGRES_FAILOVER_URL);
  try {
    await query('SELECT 1');
  } catch (error) {
    await close();
    throw error;
  }
  // Counting runs on the primary of the moment (a handed-over pool is one server's).
  return {
    ...sqlBackend('postgres-failover', 'postgres', POSTGRES_FAILOVER_URL, query, close),
    counted: async () => countedSqlConnection('postgres', await postgresPrimaryUrl()),
  };
}

/** The Sentinels and master name of a `redis+sentinel://s1:p1,s2:p2/name` URL. */
export function sentinelsOf(url = REDIS_SENTINEL_URL): { readonly sentinels: { host: string; port: number }[]; readonly name: string } {
  const match = /^redis\+sentinel:\/\/([^/]+)\/([^/?#]+)/.exec(url);
  if (match === null) throw new Error(`REDIS_SENTINEL_URL is not a redis+sentinel:// URL: ${url}`);
  const [, hosts, name] = match as unknown as [string, string, string];
  return {
    name,
    sentinels: hosts.split(',').map((host) => {
      const [address = '127.0.0.1', port = '26379'] = host.split(':');
      return { host: address, port: Number(port) };
    }),
  };
}

/** The `redis://host:port` of the master the Sentinels name now. */
export async function sentinelMasterUrl(url = REDIS_SENTINEL_URL): Promise<string> {
  const { sentinels, name } = sentinelsOf(url);
  const answers: string[] = [];
  for (const { host, port } of sentinels) {
    try {
      const sentinel = nodeRedis.createClient({ socket: { host, port, connectTimeout: 2000, reconnectStrategy: false } });
      sentinel.on('error', () => undefined);
      await sentinel.connect();
      try {
        const [masterHost, masterPort] = (await sentinel.sendCommand(['SENTINEL', 'get-master-addr-by-name', name])) as [string, string];
        return `redis://${masterHost}:${masterPort}`;
      } finally {
        await sentinel.close();
      }
    } catch (error) {
      answers.push(`${host}:${port}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new Error(`no Sentinel answers: ${answers.join('; ')}; run scripts/redis-sentinel.sh start`);
}

/** The test's own client, through the Sentinels: it follows a failover as the store does. */
async function connectSentinelRaw(url: string): Promise<RawRedis> {
  const { sentinels, name } = sentinelsOf(url);
  if (typeof nodeRedis.createSentinel !== 'function') throw new Error('this node-redis has no createSentinel');
  const client = nodeRedis.createSentinel({
    name,
    sentinelRootNodes: sentinels,
    nodeClientOptions: { socket: { connectTimeout: 3000, reconnectStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 500) } },
    sentinelClientOptions: { socket: { connectTimeout: 3000 } },
  });
  client.on('error', () => undefined);
  await client.connect();
  const send = (args: readonly string[]): Promise<unknown> => client.sendCommand(false, [...args]);
  return {
    send: (_key, args) => send(args),
    masters: async () => [send],
    close: async () => {
      await client.close();
    },
  };
}

/** Connects through the Sentinels: raw commands and the store both on the master they name. */
async function connectRedisSentinel(): Promise<Backend> {
  required('REDIS_SENTINEL_URL', REDIS_SENTINEL_URL, 'redis-sentinel.sh');
  const raw = await connectSentinelRaw(REDIS_SENTINEL_URL);
  // A handed-over client is one server's: counting runs on the master of the moment.
  return connectRedis('redis-sentinel', REDIS_SENTINEL_URL, false, { raw, counted: async () => countedRedis(await sentinelMasterUrl(), false) });
}

/**
 * Where the failover setups run unless named in `DATABASE=`: the shared suites (the store's and the frameworks')
 * and their own; every other file would only repeat, on a second server pair, what it checks on the first.
 */
const FAILOVER_SUITES = ['store.test.ts', 'frameworks.test.ts', 'failover.test.ts', 'user-sessions.test.ts'];

export const connectors: readonly BackendConnector[] = [
  { name: 'postgres-failover', aliases: ['postgres-replica'], order: 22, connect: connectPostgresFailover, onlyIn: FAILOVER_SUITES },
  { name: 'redis-sentinel', aliases: ['sentinel'], order: 23, connect: connectRedisSentinel, onlyIn: FAILOVER_SUITES },
];
