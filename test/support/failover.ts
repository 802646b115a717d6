/**
 * Peering failover under load, shared by the CI test (test/integration/reliability/) and its
 * heavier variant (test/long/): two `kopf-ts run` processes in one peering, a burst of objects
 * whose handlers take 200–500 ms each, the active one SIGKILLed in the middle of it, and a
 * ledger that both processes append to (one JSON line per handler start, end and deletion).
 *
 * The create handler is idempotent in the psql operator's way: it gets or creates an adopted
 * child ConfigMap holding a random token, so a second run (after a kill) finds and keeps the
 * child of the first run. Its result is `{ by, token }`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { eventually, kubectl, kubectlJson } from './cluster.ts';
import { installGeneratedCrds, startCli, type CliProcess } from './cli.ts';

export const R = 'kopftests.kopf-ts.dev';
const DIFFBASE = 'kopf.zalando.org/last-handled-configuration';

const OPERATOR_SOURCE = `import { appendFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { adopt, on } from 'kopf-ts';

const who = process.env.WHO;
const ledger = process.env.LEDGER;
const record = (entry) => appendFileSync(ledger, JSON.stringify({ who, at: Date.now(), ...entry }) + '\\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// 200-500 ms per object, fixed by its name: slow enough to be caught in the middle (or HANDLER_MS).
const duration = (name) =>
  Number(process.env.HANDLER_MS) || 200 + ([...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 301);

on.create('${R}', async function create_fn({ name, namespace, body, retry, api }) {
  record({ name, retry, event: 'start' });
  await sleep(duration(name) / 2);
  const child = name + '-child';
  let cm = await api.get('v1', 'ConfigMap', child, namespace);
  if (!cm) {
    try {
      cm = await api.create(adopt({
        apiVersion: 'v1', kind: 'ConfigMap',
        metadata: { name: child, labels: { 'failover-child': 'yes' } },
        data: { token: randomBytes(8).toString('hex'), by: who },
      }, body));
    } catch (error) {
      if (error.code !== 409) throw error; // created meanwhile: fine
      cm = await api.get('v1', 'ConfigMap', child, namespace);
    }
  }
  await sleep(duration(name) / 2);
  record({ name, retry, event: 'end', token: cm.data.token });
  return { by: who, token: cm.data.token };
});

on.delete('${R}', function delete_fn({ name, retry }) {
  record({ name, retry, event: 'delete' });
});
`;

export interface LedgerEntry {
  who: string;
  at: number;
  name: string;
  retry?: number;
  event: 'start' | 'end' | 'delete';
  token?: string;
}

/** The operator file and the ledger file, in a fresh temporary folder. */
export function failoverFiles(): { operator: string; ledger: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-failover-'));
  const operator = join(dir, 'operator.ts');
  const ledger = join(dir, 'ledger.jsonl');
  writeFileSync(operator, OPERATOR_SOURCE);
  writeFileSync(ledger, '');
  return { operator, ledger };
}

export function readLedger(path: string): LedgerEntry[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LedgerEntry);
}

/** Installs the peering CRDs (as `kopf-ts generate` prints them); the test CRD is up to the caller. */
export async function installPeeringCrds(cluster: ClusterInfo, operatorFile: string): Promise<void> {
  await installGeneratedCrds(cluster, operatorFile, (name) => name.endsWith('kopfpeerings.kopf.dev'));
}

/** `kopf-ts run` of the failover operator in the peering `failover` of `ns`. */
export function startPeer(
  t: TestContext,
  cluster: ClusterInfo,
  files: { operator: string; ledger: string },
  ns: string,
  who: string,
  priority: number,
  lifetime: number,
  env: NodeJS.ProcessEnv = {},
): CliProcess {
  return startCli(
    t,
    cluster,
    [
      'run',
      files.operator,
      '-n',
      ns,
      '--peering',
      'failover',
      '--priority',
      String(priority),
      '--peering-lifetime',
      String(lifetime),
    ],
    { env: { WHO: who, POD_ID: who, LEDGER: files.ledger, ...env } },
  );
}

