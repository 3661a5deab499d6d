/**
 * Sessions as last parsed, by stored key: a load that reads back the very
 * text it parsed before reuses the parse. Parsing is what a large session
 * costs most (about a third of a request's CPU at 40 KB), and most loads
 * find the text unchanged: every read-only request, and every write while
 * the row keeps its changes apart (SQL's pending changes).
 *
 * Safe because a parsed session is never changed once made: the store hands
 * the application copies (`./live-session.ts`, `cloneJson`), and merges copy
 * on write (`./delta.ts`). A hit needs the whole text equal, never a hash.
 * Bounded by the total length of the texts kept, least recently used first
 * out.
 */
import { type JsonObject, parseStoredSession } from './json.js';

/** What is kept of one key. */
interface Parsed {
  readonly text: string;
  readonly session: JsonObject;
}

/**
 * At most this many characters of stored text are kept, parsed (about four
 * times that in memory): 200 sessions of 40 KB, or 8,000 of 1 KB.
 */
const MAX_TEXT_LENGTH = 8 * 1024 * 1024;
/** Shorter texts parse in less time than it takes to keep them. */
const MIN_TEXT_LENGTH = 512;

export class ParsedSessions {
  /** In order of use, least recent first (a Map keeps insertion order). */
  readonly #byKey = new Map<string, Parsed>();
  #textLength = 0;

  /**
   * `text` (the session stored under `key`) parsed: the same object as last
   * time when the text is the same, never to be changed by the caller.
   *
   * @throws {SessionStoreError} `ERR_CORRUPT_ROW` when it is not a JSON object.
   */
  parse(key: string, text: string | null): JsonObject {
    if (typeof text !== 'string' || text.length < MIN_TEXT_LENGTH) return parseStoredSession(text);
    const kept = this.#byKey.get(key);
    if (kept !== undefined) {
      this.#byKey.delete(key);
      this.#textLength -= kept.text.length;
      if (kept.text === text) {
        this.#keep(key, kept);
        return kept.session;
      }
    }
    const session = parseStoredSession(text);
    if (text.length <= MAX_TEXT_LENGTH / 4) this.#keep(key, { text, session });
    return session;
  }

  /** Keeps `session` as the parse of `text`, stored under `key` just now (`session` is never to be changed). */
  remember(key: string, text: string, session: JsonObject): void {
    this.forget(key);
    if (text.length >= MIN_TEXT_LENGTH && text.length <= MAX_TEXT_LENGTH / 4) this.#keep(key, { text, session });
  }

  /** Drops what is kept of `key` (its session was destroyed or moved). */
  forget(key: string): void {
    const kept = this.#byKey.get(key);
    if (kept === undefined) return;
    this.#byKey.delete(key);
    this.#textLength -= kept.text.length;
  }

  #keep(key: string, parsed: Parsed): void {
    this.#byKey.set(key, parsed);
    this.#textLength += parsed.text.length;
    for (const [oldest, { text }] of this.#byKey) {
      if (this.#textLength <= MAX_TEXT_LENGTH) break;
      this.#byKey.delete(oldest);
      this.#textLength -= text.length;
    }
  }
}
