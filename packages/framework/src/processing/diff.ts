/**
 * Kopf's diff of two essences (`kopf/_cogs/structs/diffs.py`): `[op, path, old, new]` items,
 * recursing into objects but not into arrays (an array changes as a whole).
 */
import type { DiffItem } from '../registry/context.ts';
import { isObject } from '../state/annotations.ts';
import type { JsonValue } from '../util/json.ts';

/** Python's `==` on JSON values: numbers by value (1 == 1.0 == 1n), objects by keys. */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    return typeof a === typeof b ? a === b : Number(a) === Number(b);
  }
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The changes from `a` to `b`; empty when equal. `undefined`/`null` mean absent. */
export function diff(a: JsonValue | undefined, b: JsonValue | undefined, path: string[] = []): DiffItem[] {
  const out: DiffItem[] = [];
  walk(a ?? null, b ?? null, path, out);
  return out;
}

function walk(a: JsonValue, b: JsonValue, path: string[], out: DiffItem[]): void {
  if (jsonEqual(a, b)) return;
  if (a === null) out.push(['add', path, null, b]);
  else if (b === null) out.push(['remove', path, a, null]);
  else if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(b)) if (!(key in a)) walk(null, b[key]!, [...path, key], out);
    for (const key of Object.keys(a)) if (!(key in b)) walk(a[key]!, null, [...path, key], out);
    for (const key of Object.keys(a)) if (key in b) walk(a[key]!, b[key]!, [...path, key], out);
  } else out.push(['change', path, a, b]);
}

/** The value at a dotted path (`spec.size`), or undefined. */
export function resolveField(obj: JsonValue | undefined, path: readonly string[]): JsonValue | undefined {
  let value = obj;
  for (const part of path) {
    if (!isObject(value)) return undefined;
    value = value[part];
  }
  return value;
}
