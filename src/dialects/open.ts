import type { ResolvedOptions } from '../core/options.js';
import type { SessionTable } from './dialect.js';

/** Opens the store's own connection (pool or file), or adopts the application's, for the dialect in use. */
export async function openSessionTable(options: ResolvedOptions): Promise<SessionTable> {
  const { target } = options;
  switch (target.dialect) {
    case 'postgres': {
      const { openPostgresTable } = await import('./postgres/postgres-table.js');
      return openPostgresTable(target, options);
    }
    case 'mysql': {
      const { openMysqlTable } = await import('./mysql/mysql-table.js');
      return openMysqlTable(target, options);
    }
    case 'sqlite': {
      const { openSqliteTable } = await import('./sqlite/sqlite-table.js');
      return openSqliteTable(target, options);
    }
  }
}
