/** Real HTTP for the framework tests: a server on a free port, and a client that keeps its cookies as a browser does. */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server listening on a free loopback port. */
export interface RunningServer {
  readonly base: string;
  close(): Promise<void>;
}

/** Starts listening on a free port of 127.0.0.1. */
export async function listen(server: Server): Promise<RunningServer> {
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A client that keeps its session cookie, as a browser does. */
export class Client {
  /** `name=value` pairs, by name. */
  readonly #cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  /** The cookies this client sends. */
  get cookie(): string {
    return [...this.#cookies.values()].join('; ');
  }

  /** Sends exactly these cookies from now on (a stale copy of another client's, say). */
  set cookie(header: string) {
    this.#cookies.clear();
    for (const pair of header.split(/;\s*/).filter((part) => part.includes('='))) this.#cookies.set(pair.slice(0, pair.indexOf('=')), pair);
  }

  /** A request that must answer 200 with JSON; cookies set by the answer are kept (and dropped when expired). */
  async request(method: string, path: string): Promise<Record<string, unknown>> {
    const response = await fetch(this.base + path, { method, headers: this.#cookies.size > 0 ? { cookie: this.cookie } : {} });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = setCookie.split(/;\s*/);
      const name = pair.slice(0, pair.indexOf('='));
      const expired = attributes.some(
        (attribute) => /^max-age=0$/i.test(attribute) || (/^expires=/i.test(attribute) && Date.parse(attribute.slice(8)) <= Date.now()),
      );
      if (expired || pair.endsWith('=')) this.#cookies.delete(name);
      else this.#cookies.set(name, pair);
    }
    const text = await response.text();
    assert.equal(response.status, 200, `${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }
}
