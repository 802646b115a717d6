/**
 * Reading kubeconfigs without `@kubernetes/client-node`, whose import alone costs ~90 MB of RSS
 * and most of a second (it loads its whole generated API). Covers what kubectl's loading rules
 * do for the common cases: several files in KUBECONFIG (the first file to set a key wins),
 * paths relative to their file, CA/certificate/key as files or inline data, tokens and token
 * files, basic auth, impersonation, and exec credential plugins. What it does not cover
 * (`auth-provider`, proxies, a TLS server name) is reported as {@link Unsupported}, and the
 * caller falls back to client-node.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { ConnectionInfo } from './connection.ts';

const execFileAsync = promisify(execFile);

type Entry = Record<string, unknown>;

/** A kubeconfig feature this reader leaves to client-node. */
export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

interface Loaded {
  currentContext?: string;
  contexts: Map<string, { entry: Entry; file: string }>;
  clusters: Map<string, { entry: Entry; file: string }>;
  users: Map<string, { entry: Entry; file: string }>;
}

/** Merges the files as kubectl does: for every named entry and for current-context, the first file wins. */
function load(files: string[]): Loaded {
  const loaded: Loaded = { contexts: new Map(), clusters: new Map(), users: new Map() };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    let doc: Entry | null;
    try {
      doc = parse(text) as Entry | null;
    } catch (error) {
      throw new Error(`The kubeconfig ${file} is not valid YAML: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!doc) continue;
    if (typeof doc !== 'object' || Array.isArray(doc))
      throw new Error(`The kubeconfig ${file} is not a mapping (apiVersion: v1, kind: Config).`);
    const current = doc['current-context'];
    if (!loaded.currentContext && typeof current === 'string' && current) loaded.currentContext = current;
    for (const [section, target, field] of [
      ['contexts', loaded.contexts, 'context'],
      ['clusters', loaded.clusters, 'cluster'],
      ['users', loaded.users, 'user'],
    ] as const) {
      const list = doc[section] ?? [];
      if (!Array.isArray(list)) throw new Error(`The kubeconfig ${file}: '${section}' is not a list.`);
      for (const item of list as Entry[]) {
        const name = item?.name;
        if (typeof name !== 'string') continue;
        if (!target.has(name)) target.set(name, { entry: (item[field] ?? {}) as Entry, file });
      }
    }
  }
  return loaded;
}

function text(entry: Entry, key: string): string | undefined {
  const value = entry[key];
  return typeof value === 'string' && value ? value : undefined;
}

/** A file's content, its path relative to the kubeconfig that names it. */
function fileOf(path: string, kubeconfig: string): Buffer {
  const full = isAbsolute(path) ? path : resolve(dirname(kubeconfig), path);
  try {
    return readFileSync(full);
  } catch (error) {
    throw new Error(
      `Cannot read ${full} (named in the kubeconfig ${kubeconfig}): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Inline base64 data (`<key>-data`) or a file (`<key>`). */
function dataOrFile(entry: Entry, key: string, kubeconfig: string): Buffer | undefined {
  const data = text(entry, `${key}-data`);
  if (data) return Buffer.from(data, 'base64');
  const path = text(entry, key);
  return path ? fileOf(path, kubeconfig) : undefined;
}

/** What an exec credential plugin printed: `ExecCredential.status`. */
interface ExecStatus {
  token?: string;
  clientCertificateData?: string;
  clientKeyData?: string;
  expirationTimestamp?: string;
}

/** Runs an exec credential plugin (client.authentication.k8s.io), as kubectl does, non-interactively. */
async function runExec(exec: Entry, kubeconfig: string, cluster: Entry): Promise<ExecStatus> {
  const command = text(exec, 'command');
  if (!command) throw new Error(`The kubeconfig ${kubeconfig}: an exec plugin without a command.`);
  const apiVersion = text(exec, 'apiVersion') ?? 'client.authentication.k8s.io/v1';
  const args = Array.isArray(exec.args) ? (exec.args as unknown[]).map(String) : [];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const item of Array.isArray(exec.env) ? (exec.env as Entry[]) : [])
    if (typeof item.name === 'string') env[item.name] = typeof item.value === 'string' ? item.value : '';
  const spec: Entry = { interactive: false };
  if (exec.provideClusterInfo === true) spec.cluster = { server: cluster.server };
  env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion, kind: 'ExecCredential', spec });
  // A relative command with a slash is relative to the kubeconfig; a bare name is looked up in PATH.
  const program =
    command.includes('/') && !isAbsolute(command) ? resolve(dirname(kubeconfig), command) : command;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(program, args, { env, timeout: 60_000, maxBuffer: 1024 * 1024 }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(
      `The exec credential plugin '${command}' failed: ${(error as Error).message.split('\n')[0]}${stderr ? ` (${stderr})` : ''}`,
      { cause: error },
    );
  }
  let parsed: { status?: ExecStatus };
  try {
    parsed = JSON.parse(stdout) as { status?: ExecStatus };
  } catch {
    throw new Error(`The exec credential plugin '${command}' printed no ExecCredential JSON.`);
  }
  if (!parsed.status?.token && !parsed.status?.clientCertificateData)
    throw new Error(`The exec credential plugin '${command}' gave neither a token nor a client certificate.`);
  return parsed.status;
}

