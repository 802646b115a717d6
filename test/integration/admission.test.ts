/**
 * Admission webhooks on the real apiserver, which calls the operator's webhook server on
 * 127.0.0.1: rejections, defaults, dry runs, and a webhook that is down. Every configuration
 * is scoped to its test's namespace (a namespaceSelector on kubernetes.io/metadata.name) and
 * deleted after the test, so other tests never meet it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { before, beforeEach, test, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { AdmissionError, on } from '../../packages/framework/src/index.ts';
import type { AdmissionContext, MutationContext } from '../../packages/framework/src/index.ts';
import { clearRegistry } from '../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../support/cluster.ts';
import { generated, installGeneratedCrds, startCli } from '../support/cli.ts';
import { installTestCrd, startOperator } from '../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
const EXAMPLE = 'examples/validating-operator.ts';

interface Obj {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { size?: number; storageClass?: string };
}

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

const manifest = (name: string, spec: object, labels: Record<string, string> = {}) =>
  JSON.stringify({ apiVersion: 'kopf-ts.dev/v1', kind: 'KopfTest', metadata: { name, labels }, spec });

/**
 * kubectl with stdin, without blocking: the webhook server runs in this process, so the
 * support helper's execFileSync (used when there is input) would deadlock against it.
 */
function kubectlIn(cluster: ClusterInfo, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      `${cluster.binDir}/kubectl`,
      ['--kubeconfig', cluster.kubeconfig, ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(stderr || error.message, { cause: error }));
        else resolve(stdout);
      },
    );
    child.stdin?.end(input);
  });
}

/** kubectl's stderr when it fails; undefined when it succeeds. */
async function failure(cluster: ClusterInfo, args: string[], input?: string): Promise<string | undefined> {
  try {
    await (input === undefined ? kubectl(cluster, args) : kubectlIn(cluster, args, input));
    return undefined;
  } catch (error) {
    // execFile's errors end with kubectl's stderr; kubectlIn's message is its stderr.
    return (error as Error).message;
  }
}

/** Deletes the test's webhook configurations after it (registered first, so it runs even if starting fails). */
function cleanupConfigurations(t: TestContext, cluster: ClusterInfo, name: string): void {
  t.after(async () => {
    await kubectl(cluster, [
      'delete',
      'validatingwebhookconfiguration,mutatingwebhookconfiguration',
      name,
      '--ignore-not-found',
    ]);
  });
}

/** Starts an operator serving the registered webhooks on 127.0.0.1 and configuring the cluster for `ns`. */
async function startAdmission(t: TestContext, cluster: ClusterInfo, ns: string) {
  const name = `kopf-ts-test.${ns}`;
  cleanupConfigurations(t, cluster, name);
  const running = await startOperator(t, cluster, ns, {
    webhooks: { host: '127.0.0.1', port: 0, autoconfigure: name },
    peering: false,
  });
  return { ...running, name };
}

/**
 * Waits until the apiserver calls the webhooks: the configuration reaches the apiserver's
 * webhook cache shortly after it is written. Probes with server-side dry runs (nothing stored)
 * until `called` (the handlers' record) has the probe's name.
 */
async function untilCalled(
  cluster: ClusterInfo,
  ns: string,
  called: string[],
  labels: Record<string, string> = {},
): Promise<void> {
  await eventually(
    'the apiserver calls the webhook',
    async () => {
      const probe = `probe-${randomBytes(3).toString('hex')}`;
      await kubectlIn(
        cluster,
        ['apply', '-n', ns, '--dry-run=server', '-f', '-'],
        manifest(probe, { size: 1 }, labels),
      );
      return called.includes(probe);
    },
    30_000,
    300,
  );
}

