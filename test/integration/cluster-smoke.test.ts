/**
 * The local control plane is a real one: a StatefulSet gets its pods scheduled on the
 * simulated nodes in order, each Ready before the next is created, its PVCs provisioned and
 * Bound in the default class, and garbage collection removes the pods with it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import {
  eventually,
  kubectl,
  kubectlJson,
  kubectlWatch,
  sharedCluster,
  testNamespace,
} from '../support/cluster.ts';

const execFileAsync = promisify(execFile);

interface List<T> {
  items: T[];
}
interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}
interface Pvc {
  metadata: { name: string };
  spec: { storageClassName?: string; accessModes: string[] };
  status: { phase?: string; capacity?: { storage?: string } };
}

test('a StatefulSet with volumeClaimTemplates runs 4 Ready pods with 4 Bound PVCs', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const watch = kubectlWatch(cluster, [
    'get',
    'pods',
    '-n',
    ns,
    '--watch',
    '--output-watch-events',
    '-o',
    'jsonpath={.type} {.object.metadata.name} {.object.status.conditions[?(@.type=="Ready")].status}{"\\n"}',
  ]);
  t.after(() => watch.stop());
  await new Promise((r) => setTimeout(r, 500));

  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 4
  podManagementPolicy: OrderedReady
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: registry.invalid/none:1}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`,
  );

  const pods = await eventually(
    '4 Running and Ready pods',
    async () => {
      const list = await kubectlJson<List<Pod>>(cluster, ['get', 'pods', '-n', ns]);
      const ready = list.items.filter(
        (p) =>
          p.status.phase === 'Running' &&
          p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length === 4 ? list.items : undefined;
    },
    90_000,
  );
  assert.deepEqual(pods.map((p) => p.metadata.name).sort(), ['web-0', 'web-1', 'web-2', 'web-3']);
  for (const pod of pods)
    assert.match(
      pod.spec.nodeName ?? '',
      /^kwok-node-\d+$/,
      `${pod.metadata.name} scheduled on a simulated node`,
    );

  // OrderedReady: web-N is created only once web-(N-1) reported Ready.
  const added = watch.lines.filter((l) => l.startsWith('ADDED ')).map((l) => l.split(' ')[1]);
  assert.deepEqual(added, ['web-0', 'web-1', 'web-2', 'web-3'], 'pods created in order');
  for (let i = 1; i < 4; i++) {
    const createdAt = watch.lines.findIndex((l) => l.startsWith(`ADDED web-${i} `));
    const previousReadyAt = watch.lines.findIndex((l) => l === `MODIFIED web-${i - 1} True`);
    assert.ok(
      previousReadyAt >= 0 && previousReadyAt < createdAt,
      `web-${i - 1} Ready before web-${i} created:\n${watch.lines.join('\n')}`,
    );
  }

  const pvcs = await eventually(
    '4 Bound PVCs',
    async () => {
      const list = await kubectlJson<List<Pvc>>(cluster, ['get', 'pvc', '-n', ns]);
      return list.items.filter((p) => p.status.phase === 'Bound').length === 4 ? list.items : undefined;
    },
    60_000,
  );
  for (const pvc of pvcs) {
    assert.equal(pvc.spec.storageClassName, 'standard');
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(pvc.status.capacity?.storage, '1Gi');
  }
  assert.deepEqual(pvcs.map((p) => p.metadata.name).sort(), [
    'www-web-0',
    'www-web-1',
    'www-web-2',
    'www-web-3',
  ]);

  await kubectl(cluster, ['delete', 'statefulset', 'web', '-n', ns, '--cascade=background']);
  await eventually(
    'pods garbage-collected',
    async () => (await kubectlJson<List<Pod>>(cluster, ['get', 'pods', '-n', ns])).items.length === 0,
    60_000,
  );
});

test('TokenRequest tokens authenticate as the ServiceAccount, and RBAC authorizes them', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await kubectl(cluster, ['create', 'serviceaccount', 'probe', '-n', ns]);
  const token = (await kubectl(cluster, ['create', 'token', 'probe', '-n', ns, '--duration=10m'])).trim();
  const asProbe = [
    '--kubeconfig=/dev/null',
    `--server=${cluster.server}`,
    `--certificate-authority=${cluster.caFile}`,
    `--token=${token}`,
  ];
  const run = (args: string[]) => execFileAsync(`${cluster.binDir}/kubectl`, [...asProbe, ...args]);

  const whoami = JSON.parse((await run(['auth', 'whoami', '-o', 'json'])).stdout) as {
    status: { userInfo: { username: string } };
  };
  assert.equal(whoami.status.userInfo.username, `system:serviceaccount:${ns}:probe`);
  await assert.rejects(run(['get', 'pods', '-n', ns]), /forbidden/i);
  await kubectl(cluster, ['create', 'role', 'read-pods', '-n', ns, '--verb=list', '--resource=pods']);
  await kubectl(cluster, [
    'create',
    'rolebinding',
    'read-pods',
    '-n',
    ns,
    '--role=read-pods',
    `--serviceaccount=${ns}:probe`,
  ]);
  await eventually('RBAC grant in effect', async () =>
    (await run(['get', 'pods', '-n', ns])).stderr.includes('No resources'),
  );
});
