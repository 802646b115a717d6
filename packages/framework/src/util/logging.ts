/**
 * Logging on pino. Two output formats: `plain` (the default, Kopf-like lines for a terminal)
 * and `json` (one pino JSON object per line, for log collectors). Per-object loggers prefix
 * messages with `[namespace/name]` as Kopf does.
 */
import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogFormat = 'plain' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface LoggingOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go; stderr by default. */
  destination?: NodeJS.WritableStream;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'CRITICAL',
};

/** Formats pino's JSON lines as `[time] name [LEVEL] message`. */
function plainStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const record = JSON.parse(line) as {
          time: number;
          level: number;
          name?: string;
          msg?: string;
          err?: { stack?: string };
        };
        const time = new Date(record.time).toISOString().replace('T', ' ').replace('Z', '');
        const level = (LEVEL_NAMES[record.level] ?? String(record.level)).padEnd(7);
        let text = `[${time}] ${(record.name ?? 'kopf').padEnd(16)} [${level}] ${record.msg ?? ''}`;
        if (record.err?.stack && record.level >= 50) text += `\n${record.err.stack}`;
        out.write(`${text}\n`);
      }
      callback();
    },
  });
}

/** The root logger of an operator process. */
export function createLogger(options: LoggingOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const stream = options.format === 'json' ? destination : plainStream(destination);
  return pino(
    {
      name: 'kopf',
      level: options.level ?? 'info',
      base: undefined,
      formatters: options.format === 'json' ? { level: (label) => ({ level: label }) } : {},
      timestamp: options.format === 'json' ? pino.stdTimeFunctions.isoTime : pino.stdTimeFunctions.epochTime,
    },
    stream,
  );
}

/** A logger for one object: messages read `[namespace/name] ...`, as in Kopf. */
export function objectLogger(
  parent: Logger,
  namespace: string | undefined,
  name: string | undefined,
): Logger {
  const label = namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
  return parent.child({ name: 'kopf.objects', object: label }, { msgPrefix: `[${label}] ` });
}

/** A logger that drops everything (tests, libraries). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
