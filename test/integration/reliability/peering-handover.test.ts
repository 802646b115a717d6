/**
 * A higher-priority peer joins while a lower one is busy: the lower one pauses, but handlers it
 * has already started run to their end. The newcomer must not handle those objects at the same
 * time: it waits until the lower peer reports in its peering record that its running handlers
 * are done (`busy: false`), then takes over. The shared ledger of both processes shows every
 * object handled once, and no two runs on one object overlapping in time.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { eventually, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import {
  createObjects,
  createPeering,
  failoverFiles,
  installPeeringCrds,
  intervals,
  overlaps,
  R,
  readLedger,
  startPeer,
} from '../../support/failover.ts';
import { installTestCrd } from '../../support/operator.ts';

before(async () => installTestCrd(await sharedCluster()));

test('a higher-priority newcomer waits for the busy lower peer to finish its running handlers', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const files = failoverFiles();
  await installPeeringCrds(cluster, files.operator);
  await createPeering(cluster, ns);
  // Handlers of 4 s: the newcomer starts while they run.
  const low = startPeer(t, cluster, files, ns, 'low', 1, 10, { HANDLER_MS: '4000' });
  await low.waitFor('Starting the watch-stream for kopftests');
  const names = Array.from({ length: 30 }, (_, i) => `o${String(i).padStart(2, '0')}`);
  await createObjects(cluster, ns, names);
  await eventually(
    'the low peer is busy with several objects',
    () => {
      const runs = intervals(readLedger(files.ledger), {});
      return runs.filter((r) => !r.ended).length >= 5;
    },
    20_000,
    10,
  );

  const high = startPeer(t, cluster, files, ns, 'high', 2, 10, { HANDLER_MS: '300' });
  await low.waitFor('Pausing operations in favour of high');
  await high.waitFor(/Waiting for lower-priority peers to finish their running handlers: low/);
  // Objects created during the handover are for the newcomer.
  const later = Array.from({ length: 5 }, (_, i) => `p${i}`);
  await createObjects(cluster, ns, later);
  await eventually(
    'all objects handled',
    async () => {
      const list = await kubectlJson<{ items: Array<{ status?: { create_fn?: unknown } }> }>(cluster, [
        'get',
        R,
        '-n',
        ns,
      ]);
      return (
        list.items.length === names.length + later.length && list.items.every((i) => i.status?.create_fn)
      );
    },
    40_000,
  );
  const runs = intervals(readLedger(files.ledger), {});
  assert.deepEqual(overlaps(runs), [], 'no object handled by both at once');
  const completed = runs
    .filter((r) => r.ended)
    .map((r) => r.name)
    .sort();
  assert.deepEqual(completed, [...names, ...later].sort(), 'each object handled exactly once');
  const by = (who: string) => new Set(runs.filter((r) => r.who === who).map((r) => r.name));
  assert.ok(
    later.every((n) => by('high').has(n)),
    'the newcomer handled what came during the handover',
  );
  assert.ok([...by('low')].length >= 5, 'the low peer finished what it had started');
});
