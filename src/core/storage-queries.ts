/**
 * What the store asks of storage beyond one session, with the port's
 * defaults for a storage that lacks a member (`./backend.ts`): a user's
 * sessions from `listByUser`, counts from `all`, no expired sessions where
 * the storage drops them itself.
 */
import { type ReadyBackend, sessionOfStored, type StoredData, type StoredUserSession } from './backend.js';
import type { JsonObject } from './json.js';
import { publicHandle } from './session-id.js';
import type { SessionClient, SessionStats, UserSession } from './store-types.js';
import { userIdOf } from './user-id.js';

/** Each stored session that can be read as one (a corrupt row must not hide the others). */
export function readable<T extends StoredData, R>(rows: readonly T[], read: (row: T, session: JsonObject) => R): R[] {
  const sessions: R[] = [];
  for (const row of rows) {
    try {
      sessions.push(read(row, sessionOfStored(row)));
    } catch {
      // Skipped: see above.
    }
  }
  return sessions;
}

/** Deletes every session of a user but the one stored under `exceptKey`; resolves to how many. */
export async function destroyUserSessions(storage: ReadyBackend, userId: string, exceptKey: string | undefined): Promise<number> {
  if (storage.destroyByUser !== undefined) return storage.destroyByUser(userId, exceptKey);
  const sessions = (await storage.listByUser(userId, Date.now())).filter(({ key }) => key !== exceptKey);
  for (const { key } of sessions) await storage.destroy(key);
  return sessions.length;
}

/**
 * Deletes the session of `userId` whose public handle is `handle`; resolves to whether there was one. The handle
 * is looked for among the user's own sessions only, so one user can never name another's.
 */
export async function destroyUserSessionByHandle(storage: ReadyBackend, userId: string, handle: string): Promise<string | undefined> {
  const found = (await storage.listByUser(userId, Date.now())).find(({ key }) => publicHandle(key) === handle);
  if (found === undefined) return undefined;
  if (storage.destroyOfUser !== undefined) return (await storage.destroyOfUser(found.key, userId)) ? found.key : undefined;
  await storage.destroy(found.key);
  return found.key;
}

/** The client as recorded, or `undefined` for none or one that cannot be read (a hand-made row). */
function clientOf(text: string | undefined): SessionClient | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { userAgent, ip } = value as Record<string, unknown>;
    return { userAgent: typeof userAgent === 'string' ? userAgent : undefined, ip: typeof ip === 'string' ? ip : undefined };
  } catch {
    return undefined;
  }
}

/** What a listing of a user's sessions needs besides the user. */
export interface UserListing {
  /** The stored key of the requesting session, if any. */
  readonly currentKey: string | undefined;
  /** `absoluteTimeout` in ms: sessions created longer ago than this are not listed. */
  readonly absoluteTimeoutMs: number | undefined;
}

/** True when a session created at `createdAt` has outlived the absolute timeout at `now`. */
export function outlived(createdAt: number | undefined, absoluteTimeoutMs: number | undefined, now: number): boolean {
  return absoluteTimeoutMs !== undefined && createdAt !== undefined && createdAt + absoluteTimeoutMs <= now;
}

/** The live sessions of a user that can be read as sessions, oldest first. */
export async function listUserSessions(storage: ReadyBackend, userId: string, { currentKey, absoluteTimeoutMs }: UserListing): Promise<UserSession[]> {
  const now = Date.now();
  const rows = (await storage.listByUser(userId, now))
    .filter((row) => !outlived(row.createdAt, absoluteTimeoutMs, now))
    .sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
  return readable(rows, (row: StoredUserSession, session) => ({
    handle: publicHandle(row.key),
    session,
    expiresAt: new Date(row.expiresAt),
    createdAt: row.createdAt === undefined ? undefined : new Date(row.createdAt),
    lastSeenAt: row.lastSeenAt === undefined ? undefined : new Date(row.lastSeenAt),
    current: row.key === currentKey,
    client: clientOf(row.client),
  }));
}

/** Every live session that can be read as one. */
export async function allSessions(storage: ReadyBackend): Promise<JsonObject[]> {
  return readable(await storage.all(Date.now()), (_row, session) => session);
}

/** Number of live sessions. */
export async function countSessions(storage: ReadyBackend): Promise<number> {
  return storage.count === undefined ? (await storage.all(Date.now())).length : storage.count(Date.now());
}

/** Live and expired sessions. */
export async function sessionStats(storage: ReadyBackend): Promise<SessionStats> {
  if (storage.stats !== undefined) return storage.stats(Date.now());
  return { live: await countSessions(storage), expired: 0 };
}

/** The order a user's sessions are kept in under `maxSessionsPerUser`: the most recently used first, ties by creation, then key. */
function recentFirst(a: StoredUserSession, b: StoredUserSession): number {
  const used = (b.lastSeenAt ?? b.createdAt ?? 0) - (a.lastSeenAt ?? a.createdAt ?? 0);
  if (used !== 0) return used;
  const created = (b.createdAt ?? 0) - (a.createdAt ?? 0);
  if (created !== 0) return created;
  return a.key < b.key ? 1 : a.key > b.key ? -1 : 0;
}

/**
 * Destroys the least recently used sessions of a user beyond `limit`; resolves to the keys destroyed. Every caller
 * ranks the sessions it finds by the same total order, so concurrent logins each destroy the oldest of what they
 * see, and the last to look leaves exactly the `limit` most recent: no lock is needed.
 */
export async function evictBeyond(storage: ReadyBackend, userId: string, limit: number, absoluteTimeoutMs: number | undefined): Promise<string[]> {
  const now = Date.now();
  const sessions = (await storage.listByUser(userId, now)).filter((row) => !outlived(row.createdAt, absoluteTimeoutMs, now));
  if (sessions.length <= limit) return [];
  const evicted: string[] = [];
  for (const { key } of sessions.sort(recentFirst).slice(limit)) {
    if (storage.destroyOfUser === undefined) await storage.destroy(key);
    else if (!(await storage.destroyOfUser(key, userId))) continue;
    evicted.push(key);
  }
  return evicted;
}

/** Moves a live session to another key; `false` when there was none (see {@link ReadyBackend.rename}). */
export async function renameSession(storage: ReadyBackend, fromKey: string, toKey: string, userIdPath: readonly string[] | undefined): Promise<boolean> {
  const now = Date.now();
  if (storage.rename !== undefined) return storage.rename({ fromKey, toKey, now });
  const stored = await storage.load(fromKey, now);
  if (stored === null) return false;
  const session = sessionOfStored(stored);
  const userId = userIdPath === undefined ? undefined : userIdOf(session, userIdPath);
  await storage.upsert({ key: toKey, now, expiresAt: stored.expiresAt, text: JSON.stringify(session), userId });
  await storage.destroy(fromKey);
  return true;
}
