/**
 * The essence of an object and its diff-base, as Kopf keeps them
 * (`kopf/_cogs/configs/diffbase.py`): the last handled essence is stored as compact JSON plus
 * a newline in `<prefix>/last-handled-configuration`; an update is a change of essence.
 */
import {
  cloneJson,
  dumpJson,
  keysOf,
  setKey,
  setKeyOrder,
  type JsonObject,
  type JsonValue,
} from '../util/json.ts';
import { isObject, readRecord, writeRecord } from './annotations.ts';
import { makeKeys, markedPrefixes, type KeyConvention } from './keys.ts';
import { removeField, type Patch } from './patch.ts';

const DIFFBASE_NAME = 'last-handled-configuration';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** A copy of `obj` without `drop`'s keys, in the source key order. */
function without(obj: JsonObject, drop: (key: string) => boolean): JsonObject {
  const out: JsonObject = {};
  const order: string[] = [];
  for (const key of keysOf(obj)) {
    if (drop(key)) continue;
    setKey(out, key, cloneJson(obj[key]!));
    order.push(key);
  }
  setKeyOrder(out, order);
  return out;
}

/** Python truthiness of a JSON value: empty stanzas are removed from an essence. */
function isEmpty(value: JsonValue | undefined): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '' || value === 0n)
    return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

/**
 * The essence of a body: everything but `apiVersion`, `kind`, `metadata` and `status`, with
 * `metadata.labels` and `metadata.annotations` put back, minus the annotations of Kopf-based
 * operators (ours included), kubectl's last-applied copy and our diff-base; empty stanzas
 * removed. `extraFields` (paths) are copied back from the body, e.g. for status field handlers.
 */
export function buildEssence(
  body: JsonObject,
  convention: KeyConvention,
  extraFields: readonly string[][] = [],
): JsonObject {
  const essence = without(
    body,
    (k) => k === 'apiVersion' || k === 'kind' || k === 'metadata' || k === 'status',
  );
  const metadata = body.metadata;
  if (isObject(metadata)) {
    const kept: JsonObject = {};
    if ('labels' in metadata) kept.labels = cloneJson(metadata.labels!);
    if ('annotations' in metadata) {
      const annotations = metadata.annotations!;
      if (isObject(annotations)) {
        const ignored = markedPrefixes(Object.keys(annotations));
        const ownKeys = new Set(makeKeys(convention, DIFFBASE_NAME, body));
        kept.annotations = without(annotations, (k) => {
          const slash = k.indexOf('/');
          return (slash >= 0 && ignored.has(k.slice(0, slash))) || k === LAST_APPLIED || ownKeys.has(k);
        });
      } else {
        kept.annotations = cloneJson(annotations);
      }
    }
    if (Object.keys(kept).length) essence.metadata = kept;
  }
  for (const path of extraFields) copyField(body, essence, path);
  removeEmptyStanzas(essence);
  return essence;
}

function copyField(src: JsonObject, dst: JsonObject, path: readonly string[]): void {
  let value: JsonValue | undefined = src;
  for (const part of path) {
    if (!isObject(value) || !(part in value)) return;
    value = value[part];
  }
  let target = dst;
  for (const part of path.slice(0, -1)) {
    const next = target[part];
    if (!isObject(next)) target[part] = {};
    target = target[part] as JsonObject;
  }
  target[path[path.length - 1]!] = cloneJson(value!);
}

function removeEmptyStanzas(essence: JsonObject): void {
  const metadata = essence.metadata;
  if (isObject(metadata)) {
    if ('annotations' in metadata && isEmpty(metadata.annotations)) delete metadata.annotations;
    if ('labels' in metadata && isEmpty(metadata.labels)) delete metadata.labels;
  }
  if ('metadata' in essence && isEmpty(essence.metadata)) delete essence.metadata;
  if ('status' in essence && isEmpty(essence.status)) delete essence.status;
}

/** The annotation value of an essence: compact JSON as Python writes it, and a newline. */
export function encodeDiffBase(essence: JsonObject): string {
  return `${dumpJson(essence)}\n`;
}

/** The last handled essence stored on the body, or undefined if none (a new object). */
export function fetchDiffBase(body: JsonObject, convention: KeyConvention): JsonObject | undefined {
  return readRecord(body, DIFFBASE_NAME, convention);
}

/** Adds the diff-base annotation(s) (and our prefix marker, if needed) to the patch. */
export function storeDiffBase(
  body: JsonObject,
  patch: Patch,
  essence: JsonObject,
  convention: KeyConvention,
): void {
  writeRecord(body, patch, DIFFBASE_NAME, encodeDiffBase(essence), convention);
}

/**
 * The essence as it is compared and stored: without annotations under our own prefix
 * (progress records and the like) and without the legacy `status.kopf.progress`, as Kopf's
 * progress storage `clear()` does before diffing.
 */
export function clearEssence(essence: JsonObject, convention: KeyConvention): JsonObject {
  const cleared = cloneJson(essence);
  const metadata = cleared.metadata;
  if (isObject(metadata) && isObject(metadata.annotations)) {
    const own = `${convention.prefix}/`;
    if (Object.keys(metadata.annotations).some((k) => k.startsWith(own))) {
      metadata.annotations = without(metadata.annotations, (k) => k.startsWith(own));
    }
  }
  removeField(cleared, ['status', 'kopf', 'progress']);
  removeEmptyStanzas(cleared);
  return cleared;
}
