/**
 * One save or touch of a request, from the live session to what storage
 * holds: the whole session for a new one, else the delta from what the
 * request loaded (`./save-paths.ts` writes it in the locking mode in force)
 * or only the expiry; and what it did, on the `save` channel.
 */
import type { BackendLink } from './backend-link.js';
import { deltaToJson } from './delta.js';
import { parseStoredSession } from './json.js';
import { type LoadedState, type StateFields, savedState, sealed } from './loaded-state.js';
import type { ResolvedStoreOptions } from './options.js';
import type { ParsedSessions } from './parsed-sessions.js';
import { changeOf, saveDelta, touchStored, userIdToWrite } from './save-paths.js';
import type { SessionFormat } from './session-format.js';
import { checkSize, serialise, viewAfter } from './size-limit.js';
import { type SaveMessage, TRACING, traced } from './tracing.js';

/** What a save or touch of one request needs. */
export interface SaveCall {
  readonly link: BackendLink;
  readonly format: SessionFormat;
  readonly settings: ResolvedStoreOptions;
  readonly sid: string;
  readonly key: string;
  readonly now: number;
  readonly expiresAt: number;
  /** Set when someone subscribes to the `save` channel. */
  readonly message: SaveMessage | undefined;
  /** The store's parsed sessions: a save that knows the text it stored, and its parse, leaves them for the next load. */
  readonly parsed?: ParsedSessions | undefined;
}

/** Stores a session that is not stored yet, whole. */
export function saveNew({ link, settings, sid, key, now, expiresAt, message, parsed }: SaveCall, session: object, client?: string): Promise<LoadedState> {
  const current = serialise(session, settings.maxSize);
  const run = () =>
    link.call(
      'saving the session',
      async ({ storage, sizeLimit, limitedBy }) => {
        checkSize(current.text, sizeLimit, limitedBy);
        await storage.upsert({ key, now, expiresAt, text: current.text, userId: userIdToWrite(current.data, settings), client });
        parsed?.remember(key, current.text, current.data);
        if (message !== undefined) Object.assign(message, { locking: storage.locking, outcome: 'created', bytes: current.text.length });
        return sealed({ viewText: current.text, view: current.data, baseText: current.text, version: null, expiresAt, sid, key, createdAt: now });
      },
      message,
    );
  return traced(TRACING.save, message, run);
}

/** Writes what the request changed since `state`: the delta, else only the expiry, else nothing. */
export function saveChange(call: SaveCall, session: object, state: StateFields, loadedState: LoadedState): Promise<LoadedState> {
  const { link, format, settings, sid, key, now, expiresAt, message, parsed } = call;
  // Only what changed is converted and validated, before any statement: the rest was stored JSON already.
  const loaded = state.view ?? parseStoredSession(state.viewText);
  const delta = changeOf(format, loaded, session);
  const run = () =>
    link.call(
      'saving the session',
      async (prepared) => {
        if (message !== undefined) message.locking = prepared.storage.locking;
        if (delta === null) {
          const touched = await touchStored(prepared.storage, { key, expiresAt, now, touchAfterMs: settings.touchAfterMs }, state);
          if (message !== undefined) message.outcome = touched === state ? 'nothing' : 'expiry';
          return sealed(touched ?? state);
        }
        const encoded = JSON.stringify(deltaToJson(delta));
        const { view, viewLength } = viewAfter(loaded, delta, encoded, state.viewLength ?? state.viewText.length, prepared);
        const saved = await saveDelta(prepared, { key, now, expiresAt, delta, encoded, state, view }, settings, message);
        if (message !== undefined)
          Object.assign(message, saved === null ? { outcome: 'gone' } : { outcome: 'data', bytes: encoded.length, folded: saved.folded === true });
        // Stored whole, the document is the view this request now has, or the merge it made: the next load of that
        // text parses nothing.
        const document = saved?.viewIsBase === true ? view : saved?.document;
        if (saved != null && saved.baseText !== '' && document !== undefined) parsed?.remember(key, saved.baseText, document);
        return saved === null ? loadedState : savedState({ view, viewLength, saved, expiresAt, sid, key, createdAt: state.createdAt });
      },
      message,
    );
  return traced(TRACING.save, message, run);
}

/** Moves the stored expiry only, when it would move by more than `touchAfter`. */
export function touchSession({ link, settings, key, now, expiresAt, message }: SaveCall, state: StateFields | undefined): Promise<LoadedState | undefined> {
  const run = () =>
    link.call(
      'touching the session',
      async ({ storage }) => {
        const touched = await touchStored(storage, { key, expiresAt, now, touchAfterMs: settings.touchAfterMs }, state);
        if (message !== undefined)
          Object.assign(message, { locking: storage.locking, outcome: touched === state && state !== undefined ? 'nothing' : 'expiry' });
        return touched === undefined ? undefined : sealed(touched);
      },
      message,
    );
  return traced(TRACING.save, message, run);
}
