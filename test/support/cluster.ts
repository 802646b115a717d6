/**
 * Test helpers for the real local control plane: one shared instance per test run (started
 * by scripts/test.sh, or here when a file runs alone), a namespace per test, kubectl.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { reset, up, type ClusterInfo } from '../../cluster/cluster.ts';

const execFileAsync = promisify(execFile);
let shared: Promise<ClusterInfo> | undefined;

/** The shared default instance: reused when running, started (and built) otherwise. */
export function sharedCluster(): Promise<ClusterInfo> {
  shared ??= up({ verbose: false });
  return shared;
}

/**
 * An instance of its own, for a test that restarts or reconfigures the apiserver (e.g. with
 * `--max-requests-inflight=4`): the leftovers of an interrupted run are removed first, and
 * the instance (processes and data) at cleanup (`defer`: see `cleanups()`). Name it after
 * the test file.
 */
export async function ownCluster(
  defer: (cleanup: () => unknown) => void,
  name: string,
  apiserverArgs: string[] = [],
): Promise<ClusterInfo> {
  await reset(name, false);
  defer(() => reset(name, false));
  return up({ name, apiserverArgs, verbose: false });
}

/**
 * Cleanups that run in the reverse order of their registration (`t.after` hooks run in the
 * order they were added), all of them even if one fails: an operator is stopped before the
 * instance it talks to.
 */
export function cleanups(t: TestContext): (cleanup: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.reverse()) await Promise.resolve(fn()).catch((e: unknown) => errors.push(e));
    if (errors.length) throw errors[0];
  });
  return (fn) => fns.push(fn);
}

/** Runs kubectl against the instance and returns its stdout; throws with stderr on failure. */
export async function kubectl(cluster: ClusterInfo, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await execFileAsync(
      `${cluster.binDir}/kubectl`,
      ['--kubeconfig', cluster.kubeconfig, ...args],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return stdout;
  }
  return execFileSync(`${cluster.binDir}/kubectl`, ['--kubeconfig', cluster.kubeconfig, ...args], {
    input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * `kubectl apply`, retried for a while: test files run concurrently and may create the same
 * cluster-wide objects (CRDs) at once, when one of the two creations fails with AlreadyExists.
 */
export async function kubectlApply(cluster: ClusterInfo, input: string, namespace?: string): Promise<string> {
  return eventually(
    'kubectl apply',
    () => kubectl(cluster, ['apply', ...(namespace ? ['-n', namespace] : []), '-f', '-'], input),
    20_000,
    500,
  );
}

export async function kubectlJson<T = Record<string, unknown>>(
  cluster: ClusterInfo,
  args: string[],
): Promise<T> {
  return JSON.parse(await kubectl(cluster, [...args, '-o', 'json'])) as T;
}

/** Lines printed by `kubectl ... --watch` until stopped. */
export function kubectlWatch(cluster: ClusterInfo, args: string[]): { lines: string[]; stop: () => void } {
  const child = spawn(`${cluster.binDir}/kubectl`, ['--kubeconfig', cluster.kubeconfig, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { lines, stop: () => child.kill() };
}

/**
 * A fresh namespace for one test, removed after it. Leftover finalizers on the namespace's
 * objects are stripped first, so a namespace never hangs in Terminating when a test's
 * operator is gone.
 */
export async function testNamespace(t: TestContext, cluster: ClusterInfo): Promise<string> {
  const slug = t.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 40)
    .replace(/^-|-$/g, '');
  const name = `t-${slug}-${randomBytes(3).toString('hex')}`;
  await kubectl(cluster, ['create', 'namespace', name]);
  t.after(async () => {
    await stripFinalizers(cluster, name);
    await kubectl(cluster, ['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
  });
  return name;
}

async function stripFinalizers(cluster: ClusterInfo, namespace: string): Promise<void> {
  const crds = (
    await kubectl(cluster, [
      'get',
      'crd',
      '-o',
      'jsonpath={range .items[?(@.spec.scope=="Namespaced")]}{.metadata.name}{","}{end}',
    ])
  ).replace(/,$/, '');
  const kinds = [
    'statefulsets',
    'deployments',
    'pods',
    'persistentvolumeclaims',
    'configmaps',
    'secrets',
    'services',
  ];
  const list = await kubectlJson<{
    items: Array<{ kind: string; apiVersion: string; metadata: { name: string; finalizers?: string[] } }>;
  }>(cluster, ['get', [...kinds, ...(crds ? [crds] : [])].join(','), '-n', namespace]);
  for (const item of list.items) {
    if (!item.metadata.finalizers?.length) continue;
    const group = item.apiVersion.includes('/') ? `.${item.apiVersion.split('/')[0]}` : '';
    await kubectl(cluster, [
      'patch',
      `${item.kind.toLowerCase()}${group}`,
      item.metadata.name,
      '-n',
      namespace,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]).catch(() => undefined);
  }
}

/** The messages of the Warning events about an object, joined by spaces ('' when none). */
export async function warningMessages(
  cluster: ClusterInfo,
  namespace: string,
  name: string,
): Promise<string> {
  return kubectl(cluster, [
    'get',
    'events',
    '-n',
    namespace,
    '--field-selector',
    `involvedObject.name=${name},type=Warning`,
    '-o',
    'jsonpath={.items[*].message}',
  ]);
}

/** Polls `check` until it returns a truthy value or the timeout passes; returns that value. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
