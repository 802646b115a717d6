/**
 * Level-based reconciliation (`on.reconcile`), in controller-runtime's manner: the handler sees
 * the object as it is now and makes the world match it, whatever triggered the cycle (a change
 * of the object, of one of its children, a resync, a retry). Nothing is persisted on the object
 * but the handler's result (`status.<id>`); failures are retried with backoff from memory, and a
 * success ends the streak.
 */
import type { ObjectContext, ReconcileContext } from '../registry/context.ts';
import type { ReconcilingHandler } from '../registry/registry.ts';
import type { Patch } from '../state/patch.ts';
import type { JsonObject } from '../util/json.ts';
import type { EventPoster } from './events.ts';
import type { Resource } from '../kube/resources.ts';
import { filtersMatch, invoke } from './invocation.ts';
import { deliverResult } from './results.ts';

/** A run of failed attempts of one reconcile handler on one object. */
export interface Streak {
  retry: number;
  started: Date;
}

export interface ReconcileEnvironment {
  events: EventPoster;
  onHandler?: (info: {
    id: string;
    reason: 'reconcile';
    outcome: 'success' | 'temporary' | 'permanent';
    seconds: number;
  }) => void;
}

/**
 * Runs the object's reconcile handlers once each; their results go to `patch`. Returns whether
 * all succeeded, and the seconds until the earliest retry of a failed one, if any failed
 * temporarily.
 */
export async function reconcile(
  env: ReconcileEnvironment,
  resource: Resource,
  handlers: ReconcilingHandler[],
  base: ObjectContext,
  body: JsonObject,
  streaks: Map<string, Streak>,
  patch: Patch,
): Promise<{ succeeded: boolean; delay?: number }> {
  const { logger } = base;
  let delay: number | undefined;
  let succeeded = true;
  for (const handler of handlers) {
    if (!filtersMatch(handler, base)) {
      streaks.delete(handler.id);
      continue;
    }
    const now = new Date();
    const streak = streaks.get(handler.id);
    const started = streak?.started ?? now;
    const context: ReconcileContext = {
      ...base,
      param: handler.options.param,
      retry: streak?.retry ?? 0,
      started,
      runtime: (now.getTime() - started.getTime()) / 1000,
    };
    const outcome = await invoke(handler, context);
    const seconds = (Date.now() - now.getTime()) / 1000;
    if (outcome.final && !outcome.error) {
      if (streak)
        logger.info(`Reconciliation '${handler.id}' succeeded after ${streak.retry} failed attempt(s).`);
      else logger.debug(`Reconciliation '${handler.id}' succeeded.`);
      streaks.delete(handler.id);
      deliverResult(patch, handler.id, outcome.result);
      env.onHandler?.({ id: handler.id, reason: 'reconcile', outcome: 'success', seconds });
    } else if (outcome.final) {
      // Not retried: the next change of the object or its children, or the resync, tries again.
      streaks.delete(handler.id);
      succeeded = false;
      const message = `Reconciliation '${handler.id}' failed permanently: ${outcome.error!.message}`;
      logger.error(message);
      env.events.post(resource, body, 'Warning', 'Error', message);
      env.onHandler?.({ id: handler.id, reason: 'reconcile', outcome: 'permanent', seconds });
    } else {
      succeeded = false;
      const retry = (streak?.retry ?? 0) + 1;
      streaks.set(handler.id, { retry, started });
      const wait = outcome.delay ?? 1;
      const message = `Reconciliation '${handler.id}' failed (attempt ${retry}); retrying in ${wait}s: ${outcome.error?.message ?? ''}`;
      logger.warn({ err: outcome.error }, message);
      env.events.post(resource, body, 'Warning', 'Error', message);
      env.onHandler?.({ id: handler.id, reason: 'reconcile', outcome: 'temporary', seconds });
      delay = Math.min(delay ?? Infinity, wait);
    }
  }
  return { succeeded, delay };
}
