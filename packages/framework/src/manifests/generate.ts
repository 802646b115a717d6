/**
 * Manifests from what an operator registered and declared: its CRDs, Kopf's peering CRDs, a
 * ServiceAccount, least-privilege RBAC and a Deployment running `kopf-ts run`. Writing RBAC
 * by hand is what users of operator frameworks name as the pain; this derives it.
 */
import { parseSelector } from '../kube/resources.ts';
import type { Registry, ResourceDeclaration } from '../registry/registry.ts';
import { addWebhookManifests } from './webhooks.ts';

export interface GenerateOptions {
  /** The operator's name: ServiceAccount, roles and Deployment. */
  name: string;
  /** Namespace of the operator's own objects; also the only namespace it serves if `clusterwide` is false. */
  namespace: string;
  /** Serve all namespaces (ClusterRole) rather than `namespace` only (Role). */
  clusterwide: boolean;
  /** The container image. */
  image: string;
  /** The operator files as the image has them, e.g. `/app/operator.ts`. */
  files: string[];
  /** The admission webhook server's container port (with `on.validate`/`on.mutate` handlers). Default 8443. */
  webhookPort?: number;
  /** PEM of the CA that signs the webhook server's certificate: the configurations' `caBundle`. */
  webhookCa?: string;
}

type Doc = Record<string, unknown>;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * The verbs the framework needs on a watched resource: list+watch to see it; patch to keep
 * state, and get to read an object afresh when its own patch did not come back through the
 * watch in time (not for event and index handlers).
 */
const WATCH_VERBS = ['list', 'watch'];
const STATE_VERBS = ['get', 'patch'];
/** Children that reconcile handlers own: watched, and managed by the handler. */
const OWNED_VERBS = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'];
const LIVENESS_PORT = 8080;

export function crdFor(d: ResourceDeclaration): Doc {
  const schema = d.schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const version: Doc = { name: d.version, served: true, storage: true, schema: { openAPIV3Schema: schema } };
  if (d.statusSubresource !== false) version.subresources = { status: {} };
  if (d.printerColumns?.length) version.additionalPrinterColumns = d.printerColumns;
  const names: Doc = { kind: d.kind, plural: d.plural, singular: d.singular ?? d.kind.toLowerCase() };
  if (d.shortNames?.length) names.shortNames = d.shortNames;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${d.plural}.${d.group}` },
    spec: { group: d.group, names, scope: d.scope, versions: [version] },
  };
}

/** Kopf's peering CRDs, with the same layout as Kopf's own (`peering.yaml`). */
export function peeringCrds(): Doc[] {
  return (['Cluster', 'Namespaced'] as const).map((scope) => {
    const kind = scope === 'Cluster' ? 'ClusterKopfPeering' : 'KopfPeering';
    const plural = `${kind.toLowerCase()}s`;
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.kopf.dev` },
      spec: {
        scope,
        group: 'kopf.dev',
        names: { kind, plural, singular: kind.toLowerCase() },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
              },
            },
          },
        ],
      },
    };
  });
}

/** The RBAC rules: handled resources, Events, and what the operator declared. Merged per group. */
export function rbacRules(registry: Registry, clusterwide = false): Rule[] {
  const byKey = new Map<string, Set<string>>();
  const add = (group: string, resource: string, verbs: string[]) => {
    const key = `${group}\u0000${resource}`;
    const set = byKey.get(key) ?? new Set<string>();
    for (const v of verbs) set.add(v);
    byKey.set(key, set);
  };
  for (const handler of registry.handlers) {
    const selector = parseSelector(handler.resource);
    const declared = registry.resources.find(
      (d) => d.plural === selector.plural && (selector.group === undefined || d.group === selector.group),
    );
    const group = selector.group ?? declared?.group ?? '';
    const readOnly = handler.kind === 'watching' || handler.kind === 'indexing';
    add(group, selector.plural, readOnly ? WATCH_VERBS : [...WATCH_VERBS, ...STATE_VERBS]);
    if (!readOnly && declared && declared.statusSubresource !== false)
      add(group, `${selector.plural}/status`, ['patch']);
    if (handler.kind === 'reconciling') {
      for (const owned of handler.options.owns ?? []) {
        const child = parseSelector(
          typeof owned === 'object' && 'resource' in owned ? owned.resource : owned,
        );
        add(child.group ?? '', child.plural, OWNED_VERBS);
      }
    }
  }
  add('', 'events', ['create']);
  // Peering (Kopf's objects): read the peers, keep our record in the status.
  add('kopf.dev', clusterwide ? 'clusterkopfpeerings' : 'kopfpeerings', ['get', 'list', 'watch', 'patch']);
  for (const p of registry.permissions) add(p.group, p.resource, p.verbs);
  // One rule per group and identical verb set, resources sorted: stable, reviewable output.
  const rules = new Map<string, Rule>();
  for (const [key, verbs] of [...byKey].sort()) {
    const [group = '', resource = ''] = key.split('\u0000');
    const sorted = [...verbs].sort();
    const ruleKey = `${group}\u0000${sorted.join(',')}`;
    const rule = rules.get(ruleKey) ?? { apiGroups: [group], resources: [], verbs: sorted };
    rule.resources.push(resource);
    rules.set(ruleKey, rule);
  }
  return [...rules.values()];
}

export function generateManifests(registry: Registry, options: GenerateOptions): Doc[] {
  const { name, namespace, clusterwide } = options;
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'kopf-ts' };
  const docs: Doc[] = [...registry.resources.map(crdFor), ...peeringCrds()];
  docs.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels } });
  const roleKind = clusterwide ? 'ClusterRole' : 'Role';
  const roleMeta = clusterwide ? { name, labels } : { name, namespace, labels };
  docs.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: roleKind,
    metadata: roleMeta,
    rules: rbacRules(registry, clusterwide),
  });
  docs.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: `${roleKind}Binding`,
    metadata: roleMeta,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  const args = [
    'run',
    ...options.files,
    ...(clusterwide ? ['--all-namespaces'] : ['--namespace', namespace]),
    '--log-format',
    'json',
    '--liveness',
    `http://0.0.0.0:${LIVENESS_PORT}/healthz`,
  ];
  docs.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: 1,
      // One operator at a time while peering is not configured: no surge during rollouts.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: name,
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'operator',
              image: options.image,
              args,
              env: [
                { name: 'POD_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // The root filesystem is read-only: tsx must not cache its transforms on disk.
                { name: 'TSX_DISABLE_CACHE', value: '1' },
              ],
              ports: [{ name: 'liveness', containerPort: LIVENESS_PORT }],
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'liveness' },
                initialDelaySeconds: 15,
                periodSeconds: 10,
                failureThreshold: 6,
              },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  });
  addWebhookManifests(docs, registry, {
    name,
    namespace,
    clusterwide,
    labels,
    port: options.webhookPort,
    ca: options.webhookCa,
  });
  return docs;
}
