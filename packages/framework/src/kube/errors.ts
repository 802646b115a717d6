/**
 * Typed API errors: what was asked (verb, resource, namespace/name) and what the apiserver
 * answered (HTTP code, reason, message), so logs and status messages say exactly what failed.
 */

/** What a request was about, for messages. */
export interface RequestTarget {
  verb: string;
  /** e.g. `psqls.v1.test.com` or `pods.v1`. */
  resource?: string;
  namespace?: string;
  name?: string;
}

function describe(target: RequestTarget): string {
  const where = target.name
    ? ` ${target.namespace ? `${target.namespace}/` : ''}${target.name}`
    : target.namespace
      ? ` in ${target.namespace}`
      : '';
  return `${target.verb} ${target.resource ?? ''}${where}`.replace(/\s+/g, ' ').trim();
}

/** The apiserver answered with an error status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly target: RequestTarget,
    /** HTTP status code. */
    readonly code: number,
    /** The Status object's `reason`, e.g. `NotFound`, `Forbidden`, `Conflict`. */
    readonly reason: string | undefined,
    /** The apiserver's own message. */
    readonly apiMessage: string,
    /** Seconds to wait before retrying, from `Retry-After`, if sent. */
    readonly retryAfter?: number,
  ) {
    super(`${describe(target)}: ${code}${reason ? ` ${reason}` : ''}: ${apiMessage}`);
  }

  get notFound(): boolean {
    return this.code === 404;
  }
  get conflict(): boolean {
    return this.code === 409;
  }
  get gone(): boolean {
    return this.code === 410;
  }
  get unauthorized(): boolean {
    return this.code === 401;
  }
  get forbidden(): boolean {
    return this.code === 403;
  }
  /** 429 and 5xx: worth retrying after a while. */
  get transient(): boolean {
    return this.code === 429 || this.code >= 500;
  }
}

/** The request did not get an answer: connection refused or reset, TLS failure, timeout. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    readonly target: RequestTarget,
    override readonly cause: unknown,
  ) {
    super(
      `${describe(target)}: ${cause instanceof Error ? `${(cause as { code?: string }).code ?? cause.name}: ${cause.message}` : String(cause)}`,
    );
  }
}
