/**
 * Writing to objects: the one merge patch per cycle (the status subresource first when the
 * resource has one), and finalizers added or removed with JSON patches guarded by `test`
 * operations, so other controllers' finalizers are never replaced.
 */
import type { KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { resourceName, resourcePath, type Resource } from '../kube/resources.ts';
import type { Patch } from '../state/patch.ts';
import type { JsonObject, JsonValue } from '../util/json.ts';

export interface ObjectRef {
  namespace?: string;
  name: string;
}

function versionOf(obj: JsonObject): string | undefined {
  const metadata = obj.metadata as JsonObject | undefined;
  return typeof metadata?.resourceVersion === 'string' ? metadata.resourceVersion : undefined;
}

/**
 * Sends the cycle's merge patch; returns the new resourceVersion, or undefined if the patch
 * was empty or the object is gone.
 */
export async function applyPatch(
  client: KubeClient,
  resource: Resource,
  ref: ObjectRef,
  patch: Patch,
): Promise<string | undefined> {
  const { status, ...main } = patch;
  const parts: Array<[JsonObject, string | undefined]> = [];
  if (resource.subresources.includes('status')) {
    // The status first: the main patch carries the progress and the diff-base, so it goes last
    // and a failed status patch (e.g. 403) leaves the cycle unrecorded, to be retried whole;
    // the other way round, the handlers would count as done with their results lost.
    if (status !== undefined) parts.push([{ status }, 'status']);
    if (Object.keys(main).length) parts.push([main, undefined]);
  } else if (Object.keys(patch).length) {
    parts.push([patch, undefined]);
  }
  let version: string | undefined;
  for (const [body, subresource] of parts) {
    try {
      const result = await client.request<JsonObject>({
        method: 'PATCH',
        path: resourcePath(resource, { ...ref, subresource }),
        body,
        contentType: 'application/merge-patch+json',
        target: { verb: subresource ? 'patch status of' : 'patch', resource: resourceName(resource), ...ref },
      });
      version = versionOf(result) ?? version;
    } catch (error) {
      if (error instanceof ApiError && error.notFound) return undefined;
      throw error;
    }
  }
  return version;
}

/**
 * Adds or removes our finalizer with a JSON patch that first tests the current list (or the
 * resourceVersion when there is no list), so a concurrent change by another controller makes
 * the patch fail (and the next cycle retries) instead of being overwritten. Returns the new
 * resourceVersion, or undefined if the object changed meanwhile or is gone.
 */
export async function setFinalizer(
  client: KubeClient,
  resource: Resource,
  body: JsonObject,
  finalizer: string,
  present: boolean,
): Promise<string | undefined> {
  const metadata = (body.metadata ?? {}) as JsonObject;
  const current = Array.isArray(metadata.finalizers) ? metadata.finalizers : undefined;
  const ref = { namespace: metadata.namespace as string | undefined, name: metadata.name as string };
  let ops: JsonValue[];
  if (present) {
    if (current?.includes(finalizer)) return undefined;
    ops = current
      ? [
          { op: 'test', path: '/metadata/finalizers', value: current },
          { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
        ]
      : [
          { op: 'test', path: '/metadata/resourceVersion', value: versionOf(body) ?? '' },
          { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
        ];
  } else {
    const index = current?.indexOf(finalizer) ?? -1;
    if (index < 0) return undefined;
    ops = [
      { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
      { op: 'remove', path: `/metadata/finalizers/${index}` },
    ];
  }
  try {
    const result = await client.request<JsonObject>({
      method: 'PATCH',
      path: resourcePath(resource, ref),
      body: ops,
      contentType: 'application/json-patch+json',
      target: {
        verb: present ? 'add finalizer to' : 'remove finalizer from',
        resource: resourceName(resource),
        ...ref,
      },
    });
    return versionOf(result);
  } catch (error) {
    // 404: gone; 409/422: changed meanwhile (a failed `test`): the next event retries.
    if (error instanceof ApiError && (error.notFound || error.conflict || error.code === 422))
      return undefined;
    throw error;
  }
}
