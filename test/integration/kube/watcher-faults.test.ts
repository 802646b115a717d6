/**
 * Faults under the watcher, on real apiservers: a restart during a burst of writes, a forced
 * 410 Gone (etcd compacted while the watcher was cut off), a silent stall of the connection,
 * connections reset, a stalled apiserver under a plain GET.
 *
 * Each test keeps a ledger: what was changed in the cluster and what the watcher delivered.
 * The state rebuilt from the delivered events (ADDED/MODIFIED set, DELETED removes) must equal
 * a fresh LIST, object by object (uid, resourceVersion, data), and no object may be delivered
 * twice (an ADDED for an object already present, or a MODIFIED that is not newer).
 *
 * Tests that restart or reconfigure an apiserver use their own instance (`wf-*`), removed
 * afterwards; the others use the shared instance through a loopback TCP proxy
 * (test/support/tcp-proxy.ts). The tests run one after another (at most one extra instance).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { reset, up, type ClusterInfo } from '../../../cluster/cluster.ts';
import { KubeClient, type ClientOptions } from '../../../packages/framework/src/kube/client.ts';
import { kubeconfigConnection, staticCredentials } from '../../../packages/framework/src/kube/credentials.ts';
import { ConnectionError } from '../../../packages/framework/src/kube/errors.ts';
import { resourcePath, type Resource } from '../../../packages/framework/src/kube/resources.ts';
import type { JsonObject } from '../../../packages/framework/src/util/json.ts';
import {
  watchObjects,
  type WatchEvent,
  type WatcherOptions,
} from '../../../packages/framework/src/watching/watcher.ts';
import { adminClient, persist } from '../../support/client.ts';
import { cleanups, eventually, kubectl, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.ts';

const configmaps: Resource = {
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
  subresources: [],
  verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the cluster side of the ledger ----

async function createConfigMap(client: KubeClient, ns: string, name: string, data: Record<string, string>) {
  await client.request({
    method: 'POST',
    path: resourcePath(configmaps, { namespace: ns }),
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data },
    target: { verb: 'create', resource: 'configmaps', namespace: ns, name },
  });
}

async function patchConfigMap(client: KubeClient, ns: string, name: string, data: Record<string, string>) {
  await client.request({
    method: 'PATCH',
    path: resourcePath(configmaps, { namespace: ns, name }),
    body: { data },
    contentType: 'application/merge-patch+json',
    target: { verb: 'patch', resource: 'configmaps', namespace: ns, name },
  });
}

async function deleteConfigMap(client: KubeClient, ns: string, name: string) {
  await client.request({
    method: 'DELETE',
    path: resourcePath(configmaps, { namespace: ns, name }),
    target: { verb: 'delete', resource: 'configmaps', namespace: ns, name },
  });
}

interface Version {
  uid: string;
  rv: string;
  data: string;
}

function versionOf(object: JsonObject): Version & { name: string } {
  const m = object.metadata as { name: string; uid: string; resourceVersion: string };
  // Long values (kube-root-ca.crt's certificates) are compared by digest, to keep reports short.
  const data = Object.entries((object.data ?? {}) as Record<string, string>)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => [
      k,
      v.length > 40 ? `sha256:${createHash('sha256').update(v).digest('hex').slice(0, 12)}` : v,
    ]);
  return { name: m.name, uid: m.uid, rv: m.resourceVersion, data: JSON.stringify(Object.fromEntries(data)) };
}

/** name → version, sorted, from a fresh LIST (not through any proxy). */
async function listed(client: KubeClient, ns: string): Promise<Record<string, Version>> {
  const list = await client.request<JsonObject>({
    method: 'GET',
    path: resourcePath(configmaps, { namespace: ns }),
    target: { verb: 'list', resource: 'configmaps', namespace: ns },
  });
  const entries = ((list.items ?? []) as JsonObject[]).map((item) => {
    const { name, ...version } = versionOf(item);
    return [name, version] as const;
  });
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
}

// ---- the watcher side of the ledger ----

/**
 * Replays delivered events into name → version, asserting on the way that nothing was
 * delivered twice: ADDED only for an absent object, MODIFIED only for a present one and newer
 * (resourceVersions are etcd revisions here, so comparing them as numbers is sound), DELETED
 * only for a present one.
 */
