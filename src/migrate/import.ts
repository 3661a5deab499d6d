/**
 * The import: every live session of another store copied into ours, with
 * its expiry, in batches. The other store is only read. A session ours has
 * already is kept as it is (a user may have used it since), so a second run,
 * or a run after a kill, copies only what the first did not.
 */
import type { SessionStoreCore } from '../core/session-store.js';
import { SessionStoreError, toStoreError } from '../errors.js';
import type { PeerStore } from './peer-store.js';
import { sessionText } from './peer-store.js';
import { openPeer, type PeerStoreOptions } from './peers.js';

/** What an import did. */
export interface ImportSummary {
  /** Sessions copied into this store. */
  copied: number;
  /** Sessions left out because they had expired. */
  expired: number;
  /** Sessions left out because this store has them already (kept as they are). */
  present: number;
  /** Sessions that could not be read (not JSON of an object, no expiry, an id or data this store refuses): left out. */
  unreadable: number;
}

/** How an import runs. */
export interface ImportOptions {
  /** Sessions read from the other store per query. @default 500 */
  batchSize?: number | undefined;
  /** Called after each batch with the counts so far, and how many sessions the other store holds when it can tell. */
  onProgress?: ((summary: Readonly<ImportSummary>, total: number | undefined) => void) | undefined;
}

/** Copies written to this store at once, within a batch. */
const PARALLEL_COPIES = 8;

/** Errors that say a session cannot be taken as it is: counted as unreadable, never a failed import. */
const REFUSED: ReadonlySet<string> = new Set([
  'ERR_INVALID_SESSION_ID',
  'ERR_VALUE_NOT_STORABLE',
  'ERR_FORBIDDEN_KEY',
  'ERR_SESSION_TOO_LARGE',
  'ERR_CORRUPT_ROW',
]);

/** Copies one session in; says what became of it. */
async function copyOne(store: SessionStoreCore, sid: string, text: string | null, expiresAt: number | null, now: number): Promise<keyof ImportSummary> {
  const session = sessionText(text);
  if (session === null || expiresAt === null) return 'unreadable';
  if (expiresAt <= now) return 'expired';
  try {
    return (await store.insertIfAbsent(sid, JSON.parse(session) as object, expiresAt)) ? 'copied' : 'present';
  } catch (error) {
    if (error instanceof SessionStoreError && REFUSED.has(error.code)) return 'unreadable';
    throw error;
  }
}

/** Copies every live session of an open peer store into `store`. */
export async function importFrom(store: SessionStoreCore, peer: PeerStore, options: ImportOptions = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new SessionStoreError('ERR_INVALID_OPTION', `option "batchSize" must be a positive integer, got ${JSON.stringify(batchSize)}`);
  }
  const reading = `reading the sessions of ${peer.description}`;
  const total = await peer.count?.().catch((error: unknown) => {
    throw toStoreError(error, reading);
  });
  const summary: ImportSummary = { copied: 0, expired: 0, present: 0, unreadable: 0 };
  let cursor: string | undefined;
  do {
    const page = await peer.page(cursor, batchSize).catch((error: unknown) => {
      throw toStoreError(error, reading);
    });
    const now = Date.now();
    for (let start = 0; start < page.rows.length; start += PARALLEL_COPIES) {
      const outcomes = await Promise.all(page.rows.slice(start, start + PARALLEL_COPIES).map((row) => copyOne(store, row.sid, row.text, row.expiresAt, now)));
      for (const outcome of outcomes) summary[outcome]++;
    }
    if (page.rows.length > 0) options.onProgress?.(summary, total);
    cursor = page.next;
  } while (cursor !== undefined);
  return summary;
}

/**
 * Copies every live session of another store into `store`, with its expiry;
 * never changes the other store, never overwrites a session `store` has.
 * Run again (after a kill, or twice): it copies only what is missing.
 *
 * @example
 * ```ts
 * const store = new SessionStore({ url: 'postgres://localhost/app' });
 * const summary = await importSessions(store, { store: 'connect-pg-simple', url: 'postgres://localhost/app' });
 * await store.close();
 * ```
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`, `ERR_DRIVER_MISSING`, `ERR_DATABASE`
 */
export async function importSessions(store: SessionStoreCore, from: PeerStoreOptions, options: ImportOptions = {}): Promise<ImportSummary> {
  const peer = await openPeer(from, 'from').catch((error: unknown) => {
    throw toStoreError(error, `opening ${from.store}'s sessions`);
  });
  try {
    return await importFrom(store, peer, options);
  } finally {
    await peer.close();
  }
}
