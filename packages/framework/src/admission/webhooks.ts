/**
 * Admission handlers as the apiserver sees them: one webhook per handler, with its name, URL
 * path and rules, gathered into a ValidatingWebhookConfiguration and a
 * MutatingWebhookConfiguration. Used by `kopf-ts generate` (a Service reference) and by the
 * operator's autoconfiguration (a URL).
 */
import { parseSelector } from '../kube/resources.ts';
import {
  ABSENT,
  PRESENT,
  type AdmissionHandler,
  type AdmissionOperation,
  type ResourceDeclaration,
} from '../registry/registry.ts';

type Doc = Record<string, unknown>;

/** The operations a handler is called for unless its `operations` option says otherwise. */
export const DEFAULT_OPERATIONS: AdmissionOperation[] = ['CREATE', 'UPDATE'];

/** What a webhook's rule names. `version` `*` means all versions. */
export interface WebhookTarget {
  group: string;
  version: string;
  plural: string;
}

/** How the apiserver reaches a webhook: a URL or a Service (`path` is added per webhook). */
export type ClientConfig =
  | { url: string; caBundle?: string }
  | { service: { namespace: string; name: string; port: number }; caBundle?: string };

/** The resource a handler names, without asking the cluster: its own words, or a declared resource. */
export function staticTarget(handler: AdmissionHandler, declared: ResourceDeclaration[] = []): WebhookTarget {
  const selector = parseSelector(handler.resource);
  const declaration = declared.find(
    (d) => d.plural === selector.plural && (selector.group === undefined || d.group === selector.group),
  );
  return {
    group: selector.group ?? declaration?.group ?? '',
    version: selector.version ?? '*',
    plural: declaration?.plural ?? selector.plural.toLowerCase(),
  };
}

function slug(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return s || 'webhook';
}

/**
 * The webhook's name, as the apiserver reports it (`admission webhook "<name>" denied the
 * request`): `<id>.<plural>.<group>`, lower-cased, or `<id>.<plural>.kopf-ts.dev` in the core
 * group. It is also the last segment of its URL path.
 */
export function webhookName(handler: AdmissionHandler): string {
  const selector = parseSelector(handler.resource);
  const group = selector.group || 'kopf-ts.dev';
  return `${slug(handler.id)}.${slug(selector.plural)}.${group.toLowerCase()}`;
}

/** The URL path the server serves the handler at: `/validate/<name>` or `/mutate/<name>`. */
export function webhookPath(handler: AdmissionHandler): string {
  return `/${handler.kind === 'validating' ? 'validate' : 'mutate'}/${webhookName(handler)}`;
}

/** The handlers by URL path; two handlers whose names collide (e.g. ids `a_b` and `a-b`) are an error. */
export function routes(handlers: AdmissionHandler[]): Map<string, AdmissionHandler> {
  const byPath = new Map<string, AdmissionHandler>();
  for (const handler of handlers) {
    const path = webhookPath(handler);
    const clash = byPath.get(path);
    if (clash) {
      throw new Error(
        `Admission handlers '${clash.id}'${clash.origin ? ` (${clash.origin})` : ''} and '${handler.id}'${handler.origin ? ` (${handler.origin})` : ''} ` +
          `both make the webhook ${path.slice(path.lastIndexOf('/') + 1)}. Give one of them another id.`,
      );
    }
    byPath.set(path, handler);
  }
  return byPath;
}

/** The label filters the apiserver can apply itself (values, PRESENT, ABSENT); predicates stay ours. */
function objectSelector(handler: AdmissionHandler): Doc | undefined {
  const expressions: Doc[] = [];
  for (const [key, filter] of Object.entries(handler.options.labels ?? {})) {
    if (filter === PRESENT) expressions.push({ key, operator: 'Exists' });
    else if (filter === ABSENT) expressions.push({ key, operator: 'DoesNotExist' });
    else if (typeof filter === 'string') expressions.push({ key, operator: 'In', values: [filter] });
  }
  return expressions.length ? { matchExpressions: expressions } : undefined;
}

export interface ConfigurationOptions {
  /** The name of both configuration objects. */
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** How the apiserver reaches the server. */
  clientConfig: ClientConfig;
  /** Only requests in these namespaces (a `namespaceSelector` on `kubernetes.io/metadata.name`). */
  namespaces?: string[];
  /** What each handler's rule names; by default {@link staticTarget}. */
  target?: (handler: AdmissionHandler) => WebhookTarget;
}

/** One webhook entry for a handler. */
export function webhookFor(
  handler: AdmissionHandler,
  options: Pick<ConfigurationOptions, 'clientConfig' | 'namespaces' | 'target'>,
): Doc {
  const target = (options.target ?? ((h) => staticTarget(h)))(handler);
  const path = webhookPath(handler);
  const { caBundle, ...where } = options.clientConfig;
  const clientConfig: Doc =
    'url' in where
      ? { url: `${where.url.replace(/\/+$/, '')}${path}` }
      : { service: { ...where.service, path } };
  if (caBundle) clientConfig.caBundle = caBundle;
  const o = handler.options;
  const webhook: Doc = {
    name: webhookName(handler),
    clientConfig,
    rules: [
      {
        apiGroups: [target.group],
        apiVersions: [target.version],
        resources: [o.subresource ? `${target.plural}/${o.subresource}` : target.plural],
        operations: o.operations ?? DEFAULT_OPERATIONS,
        scope: '*',
      },
    ],
    failurePolicy: o.failurePolicy ?? 'Fail',
    sideEffects: o.sideEffects ?? 'None',
    admissionReviewVersions: ['v1'],
  };
  if (o.timeout !== undefined) webhook.timeoutSeconds = Math.min(30, Math.max(1, Math.round(o.timeout)));
  if (options.namespaces?.length) {
    webhook.namespaceSelector = {
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'In', values: [...options.namespaces] },
      ],
    };
  }
  const selector = objectSelector(handler);
  if (selector) webhook.objectSelector = selector;
  return webhook;
}

/**
 * The ValidatingWebhookConfiguration and the MutatingWebhookConfiguration for the handlers
 * (each only if it has webhooks), both named `options.name`.
 */
export function webhookConfigurations(handlers: AdmissionHandler[], options: ConfigurationOptions): Doc[] {
  routes(handlers); // refuse colliding names
  const docs: Doc[] = [];
  for (const [kind, type] of [
    ['validating', 'ValidatingWebhookConfiguration'],
    ['mutating', 'MutatingWebhookConfiguration'],
  ] as const) {
    const mine = handlers.filter((h) => h.kind === kind);
    if (!mine.length) continue;
    const metadata: Doc = { name: options.name };
    if (options.labels) metadata.labels = options.labels;
    if (options.annotations) metadata.annotations = options.annotations;
    docs.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: type,
      metadata,
      webhooks: mine.map((h) => webhookFor(h, options)),
    });
  }
  return docs;
}
