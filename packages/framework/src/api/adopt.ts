/**
 * `adopt(child, owner)`: make a child object belong to its owner, as Kopf's `kopf.adopt`:
 * a controller owner reference (so Kubernetes garbage-collects the child with the owner), the
 * owner's namespace when the child has none, and the owner's labels where the child has none;
 * plus the label `kopf-ts.dev/owned-by: <owner kind>.<owner group>`, which lets the owner's
 * `on.reconcile(..., { owns })` watch its children with a server-side label selector.
 */
import type { KubeObject } from '../registry/context.ts';
import { OWNER_LABEL, ownerLabelValue } from '../state/ownership.ts';

/** A child object: any body with metadata. */
export interface Adoptable {
  metadata?: {
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: unknown[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Modifies and returns `child`; adopting twice by the same owner changes nothing. */
export function adopt<T extends Adoptable>(
  child: T,
  owner: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>,
): T {
  const metadata = (child.metadata ??= {});
  const refs = (metadata.ownerReferences ??= []) as Array<Record<string, unknown>>;
  if (!refs.some((r) => r.uid === owner.metadata.uid)) {
    refs.push({
      apiVersion: owner.apiVersion,
      kind: owner.kind,
      name: owner.metadata.name,
      uid: owner.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    });
  }
  if (!metadata.namespace && owner.metadata.namespace) metadata.namespace = owner.metadata.namespace;
  const labels = owner.metadata.labels ?? {};
  metadata.labels = {
    ...labels,
    [OWNER_LABEL]: ownerLabelValue(owner.apiVersion, owner.kind),
    ...(metadata.labels ?? {}),
  };
  return child;
}
