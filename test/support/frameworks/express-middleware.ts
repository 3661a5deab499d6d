/** The shared suite's app on express 5 with smart-session-store's own session middleware (no express-session). */
import { createServer } from 'node:http';
import express from 'express';
import { session } from '../../../src/adapters/express.js';
import { listen } from '../http.js';
import { type FrameworkHarness, handlerDelay, keysOf } from './harness.js';

export const harness: FrameworkHarness = {
  name: 'express-middleware',
  async start(options) {
    const sessions = session({ ...options, secret: 'test secret', cookie: { maxAge: 3_600_000 } });
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
        await sessions.store.close();
      },
    };
  },
};
