/**
 * The engine on the real apiserver: causes, handlers, state and patches, each asserted on
 * what the apiserver stores and what the handlers saw.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { on, PermanentError, TemporaryError } from '../../../packages/framework/src/index.ts';
import type { HandlerContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installTestCrd, startOperator } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
interface Obj {
  metadata: { annotations?: Record<string, string>; finalizers?: string[]; resourceVersion: string };
  status?: Record<string, unknown>;
}

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

const manifest = (name: string, spec: object, extra = '') => `apiVersion: kopf-ts.dev/v1
kind: KopfTest
metadata:
  name: ${name}
${extra}spec: ${JSON.stringify(spec)}
`;

test('create runs once, stores the diff-base and the result; a restart does not run it again', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const calls: string[] = [];
  on.create(R, function create_fn({ name, spec, retry }: HandlerContext<{ size: number }>) {
    calls.push(`${name} size=${spec.size} retry=${retry}`);
    return { message: 'created', size: spec.size };
  });
  const first = await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest('one', { size: 3 }));
  const obj = await eventually('diff-base stored', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, 'one', '-n', ns]);
    return o.metadata.annotations?.['kopf.zalando.org/last-handled-configuration'] ? o : undefined;
  });
  assert.equal(
    obj.metadata.annotations!['kopf.zalando.org/last-handled-configuration'],
    '{"spec":{"size":3}}\n',
  );
  assert.deepEqual(obj.status?.create_fn, { message: 'created', size: 3 });
  // Progress records are purged once the creation is processed.
  assert.deepEqual(
    Object.keys(obj.metadata.annotations!).filter(
      (k) => k !== 'kopf.zalando.org/last-handled-configuration' && k.startsWith('kopf.'),
    ),
    [],
  );
  assert.ok(
    first.logs.some((l) => l.includes(`[${ns}/one] Handler 'create_fn' succeeded.`)),
    first.logs.join('\n'),
  );
  assert.ok(first.logs.some((l) => l.includes(`[${ns}/one] Creation is processed: 1 succeeded; 0 failed.`)));
  await first.stop();
  const events = await kubectlJson<{ items: Array<{ type: string }> }>(cluster, [
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    'involvedObject.name=one',
  ]);
  assert.deepEqual(events.items, [], 'by default, successes are logged, not posted as Events');

  await startOperator(t, cluster, ns);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(calls, ['one size=3 retry=0']);
});

test('update runs once per distinct essence, with old, new and diff', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const seen: unknown[] = [];
  on.create(R, function create_fn() {});
  on.update(R, function update_fn({ old, new: updated, diff }: HandlerContext) {
    seen.push({ old, new: updated, diff });
  });
  on.update(
    R,
    function size_fn({ old, new: updated }: HandlerContext) {
      seen.push({ field: 'spec.size', old, new: updated });
    },
    { field: 'spec.size' },
  );
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest('two', { size: 1, name: 'a' }));
  await eventually(
    'created',
    async () =>
      (await kubectlJson<Obj>(cluster, ['get', R, 'two', '-n', ns])).metadata.annotations?.[
        'kopf.zalando.org/last-handled-configuration'
      ],
  );
  await kubectl(cluster, ['patch', R, 'two', '-n', ns, '--type=merge', '-p', '{"spec":{"size":2}}']);
  await eventually('size update handled', () => seen.length === 2);
  // A change outside the essence (status) and a no-op patch trigger nothing.
  await kubectl(cluster, [
    'patch',
    R,
    'two',
    '-n',
    ns,
    '--subresource=status',
    '--type=merge',
    '-p',
    '{"status":{"x":1}}',
  ]);
  await kubectl(cluster, ['patch', R, 'two', '-n', ns, '--type=merge', '-p', '{"spec":{"size":2}}']);
  await kubectl(cluster, ['patch', R, 'two', '-n', ns, '--type=merge', '-p', '{"spec":{"name":"b"}}']);
  await eventually('name update handled', () => seen.length === 3);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(seen, [
    {
      old: { spec: { size: 1, name: 'a' } },
      new: { spec: { size: 2, name: 'a' } },
      diff: [['change', ['spec', 'size'], 1, 2]],
    },
    { field: 'spec.size', old: 1, new: 2 },
    {
      old: { spec: { size: 2, name: 'a' } },
      new: { spec: { size: 2, name: 'b' } },
      diff: [['change', ['spec', 'name'], 'a', 'b']],
    },
  ]);
});

test('delete: the finalizer holds the object until the handler succeeds; other finalizers survive', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const deleted: string[] = [];
  on.create(R, function create_fn() {});
  on.delete(R, function delete_fn({ name, retry }: HandlerContext) {
    if (retry === 0) throw new TemporaryError('not yet', { delay: 1 });
    deleted.push(name);
  });
  await startOperator(t, cluster, ns);
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    manifest('three', { a: 1 }, '  finalizers: [example.com/other]\n'),
  );
  const obj = await eventually('our finalizer added', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, 'three', '-n', ns]);
    return o.metadata.finalizers?.includes('kopf.zalando.org/KopfFinalizerMarker') ? o : undefined;
  });
  assert.deepEqual(obj.metadata.finalizers, ['example.com/other', 'kopf.zalando.org/KopfFinalizerMarker']);
  await eventually(
    'created',
    async () =>
      (await kubectlJson<Obj>(cluster, ['get', R, 'three', '-n', ns])).metadata.annotations?.[
        'kopf.zalando.org/last-handled-configuration'
      ],
  );
  await kubectl(cluster, ['delete', R, 'three', '-n', ns, '--wait=false']);
  await eventually(
    'our finalizer removed after the retried handler',
    async () => {
      const o = await kubectlJson<Obj>(cluster, ['get', R, 'three', '-n', ns]);
      return JSON.stringify(o.metadata.finalizers) === '["example.com/other"]';
    },
    20_000,
  );
  assert.deepEqual(deleted, ['three']);
  await kubectl(cluster, [
    'patch',
    R,
    'three',
    '-n',
    ns,
    '--type=json',
    '-p',
    '[{"op":"remove","path":"/metadata/finalizers"}]',
  ]);
  await eventually(
    'object gone',
    async () => !(await kubectl(cluster, ['get', R, '-n', ns, '-o', 'name'])).includes('three'),
  );
});

test('several handlers, one per cycle; temporary failures retried; permanent failures recorded and reported', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const order: string[] = [];
  on.create(R, function first({ retry }: HandlerContext) {
    order.push(`first#${retry}`);
    if (retry < 2) throw new TemporaryError('warming up', { delay: 0.5 });
  });
  on.create(R, function second() {
    order.push('second');
    throw new PermanentError('spec.size is missing');
  });
  on.create(
    R,
    function third({ retry }: HandlerContext) {
      order.push(`third#${retry}`);
      if (retry === 0) throw new Error('boom');
    },
    { backoff: 0.5 },
  );
  const { logs } = await startOperator(t, cluster, ns, { events: 'all' });
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest('four', {}));
  // While the other handlers still retry, the permanent failure is visible in its record.
  const failed = await eventually(
    "the failed handler's record",
    async () => {
      const o = await kubectlJson<Obj>(cluster, ['get', R, 'four', '-n', ns]);
      const text = o.metadata.annotations?.['kopf.zalando.org/second'];
      return text && (JSON.parse(text) as { failure?: boolean }).failure
        ? (JSON.parse(text) as Record<string, unknown>)
        : undefined;
    },
    20_000,
    50,
  );
  assert.equal(failed.message, 'spec.size is missing');
  assert.equal(failed.retries, 1);
  await eventually(
    'creation processed',
    () => logs.some((l) => l.includes('Creation is processed: 2 succeeded; 1 failed.')),
    20_000,
  );
  assert.deepEqual(
    order.filter((o) => o.startsWith('first')),
    ['first#0', 'first#1', 'first#2'],
  );
  assert.deepEqual(
    order.filter((o) => o.startsWith('third')),
    ['third#0', 'third#1'],
  );
  assert.equal(order.filter((o) => o === 'second').length, 1);
  const obj = await eventually('records purged once processed', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, 'four', '-n', ns]);
    return Object.keys(o.metadata.annotations ?? {}).some((k) =>
      /kopf\.zalando\.org\/(first|second|third)$/.test(k),
    )
      ? undefined
      : o;
  });
  assert.ok(
    obj.metadata.annotations?.['kopf.zalando.org/last-handled-configuration'],
    'the diff-base is stored',
  );
  const events = await eventually('Warning event posted', async () => {
    const list = await kubectlJson<{ items: Array<{ type: string; reason: string; message: string }> }>(
      cluster,
      ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=four'],
    );
    return list.items.some((e) => e.message.includes('failed permanently')) ? list.items : undefined;
  });
  assert.ok(
    events.some(
      (e) =>
        e.type === 'Warning' && e.message === "Handler 'second' failed permanently: spec.size is missing",
    ),
  );
  assert.ok(events.some((e) => e.type === 'Normal' && e.message === "Handler 'first' succeeded."));
});
