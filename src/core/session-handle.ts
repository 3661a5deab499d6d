/**
 * The per-request session helper every framework adapter wraps: open a
 * session by id, read and change it, commit it, destroy or regenerate it.
 * The snapshot of what was loaded stays inside the handle, so a commit
 * writes only this request's change (or only the expiry, or nothing).
 */
import type { JsonObject } from './json.js';
import type { LoadedState, SaveOptions } from './loaded-state.js';
import type { SessionClient } from './store-types.js';

/** What a handle asks of the store that made it (the store's own methods; an interface, so this file needs not import the store). */
export interface HandleStore {
  save(sid: string, session: object, state?: LoadedState, options?: SaveOptions): Promise<LoadedState>;
  touch(sid: string, session: object, state?: LoadedState, options?: SaveOptions): Promise<LoadedState | undefined>;
  destroy(sid: string): Promise<void>;
  create(sid: string): SessionHandle;
  rotate(sid: string, newSid: string, state?: LoadedState): Promise<LoadedState | null>;
}

let makeHandle: (store: HandleStore, id: string, data: JsonObject, state: LoadedState | undefined) => SessionHandle;

/** A handle over `data`, as loaded (`state`) or new (`undefined`): the store's way to make one. */
export function openHandle(store: HandleStore, id: string, data: JsonObject, state: LoadedState | undefined): SessionHandle {
  return makeHandle(store, id, data, state);
}

/** One request's view of one session. Made by `store.open(id)` or `store.create(id)`. */
export class SessionHandle {
  readonly #store: HandleStore;
  readonly #id: string;
  /** What this request loaded or last wrote; `undefined` while nothing is stored. */
  #state: LoadedState | undefined;
  #destroyed = false;
  /**
   * The session as loaded (`{}` for a new one): the request may read and
   * change it in place, at any depth, then {@link commit} it. From 4 KB of
   * JSON up, each object in it is copied from the stored session the first
   * time it is read, so a request pays for what it reads, and a commit leaves
   * out what it never read.
   */
  readonly data: JsonObject;
  /**
   * The client making the request (its user agent and IP address): kept with the session when this handle first
   * stores it, if the store's `recordClient` option is on. Session layers set it; a regenerated or rotated
   * session's handle carries it on.
   */
  client: SessionClient | undefined;

  /** Adapters get handles from the store ({@link openHandle}). */
  private constructor(store: HandleStore, id: string, data: JsonObject, state: LoadedState | undefined) {
    this.#store = store;
    this.#id = id;
    this.data = data;
    this.#state = state;
  }

  static {
    makeHandle = (store, id, data, state) => new SessionHandle(store, id, data, state);
  }

  /** The session id. */
  get id(): string {
    return this.#id;
  }

  /** True while nothing of this session is stored (created, not yet committed). */
  get isNew(): boolean {
    return this.#state === undefined;
  }

  /** True once {@link destroy} or {@link regenerate} has run. */
  get isDestroyed(): boolean {
    return this.#destroyed;
  }

  /** The stored expiry (epoch milliseconds), as loaded or last written; `undefined` while nothing is stored. */
  get expiresAt(): number | undefined {
    return this.#state?.expiresAt;
  }

  /**
   * Writes what this request changed: for a new session the whole session,
   * else the delta from what was loaded, merged into the latest stored
   * session (a session destroyed meanwhile stays destroyed); only the expiry
   * when the data did not change and the expiry moved by more than
   * `touchAfter`; else nothing. `session` is the live object the request
   * changed (by default {@link data}).
   */
  async commit(session: object = this.data, options?: SaveOptions): Promise<void> {
    if (this.#destroyed) return;
    const client = this.#state === undefined ? this.client : undefined;
    this.#state = await this.#store.save(this.#id, session, this.#state, client === undefined ? options : { ...options, client });
  }

  /** Moves the stored expiry only, when it would move by more than `touchAfter`. Never creates a session. */
  async touch(session: object = this.data, options?: SaveOptions): Promise<void> {
    if (this.#destroyed || this.#state === undefined) return;
    this.#state = (await this.#store.touch(this.#id, session, this.#state, options)) ?? this.#state;
  }

  /** Deletes the session. Concurrent requests saving it afterwards do not bring it back. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    await this.#store.destroy(this.#id);
  }

  /**
   * Moves this session to `newId` keeping its data: this request's changes
   * are committed first, then the stored session (with every change other
   * requests committed to it) goes under the new id, and the old id is dead
   * (a request still using it finds no session). The way to log a user in:
   * the id known before the login is worth nothing after it, and nothing the
   * session held is lost. Resolves to the handle to go on with; a new, empty
   * one when the session was destroyed meanwhile. `session` is the live
   * object the request changed (by default {@link data}); the new handle's
   * {@link data} holds what this one's does.
   */
  async rotate(newId: string, session: object = this.data): Promise<SessionHandle> {
    if (this.#destroyed) return this.#successor(newId);
    if (this.#state === undefined) {
      // Nothing stored yet: the session simply starts under the new id.
      this.#destroyed = true;
      const next = this.#successor(newId);
      Object.assign(next.data, this.data);
      return next;
    }
    await this.commit(session);
    const state = await this.#store.rotate(this.#id, newId, this.#state);
    this.#destroyed = true;
    if (state === null) return this.#successor(newId);
    const next = makeHandle(this.#store, newId, this.data, state);
    next.client = this.client;
    return next;
  }

  /** A new, empty session under `newId` in this one's place, for the same client. */
  #successor(newId: string): SessionHandle {
    const next = this.#store.create(newId);
    next.client = this.client;
    return next;
  }

  /**
   * Destroys this session and gives a new, empty one under `newId` (after a
   * login, so a session id known before it is worth nothing after).
   */
  async regenerate(newId: string): Promise<SessionHandle> {
    await this.destroy();
    return this.#successor(newId);
  }
}
