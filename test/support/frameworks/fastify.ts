/** The shared suite's app on Fastify 5 with `smart-session-store/fastify`'s own session layer (no @fastify/session). */
import Fastify, { type FastifyInstance } from 'fastify';
import smartSession from '../../../src/adapters/fastify.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

declare module 'fastify' {
  interface Session {
    [key: string]: unknown;
  }
}

/**
 * The suite's routes on a Fastify app whose session layer `register` adds: the plugin here, the
 * compatibility path in fastify-session.ts (both give `request.session` with @fastify/session's API).
 */
export async function startFastify(register: (app: FastifyInstance) => PromiseLike<unknown>): Promise<{ base: string; close: () => Promise<void> }> {
  const app = Fastify();
  await register(app);
  app.post('/start', async (request) => {
    request.session.set('started', true);
    return { id: request.session.sessionId };
  });
  app.post<{ Params: { key: string } }>('/set/:key', async (request) => {
    await handlerDelay();
    request.session.set(`k_${request.params.key}`, request.params.key);
    return { ok: true };
  });
  app.get('/keys', async (request) => ({ id: request.session.sessionId, keys: keysOf(request.session) }));
  app.post('/login', async (request) => {
    await request.session.regenerate();
    request.session.set('user', 'ann');
    return { id: request.session.sessionId };
  });
  app.post('/rotate', async (request, reply) => {
    // Our layer's request.session.rotate(); @fastify/session has none.
    const session = request.session as unknown as { rotate?: () => Promise<void> };
    if (typeof session.rotate !== 'function') return reply.code(501).send({ error: 'no rotate' });
    await session.rotate();
    request.session.set('user', 'ann');
    return { id: request.session.sessionId };
  });
  app.post('/logout', async (request) => {
    await request.session.destroy();
    return { ok: true };
  });
  app.get('/read', async (request) => ({ started: request.session.get('started') ?? null }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('fastify did not listen on a TCP port');
  return {
    base: `http://127.0.0.1:${address.port}`,
    // Closing Fastify closes the store (the plugin's onClose hook).
    close: () => app.close(),
  };
}

export const harness: FrameworkHarness = {
  name: 'fastify',
  rotates: true,
  start: (options) =>
    startFastify((app) =>
      // secure: false, as the tests speak plain HTTP (the default, true, would send no cookie at all).
      app.register(smartSession, {
        secret: 'a test secret of at least thirty-two characters',
        cookie: { secure: false, maxAge: 3_600_000 },
        store: options,
      }),
    ),
};
