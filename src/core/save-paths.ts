/**
 * How a request's change reaches storage, in the locking mode in force: one
 * atomic step where the backend has one, else compare-and-swap from what the
 * request loaded (merged again into what is stored on a conflict), or a
 * merge under the session's lock. The store owns every retry here; a backend
 * only answers each attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionStoreError } from '../errors.js';
import { type MergedDocument, type ReadyBackend, sessionOfStored, type StoredData, type UserIdWrite } from './backend.js';
import type { Prepared } from './backend-link.js';
import { applyDelta, diffLive, isEmptyDelta, type SessionDelta } from './delta.js';
import { toJsonValue, type JsonObject, type JsonValue } from './json.js';
import type { StateFields } from './loaded-state.js';
import type { SessionFormat } from './session-format.js';
import { checkSize, type SizeLimit } from './size-limit.js';
import type { RetryCount } from './tracing.js';
import { userIdAfterDelta, userIdOf } from './user-id.js';

/** Attempts of compare-and-swap before a save takes the session's lock instead, where the backend has one. */
const SWAP_ATTEMPTS = 8;
/** ... and where it has none: attempts before the save gives up (each after a longer random pause). */
const SWAP_ONLY_ATTEMPTS = 64;

/** What a save knows besides its change. */
export interface DeltaSave {
  readonly key: string;
  readonly now: number;
  readonly expiresAt: number;
  readonly delta: SessionDelta;
  /** The delta as JSON text. */
  readonly encoded: string;
  /** What the request loaded or last saved. */
  readonly state: StateFields;
  /** The delta merged into what the request saw. */
  readonly view: JsonObject;
}

/** What a save left in storage, as far as the request knows. */
export interface SavedBase {
  /** The stored document at `version` ('' when unknown). */
  readonly baseText: string;
  readonly version: number | null;
  /** True when the stored document is the view. */
  readonly viewIsBase: boolean;
  /** The stored document at `version`, parsed, when it is not the view but the save made it (a merge): never changed. */
  readonly document?: JsonObject | undefined;
  /** The backend's note for the next save. */
  readonly token: unknown;
  /** Changes kept apart were folded into the stored document. */
  readonly folded?: boolean;
}

/** The store's settings a save needs. */
export interface SaveSettings {
  /** Where the user id is in a session, when the store keeps a user index. */
  readonly userIdPath: readonly string[] | undefined;
}

/** The user id to write for a whole session; `undefined` when there is no user index. */
export function userIdToWrite(data: JsonObject, { userIdPath }: SaveSettings): UserIdWrite {
  return userIdPath === undefined ? undefined : userIdOf(data, userIdPath);
}

/**
 * The change from `loaded` to the live `session`, or `null` when nothing
 * worth writing changed. The format's bookkeeping keys are not diffed: any
 * write carries them whole, and they alone are a change only when the
 * format says so.
 */
export function changeOf(format: SessionFormat, loaded: JsonObject, session: object): SessionDelta | null {
  const { bookkeeping } = format;
  const delta = diffLive(loaded, session, bookkeeping);
  if (bookkeeping.size === 0) return isEmptyDelta(delta) ? null : delta;
  // The bookkeeping as JSON, converted once: to tell whether it changed, and to write it.
  const current: JsonObject = {};
  for (const name of bookkeeping) {
    const live = (session as Record<string, unknown>)[name];
    const value = live === undefined ? undefined : toJsonValue(live);
    if (value !== undefined) current[name] = value;
  }
  if (isEmptyDelta(delta) && !format.bookkeepingChanged(loaded, current)) return null;
  for (const name of bookkeeping) {
    if (Object.hasOwn(current, name)) delta.set.set(name, { kind: 'value', value: current[name] as JsonValue });
    else if (loaded[name] !== undefined) delta.unset.push(name);
  }
  return delta;
}

/** A merged session as the text to write, refusing it over the size limit. */
function documentOf(merged: JsonObject, { sizeLimit, limitedBy }: SizeLimit, settings: SaveSettings): MergedDocument {
  const text = JSON.stringify(merged);
  checkSize(text, sizeLimit, limitedBy);
  return { text, userId: userIdToWrite(merged, settings) };
}

/** The delta merged into a stored session: the text to write, and the session it is. */
function mergedInto(stored: StoredData, delta: SessionDelta, limit: SizeLimit, settings: SaveSettings): { written: MergedDocument; document: JsonObject } {
  const document = applyDelta(sessionOfStored(stored), delta);
  return { written: documentOf(document, limit, settings), document };
}

