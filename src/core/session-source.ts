/**
 * Sessions another store holds, brought over into this one without logging
 * anyone out: each copied once, with its expiry, only where this store has
 * no live session of that id (`ReadyBackend.insertIfAbsent`). The core knows
 * no other store: the composition root hands it a {@link SessionSource}
 * (the readers of each peer store are in `src/migrate/`).
 */
import { SessionStoreError } from '../errors.js';
import type { BackendLink } from './backend-link.js';
import type { ResolvedStoreOptions } from './options.js';
import { userIdToWrite } from './save-paths.js';
import { checkSize, serialise } from './size-limit.js';

/** A session as another store holds it. */
export interface SourceSession {
  /** The session as JSON text of an object. */
  readonly text: string;
  /** Its expiry there, epoch milliseconds. */
  readonly expiresAt: number;
}

/**
 * Another session store, read by session id: what `migrateFrom` reads a
 * session this store does not have from, and deletes a destroyed one from.
 */
export interface SessionSource {
  /** The store and where it keeps its sessions, for messages: `connect-pg-simple, table "session"`. */
  readonly description: string;
  /** The live session stored under `sid`; `null` when there is none, it has expired or it cannot be read as a session. */
  read(sid: string, now: number): Promise<SourceSession | null>;
  /** Deletes the session stored under `sid`, if any. */
  remove(sid: string): Promise<void>;
  /**
   * Deletes every session whose user id (at `userIdPath`, as `userIdKey` reads it) is `userId`: "log out
   * everywhere" while switching, which would else leave the old store's copies to be read through again.
   * @default none: those copies stay
   */
  removeByUser?(userIdPath: readonly string[], userId: string): Promise<void>;
  /** Ends the connections it opened. */
  close(): Promise<void>;
}

/**
 * Stores `session` under `key` with its expiry unless a live session is
 * stored there; resolves `true` when written. What a request saves is never
 * overwritten, and of several copies of one session only the first lands.
 *
 * @throws {SessionStoreError} `ERR_VALUE_NOT_STORABLE`, `ERR_SESSION_TOO_LARGE` (nothing written), `ERR_DATABASE`
 */
export function insertSession(link: BackendLink, settings: ResolvedStoreOptions, key: string, session: unknown, expiresAt: number): Promise<boolean> {
  const current = serialise(session, settings.maxSize);
  return link.call('copying a session in', async ({ storage, sizeLimit, limitedBy }) => {
    checkSize(current.text, sizeLimit, limitedBy);
    if (storage.insertIfAbsent === undefined) {
      throw new SessionStoreError('ERR_INVALID_OPTION', 'this backend cannot take sessions from another store: it has no insert-if-absent');
    }
    return storage.insertIfAbsent({ key, now: Date.now(), expiresAt, text: current.text, userId: userIdToWrite(current.data, settings) });
  });
}

/** Why a session of another store cannot be stored here. */
const NOT_STORABLE: ReadonlySet<string> = new Set(['ERR_VALUE_NOT_STORABLE', 'ERR_FORBIDDEN_KEY', 'ERR_SESSION_TOO_LARGE', 'ERR_CORRUPT_ROW']);

/** What a read-through copy does in this store. */
export interface CopySteps {
  /** Inserts the source's session unless one is stored (see {@link insertSession}). */
  readonly insert: (found: SourceSession) => Promise<boolean>;
  /** Deletes the copy again. */
  readonly destroy: () => Promise<void>;
}

/**
 * Read-through from another store: a session id this store does not have is
 * looked up there and copied in, once per id at a time in this process
 * (concurrent first requests of one user share the copy), once across
 * processes (the insert writes only where nothing is stored).
 */
export class ReadThrough {
  readonly #source: SessionSource;
  /** The copies running, by session id. */
  readonly #copying = new Map<string, Promise<boolean>>();

  constructor(source: SessionSource) {
    this.#source = source;
  }

  /** Copies `sid`'s session from the source, when it has one; `true` when this store now holds it (the caller loads it). */
  copy(sid: string, steps: CopySteps): Promise<boolean> {
    const running = this.#copying.get(sid);
    if (running !== undefined) return running;
    const started = this.#copy(sid, steps).finally(() => this.#copying.delete(sid));
    this.#copying.set(sid, started);
    return started;
  }

  async #copy(sid: string, { insert, destroy }: CopySteps): Promise<boolean> {
    const found = await this.#source.read(sid, Date.now());
    if (found === null) return false;
    try {
      await insert(found);
    } catch (error) {
      // A session this store cannot hold (too large, a value it refuses) is as good as missing: the import leaves it
      // out too; failing every request of that user until the switch is over would be worse than a new session.
      if (error instanceof SessionStoreError && NOT_STORABLE.has(error.code)) return false;
      throw error;
    }
    // A logout deletes from the source first, then from here (see remove): if the source has lost the session by
    // now, such a logout may have deleted here before this copy landed, and the copy must not outlive it.
    if ((await this.#source.read(sid, Date.now())) === null) {
      await destroy();
      return false;
    }
    return true;
  }

  /** Deletes `sid`'s session from the source: run before it is deleted here, so that no copy can bring it back. */
  remove(sid: string): Promise<void> {
    return this.#source.remove(sid);
  }

  /** Deletes a user's sessions from the source: run before they are deleted here, as {@link remove} is. */
  async removeByUser(userIdPath: readonly string[], userId: string): Promise<void> {
    await this.#source.removeByUser?.(userIdPath, userId);
  }

  close(): Promise<void> {
    return this.#source.close();
  }
}
