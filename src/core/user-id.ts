/**
 * The user id a session belongs to, for "log out everywhere": read from the
 * session at the `userIdKey` path and kept in an indexed column.
 */
import type { Patch, SessionDelta } from './delta.js';
import { isJsonObject, type JsonValue } from './json.js';

/** A user id as stored: strings as they are, finite numbers as their decimal text, anything else none. */
function asUserId(value: JsonValue | undefined): string | null {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function valueAt(value: JsonValue | undefined, path: readonly string[]): JsonValue | undefined {
  let current = value;
  for (const segment of path) {
    if (!isJsonObject(current) || !Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

/** The user id in a whole session. */
export function userIdOf(session: JsonValue, path: readonly string[]): string | null {
  return asUserId(valueAt(session, path));
}

/**
 * The user id after a delta is merged, when the delta decides it: `undefined`
 * when the delta leaves that path alone (the stored column stays right).
 */
export function userIdAfterDelta(delta: SessionDelta, path: readonly string[]): { readonly userId: string | null } | undefined {
  let patch: Patch = delta;
  for (let depth = 0; depth < path.length; depth++) {
    if (patch.kind === 'value') return { userId: asUserId(valueAt(patch.value, path.slice(depth))) };
    const segment = path[depth] as string;
    const child = patch.set.get(segment);
    if (child === undefined) return patch.unset.includes(segment) ? { userId: null } : undefined;
    patch = child;
  }
  return { userId: patch.kind === 'value' ? asUserId(patch.value) : null };
}
