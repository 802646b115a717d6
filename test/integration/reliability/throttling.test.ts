/**
 * Throttling with real 429s, on an apiserver of its own with a tiny total concurrency
 * (`--max-requests-inflight=4 --max-mutating-requests-inflight=2`) and API Priority and
 * Fairness objects that put one ServiceAccount into a priority level of one seat
 * (test/support/reliability.ts). Clients run as that ServiceAccount (a TokenRequest token):
 * admin credentials are in `system:masters`, which APF exempts, so the test's own writes and
 * the control plane's components are never throttled.
 *
 * - The client alone, against a level that rejects at once (429 with `Retry-After: 1`):
 *   requests are retried no sooner than Retry-After says, and give up only when their retry
 *   budget is used up.
 * - The operator under a burst of 60 objects (`throttledBurst`; a level with a queue of 4, 429s
 *   beyond): every change handled exactly once (the ledger), results stored, an Event per
 *   success, no finalizer left; 429s happened (the operator's metrics and the apiserver's APF
 *   counters agree), and the requests stay bounded (no flood of retries).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { ClusterInfo } from '../../../cluster/cluster.ts';
import { KubeClient } from '../../../packages/framework/src/kube/client.ts';
import { ApiError } from '../../../packages/framework/src/kube/errors.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { cleanups } from '../../support/cluster.ts';
import {
  listKopftests,
  rejectedByApf,
  REJECT,
  throttledBurst,
  throttledCluster,
  throttledOperatorAccount,
} from '../../support/reliability.ts';

// One instance for both tests (a namespace, a ServiceAccount and a priority level each).
let cluster: ClusterInfo;
const removals: Array<() => unknown> = [];
before(async () => (cluster = await throttledCluster('rel-throttle', (fn) => removals.push(fn))));
after(async () => {
  for (const fn of removals) await fn();
});
beforeEach(() => clearRegistry());

test('the client retries real 429s no sooner than Retry-After, within its retry budget', async (t) => {
  const defer = cleanups(t);
  const ns = 'client';
  const { credentials, level } = await throttledOperatorAccount(defer, cluster, ns, REJECT);
  const rejectedBefore = await rejectedByApf(cluster, level);

  // 20 requests at once against one seat that rejects; a client each, so that every request's
  // attempts (the responses its client saw) are known.
  const retries = 2;
  const results = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const attempts: Array<{ code: number | 'error'; at: number }> = [];
      const client = new KubeClient(credentials, {
        retries,
        onResponse: ({ code }) => attempts.push({ code, at: performance.now() }),
      });
      try {
        const error = await listKopftests(client, ns).then(
          () => undefined,
          (e: unknown) => e,
        );
        return { attempts, error };
      } finally {
        await client.close();
      }
    }),
  );
  const gaps: number[] = [];
  for (const { attempts, error } of results) {
    const codes = attempts.map((a) => a.code).join('→');
    assert.ok(
      attempts.length >= 1 && attempts.length <= retries + 1,
      `at most ${retries + 1} attempts: ${codes}`,
    );
    assert.ok(
      attempts.slice(0, -1).every((a) => a.code === 429),
      `only 429s were retried: ${codes}`,
    );
    for (let j = 1; j < attempts.length; j++) gaps.push(attempts[j]!.at - attempts[j - 1]!.at);
    if (error) {
      assert.ok(error instanceof ApiError && error.code === 429, `${(error as Error).message}`);
      assert.equal(attempts.length, retries + 1, `gave up only with its retries used up: ${codes}`);
      assert.equal(error.retryAfter, 1, 'the apiserver said when to come back');
    } else assert.equal(attempts.at(-1)!.code, 200, codes);
  }
  const succeeded = results.filter((r) => !r.error).length;
  t.diagnostic(
    `${succeeded}/20 succeeded; attempts: ${results.map((r) => r.attempts.map((a) => a.code).join('→')).join(', ')}; ` +
      `gaps after a 429: ${gaps.map((g) => (g / 1000).toFixed(2)).join(', ')} s`,
  );
  assert.ok(gaps.length > 0, 'some requests met a 429 and were retried');
  assert.ok(succeeded > 0, 'retried requests got through');
  // Retry-After (1 s) on top of a jittered backoff of at least 0.5 s: a client that ignored
  // Retry-After would come back after 0.5–1 s.
  for (const gap of gaps) assert.ok(gap >= 1_450 && gap < 10_000, `retried after ${gap.toFixed(0)} ms`);
  const rejected = (await rejectedByApf(cluster, level)) - rejectedBefore;
  assert.equal(rejected, results.flatMap((r) => r.attempts).filter((a) => a.code === 429).length);
});

test('a burst of 60 objects under APF throttling: every change handled once, requests bounded', async (t) => {
  await throttledBurst(t, { cluster, objects: 60 });
});
