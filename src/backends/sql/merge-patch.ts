import type { ObjectPatch } from '../../core/delta.js';
import { isJsonObject, type JsonObject } from '../../core/json.js';

/**
 * A delta in the form that MySQL/MariaDB and SQLite can apply in one
 * statement with their own JSON functions:
 * `JSON_SET(JSON_MERGE_PATCH(data, mergePatch), path, value, ...)` or
 * `json_set(json_patch(data, mergePatch), path, json(value), ...)`.
 *
 * A merge patch (RFC 7396) already has our merge rule: objects merged by
 * key, anything else replaced, `null` deletes. It cannot *store* a null or
 * replace an object whole, so those values go through a set by path after
 * the merge (the merge has made their parents objects by then).
 */
export interface MergePatchPlan {
  /** RFC 7396 merge patch as JSON text. */
  readonly mergePatch: string;
  /** JSON paths and JSON texts to set after the merge. */
  readonly replacements: readonly { readonly path: string; readonly json: string }[];
}

/** A key both path syntaxes can address inside a quoted member: no quote, no backslash. */
const PATH_SAFE_KEY = /^[^"\\]*$/;

/**
 * Plans the statement; `null` when a value that must be set by path sits
 * under a key that the path syntax cannot express (a quote or a backslash):
 * the caller then merges another way, with the same result.
 */
export function planMergePatch(delta: ObjectPatch): MergePatchPlan | null {
  const replacements: { path: string; json: string }[] = [];
  let expressible = true;
  // `path` is null once a key on the way cannot be written in the path syntax.
  const build = (patch: ObjectPatch, path: string | null): JsonObject => {
    const document: JsonObject = {};
    for (const key of patch.unset) document[key] = null;
    for (const [key, child] of patch.set) {
      const childPath = path !== null && PATH_SAFE_KEY.test(key) ? `${path}."${key}"` : null;
      if (child.kind === 'object') {
        document[key] = build(child, childPath);
      } else if (child.value === null || isJsonObject(child.value)) {
        if (childPath === null) expressible = false;
        else replacements.push({ path: childPath, json: JSON.stringify(child.value) });
      } else {
        document[key] = child.value;
      }
    }
    return document;
  };
  const document = build(delta, '$');
  return expressible ? { mergePatch: JSON.stringify(document), replacements } : null;
}
