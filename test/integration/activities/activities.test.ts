/**
 * Activities and authentication on the real apiserver: startup and cleanup, login activities
 * with tokens revoked underneath the operator (401 → re-login → handling goes on), credentials
 * running out, exec-plugin kubeconfigs, and the liveness endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { before, beforeEach, test, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../../cluster/cluster.ts';
import { on, Operator, PermanentError } from '../../../packages/framework/src/index.ts';
import type { ConnectionInfo, HandlerContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry } from '../../../packages/framework/src/registry/registry.ts';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { captureLogs, installTestCrd } from '../../support/operator.ts';

const R = 'kopftests.kopf-ts.dev';

before(async () => installTestCrd(await sharedCluster()));
beforeEach(() => clearRegistry());

function run(t: TestContext, ns: string, options: ConstructorParameters<typeof Operator>[0] = {}) {
  const { logs, logger } = captureLogs();
  const operator = new Operator({ namespaces: [ns], logger, ...options });
  t.after(() => operator.stop());
  return { operator, logs };
}

const object = (name: string) =>
  `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}}\nspec: {a: 1}\n`;

const handledName = (cluster: ClusterInfo, ns: string, name: string) => async () =>
  (
    await kubectlJson<{ metadata: { annotations?: Record<string, string> } }>(cluster, [
      'get',
      R,
      name,
      '-n',
      ns,
    ])
  ).metadata.annotations?.['kopf.zalando.org/last-handled-configuration'];

/** Waits until the apiserver rejects a token (its bound object is gone; caches expire in ~10 s). */
async function revoked(cluster: ClusterInfo, token: string): Promise<void> {
  const status = () =>
    new Promise<number>((resolve) => {
      const req = request(
        `${cluster.server}/api`,
        { ca: readFileSync(cluster.caFile), headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(0));
      req.end();
    });
  await eventually('the token is rejected with 401', async () => (await status()) === 401, 30_000, 500);
}

/** A ServiceAccount allowed exactly what an operator of the test resource needs in `ns`. */
/** A token of the ServiceAccount `op`, bound to a new Secret: deleting the Secret revokes it. */
async function boundToken(cluster: ClusterInfo, ns: string, secret: string, extra: string[] = []) {
  await kubectl(cluster, ['create', 'secret', 'generic', secret, '-n', ns]);
  const args = [
    'create',
    'token',
    'op',
    '-n',
    ns,
    '--bound-object-kind=Secret',
    `--bound-object-name=${secret}`,
  ];
  return (await kubectl(cluster, [...args, ...extra])).trim();
}

async function operatorAccount(cluster: ClusterInfo, ns: string): Promise<void> {
  await kubectl(cluster, ['create', 'serviceaccount', 'op', '-n', ns]);
  await kubectl(cluster, [
    'create',
    'role',
    'op',
    '-n',
    ns,
    '--verb=list,watch,patch',
    '--resource=kopftests.kopf-ts.dev,kopftests.kopf-ts.dev/status',
  ]);
  await kubectl(cluster, ['create', 'role', 'op-events', '-n', ns, '--verb=create', '--resource=events']);
  for (const role of ['op', 'op-events'])
    await kubectl(cluster, [
      'create',
      'rolebinding',
      role,
      '-n',
      ns,
      `--role=${role}`,
      `--serviceaccount=${ns}:op`,
    ]);
}

test('startup runs before handling and cleanup after it; a failing startup stops the operator clearly', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const order: string[] = [];
  on.startup(function prepare({ memo }) {
    memo.ready = true;
    order.push('startup');
  });
  on.cleanup(function tidy() {
    order.push('cleanup');
  });
  on.create(R, function create_fn() {
    order.push('create');
  });
  const { operator } = run(t, ns, { login: { kubeconfig: cluster.kubeconfig } });
  await operator.start();
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('a'));
  await eventually('created', () => order.includes('create'));
  await operator.stop();
  assert.deepEqual(order, ['startup', 'create', 'cleanup']);

  clearRegistry();
  on.startup(function broken() {
    throw new PermanentError('the database is not configured');
  });
  const failing = run(t, ns, { login: { kubeconfig: cluster.kubeconfig } });
  await assert.rejects(
    failing.operator.start(),
    /Startup failed: Activity 'broken' failed: the database is not configured/,
  );
});

