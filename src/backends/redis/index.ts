/**
 * Redis and Redis Cluster (driver `redis`, that is node-redis 5 or 6, or
 * `ioredis`), as the registry lists it. Its code and driver load only when a
 * store opens it.
 */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';
import { REDIS_OPTIONS, type RedisOptions, type RedisSettings } from './redis-options.js';
import { parseRedisUrl } from './redis-url.js';

/** The shapes of node-redis and ioredis clients, without loading either (see ./redis-client.ts). */
function isRedisClient(connection: object): boolean {
  const candidate = connection as { call?: unknown; callBuffer?: unknown; sendCommand?: unknown; nodeClient?: unknown; masters?: unknown };
  return (
    (typeof candidate.call === 'function' && typeof candidate.callBuffer === 'function') ||
    (typeof candidate.nodeClient === 'function' && Array.isArray(candidate.masters)) ||
    typeof candidate.sendCommand === 'function'
  );
}

export const redis: BackendDescriptor<RedisOptions, RedisSettings> = {
  name: 'redis',
  storage: 'session keys',
  expiresItself: true,
  place: (table) => `keys under "${table}:"`,
  acceptsHosts: true,
  aliases: ['ioredis', 'node-redis', 'valkey'],
  schemes: ['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel'],
  options: REDIS_OPTIONS,
  fromUrl(url) {
    // Checked here, so a wrong URL is refused when the store is made, not when it first connects.
    parseRedisUrl(url);
    return { dialect: 'redis', url };
  },
  fromParameters(parameters) {
    if (parameters.database !== '' && !/^\d{1,5}$/.test(parameters.database)) {
      throw invalidOption('database', `is ${JSON.stringify(parameters.database)}: a Redis database is a number, such as 0 or 15`);
    }
    return { dialect: 'redis', parameters };
  },
  recognises: isRedisClient,
  async open(settings) {
    const [{ RedisSessionBackend }, { adoptRedisClient, openRedisClient, waitingForReplicas }, { describeRedisTarget }] = await Promise.all([
      import('./redis-backend.js'),
      import('./redis-client.js'),
      import('./redis-url.js'),
    ]);
    const { target } = settings;
    const opened = 'connection' in target ? adoptRedisClient(target.connection, settings.connectTimeoutMs) : await openRedisClient(target, settings);
    const link = settings.waitReplicas > 0 ? waitingForReplicas(opened, settings.waitReplicas, settings.waitTimeoutMs) : opened;
    return new RedisSessionBackend(link, settings.table, describeRedisTarget(target));
  },
};
