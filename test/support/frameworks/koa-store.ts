/** The shared suite's app on Koa 3 + koa-session 7, with `smart-session-store/koa`'s `SmartSessionStore` as its external store (the compatibility path). */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Koa from 'koa';
import session from 'koa-session';
import { SmartSessionStore } from '../../../src/adapters/koa.js';
import { listen } from '../http.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

/** The session id of the request: the one koa-session generated last for it (new, regenerated), else the one it loaded. */
function sessionIdOf(ctx: Koa.Context): string {
  return (ctx.state['sessionId'] as string | undefined) ?? (ctx['session'] as { externalKey: string }).externalKey;
}

export const harness: FrameworkHarness = {
  name: 'koa-store',
  rotates: false,
  async start(options) {
    const store = new SmartSessionStore(options);
    const app = new Koa();
    app.keys = ['a test secret'];
    const genid = (ctx: Koa.Context): string => {
      // koa-session 7 keeps `ctx.session.externalKey` at the loaded key after a regenerate: the harness notes the new one.
      const id = randomUUID();
      ctx.state['sessionId'] = id;
      return id;
    };
    app.use(session({ store, maxAge: 3_600_000, genid }, app));
    app.use(async (ctx) => {
      const sess = ctx['session'] as Record<string, unknown> & { regenerate(): Promise<void> };
      const set = /^\/set\/([^/]+)$/.exec(ctx.path);
      if (ctx.method === 'POST' && ctx.path === '/start') {
        sess['started'] = true;
        ctx.body = { id: sessionIdOf(ctx) };
      } else if (ctx.method === 'POST' && set?.[1] !== undefined) {
        await handlerDelay();
        sess[`k_${set[1]}`] = set[1];
        ctx.body = { ok: true };
      } else if (ctx.method === 'GET' && ctx.path === '/keys') {
        ctx.body = { id: sessionIdOf(ctx), keys: keysOf(sess) };
      } else if (ctx.method === 'POST' && ctx.path === '/login') {
        // koa-session's regenerate keeps the data: start from nothing of the old session.
        ctx['session'] = { user: 'ann' };
        await (ctx['session'] as { regenerate(): Promise<void> }).regenerate();
        ctx.body = { id: sessionIdOf(ctx) };
      } else if (ctx.method === 'POST' && ctx.path === '/logout') {
        ctx['session'] = null;
        ctx.body = { ok: true };
      } else if (ctx.method === 'GET' && ctx.path === '/read') {
        ctx.body = { started: sess['started'] ?? null };
      }
    });
    const server = await listen(createServer(app.callback()));
    return {
      base: server.base,
      close: async () => {
        await server.close();
        await store.close();
      },
    };
  },
};
