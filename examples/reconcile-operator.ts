/**
 * Level-based reconciliation of owned children: a `Website` (`websites.example.kopf-ts.dev`)
 * is served from a ConfigMap `<name>-content` that the operator keeps equal to `spec.content`.
 * Edit or delete the ConfigMap by hand and it is restored at once: the operator watches the
 * ConfigMaps it owns (by the `kopf-ts.dev/owned-by` label that `adopt()` sets) and reconciles
 * their owner. A resync every 10 minutes catches anything else.
 *
 *   kopf-ts generate examples/reconcile-operator.ts | kubectl apply -f -   # the CRD (and RBAC)
 *   kopf-ts run examples/reconcile-operator.ts -n default
 *   kubectl apply -f - <<< '{"apiVersion": "example.kopf-ts.dev/v1", "kind": "Website",
 *     "metadata": {"name": "home"}, "spec": {"content": "<h1>Hello</h1>"}}'
 *   kubectl delete configmap home-content     # … and it is back
 */
import { adopt, defineResource, on, type ReconcileContext } from 'kopf-ts';

export interface WebsiteSpec {
  content: string;
}

export interface WebsiteStatus {
  publish?: { bytes: number };
}

export const Website = defineResource<WebsiteSpec, WebsiteStatus>({
  group: 'example.kopf-ts.dev',
  version: 'v1',
  kind: 'Website',
  plural: 'websites',
  scope: 'Namespaced',
  schema: {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        required: ['content'],
        properties: { content: { type: 'string', maxLength: 65536 } },
      },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  },
});

/** Makes the ConfigMap match the Website, whatever changed; idempotent by server-side apply. */
on.reconcile(
  Website,
  async function publish({ body, spec, name, api, logger }: ReconcileContext<WebsiteSpec, WebsiteStatus>) {
    const content = adopt(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${name}-content` },
        data: { 'index.html': spec.content },
      },
      body,
    );
    await api.apply(content, { force: true });
    logger.debug(`ConfigMap ${name}-content is up to date.`);
    return { bytes: Buffer.byteLength(spec.content) };
  },
  { owns: ['configmaps'], resync: 600 },
);
