// Koa 3 + koa-session, sessions in smart-session-store.
//   npm install koa koa-session smart-session-store better-sqlite3
//   node koa.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import Koa from 'koa';
import session from 'koa-session';
import { SmartSessionStore } from 'smart-session-store/koa';

const store = new SmartSessionStore({
  url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
  createTable: true,
});

const app = new Koa();
app.keys = [process.env.SESSION_SECRET ?? 'replace with a long random secret'];
app.use(session({ maxAge: 24 * 3600 * 1000, store }, app));

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
process.on('SIGTERM', () => server.close(() => store.close()));
