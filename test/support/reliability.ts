/**
 * Reliability scenarios on apiservers of their own, shared by the CI tests
 * (test/integration/reliability/) and their heavier variants (test/long/reliability.test.ts):
 *
 * - `throttledBurst`: an operator that runs as a ServiceAccount throttled by API Priority and
 *   Fairness (real 429s) handles a burst of creations, updates and deletions;
 * - `restartBurst`: the apiserver is SIGKILLed and restarted while an operator handles a burst.
 *
 * Both check a ledger (test/support/ledger.ts): every change handled exactly once, nothing
 * after a deletion, no object (so no finalizer) left. They return their figures, for
 * diagnostics.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { up, type ClusterInfo } from '../../cluster/cluster.ts';
import { KubeClient } from '../../packages/framework/src/kube/client.ts';
import {
  kubeconfigConnection,
  staticCredentials,
  type CredentialsSource,
} from '../../packages/framework/src/kube/credentials.ts';
import type { ApiError } from '../../packages/framework/src/kube/errors.ts';
import { Operator } from '../../packages/framework/src/runtime/operator.ts';
import type { JsonObject } from '../../packages/framework/src/util/json.ts';
import { adminClient, persist } from './client.ts';
import { cleanups, eventually, kubectl, kubectlApply, kubectlJson, ownCluster } from './cluster.ts';
import { Ledger } from './ledger.ts';
import { requestsByCode, scrape } from './metrics.ts';
import { captureLogs, installTestCrd, testObjects } from './operator.ts';

const R = 'kopftests.kopf-ts.dev';

// ---- throttling ----

/** kube-apiserver flags that leave 6 seats in all, so that one share of them is one seat. */
export const THROTTLED_APISERVER = ['--max-requests-inflight=4', '--max-mutating-requests-inflight=2'];
/** What the throttled priority level does with a request that finds its seat taken. */
export const REJECT = '{type: Reject}';
export const QUEUE = '{type: Queue, queuing: {queues: 1, handSize: 1, queueLengthLimit: 4}}';

/**
 * A ServiceAccount allowed to run the operator on kopftests in `ns`, and the APF objects that
 * throttle it: a FlowSchema for it alone, to a priority level with one seat and `limitResponse`.
 */
function throttledAccount(ns: string, name: string, limitResponse: string): string {
  return `
apiVersion: v1
kind: ServiceAccount
metadata: {name: ${name}, namespace: ${ns}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ${name}, namespace: ${ns}}
rules:
- {apiGroups: [kopf-ts.dev], resources: [kopftests], verbs: [get, list, watch, patch]}
- {apiGroups: [kopf-ts.dev], resources: [kopftests/status], verbs: [get, patch]}
- {apiGroups: [""], resources: [events], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ${name}, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${name}}
subjects: [{kind: ServiceAccount, name: ${name}, namespace: ${ns}}]
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: ${ns}-${name}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: ${limitResponse}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: ${ns}-${name}}
spec:
  priorityLevelConfiguration: {name: ${ns}-${name}}
  matchingPrecedence: 500
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects: [{kind: ServiceAccount, serviceAccount: {name: ${name}, namespace: ${ns}}}]
    resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}]
    nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
`;
}

/** The apiserver's own count of the requests its APF rejected at a priority level. */
export async function rejectedByApf(cluster: ClusterInfo, level: string): Promise<number> {
  const dump = await kubectl(cluster, [
    'get',
    '--raw',
    '/debug/api_priority_and_fairness/dump_priority_levels',
  ]);
  const [header, ...rows] = dump
    .trim()
    .split('\n')
    .map((l) => l.split(',').map((c) => c.trim()));
  const row = rows.find((r) => r[0] === level);
  assert.ok(row, `priority level ${level} in:\n${dump}`);
  return Number(row[header!.indexOf('RejectedRequests')]);
}

/** GET the kopftests of `ns`: a request any of these accounts may make. */
export function listKopftests(client: KubeClient, ns: string): Promise<JsonObject> {
  return client.request({
    method: 'GET',
    path: `/apis/kopf-ts.dev/v1/namespaces/${ns}/kopftests`,
    target: { verb: 'list', resource: 'kopftests', namespace: ns },
  });
}

