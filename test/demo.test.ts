/**
 * The demo behind `npm start`: what it shows a person must be true.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

test('the demo keeps every one of 20 parallel changes with smart-session-store', async () => {
  // @ts-expect-error: the demo is plain JavaScript without declarations
  const { createDemoApp } = (await import('../demo/server.mjs')) as {
    createDemoApp(options: { url: string }): Promise<{ app: import('express').Express; store: { close(): Promise<void> } }>;
  };
  const { app, store } = await createDemoApp({ url: 'sqlite::memory:' });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /parallel/i);
    const start = await fetch(`${base}/smart/start`, { method: 'POST' });
    const cookie = start.headers.get('set-cookie')?.split(';')[0] ?? '';
    await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${base}/smart/keys/k${i}`, { method: 'POST', headers: { cookie } })));
    const state = (await (await fetch(`${base}/smart/session`, { headers: { cookie } })).json()) as { count: number };
    assert.equal(state.count, 20);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});
