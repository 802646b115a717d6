/**
 * The liveness endpoint (`--liveness http://0.0.0.0:8080/healthz`): answers 200 with the probe
 * results while the operator's watch-streams are healthy, 503 otherwise. Probes (`on.probe`)
 * run at most every 10 seconds; their results are cached in between.
 */
import type { Server } from 'node:http';
import type { Memo } from '../registry/context.ts';
import type { ActivityHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';
import { runActivity } from './run.ts';
import { http } from '../util/http.ts';

const PROBE_INTERVAL_MS = 10_000;

export interface Health {
  healthy: boolean;
  /** Why not, when unhealthy. */
  problems: string[];
}

export class LivenessEndpoint {
  private server?: Server;
  private cached?: { at: number; results: Record<string, unknown> };

  constructor(
    private readonly url: URL,
    private readonly probes: ActivityHandler[],
    private readonly health: () => Health,
    private readonly logger: Logger,
    private readonly memo: Memo,
  ) {}

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    this.server = http.createServer((req, res) => {
      if ((req.url ?? '/').split('?')[0] !== this.url.pathname) {
        res.writeHead(404).end();
        return;
      }
      void this.report().then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
      });
    });
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(Number(this.url.port || 80), host, resolve);
    });
    const address = this.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    this.logger.info(`Serving the liveness endpoint at http://${host}:${port}${this.url.pathname}.`);
    return port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
  }

  private async report(): Promise<{ status: number; body: unknown }> {
    const health = this.health();
    if (!this.cached || Date.now() - this.cached.at > PROBE_INTERVAL_MS) {
      const results: Record<string, unknown> = {};
      for (const probe of this.probes) {
        try {
          results[probe.id] = await runActivity(
            { ...probe, options: { ...probe.options, retries: 1 } },
            this.logger,
            this.memo,
            { quiet: true },
          );
        } catch (error) {
          results[probe.id] = { error: (error as Error).message };
        }
      }
      this.cached = { at: Date.now(), results };
    }
    return {
      status: health.healthy ? 200 : 503,
      body: { ok: health.healthy, problems: health.problems, probes: this.cached.results },
    };
  }
}
