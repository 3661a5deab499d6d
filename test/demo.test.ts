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

test('"your sessions": the demo user sees each session with its browser and times, and a revoked one is logged out', async () => {
  // @ts-expect-error: the demo is plain JavaScript without declarations
  const { createDemoApp } = (await import('../demo/server.mjs')) as {
    createDemoApp(options: { url: string }): Promise<{ app: import('express').Express; store: { close(): Promise<void> } }>;
  };
  const { app, store } = await createDemoApp({ url: 'sqlite::memory:' });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** A browser: its cookie, kept from answer to answer. */
  const browser = (userAgent: string) => {
    let cookie = '';
    return async (method: string, path: string): Promise<Record<string, unknown>> => {
      const response = await fetch(`${base}/devices${path}`, { method, headers: { cookie, 'user-agent': userAgent } });
      const set = response.headers.get('set-cookie');
      if (set !== null) cookie = set.split(';')[0] ?? '';
      assert.equal(response.status, 200, `${method} ${path}`);
      return (await response.json()) as Record<string, unknown>;
    };
  };
  interface Listed {
    handle: string;
    current: boolean;
    userAgent: string | null;
    createdAt: string;
    lastSeenAt: string;
  }
  try {
    const firefox = browser('Firefox (test)');
    const chrome = browser('Chrome (test)');
    assert.deepStrictEqual(await firefox('GET', '/list'), { signedIn: false, sessions: [] });
    await firefox('POST', '/login');
    await chrome('POST', '/login');
    await firefox('POST', '/simulate');
    const listed = (await firefox('GET', '/list'))['sessions'] as Listed[];
    assert.deepStrictEqual(listed.map(({ userAgent }) => userAgent).sort(), ['Chrome (test)', 'Firefox (test)', 'Phone Browser (simulated)']);
    assert.deepStrictEqual(
      listed.filter(({ current }) => current).map(({ userAgent }) => userAgent),
      ['Firefox (test)'],
    );
    assert.ok(listed.every(({ createdAt, lastSeenAt }) => Number.isFinite(Date.parse(createdAt)) && Number.isFinite(Date.parse(lastSeenAt))));
    const chromeSession = listed.find(({ userAgent }) => userAgent === 'Chrome (test)');
    assert.ok(chromeSession);
    assert.deepStrictEqual(await firefox('POST', `/revoke/${chromeSession.handle}`), { revoked: true });
    assert.equal((await chrome('GET', '/list'))['signedIn'], false, 'the revoked browser is logged out');
    assert.equal(((await firefox('GET', '/list'))['sessions'] as Listed[]).length, 2);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});
