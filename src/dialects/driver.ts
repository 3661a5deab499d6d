import { SessionStoreError } from '../errors.js';

/**
 * Loads an optional peer dependency. Drivers are imported only when a store
 * of that dialect is opened, so a user installs just the one they use.
 */
export async function importDriver(name: 'pg' | 'mysql2/promise' | 'better-sqlite3'): Promise<unknown> {
  let loaded: { default?: unknown };
  try {
    loaded = (await import(name)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      const pkg = name.split('/')[0] as string;
      throw new SessionStoreError('ERR_DRIVER_MISSING', `the driver "${pkg}" is not installed: npm install ${pkg}`, { cause: error });
    }
    throw error;
  }
  // CommonJS drivers arrive as the default export under ESM, and as the module itself under require.
  return loaded.default ?? loaded;
}

/** Double-quotes an identifier that has already been validated (PostgreSQL, SQLite). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * `, user_id = <placeholder>` with its parameter appended, or nothing when
 * the user id is left alone. `placeholder` gets the parameter's 1-based index.
 */
export function assignUserId(params: unknown[], userId: string | null | undefined, placeholder: (index: number) => string): string {
  if (userId === undefined) return '';
  params.push(userId);
  return `, user_id = ${placeholder(params.length)}`;
}
