/**
 * The shared suite's app on plain node:http and the Fetch-API core,
 * `smart-session-store/fetch`: each request becomes a `Request`, the handler
 * answers a `Response`, `withSession` opens and commits the session around it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { FetchSessionStore, type FetchSession } from '../../../src/adapters/fetch.js';
import type { SessionStore } from '../../../src/index.js';
import { listen } from '../http.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

/** A node:http request as a Fetch `Request` (these routes read no body). */
export function toRequest(req: IncomingMessage, base: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  return new Request(new URL(req.url ?? '/', base), { method: req.method ?? 'GET', headers });
}

/** Writes a Fetch `Response` to node:http, every `Set-Cookie` kept apart. */
export async function sendResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

/** Serves a Fetch handler over node:http; a handler that throws answers 500. */
export function fetchListener(handler: (request: Request) => Promise<Response>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handler(toRequest(req, 'http://127.0.0.1'))
      .then((response) => sendResponse(response, res))
      .catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(error instanceof Error ? error.message : String(error));
      });
  };
}

/**
 * Holds every save of `store` until released, to show that an answer waits
 * for its write: `arrived` resolves when a save starts; `release` lets the
 * held saves (and later ones) through.
 */
export function holdSaves(store: SessionStore): { arrived: Promise<void>; release(): void } {
  const original = store.save;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  store.save = async function held(this: SessionStore, ...args: Parameters<SessionStore['save']>) {
    arrive();
    await gate;
    return original.apply(this, args);
  };
  return {
    arrived,
    release() {
      store.save = original;
      open();
    },
  };
}

/** The suite's routes, answered from the request's session. */
async function route(request: Request, session: FetchSession): Promise<Response> {
  const { pathname } = new URL(request.url);
  const post = request.method === 'POST';
  const set = /^\/set\/([^/]+)$/.exec(pathname);
  if (post && pathname === '/start') {
    session.set('started', true);
    return Response.json({ id: session.id });
  }
  if (post && set !== null) {
    await handlerDelay();
    const key = decodeURIComponent(set[1] as string);
    session.set(`k_${key}`, key);
    return Response.json({ ok: true });
  }
  if (!post && pathname === '/keys') return Response.json({ id: session.id, keys: keysOf(session.data) });
  if (post && pathname === '/login') {
    await session.regenerate();
    session.set('user', 'ann');
    return Response.json({ id: session.id });
  }
  if (post && pathname === '/rotate') {
    await session.rotate();
    session.set('user', 'ann');
    return Response.json({ id: session.id });
  }
  if (post && pathname === '/logout') {
    await session.destroy();
    return Response.json({ ok: true });
  }
  if (!post && pathname === '/read') return Response.json({ started: session.get('started') ?? null });
  return new Response('not found', { status: 404 });
}

export const harness: FrameworkHarness = {
  name: 'fetch',
  rotates: true,
  async start(options) {
    const sessions = new FetchSessionStore({ ...options, secret: 'test secret', cookie: { maxAge: 3600 } });
    const server = await listen(createServer(fetchListener(sessions.withSession(route))));
    return {
      base: server.base,
      close: async () => {
        await server.close();
        await sessions.close();
      },
    };
  },
};
