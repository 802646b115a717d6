/**
 * `npm run bench`: the same workload through kopf-ts (`kopf-ts run`), the real Python Kopf and
 * a hand-written floor controller on @kubernetes/client-node, each alone in turn on fresh
 * objects of its own local control plane instance (`bench`), then one table with absolute
 * figures and ratios. See docs/performance.md.
 *
 *     npm run bench -- [--burst 500] [--existing 100] [--update-objects 50] [--update-rounds 5]
 *                      [--startups 3] [--operators kopf-ts,kopf,floor,kopf-ts-incluster]
 *                      [--out results.json] [--keep]
 *
 * Scenarios, per operator (a fresh namespace each):
 *   start-up  K objects exist; process start → first (and all K) handled.
 *   memory    RSS of the operator's process tree, idle, with K and then K+N objects; the slope.
 *   burst     N objects created at once: time until all are handled (diff-base annotation
 *             present), objects/s, p50/p99 creation-to-handled latency, CPU seconds.
 *   API cost  requests per handled object by verb, from the apiserver's own
 *             `apiserver_request_total` (deltas; the driver's own requests subtracted).
 *   updates   U objects updated M times in quick rounds: handler invocations vs distinct
 *             essences, time until every object's final state is handled.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { reset, up, type ClusterInfo } from '../cluster/cluster.ts';
import {
  counterBetween,
  parseSamples,
  requestsBetween,
  scrape,
  type RequestCounts,
  type Sample,
} from './lib/apimetrics.ts';
import { Api, pool, type KubeObject, type WatchEvent } from './lib/kube.ts';
import { machineBusy, processCpu, treeCpu, treeRss } from './lib/proc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GROUP = 'bench.kopf-ts.dev';
const PLURAL = 'benches';
const DIFF_BASE = 'kopf.zalando.org/last-handled-configuration';
const NS = 'bench';

const CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    names: { kind: 'Bench', plural: PLURAL, singular: 'bench' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

const USAGE = `Usage: npm run bench -- [options]   (docs/performance.md)

Runs one workload through kopf-ts, Python Kopf and a hand-written floor controller, each alone
on a control plane instance of its own, and prints one table (progress on stderr).

Options:
  --burst N               objects created at once (default 500)
  --existing K            objects that exist before the operator starts (default 100)
  --update-objects U      objects updated in the updates scenario (default 50)
  --update-rounds M       rounds of updates (default 5)
  --startups R            start-up measurements per operator, the median reported (default 3)
  --payload B             bytes of payload per object (default 200)
  --concurrency C         the driver's parallel requests (default 50)
  --idle S                idle seconds before memory samples (default 8)
  --settle S              seconds for trailing requests (default 3)
  --timeout S             the longest wait for any scenario (default 300)
  --operators LIST        of kopf-ts, kopf, floor, kopf-ts-metrics, kopf-ts-incluster
                          (default kopf-ts,kopf,floor,kopf-ts-incluster)
  --kopf-ts-args ARGS     extra \`kopf-ts run\` arguments, e.g. "--verbose"
  --name N                the control plane instance's name (default bench)
  --profile DIR           write CPU profiles of the kopf-ts operators into DIR (node --cpu-prof)
  --keep                  keep the instance afterwards
  --out FILE              also write the raw figures as JSON
  -h, --help              this text
`;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        burst: { type: 'string', default: '500' },
        existing: { type: 'string', default: '100' },
        'update-objects': { type: 'string', default: '50' },
        'update-rounds': { type: 'string', default: '5' },
        startups: { type: 'string', default: '3' },
        payload: { type: 'string', default: '200' },
        concurrency: { type: 'string', default: '50' },
        idle: { type: 'string', default: '8' },
        settle: { type: 'string', default: '3' },
        timeout: { type: 'string', default: '300' },
        operators: { type: 'string', default: 'kopf-ts,kopf,floor,kopf-ts-incluster' },
        name: { type: 'string', default: 'bench' },
        out: { type: 'string' },
        'kopf-ts-args': { type: 'string', default: '' },
        profile: { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
const args = parseOptions();
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const config = {
  burst: Number(args.burst),
  existing: Number(args.existing),
  updateObjects: Number(args['update-objects']),
  updateRounds: Number(args['update-rounds']),
  startups: Math.max(1, Number(args.startups)),
  payload: Number(args.payload),
  concurrency: Number(args.concurrency),
  idle: Number(args.idle),
  settle: Number(args.settle),
  timeout: Number(args.timeout),
  operators: args.operators.split(',').filter(Boolean),
  /** Extra arguments of `kopf-ts run` (e.g. `--verbose` to see its queue's debug messages). */
  kopfTsArgs: args['kopf-ts-args'].split(' ').filter(Boolean),
};
for (const [key, value] of Object.entries(config)) {
  if (typeof value === 'number' && !(Number.isFinite(value) && value >= 0)) {
    process.stderr.write(
      `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a number >= 0.\n\n${USAGE}`,
    );
    process.exit(2);
  }
}

