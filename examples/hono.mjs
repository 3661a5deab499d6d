// Hono 4 on Node, sessions in smart-session-store.
//   npm install hono @hono/node-server smart-session-store better-sqlite3
//   node hono.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { HonoSessionStore } from 'smart-session-store/hono';

const sessions = new HonoSessionStore({
  url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
  createTable: true,
  secret: process.env.SESSION_SECRET ?? 'replace with a long random secret',
  cookie: { maxAge: 24 * 3600 }, // seconds
});

const app = new Hono().use(sessions.middleware); // chained: in TypeScript too, c.var.session is typed

// Each request adds one item; requests that overlap all keep theirs.
app.post('/cart/:item', (c) => {
  const { session } = c.var;
  const item = c.req.param('item');
  session.data.cart ??= {};
  session.data.cart[item] = (session.data.cart[item] ?? 0) + 1;
  return c.json(session.data.cart);
});
app.get('/cart', (c) => c.json(c.var.session.data.cart ?? {}));

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`);
});
process.on('SIGTERM', () => server.close(() => sessions.close()));
