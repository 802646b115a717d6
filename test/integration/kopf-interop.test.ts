/**
 * Live interoperability with the real Python Kopf 1.45.2 (test/kopf/, its own venv) on the
 * local apiserver: an object handled by one framework is not handled again by the other, an
 * update after the hand-over is seen with the right diff, and both write the same diff-base
 * bytes for the same tricky spec. Kopf runs as a subprocess (test/kopf/interop_operator.py)
 * whose handlers print marker lines; kopf-ts runs in-process. Needs python3 (and PyPI for the
 * first creation of the venv).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { before, beforeEach, describe, test, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { on } from '../../packages/framework/src/index.ts';
import type { DiffItem, HandlerContext } from '../../packages/framework/src/index.ts';
import { clearRegistry } from '../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../support/cluster.ts';
import { installTestCrd, startOperator } from '../support/operator.ts';

const root = new URL('../..', import.meta.url).pathname;
const R = 'kopftests.kopf-ts.dev';
const DIFFBASE = 'kopf.zalando.org/last-handled-configuration';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pythonMissing(): string | false {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'python3 is not installed';
  }
}

interface Obj {
  metadata: { annotations?: Record<string, string>; finalizers?: string[] };
}

/**
 * A spec that is hard to reproduce byte for byte: non-ASCII text and emoji (written by Kopf as
 * `\uXXXX` surrogate pairs), a float Python writes as `1e-07`, an integer beyond 2^53,
 * integer-like keys (which the apiserver sorts as strings: "10" before "2", while JavaScript
 * enumerates "2" first), control characters, quotes, slashes, nested and empty containers.
 */
const TRICKY_JSON = `{
  "text": "Grüße, 世界 — naïve café",
  "emoji": "🦊 🚀",
  "tiny": 1e-07,
  "ratio": 2.5,
  "big": 9007199254740993,
  "10": "ten",
  "2": "two",
  "ctrl": "tab\\t nl\\n del\\u007f bell\\u0007 \\"q\\" /s\\\\",
  "nested": {"b": {"z": [1, {"k": "v"}, [], -0.5]}, "a": {}, "10": true, "2": false, "list": ["ü", null]}
}`;

/** The manifest as JSON text (no YAML surprises), with labels and a foreign annotation. */
const manifest = (name: string) => `{
  "apiVersion": "kopf-ts.dev/v1",
  "kind": "KopfTest",
  "metadata": {
    "name": "${name}",
    "labels": {"app": "interop", "tier": "b-2"},
    "annotations": {"example.com/note": "Ωmega 🦊"}
  },
  "spec": ${TRICKY_JSON}
}`;

/** Created with `kubectl apply`, so kubectl's last-applied annotation is there too. */
async function create(cluster: ClusterInfo, ns: string, name: string): Promise<void> {
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], manifest(name));
}

async function annotations(cluster: ClusterInfo, ns: string, name: string): Promise<Record<string, string>> {
  return (await kubectlJson<Obj>(cluster, ['get', R, name, '-n', ns])).metadata.annotations ?? {};
}

async function diffBase(cluster: ClusterInfo, ns: string, name: string): Promise<string> {
  return eventually(
    `the diff-base of ${ns}/${name}`,
    async () => (await annotations(cluster, ns, name))[DIFFBASE],
    20_000,
  );
}

/** Kopf's (and kopf-ts's) keys left on the object besides the diff-base: progress records. */
async function leftoverKopfKeys(cluster: ClusterInfo, ns: string, name: string): Promise<string[]> {
  return Object.keys(await annotations(cluster, ns, name)).filter(
    (k) => k.startsWith('kopf.zalando.org/') && k !== DIFFBASE,
  );
}

const RATIO_PATCH = '{"spec":{"ratio":3.5}}';
const RATIO_DIFF = [['change', ['spec', 'ratio'], 2.5, 3.5]];

async function patchRatio(cluster: ClusterInfo, ns: string, name: string): Promise<void> {
  await kubectl(cluster, ['patch', R, name, '-n', ns, '--type=merge', '-p', RATIO_PATCH]);
}

