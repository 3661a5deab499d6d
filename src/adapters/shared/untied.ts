/**
 * The warning an adapter gives when it is handed a session it cannot tie to
 * a load: it must then store the session whole, and overlapping requests can
 * erase each other's changes, which is what this store exists to prevent.
 */

/** The code of the warning, for `process.on('warning')` filters. */
export const UNTIED_SESSION_WARNING = 'SMART_SESSION_STORE_UNTIED_SESSION';

/** The adapters that have warned: each warns once per process, so one adapter's warning never hides another's. */
const warned = new Set<string>();

/**
 * The adapter made for the framework whose session object this is, if it can
 * be told from what the framework hands a store's `set`.
 */
export function adapterFor(session: object): string | undefined {
  // @fastify/session hands `set` its Session, which keeps its id behind prototype getters.
  if ('encryptedSessionId' in session && 'sessionId' in session) return 'smart-session-store/fastify';
  // koa-session hands `set` a plain copy of its Session with its own bookkeeping added.
  if ('_expire' in session || '_maxAge' in session || '_session' in session) return 'smart-session-store/koa';
  // koa-session's Session itself, should something pass it on.
  if ('_requireSave' in session && 'isNew' in session) return 'smart-session-store/koa';
  return undefined;
}

/**
 * Warns, once per process and adapter, that `adapter` saved a session whole
 * because it could not tell what the request changed. `remedy` says what to
 * do instead; by default, to use the adapter made for the framework that
 * handed the session over (told from `session`).
 */
export function warnUntiedSession(adapter: string, session: object, remedy?: string): void {
  if (warned.has(adapter)) return;
  warned.add(adapter);
  const instead = adapterFor(session);
  const advice = remedy ?? (instead === undefined || instead === adapter ? 'Use the adapter made for your framework' : `Use ${instead} instead`);
  process.emitWarning(
    `${adapter} was handed a session it did not load, so it cannot tell what the request changed: it saves the whole session, ` +
      `and requests that overlap can erase each other's changes. ${advice} (see the README, "Frameworks").`,
    { code: UNTIED_SESSION_WARNING, type: 'SmartSessionStoreWarning' },
  );
}
