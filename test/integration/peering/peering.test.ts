/**
 * Peering on the real apiserver, with kopf-ts operators run as processes (and the real Python
 * Kopf): priorities, takeover after SIGKILL, equal priorities, freeze/resume, a named peering
 * that does not exist yet, and mutual pausing with Kopf.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../../cluster/cluster.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { installGeneratedCrds, ROOT, startCli } from '../../support/cli.ts';
import { installTestCrd } from '../../support/operator.ts';

const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-peering-'));
const OPERATOR = join(dir, 'operator.ts');
writeFileSync(
  OPERATOR,
  `import { on } from 'kopf-ts';
on.create('kopftests.kopf-ts.dev', function create_fn({ name, logger }) {
  logger.info(\`HANDLED \${name} by \${process.env.WHO}\`);
});
`,
);

before(async () => {
  const cluster = await sharedCluster();
  await installTestCrd(cluster);
  const crds = await installGeneratedCrds(cluster, OPERATOR, (name) =>
    name.endsWith('kopfpeerings.kopf.dev'),
  );
  assert.equal(crds.length, 2);
});

async function peering(cluster: ClusterInfo, ns: string, name = 'test'): Promise<void> {
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    `apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata: {name: ${name}}\n`,
  );
}

function operator(t: TestContext, cluster: ClusterInfo, ns: string, who: string, args: string[]) {
  return startCli(
    t,
    cluster,
    ['run', OPERATOR, '-n', ns, '--peering', 'test', '--peering-lifetime', '6', ...args],
    { env: { WHO: who, POD_ID: who } },
  );
}

const object = (name: string) =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}}\nspec: {a: 1}\n`;

test('only the higher priority handles; when it is killed, the lower one takes over within the lifetime', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await peering(cluster, ns);
  const high = operator(t, cluster, ns, 'high', ['--priority', '10']);
  await high.waitFor('Starting the watch-stream for kopftests');
  const low = operator(t, cluster, ns, 'low', ['--priority', '5']);
  await low.waitFor('Pausing operations in favour of high (priority 10).');
  const status = await kubectlJson<{
    status: Record<string, { priority: number; lifetime: number; lastseen: string }>;
  }>(cluster, ['get', 'kopfpeering', 'test', '-n', ns]);
  assert.deepEqual(Object.keys(status.status).sort(), ['high', 'low']);
  assert.equal(status.status.high?.priority, 10);
  assert.equal(status.status.high?.lifetime, 6);
  assert.match(status.status.high?.lastseen ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);

  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('one'));
  await high.waitFor('HANDLED one by high');
  await eventually(
    'handled for good (diff-base stored)',
    async () =>
      (
        await kubectlJson<{ metadata: { annotations?: Record<string, string> } }>(cluster, [
          'get',
          'kopftests.kopf-ts.dev',
          'one',
          '-n',
          ns,
        ])
      ).metadata.annotations?.['kopf.zalando.org/last-handled-configuration'],
  );
  high.kill('SIGKILL');
  await high.exited;
  const killedAt = Date.now();
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('two'));
  await low.waitFor('Resuming operations after the pause', 15_000);
  await low.waitFor('HANDLED two by low');
  assert.ok(
    Date.now() - killedAt < 12_000,
    `took over within the lifetime (6 s) plus a margin: ${Date.now() - killedAt} ms`,
  );
  assert.ok(
    !low.output.some((l) => l.includes('HANDLED one')),
    'the paused operator never handled the first object',
  );
  // The dead peer's record is cleaned away.
  await eventually(
    'the dead record is removed',
    async () =>
      !(
        'high' in
        (await kubectlJson<{ status: object }>(cluster, ['get', 'kopfpeering', 'test', '-n', ns])).status
      ),
  );
  low.kill('SIGINT');
  assert.equal(await low.exited, 0);
  assert.ok(
    !(
      'low' in
      (await kubectlJson<{ status?: object }>(cluster, ['get', 'kopfpeering', 'test', '-n', ns])).status!
    ),
    'our record is removed on exit',
  );
});

test('equal priorities pause all, with a warning naming the peers', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await peering(cluster, ns);
  const a = operator(t, cluster, ns, 'twin-a', []);
  await a.waitFor('Starting the watch-stream for kopftests');
  const b = operator(t, cluster, ns, 'twin-b', []);
  await b.waitFor('Possibly conflicting operators with the same priority: twin-a (priority 0).');
  await a.waitFor('Possibly conflicting operators with the same priority: twin-b (priority 0).');
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('nobody'));
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(![...a.output, ...b.output].some((l) => l.includes('HANDLED nobody')));
  b.kill('SIGINT');
  await b.exited;
  await a.waitFor('HANDLED nobody by twin-a', 15_000);
});

test('freeze pauses the operators for a while; resume lets them go on', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await peering(cluster, ns);
  const op = operator(t, cluster, ns, 'worker', []);
  await op.waitFor('Starting the watch-stream for kopftests');
  const freeze = startCli(t, cluster, [
    'freeze',
    '--lifetime',
    '60',
    '--message',
    'maintenance',
    '-n',
    ns,
    '-P',
    'test',
    '--id',
    'admin@laptop',
  ]);
  assert.equal(await freeze.exited, 0);
  await op.waitFor('Pausing operations in favour of admin@laptop (priority 100).');
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('frozen'));
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(!op.output.some((l) => l.includes('HANDLED frozen')));
  const resume = startCli(t, cluster, ['resume', '-n', ns, '-P', 'test', '--id', 'admin@laptop']);
  assert.equal(await resume.exited, 0);
  await op.waitFor('HANDLED frozen by worker');
});

test('a named peering that does not exist yet makes the operator wait, saying so', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const op = operator(t, cluster, ns, 'patient', []);
  await op.waitFor(`Waiting for the peering object 'test' in '${ns}' to be created`);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('early'));
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(!op.output.some((l) => l.includes('HANDLED early')));
  await peering(cluster, ns);
  await op.waitFor('HANDLED early by patient', 20_000);
});

test('Python Kopf and kopf-ts in one peering pause each other by priority', async (t) => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('python3 is not installed');
    return;
  }
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await peering(cluster, ns);
  const python = execFileSync('bash', [join(ROOT, 'test/kopf/venv.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const startKopf = (priority: number) => {
    const child = spawn(
      python,
      [
        '-m',
        'kopf',
        'run',
        '--namespace',
        ns,
        '--peering',
        'test',
        '--priority',
        String(priority),
        '--verbose',
        join(ROOT, 'test/kopf/interop_operator.py'),
      ],
      {
        env: { ...process.env, KUBECONFIG: cluster.kubeconfig, POD_ID: `kopf-${priority}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const output: string[] = [];
    // Whole lines per stream: a print may arrive in several chunks.
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.on('data', (c: Buffer) => {
        const parts = (rest + c.toString()).split('\n');
        rest = parts.pop() ?? '';
        output.push(...parts);
      });
    }
    const exited = new Promise((r) => child.on('exit', r));
    t.after(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    return { output, stop: async () => (child.kill('SIGINT'), await exited) };
  };

  // Kopf with the higher priority pauses kopf-ts.
  const kopf = startKopf(100);
  await eventually(
    'Kopf keeps its record',
    async () =>
      'kopf-100' in
      ((await kubectlJson<{ status?: object }>(cluster, ['get', 'kopfpeering', 'test', '-n', ns])).status ??
        {}),
    30_000,
  );
  const ours = operator(t, cluster, ns, 'kopf-ts-low', ['--priority', '1']);
  await ours.waitFor('Pausing operations in favour of kopf-100 (priority 100).');
  await kopf.stop();
  await ours.waitFor('Resuming operations after the pause', 15_000);

  // kopf-ts with the higher priority pauses Kopf. (Kopf starts a named peering paused and
  // logs only transitions: it must stay silent while we live, and resume when we leave.)
  ours.kill('SIGINT');
  await ours.exited;
  const high = operator(t, cluster, ns, 'kopf-ts-high', ['--priority', '200']);
  await high.waitFor('Starting the watch-stream for kopftests');
  const lowKopf = startKopf(0);
  await eventually(
    'Kopf keeps its record too',
    async () =>
      'kopf-0' in
      ((await kubectlJson<{ status?: object }>(cluster, ['get', 'kopfpeering', 'test', '-n', ns])).status ??
        {}),
    30_000,
  );
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('contested'));
  await high.waitFor('HANDLED contested by kopf-ts-high');
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(
    !lowKopf.output.some((l) => l.includes('KOPF-CALL')),
    `Kopf stayed paused:\n${lowKopf.output.join('\n')}`,
  );
  high.kill('SIGINT');
  await high.exited;
  await eventually(
    'Kopf resumes when kopf-ts leaves',
    () => lowKopf.output.some((l) => l.includes('Resuming operations after the pause')),
    30_000,
  );
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('after-handover'));
  await eventually(
    'Kopf handles again',
    () => lowKopf.output.some((l) => l.includes('KOPF-CALL create_fn') && l.includes('after-handover')),
    60_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nKopf's output:\n${lowKopf.output.slice(-60).join('\n')}`);
  });
  assert.ok(
    !lowKopf.output.some((l) => l.includes('KOPF-CALL create_fn') && l.includes('contested')),
    'the object handled by kopf-ts is not handled again',
  );
  await lowKopf.stop();
});
