/**
 * The options only Redis reads, declared beside its client through the same
 * tables as the shared ones. The composition root gathers them with every
 * other backend's; nothing outside this folder names them.
 */
import { parseNumber, rule, seconds, type OptionTable, type ResolvedTable } from '../../core/option-table.js';
import type { BackendOptionSet } from '../backend-descriptor.js';

/** Options of Redis alone. */
export interface RedisOptions {
  /**
   * Replicas that must have received a write before the store acknowledges
   * it: after each write (a save, a touch, a destroy) the store sends
   * `WAIT waitReplicas waitTimeout` on the same connection. Fewer replicas
   * in time fail the call with `ERR_UNAVAILABLE` (the write stays on the
   * master, not known to survive its loss). With Sentinel (or any failover
   * that promotes the most advanced replica), a write acknowledged with
   * `waitReplicas: 1` survives the master's loss; keep more replicas than
   * this number, or saves fail while one is away. `0` acknowledges a write
   * as soon as the master has it (asynchronous replication).
   * @default 0
   */
  waitReplicas?: number;
  /**
   * Seconds `WAIT` may take for the replicas of `waitReplicas` to confirm a
   * write; keep it under `connectTimeout`, every command's deadline.
   * @default 1
   */
  waitTimeout?: number;
}

/** Every option of {@link RedisOptions}: names, checks, defaults. */
export const REDIS_OPTION_TABLE = {
  waitReplicas: rule({
    parse: (value, name) => parseNumber(value, name, { integer: true, zero: true, max: 100 }),
    fallback: 0,
    defaultText: '`0`',
    summary: 'Redis: replicas that must confirm each write (`WAIT`) before a save is acknowledged; `0` does not wait',
  }),
  waitTimeout: rule({
    as: 'waitTimeoutMs',
    parse: seconds(),
    fallback: 1000,
    defaultText: '`1`',
    summary: 'Redis: seconds `WAIT` may take for `waitReplicas` to confirm a write, else the call fails with `ERR_UNAVAILABLE`',
  }),
} as const satisfies OptionTable<RedisOptions>;

/** Redis's own options after validation, which its client reads. */
export type RedisSettings = ResolvedTable<typeof REDIS_OPTION_TABLE>;

/** Redis's options, as its descriptor brings them to the registry. */
export const REDIS_OPTIONS: BackendOptionSet<RedisOptions, RedisSettings> = { table: REDIS_OPTION_TABLE, owner: 'Redis' };
