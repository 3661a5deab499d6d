/**
 * The options only MySQL/MariaDB reads, declared beside its driver through
 * the same tables as the shared ones. The composition root gathers them with
 * every other backend's; nothing outside this folder names them.
 */
import { invalidOption, parseBoolean, rule, type OptionTable, type ResolvedTable } from '../../core/option-table.js';
import type { BackendOptionSet } from '../backend-descriptor.js';

/** Options of MySQL/MariaDB alone. */
export interface MysqlOptions {
  /**
   * On a Galera cluster: every read waits until the node it runs on has
   * applied every write the cluster had committed when the read began
   * (`SET SESSION wsrep_sync_wait = 1` on each new connection), so a request
   * sent to another node than the one it wrote through reads its own
   * writes. Costs a little latency per read; harmless on a server without
   * Galera (on MySQL, which lacks the setting, it is skipped).
   * @default false
   */
  syncWait?: boolean;
}

/** Every option of {@link MysqlOptions}: names, checks, defaults. */
export const MYSQL_OPTION_TABLE = {
  syncWait: rule({
    parse: parseBoolean,
    fallback: false,
    defaultText: '`false`',
    summary: "Galera: reads wait for the node to apply the cluster's earlier writes (`wsrep_sync_wait = 1`), so requests read their writes on any node",
  }),
} as const satisfies OptionTable<MysqlOptions>;

/** MySQL/MariaDB's own options after validation, which its driver reads. */
export type MysqlSettings = ResolvedTable<typeof MYSQL_OPTION_TABLE>;

/** MySQL/MariaDB's options, as its descriptor brings them to the registry. */
export const MYSQL_OPTIONS: BackendOptionSet<MysqlOptions, MysqlSettings> = {
  table: MYSQL_OPTION_TABLE,
  // syncWait, its one option, is a Galera setting.
  owner: 'MySQL/MariaDB (a Galera cluster)',
  check({ syncWait }, target, nameAsGiven) {
    // The store sets wsrep_sync_wait on the connections it opens; a pool handed over is the application's to set.
    if (syncWait && 'connection' in target) {
      throw invalidOption(nameAsGiven('syncWait'), 'cannot be given with "connection": set wsrep_sync_wait on the connections of your own pool');
    }
  },
};
