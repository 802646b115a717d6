/**
 * Indexes and level-based reconciliation on the real apiserver: indexes populated before any
 * handler runs and kept current; reconcile handlers triggered by their owned children (watched
 * with a label selector), by periodic resyncs, and retried after failures.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { adopt, on, TemporaryError } from '../../../packages/framework/src/index.ts';
import type {
  HandlerContext,
  ObjectContext,
  ReconcileContext,
} from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installTestCrd, startOperator } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
interface Obj {
  metadata: { name: string; finalizers?: string[]; labels?: Record<string, string> };
  status?: Record<string, unknown>;
}
const object = (name: string, spec: string, labels = '{}') =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}, labels: ${labels}}\nspec: ${spec}\n`;

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

test('an index is populated before handlers run, and follows creations, updates and deletions', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  // Members exist before the operator starts: the first query must already see all of them.
  const members: Array<[string, string]> = [
    ['ann', 'red'],
    ['bob', 'red'],
    ['cid', 'blue'],
  ];
  for (const [name, team] of members)
    await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object(name, `{team: ${team}}`, '{role: member}'));
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    object('aaa-query', '{query: red}', '{role: query}'),
  );

  on.index(
    R,
    // Slow and async on purpose: the query (listed first) must still wait for all members.
    async ({ spec, name }: ObjectContext<{ team?: string }>) => {
      await new Promise((r) => setTimeout(r, 150));
      return spec.team ? { [spec.team]: name } : undefined;
    },
    {
      id: 'by_team',
      labels: { role: 'member' },
    },
  );
  on.create(
    R,
    ({ spec, indexes }: HandlerContext<{ query?: string }>) => ({
      members: indexes
        .get<string>('by_team')
        .get(spec.query ?? '')
        .toSorted(),
    }),
    { id: 'answer', labels: { role: 'query' } },
  );
  const { operator } = await startOperator(t, cluster, ns);
  const answer = async (name: string) =>
    ((await kubectlJson<Obj>(cluster, ['get', R, name, '-n', ns])).status?.answer as { members?: string[] })
      ?.members;
  assert.deepEqual(await eventually('q1 answered', () => answer('aaa-query')), ['ann', 'bob']);
  assert.deepEqual(
    [...operator.indexes.get<string>('by_team')].map(([k, v]) => [k, v.toSorted()]).sort(),
    [
      ['blue', ['cid']],
      ['red', ['ann', 'bob']],
    ],
    'the whole index',
  );

  // Changes: bob leaves, cid moves to red, dan joins red, and ann stops being a member.
  await kubectl(cluster, ['delete', R, 'bob', '-n', ns]);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('cid', '{team: red}', '{role: member}'));
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('dan', '{team: red}', '{role: member}'));
  await kubectl(cluster, ['label', R, 'ann', '-n', ns, 'role=retired', '--overwrite']);
  await eventually(
    'the index follows',
    () =>
      JSON.stringify(operator.indexes.get<string>('by_team').get('red').toSorted()) === '["cid","dan"]' &&
      !operator.indexes.get('by_team').has('blue'),
    15_000,
  );
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('q2', '{query: red}', '{role: query}'));
  assert.deepEqual(await eventually('q2 answered', () => answer('q2')), ['cid', 'dan']);
  assert.throws(() => operator.indexes.get('nope'), /There is no index 'nope'; the indexes are: by_team/);
});

interface Spec {
  value: string;
}

/** A reconcile handler that keeps a ConfigMap `<name>-data` holding `spec.value`. */
function registerKeeper(options: { resync?: number; failFirst?: number } = {}) {
  const calls: string[] = [];
  const succeededAtRetry: number[] = [];
  let failures = 0;
  on.reconcile(
    R,
    async function keeper({ body, spec, name, namespace, api, retry }: ReconcileContext<Spec>) {
      calls.push(name);
      if (failures < (options.failFirst ?? 0)) {
        failures++;
        throw new TemporaryError(`not yet (attempt ${retry})`, { delay: 0.2 });
      }
      const child = adopt(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${name}-data`, namespace },
          data: { value: spec.value },
        },
        body,
      );
      await api.apply(child, { force: true });
      succeededAtRetry.push(retry);
      return { value: spec.value };
    },
    { owns: ['configmaps'], resync: options.resync ?? 0 },
  );
  return { calls, succeededAtRetry };
}

interface ConfigMap {
  metadata: { labels?: Record<string, string>; ownerReferences?: Array<{ name: string }> };
  data?: Record<string, string>;
}

test('a reconcile handler keeps its child as the owner says: hand edits and deletions are undone', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const { calls } = registerKeeper();
  const { logs } = await startOperator(t, cluster, ns);
  assert.ok(
    logs.some((l) =>
      l.includes('Starting the watch-stream for configmaps.v1 (kopf-ts.dev/owned-by=kopftest.kopf-ts.dev)'),
    ),
    'the children are watched with a label selector',
  );
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('keep', '{value: one}'));
  const child = () => kubectlJson<ConfigMap>(cluster, ['get', 'configmap', 'keep-data', '-n', ns]);
  const created = await eventually('the child exists', () => child().catch(() => undefined));
  assert.equal(created.data?.value, 'one');
  assert.equal(created.metadata.labels?.['kopf-ts.dev/owned-by'], 'kopftest.kopf-ts.dev');
  assert.equal(created.metadata.ownerReferences?.[0]?.name, 'keep');
  const obj = await kubectlJson<Obj>(cluster, ['get', R, 'keep', '-n', ns]);
  assert.deepEqual(obj.metadata.finalizers ?? [], [], 'no finalizer: reconcile handlers need none');

  // The owner changes: the child follows.
  await kubectl(cluster, ['patch', R, 'keep', '-n', ns, '--type=merge', '-p', '{"spec":{"value":"two"}}']);
  await eventually('the child follows the owner', async () => (await child()).data?.value === 'two');

  // Hand edits of the child and its deletion are undone: only the child changed.
  const before = calls.length;
  await kubectl(cluster, [
    'patch',
    'configmap',
    'keep-data',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"data":{"value":"hand"}}',
  ]);
  await eventually('a hand edit is reverted', async () => (await child()).data?.value === 'two', 15_000);
  await kubectl(cluster, ['delete', 'configmap', 'keep-data', '-n', ns]);
  await eventually('a deleted child is recreated', () => child().catch(() => undefined), 15_000);
  assert.ok(calls.length > before, 'triggered by the children');
  const status = (await kubectlJson<Obj>(cluster, ['get', R, 'keep', '-n', ns])).status;
  assert.deepEqual(status?.keeper, { value: 'two' }, 'the result in the status');
});

test('reconcile handlers are retried after failures, and resynced periodically without changes', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const { calls, succeededAtRetry } = registerKeeper({ resync: 1, failFirst: 2 });
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('flaky', '{value: x}'));
  await eventually('reconciled after two failures', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, 'flaky', '-n', ns]);
    return o.status?.keeper;
  });
  assert.equal(succeededAtRetry[0], 2, 'the third attempt succeeded and knew of the two before');
  assert.ok(
    succeededAtRetry.slice(1).every((r) => r === 0),
    'a success ends the streak',
  );
  const events = await kubectl(cluster, [
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    'involvedObject.name=flaky',
    '-o',
    'jsonpath={.items[*].message}',
  ]);
  assert.match(events, /Reconciliation 'keeper' failed \(attempt 1\); retrying in 0.2s: not yet/);

  // Nothing changes now; the resync still brings it back every second.
  const settled = calls.length;
  await new Promise((r) => setTimeout(r, 3500));
  assert.ok(calls.length >= settled + 2, `resyncs without changes (${settled} → ${calls.length} calls)`);
});

test('a reconcile result that changes on every call does not loop on its own patch', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  let calls = 0;
  on.reconcile(
    R,
    function counter() {
      calls++;
      return { calls, at: Date.now() };
    },
    { resync: 0 },
  );
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('counted', '{value: x}'));
  await eventually(
    'reconciled',
    async () => (await kubectlJson<Obj>(cluster, ['get', R, 'counted', '-n', ns])).status?.counter,
  );
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(calls <= 2, `${calls} calls: our own status patch must not trigger the handler again and again`);
  await kubectl(cluster, ['patch', R, 'counted', '-n', ns, '--type=merge', '-p', '{"spec":{"value":"y"}}']);
  await eventually('a real change reconciles again', () => calls >= 2 && calls <= 3);
});
