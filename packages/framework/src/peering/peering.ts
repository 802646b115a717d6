/**
 * Peering, as Kopf does it (`kopf/_core/engines/peering.py`), interoperable with Kopf: operators
 * of one peering object (`KopfPeering` per namespace, or `ClusterKopfPeering`) keep their
 * records `{priority, lifetime, lastseen}` in its `status` under their identity. A live peer
 * with a higher priority pauses us; live peers with the same priority pause everyone (with a
 * warning); dead peers are cleaned away. We re-evaluate when a peer's record changes and
 * exactly when a blocking peer's lifetime runs out.
 *
 * Beyond Kopf: our record also says `busy` — false once we are paused and our running
 * handlers have finished. A peer that takes over from a lower-priority kopf-ts peer waits for
 * that (up to {@link HANDOVER_GRACE} seconds), so that no object is handled by both at once.
 * Kopf ignores the extra field, and writes none (it is not waited for).
 */
import { randomInt } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { resourceName, resourcePath, type Resource } from '../kube/resources.ts';
import type { JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';
import { watchObjects } from '../watching/watcher.ts';

export const CLUSTER_PEERINGS: Resource = {
  group: 'kopf.dev',
  version: 'v1',
  plural: 'clusterkopfpeerings',
  kind: 'ClusterKopfPeering',
  namespaced: false,
  subresources: [],
  verbs: [],
};
export const NAMESPACED_PEERINGS: Resource = {
  ...CLUSTER_PEERINGS,
  plural: 'kopfpeerings',
  kind: 'KopfPeering',
  namespaced: true,
};

export interface PeeringOptions {
  /** The peering object's name. Default `default`. */
  name: string;
  /** Explicitly named (`--peering`): wait for it if it does not exist, rather than run standalone. */
  mandatory: boolean;
  priority: number;
  /** Seconds our record stays valid without a keep-alive. Default 60. */
  lifetime: number;
  identity: string;
  /** Where: a namespace for `KopfPeering`, undefined for `ClusterKopfPeering`. */
  namespace?: string;
}

/** Kopf's identity: `POD_ID`, else `user@host/<YYYYmmddHHMMSS>/<3 random chars>` (`user@host` for manual commands). */
export function detectIdentity(manual = false, env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_ID) return env.POD_ID;
  const who = `${userInfo().username}@${hostname()}`;
  if (manual) return who;
  const now = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const alphabet = 'abcdefhijklmnopqrstuvwxyz0123456789';
  const random = Array.from({ length: 3 }, () => alphabet[randomInt(alphabet.length)]).join('');
  return `${who}/${now}/${random}`;
}

/** Seconds a newcomer waits at most for busy lower-priority peers to finish their handlers. */
export const HANDOVER_GRACE = 60;

interface Peer {
  identity: string;
  priority: number;
  /** kopf-ts peers only: handlers may be running. */
  busy?: boolean;
  lifetime: number;
  lastseen: Date;
  deadline: number;
}

