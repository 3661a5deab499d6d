// Demo: smart-session-store vs express-session's MemoryStore under concurrent requests.
//
//   npm start            (or: node demo/server.mjs)
//   open http://127.0.0.1:3000/
//
// Environment: PORT (3000), HOST (127.0.0.1), SESSION_SECRET,
// SESSION_DB_URL (sqlite:./demo-sessions.db; postgres://... and mysql://... work too).
//
// Two session-backed routers are mounted side by side, each with its own cookie:
//   /smart/...   SmartSessionStore: each request saves only its own change (delta),
//                merged into the latest stored session.
//   /memory/...  express-session's MemoryStore: each request writes its whole
//                session back, so overlapping requests overwrite each other.
// And "your sessions":
//   /devices/... the demo user's sessions (browser, created, last seen) with a
//                revoke button, kept by this package's own express middleware.

import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import session from 'express-session';
import { randomBytes } from 'node:crypto';
import { rotateSession, session as smartSession, SmartSessionStore } from 'smart-session-store/express';

const INDEX_HTML = fileURLToPath(new URL('./index.html', import.meta.url));
const DEFAULT_URL = 'sqlite:./demo-sessions.db';
const KEY_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;
// The icon index.html carries inline; served at /favicon.ico too for browsers that ask for it anyway.
const FAVICON_SVG =
  "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#2f5bd3'/>" +
  "<path d='M4 8.5l2.5 2.5L12 5.5' stroke='#fff' stroke-width='2' fill='none'/></svg>";
const SESSION_OPTIONS = {
  secret: process.env.SESSION_SECRET ?? 'smart-session-store demo secret (not for production)',
  resave: false,
  saveUninitialized: false,
};

/** Promisifies a callback-style method of req.session (regenerate, save, ...). */
function call(target, method) {
  return new Promise((resolve, reject) => {
    target[method]((error) => (error ? reject(error) : resolve()));
  });
}

/**
 * A router whose requests get a session kept in `store`, under its own cookie
 * name and path, with the three demo routes.
 */
function sessionRouter(prefix, store) {
  const router = express.Router();

  router.use(
    session({
      ...SESSION_OPTIONS,
      name: `demo.${prefix}.sid`,
      store,
      cookie: { path: `/${prefix}`, maxAge: 30 * 60 * 1000, httpOnly: true, sameSite: 'lax' },
    }),
  );

  // Starts over with an empty session.
  router.post('/start', async (req, res) => {
    await call(req.session, 'regenerate');
    req.session.started = true;
    res.json({ ok: true });
  });

  // Adds one distinct top-level key, after a short pause like a real handler's work.
  router.post('/keys/:key', async (req, res) => {
    const { key } = req.params;
    if (!KEY_PATTERN.test(key)) {
      res.status(400).json({ error: 'key must match /^[A-Za-z0-9_-]{1,40}$/' });
      return;
    }
    await sleep(Math.floor(Math.random() * 21));
    req.session[`k_${key}`] = Date.now();
    res.json({ ok: true });
  });

  // Lists the keys added so far.
  router.get('/session', (req, res) => {
    const keys = Object.keys(req.session)
      .filter((name) => name.startsWith('k_'))
      .sort();
    res.set('Cache-Control', 'no-store');
    res.json({ store: prefix, started: req.session.started === true, count: keys.length, keys });
  });

  return router;
}

/** The one user of the "your sessions" part of the demo. */
const DEMO_USER = 'demo';
const DEVICE_LIFETIME_MS = 30 * 60 * 1000;

/**
 * "Your sessions": the sessions of the demo user, with their browser and times, and a revoke button. Sessions are
 * kept by this package's own express middleware (it rotates the id at sign-in and records the client), in a table
 * of their own with a user index.
 */