test('a validating handler rejects spec.size < 0 with its message; valid objects are stored', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const called: string[] = [];
  on.validate(R, function check_size({ spec, name, operation }: AdmissionContext<{ size?: number }>) {
    called.push(name);
    if (typeof spec.size === 'number' && spec.size < 0)
      throw new AdmissionError(`spec.size must be >= 0, got ${spec.size} (${operation})`);
  });
  const { name, logs } = await startAdmission(t, cluster, ns);
  const configuration = await kubectlJson<{
    webhooks: Array<{ name: string; namespaceSelector: unknown; clientConfig: { url: string } }>;
  }>(cluster, ['get', 'validatingwebhookconfiguration', name]);
  assert.deepEqual(configuration.webhooks[0]!.namespaceSelector, {
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }],
  });
  assert.match(
    configuration.webhooks[0]!.clientConfig.url,
    /^https:\/\/127\.0\.0\.1:\d+\/validate\/check-size\.kopftests\.kopf-ts\.dev$/,
  );
  await untilCalled(cluster, ns, called);

  const rejected = await failure(cluster, ['apply', '-n', ns, '-f', '-'], manifest('bad', { size: -1 }));
  assert.match(
    rejected ?? 'admitted',
    /admission webhook "check-size\.kopftests\.kopf-ts\.dev" denied the request: spec\.size must be >= 0, got -1 \(CREATE\)/,
  );
  assert.doesNotMatch(await kubectl(cluster, ['get', R, '-n', ns, '-o', 'name']), /\/bad$/m);

  await kubectlIn(cluster, ['apply', '-n', ns, '-f', '-'], manifest('good', { size: 2 }));
  const good = await kubectlJson<Obj>(cluster, ['get', R, 'good', '-n', ns]);
  assert.equal(good.spec?.size, 2);
  const update = await failure(cluster, ['apply', '-n', ns, '-f', '-'], manifest('good', { size: -5 }));
  assert.match(update ?? 'admitted', /denied the request: spec\.size must be >= 0, got -5 \(UPDATE\)/);
  assert.ok(
    logs.some((l) => l.includes(`[${ns}/bad] Validation handler 'check_size' rejected the CREATE`)),
    logs.join('\n'),
  );
});

test('a mutating handler fills in spec.size; the stored object has it', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const called: string[] = [];
  on.mutate(R, function defaults({ spec, name, patch }: MutationContext<{ size?: number }>) {
    called.push(name);
    if (spec.size === undefined) patch.spec = { size: 1 };
    patch.metadata = { labels: { 'kopf-ts.dev/defaulted': 'true' } };
  });
  await startAdmission(t, cluster, ns);
  await untilCalled(cluster, ns, called);

  await kubectlIn(cluster, ['apply', '-n', ns, '-f', '-'], manifest('plain', {}));
  const plain = await kubectlJson<Obj>(cluster, ['get', R, 'plain', '-n', ns]);
  assert.equal(plain.spec?.size, 1);
  assert.equal(plain.metadata.labels?.['kopf-ts.dev/defaulted'], 'true');
  await kubectlIn(cluster, ['apply', '-n', ns, '-f', '-'], manifest('sized', { size: 3 }));
  assert.equal((await kubectlJson<Obj>(cluster, ['get', R, 'sized', '-n', ns])).spec?.size, 3);
});

test('a server-side dry run reaches the handlers with dryRun=true and stores nothing', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const called: string[] = [];
  const dryRuns: Array<[string, string, boolean]> = [];
  on.validate(R, function check({ name, dryRun }: AdmissionContext) {
    called.push(name);
    dryRuns.push(['validate', name, dryRun]);
  });
  on.mutate(R, function defaults({ spec, name, dryRun, patch }: MutationContext<{ size?: number }>) {
    dryRuns.push(['mutate', name, dryRun]);
    if (spec.size === undefined) patch.spec = { size: 1 };
  });
  await startAdmission(t, cluster, ns);
  await untilCalled(cluster, ns, called);

  const out = JSON.parse(
    await kubectlIn(
      cluster,
      ['apply', '-n', ns, '--dry-run=server', '-o', 'json', '-f', '-'],
      manifest('dry', {}),
    ),
  ) as Obj;
  assert.equal(out.spec?.size, 1, 'the dry run shows the mutation');
  assert.deepEqual(
    dryRuns.filter(([, name]) => name === 'dry'),
    [
      ['mutate', 'dry', true],
      ['validate', 'dry', true],
    ],
  );
  assert.match(
    (await failure(cluster, ['get', R, 'dry', '-n', ns])) ?? 'found',
    /NotFound|not found/,
    'nothing was stored',
  );
});

