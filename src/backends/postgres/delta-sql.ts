import type { ObjectPatch } from '../../core/delta.js';
import type { JsonObject } from '../../core/json.js';
import { join, raw, shared, sql, type Sql } from '../sql/statement.js';

/** jsonb_build_object takes at most 100 arguments: 50 key/value pairs. */
const PAIRS_PER_CALL = 50;

/**
 * A jsonb expression that applies `delta` to `source` inside PostgreSQL, so
 * the merge happens against the latest row in the very statement that writes
 * it. Keys and values are parameters; only fixed SQL enters the text.
 *
 * An object patch turns whatever is at its path into an object (`{}` when it
 * is not one), removes the unset keys (`-` text[]), adds the keys it replaces
 * whole as one jsonb object (`||`), and recurses into nested object patches
 * (`|| jsonb_build_object(key, ...)`). The common save, a few top-level keys
 * and the cookie, is one `||` of one parameter.
 */
export function deltaExpression(delta: ObjectPatch, source: Sql): Sql {
  const build = (patch: ObjectPatch, at: Sql): Sql => {
    let expression = sql`(CASE WHEN jsonb_typeof(${at}) = 'object' THEN ${at} ELSE '{}'::jsonb END)`;
    if (patch.unset.length > 0) expression = sql`(${expression} - ${patch.unset}::text[])`;
    const replaced: JsonObject = {};
    let replacedAny = false;
    const nested: [string, ObjectPatch][] = [];
    for (const [key, child] of patch.set) {
      if (child.kind === 'value') {
        replaced[key] = child.value;
        replacedAny = true;
      } else {
        nested.push([key, child]);
      }
    }
    if (replacedAny) expression = sql`(${expression} || ${JSON.stringify(replaced)}::jsonb)`;
    for (let start = 0; start < nested.length; start += PAIRS_PER_CALL) {
      const pairs = nested.slice(start, start + PAIRS_PER_CALL).map(([key, child]) => {
        // One parameter, used twice: as the name and to reach the current value.
        const name = sql`${shared(key)}::text`;
        return sql`${name}, ${build(child, sql`(${at} -> ${name})`)}`;
      });
      expression = sql`(${expression} || jsonb_build_object(${join(pairs)}))`;
    }
    return expression;
  };
  return build(delta, source);
}

/** The store's own data column, read as jsonb whatever its declared type. */
export function asJsonb(dataType: string): Sql {
  return raw(dataType === 'jsonb' ? 'data' : 'data::jsonb');
}
