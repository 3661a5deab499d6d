import type { ObjectPatch } from '../../core/delta.js';
import type { JsonObject } from '../../core/json.js';

/** jsonb_build_object takes at most 100 arguments: 50 key/value pairs. */
const PAIRS_PER_CALL = 50;

/**
 * Builds a jsonb expression that applies `delta` to `source` inside
 * PostgreSQL, so the merge happens against the latest row in the very
 * statement that writes it. Keys and values travel as parameters (appended to
 * `params`); only `$n` placeholders and fixed SQL enter the text.
 *
 * An object patch turns whatever is at its path into an object (`{}` when it
 * is not one), removes the unset keys (`-` text[]), adds the keys it replaces
 * whole as one jsonb object (`||`), and recurses into nested object patches
 * (`|| jsonb_build_object(key, ...)`). The common save, a few top-level keys
 * and the cookie, is one `||` of one parameter.
 */
export function deltaExpression(delta: ObjectPatch, source: string, params: unknown[]): string {
  const placeholder = (value: unknown, cast: string): string => {
    params.push(value);
    return `$${params.length}::${cast}`;
  };
  const build = (patch: ObjectPatch, at: string): string => {
    let sql = `(CASE WHEN jsonb_typeof(${at}) = 'object' THEN ${at} ELSE '{}'::jsonb END)`;
    if (patch.unset.length > 0) sql = `(${sql} - ${placeholder(patch.unset, 'text[]')})`;
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
    if (replacedAny) sql = `(${sql} || ${placeholder(JSON.stringify(replaced), 'jsonb')})`;
    for (let start = 0; start < nested.length; start += PAIRS_PER_CALL) {
      const pairs = nested.slice(start, start + PAIRS_PER_CALL).map(([key, child]) => {
        const keyParam = placeholder(key, 'text');
        return `${keyParam}, ${build(child, `(${at} -> ${keyParam})`)}`;
      });
      sql = `(${sql} || jsonb_build_object(${pairs.join(', ')}))`;
    }
    return sql;
  };
  return build(delta, source);
}
