/**
 * Running the psql operator as in a pod: the generated ServiceAccount and RBAC in a test
 * namespace, a TokenRequest token written where the kubelet would mount it, and a pod's
 * environment (service host and port, no kubeconfig).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ClusterInfo } from '../../../cluster/cluster.ts';
import {
  eventually,
  kubectl,
  kubectlApply,
  kubectlJson,
  sharedCluster,
  testNamespace,
} from '../../support/cluster.ts';
import { generated, installGeneratedCrds, type GeneratedDoc } from '../../support/cli.ts';

export const OPERATOR = 'packages/psql-operator/src/operator.ts';
export const NAME = 'psql-operator';
export const IMAGE = 'kopf-ts-psql-operator:test';

export type Doc = GeneratedDoc;
export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
export type Role = Doc & { rules: Rule[] };

/** `kopf-ts generate` for a namespace, as parsed documents. */
export function generate(namespace: string, image = IMAGE): Doc[] {
  return generated(OPERATOR, ['-n', namespace, '--name', NAME, '--image', image]);
}

/** Applies `docs` (retried: concurrent test files may create the same cluster-wide CRDs). */
export async function apply(cluster: ClusterInfo, docs: Doc[], namespace?: string): Promise<void> {
  await kubectlApply(cluster, docs.map((d) => JSON.stringify(d)).join('\n'), namespace);
}

/** Applies the generated CRDs (psqls and Kopf's peerings) and waits until they are served. */
export async function installCrds(): Promise<void> {
  await installGeneratedCrds(await sharedCluster(), OPERATOR);
}

export interface Setup {
  cluster: ClusterInfo;
  ns: string;
  /** Everything `kopf-ts generate -n <ns>` printed. */
  docs: Doc[];
  /** The generated Role, as applied unless the setup changed it. */
  role: Role;
  /** The ServiceAccount folder: token, ca.crt, namespace (what the kubelet mounts). */
  saDir: string;
}

/**
 * A test namespace with the generated ServiceAccount, Role and RoleBinding (not the
 * Deployment), and a token for the ServiceAccount (TokenRequest) written with the CA and the
 * namespace into `saDir` (a temporary folder by default).
 */
export async function setup(
  t: TestContext,
  options: { role?: (generated: Role) => Role; saDir?: string } = {},
): Promise<Setup> {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const docs = generate(ns);
  const role = docs.find((d) => d.kind === 'Role') as Role;
  const namespaced = docs
    .filter((d) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(d.kind))
    .map((d) => (d.kind === 'Role' && options.role ? options.role(role) : d));
  await apply(cluster, namespaced, ns);
  const token = (await kubectl(cluster, ['create', 'token', NAME, '-n', ns, '--duration=1h'])).trim();
  let saDir = options.saDir;
  if (saDir) mkdirSync(saDir, { recursive: true });
  else {
    const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-sa-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    saDir = dir;
  }
  writeFileSync(join(saDir, 'token'), token);
  writeFileSync(join(saDir, 'ca.crt'), readFileSync(cluster.caFile));
  writeFileSync(join(saDir, 'namespace'), ns);
  return { cluster, ns, docs, role, saDir };
}

/** What the kubelet puts in every container's environment to reach the apiserver (on loopback here). */
export function serviceEnv(cluster: ClusterInfo): NodeJS.ProcessEnv {
  return { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(cluster.server).port };
}

export const psqlManifest = (name: string, size: number) =>
  `apiVersion: test.com/v1\nkind: psql\nmetadata: {name: ${name}}\nspec: {size: ${size}}\n`;

export interface Psql {
  status?: {
    readyReplicas?: number;
    create_fn?: unknown;
    conditions?: Array<{ type: string; status: string }>;
  };
}

/** Waits until the psql reports Ready=True with `replicas` ready replicas. */
export function readyPsql(s: Setup, name: string, replicas: number, timeoutMs = 45_000): Promise<Psql> {
  return eventually(
    `psql ${name}: Ready=True with ${replicas} ready replicas`,
    async () => {
      const p = await kubectlJson<Psql>(s.cluster, ['get', 'psql', name, '-n', s.ns]);
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'True' && p.status?.readyReplicas === replicas ? p : undefined;
    },
    timeoutMs,
  );
}
