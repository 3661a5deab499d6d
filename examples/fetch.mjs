// Any Fetch-API server (Bun.serve, Deno.serve, a Next.js route handler, ...), sessions in smart-session-store.
// On Node, @hono/node-server serves a plain fetch function.
//   npm install @hono/node-server smart-session-store better-sqlite3
//   node fetch.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import { serve } from '@hono/node-server';
import { FetchSessionStore } from 'smart-session-store/fetch';

const sessions = new FetchSessionStore({
  url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
  createTable: true,
  secret: process.env.SESSION_SECRET ?? 'replace with a long random secret',
  cookie: { maxAge: 24 * 3600 }, // seconds
});

// Each request adds one item; requests that overlap all keep theirs.
const handler = sessions.withSession(async (request, session) => {
  const { pathname } = new URL(request.url);
  const [, item] = /^\/cart\/([^/]+)$/.exec(pathname) ?? [];
  if (request.method === 'POST' && item !== undefined) {
    session.data.cart ??= {};
    session.data.cart[item] = (session.data.cart[item] ?? 0) + 1;
    return Response.json(session.data.cart);
  }
  if (request.method === 'GET' && pathname === '/cart') return Response.json(session.data.cart ?? {});
  return new Response('Not Found', { status: 404 });
});

const server = serve({ fetch: handler, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`);
});
process.on('SIGTERM', () => server.close(() => sessions.close()));