const started = performance.now();
function progress(message: string): void {
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}\n`,
  );
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const median = (values: number[]) => percentile(values, 50);

// ---------------------------------------------------------------------------------------------
// The operators under test.

interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

interface OperatorSpec {
  id: string;
  label: string;
  /** Only start-up and idle memory (a variant of another operator). */
  light?: boolean;
  /** The operator serves Prometheus metrics here (scraped around the burst). */
  metricsPort?: number;
  launch(cluster: ClusterInfo, work: string): Launch;
}

function kopfPython(): string {
  return execFileSync('bash', [join(ROOT, 'test/kopf/venv.sh')], { encoding: 'utf8' }).trim();
}

const baseEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  return env;
};

const KOPF_TS = join(ROOT, 'packages/framework/bin/kopf-ts.js');
/** Node's flags on the launcher's `#!` line: kopf-ts runs here as a user's `kopf-ts` command does. */
const LAUNCHER_FLAGS = readFileSync(KOPF_TS, 'utf8')
  .split('\n', 1)[0]!
  .split(/\s+/)
  .filter((word) => word.startsWith('--'));
/** The kopf-ts command line of every kopf-ts variant. */
const kopfTsRun = () => [
  ...LAUNCHER_FLAGS,
  ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args.profile)}`] : []),
  KOPF_TS,
  'run',
  'bench/operators/kopf-ts-operator.ts',
  '-n',
  NS,
  '--standalone',
  ...config.kopfTsArgs,
];
const SPECS: Record<string, OperatorSpec> = {
  'kopf-ts': {
    id: 'kopf-ts',
    label: 'kopf-ts',
    launch: (cluster) => ({
      command: process.execPath,
      args: kopfTsRun(),
      env: { ...baseEnv(), KUBECONFIG: cluster.kubeconfig },
    }),
  },
  kopf: {
    id: 'kopf',
    label: 'Kopf',
    launch: (cluster) => ({
      command: kopfPython(),
      args: ['-m', 'kopf', 'run', '--standalone', '-n', NS, 'bench/operators/kopf_operator.py'],
      env: { ...baseEnv(), KUBECONFIG: cluster.kubeconfig, PYTHONUNBUFFERED: '1' },
    }),
  },
  floor: {
    id: 'floor',
    label: 'floor',
    launch: (cluster) => ({
      command: process.execPath,
      args: ['bench/operators/floor.ts'],
      env: { ...baseEnv(), KUBECONFIG: cluster.kubeconfig, BENCH_NAMESPACE: NS },
    }),
  },
  'kopf-ts-metrics': {
    id: 'kopf-ts-metrics',
    label: 'kopf-ts --metrics',
    launch(cluster) {
      return {
        command: process.execPath,
        args: [...kopfTsRun(), '--metrics', `127.0.0.1:${this.metricsPort}`],
        env: { ...baseEnv(), KUBECONFIG: cluster.kubeconfig },
      };
    },
  },
  'kopf-ts-incluster': {
    id: 'kopf-ts-incluster',
    label: 'kopf-ts, in-cluster login',
    light: true,
    launch: (cluster, work) => {
      // A pod's view: the service host and port, ServiceAccount files, no kubeconfig.
      const dir = join(work, 'serviceaccount');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'token'), cluster.token);
      writeFileSync(join(dir, 'ca.crt'), readFileSync(cluster.caFile));
      writeFileSync(join(dir, 'namespace'), NS);
      return {
        command: process.execPath,
        args: kopfTsRun(),
        env: {
          ...baseEnv(),
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: String(cluster.ports.apiserver),
          KOPF_TS_SERVICEACCOUNT_DIR: dir,
        },
      };
    },
  },
};

interface Call {
  handler: string;
  name: string;
  n: string;
  at: number;
}

interface Running {
  child: ChildProcess;
  pid: number;
  calls: Call[];
  exited: Promise<number | string>;
  startedAt: number;
}

function startOperator(spec: OperatorSpec, cluster: ClusterInfo, work: string): Running {
  const { command, args: argv, env } = spec.launch(cluster, work);
  // Appended: the start-up rounds run an operator several times.
  const log = createWriteStream(join(work, `${spec.id}.log`), { flags: 'a' });
  const startedAt = now();
  const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const calls: Call[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    log.write(chunk);
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      const m = /CALL (\S+) (\S+) (\S+)/.exec(line);
      if (m) calls.push({ handler: m[1]!, name: m[2]!, n: m[3]!, at: now() });
    }
  });
  child.stderr.pipe(log);
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  if (!child.pid) throw new Error(`could not start ${spec.label}`);
  return { child, pid: child.pid, calls, exited, startedAt };
}

async function stopOperator(running: Running): Promise<number | string> {
  running.child.kill('SIGTERM');
  const code = await Promise.race([running.exited, sleep(30_000).then(() => undefined)]);
  if (code !== undefined) return code;
  running.child.kill('SIGKILL');
  return running.exited;
}

// ---------------------------------------------------------------------------------------------
// The driver: objects, a watch that sees when they are handled, namespaces.

class Tracker {
  readonly created = new Map<string, number>();
  readonly handled = new Map<string, number>();
  readonly expected = new Map<string, number>();
  readonly converged = new Map<string, number>();
  private watch?: { stop(): void };
  private stopped = false;
  private version?: string;

  constructor(private readonly api: Api) {}

  start(): void {
    const from = this.version ? `?resourceVersion=${this.version}` : '';
    this.watch = this.api.watch(
      `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}${from}`,
      (event) => this.onEvent(event),
      (error) => {
        if (this.stopped) return;
        progress(`  (the driver's watch ended: ${error?.message ?? 'closed by the apiserver'}; resuming it)`);
        this.start();
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  private onEvent(event: WatchEvent): void {
    if (event.type === 'ERROR') {
      this.version = undefined; // e.g. 410 Gone: start over (ADDED events for all objects)
      return;
    }
    const object: KubeObject = event.object;
    if (object.metadata.resourceVersion) this.version = object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK' || event.type === 'DELETED') return;
    const name = object.metadata.name;
    const stored = object.metadata.annotations?.[DIFF_BASE];
    if (!stored) return;
    const t = now();
    if (!this.handled.has(name)) this.handled.set(name, t);
    const want = this.expected.get(name);
    if (want !== undefined && !this.converged.has(name)) {
      try {
        const parsed = JSON.parse(stored) as { spec?: { n?: number } };
        if (parsed.spec?.n === want) this.converged.set(name, t);
      } catch {
        // not ours to judge
      }
    }
  }

  /** Waits until `done(name)` holds for all names; false on timeout. */
  async waitAll(names: string[], done: (name: string) => boolean, timeoutS: number): Promise<boolean> {
    const deadline = now() + timeoutS * 1000;
    let last = 0;
    for (;;) {
      const count = names.filter(done).length;
      if (count === names.length) return true;
      if (now() > deadline) {
        progress(`  timed out with ${count}/${names.length} done`);
        return false;
      }
      if (now() - last > 5000) {
        if (last) progress(`  … ${count}/${names.length}`);
        last = now();
      }
      await sleep(25);
    }
  }
}

