/** The shared suite's app on Fastify 5 + @fastify/session with the store (the compatibility path), through `withFastifySession` of `smart-session-store/fastify`. */
import { withFastifySession } from '../../../src/adapters/fastify.js';
import { startFastify } from './fastify.js';
import type { FrameworkHarness } from './harness.js';

export const harness: FrameworkHarness = {
  name: 'fastify-session',
  rotates: false,
  start: (options) =>
    startFastify((app) =>
      // secure: false, as the tests speak plain HTTP (@fastify/session's default would send no cookie at all).
      app.register(withFastifySession, {
        secret: 'a test secret of at least thirty-two characters',
        cookie: { secure: false, maxAge: 3_600_000 },
        store: options,
      }),
    ),
};
