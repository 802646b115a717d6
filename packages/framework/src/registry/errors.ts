/**
 * Errors that handlers throw to steer retries. Defined here (not in `api/`) because the
 * processing layer recognises them; `kopf-ts` exports them.
 */

/** A failure that will pass: the handler is retried after `delay` seconds (default 60). */
export class TemporaryError extends Error {
  override readonly name = 'TemporaryError';
  readonly delay: number;
  constructor(message: string, options: { delay?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.delay = options.delay ?? 60;
  }
}

/** A failure that will not pass by retrying: the handler is marked failed and not retried. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
  }
}