/** Writes a delta in the locking mode in force; `null` when the session is gone (destroyed or expired). */
export async function saveDelta(prepared: Prepared, save: DeltaSave, settings: SaveSettings, count?: RetryCount): Promise<SavedBase | null> {
  const { storage } = prepared;
  const { key, now, expiresAt, delta, encoded, state } = save;
  if (storage.locking === 'atomic' && storage.applyDelta !== undefined) {
    // One round trip: the delta is appended or merged inside the database, so no lock is held between statements.
    const path = settings.userIdPath;
    const userId = path === undefined ? undefined : userIdAfterDelta(delta, path)?.userId;
    const base = state.view;
    const baseLength = state.viewLength ?? state.viewText.length;
    const saved = await storage.applyDelta({ key, now, expiresAt, delta, encoded, userId, token: state.token, base, baseLength });
    return saved === null ? null : { baseText: '', version: null, viewIsBase: false, token: saved.token, folded: saved.folded === true };
  }
  if (storage.locking !== 'pessimistic') {
    const swapped = await swapLoop(prepared, save, settings, count);
    if (swapped !== 'contended') return swapped;
    // Heavy contention: stop retrying and take the lock, which always makes progress.
  }
  return mergeLocked(prepared, save, settings);
}

/**
 * Compare-and-swap from the state the request loaded: the first attempt
 * writes the view (no parse when the view is the stored document), a
 * conflict merges the delta into what is stored now (told by the backend,
 * or read), after a short random pause once it repeats. `contended` when the
 * backend has a lock to fall back on and the attempts ran out.
 */
async function swapLoop(prepared: Prepared, save: DeltaSave, settings: SaveSettings, count: RetryCount | undefined): Promise<SavedBase | null | 'contended'> {
  const { storage } = prepared;
  const { key, expiresAt, delta, state, view } = save;
  const canLock = storage.updateLocked !== undefined;
  let base: StoredData = { text: state.baseText };
  let version = state.version;
  // The delta merged into what the request saw is the view already: when that is the stored base, no parse.
  let mergesIntoView = state.viewIsBase === true;
  const attempts = canLock ? SWAP_ATTEMPTS : SWAP_ONLY_ATTEMPTS;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (version === null) {
      const row = await storage.load(key, Date.now());
      if (row === null) return null;
      base = row;
      version = row.version;
      mergesIntoView = false;
      if (version === null) break;
    }
    const { written, document } = mergesIntoView
      ? { written: documentOf(view, prepared, settings), document: undefined }
      : mergedInto(base, delta, prepared, settings);
    const outcome = await storage.compareAndSwap({ key, now: Date.now(), expiresAt, version, ...written });
    if (outcome === true) return { baseText: written.text, version: version + 1, viewIsBase: mergesIntoView, document, token: undefined };
    // Someone saved in between: merge again into what is stored now.
    if (count !== undefined) count.conflicts++;
    mergesIntoView = false;
    if (outcome === false) version = null;
    else {
      base = outcome;
      version = outcome.version;
    }
    if (attempt > 0) await sleep(Math.random() * Math.min(50, 2 ** attempt));
  }
  if (canLock) return 'contended';
  throw new SessionStoreError('ERR_DATABASE', `the session kept changing while this request saved it (${attempts} attempts); nothing was written`);
}

/** Locks the session, merges the delta into what is stored, writes. */
async function mergeLocked(prepared: Prepared, save: DeltaSave, settings: SaveSettings): Promise<SavedBase | null> {
  const { key, now, expiresAt, delta } = save;
  let merged: { written: MergedDocument; document: JsonObject } | undefined;
  const written = await (prepared.storage.updateLocked as NonNullable<ReadyBackend['updateLocked']>)({
    key,
    now,
    expiresAt,
    merge: (row) => {
      merged = mergedInto(row, delta, prepared, settings);
      return merged.written;
    },
  });
  return written && merged !== undefined
    ? { baseText: merged.written.text, version: null, viewIsBase: false, document: merged.document, token: undefined }
    : null;
}

/**
 * Moves the stored expiry when it would move by more than the touch
 * threshold; resolves to the state with the new expiry, or `state` when
 * nothing moved.
 */
export async function touchStored(
  storage: ReadyBackend,
  { key, expiresAt, now, touchAfterMs }: { key: string; expiresAt: number; now: number; touchAfterMs: number },
  state: StateFields | undefined,
): Promise<StateFields | undefined> {
  // At most a tenth of the session's lifetime: a short-lived session kept alive by reads must not run out while in use.
  const threshold = Math.min(touchAfterMs, (expiresAt - now) / 10);
  // What the request loaded tells the stored expiry: no statement at all when it would barely move.
  if (state !== undefined && expiresAt - state.expiresAt <= threshold) return state;
  await storage.extendExpiry({ key, now, expiresAt, movedBefore: expiresAt - threshold });
  return state === undefined ? undefined : { ...state, expiresAt };
}