function rebuilt(events: WatchEvent[]): Record<string, Version> {
  const state = new Map<string, Version>();
  for (const [i, event] of events.entries()) {
    if (event.type === 'SYNCED') continue;
    const { name, ...version } = versionOf(event.object);
    const before = state.get(name);
    const what = `event #${i} ${event.type} ${name} rv ${version.rv}${event.synthetic ? ' (synthetic)' : ''}`;
    if (event.type === 'ADDED') {
      assert.equal(before, undefined, `${what}: already delivered (rv ${before?.rv}): a duplicate`);
    } else {
      assert.ok(before, `${what}: for an object never delivered`);
      assert.equal(version.uid, before.uid, `${what}: another object than the one delivered`);
      if (event.type === 'MODIFIED')
        assert.ok(BigInt(version.rv) > BigInt(before.rv), `${what}: not newer than rv ${before.rv}`);
      else assert.ok(BigInt(version.rv) >= BigInt(before.rv), `${what}: older than rv ${before.rv}`);
    }
    if (event.type === 'DELETED') state.delete(name);
    else state.set(name, version);
  }
  return Object.fromEntries([...state].sort(([a], [b]) => a.localeCompare(b)));
}

function ledgerLine(event: WatchEvent): string {
  if (event.type === 'SYNCED') return `SYNCED initial=${event.initial}`;
  const { name, data } = versionOf(event.object);
  return `${event.type}${event.synthetic ? ' synthetic' : ''} ${name} ${data}`;
}

interface Status {
  state: 'listing' | 'watching' | 'backoff';
  error?: Error;
  at: number;
}

function startWatcher(client: KubeClient, ns: string, options: Partial<WatcherOptions> = {}) {
  const abort = new AbortController();
  const events: WatchEvent[] = [];
  const statuses: Status[] = [];
  const done = (async () => {
    for await (const event of watchObjects(client, {
      resource: configmaps,
      namespace: ns,
      signal: abort.signal,
      onStatus: (status) => statuses.push({ ...status, at: Date.now() }),
      ...options,
    }))
      events.push(event);
  })();
  return {
    events,
    statuses,
    synced: () => eventually('the initial list', () => events.some((e) => e.type === 'SYNCED')),
    /**
     * Waits until the rebuilt state equals a fresh LIST and returns it; fails at once on a
     * duplicate (more events cannot undo it).
     */
    async converged(direct: KubeClient, timeoutMs = 30_000): Promise<Record<string, Version>> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const truth = await listed(direct, ns);
        const delivered = rebuilt(events);
        if (JSON.stringify(delivered) === JSON.stringify(truth)) return truth;
        if (Date.now() > deadline) {
          assert.deepEqual(
            delivered,
            truth,
            `the delivered state differs from a fresh LIST after ${timeoutMs / 1000}s; events:\n` +
              events.map(ledgerLine).join('\n'),
          );
        }
        await sleep(250);
      }
    },
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** A client whose requests go through the proxy (same CA and token: the SANs include 127.0.0.1). */
async function proxiedClient(cluster: ClusterInfo, proxy: TcpProxy, options: ClientOptions = {}) {
  const connection = await kubeconfigConnection({ kubeconfig: cluster.kubeconfig });
  return new KubeClient(
    staticCredentials({ ...connection, server: `https://127.0.0.1:${proxy.port}` }),
    options,
  );
}

/** A loopback proxy in front of the apiserver and a client through it, both closed at cleanup. */
async function throughProxy(
  defer: (cleanup: () => unknown) => void,
  cluster: ClusterInfo,
  options: ClientOptions = {},
): Promise<{ proxy: TcpProxy; client: KubeClient }> {
  const proxy = await startTcpProxy(cluster.ports.apiserver);
  defer(() => proxy.close());
  const client = await proxiedClient(cluster, proxy, options);
  defer(() => client.close());
  return { proxy, client };
}

// ---- 1. a restart ----

