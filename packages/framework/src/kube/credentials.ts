/**
 * Credentials: how to reach and authenticate to a cluster. Everything that talks to the
 * apiserver asks a {@link CredentialsSource} for the current {@link ConnectionInfo}; nothing
 * else reads kubeconfigs or token files. The login activities (`on.login`) replace the default
 * source with a vault of their results.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** What a login produces: where the apiserver is and how to authenticate to it. */
export interface ConnectionInfo {
  /** `https://host:port` (a path prefix is allowed). */
  server: string;
  /** PEM of the CA(s) to trust; the system's CAs when absent. */
  ca?: string | Buffer;
  /** Skip TLS verification (insecure; for development clusters only). */
  insecure?: boolean;
  /** A bearer token. */
  token?: string;
  /** A file to read the bearer token from, re-read when it changes (ServiceAccount tokens rotate). */
  tokenFile?: string;
  /** Client certificate and key (PEM). */
  certificate?: string | Buffer;
  privateKey?: string | Buffer;
  /** Basic authentication. */
  username?: string;
  password?: string;
  /** Extra headers to send (e.g. from an auth provider). */
  headers?: Record<string, string>;
  /** The namespace of the context, if any. */
  defaultNamespace?: string;
  /** Among several logins, the highest priority is used. */
  priority?: number;
  /** When these credentials stop being valid, if known. */
  expiration?: Date;
  /** Where they came from, for logs: e.g. `kubeconfig context kind-kind`. */
  source?: string;
}

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
 * Credentials from a kubeconfig through client-node's `KubeConfig` (KUBECONFIG, ~/.kube/config,
 * contexts, token files, exec plugins, client certificates, auth providers). The module is
 * loaded only here: importing client-node costs ~90 MB and most of a second.
 */
export async function kubeconfigConnection(
  options: { kubeconfig?: string; context?: string } = {},
): Promise<ConnectionInfo> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
  else {
    const files = (process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config'))
      .split(delimiter)
      .filter(Boolean);
    if (!files.some((f) => existsSync(f))) {
      throw new Error(
        `No kubeconfig found (${process.env.KUBECONFIG ? `KUBECONFIG=${process.env.KUBECONFIG}` : `KUBECONFIG is not set and ${files[0]} does not exist`}), and not running in a cluster. Set KUBECONFIG or pass --kubeconfig`,
      );
    }
    kc.loadFromDefault();
  }
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
    source: `kubeconfig context '${kc.getCurrentContext()}'`,
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
