/**
 * Annotation keys as Kopf forms them (`kopf/_cogs/configs/conventions.py`): handler ids made
 * safe for annotation names, cut to 63 characters with a blake2b suffix, in "v1" (the prefix
 * counts in the 63) and "v2" (it does not) forms; and the `kopf-managed` marker that tells
 * other Kopf-based operators which annotations are operator state.
 */
import { blake2b } from '@noble/hashes/blake2.js';

/** Kopf's default prefix for annotations and the finalizer. */
export const DEFAULT_PREFIX = 'kopf.zalando.org';

/** Kopf's default finalizer, added to objects that have deletion handlers. */
export const DEFAULT_FINALIZER = `${DEFAULT_PREFIX}/KopfFinalizerMarker`;

const MAX_NAME = 63;
const MARKER_NAME = 'kopf-managed';
const KNOWN_PREFIXES = [DEFAULT_PREFIX];

/** How kopf-ts names its annotations: the prefix and whether "v1" keys are written too. */
export interface KeyConvention {
  readonly prefix: string;
  /** Also read and write Kopf's older "v1" keys (Kopf's default: true, during the transition). */
  readonly v1: boolean;
}

export function keyConvention(prefix: string = DEFAULT_PREFIX, v1 = true): KeyConvention {
  if (!prefix) throw new Error('The annotations prefix must not be empty.');
  if (prefix.length > 253 - MAX_NAME - 1) {
    throw new Error(
      `The annotations prefix '${prefix}' is too long: keys under it would exceed 253 characters.`,
    );
  }
  return { prefix, v1 };
}

// Python counts and slices code points; JavaScript strings count UTF-16 units.
const ASTRAL = /[\ud800-\udfff]/;
function pyLen(s: string): number {
  return ASTRAL.test(s) ? Array.from(s).length : s.length;
}
/** Python's `s[:end]`, negative `end` counting from the end as in Python. */
function pySliceTo(s: string, end: number): string {
  return ASTRAL.test(s) ? Array.from(s).slice(0, end).join('') : s.slice(0, end);
}

function safeName(key: string): string {
  return key.replaceAll('/', '.').replaceAll('<', '_').replaceAll('>', '_');
}

/** `-` + base64 (altchars `-.`) of a 4-byte blake2b digest of the key, trailing `=-.` stripped. */
export function keySuffix(key: string): string {
  const digest = blake2b(new TextEncoder().encode(key), { dkLen: 4 });
  const b64 = Buffer.from(digest).toString('base64').replaceAll('+', '-').replaceAll('/', '.');
  return `-${b64}`.replace(/[=\-.]+$/, '');
}

/** Kopf's "v1" key: the prefix counts in the 63-character limit. */
export function makeV1Key(convention: KeyConvention, key: string): string {
  const safe = safeName(key);
  const prefix = `${convention.prefix}/`;
  const suffix = pyLen(safe) <= MAX_NAME - prefix.length ? '' : keySuffix(safe);
  return `${prefix}${pySliceTo(safe, MAX_NAME - prefix.length - suffix.length)}${suffix}`;
}

/** Kopf's "v2" key: only the name after the prefix is limited to 63 characters. */
export function makeV2Key(convention: KeyConvention, key: string): string {
  const suffix = pyLen(key) > MAX_NAME ? keySuffix(key) : '';
  return `${convention.prefix}/${pySliceTo(safeName(key), Math.max(0, MAX_NAME - suffix.length))}${suffix}`;
}

/** What Kopf's collision evasion needs of a body: ReplicaSets owned by Deployments get `-ofDRS`. */
export interface KeyedBody {
  kind?: unknown;
  metadata?: { ownerReferences?: unknown };
}

function markKey(key: string, body?: KeyedBody): string {
  const owners = body?.metadata?.ownerReferences;
  const ownedByDeployment =
    Array.isArray(owners) && owners.some((o) => (o as { kind?: unknown })?.kind === 'Deployment');
  return body?.kind === 'ReplicaSet' && ownedByDeployment ? `${key}-ofDRS` : key;
}

/** All keys under which a record named `key` is stored: v2 first, then v1 if different. */
export function makeKeys(convention: KeyConvention, key: string, body?: KeyedBody): string[] {
  const marked = markKey(key, body);
  const v2 = makeV2Key(convention, marked);
  if (!convention.v1) return [v2];
  const v1 = makeV1Key(convention, marked);
  return v1 === v2 ? [v2] : [v2, v1];
}

/** Prefixes of annotations that belong to Kopf-based operators (ours and others'). */
export function markedPrefixes(annotationKeys: Iterable<string>): Set<string> {
  const prefixes = new Set<string>();
  for (const key of annotationKeys) {
    const slash = key.indexOf('/');
    if (slash < 0) continue;
    const prefix = key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (name === MARKER_NAME || KNOWN_PREFIXES.some((p) => prefix === p || prefix.endsWith(`.${p}`))) {
      prefixes.add(prefix);
    }
  }
  return prefixes;
}

/**
 * The marker annotation to add so that other operators recognise our prefix, or undefined
 * when none is needed (prefixes starting with `kopf.` are known, or the marker is there).
 */
export function markerToStore(
  convention: KeyConvention,
  bodyAnnotations: Readonly<Record<string, unknown>>,
  patchAnnotations: Readonly<Record<string, unknown>>,
): [string, string] | undefined {
  if (convention.prefix.startsWith('kopf.')) return undefined;
  const marker = `${convention.prefix}/${MARKER_NAME}`;
  if (marker in bodyAnnotations || marker in patchAnnotations) return undefined;
  return [marker, 'yes'];
}