test('apiserver killed and restarted during a burst of 60 objects: the delivered state equals the cluster', async (t) => {
  const name = 'wf-restart';
  const defer = cleanups(t);
  await reset(name, false); // leftovers of an interrupted run
  defer(() => reset(name, false));
  const cluster = await up({ name, verbose: false });
  const ns = 'burst';
  await kubectl(cluster, ['create', 'namespace', ns]);
  const writer = await adminClient(cluster, { retries: 0, requestTimeout: 5 });
  defer(() => writer.close());
  const client = await adminClient(cluster);
  defer(() => client.close());
  const watcher = startWatcher(client, ns, { backoff: { initial: 0.2, max: 2 } });
  defer(() => watcher.stop());
  await watcher.synced();

  // The plan: create cm-0..59; update every even one twice, later; delete every third one.
  const intended = new Map<string, Record<string, string>>();
  const ops: Array<() => Promise<number>> = [];
  for (let i = 0; i < 60; i++) {
    const created = `cm-${i}`;
    ops.push(() =>
      persist(
        `create ${created}`,
        () => createConfigMap(writer, ns, created, { v: '0', i: String(i) }),
        (e) => e.conflict,
      ),
    );
    for (const [target, v] of [
      [i - 1, '1'],
      [i - 4, '2'],
    ] as const) {
      if (target < 0 || target % 2 !== 0 || target % 3 === 0) continue;
      const patched = `cm-${target}`;
      ops.push(() => persist(`patch ${patched}`, () => patchConfigMap(writer, ns, patched, { v })));
    }
    if (i >= 2 && (i - 2) % 3 === 0) {
      const deleted = `cm-${i - 2}`;
      ops.push(() =>
        persist(
          `delete ${deleted}`,
          () => deleteConfigMap(writer, ns, deleted),
          (e) => e.notFound,
        ),
      );
    }
  }
  for (let i = 0; i < 60; i++) {
    if (i % 3 === 0) continue;
    intended.set(`cm-${i}`, { i: String(i), v: i % 2 === 0 ? (i <= 55 ? '2' : '1') : '0' });
  }

  const killAt = Math.floor(ops.length / 3);
  let restarted: Promise<ClusterInfo> | undefined;
  let retried = 0;
  const t0 = Date.now();
  for (const [index, op] of ops.entries()) {
    if (index === killAt) {
      process.kill(cluster.pids['kube-apiserver'], 'SIGKILL');
      restarted = up({ name, verbose: false });
    }
    retried += await op();
  }
  assert.ok(restarted);
  const again = await restarted;
  assert.equal(again.server, cluster.server, 'the restarted apiserver kept its port');
  assert.ok(retried > 0, 'some writes failed while the apiserver was down');

  const truth = await watcher.converged(writer);
  const ours = Object.fromEntries(
    Object.entries(truth)
      .filter(([n]) => n.startsWith('cm-'))
      .map(([n, v]) => [n, JSON.parse(v.data) as Record<string, string>]),
  );
  assert.deepEqual(
    ours,
    Object.fromEntries([...intended].sort(([a], [b]) => a.localeCompare(b))),
    'the cluster holds what was written',
  );
  const relisted = watcher.events.filter((e) => e.type === 'SYNCED' && !e.initial).length;
  const backoffs = watcher.statuses.filter((s) => s.state === 'backoff').length;
  assert.ok(backoffs > 0, 'the watcher saw the apiserver go away');
  t.diagnostic(
    `${ops.length} writes in ${Date.now() - t0} ms, ${retried} retried; ${watcher.events.length} events, ` +
      `${relisted} relists, ${backoffs} backoffs`,
  );
});

// ---- 2. 410 Gone ----

