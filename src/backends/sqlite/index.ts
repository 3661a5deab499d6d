/** SQLite (driver `better-sqlite3`), as the registry lists it. Its code and driver load only when a store opens it. */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';
import { SQLITE_OPTIONS, type SqliteOptions, type SqliteSettings } from './sqlite-options.js';

export const sqlite: BackendDescriptor<SqliteOptions, SqliteSettings> = {
  name: 'sqlite',
  storage: 'sessions table',
  aliases: ['sqlite3'],
  schemes: ['sqlite'],
  options: SQLITE_OPTIONS,
  fromUrl(url) {
    // sqlite:./sessions.db, sqlite:///abs/path.db, sqlite::memory:
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename.length === 0) throw invalidOption('url', 'names no SQLite file (use sqlite:./sessions.db or sqlite::memory:)');
    return { dialect: 'sqlite', filename };
  },
  fromParameters: ({ database }) => ({ dialect: 'sqlite', filename: database }),
  recognises: (connection) => 'pragma' in connection && 'prepare' in connection,
  async open(settings) {
    const [{ SqliteDriver }, { sqliteDialect }, { SqlSessionBackend }] = await Promise.all([
      import('./sqlite-driver.js'),
      import('./sqlite-dialect.js'),
      import('../sql/sql-backend.js'),
    ]);
    return new SqlSessionBackend(sqliteDialect, await SqliteDriver.open(settings), settings.table);
  },
};