/**
 * Makes the namespace, the throttled ServiceAccount and its APF objects, and waits until they
 * take effect. Returns the account's credentials (a TokenRequest token) and its priority level.
 */
export async function throttledOperatorAccount(
  defer: (cleanup: () => unknown) => void,
  cluster: ClusterInfo,
  ns: string,
  limitResponse: string,
): Promise<{ credentials: CredentialsSource; level: string }> {
  await kubectl(cluster, ['create', 'namespace', ns]);
  await kubectlApply(cluster, throttledAccount(ns, 'operator', limitResponse));
  const token = (await kubectl(cluster, ['create', 'token', 'operator', '-n', ns, '--duration=1h'])).trim();
  const admin = await kubeconfigConnection({ kubeconfig: cluster.kubeconfig });
  const credentials = staticCredentials({ ...admin, token, source: `ServiceAccount ${ns}/operator` });
  // APF objects take effect asynchronously: wait until 20 requests at once meet a 429.
  const probe = new KubeClient(credentials, { retries: 0 });
  defer(() => probe.close());
  await eventually(
    'the throttling to take effect',
    async () => {
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => listKopftests(probe, ns)));
      const rejected = results.filter((r) => r.status === 'rejected');
      for (const r of rejected) assert.equal((r.reason as ApiError).code, 429, String(r.reason));
      return rejected.length > 0;
    },
    20_000,
    500,
  );
  return { credentials, level: `${ns}-operator` };
}

/**
 * A started instance for the throttling scenarios (see `THROTTLED_APISERVER`), with the test
 * CRD; removed at the end (`defer`, or a file's `after`).
 */
export async function throttledCluster(
  instance: string,
  defer: (cleanup: () => unknown) => void,
): Promise<ClusterInfo> {
  const cluster = await ownCluster(defer, instance, THROTTLED_APISERVER);
  await installTestCrd(cluster);
  return cluster;
}

/**
 * On `cluster` (see `throttledCluster`), an operator running as a throttled ServiceAccount
 * (one seat, a queue of 4, 429s beyond) handles `objects` objects in a namespace of its own: created at once, then updated at once, then deleted at once, each
 * phase once the previous one is handled. Asserts the ledger, the results stored, an Event per
 * success, the 429s seen (by the operator's metrics and the apiserver's APF alike) and bounds
 * on the requests.
 */
