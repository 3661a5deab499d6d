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
 *   loaded and writes with compare-and-set; on a conflict it reloads and
 *   merges again, and takes the lock after 8 conflicts.
 * - `atomic`: the same compare-and-set loop, run here (a conflict reply
 *   carries the stored session, so each retry is one round trip), with
 *   jitter; after 8 conflicts it takes the lock. Its first attempt starts
 *   from the state of the session this process last saw (see
 *   {@link RecentStates}), so a writing request sends two commands, as with
 *   `optimistic`.
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
  DeltaWrite,
  DocumentWrite,
  ExpiryMove,
  LockedMerge,
  MergedDocument,
  PurgeRun,
  ReadyBackend,
  SessionBackend,
  SessionCounts,
  StorageNeeds,
  StoredData,
  StoredSession,
  UserIdWrite,
  VersionedWrite,
} from '../../core/backend.js';
import { applyDelta } from '../../core/delta.js';
import { parseStoredSession } from '../../core/json.js';
import type { LockingMode } from '../../core/options.js';
import { SessionStoreError } from '../../errors.js';
import type { TableName } from '../connection-settings.js';
import type { TargetDescription } from '../driver.js';
import type { RedisLink, RedisNode } from './redis-client.js';
import { describeRedisFailure, isOfflineError, isRedisConnectionError, isReply, RedisLockBusyError } from './redis-errors.js';
import { ALL_SCRIPTS, COMPARE_AND_SET, DESTROY_IF_USER, EXTEND_EXPIRY, INDEX_USER, LOCK, UNLOCK, UPSERT, WRITE_LOCKED, type RedisScript } from './scripts.js';

/** Compare-and-set attempts of an `atomic` save before it takes the lock. */
const ATOMIC_ATTEMPTS = 8;
/** How long a `pessimistic` lock holds if its holder dies before releasing it. */
const LOCK_LEASE_MS = 5000;
/** How long a `pessimistic` writer waits for a lock before the store runs the save again. */
const LOCK_WAIT_MS = 2 * LOCK_LEASE_MS;
/** Keys asked of SCAN per call, and sessions read per batch when iterating. */
const SCAN_COUNT = 500;
/** The oldest Redis with every command the store sends (ZADD GT). */
const MINIMUM_VERSION = [6, 2] as const;
/** Sessions whose last seen state an `atomic` store keeps, and the UTF-16 units of text they may hold in all. */
const RECENT_STATES = 1024;
const RECENT_STATES_TEXT = 4 * 1024 * 1024;

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

/**
 * The state of each session this process last saw (`atomic` only): what a
 * read found, what a conflict reply said is stored, what a write of this
 * process stored. An `atomic` save merges its delta into that state and
 * writes it with compare-and-set from its version, so it needs no read of
 * its own: a writing request sends two commands (its read, the write), not
 * three.
 *
 * It is only ever a first guess. Every writer moves a session's version on
 * by one whenever its data changes, and a session created again starts at a
 * random version, so a state whose version is still the stored one is the
 * stored session; any other fails the version check, whose reply carries the
 * stored session to merge into instead. A session that is gone stays gone
 * (the check finds no session). The state a save starts from is never older
 * than what its own request read, so the guarantees are those of
 * `optimistic`, which starts from that read.
 *
 * Bounded in sessions and in text; the oldest go first.
 */
class RecentStates {
  readonly #states = new Map<string, StoredState>();
  #textUnits = 0;

  get(key: string): StoredState | undefined {
    return this.#states.get(key);
  }

  /** Remembers a session's state (a state without a version cannot be checked against: it is forgotten). */
  set(key: string, state: StoredState): void {
    this.delete(key);
    const units = state.text?.length ?? 0;
    if (state.version === null || units > RECENT_STATES_TEXT / 64) return;
    this.#states.set(key, state);
    this.#textUnits += units;
    for (const [oldest, { text }] of this.#states) {
      if (this.#states.size <= RECENT_STATES && this.#textUnits <= RECENT_STATES_TEXT) break;
      this.#states.delete(oldest);
      this.#textUnits -= text?.length ?? 0;
    }
  }

  delete(key: string): void {
    const known = this.#states.get(key);
    if (known === undefined) return;
    this.#states.delete(key);
    this.#textUnits -= known.text?.length ?? 0;
  }

  clear(): void {
    this.#states.clear();
    this.#textUnits = 0;
  }
}

/** The sessions under one key prefix, on one Redis or Redis Cluster. */
export class RedisSessions implements ReadyBackend {
  readonly locking: LockingMode;
  readonly capacity = undefined;
  readonly #link: RedisLink;
  readonly #prefix: string;
  /** True when a user index is kept (`userIdKey`). */
  readonly #indexed: boolean;
  /** `atomic`: the state of each session last seen, where an `atomic` save starts from. */
  readonly #recent: RecentStates | undefined;
  /** The fields a read asks for: with the user too when an `atomic` save starts from it and the user is indexed. */
  readonly #readFields: readonly string[];

