/**
 * A stored session read past the store, from its text. A module of its own:
 * the connectors use it, and backends.ts loads the connectors.
 */
import type { JsonObject } from '../../src/index.js';
import type { StoredRow } from './backends.js';

/** A stored session from its text: parsed when it is JSON (a corrupt row's text stays readable). */
export function storedRow(text: string | null): StoredRow {
  let data: JsonObject | undefined;
  try {
    data = text === null ? undefined : (JSON.parse(text) as JsonObject);
  } catch {
    data = undefined;
  }
  return { text, data };
}
