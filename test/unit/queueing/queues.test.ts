/**
 * The per-object queues' consistency wait, on fake time-lines of watch events: after a cycle
 * that patched the object, no cycle runs on a state older than that patch, even when the queue
 * had nothing else to do when the cycle ended (a status patch's event arriving first, the main
 * patch's event lagging behind, as when the apiserver drops a slow watcher during a burst).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectQueues } from '../../../packages/framework/src/queueing/queues.ts';
import { createLogger } from '../../../packages/framework/src/util/logging.ts';

type Event = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; version: string };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function queues(
  patches: Record<string, string>,
  options: { consistencyTimeout?: number; refresh?: (key: string, event: Event) => Promise<Event> } = {},
) {
  const seen: string[] = [];
  const waits: number[] = [];
  const q = new ObjectQueues<Event>(
    async (_key, event) => {
      seen.push(event.version);
      await sleep(10);
      return { version: patches[event.version] };
    },
    createLogger({ level: 'warn' }),
    { batchWindow: 0.05, onCycle: (s) => waits.push(s), ...options },
  );
  return { q, seen, waits };
}

test('an idle queue still waits for its own patch: the events before it are not handled', async () => {
  const { q, seen, waits } = queues({ v0: 'B' });
  q.push('k', { type: 'ADDED', version: 'v0' });
  await sleep(150); // the cycle of v0 has ended, nothing arrived meanwhile
  q.push('k', { type: 'MODIFIED', version: 'A' }); // the status patch's event
  await sleep(200); // the watch lags
  assert.deepEqual(seen, ['v0'], 'no cycle on A, which is older than our patch B');
  q.push('k', { type: 'MODIFIED', version: 'B' });
  await sleep(150);
  assert.deepEqual(seen, ['v0', 'B']);
  assert.equal(waits.length, 2);
  assert.ok(waits[0]! >= 0.04, 'the wait includes the batch window');
  assert.ok(waits[1]! >= 0.2, 'the second cycle waited from the first event after the patch (A)');
  await q.stop(1);
});

test('when the patch never comes back, the queue goes on after the consistency timeout', async () => {
  const { q, seen } = queues({ v0: 'B' }, { consistencyTimeout: 0.3 });
  q.push('k', { type: 'ADDED', version: 'v0' });
  await sleep(100);
  q.push('k', { type: 'MODIFIED', version: 'A' });
  await sleep(150);
  assert.deepEqual(seen, ['v0']);
  await sleep(300);
  assert.deepEqual(seen, ['v0', 'A']);
  await q.stop(1);
});

test('a queue without a pending patch ends when idle, and its lingering ends after the timeout', async () => {
  const { q, seen } = queues({ v0: 'B' }, { consistencyTimeout: 0.2 });
  q.push('k', { type: 'ADDED', version: 'v1' }); // no patch: nothing to wait for
  await sleep(120);
  assert.equal(q.size, 0);
  q.push('j', { type: 'ADDED', version: 'v0' }); // patched: lingers for B
  await sleep(120);
  assert.equal(q.size, 1);
  await sleep(250);
  assert.equal(q.size, 0, 'gone after the consistency timeout');
  assert.deepEqual(seen, ['v1', 'v0']);
  await q.stop(1);
});

test('with refresh, the stale event after the timeout is replaced by the current state', async () => {
  const refreshed: string[] = [];
  const { q, seen } = queues(
    { v0: 'B' },
    {
      consistencyTimeout: 0.3,
      refresh: async (_key, event) => {
        await sleep(5);
        refreshed.push(event.version);
        return { type: 'MODIFIED', version: 'C' }; // read afresh: newer than our patch B
      },
    },
  );
  q.push('k', { type: 'ADDED', version: 'v0' });
  await sleep(100);
  q.push('k', { type: 'MODIFIED', version: 'A' }); // older than B; B never comes (a broken watch)
  await sleep(450);
  assert.deepEqual(refreshed, ['A'], 'A was known to be stale');
  assert.deepEqual(seen, ['v0', 'C'], 'the cycle ran on the fresh state, never on A');
  await q.stop(1);
});

test('a refresh that fails is retried, still waiting for the patch; it never falls back to the stale event', async () => {
  let failures = 0;
  const { q, seen } = queues(
    { v0: 'B' },
    {
      consistencyTimeout: 0.1,
      refresh: async () => {
        await sleep(5);
        if (failures++ < 1) throw new Error('the apiserver is down');
        return { type: 'DELETED', version: 'A' }; // gone meanwhile
      },
    },
  );
  q.push('k', { type: 'ADDED', version: 'v0' });
  await sleep(80);
  q.push('k', { type: 'MODIFIED', version: 'A' });
  await sleep(200);
  assert.deepEqual(seen, ['v0'], 'no cycle on A after the failed refresh');
  await sleep(1_400); // the error backoff (1 s), another consistency wait, a refresh
  assert.deepEqual(seen, ['v0', 'A']);
  assert.equal(failures, 2);
  assert.equal(q.size, 0, 'the queue ended with the deletion');
  await q.stop(1);
});
