/**
 * The apiserver killed (SIGKILL) and restarted while an operator handles a burst of
 * creations, updates and deletions: the operator-level counterpart of
 * kube/watcher-faults.test.ts, on an apiserver of its own (`rel-restart`). The scenario is
 * `restartBurst` (test/support/reliability.ts): 40 objects, each created, updated twice and
 * deleted, one kill when a third of the handler calls are done. The ledger: one creation, one
 * update per distinct spec, one deletion and nothing after it, no object (no finalizer) left,
 * no error logged. test/long/reliability.test.ts runs it with more objects and restarts.
 */
import { beforeEach, test } from 'node:test';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { restartBurst } from '../../support/reliability.ts';

beforeEach(() => clearRegistry());

test('apiserver killed and restarted during a burst of 40 objects: every change handled once, nothing left', async (t) => {
  await restartBurst(t, { instance: 'rel-restart', objects: 40, restarts: 1 });
});
