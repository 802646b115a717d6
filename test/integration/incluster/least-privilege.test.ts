/**
 * The psql operator as it runs in a pod: with a pod's environment only (no kubeconfig), the
 * ServiceAccount token minted by TokenRequest and exactly the RBAC that `kopf-ts generate`
 * derives. The generated permissions are sufficient; taking away one verb at a time gives a
 * clear, retried error naming the verb and resource, and restoring it lets the running
 * operator recover without a restart. The generated Deployment is accepted and complete.
 */
import assert from 'node:assert/strict';
import { before, describe, test, type TestContext } from 'node:test';
import { eventually, kubectl, kubectlJson } from '../../support/cluster.ts';
import { startCli, type CliProcess } from '../../support/cli.ts';
import {
  apply,
  IMAGE,
  installCrds,
  NAME,
  OPERATOR,
  psqlManifest as psql,
  readyPsql,
  serviceEnv,
  setup,
  type Psql,
  type Role,
  type Rule,
  type Setup,
} from './support.ts';

/** The Role with one verb taken away from one resource (other resources of its rule keep it). */
function without(role: Role, group: string, resource: string, verb: string): Role {
  const rules: Rule[] = [];
  for (const rule of role.rules) {
    if (!rule.apiGroups.includes(group) || !rule.resources.includes(resource) || !rule.verbs.includes(verb)) {
      rules.push(rule);
      continue;
    }
    const others = rule.resources.filter((r) => r !== resource);
    if (others.length) rules.push({ ...rule, resources: others });
    const verbs = rule.verbs.filter((v) => v !== verb);
    if (verbs.length) rules.push({ apiGroups: [group], resources: [resource], verbs });
  }
  return { ...role, rules };
}

/** Runs the operator with a pod's environment only: service host and port, the ServiceAccount files. */
async function runInCluster(t: TestContext, s: Setup): Promise<CliProcess> {
  const cli = startCli(t, undefined, ['run', OPERATOR, '-n', s.ns], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...serviceEnv(s.cluster),
      KOPF_TS_SERVICEACCOUNT_DIR: s.saDir,
    },
    replaceEnv: true,
  });
  await cli.waitFor('Client is configured in cluster with service account.', 30_000);
  return cli;
}

const setRole = (s: Setup, role: Role) => apply(s.cluster, [role], s.ns);

