/**
 * The server-side scripts of the Redis backend. Each touches ONE key (so each
 * runs inside one hash slot of a Redis Cluster) and none parses JSON: the
 * session text is opaque to Lua (cjson would turn `[]` into `{}` and round
 * large numbers), the merge happens in TypeScript, and a script only writes
 * when the version the merge was based on is still the stored one.
 *
 * A session is one hash:
 *
 * | field  | holds |
 * |--------|-------|
 * | `data` | the session as JSON text, never parsed here |
 * | `v`    | the version, an integer that every write of the data moves on |
 * | `e`    | the expiry, epoch ms by the application's clock; the key's own TTL (`PEXPIREAT`) is the same instant |
 * | `u`    | the user id (`userIdKey`), only when the store keeps a user index |
 * | `c`    | when the session was first stored, epoch ms by the application's clock |
 * | `s`    | when a write of its data or expiry last moved it (at most every `touchAfter`), epoch ms |
 * | `cl`   | the client recorded at its creation (`recordClient`), JSON text |
 * | `lk`, `lt` | a `pessimistic` writer's lock: its token, and the server time (ms) it lapses at |
 *
 * A session whose `e` is at or before the caller's `now` counts as gone,
 * even in the moment before Redis deletes the key by its own clock.
 *
 * Replies are flat arrays of strings, integers and nils, read the same by
 * node-redis and ioredis in RESP2 and RESP3.
 */
import { createHash } from 'node:crypto';

/** A script and its SHA-1, for EVALSHA. */
export interface RedisScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): RedisScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Shared opening lines: `cur` holds the fields asked for, and a session that
 * is missing, or expired by `now`, makes the script return `gone`.
 */
function readLive(fields: readonly string[], nowArg: string, gone: string): string {
  const list = fields.map((field) => `'${field}'`).join(', ');
  const data = fields.indexOf('data') + 1;
  const version = fields.indexOf('v') + 1;
  const expiry = fields.indexOf('e') + 1;
  return `local cur = redis.call('HMGET', KEYS[1], ${list})
if cur[${data}] == false and cur[${version}] == false then return ${gone} end
if cur[${expiry}] and tonumber(cur[${expiry}]) <= tonumber(${nowArg}) then return ${gone} end`;
}

/** The server's clock in milliseconds (scripts replicate their effects, so reading it is allowed). */
const SERVER_MS = `local clock = redis.call('TIME')
local server_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

/** Sets, clears or keeps the user id field: ARGV[op] is '1' (set to ARGV[op+1]), '0' (clear) or '' (keep). */
function writeUser(opArg: number): string {
  return `if ARGV[${opArg}] == '1' then redis.call('HSET', KEYS[1], 'u', ARGV[${opArg + 1}])
elseif ARGV[${opArg}] == '0' then redis.call('HDEL', KEYS[1], 'u') end`;
}

/**
 * Compare-and-set. ARGV: expected version, data, expiry, user op, user id,
 * now, the user indexed before this write, '1' when the store keeps a user
 * index, the version to write (the expected one plus 1, as the caller says
 * it: every writer moves a session's version on by one). Replies 1 when
 * written; `{-1}` when the session is gone; `{0, data, version, expiry,
 * user}` (what is stored now) when the version moved on or another writer
 * holds the lock, so a retry needs no extra read; `{2, user}` when the
 * session would be left with a user whose index entry was not raised first
 * (the caller raises it and asks again).
 *
 * This runs on every writing request, so it does the least it can: the
 * session text is read only for a conflict's reply, and one HSET writes
 * the data, the expiry and the version.
 */
export const COMPARE_AND_SET = script(
  'compare-and-set',
  `local cur = redis.call('HMGET', KEYS[1], 'v', 'e', 'u', 'lk', 'lt')
local data = nil
if cur[1] == false then
  data = redis.call('HGET', KEYS[1], 'data')
  if data == false then return {-1} end
end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[6]) then return {-1} end
local busy = false
if cur[4] then
  ${SERVER_MS}
  busy = (tonumber(cur[5]) or 0) > server_ms
end
if busy or cur[1] ~= ARGV[1] then return {0, data or redis.call('HGET', KEYS[1], 'data'), cur[1], cur[2], cur[3]} end
if ARGV[8] == '1' then
  local user = (ARGV[4] == '1' and ARGV[5]) or (ARGV[4] == '' and cur[3])
  if user and user ~= ARGV[7] then return {2, user} end
end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'e', ARGV[3], 'v', ARGV[9], 's', ARGV[6])
${writeUser(4)}
if cur[4] then redis.call('HDEL', KEYS[1], 'lk', 'lt') end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`,
);

/**
 * Stores a whole session, replacing any. ARGV: data, expiry, user op, user
 * id, first version, now, the client ('' for none). A replaced session's
 * version moves on (a save based on what was there fails its check) and its
 * creation time stays; a new one starts at a random version, so a save based
 * on an earlier session of the same id cannot match it.
 */
export const UPSERT = script(
  'upsert',
  `if redis.call('HEXISTS', KEYS[1], 'v') == 1 then
  redis.call('HSET', KEYS[1], 'data', ARGV[1], 'e', ARGV[2], 's', ARGV[6])
  redis.call('HINCRBY', KEYS[1], 'v', 1)
