/**
 * The essence of an object and its diff-base, as Kopf keeps them
 * (`kopf/_cogs/configs/diffbase.py`): the last handled essence is stored as compact JSON plus
 * a newline in `<prefix>/last-handled-configuration`; an update is a change of essence.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import {
  cloneJson,
  dumpJson,
  keysOf,
  parseJson,
  setKey,
  setKeyOrder,
  type JsonObject,
  type JsonValue,
} from '../util/json.ts';
import { bodyAnnotations, isObject, readRecord, storeMarker, writeRecord } from './annotations.ts';
import { makeKeys, markedPrefixes, type KeyConvention } from './keys.ts';
import { patchAnnotations, patchStatus, removeField, type Patch } from './patch.ts';

const DIFFBASE_NAME = 'last-handled-configuration';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Where the diff-base goes when it does not fit: Kopf's `StatusDiffBaseStorage` default. */
export const DIFFBASE_STATUS_FIELD = ['status', 'kopf', DIFFBASE_NAME] as const;

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
 * progress storage `clear()` does before diffing; and without the diff-base's status copy, as
 * Kopf's `StatusDiffBaseStorage.build()` removes it.
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
  // The diff-base's own status copy (oversized objects), should a field handler watch `status`.
  removeField(cleared, DIFFBASE_STATUS_FIELD);
  removeEmptyStanzas(cleared);
  return cleared;
}

// ---- Oversized objects: the diff-base where the annotations cannot take it ----
//
// Kubernetes limits all annotations of an object together to 256 KiB (keys and values, in
// bytes). A big spec applied with `kubectl apply` already has a copy in kubectl's last-applied
// annotation; the diff-base would be a second one. When the annotations with the diff-base
// would exceed the budget below, it goes to `status.kopf.last-handled-configuration` (Kopf's
// `StatusDiffBaseStorage` field and format) instead, with a digest of it in
// `<prefix>/last-handled-digest`. The digest is written last (with the progress records), so
// it also tells whether the status copy is the committed one; where the status does not
// persist (no status at all, or a schema that prunes the field), the digest alone tells
// whether the object changed since it was handled, though not what the old state was.

/** Kubernetes' limit on the annotations of an object together, keys and values, in bytes. */
export const ANNOTATIONS_LIMIT = 262_144;
/**
 * The diff-base stays in the annotations while all annotations with it take at most this: half
 * of the limit, leaving the rest for kubectl's last-applied copy to grow at the next apply
 * (which would fail otherwise, because of our copy) and for other controllers.
 */
export const DIFFBASE_ANNOTATIONS_BUDGET = ANNOTATIONS_LIMIT / 2;
/**
 * A bigger diff-base does not go to the status either, only its digest: the object with a
 * second copy of itself would approach etcd's limit on an object (1.5 MiB by default).
 */
export const DIFFBASE_STATUS_BUDGET = 512 * 1024;
const DIGEST_NAME = 'last-handled-digest';

export type DiffBaseLocation = 'annotations' | 'status' | 'digest';

/** A diff-base as found on an object. */
export interface StoredDiffBase {
  location: DiffBaseLocation;
  /** The stored essence; absent when only its digest is kept (`location: 'digest'`). */
  essence?: JsonObject;
  /** The digest annotation, when present. */
  digest?: string;
}

/** The digest of an essence as the digest annotation keeps it: `sha256:<hex>` of its compact JSON. */
export function diffBaseDigest(essence: JsonObject): string {
  return digestOfText(dumpJson(essence));
}

function digestOfText(text: string): string {
  return `sha256:${bytesToHex(sha256(utf8ToBytes(text)))}`;
}

function statusCopy(body: JsonObject): string | undefined {
  const status = body.status;
  const kopf = isObject(status) ? status.kopf : undefined;
  const copy = isObject(kopf) ? kopf[DIFFBASE_NAME] : undefined;
  return typeof copy === 'string' ? copy : undefined;
}

function storedDigest(body: JsonObject, convention: KeyConvention): string | undefined {
  const annotations = bodyAnnotations(body);
  for (const key of makeKeys(convention, DIGEST_NAME, body)) {
    const value = annotations[key];
    if (typeof value === 'string' && value) return value;
  }
  return undefined;
}

/**
 * The diff-base wherever it is: the annotation (Kopf's own place) first; then the status copy,
 * unless a digest annotation disagrees with it (a status patch whose main patch failed); then
 * the digest alone. Undefined for an object never handled.
 */
