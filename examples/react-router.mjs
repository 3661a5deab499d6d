// React Router 7.9+ or 8 with its middleware, sessions in smart-session-store.
//   npm install react-router @react-router/node smart-session-store better-sqlite3
//   node react-router.mjs     then: curl -c jar -b jar -X POST localhost:3000/cart/apple
// This file holds by hand what `react-router build` makes of an app; in an app, the middleware
// goes in app/root.tsx (`export const middleware = [sessionStorage.middleware]`).
import { createServer } from 'node:http';
import { createRequestListener } from '@react-router/node';
import { createSmartSessionStorage } from 'smart-session-store/react-router';

const sessionStorage = createSmartSessionStorage({
  url: process.env.SESSION_STORE_URL ?? 'sqlite:./sessions.db', // or postgres://..., mysql://...
  createTable: true,
  cookie: { secrets: [process.env.SESSION_SECRET ?? 'replace with a long random secret'], maxAge: 24 * 3600 }, // seconds
});

// Each request adds one item; requests that overlap all keep theirs.
const cartItemRoute = {
  action({ context, params }) {
    const session = context.get(sessionStorage.context);
    const cart = session.get('cart') ?? {};
    cart[params.item] = (cart[params.item] ?? 0) + 1;
    session.set('cart', cart);
    return Response.json(cart);
  },
};
const cartRoute = {
  loader: ({ context }) => Response.json(context.get(sessionStorage.context).get('cart') ?? {}),
};

const build = {
  routes: {
    root: { id: 'root', path: '', module: { middleware: [sessionStorage.middleware], default: () => null } },
    cartItem: { id: 'cartItem', parentId: 'root', path: 'cart/:item', module: cartItemRoute },
    cart: { id: 'cart', parentId: 'root', path: 'cart', module: cartRoute },
  },
  entry: { module: { default: () => new Response('Not Found', { status: 404 }) } }, // no pages here, only resource routes
  future: { v8_middleware: true },
  assets: { entry: { imports: [], module: '' }, routes: {}, url: '', version: '1' },
  publicPath: '/', assetsBuildDirectory: '', ssr: true, isSpaMode: false, prerender: [],
  routeDiscovery: { mode: 'lazy', manifestPath: '/__manifest' },
};

const server = createServer(createRequestListener({ build, mode: 'production' }));
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => sessionStorage.close()));
