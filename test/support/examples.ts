/** Running an example app as a user would, and checking what it promises. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';

/** Starts an example; resolves once it says where it listens. */
export async function startExample(path: string, url: string, cwd?: string): Promise<{ base: string; child: ChildProcess; stop(): Promise<void> }> {
  const file = basename(path);
  const child = spawn(process.execPath, [path], {
    ...(cwd === undefined ? {} : { cwd }),
    env: { ...process.env, PORT: '0', SESSION_STORE_URL: url, SESSION_SECRET: 'an example secret of at least thirty-two characters' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start within 20 s:\n${output}`)), 20_000);
    const read = (chunk: Buffer): void => {
      output += chunk.toString();
      const found = /listening on (http:\/\/\S+)/.exec(output);
      if (found?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', (code) => reject(new Error(`${file} exited with ${String(code)}:\n${output}`)));
  });
  return {
    base,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** A request with the client's cookies, keeping the ones the answer sets. */
export async function send(base: string, jar: Map<string, string>, method: string, path: string): Promise<Record<string, number>> {
  const response = await fetch(base + path, { method, headers: { cookie: [...jar.values()].join('; ') } });
  for (const setCookie of response.headers.getSetCookie()) {
    const pair = setCookie.split(';')[0] ?? '';
    jar.set(pair.slice(0, pair.indexOf('=')), pair);
  }
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, number>;
}

/** 20 parallel requests on one session each add an item to the cart: all 20 are kept. */
export async function keepsTwentyParallelItems(base: string): Promise<void> {
  const jar = new Map<string, string>();
  await send(base, jar, 'POST', '/cart/first');
  const items = Array.from({ length: 20 }, (_, i) => `item${i}`);
  await Promise.all(items.map((item) => send(base, jar, 'POST', `/cart/${item}`)));
  const cart = await send(base, jar, 'GET', '/cart');
  assert.deepStrictEqual(Object.keys(cart).sort(), ['first', ...items].sort());
}
