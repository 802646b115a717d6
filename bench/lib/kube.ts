/**
 * The bench driver's own small API client: node:https with one keep-alive agent (so the driver
 * costs the apiserver as little as possible), JSON requests, and a watch stream of lines.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

export interface Target {
  server: string;
  caFile: string;
  token: string;
}

export interface WatchEvent {
  type: string;
  object: KubeObject;
}

export interface KubeObject {
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    finalizers?: string[];
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export class Api {
  private readonly agent: Agent;
  private readonly ca: Buffer;

  constructor(private readonly target: Target) {
    this.ca = readFileSync(target.caFile);
    this.agent = new Agent({ keepAlive: true, maxSockets: 64, ca: this.ca });
  }

  /** A request; resolves with the status and the body (parsed as JSON when it is JSON). */
  request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: T; text: string }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${this.target.server}${path}`,
        {
          method,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.target.token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text) parsed = JSON.parse(text);
            resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like `request`, but fails unless the status is 2xx (or one of `ok`). */
  async ok<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    ok: number[] = [],
  ) {
    const response = await this.request<T>(method, path, body, contentType);
    if ((response.status < 200 || response.status >= 300) && !ok.includes(response.status))
      throw new Error(`${method} ${path}: HTTP ${response.status}: ${response.text.slice(0, 300)}`);
    return response;
  }

  /** Streams watch events until `stop()`; the stream is asked to last an hour. */
  watch(
    path: string,
    onEvent: (event: WatchEvent) => void,
    onEnd: (error?: Error) => void,
  ): { stop(): void } {
    let stopped = false;
    const req = request(
      `${this.target.server}${path}${path.includes('?') ? '&' : '?'}watch=true&timeoutSeconds=3600`,
      { headers: { authorization: `Bearer ${this.target.token}` }, ca: this.ca },
      (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line.trim()) onEvent(JSON.parse(line) as WatchEvent);
          }
        });
        res.on('end', () => stopped || onEnd());
        res.on('error', (e) => stopped || onEnd(e));
      },
    );
    req.on('error', (e) => stopped || onEnd(e));
    req.end();
    return {
      stop() {
        stopped = true;
        req.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