  constructor(link: RedisLink, prefix: string, locking: LockingMode, indexed: boolean) {
    this.#link = link;
    this.#prefix = prefix;
    this.locking = locking;
    this.#indexed = indexed;
    this.#recent = locking === 'atomic' ? new RecentStates() : undefined;
    this.#readFields = locking === 'atomic' && indexed ? ['data', 'v', 'e', 'u'] : ['data', 'v', 'e'];
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

  /** The session's fields (data, v, e, and u when asked for); `null` when it does not exist. */
  async #read(key: string, fields: readonly string[]): Promise<StoredState | null> {
    const sessionKey = this.#sessionKey(key);
    const reply = arrayOf(await this.#link.send(sessionKey, ['HMGET', sessionKey, ...fields]));
    if ((reply[0] ?? null) === null && (reply[1] ?? null) === null) return null;
    return stateOf(reply, 0);
  }

  async load(key: string, now: number): Promise<StoredSession | null> {
    const stored = await this.#read(key, this.#readFields);
    if (stored === null) {
      this.#recent?.delete(key);
      return null;
    }
    this.#recent?.set(key, stored);
    const { text, version, expiresAt } = stored;
    return expiresAt <= now ? null : { text, version, expiresAt };
  }

  async upsert({ key, expiresAt, text, userId }: DocumentWrite): Promise<void> {
    // The version this write leaves is not known here: the next read says it.
    this.#recent?.delete(key);
    if (typeof userId === 'string') await this.#indexFor(userId, key, expiresAt);
    await this.#run(UPSERT, this.#sessionKey(key), [text, at(expiresAt), ...userArgs(userId), String(randomInt(1, 2 ** 31))]);
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

  async compareAndSwap(write: VersionedWrite): Promise<boolean> {
    let indexed = typeof write.userId === 'string' ? write.userId : null;
    await this.#indexFor(indexed, write.key, write.expiresAt);
    // Twice at most: a write that leaves the stored user in place learns it, indexes it, and writes.
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await this.#compareAndSet(write, indexed);
      if (result.outcome !== 'unindexed') return result.outcome === 'written';
      indexed = result.userId;
      await this.#indexFor(indexed, write.key, write.expiresAt);
    }
    return false;
  }

  /** The user a session ends with: the write's, or the stored one when the write leaves it. */
  #finalUser(userId: UserIdWrite, stored: StoredState): string | null {
    return userId === undefined ? (stored.userId ?? null) : userId;
  }

  async applyDelta(write: DeltaWrite): Promise<boolean> {
    const { key, now, expiresAt, delta, userId } = write;
    const merge = (stored: StoredState): MergedDocument => ({ text: JSON.stringify(applyDelta(parseStoredSession(stored.text), delta)), userId });
    // The state last seen (this request's own read, or newer), else a read; with an index, one that knows the user.
    const known = this.#recent?.get(key);
    let stored = known !== undefined && (known.userId !== undefined || !this.#indexed) ? known : await this.#read(key, ['data', 'v', 'e', 'u']);
    if (stored === null) {
      this.#recent?.delete(key);
      return false;
    }
    for (let attempt = 0; attempt < ATOMIC_ATTEMPTS && stored.version !== null; attempt++) {
      // Whether the session expired meanwhile is the script's to say: a state seen earlier may hold an expiry moved on since.
      const { text } = merge(stored);
      const finalUser = this.#finalUser(userId, stored);
      await this.#indexFor(finalUser, key, expiresAt);
      const result = await this.#compareAndSet({ key, now, expiresAt, userId, text, version: stored.version }, finalUser);
      if (result.outcome === 'written') {
        this.#recent?.set(key, { text, version: stored.version + 1, expiresAt, userId: this.#indexed ? finalUser : undefined });
        return true;
      }
      if (result.outcome === 'gone') {
        this.#recent?.delete(key);
        return false;
      }
      if (result.outcome === 'conflict') {
        stored = result.stored;
        this.#recent?.set(key, stored);
        if (attempt > 0) await backoff(attempt);
      } else {
        // The user changed between the read and the write: read again (the next reply says the new one).
        const again = await this.#read(key, ['data', 'v', 'e', 'u']);
        if (again === null) {
          this.#recent?.delete(key);
          return false;
        }
        stored = again;
      }
    }
    // Heavy contention (or a session without a version): the lock always makes progress.
    return this.#updateLocked({ key, now, expiresAt, merge: (locked) => merge(locked) });
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
    // What the locked write leaves is not kept: the next read says it.
    this.#recent?.delete(key);
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
    this.#recent?.delete(key);
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
  async destroyByUser(userId: string): Promise<number> {
    const keys = await this.#indexedKeys(userId, Date.now());
    for (const key of keys) this.#recent?.delete(key);
    const deleted = await Promise.all(keys.map(async (key) => integerOf(await this.#run(DESTROY_IF_USER, this.#sessionKey(key), [userId]))));
    return deleted.reduce((sum, count) => sum + count, 0);
  }

  async listByUser(userId: string, now: number): Promise<StoredSession[]> {
    const keys = await this.#indexedKeys(userId, now);
    const replies = await Promise.all(keys.map((key) => this.#link.send(this.#sessionKey(key), ['HMGET', this.#sessionKey(key), 'data', 'v', 'e', 'u'])));
    const sessions: StoredSession[] = [];
    for (const reply of replies) {
      const stored = stateOf(arrayOf(reply), 0);
      if (stored.userId === userId && stored.expiresAt > now && (stored.text !== null || stored.version !== null)) {
        sessions.push({ text: stored.text, version: stored.version, expiresAt: stored.expiresAt });
      }
    }
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
    this.#recent?.clear();
    const prefix = literalPattern(this.#prefix);
    for (const pattern of [`${prefix}:*`, `${prefix}#*`]) {
      for await (const keys of this.#scan(pattern)) await Promise.all(keys.map((key) => this.#link.send(key, ['DEL', key])));
    }
  }

  /** Redis removes a session when its key's TTL runs out: nothing is left to purge. */
  async purge(_run: PurgeRun): Promise<number> {
    return 0;
  }

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
