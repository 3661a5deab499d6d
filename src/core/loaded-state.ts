/**
 * What a request loaded and hands back when saving: the state that ties a
 * save to its load, shared by the store and the per-request handle (so
 * neither imports the other for it), and how the store makes it.
 */
import type { StoredSession } from './backend.js';
import { cloneJson, parseStoredSession, type JsonObject } from './json.js';
import { liveOver } from './live-session.js';
import type { SessionClient } from './store-types.js';

/** Only the store makes a {@link LoadedState}: the brand no other value has. */
declare const madeByTheStore: unique symbol;

/**
 * What a request loaded (or last saved): the base its next save is diffed
 * against. Opaque: adapters keep it per request and hand it back to `save`.
 */
export interface LoadedState {
  /** The stored expiry as loaded or last written, epoch milliseconds. */
  readonly expiresAt: number;
  readonly [madeByTheStore]: true;
}

/** The fields of a {@link LoadedState}, seen only inside the core. */
export interface StateFields {
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
  /** The backend's note of what it stored as this request knows it (`StoredSession.token`), opaque to the core. */
  readonly token?: unknown;
  /** When the session was created, epoch ms, where known (`absoluteTimeout` caps every expiry written after it). */
  readonly createdAt?: number | undefined;
}

/** The fields of a state the store made. */
export function fieldsOf(state: LoadedState): StateFields {
  return state as unknown as StateFields;
}

/** Fields as the opaque state handed to adapters. */
export function sealed(fields: StateFields): LoadedState {
  return fields as unknown as LoadedState;
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
  /**
   * The client making the request (its user agent and IP address): kept when this save creates the session and
   * the store's `recordClient` option is on, else ignored. Adapters fill it in.
   */
  client?: SessionClient | undefined;
}

/**
 * Under this length of JSON text a session is copied whole even for `'onRead'`: a whole copy of a small session
 * costs less than the getters of one copied as it goes (measured even at about 4 KB, half as much at 1 KB).
 */
const COPY_ON_READ_FROM = 4096;

/** The application's session over `view` (`length`: at least its JSON text's), as `copy` asks. */
function copyOf(view: JsonObject, length: number, copy: 'whole' | 'onRead'): JsonObject {
  return copy === 'onRead' && length >= COPY_ON_READ_FROM ? liveOver(view) : cloneJson(view);
}

/**
 * The session a load found, with its state: the base a save diffs against.
 * `copy`: how the application's session is made from the stored one, which
 * stays the base. `'whole'` copies it at once (a framework's own session
 * layer gets plain data and may keep references into it); `'onRead'` gives a
 * live object that copies each object the first time it is read
 * (`./live-session.ts`), so a request pays for the keys it touches (a small
 * session is copied whole all the same: that is cheaper).
 * `parse` reads the stored text (`./parsed-sessions.ts` gives back a parse it
 * kept: the view is shared, and never changed).
 */
export function loadedFrom(
  row: StoredSession,
  sid: string,
  key: string,
  copy: 'whole' | 'onRead' = 'whole',
  parse: (text: string | null) => JsonObject = parseStoredSession,
): LoadedSession {
  const { version, expiresAt, token, createdAt } = row;
  const text = row.text as string;
  if (row.decode === undefined) {
    const view = parse(text);
    // Copied before the application can change the session: a copy of the parsed tree costs a fraction of parsing
    // the text again at save time.
    const session = copyOf(view, text.length, copy);
    return {
      session,
      state: sealed({ viewText: text, view, viewLength: text.length, baseText: text, viewIsBase: true, version, expiresAt, sid, key, token, createdAt }),
    };
  }
  const view = row.decode(parse);
  const session = copyOf(view, row.decodedLength ?? text.length, copy);
  // The stored text is not the session: the session's text is written out only if a later call needs it.
  let viewText: string | undefined;
  const whole = (): string => (viewText ??= JSON.stringify(view));
  const state: StateFields = {
    get viewText() {
      return whole();
    },
    get baseText() {
      return whole();
    },
    view,
    viewLength: row.decodedLength ?? text.length,
    viewIsBase: true,
    version,
    expiresAt,
    sid,
    key,
    token,
    createdAt,
  };
  return { session, state: sealed(state) };
}

/** The state after a delta was saved: the view this request now sees, over what the save left stored. */
export function savedState({
  view,
  viewLength,
  saved,
  expiresAt,
  sid,
  key,
  createdAt,
}: {
  view: JsonObject;
  viewLength: number;
  saved: { readonly baseText: string; readonly version: number | null; readonly viewIsBase: boolean; readonly token: unknown };
  expiresAt: number;
  sid: string;
  key: string;
  createdAt: number | undefined;
}): LoadedState {
  // The view's text is written out only if a later call needs it (the merge wrote it already when the view was its base).
  let viewText: string | undefined = saved.viewIsBase ? saved.baseText : undefined;
  return sealed({
    view,
    viewLength,
    get viewText() {
      return (viewText ??= JSON.stringify(view));
    },
    baseText: saved.baseText,
    viewIsBase: saved.viewIsBase,
    version: saved.version,
    expiresAt,
    sid,
    key,
    token: saved.token,
    createdAt,
  });
}
