/**
 * An in-process runner for operator authors' tests, like Kopf's `KopfRunner`: start the
 * operator registered in this process, wait until it watches, act on the cluster, read its
 * logs, stop it and see how it ended.
 *
 * ```ts
 * import { OperatorRunner } from 'kopf-ts/testing';
 * const runner = await OperatorRunner.start({ namespaces: ['test'] });
 * // ... kubectl apply ...
 * await runner.waitForLog(/Handler 'create_fn' succeeded/);
 * const { failure } = await runner.stop();
 * ```
 */
import { Writable } from 'node:stream';
import { Operator, type OperatorOptions } from '../runtime/operator.ts';
import { createLogger, type LogLevel } from '../util/logging.ts';

export interface RunnerOptions extends Omit<OperatorOptions, 'logger'> {
  /** Log level of the captured logs. Default `debug`. */
  level?: LogLevel;
  /** Also print the logs to stderr. */
  echo?: boolean;
}

export class OperatorRunner {
  private readonly ended: Promise<{ failure?: Error }>;

  private constructor(
    readonly operator: Operator,
    /** The operator's log lines (plain format), as they come. */
    readonly logs: string[],
  ) {
    this.ended = new Promise((resolve) => operator.once('stopped', (failure) => resolve({ failure })));
  }

  /** Starts the operator; resolves once all its resources are watched and initially listed. */
  static async start(options: RunnerOptions = {}): Promise<OperatorRunner> {
    const { level = 'debug', echo = false, ...rest } = options;
    const logs: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        const text = chunk.toString('utf8');
        logs.push(...text.split('\n').filter(Boolean));
        if (echo) process.stderr.write(text);
        callback();
      },
    });
    const runner = new OperatorRunner(
      new Operator({ ...rest, logger: createLogger({ destination, level }) }),
      logs,
    );
    try {
      await runner.operator.start();
    } catch (error) {
      await runner.stop();
      throw error;
    }
    return runner;
  }

  /** Resolves with the first log line matching `pattern`; rejects after `timeout` seconds. */
  async waitForLog(pattern: RegExp | string, timeout = 30): Promise<string> {
    const matches = (line: string) =>
      typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const found = this.logs.find(matches);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`No log line matched ${String(pattern)} within ${timeout}s.`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the operator gracefully (if it has not stopped by itself); resolves with the failure that stopped it, if any. */
  stop(): Promise<{ failure?: Error }> {
    void this.operator.stop();
    return this.ended;
  }
}
