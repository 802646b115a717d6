/** The RSS of test processes, and the soaks' check that it does not grow. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** A process's resident set size, in MB (Linux). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * Once warmed up, RSS stays within noise: the mean of the last third of the samples must stay
 * below the mean of the second third times `ratio`, plus `slackMb`. (Fewer than 3 samples: no check.)
 */
export function assertNoGrowth(samples: number[], ratio: number, slackMb: number): void {
  if (samples.length < 3) return;
  const third = Math.floor(samples.length / 3);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mid = mean(samples.slice(third, 2 * third));
  const last = mean(samples.slice(2 * third));
  assert.ok(last < mid * ratio + slackMb, `RSS grew: ${mid.toFixed(1)} MB → ${last.toFixed(1)} MB`);
}
