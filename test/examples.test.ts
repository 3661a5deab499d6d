/**
 * The example apps in examples/, one per framework, run as a user would run
 * them (the package imported by its name), on every backend: 20 parallel
 * requests on one session each add an item, and all 20 are kept. The README
 * shows each example verbatim, so what it shows is what runs here.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { backendsForThisFile, dropTable, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);
const examplesDirectory = new URL('../examples/', import.meta.url);
const examples = readdirSync(examplesDirectory).filter((file) => file.endsWith('.mjs')).sort();
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Starts an example; resolves once it says where it listens. */
async function startExample(file: string, url: string): Promise<{ base: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [new URL(file, examplesDirectory).pathname], {
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
async function send(base: string, jar: Map<string, string>, method: string, path: string): Promise<Record<string, number>> {
  const response = await fetch(base + path, { method, headers: { cookie: [...jar.values()].join('; ') } });
  for (const setCookie of response.headers.getSetCookie()) {
    const pair = setCookie.split(';')[0] ?? '';
    jar.set(pair.slice(0, pair.indexOf('=')), pair);
  }
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, number>;
}

describe('examples/', () => {
  for (const file of examples) {
    test(`${file} is in the README, verbatim`, () => {
      const code = readFileSync(new URL(file, examplesDirectory), 'utf8');
      assert.ok(readme.includes(`\`\`\`js\n${code}\`\`\``), `README.md must show examples/${file} as it is, in a js code block`);
    });

    for (const backend of backends) {
      test(`${file} on ${backend.name}: 20 parallel requests on one session, all 20 items kept`, async () => {
        await dropTable(backend, 'sessions');
        const app = await startExample(file, backend.url);
        after(() => app.stop());
        try {
          const jar = new Map<string, string>();
          await send(app.base, jar, 'POST', '/cart/first');
          const items = Array.from({ length: 20 }, (_, i) => `item${i}`);
          await Promise.all(items.map((item) => send(app.base, jar, 'POST', `/cart/${item}`)));
          const cart = await send(app.base, jar, 'GET', '/cart');
          assert.deepStrictEqual(Object.keys(cart).sort(), ['first', ...items].sort());
        } finally {
          await app.stop();
          await dropTable(backend, 'sessions');
        }
      });
    }
  }
});
