/**
 * Prometheus metrics of a running operator (`--metrics 127.0.0.1:9090`), through prom-client:
 * handler invocations, outcomes and durations; queue depth and wait; watch (re)connects, errors
 * and events; API requests by verb and code; the peering pause. The runtime calls the small
 * `OperatorMetrics` interface; nothing is collected, and nothing listens, unless it is asked for.
 * Each instance has its own prom-client registry (several operators may share a process).
 */
import type { Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../util/logging.ts';
import { http } from '../util/http.ts';

/** What the runtime reports; every method is cheap (a counter increment or an observation). */
export interface OperatorMetrics {
  /** A handler ran to an outcome. */
  handler(info: { id: string; resource: string; reason: string; outcome: string; seconds: number }): void;
  /** An object's cycle started this long after its first unprocessed event (or its due time). */
  queueWait(seconds: number): void;
  /** A watcher (re)started a LIST or a WATCH stream, or failed and backs off. */
  watchState(info: { resource: string; state: 'listing' | 'watching' | 'backoff' }): void;
  /** An event came through a watch (or a listing). */
  watchEvent(resource: string, type: string): void;
  /** An API request ended (code `error`: no response). */
  apiResponse(info: { verb: string; code: number | 'error'; seconds: number }): void;
  /** Paused (or resumed) by peering. */
  paused(paused: boolean): void;
}

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics implements OperatorMetrics {
  readonly registry = new Registry();
  private server?: Server;
  private readonly handlerCalls: Counter<'handler' | 'resource' | 'reason' | 'outcome'>;
  private readonly handlerSeconds: Histogram<'handler' | 'resource'>;
  private readonly queueWaitSeconds: Histogram;
  private readonly watchStreams: Counter<'resource' | 'kind'>;
  private readonly watchErrors: Counter<'resource'>;
  private readonly watchEvents: Counter<'resource' | 'type'>;
  private readonly apiRequests: Counter<'verb' | 'code'>;
  private readonly apiErrors: Counter<'verb' | 'code'>;
  private readonly apiSeconds: Histogram<'verb'>;
  private readonly pausedGauge: Gauge;

  /** `queueDepth`: the number of objects with a live queue, read at each scrape. */
  constructor(queueDepth: () => number, options: { prefix?: string; defaultMetrics?: boolean } = {}) {
    const p = options.prefix ?? 'kopf_';
    const registers = [this.registry];
    this.handlerCalls = new Counter({
      name: `${p}handler_invocations_total`,
      help: 'Handler invocations by handler id, resource, cause and outcome (success, temporary, permanent).',
      labelNames: ['handler', 'resource', 'reason', 'outcome'],
      registers,
    });
    this.handlerSeconds = new Histogram({
      name: `${p}handler_duration_seconds`,
      help: 'Duration of handler invocations.',
      labelNames: ['handler', 'resource'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: `${p}queue_depth`,
      help: 'Objects with a live queue (waiting for, or in, a processing cycle, or delayed).',
      registers,
      collect() {
        this.set(queueDepth());
      },
    });
    this.queueWaitSeconds = new Histogram({
      name: `${p}queue_wait_seconds`,
      help: "Time from an object's first unprocessed event (or due time) to the start of its cycle.",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.watchStreams = new Counter({
      name: `${p}watch_streams_total`,
      help: 'LIST requests and WATCH streams started (including reconnects), by resource.',
      labelNames: ['resource', 'kind'],
      registers,
    });
    this.watchErrors = new Counter({
      name: `${p}watch_errors_total`,
      help: 'Failed LISTs or WATCH streams (each followed by a backoff), by resource.',
      labelNames: ['resource'],
      registers,
    });
    this.watchEvents = new Counter({
      name: `${p}watch_events_total`,
      help: 'Object events received through LIST and WATCH, by resource and type.',
      labelNames: ['resource', 'type'],
      registers,
    });
    this.apiRequests = new Counter({
      name: `${p}api_requests_total`,
      help: 'API requests by verb and HTTP status code (`error`: no response); watch streams only when they fail.',
      labelNames: ['verb', 'code'],
      registers,
    });
    this.apiErrors = new Counter({
      name: `${p}api_request_errors_total`,
      help: 'API requests that failed (status >= 400, or no response), by verb and code.',
      labelNames: ['verb', 'code'],
      registers,
    });
    this.apiSeconds = new Histogram({
      name: `${p}api_request_duration_seconds`,
      help: 'Duration of API requests (until the response headers), by verb.',
      labelNames: ['verb'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.pausedGauge = new Gauge({
      name: `${p}paused`,
      help: '1 while peering pauses the operator (a peer with a higher or the same priority is alive).',
      registers,
    });
    this.pausedGauge.set(0);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  handler(info: { id: string; resource: string; reason: string; outcome: string; seconds: number }): void {
    this.handlerCalls.inc({
      handler: info.id,
      resource: info.resource,
      reason: info.reason,
      outcome: info.outcome,
    });
    this.handlerSeconds.observe({ handler: info.id, resource: info.resource }, info.seconds);
  }

  queueWait(seconds: number): void {
    this.queueWaitSeconds.observe(seconds);
  }

  watchState(info: { resource: string; state: 'listing' | 'watching' | 'backoff' }): void {
    if (info.state === 'backoff') this.watchErrors.inc({ resource: info.resource });
    else
      this.watchStreams.inc({ resource: info.resource, kind: info.state === 'listing' ? 'list' : 'watch' });
  }

  watchEvent(resource: string, type: string): void {
    this.watchEvents.inc({ resource, type });
  }

  apiResponse(info: { verb: string; code: number | 'error'; seconds: number }): void {
    // Client verbs may name a subresource ('patch status of'): the label is the verb alone.
    const verb = info.verb.split(' ')[0]!;
    const labels = { verb, code: String(info.code) };
    this.apiRequests.inc(labels);
    if (info.code === 'error' || info.code >= 400) this.apiErrors.inc(labels);
    this.apiSeconds.observe({ verb }, info.seconds);
  }

  paused(paused: boolean): void {
    this.pausedGauge.set(paused ? 1 : 0);
  }

  /** The exposition text (what `/metrics` serves). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Serves `/metrics` on `address` (`host:port`, `:port`, `[::1]:port` or a URL; port 0 picks a
   * free one). Resolves with the bound port.
   */
  async serve(address: string, logger?: Logger): Promise<number> {
    const { host, port, path } = parseAddress(address);
    this.server = http.createServer((req, res) => {
      if ((req.url ?? '/').split('?')[0] !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, resolve);
    });
    const bound = this.server.address();
    const boundPort = typeof bound === 'object' && bound ? bound.port : port;
    logger?.info(
      `Serving Prometheus metrics at http://${host.includes(':') ? `[${host}]` : host}:${boundPort}${path}.`,
    );
    return boundPort;
  }

  /** Stops listening (if it was) and stops the default collectors' timers. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    }
    this.registry.clear();
  }
}

/** `127.0.0.1:9090`, `:9090` (all interfaces), `[::1]:9090`, or `http://host:port/path`. */
export function parseAddress(address: string): { host: string; port: number; path: string } {
  if (address.includes('://')) {
    const url = new URL(address);
    return {
      host: url.hostname.replace(/^\[|\]$/g, '') || '0.0.0.0',
      port: Number(url.port || 80),
      path: url.pathname === '/' ? '/metrics' : url.pathname,
    };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (!match) throw new Error(`Not a metrics address (host:port): '${address}'.`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port: Number(match[3]), path: '/metrics' };
}
