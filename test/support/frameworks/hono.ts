/** The shared suite's app on Hono 4 (served by @hono/node-server), with `smart-session-store/hono`. */
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createServer } from 'node:http';
import { HonoSessionStore, type SessionEnv } from '../../../src/adapters/hono.js';
import { listen } from '../http.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

export const harness: FrameworkHarness = {
  name: 'hono',
  rotates: true,
  async start(options) {
    const sessions = new HonoSessionStore({ ...options, secret: 'test secret', cookie: { maxAge: 3600 } });
    const app = new Hono<SessionEnv>();
    app.use(sessions.middleware);
    app.post('/start', (c) => {
      c.var.session.set('started', true);
      return c.json({ id: c.var.session.id });
    });
    app.post('/set/:key', async (c) => {
      await handlerDelay();
      const key = c.req.param('key');
      c.var.session.set(`k_${key}`, key);
      return c.json({ ok: true });
    });
    app.get('/keys', (c) => c.json({ id: c.var.session.id, keys: keysOf(c.var.session.data) }));
    app.post('/login', async (c) => {
      const session = c.get('session');
      await session.regenerate();
      session.set('user', 'ann');
      return c.json({ id: session.id });
    });
    app.post('/rotate', async (c) => {
      const session = c.get('session');
      await session.rotate();
      session.set('user', 'ann');
      return c.json({ id: session.id });
    });
    app.post('/logout', async (c) => {
      await c.get('session').destroy();
      return c.json({ ok: true });
    });
    app.get('/read', (c) => c.json({ started: c.get('session').get('started') ?? null }));
    const server = await listen(createServer(getRequestListener(app.fetch, { overrideGlobalObjects: false })));
    return {
      base: server.base,
      close: async () => {
        await server.close();
        await sessions.close();
      },
    };
  },
};