function peersOf(body: JsonObject): Peer[] {
  const status = body.status;
  if (!status || typeof status !== 'object' || Array.isArray(status)) return [];
  return Object.entries(status).flatMap(([identity, info]) => {
    if (!info || typeof info !== 'object' || Array.isArray(info)) return [];
    const record = info as { priority?: unknown; lifetime?: unknown; lastseen?: unknown; busy?: unknown };
    const lifetime = Number(record.lifetime ?? 60);
    // Kopf writes aware times; naive ones (older Kopf) are UTC.
    const text = typeof record.lastseen === 'string' ? record.lastseen : undefined;
    const lastseen = text ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`) : new Date();
    return [
      {
        identity,
        priority: Number(record.priority ?? 0),
        busy: typeof record.busy === 'boolean' ? record.busy : undefined,
        lifetime,
        lastseen,
        deadline: lastseen.getTime() + lifetime * 1000,
      },
    ];
  });
}

/** Kopf's `lastseen`: `datetime.now(UTC).isoformat()` (microseconds, `+00:00`). */
function lastseenNow(): string {
  return new Date().toISOString().replace('Z', '000+00:00');
}

function describe(peers: Peer[]): string {
  return peers.map((p) => `${p.identity} (priority ${p.priority})`).join(', ');
}

export class Peering {
  private paused = false;
  /** The first evaluation after joining resumes without a message (we were never really paused). */
  private quietResume = false;
  private resumed?: PromiseWithResolvers<void>;
  private latest?: JsonObject;
  private timer?: NodeJS.Timeout;
  /** Paused, and nothing of ours runs any more (told by the operator); nothing runs before we start. */
  private idle = true;
  /** While resuming: our record says `busy` before anything is handled. */
  private resuming?: Promise<void>;
  /** Since when we have waited for busy lower-priority peers (ms), if we do. */
  private waitingSince?: number;
  private readonly resource: Resource;

  constructor(
    private readonly client: KubeClient,
    private readonly options: PeeringOptions,
    private readonly logger: Logger,
    private readonly onChange: (paused: boolean) => void = () => undefined,
  ) {
    this.resource = options.namespace === undefined ? CLUSTER_PEERINGS : NAMESPACED_PEERINGS;
  }

  private get where(): string {
    return `${this.options.name}' ${this.options.namespace ? `in '${this.options.namespace}'` : 'cluster-wide'}`;
  }

  /** Resolves at once when not paused; else when resumed (or `signal` aborts). */
  async waitUntilResumed(signal: AbortSignal): Promise<void> {
    if (signal.aborted || (!this.paused && !this.resuming)) return;
    const aborted = new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    if (!this.paused) return Promise.race([this.resuming, aborted]);
    this.resumed ??= Promise.withResolvers<void>();
    await Promise.race([this.resumed.promise, aborted]);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Finds the peering object: false (standalone) when it is missing and was not asked for by
   * name; waits for it when it was. Then keeps our record alive and watches the peers until
   * `signal` aborts, and removes our record at the end.
   */
  async run(signal: AbortSignal, onReady: (peering: boolean) => void): Promise<void> {
    if (!(await this.exists())) {
      if (!this.options.mandatory) {
        this.logger.warn(
          `The peering object '${this.where} is not found (or the peering CRDs are not installed); running standalone.`,
        );
        onReady(false);
        return;
      }
      this.setPaused(
        true,
        `Waiting for the peering object '${this.where} to be created; not handling anything meanwhile.`,
      );
      onReady(true);
      while (!signal.aborted && !(await this.exists())) await sleep(2000, signal);
      if (signal.aborted) return;
      this.setPaused(false, `The peering object '${this.where} exists now.`);
    } else {
      // Paused until the first look at the peers (as Kopf starts): no handling before we know.
      this.paused = true;
      this.quietResume = true;
      onReady(true);
    }
    const keepalive = this.keepalive(signal);
    const watching = this.watch(signal);
    await Promise.all([keepalive, watching]);
    clearTimeout(this.timer);
    try {
      await this.touch(0);
    } catch (error) {
      this.logger.warn(`Could not remove our record from the peering: ${(error as Error).message}`);
    }
  }

  /**
   * The operator's word that, paused, nothing of it runs any more (or runs again): published
   * at once, so that a higher-priority newcomer waiting for it can start.
   */
  markIdle(idle: boolean): void {
    if ((idle && !this.paused) || idle === this.idle) return;
    this.idle = idle;
    void this.publish();
  }

  /** Writes our record now (its `busy` changed); a failure is only logged: the keep-alive retries. */
  private publish(): Promise<void> {
    return this.touch().catch((error: unknown) =>
      this.logger.warn(`Could not update our record in '${this.where}: ${(error as Error).message}`),
    );
  }

  /** Writes our record (or removes it with lifetime 0). */
  async touch(lifetime = this.options.lifetime): Promise<void> {
    const busy = !(this.paused && this.idle);
    const record =
      lifetime > 0 ? { priority: this.options.priority, lifetime, lastseen: lastseenNow(), busy } : null;
    await this.patchStatus({ [this.options.identity]: record });
    this.logger.debug(`Keep-alive in '${this.where}: ok.`);
  }

  private async exists(): Promise<boolean> {
    try {
      await this.client.request({
        method: 'GET',
        path: resourcePath(this.resource, { namespace: this.options.namespace, name: this.options.name }),
        target: {
          verb: 'get',
          resource: resourceName(this.resource),
          namespace: this.options.namespace,
          name: this.options.name,
        },
      });
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.notFound) return false;
      // Forbidden: the operator may not read peerings (RBAC). Not silently standalone when asked for by name.
      if (error instanceof ApiError && error.forbidden && !this.options.mandatory) {
        this.logger.error(`Cannot read the peering object '${this.where}: ${error.message}`);
        return false;
      }
      throw error;
    }
  }

  private async patchStatus(status: JsonObject): Promise<void> {
    await this.client.request({
      method: 'PATCH',
      path: resourcePath(this.resource, { namespace: this.options.namespace, name: this.options.name }),
      body: { status },
      contentType: 'application/merge-patch+json',
      target: {
        verb: 'patch',
        resource: resourceName(this.resource),
        namespace: this.options.namespace,
        name: this.options.name,
      },
    });
  }

  private async keepalive(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.touch();
      } catch (error) {
        this.logger.warn(`Keep-alive in '${this.where} failed: ${(error as Error).message}`);
      }
      const lifetime = this.options.lifetime;
      await sleep(Math.max(1, Math.min(lifetime, lifetime - randomInt(5, 11))) * 1000, signal);
    }
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const events = watchObjects(this.client, {
      resource: this.resource,
      namespace: this.options.namespace,
      fieldSelector: `metadata.name=${this.options.name}`,
      signal,
      logger: this.logger,
    });
    for await (const event of events) {
      if (event.type === 'SYNCED') continue;
      if (event.type === 'DELETED') {
        this.latest = undefined;
        this.evaluate();
        continue;
      }
      this.latest = event.object;
      this.evaluate();
    }
  }

  /** Pauses or resumes by the live peers' priorities; re-evaluates when a blocker expires. */
  private evaluate(): void {
    clearTimeout(this.timer);
    const now = Date.now();
    const peers = this.latest ? peersOf(this.latest) : [];
    const dead = peers.filter((p) => p.deadline <= now);
    const live = peers.filter((p) => p.deadline > now && p.identity !== this.options.identity);
    const higher = live.filter((p) => p.priority > this.options.priority);
    const same = live.filter((p) => p.priority === this.options.priority);
    // Lower-priority kopf-ts peers that still run handlers: they pause for us, but must finish first.
    const busy = live.filter((p) => p.priority < this.options.priority && p.busy === true);
    if (higher.length || same.length || !busy.length) this.waitingSince = undefined;
    else this.waitingSince ??= now;
    const waiting = this.waitingSince !== undefined && now - this.waitingSince < HANDOVER_GRACE * 1000;
    if (dead.length) {
      void this.patchStatus(Object.fromEntries(dead.map((p) => [p.identity, null]))).catch((error: unknown) =>
        this.logger.debug(`Cleaning dead peers failed: ${(error as Error).message}`),
      );
    }
    if (higher.length) this.setPaused(true, `Pausing operations in favour of ${describe(higher)}.`);
    else if (same.length) {
      this.logger.warn(`Possibly conflicting operators with the same priority: ${describe(same)}.`);
      this.setPaused(
        true,
        `Pausing all operators, including self: ${describe(same)} and ${this.options.identity}.`,
      );
    } else if (waiting)
      this.setPaused(
        true,
        `Waiting for lower-priority peers to finish their running handlers: ${describe(busy)}.`,
      );
    else {
      if (busy.length)
        this.logger.warn(
          `Lower-priority peers are still busy after ${HANDOVER_GRACE}s: ${describe(busy)}. Starting anyway.`,
        );
      this.setPaused(
        false,
        'Resuming operations after the pause. Conflicting operators with the same priority are gone.',
      );
    }
    const deadlines = [...higher, ...same, ...(waiting ? busy : [])].map((p) => p.deadline);
    if (waiting) deadlines.push(this.waitingSince! + HANDOVER_GRACE * 1000);
    if (deadlines.length) {
      const next = Math.min(...deadlines);
      this.timer = setTimeout(() => this.evaluate(), Math.max(0, next - Date.now()) + 10);
    }
  }

  private setPaused(paused: boolean, message: string): void {
    const quiet = this.quietResume;
    this.quietResume = false;
    if (quiet && paused) {
      // Silently paused since joining; now paused for a reason: say so.
      this.logger.warn(message);
      this.onChange(true);
      return;
    }
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) this.logger.warn(message);
    else {
      if (quiet) this.logger.debug(message);
      else this.logger.info(message);
      // Busy from now on: say so before handling anything (a newcomer reading a stale
      // `busy: false` would not wait for us).
      this.idle = false;
      const resumed = this.resumed;
      this.resumed = undefined;
      const resuming = this.publish().finally(() => {
        resumed?.resolve();
        if (this.resuming === resuming) this.resuming = undefined;
      });
      this.resuming = resuming;
    }
    this.onChange(paused);
  }
}
