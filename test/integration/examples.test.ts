/**
 * The example operators of examples/ run as documented: their CRDs from `kopf-ts generate`,
 * the operator through `kopf-ts run`, and what their header comments promise happens.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import {
  eventually,
  kubectl,
  kubectlApply,
  kubectlJson,
  sharedCluster,
  testNamespace,
} from '../support/cluster.ts';
import { installGeneratedCrds, startCli } from '../support/cli.ts';

/** Applies the example's CRDs and waits until they are served. */
async function installCrds(cluster: ClusterInfo, example: string): Promise<void> {
  const crds = await installGeneratedCrds(cluster, example);
  assert.ok(crds.length > 0, `${example} declares a CRD`);
}

/** Applies an object of the examples' group (`example.kopf-ts.dev/v1`). */
function applyExample(cluster: ClusterInfo, ns: string, kind: string, name: string, spec: object) {
  const body = { apiVersion: 'example.kopf-ts.dev/v1', kind, metadata: { name }, spec };
  return kubectlApply(cluster, JSON.stringify(body), ns);
}

interface ConfigMap {
  data?: Record<string, string>;
}

test('examples/reconcile-operator.ts: the content ConfigMap follows the Website and comes back when deleted', async (t) => {
  const cluster = await sharedCluster();
  await installCrds(cluster, 'examples/reconcile-operator.ts');
  const ns = await testNamespace(t, cluster);
  const cli = startCli(t, cluster, ['run', 'examples/reconcile-operator.ts', '-n', ns, '--standalone']);
  await cli.waitFor(
    'Starting the watch-stream for configmaps.v1 (kopf-ts.dev/owned-by=website.example.kopf-ts.dev)',
  );
  const site = (content: string) => applyExample(cluster, ns, 'Website', 'home', { content });
  await site('<h1>Hello</h1>');
  const page = async () =>
    (
      await kubectlJson<ConfigMap>(cluster, ['get', 'configmap', 'home-content', '-n', ns]).catch(
        () => undefined,
      )
    )?.data?.['index.html'];
  await eventually('the page is published', async () => (await page()) === '<h1>Hello</h1>');
  await site('<h1>Bye</h1>');
  await eventually('the page follows', async () => (await page()) === '<h1>Bye</h1>');
  await kubectl(cluster, ['delete', 'configmap', 'home-content', '-n', ns]);
  await eventually('the deleted page is back', async () => (await page()) === '<h1>Bye</h1>', 15_000);
  const status = await kubectlJson<{ status?: { publish?: { bytes: number } } }>(cluster, [
    'get',
    'website',
    'home',
    '-n',
    ns,
  ]);
  assert.deepEqual(status.status?.publish, { bytes: 12 });
});

test('examples/index-operator.ts: a Team reports its members from the index of ConfigMaps', async (t) => {
  const cluster = await sharedCluster();
  await installCrds(cluster, 'examples/index-operator.ts');
  const ns = await testNamespace(t, cluster);
  for (const [name, team] of [
    ['ann', 'red'],
    ['bob', 'red'],
    ['cid', 'blue'],
  ] as const) {
    await kubectl(cluster, ['create', 'configmap', name, '-n', ns]);
    await kubectl(cluster, ['label', 'configmap', name, '-n', ns, `team=${team}`]);
  }
  const cli = startCli(t, cluster, ['run', 'examples/index-operator.ts', '-n', ns, '--standalone']);
  await cli.waitFor('The indexes are populated: members.');
  await applyExample(cluster, ns, 'Team', 'red', {});
  const roster = await eventually('the roster is reported', async () => {
    const team = await kubectlJson<{ status?: { roster?: { members: string[] } } }>(cluster, [
      'get',
      'team',
      'red',
      '-n',
      ns,
    ]);
    return team.status?.roster?.members;
  });
  assert.deepEqual(roster, ['ann', 'bob']);
});

test('examples/timer-daemon-operator.ts: the daemon polls, the idle timer reports, deletion stops the daemon', async (t) => {
  const cluster = await sharedCluster();
  await installCrds(cluster, 'examples/timer-daemon-operator.ts');
  const ns = await testNamespace(t, cluster);
  const server = createServer((_req, res) => res.writeHead(204).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  const cli = startCli(t, cluster, ['run', 'examples/timer-daemon-operator.ts', '-n', ns, '--standalone']);
  await cli.waitFor('Starting the watch-stream for probes');
  await applyExample(cluster, ns, 'Probe', 'local', { url, period: 1 });
  // The timer runs once the probe has been left alone for 10 s.
  const report = await eventually(
    'the report in the status',
    async () =>
      (
        await kubectlJson<{ status?: { report?: { ok: boolean; detail: string } } }>(cluster, [
          'get',
          'probe',
          'local',
          '-n',
          ns,
        ])
      ).status?.report,
    40_000,
  );
  assert.deepEqual([report.ok, report.detail], [true, 'HTTP 204']);
  await kubectl(cluster, ['delete', 'probe', 'local', '-n', ns, '--timeout=30s']);
  await cli.waitFor('Stopped polling: the object is being deleted').catch((e: Error) => {
    throw new Error(`${e.message}\n${cli.output.slice(-15).join('\n')}`);
  });
});
