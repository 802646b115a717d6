/**
 * The diff-base of a processing cycle, wherever it fits (docs/state.md, "Oversized objects"):
 * the annotation as Kopf keeps it, or, when the annotations cannot take it, the status with a
 * digest annotation, or only that digest where the status does not persist or the diff-base is
 * too big for it. Warns (a log line and a Warning Event) when an object's diff-base leaves the
 * annotations, and when an update arrives for an object of which only the digest is known.
 */
import type { Resource } from '../kube/resources.ts';
import {
  ANNOTATIONS_LIMIT,
  DIFFBASE_ANNOTATIONS_BUDGET,
  DIFFBASE_STATUS_BUDGET,
  fetchStoredDiffBase,
  oldEssenceOf,
  storeDiffBaseFitting,
  type StoredDiffBase,
} from '../state/diffbase.ts';
import type { KeyConvention } from '../state/keys.ts';
import type { Patch } from '../state/patch.ts';
import { textOf, type JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import type { EventPoster } from './events.ts';

/** What of the cycle's environment this needs. */
export interface DiffBaseEnvironment {
  settings: { convention: KeyConvention };
  events: EventPoster;
}

const STATUS_FIELD = 'status.kopf.last-handled-configuration';
/** The digest we last warned about, per object uid: one warning per update, not per retry. */
const warnedDigests = new Map<string, string>();
const MAX_WARNED = 10_000;

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * The stored diff-base and the old essence to compare `newEssence` with. When only a digest is
 * stored and it differs from the new essence's, the old essence is unknown (undefined): the
 * caller must then treat the object as updated (it is `stored`, so not new), and this warns.
 */
export function loadDiffBase(
  env: DiffBaseEnvironment,
  resource: Resource,
  body: JsonObject,
  newEssence: JsonObject,
  logger: Logger,
): { stored?: StoredDiffBase; oldEssence?: JsonObject } {
  const { convention } = env.settings;
  const stored = fetchStoredDiffBase(body, convention);
  const oldEssence = oldEssenceOf(stored, newEssence, convention);
  const metadata = (body.metadata ?? {}) as JsonObject;
  const deleting = metadata.deletionTimestamp !== undefined && metadata.deletionTimestamp !== null;
  if (stored?.location === 'digest' && !oldEssence && !deleting) {
    const uid = textOf(metadata.uid);
    if (warnedDigests.get(uid) !== stored.digest) {
      if (warnedDigests.size >= MAX_WARNED) warnedDigests.delete(warnedDigests.keys().next().value!);
      warnedDigests.set(uid, stored.digest!);
      const message =
        `The object changed, but only a digest of the last handled state is stored (its diff-base ` +
        `fits into neither the annotations nor ${STATUS_FIELD}, or the status does not keep ` +
        `it): the update handlers get no old state (old is undefined, the diff adds the whole essence).`;
      logger.warn(message);
      env.events.post(resource, body, 'Warning', 'DiffBaseUnknown', message);
    }
  }
  return { stored, oldEssence };
}

/** Adds the diff-base to the cycle's patch where it fits; warns when it leaves the annotations. */
export function saveDiffBase(
  env: DiffBaseEnvironment,
  resource: Resource,
  body: JsonObject,
  patch: Patch,
  essence: JsonObject,
  logger: Logger,
): void {
  const stored = storeDiffBaseFitting(body, patch, essence, env.settings.convention);
  if (stored.location === 'digest' && stored.previous !== 'digest') {
    const message =
      `The diff-base (${kib(stored.diffBaseSize)}) fits neither into the annotations nor into ` +
      `${STATUS_FIELD} (at most ${kib(DIFFBASE_STATUS_BUDGET)}): only its digest is kept, in ` +
      `an annotation. Updates will be detected, but their handlers get no old state.`;
    logger.warn(message);
    env.events.post(resource, body, 'Warning', 'DiffBaseDigestOnly', message);
  } else if (stored.location === 'status' && stored.previous !== 'status' && stored.previous !== 'digest') {
    const message =
      `The diff-base (${kib(stored.diffBaseSize)}) does not fit into the annotations ` +
      `(${kib(stored.annotationsSize)} with it; kopf-ts keeps them within ` +
      `${kib(DIFFBASE_ANNOTATIONS_BUDGET)} of Kubernetes' ${kib(ANNOTATIONS_LIMIT)}): it is kept ` +
      `in ${STATUS_FIELD} instead, with a digest in an annotation. Python Kopf finds it there ` +
      `only with StatusDiffBaseStorage configured.`;
    logger.warn(message);
    env.events.post(resource, body, 'Warning', 'DiffBaseInStatus', message);
  } else if (stored.location === 'annotations' && stored.previous && stored.previous !== 'annotations') {
    logger.info(`The diff-base fits into the annotations again (${kib(stored.annotationsSize)} with it).`);
  }
}