/** The real Kopf running interop_operator.py on one namespace, its output captured by line. */
class KopfProcess {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private stopping?: Promise<void>;

  constructor(python: string, cluster: ClusterInfo, namespace: string) {
    this.child = spawn(
      python,
      [
        '-m',
        'kopf',
        'run',
        '--standalone',
        '--verbose',
        '--namespace',
        namespace,
        join(root, 'test/kopf/interop_operator.py'),
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          KUBECONFIG: cluster.kubeconfig,
          PYTHONUNBUFFERED: '1',
          PYTHONIOENCODING: 'utf-8',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        this.lines.push(...parts);
        if (process.env.KOPF_TS_TEST_LOGS) process.stderr.write(`[kopf] ${parts.join('\n[kopf] ')}\n`);
      });
    }
  }

  /** Kopf's marker lines starting with `prefix`, e.g. `KOPF-CALL create_fn ns/name`. */
  marks(prefix: string): string[] {
    return this.lines.filter((l) => l === prefix || l.startsWith(`${prefix} `));
  }

  /** Waits for the first marker line starting with `prefix`. */
  async waitFor(prefix: string, timeoutMs = 20_000): Promise<string> {
    return eventually(`Kopf's "${prefix}"`, () => this.marks(prefix)[0], timeoutMs).catch((error: Error) => {
      throw new Error(`${error.message}\n--- Kopf output ---\n${this.lines.join('\n')}`);
    });
  }

  get output(): string {
    return this.lines.join('\n');
  }

  /** SIGINT and wait for the exit; SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return;
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    })();
    return this.stopping;
  }
}

function startKopf(t: TestContext, python: string, cluster: ClusterInfo, namespace: string): KopfProcess {
  const kopf = new KopfProcess(python, cluster, namespace);
  t.after(() => kopf.stop());
  return kopf;
}

/** kopf-ts handlers with the same ids as Kopf's, recording their calls. */
function registerKopfTsHandlers(): { created: string[]; updated: Array<{ name: string; diff: DiffItem[] }> } {
  const created: string[] = [];
  const updated: Array<{ name: string; diff: DiffItem[] }> = [];
  on.create(R, function create_fn({ name }: HandlerContext) {
    created.push(name);
  });
  on.update(R, function update_fn({ name, diff }: HandlerContext) {
    updated.push({ name, diff: [...diff] });
  });
  return { created, updated };
}

