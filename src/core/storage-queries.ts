/**
 * What the store asks of storage beyond one session, with the port's
 * defaults for a storage that lacks a member (`./backend.ts`): a user's
 * sessions from `listByUser`, counts from `all`, no expired sessions where
 * the storage drops them itself.
 */
import { type ReadyBackend, sessionOfStored, type StoredData } from './backend.js';
import type { JsonObject } from './json.js';
import type { SessionStats, UserSession } from './store-types.js';

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

/** Deletes every session of a user; resolves to how many. */
export async function destroyUserSessions(storage: ReadyBackend, userId: string): Promise<number> {
  if (storage.destroyByUser !== undefined) return storage.destroyByUser(userId);
  const sessions = await storage.listByUser(userId, Date.now());
  for (const { key } of sessions) await storage.destroy(key);
  return sessions.length;
}

/** The live sessions of a user that can be read as sessions. */
export async function listUserSessions(storage: ReadyBackend, userId: string): Promise<UserSession[]> {
  return readable(await storage.listByUser(userId, Date.now()), (row, session) => ({ session, expiresAt: new Date(row.expiresAt) }));
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
