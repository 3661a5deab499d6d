/**
 * Configuration files in the Prancer seed's shape:
 *
 * ```yaml
 * session:
 *   store:
 *     driver: Prancer::Session::Store::Database::Driver::Pg   # or pg, postgres, mysql, sqlite
 *     options:
 *       table: sessions
 *       database: test
 *       username: test
 *       password: test
 *       hostname: localhost
 *       port: 5432
 *       charset: utf8
 *       connection_check_threshold: 10
 *       expiration_timeout: 3600
 *       autopurge: 0
 * ```
 *
 * JSON files have the same shape. The seed's snake_case names and our
 * camelCase names are both accepted; the result is validated like any
 * options object.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveOptions, type SessionStoreOptions } from './options.js';
import { SessionStoreError } from './errors.js';

function configError(path: string, why: string, cause?: unknown): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `config ${path}: ${why}`, { cause });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Store options from a parsed configuration document: `session.store.driver`
 * and `session.store.options` (Prancer's shape), or `options` given directly
 * at the top level.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming what is wrong.
 */
export function optionsFromConfig(document: unknown, source = 'document'): SessionStoreOptions {
  if (!isRecord(document)) throw configError(source, 'must be a mapping with session.store.options');
  const session = document['session'];
  const store = isRecord(session) ? session['store'] : undefined;
  if (!isRecord(store)) throw configError(source, 'has no session.store section');
  const options = store['options'] ?? {};
  if (!isRecord(options)) throw configError(source, 'session.store.options must be a mapping');
  const driver = store['driver'];
  const merged: Record<string, unknown> = { ...options };
  if (driver !== undefined && merged['dialect'] === undefined && merged['driver'] === undefined) merged['dialect'] = driver;
  const result = merged as SessionStoreOptions;
  try {
    resolveOptions(result);
  } catch (error) {
    if (error instanceof SessionStoreError) throw configError(source, error.message, error);
    throw error;
  }
  return result;
}

/**
 * Reads a YAML (`.yml`, `.yaml`) or JSON file in the Prancer shape and returns
 * validated store options.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` when the file cannot be read or parsed, or holds an invalid option.
 */
export async function loadConfig(path: string): Promise<SessionStoreOptions> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw configError(path, `cannot be read: ${(error as Error).message}`, error);
  }
  let document: unknown;
  try {
    document = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw configError(path, `is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`, error);
  }
  return optionsFromConfig(document, path);
}
