/**
 * What every framework adapter offers besides its framework's own API: the
 * store's management methods and events, passed on once here rather than by
 * hand in each adapter.
 */
import { EventEmitter } from 'node:events';
import { SESSION_STORE_EVENTS } from '../../core/session-store.js';
import { SessionStoreError } from '../../errors.js';
import type { SessionStoreOptions } from '../../options.js';
import type { SessionStore } from '../../store.js';

/** The store's methods every adapter exposes as its own. */
export const STORE_METHODS = ['createTable', 'ready', 'close', 'purge', 'stats', 'destroyByUser', 'destroyByHandle', 'listByUser', 'lockingMode'] as const;

/** {@link STORE_METHODS}, typed as the store has them. */
export type StoreMethods = Pick<SessionStore, (typeof STORE_METHODS)[number]>;

/** Gives an adapter class the store's methods, each calling `this.store`. */
export function delegateStoreMethods(adapter: { prototype: { readonly store: SessionStore } }): void {
  for (const name of STORE_METHODS) {
    Object.defineProperty(adapter.prototype, name, {
      configurable: true,
      writable: true,
      value(this: { readonly store: SessionStore }, ...args: unknown[]): unknown {
        return (this.store[name] as (...given: unknown[]) => unknown).apply(this.store, args);
      },
    });
  }
}

/**
 * Passes the store's events (`connect`, `disconnect`, `purge`, `purgeError`, and the lifecycle events) on to the
 * adapter: each once the adapter has a listener for it, since the store does work for some only when listened to
 * (`destroyed` on `destroyByUser` lists the sessions first).
 */
export function forwardStoreEvents(store: SessionStore, adapter: Pick<EventEmitter, 'emit' | 'on'>): void {
  const forwarded = new Set<string | symbol>();
  adapter.on('newListener', (name: string | symbol) => {
    if (forwarded.has(name) || !(SESSION_STORE_EVENTS as readonly (string | symbol)[]).includes(name)) return;
    forwarded.add(name);
    const event = name as (typeof SESSION_STORE_EVENTS)[number];
    store.on(event, (...args: unknown[]) => adapter.emit(event, ...args));
  });
}

/**
 * The store an adapter's `store` option names: a store of the adapter's own
 * class as it is, options made into one. Any other store (the
 * framework-neutral `SessionStore`, another adapter's) is refused by name:
 * its sessions are in another format, and read as options it would only
 * give `option "_events" is not an option`.
 *
 * @param given What the application passed as `store`.
 * @param AdapterStore The adapter's store class, made from the store's options.
 * @param adapter The adapter's module, as the error names it: `smart-session-store/koa`.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`: a store of another kind (naming what to pass instead), or invalid options.
 */
export function storeFromOption<Store extends object>(
  given: SessionStoreOptions | Store,
  AdapterStore: new (options: SessionStoreOptions) => Store,
  adapter: string,
): Store {
  if (given instanceof AdapterStore) return given;
  // Every store of this package is an EventEmitter (so is a driver's pool); options never are.
  if (given instanceof EventEmitter) {
    throw new SessionStoreError(
      'ERR_INVALID_OPTION',
      `option "store" must be the store's options ({ url, ... }) or a new SmartSessionStore({ url, ... }) of ${adapter}, ` +
        `not a ${given.constructor.name} made elsewhere: a store made for anything else keeps its sessions in another format`,
    );
  }
  // Not an instance of the (generic) class, so options: instanceof narrows only the true branch.
  return new AdapterStore(given as SessionStoreOptions);
}
