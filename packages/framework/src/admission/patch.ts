/**
 * Mutating handlers write a merge patch (RFC 7386), as other handlers do; the AdmissionReview
 * response needs a JSON patch (RFC 6902). This converts one into the other, relative to the
 * object the apiserver sent.
 */

export interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
function pointer(path: string[]): string {
  return path.map((key) => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** A merge patch's value as it ends up when nothing was there: nested `null`s removed. */
function withoutNulls(value: unknown): unknown {
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/**
 * The JSON patch operations that do to `target` what the merge patch `patch` would do: `null`
 * removes a key (if present), objects merge key by key, anything else (arrays included)
 * replaces or adds.
 */
export function mergePatchToJsonPatch(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
  path: string[] = [],
): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const here = [...path, key];
    const exists = Object.prototype.hasOwnProperty.call(target, key);
    const current = target[key];
    if (value === null) {
      if (exists) ops.push({ op: 'remove', path: pointer(here) });
    } else if (isObject(value) && isObject(current)) {
      ops.push(...mergePatchToJsonPatch(current, value, here));
    } else {
      ops.push({ op: exists ? 'replace' : 'add', path: pointer(here), value: withoutNulls(value) });
    }
  }
  return ops;
}
