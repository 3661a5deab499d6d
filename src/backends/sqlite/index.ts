/** SQLite (driver `better-sqlite3`), as the registry lists it. Its code and driver load only when a store opens it. */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';

export const sqlite: BackendDescriptor = {
  name: 'sqlite',
  storage: 'sessions table',
  aliases: ['sqlite3'],
  schemes: ['sqlite'],
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
