/**
 * The heavy variants of the reliability scenarios of the CI tier (test/support/reliability.ts,
 * test/integration/reliability/): more objects, and repeated apiserver restarts.
 *
 * - RELIABILITY_OBJECTS (default 300): objects per scenario;
 * - RELIABILITY_RESTARTS (default 8): SIGKILLs of the apiserver during the restart burst.
 */
import { after, before, beforeEach, test } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { clearRegistry } from '../../packages/framework/src/registry/registry.ts';
import { restartBurst, throttledBurst, throttledCluster } from '../support/reliability.ts';

const OBJECTS = Number(process.env.RELIABILITY_OBJECTS ?? 300);
const RESTARTS = Number(process.env.RELIABILITY_RESTARTS ?? 8);

let throttled: ClusterInfo;
const removals: Array<() => unknown> = [];
before(async () => (throttled = await throttledCluster('rel-long-throttle', (fn) => removals.push(fn))));
after(async () => {
  for (const fn of removals) await fn();
});
beforeEach(() => clearRegistry());

test(`a burst of ${OBJECTS} objects under APF throttling: every change handled once, requests bounded`, async (t) => {
  await throttledBurst(t, { cluster: throttled, objects: OBJECTS });
});

test(`the apiserver killed ${RESTARTS}× during a burst of ${OBJECTS} objects: every change handled once, nothing left`, async (t) => {
  await restartBurst(t, { instance: 'rel-long-restart', objects: OBJECTS, restarts: RESTARTS });
});
