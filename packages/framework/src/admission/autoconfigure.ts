/**
 * `--webhook-autoconfigure`: the operator applies its own ValidatingWebhookConfiguration and
 * MutatingWebhookConfiguration at start, pointing the apiserver at its webhook server by URL
 * with the CA bundle of its certificate. For development against a cluster that can reach the
 * operator; in a cluster, `kopf-ts generate` emits static configurations instead.
 */
import type { KubeClient } from '../kube/client.ts';
import { Objects } from '../kube/objects.ts';
import { Discovery, parseSelector } from '../kube/resources.ts';
import type { AdmissionHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';
import { staticTarget, webhookConfigurations, type WebhookTarget } from './webhooks.ts';

export interface AutoconfigureOptions {
  /** The name of both configuration objects. */
  name: string;
  /** The server's base URL as the apiserver reaches it, e.g. `https://127.0.0.1:9443`. */
  url: string;
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  /** Limit the webhooks to these namespaces (undefined: all). */
  namespaces?: string[];
  logger: Logger;
}

const API_VERSION = 'admissionregistration.k8s.io/v1';

/** Creates or updates (server-side apply) the configurations; removes one that has no handlers left. */
export async function autoconfigure(
  client: KubeClient,
  handlers: AdmissionHandler[],
  options: AutoconfigureOptions,
): Promise<void> {
  const { logger } = options;
  const discovery = new Discovery(client);
  const targets = new Map<AdmissionHandler, WebhookTarget>();
  for (const handler of handlers) {
    const resource = await discovery.resolveOne(handler.resource).catch(() => undefined);
    if (!resource)
      logger.warn(
        `Admission handler '${handler.id}': its resource is not served by the cluster (yet); the webhook names it as written.`,
      );
    targets.set(
      handler,
      resource
        ? {
            group: resource.group,
            version: parseSelector(handler.resource).version ?? '*',
            plural: resource.plural,
          }
        : staticTarget(handler),
    );
  }
  const docs = webhookConfigurations(handlers, {
    name: options.name,
    labels: { 'app.kubernetes.io/managed-by': 'kopf-ts' },
    clientConfig: { url: options.url, caBundle: Buffer.from(options.caPem).toString('base64') },
    namespaces: options.namespaces,
    target: (h) => targets.get(h)!,
  });
  const objects = new Objects(client);
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const doc = docs.find((d) => d.kind === kind);
    if (doc) {
      await objects.apply(doc as { apiVersion: string; kind: string; metadata: { name: string } }, {
        force: true,
      });
      logger.info(
        `Applied the ${kind} '${options.name}' (${(doc.webhooks as unknown[]).length} webhook(s), to ${options.url}).`,
      );
    } else {
      // A configuration left from an earlier run with handlers of this kind would still call us.
      const deleted = await objects.delete(API_VERSION, kind, options.name).catch((error: unknown) => {
        logger.debug(`Could not remove a stale ${kind} '${options.name}': ${(error as Error).message}`);
        return false;
      });
      if (deleted) logger.info(`Removed the ${kind} '${options.name}': no handlers of its kind are left.`);
    }
  }
}
