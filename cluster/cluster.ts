/**
 * A real local Kubernetes control plane on loopback: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok (simulated nodes and pods), built from Go
 * modules by `cluster/build.sh`. Several named instances can run at once, each with its own
 * ports, certificates and data; processes are started detached and stopped by pid.
 *
 * Network rule: everything binds to 127.0.0.1. The advertise address (192.0.2.1, TEST-NET),
 * service IPs and pod IPs are not real and nothing connects to them.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cacheRoot = process.env.KOPF_TS_CACHE ?? join(homedir(), '.cache', 'kopf-ts');
const components = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
type Component = (typeof components)[number];

/** How to start one instance. */
export interface ClusterOptions {
  /** Instance name: its own ports, data and state folder. Default `default`. */
  name?: string;
  /** Extra kube-apiserver flags, e.g. `--watch-cache=false` or `--max-requests-inflight=5`. */
  apiserverArgs?: string[];
  /** How many simulated nodes to create. Default 2. */
  nodes?: number;
  /** Print progress to stderr. Default true. */
  verbose?: boolean;
}

/** What a started instance gives its users. */
export interface ClusterInfo {
  name: string;
  /** The instance's state folder. */
  dir: string;
  /** Path of the admin kubeconfig (`system:masters`). */
  kubeconfig: string;
  /** `https://127.0.0.1:<port>`. */
  server: string;
  /** The apiserver's serving certificate chain (use as CA). */
  caFile: string;
  /** The admin bearer token. */
  token: string;
  /** The folder of the control-plane binaries (kubectl among them). */
  binDir: string;
  /** PID per component. */
  pids: Record<Component, number>;
  ports: Record<'etcdClient' | 'etcdPeer' | 'apiserver' | 'controllerManager' | 'scheduler', number>;
  apiserverArgs: string[];
}

export function instanceDir(name: string): string {
  return join(cacheRoot, 'clusters', name);
}

function log(verbose: boolean, message: string): void {
  if (verbose) process.stderr.write(`[cluster] ${message}\n`);
}

