import { hash } from 'node:crypto';
import { SessionStoreError } from '../errors.js';

/** Longest session id accepted, in characters. */
export const MAX_SESSION_ID_LENGTH = 256;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Refuses anything that is not a plausible session id, before any SQL runs.
 *
 * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`
 */
export function assertSessionId(sid: unknown): asserts sid is string {
  if (typeof sid !== 'string') {
    throw new SessionStoreError('ERR_INVALID_SESSION_ID', `session id must be a string, got ${sid === null ? 'null' : typeof sid}`);
  }
  if (sid.length === 0) throw new SessionStoreError('ERR_INVALID_SESSION_ID', 'session id is empty');
  if (sid.length > MAX_SESSION_ID_LENGTH) {
    throw new SessionStoreError('ERR_INVALID_SESSION_ID', `session id is ${sid.length} characters long, the limit is ${MAX_SESSION_ID_LENGTH}`);
  }
  if (CONTROL_CHARACTER.test(sid)) {
    throw new SessionStoreError('ERR_INVALID_SESSION_ID', 'session id contains control characters');
  }
}

/**
 * The key a session is stored under: the SHA-256 of its id (hex), so a dump
 * of the table holds no cookie value that could be replayed.
 */
export function hashSessionId(sid: string): string {
  return hash('sha256', sid, 'hex');
}

/**
 * A session's public handle: derived from its stored key, so it names the
 * session in traces, events and lists without being the cookie value or
 * the key (neither can be computed back from it).
 */
export function publicHandle(key: string): string {
  return hash('sha256', `smart-session-store handle:${key}`, 'base64url').slice(0, 22);
}
