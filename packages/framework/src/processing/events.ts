/**
 * Kubernetes Events about handling (failures, and successes if asked for), posted in the
 * background and rate-limited per object, so `kubectl describe` shows what the operator did.
 */
import type { KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { apiVersionOf, type Resource } from '../kube/resources.ts';
import type { JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';

const PER_OBJECT_PER_MINUTE = 10;
const MAX_PENDING = 1000;
const MAX_MESSAGE = 1024;
/** Attempts per Event when the apiserver throttles (429); at most this many seconds between them. */
const THROTTLED_ATTEMPTS = 5;
const MAX_RETRY_AFTER = 10;

export type EventType = 'Normal' | 'Warning';

/** Which Events to post: all, only `Warning` ones (failures; the default), or none. */
export type EventPosting = 'all' | 'warnings' | 'none';

export class EventPoster {
  private readonly recent = new Map<string, number[]>();
  private readonly pending: JsonObject[] = [];
  private running = false;
  private flushing = false;
  /** Cuts short the wait for a throttled Event's retry when a flush begins. */
  private wake?: AbortController;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    private readonly posting: EventPosting = 'warnings',
  ) {}

  /** Queues an Event about `body`; drops it when the object already had too many this minute. */
  post(resource: Resource, body: JsonObject, type: EventType, reason: string, message: string): void {
    if (this.posting === 'none' || (this.posting === 'warnings' && type === 'Normal')) return;
    const metadata = (body.metadata ?? {}) as Record<string, string | undefined>;
    const key = metadata.uid ?? `${metadata.namespace}/${metadata.name}`;
    const now = Date.now();
    const times = (this.recent.get(key) ?? []).filter((t) => now - t < 60_000);
    if (times.length >= PER_OBJECT_PER_MINUTE || this.pending.length >= MAX_PENDING) return;
    times.push(now);
    this.recent.set(key, times);
    const time = new Date(now).toISOString();
    const namespace = metadata.namespace ?? 'default';
    this.pending.push({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${metadata.name ?? 'object'}.`, namespace },
      involvedObject: {
        apiVersion: apiVersionOf(resource),
        kind: resource.kind,
        name: metadata.name ?? '',
        namespace: metadata.namespace ?? '',
        uid: metadata.uid ?? '',
        resourceVersion: metadata.resourceVersion ?? '',
      },
      type,
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
      source: { component: 'kopf' },
      reportingComponent: 'kopf',
      reportingInstance: 'kopf-ts',
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    });
    if (!this.running) void this.drain();
  }

  /** Forgets the rate-limit history of objects that are gone. */
  forget(uid: string): void {
    this.recent.delete(uid);
  }

  /** Resolves when everything queued so far has been posted (or failed). */
  async flush(): Promise<void> {
    // On the way out, a throttled Event is dropped rather than waited for.
    this.flushing = true;
    this.wake?.abort();
    try {
      while (this.running || this.pending.length) await new Promise((r) => setTimeout(r, 20));
    } finally {
      this.flushing = false;
    }
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let event = this.pending.shift(); event; event = this.pending.shift()) await this.send(event);
    } finally {
      this.running = false;
    }
  }

  /**
   * Posts one Event. Throttled (429), it waits as long as the apiserver asks (Retry-After) and
   * tries again, a few times: the Events after it wait too, so a throttled operator neither
   * loses its Events nor posts them one after another into 429s. Other failures drop it.
   */
  private async send(event: JsonObject): Promise<void> {
    const namespace = (event.metadata as { namespace: string }).namespace;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.request({
          method: 'POST',
          path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
          body: event,
          target: { verb: 'create', resource: 'events.v1', namespace },
          retry: false,
        });
        return;
      } catch (error) {
        const throttled = error instanceof ApiError && error.code === 429;
        if (!throttled || attempt >= THROTTLED_ATTEMPTS || this.flushing) {
          // Events are informational: a failure to post one must not disturb handling.
          this.logger.debug(`Failed to post an event: ${(error as Error).message}`);
          return;
        }
        const seconds = Math.min(MAX_RETRY_AFTER, error.retryAfter ?? 1) * attempt;
        this.wake = new AbortController();
        await sleep((seconds + Math.random() * 0.5) * 1000, this.wake.signal);
      }
    }
  }
}
