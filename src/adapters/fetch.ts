/**
 * Sessions for any Fetch-API server (a Next.js route handler, Bun, Deno,
 * `@hono/node-server`, a service worker-style `fetch(request)` function):
 * open the session of a `Request`, read and change it, commit it onto the
 * `Response`. Each request writes only what it changed, merged into the
 * latest stored session, so overlapping requests of one user keep all their
 * changes. `smart-session-store/hono` is built on the same session layer.
 *
 * ```ts
 * import { FetchSessionStore } from 'smart-session-store/fetch';
 *
 * const sessions = new FetchSessionStore({
 *   url: 'postgres://postgres@127.0.0.1:5432/test',
 *   createTable: true,
 *   secret: process.env.SESSION_SECRET,
 *   cookie: { maxAge: 24 * 3600 }, // seconds
 * });
 *
 * export const POST = sessions.withSession(async (request, session) => {
 *   session.set('visits', Number(session.get('visits') ?? 0) + 1);
 *   return Response.json({ visits: session.get('visits') });
 * });
 * ```
 *
 * The cookie holds only the session id, signed as express-session signs it
 * (`s:<id>.<HMAC-SHA256, base64 without padding>`), so sessions survive a
 * move between express-session and this module when the secret is the same.
 *
 * `signSessionId` makes such a cookie's value and `unsignSessionId` reads
 * it, for code outside a request (a WebSocket upgrade, say).
 *
 * @module
 */
import { FetchSessionStore } from './shared/fetch-session-store.js';

export { FetchSessionStore, type FetchSessionStoreOptions } from './shared/fetch-session-store.js';
export { FetchSession, type SessionData } from './shared/fetch-session.js';
export { signSessionId, unsignSessionId, type SameSite, type SessionCookieOptions } from './shared/signed-cookie.js';
export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError } from '../errors.js';
export type { SessionStoreErrorCode } from '../errors.js';

export default FetchSessionStore;
