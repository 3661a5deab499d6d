/**
 * The express 5 + express-session application every HTTP section runs, one
 * per store, and a small keep-alive HTTP client for the in-process sections.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import session from 'express-session';

export const COOKIE_NAME = 'bench.sid';
const DAY_MS = 24 * 3600 * 1000;

/** A session payload of about `bytes` bytes of JSON (with express-session's cookie added, ~1 KB in all). */
export function makeProfile(i, bytes = 1024) {
  const profile = {
    user: { id: 100000 + i, name: `User ${i}`, email: `user${i}@example.test`, roles: ['customer', 'newsletter'] },
    prefs: { lang: 'en', theme: 'dark', tz: 'Europe/Paris', currency: 'EUR' },
    cart: [],
  };
  // The cookie express-session adds is ~110 bytes of JSON. The length is kept as items are added (each adds its own
  // JSON and, after the first, a comma), not measured again per item: a 40 KB cart would cost seconds per session.
  let length = JSON.stringify(profile).length;
  for (let n = 0; length < bytes - 110; n++) {
    const item = { sku: `SKU-${i}-${n}`, qty: (n % 3) + 1, price: 1999 + n };
    length += JSON.stringify(item).length + (n > 0 ? 1 : 0);
    profile.cart.push(item);
  }
  return profile;
}

/**
 * Starts the app on 127.0.0.1 (a free port) with `store`.
 *
 * Routes:
 *   GET /init?i=    creates the session (a ~1 KB profile), answers its cookie
 *   GET /read       reads the session, changes nothing (404 if the session is missing)
 *   GET /write      changes one key of the session (404 if the session is missing)
 *   GET /set?k=&maxDelay=  waits 0..maxDelay ms, then sets key k (the lost-update request)
 *   GET /keys       the session's keys, as JSON
 */
export async function startApp(store, { sessionBytes = 1024 } = {}) {
  const stats = { missing: 0, errors: 0, firstError: undefined, inFlight: 0, sessionIds: new Set(), trackIds: false };
  const app = express();
  app.use((_req, res, next) => {
    stats.inFlight++;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        stats.inFlight--;
      }
    };
    res.on('finish', finish);
    res.on('close', finish);
    next();
  });
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(
    session({
      name: COOKIE_NAME,
      secret: 'smart-session-store benchmark',
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: DAY_MS },
      store,
    }),
  );
  app.get('/init', (req, res) => {
    req.session.profile = makeProfile(Number(req.query.i ?? 0), sessionBytes);
    res.type('text').send('ok');
  });
  app.get('/read', (req, res) => {
    if (stats.trackIds) stats.sessionIds.add(req.sessionID);
    const profile = req.session.profile;
    if (profile === undefined) {
      stats.missing++;
      res.status(404).type('text').send('no session');
      return;
    }
    res.type('text').send(profile.user.name);
  });
  app.get('/write', (req, res) => {
    if (stats.trackIds) stats.sessionIds.add(req.sessionID);
    if (req.session.profile === undefined) {
      stats.missing++;
      res.status(404).type('text').send('no session');
      return;
    }
    req.session.hits = (req.session.hits ?? 0) + 1;
    res.type('text').send('ok');
  });
  app.get('/set', async (req, res) => {
    await sleep(Math.random() * Number(req.query.maxDelay ?? 20));
    req.session[`k${req.query.k}`] = Number(req.query.k);
    res.type('text').send('ok');
  });
  app.get('/keys', (req, res) => {
    res.json(Object.keys(req.session));
  });
  app.use((error, _req, res, _next) => {
    stats.errors++;
    stats.firstError ??= String(error?.message ?? error);
    // express-session may report a store error after the response has started.
    if (res.headersSent) res.end();
    else
      res
        .status(500)
        .type('text')
        .send(String(error?.message ?? error));
  });

  const server = http.createServer({ keepAliveTimeout: 30_000 }, app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    stats,
    /** Stops accepting, lets requests in flight finish (2 s at most), then closes every connection. */
    close: async () => {
      const closed = new Promise((resolve) => server.close(() => resolve()));
      for (let waited = 0; stats.inFlight > 0 && waited < 2000; waited += 20) await sleep(20);
      server.closeAllConnections?.();
      await closed;
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GET `url` with an optional cookie; resolves to { status, cookie, body }. */
export function get(url, cookie) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent, headers: cookie === undefined ? {} : { cookie } }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const setCookie = response.headers['set-cookie']?.find((c) => c.startsWith(`${COOKIE_NAME}=`));
        resolve({ status: response.statusCode, cookie: setCookie?.split(';')[0], body: Buffer.concat(chunks).toString('utf8') });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** Creates `count` sessions of ~1 KB through the app; resolves to their cookies. */
export async function createSessions(app, count) {
  const cookies = [];
  for (let i = 0; i < count; i++) {
    const response = await get(`${app.origin}/init?i=${i}`);
    if (response.status !== 200 || response.cookie === undefined) throw new Error(`creating a session failed: ${response.status} ${response.body}`);
    cookies.push(response.cookie);
  }
  return cookies;
}
