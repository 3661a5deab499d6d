import type { ObjectPatch } from '../../core/delta.js';

/** jsonb_build_object takes at most 100 arguments: 50 key/value pairs. */
const PAIRS_PER_CALL = 50;

/**
 * Builds a jsonb expression that applies `delta` to `source` inside
 * PostgreSQL, so the merge happens against the latest row in the very
 * statement that writes it. Keys and values travel as parameters (appended to
 * `params`); only `$n` placeholders and fixed SQL enter the text.
 *
 * An object patch turns whatever is at its path into an object (`{}` when it
 * is not one), removes the unset keys (`-` text[]) and adds the set keys
 * (`||` jsonb_build_object), recursing for nested object patches.
 */
export function deltaExpression(delta: ObjectPatch, source: string, params: unknown[]): string {
  const placeholder = (value: unknown, cast: string): string => {
    params.push(value);
    return `$${params.length}::${cast}`;
  };
  const build = (patch: ObjectPatch, at: string): string => {
    let sql = `(CASE WHEN jsonb_typeof(${at}) = 'object' THEN ${at} ELSE '{}'::jsonb END)`;
    if (patch.unset.length > 0) sql = `(${sql} - ${placeholder(patch.unset, 'text[]')})`;
    const entries = [...patch.set];
    for (let start = 0; start < entries.length; start += PAIRS_PER_CALL) {
      const pairs = entries.slice(start, start + PAIRS_PER_CALL).map(([key, child]) => {
        const keyParam = placeholder(key, 'text');
        const value = child.kind === 'value' ? placeholder(JSON.stringify(child.value), 'jsonb') : build(child, `(${at} -> ${keyParam})`);
        return `${keyParam}, ${value}`;
      });
      sql = `(${sql} || jsonb_build_object(${pairs.join(', ')}))`;
    }
    return sql;
  };
  return build(delta, source);
}
