/**
 * Running operator activities (on.startup, on.cleanup, on.login, on.probe) with Kopf's retry
 * rules, logged as Kopf logs them: `Activity 'login_via_client' succeeded.`
 */
import type { ActivityContext, Memo } from '../registry/context.ts';
import { judgeError } from '../registry/errors.ts';
import type { ActivityHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';

/** An activity failed for good (permanently, out of retries, or timed out). */
export class ActivityError extends Error {
  override readonly name = 'ActivityError';
}

/** Runs one activity until it succeeds or fails for good; returns its result. */
export async function runActivity(
  activity: ActivityHandler,
  logger: Logger,
  memo: Memo,
  options: { signal?: AbortSignal; quiet?: boolean } = {},
): Promise<unknown> {
  const started = new Date();
  const { retries, timeout } = activity.options;
  for (let retry = 0; ; retry++) {
    const runtime = (Date.now() - started.getTime()) / 1000;
    const context: ActivityContext = { logger, memo, retry, started, runtime, param: activity.options.param };
    try {
      const result = await (activity.fn as (c: ActivityContext) => unknown)(context);
      if (options.quiet) logger.debug(`Activity '${activity.id}' succeeded.`);
      else logger.info(`Activity '${activity.id}' succeeded.`);
      return result;
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      const verdict = judgeError(error, retry, 'temporary', activity.options.backoff);
      const exhausted =
        (retries !== undefined && retry + 1 >= retries) || (timeout !== undefined && runtime >= timeout);
      if (verdict.final || exhausted || options.signal?.aborted) {
        logger.error(`Activity '${activity.id}' failed permanently: ${message}`);
        throw new ActivityError(`Activity '${activity.id}' failed: ${message}`, { cause: error });
      }
      logger.warn(`Activity '${activity.id}' failed temporarily: ${message}; retrying in ${verdict.delay}s.`);
      await new Promise((r) => setTimeout(r, verdict.delay * 1000));
    }
  }
}