test('login activities: a revoked token means 401, a new login, and handling goes on', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await operatorAccount(cluster, ns);
  const ca = readFileSync(cluster.caFile);
  const tokens: string[] = [];
  on.login(async function login_with_bound_token(): Promise<ConnectionInfo> {
    const secret = `login-${tokens.length + 1}`;
    const token = await boundToken(cluster, ns, secret, ['--duration=10m']);
    tokens.push(token);
    return { server: cluster.server, ca, token, source: `token bound to ${secret}` };
  });
  const handled: string[] = [];
  on.create(R, function create_fn({ name }: HandlerContext) {
    handled.push(name);
  });
  const { operator, logs } = run(t, ns);
  await operator.start();
  assert.ok(logs.some((l) => l.includes("Activity 'login_with_bound_token' succeeded.")));
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('before'));
  await eventually('handled with the first token', handledName(cluster, ns, 'before'));

  // Revoke the token: its bound Secret is gone. The next request is rejected (401).
  await kubectl(cluster, ['delete', 'secret', 'login-1', '-n', ns]);
  await revoked(cluster, tokens[0]!);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('after'));
  await eventually('handled after re-login', handledName(cluster, ns, 'after'), 30_000);
  assert.deepEqual(handled, ['before', 'after']);
  assert.equal(tokens.length, 2, 'logged in again once');
  assert.ok(
    logs.some((l) => /Credentials were rejected: .*401/.test(l)),
    logs.join('\n'),
  );
});

test('when no login succeeds any more, the operator says so and stops with a failure', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  await operatorAccount(cluster, ns);
  const tokens: string[] = [];
  on.login(async function one_time_login(): Promise<ConnectionInfo> {
    if (tokens.length) throw new PermanentError('no more tokens');
    const token = await boundToken(cluster, ns, 'once');
    tokens.push(token);
    return { server: cluster.server, ca: readFileSync(cluster.caFile), token };
  });
  on.create(R, function create_fn() {});
  const { operator, logs } = run(t, ns);
  const stopped = new Promise<Error | undefined>((r) => operator.once('stopped', r));
  await operator.start();
  await kubectl(cluster, ['delete', 'secret', 'once', '-n', ns]);
  await revoked(cluster, tokens[0]!);
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('x'));
  const failure = await stopped;
  assert.match(
    failure?.message ?? '',
    /Ran out of valid credentials: Activity 'one_time_login' failed: no more tokens/,
  );
  assert.ok(logs.some((l) => l.includes('Ran out of valid credentials')));
});

test('a kubeconfig with an exec credential plugin logs in, and the liveness endpoint reports probes', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-exec-'));
  const credential = JSON.stringify({
    apiVersion: 'client.authentication.k8s.io/v1',
    kind: 'ExecCredential',
    status: { token: cluster.token },
  });
  writeFileSync(join(dir, 'plugin.sh'), `#!/bin/sh\necho '${credential}'\n`, { mode: 0o755 });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: '${cluster.server}', certificate-authority: '${cluster.caFile}'}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: '${join(dir, 'plugin.sh')}', interactiveMode: Never}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  );
  const handled: string[] = [];
  on.create(R, function create_fn({ name }: HandlerContext) {
    handled.push(name);
  });
  on.probe(function objects_seen() {
    return handled.length;
  });
  const { operator } = run(t, ns, { login: { kubeconfig }, liveness: 'http://127.0.0.1:0/healthz' });
  const port = new Promise<number>((r) => operator.once('liveness', r));
  await operator.start();
  await kubectl(cluster, ['apply', '-n', ns, '-f', '-'], object('via-exec'));
  await eventually('handled', () => handled.includes('via-exec'));
  const response = await fetch(`http://127.0.0.1:${await port}/healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { ok: true, problems: [], probes: { objects_seen: 1 } });
  assert.equal((await fetch(`http://127.0.0.1:${await port}/other`)).status, 404);
});
