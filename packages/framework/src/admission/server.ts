/**
 * The HTTPS server the apiserver calls for admission: one path per handler
 * (`/validate/<webhook>`, `/mutate/<webhook>`), AdmissionReview v1 in and out. TLS comes from
 * certificate files (reloaded when they change, e.g. renewed by cert-manager) or from PEM
 * texts (the self-signed ones of local development).
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';
import { review, type AdmissionResponse, type AdmissionReview } from './review.ts';
import { routes } from './webhooks.ts';

/** The serving certificate: PEM texts, or files re-read when they change. */
export type ServingTls = { cert: string; key: string } | { certFile: string; keyFile: string };

export interface WebhookServerOptions {
  host: string;
  /** 0 for any free port. */
  port: number;
  tls: ServingTls;
  handlers: AdmissionHandler[];
  logger: Logger;
  /** Requests in other namespaces are admitted without calling handlers. Default: all namespaces. */
  servesNamespace?: (namespace: string) => boolean;
}

/** Large enough for an object and its old version at the apiserver's own size limits. */
const MAX_BODY = 16 * 1024 * 1024;

function readTls(tls: ServingTls): { cert: string; key: string } {
  return 'cert' in tls
    ? tls
    : { cert: readFileSync(tls.certFile, 'utf8'), key: readFileSync(tls.keyFile, 'utf8') };
}

export class WebhookServer {
  private server?: Server;
  private readonly routes: Map<string, AdmissionHandler>;
  private readonly logger: Logger;
  private watched: string[] = [];

  constructor(private readonly options: WebhookServerOptions) {
    this.routes = routes(options.handlers);
    this.logger = options.logger.child({ name: 'kopf.admission' });
  }

  /** Starts listening; resolves with the port. */
  async start(): Promise<number> {
    const { options } = this;
    const server = createServer(readTls(options.tls), (req, res) => void this.serve(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) =>
      this.logger.error({ err: error }, `The webhook server failed: ${error.message}`),
    );
    if ('certFile' in options.tls) {
      const tls = options.tls;
      const reload = () => {
        try {
          server.setSecureContext(readTls(tls));
          this.logger.info(`Reloaded the webhook server's certificate from ${tls.certFile}.`);
        } catch (error) {
          this.logger.warn(`Could not reload the webhook certificate: ${(error as Error).message}`);
        }
      };
      this.watched = [tls.certFile, tls.keyFile];
      for (const file of this.watched) watchFile(file, { interval: 30_000, persistent: false }, reload);
    }
    const port = (server.address() as { port: number }).port;
    this.logger.info(
      `Serving ${this.routes.size} admission webhook(s) at https://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}: ${[...this.routes.keys()].join(', ')}.`,
    );
    return port;
  }

  /** Stops listening and drops open connections. */
  async stop(): Promise<void> {
    for (const file of this.watched) unwatchFile(file);
    const server = this.server;
    if (!server?.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? '/', 'https://webhook').pathname;
    const handler = this.routes.get(path);
    if (!handler) return reply(404, { error: `No admission webhook at ${path}.` });
    if (req.method !== 'POST') return reply(405, { error: 'POST an AdmissionReview.' });
    let text: string;
    try {
      text = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) reject(new Error('the request body is too large'));
          else chunks.push(chunk);
        });
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
      });
    } catch (error) {
      return reply(413, { error: (error as Error).message });
    }
    let incoming: AdmissionReview;
    try {
      incoming = JSON.parse(text) as AdmissionReview;
    } catch {
      return reply(400, { error: 'The body is not JSON.' });
    }
    const request = incoming.request;
    if (!request?.uid) return reply(400, { error: 'The body is not an AdmissionReview with a request.' });
    let response: AdmissionResponse;
    if (request.namespace && this.options.servesNamespace && !this.options.servesNamespace(request.namespace))
      response = { uid: request.uid, allowed: true };
    else response = await review(handler, request, this.logger);
    reply(200, {
      apiVersion: incoming.apiVersion ?? 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response,
    });
  }
}
