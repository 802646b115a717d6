/**
 * Starts and stops one operator: logs in, resolves the registered resources, starts a
 * watcher per resource and namespace, feeds per-object queues, processes cycles, and stops
 * gracefully (watchers first, then running handlers up to a timeout, then pending Events).
 * Its lifecycle is observable through typed events (eventemitter3).
 */
import { EventEmitter } from 'eventemitter3';
import { LivenessEndpoint, type Health } from '../activities/liveness.ts';
import { builtinLogin, Vault, type LoginOptions } from '../activities/login.ts';
import { ActivityError, runActivity } from '../activities/run.ts';
import { startWebhooks, type RunningWebhooks, type WebhookOptions } from '../admission/serve.ts';
import { KubeClient } from '../kube/client.ts';
import { Objects } from '../kube/objects.ts';
import type { CredentialsSource } from '../kube/credentials.ts';
import {
  Discovery,
  parseSelector,
  resourceName,
  type Resource,
  type ResourceSelector,
} from '../kube/resources.ts';
import type { Metrics } from '../metrics/metrics.ts';
import {
  objectContext,
  processEvent,
  type ObjectEvent,
  type ObjectMemory,
  type ResourceHandlers,
} from '../processing/cycle.ts';
import { EventPoster, type EventPosting } from '../processing/events.ts';
import { readAfresh } from '../processing/refresh.ts';
import { Indexer } from '../processing/indexing.ts';
import { Owners, ownedTargets } from './owners.ts';
import { Spawner } from '../processing/spawning.ts';
import { detectIdentity, Peering } from '../peering/peering.ts';
import { ObjectQueues } from '../queueing/queues.ts';
import type {
  IndexingHandler,
  Reason,
  Registry,
  ResourceHandler,
  ResourceSpec,
} from '../registry/registry.ts';
import { registry as globalRegistry } from '../registry/registry.ts';
import { DEFAULT_PREFIX, keyConvention } from '../state/keys.ts';
import { textOf, type JsonObject } from '../util/json.ts';
import { createLogger, objectLogger, type Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';
import { watchObjects, type WatchEvent } from '../watching/watcher.ts';

export interface OperatorOptions {
  /** Namespaces to serve (names or globs like `team-*`). Empty and not `clusterwide`: the context's namespace. */
  namespaces?: string[];
  /** Serve all namespaces. */
  clusterwide?: boolean;
  /** Credentials; by default the built-in login (in-cluster, else kubeconfig). */
  credentials?: CredentialsSource;
  login?: LoginOptions;
  logger?: Logger;
  /** The annotations prefix. Default `kopf.zalando.org`. */
  prefix?: string;
  /** The finalizer. Default `<prefix>/KopfFinalizerMarker`. */
  finalizer?: string;
  /** Objects processed at once. Default 50. */
  concurrency?: number;
  /**
   * Which Kubernetes Events to post about handling: `warnings` (default: failures and retries),
   * `all` (also `Handler 'x' succeeded.`: one more request per handler run), or `none`.
   */
  events?: EventPosting;
  /** Seconds to let running handlers finish on stop. Default 30. */
  stopTimeout?: number;
  /** Seconds of watch silence after which a stream is re-established. Default 90. */
  inactivityTimeout?: number;
  /** Seconds to wait for our own patch to come back through the watch. Default 5. */
  consistencyTimeout?: number;
  /** Seconds to wait for more events of an object before handling it. Default 0.1. */
  batchWindow?: number;
  /** The handlers; by default the process-wide registry. */
  registry?: Registry;
  /** Serve a liveness endpoint at this URL, e.g. `http://0.0.0.0:8080/healthz`. */
  liveness?: string;
  /** Serve Prometheus metrics at `/metrics` on this address, e.g. `127.0.0.1:9090` (port 0: any). */
  metrics?: string;
  /**
   * Serve the admission handlers (`on.validate`, `on.mutate`) over HTTPS on this host and port,
   * optionally configuring the cluster to call them (docs/admission.md). Nothing listens without it.
   */
  webhooks?: WebhookOptions;
  /**
   * Coordination with other operator instances through Kopf's peering objects; `false` for
   * standalone. Default: the peering `default` if it exists (standalone otherwise), priority 0.
   */
  peering?:
    false | { name?: string; mandatory?: boolean; priority?: number; lifetime?: number; identity?: string };
}

/** What a running operator reports. */
export interface OperatorEvents {
  /** All resources are watched and their initial lists were dispatched. */
  ready: () => void;
  /** A handler ran. */
  handler: (info: {
    id: string;
    reason: Reason | 'reconcile';
    outcome: 'success' | 'temporary' | 'permanent';
    seconds: number;
    resource: string;
  }) => void;
  /** A watch stream changed state. */
  watch: (info: {
    resource: string;
    namespace?: string;
    state: 'listing' | 'watching' | 'backoff';
    error?: Error;
  }) => void;
  /** Paused (or resumed) by peering: a higher- or same-priority peer is (no longer) alive. */
  paused: (paused: boolean) => void;
  /** The liveness endpoint is listening (on this port). */
  liveness: (port: number) => void;
  /** The admission webhook server is listening (on this port; the apiserver is told to call `url`). */
  webhooks: (info: { port: number; url: string }) => void;
  /** The metrics endpoint is listening (on this port). */
  metrics: (port: number) => void;
  /** The operator stopped; `error` when it stopped because of a failure (e.g. no credentials). */
  stopped: (error?: Error) => void;
}

/** What one watch-stream feeds: a resource (optionally label-selected) and where its events go. */
interface WatchTarget {
  resource: Resource;
  labelSelector?: string;
  /** Handles one event; `listing`: it comes from the initial list. */
  deliver(event: Exclude<WatchEvent, { type: 'SYNCED' }>, listing: boolean): void;
  /** Resolves when what `deliver` started (e.g. async indexing) is done. */
  settled?: () => Promise<void>;
}

/**
 * Says that API requests are being retried (throttling, 5xx, resets): the first at once, then
 * at most one line per 10 s with the count since the last, so that sustained throttling is
 * visible without flooding the log.
 */
function retriesLogger(logger: Logger): (error: Error, attempt: number, delaySeconds: number) => void {
  let last = 0;
  let since = 0;
  return (error, attempt, delaySeconds) => {
    since++;
    if (Date.now() - last < 10_000) return;
    logger.warn(
      `API requests are being retried (${since} since the last report; this one attempt ${attempt}, again in ${delaySeconds.toFixed(1)}s): ${error.message}`,
    );
    last = Date.now();
    since = 0;
  };
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

/** How long a stop waits for the watch-streams to end before it closes their connections. */
const TASKS_STOP_TIMEOUT_MS = 10_000;

export class Operator extends EventEmitter<OperatorEvents> {
  readonly logger: Logger;
  private readonly abort = new AbortController();
  private client?: KubeClient;
  private events?: EventPoster;
  private queues?: ObjectQueues<ObjectEvent & { version: string }>;
  private readonly tasks = new Set<Promise<void>>();
  private readonly watchers = new Map<string, AbortController>();
  private readonly memories = new Map<string, ObjectMemory>();
  private stopped?: Promise<void>;
  private failure?: Error;
  private readonly memo: Record<string, unknown> = {};
  private readonly watchStates = new Map<string, { state: string; error?: Error }>();
  private liveness?: LivenessEndpoint;
  private metrics?: Metrics;
  private peerings: Peering[] = [];
  private webhooks?: RunningWebhooks;
  private readonly spawners: Spawner[] = [];
  private indexer = new Indexer([]);
  private api?: Objects;
  private readonly owners: Owners;
  /** Per indexed resource: the chain of its (serial, possibly async) index updates. */
  private readonly indexing = new Map<string, Promise<void>>();

  constructor(private readonly options: OperatorOptions = {}) {
    super();
    this.logger = options.logger ?? createLogger();
    this.owners = new Owners((rh, body) => this.requeue(rh, body), this.logger);
  }

  /** Starts the operator; resolves once all its resources are watched and initially listed. */
  async start(): Promise<void> {
    const { options, logger } = this;
    const registry = options.registry ?? globalRegistry();
    const handlers = registry.handlers;
    if (!handlers.length && !registry.webhooks.length)
      logger.warn('No handlers are registered: the operator will do nothing.');
    const credentials = options.credentials ?? (await this.authenticate(registry));
    for (const activity of registry.activities.filter((a) => a.kind === 'startup')) {
      try {
        await runActivity(activity, logger.child({ name: 'kopf.activities.startup' }), this.memo, {
          signal: this.abort.signal,
        });
      } catch (error) {
        throw new ActivityError(`Startup failed: ${(error as Error).message}`, { cause: error });
      }
    }
    if (options.liveness) {
      this.liveness = new LivenessEndpoint(
        new URL(options.liveness),
        registry.activities.filter((a) => a.kind === 'probe'),
        () => this.health(),
        logger,
        this.memo,
      );
      this.emit('liveness', await this.liveness.start());
    }
    const metrics = options.metrics ? await this.startMetrics() : undefined;
    if (metrics) this.emit('metrics', await metrics.serve(options.metrics!, logger));
    const client = new KubeClient(credentials, {
      onResponse: metrics && ((info) => metrics.apiResponse(info)),
      onRetry: retriesLogger(logger),
    });
    this.client = client;
    this.events = new EventPoster(client, logger, options.events);
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    const settings = {
      convention: keyConvention(prefix),
      finalizer: options.finalizer ?? `${prefix}/KopfFinalizerMarker`,
    };

    const namespaces = await this.namespaces(credentials);
    await this.startWebhooks(client, registry, namespaces);
    this.indexer = new Indexer(handlers.filter((h): h is IndexingHandler => h.kind === 'indexing'));
    const indexes = this.indexer;
    const discovery = new Discovery(client);
    const groups = await this.resolveResources(discovery, handlers);
    const owned = await ownedTargets(groups, (spec) => this.resolveOrWait(discovery, spec));
    const byKey = new Map<string, ResourceHandlers>();
    for (const g of groups) byKey.set(resourceName(g.resource), g);
    const events = this.events;
    const api = new Objects(client);
    this.api = api;
    await this.startPeering(client, namespaces);
    // Handlers wait until the indexes are populated at start-up, and while paused by peering.
    const indexed = Promise.withResolvers<void>();
    this.abort.signal.addEventListener('abort', () => indexed.resolve(), { once: true });
    const gate = async (signal: AbortSignal) => {
      await indexed.promise;
      await Promise.all(this.peerings.map((p) => p.waitUntilResumed(signal)));
    };
    // Timers and daemons: their own tasks per object, paused with the operator.
    for (const g of groups) {
      if (!g.spawning.length) continue;
      const spawner = new Spawner({ client, api, gate }, g.resource, g.spawning, (body, patch, memo, log) =>
        objectContext(g.resource, body, patch, memo, log, api, indexes),
      );
      g.spawner = spawner;
      this.spawners.push(spawner);
    }
    this.on('paused', (paused) => {
      const stopping = Promise.all(this.spawners.map((spawner) => spawner.setPaused(paused)));
      if (!paused) return;
      // Once nothing of ours runs any more, the peering records say so (a newcomer waits for it).
      void Promise.all([stopping, this.queues?.quiet()]).then(() => {
        for (const peering of this.peerings) if (peering.isPaused) peering.markIdle(true);
      });
    });
    this.queues = new ObjectQueues(
      (key, event) => {
        const rh = byKey.get(key.slice(0, key.indexOf(' ')))!;
        const uid = key.slice(key.indexOf(' ') + 1);
        const memory = this.memoryOf(uid);
        if (event.type === 'DELETED') {
          this.memories.delete(uid);
          this.events?.forget(uid);
        }
        const onHandler = (info: Omit<Parameters<OperatorEvents['handler']>[0], 'resource'>) =>
          this.emit('handler', { ...info, resource: resourceName(rh.resource) });
        return processEvent({ client, api, indexes, settings, logger, events, onHandler }, rh, event, memory);
      },
      logger,
      {
        concurrency: options.concurrency,
        consistencyTimeout: options.consistencyTimeout,
        batchWindow: options.batchWindow,
        gate: () => gate(this.abort.signal),
        onCycle: metrics && ((seconds) => metrics.queueWait(seconds)),
        refresh: (key, event) =>
          readAfresh(client, byKey.get(key.slice(0, key.indexOf(' ')))!.resource, event),
      },
    );

    const synced: Array<Promise<void>> = [];
    const indexedSynced: Array<Promise<void>> = [];
    for (const rh of groups) {
      const target: WatchTarget = {
        resource: rh.resource,
        deliver: (event, listing) => this.dispatch(rh, event, listing),
        settled: () => this.indexing.get(resourceName(rh.resource)) ?? Promise.resolve(),
      };
      const watched = this.watchIn(target, namespaces);
      synced.push(watched);
      if (rh.indexing.length) indexedSynced.push(watched);
      if (rh.reconciling.length) this.track(this.owners.resync(rh, this.abort.signal));
    }
    for (const target of owned) {
      synced.push(
        this.watchIn(
          {
            resource: target.resource,
            labelSelector: target.labelSelector,
            // The owners reconcile after their own initial listing: no need to for each child's.
            deliver: (event, listing) => {
              if (!listing) this.owners.childChanged(target.owners, event.object);
            },
          },
          namespaces,
        ),
      );
    }
    void Promise.all(indexedSynced).then(() => {
      if (indexedSynced.length)
        logger.info(`The indexes are populated: ${this.indexer.ids().join(', ')}. Handlers may run.`);
      indexed.resolve();
    });
    await Promise.race([
      Promise.all(synced),
      new Promise((r) => this.abort.signal.addEventListener('abort', r, { once: true })),
    ]);
    if (!this.abort.signal.aborted) this.emit('ready');
  }

  /** The operator's indexes (`on.index`), e.g. for tests. */
  get indexes(): Indexer {
    return this.indexer;
  }

  /** Watches a target in the served namespaces; resolves once the initial lists are dispatched. */
  private watchIn(target: WatchTarget, namespaces: string[] | undefined): Promise<void> {
    if (!target.resource.namespaced || namespaces === undefined) return this.startWatcher(target, undefined);
    if (namespaces.every((n) => !/[*?]/.test(n)))
      return Promise.all(namespaces.map((ns) => this.startWatcher(target, ns))).then(() => undefined);
    return this.watchNamespaces(target, namespaces);
  }

  /** Brings an object back to its queue with its newest known state (children, resyncs). */
  private requeue(rh: ResourceHandlers, body: JsonObject): void {
    const metadata = (body.metadata ?? {}) as JsonObject;
    this.queues?.push(`${resourceName(rh.resource)} ${textOf(metadata.uid)}`, {
      type: 'MODIFIED',
      object: body,
      version: textOf(metadata.resourceVersion),
      requeued: true,
    });
  }

  /** Stops watching, lets running handlers finish (up to the stop timeout), then closes. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.logger.info('Stop requested: stopping the watch-streams and letting running handlers finish.');
      this.abort.abort();
      for (const controller of this.watchers.values()) controller.abort();
      const finished = await (this.queues?.stop(this.options.stopTimeout ?? 30) ?? Promise.resolve(true));
      await Promise.all(this.spawners.map((s) => s.stopAll()));
      if (!finished)
        this.logger.warn(
          'Some handlers did not finish in time; they are abandoned (their progress is kept for the next start).',
        );
      await this.settleTasks();
      await this.events?.flush();
      const registry = this.options.registry ?? globalRegistry();
      for (const activity of registry.activities.filter((a) => a.kind === 'cleanup')) {
        await runActivity(activity, this.logger.child({ name: 'kopf.activities.cleanup' }), this.memo, {
          signal: AbortSignal.timeout(30_000),
        }).catch(() => undefined);
      }
      await this.webhooks?.stop();
      await this.liveness?.stop();
      await this.metrics?.stop();
      await this.client?.close();
      this.logger.info('The operator has stopped.');
      this.emit('stopped', this.failure);
    })();
    return this.stopped;
  }

  /**
   * Waits for the watch-streams and other tasks to end after the abort. One that has not ended
   * after 10 s (a connection that ignored the abort) gets its connections closed under it, so
   * that a stop always completes.
   */
  private async settleTasks(): Promise<void> {
    const done = Promise.all([...this.tasks]);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      done.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), TASKS_STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (ended) return;
    this.logger.warn(
      `Some watch-streams did not end within ${TASKS_STOP_TIMEOUT_MS / 1000} s of the stop; closing their connections.`,
    );
    await this.client?.close();
    await done;
  }

  /** Joins the peering (per served namespace, or cluster-wide); resolves once it is known whether there is one. */
  private async startPeering(client: KubeClient, namespaces: string[] | undefined): Promise<void> {
    const config = this.options.peering;
    if (config === false) return;
    const identity = config?.identity ?? detectIdentity();
    let scopes: Array<string | undefined> = namespaces ?? [undefined];
    if (namespaces?.some((n) => /[*?]/.test(n))) {
      this.logger.warn('Namespace globs: peering uses the cluster-wide peering object.');
      scopes = [undefined];
    }
    const ready: Array<Promise<void>> = [];
    for (const namespace of scopes) {
      const peering = new Peering(
        client,
        {
          name: config?.name ?? 'default',
          mandatory: config?.mandatory ?? false,
          priority: config?.priority ?? 0,
          lifetime: config?.lifetime ?? 60,
          identity,
          namespace,
        },
        this.logger.child({ name: 'kopf.peering' }),
        () =>
          this.emit(
            'paused',
            this.peerings.some((p) => p.isPaused),
          ),
      );
      const { promise, resolve } = Promise.withResolvers<void>();
      ready.push(promise);
      this.track(
        peering
          .run(this.abort.signal, (joined) => {
            if (joined) this.peerings.push(peering);
            resolve();
          })
          .finally(resolve),
      );
    }
    await Promise.all(ready);
  }

  /** Serves the admission handlers when asked to (the `webhooks` option), and says so when not. */
  private async startWebhooks(
    client: KubeClient,
    registry: Registry,
    namespaces: string[] | undefined,
  ): Promise<void> {
    const handlers = registry.webhooks;
    const config = this.options.webhooks;
    if (!handlers.length) return;
    if (!config) {
      this.logger.info(
        `${handlers.length} admission handler(s) are registered, but no webhook server was asked for (--webhook-server): they are not served.`,
      );
      return;
    }
    const globs = namespaces?.some((n) => /[*?]/.test(n));
    const patterns = namespaces?.map(globToRegExp);
    this.webhooks = await startWebhooks(config, handlers, {
      client,
      logger: this.logger,
      // Globs cannot be a namespaceSelector: the server itself admits other namespaces' requests.
      namespaces: globs ? undefined : namespaces,
      servesNamespace: patterns && ((ns) => patterns.some((p) => p.test(ns))),
    });
    this.emit('webhooks', { port: this.webhooks.port, url: this.webhooks.url });
  }

  /** Logs in through the login activities (or the built-in one) into a vault of credentials. */
  private async authenticate(registry: Registry): Promise<CredentialsSource> {
    const logins = registry.activities.filter((a) => a.kind === 'login');
    const vault = new Vault(
      logins.length ? logins : [builtinLogin(this.options.login ?? {})],
      this.logger,
      this.memo,
      (error) => {
        this.logger.error(`${error.message} Stopping.`);
        this.failure = error;
        void this.stop();
      },
    );
    await vault.login(true);
    return vault;
  }

  /** Healthy while no watch-stream is failing. */
  private health(): Health {
    const problems = [...this.watchStates]
      .filter(([, s]) => s.state === 'backoff')
      .map(([key, s]) => `${key}: ${s.error?.message ?? 'failing'}`);
    if (this.failure) problems.push(this.failure.message);
    return { healthy: problems.length === 0 && !this.abort.signal.aborted, problems };
  }

  /** Creates the metrics (prom-client is loaded only then) and feeds them from the operator's own events. */
  private async startMetrics(): Promise<Metrics> {
    const { Metrics } = await import('../metrics/metrics.ts');
    const metrics = new Metrics(() => this.queued);
    this.metrics = metrics;
    this.on('handler', (info) => metrics.handler(info));
    this.on('watch', (info) => metrics.watchState(info));
    this.on('paused', (paused) => metrics.paused(paused));
    return metrics;
  }

  /** The number of objects with a live queue (tests, metrics). */
  get queued(): number {
    return this.queues?.size ?? 0;
  }

  private memoryOf(uid: string): ObjectMemory {
    let memory = this.memories.get(uid);
    if (!memory) {
      memory = { memo: {}, noticedByListing: false, fullyHandledOnce: false };
      this.memories.set(uid, memory);
    }
    return memory;
  }

  /** The namespaces to serve: undefined for cluster-wide. */
  private async namespaces(credentials: CredentialsSource): Promise<string[] | undefined> {
    if (this.options.clusterwide) return undefined;
    if (this.options.namespaces?.length) return this.options.namespaces;
    const info = await credentials.current();
    const ns = info.defaultNamespace || 'default';
    this.logger.warn(
      `No namespace was given (--namespace or --all-namespaces): serving the context's namespace '${ns}'.`,
    );
    return [ns];
  }

  private async resolveResources(
    discovery: Discovery,
    handlers: ResourceHandler[],
  ): Promise<ResourceHandlers[]> {
    const groups = new Map<string, ResourceHandlers>();
    const specs = new Map<string, ResourceHandler[]>();
    for (const h of handlers) {
      const key = JSON.stringify(h.resource);
      specs.set(key, [...(specs.get(key) ?? []), h]);
    }
    for (const list of specs.values()) {
      const resource = await this.resolveOrWait(discovery, list[0]!.resource);
      if (!resource) break;
      const name = resourceName(resource);
      const group: ResourceHandlers = groups.get(name) ?? {
        resource,
        changing: [],
        watching: [],
        spawning: [],
        indexing: [],
        reconciling: [],
      };
      for (const h of list) {
        if (h.kind === 'changing') group.changing.push(h);
        else if (h.kind === 'watching') group.watching.push(h);
        else if (h.kind === 'indexing') group.indexing.push(h);
        else if (h.kind === 'reconciling') group.reconciling.push(h);
        else group.spawning.push(h);
      }
      groups.set(name, group);
    }
    return [...groups.values()];
  }

  /** Resolves a resource, waiting (and saying so) while the cluster does not serve it. */
  private async resolveOrWait(discovery: Discovery, spec: ResourceSpec): Promise<Resource | undefined> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      const resource = await discovery.resolveOne(spec);
      if (resource) return resource;
      if (attempt === 0) {
        const selector: ResourceSelector = parseSelector(spec);
        this.logger.warn(
          `Resource '${typeof spec === 'string' ? spec : `${selector.plural}.${selector.group ?? ''}`}' is not served by the cluster (is its CRD installed?). Waiting for it.`,
        );
      }
      await sleep(Math.min(10, 1 + attempt) * 1000, this.abort.signal);
      discovery.reset();
    }
    return undefined;
  }

  /** Serves the namespaces matching globs, as they come and go. */
  private watchNamespaces(target: WatchTarget, globs: string[]): Promise<void> {
    const patterns = globs.map(globToRegExp);
    const namespaces: Resource = {
      group: '',
      version: 'v1',
      plural: 'namespaces',
      kind: 'Namespace',
      namespaced: false,
      subresources: [],
      verbs: [],
    };
    const { promise: synced, resolve: resolveSynced } = Promise.withResolvers<void>();
    const task = (async () => {
      const starts: Array<Promise<void>> = [];
      for await (const event of watchObjects(this.client!, {
        resource: namespaces,
        signal: this.abort.signal,
        logger: this.logger,
      })) {
        if (event.type === 'SYNCED') {
          void Promise.all(starts).then(() => resolveSynced());
          continue;
        }
        const name = textOf((event.object.metadata as JsonObject).name);
        if (!patterns.some((p) => p.test(name))) continue;
        const key = watcherKey(target, name);
        if (event.type === 'DELETED') this.watchers.get(key)?.abort();
        else if (!this.watchers.has(key)) starts.push(this.startWatcher(target, name));
      }
    })();
    this.track(task);
    return synced;
  }

  /** Starts a watcher; resolves once its initial list has been dispatched. */
  private startWatcher(target: WatchTarget, namespace: string | undefined): Promise<void> {
    const name = resourceName(target.resource);
    const key = watcherKey(target, namespace);
    const controller = new AbortController();
    this.watchers.set(key, controller);
    const signal = AbortSignal.any([controller.signal, this.abort.signal]);
    this.logger.info(
      `Starting the watch-stream for ${name}${target.labelSelector ? ` (${target.labelSelector})` : ''} ${namespace ? `in '${namespace}'` : 'cluster-wide'}.`,
    );
    const { promise: synced, resolve: resolveSynced } = Promise.withResolvers<void>();
    const task = (async () => {
      let listing = true;
      const stream = watchObjects(this.client!, {
        resource: target.resource,
        labelSelector: target.labelSelector,
        namespace,
        signal,
        logger: this.logger,
        inactivityTimeout: this.options.inactivityTimeout,
        onStatus: (s) => {
          this.watchStates.set(key, s);
          this.emit('watch', { resource: name, namespace, ...s });
        },
      });
      for await (const event of stream) {
        if (event.type !== 'SYNCED') {
          this.metrics?.watchEvent(name, event.type);
          target.deliver(event, listing);
        } else if (event.initial) {
          listing = false;
          void (target.settled?.() ?? Promise.resolve()).then(resolveSynced);
        }
      }
      resolveSynced();
      this.watchers.delete(key);
      this.watchStates.delete(key);
    })();
    this.track(task);
    return synced;
  }

  /** Routes an object's event to its indexes (first) and its queue. */
  private dispatch(
    rh: ResourceHandlers,
    event: Exclude<WatchEvent, { type: 'SYNCED' }>,
    listing: boolean,
  ): void {
    const name = resourceName(rh.resource);
    const metadata = (event.object.metadata ?? {}) as JsonObject;
    const uid = textOf(metadata.uid);
    if (listing) this.memoryOf(uid).noticedByListing = true;
    if (rh.reconciling.length) this.owners.remember(rh, event.type, event.object);
    const handled = rh.changing.length + rh.watching.length + rh.spawning.length + rh.reconciling.length;
    const push = () => {
      if (!handled) {
        // Only indexed: no queue (and no memory) for it.
        if (event.type === 'DELETED') this.memories.delete(uid);
        return;
      }
      this.queues!.push(`${name} ${uid}`, {
        type: event.type,
        object: event.object,
        version: textOf(metadata.resourceVersion),
      });
    };
    if (!rh.indexing.length) return push();
    // Index updates run in order (they may be async); the object's handlers see them done.
    const base = objectContext(
      rh.resource,
      event.object,
      {},
      this.memoryOf(uid).memo,
      objectLogger(this.logger, textOf(metadata.namespace) || undefined, textOf(metadata.name)),
      this.api!,
      this.indexer,
    );
    const chain = (this.indexing.get(name) ?? Promise.resolve())
      .then(() => this.indexer.update(rh.indexing, base, event.type === 'DELETED'))
      .then(push);
    this.indexing.set(name, chain);
  }

  private track(task: Promise<void>): void {
    const tracked = task
      .catch((error: unknown) =>
        this.logger.error({ err: error }, `A background task failed: ${(error as Error).message}`),
      )
      .finally(() => this.tasks.delete(tracked));
    this.tasks.add(tracked);
  }
}

function watcherKey(target: WatchTarget, namespace: string | undefined): string {
  const selector = target.labelSelector ? `[${target.labelSelector}]` : '';
  return `${resourceName(target.resource)}${selector} ${namespace ?? '*'}`;
}