/**
 * The connection of a context (the current one by default) of the merged kubeconfig `files`.
 * Throws {@link Unsupported} for what client-node must handle, and clear errors otherwise.
 */
export async function readKubeconfig(files: string[], contextName?: string): Promise<ConnectionInfo> {
  const loaded = load(files);
  const where = files.join(', ');
  const name = contextName ?? loaded.currentContext;
  if (!name) throw new Error(`The kubeconfig (${where}) has no current-context, and no context was given.`);
  const context = loaded.contexts.get(name);
  if (!context) {
    const known = [...loaded.contexts.keys()];
    throw new Error(
      `The kubeconfig (${where}) has no context '${name}'${known.length ? `; it has: ${known.join(', ')}` : ''}.`,
    );
  }
  const clusterName = text(context.entry, 'cluster');
  const cluster = clusterName ? loaded.clusters.get(clusterName) : undefined;
  if (!cluster)
    throw new Error(
      `The kubeconfig (${where}): context '${name}' names no known cluster ('${clusterName ?? ''}').`,
    );
  const server = text(cluster.entry, 'server');
  if (!server) throw new Error(`The kubeconfig ${cluster.file}: cluster '${clusterName}' has no server.`);
  if (text(cluster.entry, 'proxy-url') || text(cluster.entry, 'tls-server-name'))
    throw new Unsupported('proxy-url / tls-server-name');
  const userName = text(context.entry, 'user');
  const user = userName ? loaded.users.get(userName) : undefined;
  const u = user?.entry ?? {};
  if (u['auth-provider']) throw new Unsupported('auth-provider');
  const userFile = user?.file ?? context.file;

  const info: ConnectionInfo = {
    server,
    ca: dataOrFile(cluster.entry, 'certificate-authority', cluster.file),
    insecure: cluster.entry['insecure-skip-tls-verify'] === true || undefined,
    certificate: dataOrFile(u, 'client-certificate', userFile),
    privateKey: dataOrFile(u, 'client-key', userFile),
    token: text(u, 'token'),
    username: text(u, 'username'),
    password: text(u, 'password'),
    defaultNamespace: text(context.entry, 'namespace'),
    source: `kubeconfig context '${name}'`,
  };
  const tokenFile = text(u, 'tokenFile');
  if (!info.token && tokenFile)
    info.tokenFile = isAbsolute(tokenFile) ? tokenFile : resolve(dirname(userFile), tokenFile);
  const headers: Record<string, string> = {};
  if (text(u, 'as')) headers['Impersonate-User'] = text(u, 'as')!;
  const groups = Array.isArray(u['as-groups']) ? (u['as-groups'] as unknown[]).map(String) : [];
  // One header line per group would be needed for several: left to client-node.
  if (groups.length > 1 || u['as-user-extra']) throw new Unsupported('as-groups / as-user-extra');
  if (groups.length) headers['Impersonate-Group'] = groups[0]!;
  if (Object.keys(headers).length) info.headers = headers;
  if (u.exec && typeof u.exec === 'object') {
    const status = await runExec(u.exec as Entry, userFile, cluster.entry);
    if (status.token) info.token = status.token;
    if (status.clientCertificateData) info.certificate = status.clientCertificateData;
    if (status.clientKeyData) info.privateKey = status.clientKeyData;
    if (status.expirationTimestamp) info.expiration = new Date(status.expirationTimestamp);
  }
  return info;
}
