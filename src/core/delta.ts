/**
 * The merge rule of the store, in one place (docs/guarantees.md, promises 1 to 3).
 *
 * A request's change is the difference between the session as it loaded it
 * and as it is at save time. Plain objects are compared key by key, so the
 * delta names paths (`cart.items`), while arrays, strings, numbers and other
 * values are replaced whole. Applying a delta to the *latest* stored session
 * keeps what other requests changed at other paths.
 */
import { isForbiddenKey, isJsonObject, jsonEqual, JsonWalk, type JsonObject, type JsonValue } from './json.js';
import { isUnreadCopyOf } from './live-session.js';

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

/**
 * The delta from `loaded` (a session as stored) to `live` (the session object
 * as the application left it), in one walk of `live` that converts and
 * validates only what changed: whatever still equals the stored JSON was
 * valid when it was stored. Same result as
 * `computeDelta(loaded, toJsonValue(live))`, and the same errors for values
 * that cannot be stored. Root keys in `skip` are left out on both sides, and
 * so are keys, at any depth, that the request never read nor wrote
 * (`./live-session.ts`): they are the loaded values themselves.
 *
 * @throws {SessionStoreError} `ERR_VALUE_NOT_STORABLE` or `ERR_FORBIDDEN_KEY`, naming the path.
 */
export function diffLive(loaded: JsonObject, live: object, skip: ReadonlySet<string> = new Set()): SessionDelta {
  const walk = new JsonWalk();
  const diff = (before: JsonObject, now: object, skipped: ReadonlySet<string>): ObjectPatch => {
    walk.enter(now);
    const set = new Map<string, Patch>();
    const unset: string[] = [];
    let leftOut: Set<string> | undefined;
    for (const key of Object.keys(now)) {
      // A key not read yet that stands for this very stored value is unchanged: nothing to look at.
      if (skipped.has(key) || isUnreadCopyOf(now, key, before[key])) continue;
      walk.path.push(key);
      const known = Object.hasOwn(before, key);
      // A key the stored session has was checked when it was stored.
      if (!known) walk.checkKey(key);
      const value = JsonWalk.resolve((now as Record<string, unknown>)[key], key);
      const stored = known ? before[key] : undefined;
      if (value === undefined) {
        // JSON leaves an undefined property out: for the store it is deleted.
        if (known) (leftOut ??= new Set()).add(key);
      } else if (JsonWalk.isKeyed(value) && isJsonObject(stored)) {
        const inner = diff(stored, value, NO_KEYS);
        if (!isEmptyDelta(inner)) set.set(key, inner);
      } else if (stored === undefined || !sameAsStored(value, stored)) {
        // Only a value that differs from the stored one is converted (and so validated).
        const converted = walk.convert(value, key, true) as JsonValue;
        if (stored === undefined || !jsonEqual(stored, converted)) set.set(key, patchFor(converted));
      }
      walk.path.pop();
    }
    for (const key of Object.keys(before)) {
      if (skipped.has(key)) continue;
      // Only own enumerable keys are part of the JSON (express-session's Session hides `id` and `req`).
      if (!isEnumerable.call(now, key) || leftOut?.has(key) === true) unset.push(key);
    }
    walk.leave(now);
    return { kind: 'object', set, unset };
  };
  return diff(loaded, live, skip);
}

const NO_KEYS: ReadonlySet<string> = new Set();

/**
 * True when a live value (`toJSON` already applied) is exactly the stored
 * JSON value: then it is unchanged and, having been stored, valid. Compares
 * in place, allocating nothing; its depth is bounded by the stored value's,
 * so a cycle in the live value cannot make it loop.
 */
function sameAsStored(live: unknown, stored: JsonValue): boolean {
  if (live === stored) return true;
  if (typeof live !== 'object' || live === null || typeof stored !== 'object' || stored === null) return false;
  if (Array.isArray(live)) {
    if (!Array.isArray(stored) || live.length !== stored.length) return false;
    for (let index = 0; index < live.length; index++) {
      let item: unknown = live[index];
      // What JSON.stringify would see; the key is made only for a toJSON to receive it.
      if (typeof item === 'object' && item !== null && typeof (item as { toJSON?: unknown }).toJSON === 'function')
        item = JsonWalk.resolve(item, String(index));
      if (item !== stored[index] && !sameAsStored(item, stored[index] as JsonValue)) return false;
    }
    return true;
  }
  if (Array.isArray(stored)) return false;
  // A plain object is written out key by key; anything else only when it is not a Map, a typed array and such.
  const prototype: unknown = Object.getPrototypeOf(live);
  if (prototype !== Object.prototype && prototype !== null && !JsonWalk.isKeyed(live)) return false;
  let count = 0;
  // for...in allocates nothing; own keys only, as JSON.stringify takes them.
  for (const key in live) {
    if (!Object.hasOwn(live, key)) continue;
    let item: unknown = (live as Record<string, unknown>)[key];
    if (((typeof item === 'object' && item !== null) || typeof item === 'bigint') && typeof (item as { toJSON?: unknown }).toJSON === 'function')
      item = JsonWalk.resolve(item, key);
    if (item === undefined) continue;
    if (!Object.hasOwn(stored, key)) return false;
    const storedItem = stored[key] as JsonValue;
    if (item !== storedItem && !sameAsStored(item, storedItem)) return false;
    count++;
  }
  let storedCount = 0;
  for (const key in stored) if (Object.hasOwn(stored, key)) storedCount++;
  return count === storedCount;
}
const isEnumerable = Object.prototype.propertyIsEnumerable;

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

/**
 * Inverse of {@link deltaToJson}.
 *
 * @throws {TypeError} when `json` is not a delta in that form.
 */
export function deltaFromJson(json: JsonValue): SessionDelta {
  if (!isJsonObject(json)) throw new TypeError('a delta must be an object');
  const encodedSet = json['s'];
  const unset = json['u'];
  if (!isJsonObject(encodedSet) || !Array.isArray(unset) || !unset.every((key) => typeof key === 'string'))
    throw new TypeError('a delta holds "s", an object, and "u", a list of keys');
  const set = new Map<string, Patch>();
  for (const key of Object.keys(encodedSet)) {
    const entry = encodedSet[key];
    if (!isJsonObject(entry)) throw new TypeError('a change of a delta must be an object');
    if (Object.hasOwn(entry, 'o')) set.set(key, deltaFromJson(entry['o'] as JsonValue));
    else if (Object.hasOwn(entry, 'v')) set.set(key, { kind: 'value', value: entry['v'] as JsonValue });
    else throw new TypeError('a change of a delta holds "o" or "v"');
  }
  return { kind: 'object', set, unset: unset as string[] };
}
