/**
 * `--metrics`: an operator with metrics on 127.0.0.1:0 handles a few objects (one of them fails
 * temporarily once, one is updated), then /metrics is scraped and its counters are compared
 * with what happened. Without the option, nothing listens.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { before, beforeEach, test, type TestContext } from 'node:test';
import { on, Operator, TemporaryError } from '../../packages/framework/src/index.ts';
import type { OperatorOptions } from '../../packages/framework/src/index.ts';
import { kubeconfigConnection, staticCredentials } from '../../packages/framework/src/kube/credentials.ts';
import { clearRegistry } from '../../packages/framework/src/registry/registry.ts';
import { createLogger } from '../../packages/framework/src/util/logging.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../support/cluster.ts';
import { total } from '../support/metrics.ts';
import { installTestCrd } from '../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';
const RESOURCE = 'kopftests.v1.kopf-ts.dev';

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

const manifest = (name: string, size: number) =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}}\nspec: {size: ${size}}\n`;

/** An operator on `ns` (admin credentials, logs captured), not started yet; stopped after the test. */
async function operatorFor(t: TestContext, ns: string, options: OperatorOptions): Promise<Operator> {
  const cluster = await sharedCluster();
  const destination = new Writable({
    write(chunk: Buffer, _e, callback) {
      if (process.env.KOPF_TS_TEST_LOGS) process.stderr.write(chunk);
      callback();
    },
  });
  const operator = new Operator({
    namespaces: [ns],
    credentials: staticCredentials(await kubeconfigConnection({ kubeconfig: cluster.kubeconfig })),
    logger: createLogger({ destination, level: 'debug' }),
    peering: false,
    ...options,
  });
  t.after(() => operator.stop());
  return operator;
}

/** An operator on `ns` with metrics on 127.0.0.1 (any port), started; the URL of its /metrics. */
async function startedWithMetrics(t: TestContext, ns: string): Promise<{ operator: Operator; url: string }> {
  const operator = await operatorFor(t, ns, { metrics: '127.0.0.1:0' });
  const port = new Promise<number>((resolve) => operator.once('metrics', resolve));
  await operator.start();
  return { operator, url: `http://127.0.0.1:${await port}/metrics` };
}

test('metrics count handler outcomes, API requests, watch streams and events, queue waits', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const names = ['m1', 'm2', 'm3', 'flaky'];
  let failed = false;
  on.create(R, function create_fn({ name }) {
    if (name === 'flaky' && !failed) {
      failed = true;
      throw new TemporaryError('not yet', { delay: 0.5 });
    }
    return { created: name };
  });
  on.update(R, function update_fn() {
    return { updated: true };
  });
  const { operator, url } = await startedWithMetrics(t, ns);

  for (const name of names) await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest(name, 1));
  const handled = async (name: string, key: string) =>
    (await kubectlJson<{ status?: Record<string, unknown> }>(cluster, ['get', R, name, '-n', ns])).status?.[
      key
    ] !== undefined;
  for (const name of names) await eventually(`${name} created`, () => handled(name, 'create_fn'));
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest('m1', 2));
  await eventually('m1 updated', () => handled('m1', 'update_fn'));

  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  if (process.env.KOPF_TS_TEST_LOGS) process.stderr.write(text);
  const invocations = 'kopf_handler_invocations_total';
  const create = { handler: 'create_fn', resource: RESOURCE };
  assert.equal(total(text, invocations, { ...create, reason: 'create', outcome: 'success' }), names.length);
  assert.equal(total(text, invocations, { ...create, outcome: 'temporary' }), 1);
  assert.equal(total(text, invocations, { ...create, outcome: 'permanent' }), 0);
  assert.equal(total(text, invocations, { handler: 'update_fn', reason: 'update', outcome: 'success' }), 1);
  assert.equal(total(text, 'kopf_handler_duration_seconds_count', create), names.length + 1);
  // Every cycle patched the object: at least one PATCH per handler outcome, all of them 200.
  assert.ok(total(text, 'kopf_api_requests_total', { verb: 'patch', code: '200' }) >= names.length + 2);
  assert.equal(total(text, 'kopf_api_request_errors_total'), 0);
  assert.ok(total(text, 'kopf_api_requests_total', { verb: 'list', code: '200' }) >= 1);
  assert.ok(total(text, 'kopf_api_request_duration_seconds_count', { verb: 'patch' }) >= names.length + 2);
  assert.equal(total(text, 'kopf_watch_streams_total', { resource: RESOURCE, kind: 'list' }), 1);
  assert.ok(total(text, 'kopf_watch_streams_total', { resource: RESOURCE, kind: 'watch' }) >= 1);
  assert.equal(total(text, 'kopf_watch_errors_total'), 0);
  assert.equal(total(text, 'kopf_watch_events_total', { resource: RESOURCE, type: 'ADDED' }), names.length);
  assert.ok(total(text, 'kopf_watch_events_total', { resource: RESOURCE, type: 'MODIFIED' }) >= names.length);
  // A cycle per creation, the retry, the update: each waited in its queue (at least the batch window).
  assert.ok(total(text, 'kopf_queue_wait_seconds_count') >= names.length + 2);
  assert.ok(total(text, 'kopf_queue_wait_seconds_sum') >= 0.1 * (names.length + 2));
  assert.match(text, /^kopf_queue_depth \d+$/m);
  assert.match(text, /^kopf_paused 0$/m);
  assert.ok(total(text, 'process_resident_memory_bytes') > 0);
  assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);

  await operator.stop();
  await assert.rejects(fetch(url), 'the endpoint is closed on stop');
});

test('the owned children of on.reconcile count in the watch metrics, under their own resource', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  on.reconcile(R, function reconcile_fn() {}, { owns: ['configmaps'], resync: 0 });
  const { url } = await startedWithMetrics(t, ns);
  // Children are watched by their owner label (set by adopt()); two of them, one changed once.
  for (const [name, value] of [
    ['child-a', '1'],
    ['child-b', '1'],
    ['child-a', '2'],
  ])
    await kubectl(
      cluster,
      ['apply', '-n', ns, '-f', '-'],
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, labels: {kopf-ts.dev/owned-by: kopftest.kopf-ts.dev}}\ndata: {v: "${value}"}\n`,
    );
  const events = async (type: string) =>
    total(await (await fetch(url)).text(), 'kopf_watch_events_total', { resource: 'configmaps.v1', type });
  await eventually(
    'the children seen',
    async () => (await events('ADDED')) === 2 && (await events('MODIFIED')) >= 1,
  );
});

test('without the option, no metrics endpoint is started', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  on.create(R, function create_fn() {});
  const operator = await operatorFor(t, ns, {});
  let port: number | undefined;
  operator.on('metrics', (p) => (port = p));
  await operator.start();
  assert.equal(port, undefined);
});
