/**
 * Which handlers apply to an object (labels, annotations, `when`, field changes) and how one
 * is invoked: the error it throws becomes an {@link Outcome} by Kopf's rules.
 */
import type { ObjectContext } from '../registry/context.ts';
import { judgeError, PermanentError } from '../registry/errors.ts';
import {
  ABSENT,
  PRESENT,
  type HandlerOptions,
  type MetaFilter,
  type ResourceHandler,
} from '../registry/registry.ts';
import { dumpJson, parseJson, type JsonValue } from '../util/json.ts';
import type { Outcome } from './progression.ts';

function metaMatches(
  filters: Record<string, MetaFilter> | undefined,
  actual: Record<string, string>,
): boolean {
  if (!filters) return true;
  for (const [key, filter] of Object.entries(filters)) {
    const value = actual[key];
    if (filter === PRESENT) {
      if (value === undefined) return false;
    } else if (filter === ABSENT) {
      if (value !== undefined) return false;
    } else if (typeof filter === 'function') {
      if (!filter(value)) return false;
    } else if (value !== filter) {
      return false;
    }
  }
  return true;
}

/** Do the handler's label, annotation and `when` filters accept this object? */
export function filtersMatch(handler: ResourceHandler, context: ObjectContext): boolean {
  const options = handler.options as HandlerOptions<ObjectContext>;
  if (!metaMatches(options.labels, context.labels)) return false;
  if (!metaMatches(options.annotations, context.annotations)) return false;
  if (options.when && !options.when(context)) return false;
  return true;
}

/**
 * Runs a handler once. Limits (`retries`, `timeout`) are checked first; the handler's own
 * time is bounded by what is left of its `timeout`.
 */
/** What `invoke` needs of a context: the object's, and the attempt (changing and reconcile handlers). */
type AttemptContext = ObjectContext & { retry: number; runtime: number };

export async function invoke(handler: ResourceHandler, context: AttemptContext): Promise<Outcome> {
  const options = handler.options;
  if (options.retries !== undefined && context.retry >= options.retries) {
    return {
      final: true,
      error: new PermanentError(`Handler '${handler.id}' has exceeded ${options.retries} retries.`),
    };
  }
  if (options.timeout !== undefined && context.runtime >= options.timeout) {
    return {
      final: true,
      error: new PermanentError(`Handler '${handler.id}' has timed out after ${options.timeout} seconds.`),
    };
  }
  try {
    const call = Promise.resolve((handler.fn as (c: AttemptContext) => unknown)(context));
    const result =
      options.timeout === undefined
        ? await call
        : await withTimeout(call, options.timeout - context.runtime, handler.id, options.timeout);
    return { final: true, result: asJson(result, handler.id) };
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (error instanceof HandlerTimeout) return { final: true, error };
    const verdict = judgeError(error, context.retry, options.errors, options.backoff);
    if (verdict.final && options.errors === 'ignored' && !(error instanceof PermanentError)) {
      context.logger.warn(
        { err: error },
        `Handler '${handler.id}' failed with an exception; ignored (errors: 'ignored'): ${error.message}`,
      );
      return { final: true };
    }
    return verdict.final ? { final: true, error } : { final: false, delay: verdict.delay, error };
  }
}

/** The handler's result as JSON (it lands in the object's status), or a permanent error. */
function asJson(result: unknown, id: string): JsonValue | undefined {
  if (result === undefined || result === null) return undefined;
  try {
    return parseJson(dumpJson(result));
  } catch (error) {
    throw new PermanentError(
      `Handler '${id}' returned a value that cannot be stored in the status (not JSON): ${(error as Error).message}`,
    );
  }
}

class HandlerTimeout extends Error {
  override readonly name = 'HandlerTimeout';
}

/** Bounds a call by what is left of the handler's timeout (`limit` seconds since its first attempt). */
function withTimeout<T>(promise: Promise<T>, seconds: number, id: string, limit: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HandlerTimeout(`Handler '${id}' has timed out after ${limit} seconds.`)),
      Math.max(0, seconds) * 1000,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