export async function throttledBurst(
  t: TestContext,
  options: { cluster: ClusterInfo; objects: number; namespace?: string },
): Promise<string> {
  const { cluster, objects: N } = options;
  const timeout = Math.max(90_000, N * 1_000);
  const defer = cleanups(t);
  const ns = options.namespace ?? 'burst';
  const { credentials, level } = await throttledOperatorAccount(defer, cluster, ns, QUEUE);
  const rejectedBefore = await rejectedByApf(cluster, level);

  const ledger = new Ledger();
  ledger.register(R);
  const { logger, logs } = captureLogs();
  const operator = new Operator({
    namespaces: [ns],
    credentials,
    logger,
    peering: false,
    metrics: '127.0.0.1:0',
    events: 'all',
  });
  const port = new Promise<number>((resolve) => operator.once('metrics', resolve));
  defer(() => operator.stop());
  await operator.start();
  const metricsPort = await port;

  // The test's writes are admin's, never throttled: a real burst.
  const admin = await adminClient(cluster);
  defer(() => admin.close());
  const objects = testObjects(admin, ns);
  const names = Array.from({ length: N }, (_, i) => `burst-${i}`);
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = async (
    what: string,
    reason: 'create' | 'update' | 'delete',
    write: (name: string) => Promise<void>,
  ) => {
    const started = Date.now();
    await Promise.all(names.map(write));
    await ledger.allHandled(what, names, reason, timeout);
    phases.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };

  await phase('creations', 'create', (name) => {
    ledger.created(name, { v: 0 });
    return objects.create(name, { v: 0 });
  });
  await phase('updates', 'update', (name) => {
    ledger.updated(name, { v: 1 });
    return objects.patch(name, { v: 1 });
  });
  // The handlers' results get stored: their cycles' patches get through the 429s.
  await eventually(
    'the results of every creation and update stored',
    async () => {
      const missing = (await objects.list()).filter((o) => {
        const status = (o.status ?? {}) as Record<string, JsonObject | undefined>;
        return status.create_fn?.spec !== '{"v":0}' || status.update_fn?.spec !== '{"v":1}';
      });
      if (missing.length)
        throw new Error(`${missing.length} without, e.g. ${JSON.stringify(missing[0]!.status ?? null)}`);
      return true;
    },
    timeout,
  );
  await phase('deletions', 'delete', (name) => {
    ledger.deleted(name);
    return objects.delete(name);
  });
  await noneLeft(objects, timeout);
  await ledger.settled(t);
  const seconds = (Date.now() - t0) / 1000;

  // Each success is told as an Event too: none of them lost to the 429s.
  const told = await eventually(
    'an Event for every handler that succeeded',
    async () => {
      const { items } = await kubectlJson<{
        items: Array<{ reason: string; message: string; involvedObject: { name: string } }>;
      }>(cluster, ['get', 'events', '-n', ns]);
      const lines = items
        .filter((e) => e.reason === 'Logging')
        .map((e) => `${e.involvedObject.name} ${e.message}`);
      if (lines.length < 3 * N) throw new Error(`${lines.length} of ${3 * N}`);
      return lines.sort();
    },
    timeout,
  );
  const expected = names.flatMap((n) =>
    ['create_fn', 'update_fn', 'delete_fn'].map((id) => `${n} Handler '${id}' succeeded.`),
  );
  assert.deepEqual(told, expected.sort(), 'one Event per success');

  const codes = requestsByCode(await scrape(metricsPort));
  const rejected = (await rejectedByApf(cluster, level)) - rejectedBefore;
  const throttled = codes['429'] ?? 0;
  const answered = (codes.all ?? 0) - throttled;
  const figures =
    `${ledger.summary()} in ${seconds.toFixed(1)} s (${phases.join(', ')}); ` +
    `operator requests by code ${JSON.stringify(codes)}; rejected by APF: ${rejected}`;
  t.diagnostic(figures);
  assert.ok(throttled > 0, 'the operator met real 429s');
  assert.ok(
    logs.some((l) => l.includes('API requests are being retried') && l.includes('429')),
    'the throttling is told in the log',
  );
  assert.equal(rejected, throttled, 'the 429s the operator saw are the APF rejections of its account');
  assert.equal(codes.error ?? 0, 0, 'no request went unanswered');
  // No flood. About 10 requests per object do the work (a finalizer added and removed, status
  // and progress patches, Events); the 429s are retried after Retry-After and a backoff.
  assert.ok(answered <= 14 * N, `${answered} requests answered for ${N} objects`);
  assert.ok(throttled <= 2 * answered, `${throttled} 429s for ${answered} answered requests: a flood`);
  return figures;
}

// ---- an apiserver restart ----

/**
 * The apiserver SIGKILLed `restarts` times (and started again) while an operator (admin
 * credentials) handles `objects` objects. Each object lives its own life, the lives started
 * 50 ms apart so that creations, updates and deletions are all in flight at a kill: created,
 * updated twice, deleted, each change once the previous one was handled. The test's writes
 * are retried through the outages.
 */