test('410 Gone after etcd compaction while cut off: relist emits exactly what changed, synthetic deletions included', async (t) => {
  const name = 'wf-gone';
  const defer = cleanups(t);
  await reset(name, false); // leftovers of an interrupted run
  defer(() => reset(name, false));
  // Without the watch cache the apiserver watches etcd itself: a compacted revision is a 410.
  const cluster = await up({ name, apiserverArgs: ['--watch-cache=false'], verbose: false });
  const ns = 'gap';
  await kubectl(cluster, ['create', 'namespace', ns]);
  const writer = await adminClient(cluster, { retries: 0 });
  defer(() => writer.close());
  for (const prefix of ['keep', 'upd', 'del', 're'])
    for (let i = 0; i < 3; i++) await createConfigMap(writer, ns, `${prefix}-${i}`, { v: '0' });

  const { proxy, client } = await throughProxy(defer, cluster, { requestTimeout: 5 });
  const watcher = startWatcher(client, ns, { inactivityTimeout: 3, backoff: { initial: 0.2, max: 1 } });
  defer(() => watcher.stop());
  await watcher.synced();
  await eventually('kube-root-ca.crt delivered', () =>
    watcher.events.some((e) => e.type !== 'SYNCED' && versionOf(e.object).name === 'kube-root-ca.crt'),
  );
  const before = rebuilt(watcher.events);
  const initialCount = watcher.events.length;

  // Cut the watcher off (silently), change things, compact etcd past what it saw.
  proxy.stall();
  const stalledAt = watcher.statuses.length;
  await createConfigMap(writer, ns, 'new-0', { v: '0' });
  await createConfigMap(writer, ns, 'new-1', { v: '0' });
  await createConfigMap(writer, ns, 'gap-0', { v: '0' });
  await patchConfigMap(writer, ns, 'gap-0', { v: '1' });
  await deleteConfigMap(writer, ns, 'gap-0');
  for (let i = 0; i < 3; i++) await patchConfigMap(writer, ns, `upd-${i}`, { v: '1' });
  for (let i = 0; i < 3; i++) await deleteConfigMap(writer, ns, `del-${i}`);
  await deleteConfigMap(writer, ns, 're-0'); // deleted and created again: another object
  await createConfigMap(writer, ns, 're-0', { v: '1' });
  const revision = await compactEtcd(cluster);
  t.diagnostic(`etcd compacted at revision ${revision}`);
  await eventually(
    'the watcher to notice the silence',
    () => watcher.statuses.slice(stalledAt).some((s) => s.state === 'backoff' && s.error),
    15_000,
  );
  assert.equal(watcher.events.length, initialCount, 'nothing passed the stalled proxy');
  proxy.resume();

  const truth = await watcher.converged(writer);
  assert.deepEqual(Object.keys(truth), [
    'keep-0',
    'keep-1',
    'keep-2',
    'kube-root-ca.crt',
    'new-0',
    'new-1',
    're-0',
    're-1',
    're-2',
    'upd-0',
    'upd-1',
    'upd-2',
  ]);
  const after = watcher.events.slice(initialCount);
  assert.deepEqual(
    after.map(ledgerLine).sort(),
    [
      'ADDED synthetic new-0 {"v":"0"}',
      'ADDED synthetic new-1 {"v":"0"}',
      'ADDED synthetic re-0 {"v":"1"}',
      'DELETED synthetic del-0 {}',
      'DELETED synthetic del-1 {}',
      'DELETED synthetic del-2 {}',
      'DELETED synthetic re-0 {}',
      'MODIFIED synthetic upd-0 {"v":"1"}',
      'MODIFIED synthetic upd-1 {"v":"1"}',
      'MODIFIED synthetic upd-2 {"v":"1"}',
      'SYNCED initial=false',
    ],
    'the relist emits the creations, updates and deletions of the gap, and nothing unchanged',
  );
  assert.deepEqual(after.at(-1), { type: 'SYNCED', initial: false });
  for (const deleted of after) {
    if (deleted.type !== 'DELETED') continue;
    const { name: n, uid, rv } = versionOf(deleted.object);
    assert.equal(uid, before[n]?.uid, `the tombstone of ${n} names the object seen`);
    assert.equal(rv, before[n]?.rv, `the tombstone of ${n} has its last seen version`);
  }
});

