/**
 * The option that reads sessions through from another store while the
 * application moves over (`migrateFrom`), declared through the same tables
 * as every other option; the composition root gathers it.
 */
import { rule, type OptionTable, type ResolvedTable } from '../core/option-table.js';
import { checkPeerOptions, type PeerStoreOptions } from './peers.js';

/** Options of the move from another session store. */
export interface MigrateOptions {
  /**
   * The session store the application used before this one: a session id
   * this store does not have is looked up there once, copied in with its
   * expiry (once, however many requests ask for it at the same time) and
   * served, so nobody is logged out by the switch; a destroyed session is
   * deleted there too (first), so a logout cannot come back from there, and
   * so are a user's sessions by `destroyByUser` (a read of the whole store,
   * which cannot be searched by user).
   * The other store is opened on first use, with a pool of its own
   * (`poolSize`, 2 connections by default). Remove the option once the
   * longest session lifetime has passed since the switch (see
   * docs/switching.md).
   * @default undefined (no other store)
   */
  migrateFrom?: PeerStoreOptions | undefined;
}

/** Every option of {@link MigrateOptions}: names, checks, defaults. */
export const MIGRATE_OPTION_TABLE = {
  migrateFrom: rule<PeerStoreOptions | undefined>({
    parse: (value, name) => checkPeerOptions(value, name),
    fallback: undefined,
    defaultText: 'none',
    summary:
      '`{ store, url, table?, prefix? }`: the store used before (connect-pg-simple, express-mysql-session, connect-session-knex, better-sqlite3-session-store, connect-redis); a session missing here is read through from it and copied in, a destroy deletes it there too (see [switching.md](switching.md))',
  }),
} as const satisfies OptionTable<MigrateOptions>;

/** The move's options after validation. */
export type MigrateSettings = ResolvedTable<typeof MIGRATE_OPTION_TABLE>;