export function fetchStoredDiffBase(body: JsonObject, convention: KeyConvention): StoredDiffBase | undefined {
  const essence = fetchDiffBase(body, convention);
  if (essence) return { location: 'annotations', essence };
  const digest = storedDigest(body, convention);
  const copy = statusCopy(body);
  if (copy !== undefined && (digest === undefined || digest === digestOfText(copy))) {
    const decoded = parseJson(copy);
    if (isObject(decoded)) return { location: 'status', essence: decoded, digest };
  }
  return digest === undefined ? undefined : { location: 'digest', digest };
}

/**
 * The old essence to compare with `newEssence` (both as cleared by {@link clearEssence}). With
 * only a digest: `newEssence` itself when the digests agree (nothing changed), otherwise
 * undefined (changed, from an unknown state).
 */
export function oldEssenceOf(
  stored: StoredDiffBase | undefined,
  newEssence: JsonObject,
  convention: KeyConvention,
): JsonObject | undefined {
  if (!stored) return undefined;
  if (stored.essence) return clearEssence(stored.essence, convention);
  return stored.digest === diffBaseDigest(newEssence) ? newEssence : undefined;
}

/** The bytes that annotations take against Kubernetes' limit: keys and values, UTF-8. */
export function annotationsSize(annotations: Readonly<Record<string, JsonValue | undefined>>): number {
  let size = 0;
  for (const [key, value] of Object.entries(annotations))
    if (typeof value === 'string') size += Buffer.byteLength(key) + Buffer.byteLength(value);
  return size;
}

/** What {@link storeDiffBaseFitting} did. */
export interface DiffBaseStored {
  location: DiffBaseLocation;
  /** The size of the annotations with the diff-base among them, in bytes. */
  annotationsSize: number;
  /** The diff-base's own size (its annotation value), in bytes. */
  diffBaseSize: number;
  /** Where it was before: undefined for an object never handled. */
  previous?: DiffBaseLocation;
}

/**
 * Stores the diff-base in the annotation, as Kopf does, when the annotations with it (after the
 * patch) stay within {@link DIFFBASE_ANNOTATIONS_BUDGET}; otherwise in the status field with a
 * digest annotation, or only the digest when it exceeds {@link DIFFBASE_STATUS_BUDGET} too.
 * Whatever the other places held is removed in the same patch.
 */
export function storeDiffBaseFitting(
  body: JsonObject,
  patch: Patch,
  essence: JsonObject,
  convention: KeyConvention,
): DiffBaseStored {
  const encoded = encodeDiffBase(essence);
  const diffBaseKeys = makeKeys(convention, DIFFBASE_NAME, body);
  const digestKeys = makeKeys(convention, DIGEST_NAME, body);
  const annotations: Record<string, JsonValue> = { ...bodyAnnotations(body) };
  const patched = isObject(patch.metadata) ? patch.metadata.annotations : undefined;
  for (const [key, value] of Object.entries(isObject(patched) ? patched : {})) {
    if (value === null) delete annotations[key];
    else annotations[key] = value;
  }
  for (const key of digestKeys) delete annotations[key];
  for (const key of diffBaseKeys) annotations[key] = encoded;
  const size = annotationsSize(annotations);
  const previous = fetchStoredDiffBase(body, convention)?.location;
  const present = bodyAnnotations(body);
  const result = { annotationsSize: size, diffBaseSize: Buffer.byteLength(encoded), previous };

  if (size <= DIFFBASE_ANNOTATIONS_BUDGET) {
    storeDiffBase(body, patch, essence, convention);
    if (statusCopy(body) !== undefined) setStatusCopy(patch, null);
    for (const key of digestKeys) if (key in present) patchAnnotations(patch)[key] = null;
    return { location: 'annotations', ...result };
  }
  const json = dumpJson(essence);
  const inStatus = Buffer.byteLength(json) <= DIFFBASE_STATUS_BUDGET;
  if (inStatus) setStatusCopy(patch, json);
  else if (statusCopy(body) !== undefined) setStatusCopy(patch, null);
  const digest = digestOfText(json);
  const own = patchAnnotations(patch);
  for (const key of digestKeys) own[key] = digest;
  for (const key of diffBaseKeys) if (key in present) own[key] = null;
  storeMarker(body, patch, convention);
  return { location: inStatus ? 'status' : 'digest', ...result };
}

function setStatusCopy(patch: Patch, value: string | null): void {
  const status = patchStatus(patch);
  const kopf = isObject(status.kopf) ? status.kopf : (status.kopf = {});
  kopf[DIFFBASE_NAME] = value;
}
