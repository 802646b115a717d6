/**
 * A tiny loopback TCP proxy for fault tests: it listens on 127.0.0.1 (a free port) and forwards
 * every connection to a port on 127.0.0.1, and can be told to misbehave:
 *
 * - `stall()`: keep every socket open but stop forwarding bytes in both directions (new
 *   connections are accepted and held the same way): a silent network partition;
 * - `stallExisting()`: the same for the connections open now only, for good (a half-dead link,
 *   a lost NAT entry); later connections are forwarded normally;
 * - `resume()`: forward again, including what was held (not what stallExisting() killed);
 * - `delay(ms)`: forward each chunk only after `ms` milliseconds (a slow link), 0 to stop;
 * - `dropAll()`: reset every connection at once;
 * - `close()`: stop listening and drop everything.
 *
 * TLS passes through untouched, so a client keeps verifying the apiserver's certificate.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Connections currently open. */
  readonly connections: number;
  /** Connections accepted since the start. */
  readonly accepted: number;
  stall(): void;
  /** Stalls the connections open now, for good; later connections are forwarded normally. */
  stallExisting(): void;
  resume(): void;
  delay(ms: number): void;
  dropAll(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Stalled for good by stallExisting(): resume() leaves it stalled. */
  dead: boolean;
  /** Forwards what is queued and due, in both directions. */
  flush: () => void;
}

/** Starts a proxy from a free loopback port to `127.0.0.1:<targetPort>`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let stalled = false;
  let delayMs = 0;
  let accepted = 0;

  // Forwards `from` → `to`, in order, honouring stalls, the current delay and backpressure.
  const forward = (pair: Pair, from: Socket, to: Socket) => {
    const queue: Array<{ chunk: Buffer; due: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      if (to.destroyed || stalled || pair.dead) return; // kept until resume() (or for good)
      const now = Date.now();
      while (queue.length && queue[0]!.due <= now) {
        if (!to.write(queue.shift()!.chunk)) {
          from.pause();
          to.once('drain', () => {
            if (!stalled && !pair.dead) from.resume();
          });
        }
      }
      if (queue.length) timer = setTimeout(flush, queue[0]!.due - now);
      else if (ended) to.end(); // half-close once everything queued is written
    };
    from.on('data', (chunk: Buffer) => {
      queue.push({ chunk, due: Date.now() + delayMs });
      if (!timer) flush();
    });
    from.on('end', () => {
      ended = true;
      if (!timer) flush();
    });
    const stop = () => {
      clearTimeout(timer);
      queue.length = 0;
    };
    from.on('close', stop);
    to.on('close', stop);
    return flush;
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = { client, upstream, dead: false, flush: () => undefined };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    const flushes = [forward(pair, client, upstream), forward(pair, upstream, client)];
    pair.flush = () => flushes.forEach((f) => f());
    if (stalled) upstream.pause();
    else client.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the proxy has no port');

  const dropAll = () => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
  };

  return {
    port: address.port,
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    stall() {
      stalled = true;
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    stallExisting() {
      for (const pair of pairs) {
        pair.dead = true;
        pair.client.pause();
        pair.upstream.pause();
      }
    },
    resume() {
      stalled = false;
      for (const pair of pairs) {
        if (pair.dead) continue;
        pair.client.resume();
        pair.upstream.resume();
        pair.flush();
      }
    },
    delay(ms: number) {
      delayMs = ms;
    },
    dropAll,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      dropAll();
      await closed;
    },
  };
}
