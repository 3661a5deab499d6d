// Fastify 5 with smart-session-store's own session layer (no @fastify/session).
//   npm install fastify smart-session-store better-sqlite3
//   node fastify.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import Fastify from 'fastify';
import smartSession from 'smart-session-store/fastify';

const app = Fastify();
await app.register(smartSession, { // @fastify/session's options and request.session; no @fastify/session needed
  secret: process.env.SESSION_SECRET ?? 'replace with a long random secret', // 32 characters at least
  cookie: { maxAge: 24 * 3600 * 1000, secure: 'auto' },
  store: {
    url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
    createTable: true,
  },
});

// Each request adds one item; requests that overlap all keep theirs.
app.post('/cart/:item', async (request) => {
  request.session.cart ??= {};
  request.session.cart[request.params.item] = (request.session.cart[request.params.item] ?? 0) + 1;
  return request.session.cart;
});
app.get('/cart', async (request) => request.session.cart ?? {});

await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`listening on http://127.0.0.1:${app.server.address().port}`);
process.on('SIGTERM', () => app.close()); // closes the store too
