/**
 * Errors that handlers throw to steer retries. Defined here (not in `api/`) because the
 * processing layer recognises them; `kopf-ts` exports them. `instanceof` works across copies
 * of the package (source and built files, or two installs) through a process-wide brand.
 */

const TEMPORARY = Symbol.for('kopf-ts.TemporaryError');
const PERMANENT = Symbol.for('kopf-ts.PermanentError');

function branded(value: unknown, brand: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/** A failure that will pass: the handler is retried after `delay` seconds (default 60). */
export class TemporaryError extends Error {
  override readonly name = 'TemporaryError';
  readonly delay: number;
  readonly [TEMPORARY] = true;
  constructor(message: string, options: { delay?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.delay = options.delay ?? 60;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, TEMPORARY);
  }
}

/** A failure that will not pass by retrying: the handler is marked failed and not retried. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  readonly [PERMANENT] = true;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, PERMANENT);
  }
}

/** How an error thrown by a handler or an activity is treated. */
export type ErrorVerdict = { final: true } | { final: false; delay: number };

/**
 * Kopf's rules: TemporaryError → retry after its delay; PermanentError → failed; other errors
 * per `mode` (temporary: retry after `backoff` seconds or 1 s doubling to 60 s; permanent:
 * failed; ignored: treated as success by the caller).
 */
export function judgeError(
  error: unknown,
  retry: number,
  mode: 'temporary' | 'permanent' | 'ignored' = 'temporary',
  backoff?: number,
): ErrorVerdict {
  if (error instanceof TemporaryError) return { final: false, delay: error.delay };
  if (error instanceof PermanentError || mode !== 'temporary') return { final: true };
  return { final: false, delay: backoff ?? Math.min(60, 2 ** retry) };
}
