/**
 * Reading an object afresh when its queued event is known to be stale (queueing's `refresh`):
 * the last cycle's own patch did not come back through the watch in time, so every event
 * delivered meanwhile predates it, and handling one could run its handlers again. A GET by
 * name; no object of that name, or another one (a new uid), means it is gone. Without the
 * permission to get it, the stale event is all there is.
 */
import type { KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { resourceName, resourcePath, type Resource } from '../kube/resources.ts';
import { textOf, type JsonObject } from '../util/json.ts';
import type { ObjectEvent } from './cycle.ts';

export async function readAfresh<E extends ObjectEvent & { version: string }>(
  client: KubeClient,
  resource: Resource,
  stale: E,
): Promise<E> {
  const metadata = (stale.object.metadata ?? {}) as JsonObject;
  const ref = { namespace: textOf(metadata.namespace) || undefined, name: textOf(metadata.name) };
  try {
    const object = await client.request<JsonObject>({
      method: 'GET',
      path: resourcePath(resource, ref),
      target: { verb: 'get', resource: resourceName(resource), ...ref },
    });
    const current = (object.metadata ?? {}) as JsonObject;
    if (textOf(current.uid) === textOf(metadata.uid))
      return { ...stale, type: 'MODIFIED', object, version: textOf(current.resourceVersion) };
  } catch (error) {
    // RBAC made before `get` was generated: go on with the event, as without a refresh.
    if (error instanceof ApiError && error.forbidden) return stale;
    if (!(error instanceof ApiError && error.notFound)) throw error;
  }
  return { ...stale, type: 'DELETED' };
}
