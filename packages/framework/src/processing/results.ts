/** Where handlers' returned values go: `status.<handler id>` of the object, in the cycle's patch. */
import { patchStatus, type Patch } from '../state/patch.ts';
import type { JsonValue } from '../util/json.ts';

/** A handler's returned value lands in `status.<handler id>` (objects are merged into it). */
export function deliverResult(patch: Patch, id: string, value: JsonValue | undefined): void {
  if (value === undefined || value === null) return;
  const status = patchStatus(patch);
  const existing = status[id];
  status[id] =
    value &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    existing &&
    typeof existing === 'object' &&
    !Array.isArray(existing)
      ? { ...existing, ...value }
      : value;
}
