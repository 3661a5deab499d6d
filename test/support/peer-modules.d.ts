/** Just enough of the peer stores that ship no types, as test/support/peer-sources.ts uses them. */
declare module 'connect-pg-simple' {
  import type session from 'express-session';
  const connectPgSimple: (express: typeof session) => new (options: object) => session.Store;
  export default connectPgSimple;
}

declare module 'express-mysql-session' {
  import type session from 'express-session';
  interface MySQLStore extends session.Store {
    onReady(): Promise<void>;
    close(): Promise<void>;
  }
  const expressMysqlSession: (express: typeof session) => new (options: object) => MySQLStore;
  export default expressMysqlSession;
}

declare module 'better-sqlite3-session-store' {
  import type session from 'express-session';
  type SqliteStore = session.Store & { startInterval(): void };
  const betterSqlite3SessionStore: (express: typeof session) => { new (options: object): SqliteStore; prototype: SqliteStore };
  export default betterSqlite3SessionStore;
}
