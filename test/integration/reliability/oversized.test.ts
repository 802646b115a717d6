/**
 * Oversized objects against Kubernetes' 256 KiB limit on all annotations of an object
 * together. A ~150 KiB spec applied with `kubectl apply` has a ~150 KiB copy in kubectl's
 * last-applied annotation already; the diff-base (another copy) cannot join it there. The
 * operator must not wedge: it stores the diff-base in `status.kopf.last-handled-configuration`
 * (Kopf's StatusDiffBaseStorage field) with a digest in an annotation, or only the digest where
 * the status does not persist (a ConfigMap has none), warns once, and posts a Warning Event.
 * Each handler runs once per change (a restart reads the diff-base back from the status), the
 * diff-base returns to the annotation when the object is small again, and deletion works.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { on, type HandlerContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { dumpJson } from '../../../packages/framework/src/util/json.ts';
import {
  eventually,
  kubectl,
  kubectlJson,
  sharedCluster,
  testNamespace,
  warningMessages,
} from '../../support/cluster.ts';
import { installTestCrd, startOperator } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
const DIFFBASE = 'kopf.zalando.org/last-handled-configuration';
const DIGEST = 'kopf.zalando.org/last-handled-digest';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const BLOB = 'x'.repeat(150 * 1024);

interface Obj {
  metadata: { annotations?: Record<string, string>; finalizers?: string[] };
  status?: { kopf?: Record<string, string> } & Record<string, unknown>;
}
type Update = { old: unknown; new: unknown; diff: unknown };

const kopfTest = (name: string, spec: object) =>
  JSON.stringify({ apiVersion: 'kopf-ts.dev/v1', kind: 'KopfTest', metadata: { name }, spec });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (lines: string[], text: string) => lines.filter((l) => l.includes(text)).length;

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

test('a 150 KiB spec applied with kubectl: handled once, its update once, deleted; the diff-base in status', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  let creates = 0;
  let deletes = 0;
  const updates: Update[] = [];
  on.create(R, function create_fn({ spec }: HandlerContext<{ blob: string }>) {
    creates++;
    return { size: spec.blob.length };
  });
  on.update(R, function update_fn({ old, new: new_, diff }) {
    updates.push({ old, new: new_, diff });
  });
  on.delete(R, function delete_fn() {
    deletes++;
  });
  const first = await startOperator(t, cluster, ns);
  const get = () => kubectlJson<Obj>(cluster, ['get', R, 'big', '-n', ns]);
  const apply = (spec: object) => kubectl(cluster, ['apply', '-n', ns, '-f', '-'], kopfTest('big', spec));

  await apply({ n: 1, blob: BLOB });
  const handled = await eventually(
    'the create handler done and its diff-base stored',
    async () => {
      const o = await get();
      return o.metadata.annotations?.[DIGEST] ? o : undefined;
    },
    20_000,
  );
  assert.ok(handled.metadata.annotations![LAST_APPLIED]!.length > BLOB.length, 'kubectl kept its copy');
  assert.equal(handled.metadata.annotations![DIFFBASE], undefined, 'no diff-base annotation: it cannot fit');
  const inStatus = handled.status?.kopf?.['last-handled-configuration'];
  // Kopf's StatusDiffBaseStorage format: compact JSON, no newline (keys as the apiserver sorts them).
  assert.ok(
    inStatus === dumpJson({ spec: { blob: BLOB, n: 1 } }),
    `the status copy: ${inStatus?.slice(0, 80)}`,
  );
  assert.match(handled.metadata.annotations![DIGEST]!, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(handled.status?.create_fn, { size: BLOB.length });
  await sleep(2_000);
  assert.equal(creates, 1, 'the create handler ran once');
  assert.equal(count(first.logs, 'does not fit into the annotations'), 1, 'one warning');
  const warning = await eventually('a Warning event', async () => {
    const out = await warningMessages(cluster, ns, 'big');
    return out.includes('status.kopf.last-handled-configuration') ? out : undefined;
  });
  assert.match(warning, /does not fit into the annotations/);

  // An update is detected and handled once, with the real old and new values.
  await apply({ n: 2, blob: BLOB });
  await eventually('the update handled', () => updates.length === 1, 20_000);
  await eventually('the new diff-base stored', async () =>
    (await get()).status?.kopf?.['last-handled-configuration']?.endsWith('"n":2}}'),
  );
  await sleep(1_500);
  assert.equal(updates.length, 1, 'the update handler ran once');
  assert.deepEqual(updates[0]!.diff, [['change', ['spec', 'n'], 1, 2]]);
  assert.equal((updates[0]!.old as { spec: { n: number } }).spec.n, 1);
  assert.equal(
    count(first.logs, 'does not fit into the annotations'),
    1,
    'no second warning while it stays there',
  );

  // A restart reads the diff-base back from the status: nothing runs again, no new warning.
  await first.stop();
  const second = await startOperator(t, cluster, ns);
  await sleep(2_000);
  assert.equal(creates, 1, 'not created again after the restart');
  assert.equal(updates.length, 1, 'no phantom update after the restart');
  assert.equal(count(second.logs, 'does not fit into the annotations'), 0);

  // Small again: the diff-base returns to the annotation, and the status copy is removed.
  await apply({ n: 3 });
  const small = await eventually(
    'the diff-base back in the annotation',
    async () => {
      const o = await get();
      return o.metadata.annotations?.[DIFFBASE] ? o : undefined;
    },
    20_000,
  );
  assert.equal(small.metadata.annotations![DIFFBASE], '{"spec":{"n":3}}\n');
  assert.equal(small.metadata.annotations![DIGEST], undefined);
  assert.equal(small.status?.kopf?.['last-handled-configuration'], undefined);
  assert.equal(updates.length, 2);
  assert.deepEqual(updates[1]!.diff, [
    ['remove', ['spec', 'blob'], BLOB, null],
    ['change', ['spec', 'n'], 2, 3],
  ]);

  await kubectl(cluster, ['delete', R, 'big', '-n', ns, '--timeout=20s']);
  assert.equal(deletes, 1);
  assert.equal(creates, 1);
  assert.equal(updates.length, 2);
  const failed = [...first.logs, ...second.logs].filter((l) => l.includes('Processing of'));
  assert.deepEqual(failed, [], 'no failed cycles');
});

test('an oversized ConfigMap (no status to keep a copy in): only a digest, nothing wedged', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  let creates = 0;
  let deletes = 0;
  const updates: Update[] = [];
  const labels = { oversized: 'yes' };
  on.create(
    'configmaps',
    function create_fn() {
      creates++;
    },
    { labels },
  );
  on.update(
    'configmaps',
    function update_fn({ old, new: new_, diff }) {
      updates.push({ old, new: new_, diff });
    },
    { labels },
  );
  on.delete(
    'configmaps',
    function delete_fn() {
      deletes++;
    },
    { labels },
  );
  const { logs } = await startOperator(t, cluster, ns);
  const cm = (n: number) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'big', labels },
      data: { n: String(n), blob: BLOB },
    });
  const get = () => kubectlJson<Obj>(cluster, ['get', 'configmap', 'big', '-n', ns]);

  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], cm(1));
  const handled = await eventually(
    'the create handler done and the digest stored',
    async () => {
      const o = await get();
      return o.metadata.annotations?.[DIGEST] ? o : undefined;
    },
    20_000,
  );
  assert.equal(handled.metadata.annotations![DIFFBASE], undefined);
  assert.equal(handled.status, undefined, 'a ConfigMap keeps no status');
  await sleep(2_000);
  assert.equal(creates, 1, 'the create handler ran once: the digest says it is handled');
  assert.equal(updates.length, 0, 'no phantom update from the digest');

  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], cm(2));
  await eventually('the update handled', () => updates.length === 1, 20_000);
  await sleep(2_000);
  assert.equal(updates.length, 1, 'the update handler ran once');
  assert.equal(updates[0]!.old, undefined, 'the old state is unknown');
  assert.equal((updates[0]!.new as { data: { n: string } }).data.n, '2');
  assert.equal(count(logs, 'only a digest of the last handled state'), 1, 'one warning for the update');
  const warning = await eventually('a Warning event', async () => {
    const out = await warningMessages(cluster, ns, 'big');
    return out.includes('only a digest') ? out : undefined;
  });
  assert.match(warning, /no old state/);

  await kubectl(cluster, ['delete', 'configmap', 'big', '-n', ns, '--timeout=20s']);
  assert.equal(deletes, 1);
  assert.equal(creates, 1);
  assert.equal(count(logs, 'Processing of'), 0, 'no failed cycles');
});
