/** PostgreSQL (driver `pg`), as the registry lists it. Its code and driver load only when a store opens it. */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';
import { postgresHostList } from './postgres-hosts.js';
import { POSTGRES_OPTIONS, type PostgresOptions, type PostgresSettings } from './postgres-options.js';

export const postgres: BackendDescriptor<PostgresOptions, PostgresSettings> = {
  name: 'postgres',
  storage: 'sessions table',
  aliases: ['postgresql', 'pg'],
  schemes: ['postgres', 'postgresql'],
  options: POSTGRES_OPTIONS,
  fromUrl(url) {
    let hosts: ReturnType<typeof postgresHostList>['hosts'];
    try {
      ({ hosts } = postgresHostList(url));
    } catch (error) {
      throw invalidOption('url', (error as Error).message);
    }
    // Several hosts (libpq's postgres://user@db1:5432,db2:5432/app) are checked one URL each.
    if (!hosts.every((host) => URL.canParse(host.url))) {
      throw invalidOption('url', 'is not a URL (expected postgres://user@host:5432/database, or several hosts: postgres://user@db1:5432,db2:5432/database)');
    }
    return { dialect: 'postgres', url };
  },
  fromParameters: (parameters) => ({ dialect: 'postgres', parameters }),
  // pg pools and clients answer `query`; mysql2's objects have `getConnection`, `beginTransaction` or `promise` besides.
  recognises: (connection) => 'query' in connection && !('getConnection' in connection || 'beginTransaction' in connection || 'promise' in connection),
  async open(settings) {
    const [{ PostgresDriver }, { postgresDialect }, { SqlSessionBackend }] = await Promise.all([
      import('./postgres-driver.js'),
      import('./postgres-dialect.js'),
      import('../sql/sql-backend.js'),
    ]);
    return new SqlSessionBackend(postgresDialect, await PostgresDriver.open(settings), settings.table);
  },
};
