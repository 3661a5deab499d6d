// Koa 3, sessions in smart-session-store (its own session middleware: no koa-session).
//   npm install koa smart-session-store better-sqlite3
//   node koa.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import Koa from 'koa';
import { smartSession } from 'smart-session-store/koa';

const app = new Koa();
app.keys = [process.env.SESSION_SECRET ?? 'replace with a long random secret'];
const sessions = smartSession({
  maxAge: 24 * 3600 * 1000,
  store: {
    url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
    createTable: true,
  },
}, app);
app.use(sessions);

// Each request adds one item; requests that overlap all keep theirs.
app.use(async (ctx) => {
  const item = /^\/cart\/([^/]+)$/.exec(ctx.path)?.[1];
  if (ctx.method === 'POST' && item !== undefined) {
    ctx.session.cart ??= {};
    ctx.session.cart[item] = (ctx.session.cart[item] ?? 0) + 1;
    ctx.body = ctx.session.cart;
  } else if (ctx.method === 'GET' && ctx.path === '/cart') {
    ctx.body = ctx.session.cart ?? {};
  }
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => sessions.store.close()));
