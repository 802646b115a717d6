/**
 * The heavy variant of test/integration/reliability/peering-failover.test.ts (long tier,
 * `npm run test:long`): FAILOVER_ROUNDS (default 3) kills in a row, each in the middle of a
 * burst of FAILOVER_OBJECTS (default 150) objects, with a new standby joining after each
 * takeover. The same ledger: nothing lost, a second run only where a kill interrupted one,
 * objects committed by a killed peer never run again, no two peers on one object at once,
 * and every deletion handled once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sharedCluster, testNamespace } from '../support/cluster.ts';
import { failover } from '../support/failover.ts';
import { installTestCrd } from '../support/operator.ts';

const OBJECTS = Number(process.env.FAILOVER_OBJECTS ?? 150);
const ROUNDS = Number(process.env.FAILOVER_ROUNDS ?? 3);
const LIFETIME = 5;

test(
  `peering failover: ${ROUNDS} kill(s), each in a burst of ${OBJECTS} objects`,
  { timeout: ROUNDS * 5 * 60_000 },
  async (t) => {
    const cluster = await sharedCluster();
    await installTestCrd(cluster);
    const ns = await testNamespace(t, cluster);
    const { figures, problems } = await failover(t, cluster, ns, {
      objects: OBJECTS,
      batch: 10,
      rounds: ROUNDS,
      killAfter: Math.floor(OBJECTS / 3),
      lifetime: LIFETIME,
      timeoutMs: 180_000,
    });
    t.diagnostic(JSON.stringify(figures));
    assert.deepEqual(problems, []);
    assert.equal(figures.objects, OBJECTS * ROUNDS);
    for (const [i, takeover] of figures.takeovers.entries()) {
      const expiry = figures.expiries[i]!;
      assert.ok(
        takeover >= expiry - 100,
        `kill ${i}: not before the record expired (${takeover}, ${expiry} ms)`,
      );
      assert.ok(takeover < expiry + 10_000, `kill ${i}: soon after it expired (${takeover}, ${expiry} ms)`);
    }
  },
);
