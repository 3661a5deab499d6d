/**
 * The composition root: the core store wired to the backend its options
 * name, through the registry. The core itself never names a backend.
 */
import type { BackendOpener } from './core/backend.js';
import type { SessionSource } from './core/session-source.js';
import { SessionStoreCore } from './core/session-store.js';
import type { SessionFormat } from './core/session-format.js';
import { backendNamed } from './backends/registry.js';
import { lazyPeer } from './migrate/peers.js';
import { resolveOptions, type ResolvedOptions, type SessionStoreOptions } from './options.js';

/** How an adapter sets the store up, besides its options. */
export interface SessionStoreSetup {
  /**
   * The adapter's session format: which keys are its bookkeeping and where
   * it keeps the expiry.
   * @default no bookkeeping; a session expires `ttl` seconds after its last write unless a call says otherwise
   */
  format?: SessionFormat;
  /**
   * Another store that a session this one does not have is read through
   * from, copied in and deleted from with it: what `migrateFrom` opens for
   * the peer stores it knows, for a store of another kind.
   * @default the store `migrateFrom` names, if any
   */
  source?: SessionSource;
}

/** Opens the backend named by validated options. */
function openerFor(options: ResolvedOptions): BackendOpener {
  const backend = backendNamed(options.target.dialect);
  if (backend === undefined) throw new Error(`no backend is registered as ${options.target.dialect}`);
  const { schema, name } = options.table;
  return { name: backend.name, storageName: backend.storage, collection: schema === undefined ? name : `${schema}.${name}`, open: () => backend.open(options) };
}

/**
 * A session store over PostgreSQL, MySQL/MariaDB or SQLite that saves each
 * request's delta into the latest stored session, so overlapping requests
 * never erase each other's changes.
 *
 * Promise-based and framework-neutral; the framework adapters
 * (`smart-session-store/express`, ...) wrap it.
 *
 * @example
 * ```ts
 * const store = new SessionStore({ url: 'sqlite:./sessions.db', createTable: true });
 * const session = (await store.open(sid)) ?? store.create(sid);
 * session.data.visits = Number(session.data.visits ?? 0) + 1;
 * await session.commit();
 * ```
 */
export class SessionStore extends SessionStoreCore {
  /** @internal The options as validated, with defaults filled in. */
  declare readonly options: ResolvedOptions;

  /** @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option. */
  constructor(options: SessionStoreOptions, setup: SessionStoreSetup = {}) {
    const resolved = resolveOptions(options);
    const { migrateFrom } = resolved;
    super({
      options: resolved,
      backend: openerFor(resolved),
      format: setup.format,
      source: setup.source ?? (migrateFrom === undefined ? undefined : lazyPeer(migrateFrom)),
    });
  }
}
