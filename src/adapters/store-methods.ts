/**
 * What every framework adapter offers besides its framework's own API: the
 * store's management methods and events, passed on once here rather than by
 * hand in each adapter.
 */
import type { EventEmitter } from 'node:events';
import { SESSION_STORE_EVENTS } from '../core/session-store.js';
import type { SessionStore } from '../store.js';

/** The store's methods every adapter exposes as its own. */
export const STORE_METHODS = ['createTable', 'ready', 'close', 'purge', 'stats', 'destroyByUser', 'listByUser', 'lockingMode'] as const;

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

/** Passes the store's events (`connect`, `disconnect`, `purge`, `purgeError`) on to the adapter. */
export function forwardStoreEvents(store: SessionStore, adapter: Pick<EventEmitter, 'emit'>): void {
  for (const name of SESSION_STORE_EVENTS) store.on(name, (...args: unknown[]) => adapter.emit(name, ...args));
}