/** Runs cluster/build.sh (a no-op when the binaries are cached) and returns the binaries' folder. */
export function ensureBinaries(verbose = true): string {
  const result = spawnSync('bash', [join(here, 'build.sh')], {
    stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`cluster/build.sh failed (exit ${result.status}): ${result.stderr ?? ''}`);
  }
  const line = result.stdout.split('\n').find((l) => l.startsWith('BIN='));
  if (!line) throw new Error('cluster/build.sh did not print BIN=');
  return line.slice(4);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** True when `pid` runs the given binary (guards against pid reuse). */
function alive(pid: number | undefined, binary: string): boolean {
  if (!pid) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie (state Z) has exited already.
    return cmdline.split('\0')[0]?.endsWith(`/${binary}`) === true && !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function readState(name: string): ClusterInfo | undefined {
  const file = join(instanceDir(name), 'state.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo;
}

function writeState(info: ClusterInfo): void {
  writeFileSync(join(info.dir, 'state.json'), JSON.stringify(info, null, 2) + '\n');
}

/** GET a path of the apiserver; resolves with the status code and body, never rejects. */
export function apiGet(
  info: Pick<ClusterInfo, 'server' | 'caFile' | 'token'>,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    let ca: Buffer | undefined;
    try {
      ca = readFileSync(info.caFile);
    } catch {
      resolve({ status: 0, body: 'no certificate yet' });
      return;
    }
    const req = request(
      `${info.server}${path}`,
      { ca, headers: { authorization: `Bearer ${info.token}` }, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 0, body: String(error) }));
    req.end();
  });
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
  logFile?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      let tail = '';
      if (logFile && existsSync(logFile))
        tail = `\nlast lines of ${logFile}:\n${readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n')}`;
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function startProcess(binDir: string, dir: string, component: Component, args: string[]): number {
  const logFile = join(dir, 'logs', `${component}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(join(binDir, component), args, { detached: true, stdio: ['ignore', fd, fd], cwd: dir });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${component}`);
  return child.pid;
}

function kubectl(info: ClusterInfo, args: string[], input?: string): string {
  return execFileSync(join(info.binDir, 'kubectl'), ['--kubeconfig', info.kubeconfig, ...args], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function writeCredentials(dir: string): { token: string } {
  mkdirSync(join(dir, 'pki'), { recursive: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const tokenFile = join(dir, 'tokens.csv');
  if (!existsSync(tokenFile)) {
    const token = randomBytes(24).toString('hex');
    writeFileSync(tokenFile, `${token},kopf-ts-admin,kopf-ts-admin,"system:masters"\n`, { mode: 0o600 });
  }
  if (!existsSync(join(dir, 'sa.key'))) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  }
  return { token: readFileSync(tokenFile, 'utf8').split(',')[0]! };
}

function kubeconfigText(name: string, server: string, caFile: string, token: string): string {
  const ca = readFileSync(caFile).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: kopf-ts-${name}
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: kopf-ts-admin
  user:
    token: ${token}
contexts:
- name: kopf-ts-${name}
  context:
    cluster: kopf-ts-${name}
    user: kopf-ts-admin
    namespace: default
current-context: kopf-ts-${name}
`;
}

function bootstrapObjects(nodes: number): string {
  const nodeDocs = Array.from(
    { length: nodes },
    (_, i) => `apiVersion: v1
kind: Node
metadata:
  name: kwok-node-${i}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-${i}
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
`,
  );
  return [
    ...nodeDocs,
    `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
`,
  ].join('---\n');
}

/** Stops the instance's processes (by pid) without touching its data. */
export async function down(name = 'default', verbose = true): Promise<void> {
  const state = readState(name);
  if (!state) {
    log(verbose, `instance '${name}' has no state; nothing to stop`);
    return;
  }
  // Reverse order: clients before the apiserver, the apiserver before etcd.
  for (const component of [...components].reverse()) {
    const pid = state.pids[component];
    if (!alive(pid, component)) continue;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid, component) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid, component)) process.kill(pid, 'SIGKILL');
    log(verbose, `stopped ${component} (pid ${pid})`);
  }
}

/** Stops the instance and removes its data, credentials and state. */
export async function reset(name = 'default', verbose = true): Promise<void> {
  await down(name, verbose);
  rmSync(etcdDataDir(name), { recursive: true, force: true });
  rmSync(instanceDir(name), { recursive: true, force: true });
  log(verbose, `instance '${name}' removed`);
}

/** etcd's data in memory (tmpfs) when possible; unique per state folder, so two caches never share one. */
function etcdDataDir(name: string): string {
  const key = createHash('sha256').update(instanceDir(name)).digest('hex').slice(0, 8);
  return existsSync('/dev/shm')
    ? `/dev/shm/kopf-ts-etcd-${name}-${key}`
    : join(instanceDir(name), 'etcd-data');
}

/** Health of a running instance; undefined when it has no state. */
export async function status(
  name = 'default',
): Promise<{ info: ClusterInfo; running: Record<Component, boolean>; ready: boolean } | undefined> {
  const info = readState(name);
  if (!info) return undefined;
  const running = Object.fromEntries(components.map((c) => [c, alive(info.pids[c], c)])) as Record<
    Component,
    boolean
  >;
  const ready = running['kube-apiserver'] && (await apiGet(info, '/readyz')).status === 200;
  return { info, running, ready };
}

/**
 * Builds if needed, then starts the named instance, or reuses it when all its processes run
 * and the apiserver is ready. Resolves once nodes are Ready and the default ServiceAccount exists.
 */
export async function up(options: ClusterOptions = {}): Promise<ClusterInfo> {
  const name = options.name ?? 'default';
  const verbose = options.verbose ?? true;
  const apiserverArgs = options.apiserverArgs ?? [];
  const t0 = Date.now();
  const current = await status(name);
  if (
    current &&
    Object.values(current.running).every(Boolean) &&
    current.ready &&
    sameArgs(current.info.apiserverArgs, apiserverArgs)
  ) {
    log(verbose, `instance '${name}' already running (${current.info.server})`);
    return current.info;
  }
  if (current) await down(name, verbose);

  const binDir = ensureBinaries(verbose);
  const dir = instanceDir(name);
  const { token } = writeCredentials(dir);
  const previous = current?.info.ports;
  const taken = new Set<number>();
  const ports = {
    etcdClient: await keepOrPick(previous?.etcdClient, taken),
    etcdPeer: await keepOrPick(previous?.etcdPeer, taken),
    apiserver: await keepOrPick(previous?.apiserver, taken),
    controllerManager: await keepOrPick(previous?.controllerManager, taken),
    scheduler: await keepOrPick(previous?.scheduler, taken),
  };
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const info: ClusterInfo = {
    name,
    dir,
    kubeconfig: join(dir, 'admin.kubeconfig'),
    server,
    caFile: join(dir, 'pki', 'apiserver.crt'),
    token,
    binDir,
    pids: { etcd: 0, 'kube-apiserver': 0, 'kube-controller-manager': 0, 'kube-scheduler': 0, kwok: 0 },
    ports,
    apiserverArgs,
  };
  const logs = (c: Component) => join(dir, 'logs', `${c}.log`);

  const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
  const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
  info.pids.etcd = startProcess(binDir, dir, 'etcd', [
    `--name=kopf-ts-${name}`,
    `--data-dir=${etcdDataDir(name)}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=kopf-ts-${name}=${peerUrl}`,
    '--unsafe-no-fsync',
    '--quota-backend-bytes=4294967296',
    '--log-level=warn',
  ]);
  writeState(info);
  await waitFor(
    'etcd',
    60_000,
    async () => (await httpGet(`${etcdUrl}/health`)).includes('"health":"true"'),
    logs('etcd'),
  );
  log(verbose, `etcd ready on ${etcdUrl}`);

  info.pids['kube-apiserver'] = startProcess(binDir, dir, 'kube-apiserver', [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.apiserver}`,
    '--advertise-address=192.0.2.1',
    '--endpoint-reconciler-type=none',
    `--cert-dir=${join(dir, 'pki')}`,
    '--authorization-mode=Node,RBAC',
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allow-privileged=true',
    '--profiling=false',
    ...apiserverArgs,
  ]);
  writeState(info);
  await waitFor(
    'kube-apiserver /readyz',
    120_000,
    async () => (await apiGet(info, '/readyz')).status === 200,
    logs('kube-apiserver'),
  );
  writeFileSync(info.kubeconfig, kubeconfigText(name, server, info.caFile, token), { mode: 0o600 });
  log(verbose, `kube-apiserver ready on ${server}`);

  info.pids['kube-controller-manager'] = startProcess(binDir, dir, 'kube-controller-manager', [
    `--kubeconfig=${info.kubeconfig}`,
    `--authentication-kubeconfig=${info.kubeconfig}`,
    `--authorization-kubeconfig=${info.kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.controllerManager}`,
    '--leader-elect=false',
    '--controllers=*',
    '--enable-hostpath-provisioner=true',
    `--root-ca-file=${info.caFile}`,
    `--service-account-private-key-file=${join(dir, 'sa.key')}`,
    '--use-service-account-credentials=false',
    '--profiling=false',
  ]);
  const schedulerConfig = join(dir, 'scheduler.yaml');
  writeFileSync(
    schedulerConfig,
    `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${info.kubeconfig}
leaderElection:
  leaderElect: false
`,
  );
  info.pids['kube-scheduler'] = startProcess(binDir, dir, 'kube-scheduler', [
    `--config=${schedulerConfig}`,
    `--authentication-kubeconfig=${info.kubeconfig}`,
    `--authorization-kubeconfig=${info.kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.scheduler}`,
    '--profiling=false',
  ]);
  const kwokConfig = join(dir, 'kwok.yaml');
  const stagesDir = join(binDir, '..', 'kwok-stages');
  writeFileSync(
    kwokConfig,
    [
      'node-initialize.yaml',
      'node-heartbeat-with-lease.yaml',
      'pod-ready.yaml',
      'pod-complete.yaml',
      'pod-delete.yaml',
    ]
      .map((f) => readFileSync(join(stagesDir, f), 'utf8').trim())
      .join('\n---\n') + '\n',
  );
  info.pids.kwok = startProcess(binDir, dir, 'kwok', [
    `--kubeconfig=${info.kubeconfig}`,
    `--config=${kwokConfig}`,
    '--manage-all-nodes=true',
    '--node-lease-duration-seconds=40',
    '--cidr=10.244.0.0/16',
    '--node-ip=192.0.2.10',
  ]);
  writeState(info);

  kubectl(info, ['apply', '-f', '-'], bootstrapObjects(options.nodes ?? 2));
  await waitFor(
    'simulated nodes Ready',
    60_000,
    () => {
      const out = kubectl(info, [
        'get',
        'nodes',
        '-o',
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]);
      return (
        out.trim() !== '' &&
        out
          .trim()
          .split('\n')
          .every((s) => s === 'True')
      );
    },
    logs('kwok'),
  );
  await waitFor(
    'default ServiceAccount',
    60_000,
    () =>
      kubectl(info, ['get', 'serviceaccounts', '-n', 'default', '-o', 'name']).includes(
        'serviceaccount/default',
      ),
    logs('kube-controller-manager'),
  );
  for (const c of components) {
    if (!alive(info.pids[c], c)) throw new Error(`${c} exited during start-up; see ${logs(c)}`);
  }
  log(verbose, `instance '${name}' up in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return info;
}

function sameArgs(a: string[] | undefined, b: string[]): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b);
}

async function keepOrPick(port: number | undefined, taken: Set<number>): Promise<number> {
  if (port && !taken.has(port) && (await portIsFree(port))) {
    taken.add(port);
    return port;
  }
  for (;;) {
    const picked = await freePort();
    if (!taken.has(picked)) {
      taken.add(picked);
      return picked;
    }
  }
}

function httpGet(url: string): Promise<string> {
  return fetch(url, { signal: AbortSignal.timeout(2000) })
    .then((r) => r.text())
    .catch(() => '');
}