/** The times (ms) of log lines containing all the fragments. */
function occurrences(cli: CliProcess, fragments: string[]): number[] {
  return cli.output
    .filter((l) => /^\[\d{4}-/.test(l) && fragments.every((f) => l.includes(f)))
    .map((l) => Date.parse(`${l.slice(1, 24).replace(' ', 'T')}Z`));
}

/**
 * Waits until an error naming the missing permission was logged `count` times, and checks the
 * retries back off: the intervals between them grow.
 */
async function retriedError(cli: CliProcess, fragments: string[], count = 3): Promise<number[]> {
  const times = await eventually(
    `${count} log lines with ${fragments.map((f) => JSON.stringify(f)).join(' + ')}`,
    () => {
      const found = occurrences(cli, fragments);
      return found.length >= count ? found : undefined;
    },
    30_000,
  );
  // Watch retries are jittered (0.5 s doubling, each delay within [half, full]): the first and
  // the third interval of a watcher differ by at least 0.5 s, the first and second may not.
  const intervals = times.slice(1).map((time, i) => time - times[i]!);
  assert.ok(
    intervals.at(-1)! > intervals[0]!,
    `retry intervals grow (backoff), got ${intervals.join(', ')} ms`,
  );
  return intervals;
}

function forbidden(s: Setup, verb: string, resource: string, group: string): string {
  return `User "system:serviceaccount:${s.ns}:${NAME}" cannot ${verb} resource "${resource}" in API group "${group}" in the namespace "${s.ns}"`;
}

before(installCrds);

describe('in-cluster, least privilege', { concurrency: true }, () => {
  test('the generated RBAC suffices; the generated Deployment is accepted and complete', async (t) => {
    const s = await setup(t);
    const cli = await runInCluster(t, s);
    assert.ok(!cli.output.some((l) => l.includes('kubeconfig')), 'no kubeconfig is used');
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psql('db', 2));
    await readyPsql(s, 'db', 2);
    const pods = await eventually('2 Running pods', async () => {
      const out = await kubectl(s.cluster, [
        'get',
        'pods',
        '-n',
        s.ns,
        '-l',
        'app=psql-pod',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}',
      ]);
      return out.trim() === 'psql-pod-0=Running psql-pod-1=Running' ? out.trim() : undefined;
    });
    assert.ok(pods);
    await eventually('2 Bound PVCs', async () => {
      const out = await kubectl(s.cluster, [
        'get',
        'pvc',
        '-n',
        s.ns,
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}',
      ]);
      return out.trim() === 'www-psql-pod-0=Bound www-psql-pod-1=Bound';
    });
    assert.ok(!cli.output.some((l) => / 403 |Forbidden/.test(l)), 'no permission was missing');

    // The generated Deployment: accepted by the apiserver, complete, its pod scheduled.
    const deployment = s.docs.find((d) => d.kind === 'Deployment')!;
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], JSON.stringify(deployment));
    interface PodSpec {
      serviceAccountName?: string;
      nodeName?: string;
      securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
      volumes?: Array<{ name: string; projected?: { sources: Array<Record<string, unknown>> } }>;
      containers: Array<{
        image: string;
        args: string[];
        resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
        securityContext?: {
          readOnlyRootFilesystem?: boolean;
          allowPrivilegeEscalation?: boolean;
          capabilities?: { drop?: string[] };
        };
        volumeMounts?: Array<{ mountPath: string }>;
      }>;
    }
    const stored = await kubectlJson<{ spec: { template: { spec: PodSpec } } }>(s.cluster, [
      'get',
      'deployment',
      NAME,
      '-n',
      s.ns,
    ]);
    const checkSpec = (spec: PodSpec) => {
      const [container] = spec.containers;
      assert.equal(spec.serviceAccountName, NAME);
      assert.equal(spec.securityContext?.runAsNonRoot, true);
      assert.equal(spec.securityContext?.runAsUser, 10001);
      assert.equal(container?.image, IMAGE);
      const args = container?.args ?? [];
      assert.deepEqual(args.slice(0, 2), ['run', '/app/operator.ts']);
      assert.equal(args[args.indexOf('--namespace') + 1], s.ns);
      assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
      assert.equal(container?.securityContext?.allowPrivilegeEscalation, false);
      assert.deepEqual(container?.securityContext?.capabilities?.drop, ['ALL']);
      assert.ok(container?.resources?.requests?.cpu && container.resources.requests.memory, 'requests');
      assert.ok(container?.resources?.limits?.memory, 'limits');
    };
    checkSpec(stored.spec.template.spec);
    const pod = await eventually(
      'the operator pod scheduled and (simulated) Running',
      async () => {
        const list = await kubectlJson<{ items: Array<{ spec: PodSpec; status: { phase?: string } }> }>(
          s.cluster,
          ['get', 'pods', '-n', s.ns, '-l', `app.kubernetes.io/name=${NAME}`],
        );
        const p = list.items[0];
        return p?.spec.nodeName && p.status.phase === 'Running' ? p : undefined;
      },
      30_000,
    );
    checkSpec(pod.spec);
    // The ServiceAccount admission mounted the projected token (TokenRequest), CA and namespace.
    const mount = pod.spec.containers[0]?.volumeMounts?.find(
      (m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    assert.ok(mount, 'the ServiceAccount folder is mounted');
    const projected = pod.spec.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.projected;
    assert.ok(projected?.sources.some((src) => 'serviceAccountToken' in src));
  });

  test('without create on statefulsets.apps: a clear, retried error; recovers when granted', async (t) => {
    const s = await setup(t);
    const cli = await runInCluster(t, s);
    await cli.waitFor(`Starting the watch-stream for psqls.v1.test.com in '${s.ns}'`);
    await setRole(s, without(s.role, 'apps', 'statefulsets', 'create'));
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psql('db', 2));
    const intervals = await retriedError(cli, [
      `[${s.ns}/db] Handler 'create_fn' failed`,
      '403 Forbidden',
      forbidden(s, 'create', 'statefulsets', 'apps'),
    ]);
    t.diagnostic(`retry intervals: ${intervals.join(', ')} ms`);
    await setRole(s, s.role);
    await cli.waitFor(`[${s.ns}/db] Handler 'create_fn' succeeded.`, 30_000);
    await readyPsql(s, 'db', 2);
  });

  test('without patch on psqls/status: a clear, retried error; recovers when granted', async (t) => {
    const s = await setup(t);
    const cli = await runInCluster(t, s);
    await cli.waitFor(`Starting the watch-stream for psqls.v1.test.com in '${s.ns}'`);
    await setRole(s, without(s.role, 'test.com', 'psqls/status', 'patch'));
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psql('db', 1));
    const intervals = await retriedError(cli, [
      'Processing of psqls.v1.test.com',
      `failed; retrying in`,
      `patch status of psqls.v1.test.com ${s.ns}/db: 403 Forbidden`,
      forbidden(s, 'patch', 'psqls/status', 'test.com'),
    ]);
    t.diagnostic(`retry intervals: ${intervals.join(', ')} ms`);
    await setRole(s, s.role);
    // The cycle was not recorded as done while its status could not be written: it is retried
    // whole, and the handler's result reaches the status.
    await eventually(
      'status.create_fn',
      async () => (await kubectlJson<Psql>(s.cluster, ['get', 'psql', 'db', '-n', s.ns])).status?.create_fn,
      30_000,
    );
    assert.ok(occurrences(cli, [`[${s.ns}/db] Handler 'create_fn' succeeded.`]).length >= 2);
    // The Ready condition is written by the StatefulSet's event handler, whose failures are
    // logged and not retried (on.event, as in Kopf): the StatefulSet's changes all happened
    // while forbidden, so Ready comes with its next change. Scaling makes one.
    await kubectl(s.cluster, [
      'patch',
      'psql',
      'db',
      '-n',
      s.ns,
      '--type=merge',
      '-p',
      '{"spec":{"size":2}}',
    ]);
    await readyPsql(s, 'db', 2);
  });

  test('without list on psqls: the watcher retries with backoff; recovers when granted', async (t) => {
    const s = await setup(t, { role: (role) => without(role, 'test.com', 'psqls', 'list') });
    const cli = await runInCluster(t, s);
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psql('db', 1));
    const intervals = await retriedError(
      cli,
      [
        `Watching psqls.v1.test.com in ${s.ns} failed, retrying in`,
        '403 Forbidden',
        forbidden(s, 'list', 'psqls', 'test.com'),
      ],
      4,
    );
    t.diagnostic(`retry intervals: ${intervals.join(', ')} ms`);
    await setRole(s, s.role);
    await cli.waitFor(`[${s.ns}/db] Handler 'create_fn' succeeded.`, 30_000);
    await readyPsql(s, 'db', 1);
  });

  test('without watch on statefulsets.apps: the watcher retries with backoff; recovers when granted', async (t) => {
    const s = await setup(t, { role: (role) => without(role, 'apps', 'statefulsets', 'watch') });
    const cli = await runInCluster(t, s);
    await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psql('db', 1));
    // The psql is handled (its handler needs no watch), but its status cannot follow the StatefulSet.
    await cli.waitFor(`[${s.ns}/db] Handler 'create_fn' succeeded.`, 30_000);
    const intervals = await retriedError(
      cli,
      [
        `Watching statefulsets.v1.apps in ${s.ns} failed, retrying in`,
        '403 Forbidden',
        forbidden(s, 'watch', 'statefulsets', 'apps'),
      ],
      4,
    );
    t.diagnostic(`retry intervals: ${intervals.join(', ')} ms`);
    await setRole(s, s.role);
    await readyPsql(s, 'db', 1);
  });
});
