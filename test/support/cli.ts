/**
 * Running the `kopf-ts` command as a subprocess (with this Node), its output captured.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { eventually, kubectl, kubectlApply } from './cluster.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KOPF_TS = fileURLToPath(new URL('../../packages/framework/bin/kopf-ts.js', import.meta.url));

export interface CliProcess {
  output: string[];
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Waits until a line matching `pattern` was printed. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
}

export function startCli(
  t: TestContext,
  cluster: ClusterInfo | undefined,
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** The child gets exactly `env` (no inherited variables, no KUBECONFIG): e.g. a pod's environment. */
    replaceEnv?: boolean;
    /** The program and its leading arguments, instead of this Node and the kopf-ts bin (e.g. chroot ...). */
    command?: string[];
  } = {},
): CliProcess {
  const [program = process.execPath, ...leading] = options.command ?? [process.execPath, KOPF_TS];
  const child = spawn(program, [...leading, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.replaceEnv
      ? { ...options.env }
      : { ...process.env, ...(cluster ? { KUBECONFIG: cluster.kubeconfig } : {}), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  // Whole lines, per stream: a line may arrive in several chunks, between the other stream's.
  const rests = [child.stdout, child.stderr].map((stream) => {
    const state = { rest: '' };
    stream.on('data', (chunk: Buffer) => {
      const parts = (state.rest + chunk.toString('utf8')).split('\n');
      state.rest = parts.pop() ?? '';
      output.push(...parts);
      if (process.env.KOPF_TS_TEST_LOGS) process.stderr.write(chunk);
    });
    return state;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const { rest } of rests) if (rest) output.push(rest);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    output,
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      eventually(
        `output matching ${String(pattern)}`,
        () => output.find((l) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l))),
        timeoutMs,
      ),
    kill: (signal = 'SIGINT') => child.kill(signal),
  };
}

/** A document of `kopf-ts generate`. */
export type GeneratedDoc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
} & Record<string, unknown>;

/** What `kopf-ts generate <file> ...args` prints, as parsed documents. */
export function generated(file: string, args: string[] = []): GeneratedDoc[] {
  const output = execFileSync(process.execPath, [KOPF_TS, 'generate', file, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return parseAllDocuments(output).map((d) => d.toJS() as GeneratedDoc);
}

/**
 * Applies the CRDs that `kopf-ts generate <file>` prints (those whose name passes `which`) and
 * waits until they are served; returns their names.
 */
export async function installGeneratedCrds(
  cluster: ClusterInfo,
  file: string,
  which: (name: string) => boolean = () => true,
): Promise<string[]> {
  const crds = generated(file).filter((d) => d.kind === 'CustomResourceDefinition' && which(d.metadata.name));
  await kubectlApply(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: crds }));
  const names = crds.map((d) => d.metadata.name);
  if (names.length)
    await kubectl(cluster, [
      'wait',
      '--for=condition=Established',
      ...names.map((n) => `crd/${n}`),
      '--timeout=30s',
    ]);
  return names;
}
