/**
 * The HTTP client of one cluster connection: a pooled undici agent (keep-alive, one TLS
 * handshake per connection rather than per request, unlike client-node 2.0.1's per-request
 * agents), a timeout on every request, retries with jittered backoff for transient failures
 * (429 honouring Retry-After, 5xx, resets, timeouts), re-login on 401, an optional client-side
 * rate limit, and bodies parsed with the order- and precision-preserving JSON parser.
 * With the liveness endpoint, the only module that does network I/O.
 */
import { readFileSync, statSync } from 'node:fs';
import pRetry from 'p-retry';
import { Agent, type Dispatcher } from 'undici';
import { dumpJson, parseJson, type JsonObject, type JsonValue } from '../util/json.ts';
import { sleep } from '../util/time.ts';
import type { ConnectionInfo, CredentialsSource } from './credentials.ts';
import { ApiError, ConnectionError, type RequestTarget } from './errors.ts';

export type Verb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ClientOptions {
  /** Seconds for a whole non-watch request (headers and body). Default 30. */
  requestTimeout?: number;
  /** Retries of transient failures per request. Default 6 (about a minute with backoff). */
  retries?: number;
  /** Client-side rate limit (requests per second, burst); default none: the apiserver's priority and fairness decides. */
  qps?: number;
  burst?: number;
  /** Called after every response (or failure), e.g. for metrics. */
  onResponse?: (info: { verb: string; code: number | 'error'; seconds: number }) => void;
  /** Called before a transient failure is retried. */
  onRetry?: (error: Error, attempt: number, delaySeconds: number) => void;
}

export interface RequestOptions {
  method: Verb;
  /** The API path, e.g. `/apis/test.com/v1/namespaces/default/psqls`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (written as Python's json.dumps would: see util/json.ts). */
  body?: JsonValue;
  /** Content type of the body; `application/json` by default. */
  contentType?: string;
  /** What this is about, for error messages. */
  target: RequestTarget;
  /** Overrides the client's request timeout (seconds). */
  timeout?: number;
  /** Retry transient failures (default true). */
  retry?: boolean;
  signal?: AbortSignal;
}

/** A response whose body is streamed (watches). */
export interface StreamResponse {
  body: AsyncIterable<Buffer>;
  close(): void;
}

const TOKEN_FILE_RECHECK_MS = 10_000;

export class KubeClient {
  private readonly agents = new Map<ConnectionInfo, Agent>();
  private readonly tokenFiles = new Map<string, { token: string; mtimeMs: number; checkedAt: number }>();
  private readonly requestTimeout: number;
  private readonly retries: number;
  private tokens: number;
  private lastRefill = Date.now();
  private closed = false;

  constructor(
    readonly credentials: CredentialsSource,
    private readonly options: ClientOptions = {},
  ) {
    this.requestTimeout = options.requestTimeout ?? 30;
    this.retries = options.retries ?? 6;
    this.tokens = options.burst ?? options.qps ?? 0;
  }

  /** Sends a request and returns its parsed JSON body; throws ApiError or ConnectionError. */
  async request<T extends JsonValue = JsonObject>(req: RequestOptions): Promise<T> {
    const run = async () => {
      const response = await this.send(req, this.requestTimeout);
      const text = await this.bodyOf(req, response);
      this.check(req, response, text);
      return (text ? stripManagedFields(parseJson(text)) : {}) as T;
    };
    if (req.retry === false) return run();
    return this.withRetries(req, run);
  }

  /** Opens a streamed request (a watch); the caller reads and closes the body. */
  async stream(req: RequestOptions & { inactivityTimeout: number }): Promise<StreamResponse> {
    const response = await this.send(req, req.inactivityTimeout, true);
    if (response.statusCode >= 300) {
      const text = await this.bodyOf(req, response);
      this.check(req, response, text);
    }
    return { body: response.body, close: () => response.body.destroy() };
  }

  /** Closes all pooled connections. */
  async close(): Promise<void> {
    this.closed = true;
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }

