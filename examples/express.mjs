// express 5 with smart-session-store's own session middleware (no express-session needed).
//   npm install express smart-session-store better-sqlite3
//   node express.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
import express from 'express';
import { session } from 'smart-session-store/express';

const sessions = session({
  url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
  createTable: true,
  secret: process.env.SESSION_SECRET ?? 'replace with a long random secret',
  cookie: { maxAge: 24 * 3600 * 1000 }, // milliseconds, as express-session counts
});

const app = express();
app.use(sessions);

// Each request adds one item; requests that overlap all keep theirs.
app.post('/cart/:item', (req, res) => {
  req.session.cart ??= {};
  req.session.cart[req.params.item] = (req.session.cart[req.params.item] ?? 0) + 1;
  res.json(req.session.cart);
});
app.get('/cart', (req, res) => res.json(req.session.cart ?? {}));

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => sessions.store.close()));
