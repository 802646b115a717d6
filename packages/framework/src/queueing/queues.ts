/**
 * Per-object serial queues (after Kopf's `queueing.py` and controller-runtime's work queue):
 * - one worker per object key (its uid): cycles of one object never overlap and run in order;
 * - newest state wins: events that arrive during a cycle (or a short batch window) collapse
 *   into the latest one;
 * - after a cycle that patched the object, the next cycle waits until the watch has delivered
 *   that resourceVersion (or a consistency timeout), so it never works on stale state;
 * - delayed handlers bring the object back after their delay, unless an event comes first;
 * - a concurrency limit across objects; a worker with nothing to do ends and its queue is
 *   dropped, so memory follows the live objects only.
 */
import type { Logger } from '../util/logging.ts';

/** What a processor reports back about a cycle. */
export interface CycleOutcome {
  /** The resourceVersion of our own patch, to wait for. */
  version?: string;
  /** Seconds after which to process the object again even without new events. */
  delay?: number;
}

export interface QueuedEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object's resourceVersion. */
  version: string;
}

export interface QueueOptions<E extends QueuedEvent = QueuedEvent> {
  /** Objects processed at the same time. Default 50. */
  concurrency?: number;
  /** Seconds to wait after an event for more of the same object. Default 0.1. */
  batchWindow?: number;
  /** Seconds to wait for our own patch to come back through the watch. Default 5. */
  consistencyTimeout?: number;
  /** Seconds before retrying a cycle that failed unexpectedly (doubling, at most 60). Default 1. */
  errorBackoff?: number;
  /** Awaited before each cycle: e.g. blocks while the operator is paused by peering. */
  gate?: () => Promise<void>;
  /** Told when a cycle starts: seconds since the object's first unprocessed event (or its due time). */
  onCycle?: (waitSeconds: number) => void;
  /**
   * The current state of an object, instead of an event known to be older than the last
   * cycle's own patch: the wait for that patch to come back timed out (e.g. the watch is broken
   * or lags), and everything the watch delivered meanwhile predates it. Without it, the stale
   * event is processed (and its handlers may run again). A failure is retried like a failed cycle.
   */
  refresh?: (key: string, event: E) => Promise<E>;
}

interface Queue<E extends QueuedEvent> {
  latest?: E;
  /** Versions that arrived while a cycle ran: our own patch may come back before the cycle ends. */
  arrived: Set<string>;
  last?: E;
  expected?: string;
  expectedSeen: boolean;
  /** Until when (ms) to wait for `expected` to come back. */
  expectedBy?: number;
  dueAt?: number;
  /** When the oldest event not yet taken by a cycle arrived (ms). */
  pendingSince?: number;
  errors: number;
  wake?: () => void;
}

/** The object is gone: no point waiting for our patch to come back. (A function: the queue changes while we wait.) */
function gone(queue: Queue<QueuedEvent>): boolean {
  return queue.latest?.type === 'DELETED';
}

export class ObjectQueues<E extends QueuedEvent> {
  private readonly queues = new Map<string, Queue<E>>();
  private readonly workers = new Set<Promise<void>>();
  private readonly options: Required<Omit<QueueOptions<E>, 'gate' | 'onCycle' | 'refresh'>> &
    Pick<QueueOptions<E>, 'gate' | 'onCycle' | 'refresh'>;
  private active = 0;
  private readonly slots: Array<() => void> = [];
  private stopping = false;

