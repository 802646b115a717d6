/**
 * `adopt(child, owner)`: make a child object belong to its owner, as Kopf's `kopf.adopt`:
 * a controller owner reference (so Kubernetes garbage-collects the child with the owner), the
 * owner's namespace when the child has none, and the owner's labels where the child has none.
 */
import type { KubeObject } from '../registry/context.ts';

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
  if (Object.keys(labels).length) metadata.labels = { ...labels, ...(metadata.labels ?? {}) };
  return child;
}
