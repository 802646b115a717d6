/**
 * Timers and daemons: per-object tasks that live while the object exists (after Kopf's
 * `daemons.py`). Each gets an AbortSignal, aborted when the object is being deleted, when the
 * operator pauses (peering) and when it stops. Deletion waits for them (up to their
 * cancellation timeout) before the finalizer is released; timers also skip runs while paused.
 */
import type { KubeClient } from '../kube/client.ts';
import type { Resource } from '../kube/resources.ts';
import type { KubeObject, Memo, ObjectApi, ObjectContext, SpawningContext } from '../registry/context.ts';
import { judgeError } from '../registry/errors.ts';
import type { DaemonOptions, SpawningHandler, TimerOptions } from '../registry/registry.ts';
import type { Patch } from '../state/patch.ts';
import { dumpJson, parseJson, type JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';
import { filtersMatch } from './invocation.ts';
import { applyPatch } from './patching.ts';
import { deliverResult } from './results.ts';

interface Task {
  controller: AbortController;
  done: Promise<void>;
  handler: SpawningHandler;
}

interface Tracked {
  body: JsonObject;
  /** When the object's essence last changed (for idle timers). */
  changedAt: number;
  memo: Memo;
  logger: Logger;
  tasks: Map<string, Task>;
}

export interface SpawnerEnvironment {
  client: KubeClient;
  api: ObjectApi;
  /** Resolves when the operator is not paused. */
  gate: (signal: AbortSignal) => Promise<void>;
}

export class Spawner {
  private readonly objects = new Map<string, Tracked>();
  private paused = false;

  constructor(
    private readonly env: SpawnerEnvironment,
    private readonly resource: Resource,
    private readonly handlers: SpawningHandler[],
    private readonly context: (body: JsonObject, patch: Patch, memo: Memo, logger: Logger) => ObjectContext,
  ) {}

  /** Handlers that need a finalizer on this object (so deletion waits for them). */
  requiresFinalizer(base: ObjectContext): boolean {
    return this.handlers.some((h) => !h.options.optional && filtersMatch(h, base));
  }

  /** Called with each new state of a live (not deleting) object: starts its missing tasks. */
  update(uid: string, body: JsonObject, essenceChanged: boolean, memo: Memo, logger: Logger): void {
    let tracked = this.objects.get(uid);
    if (!tracked) {
      tracked = { body, changedAt: Date.now(), memo, logger, tasks: new Map() };
      this.objects.set(uid, tracked);
    }
    tracked.body = body;
    if (essenceChanged) tracked.changedAt = Date.now();
    if (this.paused) return;
    const base = this.context(body, {}, memo, logger);
    for (const handler of this.handlers) {
      if (tracked.tasks.has(handler.id) || !filtersMatch(handler, base)) continue;
      this.start(uid, tracked, handler);
    }
  }

  /** Stops the object's tasks (deletion): resolves when they are done or abandoned. */
  async stop(uid: string, why: string): Promise<void> {
    const tracked = this.objects.get(uid);
    if (!tracked) return;
    this.objects.delete(uid);
    await this.stopTasks(tracked, why);
  }

  /** Pausing stops all tasks; resuming restarts them for the objects still known. */
  async setPaused(paused: boolean): Promise<void> {
    this.paused = paused;
    if (paused) {
      await Promise.all([...this.objects.values()].map((t) => this.stopTasks(t, 'the operator is paused')));
      return;
    }
    for (const [uid, tracked] of this.objects)
      this.update(uid, tracked.body, false, tracked.memo, tracked.logger);
  }

  /** Stops everything (operator shutdown). */
  async stopAll(): Promise<void> {
    const all = [...this.objects.values()];
    this.objects.clear();
    await Promise.all(all.map((t) => this.stopTasks(t, 'the operator is stopping')));
  }

  private async stopTasks(tracked: Tracked, why: string): Promise<void> {
    const tasks = [...tracked.tasks.values()];
    tracked.tasks.clear();
    await Promise.all(
      tasks.map(async (task) => {
        task.controller.abort(new Error(why));
        const timeout = (task.handler.options as DaemonOptions).cancellationTimeout ?? 60;
        const giveUp = new AbortController();
        const stopped = await Promise.race([
          task.done.then(() => true),
          sleep(timeout * 1000, giveUp.signal).then(() => false),
        ]);
        giveUp.abort(); // no lingering timer keeping the process alive
        if (stopped)
          tracked.logger.debug(`${capitalize(task.handler.kind)} '${task.handler.id}' has stopped (${why}).`);
        else
          tracked.logger.error(
            `${capitalize(task.handler.kind)} '${task.handler.id}' did not stop within ${timeout}s after its signal (${why}); abandoned.`,
          );
      }),
    );
  }

  private start(uid: string, tracked: Tracked, handler: SpawningHandler): void {
    const controller = new AbortController();
    const run =
      handler.kind === 'timer'
        ? this.timer(tracked, handler, controller.signal)
        : this.daemon(tracked, handler, controller.signal);
    const done = run.catch((error: unknown) =>
      tracked.logger.error(
        { err: error },
        `${capitalize(handler.kind)} '${handler.id}' crashed: ${(error as Error).message}`,
      ),
    );
    tracked.tasks.set(handler.id, { controller, done, handler });
    void done.finally(() => {
      // A daemon that ended on its own is not restarted until the next change of state.
      if (tracked.tasks.get(handler.id)?.done === done && !controller.signal.aborted)
        tracked.tasks.delete(handler.id);
    });
    tracked.logger.debug(`${capitalize(handler.kind)} '${handler.id}' is started for ${uid}.`);
  }

  private spawningContext(
    tracked: Tracked,
    handler: SpawningHandler,
    signal: AbortSignal,
    patch: Patch,
    retry: number,
    started: Date,
  ): SpawningContext {
    const base = this.context(tracked.body, patch, tracked.memo, tracked.logger);
    return {
      ...base,
      param: handler.options.param,
      signal,
      retry,
      started,
      runtime: (Date.now() - started.getTime()) / 1000,
    };
  }

  /** Sends what a run wrote to `patch` and its result (in `status.<id>`). */
  private async flush(tracked: Tracked, id: string, patch: Patch, result: unknown): Promise<void> {
    if (result !== undefined && result !== null) deliverResult(patch, id, parseJson(dumpJson(result)));
    if (!Object.keys(patch).length) return;
    const meta = (tracked.body.metadata ?? {}) as KubeObject['metadata'];
    await applyPatch(this.env.client, this.resource, { namespace: meta.namespace, name: meta.name }, patch);
  }

  private async timer(tracked: Tracked, handler: SpawningHandler, signal: AbortSignal): Promise<void> {
    const options = handler.options as TimerOptions<never>;
    const started = new Date();
    await sleep((options.initialDelay ?? 0) * 1000, signal);
    let next = Date.now();
    let failures = 0;
    while (!signal.aborted) {
      if (options.idle !== undefined) {
        const quiet = (Date.now() - tracked.changedAt) / 1000;
        if (quiet < options.idle) {
          await sleep((options.idle - quiet) * 1000, signal);
          continue;
        }
      }
      await this.env.gate(signal);
      if (signal.aborted) break;
      const patch: Patch = {};
      let delay = options.interval;
      try {
        const result = await (handler.fn as (c: SpawningContext) => unknown)(
          this.spawningContext(tracked, handler, signal, patch, failures, started),
        );
        failures = 0;
        await this.flush(tracked, handler.id, patch, result);
        tracked.logger.debug(`Timer '${handler.id}' succeeded.`);
      } catch (error) {
        if (signal.aborted) break;
        const verdict = judgeError(error, failures, handler.options.errors, handler.options.backoff);
        failures++;
        tracked.logger.warn(`Timer '${handler.id}' failed: ${(error as Error).message}`);
        // Temporary failures retry sooner than the next tick; others wait for it.
        if (!verdict.final) delay = Math.min(delay, verdict.delay);
      }
      next = options.sharp ? next + options.interval * 1000 : Date.now() + delay * 1000;
      await sleep(Math.max(0, next - Date.now()), signal);
    }
  }

  private async daemon(tracked: Tracked, handler: SpawningHandler, signal: AbortSignal): Promise<void> {
    const started = new Date();
    await sleep(((handler.options as DaemonOptions).initialDelay ?? 0) * 1000, signal);
    for (let retry = 0; !signal.aborted; retry++) {
      await this.env.gate(signal);
      if (signal.aborted) return;
      const patch: Patch = {};
      try {
        const result = await (handler.fn as (c: SpawningContext) => unknown)(
          this.spawningContext(tracked, handler, signal, patch, retry, started),
        );
        if (!signal.aborted) await this.flush(tracked, handler.id, patch, result);
        if (!signal.aborted) tracked.logger.info(`Daemon '${handler.id}' has exited on its own.`);
        return;
      } catch (error) {
        if (signal.aborted) return;
        const verdict = judgeError(error, retry, handler.options.errors, handler.options.backoff);
        if (verdict.final) {
          tracked.logger.error(`Daemon '${handler.id}' failed permanently: ${(error as Error).message}`);
          return;
        }
        tracked.logger.warn(
          `Daemon '${handler.id}' failed temporarily: ${(error as Error).message}; restarting in ${verdict.delay}s.`,
        );
        await sleep(verdict.delay * 1000, signal);
      }
    }
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