  private async withRetries<T>(req: RequestOptions, run: () => Promise<T>): Promise<T> {
    return pRetry(run, {
      retries: this.retries,
      factor: 2,
      minTimeout: 500,
      maxTimeout: 15_000,
      randomize: true,
      signal: req.signal,
      shouldRetry: ({ error }) => isRetryable(error) && !this.closed && !req.signal?.aborted,
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft, retryDelay }) => {
        if (retriesLeft === 0 || !isRetryable(error) || this.closed || req.signal?.aborted) return;
        // Honour Retry-After (429, 503) on top of the backoff; an abort cuts the wait short.
        const retryAfter = error instanceof ApiError ? Math.min(error.retryAfter ?? 0, 60) : 0;
        this.options.onRetry?.(error, attemptNumber, retryAfter + retryDelay / 1000);
        if (retryAfter) await sleep(retryAfter * 1000, req.signal);
      },
    });
  }

  private async send(
    req: RequestOptions,
    timeoutSeconds: number,
    streaming = false,
  ): Promise<Dispatcher.ResponseData> {
    await this.rateLimit();
    let info = await this.credentials.current();
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      let response: Dispatcher.ResponseData;
      try {
        response = await this.agentFor(info).request({
          origin: new URL(info.server).origin,
          path: `${new URL(info.server).pathname.replace(/\/$/, '')}${req.path}${queryString(req.query)}`,
          method: req.method,
          headers: this.headers(info, req),
          body: req.body === undefined ? undefined : dumpJson(req.body),
          headersTimeout: (req.timeout ?? timeoutSeconds) * 1000,
          bodyTimeout: (req.timeout ?? timeoutSeconds) * 1000,
          signal: req.signal,
        });
      } catch (error) {
        this.options.onResponse?.({
          verb: req.target.verb,
          code: 'error',
          seconds: (performance.now() - started) / 1000,
        });
        if (req.signal?.aborted) throw error;
        throw new ConnectionError(req.target, error);
      }
      // A stream is counted when it fails (its success is an open stream, not an answer).
      if (!streaming || response.statusCode >= 300)
        this.options.onResponse?.({
          verb: req.target.verb,
          code: response.statusCode,
          seconds: (performance.now() - started) / 1000,
        });
      if (response.statusCode !== 401 || attempt > 0) return response;
      // Rejected credentials: let the source re-login once, then retry with the new ones.
      const text = await response.body.text().catch(() => '');
      const error = apiError(req.target, response, text);
      this.dropAgent(info);
      if (info.tokenFile) this.tokenFiles.delete(info.tokenFile);
      await this.credentials.invalidate(info, error);
      info = await this.credentials.current();
    }
  }

  /**
   * Reads a whole response body. The connection may break after the headers (an apiserver
   * killed mid-answer, a reset, the body timeout): that is a ConnectionError too, retried like
   * one, as when no headers came. (As with any lost answer, a retried write may find its work
   * done: merge patches are idempotent; a POST may then meet AlreadyExists.)
   */
  private async bodyOf(req: RequestOptions, response: Dispatcher.ResponseData): Promise<string> {
    try {
      return await response.body.text();
    } catch (error) {
      if (req.signal?.aborted) throw error;
      throw new ConnectionError(req.target, error);
    }
  }

  private check(req: RequestOptions, response: Dispatcher.ResponseData, text: string): void {
    if (response.statusCode < 300) return;
    throw apiError(req.target, response, text);
  }

  private headers(info: ConnectionInfo, req: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': 'kopf-ts',
      ...(info.headers ?? {}),
    };
    if (req.body !== undefined) headers['content-type'] = req.contentType ?? 'application/json';
    const token = info.tokenFile ? this.readTokenFile(info.tokenFile) : info.token;
    if (token) headers.authorization = `Bearer ${token}`;
    else if (info.username !== undefined)
      headers.authorization = `Basic ${Buffer.from(`${info.username}:${info.password ?? ''}`).toString('base64')}`;
    return headers;
  }

  /** ServiceAccount tokens rotate: re-read the file when its mtime changes (checked every 10 s). */
  private readTokenFile(path: string): string {
    const now = Date.now();
    const cached = this.tokenFiles.get(path);
    if (cached && now - cached.checkedAt < TOKEN_FILE_RECHECK_MS) return cached.token;
    const mtimeMs = statSync(path).mtimeMs;
    const token = cached && cached.mtimeMs === mtimeMs ? cached.token : readFileSync(path, 'utf8').trim();
    this.tokenFiles.set(path, { token, mtimeMs, checkedAt: now });
    return token;
  }

  private agentFor(info: ConnectionInfo): Agent {
    let agent = this.agents.get(info);
    if (!agent) {
      agent = new Agent({
        connect: {
          ca: info.ca,
          cert: info.certificate,
          key: info.privateKey,
          rejectUnauthorized: !info.insecure,
          keepAlive: true,
          keepAliveInitialDelay: 30_000,
          // Connecting (TCP and TLS) is part of a request: bound it by the request timeout, not
          // only by undici's default 10 s (a stalled server would outlast a shorter timeout).
          timeout: Math.min(this.requestTimeout, 10) * 1000,
        },
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 300_000,
      });
      this.agents.set(info, agent);
    }
    return agent;
  }

  private dropAgent(info: ConnectionInfo): void {
    const agent = this.agents.get(info);
    this.agents.delete(info);
    void agent?.close().catch(() => undefined);
  }

  private async rateLimit(): Promise<void> {
    const qps = this.options.qps;
    if (!qps) return;
    const burst = this.options.burst ?? qps;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(burst, this.tokens + ((now - this.lastRefill) / 1000) * qps);
      this.lastRefill = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, ((1 - this.tokens) / qps) * 1000));
    }
  }
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function apiError(target: RequestTarget, response: Dispatcher.ResponseData, text: string): ApiError {
  let reason: string | undefined;
  let message = text.trim() || `HTTP ${response.statusCode}`;
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason;
    message = status.message ?? message;
  } catch {
    // not a Status object; keep the text
  }
  const retryAfterHeader = response.headers['retry-after'];
  const retryAfter =
    typeof retryAfterHeader === 'string' && /^\d+$/.test(retryAfterHeader)
      ? Number(retryAfterHeader)
      : undefined;
  return new ApiError(target, response.statusCode, reason, message, retryAfter);
}

function isRetryable(error: unknown): boolean {
  if (error instanceof ApiError) return error.transient;
  return error instanceof ConnectionError;
}

/** Objects are kept without `managedFields`: large, and of no use to an operator. */
export function stripManagedFields(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const metadata = value.metadata;
  if (metadata && typeof metadata === 'object' && !Array.isArray(metadata)) delete metadata.managedFields;
  const items = value.items;
  if (Array.isArray(items)) for (const item of items) stripManagedFields(item);
  return value;
}
