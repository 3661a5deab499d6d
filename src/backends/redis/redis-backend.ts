/**
 * Redis (a single server or a Redis Cluster) as a session backend.
 *
 * Each session is one hash (`<table>:<key>`, see ./scripts.ts for its
 * fields) whose key TTL is the session's expiry, so Redis itself removes
 * expired sessions and purge has nothing to do. Reads are one plain HMGET.
 * Writes are scripts that write only if the version the merge was based on
 * is still the stored one; the merge itself runs here, in TypeScript (the
 * core's delta rule), never in Lua.
 *
 * Locking modes:
 * - `optimistic` (the default): the core merges into what the request
 *   loaded and writes with compare-and-set; on a conflict it merges again
 *   into what the reply says is stored, and takes the lock after 8 conflicts.
 * - `atomic`: the same (Redis has no merge of its own to run in one step).
 *   A conflict reply carries the stored session, so each retry is one round
 *   trip.
 * - `pessimistic`: a lock in the session's own hash (a token and a lease),
 *   then the merge, then a write that checks the token and the version and
 *   releases the lock. Compare-and-set writers respect a live lock.
 *
 * Every command names one key, so every command stays in one slot of a
 * cluster; what spans keys (the user index, SCAN over every master) is
 * ordered so that no logged-out session survives (see {@link RedisSessions.destroyByUser}).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ConnectionFailure,
  DocumentWrite,
  ExpiryMove,
  KeyMove,
  LockedMerge,
  MergedDocument,
  ReadyBackend,
  SessionBackend,
  SessionCounts,
  StorageNeeds,
  StoredData,
  StoredSession,
  StoredUserSession,
  UserIdWrite,
  VersionedWrite,
} from '../../core/backend.js';
import type { LockingMode } from '../../core/options.js';
import { SessionStoreError } from '../../errors.js';
import type { TableName } from '../connection-settings.js';
import type { TargetDescription } from '../driver.js';
import type { RedisLink, RedisNode } from './redis-client.js';
import { describeRedisFailure, isOfflineError, isRedisConnectionError, isReply, RedisLockBusyError } from './redis-errors.js';
import {
  ALL_SCRIPTS,
  COMPARE_AND_SET,
  COPY_SESSION,
  DESTROY_IF_USER,
  DESTROY_IF_VERSION,
  EXTEND_EXPIRY,
  INDEX_USER,
  INSERT_IF_ABSENT,
  LOCK,
  UNLOCK,
  UPSERT,
  WRITE_LOCKED,
  type RedisScript,
} from './scripts.js';

/** How long a `pessimistic` lock holds if its holder dies before releasing it. */
const LOCK_LEASE_MS = 5000;
/** How long a `pessimistic` writer waits for a lock before the store runs the save again. */
const LOCK_WAIT_MS = 2 * LOCK_LEASE_MS;
/** Keys asked of SCAN per call, and sessions read per batch when iterating. */
const SCAN_COUNT = 500;
/** The oldest Redis with every command the store sends (ZADD GT). */
const MINIMUM_VERSION = [6, 2] as const;

/** How many times a rotation copies a session that keeps being written meanwhile before it gives up. */
const ROTATE_ATTEMPTS = 16;
/** The fields of a session a rotation carries to its new key (not a `pessimistic` writer's lock). */
const SESSION_FIELDS = ['data', 'v', 'e', 'u', 'c', 's', 'cl'] as const;

/** The fields a load reads: `data, v, e`, and when the session was created (`absoluteTimeout`). */
const READ_FIELDS = ['data', 'v', 'e', 'c'] as const;

/** `<table>` or `<schema>.<table>`: the prefix of every key of the store. */
export function keyPrefix(table: TableName): string {
  return table.schema === undefined ? table.name : `${table.schema}.${table.name}`;
}

