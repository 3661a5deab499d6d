/**
 * The warning an adapter gives when it is handed a session it cannot tie to
 * a load: it must then store the session whole, and overlapping requests can
 * erase each other's changes, which is what this store exists to prevent.
 */

/** The code of the warning, for `process.on('warning')` filters. */
export const UNTIED_SESSION_WARNING = 'SMART_SESSION_STORE_UNTIED_SESSION';

let warned = false;

/** The adapter made for the framework whose session object this is, if it can be told. */
function adapterFor(session: object): string | undefined {
  // @fastify/session's Session keeps its id behind prototype getters.
  if ('encryptedSessionId' in session) return 'smart-session-store/fastify';
  if ('_requireSave' in session || 'isNew' in session) return 'smart-session-store/koa';
  return undefined;
}

/** Warns, once per process, that `adapter` saved a session whole because it could not tell what the request changed. */
export function warnUntiedSession(adapter: string, session: object): void {
  if (warned) return;
  warned = true;
  const instead = adapterFor(session);
  process.emitWarning(
    `${adapter} was handed a session it did not load, so it cannot tell what the request changed: it saves the whole session, ` +
      `and requests that overlap can erase each other's changes. ${instead === undefined ? 'Use the adapter made for your framework' : `Use ${instead} instead`} ` +
      '(see the README, "Frameworks").',
    { code: UNTIED_SESSION_WARNING, type: 'SmartSessionStoreWarning' },
  );
}
