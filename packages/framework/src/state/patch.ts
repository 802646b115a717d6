/**
 * The one JSON merge patch that a processing cycle accumulates and sends (annotations,
 * status, results). Kept as plain JSON; these helpers only create stanzas on demand.
 */
import type { JsonObject, JsonValue } from '../util/json.ts';

export type Patch = JsonObject;

function stanza(parent: JsonObject, key: string): JsonObject {
  const existing = parent[key];
  if (existing !== null && typeof existing === 'object' && !Array.isArray(existing)) return existing;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

/** The patch's `metadata.annotations`, created when absent. */
export function patchAnnotations(patch: Patch): Record<string, JsonValue> {
  return stanza(stanza(patch, 'metadata'), 'annotations');
}

/** The patch's `status`, created when absent. */
export function patchStatus(patch: Patch): JsonObject {
  return stanza(patch, 'status');
}

/** True when the patch would change nothing. */
export function isEmptyPatch(patch: Patch): boolean {
  return Object.keys(patch).length === 0;
}

/**
 * Removes a nested field and every parent left as an empty object by that, like Kopf's
 * `dicts.remove` (an absent field is fine; an empty parent on its path is removed too).
 */
export function removeField(obj: JsonObject, path: readonly string[]): void {
  const [head, ...rest] = path;
  if (head === undefined || !(head in obj)) return;
  if (rest.length === 0) {
    delete obj[head];
    return;
  }
  const child = obj[head];
  if (child === null || typeof child !== 'object' || Array.isArray(child)) return;
  removeField(child, rest);
  if (Object.keys(child).length === 0) delete obj[head];
}
