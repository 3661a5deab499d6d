/**
 * What a request loaded and hands back when saving: the state that ties a
 * save to its load, shared by the store and the per-request handle (a leaf,
 * so neither imports the other for it).
 */
import type { JsonObject } from './json.js';

/**
 * What a request loaded (or last saved): the base its next save is diffed
 * against. Opaque to users; adapters keep it per request and pass it back.
 */
export interface LoadedState {
  /** The session as this request saw it or last saved it, as JSON text: the delta is taken against it. */
  readonly viewText: string;
  /**
   * The same, parsed, when the store has it at hand (a copy made at load, or
   * the view after a save): a save diffs against it without parsing the text
   * again. Never handed to the application, so nothing changes it.
   */
  readonly view?: JsonObject | undefined;
  /** With `view`: at least the length of its JSON text, so the size limit is checked without writing it out. */
  readonly viewLength?: number | undefined;
  /** The stored document at `version` (differs from `viewText` after a merged save): the optimistic merge base. */
  readonly baseText: string;
  /**
   * True when the view is the stored document at `version` (after a load, or
   * a save that merged into what the request saw): the optimistic merge
   * then needs no parse of `baseText`, since its result is the view itself.
   */
  readonly viewIsBase?: boolean | undefined;
  /** The stored version of `baseText`, `null` when unknown. */
  readonly version: number | null;
  /** Stored expiry, epoch milliseconds. */
  readonly expiresAt: number;
  /** The session id this state was loaded under, with its stored key: a save of the same id needs no hashing. */
  readonly sid?: string | undefined;
  readonly key?: string | undefined;
  /**
   * Where the storage keeps pending changes: the text they have, as far as
   * this request knows (those it loaded, then those it appended), which
   * `view` has applied. A save may fold them into the document: the
   * database does so only if the stored changes still start with this text.
   */
  readonly changes?: string | undefined;
  /** How long the stored document is that the pending changes apply to, as far as this request knows. */
  readonly documentLength?: number | undefined;
}

/** A session read from the store, with the state to hand back when saving it. */
export interface LoadedSession {
  /** The session data (including the framework's bookkeeping, such as express-session's `cookie`). */
  readonly session: JsonObject;
  /** Hand this back to the store's `save` so only this request's change is written. */
  readonly state: LoadedState;
}

/** Options of one save or touch. */
export interface SaveOptions {
  /**
   * When the session expires, as epoch milliseconds or a `Date`.
   * @default what the adapter's session format says, else `ttl` seconds from now
   */
  expiresAt?: number | Date | undefined;
}
