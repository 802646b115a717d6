/**
 * The manifests of admission webhooks, when the operator registered `on.validate` or
 * `on.mutate` handlers: a Service in front of the operator's webhook server, the
 * ValidatingWebhookConfiguration and MutatingWebhookConfiguration that reference it, and the
 * Deployment's webhook port, flags and serving-certificate volume.
 */
import { staticTarget, webhookConfigurations } from '../admission/webhooks.ts';
import type { Registry } from '../registry/registry.ts';

type Doc = Record<string, unknown>;

/** The webhook server's port in the container, unless told otherwise. */
export const DEFAULT_WEBHOOK_PORT = 8443;
const TLS_DIR = '/etc/kopf-ts/webhook';

const COMMENT = Symbol.for('kopf-ts.manifest.comment');

/** Attaches a comment to print above the document (not part of the object). */
export function withComment<T extends Doc>(doc: T, comment: string): T {
  Object.defineProperty(doc, COMMENT, { value: comment, enumerable: false });
  return doc;
}

/** The comment attached to a document, if any. */
export function commentOf(doc: Doc): string | undefined {
  return (doc as { [COMMENT]?: string })[COMMENT];
}

export interface WebhookManifestOptions {
  name: string;
  namespace: string;
  clusterwide: boolean;
  labels: Record<string, string>;
  /** The webhook server's container port. Default 8443. */
  port?: number;
  /** PEM of the CA that signs the serving certificate (the `caBundle`); without it, cert-manager's cainjector is expected to fill it. */
  ca?: string;
}

/** Adds the webhook documents to `docs` and the webhook server to its Deployment; no-op without admission handlers. */
export function addWebhookManifests(docs: Doc[], registry: Registry, options: WebhookManifestOptions): void {
  const handlers = registry.webhooks ?? [];
  if (!handlers.length) return;
  const { name, namespace, labels } = options;
  const port = options.port ?? DEFAULT_WEBHOOK_PORT;
  const secretName = `${name}-webhook-tls`;
  const dnsName = `${name}.${namespace}.svc`;
  docs.push(
    withComment(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace, labels },
        spec: {
          selector: { 'app.kubernetes.io/name': name },
          ports: [{ name: 'webhook', port: 443, targetPort: 'webhook' }],
        },
      },
      `The apiserver calls the admission webhooks through this Service (https://${dnsName}).\n` +
        `The webhook server's certificate (for ${dnsName}) comes from the Secret ${secretName} (tls.crt, tls.key),\n` +
        `e.g. made by a cert-manager Certificate with secretName ${secretName}, or by\n` +
        `\`kubectl create secret tls ${secretName} -n ${namespace} --cert=tls.crt --key=tls.key\`.`,
    ),
  );
  const configurations = webhookConfigurations(handlers, {
    name,
    labels,
    annotations: options.ca
      ? undefined
      : { 'cert-manager.io/inject-ca-from': `${namespace}/${name}-webhook` },
    clientConfig: {
      service: { namespace, name, port: 443 },
      caBundle: options.ca ? Buffer.from(options.ca).toString('base64') : undefined,
    },
    namespaces: options.clusterwide ? undefined : [namespace],
    target: (h) => staticTarget(h, registry.resources),
  });
  for (const doc of configurations) {
    docs.push(
      options.ca
        ? doc
        : withComment(
            doc,
            `caBundle is not set: the apiserver cannot trust the webhook server yet. Either generate again with\n` +
              `\`--webhook-ca ca.crt\` (the CA that signed the certificate in the Secret ${secretName}), or let\n` +
              `cert-manager's cainjector fill it from the Certificate named in the annotation\n` +
              `(${namespace}/${name}-webhook, with secretName ${secretName} and dnsNames [${dnsName}]).`,
          ),
    );
  }
  const deployment = docs.find((d) => d.kind === 'Deployment') as
    { spec: { template: { spec: { containers: Doc[]; volumes?: Doc[] } } } } | undefined;
  const pod = deployment?.spec.template.spec;
  const container = pod?.containers[0] as
    { args?: string[]; ports?: Doc[]; volumeMounts?: Doc[] } | undefined;
  if (!pod || !container) return;
  container.args = [
    ...(container.args ?? []),
    '--webhook-server',
    `0.0.0.0:${port}`,
    '--webhook-cert',
    `${TLS_DIR}/tls.crt`,
    '--webhook-key',
    `${TLS_DIR}/tls.key`,
  ];
  container.ports = [...(container.ports ?? []), { name: 'webhook', containerPort: port }];
  container.volumeMounts = [
    ...(container.volumeMounts ?? []),
    { name: 'webhook-tls', mountPath: TLS_DIR, readOnly: true },
  ];
  pod.volumes = [...(pod.volumes ?? []), { name: 'webhook-tls', secret: { secretName } }];
}
