/**
 * Timers and daemons on the real apiserver: periodic runs with results in the status, idle
 * timers, daemons stopped by deletion (which waits for them), restarts after errors.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { on, TemporaryError } from '../../../packages/framework/src/index.ts';
import type { SpawningContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installTestCrd, startOperator } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
interface Obj {
  metadata: { finalizers?: string[] };
  status?: Record<string, unknown>;
}
const object = (name: string, spec = '{a: 1}') =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}}\nspec: ${spec}\n`;

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

test('a timer runs periodically with its result in the status (merged with its own patch), and stops when the object is deleted', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  let runs = 0;
  on.timer(
    R,
    function tick({ signal, patch }: SpawningContext) {
      assert.equal(signal.aborted, false);
      runs++;
      // The result is merged into what the run itself wrote there, as for changing handlers.
      patch.status = { tick: { by: 'patch' } };
      return { runs };
    },
    { interval: 0.3 },
  );
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('ticking'));
  const obj = await eventually(
    'several ticks recorded',
    async () => {
      const o = await kubectlJson<Obj>(cluster, ['get', R, 'ticking', '-n', ns]);
      return ((o.status?.tick as { runs?: number } | undefined)?.runs ?? 0) >= 3 ? o : undefined;
    },
    15_000,
  );
  assert.equal((obj.status?.tick as { by?: string }).by, 'patch');
  assert.deepEqual(
    obj.metadata.finalizers,
    ['kopf.zalando.org/KopfFinalizerMarker'],
    'a finalizer, so that deletion stops the timer first',
  );
  await kubectl(cluster, ['delete', R, 'ticking', '-n', ns, '--wait=true', '--timeout=30s']);
  const after = runs;
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(runs <= after + 1, `no more ticks after deletion (${after} → ${runs})`);
});

test('an idle timer runs only once the object has not changed for a while', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const runs: number[] = [];
  on.timer(
    R,
    function quiet() {
      runs.push(Date.now());
    },
    { interval: 0.2, idle: 1.5 },
  );
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('busy', '{n: 0}'));
  // Keep changing it for ~2 s: the idle timer must not fire meanwhile.
  const started = Date.now();
  for (let i = 1; i <= 5; i++) {
    await kubectl(cluster, [
      'patch',
      R,
      'busy',
      '-n',
      ns,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { n: i } }),
    ]);
    await new Promise((r) => setTimeout(r, 400));
  }
  const lastChange = Date.now();
  assert.equal(runs.length, 0, `not run while busy (${runs.map((r) => r - started).join(', ')})`);
  await eventually('runs once idle', () => runs.length >= 2, 10_000);
  assert.ok(runs[0]! - lastChange >= 1000, `first run ${runs[0]! - lastChange} ms after the last change`);
});

test('a daemon is stopped by deletion, which waits for it; errors restart it', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const log: string[] = [];
  on.daemon(R, async function watcher({ signal, retry, name }: SpawningContext) {
    log.push(`start ${name} retry=${retry}`);
    if (retry === 0) throw new TemporaryError('not yet', { delay: 0.2 });
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    log.push(`aborted: ${String((signal.reason as Error).message)}`);
    await new Promise((r) => setTimeout(r, 800)); // a graceful shutdown takes a while
    log.push('cleaned up');
  });
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('daemonic'));
  await eventually('restarted after the error', () => log.includes('start daemonic retry=1'));
  await kubectl(cluster, ['delete', R, 'daemonic', '-n', ns, '--wait=false']);
  await eventually(
    'the object is gone',
    async () => !(await kubectl(cluster, ['get', R, '-n', ns, '-o', 'name'])).includes('daemonic'),
    20_000,
  );
  assert.deepEqual(
    log,
    [
      'start daemonic retry=0',
      'start daemonic retry=1',
      'aborted: the object is being deleted',
      'cleaned up',
    ],
    'the finalizer was released only after the daemon cleaned up',
  );
});
