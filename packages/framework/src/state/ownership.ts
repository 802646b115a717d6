/**
 * The label that marks children with the kind of their owner, so that an operator can watch
 * just its children with a server-side label selector (`on.reconcile(..., { owns })`).
 * `adopt()` sets it; ownerReferences still say which object owns a child.
 */
import { createHash } from 'node:crypto';

export const OWNER_LABEL = 'kopf-ts.dev/owned-by';

/** `<kind>.<group>` in lower case (`psql.test.com`, `configmap`), shortened to a valid label value. */
export function ownerLabelValue(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const value = `${kind}${group ? `.${group}` : ''}`.toLowerCase();
  if (value.length <= 63) return value;
  // Label values have at most 63 characters: keep a readable head and a digest of the whole.
  const digest = createHash('sha256').update(value).digest('hex').slice(0, 10);
  return `${value.slice(0, 52).replace(/[^a-z0-9]+$/, '')}-${digest}`;
}