else
  redis.call('HSET', KEYS[1], 'data', ARGV[1], 'e', ARGV[2], 'v', ARGV[5], 'c', ARGV[6], 's', ARGV[6])
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'cl', ARGV[7]) end
${writeUser(3)}
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`,
);

/**
 * Stores a whole session only when no live one has its key (an expired one
 * is replaced). ARGV: data, expiry, now, user op, user id, first version (a
 * random one, as for a new session). Replies 1 (written) or 0 (a live
 * session is there, left as it is).
 */
export const INSERT_IF_ABSENT = script(
  'insert-if-absent',
  `local cur = redis.call('HMGET', KEYS[1], 'data', 'v', 'e')
local exists = cur[1] ~= false or cur[2] ~= false
if exists and not (cur[3] and tonumber(cur[3]) <= tonumber(ARGV[3])) then return 0 end
redis.call('DEL', KEYS[1])
-- Created and last seen now: the copy starts its absolute timeout here, as the old store kept no creation time.
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'e', ARGV[2], 'v', ARGV[6], 'c', ARGV[3], 's', ARGV[3])
${writeUser(4)}
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`,
);

/**
 * Moves a live session's expiry when it is before `movedBefore`. ARGV:
 * expiry, movedBefore, now, indexed user, '1' when the store keeps a user
 * index. Replies 1 (moved) or 0 (gone, or no need); with an index, `{user}`
 * when the session belongs to a user whose index entry was not raised
 * first: the caller raises it and asks again.
 */
export const EXTEND_EXPIRY = script(
  'extend-expiry',
  `${readLive(['data', 'v', 'e', 'u'], 'ARGV[3]', '0')}
if cur[3] and tonumber(cur[3]) >= tonumber(ARGV[2]) then return 0 end
if ARGV[5] == '1' and cur[4] and cur[4] ~= ARGV[4] then return {cur[4]} end
redis.call('HSET', KEYS[1], 'e', ARGV[1], 's', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`,
);

/**
 * Takes a live session's lock for a `pessimistic` merge. ARGV: token, lease
 * ms, now. Replies `{1, data, version, expiry, user}` when taken, `{0}` when
 * another writer holds it, `{-1}` when the session is gone. A lock whose
 * lease ran out (its holder died) is taken over.
 */
export const LOCK = script(
  'lock',
  `${readLive(['data', 'v', 'e', 'u', 'lk', 'lt'], 'ARGV[3]', '{-1}')}
${SERVER_MS}
if cur[5] and cur[5] ~= ARGV[1] and tonumber(cur[6]) > server_ms then return {0} end
redis.call('HSET', KEYS[1], 'lk', ARGV[1], 'lt', string.format('%.0f', server_ms + tonumber(ARGV[2])))
return {1, cur[1], cur[2], cur[3], cur[4]}`,
);

/**
 * Writes a merge made under the lock and releases it. ARGV: token, the
 * version locked ('' for none), data, expiry, user op, user id, now. Replies 1
 * when written, -1 when the session is gone (destroyed meanwhile), 0 when
 * the lock was lost or the version moved on past it (run the merge again).
 */
export const WRITE_LOCKED = script(
  'write-locked',
  `local cur = redis.call('HMGET', KEYS[1], 'lk', 'v', 'data')
if cur[2] == false and cur[3] == false then return -1 end
if cur[1] ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'lk', 'lt')
if (cur[2] or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'e', ARGV[4], 's', ARGV[7])
${writeUser(5)}
if cur[2] then redis.call('HINCRBY', KEYS[1], 'v', 1) else redis.call('HSET', KEYS[1], 'v', '1') end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1`,
);

/** Releases a lock without writing (the merge threw). ARGV: token. */
export const UNLOCK = script(
  'unlock',
  `if redis.call('HGET', KEYS[1], 'lk') == ARGV[1] then redis.call('HDEL', KEYS[1], 'lk', 'lt') end
return 1`,
);

/** Deletes a session if it (still) belongs to the user. ARGV: user id. Replies 1 when deleted. */
export const DESTROY_IF_USER = script(
  'destroy-if-user',
  `if redis.call('HGET', KEYS[1], 'u') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
);

/**
 * Records a session in its user's index (a sorted set in the user's own
 * slot), scored by the session's expiry, BEFORE the session is written with
 * that user and expiry. ARGV: session key, expiry, now. An entry's score
 * only rises (GT); entries whose score passed are pruned (their session
 * expired with them), and the index key lives as long as its last entry.
 */
export const INDEX_USER = script(
  'index-user',
  `redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1`,
);

/**
 * Writes a copy of a session under a new key (a rotation's first step: the old key is in another slot). ARGV:
 * expiry, then the fields and their values. Replaces whatever a previous attempt of the same rotation wrote there.
 */
export const COPY_SESSION = script(
  'copy-session',
  `redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`,
);

/**
 * Deletes a session only if its version is still the one copied (a rotation's last step). ARGV: version. Replies 1
 * when deleted, -1 when the session is gone, 0 when a write moved it on since (copy it again).
 */
export const DESTROY_IF_VERSION = script(
  'destroy-if-version',
  `local v = redis.call('HGET', KEYS[1], 'v')
if v == false and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if (v or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`,
);

/** Every script, loaded on each master when the store is prepared. */
export const ALL_SCRIPTS: readonly RedisScript[] = [
  COMPARE_AND_SET,
  UPSERT,
  INSERT_IF_ABSENT,
  EXTEND_EXPIRY,
  LOCK,
  WRITE_LOCKED,
  UNLOCK,
  DESTROY_IF_USER,
  INDEX_USER,
  COPY_SESSION,
  DESTROY_IF_VERSION,
];
