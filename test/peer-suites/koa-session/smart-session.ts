// @ts-nocheck: compiled inside the fetched koajs/session suite (its src/index.ts; store.ts beside this file), not in this project.
// Stands in for koa-session itself in a fetched copy of koajs/session v7.0.2's suite
// (install.sh makes every test import this file where it imported '../src/index.js'):
// `session(opts, app)` is smart-session-store/koa's own middleware, smartSession, with
// the test's options.
//   - a test that gives the suite's shared store (test/store.ts, which install.sh
//     makes a SmartSessionStore): that store, as smartSession's `store`;
//   - a test that gives no store (koa-session's cookie-held sessions: test/cookie.test.ts),
//     or a ContextStore (a store made per request: test/contextstore.test.ts): one
//     SmartSessionStore for the run (SQLite in memory, or PEER_STORE_URL); the cookie then
//     holds a session id, not the session;
//   - a test that brings a store object of its own (store_with_ctx.test.ts, whose store
//     marks ctx.state to check what koa-session hands a store): the real koa-session.
// `encode`/`decode` (cookie-held sessions only) are left out. SessionOptions (the zod
// schema test/index.test.ts snapshots) is koa-session's own.
//   PROJECT_DIR  the smart-session-store checkout (built: dist/)
import { createRequire } from 'node:module';
import path from 'node:path';
import koaSession, { SessionOptions, type CreateSessionOptions } from '../src/index.js';
import { makeStore } from './store.js';

const require = createRequire(import.meta.url);
const { smartSession, SmartSessionStore } = require(path.join(process.env.PROJECT_DIR!, 'dist/cjs/adapters/koa.js'));

export { SessionOptions, type CreateSessionOptions };

let defaultStore: unknown;

type Middleware = (ctx: any, next: any) => Promise<void>;

// koa-session's own signatures, so that the tests' hooks are typed as they are with it.
export function createSession(opts: CreateSessionOptions, app: any): Middleware;
export function createSession(app: any, opts?: CreateSessionOptions): Middleware;
export function createSession(opts: any, app?: any): Middleware {
  // koa-session also takes session(app[, opts]).
  if (opts && typeof opts.use === 'function') [app, opts] = [opts, app];
  if (typeof app?.use !== 'function') throw new TypeError('app instance required: `session(opts, app)`');
  const options = opts ?? {};
  if (options.store && !(options.store instanceof SmartSessionStore)) return koaSession(options, app);
  const { store, ContextStore: _ContextStore, encode: _encode, decode: _decode, ...rest } = options;
  return smartSession({ ...rest, store: store ?? (defaultStore ??= makeStore()) }, app);
}

export default createSession;
