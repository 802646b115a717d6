/**
 * The watcher on the real apiserver: it lists, watches and delivers every change, in order,
 * for one namespace, with label selectors; it stops when aborted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeClient } from '../../../packages/framework/src/kube/client.ts';
import { Discovery, type Resource } from '../../../packages/framework/src/kube/resources.ts';
import { watchObjects, type WatchEvent } from '../../../packages/framework/src/watching/watcher.ts';
import { adminClient } from '../../support/client.ts';
import { eventually, kubectl, sharedCluster, testNamespace } from '../../support/cluster.ts';

function ledger(events: WatchEvent[]): string[] {
  return events.map((e) =>
    e.type === 'SYNCED'
      ? 'SYNCED'
      : `${e.type} ${(e.object.metadata as { name: string }).name} ${JSON.stringify((e.object.data as object | undefined) ?? null)}`,
  );
}

/** Watches `resource` in `ns` until aborted, collecting the events; resolves once listed. */
async function collect(
  client: KubeClient,
  resource: Resource,
  ns: string,
  labelSelector?: string,
): Promise<{ events: WatchEvent[]; done: Promise<void>; abort: AbortController }> {
  const abort = new AbortController();
  const events: WatchEvent[] = [];
  const done = (async () => {
    for await (const event of watchObjects(client, {
      resource,
      namespace: ns,
      signal: abort.signal,
      labelSelector,
    }))
      events.push(event);
  })();
  await eventually('initial list', () => events.some((e) => e.type === 'SYNCED'));
  return { events, done, abort };
}

test('lists existing objects, then delivers creations, updates and deletions in order', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const client = await adminClient(cluster);
  t.after(() => client.close());
  const configmaps = await new Discovery(client).resolveOne('configmaps');
  assert.ok(configmaps);
  assert.deepEqual(
    [configmaps.group, configmaps.version, configmaps.kind, configmaps.namespaced],
    ['', 'v1', 'ConfigMap', true],
  );

  await kubectl(cluster, ['create', 'configmap', 'before', '-n', ns, '--from-literal=k=0']);
  const { events, done, abort } = await collect(client, configmaps, ns, 'app!=ignored');

  await kubectl(cluster, ['create', 'configmap', 'c1', '-n', ns, '--from-literal=k=1']);
  await kubectl(cluster, ['create', 'configmap', 'ignored', '-n', ns, '--from-literal=k=x']);
  await kubectl(cluster, ['label', 'configmap', 'ignored', '-n', ns, 'app=ignored']);
  await kubectl(cluster, ['patch', 'configmap', 'c1', '-n', ns, '-p', '{"data":{"k":"2"}}']);
  await kubectl(cluster, ['delete', 'configmap', 'c1', '-n', ns]);
  await eventually('deletion delivered', () =>
    events.some((e) => e.type === 'DELETED' && (e.object.metadata as { name: string }).name === 'c1'),
  );
  abort.abort();
  await done;

  const names = ledger(events).filter((l) => !l.includes('kube-root-ca.crt'));
  assert.deepEqual(names, [
    'ADDED before {"k":"0"}',
    'SYNCED',
    'ADDED c1 {"k":"1"}',
    'ADDED ignored {"k":"x"}',
    // Labelled out of the selector: the apiserver reports it as deleted from this watch.
    'DELETED ignored {"k":"x"}',
    'MODIFIED c1 {"k":"2"}',
    'DELETED c1 {"k":"2"}',
  ]);
  for (const e of events)
    if (e.type !== 'SYNCED')
      assert.equal((e.object.metadata as Record<string, unknown>).managedFields, undefined);
});

test('an idle watch ends as soon as it is aborted (nothing left open)', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const client = await adminClient(cluster);
  t.after(() => client.close());
  const configmaps = (await new Discovery(client).resolveOne('configmaps'))!;
  const { done, abort } = await collect(client, configmaps, ns);
  // The watch request is answered and idle: nothing changes in this namespace.
  await new Promise((r) => setTimeout(r, 500));
  abort.abort();
  const ended = await Promise.race([
    done.then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), 5_000)),
  ]);
  assert.ok(ended, 'the watch did not end after the abort (its stream is still open)');
});
