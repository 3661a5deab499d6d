/**
 * What the errors of node-redis, ioredis and Redis itself mean to the store:
 * a lost connection (run it again), a server that cannot be reached (fail
 * fast, probe), a refused login (fix the settings), or a plain error.
 * Errors are told apart by class name and message prefix, never by class
 * identity: the drivers are optional and may be of any installed version.
 */
import type { ConnectionFailure } from '../../core/backend.js';
import { connectionFailure, type TargetDescription } from '../driver.js';

/** Nothing answered in time: the store's own deadline on a command, or on waiting for a connection. */
export class RedisUnreachableError extends Error {
  /** The last connection error the client reported, if any (why it could not connect). */
  readonly lastError: unknown;

  constructor(message: string, lastError: unknown) {
    super(lastError instanceof Error ? `${message} (${lastError.message})` : message, lastError === undefined ? undefined : { cause: lastError });
    this.name = 'RedisUnreachableError';
    this.lastError = lastError;
  }
}

/** Fewer replicas than `waitReplicas` confirmed a write in time (`WAIT`): the write is on the master only. */
export class RedisNotReplicatedError extends Error {
  constructor(acknowledged: number, wanted: number, timeoutMs: number) {
    super(
      `only ${Number.isFinite(acknowledged) ? acknowledged : 0} of the ${wanted} replicas asked for (waitReplicas) confirmed the write within ${timeoutMs} ms (WAIT): it is on the master only`,
    );
    this.name = 'RedisNotReplicatedError';
  }
}

/** A `pessimistic` merge could not take a session's lock in time: the store runs the save again after a pause. */
export class RedisLockBusyError extends Error {
  constructor(key: string, waitedMs: number) {
    super(`the session ${key} stayed locked by another writer for ${waitedMs} ms`);
    this.name = 'RedisLockBusyError';
  }
}

/** Classes of node-redis and ioredis errors raised when the client has no usable connection. */
const OFFLINE_CLASSES: ReadonlySet<string> = new Set([
  // node-redis
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'ReconnectStrategyError',
  'RootNodesUnavailableError',
  'SocketTimeoutError',
  // ioredis
  'ClusterAllFailedError',
]);
/** Classes of errors raised when a connection that worked was lost under a command. */
const LOST_CLASSES: ReadonlySet<string> = new Set([
  'SocketClosedUnexpectedlyError',
  'MaxRetriesPerRequestError',
  'DisconnectsClientError',
  // Not enough replicas confirmed a write: like a lost connection, the write's survival is unknown and it runs again.
  'RedisNotReplicatedError',
]);
/** Node's codes for a connection that could not be made, and for one lost under a command. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const LOST_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/** ioredis says these in plain `Error`s. */
const OFFLINE_MESSAGES = ["Stream isn't writeable", 'None of startup nodes is available', 'Failed to refresh slots cache', "Cluster isn't ready"];
const LOST_MESSAGES = ['Connection is closed', 'Too many Cluster redirections', 'Command timed out', 'Socket closed unexpectedly'];
/**
 * Replies of a server (or cluster) that cannot serve right now but will:
 * loading its data after a restart, a cluster without all its slots, a
 * replica that is not promoted yet, a slot in migration.
 */
const UNAVAILABLE_REPLIES = /^(?:CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|BUSY) /;
/** Replies refusing the login or the database. */
const LOGIN_REPLIES =
  /^(?:WRONGPASS|NOAUTH|NOPERM)\b|invalid (?:username-)?password|called without any password configured|invalid DB index|DB index is out of range|SELECT is not allowed in cluster mode/i;

function className(error: unknown): string {
  return ((error as { constructor?: { name?: unknown } } | null)?.constructor?.name as string | undefined) ?? '';
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True when the client has no usable connection (it could not make one, or is making one again): the server is unreachable. */
export function isOfflineError(error: unknown): boolean {
  if (error instanceof RedisUnreachableError) return true;
  const message = messageOf(error);
  return OFFLINE_CLASSES.has(className(error)) || OFFLINE_MESSAGES.some((text) => message.startsWith(text)) || UNREACHABLE_CODES.has(codeOf(error));
}

/** True when `error` means the connection failed or is unusable, rather than the command. */
export function isRedisConnectionError(error: unknown): boolean {
  if (isOfflineError(error)) return true;
  const message = messageOf(error);
  return (
    LOST_CLASSES.has(className(error)) ||
    LOST_CODES.has(codeOf(error)) ||
    LOST_MESSAGES.some((text) => message.includes(text)) ||
    UNAVAILABLE_REPLIES.test(message)
  );
}

/** A reply refusing the login or the database number, found in the error or in why it could not connect. */
function loginRefusal(error: unknown): unknown {
  const cause = error instanceof RedisUnreachableError ? error.lastError : error;
  return LOGIN_REPLIES.test(messageOf(cause)) ? cause : undefined;
}

/** What a connection failure means, said for a person; `undefined` when `error` is no connection failure. */
export function describeRedisFailure(error: unknown, where: TargetDescription | undefined): ConnectionFailure | undefined {
  const refusal = loginRefusal(error);
  if (refusal !== undefined) {
    return connectionFailure(/DB index|SELECT is not allowed/i.test(messageOf(refusal)) ? 'database' : 'credentials', where, refusal);
  }
  if (!isOfflineError(error)) return undefined;
  const cause = error instanceof RedisUnreachableError && error.lastError !== undefined ? error.lastError : error;
  const code = codeOf(cause);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return connectionFailure('host', where, cause);
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || className(cause) === 'ClientOfflineError') return connectionFailure('refused', where, cause);
  return connectionFailure('timeout', where, error);
}

/** True for a server error reply starting with `prefix` (`NOSCRIPT`, `MOVED`, ...). */
export function isReply(error: unknown, prefix: string): boolean {
  return messageOf(error).startsWith(prefix);
}
