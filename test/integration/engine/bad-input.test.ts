/**
 * Bad input and misbehaving handlers, with nothing lost: handler ids over 63 characters,
 * results that cannot be stored, handlers that never return, long names and unicode. Each
 * failure is recorded and reported, and other objects keep being served.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { on, TemporaryError } from '../../../packages/framework/src/index.ts';
import type { HandlerContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { keyConvention, makeV2Key } from '../../../packages/framework/src/state/keys.ts';
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
interface Obj {
  metadata: { annotations?: Record<string, string> };
  status?: Record<string, unknown>;
}
const object = (name: string, spec: object) =>
  JSON.stringify({ apiVersion: 'kopf-ts.dev/v1', kind: 'KopfTest', metadata: { name }, spec });

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

test('a handler id over 63 characters gets a hashed annotation key and works end to end', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const id = `a_very_long_handler_id_${'x'.repeat(60)}/with/sub.parts`;
  const key = makeV2Key(keyConvention(), id);
  assert.ok(key.length - 'kopf.zalando.org/'.length <= 63);
  on.create(
    R,
    ({ retry }: HandlerContext) => {
      if (retry === 0) throw new TemporaryError('once', { delay: 1 });
      return { ok: true };
    },
    { id },
  );
  await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('long-id', { a: 1 }));
  const pending = await eventually('the record under the hashed key', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, 'long-id', '-n', ns]);
    return o.metadata.annotations?.[key];
  });
  assert.match(pending, /"retries":1/);
  const done = await eventually(
    'handled',
    async () => {
      const o = await kubectlJson<Obj>(cluster, ['get', R, 'long-id', '-n', ns]);
      return o.metadata.annotations?.['kopf.zalando.org/last-handled-configuration'] ? o : undefined;
    },
    15_000,
  );
  assert.equal(done.metadata.annotations?.[key], undefined, 'purged once done');
  assert.deepEqual(done.status?.[id], { ok: true });
});

test('results that cannot be stored, and handlers that never return, fail clearly; others are served', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  on.create(
    R,
    function create_fn({ name, spec }: HandlerContext<{ mode: string }>) {
      if (spec.mode === 'cyclic') {
        const result: Record<string, unknown> = {};
        result.self = result;
        return result;
      }
      if (spec.mode === 'hang') return new Promise(() => undefined);
      return { greeted: name };
    },
    { timeout: 1.5 },
  );
  const { logs } = await startOperator(t, cluster, ns);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('cyclic', { mode: 'cyclic' }));
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('hang', { mode: 'hang' }));
  // A long name and unicode in the spec, handled normally meanwhile.
  const longName = `ok-${'n'.repeat(240)}`;
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    object(longName, { mode: 'fine', note: 'Grüße, 世界 🙂' }),
  );
  await eventually(
    'the cyclic result rejected',
    () =>
      logs.some((l) =>
        l.includes(
          `[${ns}/cyclic] Handler 'create_fn' failed permanently: Handler 'create_fn' returned a value that cannot be stored in the status`,
        ),
      ),
    15_000,
  );
  await eventually(
    'the hanging handler timed out',
    () =>
      logs.some((l) =>
        l.includes(
          `[${ns}/hang] Handler 'create_fn' failed permanently: Handler 'create_fn' has timed out after 1.5 seconds.`,
        ),
      ),
    15_000,
  );
  const fine = await eventually('the good object handled', async () => {
    const o = await kubectlJson<Obj>(cluster, ['get', R, longName, '-n', ns]);
    return o.status?.create_fn ? o : undefined;
  });
  assert.deepEqual(fine.status?.create_fn, { greeted: longName });
  assert.equal(
    fine.metadata.annotations?.['kopf.zalando.org/last-handled-configuration'],
    '{"spec":{"mode":"fine","note":"Gr\\u00fc\\u00dfe, \\u4e16\\u754c \\ud83d\\ude42"}}\n',
  );
  for (const name of ['cyclic', 'hang']) {
    const warning = await eventually(`a Warning event for ${name}`, async () => {
      const out = await warningMessages(cluster, ns, name);
      return out.includes('failed permanently') ? out : undefined;
    });
    assert.match(warning, /create_fn/);
  }
});