const objectBody = (name: string, n: number) => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Bench',
  metadata: { name },
  spec: { n, payload: 'x'.repeat(config.payload) },
});

async function createObjects(api: Api, tracker: Tracker, names: string[]): Promise<void> {
  await pool(names, config.concurrency, async (name) => {
    await api.ok('POST', `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}`, objectBody(name, 0));
    tracker.created.set(name, now());
  });
}

async function freshNamespace(api: Api): Promise<void> {
  await deleteNamespace(api);
  await api.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
}

/** Deletes the bench objects of the namespace (none has a finalizer while no operator runs). */
async function deleteObjects(api: Api): Promise<void> {
  const path = `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}`;
  await api.ok('DELETE', path);
  for (let i = 0; (await api.ok<{ items: unknown[] }>('GET', path)).body.items.length; i++) {
    if (i > 600) throw new Error(`the bench objects in ${NS} are not gone after 60 s`);
    await sleep(100);
  }
}

async function deleteNamespace(api: Api): Promise<void> {
  const path = `/api/v1/namespaces/${NS}`;
  const first = await api.request('DELETE', path);
  if (first.status === 404) return;
  const deadline = now() + 180_000;
  let stripped = false;
  while ((await api.request('GET', path)).status !== 404) {
    if (now() > deadline) throw new Error(`namespace ${NS} is not gone after 180 s`);
    if (!stripped && now() > deadline - 160_000) {
      // Leftover finalizers (an operator stopped mid-way) would keep the namespace forever.
      stripped = true;
      const list = await api.request<{ items?: KubeObject[] }>(
        'GET',
        `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}`,
      );
      for (const item of list.body.items ?? [])
        if (item.metadata.finalizers?.length)
          await api.request(
            'PATCH',
            `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}/${item.metadata.name}`,
            { metadata: { finalizers: null } },
            'application/merge-patch+json',
          );
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// One operator through all scenarios.

interface MemorySample {
  rssMb: number;
  /** RSS per process of the tree (MB), e.g. the operator and tsx's esbuild service. */
  processes: Array<{ command: string; mb: number }>;
}

interface OperatorResult {
  label: string;
  /** The median of the start-up rounds (each round: its own K objects, a fresh process). */
  startup: {
    firstS: number;
    allS: number;
    complete: boolean;
    rounds: Array<{ firstS: number; allS: number }>;
  };
  idleSmall?: MemorySample;
  idleLarge?: MemorySample;
  slopeKbPerObject?: number;
  burst?: {
    objects: number;
    complete: boolean;
    allS: number;
    perSecond: number;
    createS: number;
    p50Ms: number;
    p99Ms: number;
    operatorCpuS: number;
    controlPlaneCpuS: number;
    peakRssMb: number;
    requests: RequestCounts;
    events: number;
    createCalls: number;
    /**
     * CPU seconds used on the machine during the burst by everything else: neither the operator,
     * nor the control plane's processes, nor this driver (other users of a shared machine).
     */
    otherCpuS: number;
    /** Watchers of the bench resource the apiserver closed as too slow (the driver's included). */
    droppedWatchers: number;
    /** From the operator's own /metrics (kopf-ts --metrics): means over the burst. */
    own?: { queueWaitMs: number; patchMs: number; handlerMs: number };
  };
  updates?: {
    objects: number;
    rounds: number;
    sent: number;
    complete: boolean;
    convergeS: number;
    invocations: number;
    distinct: number;
    requests: RequestCounts;
    operatorCpuS: number;
  };
  cpuTotalS: number;
  exit: number | string;
}

async function memory(pid: number): Promise<MemorySample> {
  await sleep(config.idle * 1000);
  const samples: Array<ReturnType<typeof treeRss>> = [];
  for (let i = 0; i < 3; i++) {
    samples.push(treeRss(pid));
    if (i < 2) await sleep(1000);
  }
  const rss = median(samples.map((s) => s.bytes));
  const last = samples[samples.length - 1]!;
  return {
    rssMb: rss / 2 ** 20,
    processes: last.processes.map((p) => ({
      command: p.command,
      mb: Number((p.bytes / 2 ** 20).toFixed(1)),
    })),
  };
}

async function ownMetrics(port: number): Promise<Sample[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return parseSamples(
    text,
    ['kopf_queue_wait_seconds', 'kopf_api_request_duration_seconds', 'kopf_handler_duration_seconds'].flatMap(
      (n) => [`${n}_sum`, `${n}_count`],
    ),
  );
}

function sum(samples: Sample[], name: string, where: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

/** The whole local control plane: apiserver, etcd, controller-manager, scheduler, kwok. */
function controlPlaneCpu(cluster: ClusterInfo): number {
  return Object.values(cluster.pids).reduce((sum, pid) => sum + processCpu(pid), 0);
}

function eventsBetween(before: Sample[], after: Sample[]): number {
  return (
    requestsBetween(before, after, '', 'events').total +
    requestsBetween(before, after, 'events.k8s.io', 'events').total
  );
}

async function runOperator(
  spec: OperatorSpec,
  cluster: ClusterInfo,
  api: Api,
  work: string,
): Promise<OperatorResult> {
  progress(`${spec.label}: fresh namespace '${NS}'`);
  await freshNamespace(api);
  const tracker = new Tracker(api);
  tracker.start();
  // Start-up varies with what else the machine does at that moment: several rounds, each with
  // objects of its own and a fresh process; all but the last are stopped and their objects deleted.
  const rounds: Array<{ firstS: number; allS: number }> = [];
  let complete = true;
  const namesOf = (round: number) =>
    Array.from({ length: config.existing }, (_, i) => `pre${round}-${String(i).padStart(5, '0')}`);
  const startRound = async (round: number) => {
    const existing = namesOf(round);
    await createObjects(api, tracker, existing);
    await sleep(500);
    const running = startOperator(spec, cluster, work);
    complete &&= await tracker.waitAll(existing, (n) => tracker.handled.has(n), config.timeout);
    const times = existing.map((n) => tracker.handled.get(n)).filter((t): t is number => t !== undefined);
    rounds.push({
      firstS: (Math.min(...times) - running.startedAt) / 1000,
      allS: (Math.max(...times) - running.startedAt) / 1000,
    });
    progress(
      `${spec.label}: start-up ${round}/${config.startups}: first handled after ${rounds.at(-1)!.firstS.toFixed(2)}s, all ${existing.length} after ${rounds.at(-1)!.allS.toFixed(2)}s`,
    );
    return running;
  };
  progress(
    `${spec.label}: start-up, ${config.startups}× (${config.existing} objects exist before the operator starts)`,
  );
  for (let round = 1; round < config.startups; round++) {
    const running = await startRound(round);
    await stopOperator(running);
    await deleteObjects(api);
  }
  const running = await startRound(config.startups);
  const result: OperatorResult = {
    label: spec.label,
    startup: {
      firstS: median(rounds.map((r) => r.firstS)),
      allS: median(rounds.map((r) => r.allS)),
      complete,
      rounds,
    },
    cpuTotalS: NaN,
    exit: 'running',
  };
  const existing = namesOf(config.startups);
  try {
    progress(`${spec.label}: idle ${config.idle}s for memory`);
    result.idleSmall = await memory(running.pid);
    progress(
      `${spec.label}: idle RSS with ${existing.length} objects: ${result.idleSmall.rssMb.toFixed(1)} MB (${result.idleSmall.processes.map((p) => `${p.command} ${p.mb} MB`).join(', ')})`,
    );
    if (spec.light) return result;

    // Burst.
    const burst = Array.from({ length: config.burst }, (_, i) => `obj-${String(i).padStart(5, '0')}`);
    progress(`${spec.label}: burst of ${burst.length} objects`);
    const ownBefore = spec.metricsPort ? await ownMetrics(spec.metricsPort) : undefined;
    const before = await scrape(api);
    const cpu0 = treeCpu(running.pid);
    const cp0 = controlPlaneCpu(cluster);
    const all0 = machineBusy();
    const own0 = process.cpuUsage();
    const callsBefore = running.calls.length;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, treeRss(running.pid).bytes)), 200);
    const t0 = now();
    await createObjects(api, tracker, burst);
    const createS = (now() - t0) / 1000;
    progress(
      `${spec.label}: ${burst.length} created in ${((now() - t0) / 1000).toFixed(1)}s; waiting for all handled`,
    );
    const burstDone = await tracker.waitAll(burst, (n) => tracker.handled.has(n), config.timeout);
    const handledTimes = burst.map((n) => tracker.handled.get(n)).filter((t): t is number => t !== undefined);
    const tEnd = Math.max(...handledTimes);
    const cpu1 = treeCpu(running.pid);
    const cp1 = controlPlaneCpu(cluster);
    const all1 = machineBusy();
    const own = process.cpuUsage(own0);
    const driverS = (own.user + own.system) / 1e6;
    await sleep(config.settle * 1000);
    clearInterval(sampler);
    const after = await scrape(api);
    const requests = requestsBetween(before, after, GROUP, PLURAL);
    // The driver's own creations.
    requests.byVerb.POST = (requests.byVerb.POST ?? 0) - burst.length;
    if (!requests.byVerb.POST) delete requests.byVerb.POST;
    requests.total -= burst.length;
    delete requests.bodyBytes.create;
    const latencies = burst
      .filter((n) => tracker.handled.has(n))
      .map((n) => tracker.handled.get(n)! - tracker.created.get(n)!);
    result.burst = {
      objects: burst.length,
      complete: burstDone,
      allS: (tEnd - t0) / 1000,
      perSecond: handledTimes.length / ((tEnd - t0) / 1000),
      createS,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      operatorCpuS: cpu1 - cpu0,
      controlPlaneCpuS: cp1 - cp0,
      otherCpuS: Math.max(0, all1 - all0 - (cpu1 - cpu0) - (cp1 - cp0) - driverS),
      peakRssMb: peak / 2 ** 20,
      requests,
      events: eventsBetween(before, after),
      droppedWatchers: counterBetween(before, after, 'apiserver_terminated_watchers_total', GROUP, PLURAL),
      createCalls: running.calls.slice(callsBefore).filter((c) => c.handler === 'create_fn').length,
    };
    if (spec.metricsPort && ownBefore) {
      const ownAfter = await ownMetrics(spec.metricsPort);
      const mean = (name: string, where: Record<string, string> = {}) => {
        const d = (suffix: string) =>
          sum(ownAfter, `${name}_${suffix}`, where) - sum(ownBefore, `${name}_${suffix}`, where);
        return (d('sum') / d('count')) * 1000;
      };
      result.burst.own = {
        queueWaitMs: mean('kopf_queue_wait_seconds'),
        patchMs: mean('kopf_api_request_duration_seconds', { verb: 'patch' }),
        handlerMs: mean('kopf_handler_duration_seconds'),
      };
      progress(`${spec.label}: its own metrics over the burst (means): ${JSON.stringify(result.burst.own)}`);
    }
    progress(
      `${spec.label}: burst handled in ${result.burst.allS.toFixed(2)}s (${result.burst.perSecond.toFixed(1)}/s, p50 ${result.burst.p50Ms.toFixed(0)} ms, p99 ${result.burst.p99Ms.toFixed(0)} ms); requests ${JSON.stringify(requests.byVerb)}`,
    );
    result.idleLarge = await memory(running.pid);
    result.slopeKbPerObject = ((result.idleLarge.rssMb - result.idleSmall.rssMb) * 1024) / burst.length;
    progress(
      `${spec.label}: idle RSS with ${existing.length + burst.length} objects: ${result.idleLarge.rssMb.toFixed(1)} MB (${result.slopeKbPerObject.toFixed(1)} KB/object)`,
    );

    // Updates.
    const targets = burst.slice(0, config.updateObjects);
    progress(`${spec.label}: updates: ${targets.length} objects × ${config.updateRounds} rounds`);
    for (const name of targets) tracker.expected.set(name, config.updateRounds);
    const uBefore = await scrape(api);
    const uCpu0 = treeCpu(running.pid);
    const uCalls = running.calls.length;
    const u0 = now();
    let patchBytes = 0;
    for (let round = 1; round <= config.updateRounds; round++) {
      await pool(targets, config.concurrency, async (name) => {
        const body = { spec: { n: round } };
        patchBytes += JSON.stringify(body).length;
        await api.ok(
          'PATCH',
          `/apis/${GROUP}/v1/namespaces/${NS}/${PLURAL}/${name}`,
          body,
          'application/merge-patch+json',
        );
      });
    }
    const updatesDone = await tracker.waitAll(targets, (n) => tracker.converged.has(n), config.timeout);
    const convergedAt = Math.max(...targets.map((n) => tracker.converged.get(n) ?? now()));
    const uCpu1 = treeCpu(running.pid);
    await sleep(config.settle * 1000);
    const uAfter = await scrape(api);
    const uRequests = requestsBetween(uBefore, uAfter, GROUP, PLURAL);
    const sent = targets.length * config.updateRounds;
    uRequests.byVerb.PATCH = (uRequests.byVerb.PATCH ?? 0) - sent;
    uRequests.total -= sent;
    uRequests.bodyBytes.patch = (uRequests.bodyBytes.patch ?? 0) - patchBytes;
    const invocations = running.calls.slice(uCalls).filter((c) => c.handler === 'update_fn');
    result.updates = {
      objects: targets.length,
      rounds: config.updateRounds,
      sent,
      complete: updatesDone,
      convergeS: (convergedAt - u0) / 1000,
      invocations: invocations.length,
      distinct: new Set(invocations.map((c) => `${c.name} ${c.n}`)).size,
      requests: uRequests,
      operatorCpuS: uCpu1 - uCpu0,
    };
    progress(
      `${spec.label}: ${sent} updates: ${invocations.length} invocations (${result.updates.distinct} distinct essences), converged in ${result.updates.convergeS.toFixed(2)}s`,
    );
    return result;
  } finally {
    result.cpuTotalS = treeCpu(running.pid);
    result.exit = await stopOperator(running);
    tracker.stop();
    progress(`${spec.label}: stopped (exit ${result.exit}); CPU ${result.cpuTotalS.toFixed(1)}s in all`);
  }
}

// ---------------------------------------------------------------------------------------------
// Import costs, the machine, the table.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function importCost(
  specifier: string,
  cwd: string,
  flags: string[] = [],
  runs = 5,
): { ms: number; rssMb: number } {
  const script = `const r0 = process.memoryUsage().rss; const t0 = performance.now();
await import(${JSON.stringify(specifier)});
const ms = performance.now() - t0; const rssMb = (process.memoryUsage().rss - r0) / 2 ** 20;
console.log(JSON.stringify({ ms, rssMb }));`;
  const results = Array.from(
    { length: runs },
    () =>
      JSON.parse(
        execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
          cwd,
          encoding: 'utf8',
        }),
      ) as { ms: number; rssMb: number },
  );
  return { ms: median(results.map((r) => r.ms)), rssMb: median(results.map((r) => r.rssMb)) };
}

