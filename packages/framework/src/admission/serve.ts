/**
 * Starting admission for an operator: the serving certificate (given, or self-signed for
 * local development), the HTTPS server, and optionally the autoconfiguration of the cluster.
 */
import { readFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.ts';
import type { AdmissionHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';
import { autoconfigure } from './autoconfigure.ts';
import { selfSignedCertificates } from './certificates.ts';
import { WebhookServer, type ServingTls } from './server.ts';

/** The `webhooks` option of the `Operator`. */
export interface WebhookOptions {
  /** The address to listen on, e.g. `127.0.0.1` or `0.0.0.0`. */
  host: string;
  /** The port to listen on; 0 for any free port. */
  port: number;
  /** The base URL the apiserver calls, e.g. `https://127.0.0.1:9443`. Default `https://<host>:<port>`. */
  url?: string;
  /**
   * The serving certificate and key (PEM files, re-read when they change). Default: a fresh
   * self-signed CA and a certificate for the host and the URL's host (local development).
   */
  tls?: { certFile: string; keyFile: string };
  /**
   * Apply a ValidatingWebhookConfiguration and a MutatingWebhookConfiguration with this name
   * at start (needs RBAC on admissionregistration.k8s.io). Pointing at `url`, with the CA
   * bundle of the certificate (with `tls`: the certificate file, which should then contain the CA).
   */
  autoconfigure?: string;
}

export interface RunningWebhooks {
  port: number;
  url: string;
  stop(): Promise<void>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts the webhook server (and autoconfigures); resolves once it listens. */
export async function startWebhooks(
  options: WebhookOptions,
  handlers: AdmissionHandler[],
  context: {
    client: KubeClient;
    logger: Logger;
    /** The namespaces served; undefined for all. */
    namespaces?: string[];
    servesNamespace?: (namespace: string) => boolean;
  },
): Promise<RunningWebhooks> {
  let tls: ServingTls;
  let caPem: string;
  if (options.tls) {
    tls = options.tls;
    caPem = readFileSync(options.tls.certFile, 'utf8');
  } else {
    const hosts = new Set<string>();
    if (options.url) hosts.add(new URL(options.url).hostname.replace(/^\[|\]$/g, ''));
    if (!WILDCARDS.has(options.host)) hosts.add(options.host);
    hosts.add('localhost');
    const generated = selfSignedCertificates([...hosts]);
    tls = { cert: generated.cert, key: generated.key };
    caPem = generated.ca;
    context.logger.info(
      `Made a self-signed CA and a serving certificate for the webhooks (${[...hosts].join(', ')}).`,
    );
  }
  const server = new WebhookServer({
    host: options.host,
    port: options.port,
    tls,
    handlers,
    logger: context.logger,
    servesNamespace: context.servesNamespace,
  });
  const port = await server.start();
  const url =
    options.url ?? `https://${bracketed(WILDCARDS.has(options.host) ? '127.0.0.1' : options.host)}:${port}`;
  try {
    if (options.autoconfigure) {
      await autoconfigure(context.client, handlers, {
        name: options.autoconfigure,
        url,
        caPem,
        namespaces: context.namespaces,
        logger: context.logger.child({ name: 'kopf.admission' }),
      });
    }
  } catch (error) {
    await server.stop();
    throw new Error(`Could not configure the admission webhooks: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { port, url, stop: () => server.stop() };
}
