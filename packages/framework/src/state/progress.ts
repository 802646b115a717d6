/**
 * Per-handler progress records, stored as Kopf stores them (`kopf/_cogs/configs/progress.py`,
 * its default `SmartProgressStorage`): one annotation per handler id, compact JSON of the
 * record with null fields left out; read also from the legacy `status.kopf.progress`, which
 * is purged but no longer written.
 */
import { dumpJson, type JsonObject, type JsonValue } from '../util/json.ts';
import { makeKeys, type KeyConvention } from './keys.ts';
import { bodyAnnotations, isObject, readRecord, storeMarker, writeRecord } from './annotations.ts';
import { patchAnnotations, removeField, type Patch } from './patch.ts';

/** A handler's persisted progress; times are Kopf-formatted strings (see `time.ts`). */
export interface ProgressRecord {
  started?: string | null;
  stopped?: string | null;
  delayed?: string | null;
  purpose?: string | null;
  retries?: number | null;
  success?: boolean | null;
  failure?: boolean | null;
  message?: string | null;
  subrefs?: string[] | null;
}

/** Kopf writes the fields in this order. */
const FIELDS = [
  'started',
  'stopped',
  'delayed',
  'purpose',
  'retries',
  'success',
  'failure',
  'message',
  'subrefs',
] as const;
const LEGACY_STATUS_PATH = ['kopf', 'progress'] as const;
const TOUCH_NAME = 'touch-dummy';

function legacyProgress(body: JsonObject): JsonObject {
  let value: JsonValue | undefined = body.status;
  for (const part of LEGACY_STATUS_PATH) value = isObject(value) ? value[part] : undefined;
  return isObject(value) ? value : {};
}

/** The annotation value of a record: its non-null fields, in Kopf's order. */
export function encodeProgress(record: ProgressRecord): string {
  const out: JsonObject = {};
  for (const field of FIELDS) {
    const value = record[field];
    if (value !== null && value !== undefined) out[field] = value;
  }
  return dumpJson(out);
}

/** The stored record of a handler, or undefined if it has none yet. */
export function fetchProgress(
  body: JsonObject,
  handlerId: string,
  convention: KeyConvention,
): ProgressRecord | undefined {
  const stored = readRecord(body, handlerId, convention);
  if (stored) return stored;
  const legacy = legacyProgress(body)[handlerId];
  return isObject(legacy) ? legacy : undefined;
}

/** Adds the record's annotation(s) (and our prefix marker, if needed) to the patch. */
export function storeProgress(
  body: JsonObject,
  patch: Patch,
  handlerId: string,
  record: ProgressRecord,
  convention: KeyConvention,
): void {
  writeRecord(body, patch, handlerId, encodeProgress(record), convention);
}

/** Removes a handler's record: nulls what the body has, drops what only the patch has. */
export function purgeProgress(
  body: JsonObject,
  patch: Patch,
  handlerId: string,
  convention: KeyConvention,
): void {
  const annotations = bodyAnnotations(body);
  for (const key of makeKeys(convention, handlerId, body)) {
    purgeField(patch, ['metadata', 'annotations', key], key in annotations);
  }
  purgeField(patch, ['status', ...LEGACY_STATUS_PATH, handlerId], handlerId in legacyProgress(body));
}

function purgeField(patch: Patch, path: readonly string[], inBody: boolean): void {
  if (!inBody) {
    // Only in the patch (if at all): remove it there, with the stanzas it leaves empty.
    removeField(patch, path);
    return;
  }
  let target = patch;
  for (const part of path.slice(0, -1)) {
    if (!isObject(target[part])) target[part] = {};
    target = target[part];
  }
  target[path[path.length - 1]!] = null;
}

/**
 * Changes the "touch" annotation to provoke a new watch event (e.g. to wake up delayed
 * handlers) unless it already holds `value`.
 */
export function touch(body: JsonObject, patch: Patch, value: string | null, convention: KeyConvention): void {
  const annotations = bodyAnnotations(body);
  for (const key of makeKeys(convention, TOUCH_NAME, body)) {
    if ((annotations[key] ?? null) === value) continue;
    patchAnnotations(patch)[key] = value;
    storeMarker(body, patch, convention);
  }
}
