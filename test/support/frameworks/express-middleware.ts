/** The shared suite's app on express 5 with smart-session-store's own session middleware (no express-session). */
import { session } from '../../../src/adapters/express.js';
import { startExpress } from './express.js';
import type { FrameworkHarness } from './harness.js';

export const harness: FrameworkHarness = {
  name: 'express-middleware',
  rotates: true,
  start(options) {
    const sessions = session({ ...options, secret: 'test secret', cookie: { maxAge: 3_600_000 } });
    return startExpress(sessions, () => sessions.store.close());
  },
};
