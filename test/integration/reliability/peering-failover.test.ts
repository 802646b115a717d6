/**
 * Peering failover under load: two `kopf-ts run` processes in one peering, 40 objects whose
 * create handlers take 200–500 ms, the active process SIGKILLed while it works through them.
 * The standby takes over once the dead peer's record expires (not before), and the ledger
 * that both processes append to shows nothing lost and nothing handled twice at once:
 *
 * - every object's create handler completed, and completed twice only where the killed
 *   process had it in flight (started, not committed); objects it committed are never run
 *   again; the second run reuses the child of the first (one child, one token);
 * - no two processes' runs on the same object overlap in time;
 * - deletion runs each delete handler once and leaves no finalizer behind.
 *
 * The heavier variant, several kills in a row with more objects, is test/long/peering-failover.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { sharedCluster, testNamespace } from '../../support/cluster.ts';
import { failover } from '../../support/failover.ts';
import { installTestCrd } from '../../support/operator.ts';

const LIFETIME = 5;

before(async () => installTestCrd(await sharedCluster()));

test('the active peer SIGKILLed in a burst: the standby finishes everything, once, never concurrently', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const { figures, problems } = await failover(t, cluster, ns, {
    objects: 40,
    batch: 4,
    rounds: 1,
    killAfter: 10,
    lifetime: LIFETIME,
    timeoutMs: 40_000,
  });
  t.diagnostic(JSON.stringify(figures));
  assert.deepEqual(problems, []);
  assert.equal(figures.objects, 40);
  assert.ok(figures.inFlight.length >= 1, 'the kill interrupted at least one object');
  const [takeover] = figures.takeovers;
  const [expiry] = figures.expiries;
  // The dead peer's record (lastseen + lifetime) expires up to LIFETIME s after the kill.
  assert.ok(expiry! > 0 && expiry! <= LIFETIME * 1000, `the record's expiry: ${expiry} ms after the kill`);
  assert.ok(takeover! >= expiry! - 100, `not before the record expired: ${takeover} ms, ${expiry} ms`);
  assert.ok(takeover! < expiry! + 5_000, `soon after it expired: ${takeover} ms, ${expiry} ms`);
});
