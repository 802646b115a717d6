/**
 * Reading and writing our JSON records in an object's annotations under all the keys Kopf
 * uses for a name (v2 first, then v1), with our prefix's `kopf-managed` marker.
 */
import { parseJson, type JsonObject, type JsonValue } from '../util/json.ts';
import { makeKeys, markerToStore, type KeyConvention } from './keys.ts';
import { patchAnnotations, type Patch } from './patch.ts';

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The body's `metadata.annotations` (empty when absent). */
export function bodyAnnotations(body: JsonObject): JsonObject {
  const metadata = body.metadata;
  return isObject(metadata) && isObject(metadata.annotations) ? metadata.annotations : {};
}

/** The first stored JSON object under the name's keys; a stored `null` falls through, as in Kopf. */
export function readRecord(
  body: JsonObject,
  name: string,
  convention: KeyConvention,
): JsonObject | undefined {
  const annotations = bodyAnnotations(body);
  for (const key of makeKeys(convention, name, body)) {
    const encoded = annotations[key];
    if (typeof encoded !== 'string') continue;
    const decoded = parseJson(encoded);
    if (isObject(decoded)) return decoded;
  }
  return undefined;
}

/** Writes `encoded` under all the name's keys, and our prefix marker if it is needed. */
export function writeRecord(
  body: JsonObject,
  patch: Patch,
  name: string,
  encoded: string,
  convention: KeyConvention,
): void {
  const annotations = patchAnnotations(patch);
  for (const key of makeKeys(convention, name, body)) annotations[key] = encoded;
  storeMarker(body, patch, convention);
}

/** Adds `<prefix>/kopf-managed: yes` to the patch when our prefix needs it and lacks it. */
export function storeMarker(body: JsonObject, patch: Patch, convention: KeyConvention): void {
  const annotations = patchAnnotations(patch);
  const marker = markerToStore(convention, bodyAnnotations(body), annotations);
  if (marker) annotations[marker[0]] = marker[1];
}