describe('interoperability with the real Python Kopf 1.45.2', { skip: pythonMissing() }, () => {
  let python = '';
  before(async () => {
    python = execFileSync('bash', [join(root, 'test/kopf/venv.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    await installTestCrd(await sharedCluster());
  });
  beforeEach(() => clearRegistry());

  test('an object handled by Kopf is not handled again by kopf-ts', async (t) => {
    const cluster = await sharedCluster();
    const ns = await testNamespace(t, cluster);
    const kopf = startKopf(t, python, cluster, ns);
    await create(cluster, ns, 'by-kopf');
    await kopf.waitFor(`KOPF-CALL create_fn ${ns}/by-kopf`);
    const base = await diffBase(cluster, ns, 'by-kopf');
    await kopf.stop();
    // Kopf logged in with the kubeconfig by its built-in login (no client library installed).
    assert.ok(kopf.output.includes("Activity 'login_with_kubeconfig' succeeded."), kopf.output);
    assert.equal(kopf.marks('KOPF-CALL').length, 1, kopf.output);

    const { created, updated } = registerKopfTsHandlers();
    const op = await startOperator(t, cluster, ns);
    await sleep(2000);
    assert.deepEqual(created, [], op.logs.join('\n'));
    assert.deepEqual(updated, [], op.logs.join('\n'));
    assert.equal(
      (await annotations(cluster, ns, 'by-kopf'))[DIFFBASE],
      base,
      'kopf-ts rewrote the diff-base',
    );

    await patchRatio(cluster, ns, 'by-kopf');
    await eventually('the kopf-ts update handler', () => updated.length > 0, 15_000);
    await sleep(1000);
    assert.deepEqual(created, []);
    assert.deepEqual(updated, [{ name: 'by-kopf', diff: RATIO_DIFF }], op.logs.join('\n'));
  });

  test('an object handled by kopf-ts is not handled again by Kopf', async (t) => {
    const cluster = await sharedCluster();
    const ns = await testNamespace(t, cluster);
    const { created } = registerKopfTsHandlers();
    const op = await startOperator(t, cluster, ns);
    await create(cluster, ns, 'by-ts');
    const base = await diffBase(cluster, ns, 'by-ts');
    await eventually(
      'kopf-ts progress purged',
      async () => !(await leftoverKopfKeys(cluster, ns, 'by-ts')).length,
    );
    assert.deepEqual(created, ['by-ts'], op.logs.join('\n'));
    await op.stop();

    const kopf = startKopf(t, python, cluster, ns);
    // The event handler runs in the same cycle as the change handlers: once Kopf saw the object,
    // a creation or update would be handled right away.
    await kopf.waitFor(`KOPF-EVENT ${ns}/by-ts`);
    await sleep(2000);
    assert.deepEqual(kopf.marks('KOPF-CALL'), [], kopf.output);
    assert.equal((await annotations(cluster, ns, 'by-ts'))[DIFFBASE], base, 'Kopf rewrote the diff-base');

    await patchRatio(cluster, ns, 'by-ts');
    const call = await kopf.waitFor(`KOPF-CALL update_fn ${ns}/by-ts`, 15_000);
    await sleep(1000);
    assert.deepEqual(kopf.marks('KOPF-CALL'), [call], kopf.output);
    assert.deepEqual(JSON.parse(call.split(' ').slice(3).join(' ')), RATIO_DIFF, kopf.output);
  });

  test('Kopf and kopf-ts write byte-identical diff-bases and purge their progress', async (t) => {
    const cluster = await sharedCluster();
    const ns = await testNamespace(t, cluster);
    const kopf = startKopf(t, python, cluster, ns);
    await create(cluster, ns, 'diffbase-kopf');
    await kopf.waitFor(`KOPF-CALL create_fn ${ns}/diffbase-kopf`);
    const byKopf = await diffBase(cluster, ns, 'diffbase-kopf');
    await kopf.stop();

    registerKopfTsHandlers();
    const op = await startOperator(t, cluster, ns);
    await create(cluster, ns, 'diffbase-ts');
    const byTs = await diffBase(cluster, ns, 'diffbase-ts');
    await eventually(
      'kopf-ts progress purged',
      async () => !(await leftoverKopfKeys(cluster, ns, 'diffbase-ts')).length,
      10_000,
    ).catch(() => undefined);

    assert.equal(byTs, byKopf);
    // A sanity check on what both wrote: escaped non-ASCII, Python's float repr, "10" before "2".
    assert.ok(byKopf.endsWith('\n') && /^[\x20-\x7e]*\n$/.test(byKopf), byKopf);
    assert.ok(byKopf.includes('"emoji":"\\ud83e\\udd8a \\ud83d\\ude80"'), byKopf);
    assert.ok(byKopf.includes('"tiny":1e-07'), byKopf);
    assert.ok(byKopf.includes('"big":9007199254740993'), byKopf);
    assert.ok(byKopf.startsWith('{"spec":{"10":"ten","2":"two",'), byKopf);
    assert.ok(byKopf.includes('"metadata":{"labels":{"app":"interop","tier":"b-2"},"annotations":{'), byKopf);
    assert.ok(!byKopf.includes('last-applied-configuration'), byKopf);

    assert.deepEqual(await leftoverKopfKeys(cluster, ns, 'diffbase-kopf'), [], kopf.output);
    assert.deepEqual(await leftoverKopfKeys(cluster, ns, 'diffbase-ts'), [], op.logs.join('\n'));
  });
});
