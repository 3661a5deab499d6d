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

import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import session from 'express-session';
import { SmartSessionStore } from 'smart-session-store/express';

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

/**
 * Builds the demo app. The caller owns the returned store and should
 * `await store.close()` when done.
 *
 * @param {{ url?: string }} [options] Where SmartSessionStore keeps its sessions.
 * @returns {Promise<{ app: import('express').Express, store: SmartSessionStore }>}
 */
export async function createDemoApp({ url = process.env.SESSION_DB_URL ?? DEFAULT_URL } = {}) {
  const store = new SmartSessionStore({ url, createTable: true });
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

  app.use('/smart', sessionRouter('smart', store));
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
