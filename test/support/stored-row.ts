/**
 * A stored session read past the store, from its text. A module of its own:
 * the connectors use it, and backends.ts loads the connectors.
 */
import type { JsonObject } from '../../src/index.js';
import { applyChanges } from '../../src/backends/sql/pending-changes.js';
import type { StoredRow } from './backends.js';

/**
 * A stored session from its text: parsed when it is JSON (a corrupt row's
 * text stays readable). With pending changes (a table with a `changes`
 * column), the session they make: their deltas applied to the text, as a
 * reader of the table must.
 */
export function storedRow(text: string | null, changes?: string | null): StoredRow {
  let data: JsonObject | undefined;
  try {
    data = text === null ? undefined : (JSON.parse(text) as JsonObject);
  } catch {
    data = undefined;
  }
  if (data === undefined || changes === null || changes === undefined) return { text, data };
  const session = applyChanges(data, changes);
  return { text: JSON.stringify(session), data: session };
}
