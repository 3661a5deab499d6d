/**
 * Changes appended to a stored session instead of merged into it.
 *
 * Where the storage keeps them (a SQL table with a `changes` column), a save
 * in `atomic` mode appends its delta to the session's pending changes: the
 * database copies a few bytes and never parses the session, so a save costs
 * what its change costs, not what the session weighs. A load applies the
 * pending deltas, in the order they were appended (the order their saves
 * committed), to the document they were saved after. From time to time a
 * save writes the document with the changes it loaded folded in
 * ({@link shouldFold}), so the pending text stays short.
 *
 * The text: a marker that names the run of appends since the document was
 * last written whole, then each delta as `,` and its JSON ({@link deltaToJson}).
 * A write of the whole document empties the text, and the first append after
 * it starts a new marker, so the text a request loaded is a prefix of the
 * current one only if no whole write came in between: what a fold checks
 * before it replaces the document.
 */
import { SessionStoreError } from '../../errors.js';
import { applyDelta, deltaFromJson, deltaToJson, type SessionDelta } from '../../core/delta.js';
import { parseStoredJson, parseStoredSession, type JsonObject } from '../../core/json.js';

/** Pending changes longer than this are folded into the document by the next save, whatever its size. */
const FOLD_AT_MOST = 16_384;
/** ... and once they reach this length plus an eighth of the document's. */
const FOLD_AT_LEAST = 256;

/** One delta as it is appended to the pending changes, from the delta or its JSON text (`deltaToJson`). */
export function changeEntry(delta: SessionDelta | string): string {
  return `,${typeof delta === 'string' ? delta : JSON.stringify(deltaToJson(delta))}`;
}

/** The marker a run of appends starts with, should it be the first since a whole write: random, and free of commas. */
export function changesMarker(): string {
  return `#${Math.random().toString(36).slice(2, 12)}`;
}

/** True when pending changes of this length, after a document of that length, are worth folding in now. */
export function shouldFold(changesLength: number, documentLength: number): boolean {
  return changesLength > Math.min(FOLD_AT_MOST, FOLD_AT_LEAST + documentLength / 8);
}

function corrupt(why: string, cause?: unknown): SessionStoreError {
  return new SessionStoreError('ERR_CORRUPT_ROW', `stored pending changes ${why}`, cause === undefined ? undefined : { cause });
}

/** The deltas of a pending-changes text, in the order they were appended. */
export function parseChanges(changes: string): SessionDelta[] {
  const start = changes.indexOf(',');
  if (!changes.startsWith('#')) throw corrupt('do not start with their marker');
  if (start === -1) return [];
  const entries = parseStoredJson(`[${changes.slice(start + 1)}]`, 'stored pending changes');
  if (!Array.isArray(entries)) throw corrupt('are not a list of changes');
  return entries.map((entry) => {
    try {
      return deltaFromJson(entry);
    } catch (error) {
      throw corrupt('hold something that is not a change', error);
    }
  });
}

/** `session` with the pending changes applied in order (a new object; `session` is left as it is). */
export function applyChanges(session: JsonObject, changes: string): JsonObject {
  let folded = session;
  for (const delta of parseChanges(changes)) folded = applyDelta(folded, delta);
  return folded;
}

/**
 * A stored session as the application sees it: the document (read by
 * `parse`, whose result is left as it is) with its pending changes applied.
 *
 * @throws {SessionStoreError} `ERR_CORRUPT_ROW` when either cannot be read.
 */
export function storedSession(text: string | null, changes: string | null, parse: (text: string | null) => JsonObject = parseStoredSession): JsonObject {
  const document = parse(text);
  return changes === null ? document : applyChanges(document, changes);
}