test('a webhook that is down: failurePolicy Ignore admits, Fail rejects with the apiserver message', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const called: string[] = [];
  on.validate(
    R,
    function lenient({ name }: AdmissionContext) {
      called.push(name);
    },
    { failurePolicy: 'Ignore', labels: { policy: 'ignore' }, timeout: 5 },
  );
  on.validate(
    R,
    function strict({ name }: AdmissionContext) {
      called.push(name);
    },
    { failurePolicy: 'Fail', labels: { policy: 'fail' }, timeout: 5 },
  );
  const running = await startAdmission(t, cluster, ns);
  await untilCalled(cluster, ns, called, { policy: 'ignore' });
  await untilCalled(cluster, ns, called, { policy: 'fail' });
  await running.stop(); // the server is gone; the configuration stays
  called.length = 0;

  await kubectlIn(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    manifest('lenient', { size: 1 }, { policy: 'ignore' }),
  );
  assert.equal((await kubectlJson<Obj>(cluster, ['get', R, 'lenient', '-n', ns])).spec?.size, 1);
  const rejected = await failure(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    manifest('strict', { size: 1 }, { policy: 'fail' }),
  );
  assert.match(
    rejected ?? 'admitted',
    /failed calling webhook "strict\.kopftests\.kopf-ts\.dev": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/validate\/strict\.kopftests\.kopf-ts\.dev\?timeout=5s": dial tcp 127\.0\.0\.1:\d+: connect: connection refused/,
  );
  assert.match((await failure(cluster, ['get', R, 'strict', '-n', ns])) ?? 'found', /NotFound|not found/);
  assert.deepEqual(called, []);
});

test('the example operator through `kopf-ts run --webhook-server --webhook-autoconfigure`', async (t) => {
  const cluster = await sharedCluster();
  assert.ok(generated(EXAMPLE).some((d) => d.kind === 'ValidatingWebhookConfiguration'));
  await installGeneratedCrds(cluster, EXAMPLE, (name) => name === 'widgets.example.kopf-ts.dev');
  const ns = await testNamespace(t, cluster);
  const name = `kopf-ts-test.${ns}`;
  cleanupConfigurations(t, cluster, name);
  const cli = startCli(t, cluster, [
    'run',
    EXAMPLE,
    '-n',
    ns,
    '--standalone',
    '--webhook-server',
    '127.0.0.1:0',
    '--webhook-autoconfigure',
    name,
  ]);
  await cli.waitFor(`Applied the MutatingWebhookConfiguration '${name}'`);
  const widget = (n: string, spec: object) =>
    JSON.stringify({ apiVersion: 'example.kopf-ts.dev/v1', kind: 'Widget', metadata: { name: n }, spec });
  // Until the apiserver's webhook cache has the configuration, objects would go through unchecked.
  const rejected = await eventually('the example rejects size 0', () =>
    failure(cluster, ['apply', '-n', ns, '--dry-run=server', '-f', '-'], widget('zero', { size: 0 })),
  );
  assert.match(rejected, /denied the request: spec\.size must be an integer from 1 to 10, got 0\./);
  await eventually('the example fills defaults', async () => {
    const out = JSON.parse(
      await kubectlIn(
        cluster,
        ['apply', '-n', ns, '--dry-run=server', '-o', 'json', '-f', '-'],
        widget('probe', {}),
      ),
    ) as Obj;
    return out.spec?.size === 1;
  });
  await kubectlIn(cluster, ['apply', '-n', ns, '-f', '-'], widget('w', { tier: 'gold' }));
  const stored = await kubectlJson<Obj>(cluster, ['get', 'widgets.example.kopf-ts.dev', 'w', '-n', ns]);
  assert.deepEqual(stored.spec, { size: 1, storageClass: 'standard', tier: 'gold' });
  assert.equal(stored.metadata.labels?.tier, 'gold');
  const immutable = await failure(cluster, [
    'patch',
    'widgets.example.kopf-ts.dev',
    'w',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"spec":{"storageClass":"fast"}}',
  ]);
  assert.match(immutable ?? 'admitted', /spec\.storageClass cannot change \(it is 'standard'\)/);
  cli.kill('SIGINT');
  assert.equal(await cli.exited, 0);
});