/** A glob pattern matching `text` literally. */
function literalPattern(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function textOf(value: unknown): string | null {
  return typeof value === 'string' ? value : value === null || value === undefined ? null : String(value);
}

/** A reply integer (a string under ioredis' `stringNumbers`). */
function integerOf(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** An epoch-ms instant as the scripts take it: an integer. */
function at(ms: number): string {
  return String(Math.floor(ms));
}

/** `[op, value]` for the scripts: '1' sets the user id, '0' clears it, '' keeps it. */
function userArgs(userId: UserIdWrite): [string, string] {
  return userId === undefined ? ['', ''] : userId === null ? ['0', ''] : ['1', userId];
}

/** A random pause of up to `2^attempt` ms (capped), so writers that keep colliding spread out. */
function backoff(attempt: number, capMs = 25): Promise<void> {
  return sleep(1 + Math.random() * Math.min(2 ** attempt, capMs));
}

/** A session and its user, as the scripts read them. */
interface StoredState {
  readonly text: string | null;
  readonly version: number | null;
  readonly expiresAt: number;
  /** `undefined`: not read. */
  readonly userId: string | null | undefined;
}

/** `data, v, e`, and `u` when there, of a reply (from `offset`). */
function stateOf(reply: readonly unknown[], offset: number): StoredState {
  const version = reply[offset + 1];
  const expiry = reply[offset + 2];
  return {
    text: textOf(reply[offset]),
    version: version === null || version === undefined ? null : integerOf(version),
    // A hash written without an expiry by someone else lives as long as its key.
    expiresAt: expiry === null || expiry === undefined ? Number.MAX_SAFE_INTEGER : integerOf(expiry),
    userId: reply.length > offset + 3 ? textOf(reply[offset + 3]) : undefined,
  };
}

/** What a compare-and-set did, when it says no more than that. */
const WRITTEN = { outcome: 'written' } as const;
const GONE = { outcome: 'gone' } as const;

/** The sessions under one key prefix, on one Redis or Redis Cluster. */
export class RedisSessions implements ReadyBackend {
  readonly locking: LockingMode;
  readonly #link: RedisLink;
  readonly #prefix: string;
  /** True when a user index is kept (`userIdKey`). */
  readonly #indexed: boolean;

  constructor(link: RedisLink, prefix: string, locking: LockingMode, indexed: boolean) {
    this.#link = link;
    this.#prefix = prefix;
    this.locking = locking;
    this.#indexed = indexed;
  }

  /** The hash of a session. */
  #sessionKey(key: string): string {
    return `${this.#prefix}:${key}`;
  }

  /**
   * The index of a user's sessions: a sorted set in the user's own slot
   * (`{...}` is a hash tag), apart from the sessions' keys (`#` never
   * appears in a table name, so no session key can take this form).
   */
  #userKey(userId: string): string {
    return `${this.#prefix}#user:{${createHash('sha256').update(userId).digest('hex')}}`;
  }

  /** Runs a script by its SHA-1, sending its source when the server does not have it (restarted, failed over, flushed). */
  async #run(script: RedisScript, key: string, args: readonly string[]): Promise<unknown> {
    try {
      return await this.#link.send(key, ['EVALSHA', script.sha, '1', key, ...args]);
    } catch (error) {
      if (!isReply(error, 'NOSCRIPT')) throw error;
      return this.#link.send(key, ['EVAL', script.source, '1', key, ...args]);
    }
  }

  /** Raises the user's index entry for a session to its new expiry, before the session is written with that user. */
  async #index(userId: string, key: string, expiresAt: number): Promise<void> {
    await this.#run(INDEX_USER, this.#userKey(userId), [key, at(expiresAt), at(Date.now())]);
  }

  /** The user the session will belong to after a write, when the store keeps an index. */
  async #indexFor(userId: string | null, key: string, expiresAt: number): Promise<void> {
    if (this.#indexed && userId !== null) await this.#index(userId, key, expiresAt);
  }

  async load(key: string, now: number): Promise<StoredSession | null> {
    const sessionKey = this.#sessionKey(key);
    const reply = arrayOf(await this.#link.send(sessionKey, ['HMGET', sessionKey, ...READ_FIELDS]));
    if ((reply[0] ?? null) === null && (reply[1] ?? null) === null) return null;
    const { text, version, expiresAt } = stateOf(reply.slice(0, 3), 0);
    if (expiresAt <= now) return null;
    const created = reply[3];
    return created === null || created === undefined ? { text, version, expiresAt } : { text, version, expiresAt, createdAt: integerOf(created) };
  }

  async upsert({ key, now, expiresAt, text, userId, client }: DocumentWrite): Promise<void> {
    if (typeof userId === 'string') await this.#indexFor(userId, key, expiresAt);
    await this.#run(UPSERT, this.#sessionKey(key), [text, at(expiresAt), ...userArgs(userId), String(randomInt(1, 2 ** 31)), at(now), client ?? '']);
  }

  async insertIfAbsent({ key, now, expiresAt, text, userId }: DocumentWrite): Promise<boolean> {
    if (typeof userId === 'string') await this.#indexFor(userId, key, expiresAt);
    const written = await this.#run(INSERT_IF_ABSENT, this.#sessionKey(key), [
      text,
      at(expiresAt),
      at(now),
      ...userArgs(userId),
      String(randomInt(1, 2 ** 31)),
    ]);
    return integerOf(written) === 1;
  }

  /**
   * One compare-and-set. The user the session ends with is indexed first
   * (`indexedUser`); the script refuses a write that would leave the session
   * with another user than the one indexed, and says which (`needsIndex`).
   */
  async #compareAndSet(
    write: VersionedWrite,
    indexedUser: string | null,
  ): Promise<
    | { readonly outcome: 'written' }
    | { readonly outcome: 'gone' }
    | { readonly outcome: 'conflict'; readonly stored: StoredState }
    | { readonly outcome: 'unindexed'; readonly userId: string }
  > {
    const { key, now, expiresAt, version, text, userId } = write;
    const [userOp, userValue] = userArgs(userId);
    const reply = await this.#run(COMPARE_AND_SET, this.#sessionKey(key), [
      String(version),
      text,
      at(expiresAt),
      userOp,
      userValue,
      at(now),
      indexedUser ?? '',
      this.#indexed ? '1' : '',
      String(version + 1),
    ]);
    // Written: a plain 1 (no array to build and read on every save).
    if (!Array.isArray(reply)) return integerOf(reply) === 1 ? WRITTEN : GONE;
    switch (integerOf(reply[0])) {
      case 1:
        return WRITTEN;
      case -1:
        return GONE;
      case 2:
        return { outcome: 'unindexed', userId: textOf(reply[1]) as string };
      default:
        return { outcome: 'conflict', stored: stateOf(reply, 1) };
    }
  }

  async compareAndSwap(write: VersionedWrite): Promise<boolean | StoredSession> {
    let indexed = typeof write.userId === 'string' ? write.userId : null;
    await this.#indexFor(indexed, write.key, write.expiresAt);
    // Twice at most: a write that leaves the stored user in place learns it, indexes it, and writes.
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await this.#compareAndSet(write, indexed);
      if (result.outcome === 'written') return true;
      if (result.outcome === 'gone') return false;
      // The reply carries the session stored now: the store merges into it without a read.
      if (result.outcome === 'conflict') return result.stored;
      indexed = result.userId;
      await this.#indexFor(indexed, write.key, write.expiresAt);
    }
    return false;
  }

  /** The user a session ends with: the write's, or the stored one when the write leaves it. */
  #finalUser(userId: UserIdWrite, stored: StoredState): string | null {
    return userId === undefined ? (stored.userId ?? null) : userId;
  }

  async updateLocked(write: LockedMerge): Promise<boolean> {
    return this.#updateLocked({ ...write, merge: (stored) => write.merge({ text: stored.text, version: stored.version, expiresAt: stored.expiresAt }) });
  }

  /** Takes the session's lock, merges, writes and releases it; `false` when the session is gone. */
  async #updateLocked({
    key,
    now,
    expiresAt,
    merge,
  }: {
    key: string;
    now: number;
    expiresAt: number;
    merge: (stored: StoredState) => MergedDocument;
  }): Promise<boolean> {
    const sessionKey = this.#sessionKey(key);
    const token = randomBytes(12).toString('base64url');
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      // A lock held by others, or writes past it, for this long: the store runs the save again after a pause.
      if (attempt > 0 && Date.now() - started > LOCK_WAIT_MS) throw new RedisLockBusyError(sessionKey, Date.now() - started);
      const reply = arrayOf(await this.#run(LOCK, sessionKey, [token, String(LOCK_LEASE_MS), at(now)]));
      const status = integerOf(reply[0]);
      if (status === -1) return false;
      if (status === 0) {
        await backoff(attempt);
        continue;
      }
      const stored = stateOf(reply, 1);
      let merged: MergedDocument;
      try {
        merged = merge(stored);
        await this.#indexFor(this.#finalUser(merged.userId, stored), key, expiresAt);
      } catch (error) {
        await this.#run(UNLOCK, sessionKey, [token]).catch(() => undefined);
        throw error;
      }
      const written = integerOf(
        await this.#run(WRITE_LOCKED, sessionKey, [
          token,
          stored.version === null ? '' : String(stored.version),
          merged.text,
          at(expiresAt),
          ...userArgs(merged.userId),
          at(now),
        ]),
      );
      if (written === 1) return true;
      if (written === -1) return false;
      // The lock lapsed, or someone wrote past it: merge again from what is stored now.
    }
  }

  async extendExpiry({ key, now, expiresAt, movedBefore }: ExpiryMove): Promise<void> {
    let indexed = '';
    // At most twice: once to learn the session's user, once after indexing it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const reply = await this.#run(EXTEND_EXPIRY, this.#sessionKey(key), [at(expiresAt), at(movedBefore), at(now), indexed, this.#indexed ? '1' : '']);
      if (!Array.isArray(reply)) return;
      indexed = textOf(reply[0]) as string;
      await this.#index(indexed, key, expiresAt);
    }
  }

  async destroy(key: string): Promise<void> {
    await this.#link.send(this.#sessionKey(key), ['DEL', this.#sessionKey(key)]);
  }

  /** The keys (stored ids) a user's index lists as possibly live. */
  async #indexedKeys(userId: string, now: number): Promise<string[]> {
    const userKey = this.#userKey(userId);
    return arrayOf(await this.#link.send(userKey, ['ZRANGEBYSCORE', userKey, `(${at(now)}`, '+inf'])).map((member) => textOf(member) as string);
  }

  /**
   * Logs a user out everywhere. Every write that leaves a session with a
   * user raised the user's index entry (to at least the session's expiry)
   * BEFORE writing the session, and entries only go when their score has
   * passed; so every session that is the user's when the index is read is
   * listed. Each listed session is then deleted by a script in its own slot,
   * only if it is still the user's (one that changed user meanwhile is
   * another user's now). A save based on a load from before is a
   * compare-and-set on a missing key: it writes nothing.
   */
  async destroyByUser(userId: string, exceptKey?: string): Promise<number> {
    const keys = (await this.#indexedKeys(userId, Date.now())).filter((key) => key !== exceptKey);
    const deleted = await Promise.all(keys.map((key) => this.destroyOfUser(key, userId)));
    return deleted.filter(Boolean).length;
  }

  /**
   * The two keys are in different slots of a cluster, so no one command moves a session: it is copied (its user
   * indexed first, as every write does), then the old key deleted only if no write moved it on since; a write that
   * did is copied again. A save of the old id after the delete finds it gone.
   */
  async rename({ fromKey, toKey, now }: KeyMove): Promise<boolean> {
    const from = this.#sessionKey(fromKey);
    const to = this.#sessionKey(toKey);
    for (let attempt = 0; attempt < ROTATE_ATTEMPTS; attempt++) {
      const values = arrayOf(await this.#link.send(from, ['HMGET', from, ...SESSION_FIELDS])).map((value) => textOf(value));
      const [data, version, expiry, user] = values;
      if ((data === null && version === null) || (expiry !== null && expiry !== undefined && integerOf(expiry) <= now)) return false;
      const expiresAt = expiry === null || expiry === undefined ? Number.MAX_SAFE_INTEGER : integerOf(expiry);
      if (this.#indexed && typeof user === 'string') await this.#index(user, toKey, expiresAt);
      const fields = SESSION_FIELDS.flatMap((field, index) => {
        const value = values[index];
        return value === null || value === undefined ? [] : [field, value];
      });
      await this.#run(COPY_SESSION, to, [at(expiresAt), ...fields]);
      const deleted = integerOf(await this.#run(DESTROY_IF_VERSION, from, [version ?? '']));
      if (deleted === 1) return true;
      if (deleted === -1) {
        // Destroyed meanwhile: so is the copy.
        await this.#link.send(to, ['DEL', to]);
        return false;
      }
      await backoff(attempt);
    }
    await this.#link.send(to, ['DEL', to]);
    throw new SessionStoreError('ERR_DATABASE', `the session kept changing while it was rotated (${ROTATE_ATTEMPTS} attempts); it stays under its old id`);
  }

  async destroyOfUser(key: string, userId: string): Promise<boolean> {
    return integerOf(await this.#run(DESTROY_IF_USER, this.#sessionKey(key), [userId])) === 1;
  }

  async listByUser(userId: string, now: number): Promise<StoredUserSession[]> {
    const keys = await this.#indexedKeys(userId, now);
    const replies = await Promise.all(
      keys.map((key) => this.#link.send(this.#sessionKey(key), ['HMGET', this.#sessionKey(key), 'data', 'v', 'e', 'u', 'c', 's', 'cl'])),
    );
    const sessions: StoredUserSession[] = [];
    replies.forEach((reply, index) => {
      const fields = arrayOf(reply);
      const stored = stateOf(fields.slice(0, 4), 0);
      if (stored.userId === userId && stored.expiresAt > now && (stored.text !== null || stored.version !== null)) {
        const [created, seen, client] = fields.slice(4).map((value) => textOf(value) ?? undefined);
        sessions.push({
          key: keys[index] as string,
          text: stored.text,
          version: stored.version,
          expiresAt: stored.expiresAt,
          createdAt: created === undefined ? undefined : integerOf(created),
          lastSeenAt: seen === undefined ? undefined : integerOf(seen),
          client,
        });
      }
    });
    return sessions;
  }

  /** Every key matching `pattern`, master by master (each master's keys are its slots'), in batches. */
  async *#scan(pattern: string): AsyncGenerator<readonly string[]> {
    for (const node of await this.#link.masters()) yield* this.#scanNode(node, pattern);
  }

  async *#scanNode(node: RedisNode, pattern: string): AsyncGenerator<readonly string[]> {
    let cursor = '0';
    do {
      const [next, keys] = arrayOf(await node.send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(SCAN_COUNT)]));
      cursor = textOf(next) ?? '0';
      const batch = arrayOf(keys).map((key) => textOf(key) as string);
      if (batch.length > 0) yield batch;
    } while (cursor !== '0');
  }

  /** `data` and `e` of every session, batch by batch. */
  async *#sessions(): AsyncGenerator<readonly { readonly text: string | null; readonly expiresAt: number }[]> {
    for await (const keys of this.#scan(`${literalPattern(this.#prefix)}:*`)) {
      const replies = await Promise.all(keys.map((key) => this.#link.send(key, ['HMGET', key, 'data', 'e', 'v'])));
      yield replies
        .map((reply) => arrayOf(reply))
        // Gone since the scan listed it.
        .filter((reply) => (reply[0] ?? null) !== null || (reply[2] ?? null) !== null)
        .map((reply) => ({ text: textOf(reply[0]), expiresAt: reply[1] === null || reply[1] === undefined ? Number.MAX_SAFE_INTEGER : integerOf(reply[1]) }));
    }
  }

  async all(now: number): Promise<StoredData[]> {
    const sessions: StoredData[] = [];
    for await (const batch of this.#sessions()) for (const { text, expiresAt } of batch) if (expiresAt > now) sessions.push({ text });
    return sessions;
  }

  async count(now: number): Promise<number> {
    return (await this.stats(now)).live;
  }

  async clear(): Promise<void> {
    const prefix = literalPattern(this.#prefix);
    for (const pattern of [`${prefix}:*`, `${prefix}#*`]) {
      for await (const keys of this.#scan(pattern)) await Promise.all(keys.map((key) => this.#link.send(key, ['DEL', key])));
    }
  }

  // No purge: Redis removes a session when its key's TTL runs out.

  async stats(now: number): Promise<SessionCounts> {
    let live = 0;
    let expired = 0;
    for await (const batch of this.#sessions()) {
      for (const { expiresAt } of batch) {
        if (expiresAt > now) live++;
        else expired++;
      }
    }
    return { live, expired };
  }
}

/** The version numbers of `redis_version:7.0.15` in INFO. */
function serverVersion(info: unknown): number[] | undefined {
  const match = /^redis_version:(\d+)\.(\d+)/m.exec(typeof info === 'string' ? info : String(info));
  return match === null ? undefined : [Number(match[1]), Number(match[2])];
}

/** A Redis or Redis Cluster, open, its scripts not loaded yet. */
export class RedisSessionBackend implements SessionBackend {
  /** One client multiplexes every call: a command that lost its connection is sent once more, after the client reconnected. */
  readonly connectionAttempts = 1;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #where: TargetDescription | undefined;

  constructor(link: RedisLink, table: TableName, where: TargetDescription | undefined) {
    this.#link = link;
    this.#prefix = keyPrefix(table);
    this.#where = where;
  }

  /** Nothing to create: keys appear as sessions are saved. The scripts are loaded on every master. */
  async create(): Promise<void> {
    await this.#loadScripts();
  }

  async #loadScripts(): Promise<void> {
    const masters = await this.#link.masters();
    const [first] = masters;
    if (first !== undefined) {
      const version = serverVersion(await first.send(['INFO', 'server']));
      if (version !== undefined && (version[0] as number) * 100 + (version[1] as number) < MINIMUM_VERSION[0] * 100 + MINIMUM_VERSION[1]) {
        throw new SessionStoreError(
          'ERR_DATABASE',
          `Redis ${version.join('.')} at ${first.address} is too old: the store needs Redis ${MINIMUM_VERSION.join('.')} or later`,
        );
      }
    }
    await Promise.all(masters.flatMap((node) => ALL_SCRIPTS.map((script) => node.send(['SCRIPT', 'LOAD', script.source]))));
  }

  async prepare(needs: StorageNeeds): Promise<ReadyBackend> {
    await this.#loadScripts();
    return new RedisSessions(this.#link, this.#prefix, needs.locking ?? 'optimistic', needs.userId);
  }

  async ping(): Promise<void> {
    // A cluster serves every session only when every master answers (as Redis itself says with cluster-require-full-coverage).
    await Promise.all((await this.#link.masters()).map((node) => node.send(['PING'])));
  }

  isConnectionError(error: unknown): boolean {
    return isRedisConnectionError(error);
  }

  isConnectFailure(error: unknown): boolean {
    return isOfflineError(error);
  }

  describeConnectionFailure(error: unknown): ConnectionFailure | undefined {
    return describeRedisFailure(error, this.#where);
  }

  isTransientConflict(error: unknown): boolean {
    return error instanceof RedisLockBusyError;
  }

  close(): Promise<void> {
    return this.#link.close();
  }
}