/** Compacts etcd at its current revision through its HTTP/JSON gateway; returns the revision. */
async function compactEtcd(cluster: ClusterInfo): Promise<string> {
  const etcd = `http://127.0.0.1:${cluster.ports.etcdClient}`;
  const post = async (path: string, body: object) => {
    const response = await fetch(`${etcd}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await response.text();
    assert.equal(response.status, 200, `etcd ${path}: ${text}`);
    return JSON.parse(text) as { header: { revision: string } };
  };
  const { header } = await post('/v3/kv/range', { key: Buffer.from('/registry/').toString('base64') });
  await post('/v3/kv/compaction', { revision: header.revision, physical: true });
  return header.revision;
}

// ---- 3. a silent stall, connections reset ----

test('a silent stall is detected by the inactivity timeout; the change made during it is delivered once', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const defer = cleanups(t);
  const direct = await adminClient(cluster);
  defer(() => direct.close());
  const { proxy, client } = await throughProxy(defer, cluster, { requestTimeout: 3 });
  await createConfigMap(direct, ns, 'before', { v: '0' });
  const watcher = startWatcher(client, ns, { inactivityTimeout: 3, backoff: { initial: 0.2, max: 1 } });
  defer(() => watcher.stop());
  await watcher.synced();

  // Everything stalls, new connections included; resumed once the watcher has noticed.
  proxy.stall();
  let mark = watcher.statuses.length;
  const delivered = () => watcher.events.filter((e) => e.type !== 'SYNCED').map(ledgerLine);
  const count = delivered().length;
  await createConfigMap(direct, ns, 'during-stall', { v: '1' });
  const detected = await eventually(
    'the watcher to notice the silence',
    () => watcher.statuses.slice(mark).find((s) => s.state === 'backoff' && s.error),
    15_000,
  );
  t.diagnostic(`stall noticed: ${detected.error?.message}`);
  assert.equal(delivered().length, count, 'nothing passed the stalled proxy');
  proxy.resume();
  await eventually('the change made during the stall', () =>
    delivered().includes('ADDED during-stall {"v":"1"}'),
  );

  // Only the connections open now stall, for good (a half-dead link, a lost NAT entry); new
  // connections work: the watcher must give up on the dead one by itself.
  const accepted = proxy.accepted;
  proxy.stallExisting();
  mark = watcher.statuses.length;
  await patchConfigMap(direct, ns, 'during-stall', { v: '2' });
  await eventually(
    'the change made while the connection was dead',
    () => delivered().includes('MODIFIED during-stall {"v":"2"}'),
    20_000,
  );
  assert.ok(proxy.accepted > accepted, 'a new connection was made');
  assert.ok(watcher.statuses.slice(mark).some((s) => s.state === 'backoff' && s.error));

  await watcher.converged(direct);
});

test('all connections reset again and again during changes: nothing missed, nothing twice', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const defer = cleanups(t);
  const direct = await adminClient(cluster);
  defer(() => direct.close());
  const { proxy, client } = await throughProxy(defer, cluster);
  const watcher = startWatcher(client, ns, { backoff: { initial: 0.2, max: 1 } });
  defer(() => watcher.stop());
  await watcher.synced();

  let drops = 0;
  for (let i = 0; i < 30; i++) {
    const name = `cm-${i % 10}`;
    if (i < 10) await createConfigMap(direct, ns, name, { v: String(i) });
    else if (i < 25) await patchConfigMap(direct, ns, name, { v: String(i) });
    else await deleteConfigMap(direct, ns, name);
    if (i % 3 === 2) {
      // Reset while the watch stream is open, then let it come back before going on.
      const accepted = proxy.accepted;
      await eventually('a watch connection', () => proxy.connections > 0, 10_000, 20);
      proxy.dropAll();
      drops++;
      await eventually('a reconnection', () => proxy.accepted > accepted, 10_000, 20);
    }
  }
  const truth = await watcher.converged(direct);
  assert.deepEqual(
    Object.entries(truth)
      .filter(([n]) => n.startsWith('cm-'))
      .map(([n, v]) => `${n} ${v.data}`),
    ['cm-0 {"v":"20"}', 'cm-1 {"v":"21"}', 'cm-2 {"v":"22"}', 'cm-3 {"v":"23"}', 'cm-4 {"v":"24"}'],
  );
  assert.ok(proxy.accepted > drops, `reconnected (${proxy.accepted} connections, ${drops} resets)`);
  const deletedEvents = watcher.events.filter((e) => e.type === 'DELETED').map(ledgerLine);
  assert.equal(deletedEvents.length, 5, deletedEvents.join('\n'));
});

// ---- 4. a stalled or slow apiserver under plain requests ----

test('a GET through a stalled connection fails within its request timeout; a slow one succeeds', async (t) => {
  const cluster = await sharedCluster();
  const defer = cleanups(t);
  const proxy = await startTcpProxy(cluster.ports.apiserver);
  defer(() => proxy.close());
  const options: ClientOptions = { requestTimeout: 2, retries: 0 };
  const get = (client: KubeClient) =>
    client.request({
      method: 'GET',
      path: '/api/v1/namespaces/default',
      target: { verb: 'get', resource: 'namespaces', name: 'default' },
    });
  const timed = async (client: KubeClient) => {
    const started = performance.now();
    const error = await get(client).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, seconds: (performance.now() - started) / 1000 };
  };

  // A pooled connection that stops answering; then a new connection that never completes TLS.
  const warm = await proxiedClient(cluster, proxy, options);
  defer(() => warm.close());
  await get(warm);
  const fresh = await proxiedClient(cluster, proxy, options);
  defer(() => fresh.close());
  proxy.stall();
  for (const [which, client] of [
    ['pooled', warm],
    ['new', fresh],
  ] as const) {
    const { error, seconds } = await timed(client);
    assert.ok(error instanceof ConnectionError, `${which} connection: ${String(error)}`);
    assert.ok(seconds >= 1.9 && seconds < 4, `${which} connection: failed after ${seconds.toFixed(1)}s`);
    t.diagnostic(`${which} connection: ${error.message} after ${seconds.toFixed(1)}s`);
  }

  // Slow is not dead: 300 ms per chunk each way still answers within 2 s.
  proxy.resume();
  proxy.dropAll();
  const slow = await proxiedClient(cluster, proxy, options);
  defer(() => slow.close());
  await get(slow);
  proxy.delay(300);
  const { error, seconds } = await timed(slow);
  assert.equal(error, undefined);
  assert.ok(seconds >= 0.55, `a delayed answer took ${seconds.toFixed(2)}s`);
});
