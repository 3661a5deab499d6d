/**
 * Hono 4 middleware: every handler gets the request's session as
 * `c.get('session')` (or `c.var.session`), committed before the response
 * leaves. Each request writes only what it changed, merged into the latest
 * stored session, so overlapping requests of one user keep all their changes.
 *
 * ```ts
 * import { Hono } from 'hono';
 * import { HonoSessionStore, type SessionEnv } from 'smart-session-store/hono';
 *
 * const sessions = new HonoSessionStore({ url: 'sqlite:./sessions.db', createTable: true, secret: process.env.SESSION_SECRET });
 * const app = new Hono<SessionEnv>();
 * app.use(sessions.middleware);
 * app.post('/visit', (c) => {
 *   const session = c.get('session');
 *   session.set('visits', Number(session.get('visits') ?? 0) + 1);
 *   return c.json({ visits: session.get('visits') });
 * });
 * ```
 *
 * The session is the one of `smart-session-store/fetch` (`get`, `set`,
 * `unset`, `flash`, `data`, `regenerate()`, `destroy()`); the options are its
 * options.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono';
import { FetchSessionStore } from './shared/fetch-session-store.js';
import type { FetchSession, SessionData } from './shared/fetch-session.js';

export type { FetchSessionStoreOptions as HonoSessionStoreOptions } from './shared/fetch-session-store.js';
export { FetchSession, flashKey, type SessionData } from './shared/fetch-session.js';
export { FETCH_SESSION_FORMAT } from './shared/session-keeper.js';
export type { SessionCookieOptions, SameSite } from './shared/signed-cookie.js';
export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError } from '../errors.js';
export type { SessionStoreErrorCode } from '../errors.js';

/**
 * The Hono environment the middleware provides: `new Hono<SessionEnv>()`
 * types `c.get('session')` in every handler (a chain `app.use(mw).get(...)`
 * infers it without).
 *
 * @typeParam Data What sessions hold.
 * @typeParam FlashData What flash messages they hold.
 */
export type SessionEnv<Data extends object = SessionData, FlashData extends object = Data> = {
  Variables: { session: FetchSession<Data, FlashData> };
};

/**
 * Sessions for Hono: {@link middleware} opens the request's session before
 * the handlers run and commits it after them, awaiting the write, so a
 * response the client receives stands for a committed change. A failing
 * write becomes an error response (Hono's `onError`, 500 by default), never
 * the handler's answer. The session is committed also when a handler threw
 * (as express-session and koa-session do), onto the error response.
 *
 * @typeParam Data What sessions hold.
 * @typeParam FlashData What flash messages they hold.
 */
export class HonoSessionStore<Data extends object = SessionData, FlashData extends object = Data> extends FetchSessionStore<Data, FlashData> {
  /**
   * The middleware: `app.use(sessions.middleware)`. Used again further down
   * (on a sub-app, say), it leaves the session the first one opened.
   */
  readonly middleware: MiddlewareHandler<SessionEnv<Data, FlashData>> = async (c, next) => {
    // The variable is unset until a session middleware ran for this request.
    if ((c.get('session') as FetchSession<Data, FlashData> | undefined) !== undefined) return next();
    const session = await this.open(c.req.raw);
    c.set('session', session);
    await next();
    // A session regenerated or destroyed stays the same object: what the handlers left is what is committed.
    const setCookie = await this.commit(c.get('session'));
    if (setCookie !== undefined) c.header('Set-Cookie', setCookie, { append: true });
  };
}

export default HonoSessionStore;
