/**
 * Credentials: how to reach and authenticate to a cluster. Everything that talks to the
 * apiserver asks a {@link CredentialsSource} for the current {@link ConnectionInfo}; nothing
 * else reads kubeconfigs or token files. The login activities (`on.login`) replace the default
 * source with a vault of their results.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { ConnectionInfo } from './connection.ts';
import { readKubeconfig, Unsupported } from './kubeconfig.ts';

export type { ConnectionInfo } from './connection.ts';

/** Gives the current credentials; told when the apiserver rejected them (401). */
export interface CredentialsSource {
  current(): Promise<ConnectionInfo>;
  /** The apiserver answered 401 with these credentials: drop them, get new ones if possible. */
  invalidate(rejected: ConnectionInfo, error: Error): Promise<void>;
}

/** Where a pod's ServiceAccount files are; overridable for tests. */
export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** True when running in a pod (the service host variable and the token file exist). */
export function inCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  const dir = env.KOPF_TS_SERVICEACCOUNT_DIR ?? SERVICEACCOUNT_DIR;
  try {
    return Boolean(env.KUBERNETES_SERVICE_HOST) && statSync(join(dir, 'token')).isFile();
  } catch {
    return false;
  }
}

/**
 * In-cluster credentials from the pod's environment and ServiceAccount files, without loading
 * client-node (a smaller, faster operator image).
 */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env): ConnectionInfo {
  const dir = env.KOPF_TS_SERVICEACCOUNT_DIR ?? SERVICEACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: not running in a cluster.');
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim();
  } catch {
    namespace = undefined;
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(dir, 'ca.crt')),
    tokenFile: join(dir, 'token'),
    defaultNamespace: namespace,
    source: 'in-cluster service account',
  };
}

/**
 * Credentials from a kubeconfig (KUBECONFIG, ~/.kube/config, or the given file; the current or
 * the given context). Read by kopf-ts itself (`kubeconfig.ts`); only what that reader does not
 * cover (auth providers, proxies, …) goes through client-node's `KubeConfig`, which is loaded
 * only then: importing client-node costs ~90 MB and most of a second.
 */
export async function kubeconfigConnection(
  options: { kubeconfig?: string; context?: string } = {},
): Promise<ConnectionInfo> {
  const files = options.kubeconfig
    ? [options.kubeconfig]
    : (process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config')).split(delimiter).filter(Boolean);
  if (!files.some((f) => existsSync(f))) {
    throw new Error(
      options.kubeconfig
        ? `The kubeconfig ${options.kubeconfig} does not exist.`
        : `No kubeconfig found (${process.env.KUBECONFIG ? `KUBECONFIG=${process.env.KUBECONFIG}` : `KUBECONFIG is not set and ${files[0]} does not exist`}), and not running in a cluster. Set KUBECONFIG or pass --kubeconfig`,
    );
  }
  try {
    return await readKubeconfig(files, options.context);
  } catch (error) {
    if (!(error instanceof Unsupported)) throw error;
    return viaClientNode(options);
  }
}

/** The same through client-node: everything its `KubeConfig` supports. */
async function viaClientNode(options: { kubeconfig?: string; context?: string }): Promise<ConnectionInfo> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
  else kc.loadFromDefault();
  if (options.context) kc.setCurrentContext(options.context);
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new Error(`the kubeconfig has no current cluster (context '${kc.getCurrentContext()}')`);
  const opts: {
    ca?: Buffer | string;
    cert?: Buffer | string;
    key?: Buffer | string;
    headers?: Record<string, string>;
    auth?: string;
    rejectUnauthorized?: boolean;
  } = {};
  await kc.applyToHTTPSOptions(opts);
  const headers = { ...(opts.headers ?? {}) };
  const authorization = headers.Authorization ?? headers.authorization;
  delete headers.Authorization;
  delete headers.authorization;
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
  if (authorization && !token) headers.Authorization = authorization;
  const [username, ...password] = (opts.auth ?? '').split(':');
  const context = kc.getContextObject(kc.getCurrentContext());
  return {
    server: cluster.server,
    ca: opts.ca,
    insecure: cluster.skipTLSVerify || opts.rejectUnauthorized === false,
    token,
    certificate: opts.cert,
    privateKey: opts.key,
    username: opts.auth ? username : undefined,
    password: opts.auth ? password.join(':') : undefined,
    headers: Object.keys(headers).length ? headers : undefined,
    defaultNamespace: context?.namespace,
    source: `kubeconfig context '${kc.getCurrentContext()}' (through client-node)`,
  };
}

/** A source that always gives the same credentials and cannot recover from a 401. */
export function staticCredentials(info: ConnectionInfo): CredentialsSource {
  return {
    current: () => Promise.resolve(info),
    invalidate: (_rejected, error) =>
      Promise.reject(
        new Error(
          `credentials from ${info.source ?? 'static configuration'} were rejected: ${error.message}`,
        ),
      ),
  };
}