function machine(py: string | undefined, kube: string) {
  const cpus = os.cpus();
  const version = (cmd: string, argv: string[]) => {
    try {
      return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    python: py ? version(py, ['-c', 'import sys; print(sys.version.split()[0])']) : 'n/a',
    kopf: py ? version(py, ['-c', 'import importlib.metadata as m; print(m.version("kopf"))']) : 'n/a',
    kubernetes: kube,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

function fmt(value: number | undefined, digits?: number): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toFixed(d);
}

interface Row {
  label: string;
  better?: 'higher' | 'lower';
  values: Record<string, number | undefined>;
  digits?: number;
}

function table(rows: Row[], ids: string[], labels: Record<string, string>): string {
  const header = ['', ...ids.map((id) => labels[id] ?? id)];
  const ratios: Array<[string, string]> = [];
  if (ids.includes('kopf-ts') && ids.includes('kopf')) ratios.push(['kopf', 'kopf-ts / Kopf']);
  if (ids.includes('kopf-ts') && ids.includes('floor')) ratios.push(['floor', 'kopf-ts / floor']);
  header.push(...ratios.map(([, l]) => l), 'better');
  const shown = rows.filter((row) => ids.some((id) => Number.isFinite(row.values[id])));
  const lines = shown.map((row) => [
    row.label,
    ...ids.map((id) => fmt(row.values[id], row.digits)),
    ...ratios.map(([id]) => {
      const a = row.values['kopf-ts'];
      const b = row.values[id];
      return a !== undefined && b !== undefined && b !== 0 && Number.isFinite(a / b) ? `${fmt(a / b)}×` : '—';
    }),
    row.better === 'higher' ? 'higher' : row.better === 'lower' ? 'lower' : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    render(header),
    `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`,
    ...lines.map(render),
  ].join('\n');
}

function rowsOf(results: Record<string, OperatorResult>): Row[] {
  const pick = (f: (r: OperatorResult) => number | undefined) =>
    Object.fromEntries(Object.entries(results).map(([id, r]) => [id, f(r)]));
  const perObject = (r: OperatorResult, f: (c: RequestCounts) => number | undefined) =>
    r.burst ? (f(r.burst.requests) ?? 0) / r.burst.objects : undefined;
  const verbs = [
    ...new Set(Object.values(results).flatMap((r) => Object.keys(r.burst?.requests.byVerb ?? {}))),
  ].sort();
  const N = config.burst;
  const K = config.existing;
  return [
    { label: `burst: ${N} objects, all handled (s)`, better: 'lower', values: pick((r) => r.burst?.allS) },
    { label: 'burst: throughput (objects/s)', better: 'higher', values: pick((r) => r.burst?.perSecond) },
    { label: "burst: the driver's creating took (s)", values: pick((r) => r.burst?.createS) },
    { label: 'burst: latency p50 (ms)', better: 'lower', values: pick((r) => r.burst?.p50Ms), digits: 0 },
    { label: 'burst: latency p99 (ms)', better: 'lower', values: pick((r) => r.burst?.p99Ms), digits: 0 },
    {
      label: 'burst: operator CPU (ms/object)',
      better: 'lower',
      values: pick((r) => (r.burst ? (r.burst.operatorCpuS * 1000) / r.burst.objects : undefined)),
    },
    {
      label: 'burst: control plane CPU (ms/object)',
      better: 'lower',
      values: pick((r) => (r.burst ? (r.burst.controlPlaneCpuS * 1000) / r.burst.objects : undefined)),
    },
    {
      label: "burst: other processes' CPU (s; noise)",
      values: pick((r) => r.burst?.otherCpuS),
    },
    {
      label: 'burst: own metrics: mean queue wait (ms)',
      values: pick((r) => r.burst?.own?.queueWaitMs),
      digits: 0,
    },
    {
      label: 'burst: own metrics: mean PATCH (ms)',
      values: pick((r) => r.burst?.own?.patchMs),
      digits: 1,
    },
    {
      label: 'API: requests/object (bench resource)',
      better: 'lower',
      values: pick((r) => perObject(r, (c) => c.total)),
    },
    ...verbs.map((verb): Row => ({
      label: `API: ${verb}/object`,
      values: pick((r) => perObject(r, (c) => c.byVerb[verb])),
      digits: 3,
    })),
    {
      label: 'API: requests/object incl. Events',
      better: 'lower',
      values: pick((r) =>
        r.burst ? (r.burst.requests.total + r.burst.events) / r.burst.objects : undefined,
      ),
    },
    {
      label: 'API: PATCH body bytes/object',
      better: 'lower',
      values: pick((r) => perObject(r, (c) => c.bodyBytes.patch)),
      digits: 0,
    },
    {
      label: 'API: Events POSTed/object',
      better: 'lower',
      values: pick((r) => (r.burst ? r.burst.events / r.burst.objects : undefined)),
    },
    {
      label: 'burst: watchers dropped as too slow',
      values: pick((r) => r.burst?.droppedWatchers),
      digits: 0,
    },
    {
      label: 'burst: create_fn calls beyond one/object',
      values: pick((r) => (r.burst ? r.burst.createCalls - r.burst.objects : undefined)),
      digits: 0,
    },
    {
      label: `updates: ${config.updateObjects}×${config.updateRounds} sent, update_fn calls`,
      values: pick((r) => r.updates?.invocations),
      digits: 0,
    },
    {
      label: 'updates: distinct essences handled',
      values: pick((r) => r.updates?.distinct),
      digits: 0,
    },
    {
      label: 'updates: until all final states handled (s)',
      better: 'lower',
      values: pick((r) => r.updates?.convergeS),
    },
    {
      label: 'updates: requests/update sent',
      better: 'lower',
      values: pick((r) => (r.updates ? r.updates.requests.total / r.updates.sent : undefined)),
    },
    {
      label: `memory: idle RSS, ${K} objects (MB)`,
      better: 'lower',
      values: pick((r) => r.idleSmall?.rssMb),
    },
    {
      label: `memory: idle RSS, ${K + N} objects (MB)`,
      better: 'lower',
      values: pick((r) => r.idleLarge?.rssMb),
    },
    {
      label: 'memory: slope (KB/object)',
      better: 'lower',
      values: pick((r) => r.slopeKbPerObject),
    },
    { label: 'memory: peak RSS in the burst (MB)', better: 'lower', values: pick((r) => r.burst?.peakRssMb) },
    {
      label: 'memory: processes in the tree',
      values: pick((r) => r.idleLarge?.processes.length ?? r.idleSmall?.processes.length),
      digits: 0,
    },
    {
      label: `start-up: to first handled, ${K} exist (s; median of ${config.startups})`,
      better: 'lower',
      values: pick((r) => r.startup.firstS),
    },
    {
      label: `start-up: to all ${K} handled (s; median)`,
      better: 'lower',
      values: pick((r) => r.startup.allS),
    },
    { label: 'CPU: operator, whole run (s)', better: 'lower', values: pick((r) => r.cpuTotalS) },
  ];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const unknown = config.operators.filter((o) => !SPECS[o]);
  if (unknown.length)
    throw new Error(`unknown operators: ${unknown.join(', ')} (known: ${Object.keys(SPECS).join(', ')})`);
  progress(`config: ${JSON.stringify(config)}`);
  const py = config.operators.includes('kopf') ? kopfPython() : undefined;
  SPECS['kopf-ts-metrics']!.metricsPort = await freePort();
  // The launcher runs the built files when they are up to date, as a published kopf-ts does.
  progress('building kopf-ts (tsc -b)');
  execFileSync('tsc', ['-b'], { cwd: ROOT, stdio: 'inherit' });

  progress('import costs (5 runs each, median)');
  const imports = {
    '@kubernetes/client-node': importCost('@kubernetes/client-node', ROOT),
    // What `kopf-ts run` pays: its loader hooks (tsx, for TypeScript operator files) are active.
    '@kubernetes/client-node (tsx hooks active)': importCost('@kubernetes/client-node', ROOT, [
      '--import',
      'tsx',
    ]),
    'prom-client': importCost('prom-client', join(ROOT, 'packages/framework')),
  };
  progress(`  ${JSON.stringify(imports)}`);

  progress(`control plane '${args.name}'`);
  const cluster = await up({ name: args.name, verbose: false });
  const api = new Api(cluster);
  const work = mkdtempSync(join(os.tmpdir(), 'kopf-ts-bench-'));
  progress(`logs in ${work}`);
  const results: Record<string, OperatorResult> = {};
  let info: ReturnType<typeof machine> | undefined;
  try {
    const version = await api.ok<{ gitVersion: string }>('GET', '/version');
    info = machine(py, version.body.gitVersion);
    await api.ok('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', CRD, undefined, [409]);
    for (let i = 0; ; i++) {
      const r = await api.request('GET', `/apis/${GROUP}/v1/${PLURAL}`);
      if (r.status === 200) break;
      if (i > 200) throw new Error('the bench CRD is not served');
      await sleep(100);
    }
    // Warm-ups: the apiserver's CRD handler, the TypeScript transpile cache, Python's bytecode.
    progress('warm-up');
    await freshNamespace(api);
    const warm = new Tracker(api);
    await createObjects(api, warm, ['warm-1', 'warm-2', 'warm-3', 'warm-4', 'warm-5']);
    execFileSync(process.execPath, [KOPF_TS, '--version'], { cwd: ROOT, stdio: 'ignore' });
    if (py) execFileSync(py, ['-c', 'import kopf'], { stdio: 'ignore' });

    for (const id of config.operators) results[id] = await runOperator(SPECS[id]!, cluster, api, work);
    await deleteNamespace(api);
  } finally {
    api.close();
    if (!args.keep) {
      progress(`removing the control plane '${args.name}'`);
      await reset(args.name, false);
    }
  }

  const full = config.operators.filter((id) => !SPECS[id]!.light);
  const labels = Object.fromEntries(config.operators.map((id) => [id, SPECS[id]!.label]));
  const lines: string[] = [];
  lines.push(
    `Machine: ${info.cores} cores (${info.cpu}), ${info.memoryGiB} GiB, ${info.kernel}; Node ${info.node}, Python ${info.python}, Kopf ${info.kopf}; Kubernetes ${info.kubernetes} (local control plane on the same cores); load average at start ${info.loadAverage.join(' ')}.`,
    `Load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}.`,
    `Sizes: burst N=${config.burst}, existing K=${config.existing}, updates ${config.updateObjects} objects × ${config.updateRounds} rounds, payload ${config.payload} B, driver concurrency ${config.concurrency}.`,
    '',
    table(rowsOf(Object.fromEntries(full.map((id) => [id, results[id]!]))), full, labels),
  );
  const light = config.operators.filter((id) => SPECS[id]!.light);
  if (light.length && results['kopf-ts']) {
    const ids = ['kopf-ts', ...light];
    const pick = (f: (r: OperatorResult) => number | undefined) =>
      Object.fromEntries(ids.map((id) => [id, results[id] ? f(results[id]) : undefined]));
    lines.push(
      '',
      table(
        [
          { label: `start-up: to first handled (s)`, values: pick((r) => r.startup.firstS) },
          { label: `start-up: to all ${config.existing} handled (s)`, values: pick((r) => r.startup.allS) },
          {
            label: `memory: idle RSS, ${config.existing} objects (MB)`,
            values: pick((r) => r.idleSmall?.rssMb),
          },
        ],
        ids,
        { ...labels, 'kopf-ts': 'kopf-ts, kubeconfig login' },
      ),
    );
  }
  lines.push(
    '',
    `Import cost (fresh Node process, median of 5): ${Object.entries(imports)
      .map(([name, c]) => `${name} ${fmt(c.ms, 0)} ms, +${fmt(c.rssMb, 1)} MB RSS`)
      .join('; ')}.`,
  );
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  if (args.out) {
    writeFileSync(
      args.out,
      `${JSON.stringify({ date: new Date().toISOString(), machine: info, config, imports, results, table: text }, null, 2)}\n`,
    );
    progress(`results written to ${args.out}`);
  }
}

await main();
