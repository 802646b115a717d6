/**
 * An operator with admission webhooks: `Widget` objects (`widgets.example.kopf-ts.dev`) are
 * checked before the apiserver stores them (`on.validate`) and get defaults filled in
 * (`on.mutate`). Nothing is watched: the apiserver calls the operator.
 *
 * Against a local cluster the apiserver can reach on 127.0.0.1 (docs/admission.md):
 *
 *   kopf-ts generate examples/validating-operator.ts > all.yaml   # apply its Widget CRD
 *   kopf-ts run examples/validating-operator.ts -n default \
 *     --webhook-server 127.0.0.1:9443 --webhook-autoconfigure
 *   kubectl apply -f - <<< '{"apiVersion": "example.kopf-ts.dev/v1", "kind": "Widget",
 *     "metadata": {"name": "w"}, "spec": {"size": -1}}'
 *   # → admission webhook "check-widget.widgets.example.kopf-ts.dev" denied the request: …
 */
import { AdmissionError, defineResource, on } from 'kopf-ts';
import type { AdmissionContext, MutationContext } from 'kopf-ts';

export interface WidgetSpec {
  size?: number;
  /** Chosen once: it cannot change afterwards. */
  storageClass?: string;
  tier?: string;
}

export const MAX_SIZE = 10;

export const Widget = defineResource<WidgetSpec>({
  group: 'example.kopf-ts.dev',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  scope: 'Namespaced',
  // A relaxed schema: the webhooks, not the schema, decide what is valid.
  schema: {
    type: 'object',
    properties: {
      spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  },
});

/** Rejects what the schema cannot express: ranges with a helpful message, an immutable field. */
on.validate(Widget, function check_widget({ spec, old, operation, warnings }: AdmissionContext<WidgetSpec>) {
  const { size } = spec;
  if (size !== undefined && (!Number.isInteger(size) || size < 1 || size > MAX_SIZE))
    throw new AdmissionError(
      `spec.size must be an integer from 1 to ${MAX_SIZE}, got ${JSON.stringify(size)}.`,
    );
  const before = old?.spec?.storageClass;
  if (operation === 'UPDATE' && before !== undefined && spec.storageClass !== before)
    throw new AdmissionError(`spec.storageClass cannot change (it is '${before}').`, 422);
  if (size !== undefined && size > MAX_SIZE / 2) warnings.push(`A size of ${size} is large; is it needed?`);
});

/** Fills defaults before the object is stored (creation only: later updates keep what is there). */
on.mutate(
  Widget,
  function default_widget({ spec, labels, patch }: MutationContext<WidgetSpec>) {
    if (spec.size === undefined) patch.spec = { size: 1 };
    if (!spec.storageClass) patch.spec = { ...(patch.spec as object), storageClass: 'standard' };
    if (!labels.tier) patch.metadata = { labels: { tier: spec.tier ?? 'default' } };
  },
  { operations: ['CREATE'] },
);
