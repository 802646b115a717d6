/**
 * What `on.reconcile` needs of the runtime, after controller-runtime's `Owns()` and resync:
 * which children to watch (a label selector per owned kind), and the newest body of every
 * object of a reconciled resource, so that a child's event (by its ownerReferences) or the
 * periodic resync can bring the owner back to its queue.
 */
import { apiVersionOf, resourceName, type Resource } from '../kube/resources.ts';
import type { ResourceHandlers } from '../processing/cycle.ts';
import type { ResourceSpec } from '../registry/registry.ts';
import { OWNER_LABEL, ownerLabelValue } from '../state/ownership.ts';
import { textOf, type JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';

/** The children of one kind (and label selector) that `on.reconcile` owners watch, and those owners. */
export interface OwnedTarget {
  resource: Resource;
  labelSelector: string;
  owners: ResourceHandlers[];
}

/** The owned kinds of all reconcile handlers; `resolve` finds (or waits for) a resource. */
export async function ownedTargets(
  groups: ResourceHandlers[],
  resolve: (spec: ResourceSpec) => Promise<Resource | undefined>,
): Promise<OwnedTarget[]> {
  const targets = new Map<string, OwnedTarget>();
  for (const rh of groups) {
    const defaultLabels = { [OWNER_LABEL]: ownerLabelValue(apiVersionOf(rh.resource), rh.resource.kind) };
    for (const handler of rh.reconciling) {
      for (const entry of handler.options.owns ?? []) {
        const explicit = typeof entry === 'object' && 'resource' in entry ? entry : undefined;
        const resource = await resolve(explicit ? explicit.resource : (entry as ResourceSpec));
        if (!resource) return []; // stopped while waiting
        const labelSelector = Object.entries(explicit?.labels ?? defaultLabels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const key = `${resourceName(resource)} ${labelSelector}`;
        const target = targets.get(key) ?? { resource, labelSelector, owners: [] };
        if (!target.owners.includes(rh)) target.owners.push(rh);
        targets.set(key, target);
      }
    }
  }
  return [...targets.values()];
}

export class Owners {
  /** Per reconciled resource: object uid → its newest body. */
  private readonly bodies = new Map<string, Map<string, JsonObject>>();

  constructor(
    /** Brings an object back to its queue with this body. */
    private readonly requeue: (rh: ResourceHandlers, body: JsonObject) => void,
    private readonly logger: Logger,
  ) {}

  /** Keeps the newest body of an object of a reconciled resource (forgets it when deleted). */
  remember(rh: ResourceHandlers, type: 'ADDED' | 'MODIFIED' | 'DELETED', body: JsonObject): void {
    const name = resourceName(rh.resource);
    const uid = textOf((body.metadata as JsonObject | undefined)?.uid);
    const bodies = this.bodies.get(name) ?? this.bodies.set(name, new Map()).get(name)!;
    if (type === 'DELETED') bodies.delete(uid);
    else bodies.set(uid, body);
  }

  /** A child changed: its owners (by ownerReference) among `owners` get a cycle. */
  childChanged(owners: ResourceHandlers[], child: JsonObject): void {
    const refs = ((child.metadata as JsonObject | undefined)?.ownerReferences ?? []) as JsonObject[];
    for (const ref of refs) {
      const owner = owners.find(
        (o) => o.resource.kind === ref.kind && apiVersionOf(o.resource) === ref.apiVersion,
      );
      const body = owner && this.bodies.get(resourceName(owner.resource))?.get(textOf(ref.uid));
      if (owner && body) this.requeue(owner, body);
    }
  }

  /** Reconciles every object of the resource periodically (`resync`), until `signal` aborts. */
  async resync(rh: ResourceHandlers, signal: AbortSignal): Promise<void> {
    const periods = rh.reconciling.map((h) => h.options.resync ?? 300).filter((s) => s > 0);
    if (!periods.length) return;
    const period = Math.min(...periods);
    const name = resourceName(rh.resource);
    while (!signal.aborted) {
      await sleep(period * 1000, signal);
      if (signal.aborted) break;
      const bodies = [...(this.bodies.get(name)?.values() ?? [])];
      this.logger.debug(`Resync: reconciling ${bodies.length} object(s) of ${name}.`);
      for (const body of bodies) this.requeue(rh, body);
    }
  }
}