export async function restartBurst(
  t: TestContext,
  options: { instance: string; objects: number; restarts: number },
): Promise<string> {
  const { instance, objects: N, restarts } = options;
  const timeout = Math.max(90_000, N * 500);
  const defer = cleanups(t);
  let cluster: ClusterInfo = await ownCluster(defer, instance);
  await installTestCrd(cluster);
  const ns = 'burst';
  await kubectl(cluster, ['create', 'namespace', ns]);

  // Handlers take a while, so that some are running when the apiserver dies.
  const ledger = new Ledger();
  ledger.register(R, { delay: 100 });
  const { logs, logger } = captureLogs();
  const operator = new Operator({
    namespaces: [ns],
    credentials: staticCredentials(await kubeconfigConnection({ kubeconfig: cluster.kubeconfig })),
    logger,
    peering: false,
  });
  const watchStates: string[] = [];
  operator.on('watch', ({ state }) => watchStates.push(state));
  defer(() => operator.stop());
  await operator.start();

  // The test's writes: no retries of their own (persist() retries them), short timeouts.
  const writer = await adminClient(cluster, { retries: 0, requestTimeout: 5 });
  defer(() => writer.close());
  const objects = testObjects(writer, ns);
  let failedWrites = 0;
  const write = async (what: string, fn: () => Promise<void>, done?: (e: ApiError) => boolean) => {
    failedWrites += await persist(what, fn, done, timeout);
  };
  const until = (what: string, check: () => boolean) =>
    eventually(what, check, timeout, 50).then(() => undefined);

  const life = async (name: string) => {
    ledger.created(name, { v: 0 });
    await write(
      `create ${name}`,
      () => objects.create(name, { v: 0 }),
      (e) => e.conflict,
    );
    await until(`create ${name} handled`, () => ledger.handled(name, 'create'));
    for (const v of [1, 2]) {
      ledger.updated(name, { v });
      await write(`patch ${name}`, () => objects.patch(name, { v }));
      await until(`update ${name} to ${v} handled`, () => ledger.handled(name, 'update'));
    }
    ledger.deleted(name);
    await write(
      `delete ${name}`,
      () => objects.delete(name),
      (e) => e.notFound,
    );
    await until(`delete ${name} handled`, () => ledger.handled(name, 'delete'));
  };

  const t0 = Date.now();
  const names = Array.from({ length: N }, (_, i) => `obj-${i}`);
  const lives = Promise.all(
    names.map(async (name, i) => {
      await new Promise((r) => setTimeout(r, i * 50));
      await life(name);
    }),
  );
  lives.catch(() => undefined); // awaited (and reported) below, after the kills
  // Kill at a third of all the handler calls (4 per object) for one restart; spread out for more.
  const outages: string[] = [];
  for (let k = 1; k <= restarts; k++) {
    const due = Math.floor((4 * N * k) / (restarts + 2));
    await until(`${due} handler calls`, () => ledger.calls.length >= due);
    const at = ledger.summary();
    process.kill(cluster.pids['kube-apiserver'], 'SIGKILL');
    const killed = Date.now();
    cluster = await up({ name: instance, verbose: false });
    outages.push(`${((Date.now() - killed) / 1000).toFixed(1)} s at ${at.replace(/^\d+ objects: /, '')}`);
  }
  await lives;
  const seconds = (Date.now() - t0) / 1000;

  await ledger.settled(t);
  await noneLeft(objects, 30_000);
  const backoffs = watchStates.filter((s) => s === 'backoff').length;
  const listings = watchStates.filter((s) => s === 'listing').length;
  const gone = logs.filter((l) => l.includes('(410 Gone); relisting')).length;
  const errors = logs.filter((l) => /\[(ERROR|CRITICAL)\s*\]/.test(l));
  const figures =
    `${ledger.summary()} in ${seconds.toFixed(1)} s; outages: ${outages.join('; ')}; ` +
    `${failedWrites} failed writes retried; the operator's watch: ${backoffs} backoffs, ${listings} listings, ${gone} 410s`;
  t.diagnostic(figures);
  assert.ok(failedWrites > 0, 'the test saw the apiserver go away');
  assert.ok(backoffs >= restarts, 'the operator saw the apiserver go away');
  assert.deepEqual(errors, [], 'no errors logged: retries covered the outages');
  return figures;
}

/** Waits until no test object is left (none stuck with a finalizer); fails naming those left. */
async function noneLeft(objects: ReturnType<typeof testObjects>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = await objects.list();
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    left = await objects.list();
  }
  assert.deepEqual(
    left.map((o) => {
      const metadata = o.metadata as { name: string; finalizers?: string[] };
      return `${metadata.name} ${JSON.stringify(metadata.finalizers ?? [])}`;
    }),
    [],
    'no object is left (no finalizer left behind)',
  );
}
