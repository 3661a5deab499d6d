/**
 * How large a session may be: refused before anything is written, never cut
 * short by a column.
 */
import { SessionStoreError } from '../errors.js';
import { applyDelta, type SessionDelta } from './delta.js';
import { isJsonObject, toJsonValue, type JsonObject } from './json.js';

/** The size limit in force and, when the storage sets it below `maxSize`, why. */
export interface SizeLimit {
  readonly sizeLimit: number;
  readonly limitedBy: string | undefined;
}

/** Refuses text over `limit` bytes. */
export function checkSize(text: string, limit: number, limitedBy?: string): void {
  // Only a text that could be over the limit is measured: a UTF-16 unit is at most 3 bytes of UTF-8.
  if (text.length * 3 <= limit) return;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > limit) {
    const why = limitedBy === undefined ? `over maxSize (${limit})` : `over the ${limit} bytes that ${limitedBy} allows`;
    throw new SessionStoreError('ERR_SESSION_TOO_LARGE', `the session is ${size} bytes as JSON, ${why}`);
  }
}

/** Serialises a session, refusing what cannot be stored or is over `maxSize`. */
export function serialise(session: unknown, maxSize: number): { data: JsonObject; text: string } {
  const data = toJsonValue(session);
  if (!isJsonObject(data)) {
    throw new SessionStoreError('ERR_VALUE_NOT_STORABLE', `a session must be an object, got ${Array.isArray(data) ? 'an array' : typeof data}`);
  }
  const text = JSON.stringify(data);
  checkSize(text, maxSize);
  return { data, text };
}

/**
 * The session as a request now sees it: the delta merged into what it
 * loaded (copying only the changed paths), after refusing a result over the
 * size limit. The size is bounded from the loaded text and the delta first:
 * the whole text is built to measure it only when the bound is over.
 */
export function viewAfter(
  loaded: JsonObject,
  delta: SessionDelta,
  encoded: string,
  loadedLength: number,
  { sizeLimit, limitedBy }: SizeLimit,
): { view: JsonObject; viewLength: number } {
  const view = applyDelta(loaded, delta);
  // An upper bound of the merged text's length (applying a delta never adds more than its JSON text); a UTF-16
  // unit is at most 3 bytes of UTF-8.
  let viewLength = loadedLength + encoded.length;
  if (viewLength * 3 > sizeLimit) {
    const text = JSON.stringify(view);
    checkSize(text, sizeLimit, limitedBy);
    viewLength = text.length;
  }
  return { view, viewLength };
}
