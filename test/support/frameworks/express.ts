/** The shared suite's app on express 5 + express-session, with `smart-session-store/express`. */
import express from 'express';
import session from 'express-session';
import { createServer } from 'node:http';
import { rotateSession, SmartSessionStore } from '../../../src/adapters/express.js';
import { listen } from '../http.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

declare module 'express-session' {
  interface SessionData {
    [key: string]: unknown;
  }
}

/**
 * The suite's routes on an express app whose session layer `sessions` is (express-session with the
 * store here, the middleware of our own in express-middleware.ts: both give express-session's
 * `req.session`); `closeStore` closes what the layer opened.
 */
export async function startExpress(sessions: express.RequestHandler, closeStore: () => Promise<void>): Promise<{ base: string; close: () => Promise<void> }> {
  const app = express();
  app.use(sessions);
  app.post('/start', (req, res) => {
    req.session['started'] = true;
    res.json({ id: req.sessionID });
  });
  app.post('/set/:key', async (req, res) => {
    await handlerDelay();
    req.session[`k_${req.params['key']}`] = req.params['key'];
    res.json({ ok: true });
  });
  app.get('/keys', (req, res) => {
    res.json({ id: req.sessionID, keys: keysOf(req.session) });
  });
  app.post('/login', (req, res, next) => {
    req.session.regenerate((error) => {
      if (error) return next(error);
      req.session['user'] = 'ann';
      res.json({ id: req.sessionID });
    });
  });
  app.post('/rotate', async (req, res, next) => {
    // Our middleware's sessions rotate; express-session's are refused (ERR_INVALID_OPTION).
    try {
      await rotateSession(req);
    } catch (error) {
      return next(error);
    }
    req.session['user'] = 'ann';
    res.json({ id: req.sessionID });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ ok: true })));
  });
  app.get('/read', (req, res) => {
    res.json({ started: req.session['started'] ?? null });
  });
  const server = await listen(createServer(app));
  return {
    base: server.base,
    close: async () => {
      await server.close();
      await closeStore();
    },
  };
}

export const harness: FrameworkHarness = {
  name: 'express',
  rotates: false,
  start(options) {
    const store = new SmartSessionStore(options);
    const sessions = session({ secret: 'test secret', resave: false, saveUninitialized: false, store, cookie: { maxAge: 3_600_000 } });
    return startExpress(sessions, () => store.close());
  },
};
