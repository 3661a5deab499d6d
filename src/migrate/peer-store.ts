/**
 * What the import and the read-through need of another session store: a
 * session by id (the core's `SessionSource`), and every session in pages.
 */
import type { JsonValue } from '../core/json.js';
import type { SessionSource } from '../core/session-source.js';
import { userIdOf } from '../core/user-id.js';

/** A session as the other store keeps it, read as is: an unreadable one has `null` where it could not be read. */
export interface PeerRow {
  /** The session id (the cookie's, unsigned). */
  readonly sid: string;
  /** The session's JSON text; `null` when it is missing or not text. */
  readonly text: string | null;
  /** Its expiry, epoch milliseconds; `null` when it has none that can be read. */
  readonly expiresAt: number | null;
}

/** One page of sessions and where the next one starts. */
export interface PeerPage {
  readonly rows: readonly PeerRow[];
  /** Where to go on from; `undefined` after the last page. */
  readonly next: string | undefined;
}

/** Another session store, open. */
export interface PeerStore extends SessionSource {
  /**
   * Up to about `limit` sessions from `cursor` on (`undefined`: from the start), expired ones included. SQL
   * tables are walked in id order, so a page read again after a kill holds the same sessions; Redis in SCAN order.
   */
  page(cursor: string | undefined, limit: number): Promise<PeerPage>;
  /** How many sessions it holds, expired ones included, where it can tell cheaply (for a progress bar). */
  count?(): Promise<number>;
}

/** The session in `text` if it is JSON text of an object: the one shape every peer stores (express-session's). */
export function sessionText(text: string | null): string | null {
  if (text === null) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? text : null;
  } catch {
    return null;
  }
}

/**
 * Deletes from `peer` every session whose user id at `userIdPath` is `userId`, read page by page: none of the
 * peer stores can be searched by user, so this reads the whole store (only while switching, for "log out
 * everywhere"). Resolves to how many were deleted.
 */
export async function removeUserSessions(peer: PeerStore, userIdPath: readonly string[], userId: string): Promise<number> {
  let removed = 0;
  let cursor: string | undefined;
  do {
    const page = await peer.page(cursor, 1000);
    for (const row of page.rows) {
      const text = sessionText(row.text);
      if (text !== null && userIdOf(JSON.parse(text) as JsonValue, userIdPath) === userId) {
        await peer.remove(row.sid);
        removed++;
      }
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return removed;
}
