/**
 * The psql operator end to end, run with `kopf-ts run` against the real control plane:
 * children, scaling, status with observedGeneration, self-healing, conflicts and bad input.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  eventually,
  kubectl,
  kubectlJson,
  sharedCluster,
  testNamespace,
  warningMessages,
} from '../../support/cluster.ts';
import { installGeneratedCrds, startCli } from '../../support/cli.ts';

const OPERATOR = 'packages/psql-operator/src/operator.ts';

interface Psql {
  metadata: { generation: number; uid: string };
  status?: {
    readyReplicas?: number;
    conditions?: Array<{
      type: string;
      status: string;
      reason: string;
      message: string;
      observedGeneration?: number;
    }>;
  };
}
interface Sts {
  metadata: {
    uid: string;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  };
  spec: { replicas: number };
  status?: { readyReplicas?: number };
}

before(async () => {
  const cluster = await sharedCluster();
  await installGeneratedCrds(cluster, OPERATOR, (name) => name === 'psqls.test.com');
});

const psql = (name: string, spec: string) =>
  `apiVersion: test.com/v1\nkind: psql\nmetadata: {name: ${name}}\n${spec}\n`;

function ready(p: Psql) {
  return p.status?.conditions?.find((c) => c.type === 'Ready');
}

test('a psql becomes a StatefulSet with its pods and volumes; it scales, reports status and heals', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const cli = startCli(t, cluster, ['run', OPERATOR, '-n', ns]);
  await cli.waitFor('Starting the watch-stream for psqls.v1.test.com');
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], psql('db', 'spec: {size: 2}'));

  const created = await eventually(
    'Ready=True with 2 replicas',
    async () => {
      const p = await kubectlJson<Psql>(cluster, ['get', 'psql', 'db', '-n', ns]);
      return ready(p)?.status === 'True' && p.status?.readyReplicas === 2 ? p : undefined;
    },
    60_000,
  );
  assert.equal(ready(created)?.observedGeneration, created.metadata.generation);
  const sts = await kubectlJson<Sts>(cluster, ['get', 'statefulset', 'psql-pod', '-n', ns]);
  assert.equal(sts.spec.replicas, 2);
  assert.deepEqual(
    sts.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
    [['psql', 'db', created.metadata.uid, true]],
  );
  const pvcs = await eventually('2 Bound PVCs', async () => {
    const out = await kubectl(cluster, [
      'get',
      'pvc',
      '-n',
      ns,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}',
    ]);
    return out
      .trim()
      .split(' ')
      .filter((x) => x.endsWith('=Bound')).length === 2
      ? out.trim()
      : undefined;
  });
  assert.equal(pvcs, 'www-psql-pod-0=Bound www-psql-pod-1=Bound');
  assert.match(
    await kubectl(cluster, [
      'get',
      'secret',
      'psql-pod-auth',
      '-n',
      ns,
      '-o',
      'jsonpath={.data.POSTGRES_PASSWORD}',
    ]),
    /^[A-Za-z0-9+/=]{16,}$/,
  );

  // Scaling: the StatefulSet follows, and the status reports the new generation.
  await kubectl(cluster, ['patch', 'psql', 'db', '-n', ns, '--type=merge', '-p', '{"spec":{"size":3}}']);
  const scaled = await eventually(
    '3 ready replicas at generation 2',
    async () => {
      const p = await kubectlJson<Psql>(cluster, ['get', 'psql', 'db', '-n', ns]);
      return p.status?.readyReplicas === 3 &&
        ready(p)?.observedGeneration === 2 &&
        ready(p)?.status === 'True'
        ? p
        : undefined;
    },
    60_000,
  );
  assert.equal(scaled.metadata.generation, 2);
  await cli.waitFor(`[${ns}/db] Handler 'scale_fn' succeeded.`);

  // A StatefulSet deleted by hand is recreated.
  await kubectl(cluster, ['delete', 'statefulset', 'psql-pod', '-n', ns, '--wait=true']);
  const recreated = await eventually(
    'StatefulSet recreated',
    async () => {
      const s = await kubectlJson<Sts>(cluster, ['get', 'statefulset', 'psql-pod', '-n', ns]).catch(
        () => undefined,
      );
      return s && s.metadata.uid !== sts.metadata.uid ? s : undefined;
    },
    30_000,
  );
  assert.equal(recreated.spec.replicas, 3);
  await eventually(
    'Ready again',
    async () =>
      (await kubectlJson<Psql>(cluster, ['get', 'psql', 'db', '-n', ns])).status?.readyReplicas === 3,
    60_000,
  );
});

test('a second psql in a namespace is refused without taking over; a psql without size is reported', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const cli = startCli(t, cluster, ['run', OPERATOR, '-n', ns]);
  await cli.waitFor('Starting the watch-stream for psqls.v1.test.com');
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], psql('first', 'spec: {size: 1}'));
  await cli.waitFor(`[${ns}/first] Handler 'create_fn' succeeded.`);
  const before = await kubectlJson<Sts>(cluster, ['get', 'statefulset', 'psql-pod', '-n', ns]);

  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], psql('second', 'spec: {size: 3}'));
  await cli.waitFor(`[${ns}/second] Handler 'create_fn' failed permanently`);
  const second = await eventually('the conflict on the status', async () => {
    const p = await kubectlJson<Psql>(cluster, ['get', 'psql', 'second', '-n', ns]);
    return ready(p) ? p : undefined;
  });
  assert.equal(ready(second)?.status, 'False');
  assert.match(ready(second)!.message, /StatefulSet psql-pod already exists .* belongs to psql 'first'/);
  const after = await kubectlJson<Sts>(cluster, ['get', 'statefulset', 'psql-pod', '-n', ns]);
  assert.equal(after.metadata.uid, before.metadata.uid);
  assert.equal(after.spec.replicas, 1, 'the first psql keeps its StatefulSet');
  const warning = await eventually('a Warning event', async () => {
    const out = await warningMessages(cluster, ns, 'second');
    return out.includes('failed permanently') ? out : undefined;
  });
  assert.match(warning, /belongs to psql 'first'/);

  // No spec at all passes the schema; the operator says which field is missing and serves on.
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], psql('nospec', ''));
  const bad = await eventually('InvalidSpec on the status', async () => {
    const p = await kubectlJson<Psql>(cluster, ['get', 'psql', 'nospec', '-n', ns]);
    return ready(p)?.reason === 'InvalidSpec' ? p : undefined;
  });
  assert.match(ready(bad)!.message, /spec\.size is missing/);
  // The schema itself rejects what it can: a clear error from the apiserver.
  await assert.rejects(
    kubectl(cluster, ['apply', '-n', ns, '-f', '-'], psql('negative', 'spec: {size: -1}')),
    /spec\.size.*should be greater than or equal to 0/,
  );
  await kubectl(cluster, ['patch', 'psql', 'first', '-n', ns, '--type=merge', '-p', '{"spec":{"size":2}}']);
  await cli.waitFor(`[${ns}/first] Handler 'scale_fn' succeeded.`);
});
