/**
 * A CRD deleted while the operator watches its resource, then created again. A CRD of the
 * test's own (a unique group), so that concurrent test files on the shared instance are not
 * disturbed; `kopftests` is the other resource the operator serves meanwhile.
 *
 * - Deleting the CRD deletes its objects: their deletion handlers run (once), and the CRD goes.
 * - While the resource is not served, the operator says so clearly, does not crash or stop,
 *   does not spin (a bounded number of failed requests, backing off), and keeps handling the
 *   other resource.
 * - Once the CRD is back, new objects are handled; the ledgers of both resources are exact.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, test } from 'node:test';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import {
  cleanups,
  eventually,
  kubectl,
  kubectlApply,
  kubectlJson,
  sharedCluster,
  testNamespace,
} from '../../support/cluster.ts';
import { Ledger } from '../../support/ledger.ts';
import { requestsByCode, scrape } from '../../support/metrics.ts';
import { freeformCrd, installTestCrd, startOperator } from '../../support/operator.ts';

beforeEach(() => clearRegistry());

const gadgetCrd = (group: string) => freeformCrd(group, 'Gadget', 'gadgets');

test('a CRD deleted while watched: clear logs, no crash, no spinning, other resources served, resumed when re-created', async (t) => {
  const cluster = await sharedCluster();
  await installTestCrd(cluster);
  const ns = await testNamespace(t, cluster);
  const defer = cleanups(t);
  const group = `g${randomBytes(4).toString('hex')}.reliability.kopf-ts.dev`;
  const crd = `gadgets.${group}`;
  const installGadgets = async () => {
    await kubectlApply(cluster, gadgetCrd(group));
    await kubectl(cluster, ['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=30s']);
  };
  await installGadgets();
  defer(() => kubectl(cluster, ['delete', 'crd', crd, '--ignore-not-found', '--wait=false']));

  const gadgets = new Ledger();
  gadgets.register(crd);
  const tests = new Ledger();
  tests.register('kopftests.kopf-ts.dev');
  const watch: Array<{ resource: string; state: string; at: number; error?: string }> = [];
  let port = 0;
  const { operator, logs } = await startOperator(
    t,
    cluster,
    ns,
    { peering: false, metrics: '127.0.0.1:0' },
    (op) => {
      op.on('metrics', (p) => (port = p));
      op.on('watch', ({ resource, state, error }) =>
        watch.push({ resource, state, at: Date.now(), error: error?.message }),
      );
    },
  );
  let stopped = false;
  operator.on('stopped', () => (stopped = true));
  defer(() => operator.stop());

  const apply = (kind: string, apiVersion: string, name: string, spec: Record<string, unknown>) =>
    kubectl(
      cluster,
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({ apiVersion, kind, metadata: { name }, spec }),
    );
  const gadget = (name: string, v: number) => {
    if (gadgets.names.includes(name)) gadgets.updated(name, { v });
    else gadgets.created(name, { v });
    return apply('Gadget', `${group}/v1`, name, { v });
  };
  const kopftest = (name: string, v: number) => {
    if (tests.names.includes(name)) tests.updated(name, { v });
    else tests.created(name, { v });
    return apply('KopfTest', 'kopf-ts.dev/v1', name, { v });
  };

  await gadget('g-0', 0);
  await gadget('g-1', 0);
  await kopftest('k-0', 0);
  await gadgets.allHandled('gadgets', ['g-0', 'g-1'], 'create');
  await tests.allHandled('kopftests', ['k-0'], 'create');

  // Delete the CRD: its objects are deleted first (their finalizers: our deletion handlers).
  gadgets.deleted('g-0');
  gadgets.deleted('g-1');
  await kubectl(cluster, ['delete', 'crd', crd, '--wait=false']);
  await gadgets.allHandled('gadgets deleted with their CRD', ['g-0', 'g-1'], 'delete');
  await eventually(
    'the CRD gone',
    async () => !(await kubectl(cluster, ['get', 'crd', '-o', 'name'])).includes(`/${crd}\n`),
    30_000,
  );
  const goneAt = Date.now();
  const resource = `gadgets.v1.${group}`;

  // Meanwhile, the other resource is served as usual.
  await kopftest('k-0', 1);
  await kopftest('k-1', 0);
  await tests.allHandled('kopftests while the CRD is gone', ['k-0'], 'update');
  await tests.allHandled('kopftests while the CRD is gone', ['k-1'], 'create');
  // Let the watcher of the vanished resource fail for a while.
  await new Promise((r) => setTimeout(r, Math.max(0, goneAt + 8_000 - Date.now())));
  const gap = (Date.now() - goneAt) / 1000;
  const failures = watch.filter((w) => w.resource === resource && w.state === 'backoff' && w.at >= goneAt);
  const codes = requestsByCode(await scrape(port));
  t.diagnostic(
    `while the CRD was gone (${gap.toFixed(1)} s): ${failures.length} watch failures: ` +
      `${[...new Set(failures.map((f) => f.error))].join(' | ')}; operator requests by code: ${JSON.stringify(codes)}`,
  );
  assert.equal(stopped, false, 'the operator keeps running');
  assert.ok(failures.length >= 1, 'the watcher noticed');
  assert.ok(failures.length <= 8, `no tight loop: ${failures.length} failures in ${gap.toFixed(1)} s`);
  assert.ok((codes['404'] ?? 0) >= 1 && (codes['404'] ?? 0) <= 10, `${codes['404']} requests answered 404`);
  // Said clearly, and once: later retries are quieter.
  const warnings = logs.filter((l) => l.includes('[WARNING]') && l.includes(resource));
  t.diagnostic(`warnings: ${warnings.join('\n')}`);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /not served by the apiserver \(404 Not Found: was its CRD deleted\?\)/);

  // The CRD is back: new objects are handled.
  await installGadgets();
  await gadget('g-2', 0);
  await gadgets.allHandled('a gadget after the CRD is back', ['g-2'], 'create', 45_000);
  assert.ok(
    logs.some((l) => l.includes(`The resource ${resource} in ${ns} is served again`)),
    'the return is logged',
  );
  await gadget('g-2', 1);
  await gadgets.allHandled('a gadget after the CRD is back', ['g-2'], 'update');

  // Clean up while the operator runs: deletions handled, nothing left.
  for (const name of ['g-2']) gadgets.deleted(name);
  for (const name of ['k-0', 'k-1']) tests.deleted(name);
  await kubectl(cluster, ['delete', crd, '--all', '-n', ns, '--wait=false']);
  await kubectl(cluster, ['delete', 'kopftests.kopf-ts.dev', '--all', '-n', ns, '--wait=false']);
  await gadgets.settled(t);
  await tests.settled(t);
  await eventually('nothing left', async () => {
    const left = await kubectlJson<{ items: unknown[] }>(cluster, [
      'get',
      `${crd},kopftests.kopf-ts.dev`,
      '-n',
      ns,
    ]);
    return left.items.length === 0;
  });
  assert.equal(stopped, false, 'the operator keeps running');
});
