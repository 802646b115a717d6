/**
 * A handler's progress through retries, as Kopf's `HandlerState` keeps it
 * (`kopf/_core/actions/progression.py`): started/stopped/delayed times, purpose, retries,
 * success or failure, the last message, and how that becomes a stored record.
 */
import type { ProgressRecord } from '../state/progress.ts';
import type { JsonValue } from '../util/json.ts';
import { encodeProgress } from '../state/progress.ts';
import { formatTime, normalizeTime, parseTime } from '../state/time.ts';

/** What one invocation of a handler ended with. */
export interface Outcome {
  /** Finished for good (success or permanent failure); otherwise retried after `delay`. */
  final: boolean;
  /** Seconds until the next attempt, for non-final outcomes. */
  delay?: number;
  /** The error, if it failed (temporarily or permanently). */
  error?: Error;
  /** What the handler returned, as JSON (lands in `status.<handler id>`). */
  result?: JsonValue;
}

export class HandlerState {
  private constructor(
    readonly started: string,
    readonly stopped: string | undefined,
    readonly delayed: string | undefined,
    readonly purpose: string | undefined,
    readonly retries: number,
    readonly success: boolean,
    readonly failure: boolean,
    readonly message: string | undefined,
    readonly subrefs: readonly string[] | undefined,
    /** The record it was read from, to tell whether it changed. */
    private readonly origin?: ProgressRecord,
  ) {}

  static fromScratch(purpose: string | undefined, now: Date): HandlerState {
    return new HandlerState(
      formatTime(now),
      undefined,
      undefined,
      purpose,
      0,
      false,
      false,
      undefined,
      undefined,
    );
  }

  static fromStorage(record: ProgressRecord, now: Date): HandlerState {
    const time = (value: string | null | undefined) => (value ? (normalizeTime(value) ?? value) : undefined);
    return new HandlerState(
      time(record.started) ?? formatTime(now),
      time(record.stopped),
      time(record.delayed),
      record.purpose || undefined,
      record.retries ?? 0,
      record.success ?? false,
      record.failure ?? false,
      record.message ?? undefined,
      record.subrefs?.length ? [...record.subrefs] : undefined,
      record,
    );
  }

  get finished(): boolean {
    return this.success || this.failure;
  }

  /** Seconds until the handler may run again (0 if it may run now). */
  delayFrom(now: Date): number {
    const until = this.delayed ? parseTime(this.delayed) : undefined;
    return until ? Math.max(0, (until.getTime() - now.getTime()) / 1000) : 0;
  }

  /** Seconds since the first attempt. */
  runtimeAt(now: Date): number {
    const started = parseTime(this.started);
    return started ? (now.getTime() - started.getTime()) / 1000 : 0;
  }

  withPurpose(purpose: string | undefined): HandlerState {
    return new HandlerState(
      this.started,
      this.stopped,
      this.delayed,
      purpose,
      this.retries,
      this.success,
      this.failure,
      this.message,
      this.subrefs,
      this.origin,
    );
  }

  withOutcome(outcome: Outcome, now: Date): HandlerState {
    const failed = outcome.final && outcome.error !== undefined;
    return new HandlerState(
      this.started,
      this.stopped ?? (outcome.final ? formatTime(now) : undefined),
      outcome.delay !== undefined ? formatTime(new Date(now.getTime() + outcome.delay * 1000)) : undefined,
      this.purpose,
      this.retries + 1,
      outcome.final && !failed,
      failed,
      outcome.error ? outcome.error.message : undefined,
      this.subrefs,
      this.origin,
    );
  }

  forStorage(): ProgressRecord {
    return {
      started: this.started,
      stopped: this.stopped ?? null,
      delayed: this.delayed ?? null,
      purpose: this.purpose ?? null,
      retries: this.retries,
      success: this.success,
      failure: this.failure,
      message: this.message ?? null,
      subrefs: this.subrefs?.length ? [...this.subrefs].sort() : null,
    };
  }

  /** True when the stored record would be different from the one it was read from. */
  get changed(): boolean {
    return !this.origin || encodeProgress(this.origin) !== encodeProgress(this.forStorage());
  }
}
