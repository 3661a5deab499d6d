/** The shared suite's app on Koa 3 with `smart-session-store/koa`'s own session middleware, `smartSession` (no koa-session). */
import { createServer } from 'node:http';
import Koa from 'koa';
import { type KoaSession, smartSession } from '../../../src/adapters/koa.js';
import { listen } from '../http.js';
import { type FrameworkHarness, handlerDelay, keysOf } from './harness.js';

export const harness: FrameworkHarness = {
  name: 'koa',
  rotates: true,
  async start(options) {
    const app = new Koa();
    app.keys = ['a test secret'];
    const sessions = smartSession({ store: options, maxAge: 3_600_000 }, app);
    app.use(sessions);
    app.use(async (ctx) => {
      const session = (): KoaSession => ctx['session'] as KoaSession;
      const set = /^\/set\/([^/]+)$/.exec(ctx.path);
      if (ctx.method === 'POST' && ctx.path === '/start') {
        session()['started'] = true;
        ctx.body = { id: session().externalKey };
      } else if (ctx.method === 'POST' && set?.[1] !== undefined) {
        await handlerDelay();
        session()[`k_${set[1]}`] = set[1];
        ctx.body = { ok: true };
      } else if (ctx.method === 'GET' && ctx.path === '/keys') {
        ctx.body = { id: session().externalKey, keys: keysOf(session()) };
      } else if (ctx.method === 'POST' && ctx.path === '/login') {
        // koa-session's regenerate keeps the data: start from nothing of the old session.
        ctx['session'] = { user: 'ann' };
        await session().regenerate();
        ctx.body = { id: session().externalKey };
      } else if (ctx.method === 'POST' && ctx.path === '/rotate') {
        await session().rotate();
        session()['user'] = 'ann';
        ctx.body = { id: session().externalKey };
      } else if (ctx.method === 'POST' && ctx.path === '/logout') {
        ctx['session'] = null;
        ctx.body = { ok: true };
      } else if (ctx.method === 'GET' && ctx.path === '/read') {
        ctx.body = { started: session()['started'] ?? null };
      }
    });
    const server = await listen(createServer(app.callback()));
    return {
      base: server.base,
      close: async () => {
        await server.close();
        await sessions.store.close();
      },
    };
  },
};
