/**
 * Filters on every handler kind, on the real apiserver: label filters (a value, PRESENT,
 * ABSENT, a predicate), annotation filters and `when` select the same object out of two for
 * create, update, delete, resume, field, event, timer, daemon, index and reconcile handlers;
 * the other object sees no handler at all, and gets no finalizer.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { ABSENT, on, PRESENT } from '../../../packages/framework/src/index.ts';
import type { ObjectContext, SpawningContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installTestCrd, startOperator } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
const object = (name: string, labels: string, annotations: string, v: number) =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}, labels: ${labels}, annotations: ${annotations}}\nspec: {v: ${v}}\n`;

before(async () => installTestCrd(await sharedCluster()));

test('every handler kind honours label, annotation and `when` filters', async (t) => {
  clearRegistry();
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const calls: Array<[string, string]> = [];
  const record =
    (kind: string) =>
    ({ name }: ObjectContext) =>
      void calls.push([kind, name]);
  const picked = { pick: 'yes' };
  on.create(R, record('create'), { id: 'c', labels: picked });
  on.update(R, record('update'), { id: 'u', annotations: { note: PRESENT } });
  on.delete(R, record('delete'), { id: 'd', when: ({ labels }) => labels.pick === 'yes' });
  on.resume(R, record('resume'), { id: 'r', labels: { skip: ABSENT } });
  on.field(R, record('field'), { id: 'f', field: 'spec.v', labels: { pick: (v) => v === 'yes' } });
  on.event(R, record('event'), { id: 'e', labels: picked });
  on.timer(R, record('timer'), { id: 't', interval: 0.3, annotations: { note: 'x' } });
  on.daemon(
    R,
    async (context: SpawningContext) => {
      record('daemon')(context);
      await new Promise((r) => context.signal.addEventListener('abort', r, { once: true }));
    },
    { id: 'dm', labels: picked },
  );
  on.index(R, ({ name }: ObjectContext) => ({ [name]: true }), { id: 'ix', labels: picked });
  on.reconcile(R, record('reconcile'), { id: 'rc', when: ({ labels }) => labels.pick === 'yes', resync: 0 });

  const first = await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('in', '{pick: "yes"}', '{note: x}', 1));
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('out', '{pick: "no", skip: "y"}', '{}', 1));
  const seen = (kind: string) => calls.some(([k, n]) => k === kind && n === 'in');
  for (const kind of ['create', 'field', 'event', 'timer', 'daemon', 'reconcile'])
    await eventually(`the ${kind} handler ran for 'in'`, () => seen(kind), 15_000);
  assert.deepEqual([...first.operator.indexes.get('ix').keys()], ['in'], 'only the picked object is indexed');

  await kubectl(cluster, ['patch', R, 'in', '-n', ns, '--type=merge', '-p', '{"spec":{"v":2}}']);
  await kubectl(cluster, ['patch', R, 'out', '-n', ns, '--type=merge', '-p', '{"spec":{"v":2}}']);
  await eventually('the update handler ran for in', () => seen('update'), 15_000);
  const fieldCalls = () => calls.filter(([k, n]) => k === 'field' && n === 'in').length;
  await eventually('the field handler ran again for the change', () => fieldCalls() >= 2, 15_000);

  // A restart: resume handlers for what is already handled.
  await first.stop();
  await startOperator(t, cluster, ns);
  await eventually('the resume handler ran for in', () => seen('resume'), 15_000);

  const out = await kubectlJson<{ metadata: { finalizers?: string[] } }>(cluster, [
    'get',
    R,
    'out',
    '-n',
    ns,
  ]);
  assert.deepEqual(out.metadata.finalizers ?? [], [], 'no handler applies to out: no finalizer');
  await kubectl(cluster, ['delete', R, 'in', 'out', '-n', ns, '--wait=true', '--timeout=30s']);
  assert.ok(seen('delete'), 'the delete handler ran for in');
  const strays = calls.filter(([, n]) => n !== 'in');
  assert.deepEqual(strays, [], 'no handler of any kind ran for out');
});
