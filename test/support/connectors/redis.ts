/**
 * Redis: the machine's server (a database number of the suite's own, keys
 * under each test's prefix only) and the 3-master Redis Cluster of
 * `scripts/redis-cluster.sh`. Sessions are hashes `<table>:<key>`; the user
 * indexes `<table>#user:{...}`.
 */
import { createClient, createCluster } from 'redis';
import type { Backend, BackendConnector, CountedConnection, StoredRow } from '../backends.js';
import { storedRow } from '../stored-row.js';

/** A command sender past the store: one server, or a cluster (routed by the command's key). */
export interface RawRedis {
  /** Sends one command; on a cluster `key` picks the node. */
  send(key: string | undefined, args: readonly string[]): Promise<unknown>;
  /** One sender per master (the one server when not a cluster). */
  masters(): Promise<((args: readonly string[]) => Promise<unknown>)[]>;
  close(): Promise<void>;
}

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379/15';
export const REDIS_CLUSTER_URL = process.env['REDIS_CLUSTER_URL'] ?? 'redis://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102';

/** `host:port` of every seed of a cluster URL. */
export function clusterSeeds(url: string): { host: string; port: number }[] {
  return url
    .replace(/^rediss?:\/\//, '')
    .replace(/\/.*$/, '')
    .split(',')
    .map((seed) => {
      const [host = '127.0.0.1', port = '6379'] = seed.split(':');
      return { host, port: Number(port) };
    });
}

/** Pauses between reconnection attempts. */
const reconnect = (attempt: number): number => Math.min(50 * 2 ** attempt, 500);

/** Opens a node-redis client (or cluster) for the test's own use. */
export async function connectRaw(url: string, cluster: boolean): Promise<RawRedis> {
  if (cluster) {
    // It reconnects by itself: a test may kill a master and restart it.
    const client = createCluster({
      rootNodes: clusterSeeds(url).map((socket) => ({ socket })),
      defaults: { socket: { connectTimeout: 3000, reconnectStrategy: reconnect } },
    });
    client.on('error', () => undefined);
    await client.connect();
    return {
      send: (key, args) => client.sendCommand(key, false, [...args]),
      masters: async () =>
        Promise.all(
          client.masters.map(async (master) => {
            const node = await client.nodeClient(master);
            return (args: readonly string[]) => node.sendCommand([...args]);
          }),
        ),
      close: async () => {
        await client.close();
      },
    };
  }
  const client = createClient({ url, socket: { connectTimeout: 3000, reconnectStrategy: reconnect } });
  client.on('error', () => undefined);
  await client.connect();
  return {
    send: (_key, args) => client.sendCommand([...args]),
    masters: async () => [(args: readonly string[]) => client.sendCommand([...args])],
    close: async () => {
      await client.close();
    },
  };
}

/** Every key matching `pattern`, on every master. */
export async function scanKeys(raw: RawRedis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const send of await raw.masters()) {
    let cursor = '0';
    do {
      const [next, batch] = (await send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

/** Rewrites a session's data as a foreign writer would: its version moves on, nothing else changes. */
const REWRITE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1`;

/** A wrapper of a real node-redis client that writes down each command it sends. */
function countedClient(send: (args: readonly string[]) => Promise<unknown>, statements: string[]): { sendCommand(args: readonly string[]): Promise<unknown> } {
  return {
    sendCommand: (args) => {
      statements.push(args.slice(0, 2).join(' '));
      return send(args);
    },
  };
}

export async function counted(url: string, cluster: boolean): Promise<CountedConnection> {
  const statements: string[] = [];
  if (cluster) {
    const client = createCluster({ rootNodes: clusterSeeds(url).map((socket) => ({ socket })) });
    client.on('error', () => undefined);
    await client.connect();
    return {
      connection: {
        sendCommand: (firstKey: string | undefined, isReadonly: boolean | undefined, args: readonly string[]) => {
          statements.push(args.slice(0, 2).join(' '));
          return client.sendCommand(firstKey, isReadonly, [...args]);
        },
        get masters() {
          return client.masters;
        },
        nodeClient: async (master: (typeof client.masters)[number]) => {
          const node = await client.nodeClient(master);
          return countedClient((args) => node.sendCommand([...args]), statements);
        },
        on: (event: string, listener: (...args: unknown[]) => void) => client.on(event, listener),
        off: (event: string, listener: (...args: unknown[]) => void) => client.off(event, listener),
      },
      statements,
      close: async () => {
        await client.close();
      },
    };
  }
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  return {
    connection: countedClient((args) => client.sendCommand([...args]), statements),
    statements,
    close: async () => {
      await client.close();
    },
  };
}

/** A Redis backend of the suite; `opened` gives the raw client and the counted connections of a setup connected otherwise (Sentinel). */
export async function connectRedis(
  name: string,
  url: string,
  cluster: boolean,
  opened?: { readonly raw: RawRedis; readonly counted: () => Promise<CountedConnection> },
): Promise<Backend> {
  const raw = opened?.raw ?? (await connectRaw(url, cluster));
  return {
    name,
    dialect: 'redis',
    url,
    sql: false,
    query: () => Promise.reject(new Error('Redis runs no SQL')),
    close: () => raw.close(),
    rows: (table) => ({
      read: async (key): Promise<StoredRow | undefined> => {
        const sessionKey = `${table}:${key}`;
        const [text, version] = (await raw.send(sessionKey, ['HMGET', sessionKey, 'data', 'v'])) as [string | null, string | null];
        if (text === null && version === null) return undefined;
        return storedRow(text);
      },
      rewrite: async (key, text) => {
        const sessionKey = `${table}:${key}`;
        await raw.send(sessionKey, ['EVAL', REWRITE, '1', sessionKey, text]);
      },
    }),
    counted: opened?.counted ?? (() => counted(url, cluster)),
    drop: async (table) => {
      for (const pattern of [`${table}:*`, `${table}#*`]) {
        for (const key of await scanKeys(raw, pattern)) await raw.send(key, ['DEL', key]);
      }
    },
  };
}

export const connectors: readonly BackendConnector[] = [
  { name: 'redis', aliases: ['ioredis', 'node-redis'], order: 4, connect: () => connectRedis('redis', REDIS_URL, false) },
  { name: 'redis-cluster', aliases: ['cluster'], order: 5, connect: () => connectRedis('redis-cluster', REDIS_CLUSTER_URL, true) },
];
