/**
 * The shared suite's app on React Router 7: a server build written for the
 * test (resource routes under a root route whose middleware is the
 * storage's), served by `@react-router/node` (`createRequestHandler` over
 * node:http), with `smart-session-store/react-router`.
 */
import { createRequestListener } from '@react-router/node';
import { createServer } from 'node:http';
import type { ServerBuild } from 'react-router';
import { createSmartSessionStorage, type SmartSessionStorage } from '../../../src/adapters/react-router.js';
import { listen } from '../http.js';
import { handlerDelay, keysOf, type FrameworkHarness } from './harness.js';

declare module 'react-router' {
  // As `future.v8_middleware` in react-router.config.ts types it: loaders get a RouterContextProvider.
  interface Future {
    v8_middleware: true;
  }
}

/** A route module: what a route file of an app exports (a resource route has no `default` component). */
export type RouteModule = Partial<NonNullable<ServerBuild['routes'][string]>['module']>;

/**
 * A server build as `react-router build` would emit it, minus the React: a
 * root route and routes under it, each at the path it is keyed by. A route
 * with a `default` answers documents, here the loaders' data as JSON; one
 * without is a resource route.
 */
export function serverBuild(root: RouteModule, routes: Record<string, RouteModule>): ServerBuild {
  return {
    entry: {
      module: {
        default: (_request, status, headers, entryContext) =>
          Response.json({ loaderData: entryContext.staticHandlerContext.loaderData, errors: entryContext.staticHandlerContext.errors }, { status, headers }),
      },
    },
    routes: {
      root: { id: 'root', path: '', module: root },
      ...Object.fromEntries(Object.entries(routes).map(([path, module]) => [path, { id: path, parentId: 'root', path, module }])),
    },
    assets: { entry: { imports: [], module: '/entry.js' }, routes: {}, url: '/manifest.js', version: 'test' },
    publicPath: '/',
    assetsBuildDirectory: '/nonexistent',
    future: { v8_middleware: true, v8_passThroughRequests: false, v8_trailingSlashAwareDataRequests: false },
    ssr: true,
    isSpaMode: false,
    prerender: [],
    routeDiscovery: { mode: 'lazy', manifestPath: '/__manifest' },
    // Typed as `react-router build` emits them, every route module has a `default`; resource routes have none.
  } as ServerBuild;
}

/** The suite's routes, on the session the storage's middleware put in the router context. */
export function suiteRoutes(storage: SmartSessionStorage): Record<string, RouteModule> {
  return {
    start: {
      action: ({ context }) => {
        const session = context.get(storage.context);
        session.set('started', true);
        return Response.json({ id: session.id });
      },
    },
    'set/:key': {
      action: async ({ context, params }) => {
        await handlerDelay();
        const key = params['key'] as string;
        context.get(storage.context).set(`k_${key}`, key);
        return Response.json({ ok: true });
      },
    },
    keys: {
      loader: ({ context }) => {
        const session = context.get(storage.context);
        return Response.json({ id: session.id, keys: keysOf(session.data) });
      },
    },
    login: {
      action: async ({ context }) => {
        const session = await storage.regenerateSession(context.get(storage.context), context);
        session.set('user', 'ann');
        return Response.json({ id: session.id });
      },
    },
    rotate: {
      action: async ({ context }) => {
        const session = await storage.rotateSession(context.get(storage.context), context);
        session.set('user', 'ann');
        return Response.json({ id: session.id });
      },
    },
    logout: {
      action: async ({ context }) => {
        await storage.destroySession(context.get(storage.context));
        return Response.json({ ok: true });
      },
    },
    read: {
      loader: ({ context }) => Response.json({ started: context.get(storage.context).get('started') ?? null }),
    },
  };
}

export const harness: FrameworkHarness = {
  name: 'react-router',
  rotates: true,
  async start(options) {
    const storage = createSmartSessionStorage({ ...options, cookie: { name: '__session', secrets: ['test secret'], maxAge: 3600 } });
    const build = serverBuild({ middleware: [storage.middleware], default: () => null }, suiteRoutes(storage));
    const server = await listen(createServer(createRequestListener({ build, mode: 'production' })));
    return {
      base: server.base,
      close: async () => {
        await server.close();
        await storage.close();
      },
    };
  },
};