function devicesRouter(store) {
  const router = express.Router();
  router.use(
    smartSession({
      store,
      secret: SESSION_OPTIONS.secret,
      name: 'demo.devices.sid',
      cookie: { path: '/devices', maxAge: DEVICE_LIFETIME_MS, httpOnly: true, sameSite: 'lax' },
    }),
  );
  const signedIn = (req) => req.session.user === DEMO_USER;

  // Signs in as the demo user: the session moves to a new id (rotation), its data kept.
  router.post('/login', async (req, res) => {
    await rotateSession(req);
    req.session.user = DEMO_USER;
    res.json({ ok: true });
  });

  // Another device signs in (simulated: a session made here, with a made-up browser).
  router.post('/simulate', async (_req, res) => {
    const expires = new Date(Date.now() + DEVICE_LIFETIME_MS);
    const cookie = { originalMaxAge: DEVICE_LIFETIME_MS, expires: expires.toISOString(), httpOnly: true, path: '/devices' };
    await store.store.save(randomBytes(24).toString('base64url'), { cookie, user: DEMO_USER }, undefined, {
      client: { userAgent: 'Phone Browser (simulated)', ip: '192.0.2.10' },
    });
    res.json({ ok: true });
  });

  router.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ ok: true })));
  });

  // The demo user's sessions, this browser's marked.
  router.get('/list', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!signedIn(req)) return res.json({ signedIn: false, sessions: [] });
    const sessions = await store.listByUser(DEMO_USER, { current: req.sessionID });
    res.json({
      signedIn: true,
      sessions: sessions.map(({ handle, createdAt, lastSeenAt, current, client }) => ({
        handle,
        createdAt,
        lastSeenAt,
        current,
        userAgent: client?.userAgent ?? null,
        ip: client?.ip ?? null,
      })),
    });
  });

  // Revokes one of the demo user's sessions: only a signed-in demo user may, and only among the demo user's.
  router.post('/revoke/:handle', async (req, res) => {
    if (!signedIn(req)) return res.status(403).json({ error: 'sign in first' });
    res.json({ revoked: await store.destroyByHandle(DEMO_USER, req.params.handle) });
  });
  return router;
}

/**
 * Builds the demo app. The caller owns the returned stores and should
 * `await store.close()` when done.
 *
 * @param {{ url?: string }} [options] Where SmartSessionStore keeps its sessions.
 * @returns {Promise<{ app: import('express').Express, store: { close(): Promise<void> } }>} `store.close()` closes both stores.
 */
export async function createDemoApp({ url = process.env.SESSION_DB_URL ?? DEFAULT_URL } = {}) {
  const smart = new SmartSessionStore({ url, createTable: true });
  const devices = new SmartSessionStore({ url, table: 'demo_devices', createTable: true, userIdKey: 'user', recordClient: true });
  const store = {
    async close() {
      await Promise.all([smart.close(), devices.close()]);
    },
  };
  const app = express();
  app.disable('x-powered-by');

  app.get('/', (_req, res, next) => {
    res.set('Cache-Control', 'no-cache');
    res.sendFile(INDEX_HTML, (error) => {
      if (error) next(error);
    });
  });

  app.get('/favicon.ico', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=86400');
    res.type('image/svg+xml').send(FAVICON_SVG);
  });

  app.use('/smart', sessionRouter('smart', smart));
  app.use('/devices', devicesRouter(devices));
  app.use('/memory', sessionRouter('memory', new session.MemoryStore()));

  app.use((req, res) => {
    res.status(404).json({ error: `not found: ${req.method} ${req.path}` });
  });

  // Express 5 routes rejected promises of async handlers here as well.
  // eslint-disable-next-line no-unused-vars
  app.use((error, req, res, _next) => {
    console.error(`[demo] ${req.method} ${req.originalUrl} failed:`, error);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = Number.isInteger(error?.status) && error.status >= 400 && error.status < 600 ? error.status : 500;
    res.status(status).json({ error: error instanceof Error ? error.message : String(error) });
  });

  return { app, store };
}

async function main() {
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  const { app, store } = await createDemoApp();

  process.on('unhandledRejection', (reason) => console.error('[demo] unhandled rejection:', reason));

  const server = app.listen(port, host, (error) => {
    if (error) {
      console.error(`[demo] cannot listen on ${host}:${port}:`, error.message);
      process.exitCode = 1;
      store.close().catch(() => {});
      return;
    }
    const shownHost = host.includes(':') ? `[${host}]` : host;
    console.log(`smart-session-store demo listening on http://${shownHost}:${server.address().port}/`);
  });

  let stopping = false;
  const shutdown = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`[demo] ${signal} received, shutting down`);
    const force = setTimeout(() => server.closeAllConnections(), 3000);
    force.unref();
    try {
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await store.close();
    } catch (error) {
      console.error('[demo] error while shutting down:', error);
      process.exitCode = 1;
    } finally {
      clearTimeout(force);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error('[demo] failed to start:', error);
    process.exitCode = 1;
  });
}
