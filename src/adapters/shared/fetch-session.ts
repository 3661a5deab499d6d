/**
 * The session object of the Fetch and Hono adapters: one request's session,
 * read and changed through `get`/`set`/`unset`/`flash` or its live `data`,
 * replaced by `regenerate()`/`destroy()`. Flash messages are kept under React
 * Router's keys, so the adapters read each other's flashes.
 */
import { isForbiddenKey } from '../../core/json.js';
import type { SessionHandle } from '../../core/session-handle.js';
import { SessionStoreError } from '../../errors.js';
import { ObjectSlot } from './object-slot.js';
import type { CookieState, SessionKeeper } from './session-keeper.js';

/** What a session holds, by key: any value JSON can hold. Narrow it with your own type. */
export type SessionData = Record<string, unknown>;

/**
 * The key a flash message is kept under in the session's data: React
 * Router's, so both adapters read each other's flashes.
 */
export function flashKey(name: string): `__flash_${string}__` {
  return `__flash_${name}__`;
}

/** @internal What a request's session knows besides its handle. */
export interface RequestSession extends CookieState {
  handle: SessionHandle;
  readonly keeper: SessionKeeper;
  /** The request came over HTTPS (for `secure: 'auto'`). */
  readonly https: boolean;
  /** destroy() or regenerate() ran: the old session is gone. */
  replaced: boolean;
  /** The request named its session in the id header (the `header` option), not in the cookie: the response answers in that header. */
  readonly viaHeader: boolean;
}

/** Each session's state, for the store that commits it (the session keeps it private). */
const requestSessions = new ObjectSlot<RequestSession>('smart-session-store/fetch session');

/** @internal The state of a session `FetchSessionStore.open` made; `undefined` for any other object. */
export function requestSessionOf(session: object): RequestSession | undefined {
  return requestSessions.get(session);
}

let makeFetchSession: (state: RequestSession) => FetchSession<object, object>;

/** @internal The session of a request, over its state: `FetchSessionStore.open`'s way to make one. */
export function openFetchSession<Data extends object, FlashData extends object>(state: RequestSession): FetchSession<Data, FlashData> {
  return makeFetchSession(state) as unknown as FetchSession<Data, FlashData>;
}

/**
 * One request's session. Read and change it through {@link get} / {@link set}
 * / {@link unset} / {@link flash}, or through {@link data}, the live object
 * (change it in place; nested objects too). Values must be what JSON holds
 * (a `Date` is stored as its ISO string). Nothing is written until the store
 * commits the session, and then only what this request changed.
 *
 * @typeParam Data What the session holds.
 * @typeParam FlashData What flash messages it holds (read once, then gone).
 */
export class FetchSession<Data extends object = SessionData, FlashData extends object = Data> {
  readonly #state: RequestSession;

  /** Sessions come from `FetchSessionStore.open()` ({@link openFetchSession}). */
  private constructor(state: RequestSession) {
    this.#state = state;
    requestSessions.set(this, state);
  }

  static {
    makeFetchSession = (state) => new FetchSession(state);
  }

  /** The session id. A new session has its id from the start (it is stored, and its cookie sent, only once it holds something). */
  get id(): string {
    return this.#state.handle.id;
  }

  /** True while nothing of this session is stored: new (no cookie, or one naming no live session), or just regenerated. */
  get isNew(): boolean {
    return this.#state.handle.isNew;
  }

  /**
   * The session's data: the live object, changed in place. After
   * {@link regenerate} or {@link destroy} it is another (empty) object. Flash
   * messages sit in it under `__flash_<name>__`.
   */
  get data(): Data {
    return this.#state.handle.data as Data;
  }

  #values(): Record<string, unknown> {
    return this.#state.handle.data;
  }

  /** True when the session has a value, or an unread flash message, under `key`. */
  has(key: (keyof Data | keyof FlashData) & string): boolean {
    const values = this.#values();
    return (Object.hasOwn(values, key) && values[key] !== undefined) || Object.hasOwn(values, flashKey(key));
  }

  /**
   * The value under `key`, or else the flash message under `key`, which this
   * read removes (the request's commit deletes it from the store; a flash
   * another request sets meanwhile is not touched).
   */
  get<Key extends (keyof Data | keyof FlashData) & string>(
    key: Key,
  ): (Key extends keyof Data ? Data[Key] : never) | (Key extends keyof FlashData ? FlashData[Key] : never) | undefined {
    type Result = (Key extends keyof Data ? Data[Key] : never) | (Key extends keyof FlashData ? FlashData[Key] : never) | undefined;
    const values = this.#values();
    if (Object.hasOwn(values, key)) return values[key] as Result;
    const flashed = flashKey(key);
    if (!Object.hasOwn(values, flashed)) return undefined;
    const value = values[flashed];
    delete values[flashed];
    return value as Result;
  }

  /**
   * Sets `key`. @throws {SessionStoreError} `ERR_FORBIDDEN_KEY` for `__proto__`,
   * `constructor`, `prototype` (other values JSON cannot hold are refused by the commit).
   */
  set<Key extends keyof Data & string>(key: Key, value: Data[Key]): this {
    if (isForbiddenKey(key)) throw new SessionStoreError('ERR_FORBIDDEN_KEY', `session key "${key}" is not allowed`);
    this.#values()[key] = value;
    return this;
  }

  /** Removes `key`. */
  unset(key: keyof Data & string): this {
    delete this.#values()[key];
    return this;
  }

  /** Sets a flash message: kept until a request reads it with {@link get}. */
  flash<Key extends keyof FlashData & string>(key: Key, value: FlashData[Key]): this {
    if (isForbiddenKey(key)) throw new SessionStoreError('ERR_FORBIDDEN_KEY', `session key "${key}" is not allowed`);
    this.#values()[flashKey(key)] = value;
    return this;
  }

  /**
   * Gives the session a new id and nothing of the old one (call it at login,
   * so an id known before is worth nothing after). The old session is
   * deleted at once; requests still carrying its id cannot bring it back.
   * What the request sets afterwards is stored under the new id, whose
   * cookie the commit sends. To keep a value across, read it before.
   */
  async regenerate(): Promise<void> {
    const state = this.#state;
    state.handle = await state.keeper.replace(state.handle);
    state.replaced = true;
  }

  /**
   * Gives the session a new id and keeps its data (call it at login, so an id
   * known before is worth nothing after, while the cart and the rest stay):
   * this request's changes are saved, then the stored session, with every
   * change other requests committed to it, moves to the new id, whose cookie
   * the commit sends. The old id is dead at once: requests still carrying it
   * find no session and save nothing.
   */
  async rotate(): Promise<void> {
    const state = this.#state;
    state.handle = await state.keeper.rotate(state.handle, state.handle.data);
    state.renew = true;
  }

  /**
   * Deletes the session at once (logout); concurrent requests cannot bring
   * it back. The commit clears the cookie, unless the request then sets
   * something (a flash "logged out", say): that starts a new session under a
   * new id, as after {@link regenerate}.
   */
  async destroy(): Promise<void> {
    await this.regenerate();
  }
}
