/** MySQL and MariaDB (driver `mysql2`), as the registry lists them. Its code and driver load only when a store opens it. */
import type { BackendDescriptor } from '../backend-descriptor.js';
import { invalidOption } from '../../core/option-table.js';
import { splitHostList } from '../driver.js';
import { MYSQL_OPTIONS, type MysqlOptions, type MysqlSettings } from './mysql-options.js';

export const mysql: BackendDescriptor<MysqlOptions, MysqlSettings> = {
  name: 'mysql',
  storage: 'sessions table',
  acceptsHosts: true,
  aliases: ['mysql2', 'mariadb'],
  schemes: ['mysql', 'mariadb'],
  options: MYSQL_OPTIONS,
  fromUrl(url, scheme) {
    // mysql2 reads mysql: URLs only.
    const own = scheme === 'mariadb' ? `mysql:${url.slice('mariadb:'.length)}` : url;
    // A cluster's URL lists its nodes (mysql://user@db1:3306,db2:3306/database), which no URL parser takes: each
    // node's own URL must be one.
    const split = splitHostList(own);
    const nodes = split === undefined ? [own] : split.hosts.map((host) => split.urlFor(host));
    if (!nodes.every((node) => URL.canParse(node)) || (nodes.length > 1 && (split?.hosts.includes('') ?? false))) {
      throw invalidOption('url', 'is not a URL (expected mysql://user@host:3306/database, or mysql://user@host1:3306,host2:3306/database for a cluster)');
    }
    return { dialect: 'mysql', url: own };
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