  constructor(
    private readonly processor: (key: string, event: E) => Promise<CycleOutcome>,
    private readonly logger: Logger,
    options: QueueOptions<E> = {},
  ) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { concurrency: 50, batchWindow: 0.1, consistencyTimeout: 5, errorBackoff: 1, ...given };
  }

  /** Objects with a live queue. */
  get size(): number {
    return this.queues.size;
  }

  /** Hands an event to its object's queue (creating the queue and its worker if needed). */
  push(key: string, event: E): void {
    if (this.stopping) return;
    let queue = this.queues.get(key);
    if (queue) {
      if (!queue.latest) queue.pendingSince = Date.now();
      queue.latest = event;
      queue.arrived.add(event.version);
      if (queue.expected !== undefined && event.version === queue.expected) queue.expectedSeen = true;
      queue.wake?.();
      return;
    }
    queue = { latest: event, arrived: new Set(), expectedSeen: false, errors: 0, pendingSince: Date.now() };
    this.queues.set(key, queue);
    const worker = this.work(key, queue).finally(() => this.workers.delete(worker));
    this.workers.add(worker);
  }

  /** Stops taking events and waits (up to `timeout` seconds) for running cycles to finish. */
  async stop(timeout = 30): Promise<boolean> {
    this.stopping = true;
    for (const queue of this.queues.values()) queue.wake?.();
    for (const release of this.slots.splice(0)) release();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all([...this.workers]).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout * 1000))),
    ]);
    clearTimeout(timer);
    return finished;
  }

  /** Resolves when no queue has anything to do right now (tests, graceful handovers). */
  async idle(): Promise<void> {
    while ([...this.queues.values()].some((q) => q.latest || this.active))
      await new Promise((r) => setTimeout(r, 20));
  }

  /** Resolves when no cycle is running (new ones may start later, e.g. after a pause). */
  async quiet(): Promise<void> {
    while (this.active > 0) await new Promise((r) => setTimeout(r, 20));
  }

  /** Waits until woken by a new event, or for `ms` (if given). */
  private wait(queue: Queue<E>, ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      queue.wake = () => {
        clearTimeout(timer);
        queue.wake = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(() => queue.wake?.(), Math.max(0, ms));
    });
  }

  private async acquire(): Promise<void> {
    while (this.active >= this.options.concurrency && !this.stopping)
      await new Promise<void>((r) => this.slots.push(r));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.slots.shift()?.();
  }

  private async work(key: string, queue: Queue<E>): Promise<void> {
    try {
      while (!this.stopping) {
        if (!queue.latest) {
          // While our last patch has not come back, the queue stays (up to the consistency
          // timeout): the events before it (e.g. of a status patch) then wait for it. A new
          // queue would know nothing of the patch and handle the stale state again.
          const awaiting = queue.expected !== undefined && !queue.expectedSeen ? queue.expectedBy : undefined;
          if (queue.dueAt === undefined && (awaiting === undefined || Date.now() >= awaiting)) break;
          await this.wait(queue, Math.min(queue.dueAt ?? Infinity, awaiting ?? Infinity) - Date.now());
          if (this.stopping) break;
          if (!queue.latest && (queue.dueAt === undefined || Date.now() < queue.dueAt)) continue;
        }
        if (queue.latest && this.options.batchWindow > 0)
          await this.wait(queue, this.options.batchWindow * 1000);
        // Consistency: wait for our own last patch to come back before working on the object again.
        if (queue.expected !== undefined && !queue.expectedSeen && !gone(queue)) {
          const deadline = Date.now() + this.options.consistencyTimeout * 1000;
          while (!queue.expectedSeen && Date.now() < deadline && !this.stopping && !gone(queue)) {
            await this.wait(queue, deadline - Date.now());
          }
          if (!queue.expectedSeen && !gone(queue))
            this.logger.debug(
              `Object ${key}: our patch (version ${queue.expected}) did not come back in time; ${this.options.refresh ? 'reading the object afresh' : 'going on'}.`,
            );
        }
        // Wait for the gate (e.g. a peering pause) and a free slot first, then take the newest
        // event: whatever arrived while waiting supersedes what was there before.
        await this.options.gate?.();
        await this.acquire();
        const event = queue.latest ?? queue.last;
        if (!event || this.stopping) {
          this.release();
          break;
        }
        // Our last patch has still not come back: the event predates it (the watch is in order).
        const stale = queue.expected !== undefined && !queue.expectedSeen && !gone(queue);
        const since = queue.latest ? queue.pendingSince : queue.dueAt;
        if (since !== undefined) this.options.onCycle?.(Math.max(0, Date.now() - since) / 1000);
        queue.latest = undefined;
        queue.pendingSince = undefined;
        queue.arrived.clear();
        queue.last = event;
        queue.dueAt = undefined;
        let outcome: CycleOutcome = {};
        let current: E | undefined = event;
        try {
          if (stale && this.options.refresh) {
            current = undefined;
            current = await this.options.refresh(key, event);
            queue.last = current;
          }
          outcome = await this.processor(key, current);
          queue.errors = 0;
        } catch (error) {
          queue.errors++;
          const delay = Math.min(60, this.options.errorBackoff * 2 ** (queue.errors - 1));
          this.logger.error(
            { err: error },
            `Processing of ${key} failed; retrying in ${delay}s: ${(error as Error).message}`,
          );
          // Not even read afresh: still waiting for our patch, as before.
          outcome = current ? { delay } : { delay, version: queue.expected };
        } finally {
          this.release();
        }
        queue.expected = outcome.version;
        queue.expectedSeen = outcome.version !== undefined && queue.arrived.has(outcome.version);
        queue.expectedBy = Date.now() + this.options.consistencyTimeout * 1000;
        queue.arrived.clear();
        if (outcome.delay !== undefined) queue.dueAt = Date.now() + outcome.delay * 1000;
        if ((current ?? event).type === 'DELETED') break;
      }
    } finally {
      if (this.queues.get(key) === queue) this.queues.delete(key);
    }
  }
}
