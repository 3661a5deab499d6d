/**
 * The merge rule of the store, in one place (DESIGN.md section 2).
 *
 * A request's change is the difference between the session as it loaded it
 * and as it is at save time. Plain objects are compared key by key, so the
 * delta names paths (`cart.items`), while arrays, strings, numbers and other
 * values are replaced whole. Applying a delta to the *latest* stored session
 * keeps what other requests changed at other paths.
 */
import { isForbiddenKey, isJsonObject, jsonEqual, type JsonObject, type JsonValue } from './json.js';

/**
 * Change to a plain object: keys to set (each with its own patch) and keys to
 * delete. Applied to something that is not an object, it first becomes `{}`.
 */
export interface ObjectPatch {
  readonly kind: 'object';
  /** Keys to set, in order; each value is merged (object) or replaces (value). */
  readonly set: Map<string, Patch>;
  /** Keys to delete. */
  readonly unset: string[];
}

/** Replace whatever is at this path with `value`. */
export interface ValuePatch {
  readonly kind: 'value';
  readonly value: JsonValue;
}

/** A change at one path. */
export type Patch = ObjectPatch | ValuePatch;

/** The change one request makes to a session: always a patch of the root object. */
export type SessionDelta = ObjectPatch;

/** An empty object patch. */
export function emptyDelta(): SessionDelta {
  return { kind: 'object', set: new Map(), unset: [] };
}

/** True when applying the delta changes nothing. */
export function isEmptyDelta(delta: ObjectPatch): boolean {
  return delta.set.size === 0 && delta.unset.length === 0;
}

/**
 * A patch that makes the path hold `value`: plain objects become object
 * patches, so keys that another request put under the same new object survive.
 */
function patchFor(value: JsonValue): Patch {
  if (!isJsonObject(value)) return { kind: 'value', value };
  const set = new Map<string, Patch>();
  for (const key of Object.keys(value)) set.set(key, patchFor(value[key] as JsonValue));
  return { kind: 'object', set, unset: [] };
}

/**
 * The delta that turns `loaded` into `current`: keys set or changed, keys
 * deleted, recursing into plain objects present on both sides.
 */
export function computeDelta(loaded: JsonObject, current: JsonObject): SessionDelta {
  const set = new Map<string, Patch>();
  const unset: string[] = [];
  for (const key of Object.keys(current)) {
    const now = current[key] as JsonValue;
    if (!Object.hasOwn(loaded, key)) {
      set.set(key, patchFor(now));
      continue;
    }
    const before = loaded[key] as JsonValue;
    if (isJsonObject(now) && isJsonObject(before)) {
      const inner = computeDelta(before, now);
      if (!isEmptyDelta(inner)) set.set(key, inner);
    } else if (!jsonEqual(before, now)) {
      set.set(key, patchFor(now));
    }
  }
  for (const key of Object.keys(loaded)) {
    if (!Object.hasOwn(current, key)) unset.push(key);
  }
  return { kind: 'object', set, unset };
}

function applyPatch(target: JsonValue | undefined, patch: Patch): JsonValue {
  if (patch.kind === 'value') return patch.value;
  // Copy on write: the target may be shared with a snapshot that must stay intact.
  const result: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const key of patch.unset) {
    if (!isForbiddenKey(key)) delete result[key];
  }
  for (const [key, child] of patch.set) {
    if (isForbiddenKey(key)) continue;
    result[key] = applyPatch(Object.hasOwn(result, key) ? result[key] : undefined, child);
  }
  return result;
}

/**
 * Applies a delta to a stored session, returning a new object; `target` is not
 * modified. Something that is not an object at an object patch becomes `{}`.
 */
export function applyDelta(target: JsonValue | undefined, delta: SessionDelta): JsonObject {
  return applyPatch(target, delta) as JsonObject;
}

/** The delta as one JSON document, for dialects that ship it to the database in one parameter. */
export function deltaToJson(delta: ObjectPatch): JsonObject {
  const set: JsonObject = {};
  for (const [key, child] of delta.set) {
    set[key] = child.kind === 'value' ? { v: child.value } : { o: deltaToJson(child) };
  }
  return { s: set, u: delta.unset };
}

/** Inverse of {@link deltaToJson}. */
export function deltaFromJson(json: JsonObject): SessionDelta {
  const set = new Map<string, Patch>();
  const encodedSet = json['s'] as JsonObject;
  for (const key of Object.keys(encodedSet)) {
    const entry = encodedSet[key] as JsonObject;
    set.set(key, Object.hasOwn(entry, 'o') ? deltaFromJson(entry['o'] as JsonObject) : { kind: 'value', value: entry['v'] as JsonValue });
  }
  return { kind: 'object', set, unset: json['u'] as string[] };
}
