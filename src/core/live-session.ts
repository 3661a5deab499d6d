/**
 * The live session a request reads and changes, over the session it loaded,
 * copied as the request goes: an object in it is copied the first time the
 * request reads (or replaces) it, one level at a time, so a request pays for
 * what it touches, not for the size of the session. Reading
 * `session.profile.user.name` copies `profile` and `user` shallowly, never
 * the cart beside them. An array is copied whole on first read.
 *
 * Until then the key holds a getter, and a save knows the key unchanged
 * without copying or comparing anything: what a request never read, it
 * cannot have changed. The loaded session itself is never handed out, so it
 * stays the base the request's change is diffed against.
 *
 * Every property stays an ordinary own, enumerable, configurable one:
 * `Object.keys`, spreading, `JSON.stringify`, `structuredClone`, `delete`
 * and `in` behave as on a plain object (reading all keys simply copies them
 * all), and `util.inspect` (`console.log`) shows the values, not getters.
 */
import { cloneJson, type JsonObject, type JsonValue } from './json.js';

/** The getters of keys no one has read nor written yet, each with the stored value it copies. */
const pendingGetters = new WeakMap<object, JsonObject | JsonValue[]>();
/** Each copy a getter made, to the getter: the key's identity for layers that compare top-level values. */
const copyOrigins = new WeakMap<object, object>();
/** How Node's `util.inspect` finds an object's own way of being shown (`util.inspect.custom`), without importing it. */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

function dataProperty(value: unknown): PropertyDescriptor {
  return { value, writable: true, enumerable: true, configurable: true };
}

/** The key's property, as a getter that copies `stored` on first read and turns into a plain property. */
function copyOnRead(key: string, stored: JsonObject | JsonValue[]): PropertyDescriptor {
  // Where the property cannot be redefined (the application froze the object): the copy it was given, per object.
  let frozenCopies: WeakMap<object, object> | undefined;
  const get = function (this: object): unknown {
    const kept = frozenCopies?.get(this);
    if (kept !== undefined) return kept;
    const copy = Array.isArray(stored) ? cloneJson(stored) : liveOver(stored);
    copyOrigins.set(copy, get);
    if (!Reflect.defineProperty(this, key, dataProperty(copy))) (frozenCopies ??= new WeakMap()).set(this, copy);
    return copy;
  };
  const set = function (this: object, value: unknown): void {
    Reflect.defineProperty(this, key, dataProperty(value));
  };
  pendingGetters.set(get, stored);
  return { get, set, enumerable: true, configurable: true };
}

/** Shows a live object as the plain object it stands for, copying nothing. */
function inspectLive(this: object): Record<string, unknown> {
  return plainView(this);
}

/**
 * A live object over `loaded` (as parsed from storage, never handed out):
 * its primitives as they are, its objects and arrays copied on first read.
 */
export function liveOver(loaded: JsonObject): JsonObject {
  const live: JsonObject = {};
  for (const key of Object.keys(loaded)) {
    const value = loaded[key] as JsonValue;
    if (typeof value === 'object' && value !== null) Object.defineProperty(live, key, copyOnRead(key, value));
    else Object.defineProperty(live, key, dataProperty(value));
  }
  Object.defineProperty(live, INSPECT, { value: inspectLive, writable: true, configurable: true });
  return live;
}

/** The copy-on-read getter `target` still has under `key`, if any: the key was neither read nor written. */
function pendingGetter(target: object, key: string): object | undefined {
  const get = Reflect.getOwnPropertyDescriptor(target, key)?.get;
  return get !== undefined && pendingGetters.has(get) ? get : undefined;
}

/** True while `target`'s `key` was neither read nor written since it was loaded. */
export function isUntouched(target: object, key: string): boolean {
  return pendingGetter(target, key) !== undefined;
}

/**
 * True while `target`'s `key` was neither read nor written, and stands for
 * `stored` itself: then it is unchanged from it. Not only untouched: a key
 * not read yet moves with its parent, and `session.a = session.b` puts b's
 * unread keys under `a`, where they differ from what `a` held.
 */
export function isUnreadCopyOf(target: object, key: string, stored: JsonValue | undefined): boolean {
  const get = pendingGetter(target, key);
  return get !== undefined && pendingGetters.get(get) === stored;
}

/**
 * Puts `source`'s `key` on `target` as it is: a key not read yet stays
 * unread (its copy-on-read getter moves over), any other value is assigned.
 * How a session layer builds its own session object from a handle's data.
 */
export function carryKey(target: object, source: object, key: string): void {
  const get = pendingGetter(source, key);
  if (get !== undefined) Object.defineProperty(target, key, Reflect.getOwnPropertyDescriptor(source, key) as PropertyDescriptor);
  else (target as Record<string, unknown>)[key] = (source as Record<string, unknown>)[key];
}

/**
 * What `target` holds under `key`, for telling whether the key was replaced:
 * the value, except that a key not read yet and the copy its first read made
 * are the same thing (reading a key does not replace it). Reads nothing that
 * is still to be copied.
 */
export function identityOf(target: object, key: string): unknown {
  const get = pendingGetter(target, key);
  if (get !== undefined) return get;
  const value = (target as Record<string, unknown>)[key];
  return (typeof value === 'object' && value !== null && copyOrigins.get(value)) || value;
}

/**
 * `target`'s own enumerable keys and values as a plain object, keys not read
 * yet shown by the stored value they stand for, and nothing copied: for
 * `util.inspect`, which must show a session without changing what a save
 * will find touched.
 */
export function plainView(target: object): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const key of Object.keys(target)) {
    const get = pendingGetter(target, key);
    Object.defineProperty(view, key, dataProperty(get === undefined ? (target as Record<string, unknown>)[key] : pendingGetters.get(get)));
  }
  return view;
}
