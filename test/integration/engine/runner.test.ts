/**
 * The in-process runner for operator authors (`kopf-ts/testing`), as they would use it.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, test } from 'node:test';
import { on, PermanentError } from 'kopf-ts';
import { OperatorRunner } from 'kopf-ts/testing';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { kubectl, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installTestCrd } from '../../support/operator.ts';

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

test('OperatorRunner starts the registered operator, exposes its logs, and reports how it ended', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  on.create('kopftests.kopf-ts.dev', function create_fn({ name }) {
    return { hello: name };
  });
  const runner = await OperatorRunner.start({ namespaces: [ns], login: { kubeconfig: cluster.kubeconfig } });
  assert.ok(runner.logs.some((l) => l.includes("Activity 'login_via_client' succeeded.")));
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    'apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: hi}\nspec: {a: 1}\n',
  );
  await runner.waitForLog(`[${ns}/hi] Handler 'create_fn' succeeded.`);
  assert.deepEqual(await runner.stop(), { failure: undefined });
  assert.ok(runner.logs.at(-1)?.includes('The operator has stopped.'));

  clearRegistry();
  on.startup(function fails() {
    throw new PermanentError('no config');
  });
  await assert.rejects(
    OperatorRunner.start({ namespaces: [ns], login: { kubeconfig: cluster.kubeconfig } }),
    /Startup failed: Activity 'fails' failed: no config/,
  );
});