export async function createPeering(cluster: ClusterInfo, ns: string): Promise<void> {
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    'apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata: {name: failover}\n',
  );
}

/** Creates `names` with one `kubectl apply` of a List. */
export async function createObjects(cluster: ClusterInfo, ns: string, names: string[]): Promise<void> {
  const items = names.map((name) => ({
    apiVersion: 'kopf-ts.dev/v1',
    kind: 'KopfTest',
    metadata: { name },
    spec: { n: 1 },
  }));
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  );
}

/** A handler run of one process on one object: from its start to its end, or to the kill. */
export interface Interval {
  who: string;
  name: string;
  from: number;
  to: number;
  ended: boolean;
  retry: number;
}

/** The runs of the create handler; a run without an end lasts until `deadAt[who]` (its kill). */
export function intervals(entries: LedgerEntry[], deadAt: Record<string, number>): Interval[] {
  const open = new Map<string, LedgerEntry>();
  const out: Interval[] = [];
  for (const e of entries) {
    const key = `${e.who} ${e.name}`;
    if (e.event === 'start') open.set(key, e);
    if (e.event === 'end') {
      const start = open.get(key);
      open.delete(key);
      out.push({
        who: e.who,
        name: e.name,
        from: start?.at ?? e.at,
        to: e.at,
        ended: true,
        retry: e.retry ?? 0,
      });
    }
  }
  for (const start of open.values())
    out.push({
      who: start.who,
      name: start.name,
      from: start.at,
      to: deadAt[start.who] ?? Infinity,
      ended: false,
      retry: start.retry ?? 0,
    });
  return out;
}

/** Pairs of runs of different processes on the same object that overlap in time. */
export function overlaps(runs: Interval[]): string[] {
  const problems: string[] = [];
  for (const a of runs)
    for (const b of runs)
      if (a.name === b.name && a.who < b.who && a.from < b.to && b.from < a.to)
        problems.push(`${a.name}: ${a.who} [${a.from}, ${a.to}] and ${b.who} [${b.from}, ${b.to}]`);
  return problems;
}

interface Snapshot {
  items: Array<{
    metadata: { name: string; finalizers?: string[]; annotations?: Record<string, string> };
    status?: { create_fn?: { by?: string; token?: string } };
  }>;
}

export interface FailoverOptions {
  /** Objects per round. */
  objects: number;
  /** Objects per `kubectl apply`. */
  batch: number;
  /** Rounds: each kills the active process in the middle of its burst; a new standby joins. */
  rounds: number;
  /** Kill once the active one has finished this many objects of the round (and one is in flight). */
  killAfter: number;
  /** The peering lifetime, seconds. */
  lifetime: number;
  /** How long to wait for everything to be handled, ms. */
  timeoutMs: number;
}

export interface FailoverFigures {
  objects: number;
  /** Per kill: ms from the kill to the standby's first handler start. */
  takeovers: number[];
  /** Per kill: ms from the kill to the expiry of the dead peer's record (lastseen + lifetime). */
  expiries: number[];
  /** Objects whose create handler ran (started) in the killed process and was not committed. */
  inFlight: string[];
  /** Objects whose create handler completed twice (a subset of inFlight). */
  repeated: string[];
  /** The retry numbers of the second runs. */
  retries: number[];
  /** ms from the first creation to the last object handled. */
  totalMs: number;
}

/**
 * The scenario: peers with descending priorities; per round a burst of objects, the active one
 * SIGKILLed when `killAfter` objects are done and another is in flight, the standby taking
 * over; then all objects deleted. Returns what the ledger says; throws on any violation.
 */
