/** MySQL and MariaDB (driver `mysql2`), as the registry lists them. Its code and driver load only when a store opens it. */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';

export const mysql: BackendDescriptor = {
  name: 'mysql',
  storage: 'sessions table',
  aliases: ['mysql2', 'mariadb'],
  schemes: ['mysql', 'mariadb'],
  fromUrl(url, scheme) {
    if (!URL.canParse(url)) throw invalidOption('url', 'is not a URL (expected mysql://user@host:3306/database)');
    // mysql2 reads mysql: URLs only.
    return { dialect: 'mysql', url: scheme === 'mariadb' ? `mysql:${url.slice('mariadb:'.length)}` : url };
  },
  fromParameters: (parameters) => ({ dialect: 'mysql', parameters }),
  recognises: (connection) => 'getConnection' in connection || 'beginTransaction' in connection || 'promise' in connection,
  async open(settings) {
    const [{ MysqlDriver }, { mysqlDialect }, { SqlSessionBackend }] = await Promise.all([
      import('./mysql-driver.js'),
      import('./mysql-dialect.js'),
      import('../sql/sql-backend.js'),
    ]);
    return new SqlSessionBackend(mysqlDialect, await MysqlDriver.open(settings), settings.table);
  },
};
