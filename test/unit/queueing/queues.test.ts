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

function queues(patches: Record<string, string>, options: { consistencyTimeout?: number } = {}) {
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