export async function failover(
  t: TestContext,
  cluster: ClusterInfo,
  ns: string,
  options: FailoverOptions,
): Promise<{ figures: FailoverFigures; problems: string[] }> {
  const files = failoverFiles();
  await installPeeringCrds(cluster, files.operator);
  await createPeering(cluster, ns);
  const problems: string[] = [];
  const deadAt: Record<string, number> = {};
  const takeovers: number[] = [];
  const expiries: number[] = [];
  const inFlight = new Set<string>();
  const committedBy = new Map<string, string>();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  let priority = 100;
  let active = {
    who: 'peer-0',
    cli: startPeer(t, cluster, files, ns, 'peer-0', priority--, options.lifetime),
  };
  await active.cli.waitFor('Starting the watch-stream for kopftests');
  let standby = {
    who: 'peer-1',
    cli: startPeer(t, cluster, files, ns, 'peer-1', priority--, options.lifetime),
  };
  await standby.cli.waitFor(`Pausing operations in favour of ${active.who}`);
  const peers = [active, standby];

  const all: string[] = [];
  const t0 = Date.now();
  for (let round = 0; round < options.rounds; round++) {
    const names = Array.from(
      { length: options.objects },
      (_, i) => `r${round}-o${String(i).padStart(3, '0')}`,
    );
    all.push(...names);
    const mine = new Set(names);
    // Creation goes on in batches, before, during and after the kill.
    const creating = (async () => {
      for (let i = 0; i < names.length; i += options.batch) {
        await createObjects(cluster, ns, names.slice(i, i + options.batch));
        await sleep(100);
      }
    })();
    const victim = active;
    await eventually(
      `${victim.who} to finish ${options.killAfter} objects with one more in flight`,
      () => {
        const runs = intervals(
          readLedger(files.ledger).filter((e) => mine.has(e.name) && e.who === victim.who),
          {},
        );
        const ended = runs.filter((r) => r.ended).length;
        return ended >= options.killAfter && runs.some((r) => !r.ended);
      },
      30_000,
      10,
    );
    victim.cli.kill('SIGKILL');
    await victim.cli.exited;
    deadAt[victim.who] = Date.now();
    // When the dead peer's record runs out: nobody may take over before that.
    const peering = await kubectlJson<{ status?: Record<string, { lastseen?: string }> }>(cluster, [
      'get',
      'kopfpeering',
      'failover',
      '-n',
      ns,
    ]);
    const lastseen = Date.parse(peering.status?.[victim.who]?.lastseen ?? '');
    expiries.push(lastseen + options.lifetime * 1000 - deadAt[victim.who]!);
    // What the killed process committed (the diff-base, written in the cycle's last patch,
    // after the result in the status): those objects must never run again.
    const snapshot = await kubectlJson<Snapshot>(cluster, ['get', R, '-n', ns]);
    for (const item of snapshot.items) {
      const by = item.status?.create_fn?.by;
      if (by === victim.who && item.metadata.annotations?.[DIFFBASE]) committedBy.set(item.metadata.name, by);
    }
    for (const run of intervals(readLedger(files.ledger), deadAt))
      if (run.who === victim.who && !committedBy.has(run.name)) inFlight.add(run.name);
    await creating;

    // The standby takes over after the lifetime, and finishes the round.
    active = standby;
    await active.cli.waitFor('Resuming operations after the pause', (options.lifetime + 15) * 1000);
    const firstStart = await eventually(
      `${active.who} to start handling`,
      () => readLedger(files.ledger).find((e) => e.who === active.who && e.at >= deadAt[victim.who]!)?.at,
      20_000,
      50,
    );
    takeovers.push(firstStart - deadAt[victim.who]!);
    await eventually(
      `all objects of round ${round} handled`,
      async () => {
        const list = await kubectlJson<Snapshot>(cluster, ['get', R, '-n', ns]);
        const done = list.items.filter((i) => mine.has(i.metadata.name) && i.status?.create_fn?.token);
        return done.length === names.length;
      },
      options.timeoutMs,
      500,
    );
    if (round + 1 < options.rounds) {
      const who = `peer-${round + 2}`;
      standby = { who, cli: startPeer(t, cluster, files, ns, who, priority--, options.lifetime) };
      peers.push(standby);
      await standby.cli.waitFor(`Pausing operations in favour of ${active.who}`);
    }
  }
  const totalMs = Date.now() - t0;

  // ---- the ledger ----
  const entries = readLedger(files.ledger);
  const runs = intervals(entries, deadAt);
  problems.push(...overlaps(runs).map((p) => `handled concurrently: ${p}`));
  const final = await kubectlJson<Snapshot>(cluster, ['get', R, '-n', ns]);
  const children = await kubectlJson<{
    items: Array<{
      metadata: { name: string; ownerReferences?: Array<{ name: string }> };
      data: { token: string };
    }>;
  }>(cluster, ['get', 'configmaps', '-n', ns, '-l', 'failover-child=yes']);
  const repeated: string[] = [];
  const retries: number[] = [];
  for (const name of all) {
    const mineRuns = runs.filter((r) => r.name === name);
    const ended = mineRuns.filter((r) => r.ended);
    const item = final.items.find((i) => i.metadata.name === name);
    const token = item?.status?.create_fn?.token;
    const childs = children.items.filter((c) => c.metadata.ownerReferences?.some((o) => o.name === name));
    if (ended.length === 0) problems.push(`${name}: the create handler never completed`);
    if (ended.length > 1) {
      repeated.push(name);
      retries.push(...ended.slice(1).map((r) => r.retry));
      if (!inFlight.has(name))
        problems.push(`${name}: completed ${ended.length} times, but was not in flight at a kill`);
      if (ended.length > 2) problems.push(`${name}: completed ${ended.length} times`);
    }
    const committer = committedBy.get(name);
    const again = committer && mineRuns.find((r) => r.from > deadAt[committer]!);
    if (again)
      problems.push(`${name}: committed by ${committer} before its kill, yet run again by ${again.who}`);
    if (childs.length !== 1) problems.push(`${name}: ${childs.length} children`);
    if (!token || childs[0]?.data.token !== token)
      problems.push(`${name}: the result's token is not the child's`);
    for (const run of ended) {
      const end = entries.find(
        (e) => e.event === 'end' && e.who === run.who && e.name === name && e.at === run.to,
      );
      if (end?.token !== token)
        problems.push(`${name}: ${run.who}'s run saw another child (token ${end?.token})`);
    }
  }
  for (const [who, at] of Object.entries(deadAt))
    if (entries.some((e) => e.who === who && e.at > at)) problems.push(`${who} wrote after its death`);

  // ---- deletion: each object's delete handler once, no finalizer left ----
  await kubectl(cluster, [
    'delete',
    R,
    '--all',
    '-n',
    ns,
    `--timeout=${Math.ceil(options.timeoutMs / 1000)}s`,
  ]);
  const left = await kubectlJson<Snapshot>(cluster, ['get', R, '-n', ns]);
  if (left.items.length) problems.push(`${left.items.length} objects left after deletion`);
  const deletes = readLedger(files.ledger).filter((e) => e.event === 'delete');
  for (const name of all) {
    const n = deletes.filter((e) => e.name === name).length;
    if (n !== 1) problems.push(`${name}: the delete handler ran ${n} times`);
  }
  active.cli.kill('SIGINT');
  const code = await active.cli.exited;
  if (code !== 0) problems.push(`${active.who} exited with ${code}`);
  for (const peer of peers)
    for (const line of peer.cli.output)
      if (/\[ERROR/.test(line)) problems.push(`${peer.who} logged an error: ${line}`);

  return {
    figures: {
      objects: all.length,
      takeovers,
      expiries,
      inFlight: [...inFlight].sort(),
      repeated: repeated.sort(),
      retries,
      totalMs,
    },
    problems,
  };
}
