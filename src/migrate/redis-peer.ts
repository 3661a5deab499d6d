/**
 * connect-redis's keyspace, read directly with node-redis on a connection of
 * its own: each session is a string key `<prefix><sid>` (`sess:` by
 * default) holding the session's JSON, its TTL the session's expiry.
 */
import { importDriver } from '../backends/driver.js';
import { SessionStoreError } from '../errors.js';
import { type PeerPage, type PeerRow, type PeerStore, sessionText } from './peer-store.js';

/** The node-redis client, as far as this file uses it. */
interface RedisClient {
  connect(): Promise<unknown>;
  sendCommand(args: readonly string[]): Promise<unknown>;
  close?(): Promise<unknown>;
  quit?(): Promise<unknown>;
}

/** A SCAN pattern matching `prefix` itself followed by anything: glob characters in it are escaped. */
function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (char) => `\\${char}`)}*`;
}

class RedisPeer implements PeerStore {
  readonly description: string;
  readonly #client: RedisClient;
  readonly #prefix: string;

  constructor(client: RedisClient, prefix: string) {
    this.description = `connect-redis, keys ${JSON.stringify(`${prefix}*`)}`;
    this.#client = client;
    this.#prefix = prefix;
  }

  /** The session under `key` and its expiry (`now` plus its TTL); what cannot be read is `null`. */
  async #readKey(key: string, now: number): Promise<{ text: string | null; expiresAt: number | null }> {
    let value: unknown;
    let ttl: unknown;
    try {
      [value, ttl] = await Promise.all([this.#client.sendCommand(['GET', key]), this.#client.sendCommand(['PTTL', key])]);
    } catch (error) {
      // A key of another type under the prefix (WRONGTYPE) is not a session: unreadable, not a failure.
      if (/WRONGTYPE/.test((error as Error).message)) return { text: null, expiresAt: null };
      throw error;
    }
    const ms = Number(ttl);
    return { text: typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : null, expiresAt: ms >= 0 ? now + ms : null };
  }

  async read(sid: string, now: number): Promise<{ text: string; expiresAt: number } | null> {
    const { text, expiresAt } = await this.#readKey(this.#prefix + sid, now);
    const session = sessionText(text);
    return session === null || expiresAt === null ? null : { text: session, expiresAt };
  }

  async page(cursor: string | undefined, limit: number): Promise<PeerPage> {
    const reply = (await this.#client.sendCommand(['SCAN', cursor ?? '0', 'MATCH', prefixPattern(this.#prefix), 'COUNT', String(limit)])) as [unknown, unknown];
    const next = String(reply[0]);
    const keys = (reply[1] as unknown[]).map(String);
    const now = Date.now();
    const rows = await Promise.all(
      keys.map(async (key): Promise<PeerRow | undefined> => {
        const { text, expiresAt } = await this.#readKey(key, now);
        // A key that expired between SCAN and GET is gone: neither copied nor counted.
        if (text === null && expiresAt === null && (await this.#client.sendCommand(['EXISTS', key])) === 0) return undefined;
        return { sid: key.slice(this.#prefix.length), text, expiresAt };
      }),
    );
    return { rows: rows.filter((row) => row !== undefined), next: next === '0' ? undefined : next };
  }

  async remove(sid: string): Promise<void> {
    await this.#client.sendCommand(['DEL', this.#prefix + sid]);
  }

  async close(): Promise<void> {
    await (this.#client.close?.() ?? this.#client.quit?.());
  }
}

/** Opens connect-redis's keyspace at `url`, keys under `prefix`. */
export async function openRedisPeer(url: string, prefix: string | undefined): Promise<PeerStore> {
  const redis = (await importDriver('redis')) as { createClient(options: object): RedisClient & { on(event: string, listener: () => void): unknown } };
  // A few attempts, then the failure: a migration's source that is down must be said, not waited for forever.
  const client = redis.createClient({
    url,
    socket: { connectTimeout: 5000, reconnectStrategy: (retries: number) => (retries >= 5 ? new Error('Redis did not answer') : 100 * 2 ** retries) },
  });
  // Errors surface on the commands; the client's own 'error' event would otherwise end the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new SessionStoreError('ERR_UNAVAILABLE', `connect-redis's Redis at ${url.replace(/\/\/[^@]*@/, '//')} cannot be reached`, { cause: error });
  }
  return new RedisPeer(client, prefix ?? 'sess:');
}
