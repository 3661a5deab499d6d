/**
 * What the store's `recordClient` option keeps of the request that creates
 * a session: its `User-Agent` and the IP address the framework reports
 * (behind a proxy, the framework's trust-proxy setting decides which). Read
 * from the framework's request by its usual property names, so each
 * session layer needs one call.
 */
import type { SessionStoreCore } from '../../core/session-store.js';
import type { SessionClient } from '../../core/store-types.js';

/** A header's value as text (the first of several), or `undefined`. */
function headerText(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const value: unknown =
    typeof (headers as { get?: unknown }).get === 'function'
      ? (headers as { get(name: string): unknown }).get(name)
      : (headers as Record<string, unknown>)[name];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && text !== '' ? text : undefined;
}

/**
 * The client of a request whose `headers` are a Node header object or a Fetch `Headers`, from the IP address the
 * framework reports; `undefined` when the store does not record clients (nothing is read then).
 */
export function requestClient(store: SessionStoreCore, headers: unknown, ip: () => unknown): SessionClient | undefined {
  if (!store.options.recordClient) return undefined;
  const address = ip();
  return { userAgent: headerText(headers, 'user-agent'), ip: typeof address === 'string' && address !== '' ? address : undefined };
}
